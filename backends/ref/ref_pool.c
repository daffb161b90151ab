/* Reference pooling kernels: MaxPool (with optional i64 Indices, storage_order), AveragePool
 * (count_include_pad, ceil_mode, dilations), GlobalAveragePool and GlobalMaxPool; 1-3 spatial dims.
 */
#include <math.h>
#include <string.h>

#include "ref_gemm.h"
#include "ref_kernels.h"
#include "ref_util.h"

/* f32 copy of any numeric input (float views avoid the copy for f32). */
static enum pq_status pq_pool_in(const pq_tensor *t, const float **p, float **owned,
                                 pq_error *err) {
    if (pq_dtype_is_float(t->dtype)) return pq_ref_f32_view(t, p, owned, err);
    int64_t n = pq_tensor_numel(t);
    float *b = pq_malloc((size_t)n * sizeof(float));
    if (!b) return pq_error_nomem(err, "pool input");
    for (int64_t i = 0; i < n; i++)
        b[i] = (float)pq_dtype_load(t->dtype, t->data, (size_t)i);
    *p = b;
    *owned = b;
    return PQ_OK;
}

static enum pq_status pq_pool_out(pq_tensor *t, float **p, float **owned, pq_error *err) {
    if (pq_dtype_is_float(t->dtype)) return pq_ref_f32_out(t, p, owned, err);
    float *b = pq_malloc((size_t)pq_tensor_numel(t) * sizeof(float));
    if (!b) return pq_error_nomem(err, "pool output");
    *p = b;
    *owned = b;
    return PQ_OK;
}

static void pq_pool_commit(pq_tensor *t, float *owned) {
    if (pq_dtype_is_float(t->dtype)) {
        pq_ref_f32_commit(t, owned);
        return;
    }
    if (!owned) return;
    int64_t n = pq_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        pq_dtype_store(t->dtype, t->data, (size_t)i, owned[i]);
    pq_free(owned);
}

static void pq_pool_kernel_attr(const pq_node *n, int nsp, int64_t *k) {
    const pq_attr *a = pq_node_attr(n, "kernel_shape");
    for (int i = 0; i < nsp; i++)
        k[i] = a && (uint32_t)i < a->u.ints.n ? a->u.ints.v[i] : 1;
}

/* 2-D max pooling without indices: the valid kernel range of every output row and column is
 * computed once, so the inner loops carry no bounds checks. Same result as the generic loop
 * (first valid element, then strictly greater; NaN kept only when it comes first). */
static void pq_max_pool_2d(const float *px, float *py, int64_t NC, const pq_ref_win *w) {
    int64_t IH = w->in[1], IW = w->in[2], OH = w->out[1], OW = w->out[2];
    int64_t KH = w->k[1], KW = w->k[2], DH = w->d[1], DW = w->d[2];
    int64_t SH = w->s[1], SW = w->s[2];
    bool interior = w->pb[1] == 0 && w->pb[2] == 0 && OH > 0 && OW > 0 &&
                    (OH - 1) * SH + (KH - 1) * DH < IH && (OW - 1) * SW + (KW - 1) * DW < IW;
    if (interior && KH > 0 && KW > 0) { /* every window inside the input: no range logic */
        for (int64_t nc = 0; nc < NC; nc++) {
            const float *xc = px + nc * IH * IW;
            float *yc = py + nc * OH * OW;
            for (int64_t oh = 0; oh < OH; oh++) {
                const float *row = xc + oh * SH * IW;
                for (int64_t ow = 0; ow < OW; ow++) {
                    const float *p = row + ow * SW;
                    float best = p[0];
                    for (int64_t kh = 0; kh < KH; kh++)
                        for (int64_t kw = 0; kw < KW; kw++) {
                            float v = p[kh * DH * IW + kw * DW];
                            best = v > best ? v : best;
                        }
                    yc[oh * OW + ow] = best;
                }
            }
        }
        return;
    }
    for (int64_t nc = 0; nc < NC; nc++) {
        const float *xc = px + nc * IH * IW;
        float *yc = py + nc * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t h0 = oh * w->s[1] - w->pb[1];
            int64_t kh0 = 0, kh1 = KH;
            while (kh0 < KH && h0 + kh0 * DH < 0)
                kh0++;
            while (kh1 > kh0 && h0 + (kh1 - 1) * DH >= IH)
                kh1--;
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = ow * w->s[2] - w->pb[2];
                int64_t kw0 = 0, kw1 = KW;
                while (kw0 < KW && w0 + kw0 * DW < 0)
                    kw0++;
                while (kw1 > kw0 && w0 + (kw1 - 1) * DW >= IW)
                    kw1--;
                float best = -INFINITY;
                if (kh0 < kh1 && kw0 < kw1) {
                    const float *base = xc + w0;
                    best = base[(h0 + kh0 * DH) * IW + kw0 * DW];
                    for (int64_t kh = kh0; kh < kh1; kh++) {
                        const float *xr = base + (h0 + kh * DH) * IW;
                        for (int64_t kw = kw0; kw < kw1; kw++) {
                            float v = xr[kw * DW];
                            best = v > best ? v : best;
                        }
                    }
                }
                yc[oh * OW + ow] = best;
            }
        }
    }
}

static enum pq_status pq_pool(const pq_kernel_args *a, bool is_max) {
    PQ_TRY(pq_ref_check_args(a, 1, 1));
    PQ_TRY(pq_ref_check_outputs(a));
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    pq_tensor *I = is_max && a->n_out > 1 ? a->out[1] : NULL;
    int64_t k[3];
    pq_pool_kernel_attr(a->node, X->rank - 2, k);
    pq_ref_win w;
    pq_ref_window(a->node, X, k, Y, &w);
    bool col_major = pq_node_attr_int(a->node, "storage_order", 0) == 1;
    bool cip = pq_node_attr_int(a->node, "count_include_pad", 0) == 1;
    int64_t NC = X->dims[0] * X->dims[1];
    int64_t ISP = w.in[0] * w.in[1] * w.in[2], OSP = w.out[0] * w.out[1] * w.out[2];
    const float *px;
    float *ox = NULL, *py, *oy = NULL;
    enum pq_status st;
    PQ_TRY_GOTO(st, pq_pool_in(X, &px, &ox, a->err), done);
    PQ_TRY_GOTO(st, pq_pool_out(Y, &py, &oy, a->err), done);
    int64_t *pi = I ? I->data : NULL;
    if (is_max && !pi && w.in[0] == 1 && w.out[0] == 1 && w.k[0] == 1) {
        pq_max_pool_2d(px, py, NC, &w);
        goto commit;
    }
    for (int64_t nc = 0; nc < NC; nc++) {
        const float *xc = px + nc * ISP;
        float *yc = py + nc * OSP;
        for (int64_t od = 0; od < w.out[0]; od++)
            for (int64_t oh = 0; oh < w.out[1]; oh++)
                for (int64_t ow = 0; ow < w.out[2]; ow++) {
                    int64_t o[3] = {od, oh, ow}, lo[3], cnt_pad = 1;
                    for (int i = 0; i < 3; i++) {
                        lo[i] = o[i] * w.s[i] - w.pb[i];
                        if (is_max || !cip) continue;
                        /* window positions inside the padded input [-pb, in + pe) */
                        int64_t c = 0;
                        for (int64_t kk = 0; kk < w.k[i]; kk++) {
                            int64_t p = lo[i] + kk * w.d[i];
                            if (p >= -w.pb[i] && p < w.in[i] + w.pe[i]) c++;
                        }
                        cnt_pad *= c;
                    }
                    float best = -INFINITY;
                    int64_t best_i = -1, cnt = 0;
                    double sum = 0.0;
                    for (int64_t kd = 0; kd < w.k[0]; kd++) {
                        int64_t id = lo[0] + kd * w.d[0];
                        if (id < 0 || id >= w.in[0]) continue;
                        for (int64_t kh = 0; kh < w.k[1]; kh++) {
                            int64_t ih = lo[1] + kh * w.d[1];
                            if (ih < 0 || ih >= w.in[1]) continue;
                            const float *xr = xc + (id * w.in[1] + ih) * w.in[2];
                            for (int64_t kw = 0; kw < w.k[2]; kw++) {
                                int64_t iw = lo[2] + kw * w.d[2];
                                if (iw < 0 || iw >= w.in[2]) continue;
                                float v = xr[iw];
                                if (is_max) {
                                    if (v > best || best_i < 0) {
                                        best = v;
                                        best_i = !pi ? 0
                                                 : col_major
                                                     ? id + ih * w.in[0] + iw * w.in[0] * w.in[1]
                                                     : (id * w.in[1] + ih) * w.in[2] + iw;
                                    }
                                } else {
                                    sum += v;
                                    cnt++;
                                }
                            }
                        }
                    }
                    int64_t oi = (od * w.out[1] + oh) * w.out[2] + ow;
                    if (is_max) {
                        yc[oi] = best;
                        if (pi) pi[nc * OSP + oi] = best_i < 0 ? 0 : nc * ISP + best_i;
                    } else {
                        int64_t div = cip ? cnt_pad : cnt;
                        yc[oi] = div > 0 ? (float)(sum / (double)div) : 0.0f;
                    }
                }
    }
commit:
    pq_pool_commit(Y, oy);
    oy = NULL;
    st = PQ_OK;
done:
    pq_free(ox);
    pq_free(oy);
    return st;
}

enum pq_status pq_ref_max_pool(const pq_kernel_args *a) {
    return pq_pool(a, true);
}
enum pq_status pq_ref_average_pool(const pq_kernel_args *a) {
    return pq_pool(a, false);
}

static enum pq_status pq_global_pool(const pq_kernel_args *a, bool is_max) {
    PQ_TRY(pq_ref_check_args(a, 1, 1));
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    int64_t NC = X->dims[0] * X->dims[1], SP = 1;
    for (int i = 2; i < X->rank; i++)
        SP *= X->dims[i];
    const float *px;
    float *ox = NULL, *py, *oy = NULL;
    enum pq_status st;
    PQ_TRY_GOTO(st, pq_ref_f32_view(X, &px, &ox, a->err), done);
    PQ_TRY_GOTO(st, pq_ref_f32_out(Y, &py, &oy, a->err), done);
    for (int64_t nc = 0; nc < NC; nc++) {
        const float *xc = px + nc * SP;
        if (is_max) {
            float m = -INFINITY;
            for (int64_t i = 0; i < SP; i++)
                if (xc[i] > m || isnan(xc[i])) m = xc[i];
            py[nc] = m;
        } else {
            double s = 0.0;
            for (int64_t i = 0; i < SP; i++)
                s += xc[i];
            py[nc] = SP > 0 ? (float)(s / (double)SP) : 0.0f;
        }
    }
    pq_ref_f32_commit(Y, oy);
    oy = NULL;
    st = PQ_OK;
done:
    pq_free(ox);
    pq_free(oy);
    return st;
}

enum pq_status pq_ref_global_average_pool(const pq_kernel_args *a) {
    return pq_global_pool(a, false);
}
enum pq_status pq_ref_global_max_pool(const pq_kernel_args *a) {
    return pq_global_pool(a, true);
}
