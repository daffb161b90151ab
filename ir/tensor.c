/* Tensor allocation and shape arithmetic. All element counts are overflow-checked against
 * PQ_MAX_NUMEL so hostile dimensions in input files become errors, not huge allocations. */
#include "tensor.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"

enum pq_status pq_shape_numel(int rank, const int64_t *dims, int64_t *out, pq_error *err) {
    if (rank < 0 || rank > PQ_MAX_RANK)
        return pq_error_set(err, PQ_ERR_INVALID, "rank %d outside 0..%d", rank, PQ_MAX_RANK);
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return pq_error_set(err, PQ_ERR_INVALID, "dimension %d is negative (%lld)", i,
                                (long long)dims[i]);
        if (dims[i] == 0) {
            n = 0;
            continue;
        }
        if (n > PQ_MAX_NUMEL / dims[i] && n != 0) {
            char buf[160];
            pq_shape_format(rank, dims, buf, sizeof buf);
            return pq_error_set(err, PQ_ERR_INVALID, "shape %s has more than 2^40 elements", buf);
        }
        n *= dims[i];
    }
    *out = n;
    return PQ_OK;
}

void pq_shape_strides(int rank, const int64_t *dims, int64_t *strides) {
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        strides[i] = s;
        s *= dims[i];
    }
}

void pq_shape_format(int rank, const int64_t *dims, char *buf, int size) {
    int used = snprintf(buf, (size_t)size, "[");
    for (int i = 0; i < rank && used < size; i++)
        used +=
            snprintf(buf + used, (size_t)(size - used), "%s%lld", i ? "," : "", (long long)dims[i]);
    if (used < size) snprintf(buf + used, (size_t)(size - used), "]");
}

enum pq_status pq_tensor_alloc_data(pq_tensor *t, enum pq_dtype dtype, int rank,
                                    const int64_t *dims, pq_error *err) {
    int64_t n;
    PQ_TRY(pq_shape_numel(rank, dims, &n, err));
    size_t es = pq_dtype_size(dtype);
    if (es == 0) return pq_error_set(err, PQ_ERR_INVALID, "tensor of undefined element type");
    size_t nbytes = (size_t)n * es;
    void *data = pq_malloc_aligned(nbytes);
    if (!data) return pq_error_nomem(err, "tensor data");
    memset(data, 0, nbytes);
    if (t->owns_data) pq_free(t->data);
    t->dtype = dtype;
    t->rank = rank;
    for (int i = 0; i < rank; i++)
        t->dims[i] = dims[i];
    t->data = data;
    t->nbytes = nbytes;
    t->owns_data = true;
    return PQ_OK;
}

pq_tensor *pq_tensor_create(enum pq_dtype dtype, int rank, const int64_t *dims, pq_error *err) {
    pq_tensor *t = pq_calloc(1, sizeof *t);
    if (!t) {
        pq_error_nomem(err, "tensor");
        return NULL;
    }
    if (pq_tensor_alloc_data(t, dtype, rank, dims, err) != PQ_OK) {
        pq_free(t);
        return NULL;
    }
    return t;
}

pq_tensor *pq_tensor_clone(const pq_tensor *src, pq_error *err) {
    pq_tensor *t = pq_tensor_create(src->dtype, src->rank, src->dims, err);
    if (t && src->nbytes) memcpy(t->data, src->data, src->nbytes);
    return t;
}

void pq_tensor_destroy(pq_tensor *t) {
    if (!t) return;
    if (t->owns_data) pq_free(t->data);
    pq_free(t);
}

int64_t pq_tensor_numel(const pq_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n *= t->dims[i];
    return n;
}

bool pq_dim_equal(pq_dim a, pq_dim b) {
    if (a.size >= 0 || b.size >= 0) return a.size == b.size;
    return a.sym != 0 && a.sym == b.sym;
}

pq_shape pq_shape_unknown(void) {
    pq_shape s;
    memset(&s, 0, sizeof s);
    s.rank = -1;
    return s;
}

pq_shape pq_shape_from_dims(int rank, const int64_t *dims) {
    pq_shape s;
    memset(&s, 0, sizeof s);
    s.rank = rank;
    for (int i = 0; i < rank; i++)
        s.dims[i].size = dims[i];
    return s;
}

bool pq_shape_is_static(const pq_shape *s, int64_t *dims) {
    if (s->rank < 0) return false;
    for (int i = 0; i < s->rank; i++) {
        if (s->dims[i].size < 0) return false;
        if (dims) dims[i] = s->dims[i].size;
    }
    return true;
}
