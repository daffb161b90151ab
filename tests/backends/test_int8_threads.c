/* QLinearConv / QLinearMatMul (backends/int8/int8_ops.c) at 1-4 threads (pq_parallel_for over
 * im2col tiles, output-channel blocks and weight panels) and with the session cache of packed
 * weights (pq_onednn_cache bound, weight a graph constant): bytes identical to the reference for
 * every ISA the CPU runs (others skipped visibly); the cache holds one entry per node, is reused
 * across runs and rebuilt when the weight's data or the input zero point changes. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backends/int8/int8_gemm.h"
#include "backends/int8/int8_ops.h"
#include "backends/onednn/onednn.h"
#include "backends/ref/ref.h"
#include "backends/threadpool.h"
#include "ir/alloc.h"
#include "ir/ir.h"

static uint64_t g_s = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void) {
    g_s ^= g_s >> 12;
    g_s ^= g_s << 25;
    g_s ^= g_s >> 27;
    return g_s * 2685821657736338717ULL;
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
static void fill(pq_tensor *t) {
    for (size_t i = 0; i < t->nbytes; i++)
        ((uint8_t *)t->data)[i] = (uint8_t)(rnd() >> 56);
    if (t->dtype == PQ_DTYPE_I8) /* symmetric weights like the pass makes */
        for (size_t i = 0; i < t->nbytes; i++)
            if (((int8_t *)t->data)[i] == -128) ((int8_t *)t->data)[i] = -127;
}

/* One QLinear node; input 3 (the weight) is a graph constant (owned by the graph). */
typedef struct {
    pq_graph *g;
    uint32_t nid;
    pq_error err;
    const pq_tensor *in[9];
    pq_tensor *own[9];
    uint32_t n_in;
} lcase;

static void lcase_init(lcase *c, enum pq_op op, uint32_t nin, pq_tensor *w) {
    memset(c, 0, sizeof *c);
    c->g = pq_graph_create(NULL, &c->err);
    cr_assert_not_null(c->g);
    uint32_t ins[9], out;
    for (uint32_t i = 0; i < nin; i++) {
        if (i == 3)
            cr_assert_eq(pq_graph_add_constant(c->g, "w", w, &ins[i], &c->err), PQ_OK);
        else
            cr_assert_eq(pq_graph_add_value(c->g, NULL, PQ_DTYPE_UNDEFINED, NULL, &ins[i], &c->err),
                         PQ_OK);
    }
    cr_assert_eq(pq_graph_add_value(c->g, NULL, PQ_DTYPE_UNDEFINED, NULL, &out, &c->err), PQ_OK);
    cr_assert_eq(pq_graph_add_node(c->g, op, "q", ins, nin, &out, 1, &c->nid, &c->err), PQ_OK);
    c->in[3] = c->g->values[ins[3]].constant;
    c->n_in = nin;
}

static void lcase_free(lcase *c) {
    for (uint32_t i = 0; i < 9; i++)
        pq_tensor_destroy(c->own[i]);
    pq_graph_destroy(c->g);
}

static void lcase_set(lcase *c, uint32_t i, pq_tensor *t) {
    c->own[i] = t;
    c->in[i] = t;
}

typedef enum pq_status (*run_fn)(const pq_i8_kernels *, const pq_kernel_args *);

/* Reference output, then k with each thread count: identical bytes. */
static void check_threads(lcase *c, const pq_i8_kernels *k, run_fn run, int rank,
                          const int64_t *dims, const char *what) {
    pq_tensor *r = tens(PQ_DTYPE_U8, rank, dims), *f = tens(PQ_DTYPE_U8, rank, dims);
    pq_tensor *ro[1] = {r}, *fo[1] = {f};
    pq_kernel_args a = {c->g, &c->g->nodes[c->nid], c->in, c->n_in, ro, 1, NULL, 1, &c->err};
    cr_assert_eq(pq_ref_run(&a), PQ_OK, "%s: reference: %s", what, c->err.msg);
    a.out = fo;
    for (int th = 1; th <= 4; th++) {
        memset(f->data, 0xA5, f->nbytes);
        a.n_threads = th;
        cr_assert_eq(run(k, &a), PQ_OK, "%s: %d threads: %s", what, th, c->err.msg);
        cr_assert_eq(memcmp(f->data, r->data, r->nbytes), 0, "%s: %s, %d threads differ", what,
                     k->name, th);
    }
    pq_tensor_destroy(r);
    pq_tensor_destroy(f);
}

typedef struct {
    int64_t N, C, H, W, M, K, s, p, g;
} geo;

/* Builds a QLinearConv case; *dy gets the output shape. */
static void conv_build(lcase *c, const geo *q, int64_t *dy, int zpx) {
    int64_t dw[4] = {q->M, q->C / q->g, q->K, q->K}, dx[4] = {q->N, q->C, q->H, q->W},
            dm[1] = {q->M};
    pq_tensor *w = tens(PQ_DTYPE_I8, 4, dw);
    fill(w);
    lcase_init(c, PQ_OP_QLINEAR_CONV, 9, w);
    int64_t pads[4] = {q->p, q->p, q->p, q->p}, st[2] = {q->s, q->s};
    cr_assert_eq(pq_node_set_ints(c->g, c->nid, "pads", pads, 4, &c->err), PQ_OK);
    cr_assert_eq(pq_node_set_ints(c->g, c->nid, "strides", st, 2, &c->err), PQ_OK);
    cr_assert_eq(pq_node_set_int(c->g, c->nid, "group", q->g, &c->err), PQ_OK);
    lcase_set(c, 0, tens(PQ_DTYPE_U8, 4, dx));
    fill(c->own[0]);
    lcase_set(c, 1, scalar(PQ_DTYPE_F32, 0.02));
    lcase_set(c, 2, scalar(PQ_DTYPE_U8, zpx));
    pq_tensor *sw = tens(PQ_DTYPE_F32, 1, dm);
    for (int64_t i = 0; i < q->M; i++)
        ((float *)sw->data)[i] = 0.001f * (float)(1 + rnd() % 9);
    lcase_set(c, 4, sw);
    lcase_set(c, 5, tens(PQ_DTYPE_I8, 1, dm));
    double kk = (double)(q->C / q->g * q->K * q->K);
    lcase_set(c, 6, scalar(PQ_DTYPE_F32, 0.02 * 0.005 * sqrt(kk) * 127 * 40));
    lcase_set(c, 7, scalar(PQ_DTYPE_U8, 100));
    pq_tensor *b = tens(PQ_DTYPE_I32, 1, dm);
    for (int64_t i = 0; i < q->M; i++)
        ((int32_t *)b->data)[i] = (int32_t)(rnd() % 20001) - 10000;
    lcase_set(c, 8, b);
    dy[0] = q->N;
    dy[1] = q->M;
    dy[2] = (q->H + 2 * q->p - q->K) / q->s + 1;
    dy[3] = (q->W + 2 * q->p - q->K) / q->s + 1;
}

static const geo geos[] = {
    {1, 16, 20, 20, 40, 3, 1, 1, 1},  /* several tiles */
    {2, 8, 17, 19, 24, 3, 2, 1, 1},   /* batch 2, stride 2, tails */
    {1, 64, 14, 14, 70, 1, 1, 0, 1},  /* pointwise */
    {1, 16, 12, 12, 32, 3, 1, 1, 2},  /* groups */
    {1, 64, 5, 5, 200, 3, 1, 1, 1},   /* one tile: output-channel blocks */
    {1, 3, 40, 40, 16, 7, 2, 3, 1},   /* stem-like, K = 147 (K tail) */
    {1, 32, 16, 16, 32, 3, 1, 1, 32}, /* depthwise */
    {1, 24, 15, 15, 24, 5, 2, 2, 24}, /* depthwise 5x5 stride 2: rows split across threads */
    {2, 16, 9, 9, 16, 3, 1, 1, 16},   /* depthwise, one channel block per image */
    {1, 16, 29, 30, 16, 3, 1, 1, 16}, /* depthwise, output columns in lanes: odd row splits */
    {1, 8, 60, 64, 8, 3, 2, 1, 8},    /* the same at stride 2 */
    {2, 3, 33, 64, 16, 3, 2, 1, 1},   /* stem (AVX-512 stem kernel): row ranges, batch 2 */
    {2, 128, 12, 12, 64, 3, 2, 1, 1}, /* AMX implicit GEMM: stride phases, batch 2 */
};

static void conv_threads(enum pq_i8_isa isa) {
    const pq_i8_kernels *k = pq_i8_kernels_for(isa);
    if (!k) cr_skip_test("ISA %s is not available on this CPU/build: skipped", pq_i8_isa_name(isa));
    pq_i8_thread_grain(0.0); /* split every test shape, however small */
    for (size_t i = 0; i < sizeof geos / sizeof geos[0]; i++) {
        lcase c;
        int64_t dy[4];
        conv_build(&c, &geos[i], dy, (int)(rnd() % 256));
        char what[64];
        snprintf(what, sizeof what, "conv geometry %zu", i);
        check_threads(&c, k, pq_i8_qlinear_conv_run, 4, dy, what);
        lcase_free(&c);
    }
}

static void matmul_threads(enum pq_i8_isa isa) {
    const pq_i8_kernels *k = pq_i8_kernels_for(isa);
    if (!k) cr_skip_test("ISA %s is not available on this CPU/build: skipped", pq_i8_isa_name(isa));
    pq_i8_thread_grain(0.0);
    static const int64_t shapes[][3] = {{1, 576, 1024}, {3, 300, 700}, {5, 64, 33}};
    for (size_t i = 0; i < 3; i++) {
        int64_t R = shapes[i][0], K = shapes[i][1], N = shapes[i][2];
        int64_t da[2] = {R, K}, db[2] = {K, N}, dy[2] = {R, N}, dn[1] = {N};
        pq_tensor *w = tens(PQ_DTYPE_I8, 2, db);
        fill(w);
        lcase c;
        lcase_init(&c, PQ_OP_QLINEAR_MATMUL, 8, w);
        lcase_set(&c, 0, tens(PQ_DTYPE_U8, 2, da));
        fill(c.own[0]);
        lcase_set(&c, 1, scalar(PQ_DTYPE_F32, 0.02));
        lcase_set(&c, 2, scalar(PQ_DTYPE_U8, 7));
        pq_tensor *sw = tens(PQ_DTYPE_F32, 1, dn);
        for (int64_t j = 0; j < N; j++)
            ((float *)sw->data)[j] = 0.001f * (float)(1 + rnd() % 9);
        lcase_set(&c, 4, sw);
        lcase_set(&c, 5, tens(PQ_DTYPE_I8, 1, dn));
        lcase_set(&c, 6, scalar(PQ_DTYPE_F32, 0.02 * 0.005 * sqrt((double)K) * 127 * 40));
        lcase_set(&c, 7, scalar(PQ_DTYPE_U8, 128));
        char what[64];
        snprintf(what, sizeof what, "matmul %lldx%lldx%lld", (long long)R, (long long)K,
                 (long long)N);
        check_threads(&c, k, pq_i8_qlinear_matmul_run, 2, dy, what);
        lcase_free(&c);
    }
}

Test(int8_threads, conv_scalar) {
    conv_threads(PQ_I8_SCALAR);
}
Test(int8_threads, conv_avx2) {
    conv_threads(PQ_I8_AVX2);
}
Test(int8_threads, conv_avxvnni) {
    conv_threads(PQ_I8_AVXVNNI);
}
Test(int8_threads, conv_avx512) {
    conv_threads(PQ_I8_AVX512);
}
Test(int8_threads, conv_amx) {
    conv_threads(PQ_I8_AMX);
}
Test(int8_threads, matmul_scalar) {
    matmul_threads(PQ_I8_SCALAR);
}
Test(int8_threads, matmul_avx2) {
    matmul_threads(PQ_I8_AVX2);
}
Test(int8_threads, matmul_avxvnni) {
    matmul_threads(PQ_I8_AVXVNNI);
}
/* The same bytes when the jobs run on oneDNN's OpenMP team (the runner sessions install). */
Test(int8_threads, conv_on_openmp_team) {
    pq_onednn_parallel_install(1);
    pq_onednn_parallel_force(1);
    conv_threads(pq_i8_kernels_get()->isa);
    pq_onednn_parallel_force(-1);
    pq_parallel_set_runner(NULL);
}

Test(int8_threads, matmul_avx512) {
    matmul_threads(PQ_I8_AVX512);
}
Test(int8_threads, matmul_amx) {
    matmul_threads(PQ_I8_AMX);
}

/* With a bound session cache: one entry, reused; a new weight content or input zero point gives
 * the new reference result (the packed weights and corrections are rebuilt). */
Test(int8_threads, session_cache_reuse_and_rebuild) {
    const pq_i8_kernels *k = pq_i8_kernels_get();
    pq_onednn_cache *cache = pq_onednn_cache_create();
    cr_assert_not_null(cache);
    pq_onednn_cache *prev = pq_onednn_cache_bind(cache);
    lcase c;
    int64_t dy[4];
    conv_build(&c, &geos[0], dy, 3);
    for (int run = 0; run < 3; run++)
        check_threads(&c, k, pq_i8_qlinear_conv_run, 4, dy, "cached conv");
    /* two entries per node: the packed weights and the call plan (int8_conv_plan.h) */
    cr_assert_eq(pq_onednn_cache_entries(cache), 2);
    fill((pq_tensor *)c.in[3]); /* new weight values in place (the sampled words change) */
    check_threads(&c, k, pq_i8_qlinear_conv_run, 4, dy, "cached conv, new weights");
    *(uint8_t *)c.own[2]->data = 200; /* new input zero point: new corrections */
    check_threads(&c, k, pq_i8_qlinear_conv_run, 4, dy, "cached conv, new zero point");
    /* new scales in place: the cached multipliers must be made again (regression: a plan that
     * kept them gave the old requantization) */
    *(float *)c.own[1]->data = 0.03f;
    check_threads(&c, k, pq_i8_qlinear_conv_run, 4, dy, "cached conv, new x scale");
    ((float *)c.own[4]->data)[1] *= 1.5f;
    check_threads(&c, k, pq_i8_qlinear_conv_run, 4, dy, "cached conv, new w scale");
    *(float *)c.own[6]->data *= 0.75f;
    check_threads(&c, k, pq_i8_qlinear_conv_run, 4, dy, "cached conv, new y scale");
    cr_assert_eq(pq_onednn_cache_entries(cache), 2);
    pq_onednn_cache_bind(prev);
    check_threads(&c, k, pq_i8_qlinear_conv_run, 4, dy, "unbound");
    pq_onednn_cache_destroy(cache);
    lcase_free(&c);
}
