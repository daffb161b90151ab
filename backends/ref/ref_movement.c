/* Reference kernels of the data-movement ops (Reshape, Flatten, Transpose, Concat, Split, Slice,
 * Gather, GatherElements, Squeeze, Unsqueeze, Expand, Tile, DepthToSpace, SpaceToDepth). They move
 * bytes, so every dtype works; output shapes come from the ops' inference rules. */
#include <string.h>

#include "ref_kernels.h"

/* ---- shared helpers (declared in ref_kernels.h) ---- */

enum pq_status pq_ref_mv_outputs(const pq_kernel_args *a) {
    const pq_node *n = a->node;
    pq_infer_fn fn = pq_infer_table[n->op];
    if (!fn) return pq_error_set(a->err, PQ_ERR_INTERNAL, "no inference rule");
    pq_type_info in_small[16], out_small[16];
    pq_type_info *in = a->n_in <= 16 ? in_small : pq_calloc(a->n_in, sizeof *in);
    pq_type_info *out = a->n_out <= 16 ? out_small : pq_calloc(a->n_out, sizeof *out);
    enum pq_status st = PQ_OK;
    if (!in || !out) {
        st = pq_error_nomem(a->err, "output shapes");
        goto done;
    }
    for (uint32_t i = 0; i < a->n_in; i++) {
        memset(&in[i], 0, sizeof in[i]);
        const pq_tensor *t = a->in[i];
        if (!t) {
            in[i].shape = pq_shape_unknown();
            continue;
        }
        in[i].present = true;
        in[i].dtype = t->dtype;
        in[i].shape = pq_shape_from_dims(t->rank, t->dims);
        in[i].value = t;
    }
    for (uint32_t i = 0; i < a->n_out; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].present = a->out[i] != NULL;
        out[i].shape = pq_shape_unknown();
    }
    pq_infer_ctx ctx = {(pq_graph *)a->graph, n, in, a->n_in, out, a->n_out, a->err};
    PQ_TRY_GOTO(st, fn(&ctx), done);
    for (uint32_t i = 0; i < a->n_out; i++) {
        pq_tensor *t = a->out[i];
        if (!t) continue;
        int64_t dims[PQ_MAX_RANK];
        if (!pq_shape_is_static(&out[i].shape, dims) || out[i].dtype == PQ_DTYPE_UNDEFINED) {
            st = pq_error_set(a->err, PQ_ERR_INVALID, "output %u: shape cannot be determined", i);
            goto done;
        }
        int r = out[i].shape.rank;
        if (!t->data) {
            PQ_TRY_GOTO(st, pq_tensor_alloc_data(t, out[i].dtype, r, dims, a->err), done);
            continue;
        }
        bool same = t->rank == r && t->dtype == out[i].dtype;
        for (int d = 0; same && d < r; d++)
            same = t->dims[d] == dims[d];
        if (!same) {
            char want[160], got[160];
            pq_shape_format(r, dims, want, sizeof want);
            pq_shape_format(t->rank, t->dims, got, sizeof got);
            st = pq_error_set(a->err, PQ_ERR_INTERNAL,
                              "output %u was planned as %s %s but computes %s %s", i,
                              pq_dtype_name(t->dtype), got, pq_dtype_name(out[i].dtype), want);
            goto done;
        }
    }
done:
    if (in && in != in_small) pq_free(in);
    if (out && out != out_small) pq_free(out);
    return st;
}

void pq_ref_mv_walk(void *dst, const void *src, int rank, const int64_t *dims,
                    const int64_t *sstride, size_t es) {
    int64_t numel = 1;
    for (int i = 0; i < rank; i++)
        numel *= dims[i];
    if (numel == 0) return;
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (rank == 0) {
        memcpy(d, s, es);
        return;
    }
    int64_t idx[PQ_MAX_RANK] = {0};
    int64_t inner = dims[rank - 1], is = sstride[rank - 1];
    int64_t off = 0; /* source element offset of the current row */
    for (int64_t done = 0; done < numel; done += inner) {
        const uint8_t *row = s + off * (int64_t)es;
        if (is == 1) {
            memcpy(d, row, (size_t)inner * es);
            d += (size_t)inner * es;
        } else if (es == 4) {
            for (int64_t j = 0; j < inner; j++, d += 4)
                memcpy(d, row + j * is * 4, 4);
        } else {
            for (int64_t j = 0; j < inner; j++, d += es)
                memcpy(d, row + j * is * (int64_t)es, es);
        }
        for (int k = rank - 2; k >= 0; k--) {
            off += sstride[k];
            if (++idx[k] < dims[k]) break;
            off -= sstride[k] * dims[k];
            idx[k] = 0;
        }
    }
}

/* Copies the input bytes unchanged (Reshape, Flatten, Squeeze, Unsqueeze, Identity). */
enum pq_status pq_ref_mv_copy(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_mv_outputs(a));
    const pq_tensor *x = a->in[0];
    pq_tensor *y = a->out[0];
    size_t nb = (size_t)pq_tensor_numel(x) * pq_dtype_size(x->dtype);
    if (nb && y->data != x->data) memmove(y->data, x->data, nb);
    return PQ_OK;
}

static void mv_strides(const pq_tensor *t, int64_t *s) {
    pq_shape_strides(t->rank, t->dims, s);
}

/* ---- Transpose ---- */

enum pq_status pq_ref_transpose(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_mv_outputs(a));
    const pq_tensor *x = a->in[0];
    pq_tensor *y = a->out[0];
    int r = x->rank;
    int64_t xs[PQ_MAX_RANK], ss[PQ_MAX_RANK];
    mv_strides(x, xs);
    const pq_attr *pa = pq_node_attr(a->node, "perm");
    for (int i = 0; i < r; i++) {
        int64_t p = pa && pa->type == PQ_ATTR_INTS ? pa->u.ints.v[i] : r - 1 - i;
        if (p < 0) p += r;
        ss[i] = xs[p];
    }
    pq_ref_mv_walk(y->data, x->data, r, y->dims, ss, pq_dtype_size(x->dtype));
    return PQ_OK;
}

/* ---- Concat / Split ---- */

static void mv_axis_split(const pq_tensor *t, int axis, int64_t *outer, int64_t *inner) {
    *outer = 1;
    *inner = 1;
    for (int i = 0; i < axis; i++)
        *outer *= t->dims[i];
    for (int i = axis + 1; i < t->rank; i++)
        *inner *= t->dims[i];
}

enum pq_status pq_ref_concat(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_mv_outputs(a));
    pq_tensor *y = a->out[0];
    int ax = (int)pq_node_attr_int(a->node, "axis", 0);
    if (ax < 0) ax += y->rank;
    size_t es = pq_dtype_size(y->dtype);
    int64_t outer, inner;
    mv_axis_split(y, ax, &outer, &inner);
    size_t yrow = (size_t)(y->dims[ax] * inner) * es, off = 0;
    for (uint32_t i = 0; i < a->n_in; i++) {
        const pq_tensor *x = a->in[i];
        if (!x) continue;
        size_t xrow = (size_t)(x->dims[ax] * inner) * es;
        if (xrow)
            for (int64_t o = 0; o < outer; o++)
                memcpy((uint8_t *)y->data + (size_t)o * yrow + off,
                       (const uint8_t *)x->data + (size_t)o * xrow, xrow);
        off += xrow;
    }
    return PQ_OK;
}

enum pq_status pq_ref_split(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_mv_outputs(a));
    const pq_tensor *x = a->in[0];
    int ax = (int)pq_node_attr_int(a->node, "axis", 0);
    if (ax < 0) ax += x->rank;
    size_t es = pq_dtype_size(x->dtype);
    int64_t outer, inner;
    mv_axis_split(x, ax, &outer, &inner);
    size_t xrow = (size_t)(x->dims[ax] * inner) * es, off = 0;
    /* output sizes along the axis, also for omitted outputs: recompute from the split input or
     * the equal-parts rule */
    int64_t d = x->dims[ax], nout = a->n_out;
    int64_t chunk = nout ? (d + nout - 1) / nout : 0, left = d;
    for (uint32_t i = 0; i < a->n_out; i++) {
        int64_t part;
        if (a->n_in > 1 && a->in[1])
            part = pq_dtype_load_i64(a->in[1]->dtype, a->in[1]->data, i);
        else
            part = left < chunk ? left : chunk;
        left -= part;
        size_t yrow = (size_t)(part * inner) * es;
        pq_tensor *y = a->out[i];
        if (y && yrow)
            for (int64_t o = 0; o < outer; o++)
                memcpy((uint8_t *)y->data + (size_t)o * yrow,
                       (const uint8_t *)x->data + (size_t)o * xrow + off, yrow);
        off += yrow;
    }
    return PQ_OK;
}

/* ---- Slice ---- */

/* ONNX slice normalisation of one axis (same rules as the inference rule): first index, length. */
static void mv_slice_axis(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t *first,
                          int64_t *len) {
    if (start < 0) start += dim;
    if (end < 0) end += dim;
    if (step > 0) {
        start = start < 0 ? 0 : start > dim ? dim : start;
        end = end < 0 ? 0 : end > dim ? dim : end;
        *len = end > start ? (end - start + step - 1) / step : 0;
    } else {
        start = start < 0 ? 0 : start > dim - 1 ? dim - 1 : start;
        end = end < -1 ? -1 : end > dim - 1 ? dim - 1 : end;
        *len = start > end ? (start - end + (-step) - 1) / (-step) : 0;
    }
    *first = start;
}

enum pq_status pq_ref_slice(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_mv_outputs(a));
    const pq_tensor *x = a->in[0];
    pq_tensor *y = a->out[0];
    int r = x->rank;
    int64_t xs[PQ_MAX_RANK], ss[PQ_MAX_RANK];
    mv_strides(x, xs);
    for (int i = 0; i < r; i++)
        ss[i] = xs[i];
    int64_t base = 0;
    const pq_tensor *st = a->in[1], *en = a->in[2];
    const pq_tensor *ax = a->n_in > 3 ? a->in[3] : NULL, *sp = a->n_in > 4 ? a->in[4] : NULL;
    int64_t n = pq_tensor_numel(st);
    for (int64_t i = 0; i < n; i++) {
        int64_t axis = ax ? pq_dtype_load_i64(ax->dtype, ax->data, (size_t)i) : i;
        if (axis < 0) axis += r;
        int64_t step = sp ? pq_dtype_load_i64(sp->dtype, sp->data, (size_t)i) : 1;
        int64_t first, len;
        mv_slice_axis(x->dims[axis], pq_dtype_load_i64(st->dtype, st->data, (size_t)i),
                      pq_dtype_load_i64(en->dtype, en->data, (size_t)i), step, &first, &len);
        if (len > 0) base += first * xs[axis];
        ss[axis] = xs[axis] * step;
    }
    size_t es = pq_dtype_size(x->dtype);
    pq_ref_mv_walk(y->data, (const uint8_t *)x->data + base * (int64_t)es, r, y->dims, ss, es);
    return PQ_OK;
}

/* ---- Gather / GatherElements ---- */

static enum pq_status mv_index(const pq_tensor *idx, int64_t i, int64_t dim, int64_t *out,
                               pq_error *err) {
    int64_t v = pq_dtype_load_i64(idx->dtype, idx->data, (size_t)i);
    if (v < -dim || v >= dim)
        return pq_error_set(err, PQ_ERR_INVALID, "index %lld out of range for axis of size %lld",
                            (long long)v, (long long)dim);
    *out = v < 0 ? v + dim : v;
    return PQ_OK;
}

enum pq_status pq_ref_gather(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_mv_outputs(a));
    const pq_tensor *x = a->in[0], *idx = a->in[1];
    pq_tensor *y = a->out[0];
    int ax = (int)pq_node_attr_int(a->node, "axis", 0);
    if (ax < 0) ax += x->rank;
    size_t es = pq_dtype_size(x->dtype);
    int64_t outer, inner, dim = x->dims[ax], ni = pq_tensor_numel(idx);
    mv_axis_split(x, ax, &outer, &inner);
    size_t blk = (size_t)inner * es;
    uint8_t *d = y->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < ni; i++, d += blk) {
            int64_t k = 0;
            PQ_TRY(mv_index(idx, i, dim, &k, a->err));
            memcpy(d, (const uint8_t *)x->data + (size_t)((o * dim + k) * inner) * es, blk);
        }
    return PQ_OK;
}

enum pq_status pq_ref_gather_elements(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_mv_outputs(a));
    const pq_tensor *x = a->in[0], *idx = a->in[1];
    pq_tensor *y = a->out[0];
    int r = x->rank;
    int ax = (int)pq_node_attr_int(a->node, "axis", 0);
    if (ax < 0) ax += r;
    for (int i = 0; i < r; i++)
        if (i != ax && idx->dims[i] > x->dims[i])
            return pq_error_set(a->err, PQ_ERR_INVALID,
                                "GatherElements: indices dim %d (%lld) exceeds data dim %lld", i,
                                (long long)idx->dims[i], (long long)x->dims[i]);
    size_t es = pq_dtype_size(x->dtype);
    int64_t xs[PQ_MAX_RANK], cnt[PQ_MAX_RANK] = {0};
    mv_strides(x, xs);
    int64_t n = pq_tensor_numel(idx);
    for (int64_t e = 0; e < n; e++) {
        int64_t k = 0;
        PQ_TRY(mv_index(idx, e, x->dims[ax], &k, a->err));
        int64_t off = 0;
        for (int i = 0; i < r; i++)
            off += (i == ax ? k : cnt[i]) * xs[i];
        memcpy((uint8_t *)y->data + (size_t)e * es, (const uint8_t *)x->data + (size_t)off * es,
               es);
        for (int i = r - 1; i >= 0; i--) {
            if (++cnt[i] < idx->dims[i]) break;
            cnt[i] = 0;
        }
    }
    return PQ_OK;
}

/* ---- Expand / Tile ---- */

enum pq_status pq_ref_expand(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_mv_outputs(a));
    const pq_tensor *x = a->in[0];
    pq_tensor *y = a->out[0];
    int64_t xs[PQ_MAX_RANK], ss[PQ_MAX_RANK];
    mv_strides(x, xs);
    int lead = y->rank - x->rank;
    for (int i = 0; i < y->rank; i++) {
        int j = i - lead;
        ss[i] = j < 0 || x->dims[j] == 1 ? 0 : xs[j];
    }
    pq_ref_mv_walk(y->data, x->data, y->rank, y->dims, ss, pq_dtype_size(x->dtype));
    return PQ_OK;
}

enum pq_status pq_ref_tile(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_mv_outputs(a));
    const pq_tensor *x = a->in[0];
    pq_tensor *y = a->out[0];
    int r = x->rank;
    size_t es = pq_dtype_size(x->dtype);
    if (pq_tensor_numel(y) == 0) return PQ_OK;
    if (r == 0) {
        memcpy(y->data, x->data, es);
        return PQ_OK;
    }
    /* view the output as [rep0, d0, rep1, d1, ...] read from x with stride 0 on the repeats */
    int64_t dims[2 * PQ_MAX_RANK] = {0}, ss[2 * PQ_MAX_RANK] = {0}, xs[PQ_MAX_RANK] = {0};
    mv_strides(x, xs);
    for (int i = 0; i < r; i++) {
        dims[2 * i] = x->dims[i] ? y->dims[i] / x->dims[i] : 0;
        ss[2 * i] = 0;
        dims[2 * i + 1] = x->dims[i];
        ss[2 * i + 1] = xs[i];
    }
    /* pq_ref_mv_walk handles at most PQ_MAX_RANK dims: walk the outer half explicitly */
    int h = r / 2; /* dims [0, 2h) by hand, [2h, 2r) by the walker */
    int64_t cnt[PQ_MAX_RANK] = {0}, outer = 1, inner_n = 1;
    for (int i = 0; i < 2 * h; i++)
        outer *= dims[i];
    for (int i = 2 * h; i < 2 * r; i++)
        inner_n *= dims[i];
    uint8_t *d = y->data;
    for (int64_t o = 0; o < outer; o++) {
        int64_t off = 0;
        for (int i = 0; i < 2 * h; i++)
            off += cnt[i] * ss[i];
        pq_ref_mv_walk(d, (const uint8_t *)x->data + off * (int64_t)es, 2 * (r - h), dims + 2 * h,
                       ss + 2 * h, es);
        d += (size_t)inner_n * es;
        for (int i = 2 * h - 1; i >= 0; i--) {
            if (++cnt[i] < dims[i]) break;
            cnt[i] = 0;
        }
    }
    return PQ_OK;
}

/* ---- DepthToSpace / SpaceToDepth ---- */

enum pq_status pq_ref_depth_to_space(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_mv_outputs(a));
    const pq_tensor *x = a->in[0];
    pq_tensor *y = a->out[0];
    int64_t b = pq_node_attr_int(a->node, "blocksize", 1);
    int64_t N = x->dims[0], C = x->dims[1] / (b * b), H = x->dims[2], W = x->dims[3];
    bool crd = strcmp(pq_node_attr_string(a->node, "mode", "DCR"), "CRD") == 0;
    /* output viewed as [N, C, H, b1, W, b2]; input element strides of each view dim */
    int64_t dims[6] = {N, C, H, b, W, b}, ss[6];
    int64_t sw = 1, sh = W, plane = H * W;
    ss[0] = x->dims[1] * plane;
    ss[2] = sh;
    ss[4] = sw;
    if (crd) { /* input channel = c*b*b + b1*b + b2 */
        ss[1] = b * b * plane;
        ss[3] = b * plane;
        ss[5] = plane;
    } else { /* DCR: input channel = b1*b*C + b2*C + c */
        ss[1] = plane;
        ss[3] = b * C * plane;
        ss[5] = C * plane;
    }
    pq_ref_mv_walk(y->data, x->data, 6, dims, ss, pq_dtype_size(x->dtype));
    return PQ_OK;
}

enum pq_status pq_ref_space_to_depth(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_mv_outputs(a));
    const pq_tensor *x = a->in[0];
    pq_tensor *y = a->out[0];
    int64_t b = pq_node_attr_int(a->node, "blocksize", 1);
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    /* output channel = (b1*b + b2)*C + c; output viewed as [N, b1, b2, C, H/b, W/b] */
    int64_t dims[6] = {N, b, b, C, H / b, W / b};
    int64_t ss[6] = {C * H * W, W, 1, H * W, b * W, b};
    pq_ref_mv_walk(y->data, x->data, 6, dims, ss, pq_dtype_size(x->dtype));
    return PQ_OK;
}
