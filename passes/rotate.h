/* Randomised Hadamard rotations of a weight's rows x cols view (SPEC 6), shared by the hadamard
 * pass (which applies them) and fake-quant (which undoes them to measure against the original). */
#ifndef PQ_ROTATE_H
#define PQ_ROTATE_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/status.h"

/* Input-side rotation of a row-major (batch * rows) x cols weight view m, in place. The columns
 * are cols / stride input features of `stride` consecutive entries each (Conv: stride = kh * kw,
 * so column c * stride + p is input channel c at kernel position p; MatMul/Gemm: stride 1). For
 * every row and every position p the vector m[row][c * stride + p], c = 0 .. cols/stride - 1, is
 * transformed with pq_rht_forward (inverse = false) or pq_rht_inverse (inverse = true) and seed.
 * Temporarily allocates cols/stride floats when stride > 1.
 * Returns PQ_OK; PQ_ERR_INVALID for rows < 0, cols <= 0, stride <= 0 or cols not a multiple of
 * stride; PQ_ERR_UNSUPPORTED when cols / stride has no valid Hadamard block (pq_rht_block_size;
 * m untouched); PQ_ERR_NOMEM. */
enum pq_status pq_rotate_view_in(float *m, int64_t rows, int64_t cols, int64_t stride,
                                 uint64_t seed, bool inverse, pq_error *err);

/* Output-side rotation: in each of `batch` stacked rows x cols matrices of m, every column (the
 * vector over the rows) is transformed like pq_rotate_view_in's vectors. Temporarily allocates
 * rows floats. Same statuses, with rows taking the place of cols / stride. */
enum pq_status pq_rotate_view_out(float *m, int64_t batch, int64_t rows, int64_t cols,
                                  uint64_t seed, bool inverse, pq_error *err);

#endif
