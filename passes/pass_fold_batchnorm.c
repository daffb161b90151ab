/* fold-batchnorm: an inference-form BatchNormalization after a Conv, ConvTranspose, Gemm or
 * MatMul with constant f32 weights (whose output feeds only the BN) is folded into the weights
 * and bias: w' = w * s, b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "canon.h"

/* Channels of the BN input: dim 1 of the producer's output. For the weight of node n: *m is the
 * number of output channels the weight produces. */
static bool pq_bn_weight_channels(const pq_graph *g, const pq_node *n, int64_t *m) {
    const pq_tensor *w = pq_canon_const_f32(g, pq_node_input(n, 1));
    if (!w) return false;
    switch (n->op) {
    case PQ_OP_CONV:
        if (w->rank < 3) return false;
        *m = w->dims[0];
        return true;
    case PQ_OP_CONV_TRANSPOSE: {
        if (w->rank < 3) return false;
        int64_t grp = pq_node_attr_int(n, "group", 1);
        if (grp < 1 || w->dims[0] % grp != 0) return false;
        *m = w->dims[1] * grp;
        return true;
    }
    case PQ_OP_GEMM:
        if (w->rank != 2) return false;
        *m = pq_node_attr_int(n, "transB", 0) ? w->dims[0] : w->dims[1];
        return true;
    case PQ_OP_MATMUL:
        if (w->rank != 2) return false;
        *m = w->dims[1];
        return true;
    default:
        return false;
    }
}

/* m->node[0] = producer; m->i[0] = channels. */
static bool pq_bn_match(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m) {
    const pq_graph *g = rc->g;
    const pq_node *bn = &g->nodes[nid];
    if (pq_node_attr_int(bn, "training_mode", 0) != 0) return false;
    for (uint32_t o = 1; o < bn->n_outputs; o++)
        if (bn->outputs[o] != PQ_NONE &&
            (pq_uses_count(&rc->uses, bn->outputs[o]) || rc->uses.n_graph_outputs[bn->outputs[o]]))
            return false;
    uint32_t x = bn->inputs[0];
    if (g->values[x].dtype != PQ_DTYPE_F32 || !pq_uses_single(&rc->uses, x)) return false;
    uint32_t pid = pq_value_producer(g, x);
    if (pid == PQ_NONE) return false;
    const pq_node *p = &g->nodes[pid];
    if (pq_canon_has_activation(p)) return false;
    int64_t ch;
    if (!pq_bn_weight_channels(g, p, &ch)) return false;
    if (p->op == PQ_OP_GEMM || p->op == PQ_OP_MATMUL) {
        if (pq_canon_rank(g, x) != 2) return false; /* BN channels = columns */
    } else if (pq_canon_rank(g, x) < 3) {
        return false;
    }
    for (uint32_t k = 1; k < 5; k++) {
        const pq_tensor *t = pq_canon_const_f32(g, bn->inputs[k]);
        if (!t || pq_tensor_numel(t) != ch) return false;
    }
    /* existing bias: Conv [M]; Gemm C of one element or [N] / [1, N] */
    uint32_t b = pq_node_input(p, 2);
    if (b != PQ_NONE && p->op != PQ_OP_MATMUL) {
        const pq_tensor *bt = pq_canon_const_f32(g, b);
        if (!bt) return false;
        int64_t nb = pq_tensor_numel(bt);
        if (p->op == PQ_OP_GEMM) {
            if (nb != 1 && nb != ch) return false;
            if (nb == ch && !(bt->rank == 1 || (bt->rank == 2 && bt->dims[0] == 1))) return false;
        } else if (nb != ch) {
            return false;
        }
    }
    m->node[0] = pid;
    m->i[0] = ch;
    return true;
}

static enum pq_status pq_bn_rewrite(pq_rewrite_ctx *rc, uint32_t nid, const pq_match *m,
                                    pq_error *err) {
    pq_graph *g = rc->g;
    const uint32_t pid = m->node[0];
    const int64_t ch = m->i[0];
    enum pq_status st = PQ_OK;
    float *s = NULL, *bias = NULL, *w = NULL;
    const pq_node *bn = &g->nodes[nid];
    const pq_node *p = &g->nodes[pid];
    const enum pq_op op = p->op;
    const float *gam = pq_canon_const_f32(g, bn->inputs[1])->data;
    const float *beta = pq_canon_const_f32(g, bn->inputs[2])->data;
    const float *mean = pq_canon_const_f32(g, bn->inputs[3])->data;
    const float *var = pq_canon_const_f32(g, bn->inputs[4])->data;
    const float eps = pq_node_attr_float(bn, "epsilon", 1e-5f);
    const pq_tensor *wt = pq_canon_const_f32(g, p->inputs[1]);
    const uint32_t bn_out = bn->outputs[0], x = bn->inputs[0];
    const int64_t numel = pq_tensor_numel(wt);
    s = pq_malloc(sizeof(float) * (size_t)ch);
    bias = pq_calloc((size_t)ch, sizeof(float));
    w = pq_malloc(sizeof(float) * (size_t)(numel ? numel : 1));
    if (!s || !bias || !w) {
        st = pq_error_nomem(err, "batchnorm fold");
        goto cleanup;
    }
    for (int64_t c = 0; c < ch; c++)
        s[c] = gam[c] / sqrtf(var[c] + eps);
    /* existing bias (Gemm: beta * C) */
    uint32_t bv = pq_node_input(p, 2);
    if (bv != PQ_NONE && op != PQ_OP_MATMUL) {
        const pq_tensor *bt = pq_canon_const_f32(g, bv);
        float k = op == PQ_OP_GEMM ? pq_node_attr_float(p, "beta", 1.0f) : 1.0f;
        int64_t nb = pq_tensor_numel(bt);
        for (int64_t c = 0; c < ch; c++)
            bias[c] = k * ((const float *)bt->data)[nb == 1 ? 0 : c];
    }
    for (int64_t c = 0; c < ch; c++)
        bias[c] = (bias[c] - mean[c]) * s[c] + beta[c];
    /* weights scaled per output channel */
    const float *w0 = wt->data;
    if (op == PQ_OP_CONV) {
        int64_t per = numel / ch;
        for (int64_t i = 0; i < numel; i++)
            w[i] = w0[i] * s[i / per];
    } else if (op == PQ_OP_CONV_TRANSPOSE) {
        int64_t grp = pq_node_attr_int(p, "group", 1);
        int64_t cin = wt->dims[0], cog = wt->dims[1], per = numel / (cin * cog);
        for (int64_t ci = 0; ci < cin; ci++)
            for (int64_t j = 0; j < cog; j++) {
                int64_t oc = (ci / (cin / grp)) * cog + j;
                for (int64_t k = 0; k < per; k++) {
                    int64_t i = (ci * cog + j) * per + k;
                    w[i] = w0[i] * s[oc];
                }
            }
    } else if (op == PQ_OP_GEMM && pq_node_attr_int(p, "transB", 0)) {
        int64_t kd = wt->dims[1];
        for (int64_t i = 0; i < numel; i++)
            w[i] = w0[i] * s[i / kd];
    } else { /* Gemm [K, N] or MatMul [K, N]: per column */
        int64_t nd = wt->dims[1];
        for (int64_t i = 0; i < numel; i++)
            w[i] = w0[i] * s[i % nd];
    }
    char hint[256];
    int64_t wdims[PQ_MAX_RANK];
    int wrank = wt->rank;
    memcpy(wdims, wt->dims, sizeof wdims);
    snprintf(hint, sizeof hint, "%s_bn", g->values[p->inputs[1]].name);
    uint32_t wv, bvv;
    PQ_TRY_GOTO(st, pq_canon_const(g, hint, wrank, wdims, w, &wv, err), cleanup);
    PQ_TRY_GOTO(st, pq_graph_set_input(g, pid, 1, wv, err), cleanup);
    snprintf(hint, sizeof hint, "%s_bias_bn", g->nodes[pid].name);
    if (op == PQ_OP_MATMUL) {
        bool any = false;
        for (int64_t c = 0; c < ch && !any; c++)
            any = bias[c] != 0.0f;
        if (!any) {
            st = pq_graph_replace_all_uses(g, bn_out, x, err);
            goto cleanup;
        }
        PQ_TRY_GOTO(st, pq_canon_const(g, hint, 1, &ch, bias, &bvv, err), cleanup);
        uint32_t ins[2] = {x, bvv}, av, an;
        PQ_TRY_GOTO(st, pq_canon_build(g, PQ_OP_ADD, g->values[bn_out].name, ins, 2, &av, &an, err),
                    cleanup);
        PQ_TRY_GOTO(st, pq_infer_node(g, an, err), cleanup);
        st = pq_graph_replace_all_uses(g, bn_out, av, err);
        goto cleanup;
    }
    PQ_TRY_GOTO(st, pq_canon_const(g, hint, 1, &ch, bias, &bvv, err), cleanup);
    if (g->nodes[pid].n_inputs >= 3)
        PQ_TRY_GOTO(st, pq_graph_set_input(g, pid, 2, bvv, err), cleanup);
    else
        PQ_TRY_GOTO(st, pq_graph_append_input(g, pid, bvv, err), cleanup);
    if (op == PQ_OP_GEMM) PQ_TRY_GOTO(st, pq_node_set_float(g, pid, "beta", 1.0f, err), cleanup);
    st = pq_graph_replace_all_uses(g, bn_out, x, err);
cleanup:
    pq_free(s);
    pq_free(bias);
    pq_free(w);
    return st;
}

static const pq_rewrite_rule pq_bn_rules[] = {
    {"fold-batchnorm", PQ_OP_BATCH_NORMALIZATION, pq_bn_match, pq_bn_rewrite},
};

static enum pq_status pq_fold_batchnorm_run(pq_graph *g, const pq_pass_opts *opts, pq_pass_ctx *ctx,
                                            pq_error *err) {
    (void)opts;
    return pq_canon_run(g, pq_bn_rules, 1, NULL, ctx, NULL, err);
}

const pq_pass pq_pass_fold_batchnorm = {
    .name = "fold-batchnorm",
    .summary = "fold inference BatchNormalization into the preceding "
               "Conv/ConvTranspose/Gemm/MatMul weights",
    .options = NULL,
    .n_options = 0,
    .run = pq_fold_batchnorm_run,
};
