/* Reference MatMul and Gemm kernels and the shared cache-blocked f32 GEMM (ref_gemm.h) that
 * Conv, ConvTranspose and the RNNs also use; plus f32 views of other float dtypes. */
#include <string.h>

#include "backends/piqc_ops.h"
#include "ref_gemm.h"
#include "ref_kernels.h"
#include "ref_util.h"

/* Register tile MR x NR, cache blocks MC x KC of A and KC x NC of B (packed). */
#define PQ_GEMM_MR 4
#define PQ_GEMM_NR 8
#define PQ_GEMM_MC 128
#define PQ_GEMM_KC 256
#define PQ_GEMM_NC 2048

/* Packs alpha * op(A)[i0:i0+mc, p0:p0+kc] into MR-row panels, p-major within a panel. */
static void pq_gemm_pack_a(bool ta, const float *A, int64_t lda, int64_t i0, int64_t mc, int64_t p0,
                           int64_t kc, float alpha, float *Ap) {
    for (int64_t ib = 0; ib < mc; ib += PQ_GEMM_MR) {
        int64_t mr = mc - ib < PQ_GEMM_MR ? mc - ib : PQ_GEMM_MR;
        float *dst = Ap + ib * kc;
        if (!ta) {
            for (int64_t i = 0; i < PQ_GEMM_MR; i++) {
                if (i < mr) {
                    const float *src = A + (i0 + ib + i) * lda + p0;
                    for (int64_t p = 0; p < kc; p++)
                        dst[p * PQ_GEMM_MR + i] = alpha * src[p];
                } else {
                    for (int64_t p = 0; p < kc; p++)
                        dst[p * PQ_GEMM_MR + i] = 0.0f;
                }
            }
        } else {
            for (int64_t p = 0; p < kc; p++) {
                const float *src = A + (p0 + p) * lda + i0 + ib;
                for (int64_t i = 0; i < PQ_GEMM_MR; i++)
                    dst[p * PQ_GEMM_MR + i] = i < mr ? alpha * src[i] : 0.0f;
            }
        }
    }
}

/* Packs op(B)[p0:p0+kc, j0:j0+nc] into NR-column panels, p-major within a panel. */
static void pq_gemm_pack_b(bool tb, const float *B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0,
                           int64_t nc, float *Bp) {
    for (int64_t jb = 0; jb < nc; jb += PQ_GEMM_NR) {
        int64_t nr = nc - jb < PQ_GEMM_NR ? nc - jb : PQ_GEMM_NR;
        float *dst = Bp + jb * kc;
        if (!tb) {
            for (int64_t p = 0; p < kc; p++) {
                const float *src = B + (p0 + p) * ldb + j0 + jb;
                if (nr == PQ_GEMM_NR)
                    for (int64_t j = 0; j < PQ_GEMM_NR; j++)
                        dst[p * PQ_GEMM_NR + j] = src[j];
                else
                    for (int64_t j = 0; j < PQ_GEMM_NR; j++)
                        dst[p * PQ_GEMM_NR + j] = j < nr ? src[j] : 0.0f;
            }
        } else {
            for (int64_t j = 0; j < PQ_GEMM_NR; j++) {
                if (j < nr) {
                    const float *src = B + (j0 + jb + j) * ldb + p0;
                    for (int64_t p = 0; p < kc; p++)
                        dst[p * PQ_GEMM_NR + j] = src[p];
                } else {
                    for (int64_t p = 0; p < kc; p++)
                        dst[p * PQ_GEMM_NR + j] = 0.0f;
                }
            }
        }
    }
}

/* Four floats in one SSE/NEON register (GCC vector extension, portable C, no intrinsics). */
typedef float pq_v4f __attribute__((vector_size(16)));

/* MR x NR register tile over kc packed steps; stores the valid mr x nr part into C. When first,
 * C's old value is scaled by beta (dropped when beta == 0); else accumulated. The accumulators
 * are vector values so the compiler keeps all of them in registers. */
static void pq_gemm_tile(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                         int64_t mr, int64_t nr, bool first, float beta) {
    /* written out by hand: gcc -O2 does not unroll the row loop, which would keep the
     * accumulators in memory */
    pq_v4f c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
    for (int64_t p = 0; p < kc; p++) {
        const float *ap = a + p * PQ_GEMM_MR, *bp = b + p * PQ_GEMM_NR;
        pq_v4f b0, b1;
        memcpy(&b0, bp, sizeof b0);
        memcpy(&b1, bp + 4, sizeof b1);
        pq_v4f a0 = {ap[0], ap[0], ap[0], ap[0]}, a1 = {ap[1], ap[1], ap[1], ap[1]};
        pq_v4f a2 = {ap[2], ap[2], ap[2], ap[2]}, a3 = {ap[3], ap[3], ap[3], ap[3]};
        c00 += a0 * b0;
        c01 += a0 * b1;
        c10 += a1 * b0;
        c11 += a1 * b1;
        c20 += a2 * b0;
        c21 += a2 * b1;
        c30 += a3 * b0;
        c31 += a3 * b1;
    }
    pq_v4f acc[PQ_GEMM_MR][PQ_GEMM_NR / 4] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
    float out[PQ_GEMM_MR][PQ_GEMM_NR];
    memcpy(out, acc, sizeof out);
    for (int64_t i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        if (!first)
            for (int64_t j = 0; j < nr; j++)
                ci[j] += out[i][j];
        else if (beta == 0.0f)
            for (int64_t j = 0; j < nr; j++)
                ci[j] = out[i][j];
        else
            for (int64_t j = 0; j < nr; j++)
                ci[j] = beta * ci[j] + out[i][j];
    }
}

/* Dot product of n floats with 8 partial sums (vectorised without -ffast-math). */
static float pq_dot_f32(const float *a, const float *b, int64_t n) {
    pq_v4f s0 = {0}, s1 = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        pq_v4f a0, a1, b0, b1;
        memcpy(&a0, a + i, sizeof a0);
        memcpy(&a1, a + i + 4, sizeof a1);
        memcpy(&b0, b + i, sizeof b0);
        memcpy(&b1, b + i + 4, sizeof b1);
        s0 += a0 * b0;
        s1 += a1 * b1;
    }
    s0 += s1;
    float s = (s0[0] + s0[1]) + (s0[2] + s0[3]);
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* y[0..n) += a * x[0..n) */
static void pq_axpy_f32(float a, const float *x, float *y, int64_t n) {
    pq_v4f av = {a, a, a, a};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        pq_v4f x0, x1, y0, y1;
        memcpy(&x0, x + i, sizeof x0);
        memcpy(&x1, x + i + 4, sizeof x1);
        memcpy(&y0, y + i, sizeof y0);
        memcpy(&y1, y + i + 4, sizeof y1);
        y0 += av * x0;
        y1 += av * x1;
        memcpy(y + i, &y0, sizeof y0);
        memcpy(y + i + 4, &y1, sizeof y1);
    }
    for (; i < n; i++)
        y[i] += a * x[i];
}

/* Few rows (GEMV-like, e.g. a recurrent step with batch 1): no packing, B streamed once per row. */
static void pq_gemm_small_m(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                            const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                            float *C, int64_t ldc) {
    for (int64_t i = 0; i < M; i++) {
        float *ci = C + i * ldc;
        for (int64_t j = 0; j < N; j++)
            ci[j] = beta == 0.0f ? 0.0f : beta * ci[j];
        if (tb && !ta) {
            for (int64_t j = 0; j < N; j++)
                ci[j] += alpha * pq_dot_f32(A + i * lda, B + j * ldb, K);
        } else {
            for (int64_t k = 0; k < K; k++) {
                float a = alpha * (ta ? A[k * lda + i] : A[i * lda + k]);
                if (a == 0.0f) continue;
                if (!tb)
                    pq_axpy_f32(a, B + k * ldb, ci, N);
                else
                    for (int64_t j = 0; j < N; j++)
                        ci[j] += a * B[j * ldb + k];
            }
        }
    }
}

/* Fewer columns than a register tile (N < NR; e.g. a 1x1 convolution of a 1x1 image, the
 * squeeze-excite layers): no packing buffers and no padded columns, with the arithmetic of the
 * packed path element by element, so the same bits: per KC block of K, a sum from 0.0f of
 * (alpha * a) * b in k order, stored as beta * C + sum (sum alone when beta == 0) for the first
 * block and added to C for later ones. Eight rows at once keep eight independent sums. */
#define PQ_GEMM_SN_ROWS 8
static void pq_gemm_small_n(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                            const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                            float *C, int64_t ldc) {
    for (int64_t p0 = 0; p0 < K; p0 += PQ_GEMM_KC) {
        int64_t kc = K - p0 < PQ_GEMM_KC ? K - p0 : PQ_GEMM_KC;
        for (int64_t i0 = 0; i0 < M; i0 += PQ_GEMM_SN_ROWS) {
            int64_t mr = M - i0 < PQ_GEMM_SN_ROWS ? M - i0 : PQ_GEMM_SN_ROWS;
            for (int64_t j = 0; j < N; j++) {
                float acc[PQ_GEMM_SN_ROWS] = {0};
                for (int64_t p = p0; p < p0 + kc; p++) {
                    float b = tb ? B[j * ldb + p] : B[p * ldb + j];
                    if (mr == PQ_GEMM_SN_ROWS && !ta) {
                        const float *a = A + i0 * lda + p;
                        for (int r = 0; r < PQ_GEMM_SN_ROWS; r++)
                            acc[r] += (alpha * a[r * lda]) * b;
                    } else {
                        for (int64_t r = 0; r < mr; r++)
                            acc[r] +=
                                (alpha * (ta ? A[p * lda + i0 + r] : A[(i0 + r) * lda + p])) * b;
                    }
                }
                for (int64_t r = 0; r < mr; r++) {
                    float *c = C + (i0 + r) * ldc + j;
                    if (p0 > 0)
                        *c += acc[r];
                    else if (beta == 0.0f)
                        *c = acc[r];
                    else
                        *c = beta * *c + acc[r];
                }
            }
        }
    }
}

enum pq_status pq_ref_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                            float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                            float beta, float *C, int64_t ldc, pq_error *err) {
    if (M <= 0 || N <= 0) return PQ_OK;
    if (M < PQ_GEMM_MR && K > 0 && !(trans_a && trans_b)) {
        pq_gemm_small_m(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return PQ_OK;
    }
    if (K <= 0 || alpha == 0.0f) {
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++)
                C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return PQ_OK;
    }
    if (N < PQ_GEMM_NR) {
        pq_gemm_small_n(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return PQ_OK;
    }
    int64_t kcap = K < PQ_GEMM_KC ? K : PQ_GEMM_KC;
    int64_t mcap = M < PQ_GEMM_MC ? M : PQ_GEMM_MC;
    int64_t ncap = N < PQ_GEMM_NC ? N : PQ_GEMM_NC;
    mcap = (mcap + PQ_GEMM_MR - 1) / PQ_GEMM_MR * PQ_GEMM_MR;
    ncap = (ncap + PQ_GEMM_NR - 1) / PQ_GEMM_NR * PQ_GEMM_NR;
    float *Ap = pq_malloc_aligned((size_t)(mcap * kcap) * sizeof(float));
    float *Bp = pq_malloc_aligned((size_t)(ncap * kcap) * sizeof(float));
    if (!Ap || !Bp) {
        pq_free(Ap);
        pq_free(Bp);
        return pq_error_nomem(err, "gemm packing buffers");
    }
    for (int64_t j0 = 0; j0 < N; j0 += PQ_GEMM_NC) {
        int64_t nc = N - j0 < PQ_GEMM_NC ? N - j0 : PQ_GEMM_NC;
        for (int64_t p0 = 0; p0 < K; p0 += PQ_GEMM_KC) {
            int64_t kc = K - p0 < PQ_GEMM_KC ? K - p0 : PQ_GEMM_KC;
            pq_gemm_pack_b(trans_b, B, ldb, p0, kc, j0, nc, Bp);
            for (int64_t i0 = 0; i0 < M; i0 += PQ_GEMM_MC) {
                int64_t mc = M - i0 < PQ_GEMM_MC ? M - i0 : PQ_GEMM_MC;
                pq_gemm_pack_a(trans_a, A, lda, i0, mc, p0, kc, alpha, Ap);
                for (int64_t jb = 0; jb < nc; jb += PQ_GEMM_NR) {
                    int64_t nr = nc - jb < PQ_GEMM_NR ? nc - jb : PQ_GEMM_NR;
                    for (int64_t ib = 0; ib < mc; ib += PQ_GEMM_MR) {
                        int64_t mr = mc - ib < PQ_GEMM_MR ? mc - ib : PQ_GEMM_MR;
                        pq_gemm_tile(kc, Ap + ib * kc, Bp + jb * kc, C + (i0 + ib) * ldc + j0 + jb,
                                     ldc, mr, nr, p0 == 0, beta);
                    }
                }
            }
        }
    }
    pq_free(Ap);
    pq_free(Bp);
    return PQ_OK;
}

/* ---- f32 views ---- */

enum pq_status pq_ref_f32_view(const pq_tensor *t, const float **out, float **owned,
                               pq_error *err) {
    *owned = NULL;
    if (t->dtype == PQ_DTYPE_F32) {
        *out = t->data;
        return PQ_OK;
    }
    if (!pq_dtype_is_float(t->dtype))
        return pq_error_set(err, PQ_ERR_INVALID, "expected a float tensor, got %s",
                            pq_dtype_name(t->dtype));
    int64_t n = pq_tensor_numel(t);
    float *b = pq_malloc((size_t)n * sizeof(float));
    if (!b) return pq_error_nomem(err, "f32 conversion");
    if (t->dtype == PQ_DTYPE_F16) {
        const uint16_t *s = t->data;
        for (int64_t i = 0; i < n; i++)
            b[i] = pq_f16_to_f32(s[i]);
    } else if (t->dtype == PQ_DTYPE_BF16) {
        const uint16_t *s = t->data;
        for (int64_t i = 0; i < n; i++)
            b[i] = pq_bf16_to_f32(s[i]);
    } else {
        const double *s = t->data;
        for (int64_t i = 0; i < n; i++)
            b[i] = (float)s[i];
    }
    *out = b;
    *owned = b;
    return PQ_OK;
}

enum pq_status pq_ref_f32_out(pq_tensor *t, float **out, float **owned, pq_error *err) {
    *owned = NULL;
    if (t->dtype == PQ_DTYPE_F32) {
        *out = t->data;
        return PQ_OK;
    }
    if (!pq_dtype_is_float(t->dtype))
        return pq_error_set(err, PQ_ERR_INVALID, "expected a float output, got %s",
                            pq_dtype_name(t->dtype));
    float *b = pq_malloc((size_t)pq_tensor_numel(t) * sizeof(float));
    if (!b) return pq_error_nomem(err, "f32 output scratch");
    *out = b;
    *owned = b;
    return PQ_OK;
}

void pq_ref_f32_commit(pq_tensor *t, float *owned) {
    if (!owned) return;
    int64_t n = pq_tensor_numel(t);
    if (t->dtype == PQ_DTYPE_F16) {
        uint16_t *d = t->data;
        for (int64_t i = 0; i < n; i++)
            d[i] = pq_f32_to_f16(owned[i]);
    } else if (t->dtype == PQ_DTYPE_BF16) {
        uint16_t *d = t->data;
        for (int64_t i = 0; i < n; i++)
            d[i] = pq_f32_to_bf16(owned[i]);
    } else if (t->dtype == PQ_DTYPE_F64) {
        double *d = t->data;
        for (int64_t i = 0; i < n; i++)
            d[i] = owned[i];
    }
    pq_free(owned);
}

enum pq_status pq_ref_check_outputs(const pq_kernel_args *a) {
    for (uint32_t i = 0; i < a->n_out; i++)
        if (a->out[i] && !a->out[i]->data && pq_tensor_numel(a->out[i]) != 0)
            return pq_error_set(a->err, PQ_ERR_INTERNAL, "output %u has no buffer", i);
    return PQ_OK;
}

/* ---- MatMul ---- */

/* Batch geometry of a numpy matmul: out batch dims, per-operand batch strides (0 = broadcast). */
typedef struct pq_mm_geom {
    int64_t M, N, K;
    int nb;                     /* batch rank */
    int64_t bdims[PQ_MAX_RANK]; /* output batch dims */
    int64_t astr[PQ_MAX_RANK], bstr[PQ_MAX_RANK];
    int64_t nbatch;
    bool b_shared; /* B has one matrix for every batch: fold batch into M */
} pq_mm_geom;

static void pq_mm_geometry(const pq_tensor *a, const pq_tensor *b, pq_mm_geom *g) {
    memset(g, 0, sizeof *g);
    int ra = a->rank, rb = b->rank;
    g->K = a->dims[ra - 1];
    g->M = ra >= 2 ? a->dims[ra - 2] : 1;
    g->N = rb >= 2 ? b->dims[rb - 1] : 1;
    int ba = ra > 2 ? ra - 2 : 0, bb = rb > 2 ? rb - 2 : 0;
    g->nb = ba > bb ? ba : bb;
    int64_t sa = g->M * g->K, sb = g->K * g->N;
    g->nbatch = 1;
    bool b_bcast_all = true;
    for (int i = g->nb - 1; i >= 0; i--) {
        int ia = i - (g->nb - ba), ib = i - (g->nb - bb);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        g->bdims[i] = da > db ? da : db;
        if (da == 1 && db != 1) g->bdims[i] = db;
        if (db == 1 && da != 1) g->bdims[i] = da;
        g->astr[i] = da == 1 ? 0 : sa;
        g->bstr[i] = db == 1 ? 0 : sb;
        if (db != 1) b_bcast_all = false;
        sa *= da;
        sb *= db;
        g->nbatch *= g->bdims[i];
    }
    /* A's batches are contiguous and B is shared: one GEMM with M * nbatch rows. */
    bool a_full = true;
    for (int i = 0; i < g->nb; i++)
        if (g->astr[i] == 0 && g->bdims[i] != 1) a_full = false;
    g->b_shared = b_bcast_all && a_full;
}

/* Offsets of batch index bi into A and B. */
static void pq_mm_offsets(const pq_mm_geom *g, int64_t bi, int64_t *oa, int64_t *ob) {
    int64_t ra = 0, rb = 0;
    for (int i = g->nb - 1; i >= 0; i--) {
        int64_t idx = bi % g->bdims[i];
        bi /= g->bdims[i];
        ra += idx * g->astr[i];
        rb += idx * g->bstr[i];
    }
    *oa = ra;
    *ob = rb;
}

static enum pq_status pq_matmul_f32(const pq_mm_geom *g, const float *A, const float *B, float *Y,
                                    pq_error *err) {
    if (g->b_shared)
        return pq_ref_sgemm(false, false, g->M * g->nbatch, g->N, g->K, 1.0f, A, g->K, B, g->N,
                            0.0f, Y, g->N, err);
    for (int64_t bi = 0; bi < g->nbatch; bi++) {
        int64_t oa, ob;
        pq_mm_offsets(g, bi, &oa, &ob);
        PQ_TRY(pq_ref_sgemm(false, false, g->M, g->N, g->K, 1.0f, A + oa, g->K, B + ob, g->N, 0.0f,
                            Y + bi * g->M * g->N, g->N, err));
    }
    return PQ_OK;
}

/* Integer matmul through double accumulation (exact below 2^53). */
static void pq_matmul_generic(const pq_mm_geom *g, const pq_tensor *a, const pq_tensor *b,
                              pq_tensor *y) {
    for (int64_t bi = 0; bi < g->nbatch; bi++) {
        int64_t oa, ob;
        pq_mm_offsets(g, bi, &oa, &ob);
        for (int64_t i = 0; i < g->M; i++)
            for (int64_t j = 0; j < g->N; j++) {
                int64_t acc = 0;
                for (int64_t k = 0; k < g->K; k++)
                    acc += pq_dtype_load_i64(a->dtype, a->data, (size_t)(oa + i * g->K + k)) *
                           pq_dtype_load_i64(b->dtype, b->data, (size_t)(ob + k * g->N + j));
                size_t o = (size_t)((bi * g->M + i) * g->N + j);
                if (y->dtype == PQ_DTYPE_I64 || y->dtype == PQ_DTYPE_U64)
                    ((int64_t *)y->data)[o] = acc;
                else
                    pq_dtype_store(y->dtype, y->data, o, (double)acc);
            }
    }
}

enum pq_status pq_ref_matmul(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 2, 1));
    const pq_tensor *A = a->in[0], *B = a->in[1];
    pq_tensor *Y = a->out[0];
    pq_mm_geom g;
    pq_mm_geometry(A, B, &g);
    if (!pq_dtype_is_float(Y->dtype)) {
        pq_matmul_generic(&g, A, B, Y);
        return PQ_OK;
    }
    const float *pa, *pb;
    float *oa = NULL, *ob = NULL, *py = NULL, *oy = NULL;
    enum pq_status st;
    PQ_TRY_GOTO(st, pq_ref_f32_view(A, &pa, &oa, a->err), done);
    PQ_TRY_GOTO(st, pq_ref_f32_view(B, &pb, &ob, a->err), done);
    PQ_TRY_GOTO(st, pq_ref_f32_out(Y, &py, &oy, a->err), done);
    st = pq_matmul_f32(&g, pa, pb, py, a->err);
    if (st == PQ_OK) {
        pq_ref_f32_commit(Y, oy);
        oy = NULL;
        st = pq_act_epilogue(a->node, Y, a->err); /* fused activation (PQ_OK when none) */
    }
done:
    pq_free(oa);
    pq_free(ob);
    pq_free(oy);
    return st;
}

/* ---- Gemm ---- */

enum pq_status pq_ref_gemm(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 2, 1));
    const pq_tensor *A = a->in[0], *B = a->in[1];
    const pq_tensor *Cin = a->n_in > 2 ? a->in[2] : NULL;
    pq_tensor *Y = a->out[0];
    bool ta = pq_node_attr_int(a->node, "transA", 0) != 0;
    bool tb = pq_node_attr_int(a->node, "transB", 0) != 0;
    float alpha = pq_node_attr_float(a->node, "alpha", 1.0f);
    float beta = pq_node_attr_float(a->node, "beta", 1.0f);
    int64_t M = ta ? A->dims[1] : A->dims[0], K = ta ? A->dims[0] : A->dims[1];
    int64_t N = tb ? B->dims[0] : B->dims[1];
    const float *pa, *pb, *pc = NULL;
    float *oa = NULL, *ob = NULL, *oc = NULL, *py = NULL, *oy = NULL;
    enum pq_status st;
    PQ_TRY_GOTO(st, pq_ref_f32_view(A, &pa, &oa, a->err), done);
    PQ_TRY_GOTO(st, pq_ref_f32_view(B, &pb, &ob, a->err), done);
    if (Cin && beta != 0.0f) PQ_TRY_GOTO(st, pq_ref_f32_view(Cin, &pc, &oc, a->err), done);
    PQ_TRY_GOTO(st, pq_ref_f32_out(Y, &py, &oy, a->err), done);
    float gb = 0.0f;
    if (pc) {
        /* C broadcasts unidirectionally to [M, N]: strides 0 on its size-1 / missing dims. */
        int64_t cm = Cin->rank == 2 ? Cin->dims[0] : 1;
        int64_t cn = Cin->rank >= 1 ? Cin->dims[Cin->rank - 1] : 1;
        int64_t sm = cm == 1 ? 0 : cn, sn = cn == 1 ? 0 : 1;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++)
                py[i * N + j] = beta * pc[i * sm + j * sn];
        gb = 1.0f;
    }
    st = pq_ref_sgemm(ta, tb, M, N, K, alpha, pa, ta ? M : K, pb, tb ? K : N, gb, py, N, a->err);
    if (st == PQ_OK) {
        pq_ref_f32_commit(Y, oy);
        oy = NULL;
        st = pq_act_epilogue(a->node, Y, a->err); /* fused activation (PQ_OK when none) */
    }
done:
    pq_free(oa);
    pq_free(ob);
    pq_free(oc);
    pq_free(oy);
    return st;
}
