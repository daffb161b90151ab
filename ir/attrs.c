/* Typed attribute decoding: INTS/FLOATS getters and the one Conv / ConvInteger / ConvTranspose
 * geometry decoder (ONNX semantics) that inference, kernels and passes share. */
#include "attrs.h"

#include <string.h>

bool pq_node_attr_ints(const pq_node *n, const char *name, const int64_t **v, uint32_t *count) {
    const pq_attr *a = pq_node_attr(n, name);
    if (!a || a->type != PQ_ATTR_INTS) return false;
    *v = a->u.ints.v;
    *count = a->u.ints.n;
    return true;
}

bool pq_node_attr_floats(const pq_node *n, const char *name, const float **v, uint32_t *count) {
    const pq_attr *a = pq_node_attr(n, name);
    if (!a || a->type != PQ_ATTR_FLOATS) return false;
    *v = a->u.floats.v;
    *count = a->u.floats.n;
    return true;
}

bool pq_auto_pad_parse(const char *s, enum pq_auto_pad *out) {
    static const char *const names[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};
    if (!s) return false;
    if (!*s) {
        *out = PQ_AUTO_PAD_NOTSET;
        return true;
    }
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (enum pq_auto_pad)i;
            return true;
        }
    return false;
}

/* INTS attribute with exactly want values when present (defaults otherwise), each >= min. */
static enum pq_status pq_geom_ints(const pq_node *n, const char *name, int want, int64_t def,
                                   int64_t min, int64_t *v, pq_error *err) {
    const pq_attr *a = pq_node_attr(n, name);
    if (!a) {
        for (int i = 0; i < want; i++)
            v[i] = def;
        return PQ_OK;
    }
    if (a->type != PQ_ATTR_INTS)
        return pq_error_set(err, PQ_ERR_INVALID, "attribute '%s' must be a list of ints", name);
    if (a->u.ints.n != (uint32_t)want)
        return pq_error_set(err, PQ_ERR_INVALID, "attribute '%s' has %u values, expected %d", name,
                            a->u.ints.n, want);
    for (int i = 0; i < want; i++) {
        v[i] = a->u.ints.v[i];
        if (v[i] < min)
            return pq_error_set(err, PQ_ERR_INVALID, "attribute '%s'[%d] = %lld, must be >= %lld",
                                name, i, (long long)v[i], (long long)min);
    }
    return PQ_OK;
}

/* Splits a total padding: begin gets the smaller half when upper, the larger one otherwise. */
static void pq_geom_split(int64_t total, bool upper, int64_t *pb, int64_t *pe) {
    *pb = upper ? total / 2 : total - total / 2;
    *pe = total - *pb;
}

/* Conv / ConvInteger: pads and output size of spatial dim i. */
static enum pq_status pq_geom_conv_dim(pq_conv_geom *g, int i, pq_error *err) {
    int64_t in = g->in[i], k = g->kernel[i], s = g->strides[i];
    int64_t ek = k >= 0 ? (k - 1) * g->dilations[i] + 1 : -1;
    if (g->auto_pad == PQ_AUTO_PAD_SAME_UPPER || g->auto_pad == PQ_AUTO_PAD_SAME_LOWER) {
        g->out[i] = in >= 0 ? (in + s - 1) / s : -1;
        g->pads_begin[i] = g->pads_end[i] = -1;
        if (in >= 0 && k >= 0) {
            int64_t total = (g->out[i] - 1) * s + ek - in;
            if (total < 0) total = 0;
            /* SAME_UPPER: the odd pixel goes at the end */
            pq_geom_split(total, g->auto_pad == PQ_AUTO_PAD_SAME_UPPER, &g->pads_begin[i],
                          &g->pads_end[i]);
        }
        return PQ_OK;
    }
    if (g->auto_pad == PQ_AUTO_PAD_VALID) g->pads_begin[i] = g->pads_end[i] = 0;
    g->out[i] = -1;
    if (in < 0 || k < 0) return PQ_OK;
    int64_t pb = g->pads_begin[i], pe = g->pads_end[i];
    int64_t span = in + pb + pe - ek;
    if (span < 0)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "spatial dim %d: input %lld with pads %lld+%lld is smaller than the "
                            "dilated kernel %lld",
                            i, (long long)in, (long long)pb, (long long)pe, (long long)ek);
    g->out[i] = span / s + 1;
    return PQ_OK;
}

/* ConvTranspose: pads and output size of spatial dim i (os: output_shape entry or -1). */
static enum pq_status pq_geom_convt_dim(pq_conv_geom *g, int i, int64_t os, pq_error *err) {
    int64_t in = g->in[i], k = g->kernel[i], s = g->strides[i], op = g->output_padding[i];
    int64_t ek = k >= 0 ? (k - 1) * g->dilations[i] + 1 : -1;
    bool same = g->auto_pad == PQ_AUTO_PAD_SAME_UPPER || g->auto_pad == PQ_AUTO_PAD_SAME_LOWER;
    if (os >= 0 || same) {
        /* ONNX: total = s * (in - 1) + output_padding + ek - out, split like SAME_* (NOTSET with
         * output_shape splits like SAME_LOWER); a negative total leaves zeros at the end */
        g->out[i] = os >= 0 ? os : (in >= 0 ? in * s : -1);
        g->pads_begin[i] = g->pads_end[i] = -1;
        if (in >= 0 && k >= 0 && g->out[i] >= 0) {
            int64_t total = s * (in - 1) + op + ek - g->out[i];
            if (total < 0) {
                g->pads_begin[i] = 0;
                g->pads_end[i] = total;
            } else {
                pq_geom_split(total, g->auto_pad == PQ_AUTO_PAD_SAME_UPPER, &g->pads_begin[i],
                              &g->pads_end[i]);
            }
        }
        return PQ_OK;
    }
    if (g->auto_pad == PQ_AUTO_PAD_VALID) g->pads_begin[i] = g->pads_end[i] = 0;
    g->out[i] = -1;
    if (in < 0 || k < 0) return PQ_OK;
    int64_t v = s * (in - 1) + op + ek - g->pads_begin[i] - g->pads_end[i];
    if (v < 0)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "spatial dim %d: output size %lld is negative (pads too large)", i,
                            (long long)v);
    g->out[i] = v;
    return PQ_OK;
}

enum pq_status pq_conv_geom_decode(const pq_node *n, const int64_t *in_spatial, int nsp,
                                   const int64_t *w_spatial, pq_conv_geom *geom, pq_error *err) {
    memset(geom, 0, sizeof *geom);
    for (int i = 0; i < PQ_CONV_MAX_SPATIAL; i++) {
        geom->kernel[i] = geom->strides[i] = geom->dilations[i] = 1;
        geom->in[i] = geom->out[i] = 1;
    }
    if (nsp < 1)
        return pq_error_set(err, PQ_ERR_INVALID, "needs at least one spatial dim (got %d)", nsp);
    if (nsp > PQ_CONV_MAX_SPATIAL)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED, "%d spatial dims (at most %d supported)", nsp,
                            PQ_CONV_MAX_SPATIAL);
    geom->nsp = nsp;
    geom->transpose = n->op == PQ_OP_CONV_TRANSPOSE;
    const pq_attr *a = pq_node_attr(n, "group");
    if (a && a->type != PQ_ATTR_INT)
        return pq_error_set(err, PQ_ERR_INVALID, "attribute 'group' must be an int");
    geom->group = a ? a->u.i : 1;
    if (geom->group < 1)
        return pq_error_set(err, PQ_ERR_INVALID, "group = %lld must be >= 1",
                            (long long)geom->group);
    int64_t pads[2 * PQ_CONV_MAX_SPATIAL];
    PQ_TRY(pq_geom_ints(n, "strides", nsp, 1, 1, geom->strides, err));
    PQ_TRY(pq_geom_ints(n, "dilations", nsp, 1, 1, geom->dilations, err));
    PQ_TRY(pq_geom_ints(n, "pads", 2 * nsp, 0, 0, pads, err));
    for (int i = 0; i < nsp; i++) {
        geom->pads_begin[i] = pads[i];
        geom->pads_end[i] = pads[nsp + i];
    }
    if (geom->transpose)
        PQ_TRY(pq_geom_ints(n, "output_padding", nsp, 0, 0, geom->output_padding, err));
    a = pq_node_attr(n, "auto_pad");
    if (a && a->type != PQ_ATTR_STRING)
        return pq_error_set(err, PQ_ERR_INVALID, "attribute 'auto_pad' must be a string");
    if (a && !pq_auto_pad_parse(a->u.s, &geom->auto_pad))
        return pq_error_set(err, PQ_ERR_INVALID,
                            "attribute 'auto_pad' = '%s' is not one of NOTSET, SAME_UPPER, "
                            "SAME_LOWER, VALID",
                            a->u.s);
    a = pq_node_attr(n, "kernel_shape");
    if (a) {
        int64_t ks[PQ_CONV_MAX_SPATIAL];
        PQ_TRY(pq_geom_ints(n, "kernel_shape", nsp, 1, 1, ks, err));
        for (int i = 0; i < nsp; i++) {
            if (w_spatial && w_spatial[i] >= 0 && w_spatial[i] != ks[i])
                return pq_error_set(err, PQ_ERR_INVALID,
                                    "kernel_shape[%d] = %lld but the weight has %lld", i,
                                    (long long)ks[i], (long long)w_spatial[i]);
            geom->kernel[i] = ks[i];
        }
    } else {
        for (int i = 0; i < nsp; i++)
            geom->kernel[i] = w_spatial && w_spatial[i] >= 0 ? w_spatial[i] : -1;
    }
    int64_t os[PQ_CONV_MAX_SPATIAL + 2];
    int n_os = -1;
    if (geom->transpose) {
        for (int i = 0; i < nsp; i++)
            if (geom->output_padding[i] >= geom->strides[i] &&
                geom->output_padding[i] >= geom->dilations[i])
                return pq_error_set(err, PQ_ERR_INVALID,
                                    "output_padding[%d] = %lld must be smaller than the stride "
                                    "or dilation",
                                    i, (long long)geom->output_padding[i]);
        a = pq_node_attr(n, "output_shape");
        if (a) {
            if (a->type != PQ_ATTR_INTS)
                return pq_error_set(err, PQ_ERR_INVALID,
                                    "attribute 'output_shape' must be a list of ints");
            if (a->u.ints.n != (uint32_t)nsp && a->u.ints.n != (uint32_t)nsp + 2)
                return pq_error_set(err, PQ_ERR_INVALID, "output_shape has %u values, expected %d",
                                    a->u.ints.n, nsp);
            n_os = (int)a->u.ints.n;
            for (int i = 0; i < nsp; i++) {
                os[i] = a->u.ints.v[n_os == nsp ? i : i + 2];
                if (os[i] < 0)
                    return pq_error_set(err, PQ_ERR_INVALID, "output_shape[%d] = %lld", i,
                                        (long long)os[i]);
            }
        }
    }
    for (int i = 0; i < nsp; i++) {
        geom->in[i] = in_spatial && in_spatial[i] >= 0 ? in_spatial[i] : -1;
        if (geom->transpose)
            PQ_TRY(pq_geom_convt_dim(geom, i, n_os >= 0 ? os[i] : -1, err));
        else
            PQ_TRY(pq_geom_conv_dim(geom, i, err));
    }
    return PQ_OK;
}
