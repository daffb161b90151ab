/* The aarch64 Advanced SIMD (NEON) quantized-kernel table (backends/arm/qkernels_neon.c);
 * only compiled into aarch64 builds (the NEON test program cross-compiled by tests/neon). */
#ifndef PQ_QKERNELS_NEON_H
#define PQ_QKERNELS_NEON_H

#include "backends/quant/qkernels.h"

/* Same contract as pq_qkernels_scalar; codes, packed bytes, dequantized values and fwht are
 * bit-identical to it, gemv/gemm agree within the bound stated in qkernels_neon.c. */
extern const pq_qkernels pq_qkernels_neon;

/* NEON butterfly, bit-identical to pq_fwht_ukernel__scalar (8 <= n <= 65536, power of two). */
void pq_f32_fwht_ukernel__neon(float *x, int64_t n, float scale);

#endif
