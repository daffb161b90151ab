/* ONNX writer: prepares a clone of a piqc graph (QDQ expansion, fused activations and coerce_2d
 * back to ONNX ops, opset choice) and packs it as a ModelProto with protobuf-c. */
#include "onnx_export.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fileio.h"
#include "ir/infer_piqc.h"
#include "ir/ir.h"
#include "onnx_internal.h"

#define PQ_OX_IR_VERSION 8
#define PQ_OX_MAX_OPSET 18

/* ---- allocation of the message tree: every block is freed at once ---- */

typedef struct pq_ox {
    void **blocks;
    size_t n, cap;
} pq_ox;

static void *pq_ox_alloc(pq_ox *x, size_t count, size_t size) {
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 256;
        void **b = pq_realloc(x->blocks, cap * sizeof(void *));
        if (!b) return NULL;
        x->blocks = b;
        x->cap = cap;
    }
    void *p = pq_calloc(count ? count : 1, size ? size : 1);
    if (p) x->blocks[x->n++] = p;
    return p;
}

static void pq_ox_free(pq_ox *x) {
    for (size_t i = 0; i < x->n; i++)
        pq_free(x->blocks[i]);
    pq_free(x->blocks);
    x->blocks = NULL;
    x->n = x->cap = 0;
}

/* ---- element types ---- */

static int32_t pq_ox_elem_type(enum pq_dtype dt) {
    switch (dt) {
    case PQ_DTYPE_F32:
        return ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    case PQ_DTYPE_F16:
        return ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16;
    case PQ_DTYPE_BF16:
        return ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16;
    case PQ_DTYPE_F64:
        return ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
    case PQ_DTYPE_I8:
        return ONNX__TENSOR_PROTO__DATA_TYPE__INT8;
    case PQ_DTYPE_U8:
        return ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
    case PQ_DTYPE_I16:
        return ONNX__TENSOR_PROTO__DATA_TYPE__INT16;
    case PQ_DTYPE_U16:
        return ONNX__TENSOR_PROTO__DATA_TYPE__UINT16;
    case PQ_DTYPE_I32:
        return ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
    case PQ_DTYPE_U32:
        return ONNX__TENSOR_PROTO__DATA_TYPE__UINT32;
    case PQ_DTYPE_I64:
        return ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    case PQ_DTYPE_U64:
        return ONNX__TENSOR_PROTO__DATA_TYPE__UINT64;
    case PQ_DTYPE_BOOL:
        return ONNX__TENSOR_PROTO__DATA_TYPE__BOOL;
    default:
        return 0;
    }
}

/* ---- graph preparation (on the clone) ---- */

static const char *pq_ox_node_name(const pq_node *n) {
    return n->name ? n->name : "?";
}

/* Number of elements of the constant of v, or -1 when v is not a constant. */
static int64_t pq_ox_const_numel(const pq_graph *g, uint32_t v) {
    const pq_tensor *t = v == PQ_NONE ? NULL : pq_value_constant(g, v);
    return t ? pq_tensor_numel(t) : -1;
}

/* Builds op(inputs) with a fresh output named from hint; *out the output value. */
static enum pq_status pq_ox_build(pq_graph *g, enum pq_op op, const char *hint, const uint32_t *in,
                                  uint32_t n, uint32_t *out, uint32_t *nid, pq_error *err) {
    return pq_build(g, op, hint, in, n, out, nid, err);
}

static enum pq_status pq_ox_scalar(pq_graph *g, const char *hint, float v, uint32_t *out,
                                   pq_error *err) {
    return pq_build_const_f32(g, hint, 0, NULL, &v, out, err);
}

/* Makes every reader of y read last instead (the graph output name moves to last), then lets the
 * new nodes that were built on placeholder ph read y. */
static enum pq_status pq_ox_splice(pq_graph *g, uint32_t y, uint32_t ph, uint32_t last,
                                   pq_error *err) {
    PQ_TRY(pq_graph_replace_all_uses(g, y, last, err));
    return pq_graph_replace_all_uses(g, ph, y, err);
}

/* Expands the fused activation of node nid into ONNX ops after its output. */
static enum pq_status pq_ox_expand_activation(pq_graph *g, uint32_t nid, pq_error *err) {
    pq_activation act;
    enum pq_status st = pq_node_activation(&g->nodes[nid], &act, err);
    if (st != PQ_OK)
        return pq_error_prefix(err, "node '%s' (%s): ", pq_ox_node_name(&g->nodes[nid]),
                               pq_op_name(g->nodes[nid].op));
    pq_node_remove_attr(g, nid, "activation");
    pq_node_remove_attr(g, nid, "activation_alpha");
    pq_node_remove_attr(g, nid, "activation_beta");
    if (act.kind == PQ_ACT_NONE) return PQ_OK;
    uint32_t y = g->nodes[nid].outputs[0], ph, last, an, c1, c2, t1, t2, t3;
    char hint[200];
    snprintf(hint, sizeof hint, "%s_act", g->values[y].name);
    PQ_TRY(pq_graph_add_temp(g, hint, &ph, err));
    switch (act.kind) {
    case PQ_ACT_RELU:
        PQ_TRY(pq_ox_build(g, PQ_OP_RELU, hint, &ph, 1, &last, NULL, err));
        break;
    case PQ_ACT_CLIP: {
        uint32_t in[3] = {ph, PQ_NONE, PQ_NONE};
        if (act.alpha != -INFINITY) PQ_TRY(pq_ox_scalar(g, hint, act.alpha, &in[1], err));
        if (act.beta != INFINITY) PQ_TRY(pq_ox_scalar(g, hint, act.beta, &in[2], err));
        PQ_TRY(pq_ox_build(g, PQ_OP_CLIP, hint, in, 3, &last, NULL, err));
        break;
    }
    case PQ_ACT_LEAKY_RELU:
        PQ_TRY(pq_ox_build(g, PQ_OP_LEAKY_RELU, hint, &ph, 1, &last, &an, err));
        PQ_TRY(pq_node_set_float(g, an, "alpha", act.alpha, err));
        break;
    case PQ_ACT_SIGMOID:
        PQ_TRY(pq_ox_build(g, PQ_OP_SIGMOID, hint, &ph, 1, &last, NULL, err));
        break;
    case PQ_ACT_HARD_SIGMOID:
        PQ_TRY(pq_ox_build(g, PQ_OP_HARD_SIGMOID, hint, &ph, 1, &last, &an, err));
        PQ_TRY(pq_node_set_float(g, an, "alpha", act.alpha, err));
        PQ_TRY(pq_node_set_float(g, an, "beta", act.beta, err));
        break;
    case PQ_ACT_HARD_SWISH:
        PQ_TRY(pq_ox_build(g, PQ_OP_HARD_SWISH, hint, &ph, 1, &last, NULL, err));
        break;
    case PQ_ACT_TANH:
        PQ_TRY(pq_ox_build(g, PQ_OP_TANH, hint, &ph, 1, &last, NULL, err));
        break;
    case PQ_ACT_GELU: { /* x * (1 + erf(x / sqrt2)) * 0.5 as Div, Erf, Add, Mul, Mul */
        PQ_TRY(pq_ox_scalar(g, hint, 1.41421353816986083984375f, &c1, err));
        uint32_t d_in[2] = {ph, c1};
        PQ_TRY(pq_ox_build(g, PQ_OP_DIV, hint, d_in, 2, &t1, NULL, err));
        PQ_TRY(pq_ox_build(g, PQ_OP_ERF, hint, &t1, 1, &t2, NULL, err));
        PQ_TRY(pq_ox_scalar(g, hint, 1.0f, &c2, err));
        uint32_t a_in[2] = {t2, c2};
        PQ_TRY(pq_ox_build(g, PQ_OP_ADD, hint, a_in, 2, &t3, NULL, err));
        uint32_t m_in[2] = {ph, t3};
        PQ_TRY(pq_ox_build(g, PQ_OP_MUL, hint, m_in, 2, &t1, NULL, err));
        PQ_TRY(pq_ox_scalar(g, hint, 0.5f, &c1, err));
        uint32_t h_in[2] = {t1, c1};
        PQ_TRY(pq_ox_build(g, PQ_OP_MUL, hint, h_in, 2, &last, NULL, err));
        break;
    }
    case PQ_ACT_SWISH: {
        PQ_TRY(pq_ox_build(g, PQ_OP_SIGMOID, hint, &ph, 1, &t1, NULL, err));
        uint32_t m_in[2] = {ph, t1};
        PQ_TRY(pq_ox_build(g, PQ_OP_MUL, hint, m_in, 2, &last, NULL, err));
        break;
    }
    default:
        return pq_error_set(err, PQ_ERR_INTERNAL, "node '%s': activation kind %d",
                            pq_ox_node_name(&g->nodes[nid]), (int)act.kind);
    }
    return pq_ox_splice(g, y, ph, last, err);
}

/* Softmax/LogSoftmax/Hardmax with coerce_2d at opset >= 13: Flatten(x, axis) -> op(axis -1) ->
 * Reshape(., Shape(x)); when axis is the last one of a known rank, only the attribute goes. */
static enum pq_status pq_ox_expand_coerce(pq_graph *g, uint32_t nid, pq_error *err) {
    const pq_node *n = &g->nodes[nid];
    int64_t axis = pq_node_attr_int(n, "axis", 1);
    uint32_t x = n->inputs[0], y = n->outputs[0];
    int rank = g->values[x].shape.rank;
    pq_node_remove_attr(g, nid, "coerce_2d");
    if (rank > 0 && (axis == rank - 1 || axis == -1)) return PQ_OK;
    char hint[200];
    snprintf(hint, sizeof hint, "%s_2d", g->values[y].name);
    uint32_t shp, flat, fn, ph, last;
    PQ_TRY(pq_ox_build(g, PQ_OP_SHAPE, hint, &x, 1, &shp, NULL, err));
    PQ_TRY(pq_ox_build(g, PQ_OP_FLATTEN, hint, &x, 1, &flat, &fn, err));
    PQ_TRY(pq_node_set_int(g, fn, "axis", axis, err));
    PQ_TRY(pq_graph_set_input(g, nid, 0, flat, err));
    PQ_TRY(pq_node_set_int(g, nid, "axis", -1, err));
    PQ_TRY(pq_graph_add_temp(g, hint, &ph, err));
    uint32_t r_in[2] = {ph, shp};
    PQ_TRY(pq_ox_build(g, PQ_OP_RESHAPE, hint, r_in, 2, &last, NULL, err));
    return pq_ox_splice(g, y, ph, last, err);
}

static bool pq_ox_is_softmax(enum pq_op op) {
    return op == PQ_OP_SOFTMAX || op == PQ_OP_LOG_SOFTMAX || op == PQ_OP_HARDMAX;
}

/* Lowest default-domain opset at which node n's canonical form is valid ONNX. */
static int64_t pq_ox_node_min_opset(const pq_graph *g, const pq_node *n) {
    bool in1 = pq_node_input(n, 1) != PQ_NONE;
    if (pq_onnx_is_reduce_axes18(n->op)) return in1 ? 18 : 1;
    switch (n->op) {
    case PQ_OP_REDUCE_SUM:
    case PQ_OP_SQUEEZE:
    case PQ_OP_UNSQUEEZE:
        return in1 ? 13 : 1;
    case PQ_OP_SPLIT:
        return pq_node_attr(n, "num_outputs") ? 18 : (in1 ? 13 : 1);
    case PQ_OP_SLICE:
    case PQ_OP_TOP_K:
    case PQ_OP_MOD:
    case PQ_OP_THRESHOLDED_RELU:
    case PQ_OP_IS_INF:
    case PQ_OP_QLINEAR_CONV:
    case PQ_OP_QLINEAR_MATMUL:
    case PQ_OP_CONV_INTEGER:
    case PQ_OP_MATMUL_INTEGER:
        return 10;
    case PQ_OP_PAD:
        return pq_node_input(n, 3) != PQ_NONE ? 18 : 11;
    case PQ_OP_CLIP:
        return n->n_inputs > 1 ? 11 : 6;
    case PQ_OP_RESIZE:
        return (pq_node_attr(n, "antialias") || pq_node_attr(n, "axes") ||
                pq_node_attr(n, "keep_aspect_ratio_policy"))
                   ? 18
                   : 11;
    case PQ_OP_DROPOUT:
        return n->n_inputs > 1 ? 12 : 1;
    case PQ_OP_SOFTMAX:
    case PQ_OP_LOG_SOFTMAX:
    case PQ_OP_HARDMAX:
        return pq_node_attr_int(n, "coerce_2d", 0) ? 1 : 13;
    case PQ_OP_QUANTIZE_LINEAR:
    case PQ_OP_DEQUANTIZE_LINEAR: {
        int64_t ns = pq_ox_const_numel(g, pq_node_input(n, 1));
        const pq_shape *s = &g->values[n->inputs[1]].shape;
        bool per_tensor =
            ns == 1 || (ns < 0 && s->rank == 0) || (ns < 0 && s->rank == 1 && s->dims[0].size == 1);
        return (pq_node_attr(n, "axis") || !per_tensor) ? 13 : 10;
    }
    case PQ_OP_DYNAMIC_QUANTIZE_LINEAR:
    case PQ_OP_CUM_SUM:
    case PQ_OP_RANGE:
    case PQ_OP_ROUND:
    case PQ_OP_BIT_SHIFT:
    case PQ_OP_DET:
    case PQ_OP_GATHER_ND:
    case PQ_OP_SCATTER_ND:
    case PQ_OP_GATHER_ELEMENTS:
    case PQ_OP_SCATTER_ELEMENTS:
    case PQ_OP_UNIQUE:
        return 11;
    case PQ_OP_EINSUM:
    case PQ_OP_CELU:
    case PQ_OP_NEGATIVE_LOG_LIKELIHOOD_LOSS:
    case PQ_OP_SOFTMAX_CROSS_ENTROPY_LOSS:
        return 12;
    case PQ_OP_HARD_SWISH:
    case PQ_OP_TRILU:
        return 14;
    case PQ_OP_CAST_LIKE:
        return 15;
    case PQ_OP_GRID_SAMPLE:
        return 16;
    case PQ_OP_LAYER_NORMALIZATION:
        return 17;
    default:
        return 1;
    }
}

static enum pq_status pq_ox_qdq_expand_ops(pq_graph *g, bool conv_mm, uint32_t *n_rewritten,
                                           pq_error *err);

/* piqc's ConvAdd(x, w, b, s) (fuse-residual) is written as the Conv(x, w, b) and Add(conv, s) it
 * came from: node nid becomes the Add, keeping the fused activation (expanded after it later). */
static enum pq_status pq_ox_expand_conv_add(pq_graph *g, uint32_t nid, pq_error *err) {
    const pq_node *n = &g->nodes[nid];
    uint32_t in[3] = {n->inputs[0], n->inputs[1], n->inputs[2]}, s = n->inputs[3], t, cid;
    char hint[200];
    snprintf(hint, sizeof hint, "%s_conv", g->values[n->outputs[0]].name);
    PQ_TRY(pq_ox_build(g, PQ_OP_CONV, hint, in, 3, &t, &cid, err));
    const char *moved[32];
    uint32_t n_moved = 0;
    for (uint32_t a = 0; a < g->nodes[nid].n_attrs; a++) {
        const pq_attr at = g->nodes[nid].attrs[a];
        if (strncmp(at.name, "activation", 10) == 0) continue;
        if (n_moved == 32)
            return pq_error_set(err, PQ_ERR_UNSUPPORTED, "node '%s' (ConvAdd): too many attributes",
                                pq_ox_node_name(&g->nodes[nid]));
        if (at.type == PQ_ATTR_INT)
            PQ_TRY(pq_node_set_int(g, cid, at.name, at.u.i, err));
        else if (at.type == PQ_ATTR_INTS)
            PQ_TRY(pq_node_set_ints(g, cid, at.name, at.u.ints.v, at.u.ints.n, err));
        else if (at.type == PQ_ATTR_STRING)
            PQ_TRY(pq_node_set_string(g, cid, at.name, at.u.s, err));
        else
            return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                                "node '%s' (ConvAdd): attribute '%s' of an unexpected type",
                                pq_ox_node_name(&g->nodes[nid]), at.name);
        moved[n_moved++] = at.name;
    }
    for (uint32_t k = 0; k < n_moved; k++)
        pq_node_remove_attr(g, nid, moved[k]);
    pq_node *an = &g->nodes[nid];
    an->op = PQ_OP_ADD;
    an->inputs[0] = t;
    an->inputs[1] = s;
    an->n_inputs = 2;
    return PQ_OK;
}

/* Makes the clone c writable as ONNX; *opset receives the default-domain opset. */
static enum pq_status pq_ox_prepare(pq_graph *c, const pq_onnx_export_opts *o, int64_t *opset,
                                    pq_error *err) {
    if (c->parent) return pq_error_set(err, PQ_ERR_INVALID, "only a top-level graph is written");
    bool conv_add = false;
    for (uint32_t i = 0, n0 = c->n_nodes; i < n0; i++) {
        if (c->nodes[i].op != PQ_OP_CONV_ADD) continue;
        PQ_TRY(pq_ox_expand_conv_add(c, i, err));
        conv_add = true;
    }
    for (uint32_t i = 0; i < c->n_nodes; i++) {
        const pq_node *n = &c->nodes[i];
        const pq_op_info *info = pq_op_get(n->op);
        if (info->flags & PQ_OPF_SUBGRAPH)
            return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                                "node '%s' (%s): subgraphs (If/Loop) are not written",
                                pq_ox_node_name(n), info->name);
        if (info->flags & PQ_OPF_INTERNAL)
            return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                                "node '%s' (%s): piqc's own op has no ONNX form (export the model "
                                "before quantization passes that pack weights)",
                                pq_ox_node_name(n), info->name);
        for (uint32_t a = 0; a < n->n_attrs; a++)
            if (n->attrs[a].type == PQ_ATTR_GRAPH)
                return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                                    "node '%s' (%s): graph attribute '%s' is not written",
                                    pq_ox_node_name(n), info->name, n->attrs[a].name);
    }
    /* QLinearAdd / QLinearMul / QLinearGlobalAveragePool (com.microsoft ops) are written in QDQ
     * form by the plain export too */
    PQ_TRY(pq_ox_qdq_expand_ops(c, o->qdq, NULL, err));
    uint32_t n0 = c->n_nodes;
    bool changed = conv_add;
    for (uint32_t i = 0; i < n0; i++) {
        if (!pq_node_attr(&c->nodes[i], "activation")) continue;
        PQ_TRY(pq_ox_expand_activation(c, i, err));
        changed = true;
    }
    int64_t v = pq_graph_opset(c, "");
    if (v < 7) v = 7;
    if (o->min_opset > v) v = o->min_opset;
    for (uint32_t i = 0; i < c->n_nodes; i++) {
        int64_t need = pq_ox_node_min_opset(c, &c->nodes[i]);
        if (need > v) v = need;
    }
    if (v > PQ_OX_MAX_OPSET) v = PQ_OX_MAX_OPSET;
    if (v >= 13) {
        n0 = c->n_nodes;
        for (uint32_t i = 0; i < n0; i++) {
            if (!pq_ox_is_softmax(c->nodes[i].op) ||
                !pq_node_attr_int(&c->nodes[i], "coerce_2d", 0))
                continue;
            PQ_TRY(pq_ox_expand_coerce(c, i, err));
            changed = true;
        }
    }
    if (changed) PQ_TRY(pq_graph_sort_infer(c, err));
    *opset = v;
    return PQ_OK;
}

/* ---- QDQ expansion ---- */

/* A constant [n] of dtype dt holding zeros, or v's single value repeated n times. */
static enum pq_status pq_ox_repeat_const(pq_graph *g, const char *hint, enum pq_dtype dt,
                                         uint32_t v, int64_t n, uint32_t *out, pq_error *err) {
    pq_tensor *t = pq_tensor_create(dt, 1, &n, err);
    if (!t) return err->status;
    if (v != PQ_NONE) {
        const pq_tensor *s = pq_value_constant(g, v);
        double x = pq_dtype_load(s->dtype, s->data, 0);
        for (int64_t i = 0; i < n; i++)
            pq_dtype_store(dt, t->data, (size_t)i, x);
    }
    return pq_graph_add_constant(g, hint, t, out, err);
}

/* DequantizeLinear of a weight w with scale s and zero point z (may be PQ_NONE); axis >= 0 for
 * per-channel scales (zero point expanded to match). */
static enum pq_status pq_ox_dq_weight(pq_graph *g, const pq_node *qn, uint32_t w, uint32_t s,
                                      uint32_t z, int64_t axis, uint32_t *out, pq_error *err) {
    const char *nm = pq_ox_node_name(qn);
    char hint[200];
    snprintf(hint, sizeof hint, "%s_zp", g->values[w].name);
    int64_t ns = pq_ox_const_numel(g, s);
    enum pq_dtype wdt = g->values[w].dtype;
    if (axis >= 0) {
        int64_t nz = pq_ox_const_numel(g, z);
        if (z == PQ_NONE || nz == 1) {
            if (ns < 0)
                return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                                    "node '%s': per-channel scale '%s' is not a constant", nm,
                                    g->values[s].name);
            PQ_TRY(pq_ox_repeat_const(g, hint, wdt, z, ns, &z, err));
        } else if (nz < 0 && g->values[z].shape.rank == 0) {
            return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                                "node '%s': zero point '%s' must be a constant to go per channel",
                                nm, g->values[z].name);
        }
    }
    snprintf(hint, sizeof hint, "%s_dq", g->values[w].name);
    uint32_t in[3] = {w, s, z}, dn;
    PQ_TRY(pq_build(g, PQ_OP_DEQUANTIZE_LINEAR, hint, in, z == PQ_NONE ? 2 : 3, out, &dn, err));
    if (axis >= 0) PQ_TRY(pq_node_set_int(g, dn, "axis", axis, err));
    return PQ_OK;
}

/* True when the scale value s is per-tensor (one element, by constant or by shape). */
static bool pq_ox_per_tensor(const pq_graph *g, uint32_t s) {
    int64_t ns = pq_ox_const_numel(g, s);
    if (ns >= 0) return ns == 1;
    const pq_shape *sh = &g->values[s].shape;
    return sh->rank == 0 || (sh->rank == 1 && sh->dims[0].size == 1);
}

/* Bias DQ of QLinearConv nid: scale s_x * s_w[m] (f32), axis 0 when per-channel. */
static enum pq_status pq_ox_dq_bias(pq_graph *g, uint32_t nid, uint32_t *out, pq_error *err) {
    const pq_node *n = &g->nodes[nid];
    uint32_t b = n->inputs[8], xs = n->inputs[1], ws = n->inputs[4];
    const pq_tensor *xt = pq_value_constant(g, xs), *wt = pq_value_constant(g, ws);
    if (!xt || !wt || pq_tensor_numel(xt) != 1)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                            "node '%s' (QLinearConv): the bias needs constant x_scale and w_scale "
                            "to get its scale x_scale * w_scale",
                            pq_ox_node_name(n));
    int64_t nw = pq_tensor_numel(wt);
    float sx = (float)pq_dtype_load(xt->dtype, xt->data, 0);
    pq_tensor *st = pq_tensor_create(PQ_DTYPE_F32, wt->rank == 0 ? 0 : 1, &nw, err);
    if (!st) return err->status;
    for (int64_t i = 0; i < nw; i++)
        ((float *)st->data)[i] = sx * (float)pq_dtype_load(wt->dtype, wt->data, (size_t)i);
    char hint[200];
    snprintf(hint, sizeof hint, "%s_scale", g->values[b].name);
    uint32_t sv, dn;
    PQ_TRY(pq_graph_add_constant(g, hint, st, &sv, err));
    snprintf(hint, sizeof hint, "%s_dq", g->values[g->nodes[nid].inputs[8]].name);
    uint32_t in[2] = {g->nodes[nid].inputs[8], sv};
    PQ_TRY(pq_build(g, PQ_OP_DEQUANTIZE_LINEAR, hint, in, 2, out, &dn, err));
    if (nw > 1) PQ_TRY(pq_node_set_int(g, dn, "axis", 0, err));
    return PQ_OK;
}

/* Rewrites QLinearConv / QLinearMatMul node nid (see pq_onnx_qdq_expand). */
static enum pq_status pq_ox_qdq_node(pq_graph *g, uint32_t nid, pq_error *err) {
    const bool conv = g->nodes[nid].op == PQ_OP_QLINEAR_CONV;
    const char *nm = pq_ox_node_name(&g->nodes[nid]);
    uint32_t in[9];
    for (uint32_t i = 0; i < 9; i++)
        in[i] = pq_node_input(&g->nodes[nid], i);
    uint32_t y = g->nodes[nid].outputs[0];
    if (!conv && !pq_ox_per_tensor(g, in[1]))
        return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                            "node '%s' (QLinearMatMul): a per-row a_scale has no QDQ form", nm);
    char hint[200];
    snprintf(hint, sizeof hint, "%s_dq", g->values[in[0]].name);
    uint32_t xin[3] = {in[0], in[1], in[2]}, xdq, wdq, bdq = PQ_NONE, fy, fn, qy;
    PQ_TRY(
        pq_build(g, PQ_OP_DEQUANTIZE_LINEAR, hint, xin, in[2] == PQ_NONE ? 2 : 3, &xdq, NULL, err));
    int64_t axis = -1;
    if (!pq_ox_per_tensor(g, in[4])) {
        int wr = g->values[in[3]].shape.rank;
        if (!conv && wr < 1)
            return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                                "node '%s' (QLinearMatMul): b has an unknown rank", nm);
        axis = conv ? 0 : wr - 1;
    }
    PQ_TRY(pq_ox_dq_weight(g, &g->nodes[nid], in[3], in[4], in[5], axis, &wdq, err));
    if (conv && in[8] != PQ_NONE) PQ_TRY(pq_ox_dq_bias(g, nid, &bdq, err));
    snprintf(hint, sizeof hint, "%s_f32", g->values[y].name);
    uint32_t fin[3] = {xdq, wdq, bdq};
    PQ_TRY(pq_build(g, conv ? PQ_OP_CONV : PQ_OP_MATMUL, hint, fin, bdq == PQ_NONE ? 2 : 3, &fy,
                    &fn, err));
    /* Conv keeps QLinearConv's attributes (its geometry, and a fused activation if any) */
    const pq_node *q = &g->nodes[nid];
    for (uint32_t a = 0; a < q->n_attrs; a++) {
        pq_attr at = g->nodes[nid].attrs[a];
        enum pq_status st = PQ_OK;
        switch (at.type) {
        case PQ_ATTR_INT:
            st = pq_node_set_int(g, fn, at.name, at.u.i, err);
            break;
        case PQ_ATTR_FLOAT:
            st = pq_node_set_float(g, fn, at.name, at.u.f, err);
            break;
        case PQ_ATTR_STRING:
            st = pq_node_set_string(g, fn, at.name, at.u.s, err);
            break;
        case PQ_ATTR_INTS:
            st = pq_node_set_ints(g, fn, at.name, at.u.ints.v, at.u.ints.n, err);
            break;
        case PQ_ATTR_FLOATS:
            st = pq_node_set_floats(g, fn, at.name, at.u.floats.v, at.u.floats.n, err);
            break;
        default:
            st = pq_error_set(err, PQ_ERR_UNSUPPORTED, "node '%s': attribute '%s' not copied",
                              pq_ox_node_name(&g->nodes[nid]), at.name);
        }
        PQ_TRY(st);
        q = &g->nodes[nid];
    }
    snprintf(hint, sizeof hint, "%s_q", g->values[y].name);
    uint32_t qin[3] = {fy, in[6], in[7]};
    PQ_TRY(pq_build(g, PQ_OP_QUANTIZE_LINEAR, hint, qin, in[7] == PQ_NONE ? 2 : 3, &qy, NULL, err));
    return pq_graph_replace_all_uses(g, y, qy, err);
}

/* Rewrites QLinearAdd / QLinearMul node nid into DequantizeLinear(A), DequantizeLinear(B) -> Add /
 * Mul (keeping a fused activation, expanded later into its ONNX op) -> QuantizeLinear(C_scale,
 * C_zero_point). */
static enum pq_status pq_ox_qdq_add(pq_graph *g, uint32_t nid, pq_error *err) {
    uint32_t in[8];
    for (uint32_t i = 0; i < 8; i++)
        in[i] = pq_node_input(&g->nodes[nid], i);
    uint32_t y = g->nodes[nid].outputs[0], adq, bdq, fy, fn, qy;
    char hint[200];
    snprintf(hint, sizeof hint, "%s_dq", g->values[in[0]].name);
    uint32_t ain[3] = {in[0], in[1], in[2]};
    PQ_TRY(
        pq_build(g, PQ_OP_DEQUANTIZE_LINEAR, hint, ain, in[2] == PQ_NONE ? 2 : 3, &adq, NULL, err));
    snprintf(hint, sizeof hint, "%s_dq", g->values[in[3]].name);
    uint32_t bin[3] = {in[3], in[4], in[5]};
    PQ_TRY(
        pq_build(g, PQ_OP_DEQUANTIZE_LINEAR, hint, bin, in[5] == PQ_NONE ? 2 : 3, &bdq, NULL, err));
    snprintf(hint, sizeof hint, "%s_f32", g->values[y].name);
    uint32_t fin[2] = {adq, bdq};
    enum pq_op fop = g->nodes[nid].op == PQ_OP_QLINEAR_MUL ? PQ_OP_MUL : PQ_OP_ADD;
    PQ_TRY(pq_build(g, fop, hint, fin, 2, &fy, &fn, err));
    static const char *const act_attrs[] = {"activation", "activation_alpha", "activation_beta"};
    for (int k = 0; k < 3; k++) {
        const pq_attr *at = pq_node_attr(&g->nodes[nid], act_attrs[k]);
        if (!at) continue;
        pq_attr c = *at;
        if (c.type == PQ_ATTR_STRING)
            PQ_TRY(pq_node_set_string(g, fn, c.name, c.u.s, err));
        else if (c.type == PQ_ATTR_FLOAT)
            PQ_TRY(pq_node_set_float(g, fn, c.name, c.u.f, err));
        else if (c.type == PQ_ATTR_INT)
            PQ_TRY(pq_node_set_float(g, fn, c.name, (float)c.u.i, err));
    }
    uint32_t zc = in[7];
    if (zc == PQ_NONE && g->values[y].dtype == PQ_DTYPE_I8) { /* QuantizeLinear's default is u8 */
        snprintf(hint, sizeof hint, "%s_zero_point", g->values[y].name);
        pq_tensor *t = pq_tensor_create(PQ_DTYPE_I8, 0, NULL, err);
        if (!t) return err->status;
        PQ_TRY(pq_graph_add_constant(g, hint, t, &zc, err));
    }
    snprintf(hint, sizeof hint, "%s_q", g->values[y].name);
    uint32_t qin[3] = {fy, in[6], zc};
    PQ_TRY(pq_build(g, PQ_OP_QUANTIZE_LINEAR, hint, qin, zc == PQ_NONE ? 2 : 3, &qy, NULL, err));
    return pq_graph_replace_all_uses(g, y, qy, err);
}

/* Rewrites QLinearGlobalAveragePool node nid into DequantizeLinear(X) -> GlobalAveragePool ->
 * QuantizeLinear(y_scale, y_zero_point). */
static enum pq_status pq_ox_qdq_gap(pq_graph *g, uint32_t nid, pq_error *err) {
    uint32_t in[5];
    for (uint32_t i = 0; i < 5; i++)
        in[i] = pq_node_input(&g->nodes[nid], i);
    uint32_t y = g->nodes[nid].outputs[0], xdq, fy, qy;
    char hint[200];
    snprintf(hint, sizeof hint, "%s_dq", g->values[in[0]].name);
    uint32_t xin[3] = {in[0], in[1], in[2]};
    PQ_TRY(
        pq_build(g, PQ_OP_DEQUANTIZE_LINEAR, hint, xin, in[2] == PQ_NONE ? 2 : 3, &xdq, NULL, err));
    snprintf(hint, sizeof hint, "%s_f32", g->values[y].name);
    PQ_TRY(pq_build(g, PQ_OP_GLOBAL_AVERAGE_POOL, hint, &xdq, 1, &fy, NULL, err));
    uint32_t zy = in[4];
    if (zy == PQ_NONE && g->values[y].dtype == PQ_DTYPE_I8) {
        snprintf(hint, sizeof hint, "%s_zero_point", g->values[y].name);
        pq_tensor *t = pq_tensor_create(PQ_DTYPE_I8, 0, NULL, err);
        if (!t) return err->status;
        PQ_TRY(pq_graph_add_constant(g, hint, t, &zy, err));
    }
    snprintf(hint, sizeof hint, "%s_q", g->values[y].name);
    uint32_t qin[3] = {fy, in[3], zy};
    PQ_TRY(pq_build(g, PQ_OP_QUANTIZE_LINEAR, hint, qin, zy == PQ_NONE ? 2 : 3, &qy, NULL, err));
    return pq_graph_replace_all_uses(g, y, qy, err);
}

/* QDQ-expands QLinearConv / QLinearMatMul (conv_mm), QLinearAdd / QLinearMul and
 * QLinearGlobalAveragePool nodes;
 * *n_rewritten counts. */
static enum pq_status pq_ox_qdq_expand_ops(pq_graph *g, bool conv_mm, uint32_t *n_rewritten,
                                           pq_error *err) {
    uint32_t count = 0, n0 = g->n_nodes;
    if (n_rewritten) *n_rewritten = 0;
    for (uint32_t i = 0; i < n0; i++) {
        enum pq_op op = g->nodes[i].op;
        if (op == PQ_OP_QLINEAR_ADD || op == PQ_OP_QLINEAR_MUL) {
            PQ_TRY(pq_ox_qdq_add(g, i, err));
            count++;
        }
        if (op == PQ_OP_QLINEAR_GLOBAL_AVERAGE_POOL) {
            PQ_TRY(pq_ox_qdq_gap(g, i, err));
            count++;
        }
        if (!conv_mm || (op != PQ_OP_QLINEAR_CONV && op != PQ_OP_QLINEAR_MATMUL)) continue;
        PQ_TRY(pq_ox_qdq_node(g, i, err));
        count++;
    }
    if (count) {
        PQ_TRY(pq_graph_remove_dead(g, NULL, err));
        PQ_TRY(pq_graph_sort_infer(g, err));
    }
    if (n_rewritten) *n_rewritten = count;
    return PQ_OK;
}

enum pq_status pq_onnx_qdq_expand(pq_graph *g, uint32_t *n_rewritten, pq_error *err) {
    return pq_ox_qdq_expand_ops(g, true, n_rewritten, err);
}

/* ---- message building ---- */

static Onnx__TensorProto *pq_ox_tensor(pq_ox *x, const pq_tensor *t, const char *name) {
    Onnx__TensorProto *tp = pq_ox_alloc(x, 1, sizeof *tp);
    if (!tp) return NULL;
    onnx__tensor_proto__init(tp);
    tp->name = (char *)name;
    tp->has_data_type = 1;
    tp->data_type = pq_ox_elem_type(t->dtype);
    tp->n_dims = (size_t)t->rank;
    tp->dims = pq_ox_alloc(x, (size_t)t->rank, sizeof(int64_t));
    if (!tp->dims) return NULL;
    for (int i = 0; i < t->rank; i++)
        tp->dims[i] = t->dims[i];
    tp->has_raw_data = 1;
    tp->raw_data.len = t->nbytes;
    tp->raw_data.data = t->data;
    return tp;
}

static Onnx__ValueInfoProto *pq_ox_value_info(pq_ox *x, const pq_graph *g, uint32_t vid) {
    const pq_value *v = &g->values[vid];
    Onnx__ValueInfoProto *vi = pq_ox_alloc(x, 1, sizeof *vi);
    Onnx__TypeProto *tp = pq_ox_alloc(x, 1, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = pq_ox_alloc(x, 1, sizeof *tt);
    if (!vi || !tp || !tt) return NULL;
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    vi->name = (char *)v->name;
    vi->type = tp;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    tt->has_elem_type = 1;
    tt->elem_type = pq_ox_elem_type(v->dtype);
    if (v->shape.rank < 0) return vi;
    Onnx__TensorShapeProto *sp = pq_ox_alloc(x, 1, sizeof *sp);
    if (!sp) return NULL;
    onnx__tensor_shape_proto__init(sp);
    tt->shape = sp;
    sp->n_dim = (size_t)v->shape.rank;
    sp->dim = pq_ox_alloc(x, sp->n_dim, sizeof *sp->dim);
    if (!sp->dim) return NULL;
    for (int i = 0; i < v->shape.rank; i++) {
        Onnx__TensorShapeProto__Dimension *d = pq_ox_alloc(x, 1, sizeof *d);
        if (!d) return NULL;
        onnx__tensor_shape_proto__dimension__init(d);
        pq_dim dm = v->shape.dims[i];
        if (pq_dim_known(dm)) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dm.size;
        } else if (dm.sym) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = (char *)pq_graph_symbol_name(g, dm.sym);
        }
        sp->dim[i] = d;
    }
    return vi;
}

/* One attribute; *skip set for attributes ONNX does not have (coerce_2d). */
static enum pq_status pq_ox_attr(pq_ox *x, const pq_node *n, const pq_attr *a,
                                 Onnx__AttributeProto **out, pq_error *err) {
    *out = NULL;
    if (pq_ox_is_softmax(n->op) && strcmp(a->name, "coerce_2d") == 0) return PQ_OK;
    Onnx__AttributeProto *ap = pq_ox_alloc(x, 1, sizeof *ap);
    if (!ap) return pq_error_nomem(err, "onnx export: attributes");
    onnx__attribute_proto__init(ap);
    ap->name = (char *)a->name;
    ap->has_type = 1;
    bool dtype_attr = (n->op == PQ_OP_CAST && strcmp(a->name, "to") == 0) ||
                      (n->op == PQ_OP_EYE_LIKE && strcmp(a->name, "dtype") == 0);
    switch (a->type) {
    case PQ_ATTR_INT:
        ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        ap->has_i = 1;
        ap->i = a->u.i;
        break;
    case PQ_ATTR_FLOAT:
        ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
        ap->has_f = 1;
        ap->f = a->u.f;
        break;
    case PQ_ATTR_STRING:
        if (dtype_attr) {
            enum pq_dtype dt;
            if (!pq_dtype_from_name(a->u.s ? a->u.s : "", &dt) || !pq_ox_elem_type(dt))
                return pq_error_set(err, PQ_ERR_INVALID,
                                    "onnx export: node '%s' (%s): attribute '%s' names no dtype "
                                    "('%s')",
                                    pq_ox_node_name(n), pq_op_name(n->op), a->name,
                                    a->u.s ? a->u.s : "");
            ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
            ap->has_i = 1;
            ap->i = pq_ox_elem_type(dt);
            break;
        }
        ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
        ap->has_s = 1;
        ap->s.data = (uint8_t *)(a->u.s ? a->u.s : "");
        ap->s.len = strlen((const char *)ap->s.data);
        break;
    case PQ_ATTR_INTS:
        ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
        ap->n_ints = a->u.ints.n;
        ap->ints = (int64_t *)a->u.ints.v;
        break;
    case PQ_ATTR_FLOATS:
        ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
        ap->n_floats = a->u.floats.n;
        ap->floats = (float *)a->u.floats.v;
        break;
    case PQ_ATTR_STRINGS:
        ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS;
        ap->n_strings = a->u.strings.n;
        ap->strings = pq_ox_alloc(x, a->u.strings.n, sizeof(ProtobufCBinaryData));
        if (!ap->strings) return pq_error_nomem(err, "onnx export: attributes");
        for (uint32_t i = 0; i < a->u.strings.n; i++) {
            const char *s = a->u.strings.v[i] ? a->u.strings.v[i] : "";
            ap->strings[i].data = (uint8_t *)s;
            ap->strings[i].len = strlen(s);
        }
        break;
    case PQ_ATTR_TENSOR:
        ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
        if (!pq_ox_elem_type(a->u.tensor->dtype))
            return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                                "onnx export: node '%s': tensor attribute '%s' has dtype %s",
                                pq_ox_node_name(n), a->name, pq_dtype_name(a->u.tensor->dtype));
        ap->t = pq_ox_tensor(x, a->u.tensor, NULL);
        if (!ap->t) return pq_error_nomem(err, "onnx export: attributes");
        break;
    default:
        return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                            "onnx export: node '%s' (%s): graph attribute '%s' is not written",
                            pq_ox_node_name(n), pq_op_name(n->op), a->name);
    }
    *out = ap;
    return PQ_OK;
}

static enum pq_status pq_ox_node(pq_ox *x, const pq_graph *g, const pq_node *n,
                                 Onnx__NodeProto **out, pq_error *err) {
    Onnx__NodeProto *np = pq_ox_alloc(x, 1, sizeof *np);
    if (!np) return pq_error_nomem(err, "onnx export: nodes");
    onnx__node_proto__init(np);
    np->name = (char *)(n->name ? n->name : "");
    np->op_type = (char *)pq_op_name(n->op);
    np->domain = (char *)"";
    uint32_t nin = 0, nout = 0;
    for (uint32_t i = 0; i < n->n_inputs; i++)
        if (n->inputs[i] != PQ_NONE) nin = i + 1;
    for (uint32_t i = 0; i < n->n_outputs; i++)
        if (n->outputs[i] != PQ_NONE) nout = i + 1;
    np->input = pq_ox_alloc(x, nin, sizeof(char *));
    np->output = pq_ox_alloc(x, nout, sizeof(char *));
    np->attribute = pq_ox_alloc(x, n->n_attrs, sizeof(Onnx__AttributeProto *));
    if (!np->input || !np->output || !np->attribute)
        return pq_error_nomem(err, "onnx export: nodes");
    np->n_input = nin;
    np->n_output = nout;
    for (uint32_t i = 0; i < nin; i++)
        np->input[i] = (char *)(n->inputs[i] == PQ_NONE ? "" : g->values[n->inputs[i]].name);
    for (uint32_t i = 0; i < nout; i++)
        np->output[i] = (char *)(n->outputs[i] == PQ_NONE ? "" : g->values[n->outputs[i]].name);
    for (uint32_t a = 0; a < n->n_attrs; a++) {
        Onnx__AttributeProto *ap;
        PQ_TRY(pq_ox_attr(x, n, &n->attrs[a], &ap, err));
        if (ap) np->attribute[np->n_attribute++] = ap;
    }
    *out = np;
    return PQ_OK;
}

/* Builds the model message for the prepared clone c. */
static enum pq_status pq_ox_model(pq_ox *x, const pq_graph *c, int64_t opset, const char *producer,
                                  Onnx__ModelProto *m, pq_error *err) {
    onnx__model_proto__init(m);
    m->has_ir_version = 1;
    m->ir_version = PQ_OX_IR_VERSION;
    m->producer_name = (char *)(producer ? producer : "piqc");
    m->producer_version = (char *)PIQC_VERSION;
    Onnx__GraphProto *gp = pq_ox_alloc(x, 1, sizeof *gp);
    m->opset_import = pq_ox_alloc(x, c->n_opsets + 1, sizeof(Onnx__OperatorSetIdProto *));
    if (!gp || !m->opset_import) return pq_error_nomem(err, "onnx export: model");
    onnx__graph_proto__init(gp);
    m->graph = gp;
    Onnx__OperatorSetIdProto *os = pq_ox_alloc(x, 1, sizeof *os);
    if (!os) return pq_error_nomem(err, "onnx export: opsets");
    onnx__operator_set_id_proto__init(os);
    os->domain = (char *)"";
    os->has_version = 1;
    os->version = opset;
    m->opset_import[m->n_opset_import++] = os;
    for (uint32_t i = 0; i < c->n_opsets; i++) {
        const char *d = c->opsets[i].domain;
        if (!d || !*d || strcmp(d, "ai.onnx") == 0) continue;
        os = pq_ox_alloc(x, 1, sizeof *os);
        if (!os) return pq_error_nomem(err, "onnx export: opsets");
        onnx__operator_set_id_proto__init(os);
        os->domain = (char *)d;
        os->has_version = 1;
        os->version = c->opsets[i].version;
        m->opset_import[m->n_opset_import++] = os;
    }
    gp->name = (char *)(c->name && *c->name ? c->name : "piqc");
    /* initializers: constants read by a node or a graph output */
    bool *used = pq_ox_alloc(x, c->n_values, sizeof(bool));
    gp->node = pq_ox_alloc(x, c->n_nodes, sizeof(Onnx__NodeProto *));
    gp->input = pq_ox_alloc(x, c->n_inputs, sizeof(Onnx__ValueInfoProto *));
    gp->output = pq_ox_alloc(x, c->n_outputs, sizeof(Onnx__ValueInfoProto *));
    if (!used || !gp->node || !gp->input || !gp->output)
        return pq_error_nomem(err, "onnx export: graph");
    for (uint32_t i = 0; i < c->n_nodes; i++)
        for (uint32_t k = 0; k < c->nodes[i].n_inputs; k++)
            if (c->nodes[i].inputs[k] != PQ_NONE) used[c->nodes[i].inputs[k]] = true;
    for (uint32_t i = 0; i < c->n_outputs; i++)
        used[c->outputs[i]] = true;
    for (uint32_t i = 0; i < c->n_inputs; i++)
        used[c->inputs[i]] = true;
    size_t n_init = 0;
    for (uint32_t v = 0; v < c->n_values; v++)
        if (used[v] && c->values[v].constant) n_init++;
    gp->initializer = pq_ox_alloc(x, n_init, sizeof(Onnx__TensorProto *));
    if (!gp->initializer) return pq_error_nomem(err, "onnx export: initializers");
    for (uint32_t v = 0; v < c->n_values; v++) {
        const pq_value *val = &c->values[v];
        if (!used[v] || !val->constant) continue;
        if (!pq_ox_elem_type(val->constant->dtype))
            return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                                "onnx export: constant '%s' has dtype %s, which ONNX lacks",
                                val->name, pq_dtype_name(val->constant->dtype));
        Onnx__TensorProto *tp = pq_ox_tensor(x, val->constant, val->name);
        if (!tp) return pq_error_nomem(err, "onnx export: initializers");
        gp->initializer[gp->n_initializer++] = tp;
    }
    for (uint32_t i = 0; i < c->n_inputs; i++) {
        const pq_value *v = &c->values[c->inputs[i]];
        if (!pq_ox_elem_type(v->dtype))
            return pq_error_set(err, PQ_ERR_INVALID,
                                "onnx export: graph input '%s' has no known element type (%s)",
                                v->name, pq_dtype_name(v->dtype));
        if (!(gp->input[gp->n_input++] = pq_ox_value_info(x, c, c->inputs[i])))
            return pq_error_nomem(err, "onnx export: inputs");
    }
    for (uint32_t i = 0; i < c->n_outputs; i++) {
        const pq_value *v = &c->values[c->outputs[i]];
        if (!pq_ox_elem_type(v->dtype))
            return pq_error_set(err, PQ_ERR_INVALID,
                                "onnx export: graph output '%s' has no known element type (%s)",
                                v->name, pq_dtype_name(v->dtype));
        if (!(gp->output[gp->n_output++] = pq_ox_value_info(x, c, c->outputs[i])))
            return pq_error_nomem(err, "onnx export: outputs");
    }
    for (uint32_t i = 0; i < c->n_nodes; i++)
        PQ_TRY(pq_ox_node(x, c, &c->nodes[i], &gp->node[gp->n_node++], err));
    return PQ_OK;
}

enum pq_status pq_onnx_export_buffer(const pq_graph *g, const pq_onnx_export_opts *opts,
                                     uint8_t **out, size_t *len, pq_error *err) {
    static const pq_onnx_export_opts defaults = {0};
    const pq_onnx_export_opts *o = opts ? opts : &defaults;
    *out = NULL;
    *len = 0;
    pq_ox x = {0};
    pq_graph *c = NULL;
    uint8_t *buf = NULL;
    enum pq_status st = pq_graph_clone(g, &c, err);
    if (st != PQ_OK) goto cleanup;
    int64_t opset = 0;
    st = pq_ox_prepare(c, o, &opset, err);
    if (st != PQ_OK) {
        if (strncmp(err->msg, "onnx export: ", 13) != 0) pq_error_prefix(err, "onnx export: ");
        goto cleanup;
    }
    Onnx__ModelProto m;
    st = pq_ox_model(&x, c, opset, o->producer, &m, err);
    if (st != PQ_OK) goto cleanup;
    size_t n = onnx__model_proto__get_packed_size(&m);
    buf = pq_malloc(n ? n : 1);
    if (!buf) {
        st = pq_error_nomem(err, "onnx export: serialised model");
        goto cleanup;
    }
    if (onnx__model_proto__pack(&m, buf) != n) {
        st = pq_error_set(err, PQ_ERR_INTERNAL, "onnx export: protobuf-c packed a different size");
        goto cleanup;
    }
    *out = buf;
    *len = n;
    buf = NULL;
cleanup:
    pq_free(buf);
    pq_ox_free(&x);
    pq_graph_destroy(c);
    return st;
}

enum pq_status pq_onnx_export_file(const pq_graph *g, const pq_onnx_export_opts *opts,
                                   const char *path, pq_error *err) {
    uint8_t *buf = NULL;
    size_t len = 0;
    PQ_TRY(pq_onnx_export_buffer(g, opts, &buf, &len, err));
    pq_atomic_file af;
    enum pq_status st = pq_atomic_open(&af, path, err);
    if (st == PQ_OK) {
        st = pq_atomic_write(&af, buf, len, err);
        if (st == PQ_OK)
            st = pq_atomic_commit(&af, err);
        else
            pq_atomic_abort(&af);
    }
    pq_free(buf);
    return st;
}
