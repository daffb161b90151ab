/* The gradient-rule table of the autodiff pass (passes/grad.h) and the building blocks the rules
 * share (passes/grad_util.h): per op, the backward nodes that turn dL/d(outputs) into
 * dL/d(inputs). The rules live in one file per family (grad_elementwise.c, grad_movement.c,
 * grad_reduce.c, grad_nn.c, grad_loss.c); FakeQuant's is here. */
#include "grad.h"

#include <stdio.h>
#include <string.h>

#include "grad_util.h"
#include "ir/infer_train.h"

/* ---- building blocks ---- */

enum pq_status pq_gb(pq_grad_ctx *c, enum pq_op op, const uint32_t *in, uint32_t n, uint32_t *v,
                     uint32_t *nid) {
    return pq_build(c->g, op, c->hint, in, n, v, nid, c->err);
}

enum pq_status pq_grad_infer(pq_grad_ctx *c, uint32_t nid) {
    return pq_infer_node(c->g, nid, c->err);
}

enum pq_status pq_gop(pq_grad_ctx *c, enum pq_op op, const uint32_t *in, uint32_t n, uint32_t *v) {
    uint32_t nid;
    PQ_TRY(pq_gb(c, op, in, n, v, &nid));
    return pq_grad_infer(c, nid);
}

enum pq_status pq_gop1(pq_grad_ctx *c, enum pq_op op, uint32_t a, uint32_t *v) {
    return pq_gop(c, op, &a, 1, v);
}

enum pq_status pq_gop2(pq_grad_ctx *c, enum pq_op op, uint32_t a, uint32_t b, uint32_t *v) {
    uint32_t in[2] = {a, b};
    return pq_gop(c, op, in, 2, v);
}

enum pq_status pq_gwhere(pq_grad_ctx *c, uint32_t cond, uint32_t a, uint32_t b, uint32_t *v) {
    uint32_t in[3] = {cond, a, b};
    return pq_gop(c, PQ_OP_WHERE, in, 3, v);
}

enum pq_status pq_gmask(pq_grad_ctx *c, uint32_t cond, uint32_t x, uint32_t *v) {
    uint32_t zero;
    PQ_TRY(pq_gscalar(c, x, 0.0, &zero));
    return pq_gwhere(c, cond, x, zero, v);
}

enum pq_status pq_gscale(pq_grad_ctx *c, uint32_t x, double s, uint32_t *v) {
    uint32_t k;
    PQ_TRY(pq_gscalar(c, x, s, &k));
    return pq_gop2(c, PQ_OP_MUL, x, k, v);
}

enum pq_status pq_gcast(pq_grad_ctx *c, uint32_t x, enum pq_dtype dtype, uint32_t *v) {
    uint32_t nid;
    PQ_TRY(pq_gb(c, PQ_OP_CAST, &x, 1, v, &nid));
    PQ_TRY(pq_node_set_string(c->g, nid, "to", pq_dtype_name(dtype), c->err));
    return pq_grad_infer(c, nid);
}

enum pq_status pq_gtranspose(pq_grad_ctx *c, uint32_t x, const int64_t *perm, int r, uint32_t *v) {
    uint32_t nid;
    PQ_TRY(pq_gb(c, PQ_OP_TRANSPOSE, &x, 1, v, &nid));
    PQ_TRY(pq_node_set_ints(c->g, nid, "perm", perm, (uint32_t)r, c->err));
    return pq_grad_infer(c, nid);
}

enum pq_status pq_gswap_last2(pq_grad_ctx *c, uint32_t x, uint32_t *out) {
    int r = c->g->values[x].shape.rank;
    int64_t perm[PQ_MAX_RANK];
    for (int i = 0; i < r; i++)
        perm[i] = i;
    perm[r - 1] = r - 2;
    perm[r - 2] = r - 1;
    return pq_gtranspose(c, x, perm, r, out);
}

enum pq_status pq_gscalar(pq_grad_ctx *c, uint32_t like, double v, uint32_t *out) {
    return pq_grad_fill(c->g, c->hint, c->g->values[like].dtype, 0, NULL, v, out, c->err);
}

enum pq_status pq_gints(pq_grad_ctx *c, const int64_t *v, int n, uint32_t *out) {
    int64_t d = n;
    return pq_build_const_i64(c->g, c->hint, 1, &d, v, out, c->err);
}

enum pq_status pq_greshape(pq_grad_ctx *c, uint32_t x, const int64_t *dims, int r, uint32_t *v) {
    uint32_t shp;
    PQ_TRY(pq_gints(c, dims, r, &shp));
    return pq_gop2(c, PQ_OP_RESHAPE, x, shp, v);
}

enum pq_status pq_greduce_sum(pq_grad_ctx *c, uint32_t x, const int64_t *axes, int n, bool keep,
                              uint32_t *out) {
    uint32_t ax = PQ_NONE, nid;
    if (n > 0) PQ_TRY(pq_gints(c, axes, n, &ax));
    uint32_t in[2] = {x, ax};
    PQ_TRY(pq_gb(c, PQ_OP_REDUCE_SUM, in, n > 0 ? 2 : 1, out, &nid));
    PQ_TRY(pq_node_set_int(c->g, nid, "keepdims", keep ? 1 : 0, c->err));
    return pq_grad_infer(c, nid);
}

enum pq_status pq_gslice(pq_grad_ctx *c, uint32_t x, const int64_t *starts, const int64_t *ends,
                         const int64_t *axes, int n, uint32_t *v) {
    uint32_t in[4];
    in[0] = x;
    PQ_TRY(pq_gints(c, starts, n, &in[1]));
    PQ_TRY(pq_gints(c, ends, n, &in[2]));
    PQ_TRY(pq_gints(c, axes, n, &in[3]));
    return pq_gop(c, PQ_OP_SLICE, in, 4, v);
}

enum pq_status pq_gshape_of(pq_grad_ctx *c, uint32_t like, uint32_t *out) {
    int64_t dims[PQ_MAX_RANK];
    const pq_shape *s = &c->g->values[like].shape;
    if (pq_shape_is_static(s, dims) && s->rank > 0) return pq_gints(c, dims, s->rank, out);
    return pq_gop1(c, PQ_OP_SHAPE, like, out);
}

enum pq_status pq_greshape_like(pq_grad_ctx *c, uint32_t x, uint32_t like, uint32_t *out) {
    uint32_t shp;
    PQ_TRY(pq_gshape_of(c, like, &shp));
    return pq_gop2(c, PQ_OP_RESHAPE, x, shp, out);
}

enum pq_status pq_gzeros_like(pq_grad_ctx *c, uint32_t like, uint32_t *out) {
    uint32_t zero, shp;
    PQ_TRY(pq_gscalar(c, like, 0.0, &zero));
    if (c->g->values[like].shape.rank == 0) {
        *out = zero;
        return PQ_OK;
    }
    PQ_TRY(pq_gshape_of(c, like, &shp));
    return pq_gop2(c, PQ_OP_EXPAND, zero, shp, out);
}

bool pq_gstatic(const pq_grad_ctx *c, uint32_t v, int64_t *dims, int *rank) {
    int64_t d[PQ_MAX_RANK];
    const pq_shape *s = &c->g->values[v].shape;
    if (!pq_shape_is_static(s, d)) return false;
    if (dims) memcpy(dims, d, sizeof(int64_t) * (size_t)s->rank);
    if (rank) *rank = s->rank;
    return true;
}

static bool pq_shape_same(const pq_shape *a, const pq_shape *b) {
    if (a->rank < 0 || a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (!pq_dim_known(a->dims[i]) && !a->dims[i].sym) return false;
    for (int i = 0; i < a->rank; i++)
        if (!pq_dim_equal(a->dims[i], b->dims[i])) return false;
    return true;
}

/* i64 scalar constant v. */
static enum pq_status pq_gint0(pq_grad_ctx *c, int64_t v, uint32_t *out) {
    return pq_build_const_i64(c->g, c->hint, 0, NULL, &v, out, c->err);
}

/* The broadcast axes decided at run time (shapes the compiler does not know): with the target's
 * shape left-padded with ones to g's rank, ReduceSum(g, axes where that shape is 1, keepdims,
 * noop_with_empty_axes) -- summing over an axis of size 1 in g changes nothing -- then Reshape to
 * the target's shape. */
static enum pq_status pq_gunbroadcast_dyn(pq_grad_ctx *c, uint32_t gv, uint32_t target, int rg,
                                          uint32_t *out) {
    int rt = c->g->values[target].shape.rank;
    uint32_t ts, one, mask, nz, idx, r, nid, t;
    PQ_TRY(pq_gop1(c, PQ_OP_SHAPE, target, &ts));
    if (rg > rt) {
        int64_t ones[PQ_MAX_RANK];
        for (int i = 0; i < rg - rt; i++)
            ones[i] = 1;
        uint32_t pad, in[2];
        PQ_TRY(pq_gints(c, ones, rg - rt, &pad));
        in[0] = pad;
        in[1] = ts;
        PQ_TRY(pq_gb(c, PQ_OP_CONCAT, in, 2, &t, &nid));
        PQ_TRY(pq_node_set_int(c->g, nid, "axis", 0, c->err));
        PQ_TRY(pq_grad_infer(c, nid));
        ts = t;
    }
    PQ_TRY(pq_gint0(c, 1, &one));
    PQ_TRY(pq_gop2(c, PQ_OP_EQUAL, ts, one, &mask));
    PQ_TRY(pq_gop1(c, PQ_OP_NON_ZERO, mask, &nz));
    int64_t z = 0;
    PQ_TRY(pq_gints(c, &z, 1, &t));
    PQ_TRY(pq_gop2(c, PQ_OP_SQUEEZE, nz, t, &idx));
    uint32_t in[2] = {gv, idx};
    PQ_TRY(pq_gb(c, PQ_OP_REDUCE_SUM, in, 2, &r, &nid));
    PQ_TRY(pq_node_set_int(c->g, nid, "keepdims", 1, c->err));
    PQ_TRY(pq_node_set_int(c->g, nid, "noop_with_empty_axes", 1, c->err));
    PQ_TRY(pq_grad_infer(c, nid));
    return pq_greshape_like(c, r, target, out);
}

enum pq_status pq_gunbroadcast(pq_grad_ctx *c, uint32_t gv, uint32_t target, uint32_t *out) {
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
        /* an unknown dim: which axes were broadcast is decided when the graph runs */
        return pq_gunbroadcast_dyn(c, gv, target, gs.rank, out);
    }
    uint32_t r = gv;
    if (n) PQ_TRY(pq_greduce_sum(c, gv, axes, n, true, &r));
    if (d == 0) {
        *out = r;
        return PQ_OK;
    }
    return pq_greshape_like(c, r, target, out);
}

enum pq_status pq_gcount_ratio(pq_grad_ctx *c, uint32_t big, uint32_t small, uint32_t *out) {
    uint32_t sb, ss, fb, fs;
    enum pq_dtype dt = c->g->values[big].dtype;
    PQ_TRY(pq_gop1(c, PQ_OP_SIZE, big, &sb));
    PQ_TRY(pq_gop1(c, PQ_OP_SIZE, small, &ss));
    PQ_TRY(pq_gcast(c, sb, dt, &fb));
    PQ_TRY(pq_gcast(c, ss, dt, &fs));
    return pq_gop2(c, PQ_OP_DIV, fs, fb, out);
}

enum pq_status pq_gindex_map(pq_grad_ctx *c, uint32_t x, uint32_t *idx, uint32_t *size) {
    uint32_t zero, step, in[3], rng;
    PQ_TRY(pq_gop1(c, PQ_OP_SIZE, x, size));
    PQ_TRY(pq_gint0(c, 0, &zero));
    PQ_TRY(pq_gint0(c, 1, &step));
    in[0] = zero;
    in[1] = *size;
    in[2] = step;
    PQ_TRY(pq_gop(c, PQ_OP_RANGE, in, 3, &rng));
    return pq_greshape_like(c, rng, x, idx);
}

enum pq_status pq_gindex_scatter(pq_grad_ctx *c, uint32_t g, uint32_t picked, uint32_t x,
                                 uint32_t size, uint32_t *out) {
    int64_t m1 = -1, col[2] = {-1, 1}, z = 0;
    uint32_t gf, pf, sv, zero, zv, t, res, nid;
    PQ_TRY(pq_greshape(c, g, &m1, 1, &gf));
    PQ_TRY(pq_greshape(c, picked, col, 2, &pf));
    PQ_TRY(pq_gints(c, &z, 1, &t));
    PQ_TRY(pq_gop2(c, PQ_OP_UNSQUEEZE, size, t, &sv));
    PQ_TRY(pq_gscalar(c, g, 0.0, &zero));
    PQ_TRY(pq_gop2(c, PQ_OP_EXPAND, zero, sv, &zv));
    uint32_t in[3] = {zv, pf, gf};
    PQ_TRY(pq_gb(c, PQ_OP_SCATTER_ND, in, 3, &res, &nid));
    PQ_TRY(pq_node_set_string(c->g, nid, "reduction", "add", c->err));
    PQ_TRY(pq_grad_infer(c, nid));
    return pq_greshape_like(c, res, x, out);
}

bool pq_gconst_ints(const pq_grad_ctx *c, uint32_t v, int64_t *out, int max, int *n) {
    if (v == PQ_NONE) return false;
    const pq_tensor *t = pq_value_constant(c->g, v);
    if (!t || !pq_dtype_is_integer(t->dtype) || t->rank > 1 || pq_tensor_numel(t) > max)
        return false;
    *n = (int)pq_tensor_numel(t);
    for (int i = 0; i < *n; i++)
        out[i] = pq_dtype_load_i64(t->dtype, t->data, (size_t)i);
    return true;
}

enum pq_status pq_greduce_axes(pq_grad_ctx *c, int rank, int64_t *axes, int *n_axes,
                               bool *identity) {
    const pq_node *n = PQ_NODE;
    bool noop = pq_node_attr_int(n, "noop_with_empty_axes", 0) != 0;
    uint32_t axv = PQ_IN(1);
    int k = 0;
    *identity = false;
    if (axv != PQ_NONE && !pq_gconst_ints(c, axv, axes, rank, &k))
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "axes are not a constant integer list");
    for (int i = 0; i < k; i++) {
        if (axes[i] < -rank || axes[i] >= rank)
            return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "axis %lld out of range for rank %d",
                                (long long)axes[i], rank);
        if (axes[i] < 0) axes[i] += rank;
    }
    if (k == 0) {
        if (noop) {
            *identity = true;
            *n_axes = 0;
            return PQ_OK;
        }
        for (int i = 0; i < rank; i++)
            axes[k++] = i;
    }
    /* sorted, duplicates dropped (Unsqueeze wants distinct axes in output order) */
    for (int i = 1; i < k; i++)
        for (int j = i; j > 0 && axes[j - 1] > axes[j]; j--) {
            int64_t t = axes[j];
            axes[j] = axes[j - 1];
            axes[j - 1] = t;
        }
    int m = 0;
    for (int i = 0; i < k; i++)
        if (m == 0 || axes[m - 1] != axes[i]) axes[m++] = axes[i];
    *n_axes = m;
    return PQ_OK;
}

enum pq_status pq_gkeepdims(pq_grad_ctx *c, uint32_t v, const int64_t *axes, int n_axes,
                            uint32_t *out) {
    bool keep = pq_node_attr_int(PQ_NODE, "keepdims", 1) != 0;
    if (keep || n_axes == 0) {
        *out = v;
        return PQ_OK;
    }
    uint32_t ax;
    PQ_TRY(pq_gints(c, axes, n_axes, &ax));
    return pq_gop2(c, PQ_OP_UNSQUEEZE, v, ax, out);
}

bool pq_gattr_ints(const pq_node *n, const char *name, int cnt, int64_t def, int64_t *v) {
    const pq_attr *a = pq_node_attr(n, name);
    for (int i = 0; i < cnt; i++)
        v[i] = def;
    if (!a) return true;
    if (a->type != PQ_ATTR_INTS || a->u.ints.n != (uint32_t)cnt) return false;
    for (int i = 0; i < cnt; i++)
        v[i] = a->u.ints.v[i];
    return true;
}

enum pq_status pq_gcopy_attrs(pq_grad_ctx *c, uint32_t from, uint32_t to) {
    uint32_t na = c->g->nodes[from].n_attrs;
    for (uint32_t k = 0; k < na; k++) {
        const pq_attr *at = &c->g->nodes[from].attrs[k];
        enum pq_status st;
        switch (at->type) {
        case PQ_ATTR_INT:
            st = pq_node_set_int(c->g, to, at->name, at->u.i, c->err);
            break;
        case PQ_ATTR_FLOAT:
            st = pq_node_set_float(c->g, to, at->name, at->u.f, c->err);
            break;
        case PQ_ATTR_STRING:
            st = pq_node_set_string(c->g, to, at->name, at->u.s, c->err);
            break;
        case PQ_ATTR_INTS:
            st = pq_node_set_ints(c->g, to, at->name, at->u.ints.v, at->u.ints.n, c->err);
            break;
        case PQ_ATTR_FLOATS:
            st = pq_node_set_floats(c->g, to, at->name, at->u.floats.v, at->u.floats.n, c->err);
            break;
        case PQ_ATTR_STRINGS:
            st = pq_node_set_strings(c->g, to, at->name, at->u.strings.v, at->u.strings.n, c->err);
            break;
        default:
            st = pq_error_set(c->err, PQ_ERR_UNSUPPORTED,
                              "attribute '%s' (a tensor or graph) cannot be copied", at->name);
            break;
        }
        PQ_TRY(st);
    }
    return PQ_OK;
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

enum pq_status pq_grad_apply(pq_grad_ctx *c, pq_grad_fn rule) {
    PQ_TRY(rule(c));
    uint32_t n_in = PQ_NODE->n_inputs;
    for (uint32_t k = 0; k < n_in; k++) {
        uint32_t v = PQ_IN(k), gv = c->in_grad[k];
        if (!c->need[k] || gv == PQ_NONE) continue;
        int64_t dims[PQ_MAX_RANK];
        int r;
        if (!pq_gstatic(c, v, dims, &r) || pq_gstatic(c, gv, NULL, NULL)) continue;
        if (r == 0) {
            PQ_TRY(pq_greshape_like(c, gv, v, &c->in_grad[k]));
            continue;
        }
        PQ_TRY(pq_greshape(c, gv, dims, r, &c->in_grad[k]));
    }
    return PQ_OK;
}

/* ---- ops without a rule yet ---- */

const char *const pq_grad_not_yet[PQ_OP_COUNT] = {
    [PQ_OP_LSTM] = "recurrent ops need backpropagation through time over the unrolled sequence",
    [PQ_OP_GRU] = "recurrent ops need backpropagation through time over the unrolled sequence",
    [PQ_OP_RNN] = "recurrent ops need backpropagation through time over the unrolled sequence",
    [PQ_OP_IF] = "control flow: the branch taken is not differentiated",
    [PQ_OP_LOOP] = "control flow: loop bodies are not differentiated",
    [PQ_OP_EINSUM] = "the backward of a general equation (repeated and summed-only subscripts, "
                     "ellipsis) is not written",
    [PQ_OP_DET] = "needs a matrix inverse (no such op)",
    [PQ_OP_GRID_SAMPLE] = "bilinear/bicubic sampling backward (input and grid) is not written",
    [PQ_OP_NEGATIVE_LOG_LIKELIHOOD_LOSS] = "use TrainLoss (task cross_entropy) or LogSoftmax + "
                                           "GatherElements + ReduceMean as the loss",
    [PQ_OP_SOFTMAX_CROSS_ENTROPY_LOSS] = "use TrainLoss (task cross_entropy) or LogSoftmax + "
                                         "GatherElements + ReduceMean as the loss",
    [PQ_OP_PACKED_MAT_MUL] = "packed (inference) op: differentiate before lower-quant",
    [PQ_OP_PACKED_CONV] = "packed (inference) op: differentiate before lower-quant",
    [PQ_OP_CONV_ADD] = "fused inference op: differentiate before fuse-residual",
};

/* The rule of every op listed in pq_grad_not_yet: UNSUPPORTED with the reason (the pass prefixes
 * the node and op). */
static enum pq_status pq_grad_not_yet_rule(pq_grad_ctx *c) {
    enum pq_op op = PQ_NODE->op;
    return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "%s has no gradient rule yet: %s",
                        pq_op_name(op), pq_grad_not_yet[op] ? pq_grad_not_yet[op] : "?");
}

/* ---- the table ---- */

const pq_grad_fn pq_grad_rules[PQ_OP_COUNT] = {
    /* elementwise (grad_elementwise.c) */
    [PQ_OP_ADD] = pq_grad_add_rule,
    [PQ_OP_SUB] = pq_grad_sub,
    [PQ_OP_MUL] = pq_grad_mul,
    [PQ_OP_DIV] = pq_grad_div,
    [PQ_OP_POW] = pq_grad_pow,
    [PQ_OP_MOD] = pq_grad_mod,
    [PQ_OP_PRELU] = pq_grad_prelu,
    [PQ_OP_WHERE] = pq_grad_where,
    [PQ_OP_MAX] = pq_grad_max_min,
    [PQ_OP_MIN] = pq_grad_max_min,
    [PQ_OP_SUM] = pq_grad_sum_mean,
    [PQ_OP_MEAN] = pq_grad_sum_mean,
    [PQ_OP_SQRT] = pq_grad_unary,
    [PQ_OP_EXP] = pq_grad_unary,
    [PQ_OP_LOG] = pq_grad_unary,
    [PQ_OP_NEG] = pq_grad_unary,
    [PQ_OP_ABS] = pq_grad_unary,
    [PQ_OP_RECIPROCAL] = pq_grad_unary,
    [PQ_OP_ERF] = pq_grad_unary,
    [PQ_OP_TANH] = pq_grad_unary,
    [PQ_OP_SIGMOID] = pq_grad_unary,
    [PQ_OP_SIN] = pq_grad_unary,
    [PQ_OP_COS] = pq_grad_unary,
    [PQ_OP_RELU] = pq_grad_unary,
    [PQ_OP_LEAKY_RELU] = pq_grad_unary,
    [PQ_OP_ELU] = pq_grad_unary,
    [PQ_OP_SELU] = pq_grad_unary,
    [PQ_OP_CELU] = pq_grad_unary,
    [PQ_OP_HARD_SIGMOID] = pq_grad_unary,
    [PQ_OP_HARD_SWISH] = pq_grad_unary,
    [PQ_OP_SOFTPLUS] = pq_grad_unary,
    [PQ_OP_SOFTSIGN] = pq_grad_unary,
    [PQ_OP_THRESHOLDED_RELU] = pq_grad_unary,
    [PQ_OP_TAN] = pq_grad_unary,
    [PQ_OP_SINH] = pq_grad_unary,
    [PQ_OP_COSH] = pq_grad_unary,
    [PQ_OP_ASIN] = pq_grad_unary,
    [PQ_OP_ACOS] = pq_grad_unary,
    [PQ_OP_ATAN] = pq_grad_unary,
    [PQ_OP_ASINH] = pq_grad_unary,
    [PQ_OP_ACOSH] = pq_grad_unary,
    [PQ_OP_ATANH] = pq_grad_unary,
    [PQ_OP_SHRINK] = pq_grad_unary,
    [PQ_OP_CLIP] = pq_grad_clip,
    [PQ_OP_CAST] = pq_grad_cast,
    [PQ_OP_CAST_LIKE] = pq_grad_cast_like,
    [PQ_OP_IDENTITY] = pq_grad_identity,
    [PQ_OP_DROPOUT] = pq_grad_dropout,
    /* linear algebra, convolution, pooling, normalisation (grad_nn.c) */
    [PQ_OP_SOFTMAX] = pq_grad_softmax,
    [PQ_OP_LOG_SOFTMAX] = pq_grad_log_softmax,
    [PQ_OP_MATMUL] = pq_grad_matmul,
    [PQ_OP_GEMM] = pq_grad_gemm,
    [PQ_OP_CONV] = pq_grad_conv,
    [PQ_OP_CONV_TRANSPOSE] = pq_grad_conv_transpose,
    [PQ_OP_MAX_POOL] = pq_grad_pool,
    [PQ_OP_AVERAGE_POOL] = pq_grad_pool,
    [PQ_OP_GLOBAL_AVERAGE_POOL] = pq_grad_global_pool,
    [PQ_OP_GLOBAL_MAX_POOL] = pq_grad_global_pool,
    [PQ_OP_BATCH_NORMALIZATION] = pq_grad_batch_norm,
    [PQ_OP_LAYER_NORMALIZATION] = pq_grad_layer_norm,
    [PQ_OP_INSTANCE_NORMALIZATION] = pq_grad_instance_norm,
    [PQ_OP_MEAN_VARIANCE_NORMALIZATION] = pq_grad_mvn,
    [PQ_OP_LP_NORMALIZATION] = pq_grad_lp_norm,
    [PQ_OP_LRN] = pq_grad_lrn,
    [PQ_OP_HADAMARD] = pq_grad_hadamard,
    /* shape and data movement (grad_movement.c) */
    [PQ_OP_RESHAPE] = pq_grad_reshape,
    [PQ_OP_FLATTEN] = pq_grad_reshape,
    [PQ_OP_SQUEEZE] = pq_grad_reshape,
    [PQ_OP_UNSQUEEZE] = pq_grad_reshape,
    [PQ_OP_TRANSPOSE] = pq_grad_transpose,
    [PQ_OP_CONCAT] = pq_grad_concat,
    [PQ_OP_SPLIT] = pq_grad_split,
    [PQ_OP_SLICE] = pq_grad_slice,
    [PQ_OP_GATHER] = pq_grad_gather,
    [PQ_OP_GATHER_ELEMENTS] = pq_grad_gather_elements,
    [PQ_OP_GATHER_ND] = pq_grad_gather_nd,
    [PQ_OP_SCATTER_ELEMENTS] = pq_grad_scatter,
    [PQ_OP_SCATTER] = pq_grad_scatter,
    [PQ_OP_SCATTER_ND] = pq_grad_scatter,
    [PQ_OP_EXPAND] = pq_grad_expand,
    [PQ_OP_TILE] = pq_grad_tile,
    [PQ_OP_PAD] = pq_grad_pad,
    [PQ_OP_RESIZE] = pq_grad_resize,
    [PQ_OP_DEPTH_TO_SPACE] = pq_grad_depth_to_space,
    [PQ_OP_SPACE_TO_DEPTH] = pq_grad_space_to_depth,
    [PQ_OP_TRILU] = pq_grad_trilu,
    [PQ_OP_CUM_SUM] = pq_grad_cum_sum,
    [PQ_OP_REVERSE_SEQUENCE] = pq_grad_reverse_sequence,
    [PQ_OP_COMPRESS] = pq_grad_compress,
    [PQ_OP_TOP_K] = pq_grad_top_k,
    [PQ_OP_MAX_UNPOOL] = pq_grad_max_unpool,
    /* reductions (grad_reduce.c) */
    [PQ_OP_REDUCE_SUM] = pq_grad_reduce,
    [PQ_OP_REDUCE_MEAN] = pq_grad_reduce,
    [PQ_OP_REDUCE_MAX] = pq_grad_reduce_max_min,
    [PQ_OP_REDUCE_MIN] = pq_grad_reduce_max_min,
    [PQ_OP_REDUCE_PROD] = pq_grad_reduce_other,
    [PQ_OP_REDUCE_L1] = pq_grad_reduce_other,
    [PQ_OP_REDUCE_L2] = pq_grad_reduce_other,
    [PQ_OP_REDUCE_SUM_SQUARE] = pq_grad_reduce_other,
    [PQ_OP_REDUCE_LOG_SUM] = pq_grad_reduce_other,
    [PQ_OP_REDUCE_LOG_SUM_EXP] = pq_grad_reduce_other,
    /* training (here, grad_loss.c) */
    [PQ_OP_FAKE_QUANT] = pq_grad_fake_quant,
    [PQ_OP_TRAIN_LOSS] = pq_grad_train_loss,
    /* not yet differentiable (pq_grad_not_yet gives the reason) */
    [PQ_OP_LSTM] = pq_grad_not_yet_rule,
    [PQ_OP_GRU] = pq_grad_not_yet_rule,
    [PQ_OP_RNN] = pq_grad_not_yet_rule,
    [PQ_OP_IF] = pq_grad_not_yet_rule,
    [PQ_OP_LOOP] = pq_grad_not_yet_rule,
    [PQ_OP_EINSUM] = pq_grad_not_yet_rule,
    [PQ_OP_DET] = pq_grad_not_yet_rule,
    [PQ_OP_GRID_SAMPLE] = pq_grad_not_yet_rule,
    [PQ_OP_NEGATIVE_LOG_LIKELIHOOD_LOSS] = pq_grad_not_yet_rule,
    [PQ_OP_SOFTMAX_CROSS_ENTROPY_LOSS] = pq_grad_not_yet_rule,
    [PQ_OP_PACKED_MAT_MUL] = pq_grad_not_yet_rule,
    [PQ_OP_PACKED_CONV] = pq_grad_not_yet_rule,
    [PQ_OP_CONV_ADD] = pq_grad_not_yet_rule,
};
