/* canonicalize, pattern recognition: decomposed HardSwish (x*clip(x+3,0,6)/6 and its variants,
 * x*HardSigmoid(x,1/6,0.5)) -> HardSwish, and the decomposed layer norm (ReduceMean, Sub, Pow,
 * ReduceMean, Add eps, Sqrt, Div, then Mul gamma / Add beta) -> LayerNormalization. */
#include <stdio.h>
#include <string.h>

#include "canon.h"

/* ---- HardSwish ---------------------------------------------------------------------------- */

/* c = Clip(Add(x, 3), 0, 6) with c and the Add used once. */
static bool pq_hs_is_relu6_shift(const pq_rewrite_ctx *rc, uint32_t c, uint32_t x, int rank) {
    const pq_graph *g = rc->g;
    uint32_t cid = pq_value_producer(g, c);
    if (cid == PQ_NONE || g->nodes[cid].op != PQ_OP_CLIP || !pq_uses_single(&rc->uses, c))
        return false;
    const pq_node *cn = &g->nodes[cid];
    if (!pq_canon_scalar_is(g, pq_node_input(cn, 1), rank, 0.0f, 0.0f) ||
        !pq_canon_scalar_is(g, pq_node_input(cn, 2), rank, 6.0f, 1e-6f))
        return false;
    uint32_t a = cn->inputs[0];
    uint32_t aid = pq_value_producer(g, a);
    if (aid == PQ_NONE || g->nodes[aid].op != PQ_OP_ADD || !pq_uses_single(&rc->uses, a))
        return false;
    const pq_node *an = &g->nodes[aid];
    for (int k = 0; k < 2; k++)
        if (an->inputs[k] == x && pq_canon_scalar_is(g, an->inputs[1 - k], rank, 3.0f, 1e-6f))
            return true;
    return false;
}

/* h = HardSigmoid(x, alpha 1/6, beta 0.5) used once. */
static bool pq_hs_is_hsig(const pq_rewrite_ctx *rc, uint32_t h, uint32_t x) {
    const pq_graph *g = rc->g;
    uint32_t hid = pq_value_producer(g, h);
    if (hid == PQ_NONE || g->nodes[hid].op != PQ_OP_HARD_SIGMOID || !pq_uses_single(&rc->uses, h))
        return false;
    const pq_node *hn = &g->nodes[hid];
    return hn->inputs[0] == x &&
           pq_canon_near(pq_node_attr_float(hn, "alpha", 0.2f), 1.0f / 6.0f, 1e-5f) &&
           pq_canon_near(pq_node_attr_float(hn, "beta", 0.5f), 0.5f, 1e-6f);
}

bool pq_canon_hardswish_match(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m) {
    const pq_graph *g = rc->g;
    uint32_t out = g->nodes[nid].outputs[0];
    if (g->values[out].dtype != PQ_DTYPE_F32) return false;
    pq_canon_product p;
    if (!pq_canon_flatten_product(rc, out, &p) || p.n != 2) return false;
    int rank = pq_canon_rank(g, out);
    for (int a = 0; a < 2; a++) {
        uint32_t x = p.factor[a], c = p.factor[1 - a];
        if (pq_canon_rank(g, x) != rank) continue;
        bool ok = (pq_canon_near((float)p.k, 1.0f / 6.0f, 1e-5f) &&
                   pq_hs_is_relu6_shift(rc, c, x, rank)) ||
                  (pq_canon_near((float)p.k, 1.0f, 1e-6f) && pq_hs_is_hsig(rc, c, x));
        if (!ok) continue;
        m->value[0] = x;
        return true;
    }
    return false;
}

enum pq_status pq_canon_hardswish_rewrite(pq_rewrite_ctx *rc, uint32_t nid, const pq_match *m,
                                          pq_error *err) {
    pq_graph *g = rc->g;
    uint32_t out = g->nodes[nid].outputs[0], hv, hn;
    PQ_TRY(
        pq_canon_build(g, PQ_OP_HARD_SWISH, g->values[out].name, &m->value[0], 1, &hv, &hn, err));
    PQ_TRY(pq_infer_node(g, hn, err));
    return pq_graph_replace_all_uses(g, out, hv, err);
}

/* ---- LayerNormalization ------------------------------------------------------------------- */

/* Normalised, sorted axes of ReduceMean node rid (keepdims must be 1) over an input of rank r. */
static bool pq_ln_axes(const pq_graph *g, uint32_t rid, int r, int64_t *axes, int *n) {
    const pq_node *rn = &g->nodes[rid];
    if (pq_node_attr_int(rn, "keepdims", 1) != 1) return false;
    if (!pq_canon_const_ints(g, pq_node_input(rn, 1), axes, PQ_MAX_RANK, n) || *n == 0)
        return false;
    for (int i = 0; i < *n; i++) {
        if (axes[i] < 0) axes[i] += r;
        if (axes[i] < 0 || axes[i] >= r) return false;
    }
    for (int i = 1; i < *n; i++) /* insertion sort */
        for (int j = i; j > 0 && axes[j - 1] > axes[j]; j--) {
            int64_t t = axes[j];
            axes[j] = axes[j - 1];
            axes[j - 1] = t;
        }
    for (int i = 0; i < *n; i++)
        if (axes[i] != r - *n + i) return false; /* trailing and contiguous */
    return true;
}

/* Div(d, Sqrt(Add(ReduceMean(Pow(d, 2)), eps))) with d = Sub(x, ReduceMean(x)) over the same
 * trailing axes. m->value[0] = x, m->i[0] = axis, m->f[0] = eps. */
bool pq_canon_layernorm_match(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m) {
    const pq_graph *g = rc->g;
    const pq_node *div = &g->nodes[nid];
    uint32_t d = div->inputs[0], s = div->inputs[1];
    uint32_t sub = pq_value_producer(g, d), sq = pq_value_producer(g, s);
    if (sub == PQ_NONE || sq == PQ_NONE || g->nodes[sub].op != PQ_OP_SUB ||
        g->nodes[sq].op != PQ_OP_SQRT || !pq_uses_single(&rc->uses, s))
        return false;
    uint32_t x = g->nodes[sub].inputs[0], mean = g->nodes[sub].inputs[1];
    int r = pq_canon_rank(g, x);
    if (r < 1 || g->values[x].dtype != PQ_DTYPE_F32 || pq_canon_rank(g, d) != r) return false;
    uint32_t rm1 = pq_value_producer(g, mean);
    if (rm1 == PQ_NONE || g->nodes[rm1].op != PQ_OP_REDUCE_MEAN || g->nodes[rm1].inputs[0] != x ||
        !pq_uses_single(&rc->uses, mean))
        return false;
    int64_t ax1[PQ_MAX_RANK], ax2[PQ_MAX_RANK];
    int n1, n2;
    if (!pq_ln_axes(g, rm1, r, ax1, &n1)) return false;
    /* Sqrt(Add(v, eps)) */
    uint32_t ve = g->nodes[sq].inputs[0], add = pq_value_producer(g, ve);
    if (add == PQ_NONE || g->nodes[add].op != PQ_OP_ADD || !pq_uses_single(&rc->uses, ve))
        return false;
    uint32_t v = PQ_NONE;
    float eps = 0;
    for (int k = 0; k < 2; k++)
        if (pq_canon_scalar(g, g->nodes[add].inputs[1 - k], r, &eps)) {
            v = g->nodes[add].inputs[k];
            break;
        }
    if (v == PQ_NONE || !(eps > 0.0f) || !pq_uses_single(&rc->uses, v)) return false;
    uint32_t rm2 = pq_value_producer(g, v);
    if (rm2 == PQ_NONE || g->nodes[rm2].op != PQ_OP_REDUCE_MEAN) return false;
    if (!pq_ln_axes(g, rm2, r, ax2, &n2) || n1 != n2) return false;
    /* Pow(d, 2) or Mul(d, d) */
    uint32_t pw = g->nodes[rm2].inputs[0], pid = pq_value_producer(g, pw);
    if (pid == PQ_NONE || !pq_uses_single(&rc->uses, pw)) return false;
    const pq_node *pn = &g->nodes[pid];
    uint32_t d_uses;
    if (pn->op == PQ_OP_POW && pn->inputs[0] == d &&
        pq_canon_scalar_is(g, pn->inputs[1], r, 2.0f, 0))
        d_uses = 2;
    else if (pn->op == PQ_OP_MUL && pn->inputs[0] == d && pn->inputs[1] == d)
        d_uses = 3;
    else
        return false;
    if (pq_canon_escapes(rc, d, d_uses)) return false;
    /* the normalised dims must be static (scale constant) */
    const pq_shape *xs = &g->values[x].shape;
    for (int i = r - n1; i < r; i++)
        if (!pq_dim_known(xs->dims[i])) return false;
    m->value[0] = x;
    m->i[0] = r - n1;
    m->f[0] = eps;
    return true;
}

enum pq_status pq_canon_layernorm_rewrite(pq_rewrite_ctx *rc, uint32_t nid, const pq_match *m,
                                          pq_error *err) {
    pq_graph *g = rc->g;
    uint32_t x = m->value[0], out = g->nodes[nid].outputs[0];
    int r = pq_canon_rank(g, x), axis = (int)m->i[0];
    int64_t dims[PQ_MAX_RANK], numel = 1;
    for (int i = axis; i < r; i++) {
        dims[i - axis] = g->values[x].shape.dims[i].size;
        numel *= dims[i - axis];
    }
    char hint[256];
    snprintf(hint, sizeof hint, "%s_ln_scale", g->nodes[nid].name);
    float *ones = pq_malloc(sizeof(float) * (size_t)(numel ? numel : 1));
    if (!ones) return pq_error_nomem(err, "layer norm scale");
    for (int64_t i = 0; i < numel; i++)
        ones[i] = 1.0f;
    uint32_t sc, lv, ln;
    enum pq_status st = pq_canon_const(g, hint, r - axis, dims, ones, &sc, err);
    pq_free(ones);
    PQ_TRY(st);
    uint32_t ins[2] = {x, sc};
    PQ_TRY(
        pq_canon_build(g, PQ_OP_LAYER_NORMALIZATION, g->values[out].name, ins, 2, &lv, &ln, err));
    PQ_TRY(pq_node_set_int(g, ln, "axis", axis, err));
    PQ_TRY(pq_node_set_float(g, ln, "epsilon", m->f[0], err));
    PQ_TRY(pq_infer_node(g, ln, err));
    return pq_graph_replace_all_uses(g, out, lv, err);
}

/* Mul / Add of a LayerNormalization output (used only there) by a constant shaped like the
 * normalised dims: folded into scale / bias. m->node[0] = LN node, m->value[0] = the constant. */
bool pq_canon_layernorm_affine_match(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m) {
    const pq_graph *g = rc->g;
    const pq_node *n = &g->nodes[nid];
    for (int k = 0; k < 2; k++) {
        uint32_t l = n->inputs[k], c = n->inputs[1 - k];
        uint32_t lid = pq_value_producer(g, l);
        if (lid == PQ_NONE || g->nodes[lid].op != PQ_OP_LAYER_NORMALIZATION) continue;
        const pq_node *ln = &g->nodes[lid];
        if (!pq_uses_single(&rc->uses, l) || ln->outputs[0] != l) continue;
        bool extra = false;
        for (uint32_t o = 1; o < ln->n_outputs; o++)
            extra |= ln->outputs[o] != PQ_NONE;
        if (extra) continue;
        const pq_tensor *ct = pq_canon_const_f32(g, c);
        const pq_tensor *sc = pq_canon_const_f32(g, ln->inputs[1]);
        uint32_t bv = pq_node_input(ln, 2);
        if (!ct || !sc || (bv != PQ_NONE && !pq_canon_const_f32(g, bv))) continue;
        int r = pq_canon_rank(g, l);
        if (ct->rank > r || pq_tensor_numel(ct) != pq_tensor_numel(sc)) continue;
        /* right-aligned dims equal to the scale's (leading dims 1) */
        bool ok = true;
        for (int i = 1; i <= ct->rank && ok; i++) {
            int64_t cd = ct->dims[ct->rank - i];
            int64_t sd = i <= sc->rank ? sc->dims[sc->rank - i] : 1;
            ok = cd == sd;
        }
        if (!ok) continue;
        m->node[0] = lid;
        m->value[0] = c;
        return true;
    }
    return false;
}

enum pq_status pq_canon_layernorm_affine_rewrite(pq_rewrite_ctx *rc, uint32_t nid,
                                                 const pq_match *m, pq_error *err) {
    pq_graph *g = rc->g;
    const bool mul = g->nodes[nid].op == PQ_OP_MUL;
    const uint32_t lid = m->node[0], out = g->nodes[nid].outputs[0];
    const pq_tensor *ct = pq_canon_const_f32(g, m->value[0]);
    const pq_tensor *sc = pq_canon_const_f32(g, g->nodes[lid].inputs[1]);
    uint32_t bv = pq_node_input(&g->nodes[lid], 2);
    const pq_tensor *bt = bv != PQ_NONE ? pq_canon_const_f32(g, bv) : NULL;
    int64_t n = pq_tensor_numel(sc), dims[PQ_MAX_RANK];
    int rank = sc->rank;
    memcpy(dims, sc->dims, sizeof dims);
    enum pq_status st = PQ_OK;
    float *ns = pq_malloc(sizeof(float) * (size_t)(n ? n : 1));
    float *nb = pq_calloc((size_t)(n ? n : 1), sizeof(float));
    if (!ns || !nb) {
        st = pq_error_nomem(err, "layer norm affine");
        goto cleanup;
    }
    const float *c = ct->data, *s = sc->data;
    for (int64_t i = 0; i < n; i++) {
        float b = bt ? ((const float *)bt->data)[i] : 0.0f;
        ns[i] = mul ? s[i] * c[i] : s[i];
        nb[i] = mul ? b * c[i] : b + c[i];
    }
    char hint[256];
    uint32_t sv, bnv;
    snprintf(hint, sizeof hint, "%s_scale", g->nodes[lid].name);
    PQ_TRY_GOTO(st, pq_canon_const(g, hint, rank, dims, ns, &sv, err), cleanup);
    snprintf(hint, sizeof hint, "%s_bias", g->nodes[lid].name);
    PQ_TRY_GOTO(st, pq_canon_const(g, hint, rank, dims, nb, &bnv, err), cleanup);
    PQ_TRY_GOTO(st, pq_graph_set_input(g, lid, 1, sv, err), cleanup);
    if (g->nodes[lid].n_inputs >= 3)
        PQ_TRY_GOTO(st, pq_graph_set_input(g, lid, 2, bnv, err), cleanup);
    else
        PQ_TRY_GOTO(st, pq_graph_append_input(g, lid, bnv, err), cleanup);
    st = pq_graph_replace_all_uses(g, out, g->nodes[lid].outputs[0], err);
cleanup:
    pq_free(ns);
    pq_free(nb);
    return st;
}
