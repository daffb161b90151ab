/* Gradient rules of the shape and data-movement ops: views (Reshape ... Transpose), Concat/Split,
 * Slice and Pad (as each other's adjoint), the gathers (scatter-add through ScatterND /
 * ScatterElements with reduction add), the scatters, Expand/Tile (sums), DepthToSpace /
 * SpaceToDepth, Trilu, CumSum, ReverseSequence, Compress, TopK, MaxUnpool and Resize (the internal
 * ResizeGrad op). */
#include <string.h>

#include "grad_util.h"
#include "ir/infer_rules.h"

/* Reshape, Flatten, Squeeze, Unsqueeze: dx = Reshape(g, shape of x). */
enum pq_status pq_grad_reshape(pq_grad_ctx *c) {
    return pq_greshape_like(c, PQ_G0, PQ_IN(0), &c->in_grad[0]);
}

static void pq_ginverse_perm(const int64_t *perm, int r, int64_t *inv) {
    for (int i = 0; i < r; i++)
        inv[perm[i]] = i;
}

/* dx = Transpose(g, inverse perm). */
enum pq_status pq_grad_transpose(pq_grad_ctx *c) {
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
        if (perm[i] < 0) perm[i] += r;
        if (perm[i] < 0 || perm[i] >= r)
            return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "bad perm");
    }
    pq_ginverse_perm(perm, r, inv);
    return pq_gtranspose(c, PQ_G0, inv, r, &c->in_grad[0]);
}

/* Normalised axis attribute (default def) of the forward node for rank r. */
static enum pq_status pq_gaxis(pq_grad_ctx *c, int r, int64_t def, int *axis) {
    int64_t a = pq_node_attr_int(PQ_NODE, "axis", def);
    if (r < 0) return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "input of unknown rank");
    if (a < -r || a >= r)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "axis %lld out of range for rank %d",
                            (long long)a, r);
    *axis = (int)(a < 0 ? a + r : a);
    return PQ_OK;
}

/* The adjoint of the forward node (a pure gather: every output element copies one input element)
 * by the index map: the node run again on the element indices of x, then g scatter-added
 * there (pq_gindex_map). For shapes or parameters known only when the graph runs. */
static enum pq_status pq_gindex_adjoint(pq_grad_ctx *c) {
    uint32_t x = PQ_IN(0), idx, size, picked, nid, in[8], n_in = PQ_NODE->n_inputs;
    if (n_in > 8) return pq_error_set(c->err, PQ_ERR_INTERNAL, "too many inputs");
    PQ_TRY(pq_gindex_map(c, x, &idx, &size));
    for (uint32_t i = 0; i < n_in; i++)
        in[i] = PQ_IN(i);
    in[0] = idx;
    if (PQ_NODE->op == PQ_OP_PAD && n_in > 2) in[2] = PQ_NONE; /* no constant_value for indices */
    PQ_TRY(pq_gb(c, PQ_NODE->op, in, n_in, &picked, &nid));
    PQ_TRY(pq_gcopy_attrs(c, c->node, nid));
    PQ_TRY(pq_grad_infer(c, nid));
    return pq_gindex_scatter(c, PQ_G0, picked, x, size, &c->in_grad[0]);
}

/* y = Concat(x_1 ... x_n, axis): dx_i = Slice(g) over x_i's range of the axis (sizes known), or
 * the parts of one Split of g (sizes known at run time). */
/* Concat with sizes along the axis known only when the graph runs: one Split of g with the sizes
 * Gather(Shape(x_i), axis) concatenated. */
static enum pq_status pq_grad_concat_dyn(pq_grad_ctx *c, int axis) {
    uint32_t n_in = PQ_NODE->n_inputs, ax, nid, sizes;
    int64_t a = axis;
    uint32_t *v = pq_malloc(sizeof(uint32_t) * 2 * (n_in + 1));
    if (!v) return pq_error_nomem(c->err, "Concat gradient");
    uint32_t *outs = v + n_in + 1;
    enum pq_status st = PQ_OK;
    PQ_TRY_GOTO(st, pq_gints(c, &a, 1, &ax), done);
    for (uint32_t i = 0; i < n_in; i++) {
        uint32_t s;
        PQ_TRY_GOTO(st, pq_gop1(c, PQ_OP_SHAPE, PQ_IN(i), &s), done);
        PQ_TRY_GOTO(st, pq_gop2(c, PQ_OP_GATHER, s, ax, &v[i]), done);
    }
    PQ_TRY_GOTO(st, pq_gb(c, PQ_OP_CONCAT, v, n_in, &sizes, &nid), done);
    PQ_TRY_GOTO(st, pq_node_set_int(c->g, nid, "axis", 0, c->err), done);
    PQ_TRY_GOTO(st, pq_grad_infer(c, nid), done);
    for (uint32_t i = 0; i < n_in; i++)
        PQ_TRY_GOTO(st, pq_graph_add_temp(c->g, c->hint, &outs[i], c->err), done);
    const char *nn = pq_graph_fresh_node_name(c->g, c->hint);
    if (!nn) {
        st = pq_error_nomem(c->err, "node name");
        goto done;
    }
    uint32_t in[2] = {PQ_G0, sizes};
    PQ_TRY_GOTO(st, pq_graph_add_node(c->g, PQ_OP_SPLIT, nn, in, 2, outs, n_in, &nid, c->err),
                done);
    PQ_TRY_GOTO(st, pq_node_set_int(c->g, nid, "axis", axis, c->err), done);
    PQ_TRY_GOTO(st, pq_grad_infer(c, nid), done);
    for (uint32_t i = 0; i < n_in; i++)
        if (c->need[i]) c->in_grad[i] = outs[i];
done:
    pq_free(v);
    return st;
}

enum pq_status pq_grad_concat(pq_grad_ctx *c) {
    uint32_t n_in = PQ_NODE->n_inputs;
    int axis;
    PQ_TRY(pq_gaxis(c, c->g->values[PQ_OUT(0)].shape.rank, 0, &axis));
    for (uint32_t i = 0; i < n_in; i++) {
        const pq_shape *s = &c->g->values[PQ_IN(i)].shape;
        if (s->rank <= axis || !pq_dim_known(s->dims[axis])) return pq_grad_concat_dyn(c, axis);
    }
    int64_t off = 0;
    for (uint32_t i = 0; i < n_in; i++) {
        const pq_shape *s = &c->g->values[PQ_IN(i)].shape;
        int64_t len = s->dims[axis].size;
        if (c->need[i]) {
            int64_t st = off, en = off + len, ax = axis;
            PQ_TRY(pq_gslice(c, PQ_G0, &st, &en, &ax, 1, &c->in_grad[i]));
        }
        off += len;
    }
    return PQ_OK;
}

/* (y_1 ... y_n) = Split(x, axis): dx = Concat(g_1 ... g_n, axis), zeros for outputs that do not
 * reach the loss. */
enum pq_status pq_grad_split(pq_grad_ctx *c) {
    uint32_t n_out = PQ_NODE->n_outputs, nid;
    int axis;
    PQ_TRY(pq_gaxis(c, c->g->values[PQ_IN(0)].shape.rank, 0, &axis));
    uint32_t *parts = pq_malloc(sizeof(uint32_t) * n_out);
    if (!parts) return pq_error_nomem(c->err, "Split gradient");
    enum pq_status st = PQ_OK;
    for (uint32_t k = 0; k < n_out; k++) {
        parts[k] = c->out_grad[k];
        if (parts[k] == PQ_NONE) {
            if (PQ_OUT(k) == PQ_NONE) {
                st = pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "output %u is omitted", k);
                goto done;
            }
            PQ_TRY_GOTO(st, pq_gzeros_like(c, PQ_OUT(k), &parts[k]), done);
        }
    }
    PQ_TRY_GOTO(st, pq_gb(c, PQ_OP_CONCAT, parts, n_out, &c->in_grad[0], &nid), done);
    PQ_TRY_GOTO(st, pq_node_set_int(c->g, nid, "axis", axis, c->err), done);
    st = pq_grad_infer(c, nid);
done:
    pq_free(parts);
    return st;
}

/* Constant-mode Pad of x by begin[i] / end[i] on every axis (negative values crop). */
static enum pq_status pq_gpad(pq_grad_ctx *c, uint32_t x, int r, const int64_t *begin,
                              const int64_t *end, uint32_t *out) {
    int64_t pads[2 * PQ_MAX_RANK];
    bool any = false;
    for (int i = 0; i < r; i++) {
        pads[i] = begin[i];
        pads[r + i] = end[i];
        any = any || begin[i] || end[i];
    }
    if (!any) {
        *out = x;
        return PQ_OK;
    }
    uint32_t pv;
    PQ_TRY(pq_gints(c, pads, 2 * r, &pv));
    return pq_gop2(c, PQ_OP_PAD, x, pv, out);
}

/* y = Slice(x, starts, ends, axes, steps): the gradient is g put back at the positions read. With
 * constant parameters and static shapes: along an axis of step s, g is spread out by |s|
 * (Unsqueeze, Pad with |s| - 1 zeros, Reshape, trim), reversed for s < 0, then one Pad puts it
 * at the first index. Otherwise the index map (pq_gindex_map) sliced the same way. */
enum pq_status pq_grad_slice(pq_grad_ctx *c) {
    uint32_t x = PQ_IN(0);
    int64_t xd[PQ_MAX_RANK], st[PQ_MAX_RANK], en[PQ_MAX_RANK], ax[PQ_MAX_RANK], sp[PQ_MAX_RANK];
    int r, ns, ne, na, nsp;
    int64_t begin[PQ_MAX_RANK] = {0}, end[PQ_MAX_RANK] = {0}, cur[PQ_MAX_RANK];
    uint32_t gv = PQ_G0;
    bool known = pq_gstatic(c, x, xd, &r) && pq_gstatic(c, gv, cur, NULL) &&
                 pq_gconst_ints(c, PQ_IN(1), st, PQ_MAX_RANK, &ns) &&
                 pq_gconst_ints(c, PQ_IN(2), en, PQ_MAX_RANK, &ne) && ns == ne;
    na = nsp = known ? ns : 0;
    if (known && PQ_IN(3) == PQ_NONE) {
        for (int i = 0; i < ns; i++)
            ax[i] = i;
    } else if (known) {
        known = pq_gconst_ints(c, PQ_IN(3), ax, PQ_MAX_RANK, &na) && na == ns;
    }
    if (known && PQ_IN(4) == PQ_NONE) {
        for (int i = 0; i < ns; i++)
            sp[i] = 1;
    } else if (known) {
        known = pq_gconst_ints(c, PQ_IN(4), sp, PQ_MAX_RANK, &nsp) && nsp == ns;
    }
    if (!known) return pq_gindex_adjoint(c); /* parameters or shapes known at run time */
    for (int i = 0; i < ns; i++) {
        int64_t a = ax[i] < 0 ? ax[i] + r : ax[i];
        if (a < 0 || a >= r || sp[i] == 0)
            return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "bad axis or step");
        int64_t first, len, s = sp[i], as = s < 0 ? -s : s;
        pq_infer_slice_axis(xd[a], st[i], en[i], s, &first, &len);
        if (len == 0) return pq_gzeros_like(c, x, &c->in_grad[0]);
        if (as > 1) { /* spread: [.., L, ..] -> [.., L, |s|, ..] -> [.., L |s|, ..] -> trimmed */
            uint32_t u, p, m, av;
            int64_t a1 = a + 1, pads[2 * (PQ_MAX_RANK + 1)] = {0}, dims[PQ_MAX_RANK];
            if (r + 1 > PQ_MAX_RANK)
                return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "strided slice of rank %d", r);
            PQ_TRY(pq_gints(c, &a1, 1, &av));
            PQ_TRY(pq_gop2(c, PQ_OP_UNSQUEEZE, gv, av, &u));
            pads[(r + 1) + a + 1] = as - 1;
            PQ_TRY(pq_gints(c, pads, 2 * (r + 1), &p));
            PQ_TRY(pq_gop2(c, PQ_OP_PAD, u, p, &m));
            memcpy(dims, cur, sizeof(int64_t) * (size_t)r);
            dims[a] = len * as;
            PQ_TRY(pq_greshape(c, m, dims, r, &u));
            int64_t s0 = 0, e0 = (len - 1) * as + 1;
            PQ_TRY(pq_gslice(c, u, &s0, &e0, &a, 1, &gv));
            cur[a] = e0;
        }
        if (s < 0) { /* reverse along the axis */
            uint32_t in[5];
            int64_t rs = -1, re = INT64_MIN, rstep = -1;
            in[0] = gv;
            PQ_TRY(pq_gints(c, &rs, 1, &in[1]));
            PQ_TRY(pq_gints(c, &re, 1, &in[2]));
            PQ_TRY(pq_gints(c, &a, 1, &in[3]));
            PQ_TRY(pq_gints(c, &rstep, 1, &in[4]));
            PQ_TRY(pq_gop(c, PQ_OP_SLICE, in, 5, &gv));
        }
        int64_t span = (len - 1) * as + 1, low = s > 0 ? first : first - (len - 1) * as;
        begin[a] = low;
        end[a] = xd[a] - low - span;
    }
    return pq_gpad(c, gv, r, begin, end, &c->in_grad[0]);
}

/* The adjoint of Gather(x, idx, axis) for an x whose shape is the i64 vector shp (rank r): the
 * zeros of that shape with g scatter-added at the gathered positions (ScatterND, reduction add;
 * repeated indices accumulate). Axis != 0 goes through transposes putting the axis first. */
static enum pq_status pq_ggather_bwd(pq_grad_ctx *c, uint32_t g, uint32_t idx, int axis,
                                     uint32_t shp, int r, uint32_t *out) {
    int q = c->g->values[idx].shape.rank, rg = c->g->values[g].shape.rank;
    if (q < 0 || rg < 0) return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "indices of unknown rank");
    uint32_t t, zero, z, iu, nid;
    int64_t k;
    if (q == 0) { /* a scalar index: the gathered axis was dropped */
        k = 0;
        PQ_TRY(pq_gints(c, &k, 1, &t));
        PQ_TRY(pq_gop2(c, PQ_OP_UNSQUEEZE, idx, t, &idx));
        k = axis;
        PQ_TRY(pq_gints(c, &k, 1, &t));
        PQ_TRY(pq_gop2(c, PQ_OP_UNSQUEEZE, g, t, &g));
        q = 1;
        rg++;
    }
    k = q;
    PQ_TRY(pq_gints(c, &k, 1, &t));
    PQ_TRY(pq_gop2(c, PQ_OP_UNSQUEEZE, idx, t, &iu));
    int64_t permx[PQ_MAX_RANK], inv[PQ_MAX_RANK];
    if (axis != 0) {
        int64_t pg[PQ_MAX_RANK];
        int j = 0;
        for (int i = 0; i < q; i++)
            pg[j++] = axis + i;
        for (int i = 0; i < axis; i++)
            pg[j++] = i;
        for (int i = axis + q; i < rg; i++)
            pg[j++] = i;
        PQ_TRY(pq_gtranspose(c, g, pg, rg, &t));
        g = t;
        j = 0;
        permx[j++] = axis;
        for (int i = 0; i < r; i++)
            if (i != axis) permx[j++] = i;
        int64_t sv[PQ_MAX_RANK], pv[PQ_MAX_RANK];
        int ns;
        if (pq_gconst_ints(c, shp, sv, PQ_MAX_RANK, &ns) && ns == r) {
            for (int i = 0; i < r; i++)
                pv[i] = sv[permx[i]];
            PQ_TRY(pq_gints(c, pv, r, &shp));
        } else {
            PQ_TRY(pq_gints(c, permx, r, &t));
            PQ_TRY(pq_gop2(c, PQ_OP_GATHER, shp, t, &shp));
        }
    }
    PQ_TRY(pq_gscalar(c, g, 0.0, &zero));
    PQ_TRY(pq_gop2(c, PQ_OP_EXPAND, zero, shp, &z));
    uint32_t in[3] = {z, iu, g};
    uint32_t res;
    PQ_TRY(pq_gb(c, PQ_OP_SCATTER_ND, in, 3, axis != 0 ? &res : out, &nid));
    PQ_TRY(pq_node_set_string(c->g, nid, "reduction", "add", c->err));
    PQ_TRY(pq_grad_infer(c, nid));
    if (axis == 0) return PQ_OK;
    pq_ginverse_perm(permx, r, inv);
    return pq_gtranspose(c, res, inv, r, out);
}

/* y = Gather(x, idx, axis) (embedding lookups included): dx = zeros with g scatter-added at the
 * indices (negative indices count from the end; repeats accumulate). idx gets no gradient. */
enum pq_status pq_grad_gather(pq_grad_ctx *c) {
    uint32_t x = PQ_IN(0), shp;
    int r = c->g->values[x].shape.rank, axis;
    PQ_TRY(pq_gaxis(c, r, 0, &axis));
    PQ_TRY(pq_gshape_of(c, x, &shp));
    return pq_ggather_bwd(c, PQ_G0, PQ_IN(1), axis, shp, r, &c->in_grad[0]);
}

/* Scatter-style node op(data, idx, upd) with attribute axis (when axis >= 0) and reduction. */
static enum pq_status pq_gscatter_op(pq_grad_ctx *c, enum pq_op op, uint32_t data, uint32_t idx,
                                     uint32_t upd, int axis, const char *reduction, uint32_t *out) {
    uint32_t in[3] = {data, idx, upd}, nid;
    PQ_TRY(pq_gb(c, op, in, 3, out, &nid));
    if (axis >= 0) PQ_TRY(pq_node_set_int(c->g, nid, "axis", axis, c->err));
    if (reduction) PQ_TRY(pq_node_set_string(c->g, nid, "reduction", reduction, c->err));
    return pq_grad_infer(c, nid);
}

/* y = GatherElements(x, idx, axis): dx = ScatterElements(zeros, idx, g, axis, reduction add). */
enum pq_status pq_grad_gather_elements(pq_grad_ctx *c) {
    uint32_t x = PQ_IN(0), z;
    int axis;
    PQ_TRY(pq_gaxis(c, c->g->values[x].shape.rank, 0, &axis));
    PQ_TRY(pq_gzeros_like(c, x, &z));
    return pq_gscatter_op(c, PQ_OP_SCATTER_ELEMENTS, z, PQ_IN(1), PQ_G0, axis, "add",
                          &c->in_grad[0]);
}

/* y = GatherND(x, idx) (batch_dims 0): dx = ScatterND(zeros, idx, g, reduction add). */
enum pq_status pq_grad_gather_nd(pq_grad_ctx *c) {
    if (pq_node_attr_int(PQ_NODE, "batch_dims", 0) != 0)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "batch_dims = %lld (only 0)",
                            (long long)pq_node_attr_int(PQ_NODE, "batch_dims", 0));
    uint32_t x = PQ_IN(0), z;
    PQ_TRY(pq_gzeros_like(c, x, &z));
    return pq_gscatter_op(c, PQ_OP_SCATTER_ND, z, PQ_IN(1), PQ_G0, -1, "add", &c->in_grad[0]);
}

/* y = ScatterElements / Scatter / ScatterND(data, idx, upd): reduction none: ddata = g with the
 * written positions zeroed (a scatter of zeros), dupd = the gather of g at idx; reduction add:
 * ddata = g, dupd as before. Other reductions: UNSUPPORTED. */
enum pq_status pq_grad_scatter(pq_grad_ctx *c) {
    enum pq_op op = PQ_NODE->op;
    bool nd = op == PQ_OP_SCATTER_ND;
    const char *red = pq_node_attr_string(PQ_NODE, "reduction", "none");
    if (strcmp(red, "none") != 0 && strcmp(red, "add") != 0)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "reduction = %s (none or add)", red);
    int axis = -1;
    if (!nd) PQ_TRY(pq_gaxis(c, c->g->values[PQ_IN(0)].shape.rank, 0, &axis));
    uint32_t idx = PQ_IN(1), upd = PQ_IN(2), z, nid;
    if (c->need[0]) {
        if (!strcmp(red, "add")) {
            c->in_grad[0] = PQ_G0;
        } else {
            PQ_TRY(pq_gzeros_like(c, upd, &z));
            PQ_TRY(pq_gscatter_op(c, nd ? PQ_OP_SCATTER_ND : PQ_OP_SCATTER_ELEMENTS, PQ_G0, idx, z,
                                  axis, NULL, &c->in_grad[0]));
        }
    }
    if (c->need[2]) {
        uint32_t in[2] = {PQ_G0, idx};
        PQ_TRY(pq_gb(c, nd ? PQ_OP_GATHER_ND : PQ_OP_GATHER_ELEMENTS, in, 2, &c->in_grad[2], &nid));
        if (!nd) PQ_TRY(pq_node_set_int(c->g, nid, "axis", axis, c->err));
        PQ_TRY(pq_grad_infer(c, nid));
    }
    return PQ_OK;
}

/* y = Expand(x, shape): dx = g summed over the broadcast axes. */
enum pq_status pq_grad_expand(pq_grad_ctx *c) {
    return pq_gunbroadcast(c, PQ_G0, PQ_IN(0), &c->in_grad[0]);
}

/* y = Tile(x, repeats): g viewed as [r_0, d_0, r_1, d_1, ...] (repeat-major, only axes with
 * r_i > 1 split) and summed over the repeat axes; the index map when x's shape or the repeats are
 * known only at run time. */
enum pq_status pq_grad_tile(pq_grad_ctx *c) {
    uint32_t x = PQ_IN(0), v;
    int64_t xd[PQ_MAX_RANK], rep[PQ_MAX_RANK], dims[2 * PQ_MAX_RANK], axes[PQ_MAX_RANK];
    int r, nr, nd = 0, na = 0;
    if (!pq_gstatic(c, x, xd, &r) || !pq_gconst_ints(c, PQ_IN(1), rep, PQ_MAX_RANK, &nr) || nr != r)
        return pq_gindex_adjoint(c);
    for (int i = 0; i < r; i++) {
        if (rep[i] > 1) {
            axes[na++] = nd;
            dims[nd++] = rep[i];
        }
        dims[nd++] = xd[i];
    }
    if (na == 0) {
        c->in_grad[0] = PQ_G0;
        return PQ_OK;
    }
    if (nd > PQ_MAX_RANK)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "%d tiled axes of rank %d", na, r);
    PQ_TRY(pq_greshape(c, PQ_G0, dims, nd, &v));
    return pq_greduce_sum(c, v, axes, na, false, &c->in_grad[0]);
}

/* y = Pad(x, pads, value?, axes?). constant mode (pads and axes constants): dx = Pad(g, -pads)
 * (the crop; negative forward pads become zero padding), dvalue = sum(g) - sum(dx). edge,
 * reflect and wrap: every output element reads one input element, so per padded axis the pad is a
 * Gather with a constant index table, and dx is that gather's scatter-add, axis by axis (the
 * index map when x's shape or the pads are known only at run time). */
enum pq_status pq_grad_pad(pq_grad_ctx *c) {
    uint32_t x = PQ_IN(0);
    int64_t xd[PQ_MAX_RANK], pv[2 * PQ_MAX_RANK], av[PQ_MAX_RANK];
    int r = c->g->values[x].shape.rank, np = 0, na = r;
    const char *mode = pq_node_attr_string(PQ_NODE, "mode", "constant");
    bool constant = !strcmp(mode, "constant"), stat = pq_gstatic(c, x, xd, NULL);
    if (r < 0) return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "input of unknown rank");
    bool known = pq_gconst_ints(c, PQ_IN(1), pv, 2 * PQ_MAX_RANK, &np);
    if (known && PQ_IN(3) != PQ_NONE) known = pq_gconst_ints(c, PQ_IN(3), av, PQ_MAX_RANK, &na);
    if (!constant && (!known || !stat)) {
        if (c->need[0]) PQ_TRY(pq_gindex_adjoint(c));
        return PQ_OK;
    }
    if (!known)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED,
                            "constant mode with pads or axes known only at run time");
    if (PQ_IN(3) == PQ_NONE)
        for (int i = 0; i < r; i++)
            av[i] = i;
    if (np != 2 * na) return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "pads of the wrong length");
    int64_t b[PQ_MAX_RANK] = {0}, e[PQ_MAX_RANK] = {0};
    for (int i = 0; i < na; i++) {
        int64_t a = av[i] < 0 ? av[i] + r : av[i];
        if (a < 0 || a >= r) return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "bad axis");
        b[a] = pv[i];
        e[a] = pv[na + i];
    }
    if (constant) {
        int64_t nb[PQ_MAX_RANK], ne[PQ_MAX_RANK];
        for (int i = 0; i < r; i++) {
            nb[i] = -b[i];
            ne[i] = -e[i];
        }
        uint32_t dx;
        PQ_TRY(pq_gpad(c, PQ_G0, r, nb, ne, &dx));
        if (c->need[0]) c->in_grad[0] = dx;
        if (PQ_IN(2) != PQ_NONE && c->need[2]) {
            uint32_t s1, s2, d;
            PQ_TRY(pq_greduce_sum(c, PQ_G0, NULL, 0, false, &s1));
            PQ_TRY(pq_greduce_sum(c, dx, NULL, 0, false, &s2));
            PQ_TRY(pq_gop2(c, PQ_OP_SUB, s1, s2, &d));
            PQ_TRY(pq_greshape_like(c, d, PQ_IN(2), &c->in_grad[2]));
        }
        return PQ_OK;
    }
    if (strcmp(mode, "edge") && strcmp(mode, "reflect") && strcmp(mode, "wrap"))
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "mode %s", mode);
    if (!c->need[0]) return PQ_OK;
    /* forward order: axis 0 first (any order gives the same gather); backward: last axis first */
    int64_t cur[PQ_MAX_RANK];
    memcpy(cur, xd, sizeof(int64_t) * (size_t)r);
    for (int i = 0; i < r; i++)
        cur[i] = xd[i] + b[i] + e[i];
    uint32_t gv = PQ_G0;
    for (int a = r - 1; a >= 0; a--) {
        if (b[a] == 0 && e[a] == 0) continue;
        int64_t d = xd[a], ny = cur[a];
        if (d == 0) return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "padding an empty axis");
        int64_t *tab = pq_malloc(sizeof(int64_t) * (size_t)(ny ? ny : 1));
        if (!tab) return pq_error_nomem(c->err, "Pad gradient");
        for (int64_t o = 0; o < ny; o++) {
            int64_t i = o - b[a];
            if (mode[0] == 'e')
                i = i < 0 ? 0 : i >= d ? d - 1 : i;
            else if (mode[0] == 'w')
                i = ((i % d) + d) % d;
            else if (d == 1)
                i = 0;
            else { /* reflect: period 2(d - 1), edges not repeated */
                int64_t p = 2 * (d - 1);
                i = ((i % p) + p) % p;
                i = i < d ? i : p - i;
            }
            tab[o] = i;
        }
        uint32_t idx, shp;
        enum pq_status st = pq_gints(c, tab, (int)ny, &idx);
        pq_free(tab);
        PQ_TRY(st);
        cur[a] = d;
        PQ_TRY(pq_gints(c, cur, r, &shp));
        PQ_TRY(pq_ggather_bwd(c, gv, idx, a, shp, r, &gv));
    }
    c->in_grad[0] = gv;
    return PQ_OK;
}

/* Reshape(g, mid[0..rm)) -> Transpose(perm) -> Reshape(shape of x). */
static enum pq_status pq_grtr(pq_grad_ctx *c, const int64_t *mid, int rm, const int64_t *perm,
                              uint32_t *out) {
    uint32_t t, u;
    PQ_TRY(pq_greshape(c, PQ_G0, mid, rm, &t));
    PQ_TRY(pq_gtranspose(c, t, perm, rm, &u));
    return pq_greshape_like(c, u, PQ_IN(0), out);
}

/* DepthToSpace (x [b, c, h, w] -> [b, c / bs^2, h bs, w bs]) undone: g viewed as
 * [b, c', h, bs, w, bs], transposed back to the DCR ([b, bs, bs, c', h, w]) or CRD
 * ([b, c', bs, bs, h, w]) order and reshaped to x (the index map when x's shape is not static). */
enum pq_status pq_grad_depth_to_space(pq_grad_ctx *c) {
    int64_t xd[PQ_MAX_RANK];
    int r;
    int64_t bs = pq_node_attr_int(PQ_NODE, "blocksize", 0);
    if (!pq_gstatic(c, PQ_IN(0), xd, &r) || r != 4 || bs < 1) return pq_gindex_adjoint(c);
    bool crd = !strcmp(pq_node_attr_string(PQ_NODE, "mode", "DCR"), "CRD");
    int64_t cp = xd[1] / (bs * bs);
    int64_t mid[6] = {xd[0], cp, xd[2], bs, xd[3], bs};
    int64_t dcr[6] = {0, 3, 5, 1, 2, 4}, crdp[6] = {0, 1, 3, 5, 2, 4};
    return pq_grtr(c, mid, 6, crd ? crdp : dcr, &c->in_grad[0]);
}

/* SpaceToDepth (x [b, c, h, w] -> [b, c bs^2, h / bs, w / bs]) undone: g viewed as
 * [b, bs, bs, c, h', w'], transposed to [b, c, h', bs, w', bs] and reshaped to x (the index map
 * when x's shape is not static). */
enum pq_status pq_grad_space_to_depth(pq_grad_ctx *c) {
    int64_t xd[PQ_MAX_RANK];
    int r;
    int64_t bs = pq_node_attr_int(PQ_NODE, "blocksize", 0);
    if (!pq_gstatic(c, PQ_IN(0), xd, &r) || r != 4 || bs < 1) return pq_gindex_adjoint(c);
    int64_t mid[6] = {xd[0], bs, bs, xd[1], xd[2] / bs, xd[3] / bs};
    int64_t perm[6] = {0, 3, 4, 1, 5, 2};
    return pq_grtr(c, mid, 6, perm, &c->in_grad[0]);
}

/* Copy of the forward node applied to g (same other inputs and attributes). */
static enum pq_status pq_gsame_op(pq_grad_ctx *c, uint32_t *out, uint32_t *nid_out) {
    uint32_t n_in = PQ_NODE->n_inputs, in[8], nid;
    if (n_in > 8) return pq_error_set(c->err, PQ_ERR_INTERNAL, "too many inputs");
    for (uint32_t i = 0; i < n_in; i++)
        in[i] = PQ_IN(i);
    in[0] = PQ_G0;
    PQ_TRY(pq_gb(c, PQ_NODE->op, in, n_in, out, &nid));
    PQ_TRY(pq_gcopy_attrs(c, c->node, nid));
    if (nid_out) *nid_out = nid;
    return PQ_OK;
}

/* Trilu keeps a fixed triangle: dx = Trilu(g) with the same k and upper. */
enum pq_status pq_grad_trilu(pq_grad_ctx *c) {
    uint32_t nid;
    PQ_TRY(pq_gsame_op(c, &c->in_grad[0], &nid));
    return pq_grad_infer(c, nid);
}

/* ReverseSequence is its own inverse: dx = ReverseSequence(g, lengths). */
enum pq_status pq_grad_reverse_sequence(pq_grad_ctx *c) {
    return pq_grad_trilu(c);
}

/* y = CumSum(x, axis): dx = CumSum(g, axis) in the other direction (same exclusive). */
enum pq_status pq_grad_cum_sum(pq_grad_ctx *c) {
    uint32_t nid;
    PQ_TRY(pq_gsame_op(c, &c->in_grad[0], &nid));
    bool rev = pq_node_attr_int(PQ_NODE, "reverse", 0) != 0;
    PQ_TRY(pq_node_set_int(c->g, nid, "reverse", rev ? 0 : 1, c->err));
    return pq_grad_infer(c, nid);
}

/* y = Compress(x, cond, axis?): the kept positions are NonZero(cond); dx is their gather's
 * scatter-add (over the flattened x without axis). */
enum pq_status pq_grad_compress(pq_grad_ctx *c) {
    uint32_t x = PQ_IN(0), nz, idx, t, shp;
    int64_t zero = 0;
    PQ_TRY(pq_gop1(c, PQ_OP_NON_ZERO, PQ_IN(1), &nz));
    PQ_TRY(pq_gints(c, &zero, 1, &t));
    PQ_TRY(pq_gop2(c, PQ_OP_SQUEEZE, nz, t, &idx));
    if (pq_node_attr(PQ_NODE, "axis")) {
        int r = c->g->values[x].shape.rank, axis;
        PQ_TRY(pq_gaxis(c, r, 0, &axis));
        PQ_TRY(pq_gshape_of(c, x, &shp));
        return pq_ggather_bwd(c, PQ_G0, idx, axis, shp, r, &c->in_grad[0]);
    }
    int64_t m1 = -1;
    uint32_t flat, d;
    PQ_TRY(pq_greshape(c, x, &m1, 1, &flat));
    PQ_TRY(pq_gshape_of(c, flat, &shp));
    PQ_TRY(pq_ggather_bwd(c, PQ_G0, idx, 0, shp, 1, &d));
    return pq_greshape_like(c, d, x, &c->in_grad[0]);
}

/* (values, indices) = TopK(x, k, axis): dx = ScatterElements(zeros, indices, g_values, axis,
 * reduction add). */
enum pq_status pq_grad_top_k(pq_grad_ctx *c) {
    uint32_t x = PQ_IN(0), z;
    if (PQ_G0 == PQ_NONE) return pq_gzeros_like(c, x, &c->in_grad[0]);
    if (PQ_OUT(1) == PQ_NONE)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "the indices output is omitted");
    int axis;
    PQ_TRY(pq_gaxis(c, c->g->values[x].shape.rank, -1, &axis));
    PQ_TRY(pq_gzeros_like(c, x, &z));
    return pq_gscatter_op(c, PQ_OP_SCATTER_ELEMENTS, z, PQ_OUT(1), PQ_G0, axis, "add",
                          &c->in_grad[0]);
}

/* y = MaxUnpool(x, I, output_shape?): y.flat[I] = x over the unpooled shape D (from kernel_shape,
 * strides, pads; a larger output_shape pads D at the end): dx = Gather(flat(g cropped to D), I). */
enum pq_status pq_grad_max_unpool(pq_grad_ctx *c) {
    const pq_node *n = PQ_NODE;
    int64_t xd[PQ_MAX_RANK], yd[PQ_MAX_RANK], k[3], s[3], p[6], D[PQ_MAX_RANK];
    int r;
    if (!pq_gstatic(c, PQ_IN(0), xd, &r) || !pq_gstatic(c, PQ_OUT(0), yd, NULL) || r < 3 || r > 5)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "needs static shapes of rank 3 to 5");
    int nsp = r - 2;
    if (!pq_gattr_ints(n, "kernel_shape", nsp, 1, k) || !pq_gattr_ints(n, "strides", nsp, 1, s) ||
        !pq_gattr_ints(n, "pads", 2 * nsp, 0, p))
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "kernel_shape/strides/pads");
    D[0] = xd[0];
    D[1] = xd[1];
    bool crop = false;
    for (int i = 0; i < nsp; i++) {
        D[2 + i] = (xd[2 + i] - 1) * s[i] + k[i] - p[i] - p[nsp + i];
        crop = crop || D[2 + i] != yd[2 + i];
    }
    uint32_t gv = PQ_G0, flat;
    if (crop) {
        int64_t st[PQ_MAX_RANK] = {0}, ax[PQ_MAX_RANK];
        for (int i = 0; i < r; i++)
            ax[i] = i;
        PQ_TRY(pq_gslice(c, gv, st, D, ax, r, &gv));
    }
    int64_t m1 = -1;
    PQ_TRY(pq_greshape(c, gv, &m1, 1, &flat));
    return pq_gop2(c, PQ_OP_GATHER, flat, PQ_IN(1), &c->in_grad[0]);
}

/* y = Resize(x, roi?, scales?, sizes?): every mode is linear in x; dx = ResizeGrad(g, shape of x,
 * roi, scales, sizes) with the forward's attributes (the transpose of the same taps). roi, scales
 * and sizes are not differentiated (zeros when asked). */
enum pq_status pq_grad_resize(pq_grad_ctx *c) {
    uint32_t x = PQ_IN(0), shp, nid;
    if (c->need[0]) {
        PQ_TRY(pq_gshape_of(c, x, &shp));
        uint32_t in[5] = {PQ_G0, shp, PQ_IN(1), PQ_IN(2), PQ_IN(3)}, n_in = 5;
        while (n_in > 2 && in[n_in - 1] == PQ_NONE)
            n_in--;
        PQ_TRY(pq_gb(c, PQ_OP_RESIZE_GRAD, in, n_in, &c->in_grad[0], &nid));
        PQ_TRY(pq_gcopy_attrs(c, c->node, nid));
        PQ_TRY(pq_grad_infer(c, nid));
    }
    for (uint32_t i = 1; i < PQ_NODE->n_inputs; i++)
        if (c->need[i]) PQ_TRY(pq_gzeros_like(c, PQ_IN(i), &c->in_grad[i]));
    return PQ_OK;
}
