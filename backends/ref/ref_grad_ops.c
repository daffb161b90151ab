/* Reference kernels of the backward ops of the gradient rules: MaxPoolGrad and AveragePoolGrad
 * (the pooling windows of ref_pool.c walked again, scattering g), ResizeGrad (Resize's taps,
 * transposed). Accumulation in double, stored once in the output's float type. */
#include <math.h>
#include <string.h>

#include "ref_gemm.h"
#include "ref_grad_ops.h"
#include "ref_kernels.h"
#include "ref_util.h"

/* Stores acc[0..n) into float tensor t. */
static void pq_rg_store(pq_tensor *t, const double *acc, int64_t n) {
    if (t->dtype == PQ_DTYPE_F32) {
        float *y = t->data;
        for (int64_t i = 0; i < n; i++)
            y[i] = (float)acc[i];
        return;
    }
    for (int64_t i = 0; i < n; i++)
        pq_dtype_store(t->dtype, t->data, (size_t)i, acc[i]);
}

static enum pq_status pq_rg_pool(const pq_kernel_args *a, bool is_max) {
    PQ_TRY(pq_ref_check_args(a, 2, 1));
    const pq_tensor *X = a->in[0], *G = a->in[1];
    pq_tensor *DX = a->out[0];
    int nsp = X->rank - 2;
    if (nsp < 1 || nsp > 3)
        return pq_error_set(a->err, PQ_ERR_INVALID, "input of rank %d (3 to 5)", X->rank);
    int64_t k[3] = {1, 1, 1};
    const pq_attr *ka = pq_node_attr(a->node, "kernel_shape");
    for (int i = 0; i < nsp; i++)
        k[i] = ka && ka->type == PQ_ATTR_INTS && (uint32_t)i < ka->u.ints.n ? ka->u.ints.v[i] : 1;
    pq_ref_win w;
    pq_ref_window(a->node, X, k, G, &w);
    bool cip = pq_node_attr_int(a->node, "count_include_pad", 0) == 1;
    int64_t NC = X->dims[0] * X->dims[1];
    int64_t ISP = w.in[0] * w.in[1] * w.in[2], OSP = w.out[0] * w.out[1] * w.out[2];
    const float *px = NULL, *pg;
    float *ox = NULL, *og = NULL;
    double *acc = pq_calloc((size_t)(NC * ISP > 0 ? NC * ISP : 1), sizeof(double));
    enum pq_status st = PQ_OK;
    if (!acc) return pq_error_nomem(a->err, "pool gradient");
    if (is_max) PQ_TRY_GOTO(st, pq_ref_f32_view(X, &px, &ox, a->err), done);
    PQ_TRY_GOTO(st, pq_ref_f32_view(G, &pg, &og, a->err), done);
    for (int64_t nc = 0; nc < NC; nc++) {
        const float *xc = px ? px + nc * ISP : NULL;
        const float *gc = pg + nc * OSP;
        double *dc = acc + nc * ISP;
        for (int64_t od = 0; od < w.out[0]; od++)
            for (int64_t oh = 0; oh < w.out[1]; oh++)
                for (int64_t ow = 0; ow < w.out[2]; ow++) {
                    int64_t o[3] = {od, oh, ow}, lo[3], cnt_pad = 1, cnt = 0, best_i = -1;
                    float best = -INFINITY;
                    for (int i = 0; i < 3; i++) {
                        lo[i] = o[i] * w.s[i] - w.pb[i];
                        if (is_max || !cip) continue;
                        int64_t cp = 0;
                        for (int64_t kk = 0; kk < w.k[i]; kk++) {
                            int64_t p = lo[i] + kk * w.d[i];
                            if (p >= -w.pb[i] && p < w.in[i] + w.pe[i]) cp++;
                        }
                        cnt_pad *= cp;
                    }
                    /* pass 1: the maximum, or the count of valid elements */
                    for (int64_t kd = 0; kd < w.k[0]; kd++) {
                        int64_t id = lo[0] + kd * w.d[0];
                        if (id < 0 || id >= w.in[0]) continue;
                        for (int64_t kh = 0; kh < w.k[1]; kh++) {
                            int64_t ih = lo[1] + kh * w.d[1];
                            if (ih < 0 || ih >= w.in[1]) continue;
                            for (int64_t kw = 0; kw < w.k[2]; kw++) {
                                int64_t iw = lo[2] + kw * w.d[2];
                                if (iw < 0 || iw >= w.in[2]) continue;
                                int64_t ii = (id * w.in[1] + ih) * w.in[2] + iw;
                                if (is_max) {
                                    if (xc[ii] > best || best_i < 0) {
                                        best = xc[ii];
                                        best_i = ii;
                                    }
                                } else {
                                    cnt++;
                                }
                            }
                        }
                    }
                    double gv = gc[(od * w.out[1] + oh) * w.out[2] + ow];
                    if (is_max) {
                        if (best_i >= 0) dc[best_i] += gv;
                        continue;
                    }
                    int64_t div = cip ? cnt_pad : cnt;
                    if (div <= 0) continue;
                    double share = gv / (double)div;
                    /* pass 2: spread over the valid elements */
                    for (int64_t kd = 0; kd < w.k[0]; kd++) {
                        int64_t id = lo[0] + kd * w.d[0];
                        if (id < 0 || id >= w.in[0]) continue;
                        for (int64_t kh = 0; kh < w.k[1]; kh++) {
                            int64_t ih = lo[1] + kh * w.d[1];
                            if (ih < 0 || ih >= w.in[1]) continue;
                            for (int64_t kw = 0; kw < w.k[2]; kw++) {
                                int64_t iw = lo[2] + kw * w.d[2];
                                if (iw < 0 || iw >= w.in[2]) continue;
                                dc[(id * w.in[1] + ih) * w.in[2] + iw] += share;
                            }
                        }
                    }
                }
    }
    pq_rg_store(DX, acc, NC * ISP);
done:
    pq_free(acc);
    pq_free(ox);
    pq_free(og);
    return st;
}

enum pq_status pq_ref_grad_max_pool(const pq_kernel_args *a) {
    return pq_rg_pool(a, true);
}

enum pq_status pq_ref_grad_average_pool(const pq_kernel_args *a) {
    return pq_rg_pool(a, false);
}

enum pq_status pq_ref_grad_resize(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 2, 1));
    const pq_tensor *G = a->in[0];
    pq_tensor *DX = a->out[0];
    int r = DX->rank;
    if (G->rank != r)
        return pq_error_set(a->err, PQ_ERR_INVALID, "g has rank %d, dx %d", G->rank, r);
    pq_ref_resize_tap *block, *ax[PQ_MAX_RANK];
    PQ_TRY(pq_ref_resize_taps(a->node, r, DX->dims, G->dims, a->n_in > 2 ? a->in[2] : NULL,
                              a->n_in > 3 ? a->in[3] : NULL, a->n_in > 4 ? a->in[4] : NULL, &block,
                              ax, a->err));
    int64_t nx = pq_tensor_numel(DX), ny = pq_tensor_numel(G);
    double *acc = pq_calloc((size_t)(nx > 0 ? nx : 1), sizeof(double));
    if (!acc) {
        pq_free(block);
        return pq_error_nomem(a->err, "ResizeGrad");
    }
    int64_t xs[PQ_MAX_RANK], cnt[PQ_MAX_RANK] = {0};
    pq_shape_strides(r, DX->dims, xs);
    for (int64_t e = 0; block && e < ny; e++) {
        const pq_ref_resize_tap *ts[PQ_MAX_RANK];
        bool outside = false;
        for (int i = 0; i < r; i++) {
            ts[i] = &ax[i][cnt[i]];
            outside = outside || ts[i]->outside;
        }
        if (!outside) {
            double gv = pq_dtype_load(G->dtype, G->data, (size_t)e);
            int tc[PQ_MAX_RANK] = {0};
            for (;;) {
                int64_t off = 0;
                double wt = 1;
                for (int i = 0; i < r; i++) {
                    off += ts[i]->idx[tc[i]] * xs[i];
                    wt *= ts[i]->w[tc[i]];
                }
                acc[off] += wt * gv;
                int i = r - 1;
                while (i >= 0 && ++tc[i] >= ts[i]->n)
                    tc[i--] = 0;
                if (i < 0) break;
            }
        }
        for (int i = r - 1; i >= 0; i--) {
            if (++cnt[i] < G->dims[i]) break;
            cnt[i] = 0;
        }
    }
    pq_rg_store(DX, acc, nx);
    pq_free(acc);
    pq_free(block);
    return PQ_OK;
}
