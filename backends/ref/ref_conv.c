/* Reference Conv and ConvTranspose (1-D to 3-D, groups, dilations, strides, pads, auto_pad):
 * im2col / col2im in bounded chunks around the blocked GEMM of ref_gemm.h; also the window
 * geometry and the int32 im2col that pooling and ConvInteger share. */
#include <string.h>

#include "backends/piqc_ops.h"
#include "ref_gemm.h"
#include "ref_kernels.h"
#include "ref_util.h"

/* Upper bound of one im2col chunk, in elements (8 MB of f32). */
#define PQ_CONV_COL_MAX ((int64_t)1 << 21)

static void pq_attr_ints3(const pq_node *n, const char *name, int nsp, int64_t def, int64_t *v) {
    const pq_attr *a = pq_node_attr(n, name);
    for (int i = 0; i < 2 * nsp; i++)
        v[i] = def;
    if (a && a->type == PQ_ATTR_INTS)
        for (uint32_t i = 0; i < a->u.ints.n && i < (uint32_t)(2 * nsp); i++)
            v[i] = a->u.ints.v[i];
}

void pq_ref_window(const pq_node *n, const pq_tensor *x, const int64_t *k, const pq_tensor *y,
                   pq_ref_win *w) {
    int nsp = x->rank - 2;
    int64_t s[6], d[6], p[6];
    pq_attr_ints3(n, "strides", nsp, 1, s);
    pq_attr_ints3(n, "dilations", nsp, 1, d);
    pq_attr_ints3(n, "pads", nsp, 0, p);
    const char *ap = pq_node_attr_string(n, "auto_pad", "NOTSET");
    bool same_u = !strcmp(ap, "SAME_UPPER"), same_l = !strcmp(ap, "SAME_LOWER");
    bool valid = !strcmp(ap, "VALID");
    w->nsp = nsp;
    int off = 3 - nsp;
    for (int i = 0; i < 3; i++) {
        w->in[i] = w->out[i] = w->k[i] = w->s[i] = w->d[i] = 1;
        w->pb[i] = w->pe[i] = 0;
    }
    for (int i = 0; i < nsp; i++) {
        int j = off + i;
        w->in[j] = x->dims[2 + i];
        w->out[j] = y->dims[2 + i];
        w->k[j] = k[i];
        w->s[j] = s[i];
        w->d[j] = d[i];
        if (same_u || same_l) {
            int64_t total = (w->out[j] - 1) * s[i] + (k[i] - 1) * d[i] + 1 - w->in[j];
            if (total < 0) total = 0;
            w->pb[j] = same_u ? total / 2 : total - total / 2;
            w->pe[j] = total - w->pb[j];
        } else if (!valid) {
            w->pb[j] = p[i];
            w->pe[j] = p[i + nsp];
        }
    }
}

/* Output columns [ow_lo, ow_hi) whose input index iw0 + ow * s lies in [0, in). */
static void pq_valid_range(int64_t iw0, int64_t s, int64_t in, int64_t out, int64_t *lo,
                           int64_t *hi) {
    int64_t l = iw0 < 0 ? (-iw0 + s - 1) / s : 0;
    int64_t h = in - iw0 <= 0 ? 0 : (in - iw0 + s - 1) / s;
    if (l > out) l = out;
    if (h > out) h = out;
    if (h < l) h = l;
    *lo = l;
    *hi = h;
}

/* im2col of cg channels of x (each w->in spatial) for output rows [r0, r1) (a row = one (od, oh)
 * pair, w->out[2] columns): col is [cg * K, (r1 - r0) * out[2]], row-major. */
#define PQ_DEFINE_IM2COL(NAME, T)                                                                  \
    void NAME(const T *x, int64_t cg, const pq_ref_win *w, int64_t r0, int64_t r1, T *col) {       \
        int64_t OW = w->out[2], ncols = (r1 - r0) * OW;                                            \
        int64_t isp = w->in[0] * w->in[1] * w->in[2];                                              \
        T *dst = col;                                                                              \
        for (int64_t c = 0; c < cg; c++) {                                                         \
            const T *xc = x + c * isp;                                                             \
            for (int64_t kd = 0; kd < w->k[0]; kd++)                                               \
                for (int64_t kh = 0; kh < w->k[1]; kh++)                                           \
                    for (int64_t kw = 0; kw < w->k[2]; kw++) {                                     \
                        int64_t iw0 = kw * w->d[2] - w->pb[2], lo, hi;                             \
                        pq_valid_range(iw0, w->s[2], w->in[2], OW, &lo, &hi);                      \
                        for (int64_t r = r0; r < r1; r++) {                                        \
                            int64_t od = r / w->out[1], oh = r % w->out[1];                        \
                            int64_t id = od * w->s[0] - w->pb[0] + kd * w->d[0];                   \
                            int64_t ih = oh * w->s[1] - w->pb[1] + kh * w->d[1];                   \
                            T *drow = dst + (r - r0) * OW;                                         \
                            if (id < 0 || id >= w->in[0] || ih < 0 || ih >= w->in[1]) {            \
                                memset(drow, 0, (size_t)OW * sizeof(T));                           \
                                continue;                                                          \
                            }                                                                      \
                            const T *xrow = xc + (id * w->in[1] + ih) * w->in[2] + iw0;            \
                            for (int64_t ow = 0; ow < lo; ow++)                                    \
                                drow[ow] = 0;                                                      \
                            if (w->s[2] == 1)                                                      \
                                memcpy(drow + lo, xrow + lo, (size_t)(hi - lo) * sizeof(T));       \
                            else                                                                   \
                                for (int64_t ow = lo; ow < hi; ow++)                               \
                                    drow[ow] = xrow[ow * w->s[2]];                                 \
                            for (int64_t ow = hi; ow < OW; ow++)                                   \
                                drow[ow] = 0;                                                      \
                        }                                                                          \
                        dst += ncols;                                                              \
                    }                                                                              \
        }                                                                                          \
    }

static PQ_DEFINE_IM2COL(pq_im2col_f32, float) PQ_DEFINE_IM2COL(pq_ref_im2col_i32, int32_t)

    /* Rows per im2col chunk so the column buffer stays below PQ_CONV_COL_MAX elements. */
    int64_t pq_ref_conv_chunk_rows(int64_t ck, const pq_ref_win *w) {
    int64_t rows = w->out[0] * w->out[1];
    int64_t per = ck * w->out[2];
    int64_t r = per > 0 ? PQ_CONV_COL_MAX / per : rows;
    if (r < 1) r = 1;
    return r < rows ? r : rows;
}

/* Conv / ConvTranspose geometry from the shared decoder (ir/attrs.h) as a 3-D window: in = X's
 * spatial dims, out = Y's, pads as resolved (ConvTranspose uses only the begin pads, which place
 * the full result into Y). */
static enum pq_status pq_conv_win(const pq_kernel_args *a, const pq_tensor *X, const pq_tensor *W,
                                  const pq_tensor *Y, pq_ref_win *w, int64_t *group) {
    int nsp = X->rank - 2;
    if (nsp < 1 || nsp > 3 || W->rank != X->rank || Y->rank != X->rank)
        return pq_error_set(a->err, PQ_ERR_INVALID, "X, W, Y ranks %d, %d, %d", X->rank, W->rank,
                            Y->rank);
    int64_t in[3], k[3];
    for (int i = 0; i < nsp; i++) {
        in[i] = X->dims[2 + i];
        k[i] = W->dims[2 + i];
    }
    pq_conv_geom q;
    PQ_TRY(pq_conv_geom_decode(a->node, in, nsp, k, &q, a->err)); /* pq_ref_run names the node */
    w->nsp = nsp;
    int off = 3 - nsp;
    for (int i = 0; i < 3; i++) {
        w->in[i] = w->out[i] = w->k[i] = w->s[i] = w->d[i] = 1;
        w->pb[i] = w->pe[i] = 0;
    }
    for (int i = 0; i < nsp; i++) {
        int j = off + i;
        w->in[j] = in[i];
        w->out[j] = Y->dims[2 + i];
        w->k[j] = k[i];
        w->s[j] = q.strides[i];
        w->d[j] = q.dilations[i];
        w->pb[j] = q.pads_begin[i];
        w->pe[j] = q.pads_end[i];
    }
    *group = q.group;
    return PQ_OK;
}

enum pq_status pq_ref_conv(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 2, 1));
    const pq_tensor *X = a->in[0], *W = a->in[1];
    const pq_tensor *B = a->n_in > 2 ? a->in[2] : NULL;
    pq_tensor *Y = a->out[0];
    pq_ref_win w;
    int64_t group;
    PQ_TRY(pq_conv_win(a, X, W, Y, &w, &group));
    int64_t N = X->dims[0], C = X->dims[1], M = W->dims[0];
    int64_t Cg = C / group, Mg = M / group;
    int64_t KK = w.k[0] * w.k[1] * w.k[2], CK = Cg * KK;
    int64_t ISP = w.in[0] * w.in[1] * w.in[2], OSP = w.out[0] * w.out[1] * w.out[2];
    bool pointwise = KK == 1 && w.s[0] == 1 && w.s[1] == 1 && w.s[2] == 1 && w.pb[0] == 0 &&
                     w.pb[1] == 0 && w.pb[2] == 0 && ISP == OSP;
    const float *px, *pw, *pb = NULL;
    float *ox = NULL, *ow = NULL, *ob = NULL, *py, *oy = NULL, *col = NULL;
    enum pq_status st;
    PQ_TRY_GOTO(st, pq_ref_f32_view(X, &px, &ox, a->err), done);
    PQ_TRY_GOTO(st, pq_ref_f32_view(W, &pw, &ow, a->err), done);
    if (B) PQ_TRY_GOTO(st, pq_ref_f32_view(B, &pb, &ob, a->err), done);
    PQ_TRY_GOTO(st, pq_ref_f32_out(Y, &py, &oy, a->err), done);
    int64_t rows = w.out[0] * w.out[1];
    int64_t chunk = pq_ref_conv_chunk_rows(CK, &w);
    if (!pointwise && OSP > 0 && CK > 0) {
        col = pq_malloc((size_t)(CK * chunk * w.out[2]) * sizeof(float));
        if (!col) {
            st = pq_error_nomem(a->err, "conv column buffer");
            goto done;
        }
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < group; g++) {
            const float *xg = px + (n * C + g * Cg) * ISP;
            const float *wg = pw + g * Mg * CK;
            float *yg = py + (n * M + g * Mg) * OSP;
            float beta = 0.0f;
            if (pb) {
                for (int64_t m = 0; m < Mg; m++)
                    for (int64_t i = 0; i < OSP; i++)
                        yg[m * OSP + i] = pb[g * Mg + m];
                beta = 1.0f;
            }
            if (pointwise) {
                PQ_TRY_GOTO(st,
                            pq_ref_sgemm(false, false, Mg, OSP, Cg, 1.0f, wg, CK, xg, ISP, beta, yg,
                                         OSP, a->err),
                            done);
                continue;
            }
            for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
                int64_t r1 = r0 + chunk < rows ? r0 + chunk : rows;
                int64_t ncols = (r1 - r0) * w.out[2];
                pq_im2col_f32(xg, Cg, &w, r0, r1, col);
                PQ_TRY_GOTO(st,
                            pq_ref_sgemm(false, false, Mg, ncols, CK, 1.0f, wg, CK, col, ncols,
                                         beta, yg + r0 * w.out[2], OSP, a->err),
                            done);
            }
        }
    pq_ref_f32_commit(Y, oy);
    oy = NULL;
    st = pq_act_epilogue(a->node, Y, a->err); /* fused activation (PQ_OK when none) */
done:
    pq_free(col);
    pq_free(ox);
    pq_free(ow);
    pq_free(ob);
    pq_free(oy);
    return st;
}

/* ---- ConvTranspose ---- */

enum pq_status pq_ref_conv_transpose(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 2, 1));
    const pq_tensor *X = a->in[0], *W = a->in[1];
    const pq_tensor *B = a->n_in > 2 ? a->in[2] : NULL;
    pq_tensor *Y = a->out[0];
    pq_ref_win w;
    int64_t group;
    PQ_TRY(pq_conv_win(a, X, W, Y, &w, &group));
    int64_t N = X->dims[0], C = X->dims[1], Mg = W->dims[1], M = Mg * group, Cg = C / group;
    int64_t KK = w.k[0] * w.k[1] * w.k[2], MK = Mg * KK;
    int64_t ISP = w.in[0] * w.in[1] * w.in[2], OSP = w.out[0] * w.out[1] * w.out[2];
    const float *px, *pw, *pb = NULL;
    float *ox = NULL, *ow = NULL, *ob = NULL, *py, *oy = NULL, *col = NULL;
    enum pq_status st;
    PQ_TRY_GOTO(st, pq_ref_f32_view(X, &px, &ox, a->err), done);
    PQ_TRY_GOTO(st, pq_ref_f32_view(W, &pw, &ow, a->err), done);
    if (B) PQ_TRY_GOTO(st, pq_ref_f32_view(B, &pb, &ob, a->err), done);
    PQ_TRY_GOTO(st, pq_ref_f32_out(Y, &py, &oy, a->err), done);
    int64_t rows = w.in[0] * w.in[1];
    int64_t per = MK * w.in[2];
    int64_t chunk = per > 0 ? PQ_CONV_COL_MAX / per : rows;
    if (chunk < 1) chunk = 1;
    if (chunk > rows) chunk = rows;
    if (MK > 0 && ISP > 0) {
        col = pq_malloc((size_t)(MK * chunk * w.in[2]) * sizeof(float));
        if (!col) {
            st = pq_error_nomem(a->err, "conv_transpose column buffer");
            goto done;
        }
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < group; g++) {
            const float *xg = px + (n * C + g * Cg) * ISP;
            const float *wg = pw + g * Cg * MK;
            float *yg = py + (n * M + g * Mg) * OSP;
            for (int64_t m = 0; m < Mg; m++)
                for (int64_t i = 0; i < OSP; i++)
                    yg[m * OSP + i] = pb ? pb[g * Mg + m] : 0.0f;
            if (!col) continue;
            for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
                int64_t r1 = r0 + chunk < rows ? r0 + chunk : rows;
                int64_t ncols = (r1 - r0) * w.in[2];
                /* col[MK, ncols] = W_g^T [MK, Cg] * X_g[Cg, chunk columns] */
                PQ_TRY_GOTO(st,
                            pq_ref_sgemm(true, false, MK, ncols, Cg, 1.0f, wg, MK,
                                         xg + r0 * w.in[2], ISP, 0.0f, col, ncols, a->err),
                            done);
                for (int64_t m = 0; m < Mg; m++)
                    for (int64_t kd = 0; kd < w.k[0]; kd++)
                        for (int64_t kh = 0; kh < w.k[1]; kh++)
                            for (int64_t kw = 0; kw < w.k[2]; kw++) {
                                int64_t row = ((m * w.k[0] + kd) * w.k[1] + kh) * w.k[2] + kw;
                                const float *crow = col + row * ncols;
                                for (int64_t r = r0; r < r1; r++) {
                                    int64_t id = r / w.in[1], ih = r % w.in[1];
                                    int64_t od = id * w.s[0] - w.pb[0] + kd * w.d[0];
                                    int64_t oh = ih * w.s[1] - w.pb[1] + kh * w.d[1];
                                    if (od < 0 || od >= w.out[0] || oh < 0 || oh >= w.out[1])
                                        continue;
                                    float *yrow = yg + m * OSP + (od * w.out[1] + oh) * w.out[2];
                                    const float *cr = crow + (r - r0) * w.in[2];
                                    for (int64_t iw = 0; iw < w.in[2]; iw++) {
                                        int64_t o = iw * w.s[2] - w.pb[2] + kw * w.d[2];
                                        if (o >= 0 && o < w.out[2]) yrow[o] += cr[iw];
                                    }
                                }
                            }
            }
        }
    pq_ref_f32_commit(Y, oy);
    oy = NULL;
    st = pq_act_epilogue(a->node, Y, a->err); /* fused activation (PQ_OK when none) */
done:
    pq_free(col);
    pq_free(ox);
    pq_free(ow);
    pq_free(ob);
    pq_free(oy);
    return st;
}
