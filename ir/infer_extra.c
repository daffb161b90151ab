/* Shape-inference rules of the further ONNX ops, part 1: the extra unary math ops, Shrink,
 * CastLike, BitShift, EyeLike, NonZero, GatherND, ScatterElements/Scatter/ScatterND, Compress,
 * ReverseSequence and Unique. Part 2 (normalisation, losses, Einsum, ...) is infer_extra_nn.c. */
#include <string.h>

#include "infer_rules.h"

/* ---- helpers shared with infer_extra_nn.c (declared in infer_rules.h) ---- */

enum pq_status pq_infer_x_need(pq_infer_ctx *c, uint32_t i, const char *what) {
    if (i >= c->n_in || !c->in[i].present)
        return pq_error_set(c->err, PQ_ERR_INVALID, "input %u (%s) is missing", i, what);
    return PQ_OK;
}

enum pq_status pq_infer_x_float(pq_infer_ctx *c, uint32_t i, const char *what) {
    PQ_TRY(pq_infer_x_need(c, i, what));
    enum pq_dtype t = c->in[i].dtype;
    if (t != PQ_DTYPE_UNDEFINED && !pq_dtype_is_float(t))
        return pq_error_set(c->err, PQ_ERR_INVALID, "input %u (%s) is %s, expected a float type", i,
                            what, pq_dtype_name(t));
    return PQ_OK;
}

enum pq_status pq_infer_x_index(pq_infer_ctx *c, uint32_t i, const char *what) {
    PQ_TRY(pq_infer_x_need(c, i, what));
    enum pq_dtype t = c->in[i].dtype;
    if (t != PQ_DTYPE_UNDEFINED && t != PQ_DTYPE_I64 && t != PQ_DTYPE_I32)
        return pq_error_set(c->err, PQ_ERR_INVALID, "input %u (%s) is %s, expected i32 or i64", i,
                            what, pq_dtype_name(t));
    return PQ_OK;
}

bool pq_infer_x_onnx_dtype(int64_t code, enum pq_dtype *out) {
    static const enum pq_dtype map[] = {
        [1] = PQ_DTYPE_F32,   [2] = PQ_DTYPE_U8,   [3] = PQ_DTYPE_I8,   [4] = PQ_DTYPE_U16,
        [5] = PQ_DTYPE_I16,   [6] = PQ_DTYPE_I32,  [7] = PQ_DTYPE_I64,  [9] = PQ_DTYPE_BOOL,
        [10] = PQ_DTYPE_F16,  [11] = PQ_DTYPE_F64, [12] = PQ_DTYPE_U32, [13] = PQ_DTYPE_U64,
        [16] = PQ_DTYPE_BF16,
    };
    if (code < 0 || code >= (int64_t)(sizeof map / sizeof map[0]) ||
        map[code] == PQ_DTYPE_UNDEFINED)
        return false;
    *out = map[code];
    return true;
}

/* ---- unary math, Shrink ---- */

enum pq_status pq_infer_x_unary(pq_infer_ctx *c) {
    if (c->node->op == PQ_OP_SHRINK) {
        PQ_TRY(pq_infer_x_need(c, 0, "input"));
        enum pq_dtype t = c->in[0].dtype;
        if (t != PQ_DTYPE_UNDEFINED && !pq_dtype_is_float(t) && !pq_dtype_is_integer(t))
            return pq_error_set(c->err, PQ_ERR_INVALID, "input is %s, expected a numeric type",
                                pq_dtype_name(t));
    } else {
        PQ_TRY(pq_infer_x_float(c, 0, "input"));
    }
    pq_infer_copy(&c->in[0], &c->out[0]);
    return PQ_OK;
}

/* ---- CastLike ---- */

enum pq_status pq_infer_x_cast_like(pq_infer_ctx *c) {
    PQ_TRY(pq_infer_x_need(c, 0, "input"));
    PQ_TRY(pq_infer_x_need(c, 1, "target_type"));
    c->out[0].dtype = c->in[1].dtype;
    c->out[0].shape = c->in[0].shape;
    return PQ_OK;
}

/* ---- BitShift ---- */

enum pq_status pq_infer_x_bit_shift(pq_infer_ctx *c) {
    PQ_TRY(pq_infer_x_need(c, 0, "X"));
    PQ_TRY(pq_infer_x_need(c, 1, "Y"));
    for (uint32_t i = 0; i < 2; i++) {
        enum pq_dtype t = c->in[i].dtype;
        if (t != PQ_DTYPE_UNDEFINED && !(pq_dtype_is_integer(t) && !pq_dtype_is_signed(t)))
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "input %u is %s, expected an unsigned "
                                "integer type",
                                i, pq_dtype_name(t));
    }
    if (c->in[0].dtype != PQ_DTYPE_UNDEFINED && c->in[1].dtype != PQ_DTYPE_UNDEFINED &&
        c->in[0].dtype != c->in[1].dtype)
        return pq_error_set(c->err, PQ_ERR_INVALID, "X and Y have different dtypes (%s, %s)",
                            pq_dtype_name(c->in[0].dtype), pq_dtype_name(c->in[1].dtype));
    const char *dir = pq_node_attr_string(c->node, "direction", NULL);
    if (!dir || (strcmp(dir, "LEFT") != 0 && strcmp(dir, "RIGHT") != 0))
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "attribute 'direction' must be \"LEFT\" or \"RIGHT\"");
    c->out[0].dtype = c->in[0].dtype;
    return pq_infer_broadcast(&c->in[0].shape, &c->in[1].shape, &c->out[0].shape, c->err);
}

/* ---- EyeLike ---- */

enum pq_status pq_infer_x_eye_like(pq_infer_ctx *c) {
    PQ_TRY(pq_infer_x_need(c, 0, "input"));
    if (c->in[0].shape.rank >= 0 && c->in[0].shape.rank != 2)
        return pq_error_set(c->err, PQ_ERR_INVALID, "input must be 2-D, got rank %d",
                            c->in[0].shape.rank);
    enum pq_dtype t = c->in[0].dtype;
    const pq_attr *d = pq_node_attr(c->node, "dtype");
    if (d && d->type == PQ_ATTR_INT) {
        if (!pq_infer_x_onnx_dtype(d->u.i, &t))
            return pq_error_set(c->err, PQ_ERR_UNSUPPORTED,
                                "attribute 'dtype' = %lld names a "
                                "type piqc does not support",
                                (long long)d->u.i);
    } else if (d && d->type == PQ_ATTR_STRING) {
        if (!pq_dtype_from_name(d->u.s, &t) || t == PQ_DTYPE_UNDEFINED)
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "attribute 'dtype' names unknown dtype "
                                "'%s'",
                                d->u.s);
    } else if (d) {
        return pq_error_set(c->err, PQ_ERR_INVALID, "attribute 'dtype' must be an int or string");
    }
    c->out[0].dtype = t;
    c->out[0].shape = c->in[0].shape;
    return PQ_OK;
}

/* ---- NonZero ---- */

enum pq_status pq_infer_x_non_zero(pq_infer_ctx *c) {
    PQ_TRY(pq_infer_x_need(c, 0, "X"));
    const pq_type_info *x = &c->in[0];
    c->out[0].dtype = PQ_DTYPE_I64;
    c->out[0].shape = pq_infer_mv_rank_only(2);
    if (x->shape.rank >= 0) c->out[0].shape.dims[0] = pq_dim_of(x->shape.rank);
    if (x->value) {
        const pq_tensor *t = x->value;
        int64_t n = pq_tensor_numel(t), cnt = 0;
        size_t es = pq_dtype_size(t->dtype);
        const uint8_t *p = t->data;
        for (int64_t i = 0; i < n; i++) {
            bool nz;
            if (pq_dtype_is_float(t->dtype))
                nz = pq_dtype_load(t->dtype, p, (size_t)i) != 0.0;
            else {
                nz = false;
                for (size_t b = 0; b < es; b++)
                    nz |= p[(size_t)i * es + b] != 0;
            }
            cnt += nz;
        }
        c->out[0].shape.dims[1] = pq_dim_of(cnt);
    }
    return PQ_OK;
}

/* ---- GatherND ---- */

enum pq_status pq_infer_x_gather_nd(pq_infer_ctx *c) {
    PQ_TRY(pq_infer_x_need(c, 0, "data"));
    PQ_TRY(pq_infer_x_index(c, 1, "indices"));
    if (c->in[1].dtype == PQ_DTYPE_I32)
        return pq_error_set(c->err, PQ_ERR_INVALID, "indices must be i64");
    const pq_shape *d = &c->in[0].shape, *q = &c->in[1].shape;
    int64_t b = pq_node_attr_int(c->node, "batch_dims", 0);
    c->out[0].dtype = c->in[0].dtype;
    c->out[0].shape = pq_shape_unknown();
    if (b < 0 || b > PQ_MAX_RANK)
        return pq_error_set(c->err, PQ_ERR_INVALID, "batch_dims = %lld out of range", (long long)b);
    if (d->rank >= 0 && d->rank < 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "data must have rank >= 1");
    if (q->rank >= 0 && q->rank < 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "indices must have rank >= 1");
    if ((d->rank >= 0 && b >= d->rank) || (q->rank >= 0 && b >= q->rank))
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "batch_dims = %lld must be less than both "
                            "ranks",
                            (long long)b);
    if (d->rank < 0 || q->rank < 0 || !pq_dim_known(q->dims[q->rank - 1])) return PQ_OK;
    int64_t k = q->dims[q->rank - 1].size;
    if (k < 1 || k > d->rank - b)
        return pq_error_set(c->err, PQ_ERR_INVALID, "indices' last dim %lld must be in [1, %lld]",
                            (long long)k, (long long)(d->rank - b));
    for (int i = 0; i < b; i++)
        if (pq_dim_known(d->dims[i]) && pq_dim_known(q->dims[i]) &&
            d->dims[i].size != q->dims[i].size)
            return pq_error_set(c->err, PQ_ERR_INVALID, "batch dim %d differs (%lld vs %lld)", i,
                                (long long)d->dims[i].size, (long long)q->dims[i].size);
    int r = q->rank - 1 + d->rank - (int)k - (int)b;
    if (r > PQ_MAX_RANK)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "output rank %d exceeds %d", r,
                            PQ_MAX_RANK);
    pq_shape o;
    memset(&o, 0, sizeof o);
    o.rank = r;
    int j = 0;
    for (int i = 0; i < q->rank - 1; i++)
        o.dims[j++] = q->dims[i];
    for (int i = (int)(b + k); i < d->rank; i++)
        o.dims[j++] = d->dims[i];
    c->out[0].shape = o;
    return PQ_OK;
}

/* ---- ScatterElements, Scatter, ScatterND ---- */

static enum pq_status pq_x_reduction(pq_infer_ctx *c) {
    const char *r = pq_node_attr_string(c->node, "reduction", "none");
    if (strcmp(r, "none") && strcmp(r, "add") && strcmp(r, "mul") && strcmp(r, "max") &&
        strcmp(r, "min"))
        return pq_error_set(c->err, PQ_ERR_INVALID, "unknown reduction '%s'", r);
    if (strcmp(r, "none") != 0 && c->in[0].dtype == PQ_DTYPE_BOOL)
        return pq_error_set(c->err, PQ_ERR_INVALID, "reduction '%s' on bool data", r);
    return PQ_OK;
}

static enum pq_status pq_x_same_dtype(pq_infer_ctx *c, uint32_t a, uint32_t b) {
    enum pq_dtype ta = c->in[a].dtype, tb = c->in[b].dtype;
    if (ta != PQ_DTYPE_UNDEFINED && tb != PQ_DTYPE_UNDEFINED && ta != tb)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "inputs %u and %u have different dtypes "
                            "(%s, %s)",
                            a, b, pq_dtype_name(ta), pq_dtype_name(tb));
    return PQ_OK;
}

enum pq_status pq_infer_x_scatter_elements(pq_infer_ctx *c) {
    PQ_TRY(pq_infer_x_need(c, 0, "data"));
    PQ_TRY(pq_infer_x_index(c, 1, "indices"));
    PQ_TRY(pq_infer_x_need(c, 2, "updates"));
    PQ_TRY(pq_x_same_dtype(c, 0, 2));
    PQ_TRY(pq_x_reduction(c));
    const pq_shape *d = &c->in[0].shape, *q = &c->in[1].shape, *u = &c->in[2].shape;
    if (d->rank >= 0) {
        int ax;
        if (d->rank < 1) return pq_error_set(c->err, PQ_ERR_INVALID, "data must have rank >= 1");
        PQ_TRY(pq_infer_axis(pq_node_attr_int(c->node, "axis", 0), d->rank, &ax, c->err));
        if (q->rank >= 0 && q->rank != d->rank)
            return pq_error_set(c->err, PQ_ERR_INVALID, "indices have rank %d, data %d", q->rank,
                                d->rank);
        for (int i = 0; q->rank >= 0 && i < q->rank; i++)
            if (i != ax && pq_dim_known(q->dims[i]) && pq_dim_known(d->dims[i]) &&
                q->dims[i].size > d->dims[i].size)
                return pq_error_set(c->err, PQ_ERR_INVALID,
                                    "indices dim %d (%lld) exceeds data's "
                                    "(%lld)",
                                    i, (long long)q->dims[i].size, (long long)d->dims[i].size);
    }
    if (q->rank >= 0 && u->rank >= 0) {
        bool same = q->rank == u->rank;
        for (int i = 0; same && i < q->rank; i++)
            if (pq_dim_known(q->dims[i]) && pq_dim_known(u->dims[i]) &&
                q->dims[i].size != u->dims[i].size)
                same = false;
        if (!same)
            return pq_error_set(c->err, PQ_ERR_INVALID, "updates and indices differ in shape");
    }
    pq_infer_copy(&c->in[0], &c->out[0]);
    return PQ_OK;
}

enum pq_status pq_infer_x_scatter_nd(pq_infer_ctx *c) {
    PQ_TRY(pq_infer_x_need(c, 0, "data"));
    PQ_TRY(pq_infer_x_index(c, 1, "indices"));
    PQ_TRY(pq_infer_x_need(c, 2, "updates"));
    PQ_TRY(pq_x_same_dtype(c, 0, 2));
    PQ_TRY(pq_x_reduction(c));
    const pq_shape *d = &c->in[0].shape, *q = &c->in[1].shape, *u = &c->in[2].shape;
    if (d->rank == 0) return pq_error_set(c->err, PQ_ERR_INVALID, "data must have rank >= 1");
    if (q->rank == 0) return pq_error_set(c->err, PQ_ERR_INVALID, "indices must have rank >= 1");
    if (d->rank > 0 && q->rank > 0 && u->rank >= 0 && pq_dim_known(q->dims[q->rank - 1])) {
        int64_t k = q->dims[q->rank - 1].size;
        if (k > d->rank)
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "indices' last dim %lld exceeds data rank "
                                "%d",
                                (long long)k, d->rank);
        int want = q->rank - 1 + d->rank - (int)k;
        bool ok = u->rank == want;
        for (int i = 0; ok && i < want; i++) {
            pq_dim e = i < q->rank - 1 ? q->dims[i] : d->dims[i - (q->rank - 1) + k];
            if (pq_dim_known(e) && pq_dim_known(u->dims[i]) && e.size != u->dims[i].size)
                ok = false;
        }
        if (!ok)
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "updates must have shape indices.shape"
                                "[:-1] + data.shape[k:]");
    }
    pq_infer_copy(&c->in[0], &c->out[0]);
    return PQ_OK;
}

/* ---- Compress ---- */

enum pq_status pq_infer_x_compress(pq_infer_ctx *c) {
    PQ_TRY(pq_infer_x_need(c, 0, "input"));
    PQ_TRY(pq_infer_x_need(c, 1, "condition"));
    const pq_type_info *x = &c->in[0], *cond = &c->in[1];
    if (cond->dtype != PQ_DTYPE_UNDEFINED && cond->dtype != PQ_DTYPE_BOOL)
        return pq_error_set(c->err, PQ_ERR_INVALID, "condition must be bool, got %s",
                            pq_dtype_name(cond->dtype));
    if (cond->shape.rank >= 0 && cond->shape.rank != 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "condition must be 1-D, got rank %d",
                            cond->shape.rank);
    c->out[0].dtype = x->dtype;
    const pq_attr *axa = pq_node_attr(c->node, "axis");
    int ax = -1;
    int64_t limit = -1; /* elements along the selection (dim or flattened size) */
    if (axa) {
        if (x->shape.rank < 0) {
            c->out[0].shape = pq_shape_unknown();
            return PQ_OK;
        }
        if (x->shape.rank < 1) return pq_error_set(c->err, PQ_ERR_INVALID, "input is a scalar");
        PQ_TRY(pq_infer_axis(pq_node_attr_int(c->node, "axis", 0), x->shape.rank, &ax, c->err));
        c->out[0].shape = x->shape;
        c->out[0].shape.dims[ax] = pq_dim_unknown();
        if (pq_dim_known(x->shape.dims[ax])) limit = x->shape.dims[ax].size;
    } else {
        c->out[0].shape = pq_infer_mv_rank_only(1);
        int64_t dims[PQ_MAX_RANK];
        if (pq_shape_is_static(&x->shape, dims)) {
            limit = 1;
            for (int i = 0; i < x->shape.rank; i++)
                limit *= dims[i];
        }
    }
    if (cond->value) {
        int64_t n = pq_tensor_numel(cond->value), cnt = 0;
        if (limit >= 0 && n > limit)
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "condition has %lld entries, more than "
                                "the %lld selectable",
                                (long long)n, (long long)limit);
        const uint8_t *p = cond->value->data;
        for (int64_t i = 0; i < n; i++)
            cnt += p[i] != 0;
        c->out[0].shape.dims[ax >= 0 ? ax : 0] = pq_dim_of(cnt);
    }
    return PQ_OK;
}

/* ---- ReverseSequence ---- */

enum pq_status pq_infer_x_reverse_sequence(pq_infer_ctx *c) {
    PQ_TRY(pq_infer_x_need(c, 0, "input"));
    PQ_TRY(pq_infer_x_index(c, 1, "sequence_lens"));
    int64_t ba = pq_node_attr_int(c->node, "batch_axis", 1);
    int64_t ta = pq_node_attr_int(c->node, "time_axis", 0);
    if ((ba != 0 && ba != 1) || (ta != 0 && ta != 1) || ba == ta)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "batch_axis (%lld) and time_axis (%lld) must "
                            "be 0 and 1 in some order",
                            (long long)ba, (long long)ta);
    const pq_shape *x = &c->in[0].shape, *l = &c->in[1].shape;
    if (x->rank >= 0 && x->rank < 2)
        return pq_error_set(c->err, PQ_ERR_INVALID, "input needs rank >= 2, got %d", x->rank);
    if (l->rank >= 0 && l->rank != 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "sequence_lens must be 1-D");
    if (x->rank >= 2 && l->rank == 1 && pq_dim_known(l->dims[0]) && pq_dim_known(x->dims[ba]) &&
        l->dims[0].size != x->dims[ba].size)
        return pq_error_set(c->err, PQ_ERR_INVALID, "sequence_lens has %lld entries, batch is %lld",
                            (long long)l->dims[0].size, (long long)x->dims[ba].size);
    if (c->in[1].value && x->rank >= 2 && pq_dim_known(x->dims[ta])) {
        const pq_tensor *t = c->in[1].value;
        for (int64_t i = 0; i < pq_tensor_numel(t); i++) {
            int64_t v = pq_dtype_load_i64(t->dtype, t->data, (size_t)i);
            if (v < 0 || v > x->dims[ta].size)
                return pq_error_set(c->err, PQ_ERR_INVALID,
                                    "sequence_lens[%lld] = %lld out of "
                                    "[0, %lld]",
                                    (long long)i, (long long)v, (long long)x->dims[ta].size);
        }
    }
    pq_infer_copy(&c->in[0], &c->out[0]);
    return PQ_OK;
}

/* ---- Unique (the output lengths depend on the data; the kernel allocates them) ---- */

enum pq_status pq_infer_x_unique(pq_infer_ctx *c) {
    PQ_TRY(pq_infer_x_need(c, 0, "X"));
    const pq_shape *x = &c->in[0].shape;
    const pq_attr *axa = pq_node_attr(c->node, "axis");
    pq_dim inv = pq_dim_unknown();
    if (axa) {
        if (x->rank >= 0) {
            int ax;
            if (x->rank < 1) return pq_error_set(c->err, PQ_ERR_INVALID, "X is a scalar");
            PQ_TRY(pq_infer_axis(pq_node_attr_int(c->node, "axis", 0), x->rank, &ax, c->err));
            c->out[0].shape = *x;
            c->out[0].shape.dims[ax] = pq_dim_unknown();
            inv = x->dims[ax];
        } else {
            c->out[0].shape = pq_shape_unknown();
        }
    } else {
        c->out[0].shape = pq_infer_mv_rank_only(1);
        int64_t dims[PQ_MAX_RANK];
        if (pq_shape_is_static(x, dims)) {
            int64_t n = 1;
            for (int i = 0; i < x->rank; i++)
                n *= dims[i];
            inv = pq_dim_of(n);
        }
    }
    c->out[0].dtype = c->in[0].dtype;
    for (uint32_t o = 1; o < c->n_out && o < 4; o++) {
        c->out[o].dtype = PQ_DTYPE_I64;
        c->out[o].shape = pq_infer_mv_rank_only(1);
        if (o == 2) c->out[o].shape.dims[0] = inv;
    }
    return PQ_OK;
}
