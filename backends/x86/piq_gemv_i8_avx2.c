/* AVX2 integer-activation PiQ GEMV: codes decoded to bytes (piq_gemv_i8_avx2_impl.h), vpmaddubsw
 * of unsigned codes (<= 7) by int8 activations (pair sums <= 1778: no saturation), 8 steps summed
 * in i16, widened by vpmaddwd. Bit-exact with the scalar reference (piq_gemv_i8.h). */
#define PQ_I8Y_VNNI 0
#include "backends/x86/piq_gemv_i8_avx2_impl.h"

static void pq_piq_gemv_i8_ukernel__avx2(enum pq_qformat f, const uint8_t *w, int64_t rows,
                                         int64_t cols, int64_t group, const pq_piq_i8_act *a,
                                         float *y) {
    pq_i8y_gemv(f, w, rows, cols, group, a, y);
}

const pq_piq_i8_kernels pq_piq_i8_kernels_avx2 = {
    .isa = "avx2",
    .gemv = pq_piq_gemv_i8_ukernel__avx2,
};
