/* Shape-inference rules of the shape and constant ops (Shape, Size, ConstantOfShape, Constant,
 * Range, OneHot, Trilu, Identity, Dropout) and of If and Loop: branch and body graphs are inferred
 * with the types of the values they capture, and their outputs give the node's outputs. */
#include <math.h>
#include <string.h>

#include "infer_rules.h"

#define MV_MAXV 64 /* largest int vector read from a shape-like input here */

/* ---- Shape / Size ---- */

enum pq_status pq_infer_shape(pq_infer_ctx *c) {
    const pq_type_info *x = &c->in[0];
    c->out[0].dtype = PQ_DTYPE_I64;
    int r = x->shape.rank;
    if (r < 0) {
        c->out[0].shape = pq_infer_mv_rank_only(1);
        return PQ_OK;
    }
    int64_t s = pq_node_attr_int(c->node, "start", 0), e = pq_node_attr_int(c->node, "end", r);
    if (s < 0) s += r;
    if (e < 0) e += r;
    s = s < 0 ? 0 : s > r ? r : s;
    e = e < 0 ? 0 : e > r ? r : e;
    int64_t len = e > s ? e - s : 0;
    int64_t d = len;
    c->out[0].shape = pq_shape_from_dims(1, &d);
    return PQ_OK;
}

enum pq_status pq_infer_size(pq_infer_ctx *c) {
    c->out[0].dtype = PQ_DTYPE_I64;
    c->out[0].shape = pq_infer_mv_rank_only(0);
    return PQ_OK;
}

/* ---- ConstantOfShape / Range / OneHot / Trilu / Identity / Dropout ---- */

enum pq_status pq_infer_constant_of_shape(pq_infer_ctx *c) {
    const pq_attr *va = pq_node_attr(c->node, "value");
    enum pq_dtype dt = PQ_DTYPE_F32;
    if (va) {
        if (va->type != PQ_ATTR_TENSOR || !va->u.tensor || pq_tensor_numel(va->u.tensor) != 1)
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "ConstantOfShape: value must be a one-element tensor");
        dt = va->u.tensor->dtype;
    }
    c->out[0].dtype = dt;
    int64_t sv[MV_MAXV];
    int n;
    bool known;
    PQ_TRY(pq_infer_mv_ints(c, 0, "ConstantOfShape input", sv, MV_MAXV, &n, &known));
    if (!known) {
        int64_t len = pq_infer_mv_len1(&c->in[0]);
        if (len > PQ_MAX_RANK)
            return pq_error_set(c->err, PQ_ERR_INVALID, "ConstantOfShape: %lld dims",
                                (long long)len);
        if (len >= 0) c->out[0].shape = pq_infer_mv_rank_only((int)len);
        return PQ_OK;
    }
    if (n > PQ_MAX_RANK)
        return pq_error_set(c->err, PQ_ERR_INVALID, "ConstantOfShape: %d dims (max %d)", n,
                            PQ_MAX_RANK);
    int64_t numel;
    PQ_TRY(pq_shape_numel(n, sv, &numel, c->err));
    c->out[0].shape = pq_shape_from_dims(n, sv);
    return PQ_OK;
}

enum pq_status pq_infer_range(pq_infer_ctx *c) {
    enum pq_dtype dt = c->in[0].dtype;
    for (int i = 0; i < 3; i++) {
        const pq_type_info *t = &c->in[i];
        if (t->dtype != PQ_DTYPE_UNDEFINED && dt != PQ_DTYPE_UNDEFINED && t->dtype != dt)
            return pq_error_set(c->err, PQ_ERR_INVALID, "Range: inputs have different types");
        if (t->shape.rank > 0 && !(t->shape.rank == 1 && t->shape.dims[0].size == 1))
            return pq_error_set(c->err, PQ_ERR_INVALID, "Range: input %d is not a scalar", i);
        if (t->value && pq_tensor_numel(t->value) != 1)
            return pq_error_set(c->err, PQ_ERR_INVALID, "Range: input %d is not a scalar", i);
    }
    c->out[0].dtype = dt;
    c->out[0].shape = pq_infer_mv_rank_only(1);
    if (!c->in[0].value || !c->in[1].value || !c->in[2].value) return PQ_OK;
    double v[3];
    for (int i = 0; i < 3; i++)
        v[i] = pq_dtype_load(c->in[i].value->dtype, c->in[i].value->data, 0);
    if (v[2] == 0) return pq_error_set(c->err, PQ_ERR_INVALID, "Range: delta is 0");
    double cnt = ceil((v[1] - v[0]) / v[2]);
    if (pq_dtype_is_integer(dt)) {
        int64_t s = pq_dtype_load_i64(dt, c->in[0].value->data, 0);
        int64_t l = pq_dtype_load_i64(dt, c->in[1].value->data, 0);
        int64_t d = pq_dtype_load_i64(dt, c->in[2].value->data, 0);
        /* exact integer count: ceil((l - s) / d) */
        __int128 diff = (__int128)l - s;
        __int128 q = diff / d;
        if (q * d != diff && ((diff > 0) == (d > 0))) q++;
        cnt = (double)q;
    }
    if (!(cnt >= 0)) cnt = 0;
    if (cnt > (double)PQ_MAX_NUMEL)
        return pq_error_set(c->err, PQ_ERR_INVALID, "Range: %g elements is too many", cnt);
    int64_t n = (int64_t)cnt;
    c->out[0].shape = pq_shape_from_dims(1, &n);
    return PQ_OK;
}

enum pq_status pq_infer_one_hot(pq_infer_ctx *c) {
    const pq_type_info *idx = &c->in[0], *depth = &c->in[1], *vals = &c->in[2];
    c->out[0].dtype = vals->dtype;
    if (vals->value && pq_tensor_numel(vals->value) != 2)
        return pq_error_set(c->err, PQ_ERR_INVALID, "OneHot: values must have 2 elements");
    if (depth->value && pq_tensor_numel(depth->value) != 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "OneHot: depth must be a scalar");
    int r = idx->shape.rank;
    if (r < 0) return PQ_OK;
    if (r + 1 > PQ_MAX_RANK)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "OneHot: output rank above %d",
                            PQ_MAX_RANK);
    int a;
    PQ_TRY(pq_infer_axis(pq_node_attr_int(c->node, "axis", -1), r + 1, &a, c->err));
    pq_dim dd = pq_dim_unknown();
    if (depth->value) {
        double d = pq_dtype_load(depth->value->dtype, depth->value->data, 0);
        if (!(d >= 1) || d > (double)PQ_MAX_NUMEL)
            return pq_error_set(c->err, PQ_ERR_INVALID, "OneHot: depth %g must be positive", d);
        dd = pq_dim_of((int64_t)d);
    }
    pq_shape o = pq_infer_mv_rank_only(r + 1);
    for (int i = 0, k = 0; i < r + 1; i++)
        o.dims[i] = i == a ? dd : idx->shape.dims[k++];
    c->out[0].shape = o;
    return PQ_OK;
}

enum pq_status pq_infer_trilu(pq_infer_ctx *c) {
    PQ_TRY(pq_infer_mv_need_rank(c, c->in[0].shape.rank, 2, "Trilu input"));
    if (c->n_in > 1 && c->in[1].value && pq_tensor_numel(c->in[1].value) != 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "Trilu: k must be a scalar");
    pq_infer_copy(&c->in[0], &c->out[0]);
    return PQ_OK;
}

enum pq_status pq_infer_identity(pq_infer_ctx *c) {
    pq_infer_copy(&c->in[0], &c->out[0]);
    return PQ_OK;
}

enum pq_status pq_infer_dropout(pq_infer_ctx *c) {
    pq_infer_copy(&c->in[0], &c->out[0]);
    /* training mode is a copy only when the ratio is known to be 0 */
    if (c->n_in > 2 && c->in[2].value && pq_tensor_numel(c->in[2].value) == 1 &&
        pq_dtype_load(c->in[2].value->dtype, c->in[2].value->data, 0) != 0) {
        const pq_tensor *r = c->n_in > 1 && c->in[1].present ? c->in[1].value : NULL;
        if (!r || pq_tensor_numel(r) != 1 || pq_dtype_load(r->dtype, r->data, 0) != 0)
            return pq_error_set(c->err, PQ_ERR_UNSUPPORTED,
                                "Dropout: training_mode with a non-zero ratio is not supported");
    }
    if (c->n_out > 1 && c->out[1].present) {
        c->out[1].dtype = PQ_DTYPE_BOOL;
        c->out[1].shape = c->in[0].shape;
    }
    return PQ_OK;
}

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
            if (v->shape.rank < 0)
                v->shape = ov->shape;
            else if (v->shape.rank == ov->shape.rank) /* the parent may know more by now */
                for (int d = 0; d < v->shape.rank; d++)
                    if (!pq_dim_known(v->shape.dims[d]) && v->shape.dims[d].sym == 0)
                        v->shape.dims[d] = ov->shape.dims[d];
        }
    }
    enum pq_status st = pq_graph_toposort(sub, err);
    if (st == PQ_OK) st = pq_graph_infer_shapes(sub, err);
    if (st != PQ_OK) pq_error_prefix(err, "%s: ", what);
    return st;
}

/* Shape that both a and b satisfy: equal dims kept, others unknown; rank unknown if ranks differ.
 */
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
        if (pick == 1)
            c->out[i].shape = tv->shape;
        else if (pick == 0)
            c->out[i].shape = ev->shape;
        else
            c->out[i].shape = ctl_join(&tv->shape, &ev->shape);
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
        if (v->dtype == PQ_DTYPE_UNDEFINED)
            v->dtype = c->in[2 + k].dtype;
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
            for (int i = 0; i < bo->shape.rank; i++)
                sh.dims[i + 1] = bo->shape.dims[i];
            o->shape = sh;
        }
    }
    return PQ_OK;
}
