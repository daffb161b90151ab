/* ConvAdd(x, w, bias, s) on oneDNN outside a session (the process-wide caches, the addend copied
 * or reordered into the destination before the sum post-op) against its reference kernel, and the
 * reference kernel against Conv, then Add, then the activation computed by the reference kernels
 * one after the other (bit-identical: the same f32 operations). Tolerance of oneDNN vs reference:
 * |fast - ref| <= 1e-4 * (1 + |ref|). */
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

typedef struct ca_cfg {
    int64_t n, c, m, group, hw, k, s;
    const char *act; /* NULL: none */
} ca_cfg;

/* Sets the Conv attributes (pads (k-1)/2 each side, stride, group, activation) on node nid. */
static void set_attrs(pq_graph *g, uint32_t nid, const ca_cfg *cc, bool act) {
    pq_error err;
    const int64_t p = (cc->k - 1) / 2, pads[4] = {p, p, p, p}, st[2] = {cc->s, cc->s};
    const int64_t ks[2] = {cc->k, cc->k};
    cr_assert_eq(pq_node_set_ints(g, nid, "pads", pads, 4, &err), PQ_OK);
    cr_assert_eq(pq_node_set_ints(g, nid, "strides", st, 2, &err), PQ_OK);
    cr_assert_eq(pq_node_set_ints(g, nid, "kernel_shape", ks, 2, &err), PQ_OK);
    if (cc->group > 1) cr_assert_eq(pq_node_set_int(g, nid, "group", cc->group, &err), PQ_OK);
    if (act && cc->act)
        cr_assert_eq(pq_node_set_string(g, nid, "activation", cc->act, &err), PQ_OK);
}

static pq_tensor *out_for(pq_graph *g, uint32_t nid) {
    pq_error err;
    cr_assert_eq(pq_infer_node(g, nid, &err), PQ_OK, "%s", err.msg);
    const pq_value *v = &g->values[g->nodes[nid].outputs[0]];
    int64_t dims[PQ_MAX_RANK];
    cr_assert(pq_shape_is_static(&v->shape, dims));
    pq_tensor *t = pq_tensor_create(v->dtype, v->shape.rank, dims, &err);
    cr_assert_not_null(t);
    memset(t->data, 0xFF, t->nbytes); /* NaN poison */
    return t;
}

static enum pq_status run(pq_kernel_fn fn, pq_graph *g, uint32_t nid, const pq_tensor *const *in,
                          uint32_t n_in, pq_tensor *out, int threads, pq_error *err) {
    pq_tensor *outs[1] = {out};
    pq_kernel_args a = {g, &g->nodes[nid], in, n_in, outs, 1, NULL, threads, err};
    pq_error_clear(err);
    return fn(&a);
}

static void ca_case(const ca_cfg *cc, uint32_t seed) {
    int64_t oh = (cc->hw + 2 * ((cc->k - 1) / 2) - cc->k) / cc->s + 1;
    const int64_t xd[4] = {cc->n, cc->c, cc->hw, cc->hw},
                  wd[4] = {cc->m, cc->c / cc->group, cc->k, cc->k};
    const int64_t bd[1] = {cc->m}, sd[4] = {cc->n, cc->m, oh, oh};
    pq_tensor *X = pq_test_nn_rand(PQ_DTYPE_F32, 4, xd, seed);
    pq_tensor *W = pq_test_nn_rand(PQ_DTYPE_F32, 4, wd, seed + 1);
    pq_tensor *B = pq_test_nn_rand(PQ_DTYPE_F32, 1, bd, seed + 2);
    pq_tensor *S = pq_test_nn_rand(PQ_DTYPE_F32, 4, sd, seed + 3);
    const pq_tensor *in4[4] = {X, W, B, S};
    char what[160];
    snprintf(what, sizeof what, "n%lld c%lld m%lld g%lld hw%lld k%lld s%lld act %s",
             (long long)cc->n, (long long)cc->c, (long long)cc->m, (long long)cc->group,
             (long long)cc->hw, (long long)cc->k, (long long)cc->s, cc->act ? cc->act : "-");
    uint32_t nid, cid, aid;
    pq_graph *g = pq_test_nn_node(PQ_OP_CONV_ADD, in4, 4, 1, 1, &nid);
    set_attrs(g, nid, cc, true);
    pq_error err;
    /* reference ConvAdd vs Conv, Add, activation (each a reference kernel) */
    pq_tensor *ref = out_for(g, nid);
    cr_assert_eq(run(pq_ref_run, g, nid, in4, 4, ref, 1, &err), PQ_OK, "%s: %s", what, err.msg);
    pq_graph *gc = pq_test_nn_node(PQ_OP_CONV, in4, 3, 1, 1, &cid);
    set_attrs(gc, cid, cc, false);
    pq_tensor *conv = out_for(gc, cid);
    cr_assert_eq(run(pq_ref_run, gc, cid, in4, 3, conv, 1, &err), PQ_OK, "%s", err.msg);
    const pq_tensor *in_add[2] = {conv, S};
    pq_graph *ga = pq_test_nn_node(PQ_OP_ADD, in_add, 2, 1, 1, &aid);
    if (cc->act) cr_assert_eq(pq_node_set_string(ga, aid, "activation", cc->act, &err), PQ_OK);
    pq_tensor *sum = out_for(ga, aid);
    cr_assert_eq(run(pq_ref_run, ga, aid, in_add, 2, sum, 1, &err), PQ_OK, "%s", err.msg);
    cr_assert(!memcmp(sum->data, ref->data, ref->nbytes), "%s: ConvAdd reference != Conv, Add",
              what);
    /* oneDNN, both activation layouts, 1 and 2 threads */
    static const enum pq_onednn_conv_layout lay[2] = {PQ_ONEDNN_CONV_BLOCKED, PQ_ONEDNN_CONV_PLAIN};
    for (int l = 0; l < 2; l++)
        for (int th = 1; th <= 2; th++) {
            pq_onednn_conv_set_layout(lay[l]);
            pq_tensor *got = out_for(g, nid);
            enum pq_status st = run(pq_onednn_conv, g, nid, in4, 4, got, th, &err);
            cr_assert_eq(st, PQ_OK, "%s layout %d: oneDNN returned %d: %s", what, l, (int)st,
                         err.msg);
            const float *y = got->data, *w = ref->data;
            for (int64_t i = 0; i < pq_tensor_numel(ref); i++)
                cr_assert(isfinite(y[i]) && fabs((double)y[i] - w[i]) <= 1e-4 * (1.0 + fabs(w[i])),
                          "%s layout %d threads %d: element %lld: oneDNN %.9g, ref %.9g", what, l,
                          th, (long long)i, y[i], w[i]);
            /* the addend is read only */
            const pq_tensor *s_in = in4[3];
            cr_assert(!memcmp(s_in->data, S->data, S->nbytes));
            pq_tensor_destroy(got);
        }
    pq_onednn_conv_set_layout(PQ_ONEDNN_CONV_BLOCKED);
    pq_tensor_destroy(ref);
    pq_tensor_destroy(conv);
    pq_tensor_destroy(sum);
    pq_graph_destroy(g);
    pq_graph_destroy(gc);
    pq_graph_destroy(ga);
    pq_tensor_destroy(X);
    pq_tensor_destroy(W);
    pq_tensor_destroy(B);
    pq_tensor_destroy(S);
}

static void no_min_size(void) {
    pq_onednn_set_min_macs(0);
}
TestSuite(onednn_conv_add, .init = no_min_size);

Test(onednn_conv_add, sweep_vs_ref) {
    cr_assert(pq_onednn_available());
    static const ca_cfg cases[] = {
        {1, 32, 32, 1, 7, 1, 1, NULL},         /* 1x1, blocked */
        {1, 32, 24, 1, 7, 1, 1, "Relu"},       /* padding lanes */
        {2, 64, 64, 1, 6, 3, 1, "Relu"},       /* 3x3, oneDNN's layout */
        {1, 8, 16, 1, 9, 3, 2, "Clip"},        /* few input channels, stride 2 */
        {1, 24, 24, 24, 8, 3, 1, "HardSwish"}, /* depthwise */
        {1, 16, 40, 1, 5, 1, 1, "Sigmoid"},    /* sigmoid(0) != 0 on padding lanes */
        {2, 32, 40, 1, 7, 1, 1, "Swish"},      /* Swish pass after the sum (AVX-512), padding */
        {3, 5, 3, 1, 4, 3, 1, "Relu"},         /* odd sizes */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ca_case(&cases[i], 10 + (uint32_t)i * 7);
}

Test(onednn_conv_add, registered_in_fast_table) {
    cr_assert_eq(pq_fast_kernels[PQ_OP_CONV_ADD], pq_onednn_conv);
}
