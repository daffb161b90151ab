/* canonicalize: pattern recognition into single ops (HardSwish, LayerNormalization;
 * canon_patterns.c) and cleanup of no-op data movement: Identity, inference Dropout, same-dtype
 * Cast, identity Transpose/Reshape, Transpose of Transpose, Reshape of Reshape, cancelling
 * Squeeze/Unsqueeze. */
#include <string.h>

#include "canon.h"

/* Whether the uses of out may read in instead without losing a graph output name. */
static bool pq_cn_may_forward(const pq_rewrite_ctx *rc, uint32_t out, uint32_t in) {
    if (in == PQ_NONE) return false;
    if (!rc->uses.n_graph_outputs[out]) return true;
    return !(rc->g->values[in].flags & (PQ_VALUE_INPUT | PQ_VALUE_OUTPUT));
}

/* Rewrite shared by every "output equals input 0" rule. */
static enum pq_status pq_cn_forward(pq_rewrite_ctx *rc, uint32_t nid, const pq_match *m,
                                    pq_error *err) {
    (void)m;
    const pq_node *n = &rc->g->nodes[nid];
    return pq_graph_replace_all_uses(rc->g, n->outputs[0], n->inputs[0], err);
}

static bool pq_cn_identity_match(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m) {
    const pq_node *n = &rc->g->nodes[nid];
    (void)m;
    return pq_cn_may_forward(rc, n->outputs[0], n->inputs[0]);
}

/* Dropout in inference: training_mode absent or constant false, mask unused. */
static bool pq_cn_dropout_match(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m) {
    const pq_graph *g = rc->g;
    const pq_node *n = &g->nodes[nid];
    (void)m;
    uint32_t tm = pq_node_input(n, 2);
    if (tm != PQ_NONE) {
        const pq_tensor *t = pq_canon_constant(g, tm);
        if (!t || pq_tensor_numel(t) != 1 || pq_dtype_load(t->dtype, t->data, 0) != 0.0)
            return false;
    }
    uint32_t mask = pq_node_output(n, 1);
    if (mask != PQ_NONE && (pq_uses_count(&rc->uses, mask) || rc->uses.n_graph_outputs[mask]))
        return false;
    return pq_cn_may_forward(rc, n->outputs[0], n->inputs[0]);
}

static bool pq_cn_cast_match(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m) {
    const pq_graph *g = rc->g;
    const pq_node *n = &g->nodes[nid];
    enum pq_dtype to;
    (void)m;
    const char *s = pq_node_attr_string(n, "to", NULL);
    if (!s || !pq_dtype_from_name(s, &to)) return false;
    return to != PQ_DTYPE_UNDEFINED && g->values[n->inputs[0]].dtype == to &&
           pq_cn_may_forward(rc, n->outputs[0], n->inputs[0]);
}

/* Permutation of Transpose node n (default: reversed axes); false when the rank is unknown. */
static bool pq_cn_perm(const pq_graph *g, const pq_node *n, int64_t *perm, int *rank) {
    int r = pq_canon_rank(g, n->inputs[0]);
    const pq_attr *a = pq_node_attr(n, "perm");
    if (a) {
        if (a->type != PQ_ATTR_INTS || a->u.ints.n > PQ_MAX_RANK) return false;
        if (r >= 0 && (int)a->u.ints.n != r) return false;
        r = (int)a->u.ints.n;
        for (int i = 0; i < r; i++) {
            perm[i] = a->u.ints.v[i];
            if (perm[i] < 0 || perm[i] >= r) return false;
        }
    } else {
        if (r < 0) return false;
        for (int i = 0; i < r; i++)
            perm[i] = r - 1 - i;
    }
    *rank = r;
    return true;
}

static bool pq_cn_is_identity_perm(const int64_t *perm, int r) {
    for (int i = 0; i < r; i++)
        if (perm[i] != i) return false;
    return true;
}

static bool pq_cn_transpose_identity_match(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m) {
    const pq_node *n = &rc->g->nodes[nid];
    int64_t perm[PQ_MAX_RANK];
    int r;
    (void)m;
    return pq_cn_perm(rc->g, n, perm, &r) && pq_cn_is_identity_perm(perm, r) &&
           pq_cn_may_forward(rc, n->outputs[0], n->inputs[0]);
}

/* Transpose(Transpose(x, p1), p2) -> Transpose(x, p1[p2[i]]) (or x when that is the identity). */
static bool pq_cn_transpose_pair_match(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m) {
    const pq_graph *g = rc->g;
    const pq_node *n = &g->nodes[nid];
    uint32_t inner = pq_value_producer(g, n->inputs[0]);
    if (inner == PQ_NONE || g->nodes[inner].op != PQ_OP_TRANSPOSE) return false;
    int64_t p1[PQ_MAX_RANK], p2[PQ_MAX_RANK];
    int r1, r2;
    if (!pq_cn_perm(g, &g->nodes[inner], p1, &r1) || !pq_cn_perm(g, n, p2, &r2) || r1 != r2)
        return false;
    int64_t q[PQ_MAX_RANK];
    for (int i = 0; i < r1; i++)
        q[i] = p1[p2[i]];
    uint32_t x = g->nodes[inner].inputs[0];
    if (pq_cn_is_identity_perm(q, r1) && !pq_cn_may_forward(rc, n->outputs[0], x)) return false;
    m->node[0] = inner;
    return true;
}

static enum pq_status pq_cn_transpose_pair_rewrite(pq_rewrite_ctx *rc, uint32_t nid,
                                                   const pq_match *m, pq_error *err) {
    pq_graph *g = rc->g;
    int64_t p1[PQ_MAX_RANK], p2[PQ_MAX_RANK], q[PQ_MAX_RANK];
    int r1, r2;
    pq_cn_perm(g, &g->nodes[m->node[0]], p1, &r1);
    pq_cn_perm(g, &g->nodes[nid], p2, &r2);
    for (int i = 0; i < r1; i++)
        q[i] = p1[p2[i]];
    uint32_t x = g->nodes[m->node[0]].inputs[0];
    if (pq_cn_is_identity_perm(q, r1))
        return pq_graph_replace_all_uses(g, g->nodes[nid].outputs[0], x, err);
    PQ_TRY(pq_node_set_ints(g, nid, "perm", q, (uint32_t)r1, err));
    return pq_graph_set_input(g, nid, 0, x, err);
}

/* Reshape whose output shape equals its input shape (dims known or the same symbols). */
static bool pq_cn_reshape_identity_match(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m) {
    const pq_graph *g = rc->g;
    const pq_node *n = &g->nodes[nid];
    (void)m;
    const pq_shape *a = &g->values[n->inputs[0]].shape, *b = &g->values[n->outputs[0]].shape;
    if (a->rank < 0 || a->rank != b->rank) return false;
    for (int d = 0; d < a->rank; d++) {
        if (!pq_dim_known(a->dims[d]) && a->dims[d].sym == 0) return false;
        if (!pq_dim_equal(a->dims[d], b->dims[d])) return false;
    }
    return pq_cn_may_forward(rc, n->outputs[0], n->inputs[0]);
}

/* Reshape(Reshape(x, s1), s2) -> Reshape(x, s2) when s2 is constant without 0 entries (a 0 would
 * copy a dim of the intermediate) or allowzero is set. */
static bool pq_cn_reshape_pair_match(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m) {
    const pq_graph *g = rc->g;
    const pq_node *n = &g->nodes[nid];
    uint32_t inner = pq_value_producer(g, n->inputs[0]);
    if (inner == PQ_NONE || g->nodes[inner].op != PQ_OP_RESHAPE) return false;
    int64_t s[PQ_MAX_RANK];
    int k;
    if (!pq_canon_const_ints(g, n->inputs[1], s, PQ_MAX_RANK, &k)) return false;
    if (!pq_node_attr_int(n, "allowzero", 0))
        for (int i = 0; i < k; i++)
            if (s[i] == 0) return false;
    m->node[0] = inner;
    return true;
}

static enum pq_status pq_cn_reshape_pair_rewrite(pq_rewrite_ctx *rc, uint32_t nid,
                                                 const pq_match *m, pq_error *err) {
    return pq_graph_set_input(rc->g, nid, 0, rc->g->nodes[m->node[0]].inputs[0], err);
}

/* Sorted axes of Squeeze/Unsqueeze node n (input 1) normalised for rank r. */
static bool pq_cn_axes(const pq_graph *g, const pq_node *n, int r, int64_t *axes, int *k) {
    if (r < 0 || !pq_canon_const_ints(g, pq_node_input(n, 1), axes, PQ_MAX_RANK, k) || *k == 0)
        return false;
    for (int i = 0; i < *k; i++) {
        if (axes[i] < 0) axes[i] += r;
        if (axes[i] < 0 || axes[i] >= r) return false;
    }
    for (int i = 1; i < *k; i++)
        for (int j = i; j > 0 && axes[j - 1] > axes[j]; j--) {
            int64_t t = axes[j];
            axes[j] = axes[j - 1];
            axes[j - 1] = t;
        }
    return true;
}

/* Squeeze(Unsqueeze(x, a), a) -> x and Unsqueeze(Squeeze(x, a), a) -> x. m->value[0] = x. */
static bool pq_cn_squeeze_pair_match(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m) {
    const pq_graph *g = rc->g;
    const pq_node *n = &g->nodes[nid];
    enum pq_op want = n->op == PQ_OP_SQUEEZE ? PQ_OP_UNSQUEEZE : PQ_OP_SQUEEZE;
    uint32_t inner = pq_value_producer(g, n->inputs[0]);
    if (inner == PQ_NONE || g->nodes[inner].op != want) return false;
    uint32_t x = g->nodes[inner].inputs[0];
    int rx = pq_canon_rank(g, x);
    if (rx < 0) return false;
    /* both axis lists refer to the larger of the two ranks: Unsqueeze's output, Squeeze's input */
    int64_t a[PQ_MAX_RANK], b[PQ_MAX_RANK];
    int ka, kb;
    if (n->op == PQ_OP_SQUEEZE) {
        int r = pq_canon_rank(g, n->inputs[0]);
        if (!pq_cn_axes(g, &g->nodes[inner], r, a, &ka) || !pq_cn_axes(g, n, r, b, &kb))
            return false;
    } else {
        if (!pq_cn_axes(g, &g->nodes[inner], rx, a, &ka) || !pq_cn_axes(g, n, rx, b, &kb))
            return false;
    }
    if (ka != kb || memcmp(a, b, sizeof(int64_t) * (size_t)ka) != 0) return false;
    if (!pq_cn_may_forward(rc, n->outputs[0], x)) return false;
    m->value[0] = x;
    return true;
}

static enum pq_status pq_cn_squeeze_pair_rewrite(pq_rewrite_ctx *rc, uint32_t nid,
                                                 const pq_match *m, pq_error *err) {
    return pq_graph_replace_all_uses(rc->g, rc->g->nodes[nid].outputs[0], m->value[0], err);
}

static const pq_rewrite_rule pq_canon_rules[] = {
    {"identity", PQ_OP_IDENTITY, pq_cn_identity_match, pq_cn_forward},
    {"dropout", PQ_OP_DROPOUT, pq_cn_dropout_match, pq_cn_forward},
    {"cast-noop", PQ_OP_CAST, pq_cn_cast_match, pq_cn_forward},
    {"transpose-identity", PQ_OP_TRANSPOSE, pq_cn_transpose_identity_match, pq_cn_forward},
    {"transpose-transpose", PQ_OP_TRANSPOSE, pq_cn_transpose_pair_match,
     pq_cn_transpose_pair_rewrite},
    {"reshape-identity", PQ_OP_RESHAPE, pq_cn_reshape_identity_match, pq_cn_forward},
    {"reshape-reshape", PQ_OP_RESHAPE, pq_cn_reshape_pair_match, pq_cn_reshape_pair_rewrite},
    {"squeeze-unsqueeze", PQ_OP_SQUEEZE, pq_cn_squeeze_pair_match, pq_cn_squeeze_pair_rewrite},
    {"unsqueeze-squeeze", PQ_OP_UNSQUEEZE, pq_cn_squeeze_pair_match, pq_cn_squeeze_pair_rewrite},
    {"hardswish-div", PQ_OP_DIV, pq_canon_hardswish_match, pq_canon_hardswish_rewrite},
    {"hardswish-mul", PQ_OP_MUL, pq_canon_hardswish_match, pq_canon_hardswish_rewrite},
    {"layernorm", PQ_OP_DIV, pq_canon_layernorm_match, pq_canon_layernorm_rewrite},
    {"layernorm-scale", PQ_OP_MUL, pq_canon_layernorm_affine_match,
     pq_canon_layernorm_affine_rewrite},
    {"layernorm-bias", PQ_OP_ADD, pq_canon_layernorm_affine_match,
     pq_canon_layernorm_affine_rewrite},
};

static enum pq_status pq_canonicalize_run(pq_graph *g, const pq_pass_opts *opts, pq_pass_ctx *ctx,
                                          pq_error *err) {
    (void)opts;
    return pq_canon_run(g, pq_canon_rules, sizeof pq_canon_rules / sizeof pq_canon_rules[0], NULL,
                        ctx, NULL, err);
}

const pq_pass pq_pass_canonicalize = {
    .name = "canonicalize",
    .summary =
        "recognise HardSwish and LayerNormalization patterns; drop no-op Identity/Dropout/Cast/"
        "Transpose/Reshape and cancelling Transpose, Reshape, Squeeze/Unsqueeze pairs",
    .options = NULL,
    .n_options = 0,
    .run = pq_canonicalize_run,
};
