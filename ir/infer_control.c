/* Shape-inference rules of Constant and the control-flow ops If and Loop: branch and body graphs
 * are inferred with the types of the values they capture, and their outputs give the node's
 * outputs (dims that differ between branches or iterations become unknown). */
#include <string.h>

#include "infer_rules.h"

/* ---- Constant ---- */

enum pq_status pq_infer_constant(pq_infer_ctx *c) {
    const pq_node *n = c->node;
    const pq_attr *a;
    if ((a = pq_node_attr(n, "value")) && a->type == PQ_ATTR_TENSOR && a->u.tensor) {
        c->out[0].dtype = a->u.tensor->dtype;
        c->out[0].shape = pq_shape_from_dims(a->u.tensor->rank, a->u.tensor->dims);
        return PQ_OK;
    }
    if ((a = pq_node_attr(n, "value_float")) && a->type == PQ_ATTR_FLOAT) {
        c->out[0].dtype = PQ_DTYPE_F32;
        c->out[0].shape = pq_shape_from_dims(0, NULL);
        return PQ_OK;
    }
    if ((a = pq_node_attr(n, "value_int")) && a->type == PQ_ATTR_INT) {
        c->out[0].dtype = PQ_DTYPE_I64;
        c->out[0].shape = pq_shape_from_dims(0, NULL);
        return PQ_OK;
    }
    if ((a = pq_node_attr(n, "value_floats")) && a->type == PQ_ATTR_FLOATS) {
        int64_t d = a->u.floats.n;
        c->out[0].dtype = PQ_DTYPE_F32;
        c->out[0].shape = pq_shape_from_dims(1, &d);
        return PQ_OK;
    }
    if ((a = pq_node_attr(n, "value_ints")) && a->type == PQ_ATTR_INTS) {
        int64_t d = a->u.ints.n;
        c->out[0].dtype = PQ_DTYPE_I64;
        c->out[0].shape = pq_shape_from_dims(1, &d);
        return PQ_OK;
    }
    return pq_error_set(c->err, PQ_ERR_INVALID,
                        "Constant: needs one of value, value_float(s), value_int(s)");
}

/* ---- subgraph helpers ---- */

static pq_graph *ctl_graph_attr(pq_infer_ctx *c, const char *name) {
    const pq_attr *a = pq_node_attr(c->node, name);
    return a && a->type == PQ_ATTR_GRAPH ? a->u.graph : NULL;
}

/* Gives captured values of sub the types known in the parent, then infers sub. */
static enum pq_status ctl_infer_sub(pq_graph *sub, const char *what, pq_error *err) {
    if (sub->parent) {
        for (uint32_t i = 0; i < sub->n_values; i++) {
            pq_value *v = &sub->values[i];
            if (v->outer == PQ_NONE || v->outer >= sub->parent->n_values) continue;
            const pq_value *ov = &sub->parent->values[v->outer];
            if (v->dtype == PQ_DTYPE_UNDEFINED) v->dtype = ov->dtype;
            if (v->shape.rank < 0) v->shape = ov->shape;
        }
    }
    enum pq_status st = pq_graph_toposort(sub, err);
    if (st == PQ_OK) st = pq_graph_infer_shapes(sub, err);
    if (st != PQ_OK) pq_error_prefix(err, "%s: ", what);
    return st;
}

/* Shape that both a and b satisfy: equal dims kept, others unknown; rank unknown if ranks differ. */
static pq_shape ctl_join(const pq_shape *a, const pq_shape *b) {
    if (a->rank < 0 || b->rank < 0 || a->rank != b->rank) return pq_shape_unknown();
    pq_shape s = *a;
    for (int i = 0; i < a->rank; i++)
        if (!pq_dim_equal(a->dims[i], b->dims[i])) s.dims[i] = pq_dim_unknown();
    return s;
}

/* ---- If ---- */

enum pq_status pq_infer_if(pq_infer_ctx *c) {
    pq_graph *tb = ctl_graph_attr(c, "then_branch"), *eb = ctl_graph_attr(c, "else_branch");
    if (!tb || !eb)
        return pq_error_set(c->err, PQ_ERR_INVALID, "If: needs then_branch and else_branch graphs");
    const pq_type_info *cond = &c->in[0];
    if (cond->dtype != PQ_DTYPE_UNDEFINED && cond->dtype != PQ_DTYPE_BOOL)
        return pq_error_set(c->err, PQ_ERR_INVALID, "If: cond is %s, expected bool",
                            pq_dtype_name(cond->dtype));
    if (cond->value && pq_tensor_numel(cond->value) != 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "If: cond must have one element");
    if (tb->n_outputs != c->n_out || eb->n_outputs != c->n_out)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "If: node has %u outputs, then_branch %u, else_branch %u", c->n_out,
                            tb->n_outputs, eb->n_outputs);
    PQ_TRY(ctl_infer_sub(tb, "If then_branch", c->err));
    PQ_TRY(ctl_infer_sub(eb, "If else_branch", c->err));
    /* a known condition selects one branch */
    int pick = -1;
    if (cond->value && pq_tensor_numel(cond->value) == 1)
        pick = pq_dtype_load(cond->value->dtype, cond->value->data, 0) != 0;
    for (uint32_t i = 0; i < c->n_out; i++) {
        const pq_value *tv = &tb->values[tb->outputs[i]], *ev = &eb->values[eb->outputs[i]];
        if (tv->dtype != PQ_DTYPE_UNDEFINED && ev->dtype != PQ_DTYPE_UNDEFINED &&
            tv->dtype != ev->dtype)
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "If: output %u is %s in then_branch but %s in else_branch", i,
                                pq_dtype_name(tv->dtype), pq_dtype_name(ev->dtype));
        c->out[i].dtype = tv->dtype != PQ_DTYPE_UNDEFINED ? tv->dtype : ev->dtype;
        if (pick == 1) c->out[i].shape = tv->shape;
        else if (pick == 0) c->out[i].shape = ev->shape;
        else c->out[i].shape = ctl_join(&tv->shape, &ev->shape);
    }
    return PQ_OK;
}

/* ---- Loop ---- */

enum pq_status pq_infer_loop(pq_infer_ctx *c) {
    pq_graph *body = ctl_graph_attr(c, "body");
    if (!body) return pq_error_set(c->err, PQ_ERR_INVALID, "Loop: needs a body graph");
    if (c->n_in < 2)
        return pq_error_set(c->err, PQ_ERR_INVALID, "Loop: needs inputs M and cond (may be empty)");
    uint32_t n_carried = c->n_in - 2;
    if (body->n_inputs != n_carried + 2)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "Loop: body has %u inputs, expected %u (iteration, cond, %u carried)",
                            body->n_inputs, n_carried + 2, n_carried);
    if (body->n_outputs < n_carried + 1)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "Loop: body has %u outputs, expected at least %u (cond, %u carried)",
                            body->n_outputs, n_carried + 1, n_carried);
    uint32_t n_scan = body->n_outputs - 1 - n_carried;
    if (c->n_out != n_carried + n_scan)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "Loop: node has %u outputs, expected %u carried + %u scan", c->n_out,
                            n_carried, n_scan);
    if (c->in[0].present && c->in[0].dtype != PQ_DTYPE_UNDEFINED &&
        !pq_dtype_is_integer(c->in[0].dtype))
        return pq_error_set(c->err, PQ_ERR_INVALID, "Loop: M is %s, expected i64",
                            pq_dtype_name(c->in[0].dtype));
    if (c->in[1].present && c->in[1].dtype != PQ_DTYPE_UNDEFINED && c->in[1].dtype != PQ_DTYPE_BOOL)
        return pq_error_set(c->err, PQ_ERR_INVALID, "Loop: cond is %s, expected bool",
                            pq_dtype_name(c->in[1].dtype));
    /* body inputs: iteration number, condition, then carried values (dtype only: shapes may vary
     * between iterations) */
    pq_value *bi = &body->values[body->inputs[0]];
    if (bi->dtype == PQ_DTYPE_UNDEFINED) bi->dtype = PQ_DTYPE_I64;
    if (bi->shape.rank < 0) bi->shape = pq_shape_from_dims(0, NULL);
    pq_value *bc = &body->values[body->inputs[1]];
    if (bc->dtype == PQ_DTYPE_UNDEFINED) bc->dtype = PQ_DTYPE_BOOL;
    for (uint32_t k = 0; k < n_carried; k++) {
        pq_value *v = &body->values[body->inputs[2 + k]];
        if (v->dtype == PQ_DTYPE_UNDEFINED) v->dtype = c->in[2 + k].dtype;
        else if (c->in[2 + k].dtype != PQ_DTYPE_UNDEFINED && c->in[2 + k].dtype != v->dtype)
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "Loop: carried value %u is %s but the body input is %s", k,
                                pq_dtype_name(c->in[2 + k].dtype), pq_dtype_name(v->dtype));
    }
    PQ_TRY(ctl_infer_sub(body, "Loop body", c->err));
    for (uint32_t k = 0; k < n_carried; k++) {
        const pq_value *bo = &body->values[body->outputs[1 + k]];
        c->out[k].dtype = bo->dtype != PQ_DTYPE_UNDEFINED ? bo->dtype : c->in[2 + k].dtype;
        /* zero iterations return the initial value; otherwise the body's output */
        c->out[k].shape = ctl_join(&c->in[2 + k].shape, &bo->shape);
    }
    for (uint32_t s = 0; s < n_scan; s++) {
        const pq_value *bo = &body->values[body->outputs[1 + n_carried + s]];
        pq_type_info *o = &c->out[n_carried + s];
        o->dtype = bo->dtype;
        if (bo->shape.rank >= 0 && bo->shape.rank < PQ_MAX_RANK) {
            pq_shape sh;
            memset(&sh, 0, sizeof sh);
            sh.rank = bo->shape.rank + 1;
            sh.dims[0] = pq_dim_unknown();
            for (int i = 0; i < bo->shape.rank; i++) sh.dims[i + 1] = bo->shape.dims[i];
            o->shape = sh;
        }
    }
    return PQ_OK;
}
