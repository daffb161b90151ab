/* Gradient rules of the reductions (ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp;
 * axes a constant input): the output gradient re-expanded over the reduced axes (Unsqueeze when
 * keepdims = 0, then broadcasting) times the local derivative. */
#include "grad_util.h"

/* The reduced axes of the forward node over x, and the kept-dims views of g and (when yk is not
 * NULL) of y. *identity for noop_with_empty_axes without axes. */
static enum pq_status pq_gred_prep(pq_grad_ctx *c, int64_t *axes, int *n_axes, bool *identity,
                                   uint32_t *gk, uint32_t *yk) {
    int rank = c->g->values[PQ_IN(0)].shape.rank;
    if (rank < 0) return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "input of unknown rank");
    PQ_TRY(pq_greduce_axes(c, rank, axes, n_axes, identity));
    if (*identity) {
        *gk = PQ_G0;
        if (yk) *yk = PQ_OUT(0);
        return PQ_OK;
    }
    PQ_TRY(pq_gkeepdims(c, PQ_G0, axes, *n_axes, gk));
    if (yk) PQ_TRY(pq_gkeepdims(c, PQ_OUT(0), axes, *n_axes, yk));
    return PQ_OK;
}

/* ReduceSum / ReduceMean: dx = Expand(g with kept dims, shape of x), divided by the number of
 * reduced elements for the mean (numel(x) / numel(y) at run time when a reduced dim is unknown). */
enum pq_status pq_grad_reduce(pq_grad_ctx *c) {
    uint32_t x = PQ_IN(0), gk, t, shp;
    int64_t axes[PQ_MAX_RANK];
    int n_axes;
    bool identity;
    PQ_TRY(pq_gred_prep(c, axes, &n_axes, &identity, &gk, NULL));
    if (identity) {
        c->in_grad[0] = PQ_G0;
        return PQ_OK;
    }
    if (PQ_NODE->op == PQ_OP_REDUCE_MEAN) {
        const pq_shape *xs = &c->g->values[x].shape;
        int64_t count = 1;
        bool known = true;
        for (int k = 0; k < n_axes; k++) {
            pq_dim d = xs->dims[axes[k]];
            known = known && pq_dim_known(d);
            count *= d.size;
        }
        if (known) {
            PQ_TRY(pq_gscale(c, gk, count ? 1.0 / (double)count : 0.0, &t));
        } else { /* numel(y) / numel(x) when the graph runs */
            uint32_t ratio;
            PQ_TRY(pq_gcount_ratio(c, x, PQ_OUT(0), &ratio));
            PQ_TRY(pq_gop2(c, PQ_OP_MUL, gk, ratio, &t));
        }
        gk = t;
    }
    PQ_TRY(pq_gshape_of(c, x, &shp));
    return pq_gop2(c, PQ_OP_EXPAND, gk, shp, &c->in_grad[0]);
}

/* ReduceMax / ReduceMin: the gradient goes to the elements equal to the result; ties split it
 * evenly (g / count of the maxima in the slice, as torch.amax). */
enum pq_status pq_grad_reduce_max_min(pq_grad_ctx *c) {
    uint32_t x = PQ_IN(0), gk, yk, m, f, cnt, t;
    int64_t axes[PQ_MAX_RANK];
    int n_axes;
    bool identity;
    PQ_TRY(pq_gred_prep(c, axes, &n_axes, &identity, &gk, &yk));
    if (identity) {
        c->in_grad[0] = PQ_G0;
        return PQ_OK;
    }
    PQ_TRY(pq_gop2(c, PQ_OP_EQUAL, x, yk, &m));
    PQ_TRY(pq_gcast(c, m, c->g->values[x].dtype, &f));
    PQ_TRY(pq_greduce_sum(c, f, axes, n_axes, true, &cnt));
    PQ_TRY(pq_gop2(c, PQ_OP_DIV, gk, cnt, &t));
    return pq_gmask(c, m, t, &c->in_grad[0]);
}

/* With gk, yk the kept-dims gradient and output: ReduceProd gk yk / x (inputs must be nonzero);
 * ReduceL1 gk sign(x); ReduceL2 gk x / yk (0 where yk = 0); ReduceSumSquare 2 gk x;
 * ReduceLogSum gk / exp(yk); ReduceLogSumExp gk exp(x - yk). */
enum pq_status pq_grad_reduce_other(pq_grad_ctx *c) {
    enum pq_op op = PQ_NODE->op;
    uint32_t x = PQ_IN(0), gk, yk, t, u, k, m;
    uint32_t *dx = &c->in_grad[0];
    int64_t axes[PQ_MAX_RANK];
    int n_axes;
    bool identity;
    PQ_TRY(pq_gred_prep(c, axes, &n_axes, &identity, &gk, &yk));
    switch (op) {
    case PQ_OP_REDUCE_PROD:
        PQ_TRY(pq_gop2(c, PQ_OP_DIV, yk, x, &t));
        return pq_gop2(c, PQ_OP_MUL, gk, t, dx);
    case PQ_OP_REDUCE_L1:
        PQ_TRY(pq_gop1(c, PQ_OP_SIGN, x, &t));
        return pq_gop2(c, PQ_OP_MUL, gk, t, dx);
    case PQ_OP_REDUCE_L2:
        PQ_TRY(pq_gop2(c, PQ_OP_DIV, x, yk, &t));
        PQ_TRY(pq_gscalar(c, yk, 0.0, &k));
        PQ_TRY(pq_gop2(c, PQ_OP_GREATER, yk, k, &m));
        PQ_TRY(pq_gmask(c, m, t, &u));
        return pq_gop2(c, PQ_OP_MUL, gk, u, dx);
    case PQ_OP_REDUCE_SUM_SQUARE:
        PQ_TRY(pq_gscale(c, x, 2.0, &t));
        return pq_gop2(c, PQ_OP_MUL, gk, t, dx);
    case PQ_OP_REDUCE_LOG_SUM: {
        uint32_t shp;
        PQ_TRY(pq_gop1(c, PQ_OP_EXP, yk, &t));
        PQ_TRY(pq_gop2(c, PQ_OP_DIV, gk, t, &u));
        PQ_TRY(pq_gshape_of(c, x, &shp));
        return pq_gop2(c, PQ_OP_EXPAND, u, shp, dx);
    }
    case PQ_OP_REDUCE_LOG_SUM_EXP:
        PQ_TRY(pq_gop2(c, PQ_OP_SUB, x, yk, &t));
        PQ_TRY(pq_gop1(c, PQ_OP_EXP, t, &u));
        return pq_gop2(c, PQ_OP_MUL, gk, u, dx);
    default:
        return pq_error_set(c->err, PQ_ERR_INTERNAL, "no reduction gradient for %s",
                            pq_op_name(op));
    }
}
