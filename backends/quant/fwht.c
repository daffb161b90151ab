/* Scalar Walsh-Hadamard butterfly (the reference every SIMD fwht matches bit for bit) and the
 * randomised Hadamard rotation of SPEC section 6 built on the run-time selected kernel. */
#include "fwht.h"

#include <math.h>

#include "backends/quant/qkernels.h"

void pq_fwht_ukernel__scalar(float *x, int64_t n, float scale) {
    for (int64_t h = 1; h < n; h *= 2) {
        for (int64_t j = 0; j < n; j += 2 * h) {
            for (int64_t i = j; i < j + h; i++) {
                float a = x[i];
                float b = x[i + h];
                x[i] = a + b;
                x[i + h] = a - b;
            }
        }
    }
    for (int64_t i = 0; i < n; i++)
        x[i] *= scale;
}

void pq_fwht_rows_ukernel__scalar(float *x, int64_t rows, int64_t n, float scale) {
    for (int64_t r = 0; r < rows; r++)
        pq_fwht_ukernel__scalar(x + r * n, n, scale);
}

#define PQ_LCG_MUL 6364136223846793005ULL
#define PQ_LCG_ADD 1442695040888963407ULL

void pq_rht_signs(uint64_t seed, int64_t n, float *signs) {
    uint64_t state = seed;
    for (int64_t i = 0; i < n; i++) {
        state = state * PQ_LCG_MUL + PQ_LCG_ADD;
        signs[i] = (state >> 63) ? -1.0f : 1.0f;
    }
}

enum pq_status pq_rht_block_size(int64_t n, int64_t *block, pq_error *err) {
    if (n <= 0) {
        return pq_error_set(err, PQ_ERR_UNSUPPORTED, "hadamard: length %lld is not positive",
                            (long long)n);
    }
    int64_t b = n & -n; /* largest power of two dividing n */
    if (b > 65536) b = 65536;
    if (b < 8) {
        return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                            "hadamard: length %lld has no power-of-two block >= 8 (largest "
                            "power of two dividing it is %lld)",
                            (long long)n, (long long)b);
    }
    *block = b;
    return PQ_OK;
}

/* x[i] = -x[i] where the LCG sign is -1 (exactly x * -1). */
static void pq_rht_apply_signs(float *x, int64_t n, uint64_t seed) {
    uint64_t state = seed;
    for (int64_t i = 0; i < n; i++) {
        state = state * PQ_LCG_MUL + PQ_LCG_ADD;
        if (state >> 63) x[i] = -x[i];
    }
}

static enum pq_status pq_rht_rows(float *x, int64_t rows, int64_t n, uint64_t seed, int inverse,
                                  pq_error *err) {
    int64_t b = 0;
    PQ_TRY(pq_rht_block_size(n, &b, err));
    if (rows < 0) {
        return pq_error_set(err, PQ_ERR_INVALID, "hadamard: negative row count %lld",
                            (long long)rows);
    }
    const pq_qkernels *k = pq_qkernels_get();
    float scale = (float)(1.0 / sqrt((double)b));
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * n;
        if (!inverse) pq_rht_apply_signs(xr, n, seed);
        k->fwht_rows(xr, n / b, b, scale);
        if (inverse) pq_rht_apply_signs(xr, n, seed);
    }
    return PQ_OK;
}

enum pq_status pq_rht_forward(float *x, int64_t n, uint64_t seed, pq_error *err) {
    return pq_rht_rows(x, 1, n, seed, 0, err);
}

enum pq_status pq_rht_inverse(float *x, int64_t n, uint64_t seed, pq_error *err) {
    return pq_rht_rows(x, 1, n, seed, 1, err);
}

enum pq_status pq_rht_forward_rows(float *x, int64_t rows, int64_t n, uint64_t seed,
                                   pq_error *err) {
    return pq_rht_rows(x, rows, n, seed, 0, err);
}

enum pq_status pq_rht_inverse_rows(float *x, int64_t rows, int64_t n, uint64_t seed,
                                   pq_error *err) {
    return pq_rht_rows(x, rows, n, seed, 1, err);
}
