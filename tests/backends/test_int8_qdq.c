/* Fast QuantizeLinear / DequantizeLinear / byte MaxPool (backends/int8/qdq_ops.c) against the
 * reference kernels, bit for bit, for every ISA the CPU runs (scalar, avx2, avx512; others skipped
 * visibly): length sweeps with SIMD tails, misaligned pointers, poison guards, zero points at both
 * ends, u8 and s8, rounding ties, NaN / infinities / huge values, tiny and negative scales, pooling
 * geometries (pads, strides, dilation, ceil_mode), unsupported cases left untouched and the
 * fast-table dispatch. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backends/fast.h"
#include "backends/int8/qdq_ops.h"
#include "backends/onednn/onednn.h"
#include "backends/ref/ref.h"
#include "ir/alloc.h"
#include "ir/ir.h"

#define GUARD 64
#define POISON 0xA5

static uint64_t g_s = 0x243F6A8885A308D3ULL;
static uint64_t rnd(void) {
    g_s ^= g_s >> 12;
    g_s ^= g_s << 25;
    g_s ^= g_s >> 27;
    return g_s * 2685821657736338717ULL;
}

static const pq_qdq_kernels *need(const char *isa) {
    const pq_qdq_kernels *k = pq_qdq_kernels_for(isa);
    if (!k) cr_skip_test("ISA %s is not available on this CPU/build: skipped", isa);
    return k;
}

/* A one-node graph with n_in inputs and n_out outputs. */
typedef struct {
    pq_graph *g;
    uint32_t nid;
    pq_error err;
    pq_tensor *in[3];
    uint32_t n_in;
} ocase;

static void ocase_init(ocase *c, enum pq_op op, uint32_t nin, uint32_t nout) {
    memset(c, 0, sizeof *c);
    c->g = pq_graph_create(NULL, &c->err);
    cr_assert_not_null(c->g);
    uint32_t ins[3], outs[2];
    for (uint32_t i = 0; i < nin; i++)
        cr_assert_eq(pq_graph_add_value(c->g, NULL, PQ_DTYPE_UNDEFINED, NULL, &ins[i], &c->err),
                     PQ_OK);
    for (uint32_t i = 0; i < nout; i++)
        cr_assert_eq(pq_graph_add_value(c->g, NULL, PQ_DTYPE_UNDEFINED, NULL, &outs[i], &c->err),
                     PQ_OK);
    cr_assert_eq(pq_graph_add_node(c->g, op, "n", ins, nin, outs, nout, &c->nid, &c->err), PQ_OK);
    c->n_in = nin;
}

static void ocase_free(ocase *c) {
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

/* Output tensor inside a poisoned buffer, 4 bytes past a 64-byte boundary: misaligned for every
 * SIMD width but aligned for its element type, as piqc's tensors always are (the reference
 * kernels load typed elements; a byte offset would be undefined behaviour, caught by UBSan). */
#define OUT_SHIFT 4
typedef struct {
    pq_tensor *t;
    uint8_t *base;
    void *own;
} gout;

static gout gout_new(enum pq_dtype dt, int rank, const int64_t *dims) {
    gout o;
    o.t = tens(dt, rank, dims);
    o.base = pq_malloc(o.t->nbytes + 2 * GUARD + OUT_SHIFT);
    cr_assert_not_null(o.base);
    memset(o.base, POISON, o.t->nbytes + 2 * GUARD + OUT_SHIFT);
    o.own = o.t->data;
    o.t->data = o.base + GUARD + OUT_SHIFT;
    return o;
}

static void gout_free(gout *o) {
    o->t->data = o->own;
    pq_tensor_destroy(o->t);
    pq_free(o->base);
}

typedef enum pq_status (*run_fn)(const pq_qdq_kernels *, const pq_kernel_args *);

/* Threads the fast kernel gets (the reference runs with one). */
static int g_threads = 1;

/* Runs the reference and the fast kernel (k and run, or pq_kernel_run when run is NULL) into
 * poisoned outputs; asserts identical bytes and intact guards. Returns bytes compared. */
static size_t compare(ocase *c, const pq_qdq_kernels *k, run_fn run,
                      enum pq_status (*run2)(const pq_kernel_args *), enum pq_dtype ydt, int rank,
                      const int64_t *dims, const char *what) {
    gout r = gout_new(ydt, rank, dims), f = gout_new(ydt, rank, dims);
    pq_tensor *ro[1] = {r.t}, *fo[1] = {f.t};
    pq_kernel_args a = {
        c->g,   &c->g->nodes[c->nid], (const pq_tensor *const *)c->in, c->n_in, ro, 1, NULL, 1,
        &c->err};
    cr_assert_eq(pq_ref_run(&a), PQ_OK, "%s: reference: %s", what, c->err.msg);
    a.out = fo;
    a.n_threads = g_threads;
    enum pq_status st = run ? run(k, &a) : run2 ? run2(&a) : pq_kernel_run(&a);
    cr_assert_eq(st, PQ_OK, "%s: fast kernel status %d: %s", what, (int)st, c->err.msg);
    size_t n = r.t->nbytes;
    const uint8_t *yr = r.t->data, *yf = f.t->data;
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(yf[i], yr[i], "%s: byte %zu: %u, reference %u", what, i, yf[i], yr[i]);
    for (size_t i = 0; i < GUARD + OUT_SHIFT; i++)
        cr_assert_eq(f.base[i], POISON, "%s: byte before the output overwritten", what);
    for (size_t i = 0; i < GUARD; i++)
        cr_assert_eq(f.base[GUARD + OUT_SHIFT + n + i], POISON, "%s: guard byte %zu overwritten",
                     what, i);
    gout_free(&r);
    gout_free(&f);
    return n;
}

/* Input data in a tensor whose data pointer is misaligned by off bytes (copy kept alive). */
static void misalign(pq_tensor *t, size_t off, void **keep) {
    uint8_t *b = pq_malloc(t->nbytes + off + 1);
    cr_assert_not_null(b);
    memcpy(b + off, t->data, t->nbytes);
    *keep = t->data;
    t->data = b + off;
}
static void unmisalign(pq_tensor *t, size_t off, void *keep) {
    pq_free((uint8_t *)t->data - off);
    t->data = keep;
}

static const size_t lens[] = {0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1000, 4099};
#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* f32 data around the quantization grid of s: ties (k + 0.5) s, near ties, far outside, specials.
 */
static float sample(float s, int kind) {
    int64_t k = (int64_t)(rnd() % 700) - 350;
    switch (kind % 8) {
    case 0:
        return ((float)k + 0.5f) * s;
    case 1:
        return nextafterf(((float)k + 0.5f) * s, INFINITY);
    case 2:
        return (float)k * s;
    case 3:
        return ((float)(rnd() % 2000000) / 1000.0f - 1000.0f) * s;
    case 4: {
        static const float sp[] = {NAN,          INFINITY, -INFINITY, 0.0f,        -0.0f,
                                   3e38f,        -3e38f,   1e-40f,    16777216.0f, 16777217.0f,
                                   -16777216.0f, 2.5f,     -2.5f};
        return sp[rnd() % (sizeof sp / sizeof sp[0])];
    }
    default:
        return ((float)(rnd() % 100000) / 1000.0f - 50.0f) * s;
    }
}

static void sweep_quant(const pq_qdq_kernels *k, run_fn run) {
    static const float scales[] = {1.0f, 0.0173f, 3.5f, 1e-20f, -0.25f, 0.0f};
    static const int zp_u8[] = {0, 128, 255}, zp_s8[] = {-128, 0, 127};
    size_t bytes = 0;
    int cases = 0;
    for (int u = 0; u < 2; u++)
        for (int si = 0; si < NELEM(scales); si++)
            for (int zi = 0; zi < 4; zi++)
                for (int li = 0; li < NELEM(lens); li++) {
                    enum pq_dtype qt = u ? PQ_DTYPE_U8 : PQ_DTYPE_I8;
                    ocase c;
                    bool has_zp = zi < 3;
                    ocase_init(&c, PQ_OP_QUANTIZE_LINEAR, has_zp ? 3 : 2, 1);
                    int64_t n = (int64_t)lens[li];
                    c.in[0] = tens(PQ_DTYPE_F32, 1, &n);
                    for (int64_t i = 0; i < n; i++)
                        ((float *)c.in[0]->data)[i] = sample(scales[si], (int)(rnd() % 8));
                    c.in[1] = tens(PQ_DTYPE_F32, 0, NULL);
                    *(float *)c.in[1]->data = scales[si];
                    if (has_zp) {
                        c.in[2] = tens(qt, 0, NULL);
                        int z = u ? zp_u8[zi] : zp_s8[zi];
                        *(uint8_t *)c.in[2]->data = (uint8_t)z;
                    } else {
                        qt = PQ_DTYPE_U8; /* no zero point: u8 */
                    }
                    void *keep;
                    misalign(c.in[0], 4 * (size_t)(li % 3 + 1), &keep);
                    char what[160];
                    snprintf(what, sizeof what, "%s quantize %s n %lld s %g zp#%d",
                             k ? k->name : "table", pq_dtype_name(qt), (long long)n,
                             (double)scales[si], zi);
                    bytes += compare(&c, k, run, NULL, qt, 1, &n, what);
                    unmisalign(c.in[0], 4 * (size_t)(li % 3 + 1), keep);
                    ocase_free(&c);
                    cases++;
                }
    cr_log_info("quantize %s: %d cases, %zu bytes bit-exact vs reference", k ? k->name : "table",
                cases, bytes);
}

static void sweep_dequant(const pq_qdq_kernels *k, run_fn run) {
    static const float scales[] = {1.0f, 0.0173f, 3e38f, 1e-30f, -0.25f};
    static const int zp_u8[] = {0, 128, 255}, zp_s8[] = {-128, 0, 127};
    size_t bytes = 0;
    int cases = 0;
    for (int u = 0; u < 2; u++)
        for (int si = 0; si < NELEM(scales); si++)
            for (int zi = 0; zi < 4; zi++)
                for (int li = 0; li < NELEM(lens); li++) {
                    enum pq_dtype qt = u ? PQ_DTYPE_U8 : PQ_DTYPE_I8;
                    bool has_zp = zi < 3;
                    ocase c;
                    ocase_init(&c, PQ_OP_DEQUANTIZE_LINEAR, has_zp ? 3 : 2, 1);
                    int64_t n = (int64_t)lens[li];
                    c.in[0] = tens(qt, 1, &n);
                    for (int64_t i = 0; i < n; i++)
                        ((uint8_t *)c.in[0]->data)[i] =
                            (uint8_t)(i < 256 ? (uint64_t)i : rnd() >> 50);
                    c.in[1] = tens(PQ_DTYPE_F32, 1, (const int64_t[]){1}); /* [1]: per tensor */
                    *(float *)c.in[1]->data = scales[si];
                    if (has_zp) {
                        c.in[2] = tens(qt, 1, (const int64_t[]){1});
                        *(uint8_t *)c.in[2]->data = (uint8_t)(u ? zp_u8[zi] : zp_s8[zi]);
                    }
                    void *keep;
                    misalign(c.in[0], (size_t)(li % 3), &keep);
                    char what[160];
                    snprintf(what, sizeof what, "%s dequantize %s n %lld s %g zp#%d",
                             k ? k->name : "table", pq_dtype_name(qt), (long long)n,
                             (double)scales[si], zi);
                    bytes += compare(&c, k, run, NULL, PQ_DTYPE_F32, 1, &n, what);
                    unmisalign(c.in[0], (size_t)(li % 3), keep);
                    ocase_free(&c);
                    cases++;
                }
    cr_log_info("dequantize %s: %d cases, %zu bytes bit-exact vs reference", k ? k->name : "table",
                cases, bytes);
}

Test(int8_qdq, quantize_scalar) {
    sweep_quant(need("scalar"), pq_qdq_quantize_run);
}
Test(int8_qdq, quantize_avx2) {
    sweep_quant(need("avx2"), pq_qdq_quantize_run);
}
Test(int8_qdq, quantize_avx512) {
    sweep_quant(need("avx512"), pq_qdq_quantize_run);
}
Test(int8_qdq, quantize_fast_table) {
    sweep_quant(NULL, NULL);
}
Test(int8_qdq, dequantize_scalar) {
    sweep_dequant(need("scalar"), pq_qdq_dequantize_run);
}
Test(int8_qdq, dequantize_avx2) {
    sweep_dequant(need("avx2"), pq_qdq_dequantize_run);
}
Test(int8_qdq, dequantize_avx512) {
    sweep_dequant(need("avx512"), pq_qdq_dequantize_run);
}
Test(int8_qdq, dequantize_fast_table) {
    sweep_dequant(NULL, NULL);
}

/* Per-axis parameters, f32 outputs of Quantize, i32 inputs: UNSUPPORTED, output untouched. */
Test(int8_qdq, unsupported_untouched) {
    const pq_qdq_kernels *k = pq_qdq_kernels_get();
    ocase c;
    ocase_init(&c, PQ_OP_QUANTIZE_LINEAR, 3, 1);
    int64_t d[2] = {3, 4}, d3 = 3;
    c.in[0] = tens(PQ_DTYPE_F32, 2, d);
    c.in[1] = tens(PQ_DTYPE_F32, 1, &d3); /* per axis */
    c.in[2] = tens(PQ_DTYPE_U8, 1, &d3);
    gout o = gout_new(PQ_DTYPE_U8, 2, d);
    memset(o.t->data, POISON, o.t->nbytes);
    pq_tensor *outs[1] = {o.t};
    pq_kernel_args a = {
        c.g, &c.g->nodes[c.nid], (const pq_tensor *const *)c.in, 3, outs, 1, NULL, 1, &c.err};
    cr_assert_eq(pq_qdq_quantize_run(k, &a), PQ_ERR_UNSUPPORTED);
    cr_assert_eq(pq_qdq_dequantize_run(k, &a), PQ_ERR_UNSUPPORTED);
    for (size_t i = 0; i < o.t->nbytes; i++)
        cr_assert_eq(((uint8_t *)o.t->data)[i], POISON);
    cr_assert_eq(c.err.msg[0], '\0');
    gout_free(&o);
    ocase_free(&c);
}

/* ---- MaxPool on bytes ---- */

typedef struct {
    int64_t H, W, k[2], s[2], d[2], p[4];
    int ceil;
} pool_geo;

/* A MaxPool node with pg's attributes. */
static void pool_node(ocase *c, const pool_geo *pg) {
    ocase_init(c, PQ_OP_MAX_POOL, 1, 1);
    pq_error e;
    cr_assert_eq(pq_node_set_ints(c->g, c->nid, "kernel_shape", pg->k, 2, &e), PQ_OK);
    cr_assert_eq(pq_node_set_ints(c->g, c->nid, "strides", pg->s, 2, &e), PQ_OK);
    cr_assert_eq(pq_node_set_ints(c->g, c->nid, "dilations", pg->d, 2, &e), PQ_OK);
    cr_assert_eq(pq_node_set_ints(c->g, c->nid, "pads", pg->p, 4, &e), PQ_OK);
    if (pg->ceil) cr_assert_eq(pq_node_set_int(c->g, c->nid, "ceil_mode", 1, &e), PQ_OK);
}

/* Node c (pool_node(pg)) on a new random input of pg's plane shape, against the reference. */
static void pool_run(ocase *c, const pool_geo *pg, enum pq_dtype dt, int via_table) {
    int64_t dx[4] = {2, 3, pg->H, pg->W}, dy[4] = {2, 3, 0, 0};
    for (int i = 0; i < 2; i++) {
        int64_t in = i ? pg->W : pg->H,
                num = in + pg->p[i] + pg->p[i + 2] - ((pg->k[i] - 1) * pg->d[i] + 1);
        int64_t o = pg->ceil ? (num + pg->s[i] - 1) / pg->s[i] + 1 : num / pg->s[i] + 1;
        if (pg->ceil && (o - 1) * pg->s[i] >= in + pg->p[i]) o--; /* last window starts inside */
        dy[2 + i] = o;
    }
    pq_tensor_destroy(c->in[0]);
    c->in[0] = tens(dt, 4, dx);
    for (size_t i = 0; i < c->in[0]->nbytes; i++)
        ((uint8_t *)c->in[0]->data)[i] = (uint8_t)(rnd() >> 48);
    char what[200];
    snprintf(
        what, sizeof what,
        "maxpool %s %lldx%lld k %lldx%lld s %lld,%lld d %lld,%lld pads %lld,%lld,%lld,%lld ceil %d",
        pq_dtype_name(dt), (long long)pg->H, (long long)pg->W, (long long)pg->k[0],
        (long long)pg->k[1], (long long)pg->s[0], (long long)pg->s[1], (long long)pg->d[0],
        (long long)pg->d[1], (long long)pg->p[0], (long long)pg->p[1], (long long)pg->p[2],
        (long long)pg->p[3], pg->ceil);
    compare(c, NULL, NULL, via_table ? NULL : pq_i8_max_pool_run, dt, 4, dy, what);
}

static void pool_case(const pool_geo *pg, enum pq_dtype dt, int via_table) {
    ocase c;
    pool_node(&c, pg);
    pool_run(&c, pg, dt, via_table);
    ocase_free(&c);
}

Test(int8_qdq, max_pool_bytes) {
    static const pool_geo geos[] = {
        {112, 112, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 0}, /* resnet stem */
        {9, 7, {2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 0},
        {9, 7, {2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 1},
        {10, 11, {3, 2}, {1, 3}, {2, 1}, {2, 0, 1, 1}, 0},
        {1, 1, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 0},
        {5, 6, {5, 6}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 0},
        {13, 13, {3, 3}, {2, 2}, {1, 1}, {1, 1, 2, 2}, 1},
        {6, 64, {2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 0}, /* stride 2: two full 16-byte steps */
        {8, 8, {2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 0},  /* 2x2/2 fast path: 4 outputs a row */
        {7, 37, {2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 0}, /* 2x2/2: 18 outputs, odd leftovers */
        {5, 67, {3, 3}, {2, 2}, {1, 1}, {0, 1, 0, 1}, 1}, /* stride 2: 16-byte steps and a tail */
    };
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < NELEM(geos); i++) {
            pool_case(&geos[i], PQ_DTYPE_U8, t);
            pool_case(&geos[i], PQ_DTYPE_I8, t);
        }
}

/* The 2x2 / stride 2 path on small planes (every width up to 17 and odd heights: whole 16-byte
 * loads and 8-byte stores near the ends of the input and of the output), and split over two
 * threads (planes of 3 outputs a row: each task's last stores stay inside its planes). */
Test(int8_qdq, max_pool_2x2_small_planes) {
    for (int64_t W = 2; W <= 17; W++)
        for (int64_t H = 2; H <= 5; H++) {
            pool_geo g = {H, W, {2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 0};
            pool_case(&g, PQ_DTYPE_U8, 0);
            pool_case(&g, PQ_DTYPE_I8, 1);
        }
    g_threads = 2; /* 6 planes of 42000 x 3 windows: over the 1M threading threshold */
    pool_geo g = {84001, 7, {2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 0};
    pool_case(&g, PQ_DTYPE_U8, 0);
    g_threads = 1;
}

/* Planes of at most 64 bytes (the AVX-512 VBMI permute kernel where the CPU has it): one node per
 * window shape with a bound session cache, its inputs changing shape from call to call (the kept
 * tap pattern made again) and back, u8 and s8; then planes just over 64 bytes. */
Test(int8_qdq, max_pool_small_planes_cached) {
    static const pool_geo wins[] = {
        {0, 0, {2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 0}, /* the digits CNN's */
        {0, 0, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 0},
        {0, 0, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 1},
        {0, 0, {2, 3}, {1, 2}, {2, 1}, {1, 0, 0, 2}, 0},
        {0, 0, {4, 4}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 0}, /* 16 taps */
        {0, 0, {5, 4}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 0}, /* 20 taps: the general kernel */
    };
    static const int64_t hw[][2] = {{8, 8}, {7, 9},  {8, 8}, {4, 4}, {1, 64},
                                    {8, 8}, {5, 12}, {6, 6}, {9, 8}, {8, 9}};
    for (int w = 0; w < NELEM(wins); w++) {
        /* a cache per node (entries are per node address, and a new graph may reuse one) */
        pq_onednn_cache *cache = pq_onednn_cache_create();
        cr_assert_not_null(cache);
        pq_onednn_cache *prev = pq_onednn_cache_bind(cache);
        ocase c;
        pool_node(&c, &wins[w]);
        for (int i = 0; i < NELEM(hw); i++) {
            pool_geo g = wins[w];
            g.H = hw[i][0];
            g.W = hw[i][1];
            if (g.H + g.p[0] + g.p[2] < (g.k[0] - 1) * g.d[0] + 1 ||
                g.W + g.p[1] + g.p[3] < (g.k[1] - 1) * g.d[1] + 1)
                continue; /* no full window */
            pool_run(&c, &g, i % 2 ? PQ_DTYPE_I8 : PQ_DTYPE_U8, i % 3 == 0);
        }
        ocase_free(&c);
        pq_onednn_cache_bind(prev);
        pq_onednn_cache_destroy(cache);
    }
}

/* 3x3 stride-2 windows (the ResNet stem's, 16 outputs per vector step): every width 1..70 with
 * left / right pads 0 and 1, ceil_mode on and off, u8 and s8. */
Test(int8_qdq, max_pool_3x3_stride2_widths) {
    for (int64_t W = 1; W <= 70; W++)
        for (int pd = 0; pd < 4; pd++) {
            int64_t pl = pd & 1, pr = pd >> 1;
            pool_geo g = {5, W, {3, 3}, {2, 2}, {1, 1}, {1, pl, 1, pr}, (int)(W % 2)};
            if (W + pl + pr < 3) continue; /* no full window */
            pool_case(&g, W % 3 ? PQ_DTYPE_U8 : PQ_DTYPE_I8, (int)(W % 2));
        }
}

/* f32 input or an Indices output: the byte pool declines, output untouched. */
Test(int8_qdq, max_pool_unsupported) {
    ocase c;
    ocase_init(&c, PQ_OP_MAX_POOL, 1, 2);
    pq_error e;
    int64_t k[2] = {2, 2}, dx[4] = {1, 1, 4, 4}, dy[4] = {1, 1, 2, 2};
    cr_assert_eq(pq_node_set_ints(c.g, c.nid, "kernel_shape", k, 2, &e), PQ_OK);
    cr_assert_eq(pq_node_set_ints(c.g, c.nid, "strides", k, 2, &e), PQ_OK);
    c.in[0] = tens(PQ_DTYPE_U8, 4, dx);
    gout o = gout_new(PQ_DTYPE_U8, 4, dy), ix = gout_new(PQ_DTYPE_I64, 4, dy);
    memset(o.t->data, POISON, o.t->nbytes);
    pq_tensor *outs[2] = {o.t, ix.t};
    pq_kernel_args a = {
        c.g, &c.g->nodes[c.nid], (const pq_tensor *const *)c.in, 1, outs, 2, NULL, 1, &c.err};
    cr_assert_eq(pq_i8_max_pool_run(&a), PQ_ERR_UNSUPPORTED);
    pq_tensor *xf = tens(PQ_DTYPE_F32, 4, dx);
    const pq_tensor *fin[1] = {xf};
    a.in = fin;
    a.n_out = 1;
    cr_assert_eq(pq_i8_max_pool_run(&a), PQ_ERR_UNSUPPORTED);
    for (size_t i = 0; i < o.t->nbytes; i++)
        cr_assert_eq(((uint8_t *)o.t->data)[i], POISON);
    pq_tensor_destroy(xf);
    gout_free(&o);
    gout_free(&ix);
    ocase_free(&c);
}
