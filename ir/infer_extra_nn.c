/* Shape-inference rules of the further ONNX ops, part 2: MeanVarianceNormalization, LRN, Einsum
 * (equation parsing with ellipsis), MaxUnpool, Det, NegativeLogLikelihoodLoss,
 * SoftmaxCrossEntropyLoss, QLinearMatMul, QLinearConv and GridSample. */
#include <string.h>

#include "infer_rules.h"

/* ---- MeanVarianceNormalization, LRN, Det ---- */

enum pq_status pq_infer_x_mvn(pq_infer_ctx *c) {
    PQ_TRY(pq_infer_x_float(c, 0, "X"));
    int rank = c->in[0].shape.rank;
    const pq_attr *ax = pq_node_attr(c->node, "axes");
    if (ax && ax->type != PQ_ATTR_INTS)
        return pq_error_set(c->err, PQ_ERR_INVALID, "attribute 'axes' must be a list of ints");
    if (rank >= 0) {
        int n = ax ? (int)ax->u.ints.n : 3;
        static const int64_t def[3] = {0, 2, 3};
        bool seen[PQ_MAX_RANK] = {false};
        for (int i = 0; i < n; i++) {
            int a;
            PQ_TRY(pq_infer_axis(ax ? ax->u.ints.v[i] : def[i], rank, &a, c->err));
            if (seen[a])
                return pq_error_set(c->err, PQ_ERR_INVALID, "axis %d repeated in 'axes'", a);
            seen[a] = true;
        }
    }
    pq_infer_copy(&c->in[0], &c->out[0]);
    return PQ_OK;
}

enum pq_status pq_infer_x_lrn(pq_infer_ctx *c) {
    PQ_TRY(pq_infer_x_float(c, 0, "X"));
    int64_t size = pq_node_attr_int(c->node, "size", 0);
    if (size < 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "attribute 'size' must be >= 1 (got %lld)",
                            (long long)size);
    PQ_TRY(pq_infer_mv_need_rank(c, c->in[0].shape.rank, 2, "X"));
    pq_infer_copy(&c->in[0], &c->out[0]);
    return PQ_OK;
}

enum pq_status pq_infer_x_det(pq_infer_ctx *c) {
    PQ_TRY(pq_infer_x_float(c, 0, "X"));
    const pq_shape *x = &c->in[0].shape;
    c->out[0].dtype = c->in[0].dtype;
    c->out[0].shape = pq_shape_unknown();
    if (x->rank < 0) return PQ_OK;
    if (x->rank < 2) return pq_error_set(c->err, PQ_ERR_INVALID, "X needs rank >= 2");
    pq_dim a = x->dims[x->rank - 2], b = x->dims[x->rank - 1];
    if (pq_dim_known(a) && pq_dim_known(b) && a.size != b.size)
        return pq_error_set(c->err, PQ_ERR_INVALID, "matrices are not square (%lld x %lld)",
                            (long long)a.size, (long long)b.size);
    c->out[0].shape = *x;
    c->out[0].shape.rank = x->rank - 2;
    return PQ_OK;
}

/* ---- Einsum ---- */

/* Label ids: 'a'..'z' 0..25, 'A'..'Z' 26..51, ellipsis dims 52.. (right-aligned). */
#define X_EIN_ELL 52
#define X_EIN_LABELS (X_EIN_ELL + PQ_MAX_RANK)

static int x_ein_label(char ch) {
    if (ch >= 'a' && ch <= 'z') return ch - 'a';
    if (ch >= 'A' && ch <= 'Z') return 26 + (ch - 'A');
    return -1;
}

/* Parses one term s[0..len) for an operand of rank (rank < 0: output, ellipsis -> ell dims).
 * Fills labels[0..*n). */
static enum pq_status x_ein_term(pq_infer_ctx *c, const char *s, size_t len, int rank, int ell,
                                 int *labels, int *n, int *ell_here) {
    int letters = 0, dots = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ') continue;
        if (s[i] == '.') {
            dots++;
            continue;
        }
        if (x_ein_label(s[i]) < 0)
            return pq_error_set(c->err, PQ_ERR_INVALID, "equation has invalid character '%c'",
                                s[i]);
        letters++;
    }
    if (dots != 0 && dots != 3)
        return pq_error_set(c->err, PQ_ERR_INVALID, "equation has a malformed ellipsis");
    int en = dots ? (rank >= 0 ? rank - letters : ell) : 0;
    if (rank >= 0 && (en < 0 || (!dots && letters != rank)))
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "equation term has %d labels for an operand "
                            "of rank %d",
                            letters, rank);
    if (letters + en > PQ_MAX_RANK)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "equation term exceeds rank %d",
                            PQ_MAX_RANK);
    *ell_here = dots ? en : -1;
    int k = 0;
    bool done_ell = false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ') continue;
        if (s[i] == '.') {
            if (!done_ell) {
                for (int j = 0; j < en; j++)
                    labels[k++] = X_EIN_ELL + (ell - en) + j;
                done_ell = true;
            }
            continue;
        }
        labels[k++] = x_ein_label(s[i]);
    }
    *n = k;
    return PQ_OK;
}

enum pq_status pq_infer_x_einsum(pq_infer_ctx *c) {
    const char *eq = pq_node_attr_string(c->node, "equation", NULL);
    if (!eq) return pq_error_set(c->err, PQ_ERR_INVALID, "attribute 'equation' is missing");
    c->out[0].shape = pq_shape_unknown();
    c->out[0].dtype = PQ_DTYPE_UNDEFINED;
    for (uint32_t i = 0; i < c->n_in; i++) {
        PQ_TRY(pq_infer_x_need(c, i, "Inputs"));
        enum pq_dtype t = c->in[i].dtype;
        if (t == PQ_DTYPE_BOOL)
            return pq_error_set(c->err, PQ_ERR_INVALID, "input %u is bool, expected numeric", i);
        if (t != PQ_DTYPE_UNDEFINED) {
            if (c->out[0].dtype != PQ_DTYPE_UNDEFINED && c->out[0].dtype != t)
                return pq_error_set(c->err, PQ_ERR_INVALID, "inputs have different dtypes");
            c->out[0].dtype = t;
        }
    }
    const char *arrow = strstr(eq, "->");
    size_t lhs_len = arrow ? (size_t)(arrow - eq) : strlen(eq);
    /* count terms */
    uint32_t nterms = 1;
    for (size_t i = 0; i < lhs_len; i++)
        nterms += eq[i] == ',';
    if (nterms != c->n_in)
        return pq_error_set(c->err, PQ_ERR_INVALID, "equation has %u operands, node has %u inputs",
                            nterms, c->n_in);
    for (uint32_t i = 0; i < c->n_in; i++)
        if (c->in[i].shape.rank < 0) return PQ_OK;
    int ell = 0;
    /* first pass: the ellipsis rank (max over operands) */
    int labels[PQ_MAX_RANK], n, eh;
    size_t start = 0;
    for (uint32_t t = 0; t < nterms; t++) {
        size_t end = start;
        while (end < lhs_len && eq[end] != ',')
            end++;
        PQ_TRY(x_ein_term(c, eq + start, end - start, c->in[t].shape.rank, 0, labels, &n, &eh));
        if (eh > ell) ell = eh;
        start = end + 1;
    }
    pq_dim size[X_EIN_LABELS];
    int count[X_EIN_LABELS] = {0};
    for (int l = 0; l < X_EIN_LABELS; l++)
        size[l] = pq_dim_of(1);
    bool seen[X_EIN_LABELS] = {false};
    start = 0;
    for (uint32_t t = 0; t < nterms; t++) {
        size_t end = start;
        while (end < lhs_len && eq[end] != ',')
            end++;
        const pq_shape *s = &c->in[t].shape;
        PQ_TRY(x_ein_term(c, eq + start, end - start, s->rank, ell, labels, &n, &eh));
        for (int i = 0; i < n; i++) {
            int l = labels[i];
            count[l]++;
            pq_dim d = s->dims[i];
            bool one = pq_dim_known(d) && d.size == 1;
            if (!seen[l] || (pq_dim_known(size[l]) && size[l].size == 1))
                size[l] = d;
            else if (!one && pq_dim_known(d) && pq_dim_known(size[l]) && d.size != size[l].size)
                return pq_error_set(c->err, PQ_ERR_INVALID, "label dims differ (%lld vs %lld)",
                                    (long long)d.size, (long long)size[l].size);
            else if (!one && !pq_dim_known(size[l]))
                size[l] = d; /* a dim of size 1 broadcasts */
            seen[l] = true;
        }
        start = end + 1;
    }
    pq_shape o;
    memset(&o, 0, sizeof o);
    if (arrow) {
        const char *rhs = arrow + 2;
        PQ_TRY(x_ein_term(c, rhs, strlen(rhs), -1, ell, labels, &n, &eh));
        for (int i = 0; i < n; i++) {
            if (!seen[labels[i]])
                return pq_error_set(c->err, PQ_ERR_INVALID, "output label not in any input");
            for (int j = 0; j < i; j++)
                if (labels[j] == labels[i])
                    return pq_error_set(c->err, PQ_ERR_INVALID, "output label repeated");
            o.dims[i] = size[labels[i]];
        }
        o.rank = n;
    } else {
        for (int j = 0; j < ell; j++)
            o.dims[o.rank++] = size[X_EIN_ELL + j];
        /* labels used once, in ASCII order: uppercase (26..51) before lowercase (0..25) */
        for (int pass = 0; pass < 2; pass++)
            for (int l = pass ? 0 : 26; l < (pass ? 26 : 52); l++)
                if (count[l] == 1) {
                    if (o.rank >= PQ_MAX_RANK)
                        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "output rank exceeds %d",
                                            PQ_MAX_RANK);
                    o.dims[o.rank++] = size[l];
                }
    }
    c->out[0].shape = o;
    return PQ_OK;
}

/* ---- MaxUnpool ---- */

static enum pq_status x_ints_attr(pq_infer_ctx *c, const char *name, int64_t *v, int n, int64_t def,
                                  bool required) {
    const pq_attr *a = pq_node_attr(c->node, name);
    if (!a) {
        if (required)
            return pq_error_set(c->err, PQ_ERR_INVALID, "attribute '%s' is missing", name);
        for (int i = 0; i < n; i++)
            v[i] = def;
        return PQ_OK;
    }
    if (a->type != PQ_ATTR_INTS || (int)a->u.ints.n != n)
        return pq_error_set(c->err, PQ_ERR_INVALID, "attribute '%s' must have %d ints", name, n);
    for (int i = 0; i < n; i++)
        v[i] = a->u.ints.v[i];
    return PQ_OK;
}

enum pq_status pq_infer_x_max_unpool(pq_infer_ctx *c) {
    PQ_TRY(pq_infer_x_float(c, 0, "X"));
    PQ_TRY(pq_infer_x_index(c, 1, "I"));
    const pq_shape *x = &c->in[0].shape, *ix = &c->in[1].shape;
    c->out[0].dtype = c->in[0].dtype;
    c->out[0].shape = pq_shape_unknown();
    if (x->rank >= 0 && x->rank < 3)
        return pq_error_set(c->err, PQ_ERR_INVALID, "X needs rank >= 3, got %d", x->rank);
    if (x->rank >= 0 && ix->rank >= 0) {
        bool same = x->rank == ix->rank;
        for (int i = 0; same && i < x->rank; i++)
            if (pq_dim_known(x->dims[i]) && pq_dim_known(ix->dims[i]) &&
                x->dims[i].size != ix->dims[i].size)
                same = false;
        if (!same) return pq_error_set(c->err, PQ_ERR_INVALID, "I must have the shape of X");
    }
    if (x->rank < 0) return PQ_OK;
    int nsp = x->rank - 2;
    int64_t k[PQ_MAX_RANK], s[PQ_MAX_RANK], p[2 * PQ_MAX_RANK];
    PQ_TRY(x_ints_attr(c, "kernel_shape", k, nsp, 1, true));
    PQ_TRY(x_ints_attr(c, "strides", s, nsp, 1, false));
    PQ_TRY(x_ints_attr(c, "pads", p, 2 * nsp, 0, false));
    for (int i = 0; i < nsp; i++)
        if (k[i] < 1 || s[i] < 1 || p[i] < 0 || p[nsp + i] < 0)
            return pq_error_set(c->err, PQ_ERR_INVALID, "invalid kernel_shape/strides/pads");
    if (c->n_in > 2 && c->in[2].present) {
        int64_t os[PQ_MAX_RANK];
        int n;
        bool known;
        PQ_TRY(pq_infer_mv_ints(c, 2, "output_shape", os, PQ_MAX_RANK, &n, &known));
        if (!known) {
            c->out[0].shape = pq_infer_mv_rank_only(x->rank);
            return PQ_OK;
        }
        if (n != x->rank)
            return pq_error_set(c->err, PQ_ERR_INVALID, "output_shape has %d values, expected %d",
                                n, x->rank);
        for (int i = 0; i < n; i++)
            if (os[i] < 0 || (i < 2 && pq_dim_known(x->dims[i]) && os[i] != x->dims[i].size))
                return pq_error_set(c->err, PQ_ERR_INVALID, "output_shape[%d] = %lld is invalid", i,
                                    (long long)os[i]);
        c->out[0].shape = pq_shape_from_dims(n, os);
        return PQ_OK;
    }
    pq_shape o = *x;
    for (int i = 0; i < nsp; i++) {
        pq_dim d = x->dims[2 + i];
        if (!pq_dim_known(d)) continue;
        int64_t v = (d.size - 1) * s[i] + k[i] - p[i] - p[nsp + i];
        if (v < 0) return pq_error_set(c->err, PQ_ERR_INVALID, "negative output size");
        o.dims[2 + i] = pq_dim_of(v);
    }
    c->out[0].shape = o;
    return PQ_OK;
}

/* ---- NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss ---- */

enum pq_status pq_infer_x_loss(pq_infer_ctx *c) {
    PQ_TRY(pq_infer_x_float(c, 0, "input"));
    PQ_TRY(pq_infer_x_index(c, 1, "target"));
    const char *red = pq_node_attr_string(c->node, "reduction", "mean");
    if (strcmp(red, "none") && strcmp(red, "sum") && strcmp(red, "mean"))
        return pq_error_set(c->err, PQ_ERR_INVALID, "unknown reduction '%s'", red);
    const pq_shape *x = &c->in[0].shape, *t = &c->in[1].shape;
    if (x->rank >= 0 && x->rank < 2)
        return pq_error_set(c->err, PQ_ERR_INVALID, "input needs rank >= 2 ([N, C, ...])");
    if (x->rank >= 0 && t->rank >= 0) {
        bool ok = t->rank == x->rank - 1;
        for (int i = 0; ok && i < t->rank; i++) {
            pq_dim a = t->dims[i], b = x->dims[i == 0 ? 0 : i + 1];
            if (pq_dim_known(a) && pq_dim_known(b) && a.size != b.size) ok = false;
        }
        if (!ok)
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "target must have the input's shape "
                                "without its class dim (dim 1)");
    }
    if (c->n_in > 2 && c->in[2].present) {
        PQ_TRY(pq_infer_x_float(c, 2, "weight"));
        const pq_shape *w = &c->in[2].shape;
        if (w->rank >= 0 && w->rank != 1)
            return pq_error_set(c->err, PQ_ERR_INVALID, "weight must be 1-D");
        if (w->rank == 1 && x->rank >= 2 && pq_dim_known(w->dims[0]) && pq_dim_known(x->dims[1]) &&
            w->dims[0].size != x->dims[1].size)
            return pq_error_set(c->err, PQ_ERR_INVALID, "weight has %lld entries for %lld classes",
                                (long long)w->dims[0].size, (long long)x->dims[1].size);
    }
    c->out[0].dtype = c->in[0].dtype;
    if (strcmp(red, "none") == 0) {
        if (t->rank >= 0)
            c->out[0].shape = *t;
        else if (x->rank >= 2) {
            c->out[0].shape = *x;
            c->out[0].shape.rank = x->rank - 1;
            for (int i = 1; i < x->rank - 1; i++)
                c->out[0].shape.dims[i] = x->dims[i + 1];
        } else
            c->out[0].shape = pq_shape_unknown();
    } else {
        c->out[0].shape = pq_shape_from_dims(0, NULL);
    }
    if (c->n_out > 1) pq_infer_copy(&c->in[0], &c->out[1]);
    return PQ_OK;
}

/* ---- QLinearMatMul, QLinearConv: MatMulInteger / ConvInteger shapes on the mapped inputs ---- */

static enum pq_status x_qlinear(pq_infer_ctx *c, pq_infer_fn integer_rule) {
    for (uint32_t i = 0; i < 8; i++)
        PQ_TRY(pq_infer_x_need(c, i, "quantized operand or its scale/zero point"));
    static const uint32_t scales[3] = {1, 4, 6};
    for (int i = 0; i < 3; i++) {
        PQ_TRY(pq_infer_x_float(c, scales[i], "scale"));
        if (c->in[scales[i]].shape.rank > 1)
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "input %u (scale) must be a scalar or "
                                "1-D",
                                scales[i]);
    }
    enum pq_dtype yz = c->in[7].dtype;
    if (yz != PQ_DTYPE_UNDEFINED && yz != PQ_DTYPE_U8 && yz != PQ_DTYPE_I8)
        return pq_error_set(c->err, PQ_ERR_INVALID, "y_zero_point must be u8 or i8, got %s",
                            pq_dtype_name(yz));
    if (c->in[6].shape.rank == 1 && pq_dim_known(c->in[6].shape.dims[0]) &&
        c->in[6].shape.dims[0].size != 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "y_scale must have one value");
    if (c->in[7].shape.rank > 1 ||
        (c->in[7].shape.rank == 1 && pq_dim_known(c->in[7].shape.dims[0]) &&
         c->in[7].shape.dims[0].size != 1))
        return pq_error_set(c->err, PQ_ERR_INVALID, "y_zero_point must have one value");
    pq_type_info in[4] = {c->in[0], c->in[3], c->in[2], c->in[5]};
    pq_infer_ctx sub = *c;
    sub.in = in;
    sub.n_in = 4;
    PQ_TRY(integer_rule(&sub));
    c->out[0].dtype = yz;
    return PQ_OK;
}

enum pq_status pq_infer_x_qlinear_matmul(pq_infer_ctx *c) {
    return x_qlinear(c, pq_infer_matmul_integer);
}

enum pq_status pq_infer_x_qlinear_conv(pq_infer_ctx *c) {
    PQ_TRY(x_qlinear(c, pq_infer_conv_integer));
    if (c->n_in > 8 && c->in[8].present) {
        if (c->in[8].dtype != PQ_DTYPE_UNDEFINED && c->in[8].dtype != PQ_DTYPE_I32)
            return pq_error_set(c->err, PQ_ERR_INVALID, "B must be i32, got %s",
                                pq_dtype_name(c->in[8].dtype));
        const pq_shape *b = &c->in[8].shape, *w = &c->in[3].shape;
        if (b->rank >= 0 && b->rank != 1)
            return pq_error_set(c->err, PQ_ERR_INVALID, "B must be 1-D");
        if (b->rank == 1 && w->rank >= 1 && pq_dim_known(b->dims[0]) && pq_dim_known(w->dims[0]) &&
            b->dims[0].size != w->dims[0].size)
            return pq_error_set(c->err, PQ_ERR_INVALID, "B has %lld values for %lld filters",
                                (long long)b->dims[0].size, (long long)w->dims[0].size);
    }
    return PQ_OK;
}

/* ---- GridSample (4-D input, opset 16 modes) ---- */

enum pq_status pq_infer_x_grid_sample(pq_infer_ctx *c) {
    PQ_TRY(pq_infer_x_float(c, 0, "X"));
    PQ_TRY(pq_infer_x_float(c, 1, "grid"));
    const char *mode = pq_node_attr_string(c->node, "mode", "bilinear");
    const char *pad = pq_node_attr_string(c->node, "padding_mode", "zeros");
    if (strcmp(mode, "bilinear") && strcmp(mode, "nearest") && strcmp(mode, "bicubic") &&
        strcmp(mode, "linear") && strcmp(mode, "cubic"))
        return pq_error_set(c->err, PQ_ERR_INVALID, "unknown mode '%s'", mode);
    if (strcmp(pad, "zeros") && strcmp(pad, "border") && strcmp(pad, "reflection"))
        return pq_error_set(c->err, PQ_ERR_INVALID, "unknown padding_mode '%s'", pad);
    const pq_shape *x = &c->in[0].shape, *g = &c->in[1].shape;
    if ((x->rank >= 0 && x->rank != 4) || (g->rank >= 0 && g->rank != 4))
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED,
                            "only 4-D X and grid are supported "
                            "(ranks %d, %d)",
                            x->rank, g->rank);
    if (g->rank == 4 && pq_dim_known(g->dims[3]) && g->dims[3].size != 2)
        return pq_error_set(c->err, PQ_ERR_INVALID, "grid's last dim must be 2");
    if (x->rank == 4 && g->rank == 4 && pq_dim_known(x->dims[0]) && pq_dim_known(g->dims[0]) &&
        x->dims[0].size != g->dims[0].size)
        return pq_error_set(c->err, PQ_ERR_INVALID, "X and grid have different batch sizes");
    c->out[0].dtype = c->in[0].dtype;
    c->out[0].shape = pq_infer_mv_rank_only(4);
    if (x->rank == 4) {
        c->out[0].shape.dims[0] = x->dims[0];
        c->out[0].shape.dims[1] = x->dims[1];
    }
    if (g->rank == 4) {
        c->out[0].shape.dims[0] = g->dims[0];
        c->out[0].shape.dims[2] = g->dims[1];
        c->out[0].shape.dims[3] = g->dims[2];
    }
    return PQ_OK;
}
