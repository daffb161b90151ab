/* Shape and type inference for the neural-network ops: MatMul, Gemm, Conv, ConvTranspose,
 * pooling, normalisations, ConvInteger and MatMulInteger (recurrent ops are in infer_rnn.c).
 * Semantics are ONNX's (docs/canonical-ops.md); spatial ops handle 1 to 3 spatial dims. */
#include <string.h>

#include "attrs.h"
#include "infer_rules.h"

#define PQ_NN_MAX_SPATIAL 3

static bool pq_nn_is_float(enum pq_dtype t) {
    return pq_dtype_is_float(t);
}

/* INVALID unless input i is present and has a float dtype (unknown dtype passes). */
static enum pq_status pq_nn_need_float(pq_infer_ctx *c, uint32_t i, const char *what) {
    const pq_type_info *t = &c->in[i];
    if (t->dtype != PQ_DTYPE_UNDEFINED && !pq_nn_is_float(t->dtype))
        return pq_error_set(c->err, PQ_ERR_INVALID, "%s must be a float tensor, got %s", what,
                            pq_dtype_name(t->dtype));
    return PQ_OK;
}

/* INVALID when input i's dtype differs from input 0's (both known). */
static enum pq_status pq_nn_same_dtype(pq_infer_ctx *c, uint32_t i, const char *what) {
    if (i >= c->n_in || !c->in[i].present) return PQ_OK;
    enum pq_dtype a = c->in[0].dtype, b = c->in[i].dtype;
    if (a != PQ_DTYPE_UNDEFINED && b != PQ_DTYPE_UNDEFINED && a != b)
        return pq_error_set(c->err, PQ_ERR_INVALID, "%s has dtype %s but the input is %s", what,
                            pq_dtype_name(b), pq_dtype_name(a));
    return PQ_OK;
}

/* Reads an INTS attribute; *n = -1 when absent. INVALID when it has another type or more than
 * max values. */
static enum pq_status pq_nn_ints(pq_infer_ctx *c, const char *name, int64_t *v, int max, int *n) {
    const pq_attr *a = pq_node_attr(c->node, name);
    *n = -1;
    if (!a) return PQ_OK;
    if (a->type != PQ_ATTR_INTS)
        return pq_error_set(c->err, PQ_ERR_INVALID, "attribute '%s' must be a list of ints", name);
    if ((int)a->u.ints.n > max)
        return pq_error_set(c->err, PQ_ERR_INVALID, "attribute '%s' has %u values, at most %d",
                            name, a->u.ints.n, max);
    for (uint32_t i = 0; i < a->u.ints.n; i++)
        v[i] = a->u.ints.v[i];
    *n = (int)a->u.ints.n;
    return PQ_OK;
}

/* An attribute list that must have exactly want values when present; fills defaults otherwise. */
static enum pq_status pq_nn_ints_n(pq_infer_ctx *c, const char *name, int64_t *v, int want,
                                   int64_t def, int64_t min) {
    int n;
    PQ_TRY(pq_nn_ints(c, name, v, 2 * PQ_NN_MAX_SPATIAL, &n));
    if (n < 0) {
        for (int i = 0; i < want; i++)
            v[i] = def;
        return PQ_OK;
    }
    if (n != want)
        return pq_error_set(c->err, PQ_ERR_INVALID, "attribute '%s' has %d values, expected %d",
                            name, n, want);
    for (int i = 0; i < want; i++)
        if (v[i] < min)
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "attribute '%s'[%d] = %lld, must be >= %lld", name, i,
                                (long long)v[i], (long long)min);
    return PQ_OK;
}

enum pq_nn_autopad { PQ_NN_NOTSET, PQ_NN_SAME_UPPER, PQ_NN_SAME_LOWER, PQ_NN_VALID };

static enum pq_status pq_nn_autopad(pq_infer_ctx *c, enum pq_nn_autopad *ap) {
    const pq_attr *a = pq_node_attr(c->node, "auto_pad");
    *ap = PQ_NN_NOTSET;
    if (!a) return PQ_OK;
    if (a->type != PQ_ATTR_STRING)
        return pq_error_set(c->err, PQ_ERR_INVALID, "attribute 'auto_pad' must be a string");
    const char *s = a->u.s;
    if (!strcmp(s, "NOTSET") || !strcmp(s, ""))
        *ap = PQ_NN_NOTSET;
    else if (!strcmp(s, "SAME_UPPER"))
        *ap = PQ_NN_SAME_UPPER;
    else if (!strcmp(s, "SAME_LOWER"))
        *ap = PQ_NN_SAME_LOWER;
    else if (!strcmp(s, "VALID"))
        *ap = PQ_NN_VALID;
    else
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "attribute 'auto_pad' = '%s' is not one of "
                            "NOTSET, SAME_UPPER, SAME_LOWER, VALID",
                            s);
    return PQ_OK;
}

/* Window attributes shared by Conv, pooling and ConvInteger. */
typedef struct pq_nn_win {
    int nsp;
    int64_t k[PQ_NN_MAX_SPATIAL], s[PQ_NN_MAX_SPATIAL], d[PQ_NN_MAX_SPATIAL];
    int64_t pads[2 * PQ_NN_MAX_SPATIAL];
    enum pq_nn_autopad ap;
    bool ceil_mode;
} pq_nn_win;

/* Reads strides, dilations, pads, auto_pad (and ceil_mode when allowed) for nsp spatial dims. */
static enum pq_status pq_nn_window_attrs(pq_infer_ctx *c, int nsp, bool ceil_ok, pq_nn_win *w) {
    w->nsp = nsp;
    PQ_TRY(pq_nn_ints_n(c, "strides", w->s, nsp, 1, 1));
    PQ_TRY(pq_nn_ints_n(c, "dilations", w->d, nsp, 1, 1));
    PQ_TRY(pq_nn_ints_n(c, "pads", w->pads, 2 * nsp, 0, 0));
    PQ_TRY(pq_nn_autopad(c, &w->ap));
    int64_t cm = pq_node_attr_int(c->node, "ceil_mode", 0);
    if (cm != 0 && (cm != 1 || !ceil_ok))
        return pq_error_set(c->err, PQ_ERR_INVALID, "attribute 'ceil_mode' = %lld is invalid",
                            (long long)cm);
    w->ceil_mode = cm == 1;
    return PQ_OK;
}

/* Output size of one spatial dim (ONNX formula; ceil mode drops a window starting in the end
 * padding). INVALID when the window does not fit. */
static enum pq_status pq_nn_out_dim(pq_infer_ctx *c, const pq_nn_win *w, int i, int64_t in,
                                    int64_t *out) {
    int64_t ek = (w->k[i] - 1) * w->d[i] + 1;
    if (w->ap == PQ_NN_SAME_UPPER || w->ap == PQ_NN_SAME_LOWER) {
        *out = (in + w->s[i] - 1) / w->s[i];
        return PQ_OK;
    }
    int64_t pb = w->ap == PQ_NN_VALID ? 0 : w->pads[i];
    int64_t pe = w->ap == PQ_NN_VALID ? 0 : w->pads[i + w->nsp];
    int64_t span = in + pb + pe - ek;
    if (span < 0)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "spatial dim %d: input %lld with pads %lld+%lld is smaller than the "
                            "dilated kernel %lld",
                            i, (long long)in, (long long)pb, (long long)pe, (long long)ek);
    int64_t o = span / w->s[i] + 1;
    if (w->ceil_mode && span % w->s[i] != 0) {
        o++;
        if ((o - 1) * w->s[i] >= in + pb) o--;
    }
    *out = o;
    return PQ_OK;
}

/* Spatial output dims of a windowed op into out->dims[2..]. */
static enum pq_status pq_nn_spatial_out(pq_infer_ctx *c, const pq_nn_win *w, const pq_shape *x,
                                        pq_shape *out) {
    for (int i = 0; i < w->nsp; i++) {
        pq_dim di = x->dims[2 + i];
        if (!pq_dim_known(di)) {
            out->dims[2 + i] = pq_dim_unknown();
            continue;
        }
        int64_t o = 0;
        PQ_TRY(pq_nn_out_dim(c, w, i, di.size, &o));
        out->dims[2 + i] = pq_dim_of(o);
    }
    return PQ_OK;
}

/* Checks X's rank for an N,C,spatial op; *nsp = spatial rank (-1 when unknown). */
static enum pq_status pq_nn_spatial_rank(pq_infer_ctx *c, const pq_shape *x, int *nsp) {
    *nsp = -1;
    if (x->rank < 0) return PQ_OK;
    if (x->rank < 3)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "input has rank %d, expected N, C and at "
                            "least one spatial dim",
                            x->rank);
    if (x->rank - 2 > PQ_NN_MAX_SPATIAL)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "%d spatial dims (at most %d supported)",
                            x->rank - 2, PQ_NN_MAX_SPATIAL);
    *nsp = x->rank - 2;
    return PQ_OK;
}

/* ---- MatMul / MatMulInteger ---- */

static enum pq_status pq_nn_matmul_shape(pq_infer_ctx *c, pq_shape *out) {
    const pq_shape *a = &c->in[0].shape, *b = &c->in[1].shape;
    if (a->rank < 0 || b->rank < 0) {
        *out = pq_shape_unknown();
        return PQ_OK;
    }
    if (a->rank == 0 || b->rank == 0)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "MatMul operands must have rank >= 1 (got %d "
                            "and %d)",
                            a->rank, b->rank);
    pq_dim ka = a->dims[a->rank - 1], kb = b->dims[b->rank >= 2 ? b->rank - 2 : 0];
    if (pq_dim_known(ka) && pq_dim_known(kb) && ka.size != kb.size)
        return pq_error_set(c->err, PQ_ERR_INVALID, "MatMul inner dims differ: %lld vs %lld",
                            (long long)ka.size, (long long)kb.size);
    pq_shape ba = {0}, bb = {0}, bo;
    ba.rank = a->rank > 2 ? a->rank - 2 : 0;
    bb.rank = b->rank > 2 ? b->rank - 2 : 0;
    for (int i = 0; i < ba.rank; i++)
        ba.dims[i] = a->dims[i];
    for (int i = 0; i < bb.rank; i++)
        bb.dims[i] = b->dims[i];
    PQ_TRY(pq_infer_broadcast(&ba, &bb, &bo, c->err));
    if (a->rank >= 2) bo.dims[bo.rank++] = a->dims[a->rank - 2];
    if (b->rank >= 2) bo.dims[bo.rank++] = b->dims[b->rank - 1];
    *out = bo;
    return PQ_OK;
}

enum pq_status pq_infer_matmul(pq_infer_ctx *c) {
    PQ_TRY(pq_nn_same_dtype(c, 1, "B"));
    enum pq_dtype t = c->in[0].dtype;
    if (t != PQ_DTYPE_UNDEFINED && !pq_nn_is_float(t) && t != PQ_DTYPE_I32 && t != PQ_DTYPE_I64 &&
        t != PQ_DTYPE_U32 && t != PQ_DTYPE_U64)
        return pq_error_set(c->err, PQ_ERR_INVALID, "MatMul does not take %s", pq_dtype_name(t));
    c->out[0].dtype = t;
    return pq_nn_matmul_shape(c, &c->out[0].shape);
}

/* Zero point input i of an integer op: dtype must match the data input d. */
static enum pq_status pq_nn_zero_point(pq_infer_ctx *c, uint32_t i, uint32_t d, const char *what) {
    if (i >= c->n_in || !c->in[i].present) return PQ_OK;
    enum pq_dtype z = c->in[i].dtype, x = c->in[d].dtype;
    if (z != PQ_DTYPE_UNDEFINED && x != PQ_DTYPE_UNDEFINED && z != x)
        return pq_error_set(c->err, PQ_ERR_INVALID, "%s has dtype %s, expected %s like its data",
                            what, pq_dtype_name(z), pq_dtype_name(x));
    if (c->in[i].shape.rank > 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "%s must be a scalar or 1-D (rank %d)", what,
                            c->in[i].shape.rank);
    return PQ_OK;
}

static enum pq_status pq_nn_need_int8(pq_infer_ctx *c, uint32_t i, const char *what) {
    enum pq_dtype t = c->in[i].dtype;
    if (t != PQ_DTYPE_UNDEFINED && t != PQ_DTYPE_U8 && t != PQ_DTYPE_I8)
        return pq_error_set(c->err, PQ_ERR_INVALID, "%s must be u8 or i8, got %s", what,
                            pq_dtype_name(t));
    return PQ_OK;
}

enum pq_status pq_infer_matmul_integer(pq_infer_ctx *c) {
    PQ_TRY(pq_nn_need_int8(c, 0, "A"));
    PQ_TRY(pq_nn_need_int8(c, 1, "B"));
    PQ_TRY(pq_nn_zero_point(c, 2, 0, "a_zero_point"));
    PQ_TRY(pq_nn_zero_point(c, 3, 1, "b_zero_point"));
    c->out[0].dtype = PQ_DTYPE_I32;
    return pq_nn_matmul_shape(c, &c->out[0].shape);
}

/* ---- Gemm ---- */

enum pq_status pq_infer_gemm(pq_infer_ctx *c) {
    PQ_TRY(pq_nn_need_float(c, 0, "A"));
    PQ_TRY(pq_nn_same_dtype(c, 1, "B"));
    PQ_TRY(pq_nn_same_dtype(c, 2, "C"));
    const pq_shape *a = &c->in[0].shape, *b = &c->in[1].shape;
    bool ta = pq_node_attr_int(c->node, "transA", 0) != 0;
    bool tb = pq_node_attr_int(c->node, "transB", 0) != 0;
    c->out[0].dtype = c->in[0].dtype;
    if ((a->rank >= 0 && a->rank != 2) || (b->rank >= 0 && b->rank != 2))
        return pq_error_set(c->err, PQ_ERR_INVALID, "Gemm needs 2-D A and B (ranks %d and %d)",
                            a->rank, b->rank);
    pq_dim m = a->rank == 2 ? a->dims[ta ? 1 : 0] : pq_dim_unknown();
    pq_dim ka = a->rank == 2 ? a->dims[ta ? 0 : 1] : pq_dim_unknown();
    pq_dim kb = b->rank == 2 ? b->dims[tb ? 1 : 0] : pq_dim_unknown();
    pq_dim n = b->rank == 2 ? b->dims[tb ? 0 : 1] : pq_dim_unknown();
    if (pq_dim_known(ka) && pq_dim_known(kb) && ka.size != kb.size)
        return pq_error_set(c->err, PQ_ERR_INVALID, "Gemm inner dims differ: %lld vs %lld",
                            (long long)ka.size, (long long)kb.size);
    if (c->n_in > 2 && c->in[2].present && c->in[2].shape.rank >= 0) {
        const pq_shape *cs = &c->in[2].shape;
        if (cs->rank > 2)
            return pq_error_set(c->err, PQ_ERR_INVALID, "Gemm C has rank %d, at most 2", cs->rank);
        pq_dim mn[2] = {m, n};
        for (int i = 0; i < cs->rank; i++) {
            pq_dim d = cs->dims[i], want = mn[2 - cs->rank + i];
            if (pq_dim_known(d) && d.size != 1 && pq_dim_known(want) && d.size != want.size)
                return pq_error_set(c->err, PQ_ERR_INVALID,
                                    "Gemm C dim %d = %lld does not broadcast to %lld", i,
                                    (long long)d.size, (long long)want.size);
        }
    }
    pq_shape o = {0};
    o.rank = 2;
    o.dims[0] = m;
    o.dims[1] = n;
    c->out[0].shape = o;
    return PQ_OK;
}

/* ---- Conv / ConvInteger ---- */

/* The shared geometry (ir/attrs.h) from X's and W's known spatial dims (-1 where unknown). */
static enum pq_status pq_nn_conv_geom(pq_infer_ctx *c, int nsp, pq_conv_geom *q) {
    const pq_shape *x = &c->in[0].shape, *w = &c->in[1].shape;
    int64_t in[PQ_NN_MAX_SPATIAL], wk[PQ_NN_MAX_SPATIAL];
    for (int i = 0; i < nsp; i++) {
        pq_dim xd = x->rank >= 0 ? x->dims[2 + i] : pq_dim_unknown();
        pq_dim wd = w->rank >= 0 ? w->dims[2 + i] : pq_dim_unknown();
        in[i] = pq_dim_known(xd) ? xd.size : -1;
        wk[i] = pq_dim_known(wd) ? wd.size : -1;
    }
    return pq_conv_geom_decode(c->node, in, nsp, wk, q, c->err);
}

/* Shared body of Conv and ConvInteger: validates X/W/attributes and sets out[0].shape. */
static enum pq_status pq_nn_conv_shape(pq_infer_ctx *c) {
    const pq_shape *x = &c->in[0].shape, *w = &c->in[1].shape;
    int nsp;
    PQ_TRY(pq_nn_spatial_rank(c, x, &nsp));
    if (nsp < 0 && w->rank >= 0) {
        if (w->rank < 3 || w->rank - 2 > PQ_NN_MAX_SPATIAL)
            return pq_error_set(c->err, PQ_ERR_INVALID, "weight has rank %d", w->rank);
        nsp = w->rank - 2;
    }
    if (x->rank >= 0 && w->rank >= 0 && w->rank != x->rank)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "weight has %d dims, expected %d like the "
                            "input",
                            w->rank, x->rank);
    int64_t group = pq_node_attr_int(c->node, "group", 1);
    if (group < 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "group = %lld must be >= 1", (long long)group);
    if (nsp < 0) {
        c->out[0].shape = pq_shape_unknown();
        return PQ_OK;
    }
    pq_conv_geom q;
    PQ_TRY(pq_nn_conv_geom(c, nsp, &q));
    pq_dim cin = x->rank >= 0 ? x->dims[1] : pq_dim_unknown();
    pq_dim wc = w->rank >= 0 ? w->dims[1] : pq_dim_unknown();
    pq_dim m = w->rank >= 0 ? w->dims[0] : pq_dim_unknown();
    if (pq_dim_known(cin) && pq_dim_known(wc) && cin.size != wc.size * group)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "input has %lld channels but weight expects "
                            "%lld x group %lld",
                            (long long)cin.size, (long long)wc.size, (long long)group);
    if (pq_dim_known(m) && m.size % group != 0)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "%lld output channels not divisible by group "
                            "%lld",
                            (long long)m.size, (long long)group);
    pq_shape o = {0};
    o.rank = nsp + 2;
    o.dims[0] = x->rank >= 0 ? x->dims[0] : pq_dim_unknown();
    o.dims[1] = m;
    for (int i = 0; i < nsp; i++)
        o.dims[2 + i] = q.out[i] >= 0 ? pq_dim_of(q.out[i]) : pq_dim_unknown();
    c->out[0].shape = o;
    return PQ_OK;
}

/* Optional 1-D bias of the output channels (input i). */
static enum pq_status pq_nn_bias(pq_infer_ctx *c, uint32_t i, pq_dim m) {
    if (i >= c->n_in || !c->in[i].present || c->in[i].shape.rank < 0) return PQ_OK;
    const pq_shape *b = &c->in[i].shape;
    if (b->rank != 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "bias must be 1-D (rank %d)", b->rank);
    if (pq_dim_known(b->dims[0]) && pq_dim_known(m) && b->dims[0].size != m.size)
        return pq_error_set(c->err, PQ_ERR_INVALID, "bias has %lld values, expected %lld",
                            (long long)b->dims[0].size, (long long)m.size);
    return PQ_OK;
}

enum pq_status pq_infer_conv(pq_infer_ctx *c) {
    PQ_TRY(pq_nn_need_float(c, 0, "X"));
    PQ_TRY(pq_nn_same_dtype(c, 1, "W"));
    PQ_TRY(pq_nn_same_dtype(c, 2, "B"));
    c->out[0].dtype = c->in[0].dtype;
    PQ_TRY(pq_nn_conv_shape(c));
    pq_dim m = c->in[1].shape.rank >= 1 ? c->in[1].shape.dims[0] : pq_dim_unknown();
    return pq_nn_bias(c, 2, m);
}

enum pq_status pq_infer_conv_integer(pq_infer_ctx *c) {
    PQ_TRY(pq_nn_need_int8(c, 0, "x"));
    PQ_TRY(pq_nn_need_int8(c, 1, "w"));
    PQ_TRY(pq_nn_zero_point(c, 2, 0, "x_zero_point"));
    PQ_TRY(pq_nn_zero_point(c, 3, 1, "w_zero_point"));
    if (c->n_in > 2 && c->in[2].present && c->in[2].shape.rank == 1 &&
        pq_dim_known(c->in[2].shape.dims[0]) && c->in[2].shape.dims[0].size != 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "x_zero_point must have one value");
    c->out[0].dtype = PQ_DTYPE_I32;
    return pq_nn_conv_shape(c);
}

/* ---- ConvTranspose ---- */

enum pq_status pq_infer_conv_transpose(pq_infer_ctx *c) {
    PQ_TRY(pq_nn_need_float(c, 0, "X"));
    PQ_TRY(pq_nn_same_dtype(c, 1, "W"));
    PQ_TRY(pq_nn_same_dtype(c, 2, "B"));
    c->out[0].dtype = c->in[0].dtype;
    const pq_shape *x = &c->in[0].shape, *w = &c->in[1].shape;
    int nsp;
    PQ_TRY(pq_nn_spatial_rank(c, x, &nsp));
    if (x->rank >= 0 && w->rank >= 0 && w->rank != x->rank)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "weight has %d dims, expected %d like the "
                            "input",
                            w->rank, x->rank);
    int64_t group = pq_node_attr_int(c->node, "group", 1);
    if (group < 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "group = %lld must be >= 1", (long long)group);
    if (nsp < 0) {
        c->out[0].shape = pq_shape_unknown();
        return PQ_OK;
    }
    pq_conv_geom q;
    PQ_TRY(pq_nn_conv_geom(c, nsp, &q));
    pq_dim cin = x->dims[1];
    pq_dim wc = w->rank >= 0 ? w->dims[0] : pq_dim_unknown();
    pq_dim wm = w->rank >= 0 ? w->dims[1] : pq_dim_unknown();
    if (pq_dim_known(cin) && pq_dim_known(wc) && cin.size != wc.size)
        return pq_error_set(c->err, PQ_ERR_INVALID, "input has %lld channels, weight has %lld",
                            (long long)cin.size, (long long)wc.size);
    if (pq_dim_known(wc) && wc.size % group != 0)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "%lld input channels not divisible by group "
                            "%lld",
                            (long long)wc.size, (long long)group);
    pq_shape o = {0};
    o.rank = nsp + 2;
    o.dims[0] = x->dims[0];
    o.dims[1] = pq_dim_known(wm) ? pq_dim_of(wm.size * group) : pq_dim_unknown();
    for (int i = 0; i < nsp; i++)
        o.dims[2 + i] = q.out[i] >= 0 ? pq_dim_of(q.out[i]) : pq_dim_unknown();
    c->out[0].shape = o;
    return pq_nn_bias(c, 2, o.dims[1]);
}

/* ---- pooling ---- */

static enum pq_status pq_nn_pool(pq_infer_ctx *c, bool is_max) {
    const pq_shape *x = &c->in[0].shape;
    enum pq_dtype t = c->in[0].dtype;
    if (t != PQ_DTYPE_UNDEFINED && !pq_nn_is_float(t) &&
        !(is_max && (t == PQ_DTYPE_U8 || t == PQ_DTYPE_I8)))
        return pq_error_set(c->err, PQ_ERR_INVALID, "%s does not take %s",
                            is_max ? "MaxPool" : "AveragePool", pq_dtype_name(t));
    c->out[0].dtype = t;
    if (c->n_out > 1 && c->out[1].present) {
        if (!is_max) return pq_error_set(c->err, PQ_ERR_INVALID, "AveragePool has one output");
        c->out[1].dtype = PQ_DTYPE_I64;
    }
    int64_t so = pq_node_attr_int(c->node, "storage_order", 0);
    if (so != 0 && so != 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "storage_order = %lld must be 0 or 1",
                            (long long)so);
    int64_t cip = pq_node_attr_int(c->node, "count_include_pad", 0);
    if (cip != 0 && cip != 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "count_include_pad = %lld must be 0 or 1",
                            (long long)cip);
    int64_t ks[PQ_NN_MAX_SPATIAL + 1];
    int nk;
    PQ_TRY(pq_nn_ints(c, "kernel_shape", ks, PQ_NN_MAX_SPATIAL + 1, &nk));
    if (nk < 0) return pq_error_set(c->err, PQ_ERR_INVALID, "attribute 'kernel_shape' is required");
    int nsp;
    PQ_TRY(pq_nn_spatial_rank(c, x, &nsp));
    if (nsp < 0) {
        if (nk > PQ_NN_MAX_SPATIAL)
            return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "%d spatial dims", nk);
        nsp = nk;
    }
    if (nk != nsp)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "kernel_shape has %d values for %d spatial "
                            "dims",
                            nk, nsp);
    pq_nn_win win;
    PQ_TRY(pq_nn_window_attrs(c, nsp, true, &win));
    for (int i = 0; i < nsp; i++) {
        if (ks[i] < 1)
            return pq_error_set(c->err, PQ_ERR_INVALID, "kernel_shape[%d] = %lld must be >= 1", i,
                                (long long)ks[i]);
        win.k[i] = ks[i];
        if (win.ap == PQ_NN_NOTSET && (win.pads[i] >= (ks[i] - 1) * win.d[i] + 1 ||
                                       win.pads[i + nsp] >= (ks[i] - 1) * win.d[i] + 1))
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "pads of spatial dim %d must be smaller "
                                "than the kernel",
                                i);
    }
    pq_shape o = {0};
    if (x->rank < 0) {
        o = pq_shape_unknown();
    } else {
        o.rank = x->rank;
        o.dims[0] = x->dims[0];
        o.dims[1] = x->dims[1];
        PQ_TRY(pq_nn_spatial_out(c, &win, x, &o));
    }
    c->out[0].shape = o;
    if (c->n_out > 1 && c->out[1].present) c->out[1].shape = o;
    return PQ_OK;
}

enum pq_status pq_infer_max_pool(pq_infer_ctx *c) {
    return pq_nn_pool(c, true);
}
enum pq_status pq_infer_average_pool(pq_infer_ctx *c) {
    return pq_nn_pool(c, false);
}

enum pq_status pq_infer_global_pool(pq_infer_ctx *c) {
    PQ_TRY(pq_nn_need_float(c, 0, "X"));
    const pq_shape *x = &c->in[0].shape;
    int nsp;
    PQ_TRY(pq_nn_spatial_rank(c, x, &nsp));
    c->out[0].dtype = c->in[0].dtype;
    pq_shape o = *x;
    for (int i = 2; i < o.rank; i++)
        o.dims[i] = pq_dim_of(1);
    c->out[0].shape = o;
    return PQ_OK;
}

/* ---- normalisations ---- */

/* INVALID unless input i is 1-D with c values (or unknown). */
static enum pq_status pq_nn_per_channel(pq_infer_ctx *c, uint32_t i, pq_dim ch, const char *what) {
    const pq_shape *s = &c->in[i].shape;
    if (s->rank < 0) return PQ_OK;
    if (s->rank != 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "%s must be 1-D (rank %d)", what, s->rank);
    if (pq_dim_known(s->dims[0]) && pq_dim_known(ch) && s->dims[0].size != ch.size)
        return pq_error_set(c->err, PQ_ERR_INVALID, "%s has %lld values for %lld channels", what,
                            (long long)s->dims[0].size, (long long)ch.size);
    return PQ_OK;
}

enum pq_status pq_infer_batch_normalization(pq_infer_ctx *c) {
    static const char *names[] = {"X", "scale", "B", "input_mean", "input_var"};
    PQ_TRY(pq_nn_need_float(c, 0, "X"));
    if (pq_node_attr_int(c->node, "training_mode", 0) != 0)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "training_mode = 1 is not supported");
    const pq_shape *x = &c->in[0].shape;
    if (x->rank >= 0 && x->rank < 2)
        return pq_error_set(c->err, PQ_ERR_INVALID, "input has rank %d, expected >= 2", x->rank);
    pq_dim ch = x->rank >= 2 ? x->dims[1] : pq_dim_unknown();
    for (uint32_t i = 1; i < 5; i++) {
        PQ_TRY(pq_nn_need_float(c, i, names[i]));
        PQ_TRY(pq_nn_per_channel(c, i, ch, names[i]));
    }
    pq_infer_copy(&c->in[0], &c->out[0]);
    for (uint32_t i = 1; i < c->n_out && i < 3; i++) {
        if (!c->out[i].present) continue;
        pq_infer_copy(&c->in[2 + i], &c->out[i]);
    }
    return PQ_OK;
}

enum pq_status pq_infer_instance_normalization(pq_infer_ctx *c) {
    PQ_TRY(pq_nn_need_float(c, 0, "input"));
    PQ_TRY(pq_nn_same_dtype(c, 1, "scale"));
    PQ_TRY(pq_nn_same_dtype(c, 2, "B"));
    const pq_shape *x = &c->in[0].shape;
    if (x->rank >= 0 && x->rank < 3)
        return pq_error_set(c->err, PQ_ERR_INVALID, "input has rank %d, expected >= 3", x->rank);
    pq_dim ch = x->rank >= 2 ? x->dims[1] : pq_dim_unknown();
    PQ_TRY(pq_nn_per_channel(c, 1, ch, "scale"));
    PQ_TRY(pq_nn_per_channel(c, 2, ch, "B"));
    pq_infer_copy(&c->in[0], &c->out[0]);
    return PQ_OK;
}

/* INVALID unless shape s broadcasts unidirectionally to x's dims [axis, rank). */
static enum pq_status pq_nn_bcast_tail(pq_infer_ctx *c, const pq_shape *s, const pq_shape *x,
                                       int axis, const char *what) {
    if (s->rank < 0 || x->rank < 0) return PQ_OK;
    int nt = x->rank - axis;
    if (s->rank > nt)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "%s has rank %d, more than the %d normalised "
                            "dims",
                            what, s->rank, nt);
    for (int i = 0; i < s->rank; i++) {
        pq_dim d = s->dims[i], xd = x->dims[x->rank - s->rank + i];
        if (pq_dim_known(d) && d.size != 1 && pq_dim_known(xd) && d.size != xd.size)
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "%s dim %d = %lld does not broadcast to "
                                "%lld",
                                what, i, (long long)d.size, (long long)xd.size);
    }
    return PQ_OK;
}

enum pq_status pq_infer_layer_normalization(pq_infer_ctx *c) {
    PQ_TRY(pq_nn_need_float(c, 0, "X"));
    PQ_TRY(pq_nn_same_dtype(c, 1, "Scale"));
    PQ_TRY(pq_nn_same_dtype(c, 2, "B"));
    const pq_shape *x = &c->in[0].shape;
    int64_t stash = pq_node_attr_int(c->node, "stash_type", 1);
    if (stash != 1)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "stash_type = %lld (only 1, float)",
                            (long long)stash);
    pq_infer_copy(&c->in[0], &c->out[0]);
    pq_shape ms = pq_shape_unknown();
    if (x->rank >= 0) {
        if (x->rank < 1) return pq_error_set(c->err, PQ_ERR_INVALID, "X must have rank >= 1");
        int axis;
        PQ_TRY(pq_infer_axis(pq_node_attr_int(c->node, "axis", -1), x->rank, &axis, c->err));
        PQ_TRY(pq_nn_bcast_tail(c, &c->in[1].shape, x, axis, "Scale"));
        if (c->n_in > 2 && c->in[2].present)
            PQ_TRY(pq_nn_bcast_tail(c, &c->in[2].shape, x, axis, "B"));
        ms = *x;
        for (int i = axis; i < x->rank; i++)
            ms.dims[i] = pq_dim_of(1);
    }
    for (uint32_t i = 1; i < c->n_out && i < 3; i++) {
        if (!c->out[i].present) continue;
        c->out[i].dtype = PQ_DTYPE_F32;
        c->out[i].shape = ms;
    }
    return PQ_OK;
}

enum pq_status pq_infer_lp_normalization(pq_infer_ctx *c) {
    PQ_TRY(pq_nn_need_float(c, 0, "input"));
    int64_t p = pq_node_attr_int(c->node, "p", 2);
    if (p != 1 && p != 2)
        return pq_error_set(c->err, PQ_ERR_INVALID, "p = %lld must be 1 or 2", (long long)p);
    const pq_shape *x = &c->in[0].shape;
    if (x->rank >= 0) {
        int axis;
        PQ_TRY(pq_infer_axis(pq_node_attr_int(c->node, "axis", -1), x->rank, &axis, c->err));
    }
    pq_infer_copy(&c->in[0], &c->out[0]);
    return PQ_OK;
}
