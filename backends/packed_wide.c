/* PackedMatMul / PackedConv on int8 (codes + per-row scales) and f16 weights: the op drivers
 * around the kernels of packed_int8.h / packed_f16.h (checks, bias, activation, im2col tiles). */
#include "backends/packed_wide.h"

#include <string.h>

#include "backends/packed_f16.h"
#include "backends/packed_int8.h"
#include "backends/packed_panel.h"
#include "backends/piqc_ops.h"
#include "backends/ref/ref_gemm.h"
#include "ir/ir.h"

bool pq_packed_is_wide(const pq_node *n) {
    const char *fs = pq_node_attr_string(n, "format", "");
    return !strcmp(fs, "int8") || !strcmp(fs, "f16");
}

/* The decoded weight of a node: int8 codes + scales or f16 values, rows x cols, optional bias,
 * and the kernel table to run. */
typedef struct pq_wide_w {
    bool int8;
    int64_t rows, cols;
    const void *w; /* int8_t (int8) or uint16_t (f16), rows x cols */
    const float *scale, *bias;
    const pq_w8_kernels *k8;
    const pq_f16_kernels *k16;
} pq_wide_w;

static enum pq_status pq_wide_get(const char *isa, const pq_kernel_args *a, pq_wide_w *ww) {
    memset(ww, 0, sizeof *ww);
    for (uint32_t i = 0; i < 2; i++)
        if (i >= a->n_in || !a->in[i])
            return pq_error_set(a->err, PQ_ERR_INVALID, "input %u is missing", i);
    if (a->n_out < 1 || !a->out[0] || (!a->out[0]->data && pq_tensor_numel(a->out[0]) != 0))
        return pq_error_set(a->err, PQ_ERR_INVALID, "output 0 is missing");
    if (a->in[0]->dtype != PQ_DTYPE_F32 || a->out[0]->dtype != PQ_DTYPE_F32)
        return pq_error_set(a->err, PQ_ERR_INVALID, "input 0 and output 0 must be f32");
    const char *fs = pq_node_attr_string(a->node, "format", "");
    ww->int8 = !strcmp(fs, "int8");
    if (!ww->int8 && strcmp(fs, "f16"))
        return pq_error_set(a->err, PQ_ERR_INVALID, "format '%s' is not int8 or f16", fs);
    ww->rows = pq_node_attr_int(a->node, "rows", 0);
    ww->cols = pq_node_attr_int(a->node, "cols", 0);
    if (ww->rows < 1 || ww->cols < 1 || ww->rows > INT64_MAX / ww->cols)
        return pq_error_set(a->err, PQ_ERR_INVALID, "rows = %lld, cols = %lld", (long long)ww->rows,
                            (long long)ww->cols);
    const pq_tensor *W = a->in[1];
    enum pq_dtype want = ww->int8 ? PQ_DTYPE_I8 : PQ_DTYPE_F16;
    if (W->dtype != want || pq_tensor_numel(W) != ww->rows * ww->cols)
        return pq_error_set(
            a->err, PQ_ERR_INVALID, "%s weight must be %lld x %lld = %lld %s values (has %lld %s)",
            fs, (long long)ww->rows, (long long)ww->cols, (long long)(ww->rows * ww->cols),
            pq_dtype_name(want), (long long)pq_tensor_numel(W), pq_dtype_name(W->dtype));
    ww->w = W->data;
    const pq_tensor *B = a->n_in > 2 ? a->in[2] : NULL;
    if (B) {
        if (B->dtype != PQ_DTYPE_F32 || pq_tensor_numel(B) != ww->rows)
            return pq_error_set(a->err, PQ_ERR_INVALID, "bias must be %lld f32 values",
                                (long long)ww->rows);
        ww->bias = B->data;
    }
    const pq_tensor *S = a->n_in > 3 ? a->in[3] : NULL;
    if (ww->int8) {
        if (!S || S->dtype != PQ_DTYPE_F32 || pq_tensor_numel(S) != ww->rows)
            return pq_error_set(a->err, PQ_ERR_INVALID,
                                "int8 scales (input 3) must be %lld f32 "
                                "values",
                                (long long)ww->rows);
        ww->scale = S->data;
        ww->k8 = pq_w8_kernels_for(isa);
        if (!ww->k8) ww->k8 = &pq_w8_kernels_scalar;
    } else {
        if (S) return pq_error_set(a->err, PQ_ERR_INVALID, "format f16 takes no scales (input 3)");
        ww->k16 = pq_f16_kernels_for(isa);
        if (!ww->k16) ww->k16 = &pq_f16_kernels_scalar;
    }
    return PQ_OK;
}

/* y (M x n, row-major) = x (M x cols) times rows [r0, r0 + n) of the weight, transposed. panel:
 * pq_panel_rows(n, cols) * cols floats when M > 1. */
static void pq_wide_apply(const pq_wide_w *ww, int64_t r0, int64_t n, const float *x, int64_t M,
                          float *y, float *panel) {
    int64_t cols = ww->cols;
    if (ww->int8) {
        const int8_t *q = (const int8_t *)ww->w + r0 * cols;
        if (M == 1)
            ww->k8->gemv(q, ww->scale + r0, n, cols, x, y);
        else
            ww->k8->gemm(q, ww->scale + r0, n, cols, x, M, y, panel);
    } else {
        const uint16_t *h = (const uint16_t *)ww->w + r0 * cols;
        if (M == 1)
            ww->k16->gemv(h, n, cols, x, y);
        else
            ww->k16->gemm(h, n, cols, x, M, y, panel);
    }
}

static float *pq_wide_panel(int64_t rows, int64_t cols, pq_error *err) {
    float *p = pq_malloc((size_t)(pq_panel_rows(rows, cols) * cols) * sizeof(float));
    if (!p) pq_error_nomem(err, "weight panel");
    return p;
}

enum pq_status pq_packed_wide_matmul_run(const char *isa, const pq_kernel_args *a) {
    pq_wide_w ww;
    PQ_TRY(pq_wide_get(isa, a, &ww));
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    if (X->rank < 1 || X->dims[X->rank - 1] != ww.cols)
        return pq_error_set(a->err, PQ_ERR_INVALID, "last dim of x must be cols = %lld",
                            (long long)ww.cols);
    int64_t M = pq_tensor_numel(X) / ww.cols;
    if (pq_tensor_numel(Y) != M * ww.rows)
        return pq_error_set(a->err, PQ_ERR_INVALID, "output has %lld values, expected %lld",
                            (long long)pq_tensor_numel(Y), (long long)(M * ww.rows));
    if (M == 0) return PQ_OK;
    float *panel = NULL;
    if (M > 1 && !(panel = pq_wide_panel(ww.rows, ww.cols, a->err))) return PQ_ERR_NOMEM;
    float *y = Y->data;
    pq_wide_apply(&ww, 0, ww.rows, X->data, M, y, panel);
    pq_free(panel);
    if (ww.bias)
        for (int64_t m = 0; m < M; m++)
            for (int64_t r = 0; r < ww.rows; r++)
                y[m * ww.rows + r] += ww.bias[r];
    return pq_act_epilogue(a->node, Y, a->err);
}

#define PQ_WIDE_COL_MAX ((int64_t)1 << 20) /* floats of one im2col tile */

enum pq_status pq_packed_wide_conv_run(const char *isa, const pq_kernel_args *a) {
    pq_wide_w ww;
    PQ_TRY(pq_wide_get(isa, a, &ww));
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    int nsp = X->rank - 2;
    const pq_attr *ks = pq_node_attr(a->node, "kernel_shape");
    if (nsp < 1 || nsp > 3 || !ks || ks->type != PQ_ATTR_INTS || ks->u.ints.n != (uint32_t)nsp ||
        Y->rank != X->rank)
        return pq_error_set(a->err, PQ_ERR_INVALID, "x rank %d and kernel_shape do not match",
                            X->rank);
    int64_t kd[3];
    for (int i = 0; i < nsp; i++)
        kd[i] = ks->u.ints.v[i];
    pq_ref_win w;
    pq_ref_window(a->node, X, kd, Y, &w);
    int64_t group = pq_node_attr_int(a->node, "group", 1);
    int64_t N = X->dims[0], C = X->dims[1];
    if (group < 1 || C % group || ww.rows % group || Y->dims[1] != ww.rows ||
        (C / group) * w.k[0] * w.k[1] * w.k[2] != ww.cols)
        return pq_error_set(a->err, PQ_ERR_INVALID,
                            "channels %lld / group %lld x kernel do not give cols = %lld",
                            (long long)C, (long long)group, (long long)ww.cols);
    int64_t cg = C / group, mg = ww.rows / group;
    int64_t isp = w.in[0] * w.in[1] * w.in[2], osp = w.out[0] * w.out[1] * w.out[2];
    if (N == 0 || osp == 0) return PQ_OK;
    int64_t t = PQ_WIDE_COL_MAX / ww.cols;
    if (t < 1) t = 1;
    if (t > osp) t = osp;
    enum pq_status st = PQ_OK;
    float *col = pq_malloc((size_t)(t * ww.cols) * sizeof(float));
    float *tmp = pq_malloc((size_t)(t * mg) * sizeof(float));
    float *panel = t > 1 ? pq_wide_panel(mg, ww.cols, a->err) : NULL;
    if (!col || !tmp || (t > 1 && !panel)) {
        st = pq_error_nomem(a->err, "packed conv workspace");
        goto cleanup;
    }
    const float *x = X->data;
    float *y = Y->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < group; g++) {
            const float *xg = x + (n * C + g * cg) * isp;
            float *yg = y + (n * ww.rows + g * mg) * osp;
            for (int64_t p0 = 0; p0 < osp; p0 += t) {
                int64_t tt = osp - p0 < t ? osp - p0 : t;
                pq_packed_im2col(xg, cg, &w, p0, tt, col);
                pq_wide_apply(&ww, g * mg, mg, col, tt, tmp, panel);
                for (int64_t m = 0; m < mg; m++) {
                    float bm = ww.bias ? ww.bias[g * mg + m] : 0.0f;
                    float *ym = yg + m * osp + p0;
                    for (int64_t pp = 0; pp < tt; pp++)
                        ym[pp] = ww.bias ? tmp[pp * mg + m] + bm : tmp[pp * mg + m];
                }
            }
        }
    st = pq_act_epilogue(a->node, Y, a->err);
cleanup:
    pq_free(col);
    pq_free(tmp);
    pq_free(panel);
    return st;
}
