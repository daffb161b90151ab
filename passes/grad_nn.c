/* Gradient rules of the neural-network ops: Softmax/LogSoftmax, MatMul, Gemm, Conv and
 * ConvTranspose (groups, depthwise, dilations, strides, explicit and auto pads, 1-D to 3-D),
 * pooling (the internal MaxPoolGrad / AveragePoolGrad ops; global pools from existing ops), the
 * normalisations (BatchNormalization with frozen statistics, Layer/Instance/MeanVariance/Lp
 * normalisation, LRN) and piqc's Hadamard. */
#include <string.h>

#include "grad_util.h"
#include "ir/attrs.h"

/* ---- Softmax / LogSoftmax over one axis ---- */

/* The axis of a Softmax-like node; for the legacy coerce_2d form the input is viewed as 2-D
 * [prod(dims[:axis]), prod(dims[axis:])] (*flat = the axis, or -1). */
static enum pq_status pq_gsoftmax_axis(pq_grad_ctx *c, int64_t *axis, int64_t *flat) {
    const pq_node *n = PQ_NODE;
    int rank = c->g->values[PQ_IN(0)].shape.rank;
    if (rank < 1)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "input rank %d (need a known rank >= 1)",
                            rank);
    bool coerce = pq_node_attr_int(n, "coerce_2d", 0) != 0;
    int64_t a = pq_node_attr_int(n, "axis", coerce ? 1 : -1);
    if (a < 0) a += rank;
    if (a < 0 || a > rank || (a == rank && !coerce))
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "axis out of range for rank %d", rank);
    *flat = -1;
    *axis = a;
    if (coerce && a != rank - 1) {
        *flat = a;
        *axis = 1;
    }
    return PQ_OK;
}

/* Flatten(v, axis) (the legacy 2-D view). */
static enum pq_status pq_gflatten(pq_grad_ctx *c, uint32_t v, int64_t axis, uint32_t *out) {
    uint32_t nid;
    PQ_TRY(pq_gb(c, PQ_OP_FLATTEN, &v, 1, out, &nid));
    PQ_TRY(pq_node_set_int(c->g, nid, "axis", axis, c->err));
    return pq_grad_infer(c, nid);
}

/* y = softmax(x): dx = y (g - sum(g y, axis)); logsoftmax: dx = g - exp(y) sum(g, axis). */
static enum pq_status pq_gsoftmax(pq_grad_ctx *c, bool log) {
    int64_t axis = -1, flat = -1;
    PQ_TRY(pq_gsoftmax_axis(c, &axis, &flat));
    uint32_t y = PQ_OUT(0), g = PQ_G0, t, s, d, dx;
    if (flat >= 0) {
        PQ_TRY(pq_gflatten(c, y, flat, &y));
        PQ_TRY(pq_gflatten(c, g, flat, &g));
    }
    if (!log) {
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, g, y, &t));
        PQ_TRY(pq_greduce_sum(c, t, &axis, 1, true, &s));
        PQ_TRY(pq_gop2(c, PQ_OP_SUB, g, s, &d));
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, y, d, &dx));
    } else {
        uint32_t p;
        PQ_TRY(pq_gop1(c, PQ_OP_EXP, y, &p));
        PQ_TRY(pq_greduce_sum(c, g, &axis, 1, true, &s));
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, p, s, &t));
        PQ_TRY(pq_gop2(c, PQ_OP_SUB, g, t, &dx));
    }
    if (flat < 0) {
        c->in_grad[0] = dx;
        return PQ_OK;
    }
    return pq_greshape_like(c, dx, PQ_IN(0), &c->in_grad[0]);
}

enum pq_status pq_grad_softmax(pq_grad_ctx *c) {
    return pq_gsoftmax(c, false);
}

enum pq_status pq_grad_log_softmax(pq_grad_ctx *c) {
    return pq_gsoftmax(c, true);
}

/* ---- linear algebra ---- */

/* Unsqueeze(v, [axis]). */
static enum pq_status pq_gunsqueeze1(pq_grad_ctx *c, uint32_t v, int64_t axis, uint32_t *out) {
    uint32_t ax;
    PQ_TRY(pq_gints(c, &axis, 1, &ax));
    return pq_gop2(c, PQ_OP_UNSQUEEZE, v, ax, out);
}

/* y = a @ b (batch dims broadcast): da = g @ b^T, db = a^T @ g, each summed over the batch axes it
 * was broadcast along. A 1-D a is viewed as [1, K] and a 1-D b as [K, 1] (g gets the dropped
 * axes back), and the result is viewed back. */
enum pq_status pq_grad_matmul(pq_grad_ctx *c) {
    uint32_t a = PQ_IN(0), b = PQ_IN(1), g = PQ_G0, a2 = a, b2 = b, t, u, d;
    int ra = c->g->values[a].shape.rank, rb = c->g->values[b].shape.rank;
    if (ra < 1 || rb < 1)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "operands of rank %d and %d", ra, rb);
    if (rb == 1) {
        PQ_TRY(pq_gunsqueeze1(c, b, 1, &b2));
        PQ_TRY(pq_gunsqueeze1(c, g, c->g->values[g].shape.rank, &g));
    }
    if (ra == 1) {
        PQ_TRY(pq_gunsqueeze1(c, a, 0, &a2));
        PQ_TRY(pq_gunsqueeze1(c, g, c->g->values[g].shape.rank - 1, &g));
    }
    if (c->need[0]) {
        PQ_TRY(pq_gswap_last2(c, b2, &t));
        PQ_TRY(pq_gop2(c, PQ_OP_MATMUL, g, t, &u));
        PQ_TRY(pq_gunbroadcast(c, u, a2, &d));
        if (ra == 1)
            PQ_TRY(pq_greshape_like(c, d, a, &c->in_grad[0]));
        else
            c->in_grad[0] = d;
    }
    const pq_shape *bs = &c->g->values[b].shape;
    if (c->need[1] && rb == 2 && ra >= 3 && pq_dim_known(bs->dims[0]) &&
        pq_dim_known(bs->dims[1])) {
        /* a 2-D weight read by a batched a (a linear layer over [..., K] activations): one
         * [K, M] x [M, N] product over all M rows instead of one per batch entry and a
         * ReduceSum over them */
        int64_t kk[2] = {-1, bs->dims[0].size}, nn[2] = {-1, bs->dims[1].size};
        uint32_t ks, ns, a_rows, g_rows, at;
        PQ_TRY(pq_gints(c, kk, 2, &ks));
        PQ_TRY(pq_gints(c, nn, 2, &ns));
        PQ_TRY(pq_gop2(c, PQ_OP_RESHAPE, a2, ks, &a_rows));
        PQ_TRY(pq_gop2(c, PQ_OP_RESHAPE, g, ns, &g_rows));
        PQ_TRY(pq_gswap_last2(c, a_rows, &at));
        PQ_TRY(pq_gop2(c, PQ_OP_MATMUL, at, g_rows, &c->in_grad[1]));
    } else if (c->need[1]) {
        PQ_TRY(pq_gswap_last2(c, a2, &t));
        PQ_TRY(pq_gop2(c, PQ_OP_MATMUL, t, g, &u));
        PQ_TRY(pq_gunbroadcast(c, u, b2, &d));
        if (rb == 1)
            PQ_TRY(pq_greshape_like(c, d, b, &c->in_grad[1]));
        else
            c->in_grad[1] = d;
    }
    return PQ_OK;
}

/* alpha * op(x) @ op(y) as a Gemm node (no bias). */
static enum pq_status pq_ggemm(pq_grad_ctx *c, uint32_t x, uint32_t y, int ta, int tb, float alpha,
                               uint32_t *out) {
    uint32_t in[2] = {x, y}, nid;
    PQ_TRY(pq_gb(c, PQ_OP_GEMM, in, 2, out, &nid));
    if (ta) PQ_TRY(pq_node_set_int(c->g, nid, "transA", 1, c->err));
    if (tb) PQ_TRY(pq_node_set_int(c->g, nid, "transB", 1, c->err));
    if (alpha != 1.0f) PQ_TRY(pq_node_set_float(c->g, nid, "alpha", alpha, c->err));
    return pq_grad_infer(c, nid);
}

/* y = alpha * A' @ B' + beta * C with A' = transA ? A^T : A, B' likewise:
 * dA' = alpha g B'^T, dB' = alpha A'^T g, dC = beta g summed over C's broadcast axes. */
enum pq_status pq_grad_gemm(pq_grad_ctx *c) {
    const pq_node *n = PQ_NODE;
    int ta = pq_node_attr_int(n, "transA", 0) != 0, tb = pq_node_attr_int(n, "transB", 0) != 0;
    float alpha = pq_node_attr_float(n, "alpha", 1.0f), beta = pq_node_attr_float(n, "beta", 1.0f);
    uint32_t a = PQ_IN(0), b = PQ_IN(1), cc = PQ_IN(2), g0 = PQ_G0;
    if (c->need[0]) {
        if (!ta) /* dA = alpha g B'^T */
            PQ_TRY(pq_ggemm(c, g0, b, 0, !tb, alpha, &c->in_grad[0]));
        else /* dA = (alpha g B'^T)^T = alpha B' g^T */
            PQ_TRY(pq_ggemm(c, b, g0, tb, 1, alpha, &c->in_grad[0]));
    }
    if (c->need[1]) {
        if (!tb) /* dB = alpha A'^T g */
            PQ_TRY(pq_ggemm(c, a, g0, !ta, 0, alpha, &c->in_grad[1]));
        else /* dB = (alpha A'^T g)^T = alpha g^T A' */
            PQ_TRY(pq_ggemm(c, g0, a, 1, ta, alpha, &c->in_grad[1]));
    }
    if (cc != PQ_NONE && c->need[2]) {
        uint32_t t = g0;
        if (beta != 1.0f) PQ_TRY(pq_gscale(c, g0, beta, &t));
        PQ_TRY(pq_gunbroadcast(c, t, cc, &c->in_grad[2]));
    }
    return PQ_OK;
}

/* ---- convolution ---- */

/* Dims of value v (rank r) into d: every dim but the batch (axis 0) must be known; an unknown
 * batch is -1. */
static bool pq_gconv_dims(const pq_grad_ctx *c, uint32_t v, int r, int64_t *d) {
    const pq_shape *s = &c->g->values[v].shape;
    if (s->rank != r) return false;
    for (int i = 0; i < r; i++) {
        d[i] = pq_dim_known(s->dims[i]) ? s->dims[i].size : -1;
        if (i > 0 && d[i] < 0) return false;
    }
    return true;
}

/* Shapes of input 0 (x), input 1 (w) and output 0 (y) of a Conv-like node of rank 3 to 5 (all
 * dims known but the batch of x and y) and its decoded geometry (auto_pad and output_shape
 * resolved into pads). */
static enum pq_status pq_gconv_prep(pq_grad_ctx *c, int64_t *xd, int64_t *wd, int64_t *yd, int *r,
                                    pq_conv_geom *q) {
    *r = c->g->values[PQ_IN(0)].shape.rank;
    if (*r < 3 || *r > 5 || !pq_gconv_dims(c, PQ_IN(0), *r, xd) ||
        !pq_gconv_dims(c, PQ_OUT(0), *r, yd) || !pq_gstatic(c, PQ_IN(1), wd, NULL) ||
        c->g->values[PQ_IN(1)].shape.rank != *r)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED,
                            "input, weight and output need known shapes of rank 3 to 5 (the "
                            "batch may be unknown)");
    return pq_conv_geom_decode(PQ_NODE, xd + 2, *r - 2, wd + 2, q, c->err);
}

/* A Conv node with the given strides, dilations, pads and group (rank r). */
static enum pq_status pq_gconv_node(pq_grad_ctx *c, enum pq_op op, uint32_t x, uint32_t w, int r,
                                    const int64_t *st, const int64_t *dl, const int64_t *pb,
                                    const int64_t *pe, const int64_t *opad, int64_t group,
                                    uint32_t *out) {
    int nsp = r - 2;
    int64_t pads[2 * PQ_CONV_MAX_SPATIAL];
    for (int i = 0; i < nsp; i++) {
        pads[i] = pb[i];
        pads[nsp + i] = pe[i];
    }
    uint32_t in[2] = {x, w}, nid;
    PQ_TRY(pq_gb(c, op, in, 2, out, &nid));
    PQ_TRY(pq_node_set_ints(c->g, nid, "strides", st, (uint32_t)nsp, c->err));
    PQ_TRY(pq_node_set_ints(c->g, nid, "dilations", dl, (uint32_t)nsp, c->err));
    PQ_TRY(pq_node_set_ints(c->g, nid, "pads", pads, (uint32_t)(2 * nsp), c->err));
    if (opad) PQ_TRY(pq_node_set_ints(c->g, nid, "output_padding", opad, (uint32_t)nsp, c->err));
    if (group != 1) PQ_TRY(pq_node_set_int(c->g, nid, "group", group, c->err));
    return pq_grad_infer(c, nid);
}

/* Slice of v to dims want[2..r) on the spatial axes when its shape is larger there (or not
 * known). */
static enum pq_status pq_gtrim_spatial(pq_grad_ctx *c, uint32_t v, int r, const int64_t *want,
                                       uint32_t *out) {
    int64_t got[PQ_MAX_RANK];
    bool known = pq_gconv_dims(c, v, r, got), trim = !known; /* unknown: slice anyway */
    for (int i = 2; known && i < r; i++) {
        if (got[i] < want[i])
            return pq_error_set(c->err, PQ_ERR_INTERNAL, "gradient dim %d is %lld < %lld", i,
                                (long long)got[i], (long long)want[i]);
        trim = trim || got[i] != want[i];
    }
    if (!trim) {
        *out = v;
        return PQ_OK;
    }
    int64_t starts[3] = {0, 0, 0}, axes[3] = {2, 3, 4};
    return pq_gslice(c, v, starts, want + 2, axes, r - 2, out);
}

/* Transpose swapping axes 0 and 1 of a rank-r value. */
static enum pq_status pq_gswap01(pq_grad_ctx *c, uint32_t v, int r, uint32_t *out) {
    int64_t perm[PQ_MAX_RANK];
    for (int i = 0; i < r; i++)
        perm[i] = i;
    perm[0] = 1;
    perm[1] = 0;
    return pq_gtranspose(c, v, perm, r, out);
}

/* The weight gradient shared by Conv and ConvTranspose: the correlation of act [N, A, S...] with
 * ker [N, B, Y...] over the batch, per group: wgrad[b, a', k] = sum_n sum_y ker[n, b, y]
 * act[n, g(b) A/G + a', y st + k dl - pb]. Computed as one Conv of act rearranged to
 * [A/G, G N, S...] (batch A/G, channels grouped as the groups of B) with kernel ker^T [B, N, Y...],
 * strides dl, dilations st, pads (pb, pe) and group G, giving [A/G, B, K'...], transposed to
 * [B, A/G, K'...] and trimmed to the kernel size kd[2..r). */
static enum pq_status pq_gconv_wgrad(pq_grad_ctx *c, uint32_t act, const int64_t *ad, uint32_t ker,
                                     int r, const int64_t *st, const int64_t *dl, const int64_t *pb,
                                     const int64_t *pe, int64_t group, const int64_t *kd,
                                     uint32_t *out) {
    uint32_t ar, kt, w, wt;
    int64_t N = ad[0], A = ad[1], Ag = A / group;
    if (group == 1) {
        PQ_TRY(pq_gswap01(c, act, r, &ar));
    } else { /* [N, A] -> [N, G, A/G] -> [A/G, G, N] -> [A/G, G N] (N may be unknown: -1) */
        int64_t d5[PQ_MAX_RANK], perm[PQ_MAX_RANK], d4[PQ_MAX_RANK];
        d5[0] = -1;
        d5[1] = group;
        d5[2] = Ag;
        for (int i = 2; i < r; i++)
            d5[i + 1] = ad[i];
        for (int i = 0; i <= r; i++)
            perm[i] = i;
        perm[0] = 2;
        perm[2] = 0;
        d4[0] = Ag;
        d4[1] = N >= 0 ? group * N : -1;
        for (int i = 2; i < r; i++)
            d4[i] = ad[i];
        uint32_t t, u;
        PQ_TRY(pq_greshape(c, act, d5, r + 1, &t));
        PQ_TRY(pq_gtranspose(c, t, perm, r + 1, &u));
        PQ_TRY(pq_greshape(c, u, d4, r, &ar));
    }
    PQ_TRY(pq_gswap01(c, ker, r, &kt));
    PQ_TRY(pq_gconv_node(c, PQ_OP_CONV, ar, kt, r, dl, st, pb, pe, NULL, group, &w));
    PQ_TRY(pq_gswap01(c, w, r, &wt));
    return pq_gtrim_spatial(c, wt, r, kd, out);
}

/* ReduceSum of g over every axis but 1 (the bias gradient). */
static enum pq_status pq_gbias(pq_grad_ctx *c, uint32_t g, int r, uint32_t *out) {
    int64_t axes[PQ_MAX_RANK];
    int k = 0;
    for (int i = 0; i < r; i++)
        if (i != 1) axes[k++] = i;
    return pq_greduce_sum(c, g, axes, k, false, out);
}

/* y = Conv(x [N, C, S...], w [O, C/G, K...], b? [O]) (pads from pads or auto_pad):
 * dx = ConvTranspose(g, w) with the same strides, pads, dilations and group and the
 * output_padding that restores x's size; dw = pq_gconv_wgrad(x, g) (any group: grouped and
 * depthwise included); db = ReduceSum(g) over every axis but 1. */
enum pq_status pq_grad_conv(pq_grad_ctx *c) {
    int64_t xd[PQ_MAX_RANK], wd[PQ_MAX_RANK], yd[PQ_MAX_RANK];
    int r;
    pq_conv_geom q;
    PQ_TRY(pq_gconv_prep(c, xd, wd, yd, &r, &q));
    int nsp = r - 2;
    const int64_t *st = q.strides, *dl = q.dilations, *pb = q.pads_begin, *pe = q.pads_end;
    uint32_t x = PQ_IN(0), w = PQ_IN(1), g0 = PQ_G0;
    if (c->need[0]) {
        int64_t op[PQ_CONV_MAX_SPATIAL];
        for (int i = 0; i < nsp; i++) {
            op[i] =
                xd[2 + i] - (st[i] * (yd[2 + i] - 1) + dl[i] * (wd[2 + i] - 1) + 1 - pb[i] - pe[i]);
            if (op[i] < 0 || (op[i] >= st[i] && op[i] >= dl[i]))
                return pq_error_set(c->err, PQ_ERR_UNSUPPORTED,
                                    "input gradient needs output_padding %lld on axis %d",
                                    (long long)op[i], 2 + i);
        }
        PQ_TRY(pq_gconv_node(c, PQ_OP_CONV_TRANSPOSE, g0, w, r, st, dl, pb, pe, op, q.group,
                             &c->in_grad[0]));
    }
    if (c->need[1])
        PQ_TRY(pq_gconv_wgrad(c, x, xd, g0, r, st, dl, pb, pe, q.group, wd, &c->in_grad[1]));
    if (PQ_IN(2) != PQ_NONE && c->need[2]) PQ_TRY(pq_gbias(c, g0, r, &c->in_grad[2]));
    return PQ_OK;
}

/* y = ConvTranspose(x [N, C, S...], w [C, M/G, K...], b? [M]) (pads from pads, auto_pad or
 * output_shape): dx = Conv(g, w) with the same strides, dilations, pads and group (end positions
 * past the full result, from output_shape, are cut from g first; the result is trimmed to x);
 * dw = pq_gconv_wgrad(g, x); db = ReduceSum(g) over every axis but 1. */
enum pq_status pq_grad_conv_transpose(pq_grad_ctx *c) {
    int64_t xd[PQ_MAX_RANK], wd[PQ_MAX_RANK], yd[PQ_MAX_RANK];
    int r;
    pq_conv_geom q;
    PQ_TRY(pq_gconv_prep(c, xd, wd, yd, &r, &q));
    int nsp = r - 2;
    int64_t pe[PQ_CONV_MAX_SPATIAL], gd[PQ_MAX_RANK];
    uint32_t x = PQ_IN(0), w = PQ_IN(1), g0 = PQ_G0, gc = g0;
    memcpy(gd, yd, sizeof(int64_t) * (size_t)r);
    bool cut = false;
    for (int i = 0; i < nsp; i++) {
        pe[i] = q.pads_end[i];
        if (pe[i] < 0) {
            gd[2 + i] = yd[2 + i] + pe[i];
            pe[i] = 0;
            cut = true;
        }
    }
    if (cut) PQ_TRY(pq_gtrim_spatial(c, g0, r, gd, &gc));
    if (c->need[0]) {
        uint32_t dx;
        PQ_TRY(pq_gconv_node(c, PQ_OP_CONV, gc, w, r, q.strides, q.dilations, q.pads_begin, pe,
                             NULL, q.group, &dx));
        PQ_TRY(pq_gtrim_spatial(c, dx, r, xd, &c->in_grad[0]));
    }
    if (c->need[1])
        PQ_TRY(pq_gconv_wgrad(c, gc, gd, x, r, q.strides, q.dilations, q.pads_begin, pe, q.group,
                              wd, &c->in_grad[1]));
    if (PQ_IN(2) != PQ_NONE && c->need[2]) PQ_TRY(pq_gbias(c, g0, r, &c->in_grad[2]));
    return PQ_OK;
}

/* ---- pooling ---- */

/* MaxPool / AveragePool: one MaxPoolGrad / AveragePoolGrad(x, g) node with the forward's
 * attributes (the Indices output of MaxPool is not differentiable). */
enum pq_status pq_grad_pool(pq_grad_ctx *c) {
    enum pq_op op = PQ_NODE->op == PQ_OP_MAX_POOL ? PQ_OP_MAX_POOL_GRAD : PQ_OP_AVERAGE_POOL_GRAD;
    uint32_t in[2] = {PQ_IN(0), PQ_G0}, nid;
    PQ_TRY(pq_gb(c, op, in, 2, &c->in_grad[0], &nid));
    PQ_TRY(pq_gcopy_attrs(c, c->node, nid));
    return pq_grad_infer(c, nid);
}

/* GlobalAveragePool: dx = Expand(g / S, shape of x) with S the spatial size; GlobalMaxPool: the
 * gradient goes to the maxima of each channel (found again with ReduceMax), ties split evenly. */
enum pq_status pq_grad_global_pool(pq_grad_ctx *c) {
    uint32_t x = PQ_IN(0), t, shp;
    const pq_shape *xs = &c->g->values[x].shape;
    int r = xs->rank;
    if (r < 3) return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "input of rank %d", r);
    int64_t axes[PQ_MAX_RANK];
    for (int i = 2; i < r; i++)
        axes[i - 2] = i;
    if (PQ_NODE->op == PQ_OP_GLOBAL_AVERAGE_POOL) {
        int64_t sp = 1;
        bool known = true;
        for (int i = 2; i < r; i++) {
            known = known && pq_dim_known(xs->dims[i]);
            sp *= xs->dims[i].size;
        }
        if (known) {
            PQ_TRY(pq_gscale(c, PQ_G0, sp ? 1.0 / (double)sp : 0.0, &t));
        } else {
            uint32_t ratio;
            PQ_TRY(pq_gcount_ratio(c, x, PQ_OUT(0), &ratio));
            PQ_TRY(pq_gop2(c, PQ_OP_MUL, PQ_G0, ratio, &t));
        }
        PQ_TRY(pq_gshape_of(c, x, &shp));
        return pq_gop2(c, PQ_OP_EXPAND, t, shp, &c->in_grad[0]);
    }
    /* the maxima again with ReduceMax: exact in x's type, where the pool's own output went
     * through f32 (an f64 y would not compare equal) */
    uint32_t m, f, cnt, mx, av, nid;
    PQ_TRY(pq_gints(c, axes, r - 2, &av));
    uint32_t in[2] = {x, av};
    PQ_TRY(pq_gb(c, PQ_OP_REDUCE_MAX, in, 2, &mx, &nid));
    PQ_TRY(pq_grad_infer(c, nid));
    PQ_TRY(pq_gop2(c, PQ_OP_EQUAL, x, mx, &m));
    PQ_TRY(pq_gcast(c, m, c->g->values[x].dtype, &f));
    PQ_TRY(pq_greduce_sum(c, f, axes, r - 2, true, &cnt));
    PQ_TRY(pq_gop2(c, PQ_OP_DIV, PQ_G0, cnt, &t));
    return pq_gmask(c, m, t, &c->in_grad[0]);
}

/* ---- normalisation ---- */

/* Given xc = x - mean over axes (keepdims), r = 1 / den (keepdims) and gs = dL/d(xc r) (x's
 * shape), the input gradient of y = xc r(var) with var = mean(xc^2):
 * dx = r (gs - mean(gs)) - k xc mean(gs xc), k = -2 dr/dvar (LayerNorm-like: den = sqrt(var +
 * eps), k = r^3; MeanVarianceNormalization: den = sqrt(var) + eps, k = r^2 / sqrt(var)). */
static enum pq_status pq_gnorm_dx(pq_grad_ctx *c, uint32_t xc, uint32_t rv, uint32_t k, uint32_t gs,
                                  uint32_t axv, uint32_t *dx) {
    uint32_t in[2], m1, m2, t, u, nid;
    in[0] = gs;
    in[1] = axv;
    PQ_TRY(pq_gb(c, PQ_OP_REDUCE_MEAN, in, 2, &m1, &nid));
    PQ_TRY(pq_grad_infer(c, nid));
    PQ_TRY(pq_gop2(c, PQ_OP_MUL, gs, xc, &t));
    in[0] = t;
    PQ_TRY(pq_gb(c, PQ_OP_REDUCE_MEAN, in, 2, &m2, &nid));
    PQ_TRY(pq_grad_infer(c, nid));
    PQ_TRY(pq_gop2(c, PQ_OP_SUB, gs, m1, &t));
    PQ_TRY(pq_gop2(c, PQ_OP_MUL, rv, t, &u)); /* r (gs - mean gs) */
    PQ_TRY(pq_gop2(c, PQ_OP_MUL, m2, k, &t));
    uint32_t w;
    PQ_TRY(pq_gop2(c, PQ_OP_MUL, xc, t, &w)); /* k xc mean(gs xc) */
    return pq_gop2(c, PQ_OP_SUB, u, w, dx);
}

/* Statistics of x over the axes (an i64 constant axv, keepdims): xc = x - mean, var = mean(xc^2).
 */
static enum pq_status pq_gnorm_stats(pq_grad_ctx *c, uint32_t x, uint32_t axv, uint32_t *xc,
                                     uint32_t *var) {
    uint32_t in[2] = {x, axv}, mu, t, nid;
    PQ_TRY(pq_gb(c, PQ_OP_REDUCE_MEAN, in, 2, &mu, &nid));
    PQ_TRY(pq_grad_infer(c, nid));
    PQ_TRY(pq_gop2(c, PQ_OP_SUB, x, mu, xc));
    PQ_TRY(pq_gop2(c, PQ_OP_MUL, *xc, *xc, &t));
    in[0] = t;
    PQ_TRY(pq_gb(c, PQ_OP_REDUCE_MEAN, in, 2, var, &nid));
    return pq_grad_infer(c, nid);
}

/* Normalisation with den = sqrt(var + eps) over the axes axv of x: xc, r = 1 / den, xhat = xc r
 * and dx from gs. */
static enum pq_status pq_gnorm_eps(pq_grad_ctx *c, uint32_t x, uint32_t axv, double eps,
                                   uint32_t gs, uint32_t *xhat, uint32_t *dx) {
    uint32_t xc, var, e, t, den, rv, k;
    PQ_TRY(pq_gnorm_stats(c, x, axv, &xc, &var));
    PQ_TRY(pq_gscalar(c, x, eps, &e));
    PQ_TRY(pq_gop2(c, PQ_OP_ADD, var, e, &t));
    PQ_TRY(pq_gop1(c, PQ_OP_SQRT, t, &den));
    PQ_TRY(pq_gop1(c, PQ_OP_RECIPROCAL, den, &rv));
    PQ_TRY(pq_gop2(c, PQ_OP_MUL, xc, rv, xhat));
    if (!dx) return PQ_OK;
    PQ_TRY(pq_gop2(c, PQ_OP_MUL, rv, rv, &t));
    PQ_TRY(pq_gop2(c, PQ_OP_MUL, t, rv, &k));
    return pq_gnorm_dx(c, xc, rv, k, gs, axv, dx);
}

/* y = LayerNormalization(x, scale, bias?) over axes [axis, rank) with epsilon:
 * xhat = (x - mean) / sqrt(var + eps); dx = pq_gnorm_dx with gs = g scale; dscale = g xhat and
 * dbias = g, each summed over the axes scale / bias were broadcast along. The Mean and InvStdDev
 * outputs are not differentiated (UNSUPPORTED when the loss depends on them). */
enum pq_status pq_grad_layer_norm(pq_grad_ctx *c) {
    const pq_node *n = PQ_NODE;
    for (uint32_t k = 1; k < n->n_outputs; k++)
        if (c->out_grad[k] != PQ_NONE)
            return pq_error_set(c->err, PQ_ERR_UNSUPPORTED,
                                "output %u (Mean / InvStdDev) is on the gradient path", k);
    uint32_t x = PQ_IN(0), s = PQ_IN(1), b = PQ_IN(2);
    int r = c->g->values[x].shape.rank;
    if (r < 1) return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "input of unknown rank");
    int64_t axis = pq_node_attr_int(n, "axis", -1);
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r) return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "bad axis");
    double eps = pq_node_attr_float(n, "epsilon", 1e-5f);
    int64_t axes[PQ_MAX_RANK];
    for (int i = (int)axis; i < r; i++)
        axes[i - axis] = i;
    uint32_t axv, gs, xhat, t;
    PQ_TRY(pq_gints(c, axes, r - (int)axis, &axv));
    PQ_TRY(pq_gop2(c, PQ_OP_MUL, PQ_G0, s, &gs));
    PQ_TRY(pq_gnorm_eps(c, x, axv, eps, gs, &xhat, c->need[0] ? &c->in_grad[0] : NULL));
    if (c->need[1]) {
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, PQ_G0, xhat, &t));
        PQ_TRY(pq_gunbroadcast(c, t, s, &c->in_grad[1]));
    }
    if (b != PQ_NONE && c->need[2]) PQ_TRY(pq_gunbroadcast(c, PQ_G0, b, &c->in_grad[2]));
    return PQ_OK;
}

/* v [C] viewed as [C, 1, ...] (rank r - 1 trailing dims) to broadcast over x [N, C, ...]. */
static enum pq_status pq_gchannel(pq_grad_ctx *c, uint32_t v, int64_t C, int r, uint32_t *out) {
    int64_t d[PQ_MAX_RANK];
    d[0] = C;
    for (int i = 1; i < r - 1; i++)
        d[i] = 1;
    return pq_greshape(c, v, d, r - 1, out);
}

/* y = InstanceNormalization(x [N, C, S...], scale [C], bias [C]): per (n, c) over the spatial axes
 * as LayerNorm; dscale = sum(g xhat), dbias = sum(g) over every axis but 1. */
enum pq_status pq_grad_instance_norm(pq_grad_ctx *c) {
    uint32_t x = PQ_IN(0), s = PQ_IN(1);
    const pq_shape *xs = &c->g->values[x].shape;
    int r = xs->rank;
    if (r < 3 || !pq_dim_known(xs->dims[1]))
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "needs rank >= 3 and known channels");
    double eps = pq_node_attr_float(PQ_NODE, "epsilon", 1e-5f);
    int64_t axes[PQ_MAX_RANK];
    for (int i = 2; i < r; i++)
        axes[i - 2] = i;
    uint32_t axv, sr, gs, xhat, t;
    PQ_TRY(pq_gints(c, axes, r - 2, &axv));
    PQ_TRY(pq_gchannel(c, s, xs->dims[1].size, r, &sr));
    PQ_TRY(pq_gop2(c, PQ_OP_MUL, PQ_G0, sr, &gs));
    PQ_TRY(pq_gnorm_eps(c, x, axv, eps, gs, &xhat, c->need[0] ? &c->in_grad[0] : NULL));
    if (c->need[1]) {
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, PQ_G0, xhat, &t));
        PQ_TRY(pq_gbias(c, t, r, &c->in_grad[1]));
    }
    if (c->need[2]) PQ_TRY(pq_gbias(c, PQ_G0, r, &c->in_grad[2]));
    return PQ_OK;
}

/* y = MeanVarianceNormalization(x) over axes (default [0, 2, 3]): y = xc / (sqrt(var) + 1e-9) as
 * the reference kernel; dx = pq_gnorm_dx with k = r^2 / sqrt(var). */
enum pq_status pq_grad_mvn(pq_grad_ctx *c) {
    uint32_t x = PQ_IN(0);
    int r = c->g->values[x].shape.rank;
    if (r < 1) return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "input of unknown rank");
    const pq_attr *aa = pq_node_attr(PQ_NODE, "axes");
    int64_t axes[PQ_MAX_RANK] = {0, 2, 3};
    int na = 3;
    if (aa) {
        if (aa->type != PQ_ATTR_INTS || aa->u.ints.n > (uint32_t)r)
            return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "bad axes");
        na = (int)aa->u.ints.n;
        for (int i = 0; i < na; i++)
            axes[i] = aa->u.ints.v[i] < 0 ? aa->u.ints.v[i] + r : aa->u.ints.v[i];
    }
    uint32_t axv, xc, var, sd, e, den, rv, t, k;
    PQ_TRY(pq_gints(c, axes, na, &axv));
    PQ_TRY(pq_gnorm_stats(c, x, axv, &xc, &var));
    PQ_TRY(pq_gop1(c, PQ_OP_SQRT, var, &sd));
    PQ_TRY(pq_gscalar(c, x, 1e-9, &e));
    PQ_TRY(pq_gop2(c, PQ_OP_ADD, sd, e, &den));
    PQ_TRY(pq_gop1(c, PQ_OP_RECIPROCAL, den, &rv));
    PQ_TRY(pq_gop2(c, PQ_OP_MUL, rv, rv, &t));
    PQ_TRY(pq_gop2(c, PQ_OP_DIV, t, sd, &k));
    return pq_gnorm_dx(c, xc, rv, k, PQ_G0, axv, &c->in_grad[0]);
}

/* y = BatchNormalization(x, scale, bias, mean, var) in inference form (frozen statistics), per
 * channel s' = scale / sqrt(var + eps): dx = g s'; dscale = sum(g (x - mean)) / sqrt(var + eps);
 * dbias = sum(g); dmean = -sum(g) s'; dvar = -sum(g (x - mean)) scale / 2 (var + eps)^(-3/2)
 * (sums over every axis but 1): the exact derivatives of the inference formula. */
enum pq_status pq_grad_batch_norm(pq_grad_ctx *c) {
    const pq_node *n = PQ_NODE;
    if (pq_node_attr_int(n, "training_mode", 0) != 0)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "training_mode = 1");
    for (uint32_t k = 1; k < n->n_outputs; k++)
        if (c->out_grad[k] != PQ_NONE)
            return pq_error_set(c->err, PQ_ERR_UNSUPPORTED,
                                "output %u (running statistics) is on the gradient path", k);
    uint32_t x = PQ_IN(0), s = PQ_IN(1), mean = PQ_IN(3), var = PQ_IN(4);
    const pq_shape *xs = &c->g->values[x].shape;
    int r = xs->rank;
    if (r < 2 || !pq_dim_known(xs->dims[1]))
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "needs rank >= 2 and known channels");
    int64_t C = xs->dims[1].size;
    double eps = pq_node_attr_float(n, "epsilon", 1e-5f);
    uint32_t e, t, inv, sp, spr, mr, xc, sg = PQ_NONE, sgx = PQ_NONE, u;
    PQ_TRY(pq_gscalar(c, var, eps, &e));
    PQ_TRY(pq_gop2(c, PQ_OP_ADD, var, e, &t));
    PQ_TRY(pq_gop1(c, PQ_OP_SQRT, t, &u));
    PQ_TRY(pq_gop1(c, PQ_OP_RECIPROCAL, u, &inv)); /* [C] */
    PQ_TRY(pq_gop2(c, PQ_OP_MUL, s, inv, &sp));
    if (c->need[0]) {
        PQ_TRY(pq_gchannel(c, sp, C, r, &spr));
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, PQ_G0, spr, &c->in_grad[0]));
    }
    if (c->need[2] || c->need[3]) PQ_TRY(pq_gbias(c, PQ_G0, r, &sg));
    if (c->need[1] || c->need[4]) {
        PQ_TRY(pq_gchannel(c, mean, C, r, &mr));
        PQ_TRY(pq_gop2(c, PQ_OP_SUB, x, mr, &xc));
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, PQ_G0, xc, &t));
        PQ_TRY(pq_gbias(c, t, r, &sgx));
    }
    if (c->need[1]) PQ_TRY(pq_gop2(c, PQ_OP_MUL, sgx, inv, &c->in_grad[1]));
    if (c->need[2]) c->in_grad[2] = sg;
    if (c->need[3]) {
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, sg, sp, &t));
        PQ_TRY(pq_gop1(c, PQ_OP_NEG, t, &c->in_grad[3]));
    }
    if (c->need[4]) { /* -sgx scale inv^3 / 2 */
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, inv, inv, &t));
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, t, sp, &u));
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, sgx, u, &t));
        PQ_TRY(pq_gscale(c, t, -0.5, &c->in_grad[4]));
    }
    return PQ_OK;
}

/* y = LpNormalization(x, axis, p): p = 2: dx = (g - y sum(g y)) / ||x||_2; p = 1:
 * dx = (g - sign(x) sum(g y)) / ||x||_1 (sums over the axis; a zero slice gives NaN). */
enum pq_status pq_grad_lp_norm(pq_grad_ctx *c) {
    const pq_node *n = PQ_NODE;
    uint32_t x = PQ_IN(0), y = PQ_OUT(0), in[2], nrm, t, s, u, w, nid;
    int r = c->g->values[x].shape.rank;
    int64_t p = pq_node_attr_int(n, "p", 2), axis = pq_node_attr_int(n, "axis", -1);
    if (r < 1 || (p != 1 && p != 2))
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "p = %lld or unknown rank", (long long)p);
    if (axis < 0) axis += r;
    PQ_TRY(pq_gints(c, &axis, 1, &in[1]));
    in[0] = x;
    PQ_TRY(pq_gb(c, p == 2 ? PQ_OP_REDUCE_L2 : PQ_OP_REDUCE_L1, in, 2, &nrm, &nid));
    PQ_TRY(pq_grad_infer(c, nid));
    PQ_TRY(pq_gop2(c, PQ_OP_MUL, PQ_G0, y, &t));
    PQ_TRY(pq_greduce_sum(c, t, &axis, 1, true, &s));
    uint32_t dir = y;
    if (p == 1) PQ_TRY(pq_gop1(c, PQ_OP_SIGN, x, &dir));
    PQ_TRY(pq_gop2(c, PQ_OP_MUL, dir, s, &u));
    PQ_TRY(pq_gop2(c, PQ_OP_SUB, PQ_G0, u, &w));
    return pq_gop2(c, PQ_OP_DIV, w, nrm, &c->in_grad[0]);
}

/* Sum over a window of `size` channels: out[c] = sum_{t < size} v[c - front + t] (zero outside),
 * as Pad(front, back) on axis 1 and `size` Slices summed. */
static enum pq_status pq_gchan_window(pq_grad_ctx *c, uint32_t v, int r, int64_t C, int64_t size,
                                      int64_t front, uint32_t *out) {
    int64_t b[PQ_MAX_RANK] = {0}, e[PQ_MAX_RANK] = {0};
    b[1] = front;
    e[1] = size - 1 - front;
    int64_t pads[2 * PQ_MAX_RANK];
    for (int i = 0; i < r; i++) {
        pads[i] = b[i];
        pads[r + i] = e[i];
    }
    uint32_t pv, vp;
    PQ_TRY(pq_gints(c, pads, 2 * r, &pv));
    PQ_TRY(pq_gop2(c, PQ_OP_PAD, v, pv, &vp));
    if (size > 64) return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "size %lld", (long long)size);
    uint32_t parts[64];
    for (int64_t t = 0; t < size; t++) {
        int64_t st = t, en = t + C, ax = 1;
        PQ_TRY(pq_gslice(c, vp, &st, &en, &ax, 1, &parts[t]));
    }
    if (size == 1) {
        *out = parts[0];
        return PQ_OK;
    }
    return pq_gop(c, PQ_OP_SUM, parts, (uint32_t)size, out);
}

/* y = LRN(x): y = x d^-beta, d = bias + alpha / size * W(x^2) with W the channel window
 * [c - floor((size-1)/2), c + ceil((size-1)/2)]:
 * dx = g d^-beta - (2 alpha beta / size) x W^T(g y / d), W^T the mirrored window. */
enum pq_status pq_grad_lrn(pq_grad_ctx *c) {
    const pq_node *n = PQ_NODE;
    uint32_t x = PQ_IN(0), y = PQ_OUT(0);
    const pq_shape *xs = &c->g->values[x].shape;
    int r = xs->rank;
    if (r < 3 || !pq_dim_known(xs->dims[1]))
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "needs rank >= 3 and known channels");
    int64_t C = xs->dims[1].size, size = pq_node_attr_int(n, "size", 1);
    double alpha = pq_node_attr_float(n, "alpha", 1e-4f),
           beta = pq_node_attr_float(n, "beta", 0.75f), bias = pq_node_attr_float(n, "bias", 1.0f);
    if (size < 1) return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "size < 1");
    int64_t lo = (size - 1) / 2, hi = size - 1 - lo;
    uint32_t x2, w, ws, k, d, nb, p, t1, gy, u, wt, t, t2;
    PQ_TRY(pq_gop2(c, PQ_OP_MUL, x, x, &x2));
    PQ_TRY(pq_gchan_window(c, x2, r, C, size, lo, &w));
    PQ_TRY(pq_gscale(c, w, alpha / (double)size, &ws));
    PQ_TRY(pq_gscalar(c, x, bias, &k));
    PQ_TRY(pq_gop2(c, PQ_OP_ADD, ws, k, &d));
    PQ_TRY(pq_gscalar(c, x, -beta, &nb));
    PQ_TRY(pq_gop2(c, PQ_OP_POW, d, nb, &p));
    PQ_TRY(pq_gop2(c, PQ_OP_MUL, PQ_G0, p, &t1));
    PQ_TRY(pq_gop2(c, PQ_OP_MUL, PQ_G0, y, &gy));
    PQ_TRY(pq_gop2(c, PQ_OP_DIV, gy, d, &u));
    PQ_TRY(pq_gchan_window(c, u, r, C, size, hi, &wt));
    PQ_TRY(pq_gop2(c, PQ_OP_MUL, x, wt, &t));
    PQ_TRY(pq_gscale(c, t, 2.0 * alpha * beta / (double)size, &t2));
    return pq_gop2(c, PQ_OP_SUB, t1, t2, &c->in_grad[0]);
}

/* Hadamard is orthogonal (a block-diagonal normalised Hadamard matrix times random signs): its
 * transpose is its inverse, so dx = Hadamard(g) with the same attributes and inverse flipped. */
enum pq_status pq_grad_hadamard(pq_grad_ctx *c) {
    uint32_t g0 = PQ_G0, nid;
    PQ_TRY(pq_gb(c, PQ_OP_HADAMARD, &g0, 1, &c->in_grad[0], &nid));
    PQ_TRY(pq_gcopy_attrs(c, c->node, nid));
    bool inv = pq_node_attr_int(PQ_NODE, "inverse", 0) != 0;
    PQ_TRY(pq_node_set_int(c->g, nid, "inverse", inv ? 0 : 1, c->err));
    return pq_grad_infer(c, nid);
}
