/* QLinearConv / QLinearMatMul glue over the INT8 GEMM: case checks (UNSUPPORTED -> reference),
 * per-channel multipliers and zero-point corrections computed once per call, im2col tiles for
 * kxk convolutions (padding = zp_x), 1x1 convolutions straight from NCHW, a direct depthwise
 * kernel and per-group GEMMs. Single-threaded: a->n_threads is ignored for now. */
#include "int8_ops.h"

#include <math.h>
#include <string.h>

#include "ir/alloc.h"
#include "ir/attrs.h"
#include "ir/ir.h"

/* Target bytes of one packed im2col tile (stays in L2 while every output channel runs on it). */
#define PQ_I8_TILE_BYTES (192u * 1024u)

static const pq_tensor *pq_i8_in(const pq_kernel_args *a, uint32_t i) {
    return i < a->n_in ? a->in[i] : NULL;
}

/* A scalar (one element) tensor with data. */
static bool pq_i8_scalar(const pq_tensor *t) {
    return t && t->data && pq_tensor_numel(t) == 1;
}

/* A u8 zero point: NULL (0) or one u8 element. */
static bool pq_i8_zp_u8(const pq_tensor *t, int32_t *zp) {
    if (!t) {
        *zp = 0;
        return true;
    }
    if (t->dtype != PQ_DTYPE_U8 || !pq_i8_scalar(t)) return false;
    *zp = ((const uint8_t *)t->data)[0];
    return true;
}

/* Weight zero points: absent or all zero. */
static bool pq_i8_zp_zero(const pq_tensor *t) {
    if (!t) return true;
    int64_t n = pq_tensor_numel(t);
    if (n > 0 && !t->data) return false;
    if (t->dtype != PQ_DTYPE_I8 && t->dtype != PQ_DTYPE_U8) return false;
    for (int64_t i = 0; i < n; i++)
        if (pq_dtype_load_i64(t->dtype, t->data, (size_t)i) != 0) return false;
    return true;
}

/* Per-channel multipliers m[i] = (s_x * s_w[i]) / s_y in double, as the reference computes them
 * (s_w per tensor or one per channel). False when the scale shapes are not handled. */
static bool pq_i8_mults(const pq_tensor *sx, const pq_tensor *sw, const pq_tensor *sy, int64_t n,
                        double *m, bool *finite) {
    if (!pq_i8_scalar(sx) || !pq_i8_scalar(sy) || !sw || !sw->data) return false;
    int64_t nw = pq_tensor_numel(sw);
    if (nw != 1 && nw != n) return false;
    double xs = pq_dtype_load(sx->dtype, sx->data, 0), ys = pq_dtype_load(sy->dtype, sy->data, 0);
    *finite = true;
    for (int64_t i = 0; i < n; i++) {
        m[i] = xs * pq_dtype_load(sw->dtype, sw->data, (size_t)(nw == 1 ? 0 : i)) / ys;
        if (!isfinite(m[i])) *finite = false;
    }
    return true;
}

/* ---- QLinearMatMul ---- */

enum pq_status pq_i8_qlinear_matmul_run(const pq_i8_kernels *k, const pq_kernel_args *a) {
    if (!k) k = pq_i8_kernels_get();
    if (a->n_in < 8 || a->n_out < 1 || !a->out[0]) return PQ_ERR_UNSUPPORTED;
    const pq_tensor *A = pq_i8_in(a, 0), *B = pq_i8_in(a, 3);
    pq_tensor *Y = a->out[0];
    if (!A || !B || A->dtype != PQ_DTYPE_U8 || B->dtype != PQ_DTYPE_I8 || Y->dtype != PQ_DTYPE_U8)
        return PQ_ERR_UNSUPPORTED;
    if (A->rank < 1 || B->rank != 2 || !A->data || !B->data || !Y->data) return PQ_ERR_UNSUPPORTED;
    int64_t K = A->dims[A->rank - 1], N = B->dims[1];
    if (K <= 0 || N <= 0 || B->dims[0] != K) return PQ_ERR_UNSUPPORTED;
    int64_t rows = pq_tensor_numel(A) / K;
    if (rows <= 0 || Y->rank < 1 || Y->dims[Y->rank - 1] != N || pq_tensor_numel(Y) != rows * N)
        return PQ_ERR_UNSUPPORTED;
    int32_t zp_a, zp_y;
    if (!pq_i8_zp_u8(pq_i8_in(a, 2), &zp_a) || !pq_i8_zp_zero(pq_i8_in(a, 5)) ||
        !pq_i8_zp_u8(pq_i8_in(a, 7), &zp_y) || !pq_i8_in(a, 7))
        return PQ_ERR_UNSUPPORTED;
    double *m = pq_malloc((size_t)N * sizeof(double));
    if (!m) return pq_error_nomem(a->err, "QLinearMatMul multipliers");
    bool finite;
    if (!pq_i8_mults(pq_i8_in(a, 1), pq_i8_in(a, 4), pq_i8_in(a, 6), N, m, &finite)) {
        pq_free(m);
        return PQ_ERR_UNSUPPORTED;
    }
    enum pq_status st =
        pq_i8_gemm_u8s8(k, (size_t)rows, (size_t)N, (size_t)K, A->data, (size_t)K, zp_a, B->data,
                        (size_t)N, m, zp_y, Y->data, (size_t)N, a->err);
    pq_free(m);
    return st;
}

/* ---- QLinearConv ---- */

typedef struct pq_i8_conv {
    int64_t N, C, H, W, M, OH, OW, KH, KW, group, Cg, Mg;
    int64_t sh, sw, dh, dw, pt, pl, pb, pr;
} pq_i8_conv;

/* im2col of output positions [p0, p0 + nc) of one image and group: col[k][i] (nc apart) for
 * k = (c, kh, kw), padding filled with zp. */
static void pq_i8_im2col(const pq_i8_conv *g, const uint8_t *x, int64_t p0, int64_t nc, uint8_t zp,
                         uint8_t *col) {
    int64_t k = 0;
    for (int64_t c = 0; c < g->Cg; c++)
        for (int64_t kh = 0; kh < g->KH; kh++)
            for (int64_t kw = 0; kw < g->KW; kw++, k++) {
                uint8_t *d = col + k * nc;
                int64_t off_w = kw * g->dw - g->pl;
                for (int64_t i = 0, p = p0; i < nc;) {
                    int64_t oh = p / g->OW, ow = p % g->OW;
                    int64_t run = g->OW - ow < nc - i ? g->OW - ow : nc - i;
                    int64_t ih = oh * g->sh - g->pt + kh * g->dh;
                    if (ih < 0 || ih >= g->H) {
                        memset(d + i, zp, (size_t)run);
                    } else {
                        const uint8_t *row = x + (c * g->H + ih) * g->W;
                        if (g->sw == 1) {
                            /* iw = ow + t + off_w in [0, W) for t in [lo, hi) */
                            int64_t lo = -(ow + off_w), hi = g->W - (ow + off_w);
                            lo = lo < 0 ? 0 : (lo > run ? run : lo);
                            hi = hi < lo ? lo : (hi > run ? run : hi);
                            memset(d + i, zp, (size_t)lo);
                            memcpy(d + i + lo, row + ow + lo + off_w, (size_t)(hi - lo));
                            memset(d + i + hi, zp, (size_t)(run - hi));
                        } else {
                            for (int64_t t = 0; t < run; t++) {
                                int64_t iw = (ow + t) * g->sw + off_w;
                                d[i + t] = iw >= 0 && iw < g->W ? row[iw] : zp;
                            }
                        }
                    }
                    i += run;
                    p += run;
                }
            }
}

/* Depthwise (one input channel per group): direct loops on a zero-padded i32 copy of x - zp_x,
 * exact i32 sums, then the epilogue per output plane. */
static enum pq_status pq_i8_conv_depthwise(const pq_i8_kernels *k, const pq_i8_conv *g,
                                           const uint8_t *X, const int8_t *Wt, int32_t zp_x,
                                           const double *bias, const double *m, bool finite,
                                           int32_t zp_y, uint8_t *Y, pq_error *err) {
    int64_t Hp = g->H + g->pt + g->pb, Wp = g->W + g->pl + g->pr, OSP = g->OH * g->OW;
    int32_t *pad = pq_malloc_aligned((size_t)(Hp * Wp) * sizeof(int32_t) + 64);
    int32_t *acc = pq_malloc_aligned((size_t)OSP * sizeof(int32_t) + 64);
    if (!pad || !acc) {
        pq_free(pad);
        pq_free(acc);
        return pq_error_nomem(err, "QLinearConv depthwise buffers");
    }
    pq_i8_requant_fn rq = finite ? k->requant : pq_i8_requant__scalar;
    memset(pad, 0, (size_t)(Hp * Wp) * sizeof(int32_t));
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t c = 0; c < g->C; c++) {
            const uint8_t *xc = X + (n * g->C + c) * g->H * g->W;
            for (int64_t h = 0; h < g->H; h++) {
                int32_t *pr = pad + (h + g->pt) * Wp + g->pl;
                for (int64_t w = 0; w < g->W; w++)
                    pr[w] = (int32_t)xc[h * g->W + w] - zp_x;
            }
            for (int64_t j = 0; j < g->Mg; j++) {
                int64_t oc = c * g->Mg + j;
                const int8_t *wc = Wt + oc * g->KH * g->KW;
                memset(acc, 0, (size_t)OSP * sizeof(int32_t));
                for (int64_t oh = 0; oh < g->OH; oh++) {
                    int32_t *ar = acc + oh * g->OW;
                    for (int64_t kh = 0; kh < g->KH; kh++) {
                        const int32_t *pr = pad + (oh * g->sh + kh * g->dh) * Wp;
                        for (int64_t kw = 0; kw < g->KW; kw++) {
                            int32_t wv = wc[kh * g->KW + kw];
                            const int32_t *src = pr + kw * g->dw;
                            if (g->sw == 1)
                                for (int64_t ow = 0; ow < g->OW; ow++)
                                    ar[ow] += wv * src[ow];
                            else
                                for (int64_t ow = 0; ow < g->OW; ow++)
                                    ar[ow] += wv * src[ow * g->sw];
                        }
                    }
                }
                rq(acc, (size_t)OSP, bias ? bias[oc] : 0.0, m[oc], NULL, zp_y,
                   Y + (n * g->M + oc) * OSP);
            }
        }
    pq_free(pad);
    pq_free(acc);
    return PQ_OK;
}

enum pq_status pq_i8_qlinear_conv_run(const pq_i8_kernels *k, const pq_kernel_args *a) {
    if (!k) k = pq_i8_kernels_get();
    if (a->n_in < 8 || a->n_out < 1 || !a->out[0]) return PQ_ERR_UNSUPPORTED;
    const pq_tensor *X = pq_i8_in(a, 0), *Wt = pq_i8_in(a, 3), *Bt = pq_i8_in(a, 8);
    pq_tensor *Y = a->out[0];
    if (!X || !Wt || X->dtype != PQ_DTYPE_U8 || Wt->dtype != PQ_DTYPE_I8 ||
        Y->dtype != PQ_DTYPE_U8 || X->rank != 4 || Wt->rank != 4 || Y->rank != 4)
        return PQ_ERR_UNSUPPORTED;
    if (pq_tensor_numel(X) <= 0 || pq_tensor_numel(Wt) <= 0 || pq_tensor_numel(Y) <= 0 ||
        !X->data || !Wt->data || !Y->data)
        return PQ_ERR_UNSUPPORTED;
    pq_conv_geom geo;
    pq_error scratch = {0};
    if (pq_conv_geom_decode(a->node, X->dims + 2, 2, Wt->dims + 2, &geo, &scratch) != PQ_OK ||
        geo.transpose)
        return PQ_ERR_UNSUPPORTED;
    pq_i8_conv g = {.N = X->dims[0],
                    .C = X->dims[1],
                    .H = X->dims[2],
                    .W = X->dims[3],
                    .M = Wt->dims[0],
                    .OH = geo.out[0],
                    .OW = geo.out[1],
                    .KH = geo.kernel[0],
                    .KW = geo.kernel[1],
                    .group = geo.group,
                    .sh = geo.strides[0],
                    .sw = geo.strides[1],
                    .dh = geo.dilations[0],
                    .dw = geo.dilations[1],
                    .pt = geo.pads_begin[0],
                    .pl = geo.pads_begin[1],
                    .pb = geo.pads_end[0],
                    .pr = geo.pads_end[1]};
    if (g.group < 1 || g.C % g.group || g.M % g.group) return PQ_ERR_UNSUPPORTED;
    g.Cg = g.C / g.group;
    g.Mg = g.M / g.group;
    if (Wt->dims[1] != g.Cg || Wt->dims[2] != g.KH || Wt->dims[3] != g.KW || Y->dims[0] != g.N ||
        Y->dims[1] != g.M || Y->dims[2] != g.OH || Y->dims[3] != g.OW || g.OH <= 0 || g.OW <= 0 ||
        g.pt < 0 || g.pl < 0 || g.pb < 0 || g.pr < 0)
        return PQ_ERR_UNSUPPORTED;
    int32_t zp_x, zp_y;
    if (!pq_i8_in(a, 2) || !pq_i8_zp_u8(pq_i8_in(a, 2), &zp_x) || !pq_i8_zp_zero(pq_i8_in(a, 5)) ||
        !pq_i8_in(a, 7) || !pq_i8_zp_u8(pq_i8_in(a, 7), &zp_y))
        return PQ_ERR_UNSUPPORTED;
    if (Bt && (Bt->dtype != PQ_DTYPE_I32 || pq_tensor_numel(Bt) != g.M || !Bt->data))
        return PQ_ERR_UNSUPPORTED;

    size_t M = (size_t)g.M, CK = (size_t)(g.Cg * g.KH * g.KW), OSP = (size_t)(g.OH * g.OW);
    size_t rb = pq_i8_row_bytes(k, CK), nr = (size_t)k->nr;
    bool depthwise = g.Cg == 1 && g.group > 1;
    bool pointwise = g.KH == 1 && g.KW == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 &&
                     g.OH == g.H && g.OW == g.W;
    /* column tile: a multiple of nr holding about PQ_I8_TILE_BYTES of packed panels */
    size_t nc = PQ_I8_TILE_BYTES / (rb ? rb : 1) / nr * nr;
    if (nc < nr) nc = nr;
    size_t osp_up = (OSP + nr - 1) / nr * nr;
    if (nc > osp_up) nc = osp_up;

    double *m = pq_malloc(M * sizeof(double)), *bias = Bt ? pq_malloc(M * sizeof(double)) : NULL;
    int32_t *corr = pq_malloc(M * sizeof(int32_t));
    void *rows = depthwise ? NULL : pq_malloc_aligned(M * rb + 64);
    uint8_t *col = depthwise || pointwise ? NULL : pq_malloc_aligned(CK * nc + 64);
    void *panels = depthwise ? NULL : pq_malloc_aligned(pq_i8_panels_bytes(k, CK, nc) + 64);
    enum pq_status st = PQ_OK;
    bool finite;
    if (!m || (Bt && !bias) || !corr || (!depthwise && (!rows || !panels)) ||
        (!depthwise && !pointwise && !col)) {
        st = pq_error_nomem(a->err, "QLinearConv buffers");
        goto done;
    }
    if (!pq_i8_mults(pq_i8_in(a, 1), pq_i8_in(a, 4), pq_i8_in(a, 6), g.M, m, &finite)) {
        st = PQ_ERR_UNSUPPORTED;
        goto done;
    }
    if (Bt)
        for (size_t i = 0; i < M; i++) {
            bias[i] = (double)((const int32_t *)Bt->data)[i];
        }
    if (depthwise) {
        st = pq_i8_conv_depthwise(k, &g, X->data, Wt->data, zp_x, bias, m, finite, zp_y, Y->data,
                                  a->err);
        goto done;
    }
    /* Weights packed once per call; the zero-point correction -zp_x * sum_k w[oc][k] is folded
     * per output channel before the main loop. */
    pq_i8_pack_rows(k, Wt->data, CK, M, CK, false, rows);
    pq_i8_corr_rows(Wt->data, CK, M, CK, pq_i8_zp_eff(k, zp_x), corr);
    for (int64_t n = 0; n < g.N; n++)
        for (int64_t gi = 0; gi < g.group; gi++) {
            const uint8_t *xg = (const uint8_t *)X->data + (n * g.C + gi * g.Cg) * g.H * g.W;
            uint8_t *yg = (uint8_t *)Y->data + (n * g.M + gi * g.Mg) * (int64_t)OSP;
            size_t r0 = (size_t)(gi * g.Mg);
            pq_i8_epilogue ep = {.corr_row = corr + r0,
                                 .bias_row = bias ? bias + r0 : NULL,
                                 .m_row = m + r0,
                                 .zp_y = zp_y,
                                 .finite = finite};
            for (size_t p0 = 0; p0 < OSP; p0 += nc) {
                size_t n_c = OSP - p0 < nc ? OSP - p0 : nc;
                if (pointwise) {
                    pq_i8_pack_panels(k, xg + p0, OSP, CK, n_c, true, panels);
                } else {
                    pq_i8_im2col(&g, xg, (int64_t)p0, (int64_t)n_c, (uint8_t)zp_x, col);
                    pq_i8_pack_panels(k, col, n_c, CK, n_c, true, panels);
                }
                pq_i8_gemm_packed(k, false, (size_t)g.Mg, n_c, CK, (const uint8_t *)rows + r0 * rb,
                                  panels, &ep, yg + p0, OSP);
            }
        }
done:
    pq_free(m);
    pq_free(bias);
    pq_free(corr);
    pq_free(rows);
    pq_free(col);
    pq_free(panels);
    return st;
}

enum pq_status pq_fast_int8_qlinear_conv(const pq_kernel_args *a) {
    return pq_i8_qlinear_conv_run(pq_i8_kernels_get(), a);
}

enum pq_status pq_fast_int8_qlinear_matmul(const pq_kernel_args *a) {
    return pq_i8_qlinear_matmul_run(pq_i8_kernels_get(), a);
}
