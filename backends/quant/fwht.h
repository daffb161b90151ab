/* Fast Walsh-Hadamard transform (scalar reference) and the randomised Hadamard rotation of
 * SPEC section 6: LCG sign vector, forward/inverse transform, block-diagonal for n != 2^m. */
#ifndef PQ_FWHT_H
#define PQ_FWHT_H

#include <stdint.h>

#include "ir/status.h"

/* In-place unnormalised Sylvester butterfly on x[0..n) in the fixed SPEC order
 * (h = 1, 2, 4, ...; x[i] = a + b, x[i+h] = a - b), then x[i] *= scale for every i.
 * n must be a power of two with 1 <= n <= 65536 (not checked: the caller validates). Every SIMD
 * kernel (pq_qkernels.fwht) is bit-identical to this one on finite inputs. */
void pq_fwht_ukernel__scalar(float *x, int64_t n, float scale);
/* pq_fwht_ukernel__scalar on each of `rows` contiguous vectors of length n (rows >= 0). */
void pq_fwht_rows_ukernel__scalar(float *x, int64_t rows, int64_t n, float scale);

/* Writes n signs (+1.0f / -1.0f) of the LCG of SPEC section 6 to signs[0..n):
 * state = state * 6364136223846793005 + 1442695040888963407 (mod 2^64) before each draw,
 * sign = -1 when bit 63 of state is set. The state starts at seed. n <= 0 writes nothing. */
void pq_rht_signs(uint64_t seed, int64_t n, float *signs);

/* Block length of the rotation of a vector of n values: n itself when n is a power of two
 * <= 65536, else the largest power of two dividing n, capped at 65536. Returns PQ_OK and sets
 * *block, or PQ_ERR_UNSUPPORTED (message in err, may be NULL) when that block is below 8 or
 * n <= 0. */
enum pq_status pq_rht_block_size(int64_t n, int64_t *block, pq_error *err);

/* Forward randomised Hadamard transform in place: x = blockdiag(H_b) * D * x * s with D the
 * n signs of pq_rht_signs(seed, n, .) over the whole vector, b = pq_rht_block_size(n) and
 * s = (float)(1.0 / sqrt((double)b)). Uses the run-time selected kernel (pq_qkernels_get), whose
 * result is bit-identical to the scalar one. No allocation. Returns PQ_OK, or
 * PQ_ERR_UNSUPPORTED for a length without a valid block (x untouched). */
enum pq_status pq_rht_forward(float *x, int64_t n, uint64_t seed, pq_error *err);
/* Inverse of pq_rht_forward: butterfly per block, scale by s, then D (same statuses). */
enum pq_status pq_rht_inverse(float *x, int64_t n, uint64_t seed, pq_error *err);

/* pq_rht_forward / pq_rht_inverse on each of `rows` contiguous vectors of length n, all
 * with the same signs (the rotation of the input features of a weight matrix). */
enum pq_status pq_rht_forward_rows(float *x, int64_t rows, int64_t n, uint64_t seed, pq_error *err);
enum pq_status pq_rht_inverse_rows(float *x, int64_t rows, int64_t n, uint64_t seed, pq_error *err);

#endif
