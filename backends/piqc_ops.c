/* Kernels of piqc's own ops (Hadamard, FakeQuant, PackedMatMul, PackedConv) on an explicit quant
 * kernel table, and the fused-activation epilogue shared by the reference and oneDNN kernels. */
#include "backends/piqc_ops.h"

#include <math.h>
#include <string.h>

#include "backends/packed_piq_i8.h"
#include "backends/packed_wide.h"
#include "backends/quant/fwht.h"
#include "backends/quant/quant.h"
#include "backends/ref/ref_act.h"
#include "backends/ref/ref_gemm.h"
#include "backends/threadpool.h"
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

/* ---- threads: weight-row chunks (backends/threadpool.h) ---- */

int pq_packed_par_chunks(int n_threads, int64_t units, int64_t macs) {
    int64_t c = macs / PQ_PAR_MIN_MACS;
    if (c > n_threads) c = n_threads;
    if (c > units) c = units;
    return c < 1 ? 1 : (int)c;
}

typedef struct pq_rows_job {
    pq_rows_apply_fn apply;
    const void *w;
    int64_t rows, cols, M, chunks, units, mblocks;
    const float *x, *bias;
    float *y, *scratch, *panel;
    int64_t panel_floats;
    pq_activation act;
} pq_rows_job;

/* Chunk c: weight rows [r0, r1) (whole PQ_PAR_ROW_ALIGN-row units) of every activation row. With
 * M > 1 the activation rows go in pq_parallel_range blocks of at most PQ_PAR_MBLOCK rows (each
 * >= 2 rows, so the kernel's gemm runs as it does for all M at once), through this chunk's slice
 * of scratch, then into y's columns. */
static void pq_rows_task(void *vctx, int64_t c0, int64_t c1) {
    const pq_rows_job *j = vctx;
    for (int64_t c = c0; c < c1; c++) {
        int64_t u0, u1;
        pq_parallel_range(j->units, j->chunks, c, &u0, &u1);
        int64_t r0 = u0 * PQ_PAR_ROW_ALIGN, r1 = u1 * PQ_PAR_ROW_ALIGN;
        if (r1 > j->rows) r1 = j->rows;
        int64_t n = r1 - r0;
        float *panel = j->panel ? j->panel + c * j->panel_floats : NULL;
        if (j->M == 1) {
            float *y = j->y + r0;
            j->apply(j->w, r0, n, j->x, 1, y, panel);
            if (j->bias)
                for (int64_t r = 0; r < n; r++)
                    y[r] += j->bias[r0 + r];
            pq_act_apply_f32(&j->act, y, n);
            continue;
        }
        float *s = j->scratch + PQ_PAR_MBLOCK * r0;
        for (int64_t b = 0; b < j->mblocks; b++) {
            int64_t m0, m1;
            pq_parallel_range(j->M, j->mblocks, b, &m0, &m1);
            j->apply(j->w, r0, n, j->x + m0 * j->cols, m1 - m0, s, panel);
            for (int64_t m = m0; m < m1; m++) {
                float *ym = j->y + m * j->rows + r0;
                const float *sm = s + (m - m0) * n;
                if (j->bias)
                    for (int64_t r = 0; r < n; r++)
                        ym[r] = sm[r] + j->bias[r0 + r];
                else
                    memcpy(ym, sm, (size_t)n * sizeof(float));
                pq_act_apply_f32(&j->act, ym, n);
            }
        }
    }
}

enum pq_status pq_packed_rows_run(int n_threads, pq_rows_apply_fn apply, const void *w,
                                  int64_t rows, int64_t cols, const float *x, int64_t M,
                                  const float *bias, int64_t panel_floats, float *y,
                                  const pq_node *node, pq_error *err) {
    pq_rows_job j = {
        apply, w, rows, cols, M,    1,    (rows + PQ_PAR_ROW_ALIGN - 1) / PQ_PAR_ROW_ALIGN,
        1,     x, bias, y,    NULL, NULL, panel_floats,
        {0}};
    PQ_TRY(pq_node_activation(node, &j.act, err));
    if (n_threads > 1) j.chunks = pq_packed_par_chunks(n_threads, j.units, M * rows * cols);
    if (j.chunks == 1) { /* the whole product in one kernel call, as always */
        float *panel = NULL;
        if (M > 1 && panel_floats > 0 && !(panel = pq_malloc((size_t)panel_floats * sizeof(float))))
            return pq_error_nomem(err, "weight panel");
        apply(w, 0, rows, x, M, y, panel);
        pq_free(panel);
        if (bias)
            for (int64_t m = 0; m < M; m++)
                for (int64_t r = 0; r < rows; r++)
                    y[m * rows + r] += bias[r];
        pq_act_apply_f32(&j.act, y, M * rows);
        return PQ_OK;
    }
    if (M > 1) {
        j.mblocks = (M + PQ_PAR_MBLOCK - 1) / PQ_PAR_MBLOCK;
        j.scratch = pq_malloc((size_t)(PQ_PAR_MBLOCK * rows) * sizeof(float));
        if (panel_floats > 0)
            j.panel = pq_malloc((size_t)(j.chunks * panel_floats) * sizeof(float));
        if (!j.scratch || (panel_floats > 0 && !j.panel)) {
            pq_free(j.scratch);
            pq_free(j.panel);
            return pq_error_nomem(err, "packed matmul thread workspace");
        }
    }
    pq_parallel_for((int)j.chunks, j.chunks, pq_rows_task, &j);
    pq_free(j.scratch);
    pq_free(j.panel);
    return PQ_OK;
}

typedef struct pq_piq_rows {
    const pq_qkernels *k;
    const pq_packed_w *pw;
} pq_piq_rows;

static void pq_piq_rows_apply(const void *vw, int64_t r0, int64_t n, const float *x, int64_t M,
                              float *y, float *panel) {
    const pq_piq_rows *p = vw;
    (void)panel;
    pq_packed_apply(p->k, p->pw, p->pw->data + (size_t)r0 * p->pw->row_bytes, n, x, M, y);
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
    bool i8;
    PQ_TRY(pq_packed_act_quant(a->node, &i8, a->err));
    if (i8 && pq_piq_i8_supported(pw.f, pw.cols, pw.group)) /* act_quant = "int8" */
        return pq_packed_i8_matmul(pq_packed_i8_kernels(k->isa), pw.f, pw.data, pw.rows, pw.cols,
                                   pw.group, X->data, M, pw.bias, Y->data, a->n_threads, a->node,
                                   a->err);
    pq_piq_rows pr = {k, &pw};
    return pq_packed_rows_run(a->n_threads, pq_piq_rows_apply, &pr, pw.rows, pw.cols, X->data, M,
                              pw.bias, 0, Y->data, a->node, a->err);
}

/* ---- PackedConv ---- */

#define PQ_PACKED_COL_MAX ((int64_t)1 << 20)  /* floats of one im2col tile, at most */
#define PQ_PACKED_COL_TILE ((int64_t)1 << 16) /* floats of one im2col tile, target */
#define PQ_PACKED_COL_MIN_T 96                /* positions per tile, at least */
#define PQ_PACKED_SLACK                                                                            \
    4 /* floats past a padded image or an im2col tile (16-byte window moves)                       \
       */

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
                                    const int64_t pd[3], const int64_t *koff, int64_t p0, int64_t t,
                                    float *col) {
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

/* One PackedConv: geometry, the tiles (t positions over the N * osp positions of all images, the
 * last one shorter), and per-chunk workspace (col, tmp, xp: chunk c at c * the size of one). */
typedef struct pq_pconv_job {
    const pq_qkernels *k;
    const pq_packed_w *pw;
    pq_ref_win w;
    int64_t pd[3];
    bool padded;
    int64_t C, cg, mg, isp, osp, npos, t, ntiles, chunks, units;
    const float *x;
    float *y;
    float *col, *tmp, *xp;
    int64_t col_n, tmp_n, xp_n;
    const int64_t *koff;
    pq_activation act;
    const pq_piq_i8_kernels *k8; /* act_quant = "int8": integer path, abuf_n bytes per chunk */
    uint8_t *abuf;
    size_t abuf_n;
} pq_pconv_job;

/* Chunk c: units [u0, u1) of (group, tile) pairs, group-major, with chunk c's workspace. */
static void pq_pconv_task(void *vctx, int64_t c0, int64_t c1) {
    const pq_pconv_job *j = vctx;
    const pq_packed_w *pw = j->pw;
    for (int64_t c = c0; c < c1; c++) {
        int64_t u0, u1;
        pq_parallel_range(j->units, j->chunks, c, &u0, &u1);
        float *col = j->col + c * j->col_n, *tmp = j->tmp + c * j->tmp_n;
        float *xp = j->xp ? j->xp + c * j->xp_n : NULL;
        int64_t xp_n = -1, xp_g = -1; /* image and group in xp */
        for (int64_t u = u0; u < u1; u++) {
            int64_t g = u / j->ntiles, q0 = (u % j->ntiles) * j->t;
            int64_t tt = j->npos - q0 < j->t ? j->npos - q0 : j->t;
            const uint8_t *wg = pw->data + (size_t)(g * j->mg) * pw->row_bytes;
            /* im2col of the tile, one image segment at a time */
            for (int64_t q = q0; q < q0 + tt;) {
                int64_t n = q / j->osp, p0 = q % j->osp;
                int64_t seg = j->osp - p0 < q0 + tt - q ? j->osp - p0 : q0 + tt - q;
                const float *xg = j->x + (n * j->C + g * j->cg) * j->isp;
                if (!j->padded) {
                    pq_packed_im2col(xg, j->cg, &j->w, p0, seg, col + (q - q0) * pw->cols);
                } else {
                    if (xp_n != n || xp_g != g) pq_packed_pad(xg, j->cg, &j->w, j->pd, xp);
                    xp_n = n;
                    xp_g = g;
                    pq_packed_im2col_padded(xp, j->cg, &j->w, j->pd, j->koff, p0, seg,
                                            col + (q - q0) * pw->cols);
                }
                q += seg;
            }
            if (j->k8)
                pq_packed_i8_rows(j->k8, pw->f, wg, j->mg, pw->cols, pw->group, col, tt, tmp,
                                  j->abuf + c * j->abuf_n);
            else
                pq_packed_apply(j->k, pw, wg, j->mg, col, tt, tmp);
            for (int64_t q = q0; q < q0 + tt;) {
                int64_t n = q / j->osp, p0 = q % j->osp;
                int64_t seg = j->osp - p0 < q0 + tt - q ? j->osp - p0 : q0 + tt - q;
                float *yg = j->y + (n * pw->rows + g * j->mg) * j->osp + p0;
                const float *tq = tmp + (q - q0) * j->mg;
                for (int64_t m = 0; m < j->mg; m++) {
                    float bm = pw->bias ? pw->bias[g * j->mg + m] : 0.0f;
                    float *ym = yg + m * j->osp;
                    for (int64_t pp = 0; pp < seg; pp++)
                        ym[pp] = pw->bias ? tq[pp * j->mg + m] + bm : tq[pp * j->mg + m];
                    pq_act_apply_f32(&j->act, ym, seg);
                }
                q += seg;
            }
        }
    }
}

enum pq_status pq_packed_conv_geom_get(const pq_kernel_args *a, int64_t rows, int64_t cols,
                                       pq_packed_conv_geom *g) {
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
    memset(g, 0, sizeof *g);
    pq_ref_window(a->node, X, kd, Y, &g->w);
    const pq_ref_win *w = &g->w;
    g->group = pq_node_attr_int(a->node, "group", 1);
    g->N = X->dims[0];
    g->C = X->dims[1];
    if (g->group < 1 || g->C % g->group || rows % g->group || Y->dims[1] != rows ||
        (g->C / g->group) * w->k[0] * w->k[1] * w->k[2] != cols)
        return pq_error_set(a->err, PQ_ERR_INVALID,
                            "channels %lld / group %lld x kernel do not give cols = %lld",
                            (long long)g->C, (long long)g->group, (long long)cols);
    PQ_TRY(pq_node_activation(a->node, &g->act, a->err));
    g->cg = g->C / g->group;
    g->mg = rows / g->group;
    g->isp = w->in[0] * w->in[1] * w->in[2];
    g->osp = w->out[0] * w->out[1] * w->out[2];
    return PQ_OK;
}

enum pq_status pq_piqc_packed_conv_run(const pq_qkernels *k, const pq_kernel_args *a) {
    if (pq_packed_is_wide(a->node)) return pq_packed_wide_conv_run(k->isa, a); /* int8, f16 */
    PQ_TRY(pq_piqc_args(a, 2));
    pq_packed_w pw;
    PQ_TRY(pq_packed_w_get(a, &pw));
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    pq_packed_conv_geom geo;
    PQ_TRY(pq_packed_conv_geom_get(a, pw.rows, pw.cols, &geo));
    pq_pconv_job j = {.k = k, .pw = &pw, .w = geo.w, .act = geo.act};
    const pq_ref_win *w = &j.w;
    int64_t group = geo.group, N = geo.N;
    j.C = geo.C;
    j.cg = geo.cg;
    j.mg = geo.mg;
    j.isp = geo.isp;
    j.osp = geo.osp;
    if (N == 0 || j.osp == 0) return PQ_OK;
    bool i8;
    PQ_TRY(pq_packed_act_quant(a->node, &i8, a->err));
    if (i8 && pq_piq_i8_supported(pw.f, pw.cols, pw.group)) { /* act_quant = "int8" */
        j.k8 = pq_packed_i8_kernels(k->isa);
        j.abuf_n = pq_piq_i8_act_bytes(pw.cols, pw.group);
    }
    /* Tiles run over the positions of all N images together (one gemm call per tile, not per
     * image), so a small feature map still gives the packed gemm many activation rows to reuse
     * each decoded weight panel on; a tile holds about PQ_PACKED_COL_TILE floats of im2col
     * (L2-resident), at least PQ_PACKED_COL_MIN_T positions, at most PQ_PACKED_COL_MAX floats.
     * Threads take contiguous runs of (group, tile) pairs; the tiles do not depend on them. */
    j.npos = N * j.osp;
    int64_t t = PQ_PACKED_COL_TILE / pw.cols;
    if (t < PQ_PACKED_COL_MIN_T) t = PQ_PACKED_COL_MIN_T;
    if (t * pw.cols > PQ_PACKED_COL_MAX) t = PQ_PACKED_COL_MAX / pw.cols;
    if (t < 1) t = 1;
    if (t > j.npos) t = j.npos;
    j.t = t;
    j.ntiles = (j.npos + t - 1) / t;
    j.units = group * j.ntiles;
    j.chunks = a->n_threads > 1
                   ? pq_packed_par_chunks(a->n_threads, j.units, j.npos * pw.rows * pw.cols)
                   : 1;
    /* zero-padded copy of one image's channel group, unless a pad is negative */
    pq_packed_pad_dims(w, j.pd);
    j.padded = true;
    for (int i = 0; i < 3; i++)
        j.padded = j.padded && w->pb[i] >= 0 && w->pe[i] >= 0;
    j.col_n = t * pw.cols + PQ_PACKED_SLACK;
    j.tmp_n = t * j.mg;
    j.xp_n = j.padded ? j.cg * j.pd[0] * j.pd[1] * j.pd[2] + PQ_PACKED_SLACK : 0;
    j.col = pq_malloc((size_t)(j.chunks * j.col_n) * sizeof(float));
    j.tmp = pq_malloc((size_t)(j.chunks * j.tmp_n) * sizeof(float));
    j.xp = j.padded ? pq_malloc((size_t)(j.chunks * j.xp_n) * sizeof(float)) : NULL;
    int64_t *koff =
        j.padded ? pq_malloc((size_t)(j.cg * w->k[0] * w->k[1]) * sizeof(int64_t)) : NULL;
    j.abuf = j.k8 ? pq_malloc((size_t)j.chunks * j.abuf_n) : NULL;
    enum pq_status st = PQ_OK;
    if (!j.col || !j.tmp || (j.padded && (!j.xp || !koff)) || (j.k8 && !j.abuf)) {
        st = pq_error_nomem(a->err, "packed conv workspace");
        goto done;
    }
    if (j.padded) pq_packed_win_offsets(j.cg, w, j.pd, koff);
    j.koff = koff;
    j.x = X->data;
    j.y = Y->data;
    pq_parallel_for((int)j.chunks, j.chunks, pq_pconv_task, &j);
done:
    pq_free(j.col);
    pq_free(j.tmp);
    pq_free(j.xp);
    pq_free(j.abuf);
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
