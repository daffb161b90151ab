/* Tests of the oneDNN fast kernels (backends/onednn/): every supported case is compared with the
 * reference kernel on the same inputs over sweeps of shapes and attributes; unsupported cases
 * must return PQ_ERR_UNSUPPORTED with outputs and the error message untouched. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backends/fast.h"
#include "backends/onednn/onednn.h"
#include "backends/ref/ref.h"
#include "ir/ir.h"

/* harness in test_ref_matmul.c */
pq_tensor *pq_test_nn_rand(enum pq_dtype dt, int rank, const int64_t *dims, uint32_t seed);
pq_graph *pq_test_nn_node(enum pq_op op, const pq_tensor *const *in, uint32_t n_in,
                          uint32_t out_mask, uint32_t n_out, uint32_t *nid);

/* Tolerance of every fast-vs-reference comparison: |fast - ref| <= PQ_TOL * (1 + |ref|). */
#define PQ_TOL 1e-4

/* Infers node nid and creates its output poisoned with 0xFF bytes (NaN for floats). */
static pq_tensor *poisoned_output(pq_graph *g, uint32_t nid) {
    pq_error err;
    cr_assert_eq(pq_infer_node(g, nid, &err), PQ_OK, "%s", err.msg);
    const pq_value *v = &g->values[g->nodes[nid].outputs[0]];
    int64_t dims[PQ_MAX_RANK];
    cr_assert(pq_shape_is_static(&v->shape, dims));
    pq_tensor *t = pq_tensor_create(v->dtype, v->shape.rank, dims, &err);
    cr_assert_not_null(t, "%s", err.msg);
    memset(t->data, 0xFF, t->nbytes);
    return t;
}

static enum pq_status run_kernel(pq_kernel_fn fn, pq_graph *g, uint32_t nid, pq_tensor *out,
                                 int n_threads, pq_error *err) {
    const pq_node *n = &g->nodes[nid];
    const pq_tensor *in[4] = {0};
    for (uint32_t i = 0; i < n->n_inputs; i++)
        in[i] = n->inputs[i] == PQ_NONE ? NULL : g->values[n->inputs[i]].constant;
    pq_tensor *outs[1] = {out};
    pq_kernel_args a = {g, n, in, n->n_inputs, outs, 1, NULL, n_threads, err};
    pq_error_clear(err);
    return fn(&a);
}

/* Runs the fast kernel and the reference kernel on the node and compares every element. */
static void check_vs_ref(pq_kernel_fn fast, pq_graph *g, uint32_t nid, int n_threads,
                         const char *what) {
    pq_tensor *want = poisoned_output(g, nid), *got = poisoned_output(g, nid);
    pq_error err;
    cr_assert_eq(run_kernel(pq_ref_run, g, nid, want, 1, &err), PQ_OK, "%s: ref: %s", what,
                 err.msg);
    enum pq_status st = run_kernel(fast, g, nid, got, n_threads, &err);
    cr_assert_eq(st, PQ_OK, "%s: fast kernel returned %d: %s", what, (int)st, err.msg);
    const float *w = want->data, *y = got->data;
    int64_t n = pq_tensor_numel(want);
    for (int64_t i = 0; i < n; i++)
        cr_assert(isfinite(y[i]) && fabs((double)y[i] - w[i]) <= PQ_TOL * (1.0 + fabs(w[i])),
                  "%s: element %lld: fast %.9g, ref %.9g", what, (long long)i, y[i], w[i]);
    pq_tensor_destroy(want);
    pq_tensor_destroy(got);
}

/* The fast kernel must decline: UNSUPPORTED, output bytes and err untouched. */
static void check_unsupported(pq_kernel_fn fast, pq_graph *g, uint32_t nid, const char *what) {
    pq_tensor *out = poisoned_output(g, nid);
    pq_error err;
    cr_assert_eq(run_kernel(fast, g, nid, out, 1, &err), PQ_ERR_UNSUPPORTED, "%s", what);
    cr_assert_eq(err.msg[0], '\0', "%s: message written: %s", what, err.msg);
    cr_assert_eq(err.status, PQ_OK, "%s", what);
    const unsigned char *b = out->data;
    for (size_t i = 0; i < out->nbytes; i++)
        cr_assert_eq(b[i], 0xFF, "%s: output byte %zu touched", what, i);
    pq_tensor_destroy(out);
}

/* Every test checks tiny shapes too; the size threshold has its own test. */
static void no_min_size(void) {
    pq_onednn_set_min_macs(0);
}
TestSuite(onednn, .init = no_min_size);

Test(onednn, engine_available) {
    cr_assert(pq_onednn_available());
}

/* ---- Conv ---- */

typedef struct conv_cfg {
    int nsp;
    int64_t n, c, m, group, in[3], k[3], s, d;
    const char *auto_pad; /* NULL = explicit pads */
    int64_t pb[3], pe[3];
    bool bias;
} conv_cfg;

static pq_graph *conv_graph(const conv_cfg *cc, uint32_t seed, uint32_t *nid) {
    int64_t xd[5] = {cc->n, cc->c}, wd[5] = {cc->m, cc->c / cc->group}, bd[1] = {cc->m};
    int64_t st[3], dl[3], pads[6];
    for (int i = 0; i < cc->nsp; i++) {
        xd[2 + i] = cc->in[i];
        wd[2 + i] = cc->k[i];
        st[i] = cc->s;
        dl[i] = cc->d;
        pads[i] = cc->pb[i];
        pads[cc->nsp + i] = cc->pe[i];
    }
    pq_tensor *X = pq_test_nn_rand(PQ_DTYPE_F32, cc->nsp + 2, xd, seed);
    pq_tensor *W = pq_test_nn_rand(PQ_DTYPE_F32, cc->nsp + 2, wd, seed + 1);
    pq_tensor *B = cc->bias ? pq_test_nn_rand(PQ_DTYPE_F32, 1, bd, seed + 2) : NULL;
    const pq_tensor *in[3] = {X, W, B};
    pq_graph *g = pq_test_nn_node(PQ_OP_CONV, in, B ? 3 : 2, 1, 1, nid);
    pq_error err;
    cr_assert_eq(pq_node_set_ints(g, *nid, "strides", st, (uint32_t)cc->nsp, &err), PQ_OK);
    cr_assert_eq(pq_node_set_ints(g, *nid, "dilations", dl, (uint32_t)cc->nsp, &err), PQ_OK);
    cr_assert_eq(pq_node_set_ints(g, *nid, "kernel_shape", cc->k, (uint32_t)cc->nsp, &err), PQ_OK);
    if (cc->auto_pad)
        cr_assert_eq(pq_node_set_string(g, *nid, "auto_pad", cc->auto_pad, &err), PQ_OK);
    else
        cr_assert_eq(pq_node_set_ints(g, *nid, "pads", pads, (uint32_t)(2 * cc->nsp), &err), PQ_OK);
    if (cc->group != 1) cr_assert_eq(pq_node_set_int(g, *nid, "group", cc->group, &err), PQ_OK);
    pq_tensor_destroy(X);
    pq_tensor_destroy(W);
    pq_tensor_destroy(B);
    return g;
}

static void describe_conv(const conv_cfg *cc, char *buf, size_t n) {
    snprintf(buf, n,
             "conv nsp=%d n=%lld c=%lld m=%lld g=%lld k0=%lld s=%lld d=%lld pad=%s "
             "pb0=%lld pe0=%lld bias=%d layout ",
             cc->nsp, (long long)cc->n, (long long)cc->c, (long long)cc->m, (long long)cc->group,
             (long long)cc->k[0], (long long)cc->s, (long long)cc->d,
             cc->auto_pad ? cc->auto_pad : "explicit", (long long)cc->pb[0], (long long)cc->pe[0],
             cc->bias);
}

/* Both activation layouts of the oneDNN convolution (blocked with reorders, plain). */
static const enum pq_onednn_conv_layout layouts[2] = {PQ_ONEDNN_CONV_BLOCKED, PQ_ONEDNN_CONV_PLAIN};
static const char *layout_names[2] = {"blocked", "plain"};

Test(onednn, conv_sweep_vs_ref) {
    static const int64_t chans[][3] = {{3, 4, 1}, {4, 6, 2}, {4, 4, 4}, {3, 6, 3}, {16, 8, 1}};
    static const char *pads[] = {NULL, "asym", "VALID", "SAME_UPPER", "SAME_LOWER"};
    static const int64_t ins[3][3] = {{11}, {7, 6}, {5, 6, 6}};
    static const int64_t ks[3][3] = {{3}, {3, 2}, {2, 3, 2}};
    int count = 0;
    for (int li = 0; li < 2; li++)
        for (int nsp = 1; nsp <= 3; nsp++)
            for (size_t ci = 0; ci < sizeof chans / sizeof chans[0]; ci++)
                for (int64_t s = 1; s <= 2; s++)
                    for (int64_t d = 1; d <= 2; d++)
                        for (size_t pi = 0; pi < sizeof pads / sizeof pads[0]; pi++) {
                            conv_cfg cc = {nsp,
                                           count % 3 == 0 ? 3 : 1,
                                           chans[ci][0],
                                           chans[ci][1],
                                           chans[ci][2],
                                           {0},
                                           {0},
                                           s,
                                           d,
                                           NULL,
                                           {0},
                                           {0},
                                           count % 2 == 0};
                            for (int i = 0; i < nsp; i++) {
                                cc.in[i] = ins[nsp - 1][i];
                                cc.k[i] = ks[nsp - 1][i];
                                cc.pb[i] = pads[pi] ? (i % 2) : 1;
                                cc.pe[i] = pads[pi] ? 2 - (i % 2) : 1;
                            }
                            if (pads[pi] && strcmp(pads[pi], "asym")) cc.auto_pad = pads[pi];
                            char what[256];
                            describe_conv(&cc, what, sizeof what);
                            strcat(what, layout_names[li]);
                            pq_onednn_conv_set_layout(layouts[li]);
                            uint32_t nid;
                            pq_graph *g = conv_graph(&cc, 100 + (uint32_t)count, &nid);
                            check_vs_ref(pq_onednn_conv, g, nid, count % 4 == 1 ? 2 : 1, what);
                            pq_graph_destroy(g);
                            count++;
                        }
    cr_assert_eq(count, 2 * 3 * 5 * 2 * 2 * 5);
    pq_onednn_conv_set_layout(PQ_ONEDNN_CONV_BLOCKED);
}

/* Conv case cc (inputs from seed) against the reference at one and two threads; suffix names the
 * mode in messages. */
static void check_conv_case(const conv_cfg *cc, uint32_t seed, const char *suffix) {
    char what[256];
    describe_conv(cc, what, sizeof what);
    strcat(what, suffix);
    uint32_t nid;
    pq_graph *g = conv_graph(cc, seed, &nid);
    check_vs_ref(pq_onednn_conv, g, nid, 1, what);
    check_vs_ref(pq_onednn_conv, g, nid, 2, what);
    pq_graph_destroy(g);
}

/* 3x3 stride-1 layers with >= 64 channels go through oneDNN's Winograd kernels on AVX-512
 * (pq_onednn_conv_set_winograd): within tolerance of the reference with it on and off, at
 * batch 1 and 2 and one and two threads. */
Test(onednn, conv_winograd_vs_ref) {
    const conv_cfg cases[] = {
        {2, 1, 64, 64, 1, {14, 14}, {3, 3}, 1, 1, NULL, {1, 1}, {1, 1}, true},
        {2, 2, 64, 128, 1, {28, 28}, {3, 3}, 1, 1, NULL, {1, 1}, {1, 1}, false},
        {2, 1, 96, 64, 1, {9, 13}, {3, 3}, 1, 1, "SAME_UPPER", {0}, {0}, true},
    };
    for (int wi = 0; wi < 2; wi++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            pq_onednn_conv_set_winograd(wi == 1);
            check_conv_case(&cases[i], 40 + (uint32_t)i, wi ? " winograd" : " direct");
        }
    pq_onednn_conv_set_winograd(true);
}

Test(onednn, conv_real_shapes_vs_ref) {
    const conv_cfg cases[] = {
        /* digits model layers, batch 1 and 360 */
        {2, 1, 1, 8, 1, {8, 8}, {3, 3}, 1, 1, NULL, {1, 1}, {1, 1}, false},
        {2, 360, 8, 16, 1, {8, 8}, {3, 3}, 1, 1, NULL, {1, 1}, {1, 1}, false},
        /* a ResNet-like block, pointwise and strided pointwise, depthwise 3x3 stride 2 */
        {2, 2, 32, 32, 1, {14, 14}, {3, 3}, 1, 1, NULL, {1, 1}, {1, 1}, true},
        {2, 2, 32, 64, 1, {14, 14}, {1, 1}, 1, 1, NULL, {0, 0}, {0, 0}, true},
        {2, 1, 32, 64, 1, {14, 14}, {1, 1}, 2, 1, NULL, {0, 0}, {0, 0}, false},
        {2, 4, 32, 32, 32, {15, 15}, {3, 3}, 2, 1, "SAME_UPPER", {0}, {0}, true},
        /* 1-D audio-like conv, 3-D video-like conv */
        {1, 2, 16, 24, 1, {100}, {5}, 2, 1, "SAME_LOWER", {0}, {0}, true},
        {3, 1, 8, 16, 2, {6, 10, 10}, {3, 3, 3}, 1, 2, NULL, {2, 2, 2}, {2, 2, 2}, true},
    };
    for (int li = 0; li < 2; li++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            pq_onednn_conv_set_layout(layouts[li]);
            check_conv_case(&cases[i], 7 + (uint32_t)i, layout_names[li]);
        }
    pq_onednn_conv_set_layout(PQ_ONEDNN_CONV_BLOCKED);
}

/* Repeated runs reuse the cached primitive; weights changed in place (same address) are noticed. */
Test(onednn, conv_cache_reuse_and_weight_change) {
    conv_cfg cc = {2, 2, 16, 32, 1, {10, 10}, {3, 3}, 1, 1, NULL, {1, 1}, {1, 1}, true};
    uint32_t nid;
    pq_graph *g = conv_graph(&cc, 42, &nid);
    check_vs_ref(pq_onednn_conv, g, nid, 1, "first run");
    unsigned long h0, m0, h1, m1;
    pq_onednn_cache_stats(&h0, &m0);
    check_vs_ref(pq_onednn_conv, g, nid, 1, "second run");
    pq_onednn_cache_stats(&h1, &m1);
    cr_assert_gt(h1, h0, "second run did not hit the primitive cache");
    cr_assert_eq(m1, m0, "second run created a primitive");
    pq_tensor *W = g->values[g->nodes[nid].inputs[1]].constant;
    float *w = W->data;
    for (int64_t i = 0; i < pq_tensor_numel(W); i++)
        w[i] = -2.0f * w[i] + 0.25f;
    check_vs_ref(pq_onednn_conv, g, nid, 1, "after changing weights in place");
    pq_onednn_cache_clear();
    check_vs_ref(pq_onednn_conv, g, nid, 1, "after clearing the cache");
    pq_graph_destroy(g);
}

Test(onednn, conv_unsupported_untouched) {
    int64_t xd[4] = {1, 2, 5, 5}, wd[4] = {3, 2, 3, 3};
    enum pq_dtype dts[2] = {PQ_DTYPE_F16, PQ_DTYPE_F64};
    for (int t = 0; t < 2; t++) {
        pq_tensor *X = pq_test_nn_rand(dts[t], 4, xd, 1), *W = pq_test_nn_rand(dts[t], 4, wd, 2);
        const pq_tensor *in[2] = {X, W};
        uint32_t nid;
        pq_graph *g = pq_test_nn_node(PQ_OP_CONV, in, 2, 1, 1, &nid);
        check_unsupported(pq_onednn_conv, g, nid, dts[t] == PQ_DTYPE_F16 ? "conv f16" : "conv f64");
        pq_graph_destroy(g);
        pq_tensor_destroy(X);
        pq_tensor_destroy(W);
    }
    /* empty batch */
    int64_t xe[4] = {0, 2, 5, 5};
    pq_tensor *X = pq_test_nn_rand(PQ_DTYPE_F32, 4, xe, 1),
              *W = pq_test_nn_rand(PQ_DTYPE_F32, 4, wd, 2);
    const pq_tensor *in[2] = {X, W};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_CONV, in, 2, 1, 1, &nid);
    check_unsupported(pq_onednn_conv, g, nid, "conv empty batch");
    pq_graph_destroy(g);
    pq_tensor_destroy(X);
    pq_tensor_destroy(W);
}

/* ---- MatMul ---- */

static void matmul_case(int ra, const int64_t *da, int rb, const int64_t *db, uint32_t seed,
                        int n_threads) {
    pq_tensor *A = pq_test_nn_rand(PQ_DTYPE_F32, ra, da, seed);
    pq_tensor *B = pq_test_nn_rand(PQ_DTYPE_F32, rb, db, seed + 1);
    const pq_tensor *in[2] = {A, B};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_MATMUL, in, 2, 1, 1, &nid);
    char what[160];
    int o = snprintf(what, sizeof what, "matmul [");
    for (int i = 0; i < ra; i++)
        o += snprintf(what + o, sizeof what - (size_t)o, " %lld", (long long)da[i]);
    o += snprintf(what + o, sizeof what - (size_t)o, " ] x [");
    for (int i = 0; i < rb; i++)
        o += snprintf(what + o, sizeof what - (size_t)o, " %lld", (long long)db[i]);
    snprintf(what + o, sizeof what - (size_t)o, " ] threads %d", n_threads);
    check_vs_ref(pq_onednn_matmul, g, nid, n_threads, what);
    pq_graph_destroy(g);
    pq_tensor_destroy(A);
    pq_tensor_destroy(B);
}

Test(onednn, matmul_sweep_vs_ref) {
    static const struct {
        int ra;
        int64_t da[5];
        int rb;
        int64_t db[5];
    } cases[] = {
        {2, {3, 4}, 2, {4, 5}},
        {2, {1, 1}, 2, {1, 1}},
        {2, {1, 64}, 2, {64, 96}},            /* GEMV row */
        {2, {130, 257}, 2, {257, 67}},        /* tails */
        {3, {2, 5, 33}, 2, {33, 19}},         /* B shared: batch folded into M */
        {3, {2, 5, 33}, 3, {2, 33, 19}},      /* batched */
        {3, {1, 5, 8}, 3, {4, 8, 3}},         /* A broadcast over batch */
        {3, {4, 5, 8}, 3, {1, 8, 3}},         /* B batch 1 */
        {4, {2, 1, 3, 4}, 3, {3, 4, 5}},      /* broadcast both ways, different ranks */
        {2, {3, 4}, 4, {2, 2, 4, 6}},         /* 2-D A against 4-D B */
        {4, {2, 4, 7, 16}, 4, {2, 4, 16, 7}}, /* attention scores */
        {4, {1, 4, 7, 7}, 4, {1, 4, 7, 16}},  /* attention context */
        {5, {2, 1, 3, 2, 4}, 5, {1, 2, 1, 4, 3}},
        {1, {4}, 2, {4, 3}},    /* 1-D A */
        {3, {2, 3, 4}, 1, {4}}, /* 1-D B */
        {1, {7}, 1, {7}},       /* dot product */
        {1, {6}, 3, {2, 6, 5}}, /* 1-D A against batched B */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int t = 1; t <= 2; t++)
            matmul_case(cases[i].ra, cases[i].da, cases[i].rb, cases[i].db, 20 + (uint32_t)i, t);
}

Test(onednn, matmul_unsupported_untouched) {
    int64_t da[2] = {3, 4}, db[2] = {4, 2};
    enum pq_dtype dts[3] = {PQ_DTYPE_F16, PQ_DTYPE_F64, PQ_DTYPE_I32};
    for (int t = 0; t < 3; t++) {
        pq_error err;
        pq_tensor *A = pq_tensor_create(dts[t], 2, da, &err),
                  *B = pq_tensor_create(dts[t], 2, db, &err);
        const pq_tensor *in[2] = {A, B};
        uint32_t nid;
        pq_graph *g = pq_test_nn_node(PQ_OP_MATMUL, in, 2, 1, 1, &nid);
        check_unsupported(pq_onednn_matmul, g, nid, "matmul non-f32");
        pq_graph_destroy(g);
        pq_tensor_destroy(A);
        pq_tensor_destroy(B);
    }
    /* K = 0: the output is all zeros, left to the reference kernel */
    int64_t ka[2] = {3, 0}, kb[2] = {0, 2};
    pq_tensor *A = pq_test_nn_rand(PQ_DTYPE_F32, 2, ka, 1),
              *B = pq_test_nn_rand(PQ_DTYPE_F32, 2, kb, 2);
    const pq_tensor *in[2] = {A, B};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_MATMUL, in, 2, 1, 1, &nid);
    check_unsupported(pq_onednn_matmul, g, nid, "matmul K=0");
    pq_graph_destroy(g);
    pq_tensor_destroy(A);
    pq_tensor_destroy(B);
}

/* ---- Gemm ---- */

Test(onednn, gemm_sweep_vs_ref) {
    static const int64_t sizes[][3] = {
        {1, 1, 1}, {3, 5, 7}, {17, 33, 65}, {64, 10, 256}, {1, 10, 256}};
    static const float alphas[] = {1.0f, 0.5f}, betas[] = {1.0f, 0.0f, 2.5f};
    /* C shapes: rank, dims (M / N substituted for -1 / -2) */
    static const struct {
        int rank;
        int64_t d[2];
    } cshapes[] = {{-1, {0}},     {1, {-2}}, {2, {1, -2}}, {2, {-1, 1}},
                   {2, {-1, -2}}, {0, {0}},  {2, {1, 1}}};
    int count = 0;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (size_t ai = 0; ai < 2; ai++)
                    for (size_t bi = 0; bi < 3; bi++)
                        for (size_t ci = 0; ci < sizeof cshapes / sizeof cshapes[0]; ci++) {
                            int64_t M = sizes[si][0], N = sizes[si][1], K = sizes[si][2];
                            int64_t ad[2] = {ta ? K : M, ta ? M : K},
                                    bd[2] = {tb ? N : K, tb ? K : N};
                            int64_t cd[2];
                            for (int i = 0; i < 2; i++)
                                cd[i] = cshapes[ci].d[i] == -1   ? M
                                        : cshapes[ci].d[i] == -2 ? N
                                                                 : cshapes[ci].d[i];
                            pq_tensor *A =
                                pq_test_nn_rand(PQ_DTYPE_F32, 2, ad, 50 + (uint32_t)count);
                            pq_tensor *B =
                                pq_test_nn_rand(PQ_DTYPE_F32, 2, bd, 51 + (uint32_t)count);
                            pq_tensor *C = cshapes[ci].rank >= 0
                                               ? pq_test_nn_rand(PQ_DTYPE_F32, cshapes[ci].rank, cd,
                                                                 52 + (uint32_t)count)
                                               : NULL;
                            const pq_tensor *in[3] = {A, B, C};
                            uint32_t nid;
                            pq_graph *g = pq_test_nn_node(PQ_OP_GEMM, in, C ? 3 : 2, 1, 1, &nid);
                            pq_error err;
                            pq_node_set_int(g, nid, "transA", ta, &err);
                            pq_node_set_int(g, nid, "transB", tb, &err);
                            pq_node_set_float(g, nid, "alpha", alphas[ai], &err);
                            pq_node_set_float(g, nid, "beta", betas[bi], &err);
                            char what[200];
                            snprintf(what, sizeof what,
                                     "gemm M=%lld N=%lld K=%lld tA=%d tB=%d alpha=%g beta=%g C#%zu",
                                     (long long)M, (long long)N, (long long)K, ta, tb, alphas[ai],
                                     betas[bi], ci);
                            check_vs_ref(pq_onednn_gemm, g, nid, count % 3 == 0 ? 2 : 1, what);
                            pq_graph_destroy(g);
                            pq_tensor_destroy(A);
                            pq_tensor_destroy(B);
                            pq_tensor_destroy(C);
                            count++;
                        }
    cr_assert_eq(count, 5 * 2 * 2 * 2 * 3 * 7);
}

/* Batch-1 Gemm with B transposed (Linear layers) runs piqc's GEMV kernel on AVX-512
 * (onednn_matmul.c): row remainders of its 4-row and 64-row steps, K tails, C as [N], [1, N], one
 * value or none, one and two threads, a fused activation (reference epilogue). */
Test(onednn, gemm_batch1_gemv_vs_ref) {
    static const int64_t ns[] = {1, 5, 63, 64, 65, 200}, ks[] = {3, 16, 17, 960};
    static const int crank[] = {-1, 1, 2, 0};
    int count = 0;
    for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
            for (size_t ci = 0; ci < sizeof crank / sizeof crank[0]; ci++) {
                int64_t N = ns[ni], K = ks[ki], ad[2] = {1, K}, bd[2] = {N, K};
                int64_t cd[2] = {crank[ci] == 2 ? 1 : N, N};
                if (crank[ci] == 1) cd[0] = N;
                pq_tensor *A = pq_test_nn_rand(PQ_DTYPE_F32, 2, ad, 70 + (uint32_t)count);
                pq_tensor *B = pq_test_nn_rand(PQ_DTYPE_F32, 2, bd, 71 + (uint32_t)count);
                pq_tensor *C = crank[ci] >= 0 ? pq_test_nn_rand(PQ_DTYPE_F32, crank[ci], cd,
                                                                72 + (uint32_t)count)
                                              : NULL;
                const pq_tensor *in[3] = {A, B, C};
                uint32_t nid;
                pq_graph *g = pq_test_nn_node(PQ_OP_GEMM, in, C ? 3 : 2, 1, 1, &nid);
                pq_error err;
                pq_node_set_int(g, nid, "transB", 1, &err);
                const char *act = count % 3 == 1 ? "HardSwish" : count % 3 == 2 ? "Relu" : NULL;
                if (act) pq_node_set_string(g, nid, "activation", act, &err);
                char what[160];
                snprintf(what, sizeof what, "gemm 1 x %lld x %lld C rank %d act %s", (long long)N,
                         (long long)K, crank[ci], act ? act : "-");
                check_vs_ref(pq_onednn_gemm, g, nid, count % 2 ? 2 : 1, what);
                pq_graph_destroy(g);
                pq_tensor_destroy(A);
                pq_tensor_destroy(B);
                pq_tensor_destroy(C);
                count++;
            }
}

/* beta = 0 must ignore C entirely, even when it holds NaN (as the reference does). */
Test(onednn, gemm_beta_zero_ignores_nan_c) {
    int64_t ad[2] = {4, 6}, bd[2] = {6, 5}, cd[1] = {5};
    pq_tensor *A = pq_test_nn_rand(PQ_DTYPE_F32, 2, ad, 1),
              *B = pq_test_nn_rand(PQ_DTYPE_F32, 2, bd, 2);
    pq_tensor *C = pq_test_nn_rand(PQ_DTYPE_F32, 1, cd, 3);
    for (int i = 0; i < 5; i++)
        ((float *)C->data)[i] = NAN;
    const pq_tensor *in[3] = {A, B, C};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_GEMM, in, 3, 1, 1, &nid);
    pq_error err;
    pq_node_set_float(g, nid, "beta", 0.0f, &err);
    check_vs_ref(pq_onednn_gemm, g, nid, 1, "gemm beta 0, NaN C");
    pq_graph_destroy(g);
    pq_tensor_destroy(A);
    pq_tensor_destroy(B);
    pq_tensor_destroy(C);
}

Test(onednn, gemm_unsupported_untouched) {
    int64_t ad[2] = {3, 4}, bd[2] = {4, 2};
    pq_tensor *A = pq_test_nn_rand(PQ_DTYPE_F16, 2, ad, 1),
              *B = pq_test_nn_rand(PQ_DTYPE_F16, 2, bd, 2);
    const pq_tensor *in[2] = {A, B};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_GEMM, in, 2, 1, 1, &nid);
    check_unsupported(pq_onednn_gemm, g, nid, "gemm f16");
    pq_graph_destroy(g);
    pq_tensor_destroy(A);
    pq_tensor_destroy(B);
}

/* An output without a buffer (data NULL) is left to the reference kernel. */
Test(onednn, output_without_buffer_unsupported) {
    int64_t ad[2] = {3, 4}, bd[2] = {4, 2};
    pq_tensor *A = pq_test_nn_rand(PQ_DTYPE_F32, 2, ad, 1),
              *B = pq_test_nn_rand(PQ_DTYPE_F32, 2, bd, 2);
    const pq_tensor *in[2] = {A, B};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_MATMUL, in, 2, 1, 1, &nid);
    pq_error err;
    cr_assert_eq(pq_infer_node(g, nid, &err), PQ_OK);
    pq_tensor y = {.dtype = PQ_DTYPE_F32, .rank = 2, .dims = {3, 2}};
    cr_assert_eq(run_kernel(pq_onednn_matmul, g, nid, &y, 1, &err), PQ_ERR_UNSUPPORTED);
    cr_assert_null(y.data);
    cr_assert_eq(err.msg[0], '\0');
    pq_graph_destroy(g);
    pq_tensor_destroy(A);
    pq_tensor_destroy(B);
}

/* The three kernels are the table's entries, so the runtime's default path uses them. */
Test(onednn, registered_in_fast_table) {
    cr_assert_eq(pq_fast_kernels[PQ_OP_CONV], pq_onednn_conv);
    cr_assert_eq(pq_fast_kernels[PQ_OP_MATMUL], pq_onednn_matmul);
    cr_assert_eq(pq_fast_kernels[PQ_OP_GEMM], pq_onednn_gemm);
}

/* Below PQ_ONEDNN_MIN_MACS the kernels decline (the reference kernel is faster there). */
Test(onednn, tiny_problems_declined_by_default) {
    pq_onednn_set_min_macs(PQ_ONEDNN_MIN_MACS);
    int64_t da[2] = {8, 8}, db[2] = {8, 8};
    pq_tensor *A = pq_test_nn_rand(PQ_DTYPE_F32, 2, da, 1),
              *B = pq_test_nn_rand(PQ_DTYPE_F32, 2, db, 2);
    const pq_tensor *in[2] = {A, B};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_MATMUL, in, 2, 1, 1, &nid);
    check_unsupported(pq_onednn_matmul, g, nid, "matmul 8x8x8 below the threshold");
    pq_graph_destroy(g);
    g = pq_test_nn_node(PQ_OP_GEMM, in, 2, 1, 1, &nid);
    check_unsupported(pq_onednn_gemm, g, nid, "gemm 8x8x8 below the threshold");
    pq_graph_destroy(g);
    pq_tensor_destroy(A);
    pq_tensor_destroy(B);
    conv_cfg cc = {2, 1, 1, 2, 1, {5, 5}, {3, 3}, 1, 1, NULL, {1, 1}, {1, 1}, true};
    g = conv_graph(&cc, 3, &nid);
    check_unsupported(pq_onednn_conv, g, nid, "conv below the threshold");
    pq_graph_destroy(g);
    /* 16x32x32 = 16384 multiply-adds: taken */
    int64_t ea[2] = {16, 32}, eb[2] = {32, 32};
    A = pq_test_nn_rand(PQ_DTYPE_F32, 2, ea, 1);
    B = pq_test_nn_rand(PQ_DTYPE_F32, 2, eb, 2);
    const pq_tensor *in2[2] = {A, B};
    g = pq_test_nn_node(PQ_OP_MATMUL, in2, 2, 1, 1, &nid);
    check_vs_ref(pq_onednn_matmul, g, nid, 1, "matmul 16x32x32 above the threshold");
    pq_graph_destroy(g);
    pq_tensor_destroy(A);
    pq_tensor_destroy(B);
}
