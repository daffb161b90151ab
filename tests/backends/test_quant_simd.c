/* SIMD quantized kernels (AVX2, AVX-512, NEON where runnable) against the scalar reference:
 * codes/packed bytes/dequantized values and the Walsh-Hadamard butterfly bit-exact, gemv/gemm
 * within 1e-5 * sum|w_hat x| of a double-precision reference; plus dispatch and RHT helpers. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backends/cpu.h"
#include "backends/quant/fwht.h"
#include "backends/quant/qdispatch.h"
#include "backends/quant/qkernels.h"
#include "backends/quant/quant.h"
#include "ir/alloc.h"
#include "ir/dtype.h"
#include "ir/packed.h"

/* gemv/gemm bound: |y - y_double| <= PQ_GEMV_RTOL * sum_c |w_hat[c] x[c]| (f32 accumulation in
 * a different order than the scalar kernel; measured errors are ~1e-7 of that sum). */
#define PQ_GEMV_RTOL 1e-5

static const int64_t k_cols[] = {0,  1,  7,  8,   9,   15,  16,   17,  31,
                                 33, 63, 65, 255, 256, 257, 1000, 4096};
static const int64_t k_groups[] = {8, 32, 64, 256};
#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define GUARD 64
#define POISON 0xA5

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

/* A poisoned buffer of n bytes at byte offset off from a 64-byte boundary, with GUARD poisoned
 * bytes after it. */
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

static const char *const k_simd_isas[] = {"avx2", "avx512", "neon"};

static const pq_qkernels *need_isa(const char *isa) {
    const pq_qkernels *k = pq_qkernels_for(isa);
    if (!k) cr_skip_test("ISA %s is not available on this CPU/build: skipped", isa);
    return k;
}

/* Random scale words: clamped f16, random sign (both orientations), magnitudes around 0.05..2. */
static void random_scales(rng_t *r, uint16_t *s, int64_t n, int pow2) {
    for (int64_t i = 0; i < n; i++) {
        float m =
            pow2 ? ldexpf(1.0f, (int)(rng_next(r) % 5) - 3) : 0.05f + 2.0f * fabsf(rng_unif(r));
        if (rng_next(r) & 1) m = -m;
        s[i] = pq_scale_clamp(pq_f32_to_f16(m));
    }
}

/* Weights of one row: random in about +-5 steps, with exact ties, NaN, infinities and huge
 * values sprinkled in when special is set. */
static void random_row(rng_t *r, enum pq_qformat f, const uint16_t *scales, int64_t cols,
                       int64_t group, float *w, int special) {
    for (int64_t c = 0; c < cols; c++) {
        float step = pq_qstep(f, scales[c / group]);
        uint64_t k = rng_next(r) % 16;
        int n = (int)(rng_next(r) % 11) - 5;
        if (k < 4)
            w[c] = ((float)n + 0.5f) * step; /* tie (exact when step is a power of two) */
        else if (special && k == 4)
            w[c] = NAN;
        else if (special && k == 5)
            w[c] = (rng_next(r) & 1) ? INFINITY : -INFINITY;
        else if (special && k == 6)
            w[c] = (rng_next(r) & 1) ? 3e38f : -1e30f;
        else if (special && k == 7)
            w[c] = (rng_next(r) & 1) ? 0.0f : -0.0f;
        else
            w[c] = rng_unif(r) * 5.5f * step;
    }
}

static void sweep_quantize(const char *isa) {
    const pq_qkernels *k = need_isa(isa);
    rng_t rng = {0x1234567ULL};
    int cases = 0;
    for (int f = 0; f < PQ_QFORMAT_COUNT; f++)
        for (int ci = 0; ci < NELEM(k_cols); ci++)
            for (int gi = 0; gi < NELEM(k_groups); gi++) {
                int64_t cols = k_cols[ci], group = k_groups[gi];
                int64_t ngroups = cols > 0 ? (cols + group - 1) / group : 0;
                size_t bytes = pq_packed_row_bytes((enum pq_qformat)f, cols, group);
                for (int variant = 0; variant < 3; variant++) {
                    size_t off = (size_t)(variant + 1); /* misaligned by 1..3 floats / bytes */
                    uint16_t *scales = pq_malloc(sizeof(uint16_t) * (size_t)(ngroups + 1));
                    guarded w = guarded_new(sizeof(float) * (size_t)cols, 4 * off);
                    float *wf = (float *)w.p;
                    random_scales(&rng, scales, ngroups, variant == 1);
                    random_row(&rng, (enum pq_qformat)f, scales, cols, group, wf, variant == 2);
                    guarded ref = guarded_new(bytes, 0), got = guarded_new(bytes, off);
                    pq_qkernels_scalar.quantize_row((enum pq_qformat)f, wf, cols, group, scales,
                                                    ref.p);
                    k->quantize_row((enum pq_qformat)f, wf, cols, group, scales, got.p);
                    guarded_check(&got, "quantize_row");
                    for (size_t i = 0; i < bytes; i++)
                        cr_assert_eq(got.p[i], ref.p[i],
                                     "%s quantize %s cols %lld group %lld variant %d: byte %zu "
                                     "is %02x, scalar %02x",
                                     isa, pq_qformat_name((enum pq_qformat)f), (long long)cols,
                                     (long long)group, variant, i, got.p[i], ref.p[i]);
                    /* dequantize the packed row, output misaligned by off floats */
                    guarded dref = guarded_new(sizeof(float) * (size_t)cols, 0);
                    guarded dgot = guarded_new(sizeof(float) * (size_t)cols, 4 * off);
                    pq_qkernels_scalar.dequantize_row((enum pq_qformat)f, ref.p, cols, group,
                                                      (float *)dref.p);
                    k->dequantize_row((enum pq_qformat)f, got.p, cols, group, (float *)dgot.p);
                    guarded_check(&dgot, "dequantize_row");
                    cr_assert(memcmp(dgot.p, dref.p, sizeof(float) * (size_t)cols) == 0,
                              "%s dequantize %s cols %lld group %lld differs from scalar", isa,
                              pq_qformat_name((enum pq_qformat)f), (long long)cols,
                              (long long)group);
                    pq_free(scales);
                    pq_free(w.base);
                    pq_free(ref.base);
                    pq_free(got.base);
                    pq_free(dref.base);
                    pq_free(dgot.base);
                    cases++;
                }
            }
    cr_assert_eq(cases, PQ_QFORMAT_COUNT * NELEM(k_cols) * NELEM(k_groups) * 3);
}

/* Dequantize random bytes (any code pattern, non-zero padding codes). */
static void sweep_dequantize_random(const char *isa) {
    const pq_qkernels *k = need_isa(isa);
    rng_t rng = {99};
    for (int f = 0; f < PQ_QFORMAT_COUNT; f++)
        for (int ci = 0; ci < NELEM(k_cols); ci++)
            for (int gi = 0; gi < NELEM(k_groups); gi++) {
                int64_t cols = k_cols[ci], group = k_groups[gi];
                size_t bytes = pq_packed_row_bytes((enum pq_qformat)f, cols, group);
                guarded src = guarded_new(bytes, 3);
                for (size_t i = 0; i < bytes; i++)
                    src.p[i] = (uint8_t)rng_next(&rng);
                /* valid scale words */
                uint8_t *p = src.p;
                for (int64_t c = 0; c < cols; c += group) {
                    int64_t n = cols - c < group ? cols - c : group;
                    uint16_t a = pq_scale_clamp((uint16_t)rng_next(&rng));
                    p[0] = (uint8_t)a;
                    p[1] = (uint8_t)(a >> 8);
                    p += 2 + pq_packed_code_bytes((enum pq_qformat)f, n);
                }
                guarded dref = guarded_new(sizeof(float) * (size_t)cols, 0);
                guarded dgot = guarded_new(sizeof(float) * (size_t)cols, 8);
                pq_qkernels_scalar.dequantize_row((enum pq_qformat)f, src.p, cols, group,
                                                  (float *)dref.p);
                k->dequantize_row((enum pq_qformat)f, src.p, cols, group, (float *)dgot.p);
                guarded_check(&dgot, "dequantize_row");
                cr_assert(memcmp(dgot.p, dref.p, sizeof(float) * (size_t)cols) == 0,
                          "%s dequantize(random bytes) %s cols %lld group %lld differs", isa,
                          pq_qformat_name((enum pq_qformat)f), (long long)cols, (long long)group);
                pq_free(src.base);
                pq_free(dref.base);
                pq_free(dgot.base);
            }
}

/* gemv (batch 0 means gemv) and gemm vs a double reference over the dequantized matrix. */
static void sweep_gemm(const char *isa, int use_gemm) {
    const pq_qkernels *k = need_isa(isa);
    rng_t rng = {777};
    double worst = 0.0;
    for (int f = 0; f < PQ_QFORMAT_COUNT; f++)
        for (int ci = 0; ci < NELEM(k_cols); ci++)
            for (int gi = 0; gi < NELEM(k_groups); gi++)
                for (int64_t rows = 1; rows <= 5; rows++) {
                    int64_t cols = k_cols[ci], group = k_groups[gi];
                    if (cols == 0) continue;
                    int64_t batch = use_gemm ? 1 + (int64_t)(rng_next(&rng) % 7) : 1;
                    int64_t ngroups = (cols + group - 1) / group;
                    size_t row_bytes = pq_packed_row_bytes((enum pq_qformat)f, cols, group);
                    float *w = pq_malloc(sizeof(float) * (size_t)cols);
                    float *what = pq_malloc(sizeof(float) * (size_t)(rows * cols));
                    uint16_t *scales = pq_malloc(sizeof(uint16_t) * (size_t)ngroups);
                    guarded packed = guarded_new(row_bytes * (size_t)rows, 1 + (size_t)rows % 3);
                    for (int64_t r = 0; r < rows; r++) {
                        random_scales(&rng, scales, ngroups, 0);
                        random_row(&rng, (enum pq_qformat)f, scales, cols, group, w, 0);
                        pq_qkernels_scalar.quantize_row((enum pq_qformat)f, w, cols, group, scales,
                                                        packed.p + (size_t)r * row_bytes);
                        pq_qkernels_scalar.dequantize_row((enum pq_qformat)f,
                                                          packed.p + (size_t)r * row_bytes, cols,
                                                          group, what + r * cols);
                    }
                    guarded x =
                        guarded_new(sizeof(float) * (size_t)(batch * cols), 4 * (size_t)(rows % 4));
                    float *xf = (float *)x.p;
                    for (int64_t i = 0; i < batch * cols; i++)
                        xf[i] = rng_unif(&rng);
                    guarded y = guarded_new(sizeof(float) * (size_t)(batch * rows), 4);
                    float *yf = (float *)y.p;
                    if (use_gemm)
                        k->gemm((enum pq_qformat)f, packed.p, rows, cols, group, xf, batch, yf);
                    else
                        k->gemv((enum pq_qformat)f, packed.p, rows, cols, group, xf, yf);
                    guarded_check(&y, use_gemm ? "gemm" : "gemv");
                    guarded_check(&packed, "packed weights (read only)");
                    for (int64_t b = 0; b < batch; b++)
                        for (int64_t r = 0; r < rows; r++) {
                            double ref = 0.0, mag = 0.0;
                            for (int64_t c = 0; c < cols; c++) {
                                double p = (double)what[r * cols + c] * (double)xf[b * cols + c];
                                ref += p;
                                mag += fabs(p);
                            }
                            double err = fabs((double)yf[b * rows + r] - ref);
                            if (mag > 0 && err / mag > worst) worst = err / mag;
                            cr_assert(
                                err <= PQ_GEMV_RTOL * mag + 1e-30,
                                "%s %s %s rows %lld cols %lld group %lld batch %lld: y[%lld][%lld] "
                                "= %.9g, reference %.9g (sum|wx| %.3g)",
                                isa, use_gemm ? "gemm" : "gemv",
                                pq_qformat_name((enum pq_qformat)f), (long long)rows,
                                (long long)cols, (long long)group, (long long)batch, (long long)b,
                                (long long)r, yf[b * rows + r], ref, mag);
                        }
                    pq_free(w);
                    pq_free(what);
                    pq_free(scales);
                    pq_free(packed.base);
                    pq_free(x.base);
                    pq_free(y.base);
                }
    cr_log_info("%s %s: worst |err| / sum|w x| = %.3g (bound %.0e)", isa,
                use_gemm ? "gemm" : "gemv", worst, PQ_GEMV_RTOL);
}

/* Larger gemm shapes that cross the column tile and several row tiles. */
static void gemm_large(const char *isa) {
    const pq_qkernels *k = need_isa(isa);
    rng_t rng = {4242};
    /* rows x cols / group, batch: the last four cross the blocked gemm's tiles: 12 (AVX-512) and
     * 6 (AVX2) activation rows with tails, 32 / 16 panel rows with tails, 256-column chunks */
    const int64_t shapes[][4] = {{9, 2500, 64, 6},  {13, 3000, 2048, 4}, {6, 1029, 1024, 3},
                                 {45, 600, 64, 29}, {16, 72, 256, 100},  {70, 520, 8, 13},
                                 {33, 300, 32, 2}};
    for (int s = 0; s < (int)NELEM(shapes); s++)
        for (int f = 0; f < PQ_QFORMAT_COUNT; f++) {
            int64_t rows = shapes[s][0], cols = shapes[s][1], group = shapes[s][2],
                    batch = shapes[s][3];
            int64_t ngroups = (cols + group - 1) / group;
            size_t row_bytes = pq_packed_row_bytes((enum pq_qformat)f, cols, group);
            uint8_t *packed = pq_malloc(row_bytes * (size_t)rows);
            float *w = pq_malloc(sizeof(float) * (size_t)cols);
            float *x = pq_malloc(sizeof(float) * (size_t)(cols * batch));
            float *y = pq_malloc(sizeof(float) * (size_t)(rows * batch));
            float *yref = pq_malloc(sizeof(float) * (size_t)(rows * batch));
            float *yv = pq_malloc(sizeof(float) * (size_t)rows);
            uint16_t *scales = pq_malloc(sizeof(uint16_t) * (size_t)ngroups);
            for (int64_t r = 0; r < rows; r++) {
                random_scales(&rng, scales, ngroups, 0);
                random_row(&rng, (enum pq_qformat)f, scales, cols, group, w, 0);
                pq_qkernels_scalar.quantize_row((enum pq_qformat)f, w, cols, group, scales,
                                                packed + (size_t)r * row_bytes);
            }
            for (int64_t i = 0; i < cols * batch; i++)
                x[i] = rng_unif(&rng);
            k->gemm((enum pq_qformat)f, packed, rows, cols, group, x, batch, y);
            pq_qkernels_scalar.gemm((enum pq_qformat)f, packed, rows, cols, group, x, batch, yref);
            for (int64_t b = 0; b < batch; b++) {
                k->gemv((enum pq_qformat)f, packed, rows, cols, group, x + b * cols, yv);
                for (int64_t r = 0; r < rows; r++) {
                    /* 1e-5 * (generous) magnitude: all |x| < 1, |w_hat| <= 4 |step| < 12 */
                    double mag = 0;
                    float *tmp = pq_malloc(sizeof(float) * (size_t)cols);
                    pq_qkernels_scalar.dequantize_row(
                        (enum pq_qformat)f, packed + (size_t)r * row_bytes, cols, group, tmp);
                    for (int64_t c = 0; c < cols; c++)
                        mag += fabs((double)tmp[c] * x[b * cols + c]);
                    pq_free(tmp);
                    double e1 = fabs((double)y[b * rows + r] - yref[b * rows + r]);
                    double e2 = fabs((double)yv[r] - yref[b * rows + r]);
                    cr_assert(e1 <= 2 * PQ_GEMV_RTOL * mag,
                              "%s gemm large shape %d %s y[%lld][%lld]", isa, s,
                              pq_qformat_name((enum pq_qformat)f), (long long)b, (long long)r);
                    cr_assert(e2 <= 2 * PQ_GEMV_RTOL * mag, "%s gemv large shape %d", isa, s);
                }
            }
            pq_free(packed);
            pq_free(w);
            pq_free(x);
            pq_free(y);
            pq_free(yref);
            pq_free(yv);
            pq_free(scales);
        }
}

/* ---- FWHT ------------------------------------------------------------------------------- */

/* H * H = n I exactly: transforming column k of H (= H e_k) again gives n e_k. */
static void fwht_hadamard_exact(const pq_qkernels *k, const char *isa) {
    for (int64_t n = 8; n <= 1024; n *= 2) {
        float *v = pq_malloc_aligned(sizeof(float) * (size_t)n);
        for (int64_t c = 0; c < n; c++) {
            memset(v, 0, sizeof(float) * (size_t)n);
            v[c] = 1.0f;
            k->fwht(v, n, 1.0f);
            for (int64_t i = 0; i < n; i++) {
                /* H[i][c] = (-1)^popcount(i & c) for Sylvester's natural order */
                float e = (__builtin_popcountll((unsigned long long)(i & c)) & 1) ? -1.0f : 1.0f;
                cr_assert_eq(v[i], e, "%s fwht n %lld: H[%lld][%lld] = %g", isa, (long long)n,
                             (long long)i, (long long)c, v[i]);
            }
            k->fwht(v, n, 1.0f);
            for (int64_t i = 0; i < n; i++)
                cr_assert_eq(v[i], i == c ? (float)n : 0.0f, "%s: (H H)[%lld][%lld] = %g", isa,
                             (long long)i, (long long)c, v[i]);
        }
        pq_free(v);
    }
}

Test(quant_simd, fwht_scalar_hadamard_exact) {
    fwht_hadamard_exact(&pq_qkernels_scalar, "scalar");
}

static void fwht_vs_scalar(const char *isa) {
    const pq_qkernels *k = need_isa(isa);
    fwht_hadamard_exact(k, isa);
    rng_t rng = {31337};
    for (int64_t n = 8; n <= 65536; n *= 2)
        for (int64_t rows = 1; rows <= 3; rows++) {
            size_t off = (size_t)(n + rows) % 4; /* misaligned by 0..3 floats */
            size_t total = (size_t)(rows * n);
            guarded a = guarded_new(sizeof(float) * total, 4 * off);
            float *ref = pq_malloc(sizeof(float) * total);
            float *x = (float *)a.p;
            for (size_t i = 0; i < total; i++)
                ref[i] = x[i] = rng_unif(&rng) * 100.0f;
            float scale = (float)(1.0 / sqrt((double)n));
            if (rows == 1) {
                k->fwht(x, n, scale);
                pq_qkernels_scalar.fwht(ref, n, scale);
            } else {
                k->fwht_rows(x, rows, n, scale);
                pq_qkernels_scalar.fwht_rows(ref, rows, n, scale);
            }
            guarded_check(&a, "fwht");
            cr_assert(memcmp(x, ref, sizeof(float) * total) == 0,
                      "%s fwht n %lld rows %lld not bit-identical to scalar", isa, (long long)n,
                      (long long)rows);
            pq_free(a.base);
            pq_free(ref);
        }
}

/* ---- per-ISA tests ------------------------------------------------------------------------ */

#define PQ_ISA_TESTS(isa)                                                                          \
    Test(quant_simd, isa##_quantize_dequantize_bitexact, .timeout = 120) {                         \
        sweep_quantize(#isa);                                                                      \
    }                                                                                              \
    Test(quant_simd, isa##_dequantize_random_bytes) {                                              \
        sweep_dequantize_random(#isa);                                                             \
    }                                                                                              \
    Test(quant_simd, isa##_gemv_bound, .timeout = 120) {                                           \
        sweep_gemm(#isa, 0);                                                                       \
    }                                                                                              \
    Test(quant_simd, isa##_gemm_bound, .timeout = 120) {                                           \
        sweep_gemm(#isa, 1);                                                                       \
    }                                                                                              \
    Test(quant_simd, isa##_gemm_large, .timeout = 120) {                                           \
        gemm_large(#isa);                                                                          \
    }                                                                                              \
    Test(quant_simd, isa##_fwht_bitexact, .timeout = 120) {                                        \
        fwht_vs_scalar(#isa);                                                                      \
    }

PQ_ISA_TESTS(avx2)
PQ_ISA_TESTS(avx512)
PQ_ISA_TESTS(neon)

Test(quant_simd, packing_test_vectors_all_isas) {
    /* SPEC: q = [-4..3] -> 88 C6 FA (PiQ3 layout, uniform Q3 with step 1 gives q = w);
     * q = [-2,-1,0,1] (+ zeros) -> E4 (PiQ2 layout). */
    const float w3[8] = {-4, -3, -2, -1, 0, 1, 2, 3};
    const float w2[8] = {-2, -1, 0, 1, 0, 0, 0, 0};
    const uint16_t one = 0x3C00;
    int tested = 0;
    for (int i = -1; i < NELEM(k_simd_isas); i++) {
        const pq_qkernels *k = i < 0 ? &pq_qkernels_scalar : pq_qkernels_for(k_simd_isas[i]);
        if (!k) continue;
        uint8_t out[8];
        k->quantize_row(PQ_QFORMAT_Q3, w3, 8, 8, &one, out);
        cr_assert(out[0] == 0x00 && out[1] == 0x3C && out[2] == 0x88 && out[3] == 0xC6 &&
                      out[4] == 0xFA,
                  "%s: Q3 packing %02x %02x %02x", k->isa, out[2], out[3], out[4]);
        k->quantize_row(PQ_QFORMAT_Q2, w2, 8, 8, &one, out);
        cr_assert(out[2] == 0xE4 && out[3] == 0xAA, "%s: Q2 packing %02x %02x", k->isa, out[2],
                  out[3]);
        tested++;
    }
    cr_assert_geq(tested, 1);
}

/* ---- dispatch ----------------------------------------------------------------------------- */

Test(quant_simd, dispatch_tables) {
    const pq_qkernels *best = pq_qkernels_get();
    cr_assert_not_null(best);
    cr_assert_not_null(best->gemv);
    cr_assert_eq(pq_qkernels_for("scalar"), &pq_qkernels_scalar);
    cr_assert_null(pq_qkernels_for("sse9"));
    cr_assert_null(pq_qkernels_for(NULL));
    cr_assert_eq(pq_qkernels_select("scalar", 0), &pq_qkernels_scalar);
    cr_assert_eq(pq_qkernels_select("no-such-isa", 0), &pq_qkernels_scalar);
    if (pq_cpu_has_avx2()) {
        cr_assert_eq(pq_qkernels_for("avx2"), &pq_qkernels_avx2);
        cr_assert_eq(pq_qkernels_select("avx2", 0), &pq_qkernels_avx2);
        cr_assert_str_eq(pq_qkernels_select(NULL, 0)->isa, pq_cpu_has_avx512() ? "avx512" : "avx2");
    }
    if (!pq_cpu_has_avx512()) {
        cr_assert_null(pq_qkernels_for("avx512"));
        cr_assert_eq(pq_qkernels_select("avx512", 0), &pq_qkernels_scalar); /* fallback */
    }
    if (!pq_cpu_has_neon()) cr_assert_null(pq_qkernels_for("neon"));
    const char *forced = pq_isa_forced();
    if (forced && pq_cpu_supports_isa(forced)) cr_assert_str_eq(best->isa, forced);
}

/* ---- randomised Hadamard ------------------------------------------------------------------ */

Test(quant_simd, rht_sign_vector) {
    const float expect[16] = {-1, 1, 1, -1, -1, 1, 1, 1, 1, 1, 1, -1, -1, 1, -1, 1};
    float s[16];
    pq_rht_signs(42, 16, s);
    for (int i = 0; i < 16; i++)
        cr_assert_eq(s[i], expect[i], "sign %d", i);
}

Test(quant_simd, rht_block_size) {
    int64_t b = 0;
    cr_assert_eq(pq_rht_block_size(4096, &b, NULL), PQ_OK);
    cr_assert_eq(b, 4096);
    cr_assert_eq(pq_rht_block_size(768, &b, NULL), PQ_OK);
    cr_assert_eq(b, 256);
    cr_assert_eq(pq_rht_block_size(3 * 131072, &b, NULL), PQ_OK);
    cr_assert_eq(b, 65536);
    cr_assert_eq(pq_rht_block_size(262144, &b, NULL), PQ_OK);
    cr_assert_eq(b, 65536);
    cr_assert_eq(pq_rht_block_size(8, &b, NULL), PQ_OK);
    cr_assert_eq(b, 8);
    pq_error err;
    pq_error_clear(&err);
    cr_assert_eq(pq_rht_block_size(12, &b, &err), PQ_ERR_UNSUPPORTED);
    cr_assert(strstr(err.msg, "12") != NULL, "message names the length: %s", err.msg);
    cr_assert_eq(pq_rht_block_size(0, &b, NULL), PQ_ERR_UNSUPPORTED);
    float x[12] = {1, 2, 3};
    cr_assert_eq(pq_rht_forward(x, 12, 1, NULL), PQ_ERR_UNSUPPORTED);
    cr_assert_eq(x[0], 1.0f); /* untouched on error */
}

Test(quant_simd, rht_forward_definition_and_roundtrip) {
    const int64_t lens[] = {8, 24, 256, 768, 4096, 12288, 65536, 3 * 65536};
    rng_t rng = {5};
    for (int li = 0; li < NELEM(lens); li++) {
        int64_t n = lens[li], b = 0;
        cr_assert_eq(pq_rht_block_size(n, &b, NULL), PQ_OK);
        float *x = pq_malloc(sizeof(float) * (size_t)n);
        float *y = pq_malloc(sizeof(float) * (size_t)n);
        float *s = pq_malloc(sizeof(float) * (size_t)n);
        float *orig = pq_malloc(sizeof(float) * (size_t)n);
        float maxabs = 0;
        double norm0 = 0, norm1 = 0;
        for (int64_t i = 0; i < n; i++) {
            orig[i] = x[i] = y[i] = rng_unif(&rng) * 3.0f;
            maxabs = fmaxf(maxabs, fabsf(x[i]));
            norm0 += (double)x[i] * x[i];
        }
        /* definition: blockdiag(H_b) D x / sqrt(b) with the scalar butterfly */
        pq_rht_signs(77, n, s);
        for (int64_t i = 0; i < n; i++)
            y[i] *= s[i];
        pq_fwht_rows_ukernel__scalar(y, n / b, b, (float)(1.0 / sqrt((double)b)));
        cr_assert_eq(pq_rht_forward(x, n, 77, NULL), PQ_OK);
        cr_assert(memcmp(x, y, sizeof(float) * (size_t)n) == 0, "rht forward n %lld", (long long)n);
        for (int64_t i = 0; i < n; i++)
            norm1 += (double)x[i] * x[i];
        cr_assert(fabs(norm1 - norm0) <= 1e-5 * norm0, "norm preserved n %lld", (long long)n);
        cr_assert_eq(pq_rht_inverse(x, n, 77, NULL), PQ_OK);
        /* back to the input within a few ulp of max|x| per butterfly stage */
        int m = 0;
        while (((int64_t)1 << m) < b)
            m++;
        double tol = 2.0 * m * (double)maxabs * 0x1p-23;
        for (int64_t i = 0; i < n; i++)
            cr_assert(fabs((double)x[i] - orig[i]) <= tol, "roundtrip n %lld i %lld: %g vs %g",
                      (long long)n, (long long)i, x[i], orig[i]);
        pq_free(x);
        pq_free(y);
        pq_free(s);
        pq_free(orig);
    }
}

Test(quant_simd, rht_rows_match_single) {
    float a[3 * 24], b[3 * 24];
    for (int i = 0; i < 72; i++)
        a[i] = b[i] = (float)(i % 7) - 3.0f;
    cr_assert_eq(pq_rht_forward_rows(a, 3, 24, 9, NULL), PQ_OK);
    for (int r = 0; r < 3; r++)
        cr_assert_eq(pq_rht_forward(b + 24 * r, 24, 9, NULL), PQ_OK);
    cr_assert(memcmp(a, b, sizeof a) == 0);
    cr_assert_eq(pq_rht_inverse_rows(a, 3, 24, 9, NULL), PQ_OK);
    for (int i = 0; i < 72; i++)
        cr_assert_float_eq(a[i], (float)(i % 7) - 3.0f, 1e-5);
}
