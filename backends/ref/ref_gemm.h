/* Private helpers of the reference nn kernels (MatMul, Gemm, Conv, ConvTranspose, RNNs): a
 * cache-blocked f32 GEMM written so gcc -O2 vectorises its inner loops, plus f32 views of
 * tensors of other float dtypes. Implemented in ref_matmul.c. Not part of backends' public face. */
#ifndef PQ_REF_GEMM_H
#define PQ_REF_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "ref.h"

/* C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, all row-major. op(A) = A (lda >= K) or,
 * with trans_a, A is stored [K,M] (lda >= M); likewise B ([K,N], ldb >= N, or [N,K] with trans_b).
 * beta == 0 ignores C's old contents (NaN included). M, N or K may be 0. NOMEM when the packing
 * buffers cannot be allocated (C is then unspecified). */
enum pq_status pq_ref_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                            float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                            float beta, float *C, int64_t ldc, pq_error *err);

/* An f32 view of a float tensor: *out points at t's data when t is f32 (*owned = NULL), else at a
 * new converted copy stored in *owned (free with pq_free). INVALID for non-float dtypes, NOMEM. */
enum pq_status pq_ref_f32_view(const pq_tensor *t, const float **out, float **owned, pq_error *err);
/* A writable f32 buffer for output t: t's data when t is f32 (*owned = NULL), else new scratch
 * in *owned that pq_ref_f32_commit converts into t and frees. */
enum pq_status pq_ref_f32_out(pq_tensor *t, float **out, float **owned, pq_error *err);
void pq_ref_f32_commit(pq_tensor *t, float *owned);

/* INTERNAL unless every present output of a (optional ones included) has a buffer. */
enum pq_status pq_ref_check_outputs(const pq_kernel_args *a);

/* Window geometry of Conv/pooling/ConvInteger, always as 3 spatial dims (leading unused dims
 * have size 1). Implemented in ref_conv.c. */
typedef struct pq_ref_win {
    int nsp; /* real spatial rank, 1..3 */
    int64_t in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
} pq_ref_win;

/* Fills w from the node's strides/dilations/pads/auto_pad, x's spatial dims (x is N,C,...), the
 * kernel dims k (nsp values) and the output's spatial dims y (N,C,...). auto_pad SAME_* derives
 * the pads from the output size. Inference has validated everything. */
void pq_ref_window(const pq_node *n, const pq_tensor *x, const int64_t *k, const pq_tensor *y,
                   pq_ref_win *w);
/* Rows (od, oh pairs) per im2col chunk for ck = channels x kernel elements per output. */
int64_t pq_ref_conv_chunk_rows(int64_t ck, const pq_ref_win *w);
/* im2col of cg int32 channels (each w->in spatial) for output rows [r0, r1): col is
 * [cg * prod(k), (r1 - r0) * out[2]] with zeros where the window reads padding. */
void pq_ref_im2col_i32(const int32_t *x, int64_t cg, const pq_ref_win *w, int64_t r0, int64_t r1,
                       int32_t *col);

#endif
