/* Dense tensors (row-major, C order) and the shape arithmetic shared by every folder:
 * element counts with overflow checks, strides, and symbolic dimensions for IR values. */
#ifndef PQ_TENSOR_H
#define PQ_TENSOR_H

#include <stdbool.h>
#include <stdint.h>

#include "dtype.h"
#include "status.h"

#define PQ_MAX_RANK 8
/* Largest element count piqc accepts for one tensor (2^40): bounds hostile dims. */
#define PQ_MAX_NUMEL ((int64_t)1 << 40)

/* A dense tensor. data holds numel * dtype_size bytes (64-byte aligned when piqc allocated it). */
typedef struct pq_tensor {
    enum pq_dtype dtype;
    int rank;
    int64_t dims[PQ_MAX_RANK];
    void *data;
    size_t nbytes;
    bool owns_data; /* pq_tensor_destroy frees data */
} pq_tensor;

/* Allocates a tensor with zeroed data. dims may be NULL when rank is 0. Returns NULL and sets err
 * (INVALID for bad rank/dims/overflow, NOMEM) on failure. */
pq_tensor *pq_tensor_create(enum pq_dtype dtype, int rank, const int64_t *dims, pq_error *err);
/* Deep copy (data included). */
pq_tensor *pq_tensor_clone(const pq_tensor *t, pq_error *err);
/* Frees the tensor and, when owned, its data. NULL is allowed. */
void pq_tensor_destroy(pq_tensor *t);
/* Sets dtype/shape on an existing tensor shell and allocates zeroed owned data (freeing any owned
 * data it had). Used by kernels whose output shape depends on input data. */
enum pq_status pq_tensor_alloc_data(pq_tensor *t, enum pq_dtype dtype, int rank,
                                    const int64_t *dims, pq_error *err);

int64_t pq_tensor_numel(const pq_tensor *t);

/* Element count of a shape; INVALID on a negative dim or a product above PQ_MAX_NUMEL. */
enum pq_status pq_shape_numel(int rank, const int64_t *dims, int64_t *out, pq_error *err);
/* Row-major strides in elements. */
void pq_shape_strides(int rank, const int64_t *dims, int64_t *strides);
/* Formats dims as "[2,3,4]" into buf (always NUL-terminated). */
void pq_shape_format(int rank, const int64_t *dims, char *buf, int size);

/* ---- Shapes of IR values (possibly symbolic or unknown) ---- */

/* One dimension: size >= 0 when known; otherwise size = -1 and sym names it (0 = anonymous
 * unknown; else a 1-based index into the graph's symbol table). */
typedef struct pq_dim {
    int64_t size;
    uint32_t sym;
} pq_dim;

/* rank = -1 when the rank itself is unknown. */
typedef struct pq_shape {
    int rank;
    pq_dim dims[PQ_MAX_RANK];
} pq_shape;

static inline bool pq_dim_known(pq_dim d) {
    return d.size >= 0;
}
static inline pq_dim pq_dim_of(int64_t size) {
    pq_dim d = {size, 0};
    return d;
}
static inline pq_dim pq_dim_unknown(void) {
    pq_dim d = {-1, 0};
    return d;
}
/* Same known size, or same symbol. */
bool pq_dim_equal(pq_dim a, pq_dim b);
/* Shape of unknown rank. */
pq_shape pq_shape_unknown(void);
/* Shape with all dims known. */
pq_shape pq_shape_from_dims(int rank, const int64_t *dims);
/* True when rank and every dim are known; fills dims (may be NULL). */
bool pq_shape_is_static(const pq_shape *s, int64_t *dims);

#endif
