/* AVX2/FMA kernels for packed PiQ3/PiQ2/Q3/Q2 rows (quantize, dequantize, fused dequant-GEMV,
 * tiled dequant-GEMM) and the Walsh-Hadamard butterfly, matching pq_qkernels_scalar: codes,
 * packed bytes, dequantized values and fwht bit-exact; gemv/gemm in a different summation order
 * (bound 1e-5 * sum|w_hat x|, tests/backends/test_quant_simd.c). Bodies: qkernels_avx2_impl.h. */
#include "backends/x86/qkernels_avx2_impl.h"

const pq_qkernels pq_qkernels_avx2 = {
    .isa = "avx2",
    .quantize_row = pq_q_quantize_row_ukernel__avx2,
    .dequantize_row = pq_q_dequantize_row_ukernel__avx2,
    .gemv = pq_q_gemv_ukernel__avx2,
    .gemm = pq_q_gemm_ukernel__avx2,
    .fwht = pq_f32_fwht_ukernel__avx2,
    .fwht_rows = pq_f32_fwht_rows_ukernel__avx2,
};
