/* PackedMatMul / PackedConv on int8 (codes + per-row scales) and f16 weights: the op drivers
 * around the kernels of packed_int8.h / packed_f16.h (checks, bias, activation, im2col tiles). */
#include "backends/packed_wide.h"

#include <string.h>

#include "backends/packed_f16.h"
#include "backends/packed_int8.h"
#include "backends/packed_panel.h"
#include "backends/piqc_ops.h"
#include "backends/ref/ref_gemm.h"
#include "backends/threadpool.h"
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

static void pq_wide_rows_apply(const void *w, int64_t r0, int64_t n, const float *x, int64_t M,
                               float *y, float *panel) {
    pq_wide_apply(w, r0, n, x, M, y, panel);
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
    /* one panel per thread: pq_panel_rows(rows, cols) rows is enough for any chunk of rows */
    return pq_packed_rows_run(a->n_threads, pq_wide_rows_apply, &ww, ww.rows, ww.cols, X->data, M,
                              ww.bias, pq_panel_rows(ww.rows, ww.cols) * ww.cols, Y->data, a->node,
                              a->err);
}

#define PQ_WIDE_COL_MAX ((int64_t)1 << 20) /* floats of one im2col tile */

/* One wide PackedConv: tiles of t positions of one image and group (the last of an image
 * shorter), numbered (n, g, tile); chunk c's workspace at c * the size of one. */
typedef struct pq_wconv_job {
    const pq_wide_w *ww;
    pq_ref_win w;
    int64_t C, group, cg, mg, isp, osp, t, ntiles, chunks, units;
    const float *x;
    float *y, *col, *tmp, *panel;
    int64_t col_n, tmp_n, panel_n;
    pq_activation act;
} pq_wconv_job;

static void pq_wconv_task(void *vctx, int64_t c0, int64_t c1) {
    const pq_wconv_job *j = vctx;
    const pq_wide_w *ww = j->ww;
    for (int64_t c = c0; c < c1; c++) {
        int64_t u0, u1;
        pq_parallel_range(j->units, j->chunks, c, &u0, &u1);
        float *col = j->col + c * j->col_n, *tmp = j->tmp + c * j->tmp_n;
        float *panel = j->panel ? j->panel + c * j->panel_n : NULL;
        for (int64_t u = u0; u < u1; u++) {
            int64_t ng = u / j->ntiles, n = ng / j->group, g = ng % j->group;
            int64_t p0 = (u % j->ntiles) * j->t;
            int64_t tt = j->osp - p0 < j->t ? j->osp - p0 : j->t;
            const float *xg = j->x + (n * j->C + g * j->cg) * j->isp;
            float *yg = j->y + (n * ww->rows + g * j->mg) * j->osp;
            pq_packed_im2col(xg, j->cg, &j->w, p0, tt, col);
            pq_wide_apply(ww, g * j->mg, j->mg, col, tt, tmp, panel);
            for (int64_t m = 0; m < j->mg; m++) {
                float bm = ww->bias ? ww->bias[g * j->mg + m] : 0.0f;
                float *ym = yg + m * j->osp + p0;
                for (int64_t pp = 0; pp < tt; pp++)
                    ym[pp] = ww->bias ? tmp[pp * j->mg + m] + bm : tmp[pp * j->mg + m];
                pq_act_apply_f32(&j->act, ym, tt);
            }
        }
    }
}

enum pq_status pq_packed_wide_conv_run(const char *isa, const pq_kernel_args *a) {
    pq_wide_w ww;
    PQ_TRY(pq_wide_get(isa, a, &ww));
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    pq_packed_conv_geom geo;
    PQ_TRY(pq_packed_conv_geom_get(a, ww.rows, ww.cols, &geo));
    pq_wconv_job j = {.ww = &ww, .w = geo.w, .act = geo.act};
    int64_t group = geo.group, N = geo.N;
    j.C = geo.C;
    j.group = group;
    j.cg = geo.cg;
    j.mg = geo.mg;
    j.isp = geo.isp;
    j.osp = geo.osp;
    if (N == 0 || j.osp == 0) return PQ_OK;
    int64_t t = PQ_WIDE_COL_MAX / ww.cols;
    if (t < 1) t = 1;
    if (t > j.osp) t = j.osp;
    j.t = t;
    j.ntiles = (j.osp + t - 1) / t;
    j.units = N * group * j.ntiles; /* threads take contiguous runs; tiles do not depend on them */
    j.chunks = a->n_threads > 1
                   ? pq_packed_par_chunks(a->n_threads, j.units, N * j.osp * ww.rows * ww.cols)
                   : 1;
    j.col_n = t * ww.cols;
    j.tmp_n = t * j.mg;
    j.panel_n = t > 1 ? pq_panel_rows(j.mg, ww.cols) * ww.cols : 0;
    enum pq_status st = PQ_OK;
    j.col = pq_malloc((size_t)(j.chunks * j.col_n) * sizeof(float));
    j.tmp = pq_malloc((size_t)(j.chunks * j.tmp_n) * sizeof(float));
    j.panel = t > 1 ? pq_malloc((size_t)(j.chunks * j.panel_n) * sizeof(float)) : NULL;
    if (!j.col || !j.tmp || (t > 1 && !j.panel)) {
        st = pq_error_nomem(a->err, "packed conv workspace");
        goto cleanup;
    }
    j.x = X->data;
    j.y = Y->data;
    pq_parallel_for((int)j.chunks, j.chunks, pq_wconv_task, &j);
cleanup:
    pq_free(j.col);
    pq_free(j.tmp);
    pq_free(j.panel);
    return st;
}
