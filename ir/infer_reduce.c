/* Shape and type inference of the reductions (Reduce*, axes as optional input 1), ArgMax/ArgMin,
 * TopK (k input), CumSum and the quantization ops QuantizeLinear, DequantizeLinear and
 * DynamicQuantizeLinear. Shapes are static whenever the input shape and axes/k are known. */
#include <string.h>

#include "infer_rules.h"

static enum pq_status pq_ir_need(pq_infer_ctx *c, uint32_t i, const char *what) {
    if (i >= c->n_in || !c->in[i].present)
        return pq_error_set(c->err, PQ_ERR_INVALID, "input %u (%s) is missing", i, what);
    return PQ_OK;
}

static enum pq_status pq_ir_outputs(pq_infer_ctx *c, uint32_t n) {
    if (c->n_out < n)
        return pq_error_set(c->err, PQ_ERR_INVALID, "expected %u output(s), node has %u", n,
                            c->n_out);
    return PQ_OK;
}

static bool pq_ir_numeric(enum pq_dtype t) {
    return t == PQ_DTYPE_UNDEFINED || pq_dtype_is_float(t) || pq_dtype_is_integer(t);
}

static bool pq_ir_is_int_or_unknown(enum pq_dtype t) {
    return t == PQ_DTYPE_UNDEFINED || pq_dtype_is_integer(t);
}

static enum pq_status pq_ir_keepdims(pq_infer_ctx *c, bool *keep) {
    int64_t k = pq_node_attr_int(c->node, "keepdims", 1);
    if (k != 0 && k != 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "keepdims must be 0 or 1, got %lld",
                            (long long)k);
    *keep = k != 0;
    return PQ_OK;
}

enum pq_status pq_infer_ew_reduce(pq_infer_ctx *c) {
    PQ_TRY(pq_ir_outputs(c, 1));
    PQ_TRY(pq_ir_need(c, 0, "data"));
    const pq_type_info *x = &c->in[0];
    if (!pq_ir_numeric(x->dtype))
        return pq_error_set(c->err, PQ_ERR_INVALID, "data is %s, expected a numeric type",
                            pq_dtype_name(x->dtype));
    /* an ONNX opset < 18 (ReduceSum < 13) form the importer converts; left in, it would be
     * ignored and every axis reduced */
    if (pq_node_attr(c->node, "axes"))
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "attribute 'axes' is not part of the IR's %s: pass the axes as input 1 "
                            "(docs/canonical-ops.md)",
                            pq_op_name(c->node->op));
    bool keep = true;
    PQ_TRY(pq_ir_keepdims(c, &keep));
    bool noop = pq_node_attr_int(c->node, "noop_with_empty_axes", 0) != 0;
    const pq_type_info *ax = c->n_in > 1 && c->in[1].present ? &c->in[1] : NULL;
    if (ax) {
        if (ax->dtype != PQ_DTYPE_UNDEFINED && ax->dtype != PQ_DTYPE_I64)
            return pq_error_set(c->err, PQ_ERR_INVALID, "axes is %s, expected i64",
                                pq_dtype_name(ax->dtype));
        if (ax->shape.rank > 1)
            return pq_error_set(c->err, PQ_ERR_INVALID, "axes must be 1-D, has rank %d",
                                ax->shape.rank);
    }
    c->out[0].dtype = x->dtype;
    int rank = x->shape.rank;
    int64_t axes[PQ_MAX_RANK];
    int n_axes = 0;
    bool axes_known = true;
    if (ax) {
        if (ax->value) {
            int64_t cnt = pq_tensor_numel(ax->value);
            if (cnt > PQ_MAX_RANK || (rank >= 0 && cnt > rank))
                return pq_error_set(c->err, PQ_ERR_INVALID, "axes has %lld entries for rank %d",
                                    (long long)cnt, rank);
            if (!pq_infer_const_ints(ax, axes, PQ_MAX_RANK, &n_axes))
                return pq_error_set(c->err, PQ_ERR_INVALID, "axes must be an integer list");
        } else {
            axes_known = false;
        }
    }
    if (rank < 0) {
        c->out[0].shape = pq_shape_unknown();
        return PQ_OK;
    }
    if (!axes_known) {
        pq_shape s = pq_shape_unknown();
        if (keep) {
            s.rank = rank;
            for (int i = 0; i < rank; i++)
                s.dims[i] = x->shape.dims[i].size == 1 ? x->shape.dims[i] : pq_dim_unknown();
        } else if (ax->shape.rank == 1 && pq_dim_known(ax->shape.dims[0]) &&
                   ax->shape.dims[0].size > 0 && ax->shape.dims[0].size <= rank) {
            s.rank = rank - (int)ax->shape.dims[0].size;
            for (int i = 0; i < s.rank; i++)
                s.dims[i] = pq_dim_unknown();
        }
        c->out[0].shape = s;
        return PQ_OK;
    }
    bool mask[PQ_MAX_RANK] = {false};
    if (n_axes == 0) {
        for (int i = 0; i < rank; i++)
            mask[i] = !noop;
    }
    for (int k = 0; k < n_axes; k++) {
        int a;
        PQ_TRY(pq_infer_axis(axes[k], rank, &a, c->err));
        if (rank == 0) return pq_error_set(c->err, PQ_ERR_INVALID, "axes given for a scalar input");
        if (mask[a])
            return pq_error_set(c->err, PQ_ERR_INVALID, "axis %d appears twice in axes", a);
        mask[a] = true;
    }
    pq_shape s;
    memset(&s, 0, sizeof s);
    s.rank = 0;
    for (int i = 0; i < rank; i++) {
        if (!mask[i])
            s.dims[s.rank++] = x->shape.dims[i];
        else if (keep)
            s.dims[s.rank++] = pq_dim_of(1);
    }
    c->out[0].shape = s;
    return PQ_OK;
}

enum pq_status pq_infer_ew_argmax(pq_infer_ctx *c) {
    PQ_TRY(pq_ir_outputs(c, 1));
    PQ_TRY(pq_ir_need(c, 0, "data"));
    const pq_type_info *x = &c->in[0];
    if (!pq_ir_numeric(x->dtype))
        return pq_error_set(c->err, PQ_ERR_INVALID, "data is %s, expected a numeric type",
                            pq_dtype_name(x->dtype));
    bool keep = true;
    PQ_TRY(pq_ir_keepdims(c, &keep));
    int64_t axis = pq_node_attr_int(c->node, "axis", 0);
    c->out[0].dtype = PQ_DTYPE_I64;
    int rank = x->shape.rank;
    if (rank < 0) {
        c->out[0].shape = pq_shape_unknown();
        return PQ_OK;
    }
    if (rank == 0) return pq_error_set(c->err, PQ_ERR_INVALID, "data must have rank >= 1");
    int a;
    PQ_TRY(pq_infer_axis(axis, rank, &a, c->err));
    if (pq_dim_known(x->shape.dims[a]) && x->shape.dims[a].size == 0)
        return pq_error_set(c->err, PQ_ERR_INVALID, "axis %d has size 0", a);
    pq_shape s = x->shape;
    if (keep) {
        s.dims[a] = pq_dim_of(1);
    } else {
        for (int i = a; i + 1 < rank; i++)
            s.dims[i] = s.dims[i + 1];
        s.rank = rank - 1;
    }
    c->out[0].shape = s;
    return PQ_OK;
}

enum pq_status pq_infer_ew_topk(pq_infer_ctx *c) {
    PQ_TRY(pq_ir_outputs(c, 2));
    PQ_TRY(pq_ir_need(c, 0, "X"));
    PQ_TRY(pq_ir_need(c, 1, "K"));
    const pq_type_info *x = &c->in[0], *kt = &c->in[1];
    if (!pq_ir_numeric(x->dtype))
        return pq_error_set(c->err, PQ_ERR_INVALID, "X is %s, expected a numeric type",
                            pq_dtype_name(x->dtype));
    if (kt->dtype != PQ_DTYPE_UNDEFINED && kt->dtype != PQ_DTYPE_I64)
        return pq_error_set(c->err, PQ_ERR_INVALID, "K is %s, expected i64",
                            pq_dtype_name(kt->dtype));
    if (kt->shape.rank > 1 ||
        (kt->shape.rank == 1 && pq_dim_known(kt->shape.dims[0]) && kt->shape.dims[0].size != 1))
        return pq_error_set(c->err, PQ_ERR_INVALID, "K must hold exactly one value");
    int64_t sorted = pq_node_attr_int(c->node, "sorted", 1);
    int64_t largest = pq_node_attr_int(c->node, "largest", 1);
    if ((sorted != 0 && sorted != 1) || (largest != 0 && largest != 1))
        return pq_error_set(c->err, PQ_ERR_INVALID, "largest and sorted must be 0 or 1");
    c->out[0].dtype = x->dtype;
    c->out[1].dtype = PQ_DTYPE_I64;
    int rank = x->shape.rank;
    if (rank < 0) {
        c->out[0].shape = c->out[1].shape = pq_shape_unknown();
        return PQ_OK;
    }
    if (rank == 0) return pq_error_set(c->err, PQ_ERR_INVALID, "X must have rank >= 1");
    int a;
    PQ_TRY(pq_infer_axis(pq_node_attr_int(c->node, "axis", -1), rank, &a, c->err));
    pq_shape s = x->shape;
    int64_t kv[1];
    int nk = 0;
    if (kt->value) {
        if (!pq_infer_const_ints(kt, kv, 1, &nk) || nk != 1)
            return pq_error_set(c->err, PQ_ERR_INVALID, "K must hold exactly one integer");
        if (kv[0] < 0)
            return pq_error_set(c->err, PQ_ERR_INVALID, "K = %lld is negative", (long long)kv[0]);
        if (pq_dim_known(s.dims[a]) && kv[0] > s.dims[a].size)
            return pq_error_set(c->err, PQ_ERR_INVALID, "K = %lld exceeds axis %d of size %lld",
                                (long long)kv[0], a, (long long)s.dims[a].size);
        s.dims[a] = pq_dim_of(kv[0]);
    } else {
        s.dims[a] = pq_dim_unknown();
    }
    c->out[0].shape = c->out[1].shape = s;
    return PQ_OK;
}

enum pq_status pq_infer_ew_cumsum(pq_infer_ctx *c) {
    PQ_TRY(pq_ir_outputs(c, 1));
    PQ_TRY(pq_ir_need(c, 0, "x"));
    PQ_TRY(pq_ir_need(c, 1, "axis"));
    const pq_type_info *x = &c->in[0], *at = &c->in[1];
    if (!pq_ir_numeric(x->dtype))
        return pq_error_set(c->err, PQ_ERR_INVALID, "x is %s, expected a numeric type",
                            pq_dtype_name(x->dtype));
    if (at->dtype != PQ_DTYPE_UNDEFINED && at->dtype != PQ_DTYPE_I32 && at->dtype != PQ_DTYPE_I64)
        return pq_error_set(c->err, PQ_ERR_INVALID, "axis is %s, expected i32 or i64",
                            pq_dtype_name(at->dtype));
    if (at->shape.rank > 1 ||
        (at->shape.rank == 1 && pq_dim_known(at->shape.dims[0]) && at->shape.dims[0].size != 1))
        return pq_error_set(c->err, PQ_ERR_INVALID, "axis must be a scalar");
    if (x->shape.rank == 0) return pq_error_set(c->err, PQ_ERR_INVALID, "x must have rank >= 1");
    int64_t av[1];
    int na = 0;
    if (at->value && x->shape.rank > 0) {
        int a;
        if (!pq_infer_const_ints(at, av, 1, &na) || na != 1)
            return pq_error_set(c->err, PQ_ERR_INVALID, "axis must hold exactly one integer");
        PQ_TRY(pq_infer_axis(av[0], x->shape.rank, &a, c->err));
    }
    pq_infer_copy(x, &c->out[0]);
    return PQ_OK;
}

/* Scale/zero-point checks shared by QuantizeLinear and DequantizeLinear. */
static enum pq_status pq_ir_qparams(pq_infer_ctx *c) {
    const pq_type_info *x = &c->in[0], *s = &c->in[1];
    const pq_type_info *z = c->n_in > 2 && c->in[2].present ? &c->in[2] : NULL;
    if (s->dtype != PQ_DTYPE_UNDEFINED && !pq_dtype_is_float(s->dtype))
        return pq_error_set(c->err, PQ_ERR_INVALID, "scale is %s, expected a float type",
                            pq_dtype_name(s->dtype));
    if (s->shape.rank > 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "scale must be a scalar or 1-D, has rank %d",
                            s->shape.rank);
    if (z && z->shape.rank >= 0 && s->shape.rank >= 0) {
        bool same = z->shape.rank == s->shape.rank;
        if (same && s->shape.rank == 1 && pq_dim_known(s->shape.dims[0]) &&
            pq_dim_known(z->shape.dims[0]) && s->shape.dims[0].size != z->shape.dims[0].size)
            same = false;
        if (!same)
            return pq_error_set(c->err, PQ_ERR_INVALID, "zero point and scale shapes differ");
    }
    if (s->shape.rank == 1 && pq_dim_known(s->shape.dims[0]) && s->shape.dims[0].size != 1 &&
        x->shape.rank >= 0) {
        int a;
        PQ_TRY(pq_infer_axis(pq_node_attr_int(c->node, "axis", 1), x->shape.rank, &a, c->err));
        if (pq_dim_known(x->shape.dims[a]) && x->shape.dims[a].size != s->shape.dims[0].size)
            return pq_error_set(
                c->err, PQ_ERR_INVALID, "scale has %lld elements but axis %d of the input has %lld",
                (long long)s->shape.dims[0].size, a, (long long)x->shape.dims[a].size);
    }
    return PQ_OK;
}

static bool pq_ir_qtype(enum pq_dtype t) {
    return t == PQ_DTYPE_U8 || t == PQ_DTYPE_I8 || t == PQ_DTYPE_U16 || t == PQ_DTYPE_I16;
}

enum pq_status pq_infer_ew_quantize(pq_infer_ctx *c) {
    PQ_TRY(pq_ir_outputs(c, 1));
    PQ_TRY(pq_ir_need(c, 0, "x"));
    PQ_TRY(pq_ir_need(c, 1, "y_scale"));
    const pq_type_info *x = &c->in[0];
    if (x->dtype != PQ_DTYPE_UNDEFINED && !pq_dtype_is_float(x->dtype) && x->dtype != PQ_DTYPE_I32)
        return pq_error_set(c->err, PQ_ERR_INVALID, "x is %s, expected a float type or i32",
                            pq_dtype_name(x->dtype));
    PQ_TRY(pq_ir_qparams(c));
    enum pq_dtype out = PQ_DTYPE_U8;
    if (c->n_in > 2 && c->in[2].present) {
        out = c->in[2].dtype;
        if (out != PQ_DTYPE_UNDEFINED && !pq_ir_qtype(out))
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "zero point is %s, expected u8, i8, u16 or i16",
                                pq_dtype_name(out));
    }
    c->out[0].dtype = out;
    c->out[0].shape = x->shape;
    return PQ_OK;
}

enum pq_status pq_infer_ew_dequantize(pq_infer_ctx *c) {
    PQ_TRY(pq_ir_outputs(c, 1));
    PQ_TRY(pq_ir_need(c, 0, "x"));
    PQ_TRY(pq_ir_need(c, 1, "x_scale"));
    const pq_type_info *x = &c->in[0];
    if (!pq_ir_is_int_or_unknown(x->dtype))
        return pq_error_set(c->err, PQ_ERR_INVALID, "x is %s, expected an integer type",
                            pq_dtype_name(x->dtype));
    if (c->n_in > 2 && c->in[2].present && c->in[2].dtype != PQ_DTYPE_UNDEFINED &&
        x->dtype != PQ_DTYPE_UNDEFINED && c->in[2].dtype != x->dtype)
        return pq_error_set(c->err, PQ_ERR_INVALID, "zero point is %s but x is %s",
                            pq_dtype_name(c->in[2].dtype), pq_dtype_name(x->dtype));
    PQ_TRY(pq_ir_qparams(c));
    enum pq_dtype st = c->in[1].dtype;
    c->out[0].dtype = st != PQ_DTYPE_UNDEFINED ? st : PQ_DTYPE_F32;
    c->out[0].shape = x->shape;
    return PQ_OK;
}

enum pq_status pq_infer_ew_dynamic_quantize(pq_infer_ctx *c) {
    PQ_TRY(pq_ir_outputs(c, 3));
    PQ_TRY(pq_ir_need(c, 0, "x"));
    const pq_type_info *x = &c->in[0];
    if (x->dtype != PQ_DTYPE_UNDEFINED && x->dtype != PQ_DTYPE_F32)
        return pq_error_set(c->err, PQ_ERR_INVALID, "x is %s, expected f32",
                            pq_dtype_name(x->dtype));
    c->out[0].dtype = PQ_DTYPE_U8;
    c->out[0].shape = x->shape;
    c->out[1].dtype = PQ_DTYPE_F32;
    c->out[1].shape.rank = 0;
    c->out[2].dtype = PQ_DTYPE_U8;
    c->out[2].shape.rank = 0;
    return PQ_OK;
}
