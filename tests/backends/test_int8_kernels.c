/* INT8 QLinearConv / QLinearMatMul kernels (backends/int8/) against the reference kernels, bit for
 * bit, for every ISA the CPU runs (scalar, avx2 widening, avxvnni, avx512 VNNI; others skipped
 * visibly): size sweeps with tails, zero points 0/128/255, per-tensor and per-channel scales,
 * strides, pads, dilation, depthwise, groups, 1x1, extreme bytes that would saturate vpmaddubsw,
 * degenerate scales, poisoned output guards, unsupported cases and the fast-table dispatch. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backends/cpu.h"
#include "backends/fast.h"
#include "backends/int8/int8_conv_small.h"
#include "backends/int8/int8_gemm.h"
#include "backends/int8/int8_ops.h"
#include "backends/onednn/onednn.h"
#include "backends/ref/ref.h"
#include "ir/alloc.h"
#include "ir/ir.h"
#include "skip_note.h"

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

static const pq_i8_kernels *need_isa(enum pq_i8_isa isa) {
    const pq_i8_kernels *k = pq_i8_kernels_for(isa);
    if (!k) cr_skip_test("ISA %s is not available on this CPU/build: skipped", pq_i8_isa_name(isa));
    return k;
}

/* ---- a one-node graph and its tensors ---- */

typedef struct {
    pq_graph *g;
    uint32_t nid;
    pq_error err;
    pq_tensor *in[9];
    uint32_t n_in;
} qcase;

static void qcase_init(qcase *c, enum pq_op op, uint32_t nin) {
    memset(c, 0, sizeof *c);
    c->g = pq_graph_create(NULL, &c->err);
    cr_assert_not_null(c->g);
    uint32_t ins[9], out;
    for (uint32_t i = 0; i < nin; i++)
        cr_assert_eq(pq_graph_add_value(c->g, NULL, PQ_DTYPE_UNDEFINED, NULL, &ins[i], &c->err),
                     PQ_OK);
    cr_assert_eq(pq_graph_add_value(c->g, NULL, PQ_DTYPE_UNDEFINED, NULL, &out, &c->err), PQ_OK);
    cr_assert_eq(pq_graph_add_node(c->g, op, "q", ins, nin, &out, 1, &c->nid, &c->err), PQ_OK);
    c->n_in = nin;
}

static void qcase_free(qcase *c) {
    for (uint32_t i = 0; i < c->n_in; i++)
        pq_tensor_destroy(c->in[i]);
    pq_graph_destroy(c->g);
}

static pq_tensor *tens(enum pq_dtype dt, int rank, const int64_t *dims) {
    pq_error err;
    pq_tensor *t = pq_tensor_create(dt, rank, dims, &err);
    cr_assert_not_null(t);
    return t;
}

static pq_tensor *scalar(enum pq_dtype dt, double v) {
    pq_tensor *t = tens(dt, 0, NULL);
    pq_dtype_store(dt, t->data, 0, v);
    return t;
}

/* An output tensor whose data sits in a poisoned buffer with GUARD bytes on both sides. */
typedef struct {
    pq_tensor *t;
    uint8_t *base;
    void *own;
} gout;

static gout gout_new(int rank, const int64_t *dims) {
    gout o;
    o.t = tens(PQ_DTYPE_U8, rank, dims);
    size_t n = o.t->nbytes;
    o.base = pq_malloc(n + 2 * GUARD + 1);
    cr_assert_not_null(o.base);
    memset(o.base, POISON, n + 2 * GUARD + 1);
    o.own = o.t->data;
    o.t->data = o.base + GUARD + 1; /* misaligned on purpose */
    return o;
}

static void gout_check(const gout *o, const char *what) {
    size_t n = o->t->nbytes;
    for (size_t i = 0; i < GUARD + 1; i++)
        cr_assert_eq(o->base[i], POISON, "%s: byte before the output overwritten", what);
    for (size_t i = 0; i < GUARD; i++)
        cr_assert_eq(o->base[GUARD + 1 + n + i], POISON, "%s: guard byte %zu overwritten", what, i);
}

static void gout_free(gout *o) {
    o->t->data = o->own;
    pq_tensor_destroy(o->t);
    pq_free(o->base);
}

static int64_t g_compared; /* output bytes compared bit for bit (reported per test) */
static int64_t g_distinct; /* distinct output values per case, summed (outputs not saturated) */

/* Runs the reference and kernels k (NULL: the fast table through pq_kernel_run) on c, output
 * shape dims; asserts equal bytes and intact guards. */
static void compare(qcase *c, const pq_i8_kernels *k, int rank, const int64_t *dims,
                    enum pq_status (*run)(const pq_i8_kernels *, const pq_kernel_args *),
                    const char *what) {
    gout r = gout_new(rank, dims), f = gout_new(rank, dims);
    pq_tensor *ro[1] = {r.t}, *fo[1] = {f.t};
    pq_kernel_args a = {
        c->g,   &c->g->nodes[c->nid], (const pq_tensor *const *)c->in, c->n_in, ro, 1, NULL, 1,
        &c->err};
    cr_assert_eq(pq_ref_run(&a), PQ_OK, "%s: reference: %s", what, c->err.msg);
    a.out = fo;
    enum pq_status st = k ? run(k, &a) : pq_kernel_run(&a);
    cr_assert_eq(st, PQ_OK, "%s: int8 kernel status %d: %s", what, (int)st, c->err.msg);
    size_t n = r.t->nbytes;
    const uint8_t *yr = r.t->data, *yf = f.t->data;
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(yf[i], yr[i], "%s: element %zu: %u, reference %u", what, i, yf[i], yr[i]);
    uint8_t seen[256] = {0};
    for (size_t i = 0; i < n; i++)
        seen[yr[i]] = 1;
    for (int v = 0; v < 256; v++)
        g_distinct += seen[v];
    gout_check(&r, what);
    gout_check(&f, what);
    g_compared += (int64_t)n;
    gout_free(&r);
    gout_free(&f);
}

/* Fills u8 / s8 data: random, or extremes (x 255, w alternating -128/127) when ext. */
static void fill_u8(rng_t *r, pq_tensor *t, int ext) {
    uint8_t *p = t->data;
    for (size_t i = 0; i < t->nbytes; i++)
        p[i] = ext ? 255 : (uint8_t)(rng_next(r) >> 40);
}
static void fill_s8(rng_t *r, pq_tensor *t, int ext) {
    int8_t *p = t->data;
    for (size_t i = 0; i < t->nbytes; i++) {
        if (ext)
            p[i] = (i / 2) % 2 ? 127 : -128;
        else {
            int v = (int)(rng_next(r) % 255) - 127; /* symmetric [-127, 127], some -128 too */
            p[i] = (int8_t)(rng_next(r) % 50 == 0 ? -128 : v);
        }
    }
}

static double scale_of(rng_t *r) {
    return ldexp(0.5 + (double)(rng_next(r) >> 11) * 0x1p-53, -(int)(rng_next(r) % 8) - 4);
}

/* ---- QLinearMatMul ---- */

static const int64_t mm_M[] = {1, 7, 50}, mm_N[] = {1, 5, 16, 33}, mm_K[] = {1, 3, 17, 64, 100};
static const int zps[] = {0, 128, 255};
#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void matmul_case(const pq_i8_kernels *k, rng_t *r, int64_t M, int64_t N, int64_t K, int zpx,
                        int per_col, int ext, int batch, double ys) {
    qcase c;
    qcase_init(&c, PQ_OP_QLINEAR_MATMUL, 8);
    int64_t da[3] = {batch, M, K}, db[2] = {K, N}, dy[3] = {batch, M, N}, dn[1] = {N};
    int ra = batch > 1 ? 3 : 2;
    c.in[0] = tens(PQ_DTYPE_U8, ra, batch > 1 ? da : da + 1);
    fill_u8(r, c.in[0], ext);
    c.in[1] = scalar(PQ_DTYPE_F32, scale_of(r));
    c.in[2] = scalar(PQ_DTYPE_U8, zpx);
    c.in[3] = tens(PQ_DTYPE_I8, 2, db);
    fill_s8(r, c.in[3], ext);
    if (per_col) {
        c.in[4] = tens(PQ_DTYPE_F32, 1, dn);
        for (int64_t i = 0; i < N; i++)
            ((float *)c.in[4]->data)[i] = (float)scale_of(r);
    } else {
        c.in[4] = scalar(PQ_DTYPE_F32, scale_of(r));
    }
    c.in[5] = per_col ? tens(PQ_DTYPE_I8, 1, dn) : scalar(PQ_DTYPE_I8, 0);
    /* y scale about the accumulator's spread so outputs use the whole u8 range */
    c.in[6] = scalar(PQ_DTYPE_F32, ys >= 0 ? ys
                                           : pq_dtype_load(PQ_DTYPE_F32, c.in[1]->data, 0) * 0.01 *
                                                 sqrt((double)K) * 127 * 64);
    c.in[7] = scalar(PQ_DTYPE_U8, (double)(rng_next(r) % 256));
    char what[160];
    snprintf(what, sizeof what, "%s matmul M %lld N %lld K %lld zp %d per_col %d ext %d batch %d",
             k->name, (long long)M, (long long)N, (long long)K, zpx, per_col, ext, batch);
    compare(&c, k, ra, batch > 1 ? dy : dy + 1, pq_i8_qlinear_matmul_run, what);
    qcase_free(&c);
}

static void sweep_matmul(enum pq_i8_isa isa) {
    const pq_i8_kernels *k = need_isa(isa);
    rng_t r = {0x9E3779B97F4A7C15ULL + (uint64_t)isa};
    g_compared = 0;
    int cases = 0;
    for (int mi = 0; mi < NELEM(mm_M); mi++)
        for (int ni = 0; ni < NELEM(mm_N); ni++)
            for (int ki = 0; ki < NELEM(mm_K); ki++)
                for (int zi = 0; zi < NELEM(zps); zi++)
                    for (int pc = 0; pc < 2; pc++, cases++)
                        matmul_case(k, &r, mm_M[mi], mm_N[ni], mm_K[ki], zps[zi], pc, 0, 1, -1);
    /* batched rows, extremes, degenerate y scales (zero: infinite / NaN multipliers) */
    matmul_case(k, &r, 7, 33, 100, 128, 1, 0, 3, -1), cases++;
    for (int zi = 0; zi < NELEM(zps); zi++)
        for (int ki = 0; ki < NELEM(mm_K); ki++, cases++)
            matmul_case(k, &r, 7, 33, mm_K[ki], zps[zi], 1, 1, 1, -1);
    matmul_case(k, &r, 7, 33, 64, 128, 1, 0, 1, 0.0), cases++;
    matmul_case(k, &r, 7, 33, 64, 0, 0, 1, 1, 1e-30), cases++;
    cr_log_info("int8 matmul %s: %d cases, %lld output bytes bit-exact vs reference", k->name,
                cases, (long long)g_compared);
}

Test(int8_kernels, matmul_scalar) {
    sweep_matmul(PQ_I8_SCALAR);
}
Test(int8_kernels, matmul_avx2) {
    sweep_matmul(PQ_I8_AVX2);
}
Test(int8_kernels, matmul_avxvnni) {
    sweep_matmul(PQ_I8_AVXVNNI);
}
Test(int8_kernels, matmul_avx512) {
    sweep_matmul(PQ_I8_AVX512);
}
Test(int8_kernels, matmul_amx) {
    sweep_matmul(PQ_I8_AMX);
}

/* ---- QLinearConv ---- */

typedef struct {
    int64_t N, C, H, W, M, KH, KW, s, d, g;
    int64_t pads[4]; /* top, left, bottom, right */
} conv_geo;

static const conv_geo conv_geos[] = {
    {1, 8, 9, 9, 16, 1, 1, 1, 1, 1, {0, 0, 0, 0}},     /* 1x1 */
    {2, 3, 11, 7, 5, 1, 1, 1, 1, 1, {0, 0, 0, 0}},     /* 1x1, tails, batch 2 */
    {1, 16, 8, 8, 33, 3, 3, 1, 1, 1, {1, 1, 1, 1}},    /* 3x3 pad 1 */
    {1, 5, 13, 10, 7, 3, 3, 2, 1, 1, {1, 1, 1, 1}},    /* stride 2 */
    {1, 4, 12, 12, 6, 3, 3, 1, 2, 1, {2, 2, 2, 2}},    /* dilation 2 */
    {1, 3, 9, 8, 4, 2, 3, 1, 1, 1, {0, 1, 2, 0}},      /* asymmetric pads, 2x3 */
    {1, 1, 6, 6, 1, 3, 3, 1, 1, 1, {1, 1, 1, 1}},      /* one channel (K = 9) */
    {1, 8, 10, 10, 8, 3, 3, 1, 1, 8, {1, 1, 1, 1}},    /* depthwise */
    {2, 6, 9, 11, 12, 3, 3, 2, 1, 6, {1, 1, 1, 1}},    /* depthwise, multiplier 2, stride 2 */
    {1, 4, 9, 9, 4, 3, 3, 1, 2, 4, {2, 2, 2, 2}},      /* depthwise, dilation 2 */
    {1, 8, 7, 7, 10, 3, 3, 1, 1, 2, {1, 1, 1, 1}},     /* group 2 */
    {1, 6, 8, 8, 6, 1, 1, 2, 1, 2, {0, 0, 0, 0}},      /* group 2, 1x1 stride 2 (im2col path) */
    {1, 17, 5, 5, 3, 5, 5, 1, 1, 1, {2, 2, 2, 2}},     /* K = 425 */
    {1, 64, 14, 14, 64, 3, 3, 1, 1, 1, {1, 1, 1, 1}},  /* ResNet-ish, several column tiles */
    {1, 16, 40, 37, 24, 3, 3, 2, 1, 1, {1, 1, 1, 1}},  /* stride 2, wide rows (SIMD phase split) */
    {1, 24, 34, 35, 40, 1, 1, 2, 1, 1, {0, 0, 0, 0}},  /* 1x1 stride 2 (downsample) */
    {1, 3, 45, 45, 16, 7, 7, 2, 1, 1, {3, 3, 3, 3}},   /* 7x7 stride 2 stem, K = 147 */
    {1, 40, 23, 23, 24, 1, 1, 1, 1, 1, {0, 0, 0, 0}},  /* 1x1 direct, 529 positions */
    {2, 12, 17, 61, 20, 3, 3, 1, 1, 1, {1, 1, 1, 1}},  /* long rows, runs crossing panels */
    {2, 64, 7, 7, 96, 3, 3, 1, 1, 1, {1, 1, 1, 1}},    /* 7x7: positions as rows (swap) */
    {1, 48, 6, 6, 72, 1, 1, 1, 1, 1, {0, 0, 0, 0}},    /* 1x1 direct, 36 positions (swap) */
    {1, 24, 29, 40, 24, 5, 5, 2, 1, 24, {2, 2, 2, 2}}, /* depthwise 5x5 stride 2 */
    {1, 8, 12, 70, 8, 3, 3, 1, 1, 8, {1, 1, 1, 1}},    /* depthwise, rows of 70 (64 + tail) */
    {2, 40, 14, 13, 40, 5, 5, 1, 1, 40, {2, 2, 2, 2}}, /* depthwise 40 channels (lane blocks) */
    {1, 33, 15, 21, 33, 3, 3, 2, 1, 33, {0, 1, 1, 0}}, /* depthwise 33, stride 2, asymmetric */
    {1, 19, 9, 23, 19, 3, 3, 1, 2, 19, {2, 1, 0, 2}},  /* depthwise 19, dilation 2 */
    {1, 17, 7, 7, 17, 5, 5, 2, 1, 17, {2, 2, 2, 2}},   /* depthwise 7x7 -> 4x4, 5x5 stride 2 */
    {2, 70, 1, 1, 37, 1, 1, 1, 1, 1, {0, 0, 0, 0}},    /* squeeze-excite 1x1 on 1 x 1, K tail */
    {1, 144, 1, 1, 100, 1, 1, 1, 1, 1, {0, 0, 0, 0}},  /* one position, a GEMV over 4 panels */
    {1, 35, 7, 7, 50, 1, 1, 1, 1, 1, {0, 0, 0, 0}},    /* 1x1 direct, 49 positions as rows */
    /* C a multiple of 64, M >= 64: AMX implicit GEMM (channel-last copy, stride phases) */
    {2, 64, 9, 11, 64, 3, 3, 2, 1, 1, {1, 0, 1, 2}},   /* stride 2, asymmetric pads, batch 2 */
    {1, 64, 10, 9, 80, 3, 3, 1, 2, 1, {2, 2, 2, 2}},   /* dilation 2, a 16-lane panel tail */
    {1, 128, 12, 13, 64, 1, 1, 2, 1, 1, {0, 0, 0, 0}}, /* 1x1 stride 2 (one tap, one phase) */
    {1, 240, 9, 10, 40, 1, 1, 1, 1, 1, {0, 0, 0, 0}},  /* deep projection, 40 rows on AMX tiles */
    {1, 64, 6, 20, 72, 5, 3, 1, 1, 1, {2, 1, 2, 1}},   /* 5x3 kernel, 20 columns (copy tail) */
    /* C a multiple of 4 only: the implicit GEMM on AVX-512 / AVX-VNNI, a channel tail in the copy
     */
    {1, 20, 9, 9, 64, 3, 3, 1, 1, 1, {1, 1, 1, 1}},
    {2, 36, 11, 10, 64, 3, 3, 2, 1, 1, {1, 1, 0, 0}},
    /* wide rows (few garbage columns): the implicit GEMM on the AVX2 i16 copy too, 8 channels
     * (a channel tail in every copied pixel) at stride 2 */
    {1, 16, 6, 40, 64, 3, 3, 1, 1, 1, {1, 1, 1, 1}},
    {1, 8, 9, 70, 64, 3, 3, 2, 1, 1, {1, 1, 1, 1}},
    /* the AVX-512 stem kernel (stride 2, C * KH <= 12, KW <= 4, M <= 32) */
    {1, 3, 40, 70, 16, 3, 3, 2, 1, 1, {1, 1, 1, 1}}, /* mobilenet stem, OW 35 */
    {2, 3, 21, 45, 17, 3, 3, 2, 1, 1, {1, 0, 1, 1}}, /* batch 2, odd M, asymmetric pads */
    {1, 2, 17, 67, 32, 2, 4, 2, 1, 1, {0, 2, 1, 1}}, /* 2x4 kernel, M 32 */
    {1, 4, 13, 40, 8, 3, 2, 2, 1, 1, {1, 1, 1, 1}},  /* C * KH = 12, 3x2 kernel */
};

/* A fused activation for conv_case: name (NULL: none), its attributes, the y scale that spreads
 * its outputs over the u8 range and the real-value spread of the accumulators it should see. */
typedef struct {
    const char *name;
    int has_alpha, has_beta;
    float alpha, beta;
    double ys, spread;
} act_spec;

static const act_spec *g_act; /* the activation conv_case puts on the node, or NULL */
/* the kernel entry conv_case runs */
static enum pq_status (*g_conv_run)(const pq_i8_kernels *,
                                    const pq_kernel_args *) = pq_i8_qlinear_conv_run;

static void conv_case(const pq_i8_kernels *k, rng_t *r, const conv_geo *cg, int zpx, int per_ch,
                      int bias, int ext, double ys) {
    qcase c;
    qcase_init(&c, PQ_OP_QLINEAR_CONV, bias ? 9 : 8);
    int64_t Cg = cg->C / cg->g;
    int64_t OH = (cg->H + cg->pads[0] + cg->pads[2] - cg->d * (cg->KH - 1) - 1) / cg->s + 1;
    int64_t OW = (cg->W + cg->pads[1] + cg->pads[3] - cg->d * (cg->KW - 1) - 1) / cg->s + 1;
    int64_t dx[4] = {cg->N, cg->C, cg->H, cg->W}, dw[4] = {cg->M, Cg, cg->KH, cg->KW};
    int64_t dy[4] = {cg->N, cg->M, OH, OW}, dm[1] = {cg->M};
    int64_t st[2] = {cg->s, cg->s}, dl[2] = {cg->d, cg->d};
    cr_assert_eq(pq_node_set_ints(c.g, c.nid, "pads", cg->pads, 4, &c.err), PQ_OK);
    cr_assert_eq(pq_node_set_ints(c.g, c.nid, "strides", st, 2, &c.err), PQ_OK);
    cr_assert_eq(pq_node_set_ints(c.g, c.nid, "dilations", dl, 2, &c.err), PQ_OK);
    cr_assert_eq(pq_node_set_int(c.g, c.nid, "group", cg->g, &c.err), PQ_OK);
    c.in[0] = tens(PQ_DTYPE_U8, 4, dx);
    fill_u8(r, c.in[0], ext);
    double xs = scale_of(r);
    c.in[1] = scalar(PQ_DTYPE_F32, xs);
    c.in[2] = scalar(PQ_DTYPE_U8, zpx);
    c.in[3] = tens(PQ_DTYPE_I8, 4, dw);
    fill_s8(r, c.in[3], ext);
    if (per_ch) {
        c.in[4] = tens(PQ_DTYPE_F32, 1, dm);
        for (int64_t i = 0; i < cg->M; i++)
            ((float *)c.in[4]->data)[i] = (float)scale_of(r);
    } else {
        c.in[4] = scalar(PQ_DTYPE_F32, scale_of(r));
    }
    c.in[5] = per_ch ? tens(PQ_DTYPE_I8, 1, dm) : scalar(PQ_DTYPE_I8, 0);
    double kk = (double)(Cg * cg->KH * cg->KW);
    c.in[6] = scalar(PQ_DTYPE_F32, ys >= 0 ? ys : xs * 0.01 * sqrt(kk) * 127 * 64);
    c.in[7] = scalar(PQ_DTYPE_U8, (double)(rng_next(r) % 256));
    if (g_act) { /* real results r = acc * s_x * s_w spread over the activation's interesting range
                  */
        const act_spec *a = g_act;
        cr_assert_eq(pq_node_set_string(c.g, c.nid, "activation", a->name, &c.err), PQ_OK);
        if (a->has_alpha)
            cr_assert_eq(pq_node_set_float(c.g, c.nid, "activation_alpha", a->alpha, &c.err),
                         PQ_OK);
        if (a->has_beta)
            cr_assert_eq(pq_node_set_float(c.g, c.nid, "activation_beta", a->beta, &c.err), PQ_OK);
        double sw = a->spread / (xs * sqrt(kk) * 74.0 * 73.0);
        if (per_ch)
            for (int64_t i = 0; i < cg->M; i++)
                ((float *)c.in[4]->data)[i] = (float)(sw * (0.5 + (double)(i % 7) / 6.0));
        else
            pq_dtype_store(PQ_DTYPE_F32, c.in[4]->data, 0, sw);
        if (ys < 0) pq_dtype_store(PQ_DTYPE_F32, c.in[6]->data, 0, a->ys);
    }
    if (bias) {
        c.in[8] = tens(PQ_DTYPE_I32, 1, dm);
        for (int64_t i = 0; i < cg->M; i++)
            ((int32_t *)c.in[8]->data)[i] =
                g_act ? (int32_t)(rng_next(r) % 4001) - 2000 /* the accumulators' size */
                      : (int32_t)(rng_next(r) % 200001) - 100000;
    }
    char what[200];
    snprintf(what, sizeof what,
             "%s conv N%lld C%lld %lldx%lld M%lld k%lldx%lld s%lld d%lld g%lld zp %d per_ch %d "
             "bias %d ext %d act %s",
             k ? k->name : "fast table", (long long)cg->N, (long long)cg->C, (long long)cg->H,
             (long long)cg->W, (long long)cg->M, (long long)cg->KH, (long long)cg->KW,
             (long long)cg->s, (long long)cg->d, (long long)cg->g, zpx, per_ch, bias, ext,
             g_act ? g_act->name : "none");
    compare(&c, k, 4, dy, g_conv_run, what);
    qcase_free(&c);
}

static void sweep_conv(enum pq_i8_isa isa) {
    const pq_i8_kernels *k = need_isa(isa);
    rng_t r = {0x243F6A8885A308D3ULL + (uint64_t)isa};
    g_compared = 0;
    int cases = 0;
    /* chosen orientation, then both forced (group-1 convolutions) */
    for (int force = -1; force <= 1; force++) {
        pq_i8_conv_force_swap(force);
        for (int gi = 0; gi < NELEM(conv_geos); gi++) {
            if (force >= 0 && conv_geos[gi].g != 1) continue;
            for (int zi = 0; zi < NELEM(zps); zi++)
                for (int v = 0; v < 4; v++, cases++)
                    conv_case(k, &r, &conv_geos[gi], zps[zi], v & 1, v >> 1, 0, -1);
            conv_case(k, &r, &conv_geos[gi], 255, 1, 1, 1, -1);  /* saturating bytes */
            conv_case(k, &r, &conv_geos[gi], 128, 1, 1, 0, 0.0); /* zero y scale */
            cases += 2;
        }
    }
    pq_i8_conv_force_swap(-1);
    cr_log_info("int8 conv %s: %d cases, %lld output bytes bit-exact vs reference", k->name, cases,
                (long long)g_compared);
}

/* Fused activations (HardSwish / HardSigmoid after a quantized conv, LeakyRelu, Clip, Relu,
 * Sigmoid and Swish through pq_i8_sigmoid_f32) on every orientation and the depthwise kernel: the
 * epilogue's f32 activation bit-exact. */
static const act_spec acts[] = {
    {"HardSwish", 0, 0, 0, 0, 7.0 / 255.0, 5.0},
    {"HardSigmoid", 1, 1, 1.0f / 6.0f, 0.5f, 1.0 / 255.0, 4.0},
    {"HardSigmoid", 0, 0, 0, 0, 1.0 / 255.0, 4.0}, /* defaults alpha 0.2, beta 0.5 */
    {"LeakyRelu", 1, 0, 0.1f, 0, 4.0 / 255.0, 3.0},
    {"Clip", 1, 1, -1.0f, 2.5f, 3.5 / 255.0, 3.0},
    {"Relu", 0, 0, 0, 0, 4.0 / 255.0, 3.0},
    {"Sigmoid", 0, 0, 0, 0, 1.0 / 255.0, 9.0},
    {"Swish", 0, 0, 0, 0, 7.0 / 255.0, 7.0},
};

static void sweep_conv_act(enum pq_i8_isa isa) {
    const pq_i8_kernels *k = need_isa(isa);
    rng_t r = {0x13198A2E03707344ULL + (uint64_t)isa};
    g_distinct = 0;
    static const int geos[] = {0,  2,  3,  7,  8,  13, 14, 19, 20, 21,
                               22, 23, 24, 27, 28, 38, 39, 40, 41}; /* the stem kernel's */
    g_compared = 0;
    int cases = 0;
    for (int force = -1; force <= 1; force++) {
        pq_i8_conv_force_swap(force);
        for (int ai = 0; ai < NELEM(acts); ai++) {
            g_act = &acts[ai];
            for (int gi = 0; gi < NELEM(geos); gi++) {
                const conv_geo *cg = &conv_geos[geos[gi]];
                if (force >= 0 && cg->g != 1) continue;
                conv_case(k, &r, cg, 128, 1, 1, 0, -1);
                conv_case(k, &r, cg, 0, 0, 0, 0, -1);
                cases += 2;
            }
        }
    }
    g_act = NULL;
    pq_i8_conv_force_swap(-1);
    cr_log_info("int8 conv + fused activation %s: %d cases, %lld output bytes bit-exact, %.1f "
                "distinct values per case",
                k->name, cases, (long long)g_compared, (double)g_distinct / cases);
    cr_assert_gt(g_distinct, 20 * cases, "activation outputs mostly saturated");
}

Test(int8_kernels, conv_act_scalar) {
    sweep_conv_act(PQ_I8_SCALAR);
}
Test(int8_kernels, conv_act_avx2) {
    sweep_conv_act(PQ_I8_AVX2);
}
Test(int8_kernels, conv_act_avxvnni) {
    sweep_conv_act(PQ_I8_AVXVNNI);
}
Test(int8_kernels, conv_act_avx512) {
    sweep_conv_act(PQ_I8_AVX512);
}
Test(int8_kernels, conv_act_amx) {
    sweep_conv_act(PQ_I8_AMX);
}

Test(int8_kernels, conv_scalar) {
    sweep_conv(PQ_I8_SCALAR);
}
Test(int8_kernels, conv_avx2) {
    sweep_conv(PQ_I8_AVX2);
}
Test(int8_kernels, conv_avxvnni) {
    sweep_conv(PQ_I8_AVXVNNI);
}
Test(int8_kernels, conv_avx512) {
    sweep_conv(PQ_I8_AVX512);
}
Test(int8_kernels, conv_amx) {
    sweep_conv(PQ_I8_AMX);
}

/* ---- small convolutions: the whole im2col gathered from planes of at most 64 bytes ---- */

static const conv_geo small_geos[] = {
    {1, 1, 8, 8, 8, 3, 3, 1, 1, 1, {1, 1, 1, 1}},   /* digits conv 1: one channel, a depth tail */
    {1, 8, 8, 8, 16, 3, 3, 1, 1, 1, {1, 1, 1, 1}},  /* digits conv 2 */
    {3, 8, 8, 8, 16, 3, 3, 1, 1, 1, {1, 1, 1, 1}},  /* batch 3 */
    {1, 16, 8, 8, 33, 3, 3, 1, 1, 1, {1, 1, 1, 1}}, /* M not a multiple of the rows */
    {1, 5, 7, 9, 11, 3, 3, 2, 1, 1, {1, 0, 2, 1}},  /* stride 2, asymmetric pads, 63-byte planes */
    {1, 6, 5, 6, 40, 3, 3, 1, 2, 1, {2, 2, 2, 2}},  /* dilation 2 */
    {1, 7, 4, 4, 9, 2, 2, 1, 1, 1, {1, 1, 0, 0}},   /* 2x2: quads inside one channel */
    {1, 3, 6, 6, 5, 1, 2, 1, 1, 1, {0, 1, 0, 0}},   /* 1x2: two channels per quad */
    {1, 5, 3, 3, 6, 1, 3, 1, 1, 1, {0, 1, 0, 1}},   /* 1x3 on 3x3 planes */
    {1, 4, 8, 8, 12, 5, 5, 1, 1, 1, {2, 2, 2, 2}},  /* 5x5, several channels per panel row */
    {1, 2, 1, 64, 4, 1, 3, 1, 1, 1, {0, 1, 0, 1}},  /* one row of 64 */
    {2, 3, 8, 8, 24, 3, 3, 1, 1, 1, {0, 0, 0, 0}},  /* no padding, 36 positions */
    {1, 9, 2, 3, 5, 3, 3, 1, 1, 1, {1, 1, 1, 1}},   /* planes of 6 bytes */
    {1, 6, 4, 4, 8, 3, 3, 1, 1, 1, {3, 3, 3, 3}},   /* padding wider than the kernel reach */
    {1, 12, 8, 8, 64, 3, 3, 1, 1, 1, {1, 1, 1, 1}}, /* AMX: 64 rows pay for tiles, depth 128 */
    {1, 5, 3, 3, 6, 1, 1, 1, 1, 1, {0, 0, 0, 0}},   /* 1x1 (four channels a quad): declined */
    {1, 64, 8, 8, 64, 3, 3, 1, 1, 1, {1, 1, 1, 1}}, /* too many stores: declined */
};

/* The SIMD gather of a pattern equals the portable one (every byte of the panels). */
static void small_pack_vs_portable(const pq_i8_kernels *k, rng_t *r, const conv_geo *cg) {
    int64_t OH = (cg->H + cg->pads[0] + cg->pads[2] - cg->d * (cg->KH - 1) - 1) / cg->s + 1;
    int64_t OW = (cg->W + cg->pads[1] + cg->pads[3] - cg->d * (cg->KW - 1) - 1) / cg->s + 1;
    pq_i8_conv g = {.N = cg->N,
                    .C = cg->C,
                    .H = cg->H,
                    .W = cg->W,
                    .M = cg->M,
                    .OH = OH,
                    .OW = OW,
                    .KH = cg->KH,
                    .KW = cg->KW,
                    .group = 1,
                    .Cg = cg->C,
                    .Mg = cg->M,
                    .sh = cg->s,
                    .sw = cg->s,
                    .dh = cg->d,
                    .dw = cg->d,
                    .pt = cg->pads[0],
                    .pl = cg->pads[1],
                    .pb = cg->pads[2],
                    .pr = cg->pads[3]};
    pq_i8_small_pack_fn pack = pq_i8_small_packer(k);
    if (!pack || !pq_i8_small_fits(k, &g)) return;
    pq_i8_small *s = pq_i8_small_make(k, &g);
    cr_assert_not_null(s);
    size_t xb = (size_t)(cg->C * cg->H * cg->W);
    uint8_t *x = pq_malloc(xb), *a = pq_malloc_aligned(s->panel_bytes + 64);
    uint8_t *b = pq_malloc_aligned(s->panel_bytes + 64);
    for (size_t i = 0; i < xb; i++)
        x[i] = (uint8_t)(rng_next(r) >> 40);
    uint8_t zp = (uint8_t)(rng_next(r) >> 40);
    memset(a, POISON, s->panel_bytes);
    memset(b, 0x5A, s->panel_bytes);
    pack(s, x, zp, a);
    pq_i8_small_pack__portable(s, x, zp, b);
    cr_assert(memcmp(a, b, s->panel_bytes) == 0, "%s small gather C%lld %lldx%lld k%lldx%lld",
              k->name, (long long)cg->C, (long long)cg->H, (long long)cg->W, (long long)cg->KH,
              (long long)cg->KW);
    pq_free(x);
    pq_free(a);
    pq_free(b);
    pq_i8_small_free(s);
}

/* The fast entry with two threads and no work threshold (images split over the threads). */
static enum pq_status run_two_threads(const pq_i8_kernels *k, const pq_kernel_args *a) {
    pq_kernel_args b = *a;
    b.n_threads = 2;
    return pq_i8_qlinear_conv_run(k, &b);
}

static void sweep_small(enum pq_i8_isa isa) {
    const pq_i8_kernels *k = need_isa(isa);
    rng_t r = {0x452821E638D01377ULL + (uint64_t)isa};
    g_compared = 0;
    long taken0 = pq_i8_small_taken();
    int cases = 0;
    static const act_spec relu = {"Relu", 0, 0, 0, 0, 4.0 / 255.0, 3.0};
    /* pass 1 with a bound session cache: the gather pattern kept in the node plans (their nodes'
     * addresses repeat from case to case: a kept pattern of another geometry is made again) */
    pq_onednn_cache *cache = pq_onednn_cache_create(), *prev = NULL;
    cr_assert_not_null(cache);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) prev = pq_onednn_cache_bind(cache);
        for (int gi = 0; gi < NELEM(small_geos); gi++) {
            const conv_geo *cg = &small_geos[gi];
            small_pack_vs_portable(k, &r, cg);
            for (int zi = 0; zi < NELEM(zps); zi++)
                for (int v = 0; v < 4; v++, cases++)
                    conv_case(k, &r, cg, zps[zi], v & 1, v >> 1, 0, -1);
            conv_case(k, &r, cg, 255, 1, 1, 1, -1);  /* saturating bytes */
            conv_case(k, &r, cg, 128, 1, 1, 0, 0.0); /* zero y scale: not finite */
            g_act = &relu;
            conv_case(k, &r, cg, 77, 1, 1, 0, -1);
            g_act = NULL;
            cases += 3;
            /* two threads, no work threshold: the images of a batch split between them */
            pq_i8_thread_grain(0.0);
            g_conv_run = run_two_threads;
            conv_case(k, &r, cg, 128, 1, 1, 0, -1);
            g_conv_run = pq_i8_qlinear_conv_run;
            pq_i8_thread_grain(-1.0);
            cases++;
        }
    }
    pq_onednn_cache_bind(prev);
    pq_onednn_cache_destroy(cache);
    long taken = pq_i8_small_taken() - taken0;
    /* the AMX table runs these small layers on its AVX-512 table (tiles do not pay) */
    const pq_i8_kernels *ks = k->strided ? k->strided : k;
    if (pq_i8_small_packer(ks))
        cr_assert_gt(taken, 0, "%s: the small path never ran", k->name);
    else
        cr_log_info("int8 small conv %s: the small path does not apply to this table (%ld runs)",
                    k->name, taken);
    cr_log_info("int8 small conv %s: %d cases (%ld on the small path), %lld output bytes "
                "bit-exact vs reference",
                k->name, cases, taken, (long long)g_compared);
}

Test(int8_kernels, conv_small_scalar) {
    sweep_small(PQ_I8_SCALAR);
}
Test(int8_kernels, conv_small_avx2) {
    sweep_small(PQ_I8_AVX2);
}
Test(int8_kernels, conv_small_avxvnni) {
    sweep_small(PQ_I8_AVXVNNI);
}
Test(int8_kernels, conv_small_avx512) {
    sweep_small(PQ_I8_AVX512);
}
Test(int8_kernels, conv_small_amx) {
    sweep_small(PQ_I8_AMX);
}

/* ---- depthwise: the AVX-512 kernel's u8 tap quads and its f32 form ---- */

/* Depthwise shapes for the quad kernel's edges (one output channel per group): kernels of 1 to
 * 8 columns (one or two quads per row), 7x7 and 5x1, strides 1 and 2 (and 3: the f32 form),
 * pads as wide as the kernel, inputs narrower than the window, rows past 64 bytes, channel tails.
 */
static const conv_geo dw_geos[] = {
    {1, 16, 7, 7, 16, 3, 3, 1, 1, 16, {1, 1, 1, 1}},   /* mobilenet 7x7 */
    {1, 21, 14, 14, 21, 5, 5, 1, 1, 21, {2, 2, 2, 2}}, /* 5x5, a 5-channel tail */
    {1, 16, 15, 16, 16, 5, 5, 2, 1, 16, {2, 2, 2, 2}}, /* 5x5 stride 2, odd rows */
    {1, 5, 9, 10, 5, 7, 7, 1, 1, 5, {3, 3, 3, 3}},     /* 7x7 (two quads, one tap zero) */
    {1, 18, 11, 9, 18, 7, 7, 2, 1, 18, {3, 2, 3, 4}},  /* 7x7 stride 2, asymmetric */
    {1, 16, 6, 12, 16, 1, 8, 1, 1, 16, {0, 4, 0, 3}},  /* 1x8: two full quads */
    {1, 16, 8, 8, 16, 5, 1, 1, 1, 16, {2, 0, 2, 0}},   /* 5x1 */
    {1, 16, 9, 9, 16, 1, 1, 1, 1, 16, {0, 0, 0, 0}},   /* 1x1 depthwise */
    {2, 24, 5, 2, 24, 3, 3, 1, 1, 24, {1, 2, 1, 2}},   /* 2 columns, pads wider than W */
    {1, 16, 4, 130, 16, 3, 3, 2, 1, 16, {1, 1, 1, 1}}, /* rows of 130 (two 64-byte runs + tail) */
    {1, 3, 30, 33, 3, 3, 3, 1, 1, 3, {0, 0, 0, 0}},    /* no pads, 3 channels */
    {1, 16, 12, 13, 16, 3, 3, 3, 1, 16, {1, 1, 1, 1}}, /* stride 3: f32 */
    {1, 16, 12, 13, 16, 3, 3, 1, 2, 16, {2, 2, 2, 2}}, /* dilation 2: f32 */
    {1, 16, 40, 40, 16, 3, 3, 1, 1, 16, {1, 1, 1, 1}}, /* several bands */
    {1, 16, 6, 6, 16, 3, 3, 1, 1, 16, {9, 9, 9, 10}},  /* pads past the quad slack: f32 */
    {1, 16, 5, 6, 16, 3, 3, 1, 1, 16, {8, 8, 9, 11}},  /* left pad 8, long overhang */
    /* output columns in the lanes: several 64-column blocks, two rows per vector (stride 1,
     * OW <= 32) with an odd row count, asymmetric pads */
    {1, 16, 40, 112, 16, 3, 3, 2, 1, 16, {1, 1, 1, 1}}, /* mobilenet stride 2, OW 56 */
    {1, 3, 9, 140, 3, 3, 3, 1, 1, 3, {1, 1, 1, 1}},     /* OW 140: three blocks */
    {1, 5, 7, 150, 5, 5, 5, 2, 1, 5, {2, 2, 2, 2}},     /* OW 75: a block of two vectors */
    {1, 4, 11, 32, 4, 3, 3, 1, 1, 4, {1, 1, 1, 1}},     /* OW 32, 11 rows */
    {1, 8, 27, 28, 8, 3, 3, 1, 1, 8, {1, 1, 1, 1}},     /* OW 28, 27 rows: row pairs */
    {1, 4, 9, 30, 4, 5, 5, 1, 1, 4, {2, 2, 2, 2}},      /* 5x5, OW 30 */
    {1, 4, 8, 33, 4, 3, 3, 1, 1, 4, {0, 0, 0, 0}},      /* OW 31, no pads */
    {1, 6, 13, 61, 6, 3, 3, 2, 1, 6, {0, 1, 1, 0}},     /* stride 2, odd W, OW 30 */
};

static void sweep_dw_forms(enum pq_i8_isa isa) {
    const pq_i8_kernels *k = need_isa(isa);
    bool avx512 = isa == PQ_I8_AVX512 || isa == PQ_I8_AMX;
    if (avx512 && !pq_cpu_has_avx512_vbmi())
        PQ_TEST_NOTE("no AVX-512 VBMI: the depthwise tap quads are not run here (f32 form only)");
    rng_t r = {0xA4093822299F31D0ULL + (uint64_t)isa};
    g_compared = 0;
    int cases = 0;
    /* the AVX-512 kernel's forms: output columns in the lanes wherever they fit, then channels
     * in the lanes with u8 tap quads, then with f32 sums */
    for (int form = 0; form <= (avx512 ? 2 : 0); form++) {
        pq_i8_dwc_force_cols(avx512 && form == 0 ? 1 : 0);
        pq_i8_dwc_force_f32(form == 2);
        for (int ai = -1; ai < NELEM(acts); ai++) {
            g_act = ai < 0 ? NULL : &acts[ai];
            for (int gi = 0; gi < NELEM(dw_geos); gi++) {
                conv_case(k, &r, &dw_geos[gi], 128, 1, 1, 0, -1);
                conv_case(k, &r, &dw_geos[gi], 0, 0, 0, 0, -1);
                conv_case(k, &r, &dw_geos[gi], 255, 1, 1, 1, -1); /* saturating bytes */
                cases += 3;
            }
        }
    }
    g_act = NULL;
    pq_i8_dwc_force_f32(0);
    pq_i8_dwc_force_cols(-1);
    cr_log_info("int8 depthwise %s: %d cases, %lld output bytes bit-exact", k->name, cases,
                (long long)g_compared);
}

Test(int8_kernels, depthwise_forms_avx2) {
    sweep_dw_forms(PQ_I8_AVX2);
}
Test(int8_kernels, depthwise_forms_avxvnni) {
    sweep_dw_forms(PQ_I8_AVXVNNI);
}
Test(int8_kernels, depthwise_forms_avx512) {
    sweep_dw_forms(PQ_I8_AVX512);
}
Test(int8_kernels, depthwise_forms_amx) {
    sweep_dw_forms(PQ_I8_AMX);
}

/* ---- the epilogue's logistic function ---- */

/* pq_i8_sigmoid_f32 (the Sigmoid / Swish epilogue, defined by its own f32 operations so that
 * every ISA repeats it) against the double-precision logistic function: within 4e-6 absolute
 * over [-100, 100] (the bytes it feeds are 2^-8 apart), symmetric, the limits, NaN kept. */
Test(int8_kernels, sigmoid_f32_accuracy) {
    double worst = 0;
    for (int i = -400000; i <= 400000; i++) {
        float r = (float)i * 2.5e-4f;
        double want = 1.0 / (1.0 + exp(-(double)r));
        double err = fabs((double)pq_i8_sigmoid_f32(r) - want);
        if (err > worst) worst = err;
        if (r != 0.0f)
            cr_assert_eq(pq_i8_sigmoid_f32(-r), 1.0f - pq_i8_sigmoid_f32(r), "r %g", (double)r);
    }
    cr_assert_lt(worst, 4e-6, "max |error| %g", worst);
    cr_assert_eq(pq_i8_sigmoid_f32(0.0f), 0.5f);
    cr_assert_gt(pq_i8_sigmoid_f32(INFINITY), 1.0f - 1e-6f);
    cr_assert_lt(pq_i8_sigmoid_f32(-INFINITY), 1e-6f);
    cr_assert_geq(pq_i8_sigmoid_f32(-INFINITY), 0.0f);
    cr_assert(isnan(pq_i8_sigmoid_f32(NAN)));
    cr_log_info("pq_i8_sigmoid_f32: max |error| %.3g over [-100, 100]", worst);
}

/* ---- micro-kernels read nothing past their operands ---- */

/* n bytes ending exactly where an inaccessible page starts (the mapping in *base, *len). */
static uint8_t *guarded(size_t n, void **base, size_t *len) {
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), body = (n + pg - 1) / pg * pg;
    *len = body + pg;
    uint8_t *m = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(m != MAP_FAILED);
    cr_assert_eq(mprotect(m + body, pg, PROT_NONE), 0);
    *base = m;
    return m + body - n;
}

/* Regression: gcc 12 at -O3 vectorized the scalar micro-kernel across its rows and read past the
 * last one (mobilenet_v3_large under PIQC_ISA=scalar segfaulted on a 184 -> 80 1x1 conv). Every
 * ISA's raw micro-kernels (not AMX: its tile loads need 64-byte rows by contract), for every row
 * count, with the rows and the panel each ending at an unmapped page: no fault. */
Test(int8_kernels, ukernel_reads_in_bounds) {
    static const enum pq_i8_isa isas[] = {PQ_I8_SCALAR, PQ_I8_AVX2, PQ_I8_AVXVNNI, PQ_I8_AVX512};
    int ran = 0;
    for (int ii = 0; ii < NELEM(isas); ii++) {
        const pq_i8_kernels *k = pq_i8_kernels_for(isas[ii]);
        if (!k) {
            cr_log_info("ukernel bounds: %s not available here, skipped", pq_i8_isa_name(isas[ii]));
            continue;
        }
        size_t kq = 92, qs = 4, lda = kq * qs;
        size_t pbytes = kq * (size_t)k->nr * 4;
        for (int mr = 1; mr <= k->mr; mr++) {
            void *ab, *pb;
            size_t al, pl;
            uint8_t *a = guarded((size_t)mr * lda, &ab, &al);
            uint8_t *p = guarded(pbytes, &pb, &pl);
            memset(a, 1, (size_t)mr * lda);
            memset(p, 1, pbytes);
            int32_t c[PQ_I8_MAX_MR * 64];
            for (int u = 0; u < 2; u++) {
                k->ukernel[u](mr, kq, a, lda, qs, p, c);
                /* every product 1 x 1 (or 257 x 257 for the i16 pair layouts), 4 per quad */
                int32_t want = k->elem == 2 ? (int32_t)(kq * 2 * 257 * 257) : (int32_t)(kq * 4);
                cr_assert_eq(c[(mr - 1) * k->nr], want, "%s mr %d", k->name, mr);
            }
            munmap(ab, al);
            munmap(pb, pl);
        }
        ran++;
    }
    cr_assert_gt(ran, 0);
}

/* ---- no saturation: x = 255, w = -128 / 127 pairs overflow i16 in vpmaddubsw ---- */

static void no_saturation(enum pq_i8_isa isa) {
    const pq_i8_kernels *k = need_isa(isa);
    /* y = clamp(acc * 1 + 0): with m = 1/2^16 the exact i32 sum is visible in the output */
    for (int K = 2; K <= 64; K *= 2) {
        enum { N = 40 };
        uint8_t A[64];
        int8_t B[64 * N];
        float m[N];
        uint8_t y[N + GUARD];
        memset(A, 255, sizeof A);
        for (int i = 0; i < K; i++)
            for (int j = 0; j < N; j++)
                B[i * N + j] = (int8_t)(j % 2 ? 127 : -128);
        for (int j = 0; j < N; j++)
            m[j] = 1.0f / (255.0f * (float)K); /* exact sum 255 * K * w -> w, clamped */
        memset(y, POISON, sizeof y);
        cr_assert_eq(pq_i8_gemm_u8s8(k, 1, N, (size_t)K, A, (size_t)K, 0, B, N, m, 128, y, N, NULL),
                     PQ_OK);
        for (int j = 0; j < N; j++)
            cr_assert_eq(y[j], j % 2 ? 255 : 0, "%s K %d col %d: %u (saturated pair sums?)",
                         k->name, K, j, y[j]);
        /* the sum itself: 255 * 127 * K, which vpmaddubsw would cap at 32767 * K / 2 */
        for (int j = 0; j < N; j++)
            m[j] = 1.0f / 1024.0f;
        cr_assert_eq(pq_i8_gemm_u8s8(k, 1, N, (size_t)K, A, (size_t)K, 0, B, N, m, 0, y, N, NULL),
                     PQ_OK);
        for (int j = 1; j < N; j += 2) {
            double want = nearbyint(255.0 * 127.0 * K / 1024.0);
            cr_assert_eq(y[j], want > 255 ? 255 : (uint8_t)want, "%s K %d col %d", k->name, K, j);
        }
        for (int i = N; i < N + GUARD; i++)
            cr_assert_eq(y[i], POISON);
    }
}

Test(int8_kernels, no_saturation_scalar) {
    no_saturation(PQ_I8_SCALAR);
}
Test(int8_kernels, no_saturation_avx2) {
    no_saturation(PQ_I8_AVX2);
}
Test(int8_kernels, no_saturation_avxvnni) {
    no_saturation(PQ_I8_AVXVNNI);
}
Test(int8_kernels, no_saturation_avx512) {
    no_saturation(PQ_I8_AVX512);
}
Test(int8_kernels, no_saturation_amx) {
    no_saturation(PQ_I8_AMX);
}

/* The raw GEMM of every ISA equals the scalar one and a direct loop (NEON runs the same check). */
Test(int8_kernels, gemm_all_isas_vs_direct) {
    rng_t r = {42};
    int checked = 0;
    for (int mi = 0; mi < NELEM(mm_M); mi++)
        for (int ni = 0; ni < NELEM(mm_N); ni++)
            for (int ki = 0; ki < NELEM(mm_K); ki++) {
                int64_t M = mm_M[mi], N = mm_N[ni], K = mm_K[ki];
                uint8_t *A = pq_malloc((size_t)(M * K)), *y = pq_malloc((size_t)(M * N));
                uint8_t *yd = pq_malloc((size_t)(M * N));
                int8_t *B = pq_malloc((size_t)(K * N));
                float *m = pq_malloc((size_t)N * sizeof(float));
                for (int64_t i = 0; i < M * K; i++)
                    A[i] = (uint8_t)(rng_next(&r) >> 33);
                for (int64_t i = 0; i < K * N; i++)
                    B[i] = (int8_t)(rng_next(&r) >> 33);
                for (int64_t j = 0; j < N; j++)
                    m[j] = (float)(1.0 / (64.0 * (double)K) * (double)(1 + j % 3));
                int zp = (int)(rng_next(&r) % 256);
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++) {
                        int64_t s = 0;
                        for (int64_t t = 0; t < K; t++)
                            s += (int64_t)(A[i * K + t] - zp) * B[t * N + j];
                        /* the f32 requantization of int8_gemm.h, written out */
                        float v = (float)(int32_t)s * m[j];
                        double q = (double)nearbyintf(v) + 100;
                        yd[i * N + j] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
                    }
                for (int isa = 0; isa < PQ_I8_ISA_COUNT; isa++) {
                    const pq_i8_kernels *k = pq_i8_kernels_for((enum pq_i8_isa)isa);
                    if (!k) continue;
                    memset(y, POISON, (size_t)(M * N));
                    cr_assert_eq(pq_i8_gemm_u8s8(k, (size_t)M, (size_t)N, (size_t)K, A, (size_t)K,
                                                 zp, B, (size_t)N, m, 100, y, (size_t)N, NULL),
                                 PQ_OK);
                    cr_assert(memcmp(y, yd, (size_t)(M * N)) == 0, "%s M %lld N %lld K %lld",
                              k->name, (long long)M, (long long)N, (long long)K);
                    checked++;
                }
                pq_free(A), pq_free(B), pq_free(y), pq_free(yd), pq_free(m);
            }
    cr_log_info("int8 gemm: %d ISA x size runs equal a direct int64 loop", checked);
}

/* ---- dispatch and unsupported cases ---- */

Test(int8_kernels, fast_table_dispatch_and_selection) {
    const pq_i8_kernels *k = pq_i8_kernels_get();
    cr_assert_not_null(k);
    const char *f = getenv("PIQC_ISA");
    if (f && pq_i8_kernels_for(PQ_I8_AVX512) && !strcmp(f, "avx512"))
        cr_assert_eq(k->isa, PQ_I8_AVX512);
    if (f && !strcmp(f, "scalar")) cr_assert_eq(k->isa, PQ_I8_SCALAR);
    if (f && pq_i8_kernels_for(PQ_I8_AMX) && !strcmp(f, "amx")) cr_assert_eq(k->isa, PQ_I8_AMX);
    if (!f && pq_i8_kernels_for(PQ_I8_AMX)) cr_assert_eq(k->isa, PQ_I8_AMX);
    if (!f && !pq_i8_kernels_for(PQ_I8_AMX) && pq_i8_kernels_for(PQ_I8_AVX512))
        cr_assert_eq(k->isa, PQ_I8_AVX512);
    cr_assert_eq(pq_fast_kernels[PQ_OP_QLINEAR_CONV], pq_fast_int8_qlinear_conv);
    cr_assert_eq(pq_fast_kernels[PQ_OP_QLINEAR_MATMUL], pq_fast_int8_qlinear_matmul);
    rng_t r = {7};
    g_compared = 0;
    conv_case(NULL, &r, &conv_geos[2], 128, 1, 1, 0, -1); /* through pq_kernel_run */
    cr_assert_gt(g_compared, 0);
}

Test(int8_kernels, unsupported_cases_leave_output) {
    const pq_i8_kernels *k = pq_i8_kernels_get();
    int64_t da[2] = {3, 4}, db[2] = {4, 5}, dy[2] = {3, 5};
    enum pq_dtype at[3] = {PQ_DTYPE_I8, PQ_DTYPE_U8, PQ_DTYPE_U8};
    enum pq_dtype bt[3] = {PQ_DTYPE_I8, PQ_DTYPE_U8, PQ_DTYPE_I8};
    for (int v = 0; v < 3; v++) {
        qcase c;
        qcase_init(&c, PQ_OP_QLINEAR_MATMUL, 8);
        c.in[0] = tens(at[v], 2, da);
        c.in[1] = scalar(PQ_DTYPE_F32, 0.1);
        c.in[2] = scalar(at[v], 0);
        c.in[3] = tens(bt[v], 2, db);
        c.in[4] = scalar(PQ_DTYPE_F32, 0.1);
        c.in[5] = scalar(bt[v], v == 2 ? 3 : 0); /* v 2: nonzero weight zero point */
        c.in[6] = scalar(PQ_DTYPE_F32, 0.1);
        c.in[7] = scalar(at[v], 0);
        gout o = gout_new(2, dy);
        if (at[v] != PQ_DTYPE_U8) o.t->dtype = PQ_DTYPE_I8;
        pq_tensor *out[1] = {o.t};
        pq_kernel_args a = {
            c.g, &c.g->nodes[c.nid], (const pq_tensor *const *)c.in, 8, out, 1, NULL, 1, &c.err};
        cr_assert_eq(pq_i8_qlinear_matmul_run(k, &a), PQ_ERR_UNSUPPORTED, "variant %d", v);
        for (size_t i = 0; i < o.t->nbytes; i++)
            cr_assert_eq(((uint8_t *)o.t->data)[i], POISON);
        gout_free(&o);
        qcase_free(&c);
    }
}

/* ---- HardSwish / HardSigmoid: the linear step is one fused multiply-add on every ISA ---- */

/* The byte a separate multiply and add would give (the definition before the fused step). */
static uint8_t hard_act_unfused(const pq_i8_act *a, int32_t t, float m, int32_t zp) {
    float r = (float)t * m, h = a->kind == PQ_I8_ACT_HARD_SWISH ? r * (1.0f / 6.0f) : a->alpha * r;
    volatile float hv = h; /* rounded here: no contraction into an FMA */
    h = hv + (a->kind == PQ_I8_ACT_HARD_SWISH ? 0.5f : a->beta);
    h = h < 0.0f ? 0.0f : (h > 1.0f ? 1.0f : h);
    return pq_i8_rqv((a->kind == PQ_I8_ACT_HARD_SWISH ? r * h : h) * a->inv_sy, zp);
}

Test(int8_kernels, hard_act_linear_step_fused) {
    /* r = t * m, t in [2^23, 2^25), runs through nearly every float of [1.43, 2.86) (HardSwish) /
     * [1.25, 2.5) (HardSigmoid), where the linear step's product and sum have exponents one apart
     * (its two roundings sometimes differ from one); 1 / s_y maps the result onto [0, 255]. A
     * one-ulp change there moves the scaled value by ~1e-5: a few accumulators in 10^7 (HardSwish)
     * or 10^6 (HardSigmoid) land on the other side of a rounding boundary. (m must not be a
     * simple fraction: with m = 3 / 2^23 every r / 6 is exact and nothing differs.) */
    static const pq_i8_act acts_hard[] = {
        {PQ_I8_ACT_HARD_SWISH, 0, 0, 85.0f},
        {PQ_I8_ACT_HARD_SIGMOID, 0.2f, 0.5f, 255.0f},
    };
    static const float ms[] = {0.3579101f / 4194304.0f, 0.3127931f / 4194304.0f};
    const int32_t zp = 0;
    for (int ai = 0; ai < NELEM(acts_hard); ai++) {
        const pq_i8_act *a = &acts_hard[ai];
        float m = ms[ai];
        /* accumulators whose byte depends on the single rounding (found by scanning) */
        int32_t acc[64];
        uint8_t want[64];
        int n = 0;
        for (int32_t t = 1 << 23; t < (1 << 25) && n < 64; t++) {
            uint8_t fused = pq_i8_rq1_act(t, m, a, zp);
            if (fused == hard_act_unfused(a, t, m, zp)) continue;
            acc[n] = t;
            want[n++] = fused;
        }
        cr_assert_geq(n, 4, "act %d: only %d accumulators tell the fused step apart", (int)a->kind,
                      n);
        cr_log_info("act %d: %d accumulators tell a fused linear step from a separate one",
                    (int)a->kind, n);
        for (int isa = 0; isa < PQ_I8_ISA_COUNT; isa++) {
            const pq_i8_kernels *k = pq_i8_kernels_for((enum pq_i8_isa)isa);
            if (!k) {
                /* (a warning would fail the run: NEON is never here; tests/neon checks it) */
                cr_log_info("ISA %s not available here: its fused step is not checked here",
                            pq_i8_isa_name((enum pq_i8_isa)isa));
                continue;
            }
            uint8_t y[64];
            k->requant(acc, (size_t)n, 0, m, NULL, a, zp, y);
            for (int i = 0; i < n; i++)
                cr_assert_eq(y[i], want[i], "%s act %d acc %d: %u, scalar definition %u", k->name,
                             (int)a->kind, acc[i], y[i], want[i]);
        }
    }
}
