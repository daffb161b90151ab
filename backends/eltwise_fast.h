/* Fast f32 kernels of Softmax (last axis), LayerNormalization (rows from axis on) and the
 * broadcasting binary Add/Sub/Mul/Div: per-ISA row kernels (scalar here, backends/x86/
 * eltwise_avx2.c, eltwise_avx512.c), chosen at run time (PIQC_ISA forces), threaded over rows. */
#ifndef PQ_ELTWISE_FAST_H
#define PQ_ELTWISE_FAST_H

#include <stdint.h>

#include "backends/ref/ref.h"

/* Binary op codes of pq_eltwise_kernels.binary. */
enum { PQ_EW_ADD, PQ_EW_SUB, PQ_EW_MUL, PQ_EW_DIV, PQ_EW_COUNT };

/* Numerics, every ISA:
 * - binary: y[i] = a[i * sa] op b[i * sb] with one IEEE f32 operation per element, the same as
 *   the reference kernel: bit-exact (NaN results are the default quiet NaN or the NaN operand,
 *   as with scalar SSE code).
 * - softmax: max in f32 (NaN inputs skipped, as in the reference), d = x - max with its rounding
 *   error kept (TwoSum), e = exp(d) in f32 (SIMD: Cephes-style degree-6 polynomial on
 *   [-ln2/2, ln2/2], e = 0 for d < -104; scalar: exp in double rounded to f32), sum of e in
 *   double, y = e / (float)sum. Against the reference (all in double):
 *   |y - y_ref| <= 1e-6 * |y_ref| + 2^-148; NaN/+inf inputs and all -inf rows give NaN rows as
 *   the reference does; -inf (masked) entries give exactly 0.
 * - layernorm: mean and variance (two passes) accumulated in double, in lane order rather than
 *   sequentially, then y = (((x - (float)mean) * (float)inv) * s) + b in f32 with separate
 *   multiplies and adds, as in the reference: identical unless the double statistics round to a
 *   different float, bounded by |y - y_ref| <= 1e-6 * (|y_ref| + |s| + |b|).
 * - sum (GlobalAveragePool): the floats added in double in lane order (a few partial sums, then
 *   combined) instead of sequentially, y = (float)(sum / n): the double sums differ by a few
 *   units of 2^-53 * sum|x|, so y is the reference's float or a neighbour:
 *   |y - y_ref| <= 2^-23 |y_ref| + 2^-48 * mean|x|. The scalar kernel is the reference's loop. */
typedef struct pq_eltwise_kernels {
    const char *isa; /* "scalar", "avx2", "avx512" */
    /* n elements; sa, sb are 0 (broadcast scalar) or 1; y may alias a or b when its stride is 1. */
    void (*binary[PQ_EW_COUNT])(const float *a, int64_t sa, const float *b, int64_t sb, float *y,
                                int64_t n);
    /* One row of n >= 1 values; y may alias x. */
    void (*softmax)(const float *x, float *y, int64_t n);
    /* One row of n >= 1 values with scale s[n] and bias b[n] (NULL: + 0.0f); y may alias x. */
    void (*layernorm)(const float *x, const float *s, const float *b, float *y, int64_t n,
                      double eps);
    /* Sum of n >= 0 floats in double (0.0 for n = 0). */
    double (*sum)(const float *x, int64_t n);
    /* nb >= 1 blocks of channel-blocked rows (blk = 8 or 16 lanes per row, rows rows; block b at
     * x + b * bstride): acc[b * blk + l] += x[b * bstride + r * blk + l] for r in order, in
     * double: every ISA gives the scalar loop's bits. Several blocks at once let the SIMD kernels
     * run independent additions side by side (one block's sums are a chain of dependent adds). */
    void (*lane_sums)(const float *x, int64_t rows, int blk, int64_t nb, int64_t bstride,
                      double *acc);
    /* y[r * blk + l] = x[r * blk + l] * s[l] (blk = 8 or 16): one f32 multiply, bit-exact. */
    void (*lane_scale)(const float *x, const float *s, float *y, int64_t rows, int blk);
    /* In place over n >= 0 floats, the fused activations the oneDNN convolution runs as a pass
     * after the primitive (onednn_conv.c); NULL where the ISA has none (only AVX-512 has them;
     * oneDNN's eltwise post-op runs instead). Both map 0 to 0 (blocked layouts' padding lanes).
     * - swish: x * sigmoid(x) = x / (1 + 2^(-x log2 e)), the power from a polynomial and
     *   vscalefps: within 3 ulp of the exact value where that is at least 2^-100 in magnitude
     *   (x >= -60); for x < -60 |y| < 2^-80 (-0 from x < -88 on, where 2^... overflows); NaN
     *   propagates, -inf gives NaN, +inf gives +inf.
     * - hard_swish: x * (min(max(x + 3, 0), 6) * (1/6)) in f32: within 3 ulp of the exact
     *   x * clamp(x / 6 + 0.5, 0, 1) (the reference kernel's value in double). */
    void (*swish)(float *x, int64_t n);
    void (*hard_swish)(float *x, int64_t n);
    /* y[r] = sum over i < k of x[i] * w[r * k + i] for r < rows (w row-major [rows, k], k >= 1):
     * the oneDNN Gemm's batch-1 path (onednn_matmul.c), f32 products and sums in an order of the
     * kernel's own (16 partial sums per row). NULL where the ISA has none (AVX-512 only). */
    void (*gemv_rows)(const float *x, const float *w, int64_t k, int64_t rows, float *y);
} pq_eltwise_kernels;

extern const pq_eltwise_kernels pq_eltwise_kernels_scalar;
extern const pq_eltwise_kernels pq_eltwise_kernels_avx2;
extern const pq_eltwise_kernels pq_eltwise_kernels_avx512;

/* The table of a named ISA ("scalar", "avx2", "avx512") when compiled in and supported by the
 * CPU, else NULL. */
const pq_eltwise_kernels *pq_eltwise_kernels_for(const char *isa);
/* The table used by the fast-table entries: PIQC_ISA when available, else the best the CPU
 * runs (avx512, avx2, scalar). Chosen once. */
const pq_eltwise_kernels *pq_eltwise_kernels_get(void);

/* Node kernels with an explicit table (contract of backends/fast.h: PQ_ERR_UNSUPPORTED without
 * touching outputs or err for cases not handled; otherwise PQ_OK, or an error of the fused
 * activation epilogue of Add). Handled:
 * - binary (Add/Sub/Mul/Div): A, B, Y f32 with data; any broadcast whose rows (after merging
 *   contiguous dims) have both operands at stride 0 or 1: same shape, scalar, per-channel
 *   [1,C,1,1] on NCHW, last-axis vector. Add's fused activation runs the reference epilogue.
 * - Softmax: f32, rank >= 1, axis the last one (coerce_2d form with axis = rank - 1 too).
 * - LayerNormalization: f32 X/Scale/(Bias), only output Y, Scale and Bias with D = prod(dims
 *   from axis on) elements.
 * - GlobalAveragePool: f32 X of rank >= 3 with data, Y f32 [N, C, 1, ...].
 * Threads: rows (binary: blocks of rows) in pq_parallel_for chunks when a->n_threads > 1;
 * results do not depend on the thread count. */
enum pq_status pq_eltwise_binary_run(const pq_eltwise_kernels *k, const pq_kernel_args *a);
enum pq_status pq_eltwise_softmax_run(const pq_eltwise_kernels *k, const pq_kernel_args *a);
enum pq_status pq_eltwise_layernorm_run(const pq_eltwise_kernels *k, const pq_kernel_args *a);
enum pq_status pq_eltwise_global_avg_pool_run(const pq_eltwise_kernels *k, const pq_kernel_args *a);

/* The fast-table entries: the runs above with pq_eltwise_kernels_get(). */
enum pq_status pq_fast_eltwise_binary(const pq_kernel_args *a);
enum pq_status pq_fast_eltwise_softmax(const pq_kernel_args *a);
enum pq_status pq_fast_eltwise_layernorm(const pq_kernel_args *a);
enum pq_status pq_fast_eltwise_global_avg_pool(const pq_kernel_args *a);

#endif
