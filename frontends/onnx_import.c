/* ONNX ModelProto -> piqc graph: model checks (IR version, opsets), graphs and subgraphs
 * (initializers, typed inputs/outputs, value_info, nodes with typed attributes, captures of
 * enclosing-scope names), arity checks and the final topological sort. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.h"
#include "onnx_internal.h"

/* Messages built below have no "onnx: " prefix; pq_onnx_import_buffer adds it once. */

static bool pq_is_default_domain(const char *d) {
    return !d || !*d || strcmp(d, "ai.onnx") == 0;
}

/* onnxruntime's com.microsoft ops that piqc runs as its own ops of the same name and inputs
 * (onnxruntime's static quantizer writes them in QOperator models): QLinearAdd, QLinearMul,
 * QLinearGlobalAveragePool (docs/passes.md, "QLinearAdd"). */
static bool pq_is_contrib_op(const char *domain, const char *op_type) {
    return domain && strcmp(domain, "com.microsoft") == 0 &&
           (strcmp(op_type, "QLinearAdd") == 0 || strcmp(op_type, "QLinearMul") == 0 ||
            strcmp(op_type, "QLinearGlobalAveragePool") == 0);
}

static void pq_node_label(const Onnx__NodeProto *np, size_t idx, char *buf, size_t n) {
    if (np->name && *np->name)
        snprintf(buf, n, "'%s'", np->name);
    else
        snprintf(buf, n, "#%zu", idx);
}

static int pq_cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "Abs, Add, ..." : every ONNX op piqc imports, sorted. */
static void pq_supported_list(char *buf, size_t n) {
    const char *names[PQ_OP_COUNT + 1];
    size_t k = 0;
    for (int op = 0; op < PQ_OP_COUNT; op++) {
        const pq_op_info *info = pq_op_get((enum pq_op)op);
        if (info && !(info->flags & PQ_OPF_INTERNAL)) names[k++] = info->name;
    }
    names[k++] = "Upsample";
    qsort(names, k, sizeof names[0], pq_cmp_str);
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < k && used + 1 < n; i++) {
        int w = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", names[i]);
        if (w < 0) break;
        used += (size_t)w;
    }
}

/* Reads a TypeProto into dtype/shape. strict: non-tensor types, unsupported element types and
 * negative dims are errors (graph inputs/outputs); otherwise *usable is set false instead. */
static enum pq_status pq_parse_type(pq_graph *g, const Onnx__TypeProto *tp, const char *kind,
                                    const char *vname, bool strict, enum pq_dtype *dtype,
                                    pq_shape *shape, bool *usable, pq_error *err) {
    *dtype = PQ_DTYPE_UNDEFINED;
    *shape = pq_shape_unknown();
    *usable = true;
    if (!tp) return PQ_OK;
    if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type) {
        *usable = false;
        if (!strict || tp->value_case == ONNX__TYPE_PROTO__VALUE__NOT_SET) return PQ_OK;
        const char *what = tp->value_case == ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE ? "sequence"
                           : tp->value_case == ONNX__TYPE_PROTO__VALUE_MAP_TYPE    ? "map"
                           : tp->value_case == ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE
                               ? "optional"
                               : "sparse tensor";
        return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                            "%s '%s' has %s type; piqc supports only tensors", kind, vname, what);
    }
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type && tt->elem_type != 0) {
        if (!pq_onnx_dtype(tt->elem_type, dtype)) {
            *usable = false;
            if (!strict) return PQ_OK;
            char tb[32];
            return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                                "%s '%s' has element type %s, which piqc does not support", kind,
                                vname, pq_onnx_type_name(tt->elem_type, tb, sizeof tb));
        }
    }
    if (!tt->shape) return PQ_OK;
    if (tt->shape->n_dim > PQ_MAX_RANK) {
        *usable = false;
        if (!strict) return PQ_OK;
        return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                            "%s '%s' has rank %zu, piqc supports at most %d", kind, vname,
                            tt->shape->n_dim, PQ_MAX_RANK);
    }
    pq_shape s = pq_shape_unknown();
    s.rank = (int)tt->shape->n_dim;
    int64_t known[PQ_MAX_RANK];
    for (int i = 0; i < s.rank; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        s.dims[i] = pq_dim_unknown();
        known[i] = 1;
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (d->dim_value < 0) {
                *usable = false;
                if (!strict) return PQ_OK;
                return pq_error_set(err, PQ_ERR_INVALID, "%s '%s': dimension %d is negative (%lld)",
                                    kind, vname, i, (long long)d->dim_value);
            }
            s.dims[i].size = d->dim_value;
            known[i] = d->dim_value;
        } else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                   d->dim_param && *d->dim_param) {
            s.dims[i].sym = pq_graph_intern_symbol(g, d->dim_param);
            if (!s.dims[i].sym) return pq_error_nomem(err, "symbols");
        }
    }
    int64_t numel;
    if (pq_shape_numel(s.rank, known, &numel, err) != PQ_OK) {
        *usable = false;
        if (!strict) return PQ_OK;
        return pq_error_prefix(err, "%s '%s': ", kind, vname);
    }
    *shape = s;
    return PQ_OK;
}

/* Gives a value without a constant its declared type where nothing is known yet. */
static void pq_apply_declared(pq_graph *g, uint32_t vid, enum pq_dtype dt, const pq_shape *s) {
    pq_value *v = &g->values[vid];
    if (v->constant) return;
    if (v->dtype == PQ_DTYPE_UNDEFINED) v->dtype = dt;
    if (v->shape.rank < 0) v->shape = *s;
}

/* Resolves a value name used in graph g: local, else captured from an enclosing graph. */
static enum pq_status pq_resolve(pq_graph *g, const char *name, uint32_t *id, pq_error *err) {
    *id = pq_graph_find_value(g, name);
    if (*id != PQ_NONE) return PQ_OK;
    if (!g->parent) return PQ_ERR_INVALID;
    pq_error tmp;
    enum pq_status st = pq_graph_capture(g, name, id, &tmp);
    if (st == PQ_ERR_NOMEM) return pq_error_nomem(err, "capture");
    return st;
}

static enum pq_status pq_import_graph(const Onnx__GraphProto *gp, pq_graph *g,
                                      const pq_onnx_ctx *ctx, int depth, pq_error *err);

/* Copies one attribute onto node nid after checking its type. */
static enum pq_status pq_import_attr(pq_graph *g, uint32_t nid, const Onnx__NodeProto *np,
                                     const Onnx__AttributeProto *ap, const pq_onnx_ctx *ctx,
                                     int depth, pq_error *err) {
    const char *an = ap->name;
    if (!an || !*an) return pq_error_set(err, PQ_ERR_INVALID, "attribute without a name");
    if (ap->ref_attr_name && *ap->ref_attr_name)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "attribute '%s' refers to a function attribute outside a function", an);
    int type = ap->has_type ? (int)ap->type : 0;
    if (type == 0) { /* IR version 1 files: infer from the field that is set */
        if (ap->has_f)
            type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
        else if (ap->has_i)
            type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        else if (ap->has_s)
            type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
        else if (ap->t)
            type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
        else if (ap->g)
            type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
        else if (ap->n_floats)
            type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
        else if (ap->n_ints)
            type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
        else if (ap->n_strings)
            type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS;
        else
            return pq_error_set(err, PQ_ERR_INVALID, "attribute '%s' has no type and no value", an);
    }
    PQ_TRY(pq_onnx_check_attr_type(np->op_type, an, type, err));
    switch (type) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
        return pq_node_set_float(g, nid, an, ap->f, err);
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
        return pq_node_set_int(g, nid, an, ap->i, err);
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: {
        char *s = pq_graph_alloc(g, ap->s.len + 1);
        if (!s) return pq_error_nomem(err, "attribute");
        if (ap->s.len) memcpy(s, ap->s.data, ap->s.len);
        s[ap->s.len] = '\0';
        return pq_node_set_string(g, nid, an, s, err);
    }
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
        if (ap->n_ints > UINT32_MAX)
            return pq_error_set(err, PQ_ERR_INVALID, "attribute '%s' is too long", an);
        return pq_node_set_ints(g, nid, an, ap->ints, (uint32_t)ap->n_ints, err);
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
        if (ap->n_floats > UINT32_MAX)
            return pq_error_set(err, PQ_ERR_INVALID, "attribute '%s' is too long", an);
        return pq_node_set_floats(g, nid, an, ap->floats, (uint32_t)ap->n_floats, err);
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS: {
        if (ap->n_strings > UINT32_MAX)
            return pq_error_set(err, PQ_ERR_INVALID, "attribute '%s' is too long", an);
        const char **v = pq_graph_alloc(g, sizeof(char *) * (ap->n_strings ? ap->n_strings : 1));
        if (!v) return pq_error_nomem(err, "attribute");
        for (size_t i = 0; i < ap->n_strings; i++) {
            char *s = pq_graph_alloc(g, ap->strings[i].len + 1);
            if (!s) return pq_error_nomem(err, "attribute");
            if (ap->strings[i].len) memcpy(s, ap->strings[i].data, ap->strings[i].len);
            s[ap->strings[i].len] = '\0';
            v[i] = s;
        }
        return pq_node_set_strings(g, nid, an, v, (uint32_t)ap->n_strings, err);
    }
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR: {
        if (!ap->t) return pq_error_set(err, PQ_ERR_INVALID, "attribute '%s' has no tensor", an);
        pq_tensor *t;
        PQ_TRY(pq_onnx_tensor_from_proto(ap->t, an, ctx->base_dir, &t, err));
        return pq_node_set_tensor(g, nid, an, t, err);
    }
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH: {
        if (!ap->g) return pq_error_set(err, PQ_ERR_INVALID, "attribute '%s' has no graph", an);
        if (depth + 1 > PQ_ONNX_MAX_SUBGRAPH_DEPTH)
            return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                                "attribute '%s': subgraphs nested deeper than %d levels", an,
                                PQ_ONNX_MAX_SUBGRAPH_DEPTH);
        pq_graph *sub = pq_graph_create(g, err);
        if (!sub) return err->status;
        enum pq_status st = pq_import_graph(ap->g, sub, ctx, depth + 1, err);
        if (st != PQ_OK) {
            pq_graph_destroy(sub);
            /* keep the innermost problem readable when subgraphs nest deeply */
            if (strlen(err->msg) > PQ_ERROR_MSG_MAX / 2) return st;
            return pq_error_prefix(err, "attribute '%s': ", an);
        }
        return pq_node_set_graph(g, nid, an, sub, err);
    }
    default:
        /* TENSORS, GRAPHS, SPARSE_TENSOR(S), TYPE_PROTO(S): no piqc op reads them */
        return PQ_OK;
    }
}

/* Checks the canonical node's input/output counts against ops.def. */
static enum pq_status pq_check_arity(const pq_graph *g, uint32_t nid, pq_error *err) {
    const pq_node *n = &g->nodes[nid];
    const pq_op_info *info = pq_op_get(n->op);
    if (n->n_inputs < info->min_inputs || n->n_inputs > info->max_inputs) {
        if (info->max_inputs == PQ_VARIADIC)
            return pq_error_set(err, PQ_ERR_INVALID, "has %u inputs, expected at least %u",
                                n->n_inputs, info->min_inputs);
        if (info->min_inputs == info->max_inputs)
            return pq_error_set(err, PQ_ERR_INVALID, "has %u inputs, expected %u", n->n_inputs,
                                info->min_inputs);
        return pq_error_set(err, PQ_ERR_INVALID, "has %u inputs, expected %u to %u", n->n_inputs,
                            info->min_inputs, info->max_inputs);
    }
    if (n->n_outputs < info->min_outputs || n->n_outputs > info->max_outputs) {
        if (info->max_outputs == PQ_VARIADIC)
            return pq_error_set(err, PQ_ERR_INVALID, "has %u outputs, expected at least %u",
                                n->n_outputs, info->min_outputs);
        if (info->min_outputs == info->max_outputs)
            return pq_error_set(err, PQ_ERR_INVALID, "has %u outputs, expected %u", n->n_outputs,
                                info->min_outputs);
        return pq_error_set(err, PQ_ERR_INVALID, "has %u outputs, expected %u to %u", n->n_outputs,
                            info->min_outputs, info->max_outputs);
    }
    for (uint32_t i = 0; i < info->min_inputs; i++) {
        if (n->op == PQ_OP_LOOP && i < 2) continue; /* Loop's M and cond are optional */
        if (n->inputs[i] == PQ_NONE)
            return pq_error_set(err, PQ_ERR_INVALID, "required input %u is omitted", i);
    }
    return PQ_OK;
}

/* Imports node np (index idx) of graph g; its outputs were created by the first pass. */
static enum pq_status pq_import_node(const Onnx__NodeProto *np, size_t idx, pq_graph *g,
                                     const pq_onnx_ctx *ctx, int depth, pq_error *err) {
    const char *op_type = np->op_type ? np->op_type : "";
    enum pq_op op;
    if ((!pq_is_default_domain(np->domain) && !pq_is_contrib_op(np->domain, op_type)) ||
        !pq_onnx_op_lookup(op_type, &op)) {
        const char *dom = np->domain ? np->domain : "";
        int64_t ver = pq_graph_opset(g, pq_is_default_domain(dom) ? "" : dom);
        char list[PQ_ERROR_MSG_MAX];
        pq_supported_list(list, sizeof list);
        return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                            "(%s, domain '%s', opset %lld): unsupported operator; supported: %s",
                            op_type, dom, (long long)ver, list);
    }
    if (ctx->opset == 0)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "(%s): the model imports no opset for the default domain", op_type);
    uint32_t nout = 0, nin = 0;
    for (size_t i = 0; i < np->n_output; i++)
        if (np->output[i] && *np->output[i]) nout = (uint32_t)i + 1;
    for (size_t i = 0; i < np->n_input; i++)
        if (np->input[i] && *np->input[i]) nin = (uint32_t)i + 1;
    if (np->n_input > 65536 || np->n_output > 65536)
        return pq_error_set(err, PQ_ERR_INVALID, "(%s): more than 65536 inputs or outputs",
                            op_type);
    if (np->n_attribute > PQ_ONNX_MAX_NODE_ATTRS)
        return pq_error_set(err, PQ_ERR_INVALID, "(%s): %zu attributes (at most %d accepted)",
                            op_type, np->n_attribute, PQ_ONNX_MAX_NODE_ATTRS);
    /* attribute names must be unique */
    for (size_t a = 0; a < np->n_attribute; a++)
        for (size_t b = 0; b < a; b++)
            if (np->attribute[a]->name && np->attribute[b]->name &&
                strcmp(np->attribute[a]->name, np->attribute[b]->name) == 0)
                return pq_error_set(err, PQ_ERR_INVALID, "(%s): attribute '%s' is given twice",
                                    op_type, np->attribute[a]->name);
    if (op == PQ_OP_CONSTANT) {
        if (nin > 0 || nout != 1 || np->n_output != 1)
            return pq_error_set(err, PQ_ERR_INVALID, "(Constant): needs no inputs and one output");
        pq_tensor *t;
        enum pq_status st = pq_onnx_constant_tensor(np, ctx, &t, err);
        if (st != PQ_OK) return pq_error_prefix(err, "(Constant): ");
        uint32_t vid = pq_graph_find_value(g, np->output[0]);
        return pq_graph_set_constant(g, vid, t, err);
    }
    uint32_t *ids = pq_malloc(sizeof(uint32_t) * ((size_t)nin + nout + 1));
    if (!ids) return pq_error_nomem(err, "node");
    enum pq_status st = PQ_OK;
    for (uint32_t i = 0; i < nin; i++) {
        const char *nm = np->input[i];
        ids[i] = PQ_NONE;
        if (!nm || !*nm) continue;
        st = pq_resolve(g, nm, &ids[i], err);
        if (st == PQ_ERR_INVALID) {
            st = pq_error_set(err, PQ_ERR_INVALID, "(%s): input '%s' is not defined", op_type, nm);
        }
        if (st != PQ_OK) goto done;
    }
    for (uint32_t i = 0; i < nout; i++) {
        const char *nm = np->output[i];
        ids[nin + i] = nm && *nm ? pq_graph_find_value(g, nm) : PQ_NONE;
    }
    uint32_t nid;
    st = pq_graph_add_node(g, op, np->name && *np->name ? np->name : NULL, ids, nin, ids + nin,
                           nout, &nid, err);
    if (st != PQ_OK) {
        pq_error_prefix(err, "(%s): ", op_type);
        goto done;
    }
    for (size_t a = 0; a < np->n_attribute; a++) {
        st = pq_import_attr(g, nid, np, np->attribute[a], ctx, depth, err);
        if (st != PQ_OK) {
            pq_error_prefix(err, "(%s): ", op_type);
            goto done;
        }
    }
    st = pq_onnx_normalize(g, nid, op_type, ctx, err);
    if (st == PQ_OK) st = pq_check_arity(g, nid, err);
    if (st != PQ_OK) pq_error_prefix(err, "(%s): ", op_type);
done:
    pq_free(ids);
    (void)idx;
    return st;
}

static enum pq_status pq_import_graph(const Onnx__GraphProto *gp, pq_graph *g,
                                      const pq_onnx_ctx *ctx, int depth, pq_error *err) {
    const char *kind = g->parent ? "subgraph" : "graph";
    if (gp->name && *gp->name) {
        g->name = pq_graph_strdup(g, gp->name);
        if (!g->name) return pq_error_nomem(err, "graph name");
    }
    if (gp->n_sparse_initializer > 0)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED, "%s has sparse initializers", kind);
    /* initializers become constants */
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *tp = gp->initializer[i];
        if (!tp->name || !*tp->name)
            return pq_error_set(err, PQ_ERR_INVALID, "initializer #%zu has no name", i);
        if (pq_graph_find_value(g, tp->name) != PQ_NONE)
            return pq_error_set(err, PQ_ERR_INVALID, "value '%s' is defined twice", tp->name);
        pq_tensor *t;
        PQ_TRY(pq_onnx_tensor_from_proto(tp, NULL, ctx->base_dir, &t, err));
        uint32_t vid;
        enum pq_status st = pq_graph_add_value(g, tp->name, t->dtype, NULL, &vid, err);
        if (st != PQ_OK) {
            pq_tensor_destroy(t);
            return st;
        }
        PQ_TRY(pq_graph_set_constant(g, vid, t, err));
    }
    /* inputs (an input that is also an initializer stays a constant) */
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        if (!vi->name || !*vi->name)
            return pq_error_set(err, PQ_ERR_INVALID, "%s input #%zu has no name", kind, i);
        uint32_t vid = pq_graph_find_value(g, vi->name);
        if (vid != PQ_NONE) {
            if (g->values[vid].constant && !(g->values[vid].flags & PQ_VALUE_INPUT)) continue;
            return pq_error_set(err, PQ_ERR_INVALID, "value '%s' is defined twice", vi->name);
        }
        enum pq_dtype dt;
        pq_shape s;
        bool usable;
        PQ_TRY(pq_parse_type(g, vi->type, "input", vi->name, true, &dt, &s, &usable, err));
        PQ_TRY(pq_graph_add_value(g, vi->name, dt, &s, &vid, err));
        PQ_TRY(pq_graph_add_input(g, vid, err));
    }
    /* first pass: every node output becomes a value, so nodes may refer to later ones */
    char label[160];
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *np = gp->node[i];
        for (size_t o = 0; o < np->n_output; o++) {
            const char *nm = np->output[o];
            if (!nm || !*nm) continue;
            if (pq_graph_find_value(g, nm) != PQ_NONE) {
                pq_node_label(np, i, label, sizeof label);
                return pq_error_set(err, PQ_ERR_INVALID,
                                    "node %s (%s): value '%s' is defined twice", label,
                                    np->op_type ? np->op_type : "", nm);
            }
            PQ_TRY(pq_graph_add_value(g, nm, PQ_DTYPE_UNDEFINED, NULL, NULL, err));
        }
    }
    /* declared types of intermediates and outputs */
    for (size_t i = 0; i < gp->n_value_info + gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi =
            i < gp->n_value_info ? gp->value_info[i] : gp->output[i - gp->n_value_info];
        if (!vi->name || !*vi->name) continue;
        uint32_t vid = pq_graph_find_value(g, vi->name);
        if (vid == PQ_NONE) continue;
        enum pq_dtype dt;
        pq_shape s;
        bool usable;
        PQ_TRY(pq_parse_type(g, vi->type, "value", vi->name, false, &dt, &s, &usable, err));
        if (usable) pq_apply_declared(g, vid, dt, &s);
    }
    /* second pass: nodes */
    for (size_t i = 0; i < gp->n_node; i++) {
        enum pq_status st = pq_import_node(gp->node[i], i, g, ctx, depth, err);
        if (st != PQ_OK) {
            pq_node_label(gp->node[i], i, label, sizeof label);
            if (g->parent && strlen(err->msg) > PQ_ERROR_MSG_MAX / 2) return st;
            return pq_error_prefix(err, "node %s ", label);
        }
    }
    /* outputs */
    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        if (!vi->name || !*vi->name)
            return pq_error_set(err, PQ_ERR_INVALID, "%s output #%zu has no name", kind, i);
        uint32_t vid;
        enum pq_status st = pq_resolve(g, vi->name, &vid, err);
        if (st == PQ_ERR_INVALID)
            return pq_error_set(err, PQ_ERR_INVALID, "%s output '%s' is not defined", kind,
                                vi->name);
        PQ_TRY(st);
        enum pq_dtype dt;
        pq_shape s;
        bool usable;
        PQ_TRY(pq_parse_type(g, vi->type, "output", vi->name, true, &dt, &s, &usable, err));
        if (usable) pq_apply_declared(g, vid, dt, &s);
        PQ_TRY(pq_graph_add_output(g, vid, err));
    }
    return g->n_nodes ? pq_graph_toposort(g, err) : PQ_OK;
}

static enum pq_status pq_import_model(const Onnx__ModelProto *m, const char *base_dir,
                                      pq_graph **out, pq_error *err) {
    if (!m->has_ir_version)
        return pq_error_set(err, PQ_ERR_INVALID, "onnx: model has no ir_version");
    if (m->ir_version < 3 || m->ir_version > 10)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                            "onnx: IR version %lld is not supported (supported: 3-10)",
                            (long long)m->ir_version);
    if (!m->graph) return pq_error_set(err, PQ_ERR_INVALID, "onnx: model has no graph");
    pq_onnx_ctx ctx = {base_dir, 0};
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        if (pq_is_default_domain(o->domain) && o->version > ctx.opset) ctx.opset = o->version;
    }
    if (ctx.opset != 0 && (ctx.opset < 6 || ctx.opset > 18))
        return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                            "onnx: default-domain opset %lld is not supported (supported: 6-18)",
                            (long long)ctx.opset);
    pq_graph *g = pq_graph_create(NULL, err);
    if (!g) return err->status;
    enum pq_status st = PQ_OK;
    g->ir_version = m->ir_version;
    if (m->producer_name && *m->producer_name) {
        g->producer_name = pq_graph_strdup(g, m->producer_name);
        if (!g->producer_name) {
            st = pq_error_nomem(err, "onnx: producer name");
            goto fail;
        }
    }
    if (ctx.opset) PQ_TRY_GOTO(st, pq_graph_add_opset(g, "", ctx.opset, err), fail);
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        if (pq_is_default_domain(o->domain) || pq_graph_opset(g, o->domain) != 0) continue;
        if (g->n_opsets >= PQ_ONNX_MAX_OPSETS) {
            st = pq_error_set(err, PQ_ERR_INVALID, "onnx: more than %d opset imports",
                              PQ_ONNX_MAX_OPSETS);
            goto fail;
        }
        PQ_TRY_GOTO(st, pq_graph_add_opset(g, o->domain, o->version, err), fail);
    }
    st = pq_import_graph(m->graph, g, &ctx, 0, err);
    if (st != PQ_OK) {
        pq_error_prefix(err, "onnx: ");
        goto fail;
    }
    *out = g;
    return PQ_OK;
fail:
    pq_graph_destroy(g);
    return st;
}

enum pq_status pq_onnx_import_buffer(const void *data, size_t len, const char *base_dir,
                                     pq_graph **out, pq_error *err) {
    pq_error local; /* messages are composed in place, so always work on a real context */
    pq_error_clear(&local);
    *out = NULL;
    enum pq_status st;
    Onnx__ModelProto *m = NULL;
    if (!data && len) {
        st = pq_error_set(&local, PQ_ERR_USAGE, "onnx: no data");
        goto done;
    }
    m = (Onnx__ModelProto *)pq_onnx_unpack(&onnx__model_proto__descriptor, data, len, "model",
                                           &local);
    if (!m) {
        st = local.status;
        goto done;
    }
    st = pq_import_model(m, base_dir, out, &local);
done:
    if (m) protobuf_c_message_free_unpacked(&m->base, &pq_onnx_pb_allocator);
    if (st == PQ_OK) pq_error_clear(&local);
    if (err) *err = local;
    return st;
}

enum pq_status pq_onnx_import_file(const char *path, pq_graph **out, pq_error *err) {
    pq_error local;
    pq_error_clear(&local);
    *out = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    char *dir = NULL;
    enum pq_status st = pq_onnx_read_file(path, &buf, &len, &local);
    if (st == PQ_OK) {
        dir = pq_onnx_dirname(path);
        if (!dir) st = pq_error_nomem(&local, "onnx: path");
    }
    if (st == PQ_OK) {
        st = pq_onnx_import_buffer(buf, len, dir, out, &local);
        if (st != PQ_OK) {
            /* name the file: "onnx: model.onnx: ..." */
            char tail[PQ_ERROR_MSG_MAX];
            snprintf(tail, sizeof tail, "%s",
                     strncmp(local.msg, "onnx: ", 6) == 0 ? local.msg + 6 : local.msg);
            pq_error_set(&local, st, "onnx: %s: %s", path, tail);
        }
    }
    pq_free(dir);
    pq_free(buf);
    if (err) *err = local;
    return st;
}
