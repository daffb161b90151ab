/* Normalisation of ONNX nodes of opsets 6-18 to the one canonical form per op of
 * docs/canonical-ops.md: attributes that became inputs, Upsample -> Resize, legacy broadcasting,
 * Softmax coerce_2d, Cast dtype names, legacy BatchNormalization/Dropout attributes, Constant. */
#include <stdio.h>
#include <string.h>

#include "onnx_internal.h"

enum {
    A_FLOAT = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT,
    A_INT = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT,
    A_STRING = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING,
    A_TENSOR = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR,
    A_GRAPH = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH,
    A_FLOATS = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS,
    A_INTS = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS,
    A_STRINGS = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS,
    A_SPARSE = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR,
};

bool pq_onnx_op_lookup(const char *op_type, enum pq_op *op) {
    if (strcmp(op_type, "Upsample") == 0) {
        *op = PQ_OP_RESIZE;
        return true;
    }
    enum pq_op o;
    if (!pq_op_from_name(op_type, &o)) return false;
    const pq_op_info *info = pq_op_get(o);
    if (!info || (info->flags & PQ_OPF_INTERNAL)) return false;
    *op = o;
    return true;
}

const char *pq_onnx_attr_type_name(int type) {
    switch (type) {
    case 0:
        return "UNDEFINED";
    case A_FLOAT:
        return "FLOAT";
    case A_INT:
        return "INT";
    case A_STRING:
        return "STRING";
    case A_TENSOR:
        return "TENSOR";
    case A_GRAPH:
        return "GRAPH";
    case A_FLOATS:
        return "FLOATS";
    case A_INTS:
        return "INTS";
    case A_STRINGS:
        return "STRINGS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS:
        return "TENSORS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS:
        return "GRAPHS";
    case A_SPARSE:
        return "SPARSE_TENSOR";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS:
        return "SPARSE_TENSORS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTO:
        return "TYPE_PROTO";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTOS:
        return "TYPE_PROTOS";
    default:
        return "unknown type";
    }
}

/* Expected attribute types. op NULL applies to every supported op; an op-specific row wins. */
typedef struct pq_attr_rule {
    const char *op;
    const char *name;
    int type;
} pq_attr_rule;

static const pq_attr_rule pq_attr_rules[] = {
    {"Pad", "value", A_FLOAT},
    {NULL, "value", A_TENSOR},
    {NULL, "sparse_value", A_SPARSE},
    {NULL, "value_float", A_FLOAT},
    {NULL, "value_floats", A_FLOATS},
    {NULL, "value_int", A_INT},
    {NULL, "value_ints", A_INTS},
    {NULL, "value_string", A_STRING},
    {NULL, "value_strings", A_STRINGS},
    /* ints */
    {NULL, "axis", A_INT},
    {NULL, "keepdims", A_INT},
    {NULL, "group", A_INT},
    {NULL, "transA", A_INT},
    {NULL, "transB", A_INT},
    {NULL, "ceil_mode", A_INT},
    {NULL, "count_include_pad", A_INT},
    {NULL, "storage_order", A_INT},
    {NULL, "blocksize", A_INT},
    {NULL, "broadcast", A_INT},
    {NULL, "is_test", A_INT},
    {NULL, "spatial", A_INT},
    {NULL, "training_mode", A_INT},
    {NULL, "select_last_index", A_INT},
    {NULL, "largest", A_INT},
    {NULL, "sorted", A_INT},
    {NULL, "exclusive", A_INT},
    {NULL, "reverse", A_INT},
    {NULL, "upper", A_INT},
    {NULL, "detect_negative", A_INT},
    {NULL, "detect_positive", A_INT},
    {NULL, "fmod", A_INT},
    {NULL, "stash_type", A_INT},
    {NULL, "p", A_INT},
    {NULL, "noop_with_empty_axes", A_INT},
    {NULL, "num_outputs", A_INT},
    {NULL, "allowzero", A_INT},
    {NULL, "linear_before_reset", A_INT},
    {NULL, "layout", A_INT},
    {NULL, "input_forget", A_INT},
    {NULL, "hidden_size", A_INT},
    {NULL, "exclude_outside", A_INT},
    {NULL, "to", A_INT},
    {NULL, "k", A_INT},
    {NULL, "start", A_INT},
    {NULL, "end", A_INT},
    {NULL, "seed", A_INT},
    {NULL, "saturate", A_INT},
    /* int lists */
    {NULL, "axes", A_INTS},
    {NULL, "strides", A_INTS},
    {NULL, "pads", A_INTS},
    {NULL, "dilations", A_INTS},
    {NULL, "kernel_shape", A_INTS},
    {NULL, "output_padding", A_INTS},
    {NULL, "output_shape", A_INTS},
    {NULL, "perm", A_INTS},
    {NULL, "starts", A_INTS},
    {NULL, "ends", A_INTS},
    {NULL, "split", A_INTS},
    {NULL, "consumed_inputs", A_INTS},
    /* floats */
    {NULL, "alpha", A_FLOAT},
    {NULL, "beta", A_FLOAT},
    {NULL, "gamma", A_FLOAT},
    {NULL, "epsilon", A_FLOAT},
    {NULL, "momentum", A_FLOAT},
    {NULL, "ratio", A_FLOAT},
    {NULL, "min", A_FLOAT},
    {NULL, "max", A_FLOAT},
    {NULL, "clip", A_FLOAT},
    {NULL, "cubic_coeff_a", A_FLOAT},
    {NULL, "extrapolation_value", A_FLOAT},
    {NULL, "height_scale", A_FLOAT},
    {NULL, "width_scale", A_FLOAT},
    {NULL, "scales", A_FLOATS},
    {NULL, "activation_alpha", A_FLOATS},
    {NULL, "activation_beta", A_FLOATS},
    /* strings */
    {NULL, "auto_pad", A_STRING},
    {NULL, "mode", A_STRING},
    {NULL, "direction", A_STRING},
    {NULL, "coordinate_transformation_mode", A_STRING},
    {NULL, "nearest_mode", A_STRING},
    {NULL, "keep_aspect_ratio_policy", A_STRING},
    {NULL, "activations", A_STRINGS},
    /* subgraphs */
    {NULL, "body", A_GRAPH},
    {NULL, "then_branch", A_GRAPH},
    {NULL, "else_branch", A_GRAPH},
};

enum pq_status pq_onnx_check_attr_type(const char *op_type, const char *name, int type,
                                       pq_error *err) {
    const pq_attr_rule *hit = NULL;
    for (size_t i = 0; i < sizeof pq_attr_rules / sizeof pq_attr_rules[0]; i++) {
        const pq_attr_rule *r = &pq_attr_rules[i];
        if (strcmp(r->name, name) != 0) continue;
        if (r->op && strcmp(r->op, op_type) != 0) continue;
        hit = r;
        break;
    }
    if (!hit || hit->type == type) return PQ_OK;
    return pq_error_set(err, PQ_ERR_INVALID, "attribute '%s' has type %s, expected %s", name,
                        pq_onnx_attr_type_name(type), pq_onnx_attr_type_name(hit->type));
}

/* ---- Constant ---- */

static pq_tensor *pq_make_tensor(enum pq_dtype dt, int rank, int64_t n, pq_error *err) {
    int64_t dims[1] = {n};
    return pq_tensor_create(dt, rank, dims, err);
}

enum pq_status pq_onnx_constant_tensor(const Onnx__NodeProto *np, const pq_onnx_ctx *ctx,
                                       pq_tensor **out, pq_error *err) {
    static const char *const names[] = {"value",        "value_float",  "value_floats",
                                        "value_int",    "value_ints",   "sparse_value",
                                        "value_string", "value_strings"};
    const Onnx__AttributeProto *found = NULL;
    *out = NULL;
    for (size_t a = 0; a < np->n_attribute; a++) {
        const Onnx__AttributeProto *ap = np->attribute[a];
        if (!ap->name) continue;
        bool known = false;
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
            if (strcmp(ap->name, names[k]) == 0) known = true;
        if (!known) continue;
        if (found)
            return pq_error_set(err, PQ_ERR_INVALID, "attributes '%s' and '%s' both give the value",
                                found->name, ap->name);
        found = ap;
    }
    if (!found) return pq_error_set(err, PQ_ERR_INVALID, "no value attribute");
    const char *an = found->name;
    if (strcmp(an, "sparse_value") == 0 || strncmp(an, "value_string", 12) == 0)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED, "attribute '%s' is not supported", an);
    int type = found->has_type ? (int)found->type : 0;
    if (type == 0)
        type = found->t          ? A_TENSOR
               : found->has_f    ? A_FLOAT
               : found->has_i    ? A_INT
               : found->n_floats ? A_FLOATS
                                 : A_INTS;
    PQ_TRY(pq_onnx_check_attr_type("Constant", an, type, err));
    pq_tensor *t = NULL;
    if (type == A_TENSOR) {
        if (!found->t) return pq_error_set(err, PQ_ERR_INVALID, "attribute 'value' has no tensor");
        PQ_TRY(pq_onnx_tensor_from_proto(found->t, "value", ctx->base_dir, &t, err));
    } else if (type == A_FLOAT) {
        if (!(t = pq_make_tensor(PQ_DTYPE_F32, 0, 0, err))) return err->status;
        ((float *)t->data)[0] = found->f;
    } else if (type == A_INT) {
        if (!(t = pq_make_tensor(PQ_DTYPE_I64, 0, 0, err))) return err->status;
        ((int64_t *)t->data)[0] = found->i;
    } else if (type == A_FLOATS) {
        if (!(t = pq_make_tensor(PQ_DTYPE_F32, 1, (int64_t)found->n_floats, err)))
            return err->status;
        if (found->n_floats) memcpy(t->data, found->floats, sizeof(float) * found->n_floats);
    } else {
        if (!(t = pq_make_tensor(PQ_DTYPE_I64, 1, (int64_t)found->n_ints, err))) return err->status;
        if (found->n_ints) memcpy(t->data, found->ints, sizeof(int64_t) * found->n_ints);
    }
    *out = t;
    return PQ_OK;
}

/* ---- helpers for rewriting a node ---- */

/* Adds a constant value named "<node>/<suffix>" (or a fresh name) holding t (ownership moves). */
static enum pq_status pq_add_const(pq_graph *g, uint32_t nid, const char *suffix, pq_tensor *t,
                                   uint32_t *vid, pq_error *err) {
    char name[256];
    snprintf(name, sizeof name, "%s/%s", g->nodes[nid].name, suffix);
    const char *use = pq_graph_find_value(g, name) == PQ_NONE ? name : NULL;
    enum pq_status st = pq_graph_add_value(g, use, t->dtype, NULL, vid, err);
    if (st != PQ_OK) {
        pq_tensor_destroy(t);
        return st;
    }
    return pq_graph_set_constant(g, *vid, t, err);
}

/* Makes node nid have at least n input slots (new ones omitted). */
static enum pq_status pq_grow_inputs(pq_graph *g, uint32_t nid, uint32_t n, pq_error *err) {
    pq_node *nd = &g->nodes[nid];
    if (nd->n_inputs >= n) return PQ_OK;
    uint32_t *in = pq_graph_alloc(g, sizeof(uint32_t) * n);
    if (!in) return pq_error_nomem(err, "node inputs");
    for (uint32_t i = 0; i < n; i++)
        in[i] = i < nd->n_inputs ? nd->inputs[i] : PQ_NONE;
    nd->inputs = in;
    nd->n_inputs = n;
    return PQ_OK;
}

/* Places value vid as input idx of node nid; INVALID when that input is already given. */
static enum pq_status pq_put_input(pq_graph *g, uint32_t nid, uint32_t idx, uint32_t vid,
                                   const char *attr, pq_error *err) {
    PQ_TRY(pq_grow_inputs(g, nid, idx + 1, err));
    pq_node *nd = &g->nodes[nid];
    if (nd->inputs[idx] != PQ_NONE)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "attribute '%s' and input %u are both given (opset %lld has only the "
                            "attribute)",
                            attr, idx, (long long)pq_graph_opset(g, ""));
    nd->inputs[idx] = vid;
    return PQ_OK;
}

/* Attribute attr (INTS, or INT -> one element) becomes an i64 1-D constant input idx. */
static enum pq_status pq_ints_to_input(pq_graph *g, uint32_t nid, const char *attr, uint32_t idx,
                                       pq_error *err) {
    const pq_attr *a = pq_node_attr(&g->nodes[nid], attr);
    if (!a) return PQ_OK;
    const int64_t *v = a->type == PQ_ATTR_INTS ? a->u.ints.v : &a->u.i;
    uint32_t n = a->type == PQ_ATTR_INTS ? a->u.ints.n : 1;
    if (a->type != PQ_ATTR_INTS && a->type != PQ_ATTR_INT)
        return pq_error_set(err, PQ_ERR_INVALID, "attribute '%s' must hold integers", attr);
    pq_tensor *t = pq_make_tensor(PQ_DTYPE_I64, 1, n, err);
    if (!t) return err->status;
    if (n) memcpy(t->data, v, sizeof(int64_t) * n);
    uint32_t vid;
    PQ_TRY(pq_add_const(g, nid, attr, t, &vid, err));
    PQ_TRY(pq_put_input(g, nid, idx, vid, attr, err));
    pq_node_remove_attr(g, nid, attr);
    return PQ_OK;
}

/* Element type of node nid's input 0 when known, else f32. */
static enum pq_dtype pq_input0_dtype(const pq_graph *g, uint32_t nid) {
    uint32_t v = pq_node_input(&g->nodes[nid], 0);
    if (v == PQ_NONE || g->values[v].dtype == PQ_DTYPE_UNDEFINED) return PQ_DTYPE_F32;
    return g->values[v].dtype;
}

/* FLOAT attribute attr becomes a scalar constant input idx of type dt. */
static enum pq_status pq_float_to_input(pq_graph *g, uint32_t nid, const char *attr, uint32_t idx,
                                        enum pq_dtype dt, pq_error *err) {
    const pq_attr *a = pq_node_attr(&g->nodes[nid], attr);
    if (!a) return PQ_OK;
    if (a->type != PQ_ATTR_FLOAT)
        return pq_error_set(err, PQ_ERR_INVALID, "attribute '%s' must be a FLOAT", attr);
    pq_tensor *t = pq_make_tensor(dt, 0, 0, err);
    if (!t) return err->status;
    pq_dtype_store(dt, t->data, 0, a->u.f);
    uint32_t vid;
    PQ_TRY(pq_add_const(g, nid, attr, t, &vid, err));
    PQ_TRY(pq_put_input(g, nid, idx, vid, attr, err));
    pq_node_remove_attr(g, nid, attr);
    return PQ_OK;
}

/* Moves input from -> to (to must be free), leaving from omitted. */
static enum pq_status pq_move_input(pq_graph *g, uint32_t nid, uint32_t from, uint32_t to,
                                    pq_error *err) {
    uint32_t v = pq_node_input(&g->nodes[nid], from);
    if (v == PQ_NONE) return PQ_OK;
    PQ_TRY(pq_grow_inputs(g, nid, to + 1, err));
    pq_node *nd = &g->nodes[nid];
    if (nd->inputs[to] != PQ_NONE)
        return pq_error_set(err, PQ_ERR_INVALID, "has more inputs than its opset allows");
    nd->inputs[to] = v;
    nd->inputs[from] = PQ_NONE;
    return PQ_OK;
}

/* ---- per-op rewrites ---- */

/* Upsample (opset 7-9, also the experimental opset-1 form) and Resize-10 -> Resize. */
static enum pq_status pq_norm_upsample(pq_graph *g, uint32_t nid, bool is_upsample, pq_error *err) {
    const pq_node *nd = &g->nodes[nid];
    const pq_attr *sc = pq_node_attr(nd, "scales");
    const pq_attr *hs = pq_node_attr(nd, "height_scale");
    const pq_attr *ws = pq_node_attr(nd, "width_scale");
    if (nd->n_inputs > 2)
        return pq_error_set(err, PQ_ERR_INVALID, "has %u inputs, expected 1 or 2", nd->n_inputs);
    if (is_upsample && (sc || hs || ws)) {
        if (nd->n_inputs > 1)
            return pq_error_set(err, PQ_ERR_INVALID, "has both a scales attribute and input");
        float v[PQ_MAX_RANK];
        uint32_t n;
        if (sc) {
            if (sc->u.floats.n > PQ_MAX_RANK)
                return pq_error_set(err, PQ_ERR_INVALID, "attribute 'scales' has %u values",
                                    sc->u.floats.n);
            n = sc->u.floats.n;
            memcpy(v, sc->u.floats.v, sizeof(float) * n);
        } else {
            n = 4;
            v[0] = v[1] = 1.0f;
            v[2] = hs && hs->type == PQ_ATTR_FLOAT ? hs->u.f : 1.0f;
            v[3] = ws && ws->type == PQ_ATTR_FLOAT ? ws->u.f : 1.0f;
        }
        pq_tensor *t = pq_make_tensor(PQ_DTYPE_F32, 1, n, err);
        if (!t) return err->status;
        memcpy(t->data, v, sizeof(float) * n);
        uint32_t vid;
        PQ_TRY(pq_add_const(g, nid, "scales", t, &vid, err));
        PQ_TRY(pq_put_input(g, nid, 2, vid, "scales", err));
        pq_node_remove_attr(g, nid, "scales");
        pq_node_remove_attr(g, nid, "height_scale");
        pq_node_remove_attr(g, nid, "width_scale");
    } else {
        PQ_TRY(pq_move_input(g, nid, 1, 2, err));
    }
    const char *mode = pq_node_attr_string(&g->nodes[nid], "mode", "nearest");
    if (strcmp(mode, "bilinear") == 0) PQ_TRY(pq_node_set_string(g, nid, "mode", "linear", err));
    PQ_TRY(pq_node_set_string(g, nid, "coordinate_transformation_mode", "asymmetric", err));
    if (strcmp(mode, "nearest") == 0)
        PQ_TRY(pq_node_set_string(g, nid, "nearest_mode", "floor", err));
    return PQ_OK;
}

/* Makes input 1 (B) of node nid broadcast numpy-style as if its dims were aligned at axis of
 * input 0 (A): appends trailing ones, reshaping a constant or inserting an Unsqueeze. */
static enum pq_status pq_align_b(pq_graph *g, uint32_t nid, int64_t axis, pq_error *err) {
    const pq_node *nd = &g->nodes[nid];
    uint32_t a = pq_node_input(nd, 0), b = pq_node_input(nd, 1);
    if (a == PQ_NONE || b == PQ_NONE) return PQ_OK;
    int ra = g->values[a].shape.rank, rb = g->values[b].shape.rank;
    if (ra < 0 || rb < 0)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                            "legacy broadcast with axis=%lld needs the ranks of both inputs "
                            "(declare them with value_info)",
                            (long long)axis);
    const int64_t orig_axis = axis;
    if (axis < 0) axis += ra;
    if (axis < 0 || axis + rb > ra)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "legacy broadcast axis %lld does not fit input ranks %d and %d",
                            (long long)orig_axis, ra, rb);
    int trailing = (int)(ra - axis - rb);
    if (trailing == 0) return PQ_OK;
    const pq_tensor *bc_t = g->values[b].constant;
    uint32_t nb;
    if (bc_t) {
        pq_tensor *t = pq_tensor_clone(bc_t, err);
        if (!t) return err->status;
        for (int i = 0; i < trailing; i++)
            t->dims[t->rank++] = 1;
        PQ_TRY(pq_add_const(g, nid, "broadcast_b", t, &nb, err));
    } else {
        pq_tensor *axes = pq_make_tensor(PQ_DTYPE_I64, 1, trailing, err);
        if (!axes) return err->status;
        for (int i = 0; i < trailing; i++)
            ((int64_t *)axes->data)[i] = rb + i;
        uint32_t av;
        PQ_TRY(pq_add_const(g, nid, "broadcast_axes", axes, &av, err));
        pq_shape s = g->values[b].shape;
        for (int i = 0; i < trailing; i++)
            s.dims[s.rank++] = pq_dim_of(1);
        PQ_TRY(pq_graph_add_value(g, NULL, g->values[b].dtype, &s, &nb, err));
        uint32_t ins[2] = {b, av};
        char name[256];
        snprintf(name, sizeof name, "%s/broadcast", g->nodes[nid].name);
        PQ_TRY(pq_graph_add_node(g, PQ_OP_UNSQUEEZE, name, ins, 2, &nb, 1, NULL, err));
    }
    g->nodes[nid].inputs[1] = nb;
    return PQ_OK;
}

/* Opset < 7 broadcasting: broadcast=1 with axis aligns B at axis of A. */
static enum pq_status pq_norm_legacy_broadcast(pq_graph *g, uint32_t nid, pq_error *err) {
    const pq_node *nd = &g->nodes[nid];
    int64_t bc = pq_node_attr_int(nd, "broadcast", 0);
    const pq_attr *ax = pq_node_attr(nd, "axis");
    bool has_axis = ax != NULL;
    int64_t axis = ax ? ax->u.i : 0;
    pq_node_remove_attr(g, nid, "broadcast");
    pq_node_remove_attr(g, nid, "axis");
    if (!bc || !has_axis) return PQ_OK; /* suffix alignment is numpy's rule */
    return pq_align_b(g, nid, axis, err);
}

/* PRelu before opset 7: a 1-D slope of C > 1 values applies per channel (axis 1). */
static enum pq_status pq_norm_prelu6(pq_graph *g, uint32_t nid, pq_error *err) {
    const pq_node *nd = &g->nodes[nid];
    uint32_t x = pq_node_input(nd, 0), sl = pq_node_input(nd, 1);
    if (x == PQ_NONE || sl == PQ_NONE) return PQ_OK;
    const pq_value *sv = &g->values[sl];
    if (sv->shape.rank != 1 || sv->shape.dims[0].size == 1 || g->values[x].shape.rank < 3)
        return PQ_OK;
    return pq_align_b(g, nid, 1, err);
}

bool pq_onnx_is_reduce_axes18(enum pq_op op) {
    switch (op) {
    case PQ_OP_REDUCE_MEAN:
    case PQ_OP_REDUCE_MAX:
    case PQ_OP_REDUCE_MIN:
    case PQ_OP_REDUCE_PROD:
    case PQ_OP_REDUCE_L1:
    case PQ_OP_REDUCE_L2:
    case PQ_OP_REDUCE_SUM_SQUARE:
    case PQ_OP_REDUCE_LOG_SUM:
    case PQ_OP_REDUCE_LOG_SUM_EXP:
        return true;
    default:
        return false;
    }
}

enum pq_status pq_onnx_normalize(pq_graph *g, uint32_t nid, const char *op_type,
                                 const pq_onnx_ctx *ctx, pq_error *err) {
    const int64_t v = ctx->opset;
    const enum pq_op op = g->nodes[nid].op;
    if (pq_onnx_is_reduce_axes18(op)) {
        if (v < 18) PQ_TRY(pq_ints_to_input(g, nid, "axes", 1, err));
        return PQ_OK;
    }
    if (op == PQ_OP_PRELU && v < 7) return pq_norm_prelu6(g, nid, err);
    if ((pq_op_get(op)->flags & PQ_OPF_BINARY) && v < 7)
        return pq_norm_legacy_broadcast(g, nid, err);
    switch (op) {
    case PQ_OP_REDUCE_SUM:
        if (v < 13) PQ_TRY(pq_ints_to_input(g, nid, "axes", 1, err));
        break;
    case PQ_OP_SPLIT:
        if (v < 13) PQ_TRY(pq_ints_to_input(g, nid, "split", 1, err));
        break;
    case PQ_OP_SQUEEZE:
    case PQ_OP_UNSQUEEZE:
        if (v < 13) PQ_TRY(pq_ints_to_input(g, nid, "axes", 1, err));
        break;
    case PQ_OP_SLICE:
        if (v < 10) {
            if (g->nodes[nid].n_inputs > 1)
                return pq_error_set(err, PQ_ERR_INVALID, "has %u inputs, opset %lld allows 1",
                                    g->nodes[nid].n_inputs, (long long)v);
            PQ_TRY(pq_ints_to_input(g, nid, "starts", 1, err));
            PQ_TRY(pq_ints_to_input(g, nid, "ends", 2, err));
            PQ_TRY(pq_ints_to_input(g, nid, "axes", 3, err));
        }
        break;
    case PQ_OP_PAD:
        if (v < 11) {
            PQ_TRY(pq_ints_to_input(g, nid, "pads", 1, err));
            PQ_TRY(pq_float_to_input(g, nid, "value", 2, pq_input0_dtype(g, nid), err));
        }
        break;
    case PQ_OP_CLIP:
        if (v < 11) {
            enum pq_dtype dt = pq_input0_dtype(g, nid);
            PQ_TRY(pq_float_to_input(g, nid, "min", 1, dt, err));
            PQ_TRY(pq_float_to_input(g, nid, "max", 2, dt, err));
        }
        break;
    case PQ_OP_TOP_K:
        if (v < 10) PQ_TRY(pq_ints_to_input(g, nid, "k", 1, err));
        break;
    case PQ_OP_RESIZE:
        if (strcmp(op_type, "Upsample") == 0) return pq_norm_upsample(g, nid, true, err);
        if (v < 11) return pq_norm_upsample(g, nid, false, err);
        break;
    case PQ_OP_DROPOUT:
        pq_node_remove_attr(g, nid, "is_test");
        pq_node_remove_attr(g, nid, "consumed_inputs");
        if (v < 12) PQ_TRY(pq_float_to_input(g, nid, "ratio", 1, PQ_DTYPE_F32, err));
        break;
    case PQ_OP_SOFTMAX:
    case PQ_OP_LOG_SOFTMAX:
    case PQ_OP_HARDMAX: {
        int64_t axis = pq_node_attr_int(&g->nodes[nid], "axis", v < 13 ? 1 : -1);
        PQ_TRY(pq_node_set_int(g, nid, "axis", axis, err));
        if (v < 13) PQ_TRY(pq_node_set_int(g, nid, "coerce_2d", 1, err));
        break;
    }
    case PQ_OP_CAST: {
        const pq_attr *a = pq_node_attr(&g->nodes[nid], "to");
        if (!a) return pq_error_set(err, PQ_ERR_INVALID, "attribute 'to' is missing");
        if (a->type == PQ_ATTR_STRING) break; /* already canonical */
        enum pq_dtype dt;
        if (a->u.i < INT32_MIN || a->u.i > INT32_MAX || !pq_onnx_dtype((int32_t)a->u.i, &dt)) {
            char tb[32];
            return pq_error_set(
                err, PQ_ERR_UNSUPPORTED, "cast to %s is not supported",
                pq_onnx_type_name(a->u.i < INT32_MIN || a->u.i > INT32_MAX ? -1 : (int32_t)a->u.i,
                                  tb, sizeof tb));
        }
        PQ_TRY(pq_node_set_string(g, nid, "to", pq_dtype_name(dt), err));
        break;
    }
    case PQ_OP_EYE_LIKE: { /* optional 'dtype' becomes a dtype name, as Cast's 'to' */
        const pq_attr *a = pq_node_attr(&g->nodes[nid], "dtype");
        if (!a || a->type == PQ_ATTR_STRING) break;
        enum pq_dtype dt;
        if (a->type != PQ_ATTR_INT || a->u.i < INT32_MIN || a->u.i > INT32_MAX ||
            !pq_onnx_dtype((int32_t)a->u.i, &dt))
            return pq_error_set(err, PQ_ERR_UNSUPPORTED, "EyeLike dtype %lld is not supported",
                                a->type == PQ_ATTR_INT ? (long long)a->u.i : -1LL);
        PQ_TRY(pq_node_set_string(g, nid, "dtype", pq_dtype_name(dt), err));
        break;
    }
    case PQ_OP_BATCH_NORMALIZATION: {
        const pq_node *nd = &g->nodes[nid];
        if (pq_node_attr_int(nd, "spatial", 1) == 0)
            return pq_error_set(err, PQ_ERR_UNSUPPORTED, "spatial=0 is not supported");
        if (pq_node_attr_int(nd, "training_mode", 0) != 0)
            return pq_error_set(err, PQ_ERR_UNSUPPORTED, "training_mode=1 is not supported");
        if (nd->n_outputs > 3)
            return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                                "%u outputs: training statistics outputs are not supported",
                                nd->n_outputs);
        pq_node_remove_attr(g, nid, "spatial");
        pq_node_remove_attr(g, nid, "is_test");
        pq_node_remove_attr(g, nid, "consumed_inputs");
        pq_node_remove_attr(g, nid, "momentum");
        break;
    }
    case PQ_OP_GEMM:
        if (v < 7) pq_node_remove_attr(g, nid, "broadcast");
        break;
    default:
        break;
    }
    return PQ_OK;
}
