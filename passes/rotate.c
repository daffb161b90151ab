/* Randomised Hadamard rotations of weight views (SPEC 6): the input side over (possibly strided)
 * input features and the output side over rows, forward or inverse, on top of backends/quant. */
#include "rotate.h"

#include "backends/quant/fwht.h"
#include "ir/alloc.h"

/* Forward or inverse RHT of one contiguous vector. */
static enum pq_status pq_rotate_vec(float *x, int64_t n, uint64_t seed, bool inverse,
                                    pq_error *err) {
    return inverse ? pq_rht_inverse(x, n, seed, err) : pq_rht_forward(x, n, seed, err);
}

enum pq_status pq_rotate_view_in(float *m, int64_t rows, int64_t cols, int64_t stride,
                                 uint64_t seed, bool inverse, pq_error *err) {
    if (rows < 0 || cols <= 0 || stride <= 0 || cols % stride != 0 || (rows > 0 && !m))
        return pq_error_set(err, PQ_ERR_INVALID,
                            "rotate: invalid view %lld x %lld with stride %lld", (long long)rows,
                            (long long)cols, (long long)stride);
    int64_t n = cols / stride, block = 0;
    PQ_TRY(pq_rht_block_size(n, &block, err));
    if (stride == 1)
        return inverse ? pq_rht_inverse_rows(m, rows, n, seed, err)
                       : pq_rht_forward_rows(m, rows, n, seed, err);
    float *v = pq_malloc(sizeof(float) * (size_t)n);
    if (!v) return pq_error_nomem(err, "rotate: column vector");
    enum pq_status st = PQ_OK;
    for (int64_t r = 0; r < rows && st == PQ_OK; r++) {
        float *row = m + r * cols;
        for (int64_t p = 0; p < stride && st == PQ_OK; p++) {
            for (int64_t c = 0; c < n; c++)
                v[c] = row[c * stride + p];
            st = pq_rotate_vec(v, n, seed, inverse, err);
            for (int64_t c = 0; c < n && st == PQ_OK; c++)
                row[c * stride + p] = v[c];
        }
    }
    pq_free(v);
    return st;
}

enum pq_status pq_rotate_view_out(float *m, int64_t batch, int64_t rows, int64_t cols,
                                  uint64_t seed, bool inverse, pq_error *err) {
    if (batch < 0 || rows <= 0 || cols < 0 || (batch > 0 && cols > 0 && !m))
        return pq_error_set(err, PQ_ERR_INVALID, "rotate: invalid view %lld x %lld x %lld",
                            (long long)batch, (long long)rows, (long long)cols);
    int64_t block = 0;
    PQ_TRY(pq_rht_block_size(rows, &block, err));
    float *v = pq_malloc(sizeof(float) * (size_t)rows);
    if (!v) return pq_error_nomem(err, "rotate: row vector");
    enum pq_status st = PQ_OK;
    for (int64_t b = 0; b < batch && st == PQ_OK; b++) {
        float *mat = m + b * rows * cols;
        for (int64_t j = 0; j < cols && st == PQ_OK; j++) {
            for (int64_t r = 0; r < rows; r++)
                v[r] = mat[r * cols + j];
            st = pq_rotate_vec(v, rows, seed, inverse, err);
            for (int64_t r = 0; r < rows && st == PQ_OK; r++)
                mat[r * cols + j] = v[r];
        }
    }
    pq_free(v);
    return st;
}
