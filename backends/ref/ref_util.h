/* Private helpers of the reference kernels: numpy-broadcast iteration with precomputed strides,
 * splitting a shape around one axis, exact integer loads/stores and reading small int inputs.
 * Any backends/ref kernel file may use them. */
#ifndef PQ_REF_UTIL_H
#define PQ_REF_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "ref.h"

/* Most operands one broadcast iteration handles (Where has three inputs). */
#define PQ_REF_BCAST_MAX 4

/* Iteration over a contiguous output shape with every operand broadcast to it (numpy rules).
 * Dims of size 1 are dropped and adjacent dims that are contiguous in every operand are merged,
 * so the innermost row is as long as possible. */
typedef struct pq_ref_bcast {
    int rank; /* >= 1 after simplification */
    int n_ops;
    int64_t dims[PQ_MAX_RANK];
    int64_t strides[PQ_REF_BCAST_MAX][PQ_MAX_RANK]; /* element strides, 0 on broadcast dims */
    int64_t numel;                                  /* elements of the output */
    int64_t inner;                                  /* length of one row: dims[rank-1] */
    int64_t istride[PQ_REF_BCAST_MAX];              /* strides[k][rank-1] */
} pq_ref_bcast;

/* Position of the current row in a pq_ref_bcast walk. */
typedef struct pq_ref_bcast_it {
    int64_t out;                   /* offset of the row's first output element */
    int64_t off[PQ_REF_BCAST_MAX]; /* offset of the row's first element in each operand */
    int64_t idx[PQ_MAX_RANK];
} pq_ref_bcast_it;

/* Sets up iteration of the output shape (out_rank, out_dims) with the n_ops operand shapes
 * (ranks[k], dims[k]) broadcast to it. Operands must be broadcast-compatible with the output
 * (inference checked that); n_ops <= PQ_REF_BCAST_MAX. */
void pq_ref_bcast_init(pq_ref_bcast *b, int out_rank, const int64_t *out_dims, int n_ops,
                       const int *ranks, const int64_t *const *dims);
/* Same with operands given as tensors. */
void pq_ref_bcast_init_tensors(pq_ref_bcast *b, const pq_tensor *out, int n_ops,
                               const pq_tensor *const *ops);
/* Walk: for (pq_ref_bcast_first(&b, &it); it.out < b.numel; pq_ref_bcast_next(&b, &it))
 *           for (j = 0; j < b.inner; j++) elem(it.off[k] + j * b.istride[k]) -> out[it.out + j] */
void pq_ref_bcast_first(const pq_ref_bcast *b, pq_ref_bcast_it *it);
void pq_ref_bcast_next(const pq_ref_bcast *b, pq_ref_bcast_it *it);

/* Splits dims around axis: outer = prod(dims[:axis]), n = dims[axis], inner = prod(dims[axis+1:]).
 * Element (o, i, j) is at o*n*inner + i*inner + j. */
void pq_ref_split_axis(int rank, const int64_t *dims, int axis, int64_t *outer, int64_t *n,
                       int64_t *inner);

/* (Exact integer loads: pq_dtype_load_i64 in ir/dtype.h.) */
/* Stores an integer with C wrap-around conversion to integer dtypes (bool: v != 0; floats:
 * converted). */
void pq_ref_store_int(enum pq_dtype t, void *data, size_t i, int64_t v);
/* True for u8..u64. */
bool pq_ref_dtype_unsigned(enum pq_dtype t);

/* Reads an integer tensor of rank 0 or 1 into out[0..*n); INVALID when it is not an integer
 * tensor or has more than max elements. t may be NULL (then *n = 0). */
enum pq_status pq_ref_read_ints(const pq_tensor *t, int64_t *out, int max, int *n, const char *what,
                                pq_error *err);

/* Checks that inputs 0..n_in-1 are present and outputs 0..n_out-1 are present with buffers
 * (kernels of these ops rely on inference having fixed every output shape). INVALID for a
 * missing input/output, INTERNAL for an output without data. */
enum pq_status pq_ref_check_args(const pq_kernel_args *a, uint32_t n_in, uint32_t n_out);

#endif
