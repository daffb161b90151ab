/* The gradient-rule table of the autodiff pass (passes/grad.h): per op, the backward nodes that
 * turn dL/d(outputs) into dL/d(inputs), built from existing ops (MatMul + Transpose, ReduceSum +
 * Reshape to undo broadcasting, Where + Greater for Relu, ...). */
#include "grad.h"

#include <stdio.h>
#include <string.h>

#include "ir/edit.h"
#include "ir/infer_train.h"

/* ---- building blocks ---- */

/* Adds op(in[0..n)) named from the rule's hint; attributes are set by the caller, who then calls
 * pq_grad_infer. */
static enum pq_status pq_gb(pq_grad_ctx *c, enum pq_op op, const uint32_t *in, uint32_t n,
                            uint32_t *v, uint32_t *nid) {
    return pq_build(c->g, op, c->hint, in, n, v, nid, c->err);
}

static enum pq_status pq_grad_infer(pq_grad_ctx *c, uint32_t nid) {
    return pq_infer_node(c->g, nid, c->err);
}

/* op(in[0..n)) without attributes, typed. */
static enum pq_status pq_gop(pq_grad_ctx *c, enum pq_op op, const uint32_t *in, uint32_t n,
                             uint32_t *v) {
    uint32_t nid;
    PQ_TRY(pq_gb(c, op, in, n, v, &nid));
    return pq_grad_infer(c, nid);
}

static enum pq_status pq_gop1(pq_grad_ctx *c, enum pq_op op, uint32_t a, uint32_t *v) {
    return pq_gop(c, op, &a, 1, v);
}

static enum pq_status pq_gop2(pq_grad_ctx *c, enum pq_op op, uint32_t a, uint32_t b, uint32_t *v) {
    uint32_t in[2] = {a, b};
    return pq_gop(c, op, in, 2, v);
}

enum pq_status pq_grad_fill(pq_graph *g, const char *hint, enum pq_dtype dtype, int rank,
                            const int64_t *dims, double v, uint32_t *out, pq_error *err) {
    pq_tensor *t = pq_tensor_create(dtype, rank, dims, err);
    if (!t) return err->status ? err->status : PQ_ERR_NOMEM;
    int64_t n = pq_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        pq_dtype_store(dtype, t->data, (size_t)i, v);
    return pq_graph_add_constant(g, hint, t, out, err);
}

enum pq_status pq_grad_add(pq_graph *g, const char *hint, uint32_t a, uint32_t b, uint32_t *out,
                           pq_error *err) {
    uint32_t in[2] = {a, b}, nid;
    PQ_TRY(pq_build(g, PQ_OP_ADD, hint, in, 2, out, &nid, err));
    return pq_infer_node(g, nid, err);
}

/* A rank-0 constant of like's dtype holding v. */
static enum pq_status pq_gscalar(pq_grad_ctx *c, uint32_t like, double v, uint32_t *out) {
    return pq_grad_fill(c->g, c->hint, c->g->values[like].dtype, 0, NULL, v, out, c->err);
}

static enum pq_status pq_gints(pq_grad_ctx *c, const int64_t *v, int n, uint32_t *out) {
    int64_t d = n;
    return pq_build_const_i64(c->g, c->hint, 1, &d, v, out, c->err);
}

/* ReduceSum(x, axes[0..n)) with keepdims. */
static enum pq_status pq_greduce_sum(pq_grad_ctx *c, uint32_t x, const int64_t *axes, int n,
                                     bool keep, uint32_t *out) {
    uint32_t ax, nid;
    PQ_TRY(pq_gints(c, axes, n, &ax));
    uint32_t in[2] = {x, ax};
    PQ_TRY(pq_gb(c, PQ_OP_REDUCE_SUM, in, 2, out, &nid));
    PQ_TRY(pq_node_set_int(c->g, nid, "keepdims", keep ? 1 : 0, c->err));
    return pq_grad_infer(c, nid);
}

/* The shape of value like as an i64 vector: a constant when static (so the result types
 * statically at once), else Shape(like). */
static enum pq_status pq_gshape_of(pq_grad_ctx *c, uint32_t like, uint32_t *out) {
    int64_t dims[PQ_MAX_RANK];
    const pq_shape *s = &c->g->values[like].shape;
    if (pq_shape_is_static(s, dims) && s->rank > 0) return pq_gints(c, dims, s->rank, out);
    return pq_gop1(c, PQ_OP_SHAPE, like, out);
}

/* Reshape(x, shape of like): x re-viewed with like's (possibly symbolic) shape. */
static enum pq_status pq_greshape_like(pq_grad_ctx *c, uint32_t x, uint32_t like, uint32_t *out) {
    uint32_t shp;
    PQ_TRY(pq_gshape_of(c, like, &shp));
    return pq_gop2(c, PQ_OP_RESHAPE, x, shp, out);
}

static bool pq_shape_same(const pq_shape *a, const pq_shape *b) {
    if (a->rank < 0 || a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (!pq_dim_known(a->dims[i]) && !a->dims[i].sym) return false;
    for (int i = 0; i < a->rank; i++)
        if (!pq_dim_equal(a->dims[i], b->dims[i])) return false;
    return true;
}

/* dL/d(operand) of a broadcasting op from gradient gv of the broadcast result: sums over the
 * axes the operand was broadcast along (leading axes, and size-1 axes of the operand) and views
 * the sum with the operand's shape. UNSUPPORTED when the shapes do not tell which axes were
 * broadcast (unknown dims). */
static enum pq_status pq_gunbroadcast(pq_grad_ctx *c, uint32_t gv, uint32_t target, uint32_t *out) {
    pq_shape gs = c->g->values[gv].shape, ts = c->g->values[target].shape;
    if (pq_shape_same(&gs, &ts)) {
        *out = gv;
        return PQ_OK;
    }
    if (gs.rank < 0 || ts.rank < 0 || ts.rank > gs.rank)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED,
                            "cannot undo broadcasting of '%s' (rank %d) from rank %d",
                            c->g->values[target].name, ts.rank, gs.rank);
    int d = gs.rank - ts.rank, n = 0;
    int64_t axes[PQ_MAX_RANK];
    for (int i = 0; i < gs.rank; i++) {
        if (i < d) {
            axes[n++] = i;
            continue;
        }
        pq_dim td = ts.dims[i - d], gd = gs.dims[i];
        if (pq_dim_equal(td, gd) && (pq_dim_known(td) || td.sym)) continue;
        if (td.size == 1) {
            axes[n++] = i;
            continue;
        }
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED,
                            "cannot tell whether '%s' was broadcast along axis %d (unknown dims)",
                            c->g->values[target].name, i - d);
    }
    uint32_t r = gv;
    if (n) PQ_TRY(pq_greduce_sum(c, gv, axes, n, true, &r));
    if (d == 0) {
        *out = r;
        return PQ_OK;
    }
    return pq_greshape_like(c, r, target, out);
}

/* Transpose swapping the last two axes of x (rank >= 2). */
static enum pq_status pq_gswap_last2(pq_grad_ctx *c, uint32_t x, uint32_t *out) {
    int r = c->g->values[x].shape.rank;
    int64_t perm[PQ_MAX_RANK];
    for (int i = 0; i < r; i++)
        perm[i] = i;
    perm[r - 1] = r - 2;
    perm[r - 2] = r - 1;
    uint32_t nid;
    PQ_TRY(pq_gb(c, PQ_OP_TRANSPOSE, &x, 1, out, &nid));
    PQ_TRY(pq_node_set_ints(c->g, nid, "perm", perm, (uint32_t)r, c->err));
    return pq_grad_infer(c, nid);
}

#define PQ_NODE (&c->g->nodes[c->node])
#define PQ_IN(i) pq_node_input(PQ_NODE, i)
#define PQ_OUT(i) pq_node_output(PQ_NODE, i)
#define PQ_G0 (c->out_grad[0])

/* ---- elementwise ---- */

static enum pq_status pq_grad_add_rule(pq_grad_ctx *c) {
    uint32_t a = PQ_IN(0), b = PQ_IN(1);
    if (c->need[0]) PQ_TRY(pq_gunbroadcast(c, PQ_G0, a, &c->in_grad[0]));
    if (c->need[1]) PQ_TRY(pq_gunbroadcast(c, PQ_G0, b, &c->in_grad[1]));
    return PQ_OK;
}

static enum pq_status pq_grad_sub(pq_grad_ctx *c) {
    uint32_t a = PQ_IN(0), b = PQ_IN(1), t;
    if (c->need[0]) PQ_TRY(pq_gunbroadcast(c, PQ_G0, a, &c->in_grad[0]));
    if (c->need[1]) {
        PQ_TRY(pq_gop1(c, PQ_OP_NEG, PQ_G0, &t));
        PQ_TRY(pq_gunbroadcast(c, t, b, &c->in_grad[1]));
    }
    return PQ_OK;
}

static enum pq_status pq_grad_mul(pq_grad_ctx *c) {
    uint32_t a = PQ_IN(0), b = PQ_IN(1), t;
    if (c->need[0]) {
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, PQ_G0, b, &t));
        PQ_TRY(pq_gunbroadcast(c, t, a, &c->in_grad[0]));
    }
    if (c->need[1]) {
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, PQ_G0, a, &t));
        PQ_TRY(pq_gunbroadcast(c, t, b, &c->in_grad[1]));
    }
    return PQ_OK;
}

/* y = a / b: da = g / b, db = -(g * y) / b. */
static enum pq_status pq_grad_div(pq_grad_ctx *c) {
    uint32_t a = PQ_IN(0), b = PQ_IN(1), y = PQ_OUT(0), t, u;
    if (c->need[0]) {
        PQ_TRY(pq_gop2(c, PQ_OP_DIV, PQ_G0, b, &t));
        PQ_TRY(pq_gunbroadcast(c, t, a, &c->in_grad[0]));
    }
    if (c->need[1]) {
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, PQ_G0, y, &t));
        PQ_TRY(pq_gop2(c, PQ_OP_DIV, t, b, &u));
        PQ_TRY(pq_gop1(c, PQ_OP_NEG, u, &t));
        PQ_TRY(pq_gunbroadcast(c, t, b, &c->in_grad[1]));
    }
    return PQ_OK;
}

static enum pq_status pq_grad_identity(pq_grad_ctx *c) {
    c->in_grad[0] = PQ_G0;
    return PQ_OK;
}

static enum pq_status pq_grad_neg(pq_grad_ctx *c) {
    return pq_gop1(c, PQ_OP_NEG, PQ_G0, &c->in_grad[0]);
}

/* y = exp(x): dx = g * y. */
static enum pq_status pq_grad_exp(pq_grad_ctx *c) {
    return pq_gop2(c, PQ_OP_MUL, PQ_G0, PQ_OUT(0), &c->in_grad[0]);
}

/* y = log(x): dx = g / x. */
static enum pq_status pq_grad_log(pq_grad_ctx *c) {
    return pq_gop2(c, PQ_OP_DIV, PQ_G0, PQ_IN(0), &c->in_grad[0]);
}

/* y = sqrt(x): dx = g / (2 y). */
static enum pq_status pq_grad_sqrt(pq_grad_ctx *c) {
    uint32_t two, t, y = PQ_OUT(0);
    PQ_TRY(pq_gscalar(c, y, 2.0, &two));
    PQ_TRY(pq_gop2(c, PQ_OP_MUL, y, two, &t));
    return pq_gop2(c, PQ_OP_DIV, PQ_G0, t, &c->in_grad[0]);
}

/* dx = Where(x > 0, g, 0). */
static enum pq_status pq_grad_relu(pq_grad_ctx *c) {
    uint32_t x = PQ_IN(0), zero, mask;
    PQ_TRY(pq_gscalar(c, x, 0.0, &zero));
    PQ_TRY(pq_gop2(c, PQ_OP_GREATER, x, zero, &mask));
    uint32_t in[3] = {mask, PQ_G0, zero};
    return pq_gop(c, PQ_OP_WHERE, in, 3, &c->in_grad[0]);
}

/* y = sigmoid(x): dx = g * y * (1 - y). */
static enum pq_status pq_grad_sigmoid(pq_grad_ctx *c) {
    uint32_t y = PQ_OUT(0), one, t, u;
    PQ_TRY(pq_gscalar(c, y, 1.0, &one));
    PQ_TRY(pq_gop2(c, PQ_OP_SUB, one, y, &t));
    PQ_TRY(pq_gop2(c, PQ_OP_MUL, y, t, &u));
    return pq_gop2(c, PQ_OP_MUL, PQ_G0, u, &c->in_grad[0]);
}

/* y = tanh(x): dx = g * (1 - y * y). */
static enum pq_status pq_grad_tanh(pq_grad_ctx *c) {
    uint32_t y = PQ_OUT(0), one, t, u;
    PQ_TRY(pq_gscalar(c, y, 1.0, &one));
    PQ_TRY(pq_gop2(c, PQ_OP_MUL, y, y, &t));
    PQ_TRY(pq_gop2(c, PQ_OP_SUB, one, t, &u));
    return pq_gop2(c, PQ_OP_MUL, PQ_G0, u, &c->in_grad[0]);
}

/* ---- Softmax / LogSoftmax over one axis ---- */

static enum pq_status pq_grad_softmax_axis(pq_grad_ctx *c, int64_t *axis) {
    const pq_node *n = PQ_NODE;
    int rank = c->g->values[PQ_IN(0)].shape.rank;
    if (rank < 1)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "input rank %d (need a known rank >= 1)",
                            rank);
    bool coerce = pq_node_attr_int(n, "coerce_2d", 0) != 0;
    int64_t a = pq_node_attr_int(n, "axis", coerce ? 1 : -1);
    if (a < 0) a += rank;
    if (a < 0 || a >= rank)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "axis out of range for rank %d", rank);
    if (coerce && a != rank - 1)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED,
                            "legacy (coerce_2d) softmax over axes %lld.. of rank %d", (long long)a,
                            rank);
    *axis = a;
    return PQ_OK;
}

/* y = softmax(x): dx = y * (g - sum(g * y, axis)). */
static enum pq_status pq_grad_softmax(pq_grad_ctx *c) {
    int64_t axis;
    PQ_TRY(pq_grad_softmax_axis(c, &axis));
    uint32_t y = PQ_OUT(0), gy, s, d;
    PQ_TRY(pq_gop2(c, PQ_OP_MUL, PQ_G0, y, &gy));
    PQ_TRY(pq_greduce_sum(c, gy, &axis, 1, true, &s));
    PQ_TRY(pq_gop2(c, PQ_OP_SUB, PQ_G0, s, &d));
    return pq_gop2(c, PQ_OP_MUL, y, d, &c->in_grad[0]);
}

/* y = logsoftmax(x): dx = g - exp(y) * sum(g, axis). */
static enum pq_status pq_grad_log_softmax(pq_grad_ctx *c) {
    int64_t axis;
    PQ_TRY(pq_grad_softmax_axis(c, &axis));
    uint32_t y = PQ_OUT(0), p, s, t;
    PQ_TRY(pq_gop1(c, PQ_OP_EXP, y, &p));
    PQ_TRY(pq_greduce_sum(c, PQ_G0, &axis, 1, true, &s));
    PQ_TRY(pq_gop2(c, PQ_OP_MUL, p, s, &t));
    return pq_gop2(c, PQ_OP_SUB, PQ_G0, t, &c->in_grad[0]);
}

/* ---- linear algebra ---- */

/* y = a @ b (rank >= 2 each, batch dims broadcast): da = g @ b^T, db = a^T @ g, each summed over
 * the batch axes it was broadcast along. */
static enum pq_status pq_grad_matmul(pq_grad_ctx *c) {
    uint32_t a = PQ_IN(0), b = PQ_IN(1), t, u;
    int ra = c->g->values[a].shape.rank, rb = c->g->values[b].shape.rank;
    if (ra < 2 || rb < 2)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED,
                            "operands of rank %d and %d (1-D operands have no rule yet)", ra, rb);
    if (c->need[0]) {
        PQ_TRY(pq_gswap_last2(c, b, &t));
        PQ_TRY(pq_gop2(c, PQ_OP_MATMUL, PQ_G0, t, &u));
        PQ_TRY(pq_gunbroadcast(c, u, a, &c->in_grad[0]));
    }
    if (c->need[1]) {
        PQ_TRY(pq_gswap_last2(c, a, &t));
        PQ_TRY(pq_gop2(c, PQ_OP_MATMUL, t, PQ_G0, &u));
        PQ_TRY(pq_gunbroadcast(c, u, b, &c->in_grad[1]));
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
static enum pq_status pq_grad_gemm(pq_grad_ctx *c) {
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
        uint32_t t = g0, s;
        if (beta != 1.0f) {
            PQ_TRY(pq_gscalar(c, g0, beta, &s));
            PQ_TRY(pq_gop2(c, PQ_OP_MUL, g0, s, &t));
        }
        PQ_TRY(pq_gunbroadcast(c, t, cc, &c->in_grad[2]));
    }
    return PQ_OK;
}

/* ---- shape and data movement ---- */

/* Reshape, Flatten, Squeeze, Unsqueeze: dx = Reshape(g, shape of x). */
static enum pq_status pq_grad_reshape(pq_grad_ctx *c) {
    return pq_greshape_like(c, PQ_G0, PQ_IN(0), &c->in_grad[0]);
}

/* dx = Transpose(g, inverse perm). */
static enum pq_status pq_grad_transpose(pq_grad_ctx *c) {
    const pq_node *n = PQ_NODE;
    int r = c->g->values[PQ_IN(0)].shape.rank;
    if (r < 0) return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "input of unknown rank");
    int64_t perm[PQ_MAX_RANK], inv[PQ_MAX_RANK];
    const pq_attr *pa = pq_node_attr(n, "perm");
    if (pa && pa->type == PQ_ATTR_INTS && pa->u.ints.n == (uint32_t)r)
        memcpy(perm, pa->u.ints.v, sizeof(int64_t) * (size_t)r);
    else if (!pa)
        for (int i = 0; i < r; i++)
            perm[i] = r - 1 - i;
    else
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "perm does not match rank %d", r);
    for (int i = 0; i < r; i++) {
        int64_t p = perm[i] < 0 ? perm[i] + r : perm[i];
        if (p < 0 || p >= r) return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "bad perm");
        inv[p] = i;
    }
    uint32_t nid;
    PQ_TRY(pq_gb(c, PQ_OP_TRANSPOSE, &c->out_grad[0], 1, &c->in_grad[0], &nid));
    PQ_TRY(pq_node_set_ints(c->g, nid, "perm", inv, (uint32_t)r, c->err));
    return pq_grad_infer(c, nid);
}

/* ---- reductions ---- */

/* ReduceSum / ReduceMean (axes as constant input 1): dx = Expand(g with kept dims, shape of x),
 * divided by the number of reduced elements for the mean. */
static enum pq_status pq_grad_reduce(pq_grad_ctx *c) {
    const pq_node *n = PQ_NODE;
    bool mean = n->op == PQ_OP_REDUCE_MEAN;
    bool keep = pq_node_attr_int(n, "keepdims", 1) != 0;
    bool noop = pq_node_attr_int(n, "noop_with_empty_axes", 0) != 0;
    uint32_t x = PQ_IN(0), axv = PQ_IN(1);
    const pq_shape xs = c->g->values[x].shape;
    if (xs.rank < 0) return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "input of unknown rank");
    int64_t axes[PQ_MAX_RANK];
    int n_axes = 0;
    if (axv != PQ_NONE) {
        const pq_tensor *t = pq_value_constant(c->g, axv);
        if (!t || t->dtype != PQ_DTYPE_I64 || pq_tensor_numel(t) > xs.rank)
            return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "axes are not a constant i64 list");
        n_axes = (int)pq_tensor_numel(t);
        for (int k = 0; k < n_axes; k++) {
            int64_t a = ((const int64_t *)t->data)[k];
            axes[k] = a < 0 ? a + xs.rank : a;
        }
    }
    if (n_axes == 0) {
        if (noop) {
            c->in_grad[0] = PQ_G0;
            return PQ_OK;
        }
        for (int i = 0; i < xs.rank; i++)
            axes[n_axes++] = i;
    }
    /* sort axes (Unsqueeze wants them in output order; any order is accepted, sorted is tidy) */
    for (int i = 1; i < n_axes; i++)
        for (int j = i; j > 0 && axes[j - 1] > axes[j]; j--) {
            int64_t t = axes[j];
            axes[j] = axes[j - 1];
            axes[j - 1] = t;
        }
    uint32_t gk = PQ_G0, t, shp;
    if (!keep && xs.rank > 0) {
        uint32_t ax;
        PQ_TRY(pq_gints(c, axes, n_axes, &ax));
        PQ_TRY(pq_gop2(c, PQ_OP_UNSQUEEZE, PQ_G0, ax, &gk));
    }
    if (mean) {
        int64_t count = 1;
        for (int k = 0; k < n_axes; k++) {
            pq_dim d = xs.dims[axes[k]];
            if (!pq_dim_known(d))
                return pq_error_set(c->err, PQ_ERR_UNSUPPORTED,
                                    "mean over axis %lld of unknown size", (long long)axes[k]);
            count *= d.size;
        }
        uint32_t s;
        PQ_TRY(pq_gscalar(c, x, count ? 1.0 / (double)count : 0.0, &s));
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, gk, s, &t));
        gk = t;
    }
    PQ_TRY(pq_gshape_of(c, x, &shp));
    return pq_gop2(c, PQ_OP_EXPAND, gk, shp, &c->in_grad[0]);
}

/* ---- convolution ---- */

/* Reads ints attribute name (n entries, default def) into v; false when present with another
 * length. */
static bool pq_gconv_ints(const pq_node *n, const char *name, int cnt, int64_t def, int64_t *v) {
    const pq_attr *a = pq_node_attr(n, name);
    for (int i = 0; i < cnt; i++)
        v[i] = def;
    if (!a) return true;
    if (a->type != PQ_ATTR_INTS || a->u.ints.n != (uint32_t)cnt) return false;
    for (int i = 0; i < cnt; i++)
        v[i] = a->u.ints.v[i];
    return true;
}

/* y = Conv(x [N, C, S...], w [O, C/group, K...], b? [O]) with explicit pads (auto_pad NOTSET):
 * dx = ConvTranspose(g, w) with the same strides, pads, dilations and group, output_padding
 * making it x's size; dw (group 1) = Conv(x^T [C, N, S...], g^T [O, N, Y...]) with strides and
 * dilations swapped, the same pads, transposed back to [O, C, ...] and sliced to the kernel size;
 * db = ReduceSum(g) over all axes but 1. */
static enum pq_status pq_grad_conv(pq_grad_ctx *c) {
    const pq_node *n = PQ_NODE;
    uint32_t x = PQ_IN(0), w = PQ_IN(1), b = PQ_IN(2), y = PQ_OUT(0);
    const pq_shape *xs = &c->g->values[x].shape, *ws = &c->g->values[w].shape,
                   *ys = &c->g->values[y].shape;
    int64_t xd[PQ_MAX_RANK], wd[PQ_MAX_RANK], yd[PQ_MAX_RANK];
    if (!pq_shape_is_static(xs, xd) || !pq_shape_is_static(ws, wd) || !pq_shape_is_static(ys, yd) ||
        xs->rank < 3 || xs->rank > 5 || ws->rank != xs->rank)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED,
                            "input and weight need static shapes of rank 3 to 5");
    const char *ap = pq_node_attr_string(n, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET") != 0)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "auto_pad = %s (run with explicit pads)",
                            ap);
    int nsp = xs->rank - 2, r = xs->rank;
    int64_t st[3], dl[3], pads[6], group = pq_node_attr_int(n, "group", 1);
    if (!pq_gconv_ints(n, "strides", nsp, 1, st) || !pq_gconv_ints(n, "dilations", nsp, 1, dl) ||
        !pq_gconv_ints(n, "pads", 2 * nsp, 0, pads))
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED,
                            "strides/dilations/pads of the wrong length");
    uint32_t g0 = PQ_G0, nid;
    if (c->need[0]) {
        int64_t op[3];
        for (int i = 0; i < nsp; i++) {
            op[i] = xd[2 + i] - (st[i] * (yd[2 + i] - 1) + dl[i] * (wd[2 + i] - 1) + 1 - pads[i] -
                                 pads[nsp + i]);
            if (op[i] < 0 || (op[i] >= st[i] && op[i] >= dl[i]))
                return pq_error_set(c->err, PQ_ERR_UNSUPPORTED,
                                    "input gradient needs output_padding %lld on axis %d",
                                    (long long)op[i], 2 + i);
        }
        uint32_t in[2] = {g0, w};
        PQ_TRY(pq_gb(c, PQ_OP_CONV_TRANSPOSE, in, 2, &c->in_grad[0], &nid));
        PQ_TRY(pq_node_set_ints(c->g, nid, "strides", st, (uint32_t)nsp, c->err));
        PQ_TRY(pq_node_set_ints(c->g, nid, "dilations", dl, (uint32_t)nsp, c->err));
        PQ_TRY(pq_node_set_ints(c->g, nid, "pads", pads, (uint32_t)(2 * nsp), c->err));
        PQ_TRY(pq_node_set_ints(c->g, nid, "output_padding", op, (uint32_t)nsp, c->err));
        PQ_TRY(pq_node_set_int(c->g, nid, "group", group, c->err));
        PQ_TRY(pq_grad_infer(c, nid));
    }
    if (c->need[1]) {
        if (group != 1)
            return pq_error_set(c->err, PQ_ERR_UNSUPPORTED,
                                "weight gradient of a grouped conv (group = %lld)",
                                (long long)group);
        int64_t perm[PQ_MAX_RANK];
        for (int i = 0; i < r; i++)
            perm[i] = i;
        perm[0] = 1;
        perm[1] = 0;
        uint32_t xt, gt, dw, dwt;
        PQ_TRY(pq_gb(c, PQ_OP_TRANSPOSE, &x, 1, &xt, &nid));
        PQ_TRY(pq_node_set_ints(c->g, nid, "perm", perm, (uint32_t)r, c->err));
        PQ_TRY(pq_grad_infer(c, nid));
        PQ_TRY(pq_gb(c, PQ_OP_TRANSPOSE, &g0, 1, &gt, &nid));
        PQ_TRY(pq_node_set_ints(c->g, nid, "perm", perm, (uint32_t)r, c->err));
        PQ_TRY(pq_grad_infer(c, nid));
        uint32_t in[2] = {xt, gt};
        PQ_TRY(pq_gb(c, PQ_OP_CONV, in, 2, &dw, &nid));
        PQ_TRY(pq_node_set_ints(c->g, nid, "strides", dl, (uint32_t)nsp, c->err));
        PQ_TRY(pq_node_set_ints(c->g, nid, "dilations", st, (uint32_t)nsp, c->err));
        PQ_TRY(pq_node_set_ints(c->g, nid, "pads", pads, (uint32_t)(2 * nsp), c->err));
        PQ_TRY(pq_grad_infer(c, nid));
        PQ_TRY(pq_gb(c, PQ_OP_TRANSPOSE, &dw, 1, &dwt, &nid));
        PQ_TRY(pq_node_set_ints(c->g, nid, "perm", perm, (uint32_t)r, c->err));
        PQ_TRY(pq_grad_infer(c, nid));
        int64_t got[PQ_MAX_RANK];
        if (!pq_shape_is_static(&c->g->values[dwt].shape, got))
            return pq_error_set(c->err, PQ_ERR_INTERNAL, "weight gradient shape");
        bool trim = false;
        for (int i = 2; i < r; i++)
            if (got[i] != wd[i]) trim = true;
        if (!trim) {
            c->in_grad[1] = dwt;
        } else {
            int64_t starts[3] = {0, 0, 0}, axes[3] = {2, 3, 4};
            uint32_t sv, ev, av;
            PQ_TRY(pq_gints(c, starts, nsp, &sv));
            PQ_TRY(pq_gints(c, wd + 2, nsp, &ev));
            PQ_TRY(pq_gints(c, axes, nsp, &av));
            uint32_t sin[4] = {dwt, sv, ev, av};
            PQ_TRY(pq_gop(c, PQ_OP_SLICE, sin, 4, &c->in_grad[1]));
        }
    }
    if (b != PQ_NONE && c->need[2]) {
        int64_t axes[PQ_MAX_RANK];
        int k = 0;
        for (int i = 0; i < r; i++)
            if (i != 1) axes[k++] = i;
        PQ_TRY(pq_greduce_sum(c, g0, axes, k, false, &c->in_grad[2]));
    }
    return PQ_OK;
}

/* ---- fake quantization (SPEC 7) ---- */

/* w_hat = FakeQuant(w, scales?): the straight-through backward as one FakeQuantGrad(w, scales, g)
 * node carrying the forward's format, qgroup, transposed, ste and ewgs_delta; format f16 passes g
 * straight through (dw = g). dscales (output 1) only with ste = lsq, when the scales are selected:
 * it is f32 (dL/d of the signed f32 value of each scale word, ir/infer_train.h) even where the
 * scales are f16 words, so an optimizer keeps full precision. Selected scales with another ste:
 * UNSUPPORTED (those estimators define no scale gradient; leave the scales out of wrt). */
static enum pq_status pq_grad_fake_quant(pq_grad_ctx *c) {
    const pq_node *n = PQ_NODE;
    uint32_t w = PQ_IN(0), s = PQ_IN(1);
    char fmt[16], ste_name[16];
    snprintf(fmt, sizeof fmt, "%s", pq_node_attr_string(n, "format", ""));
    snprintf(ste_name, sizeof ste_name, "%s", pq_node_attr_string(n, "ste", "standard"));
    enum pq_ste ste;
    if (!pq_ste_from_name(ste_name, &ste))
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED,
                            "attribute ste = '%s' (standard, clipped, lsq or ewgs)", ste_name);
    bool want_ds = s != PQ_NONE && c->need[1];
    if (!strcmp(fmt, "f16")) {
        if (want_ds) return pq_error_set(c->err, PQ_ERR_INTERNAL, "format f16 with a scales input");
        c->in_grad[0] = PQ_G0;
        return PQ_OK;
    }
    if (want_ds && ste != PQ_STE_LSQ)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED,
                            "scales '%s' get a gradient only with ste = lsq (ste = %s): leave them "
                            "out of option 'wrt'",
                            c->g->values[s].name, ste_name);
    const pq_attr *qa = pq_node_attr(n, "qgroup");
    bool has_qgroup = qa && qa->type == PQ_ATTR_INT;
    int64_t qgroup = pq_node_attr_int(n, "qgroup", 0);
    int64_t transposed = pq_node_attr_int(n, "transposed", 0);
    const pq_attr *da = pq_node_attr(n, "ewgs_delta");
    bool has_delta = da && da->type == PQ_ATTR_FLOAT;
    float delta = pq_node_attr_float(n, "ewgs_delta", PQ_EWGS_DELTA_DEFAULT);
    uint32_t in[3] = {w, s, PQ_G0}, out[2] = {PQ_NONE, PQ_NONE}, nid;
    PQ_TRY(pq_graph_add_temp(c->g, c->hint, &out[0], c->err));
    if (want_ds) PQ_TRY(pq_graph_add_temp(c->g, c->hint, &out[1], c->err));
    const char *nn = pq_graph_fresh_node_name(c->g, c->hint);
    if (!nn) return pq_error_nomem(c->err, "node name");
    PQ_TRY(pq_graph_add_node(c->g, PQ_OP_FAKE_QUANT_GRAD, nn, in, 3, out, want_ds ? 2 : 1, &nid,
                             c->err));
    PQ_TRY(pq_node_set_string(c->g, nid, "format", fmt, c->err));
    if (has_qgroup) PQ_TRY(pq_node_set_int(c->g, nid, "qgroup", qgroup, c->err));
    PQ_TRY(pq_node_set_int(c->g, nid, "transposed", transposed, c->err));
    PQ_TRY(pq_node_set_string(c->g, nid, "ste", ste_name, c->err));
    if (has_delta) PQ_TRY(pq_node_set_float(c->g, nid, "ewgs_delta", delta, c->err));
    PQ_TRY(pq_grad_infer(c, nid));
    if (c->need[0]) c->in_grad[0] = out[0];
    if (want_ds) c->in_grad[1] = out[1];
    return PQ_OK;
}

/* ---- the table ---- */

const pq_grad_fn pq_grad_rules[PQ_OP_COUNT] = {
    [PQ_OP_ADD] = pq_grad_add_rule,
    [PQ_OP_SUB] = pq_grad_sub,
    [PQ_OP_MUL] = pq_grad_mul,
    [PQ_OP_DIV] = pq_grad_div,
    [PQ_OP_NEG] = pq_grad_neg,
    [PQ_OP_EXP] = pq_grad_exp,
    [PQ_OP_LOG] = pq_grad_log,
    [PQ_OP_SQRT] = pq_grad_sqrt,
    [PQ_OP_TANH] = pq_grad_tanh,
    [PQ_OP_SIGMOID] = pq_grad_sigmoid,
    [PQ_OP_RELU] = pq_grad_relu,
    [PQ_OP_IDENTITY] = pq_grad_identity,
    [PQ_OP_SOFTMAX] = pq_grad_softmax,
    [PQ_OP_LOG_SOFTMAX] = pq_grad_log_softmax,
    [PQ_OP_MATMUL] = pq_grad_matmul,
    [PQ_OP_GEMM] = pq_grad_gemm,
    [PQ_OP_RESHAPE] = pq_grad_reshape,
    [PQ_OP_FLATTEN] = pq_grad_reshape,
    [PQ_OP_SQUEEZE] = pq_grad_reshape,
    [PQ_OP_UNSQUEEZE] = pq_grad_reshape,
    [PQ_OP_TRANSPOSE] = pq_grad_transpose,
    [PQ_OP_REDUCE_SUM] = pq_grad_reduce,
    [PQ_OP_REDUCE_MEAN] = pq_grad_reduce,
    [PQ_OP_CONV] = pq_grad_conv,
    [PQ_OP_FAKE_QUANT] = pq_grad_fake_quant,
    [PQ_OP_TRAIN_LOSS] = pq_grad_train_loss,
};
