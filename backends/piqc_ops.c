/* Kernels of piqc's own ops (Hadamard, FakeQuant, PackedMatMul, PackedConv) on an explicit quant
 * kernel table, and the fused-activation epilogue shared by the reference and oneDNN kernels. */
#include "backends/piqc_ops.h"

#include <math.h>
#include <string.h>

#include "backends/packed_wide.h"
#include "backends/quant/fwht.h"
#include "backends/quant/quant.h"
#include "backends/ref/ref_act.h"
#include "backends/ref/ref_gemm.h"
#include "ir/ir.h"

/* ---- fused activation ---- */

void pq_act_apply_f32(const pq_activation *act, float *y, int64_t n) {
    const float al = act->alpha, be = act->beta;
    switch (act->kind) {
    case PQ_ACT_NONE:
    case PQ_ACT_COUNT:
        return;
    case PQ_ACT_RELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = pq_act_relu_f32(y[i]);
        return;
    case PQ_ACT_CLIP:
        for (int64_t i = 0; i < n; i++)
            y[i] = pq_act_clip_f32(y[i], al, be);
        return;
    case PQ_ACT_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = pq_act_leaky_relu_f32(y[i], al);
        return;
    case PQ_ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            y[i] = (float)pq_act_sigmoid_f64(y[i]);
        return;
    case PQ_ACT_HARD_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            y[i] = (float)pq_act_hard_sigmoid_f64(y[i], al, be);
        return;
    case PQ_ACT_HARD_SWISH:
        for (int64_t i = 0; i < n; i++)
            y[i] = (float)pq_act_hard_swish_f64(y[i]);
        return;
    case PQ_ACT_TANH:
        for (int64_t i = 0; i < n; i++)
            y[i] = tanhf(y[i]);
        return;
    case PQ_ACT_GELU: {
        const float sqrt2 = 1.41421353816986083984375f; /* (float)sqrt(2) */
        for (int64_t i = 0; i < n; i++) {
            float x = y[i];
            float e = erff(x / sqrt2);
            float u = e + 1.0f;
            float v = x * u;
            y[i] = v * 0.5f;
        }
        return;
    }
    case PQ_ACT_SWISH:
        for (int64_t i = 0; i < n; i++) {
            float x = y[i];
            float s = (float)pq_act_sigmoid_f64(x);
            y[i] = x * s;
        }
        return;
    }
}

enum pq_status pq_act_epilogue(const pq_node *n, pq_tensor *t, pq_error *err) {
    pq_activation act;
    PQ_TRY(pq_node_activation(n, &act, err));
    if (act.kind == PQ_ACT_NONE || !t) return PQ_OK;
    int64_t cnt = pq_tensor_numel(t);
    if (t->dtype == PQ_DTYPE_F32) {
        pq_act_apply_f32(&act, t->data, cnt);
        return PQ_OK;
    }
    if (!pq_dtype_is_float(t->dtype))
        return pq_error_set(err, PQ_ERR_INVALID, "fused activation %s on a %s result",
                            pq_act_name(act.kind), pq_dtype_name(t->dtype));
    for (int64_t i = 0; i < cnt; i++) {
        float v = (float)pq_dtype_load(t->dtype, t->data, (size_t)i);
        pq_act_apply_f32(&act, &v, 1);
        pq_dtype_store(t->dtype, t->data, (size_t)i, v);
    }
    return PQ_OK;
}

/* ---- shared checks ---- */

static enum pq_status pq_piqc_args(const pq_kernel_args *a, uint32_t n_in) {
    for (uint32_t i = 0; i < n_in; i++)
        if (i >= a->n_in || !a->in[i])
            return pq_error_set(a->err, PQ_ERR_INVALID, "input %u is missing", i);
    if (a->n_out < 1 || !a->out[0])
        return pq_error_set(a->err, PQ_ERR_INVALID, "output 0 is missing");
    if (!a->out[0]->data && pq_tensor_numel(a->out[0]) != 0)
        return pq_error_set(a->err, PQ_ERR_INTERNAL, "output 0 has no buffer");
    if (a->in[0]->dtype != PQ_DTYPE_F32 || a->out[0]->dtype != PQ_DTYPE_F32)
        return pq_error_set(a->err, PQ_ERR_INVALID, "input 0 and output 0 must be f32");
    return PQ_OK;
}

/* ---- Hadamard ---- */

/* x[i] = -x[i] where sign[i] < 0, on each of rows vectors of length n (exact, like
 * pq_rht_forward's sign step). */
static void pq_hadamard_signs(float *x, int64_t rows, int64_t n, const float *sign) {
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * n;
        for (int64_t i = 0; i < n; i++)
            if (sign[i] < 0.0f) xr[i] = -xr[i];
    }
}

/* Randomised Hadamard transform of rows contiguous fibers of length n in place. */
static void pq_hadamard_rows(const pq_qkernels *k, float *x, int64_t rows, int64_t n, int64_t b,
                             const float *sign, float scale, bool inverse) {
    if (!inverse) pq_hadamard_signs(x, rows, n, sign);
    k->fwht_rows(x, rows * (n / b), b, scale);
    if (inverse) pq_hadamard_signs(x, rows, n, sign);
}

#define PQ_HADAMARD_GATHER_MAX ((int64_t)1 << 16) /* floats of gathered fibers per step */

enum pq_status pq_piqc_hadamard_run(const pq_qkernels *k, const pq_kernel_args *a) {
    PQ_TRY(pq_piqc_args(a, 1));
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    if (X->rank < 1) return pq_error_set(a->err, PQ_ERR_INVALID, "input X must have rank >= 1");
    int64_t axis = pq_node_attr_int(a->node, "axis", -1);
    if (axis < 0) axis += X->rank;
    if (axis < 0 || axis >= X->rank)
        return pq_error_set(a->err, PQ_ERR_INVALID, "axis %lld out of range for rank %d",
                            (long long)pq_node_attr_int(a->node, "axis", -1), X->rank);
    uint64_t seed = (uint64_t)pq_node_attr_int(a->node, "seed", 42);
    bool inverse = pq_node_attr_int(a->node, "inverse", 0) != 0;
    int64_t outer, n, inner;
    outer = 1;
    inner = 1;
    for (int i = 0; i < axis; i++)
        outer *= X->dims[i];
    n = X->dims[axis];
    for (int i = (int)axis + 1; i < X->rank; i++)
        inner *= X->dims[i];
    int64_t total = outer * n * inner;
    if (Y->data != X->data && total > 0) memcpy(Y->data, X->data, (size_t)total * sizeof(float));
    if (total == 0) return PQ_OK;
    int64_t b;
    if (pq_rht_block_size(n, &b, NULL) != PQ_OK)
        return pq_error_set(a->err, PQ_ERR_INVALID,
                            "axis %lld has length %lld: no power-of-two Hadamard block >= 8",
                            (long long)axis, (long long)n);
    float scale = (float)(1.0 / sqrt((double)b));
    float *sign = pq_malloc((size_t)n * sizeof(float));
    if (!sign) return pq_error_nomem(a->err, "hadamard signs");
    pq_rht_signs(seed, n, sign);
    float *y = Y->data;
    enum pq_status st = PQ_OK;
    if (inner == 1) {
        pq_hadamard_rows(k, y, outer, n, b, sign, scale, inverse);
    } else {
        int64_t t = PQ_HADAMARD_GATHER_MAX / n;
        if (t < 1) t = 1;
        if (t > inner) t = inner;
        float *buf = pq_malloc((size_t)(t * n) * sizeof(float));
        if (!buf) {
            st = pq_error_nomem(a->err, "hadamard fiber buffer");
        } else {
            for (int64_t o = 0; o < outer; o++) {
                float *yo = y + o * n * inner;
                for (int64_t j0 = 0; j0 < inner; j0 += t) {
                    int64_t tt = inner - j0 < t ? inner - j0 : t;
                    for (int64_t i = 0; i < n; i++)
                        for (int64_t jj = 0; jj < tt; jj++)
                            buf[jj * n + i] = yo[i * inner + j0 + jj];
                    pq_hadamard_rows(k, buf, tt, n, b, sign, scale, inverse);
                    for (int64_t i = 0; i < n; i++)
                        for (int64_t jj = 0; jj < tt; jj++)
                            yo[i * inner + j0 + jj] = buf[jj * n + i];
                }
            }
            pq_free(buf);
        }
    }
    pq_free(sign);
    return st;
}

/* ---- FakeQuant ---- */

enum pq_fq_kind { PQ_FQ_PACKED, PQ_FQ_INT8, PQ_FQ_F16 };

enum pq_status pq_piqc_fake_quant_run(const pq_kernel_args *a) {
    PQ_TRY(pq_piqc_args(a, 1));
    const pq_tensor *W = a->in[0];
    const pq_tensor *S = a->n_in > 1 ? a->in[1] : NULL;
    pq_tensor *Y = a->out[0];
    const char *fs = pq_node_attr_string(a->node, "format", "");
    enum pq_qformat f = PQ_QFORMAT_PIQ3;
    enum pq_fq_kind kind;
    if (pq_qformat_from_name(fs, &f))
        kind = PQ_FQ_PACKED;
    else if (!strcmp(fs, "int8"))
        kind = PQ_FQ_INT8;
    else if (!strcmp(fs, "f16"))
        kind = PQ_FQ_F16;
    else
        return pq_error_set(a->err, PQ_ERR_INVALID, "unknown format '%s'", fs);
    const float *w = W->data;
    float *y = Y->data;
    int64_t total = pq_tensor_numel(W);
    if (kind == PQ_FQ_F16) {
        for (int64_t i = 0; i < total; i++)
            y[i] = pq_f16_to_f32(pq_f32_to_f16(w[i]));
        return PQ_OK;
    }
    if (W->rank < 2) return pq_error_set(a->err, PQ_ERR_INVALID, "weight w has rank < 2");
    bool tr = pq_node_attr_int(a->node, "transposed", 0) != 0;
    int64_t batch, rows, cols;
    pq_fake_quant_view(W->rank, W->dims, tr, &batch, &rows, &cols);
    int64_t qgroup = pq_node_attr_int(a->node, "qgroup", 0);
    int64_t ng = kind == PQ_FQ_PACKED && qgroup > 0 ? (cols + qgroup - 1) / qgroup : 1;
    if (kind == PQ_FQ_PACKED && qgroup <= 0)
        return pq_error_set(a->err, PQ_ERR_INVALID, "qgroup = %lld", (long long)qgroup);
    enum pq_dtype want = kind == PQ_FQ_INT8 ? PQ_DTYPE_F32 : PQ_DTYPE_F16;
    if (!S || S->dtype != want || pq_tensor_numel(S) != batch * rows * ng)
        return pq_error_set(a->err, PQ_ERR_INVALID, "scales must be %lld %s values",
                            (long long)(batch * rows * ng), pq_dtype_name(want));
    if (total == 0) return PQ_OK;
    float *buf = pq_malloc((size_t)cols * sizeof(float));
    if (!buf) return pq_error_nomem(a->err, "fake-quant row");
    int bits = kind == PQ_FQ_PACKED ? pq_qformat_bits(f) : 8;
    for (int64_t bi = 0; bi < batch; bi++)
        for (int64_t r = 0; r < rows; r++) {
            /* element (r, c) of matrix bi: w[bi][c][r] (transposed) or w[r][c] */
            int64_t base = tr ? bi * rows * cols + r : r * cols, cs = tr ? rows : 1;
            for (int64_t c = 0; c < cols; c++)
                buf[c] = w[base + c * cs];
            int64_t srow = bi * rows + r;
            if (kind == PQ_FQ_INT8) {
                float s = ((const float *)S->data)[srow];
                for (int64_t c = 0; c < cols; c++) {
                    float q = nearbyintf(buf[c] / s);
                    if (q != q) q = 0.0f;
                    q = q < -127.0f ? -127.0f : (q > 127.0f ? 127.0f : q);
                    buf[c] = (float)(int)q * s; /* an integer code: -0 becomes +0 */
                }
            } else {
                const uint16_t *sc = (const uint16_t *)S->data + srow * ng;
                for (int64_t g = 0; g < ng; g++) {
                    float step = pq_qstep(f, sc[g]);
                    int64_t c1 = (g + 1) * qgroup < cols ? (g + 1) * qgroup : cols;
                    for (int64_t c = g * qgroup; c < c1; c++)
                        buf[c] = (float)pq_qcode(buf[c], step, bits) * step;
                }
            }
            for (int64_t c = 0; c < cols; c++)
                y[base + c * cs] = buf[c];
        }
    pq_free(buf);
    return PQ_OK;
}

/* ---- packed weights ---- */

typedef struct pq_packed_w {
    enum pq_qformat f;
    int64_t group, rows, cols;
    size_t row_bytes;
    const uint8_t *data;
    const float *bias; /* rows values or NULL */
} pq_packed_w;

static enum pq_status pq_packed_w_get(const pq_kernel_args *a, pq_packed_w *pw) {
    const char *fs = pq_node_attr_string(a->node, "format", "");
    if (!pq_qformat_from_name(fs, &pw->f))
        return pq_error_set(a->err, PQ_ERR_INVALID, "unknown packed format '%s'", fs);
    pw->group = pq_node_attr_int(a->node, "qgroup", 0);
    pw->rows = pq_node_attr_int(a->node, "rows", 0);
    pw->cols = pq_node_attr_int(a->node, "cols", 0);
    size_t nb = pq_packed_bytes(pw->f, pw->rows, pw->cols, pw->group);
    const pq_tensor *W = a->in[1];
    if (nb == 0 || W->dtype != PQ_DTYPE_U8 || W->nbytes != nb)
        return pq_error_set(a->err, PQ_ERR_INVALID,
                            "packed weight has %zu bytes, expected %zu for %s %lld x %lld / %lld",
                            W->nbytes, nb, fs, (long long)pw->rows, (long long)pw->cols,
                            (long long)pw->group);
    pw->row_bytes = pq_packed_row_bytes(pw->f, pw->cols, pw->group);
    pw->data = W->data;
    pw->bias = NULL;
    const pq_tensor *B = a->n_in > 2 ? a->in[2] : NULL;
    if (B) {
        if (B->dtype != PQ_DTYPE_F32 || pq_tensor_numel(B) != pw->rows)
            return pq_error_set(a->err, PQ_ERR_INVALID, "bias must be %lld f32 values",
                                (long long)pw->rows);
        pw->bias = B->data;
    }
    return PQ_OK;
}

/* y[b][r] = W_hat[r] . x[b] for batch rows of x; gemv when batch is 1. */
static void pq_packed_apply(const pq_qkernels *k, const pq_packed_w *pw, const uint8_t *w,
                            int64_t rows, const float *x, int64_t batch, float *y) {
    if (batch == 1)
        k->gemv(pw->f, w, rows, pw->cols, pw->group, x, y);
    else
        k->gemm(pw->f, w, rows, pw->cols, pw->group, x, batch, y);
}

enum pq_status pq_piqc_packed_matmul_run(const pq_qkernels *k, const pq_kernel_args *a) {
    if (pq_packed_is_wide(a->node)) return pq_packed_wide_matmul_run(k->isa, a); /* int8, f16 */
    PQ_TRY(pq_piqc_args(a, 2));
    pq_packed_w pw;
    PQ_TRY(pq_packed_w_get(a, &pw));
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    if (X->rank < 1 || X->dims[X->rank - 1] != pw.cols)
        return pq_error_set(a->err, PQ_ERR_INVALID, "last dim of x must be cols = %lld",
                            (long long)pw.cols);
    int64_t M = pq_tensor_numel(X) / pw.cols;
    if (pq_tensor_numel(Y) != M * pw.rows)
        return pq_error_set(a->err, PQ_ERR_INVALID, "output has %lld values, expected %lld",
                            (long long)pq_tensor_numel(Y), (long long)(M * pw.rows));
    if (M == 0) return PQ_OK;
    float *y = Y->data;
    pq_packed_apply(k, &pw, pw.data, pw.rows, X->data, M, y);
    if (pw.bias)
        for (int64_t m = 0; m < M; m++)
            for (int64_t r = 0; r < pw.rows; r++)
                y[m * pw.rows + r] += pw.bias[r];
    return pq_act_epilogue(a->node, Y, a->err);
}

/* ---- PackedConv ---- */

#define PQ_PACKED_COL_MAX ((int64_t)1 << 20)  /* floats of one im2col tile, at most */
#define PQ_PACKED_COL_TILE ((int64_t)1 << 16) /* floats of one im2col tile, target */
#define PQ_PACKED_COL_MIN_T 96                /* positions per tile, at least */
#define PQ_PACKED_SLACK 4 /* floats past a padded image or an im2col tile (16-byte window moves) */

/* im2col of positions [p0, p0 + t) (row-major over the output's spatial dims) of cg channels of x:
 * col is [t, cg * k0 * k1 * k2] with columns in (c, kd, kh, kw) order, zeros for padding. */
void pq_packed_im2col(const float *x, int64_t cg, const pq_ref_win *w, int64_t p0, int64_t t,
                      float *col) {
    int64_t isp = w->in[0] * w->in[1] * w->in[2];
    int64_t k0 = w->k[0], k1 = w->k[1], k2 = w->k[2];
    int64_t ncol = cg * k0 * k1 * k2;
    int64_t ow = p0 % w->out[2], oh = (p0 / w->out[2]) % w->out[1];
    int64_t od = p0 / (w->out[2] * w->out[1]);
    for (int64_t p = p0; p < p0 + t; p++) {
        float *dst = col + (p - p0) * ncol;
        /* the kw window of this position: interior (no bounds checks) or clipped */
        int64_t iw0 = ow * w->s[2] - w->pb[2];
        bool w_in = iw0 >= 0 && iw0 + (k2 - 1) * w->d[2] < w->in[2];
        for (int64_t c = 0; c < cg; c++) {
            const float *xc = x + c * isp;
            for (int64_t kd = 0; kd < k0; kd++) {
                int64_t id = od * w->s[0] - w->pb[0] + kd * w->d[0];
                bool dok = id >= 0 && id < w->in[0];
                for (int64_t kh = 0; kh < k1; kh++, dst += k2) {
                    int64_t ih = oh * w->s[1] - w->pb[1] + kh * w->d[1];
                    if (!dok || ih < 0 || ih >= w->in[1]) {
                        for (int64_t kw = 0; kw < k2; kw++)
                            dst[kw] = 0.0f;
                        continue;
                    }
                    const float *xr = xc + (id * w->in[1] + ih) * w->in[2] + iw0;
                    if (w_in) {
                        if (w->d[2] == 1)
                            for (int64_t kw = 0; kw < k2; kw++)
                                dst[kw] = xr[kw];
                        else
                            for (int64_t kw = 0; kw < k2; kw++)
                                dst[kw] = xr[kw * w->d[2]];
                    } else {
                        for (int64_t kw = 0; kw < k2; kw++) {
                            int64_t iw = iw0 + kw * w->d[2];
                            dst[kw] = iw >= 0 && iw < w->in[2] ? xr[kw * w->d[2]] : 0.0f;
                        }
                    }
                }
            }
        }
        if (++ow == w->out[2]) {
            ow = 0;
            if (++oh == w->out[1]) {
                oh = 0;
                od++;
            }
        }
    }
}

/* Extents of the zero-padded input of one channel group: every window position read by the
 * output fits (pads on both sides, enough for the last window). */
static void pq_packed_pad_dims(const pq_ref_win *w, int64_t pd[3]) {
    for (int i = 0; i < 3; i++) {
        int64_t need = (w->out[i] - 1) * w->s[i] + (w->k[i] - 1) * w->d[i] + 1;
        int64_t have = w->pb[i] + w->in[i] + w->pe[i];
        pd[i] = need > have ? need : have;
    }
}

/* xp = cg channels of x zero-padded to pd (PQ_PACKED_SLACK more floats are zeroed too). */
static void pq_packed_pad(const float *x, int64_t cg, const pq_ref_win *w, const int64_t pd[3],
                          float *xp) {
    int64_t isp = w->in[0] * w->in[1] * w->in[2], psp = pd[0] * pd[1] * pd[2];
    memset(xp, 0, (size_t)(cg * psp + PQ_PACKED_SLACK) * sizeof(float));
    for (int64_t c = 0; c < cg; c++)
        for (int64_t i0 = 0; i0 < w->in[0]; i0++)
            for (int64_t i1 = 0; i1 < w->in[1]; i1++)
                memcpy(xp + c * psp + ((i0 + w->pb[0]) * pd[1] + i1 + w->pb[1]) * pd[2] + w->pb[2],
                       x + c * isp + (i0 * w->in[1] + i1) * w->in[2],
                       (size_t)w->in[2] * sizeof(float));
}

/* Offsets in xp of the kw windows of output position 0, one per (c, kd, kh) in im2col column
 * order: cg * k0 * k1 values. */
static void pq_packed_win_offsets(int64_t cg, const pq_ref_win *w, const int64_t pd[3],
                                  int64_t *koff) {
    int64_t psp = pd[0] * pd[1] * pd[2];
    for (int64_t c = 0; c < cg; c++)
        for (int64_t kd = 0; kd < w->k[0]; kd++)
            for (int64_t kh = 0; kh < w->k[1]; kh++)
                *koff++ = c * psp + (kd * w->d[0] * pd[1] + kh * w->d[1]) * pd[2];
}

/* As pq_packed_im2col on the padded input xp (no bounds checks), with koff from
 * pq_packed_win_offsets. A kw window of at most 4 contiguous floats is copied as one 16-byte
 * move (the extra floats land where the next window goes, or in the PQ_PACKED_SLACK floats past
 * the tile). */
static void pq_packed_im2col_padded(const float *xp, int64_t cg, const pq_ref_win *w,
                                    const int64_t pd[3], const int64_t *koff, int64_t p0,
                                    int64_t t, float *col) {
    int64_t k2 = w->k[2], nwin = cg * w->k[0] * w->k[1];
    int64_t ncol = nwin * k2;
    bool short_row = w->d[2] == 1 && k2 <= 4;
    int64_t ow = p0 % w->out[2], oh = (p0 / w->out[2]) % w->out[1];
    int64_t od = p0 / (w->out[2] * w->out[1]);
    for (int64_t p = p0; p < p0 + t; p++) {
        float *dst = col + (p - p0) * ncol;
        const float *base = xp + (od * w->s[0] * pd[1] + oh * w->s[1]) * pd[2] + ow * w->s[2];
        if (short_row) {
            for (int64_t j = 0; j < nwin; j++)
                memcpy(dst + j * k2, base + koff[j], 4 * sizeof(float));
        } else {
            for (int64_t j = 0; j < nwin; j++)
                for (int64_t kw = 0; kw < k2; kw++)
                    dst[j * k2 + kw] = base[koff[j] + kw * w->d[2]];
        }
        if (++ow == w->out[2]) {
            ow = 0;
            if (++oh == w->out[1]) {
                oh = 0;
                od++;
            }
        }
    }
}

enum pq_status pq_piqc_packed_conv_run(const pq_qkernels *k, const pq_kernel_args *a) {
    if (pq_packed_is_wide(a->node)) return pq_packed_wide_conv_run(k->isa, a); /* int8, f16 */
    PQ_TRY(pq_piqc_args(a, 2));
    pq_packed_w pw;
    PQ_TRY(pq_packed_w_get(a, &pw));
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
    if (group < 1 || C % group || pw.rows % group || Y->dims[1] != pw.rows ||
        (C / group) * w.k[0] * w.k[1] * w.k[2] != pw.cols)
        return pq_error_set(a->err, PQ_ERR_INVALID,
                            "channels %lld / group %lld x kernel do not give cols = %lld",
                            (long long)C, (long long)group, (long long)pw.cols);
    int64_t cg = C / group, mg = pw.rows / group;
    int64_t isp = w.in[0] * w.in[1] * w.in[2], osp = w.out[0] * w.out[1] * w.out[2];
    if (N == 0 || osp == 0) return PQ_OK;
    /* Tiles run over the positions of all N images together (one gemm call per tile, not per
     * image), so a small feature map still gives the packed gemm many activation rows to reuse
     * each decoded weight panel on; a tile holds about PQ_PACKED_COL_TILE floats of im2col
     * (L2-resident), at least PQ_PACKED_COL_MIN_T positions, at most PQ_PACKED_COL_MAX floats. */
    int64_t npos = N * osp;
    int64_t t = PQ_PACKED_COL_TILE / pw.cols;
    if (t < PQ_PACKED_COL_MIN_T) t = PQ_PACKED_COL_MIN_T;
    if (t * pw.cols > PQ_PACKED_COL_MAX) t = PQ_PACKED_COL_MAX / pw.cols;
    if (t < 1) t = 1;
    if (t > npos) t = npos;
    /* zero-padded copy of one image's channel group, unless a pad is negative */
    int64_t pd[3];
    pq_packed_pad_dims(&w, pd);
    bool padded = true;
    for (int i = 0; i < 3; i++)
        padded = padded && w.pb[i] >= 0 && w.pe[i] >= 0;
    float *col = pq_malloc((size_t)(t * pw.cols + PQ_PACKED_SLACK) * sizeof(float));
    float *tmp = pq_malloc((size_t)(t * mg) * sizeof(float));
    float *xp = padded ? pq_malloc((size_t)(cg * pd[0] * pd[1] * pd[2] + PQ_PACKED_SLACK) *
                                   sizeof(float))
                       : NULL;
    int64_t *koff = padded ? pq_malloc((size_t)(cg * w.k[0] * w.k[1]) * sizeof(int64_t)) : NULL;
    enum pq_status st = PQ_OK;
    if (!col || !tmp || (padded && (!xp || !koff))) {
        st = pq_error_nomem(a->err, "packed conv workspace");
        goto done;
    }
    if (padded) pq_packed_win_offsets(cg, &w, pd, koff);
    const float *x = X->data;
    float *y = Y->data;
    for (int64_t g = 0; g < group; g++) {
        const uint8_t *wg = pw.data + (size_t)(g * mg) * pw.row_bytes;
        int64_t xp_n = -1; /* image whose group g is in xp */
        for (int64_t q0 = 0; q0 < npos; q0 += t) {
            int64_t tt = npos - q0 < t ? npos - q0 : t;
            /* im2col of the tile, one image segment at a time */
            for (int64_t q = q0; q < q0 + tt;) {
                int64_t n = q / osp, p0 = q % osp;
                int64_t seg = osp - p0 < q0 + tt - q ? osp - p0 : q0 + tt - q;
                const float *xg = x + (n * C + g * cg) * isp;
                if (!padded) {
                    pq_packed_im2col(xg, cg, &w, p0, seg, col + (q - q0) * pw.cols);
                } else {
                    if (xp_n != n) pq_packed_pad(xg, cg, &w, pd, xp);
                    xp_n = n;
                    pq_packed_im2col_padded(xp, cg, &w, pd, koff, p0, seg, col + (q - q0) * pw.cols);
                }
                q += seg;
            }
            pq_packed_apply(k, &pw, wg, mg, col, tt, tmp);
            for (int64_t q = q0; q < q0 + tt;) {
                int64_t n = q / osp, p0 = q % osp;
                int64_t seg = osp - p0 < q0 + tt - q ? osp - p0 : q0 + tt - q;
                float *yg = y + (n * pw.rows + g * mg) * osp + p0;
                const float *tq = tmp + (q - q0) * mg;
                for (int64_t m = 0; m < mg; m++) {
                    float bm = pw.bias ? pw.bias[g * mg + m] : 0.0f;
                    float *ym = yg + m * osp;
                    for (int64_t pp = 0; pp < seg; pp++)
                        ym[pp] = pw.bias ? tq[pp * mg + m] + bm : tq[pp * mg + m];
                }
                q += seg;
            }
        }
    }
    st = pq_act_epilogue(a->node, Y, a->err);
done:
    pq_free(col);
    pq_free(tmp);
    pq_free(xp);
    pq_free(koff);
    return st;
}

/* ---- fast-table entries ---- */

enum pq_status pq_fast_piqc_hadamard(const pq_kernel_args *a) {
    return pq_piqc_hadamard_run(pq_qkernels_get(), a);
}

enum pq_status pq_fast_piqc_packed_matmul(const pq_kernel_args *a) {
    return pq_piqc_packed_matmul_run(pq_qkernels_get(), a);
}

enum pq_status pq_fast_piqc_packed_conv(const pq_kernel_args *a) {
    return pq_piqc_packed_conv_run(pq_qkernels_get(), a);
}
