/* Integer-activation PiQ GEMV (backends/quant/piq_gemv_i8.h): the activation quantizer on hand
 * cases, the scalar reference against an independent evaluation of its formula, and every SIMD
 * ISA the CPU runs (avx2, avxvnni, avx512; others skip visibly) bit-exact against the scalar
 * reference on sizes 0/1/tails/large, misaligned pointers, poisoned outputs and extreme codes;
 * then PackedMatMul / PackedConv with act_quant = "int8" bit-exact against that definition on
 * every kernel table and thread count (NEON: tests/neon/). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backends/piqc_ops.h"
#include "backends/quant/piq_gemv_i8.h"
#include "backends/quant/quant.h"
#include "ir/alloc.h"
#include "ir/dtype.h"
#include "ir/packed.h"
#include "piqc_harness.h"

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define GUARD 64
#define POISON 0xA5

static const int64_t k_cols[] = {0,  1,  7,  8,  9,   15,  16,  17,  31,  32,   33,
                                 63, 64, 65, 95, 127, 128, 255, 256, 257, 1000, 4096};
static const int64_t k_groups[] = {8, 16, 32, 40, 64, 128, 256, 1000, 8192};
static const int64_t k_rows[] = {0, 1, 2, 3, 4, 5, 15, 16, 17, 33};

typedef struct {
    uint64_t s;
} rng_t;

static uint64_t rng_next(rng_t *r) {
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ULL;
}
static float rng_unif(rng_t *r) { /* [-1, 1) */
    return (float)((double)(rng_next(r) >> 11) * 0x1p-53 * 2.0 - 1.0);
}

typedef struct {
    uint8_t *base;
    uint8_t *p;
    size_t n;
} guarded;

static guarded guarded_new(size_t n, size_t off) {
    guarded g;
    g.base = pq_malloc_aligned(n + off + GUARD);
    cr_assert_not_null(g.base);
    memset(g.base, POISON, n + off + GUARD);
    g.p = g.base + off;
    g.n = n;
    return g;
}

static void guarded_check(const guarded *g, const char *what) {
    for (size_t i = 0; i < GUARD; i++)
        cr_assert_eq(g->p[g->n + i], POISON, "%s: guard byte %zu after the buffer overwritten",
                     what, i);
    for (uint8_t *q = g->base; q < g->p; q++)
        cr_assert_eq(*q, POISON, "%s: byte before the buffer overwritten", what);
}

/* Same bits, or both NaN (NaN payloads are not part of the contract). */
static int same_f32(float a, float b) {
    if (a != a && b != b) return 1;
    return memcmp(&a, &b, 4) == 0;
}

static const pq_piq_i8_kernels *need_isa(const char *isa) {
    const pq_piq_i8_kernels *k = pq_piq_i8_kernels_for(isa);
    if (!k)
        cr_skip_test("integer PiQ GEMV for ISA %s is not available on this CPU/build: skipped",
                     isa);
    return k;
}

/* A quantized activation row with its own buffer. */
typedef struct {
    pq_piq_i8_act a;
    void *buf;
} act_t;

static act_t act_new(const float *x, int64_t cols, int64_t group) {
    act_t t;
    t.buf = pq_malloc(pq_piq_i8_act_bytes(cols, group));
    cr_assert_not_null(t.buf);
    pq_piq_i8_act_init(&t.a, cols, group, t.buf);
    pq_piq_i8_quantize(x, &t.a);
    return t;
}

/* ---- activation quantizer ---- */

Test(piq_gemv_i8, quantize_hand_cases) {
    /* block 0 (8 values): amax 127 -> s = 1: rne ties and the clamp */
    float x[24] = {127.0f, -127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -2.5f, 3.49f,
                   /* block 1: all zero -> s = 0, codes 0 */
                   0.0f, -0.0f, 0, 0, 0, 0, 0, 0,
                   /* block 2: a NaN -> s = NaN, codes 0 */
                   1.0f, NAN, 2.0f, 0, 0, 0, 0, 0};
    act_t t = act_new(x, 24, 8);
    cr_assert_eq(t.a.nblocks, 3);
    cr_assert_eq(t.a.stride, 64);
    cr_assert_eq(((uintptr_t)t.a.q) % 64, 0, "blocks are 64-byte aligned");
    const int8_t want0[8] = {127, -127, 0, 2, 2, 0, -2, 3};
    for (int j = 0; j < 8; j++)
        cr_assert_eq(t.a.q[j], want0[j], "code %d is %d, want %d", j, t.a.q[j], want0[j]);
    for (int j = 8; j < 64; j++)
        cr_assert_eq(t.a.q[j], 0, "padding code %d is not zero", j);
    cr_assert_eq(t.a.scale[0], 1.0f);
    cr_assert_eq(t.a.sum[0], 127 - 127 + 0 + 2 + 2 + 0 - 2 + 3);
    cr_assert_eq(t.a.scale[1], 0.0f);
    cr_assert_eq(t.a.sum[1], 0);
    cr_assert(isnan(t.a.scale[2]));
    for (int j = 0; j < 64; j++)
        cr_assert_eq(t.a.q[64 + j] | t.a.q[128 + j], 0);
    pq_free(t.buf);

    /* infinity -> NaN scale; G >= cols -> one block of cols values */
    float y[5] = {1.0f, -INFINITY, 0, 0, 0};
    t = act_new(y, 5, 256);
    cr_assert_eq(t.a.nblocks, 1);
    cr_assert(isnan(t.a.scale[0]));
    pq_free(t.buf);

    /* s = amax / 127 in f32; codes = rne(x / s) with an f32 division; the extreme hits 127 */
    float z[3] = {0.3f, -0.1f, 0.2f};
    t = act_new(z, 3, 8);
    float s = 0.3f / 127.0f;
    cr_assert_eq(t.a.scale[0], s);
    cr_assert_eq(t.a.q[0], 127);
    cr_assert_eq(t.a.q[1], (int8_t)nearbyintf(-0.1f / s));
    cr_assert_eq(t.a.q[2], (int8_t)nearbyintf(0.2f / s));
    pq_free(t.buf);

    /* subnormal amax whose scale underflows to 0 -> codes 0, scale 0 */
    float u[2] = {0x1p-149f, 0.0f};
    t = act_new(u, 2, 8);
    cr_assert_eq(t.a.scale[0], 0.0f);
    cr_assert_eq(t.a.q[0], 0);
    pq_free(t.buf);
}

/* The quantizer against the rule written with nearbyintf and float clamps, on random blocks of
 * many magnitudes (subnormal to 1e30) with exact ties x / s = k + 1/2 sprinkled in. */
Test(piq_gemv_i8, quantize_matches_rule) {
    rng_t rng = {99};
    const int64_t groups[] = {8, 24, 256, 1000};
    for (int gi = 0; gi < NELEM(groups); gi++)
        for (int rep = 0; rep < 50; rep++) {
            int64_t cols = 1 + (int64_t)(rng_next(&rng) % 3000), group = groups[gi];
            float mag = ldexpf(1.0f, (int)(rng_next(&rng) % 240) - 140);
            float *x = pq_malloc(sizeof(float) * (size_t)cols);
            for (int64_t c = 0; c < cols; c++)
                x[c] = rng_unif(&rng) * mag;
            /* ties: x = (k + 0.5) * s for a block whose max is 127 s exactly (s a power of 2) */
            if (rep % 3 == 0)
                for (int64_t c = 0; c < cols; c++) {
                    float s = ldexpf(1.0f, -3);
                    x[c] = (c % group == 0)
                               ? 127.0f * s
                               : ((float)((int)(rng_next(&rng) % 253) - 126) + 0.5f) * s;
                }
            act_t t = act_new(x, cols, group);
            for (int64_t g = 0; g < t.a.nblocks; g++) {
                int64_t n = cols - g * group < group ? cols - g * group : group;
                float amax = 0.0f;
                for (int64_t j = 0; j < n; j++)
                    amax = fabsf(x[g * group + j]) > amax ? fabsf(x[g * group + j]) : amax;
                float s = amax / 127.0f;
                cr_assert(same_f32(t.a.scale[g], s), "block %lld scale %g, want %g", (long long)g,
                          t.a.scale[g], s);
                int32_t sum = 0;
                for (int64_t j = 0; j < n; j++) {
                    float v = s == 0.0f ? 0.0f : nearbyintf(x[g * group + j] / s);
                    v = v < -127.0f ? -127.0f : (v > 127.0f ? 127.0f : v);
                    cr_assert_eq(t.a.q[g * t.a.stride + j], (int8_t)v,
                                 "x %.9g / s %.9g: code %d, want %d", x[g * group + j], s,
                                 t.a.q[g * t.a.stride + j], (int)v);
                    sum += (int32_t)v;
                }
                cr_assert_eq(t.a.sum[g], sum);
            }
            pq_free(t.buf);
            pq_free(x);
        }
}

Test(piq_gemv_i8, supported_and_dispatch) {
    cr_assert(pq_piq_i8_supported(PQ_QFORMAT_PIQ3, 8192, 256));
    cr_assert(pq_piq_i8_supported(PQ_QFORMAT_Q2, 10, (int64_t)1 << 40), "G >= cols: one block");
    cr_assert(!pq_piq_i8_supported(PQ_QFORMAT_PIQ3, (int64_t)1 << 22, (int64_t)1 << 22));
    cr_assert(!pq_piq_i8_supported(PQ_QFORMAT_PIQ3, 0, 256));
    cr_assert(!pq_piq_i8_supported(PQ_QFORMAT_PIQ3, 8, 0));
    cr_assert_eq(pq_piq_i8_kernels_for("scalar"), &pq_piq_i8_kernels_scalar);
    cr_assert_null(pq_piq_i8_kernels_for("sse9"));
    cr_assert_null(pq_piq_i8_kernels_for(NULL));
    const pq_piq_i8_kernels *k = pq_piq_i8_kernels_get();
    cr_assert_not_null(k);
    cr_assert_not_null(k->gemv);
    const char *names[] = {"avx2", "avxvnni", "avx512", "neon"};
    for (int i = 0; i < NELEM(names); i++) {
        const pq_piq_i8_kernels *t = pq_piq_i8_kernels_for(names[i]);
        cr_log_info("integer PiQ GEMV %s: %s", names[i], t ? "available" : "not available");
        if (t) cr_assert_str_eq(t->isa, names[i]);
    }
}

/* ---- scalar reference against its formula ---- */

/* Random packed rows (every code pattern, random valid scale words); codes and steps kept. */
static void random_packed(rng_t *r, enum pq_qformat f, int64_t rows, int64_t cols, int64_t group,
                          uint8_t *w, int extreme) {
    size_t row_bytes = pq_packed_row_bytes(f, cols, group);
    int bits = pq_qformat_bits(f);
    for (size_t i = 0; i < row_bytes * (size_t)rows; i++)
        w[i] = (uint8_t)rng_next(r);
    for (int64_t rr = 0; rr < rows; rr++) {
        uint8_t *p = w + (size_t)rr * row_bytes;
        for (int64_t c = 0; c < cols; c += group) {
            int64_t n = cols - c < group ? cols - c : group;
            uint16_t a = pq_scale_clamp((uint16_t)rng_next(r));
            if ((rng_next(r) & 3) != 0) { /* mostly moderate scales */
                float m = 0.01f + fabsf(rng_unif(r));
                a = pq_scale_clamp(pq_f32_to_f16((rng_next(r) & 1) ? m : -m));
            }
            p[0] = (uint8_t)a;
            p[1] = (uint8_t)(a >> 8);
            size_t cb = pq_packed_code_bytes(f, n);
            if (extreme) /* every code the largest unsigned one (q = 2^(bits-1) - 1) */
                memset(p + 2, 0xFF, cb);
            (void)bits;
            p += 2 + cb;
        }
    }
}

Test(piq_gemv_i8, scalar_matches_formula) {
    rng_t rng = {42};
    for (int f = 0; f < PQ_QFORMAT_COUNT; f++)
        for (int gi = 0; gi < NELEM(k_groups); gi++) {
            int64_t rows = 3, cols = 300, group = k_groups[gi];
            size_t row_bytes = pq_packed_row_bytes((enum pq_qformat)f, cols, group);
            uint8_t *w = pq_malloc(row_bytes * (size_t)rows);
            float *x = pq_malloc(sizeof(float) * (size_t)cols);
            float *wh = pq_malloc(sizeof(float) * (size_t)cols);
            random_packed(&rng, (enum pq_qformat)f, rows, cols, group, w, 0);
            for (int64_t c = 0; c < cols; c++)
                x[c] = rng_unif(&rng) * (c % 7 == 0 ? 10.0f : 1.0f);
            act_t t = act_new(x, cols, group);
            float y[3];
            pq_piq_gemv_i8_ukernel__scalar((enum pq_qformat)f, w, rows, cols, group, &t.a, y);
            for (int64_t r = 0; r < rows; r++) {
                /* codes through the dequantizer: q = rne(w_hat / step) (q * step may round) */
                pq_q_dequantize_row_ukernel__scalar((enum pq_qformat)f, w + (size_t)r * row_bytes,
                                                    cols, group, wh);
                const uint8_t *p = w + (size_t)r * row_bytes;
                float acc = 0.0f;
                for (int64_t g = 0; g * group < cols; g++) {
                    int64_t n = cols - g * group < group ? cols - g * group : group;
                    float step = pq_qstep((enum pq_qformat)f, (uint16_t)(p[0] | p[1] << 8));
                    int32_t d = 0;
                    for (int64_t j = 0; j < n; j++)
                        d += (int32_t)nearbyintf(wh[g * group + j] / step) *
                             t.a.q[g * t.a.stride + j];
                    volatile float cg = step * t.a.scale[g];
                    volatile float tt = (float)d * cg;
                    acc = acc + tt;
                    p += 2 + pq_packed_code_bytes((enum pq_qformat)f, n);
                }
                cr_assert(same_f32(y[r], acc), "%s group %lld row %lld: %.9g vs formula %.9g",
                          pq_qformat_name((enum pq_qformat)f), (long long)group, (long long)r, y[r],
                          acc);
                /* the integer path is close to the f32 product: error of x's rounding only */
                double exact = 0.0, bound = 0.0, mag = 0.0;
                for (int64_t c = 0; c < cols; c++) {
                    exact += (double)wh[c] * (double)x[c];
                    mag += fabs((double)wh[c] * (double)x[c]);
                    bound += fabs((double)wh[c]) * 0.5 * (double)t.a.scale[c / group];
                }
                cr_assert(fabs((double)y[r] - exact) <= 1.001 * bound + 1e-5 * mag,
                          "row %lld: %.9g vs exact %.9g (bound %.3g)", (long long)r, y[r], exact,
                          bound);
            }
            pq_free(t.buf);
            pq_free(w);
            pq_free(x);
            pq_free(wh);
        }
}

/* ---- SIMD vs scalar, bit for bit ---- */

static void sweep(const char *isa) {
    const pq_piq_i8_kernels *k = need_isa(isa);
    rng_t rng = {0xC0FFEEULL};
    int cases = 0;
    for (int f = 0; f < PQ_QFORMAT_COUNT; f++)
        for (int ci = 0; ci < NELEM(k_cols); ci++)
            for (int gi = 0; gi < NELEM(k_groups); gi++)
                for (int ri = 0; ri < NELEM(k_rows); ri++) {
                    enum pq_qformat ff = (enum pq_qformat)f;
                    int64_t cols = k_cols[ci], group = k_groups[gi], rows = k_rows[ri];
                    int variant = (int)(rng_next(&rng) % 4);
                    size_t row_bytes = pq_packed_row_bytes(ff, cols, group);
                    /* weights misaligned by 0..3 bytes and ending exactly at the buffer end */
                    size_t woff = (size_t)(ci + ri) % 4;
                    guarded w = guarded_new(row_bytes * (size_t)rows, woff);
                    random_packed(&rng, ff, rows, cols, group, w.p, variant == 3);
                    float *x = pq_malloc(sizeof(float) * (size_t)(cols + 1));
                    x[0] = 0.0f;
                    for (int64_t c = 0; c < cols; c++) {
                        x[c] = rng_unif(&rng);
                        if (variant == 1 && c % 5 == 0) x[c] *= 1000.0f; /* outliers */
                        if (variant == 3) x[c] = (c & 1) ? 1.0f : -1.0f; /* codes +-127 */
                    }
                    if (variant == 2 && cols > 3) x[cols / 2] = NAN;
                    act_t t = act_new(x, cols > 0 ? cols : 1, group);
                    t.a.cols = cols;
                    guarded yr = guarded_new(sizeof(float) * (size_t)rows, 0);
                    guarded yg = guarded_new(sizeof(float) * (size_t)rows, 4 * (size_t)(ri % 3));
                    pq_piq_gemv_i8_ukernel__scalar(ff, w.p, rows, cols, group, &t.a, (float *)yr.p);
                    k->gemv(ff, w.p, rows, cols, group, &t.a, (float *)yg.p);
                    guarded_check(&yg, "y");
                    guarded_check(&w, "w (read only)");
                    if (cols == 0)
                        for (size_t i = 0; i < yg.n; i++)
                            cr_assert_eq(yg.p[i], POISON, "cols 0 wrote y");
                    for (int64_t r = 0; r < rows && cols > 0; r++) {
                        float a = ((float *)yg.p)[r], b = ((float *)yr.p)[r];
                        cr_assert(same_f32(a, b),
                                  "%s %s rows %lld cols %lld group %lld variant %d: y[%lld] = "
                                  "%.9g (%08x), scalar %.9g",
                                  isa, pq_qformat_name(ff), (long long)rows, (long long)cols,
                                  (long long)group, variant, (long long)r, a,
                                  (unsigned)((const uint32_t *)yg.p)[r], b);
                    }
                    pq_free(t.buf);
                    pq_free(x);
                    pq_free(w.base);
                    pq_free(yr.base);
                    pq_free(yg.base);
                    cases++;
                }
    cr_assert_eq(cases, PQ_QFORMAT_COUNT * NELEM(k_cols) * NELEM(k_groups) * NELEM(k_rows));
}

/* One large matrix (16384 columns in groups of 256, and one scale per row) per format. */
static void large(const char *isa) {
    const pq_piq_i8_kernels *k = need_isa(isa);
    rng_t rng = {7};
    const int64_t groups[2] = {256, 1 << 14};
    for (int f = 0; f < PQ_QFORMAT_COUNT; f++)
        for (int gi = 0; gi < 2; gi++) {
            enum pq_qformat ff = (enum pq_qformat)f;
            int64_t rows = 67, cols = 16384, group = groups[gi];
            size_t row_bytes = pq_packed_row_bytes(ff, cols, group);
            guarded w = guarded_new(row_bytes * (size_t)rows, 1);
            random_packed(&rng, ff, rows, cols, group, w.p, 0);
            float *x = pq_malloc(sizeof(float) * (size_t)cols);
            for (int64_t c = 0; c < cols; c++)
                x[c] = rng_unif(&rng) * 3.0f;
            act_t t = act_new(x, cols, group);
            float *yr = pq_malloc(sizeof(float) * (size_t)rows);
            float *yg = pq_malloc(sizeof(float) * (size_t)rows);
            pq_piq_gemv_i8_ukernel__scalar(ff, w.p, rows, cols, group, &t.a, yr);
            k->gemv(ff, w.p, rows, cols, group, &t.a, yg);
            cr_assert(memcmp(yr, yg, sizeof(float) * (size_t)rows) == 0,
                      "%s %s large group %lld differs from scalar", isa, pq_qformat_name(ff),
                      (long long)group);
            pq_free(t.buf);
            pq_free(x);
            pq_free(w.base);
            pq_free(yr);
            pq_free(yg);
        }
}

Test(piq_gemv_i8, avx2_bit_exact) {
    sweep("avx2");
}
Test(piq_gemv_i8, avxvnni_bit_exact) {
    sweep("avxvnni");
}
Test(piq_gemv_i8, avx512_bit_exact) {
    sweep("avx512");
}
Test(piq_gemv_i8, avx2_large) {
    large("avx2");
}
Test(piq_gemv_i8, avxvnni_large) {
    large("avxvnni");
}
Test(piq_gemv_i8, avx512_large) {
    large("avx512");
}

/* ---- PackedMatMul / PackedConv with act_quant = "int8" (backends/packed_piq_i8.h) ---- */

/* Runs the node of t with kernel fn on n_threads threads (pq_tp_run with a thread count). */
static pq_tensor *run_threads(pq_tp *t, pq_kernel_fn fn, int n_threads) {
    pq_error err;
    pq_error_clear(&err);
    const pq_node *n = &t->g->nodes[t->nid];
    cr_assert_eq(pq_infer_node(t->g, t->nid, &err), PQ_OK, "%s", err.msg);
    const pq_tensor *in[8];
    for (uint32_t i = 0; i < n->n_inputs; i++)
        in[i] = n->inputs[i] == PQ_NONE ? NULL : t->g->values[n->inputs[i]].constant;
    const pq_value *v = &t->g->values[n->outputs[0]];
    int64_t dims[PQ_MAX_RANK];
    cr_assert(pq_shape_is_static(&v->shape, dims));
    pq_tensor *out = pq_tp_tensor(v->dtype, v->shape.rank, dims);
    memset(out->data, 0xFF, out->nbytes);
    pq_tensor *outs[1] = {out};
    pq_kernel_args a = {t->g, n, in, n->n_inputs, outs, 1, NULL, n_threads, &err};
    cr_assert_eq(fn(&a), PQ_OK, "%s", err.msg);
    return out;
}

static const pq_qkernels *g_node_isa;
static enum pq_status run_pmm_isa(const pq_kernel_args *a) {
    return pq_piqc_packed_matmul_run(g_node_isa, a);
}
static enum pq_status run_pconv_isa(const pq_kernel_args *a) {
    return pq_piqc_packed_conv_run(g_node_isa, a);
}

/* Random packed weight tensor (u8, SPEC layout) of rows x cols. */
static pq_tensor *packed_tensor(rng_t *rng, enum pq_qformat f, int64_t rows, int64_t cols,
                                int64_t group) {
    int64_t nd[1] = {(int64_t)pq_packed_bytes(f, rows, cols, group)};
    pq_tensor *p = pq_tp_tensor(PQ_DTYPE_U8, 1, nd);
    random_packed(rng, f, rows, cols, group, p->data, 0);
    return p;
}

/* y (M x rows) the definition: per row of x, quantize and run the scalar reference; + bias;
 * Relu when relu. */
static float *expected_rows(enum pq_qformat f, const pq_tensor *w, int64_t rows, int64_t cols,
                            int64_t group, const float *x, int64_t M, const float *bias,
                            bool relu) {
    float *y = pq_malloc(sizeof(float) * (size_t)(M * rows));
    for (int64_t m = 0; m < M; m++) {
        act_t t = act_new(x + m * cols, cols, group);
        pq_piq_gemv_i8_ukernel__scalar(f, w->data, rows, cols, group, &t.a, y + m * rows);
        for (int64_t r = 0; r < rows; r++) {
            float v = y[m * rows + r];
            if (bias) v = v + bias[r];
            if (relu && v < 0.0f) v = 0.0f;
            y[m * rows + r] = v;
        }
        pq_free(t.buf);
    }
    return y;
}

static void assert_bits(const pq_tensor *y, const float *want, int64_t n, const char *what) {
    cr_assert_eq(pq_tensor_numel(y), n, "%s", what);
    const float *a = y->data;
    for (int64_t i = 0; i < n; i++)
        cr_assert(same_f32(a[i], want[i]), "%s: element %lld is %.9g, want %.9g", what,
                  (long long)i, a[i], want[i]);
}

/* PackedMatMul(x [xd], packed, bias) with act_quant = int8: reference table, fast dispatcher,
 * every f32-kernel ISA and 1 / 2 threads all equal the definition bit for bit. */
static void check_pmm_i8(enum pq_qformat f, int rank, const int64_t *xd, int64_t rows,
                         int64_t group, bool bias, bool relu) {
    rng_t rng = {(uint64_t)(rows * 131 + group)};
    int64_t cols = xd[rank - 1];
    pq_tensor *pw = packed_tensor(&rng, f, rows, cols, group);
    pq_tensor *x = pq_tp_rand(rank, xd, 5, 2.0f);
    int64_t bd[1] = {rows};
    pq_tensor *b = bias ? pq_tp_rand(1, bd, 6, 1.0f) : NULL;
    int64_t M = pq_tensor_numel(x) / cols;
    float *want = expected_rows(f, pw, rows, cols, group, x->data, M, b ? b->data : NULL, relu);
    const pq_tensor *in[3] = {x, pw, b};
    pq_tp t = pq_tp_node(PQ_OP_PACKED_MAT_MUL, in, bias ? 3 : 2);
    pq_tp_str(&t, "format", pq_qformat_name(f));
    pq_tp_int(&t, "qgroup", group);
    pq_tp_int(&t, "rows", rows);
    pq_tp_int(&t, "cols", cols);
    pq_tp_str(&t, "act_quant", "int8");
    if (relu) pq_tp_str(&t, "activation", "Relu");
    pq_error err;
    pq_tensor *y;
    cr_assert_eq(pq_tp_run(&t, NULL, &y, &err), PQ_OK, "%s", err.msg);
    assert_bits(y, want, M * rows, "reference kernel");
    pq_tensor_destroy(y);
    for (int th = 1; th <= 2; th++) {
        y = run_threads(&t, pq_kernel_run, th);
        assert_bits(y, want, M * rows, th == 1 ? "fast, 1 thread" : "fast, 2 threads");
        pq_tensor_destroy(y);
    }
    const char *isas[] = {"scalar", "avx2", "avx512"};
    for (int i = 0; i < 3; i++) {
        if (!(g_node_isa = pq_qkernels_for(isas[i]))) continue;
        y = run_threads(&t, run_pmm_isa, 2);
        assert_bits(y, want, M * rows, isas[i]);
        pq_tensor_destroy(y);
    }
    pq_tp_free(&t);
    pq_free(want);
    pq_tensor_destroy(pw);
    pq_tensor_destroy(x);
    pq_tensor_destroy(b);
}

Test(piq_gemv_i8, packed_matmul_act_quant_gemv_and_rows) {
    for (int f = 0; f < PQ_QFORMAT_COUNT; f++) {
        int64_t x1[1] = {300};
        check_pmm_i8((enum pq_qformat)f, 1, x1, 37, 64, true, false);
        int64_t x2[2] = {5, 72};
        check_pmm_i8((enum pq_qformat)f, 2, x2, 17, 32, false, true);
        int64_t x3[3] = {2, 3, 40};
        check_pmm_i8((enum pq_qformat)f, 3, x3, 9, 256, true, true);
    }
    /* enough work for 2 threads to split the weight rows (and M > 1 blocks) */
    int64_t xb[1] = {1024};
    check_pmm_i8(PQ_QFORMAT_PIQ3, 1, xb, 300, 256, true, false);
    int64_t xm[2] = {3, 1024};
    check_pmm_i8(PQ_QFORMAT_PIQ2, 2, xm, 260, 128, false, false);
}

Test(piq_gemv_i8, packed_matmul_bad_act_quant_is_invalid) {
    rng_t rng = {3};
    int64_t xd[1] = {16};
    pq_tensor *pw = packed_tensor(&rng, PQ_QFORMAT_PIQ3, 4, 16, 8);
    pq_tensor *x = pq_tp_rand(1, xd, 1, 1.0f);
    const pq_tensor *in[2] = {x, pw};
    pq_tp t = pq_tp_node(PQ_OP_PACKED_MAT_MUL, in, 2);
    pq_tp_str(&t, "format", "piq3");
    pq_tp_int(&t, "qgroup", 8);
    pq_tp_int(&t, "rows", 4);
    pq_tp_int(&t, "cols", 16);
    pq_tp_str(&t, "act_quant", "int4");
    pq_error err;
    pq_tensor *y;
    cr_assert_eq(pq_tp_run(&t, pq_kernel_run, &y, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "int4") && strstr(err.msg, "act_quant"), "%s", err.msg);
    pq_tensor_destroy(y);
    pq_tp_free(&t);
    pq_tensor_destroy(x);
    pq_tensor_destroy(pw);
}

/* PackedConv 3x3 (pad 1, stride 2, 2 groups) with act_quant = int8 equals the definition on its
 * im2col rows (pq_packed_im2col), bit for bit, at 1 and 2 threads and on every ISA. */
Test(piq_gemv_i8, packed_conv_act_quant_is_per_im2col_row) {
    rng_t rng = {11};
    const int64_t N = 2, C = 6, H = 9, W = 7, OC = 8, G = 2, K = 3;
    const int64_t cg = C / G, cols = cg * K * K, mg = OC / G;
    const int64_t OH = (H + 2 - K) / 2 + 1, OW = (W + 2 - K) / 2 + 1;
    int64_t xd[4] = {N, C, H, W};
    pq_tensor *x = pq_tp_rand(4, xd, 9, 1.5f);
    int64_t bd[1] = {OC};
    pq_tensor *b = pq_tp_rand(1, bd, 10, 0.5f);
    for (int f = 0; f < PQ_QFORMAT_COUNT; f++) {
        enum pq_qformat ff = (enum pq_qformat)f;
        const int64_t group = 16;
        pq_tensor *pw = packed_tensor(&rng, ff, OC, cols, group);
        const pq_tensor *in[3] = {x, pw, b};
        pq_tp t = pq_tp_node(PQ_OP_PACKED_CONV, in, 3);
        int64_t ks[2] = {K, K}, pads[4] = {1, 1, 1, 1}, st[2] = {2, 2};
        pq_tp_ints(&t, "kernel_shape", ks, 2);
        pq_tp_ints(&t, "pads", pads, 4);
        pq_tp_ints(&t, "strides", st, 2);
        pq_tp_int(&t, "group", G);
        pq_tp_str(&t, "format", pq_qformat_name(ff));
        pq_tp_int(&t, "qgroup", group);
        pq_tp_int(&t, "rows", OC);
        pq_tp_int(&t, "cols", cols);
        pq_tp_str(&t, "act_quant", "int8");
        /* the definition: im2col rows of each image and channel group through the GEMV */
        pq_ref_win win;
        int64_t kd[2] = {K, K};
        cr_assert_eq(pq_infer_node(t.g, t.nid, NULL), PQ_OK);
        int64_t yd[4] = {N, OC, OH, OW};
        pq_tensor *ydummy = pq_tp_tensor(PQ_DTYPE_F32, 4, yd);
        pq_ref_window(&t.g->nodes[t.nid], x, kd, ydummy, &win);
        float *want = pq_malloc(sizeof(float) * (size_t)(N * OC * OH * OW));
        float *col = pq_malloc(sizeof(float) * (size_t)(OH * OW * cols + 8));
        size_t row_bytes = pq_packed_row_bytes(ff, cols, group);
        for (int64_t n = 0; n < N; n++)
            for (int64_t g = 0; g < G; g++) {
                const float *xg = (const float *)x->data + (n * C + g * cg) * H * W;
                pq_packed_im2col(xg, cg, &win, 0, OH * OW, col);
                for (int64_t p = 0; p < OH * OW; p++) {
                    act_t a = act_new(col + p * cols, cols, group);
                    float yr[8];
                    pq_piq_gemv_i8_ukernel__scalar(
                        ff, (const uint8_t *)pw->data + (size_t)(g * mg) * row_bytes, mg, cols,
                        group, &a.a, yr);
                    for (int64_t m = 0; m < mg; m++)
                        want[((n * OC) + g * mg + m) * OH * OW + p] =
                            yr[m] + ((const float *)b->data)[g * mg + m];
                    pq_free(a.buf);
                }
            }
        pq_error err;
        pq_tensor *y;
        cr_assert_eq(pq_tp_run(&t, NULL, &y, &err), PQ_OK, "%s", err.msg);
        assert_bits(y, want, N * OC * OH * OW, "PackedConv reference");
        pq_tensor_destroy(y);
        y = run_threads(&t, pq_kernel_run, 2);
        assert_bits(y, want, N * OC * OH * OW, "PackedConv fast, 2 threads");
        pq_tensor_destroy(y);
        const char *isas[] = {"scalar", "avx2", "avx512"};
        for (int i = 0; i < 3; i++) {
            if (!(g_node_isa = pq_qkernels_for(isas[i]))) continue;
            y = run_threads(&t, run_pconv_isa, 1);
            assert_bits(y, want, N * OC * OH * OW, isas[i]);
            pq_tensor_destroy(y);
        }
        pq_free(want);
        pq_free(col);
        pq_tensor_destroy(ydummy);
        pq_tp_free(&t);
        pq_tensor_destroy(pw);
    }
    pq_tensor_destroy(x);
    pq_tensor_destroy(b);
}
