/* Shape rules of the backward ops of the gradient rules (MaxPoolGrad, AveragePoolGrad,
 * ResizeGrad): the forward op's own rule run on the forward input, checked against g. */
#include "infer_grad_ops.h"

#include "infer_rules.h"

/* INVALID unless g (shape gs) matches the forward output shape fs where both are known. */
static enum pq_status pq_ig_match(pq_infer_ctx *c, const pq_shape *fs, const pq_shape *gs) {
    if (fs->rank < 0 || gs->rank < 0) return PQ_OK;
    if (fs->rank != gs->rank)
        return pq_error_set(c->err, PQ_ERR_INVALID, "g has rank %d, the forward output %d",
                            gs->rank, fs->rank);
    for (int i = 0; i < fs->rank; i++)
        if (pq_dim_known(fs->dims[i]) && pq_dim_known(gs->dims[i]) &&
            fs->dims[i].size != gs->dims[i].size)
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "g dim %d is %lld, the forward output has %lld", i,
                                (long long)gs->dims[i].size, (long long)fs->dims[i].size);
    return PQ_OK;
}

static enum pq_status pq_ig_need(pq_infer_ctx *c, uint32_t i, const char *what) {
    if (c->n_in <= i || !c->in[i].present)
        return pq_error_set(c->err, PQ_ERR_INVALID, "input %s is missing", what);
    enum pq_dtype t = c->in[i].dtype;
    if (t != PQ_DTYPE_UNDEFINED && !pq_dtype_is_float(t))
        return pq_error_set(c->err, PQ_ERR_INVALID, "input %s must be a float, not %s", what,
                            pq_dtype_name(t));
    return PQ_OK;
}

enum pq_status pq_infer_grad_pool(pq_infer_ctx *c) {
    PQ_TRY(pq_ig_need(c, 0, "x"));
    PQ_TRY(pq_ig_need(c, 1, "g"));
    if (c->in[0].dtype != PQ_DTYPE_UNDEFINED && c->in[1].dtype != PQ_DTYPE_UNDEFINED &&
        c->in[0].dtype != c->in[1].dtype)
        return pq_error_set(c->err, PQ_ERR_INVALID, "g is %s, x is %s",
                            pq_dtype_name(c->in[1].dtype), pq_dtype_name(c->in[0].dtype));
    pq_type_info fo = {0};
    fo.present = true;
    pq_infer_ctx f = *c;
    f.n_in = 1;
    f.out = &fo;
    f.n_out = 1;
    PQ_TRY(c->node->op == PQ_OP_MAX_POOL_GRAD ? pq_infer_max_pool(&f) : pq_infer_average_pool(&f));
    PQ_TRY(pq_ig_match(c, &fo.shape, &c->in[1].shape));
    pq_infer_copy(&c->in[0], &c->out[0]);
    return PQ_OK;
}

enum pq_status pq_infer_grad_resize(pq_infer_ctx *c) {
    PQ_TRY(pq_ig_need(c, 0, "g"));
    if (c->n_in < 2 || !c->in[1].present)
        return pq_error_set(c->err, PQ_ERR_INVALID, "input x_shape is missing");
    enum pq_dtype st = c->in[1].dtype;
    if (st != PQ_DTYPE_UNDEFINED && st != PQ_DTYPE_I64)
        return pq_error_set(c->err, PQ_ERR_INVALID, "x_shape must be i64, not %s",
                            pq_dtype_name(st));
    int64_t xd[PQ_MAX_RANK];
    int n = 0;
    bool known = pq_infer_const_ints(&c->in[1], xd, PQ_MAX_RANK, &n);
    pq_shape xs;
    if (known) {
        xs.rank = n;
        for (int i = 0; i < n; i++) {
            if (xd[i] < 0)
                return pq_error_set(c->err, PQ_ERR_INVALID, "x_shape[%d] = %lld is negative", i,
                                    (long long)xd[i]);
            xs.dims[i] = pq_dim_of(xd[i]);
        }
    } else {
        int64_t len = pq_infer_mv_len1(&c->in[1]);
        xs = len >= 0 && len <= PQ_MAX_RANK ? pq_infer_mv_rank_only((int)len) : pq_shape_unknown();
    }
    /* the forward rule on (x, roi, scales, sizes) */
    pq_type_info fin[4] = {{0}}, fo = {0};
    fin[0].present = true;
    fin[0].dtype = c->in[0].dtype;
    fin[0].shape = xs;
    for (uint32_t i = 2; i < c->n_in && i < 5; i++)
        fin[i - 1] = c->in[i];
    fo.present = true;
    pq_infer_ctx f = *c;
    f.in = fin;
    f.n_in = c->n_in > 2 ? c->n_in - 1 : 1;
    f.out = &fo;
    f.n_out = 1;
    PQ_TRY(pq_infer_resize(&f));
    PQ_TRY(pq_ig_match(c, &fo.shape, &c->in[0].shape));
    c->out[0].dtype = c->in[0].dtype;
    c->out[0].shape = xs;
    return PQ_OK;
}
