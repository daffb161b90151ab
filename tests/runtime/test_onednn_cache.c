/* The session-owned oneDNN cache (backends/onednn/onednn.h, runtime/session.c): repeated runs
 * reuse each node's primitive and reordered weights, and a changed constant, a replaced constant
 * or a new input shape gives the reference kernel's result again. ASan checks that destroying the
 * session frees everything. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "backends/onednn/onednn.h"
#include "runtime/runtime.h"

/* |fast - ref| <= TOL * (1 + |ref|), as in tests/backends/test_onednn.c */
#define TOL 1e-4

static pq_tensor *rand_tensor(int rank, const int64_t *dims, uint32_t seed) {
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_F32, rank, dims, NULL);
    cr_assert_not_null(t);
    float *d = t->data;
    uint32_t s = seed * 2654435761u + 1;
    for (int64_t i = 0; i < pq_tensor_numel(t); i++) {
        s = s * 1664525u + 1013904223u;
        d[i] = (float)((s >> 8) & 0xFFFF) / 32768.0f - 1.0f;
    }
    return t;
}

typedef struct model {
    pq_graph *g;
    uint32_t conv, dw, gemm; /* node ids */
    uint32_t w1, w2, wg;     /* value ids of the constant weights */
} model;

static uint32_t add_const(pq_graph *g, const char *name, int rank, const int64_t *dims,
                          uint32_t seed) {
    pq_error err;
    uint32_t v;
    cr_assert_eq(pq_graph_add_value(g, name, PQ_DTYPE_F32, NULL, &v, &err), PQ_OK);
    cr_assert_eq(pq_graph_set_constant(g, v, rand_tensor(rank, dims, seed), &err), PQ_OK);
    return v;
}

static uint32_t add_value(pq_graph *g, const char *name) {
    pq_error err;
    uint32_t v;
    cr_assert_eq(pq_graph_add_value(g, name, PQ_DTYPE_UNDEFINED, NULL, &v, &err), PQ_OK);
    return v;
}

/* x f32[N, 8, 12, 12] -> Conv 8->16 3x3 pad 1 (+bias) -> depthwise Conv 16 3x3 stride 2 pad 1
 * -> Reshape [N, 576] -> Gemm (transB, W [32, 576], C [32]) -> y */
static model build(void) {
    model m;
    pq_error err;
    pq_graph *g = m.g = pq_graph_create(NULL, &err);
    pq_shape s = pq_shape_unknown();
    s.rank = 4;
    s.dims[0] = (pq_dim){-1, pq_graph_intern_symbol(g, "N")};
    s.dims[1] = pq_dim_of(8);
    s.dims[2] = pq_dim_of(12);
    s.dims[3] = pq_dim_of(12);
    uint32_t x;
    cr_assert_eq(pq_graph_add_value(g, "x", PQ_DTYPE_F32, &s, &x, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_input(g, x, &err), PQ_OK);
    const int64_t w1d[4] = {16, 8, 3, 3}, b1d[1] = {16}, w2d[4] = {16, 1, 3, 3};
    const int64_t wgd[2] = {32, 576}, cd[1] = {32}, shd[1] = {2};
    m.w1 = add_const(g, "w1", 4, w1d, 1);
    uint32_t b1 = add_const(g, "b1", 1, b1d, 2);
    m.w2 = add_const(g, "w2", 4, w2d, 3);
    m.wg = add_const(g, "wg", 2, wgd, 4);
    uint32_t cg = add_const(g, "cg", 1, cd, 5);
    uint32_t shape;
    cr_assert_eq(pq_graph_add_value(g, "shape", PQ_DTYPE_I64, NULL, &shape, &err), PQ_OK);
    pq_tensor *sh = pq_tensor_create(PQ_DTYPE_I64, 1, shd, NULL);
    ((int64_t *)sh->data)[0] = 0;
    ((int64_t *)sh->data)[1] = 576;
    cr_assert_eq(pq_graph_set_constant(g, shape, sh, &err), PQ_OK);
    uint32_t a = add_value(g, "a"), b = add_value(g, "b"), r = add_value(g, "r");
    uint32_t y = add_value(g, "y");
    const int64_t p1[4] = {1, 1, 1, 1}, st2[2] = {2, 2};
    uint32_t in1[3] = {x, m.w1, b1}, in2[2] = {a, m.w2}, in3[2] = {b, shape},
             in4[3] = {r, m.wg, cg};
    cr_assert_eq(pq_graph_add_node(g, PQ_OP_CONV, "conv", in1, 3, &a, 1, &m.conv, &err), PQ_OK);
    cr_assert_eq(pq_node_set_ints(g, m.conv, "pads", p1, 4, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_node(g, PQ_OP_CONV, "dw", in2, 2, &b, 1, &m.dw, &err), PQ_OK);
    cr_assert_eq(pq_node_set_ints(g, m.dw, "pads", p1, 4, &err), PQ_OK);
    cr_assert_eq(pq_node_set_ints(g, m.dw, "strides", st2, 2, &err), PQ_OK);
    cr_assert_eq(pq_node_set_int(g, m.dw, "group", 16, &err), PQ_OK);
    uint32_t rn;
    cr_assert_eq(pq_graph_add_node(g, PQ_OP_RESHAPE, "reshape", in3, 2, &r, 1, &rn, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_node(g, PQ_OP_GEMM, "gemm", in4, 3, &y, 1, &m.gemm, &err), PQ_OK);
    cr_assert_eq(pq_node_set_int(g, m.gemm, "transB", 1, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_output(g, y, &err), PQ_OK);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    return m;
}

/* Runs node nid's reference kernel on the given input tensors into a new output of dims. */
static pq_tensor *ref_node(pq_graph *g, uint32_t nid, const pq_tensor *const *in, int rank,
                           const int64_t *dims) {
    const pq_node *n = &g->nodes[nid];
    pq_tensor *out = pq_tensor_create(PQ_DTYPE_F32, rank, dims, NULL);
    pq_tensor *outs[1] = {out};
    pq_error err;
    pq_error_clear(&err);
    pq_kernel_args a = {g, n, in, n->n_inputs, outs, 1, NULL, 1, &err};
    cr_assert_eq(pq_ref_run(&a), PQ_OK, "%s", err.msg);
    return out;
}

static const pq_tensor *cval(const model *m, uint32_t v) {
    return m->g->values[v].constant;
}

/* The whole model with reference kernels, node by node. */
static pq_tensor *reference(const model *m, const pq_tensor *x) {
    int64_t n = x->dims[0];
    const int64_t ad[4] = {n, 16, 12, 12}, bd[4] = {n, 16, 6, 6}, yd[2] = {n, 32};
    const pq_node *c1 = &m->g->nodes[m->conv];
    const pq_tensor *in1[3] = {x, cval(m, m->w1), cval(m, c1->inputs[2])};
    pq_tensor *a = ref_node(m->g, m->conv, in1, 4, ad);
    const pq_tensor *in2[2] = {a, cval(m, m->w2)};
    pq_tensor *b = ref_node(m->g, m->dw, in2, 4, bd);
    b->rank = 2; /* Reshape [N, 16, 6, 6] -> [N, 576]: same bytes */
    b->dims[1] = 576;
    const pq_tensor *in4[3] = {b, cval(m, m->wg), cval(m, m->g->nodes[m->gemm].inputs[2])};
    pq_tensor *y = ref_node(m->g, m->gemm, in4, 2, yd);
    pq_tensor_destroy(a);
    pq_tensor_destroy(b);
    return y;
}

static void run_and_check(pq_session *s, const model *m, int64_t n, uint32_t seed,
                          const char *what) {
    const int64_t xd[4] = {n, 8, 12, 12};
    pq_tensor *x = rand_tensor(4, xd, seed);
    const pq_tensor *ins[1] = {x};
    pq_tensor *y = NULL;
    pq_error err;
    cr_assert_eq(pq_session_run(s, ins, 1, &y, 1, &err), PQ_OK, "%s: %s", what, err.msg);
    pq_tensor *want = reference(m, x);
    cr_assert_eq(pq_tensor_numel(y), pq_tensor_numel(want), "%s", what);
    const float *g = y->data, *w = want->data;
    for (int64_t i = 0; i < pq_tensor_numel(want); i++)
        cr_assert(fabs((double)g[i] - w[i]) <= TOL * (1.0 + fabs(w[i])),
                  "%s: y[%lld] = %.9g, reference %.9g", what, (long long)i, g[i], w[i]);
    pq_tensor_destroy(want);
    pq_tensor_destroy(y);
    pq_tensor_destroy(x);
}

static void min_macs_zero(void) {
    pq_onednn_set_min_macs(0); /* the small Gemm / depthwise Conv go through oneDNN too */
}
static void min_macs_default(void) {
    pq_onednn_set_min_macs(PQ_ONEDNN_MIN_MACS);
}
TestSuite(onednn_cache, .init = min_macs_zero, .fini = min_macs_default);

Test(onednn_cache, repeated_runs_reuse_primitives) {
    cr_assert(pq_onednn_available());
    model m = build();
    pq_session *s = NULL;
    pq_error err;
    cr_assert_eq(pq_session_create(m.g, NULL, &s, &err), PQ_OK);
    run_and_check(s, &m, 2, 10, "first run");
    unsigned long h0, m0, h1, m1;
    pq_onednn_cache_stats(&h0, &m0);
    run_and_check(s, &m, 2, 11, "second run");
    run_and_check(s, &m, 2, 12, "third run");
    pq_onednn_cache_stats(&h1, &m1);
    cr_assert_eq(m1, m0, "later runs created %lu primitives", m1 - m0);
    cr_assert_geq(h1 - h0, 6, "two runs of three oneDNN nodes: %lu hits", h1 - h0);
    pq_session_destroy(s);
    pq_graph_destroy(m.g);
}

Test(onednn_cache, weights_changed_in_place_or_replaced) {
    model m = build();
    pq_session *s = NULL;
    pq_error err;
    cr_assert_eq(pq_session_create(m.g, NULL, &s, &err), PQ_OK);
    run_and_check(s, &m, 1, 20, "first run");
    /* every weight of the first Conv rewritten in place (same address and size) */
    pq_tensor *w = m.g->values[m.w1].constant;
    float *wd = w->data;
    for (int64_t i = 0; i < pq_tensor_numel(w); i++)
        wd[i] = -2.0f * wd[i] + 0.25f;
    run_and_check(s, &m, 1, 21, "after changing conv weights in place");
    /* the depthwise weights replaced by another tensor (freed; may reuse the address) */
    const int64_t w2d[4] = {16, 1, 3, 3};
    cr_assert_eq(pq_graph_set_constant(m.g, m.w2, rand_tensor(4, w2d, 99), &err), PQ_OK);
    run_and_check(s, &m, 1, 22, "after replacing depthwise weights");
    /* Gemm weights (used in place by oneDNN) changed */
    pq_tensor *wg = m.g->values[m.wg].constant;
    float *gd = wg->data;
    for (int64_t i = 0; i < pq_tensor_numel(wg); i++)
        gd[i] = 0.5f - gd[i];
    run_and_check(s, &m, 1, 23, "after changing gemm weights in place");
    pq_session_destroy(s);
    pq_graph_destroy(m.g);
}

Test(onednn_cache, new_input_shape_rebuilds) {
    model m = build();
    pq_session *s = NULL;
    pq_error err;
    cr_assert_eq(pq_session_create(m.g, NULL, &s, &err), PQ_OK);
    run_and_check(s, &m, 1, 30, "batch 1");
    unsigned long m0, m1;
    pq_onednn_cache_stats(NULL, &m0);
    run_and_check(s, &m, 3, 31, "batch 3");
    pq_onednn_cache_stats(NULL, &m1);
    cr_assert_geq(m1 - m0, 3, "batch 3 reused batch-1 primitives (%lu created)", m1 - m0);
    run_and_check(s, &m, 1, 32, "batch 1 again");
    pq_session_destroy(s);
    pq_graph_destroy(m.g);
}

/* Attributes set again between runs (a fused activation added, then replaced in its slot):
 * the decoded attributes kept per node must follow. */
Test(onednn_cache, attributes_set_between_runs) {
    model m = build();
    pq_session *s = NULL;
    pq_error err;
    cr_assert_eq(pq_session_create(m.g, NULL, &s, &err), PQ_OK);
    run_and_check(s, &m, 1, 50, "no activation");
    cr_assert_eq(pq_node_set_string(m.g, m.dw, "activation", "Relu", &err), PQ_OK);
    run_and_check(s, &m, 1, 51, "Relu added");
    cr_assert_eq(pq_node_set_string(m.g, m.dw, "activation", "Sigmoid", &err), PQ_OK);
    run_and_check(s, &m, 1, 52, "Relu replaced by Sigmoid");
    const int64_t d1[2] = {1, 1};
    cr_assert_eq(pq_node_set_ints(m.g, m.conv, "dilations", d1, 2, &err), PQ_OK);
    cr_assert_eq(pq_node_set_string(m.g, m.conv, "activation", "Tanh", &err), PQ_OK);
    run_and_check(s, &m, 1, 53, "first conv: dilations and Tanh added");
    cr_assert_eq(pq_node_set_string(m.g, m.conv, "activation", "Relu", &err), PQ_OK);
    run_and_check(s, &m, 2, 54, "first conv: Relu, batch 2");
    pq_session_destroy(s);
    pq_graph_destroy(m.g);
}

/* Two sessions on one graph, used alternately: each has its own cache, results stay right. */
Test(onednn_cache, two_sessions_one_graph) {
    model m = build();
    pq_session *s1 = NULL, *s2 = NULL;
    pq_error err;
    cr_assert_eq(pq_session_create(m.g, NULL, &s1, &err), PQ_OK);
    pq_session_opts o = {.n_threads = 2};
    cr_assert_eq(pq_session_create(m.g, &o, &s2, &err), PQ_OK);
    run_and_check(s1, &m, 1, 40, "session 1");
    run_and_check(s2, &m, 2, 41, "session 2");
    pq_session_destroy(s1);
    run_and_check(s2, &m, 1, 42, "session 2 after destroying session 1");
    pq_session_destroy(s2);
    pq_graph_destroy(m.g);
}

Test(onednn_cache, create_destroy_bind) {
    pq_onednn_cache *c = pq_onednn_cache_create();
    cr_assert_not_null(c);
    cr_assert_eq(pq_onednn_cache_entries(c), 0);
    pq_onednn_cache *prev = pq_onednn_cache_bind(c);
    cr_assert_null(prev);
    cr_assert_eq(pq_onednn_cache_bind(NULL), c);
    pq_onednn_cache_bind(c);
    pq_onednn_cache_destroy(c); /* unbinds */
    cr_assert_null(pq_onednn_cache_bind(NULL));
    pq_onednn_cache_destroy(NULL);
}
