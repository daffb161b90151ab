/* Fast QuantizeLinear / DequantizeLinear (f32 <-> u8/s8, one scale and zero point for the
 * tensor) and MaxPool on u8/s8 (2-D NCHW, no Indices): the glue between INT8 layers. Bit-exact
 * with the reference kernels (backends/ref/ref_quant_ops.c, ref_pool.c):
 *   quantize:   y = clamp(nearbyintf(x / s) + zp, lo, hi), NaN -> zp   (f32 division, RNE)
 *   dequantize: y = (float)(x - zp) * s                                 (f32 product)
 *   max pool:   max of the in-range window elements (integers: order-exact).
 * Anything else (per-axis parameters, other dtypes, Indices, auto_pad) is UNSUPPORTED and the
 * reference kernel runs. Kernels per ISA (scalar, AVX2, AVX-512; NEON on aarch64:
 * backends/arm/qdq_ops_neon.c) chosen once (PIQC_ISA forces). */
#ifndef PQ_QDQ_OPS_H
#define PQ_QDQ_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/ref/ref.h"

/* y[i] = clamp(nearbyintf(x[i] / s) + zp, lo, hi), NaN -> zp; lo/hi 0/255 (is_u8) or -128/127,
 * y holds the bytes (s8 as two's complement). */
typedef void (*pq_qdq_quant_fn)(const float *x, size_t n, float s, int32_t zp, bool is_u8,
                                uint8_t *y);
/* y[i] = (float)(x[i] - zp) * s, x u8 (is_u8) or s8 bytes. */
typedef void (*pq_qdq_dequant_fn)(const uint8_t *x, size_t n, bool is_u8, int32_t zp, float s,
                                  float *y);

/* q[i] = x[i] / s in f32 the way quant divides: bit-exact with the IEEE f32 quotient wherever
 * |x[i] / s| >= 2^-126 or the quotient is 0, +-inf or NaN (below, at most one subnormal ulp apart,
 * which rounds to the same integer; see qdiv_x86.h). Exposed so that tests can check the
 * divide-free x86 form on many values. */
typedef void (*pq_qdq_div_fn)(const float *x, size_t n, float s, float *q);

typedef struct pq_qdq_kernels {
    const char *name; /* "scalar", "avx2", "avx512", "neon" */
    pq_qdq_quant_fn quant;
    pq_qdq_dequant_fn dequant;
    pq_qdq_div_fn div; /* NULL in the NEON table (its quant divides with fdiv) */
} pq_qdq_kernels;

/* Kernels of one ISA by name ("scalar", "avx2", "avx512", "neon"), NULL when this build or CPU
 * cannot run them. */
const pq_qdq_kernels *pq_qdq_kernels_for(const char *isa);
/* PIQC_ISA's kernels when available, else the best: avx512 > avx2 > neon > scalar. Never NULL. */
const pq_qdq_kernels *pq_qdq_kernels_get(void);

extern const pq_qdq_kernels pq_qdq_kernels_scalar;
extern const pq_qdq_kernels pq_qdq_kernels_avx2;
extern const pq_qdq_kernels pq_qdq_kernels_avx512;
extern const pq_qdq_kernels pq_qdq_kernels_neon; /* aarch64 builds only */

/* Node runners with kernels k (NULL: pq_qdq_kernels_get()). UNSUPPORTED (outputs and err
 * untouched) outside the cases above, else OK; they never allocate. */
enum pq_status pq_qdq_quantize_run(const pq_qdq_kernels *k, const pq_kernel_args *a);
enum pq_status pq_qdq_dequantize_run(const pq_qdq_kernels *k, const pq_kernel_args *a);
/* MaxPool on u8 / s8 NCHW, kernel_shape / strides / pads / dilations (auto_pad NOTSET, any
 * ceil_mode: the output shape is taken from the output tensor), no Indices output. */
enum pq_status pq_i8_max_pool_run(const pq_kernel_args *a);

#if defined(__x86_64__)
/* MaxPool of nc planes of hw <= 64 bytes (x, one after another) into planes of ohw <= 64 bytes
 * (y): output byte o of a plane is the maximum over taps t < taps of its byte idx[t][o] where bit
 * o of km[t] is set (every output has one); bytes ^ bias compared as u8 (bias 0x80: s8). Needs
 * AVX-512 VBMI (qdq_pool_small_avx512.c). */
void pq_i8_pool_small__avx512vbmi(const uint8_t *x, int64_t nc, int64_t hw, uint8_t *y, int64_t ohw,
                                  int taps, const uint8_t (*idx)[64], const uint64_t *km,
                                  uint8_t bias);
#endif

/* The fast-table entries. */
enum pq_status pq_fast_qdq_quantize(const pq_kernel_args *a);
enum pq_status pq_fast_qdq_dequantize(const pq_kernel_args *a);
enum pq_status pq_fast_i8_max_pool(const pq_kernel_args *a);

#endif
