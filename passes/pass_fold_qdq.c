/* fold-qdq: QDQ models made by other tools (onnxruntime's quantizer, piqc export --onnx-qdq) run
 * on the integer kernels: DequantizeLinear(x u8/i8) + DequantizeLinear(const w s8/u8, per-tensor
 * or per-channel) [+ bias] -> Conv/MatMul [-> Relu] -> QuantizeLinear becomes QLinearConv /
 * QLinearMatMul; DequantizeLinear(a), DequantizeLinear(b) -> Add|Mul [-> Relu] -> QuantizeLinear
 * becomes QLinearAdd|QLinearMul (exact: their definition), and DequantizeLinear ->
 * GlobalAveragePool -> QuantizeLinear QLinearGlobalAveragePool (within 1 LSB: exact integer sum).
 * Exact except a bias whose scale is not s_x*s_w (requantized to i32: the fold then differs by at
 * most 0.5 * s_x * s_w before the final rounding, i.e. at most 1 LSB). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "canon.h"
#include "ir/infer_piqc.h"

/* Constant tensor of v (not a graph input), or NULL. */
static const pq_tensor *pq_fq_const(const pq_graph *g, uint32_t v) {
    return v == PQ_NONE ? NULL : pq_canon_constant(g, v);
}

/* Per-tensor scale: a constant f32 with one element. */
static bool pq_fq_scalar_scale(const pq_graph *g, uint32_t v) {
    const pq_tensor *t = pq_fq_const(g, v);
    return t && t->dtype == PQ_DTYPE_F32 && pq_tensor_numel(t) == 1 && t->rank <= 1;
}

/* Zero point v (may be PQ_NONE) is absent, or a constant of dtype dt with 1 or n elements. */
static bool pq_fq_zp_ok(const pq_graph *g, uint32_t v, enum pq_dtype dt, int64_t n) {
    if (v == PQ_NONE) return true;
    const pq_tensor *t = pq_fq_const(g, v);
    if (!t || t->dtype != dt) return false;
    int64_t k = pq_tensor_numel(t);
    return k == 1 || k == n;
}

/* The DequantizeLinear producing v, or PQ_NONE. */
static uint32_t pq_fq_dq(const pq_rewrite_ctx *rc, uint32_t v) {
    return pq_match_producer(rc, v, PQ_OP_DEQUANTIZE_LINEAR);
}

/* Activation DQ: x u8/i8 (not a constant needed), per-tensor constant scale and zero point. */
static bool pq_fq_act_dq(const pq_rewrite_ctx *rc, uint32_t dq) {
    const pq_graph *g = rc->g;
    const pq_node *n = &g->nodes[dq];
    enum pq_dtype dt = g->values[n->inputs[0]].dtype;
    if (dt != PQ_DTYPE_U8 && dt != PQ_DTYPE_I8) return false;
    return pq_fq_scalar_scale(g, n->inputs[1]) && pq_fq_zp_ok(g, pq_node_input(n, 2), dt, 1);
}

/* Weight DQ: constant s8/u8 w; scale per tensor, or per channel along `axis` (rank-normalised)
 * with as many elements as w has channels there. *channels receives that count (1 per tensor). */
static bool pq_fq_weight_dq(const pq_rewrite_ctx *rc, uint32_t dq, int axis, int64_t *channels) {
    const pq_graph *g = rc->g;
    const pq_node *n = &g->nodes[dq];
    const pq_tensor *w = pq_fq_const(g, n->inputs[0]);
    if (!w || (w->dtype != PQ_DTYPE_I8 && w->dtype != PQ_DTYPE_U8) || w->rank < 2) return false;
    const pq_tensor *s = pq_fq_const(g, n->inputs[1]);
    if (!s || s->dtype != PQ_DTYPE_F32 || s->rank > 1) return false;
    int64_t ns = pq_tensor_numel(s);
    if (ns > 1) {
        int64_t a = pq_node_attr_int(n, "axis", 1);
        if (a < 0) a += w->rank;
        if (a != axis || w->dims[axis] != ns) return false;
    } else if (ns != 1) {
        return false;
    }
    *channels = ns;
    return pq_fq_zp_ok(g, pq_node_input(n, 2), w->dtype, ns);
}

/* An activation QLinearConv's INT8 epilogue computes (backends/int8/int8_gemm.h) between the
 * Conv and the QuantizeLinear, as piqc's QDQ export writes it: HardSwish, HardSigmoid, LeakyRelu,
 * Sigmoid, or Swish as Mul(v, Sigmoid(v)). Returns the activation's input (the Conv output, used
 * by nothing else) and its node in *act (the Mul for Swish), else PQ_NONE. */
static uint32_t pq_fq_epilogue_act(const pq_rewrite_ctx *rc, uint32_t y, uint32_t *act) {
    const pq_graph *g = rc->g;
    uint32_t a = pq_match_producer(rc, y, PQ_OP_COUNT);
    if (a == PQ_NONE) return PQ_NONE;
    const pq_node *n = &g->nodes[a];
    if (n->op == PQ_OP_HARD_SWISH || n->op == PQ_OP_HARD_SIGMOID || n->op == PQ_OP_LEAKY_RELU ||
        n->op == PQ_OP_SIGMOID) {
        if (!pq_match_single_use(rc, n->inputs[0])) return PQ_NONE;
        *act = a;
        return n->inputs[0];
    }
    if (n->op != PQ_OP_MUL || n->n_inputs != 2) return PQ_NONE;
    for (int k = 0; k < 2; k++) { /* Mul(v, Sigmoid(v)) in either order */
        uint32_t v = n->inputs[k], sv = n->inputs[1 - k];
        uint32_t s = pq_match_producer(rc, sv, PQ_OP_SIGMOID);
        if (s == PQ_NONE || g->nodes[s].inputs[0] != v || !pq_match_single_use(rc, sv)) continue;
        if (pq_uses_count(&rc->uses, v) != 2 || rc->uses.n_graph_outputs[v]) continue;
        *act = a;
        return v;
    }
    return PQ_NONE;
}

/* The fused-activation attributes of the epilogue activation node act (pq_fq_epilogue_act) on the
 * new QLinearConv qn. */
static enum pq_status pq_fq_set_act(pq_graph *g, uint32_t act, uint32_t qn, pq_error *err) {
    const pq_node *n = &g->nodes[act];
    switch (n->op) {
    case PQ_OP_HARD_SWISH:
        return pq_node_set_string(g, qn, "activation", "HardSwish", err);
    case PQ_OP_SIGMOID:
        return pq_node_set_string(g, qn, "activation", "Sigmoid", err);
    case PQ_OP_MUL:
        return pq_node_set_string(g, qn, "activation", "Swish", err);
    case PQ_OP_LEAKY_RELU: {
        float alpha = pq_node_attr_float(n, "alpha", 0.01f);
        PQ_TRY(pq_node_set_string(g, qn, "activation", "LeakyRelu", err));
        return pq_node_set_float(g, qn, "activation_alpha", alpha, err);
    }
    default: { /* HardSigmoid */
        float alpha = pq_node_attr_float(n, "alpha", 0.2f),
              beta = pq_node_attr_float(n, "beta", 0.5f);
        PQ_TRY(pq_node_set_string(g, qn, "activation", "HardSigmoid", err));
        PQ_TRY(pq_node_set_float(g, qn, "activation_alpha", alpha, err));
        return pq_node_set_float(g, qn, "activation_beta", beta, err);
    }
    }
}

/* m->node: 0 Q, 1 Conv/MatMul, 2 x DQ, 3 w DQ, 4 bias DQ (or PQ_NONE); m->value[0] f32 bias
 * constant (when not DQ); m->i[0] 1 when a Relu (node or fused) is folded; m->node[5] an epilogue
 * activation node (or PQ_NONE). */
static bool pq_fq_match(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m) {
    const pq_graph *g = rc->g;
    const pq_node *q = &g->nodes[nid];
    uint32_t y = q->inputs[0], zy = pq_node_input(q, 2);
    if (!pq_fq_scalar_scale(g, q->inputs[1])) return false;
    enum pq_dtype qdt = g->values[q->outputs[0]].dtype;
    if (qdt != PQ_DTYPE_U8 && qdt != PQ_DTYPE_I8) return false;
    if (!pq_fq_zp_ok(g, zy, qdt, 1)) return false;
    if (!pq_match_single_use(rc, y)) return false;
    bool relu = false;
    m->node[5] = PQ_NONE; /* an epilogue activation node (not Relu), see pq_fq_epilogue_act */
    uint32_t r = pq_match_producer(rc, y, PQ_OP_RELU);
    if (r != PQ_NONE) {
        y = g->nodes[r].inputs[0];
        if (!pq_match_single_use(rc, y)) return false;
        relu = true;
    } else {
        uint32_t yin = pq_fq_epilogue_act(rc, y, &m->node[5]);
        if (yin != PQ_NONE) y = yin;
    }
    uint32_t p = pq_match_producer(rc, y, PQ_OP_COUNT);
    if (p == PQ_NONE) return false;
    const pq_node *f = &g->nodes[p];
    if (f->op != PQ_OP_CONV && f->op != PQ_OP_MATMUL) return false;
    if (m->node[5] != PQ_NONE && f->op != PQ_OP_CONV) return false; /* QLinearConv's epilogue */
    const pq_attr *act = pq_node_attr(f, "activation");
    if (act) {
        if (relu || m->node[5] != PQ_NONE || act->type != PQ_ATTR_STRING ||
            strcmp(act->u.s, "Relu") != 0)
            return false;
        relu = true;
    }
    if (relu) { /* Q(relu(v)) == Q(v) only when the zero point is the lowest code */
        double z = 0;
        if (zy != PQ_NONE) {
            const pq_tensor *zt = pq_fq_const(g, zy);
            z = pq_dtype_load(zt->dtype, zt->data, 0);
        }
        if (z != (qdt == PQ_DTYPE_U8 ? 0.0 : -128.0)) return false;
    }
    uint32_t xd = pq_fq_dq(rc, f->inputs[0]), wd = pq_fq_dq(rc, f->inputs[1]);
    if (xd == PQ_NONE || wd == PQ_NONE || !pq_fq_act_dq(rc, xd)) return false;
    int64_t ch;
    if (f->op == PQ_OP_CONV) {
        if (!pq_fq_weight_dq(rc, wd, 0, &ch)) return false;
    } else {
        const pq_tensor *w = pq_fq_const(g, g->nodes[wd].inputs[0]);
        if (!w || w->rank != 2 || !pq_fq_weight_dq(rc, wd, 1, &ch)) return false;
    }
    m->node[4] = PQ_NONE;
    m->value[0] = PQ_NONE;
    uint32_t b = pq_node_input(f, 2);
    if (b != PQ_NONE) {
        const pq_tensor *wt = pq_fq_const(g, g->nodes[wd].inputs[0]);
        uint32_t bd = pq_fq_dq(rc, b);
        const pq_tensor *bt = pq_fq_const(g, bd != PQ_NONE ? g->nodes[bd].inputs[0] : b);
        if (!bt || bt->rank != 1 || bt->dims[0] != wt->dims[0]) return false;
        if (bd != PQ_NONE) {
            const pq_node *bn = &g->nodes[bd];
            const pq_tensor *bs = pq_fq_const(g, bn->inputs[1]);
            if (bt->dtype != PQ_DTYPE_I32 || !bs || bs->dtype != PQ_DTYPE_F32) return false;
            int64_t nbs = pq_tensor_numel(bs);
            if (nbs != 1 && nbs != bt->dims[0]) return false;
            const pq_tensor *bz = pq_fq_const(g, pq_node_input(bn, 2));
            if (pq_node_input(bn, 2) != PQ_NONE) {
                if (!bz) return false;
                for (int64_t i = 0; i < pq_tensor_numel(bz); i++)
                    if (pq_dtype_load(bz->dtype, bz->data, (size_t)i) != 0) return false;
            }
            m->node[4] = bd;
        } else {
            if (bt->dtype != PQ_DTYPE_F32) return false;
            m->value[0] = b;
        }
    }
    m->node[0] = nid;
    m->node[1] = p;
    m->node[2] = xd;
    m->node[3] = wd;
    m->i[0] = relu;
    return true;
}

/* Adds a scalar constant 0 of dtype dt. */
static enum pq_status pq_fq_zero(pq_graph *g, const char *hint, enum pq_dtype dt, uint32_t *out,
                                 pq_error *err) {
    pq_tensor *t = pq_tensor_create(dt, 0, NULL, err);
    if (!t) return err->status;
    return pq_graph_add_constant(g, hint, t, out, err);
}

/* The i32 bias of scale s_x * s_w[m] for the matched Conv: the DQ's own codes when its scale is
 * that product (in f32, as the exporter writes it), else requantized from the f32 values. */
static enum pq_status pq_fq_bias(pq_graph *g, const pq_match *m, uint32_t *out, pq_error *err) {
    const pq_node *xd = &g->nodes[m->node[2]], *wd = &g->nodes[m->node[3]];
    float sx = ((const float *)pq_fq_const(g, xd->inputs[1])->data)[0];
    const pq_tensor *ws = pq_fq_const(g, wd->inputs[1]);
    int64_t nws = pq_tensor_numel(ws);
    const pq_tensor *bt, *bs = NULL;
    if (m->node[4] != PQ_NONE) {
        const pq_node *bd = &g->nodes[m->node[4]];
        bt = pq_fq_const(g, bd->inputs[0]);
        bs = pq_fq_const(g, bd->inputs[1]);
    } else {
        bt = pq_fq_const(g, m->value[0]);
    }
    int64_t n = bt->dims[0];
    bool same = bs != NULL;
    for (int64_t c = 0; c < n && same; c++) {
        float want = sx * ((const float *)ws->data)[nws == 1 ? 0 : c];
        float have = ((const float *)bs->data)[pq_tensor_numel(bs) == 1 ? 0 : c];
        same = want == have;
    }
    if (same && m->node[4] != PQ_NONE) {
        *out = g->nodes[m->node[4]].inputs[0];
        return PQ_OK;
    }
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_I32, 1, &n, err);
    if (!t) return err->status;
    for (int64_t c = 0; c < n; c++) {
        double v = bs ? (double)((const int32_t *)bt->data)[c] *
                            ((const float *)bs->data)[pq_tensor_numel(bs) == 1 ? 0 : c]
                      : (double)((const float *)bt->data)[c];
        double s = (double)sx * ((const float *)ws->data)[nws == 1 ? 0 : c];
        double q = s > 0 ? nearbyint(v / s) : 0.0;
        q = q > 2147483647.0 ? 2147483647.0 : (q < -2147483648.0 ? -2147483648.0 : q);
        ((int32_t *)t->data)[c] = isnan(q) ? 0 : (int32_t)q;
    }
    char hint[200];
    snprintf(hint, sizeof hint, "%s_bias_i32", g->nodes[m->node[1]].name);
    return pq_graph_add_constant(g, hint, t, out, err);
}

static enum pq_status pq_fq_rewrite(pq_rewrite_ctx *rc, uint32_t nid, const pq_match *m,
                                    pq_error *err) {
    pq_graph *g = rc->g;
    const uint32_t fid = m->node[1];
    const bool conv = g->nodes[fid].op == PQ_OP_CONV;
    uint32_t in[9];
    const pq_node *xd = &g->nodes[m->node[2]], *wd = &g->nodes[m->node[3]], *q = &g->nodes[nid];
    in[0] = xd->inputs[0];
    in[1] = xd->inputs[1];
    in[2] = pq_node_input(xd, 2);
    in[3] = wd->inputs[0];
    in[4] = wd->inputs[1];
    in[5] = pq_node_input(wd, 2);
    in[6] = q->inputs[1];
    in[7] = pq_node_input(q, 2);
    in[8] = PQ_NONE;
    const uint32_t qout = q->outputs[0];
    const enum pq_dtype qdt = g->values[qout].dtype;
    const char *name = g->nodes[fid].name;
    if (in[2] == PQ_NONE)
        PQ_TRY(pq_fq_zero(g, "x_zero_point", g->values[in[0]].dtype, &in[2], err));
    if (in[5] == PQ_NONE)
        PQ_TRY(pq_fq_zero(g, "w_zero_point", g->values[in[3]].dtype, &in[5], err));
    if (in[7] == PQ_NONE) PQ_TRY(pq_fq_zero(g, "y_zero_point", qdt, &in[7], err));
    if (conv && (m->node[4] != PQ_NONE || m->value[0] != PQ_NONE))
        PQ_TRY(pq_fq_bias(g, m, &in[8], err));
    uint32_t out, qn;
    PQ_TRY(pq_canon_build(g, conv ? PQ_OP_QLINEAR_CONV : PQ_OP_QLINEAR_MATMUL, g->values[qout].name,
                          in, in[8] == PQ_NONE ? 8 : 9, &out, &qn, err));
    if (name) g->nodes[qn].name = pq_graph_fresh_node_name(g, name);
    if (conv) { /* the Conv geometry, without a fused activation (folded above) */
        const pq_node *f = &g->nodes[fid];
        for (uint32_t a = 0; a < f->n_attrs; a++) {
            const pq_attr at = g->nodes[fid].attrs[a];
            if (strncmp(at.name, "activation", 10) == 0) continue;
            if (at.type == PQ_ATTR_INT)
                PQ_TRY(pq_node_set_int(g, qn, at.name, at.u.i, err));
            else if (at.type == PQ_ATTR_INTS)
                PQ_TRY(pq_node_set_ints(g, qn, at.name, at.u.ints.v, at.u.ints.n, err));
            else if (at.type == PQ_ATTR_STRING)
                PQ_TRY(pq_node_set_string(g, qn, at.name, at.u.s, err));
            f = &g->nodes[fid];
        }
    }
    if (m->node[5] != PQ_NONE) PQ_TRY(pq_fq_set_act(g, m->node[5], qn, err));
    PQ_TRY(pq_infer_node(g, qn, err));
    return pq_graph_replace_all_uses(g, qout, out, err);
}

/* QLinearAdd / QLinearMul: QuantizeLinear(s_c, z_c) of [Relu of] Add|Mul(DequantizeLinear(a),
 * DequantizeLinear(b))
 * with per-tensor activation DQs of the Q's dtype. m->node: 0 Q, 1 Add, 2 a DQ, 3 b DQ; m->i[0] 1
 * when a Relu (node or fused) becomes QLinearAdd's fused Relu (exact: QLinearAdd is defined as
 * this composition, whatever the zero point). */
static bool pq_fq_match_add(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m) {
    const pq_graph *g = rc->g;
    const pq_node *q = &g->nodes[nid];
    uint32_t y = q->inputs[0], zy = pq_node_input(q, 2);
    if (!pq_fq_scalar_scale(g, q->inputs[1])) return false;
    enum pq_dtype qdt = g->values[q->outputs[0]].dtype;
    if (qdt != PQ_DTYPE_U8 && qdt != PQ_DTYPE_I8) return false;
    if (!pq_fq_zp_ok(g, zy, qdt, 1) || !pq_match_single_use(rc, y)) return false;
    bool relu = false;
    uint32_t r = pq_match_producer(rc, y, PQ_OP_RELU);
    if (r != PQ_NONE) {
        y = g->nodes[r].inputs[0];
        if (!pq_match_single_use(rc, y)) return false;
        relu = true;
    }
    uint32_t p = pq_match_producer(rc, y, PQ_OP_COUNT);
    if (p == PQ_NONE || (g->nodes[p].op != PQ_OP_ADD && g->nodes[p].op != PQ_OP_MUL)) return false;
    const pq_node *f = &g->nodes[p];
    const pq_attr *act = pq_node_attr(f, "activation");
    if (act) {
        if (relu || act->type != PQ_ATTR_STRING || strcmp(act->u.s, "Relu") != 0) return false;
        relu = true;
    }
    uint32_t ad = pq_fq_dq(rc, f->inputs[0]), bd = pq_fq_dq(rc, f->inputs[1]);
    if (ad == PQ_NONE || bd == PQ_NONE || !pq_fq_act_dq(rc, ad) || !pq_fq_act_dq(rc, bd))
        return false;
    if (g->values[g->nodes[ad].inputs[0]].dtype != qdt ||
        g->values[g->nodes[bd].inputs[0]].dtype != qdt)
        return false;
    m->node[0] = nid;
    m->node[1] = p;
    m->node[2] = ad;
    m->node[3] = bd;
    m->i[0] = relu;
    return true;
}

static enum pq_status pq_fq_rewrite_add(pq_rewrite_ctx *rc, uint32_t nid, const pq_match *m,
                                        pq_error *err) {
    pq_graph *g = rc->g;
    const pq_node *ad = &g->nodes[m->node[2]], *bd = &g->nodes[m->node[3]], *q = &g->nodes[nid];
    uint32_t in[8] = {ad->inputs[0], ad->inputs[1],      pq_node_input(ad, 2),
                      bd->inputs[0], bd->inputs[1],      pq_node_input(bd, 2),
                      q->inputs[1],  pq_node_input(q, 2)};
    const uint32_t qout = q->outputs[0];
    const enum pq_dtype qdt = g->values[qout].dtype;
    const char *name = g->nodes[m->node[1]].name;
    if (in[7] == PQ_NONE) PQ_TRY(pq_fq_zero(g, "y_zero_point", qdt, &in[7], err));
    uint32_t out, qn;
    enum pq_op op = g->nodes[m->node[1]].op == PQ_OP_MUL ? PQ_OP_QLINEAR_MUL : PQ_OP_QLINEAR_ADD;
    PQ_TRY(pq_canon_build(g, op, g->values[qout].name, in, 8, &out, &qn, err));
    if (name) g->nodes[qn].name = pq_graph_fresh_node_name(g, name);
    if (m->i[0]) PQ_TRY(pq_node_set_string(g, qn, "activation", "Relu", err));
    PQ_TRY(pq_infer_node(g, qn, err));
    return pq_graph_replace_all_uses(g, qout, out, err);
}

/* QLinearGlobalAveragePool: QuantizeLinear(GlobalAveragePool(DequantizeLinear(x))) with a 4-D
 * per-tensor activation DQ of the Q's dtype. m->node: 0 Q, 1 GlobalAveragePool, 2 x DQ. Within 1
 * LSB, not exact: the integer op sums the codes exactly, the f32 pool sums rounded values. */
static bool pq_fq_match_gap(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m) {
    const pq_graph *g = rc->g;
    const pq_node *q = &g->nodes[nid];
    uint32_t y = q->inputs[0], zy = pq_node_input(q, 2);
    if (!pq_fq_scalar_scale(g, q->inputs[1])) return false;
    enum pq_dtype qdt = g->values[q->outputs[0]].dtype;
    if (qdt != PQ_DTYPE_U8 && qdt != PQ_DTYPE_I8) return false;
    if (!pq_fq_zp_ok(g, zy, qdt, 1) || !pq_match_single_use(rc, y)) return false;
    uint32_t p = pq_match_producer(rc, y, PQ_OP_GLOBAL_AVERAGE_POOL);
    if (p == PQ_NONE) return false;
    uint32_t xd = pq_fq_dq(rc, g->nodes[p].inputs[0]);
    if (xd == PQ_NONE || !pq_fq_act_dq(rc, xd)) return false;
    const pq_value *x = &g->values[g->nodes[xd].inputs[0]];
    if (x->dtype != qdt || x->shape.rank != 4) return false;
    m->node[0] = nid;
    m->node[1] = p;
    m->node[2] = xd;
    return true;
}

static enum pq_status pq_fq_rewrite_gap(pq_rewrite_ctx *rc, uint32_t nid, const pq_match *m,
                                        pq_error *err) {
    pq_graph *g = rc->g;
    const pq_node *xd = &g->nodes[m->node[2]], *q = &g->nodes[nid];
    uint32_t in[5] = {xd->inputs[0], xd->inputs[1], pq_node_input(xd, 2), q->inputs[1],
                      pq_node_input(q, 2)};
    const uint32_t qout = q->outputs[0];
    const enum pq_dtype qdt = g->values[qout].dtype;
    const char *name = g->nodes[m->node[1]].name;
    if (in[2] == PQ_NONE) PQ_TRY(pq_fq_zero(g, "x_zero_point", qdt, &in[2], err));
    if (in[4] == PQ_NONE) PQ_TRY(pq_fq_zero(g, "y_zero_point", qdt, &in[4], err));
    uint32_t out, qn;
    PQ_TRY(pq_canon_build(g, PQ_OP_QLINEAR_GLOBAL_AVERAGE_POOL, g->values[qout].name, in, 5, &out,
                          &qn, err));
    if (name) g->nodes[qn].name = pq_graph_fresh_node_name(g, name);
    PQ_TRY(pq_infer_node(g, qn, err));
    return pq_graph_replace_all_uses(g, qout, out, err);
}

static const pq_rewrite_rule pq_fq_rules[] = {
    {"fold-qdq", PQ_OP_QUANTIZE_LINEAR, pq_fq_match, pq_fq_rewrite},
    {"fold-qdq-add", PQ_OP_QUANTIZE_LINEAR, pq_fq_match_add, pq_fq_rewrite_add},
    {"fold-qdq-gap", PQ_OP_QUANTIZE_LINEAR, pq_fq_match_gap, pq_fq_rewrite_gap},
};

static enum pq_status pq_fold_qdq_run(pq_graph *g, const pq_pass_opts *opts, pq_pass_ctx *ctx,
                                      pq_error *err) {
    (void)opts;
    return pq_canon_run(g, pq_fq_rules, sizeof pq_fq_rules / sizeof pq_fq_rules[0], NULL, ctx, NULL,
                        err);
}

const pq_pass pq_pass_fold_qdq = {
    .name = "fold-qdq",
    .summary = "fold DequantizeLinear -> Conv/MatMul/Add/Mul/GlobalAveragePool [-> Relu] -> "
               "QuantizeLinear (QDQ models) into their QLinear ops",
    .options = NULL,
    .n_options = 0,
    .run = pq_fold_qdq_run,
};
