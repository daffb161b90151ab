/* Scalar reference kernels for f16 weights (packed_f16.h: f32(h) with the repository's
 * conversion, row sums in order) and the run-time choice of the f16 kernel table by ISA name. */
#include "backends/packed_f16.h"

#include <string.h>

#include "backends/cpu.h"
#include "ir/dtype.h"

void pq_f16_gemv_ukernel__scalar(const uint16_t *h, int64_t rows, int64_t cols, const float *x,
                                 float *y) {
    for (int64_t r = 0; r < rows; r++) {
        const uint16_t *hr = h + r * cols;
        float acc = 0.0f;
        for (int64_t c = 0; c < cols; c++) {
            float p = x[c] * pq_f16_to_f32(hr[c]);
            acc += p;
        }
        y[r] = acc;
    }
}

void pq_f16_gemm_ukernel__scalar(const uint16_t *h, int64_t rows, int64_t cols, const float *x,
                                 int64_t M, float *y, float *panel) {
    (void)panel;
    for (int64_t m = 0; m < M; m++)
        pq_f16_gemv_ukernel__scalar(h, rows, cols, x + m * cols, y + m * rows);
}

const pq_f16_kernels pq_f16_kernels_scalar = {
    .isa = "scalar",
    .gemv = pq_f16_gemv_ukernel__scalar,
    .gemm = pq_f16_gemm_ukernel__scalar,
};

const pq_f16_kernels *pq_f16_kernels_for(const char *isa) {
    if (!isa || !pq_cpu_supports_isa(isa)) return NULL;
    const pq_f16_kernels *k = NULL;
    if (!strcmp(isa, "scalar"))
        k = &pq_f16_kernels_scalar;
    else if (!strcmp(isa, "avx2"))
        k = &pq_f16_kernels_avx2;
    else if (!strcmp(isa, "avx512"))
        k = &pq_f16_kernels_avx512;
    return k && k->gemv ? k : NULL;
}
