/* Scalar reference kernels for int8 weights (packed_int8.h: row sum of x * q in order, then one
 * multiply by the row scale) and the run-time choice of the int8 kernel table by ISA name. */
#include "backends/packed_int8.h"

#include <string.h>

#include "backends/cpu.h"

void pq_w8_gemv_ukernel__scalar(const int8_t *q, const float *s, int64_t rows, int64_t cols,
                                const float *x, float *y) {
    for (int64_t r = 0; r < rows; r++) {
        const int8_t *qr = q + r * cols;
        float acc = 0.0f;
        for (int64_t c = 0; c < cols; c++) {
            float p = x[c] * (float)qr[c];
            acc += p;
        }
        y[r] = s[r] * acc;
    }
}

void pq_w8_gemm_ukernel__scalar(const int8_t *q, const float *s, int64_t rows, int64_t cols,
                                const float *x, int64_t M, float *y, float *panel) {
    (void)panel;
    for (int64_t m = 0; m < M; m++)
        pq_w8_gemv_ukernel__scalar(q, s, rows, cols, x + m * cols, y + m * rows);
}

const pq_w8_kernels pq_w8_kernels_scalar = {
    .isa = "scalar",
    .gemv = pq_w8_gemv_ukernel__scalar,
    .gemm = pq_w8_gemm_ukernel__scalar,
};

const pq_w8_kernels *pq_w8_kernels_for(const char *isa) {
    if (!isa || !pq_cpu_supports_isa(isa)) return NULL;
    const pq_w8_kernels *k = NULL;
    if (!strcmp(isa, "scalar"))
        k = &pq_w8_kernels_scalar;
    else if (!strcmp(isa, "avx2"))
        k = &pq_w8_kernels_avx2;
    else if (!strcmp(isa, "avx512"))
        k = &pq_w8_kernels_avx512;
    return k && k->gemv ? k : NULL;
}
