/* Reference kernels of Pad (constant/reflect/edge/wrap, negative pads crop) and Resize
 * (nearest/linear/cubic over any set of axes, every coordinate transformation mode of opset 18).
 * Both precompute per-axis source taps, then walk the output once. */
#include <math.h>
#include <string.h>

#include "ref_kernels.h"

/* ---- Pad ---- */

/* Source index of output coordinate o on an axis of size d padded by b at the front, or -1 when
 * the constant value goes there. */
static int64_t pr_pad_src(const char *mode, int64_t o, int64_t b, int64_t d) {
    int64_t i = o - b;
    if (i >= 0 && i < d) return i;
    if (mode[0] == 'c') return -1;
    if (mode[0] == 'e') return i < 0 ? 0 : d - 1;
    if (mode[0] == 'w') return ((i % d) + d) % d;
    /* reflect: period 2(d-1), the edge is not repeated */
    if (d == 1) return 0;
    int64_t p = 2 * (d - 1);
    i = ((i % p) + p) % p;
    return i < d ? i : p - i;
}

enum pq_status pq_ref_pad(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_mv_outputs(a));
    const pq_tensor *x = a->in[0];
    pq_tensor *y = a->out[0];
    const char *mode = pq_node_attr_string(a->node, "mode", "constant");
    int r = x->rank;
    size_t es = pq_dtype_size(x->dtype);
    int64_t front[PQ_MAX_RANK] = {0};
    const pq_tensor *pads = a->in[1], *axes = a->n_in > 3 ? a->in[3] : NULL;
    int64_t na = axes ? pq_tensor_numel(axes) : r;
    for (int64_t i = 0; i < na; i++) {
        int64_t ax = axes ? pq_dtype_load_i64(axes->dtype, axes->data, (size_t)i) : i;
        if (ax < 0) ax += r;
        front[ax] = pq_dtype_load_i64(pads->dtype, pads->data, (size_t)i);
    }
    if (mode[0] != 'c')
        for (int i = 0; i < r; i++)
            if (x->dims[i] == 0 && y->dims[i] > 0)
                return pq_error_set(a->err, PQ_ERR_INVALID,
                                    "Pad: mode %s cannot pad the empty axis %d", mode, i);
    int64_t ny = pq_tensor_numel(y);
    if (ny == 0) return PQ_OK;
    uint8_t cval[8] = {0};
    if (a->n_in > 2 && a->in[2] && pq_tensor_numel(a->in[2]) >= 1) {
        if (a->in[2]->dtype != x->dtype)
            return pq_error_set(a->err, PQ_ERR_INVALID, "Pad: constant_value type differs");
        memcpy(cval, a->in[2]->data, es);
    }
    /* per-axis source index tables */
    int64_t total = 0;
    for (int i = 0; i < r; i++)
        total += y->dims[i];
    int64_t *tab = pq_malloc(sizeof(int64_t) * (size_t)(total ? total : 1));
    if (!tab) return pq_error_nomem(a->err, "Pad");
    int64_t *src[PQ_MAX_RANK], xs[PQ_MAX_RANK];
    pq_shape_strides(r, x->dims, xs);
    for (int i = 0, k = 0; i < r; k += (int)y->dims[i], i++) {
        src[i] = tab + k;
        for (int64_t o = 0; o < y->dims[i]; o++)
            src[i][o] = pr_pad_src(mode, o, front[i], x->dims[i]);
    }
    int64_t cnt[PQ_MAX_RANK] = {0};
    uint8_t *d = y->data;
    const uint8_t *xd = x->data;
    for (int64_t e = 0; e < ny; e++, d += es) {
        int64_t off = 0;
        bool inside = true;
        for (int i = 0; i < r; i++) {
            int64_t s = src[i][cnt[i]];
            if (s < 0) {
                inside = false;
                break;
            }
            off += s * xs[i];
        }
        memcpy(d, inside ? xd + (size_t)off * es : cval, es);
        for (int i = r - 1; i >= 0; i--) {
            if (++cnt[i] < y->dims[i]) break;
            cnt[i] = 0;
        }
    }
    pq_free(tab);
    return PQ_OK;
}

/* ---- Resize ---- */

/* Source taps of one output coordinate on one axis (pq_ref_resize_tap, ref_kernels.h; outside:
 * tf_crop_and_resize reads the extrapolation value). */
typedef pq_ref_resize_tap pr_taps;

typedef struct pr_params {
    const char *mode, *ctm, *nearest;
    double cubic_a;
    bool exclude_outside;
} pr_params;

static double pr_cubic_w(double d, double A) {
    d = fabs(d);
    if (d <= 1) return ((A + 2) * d - (A + 3)) * d * d + 1;
    if (d < 2) return ((A * d - 5 * A) * d + 8 * A) * d - 4 * A;
    return 0;
}

static int64_t pr_clamp(int64_t i, int64_t n) {
    return i < 0 ? 0 : i >= n ? n - 1 : i;
}

/* Original coordinate of output coordinate x (ONNX coordinate_transformation_mode). Like the ONNX
 * reference, align_corners and pytorch_half_pixel use the unrounded resized length scale * input
 * length; half_pixel_symmetric and tf_crop_and_resize the output length lout_i. */
static double pr_coord(const pr_params *p, double x, int64_t lin, int64_t lout_i, double s,
                       double roi_s, double roi_e) {
    double lout = s * (double)lin;
    const char *m = p->ctm;
    if (!strcmp(m, "asymmetric")) return x / s;
    if (!strcmp(m, "align_corners")) return lout == 1 ? 0 : x * (double)(lin - 1) / (lout - 1);
    if (!strcmp(m, "pytorch_half_pixel")) return lout > 1 ? (x + 0.5) / s - 0.5 : 0;
    if (!strcmp(m, "tf_half_pixel_for_nn")) return (x + 0.5) / s;
    if (!strcmp(m, "half_pixel_symmetric")) {
        double adj = (double)lout_i / (s * (double)lin);
        double center = (double)lin / 2;
        return center * (1 - adj) + (x + 0.5) / s - 0.5;
    }
    if (!strcmp(m, "tf_crop_and_resize"))
        return lout_i > 1 ? roi_s * (double)(lin - 1) +
                                x * (roi_e - roi_s) * (double)(lin - 1) / (double)(lout_i - 1)
                          : 0.5 * (roi_s + roi_e) * (double)(lin - 1);
    return (x + 0.5) / s - 0.5; /* half_pixel */
}

static void pr_make_taps(const pr_params *p, double xo, int64_t lin, pr_taps *t) {
    t->n = 0;
    t->outside = false;
    if (!strcmp(p->ctm, "tf_crop_and_resize") && (xo < 0 || xo > (double)(lin - 1))) {
        t->outside = true;
        return;
    }
    if (p->mode[0] == 'n') {
        double f = floor(xo), fr = xo - f, v;
        const char *nm = p->nearest;
        if (!strcmp(nm, "floor"))
            v = f;
        else if (!strcmp(nm, "ceil"))
            v = ceil(xo);
        else if (!strcmp(nm, "round_prefer_ceil"))
            v = fr >= 0.5 ? f + 1 : f;
        else
            v = fr > 0.5 ? f + 1 : f; /* round_prefer_floor */
        t->n = 1;
        t->idx[0] = pr_clamp((int64_t)v, lin);
        t->w[0] = 1;
        return;
    }
    double f = floor(xo), fr = xo - f;
    int64_t x0 = (int64_t)f;
    if (p->mode[0] == 'l') {
        int64_t ii[2] = {x0, x0 + 1};
        double ww[2] = {1 - fr, fr};
        for (int k = 0; k < 2; k++) {
            if (ww[k] == 0) continue;
            t->idx[t->n] = pr_clamp(ii[k], lin);
            t->w[t->n++] = ww[k];
        }
        return;
    }
    /* cubic: taps x0-1 .. x0+2 */
    double sum = 0;
    for (int k = 0; k < 4; k++) {
        int64_t i = x0 - 1 + k;
        double w = pr_cubic_w(fr - (double)(k - 1), p->cubic_a);
        if (p->exclude_outside && (i < 0 || i >= lin)) w = 0;
        sum += w;
        if (w == 0) continue;
        t->idx[t->n] = pr_clamp(i, lin);
        t->w[t->n++] = w;
    }
    if (p->exclude_outside && sum != 0)
        for (int k = 0; k < t->n; k++)
            t->w[k] /= sum;
}

/* Stores v into element i of an output of type t, rounding and saturating integers. */
static void pr_store(enum pq_dtype t, void *data, size_t i, double v) {
    if (pq_dtype_is_integer(t) || t == PQ_DTYPE_BOOL) {
        double lo = -9.2e18, hi = 9.2e18;
        switch (t) {
        case PQ_DTYPE_I8:
            lo = -128, hi = 127;
            break;
        case PQ_DTYPE_U8:
            lo = 0, hi = 255;
            break;
        case PQ_DTYPE_I16:
            lo = -32768, hi = 32767;
            break;
        case PQ_DTYPE_U16:
            lo = 0, hi = 65535;
            break;
        case PQ_DTYPE_I32:
            lo = -2147483648.0, hi = 2147483647.0;
            break;
        case PQ_DTYPE_U32:
            lo = 0, hi = 4294967295.0;
            break;
        case PQ_DTYPE_U64:
            lo = 0, hi = 1.8e19;
            break;
        default:
            break;
        }
        v = nearbyint(v);
        v = v < lo ? lo : v > hi ? hi : v;
    }
    pq_dtype_store(t, data, i, v);
}

enum pq_status pq_ref_resize_taps(const pq_node *n, int r, const int64_t *xd, const int64_t *yd,
                                  const pq_tensor *roi, const pq_tensor *sc, const pq_tensor *sz,
                                  pq_ref_resize_tap **block, pq_ref_resize_tap **ax_taps,
                                  pq_error *err) {
    *block = NULL;
    pr_params p = {pq_node_attr_string(n, "mode", "nearest"),
                   pq_node_attr_string(n, "coordinate_transformation_mode", "half_pixel"),
                   pq_node_attr_string(n, "nearest_mode", "round_prefer_floor"),
                   pq_node_attr_float(n, "cubic_coeff_a", -0.75f),
                   pq_node_attr_int(n, "exclude_outside", 0) != 0};
    if (pq_node_attr_int(n, "antialias", 0) != 0)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED, "Resize: antialias is not supported");
    const char *ctm_ok[] = {"half_pixel",        "half_pixel_symmetric", "pytorch_half_pixel",
                            "align_corners",     "asymmetric",           "tf_half_pixel_for_nn",
                            "tf_crop_and_resize"};
    bool ok = false;
    for (size_t i = 0; i < sizeof ctm_ok / sizeof *ctm_ok; i++)
        ok = ok || !strcmp(p.ctm, ctm_ok[i]);
    if (!ok)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "Resize: unknown coordinate_transformation_mode '%s'", p.ctm);
    const char *nm_ok[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    ok = false;
    for (size_t i = 0; i < 4; i++)
        ok = ok || !strcmp(p.nearest, nm_ok[i]);
    if (!ok)
        return pq_error_set(err, PQ_ERR_INVALID, "Resize: unknown nearest_mode '%s'", p.nearest);
    /* axes, scales and roi per input axis */
    int axes[PQ_MAX_RANK], na = r;
    const pq_attr *aa = pq_node_attr(n, "axes");
    if (aa && aa->type == PQ_ATTR_INTS) {
        na = (int)aa->u.ints.n;
        for (int i = 0; i < na; i++)
            axes[i] = (int)(aa->u.ints.v[i] < 0 ? aa->u.ints.v[i] + r : aa->u.ints.v[i]);
    } else {
        for (int i = 0; i < r; i++)
            axes[i] = i;
    }
    double scale[PQ_MAX_RANK], roi_s[PQ_MAX_RANK], roi_e[PQ_MAX_RANK];
    for (int i = 0; i < r; i++) {
        scale[i] = xd[i] ? (double)yd[i] / (double)xd[i] : 1;
        roi_s[i] = 0;
        roi_e[i] = 1;
    }
    if (sc && pq_tensor_numel(sc) > 0) {
        for (int i = 0; i < na; i++)
            scale[axes[i]] = pq_dtype_load(sc->dtype, sc->data, (size_t)i);
    } else if (sz && pq_tensor_numel(sz) > 0) {
        const char *pol = pq_node_attr_string(n, "keep_aspect_ratio_policy", "stretch");
        if (strcmp(pol, "stretch") != 0) {
            bool small = !strcmp(pol, "not_larger");
            double s = small ? INFINITY : 0;
            for (int i = 0; i < na; i++) {
                double v =
                    (double)pq_dtype_load_i64(sz->dtype, sz->data, (size_t)i) / (double)xd[axes[i]];
                s = small ? fmin(s, v) : fmax(s, v);
            }
            for (int i = 0; i < na; i++)
                scale[axes[i]] = s;
        }
    }
    if (roi && !strcmp(p.ctm, "tf_crop_and_resize")) {
        if (pq_tensor_numel(roi) != 2 * na)
            return pq_error_set(err, PQ_ERR_INVALID, "Resize: roi has %lld values for %d axes",
                                (long long)pq_tensor_numel(roi), na);
        for (int i = 0; i < na; i++) {
            roi_s[axes[i]] = pq_dtype_load(roi->dtype, roi->data, (size_t)i);
            roi_e[axes[i]] = pq_dtype_load(roi->dtype, roi->data, (size_t)(i + na));
        }
    }
    int64_t ny = 1, nx = 1;
    for (int i = 0; i < r; i++) {
        ny *= yd[i];
        nx *= xd[i];
    }
    if (ny == 0) return PQ_OK;
    if (nx == 0) return pq_error_set(err, PQ_ERR_INVALID, "Resize: empty input, non-empty output");
    int64_t total = 0;
    for (int i = 0; i < r; i++)
        total += yd[i];
    pr_taps *taps = pq_malloc(sizeof(pr_taps) * (size_t)total);
    if (!taps) return pq_error_nomem(err, "Resize");
    for (int i = 0, k = 0; i < r; k += (int)yd[i], i++) {
        ax_taps[i] = taps + k;
        bool same = yd[i] == xd[i] && scale[i] == 1.0 && strcmp(p.ctm, "tf_crop_and_resize") != 0;
        for (int64_t o = 0; o < yd[i]; o++) {
            pr_taps *t = &ax_taps[i][o];
            if (same) { /* untouched axis: the identity */
                t->n = 1;
                t->outside = false;
                t->idx[0] = o;
                t->w[0] = 1;
                continue;
            }
            double xo = pr_coord(&p, (double)o, xd[i], yd[i], scale[i], roi_s[i], roi_e[i]);
            pr_make_taps(&p, xo, xd[i], t);
        }
    }
    *block = taps;
    return PQ_OK;
}

enum pq_status pq_ref_resize(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_mv_outputs(a));
    const pq_tensor *x = a->in[0];
    pq_tensor *y = a->out[0];
    int r = x->rank;
    pr_taps *taps, *ax_taps[PQ_MAX_RANK];
    PQ_TRY(pq_ref_resize_taps(a->node, r, x->dims, y->dims, a->n_in > 1 ? a->in[1] : NULL,
                              a->n_in > 2 ? a->in[2] : NULL, a->n_in > 3 ? a->in[3] : NULL, &taps,
                              ax_taps, a->err));
    if (!taps) return PQ_OK;
    int64_t ny = pq_tensor_numel(y);
    int64_t xs[PQ_MAX_RANK], cnt[PQ_MAX_RANK] = {0};
    pq_shape_strides(r, x->dims, xs);
    size_t es = pq_dtype_size(x->dtype);
    double extra = pq_node_attr_float(a->node, "extrapolation_value", 0.0f);
    bool nearest = pq_node_attr_string(a->node, "mode", "nearest")[0] == 'n';
    for (int64_t e = 0; e < ny; e++) {
        const pr_taps *ts[PQ_MAX_RANK];
        bool outside = false;
        for (int i = 0; i < r; i++) {
            ts[i] = &ax_taps[i][cnt[i]];
            outside = outside || ts[i]->outside;
        }
        if (outside) {
            pr_store(y->dtype, y->data, (size_t)e, extra);
        } else if (nearest) {
            int64_t off = 0;
            for (int i = 0; i < r; i++)
                off += ts[i]->idx[0] * xs[i];
            memcpy((uint8_t *)y->data + (size_t)e * es, (const uint8_t *)x->data + (size_t)off * es,
                   es);
        } else {
            /* sum over the product of every axis' taps */
            int tc[PQ_MAX_RANK] = {0};
            double acc = 0;
            for (;;) {
                int64_t off = 0;
                double w = 1;
                for (int i = 0; i < r; i++) {
                    off += ts[i]->idx[tc[i]] * xs[i];
                    w *= ts[i]->w[tc[i]];
                }
                acc += w * pq_dtype_load(x->dtype, x->data, (size_t)off);
                int i = r - 1;
                while (i >= 0 && ++tc[i] >= ts[i]->n)
                    tc[i--] = 0;
                if (i < 0) break;
            }
            pr_store(y->dtype, y->data, (size_t)e, acc);
        }
        for (int i = r - 1; i >= 0; i--) {
            if (++cnt[i] < y->dims[i]) break;
            cnt[i] = 0;
        }
    }
    pq_free(taps);
    return PQ_OK;
}
