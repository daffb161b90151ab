/* Fast u8/s8 elementwise contrib ops between INT8 layers: QLinearAdd and QLinearMul (per-tensor
 * scales and zero points, fused Relu / Clip; QLinearMul multiplies where QLinearAdd adds).
 * Bit-exact with the reference (backends/ref/ref_qlinear.c), i.e. with piqc's unfused
 * DequantizeLinear, DequantizeLinear -> Add [-> Relu] -> QuantizeLinear: r = (float)(a - za) * sa +
 * (float)(b - zb) * sb      (two f32 products, one f32 sum) r = min(max(r, lo), hi) (activation;
 * none: lo = -inf, hi = inf) y = clamp(nearbyintf(r / sc) + zc, 0|-128, 255|127)  (f32 division,
 * round half to even) Shapes: A and B equal, or one of them broadcast along trailing axes (e.g. [N,
 * C, 1, 1] or a scalar against [N, C, H, W]); other broadcasts, non-finite or non-positive scales
 * and other activations are UNSUPPORTED and the reference kernel runs. Kernels per ISA (scalar,
 * AVX2, AVX-512; NEON on aarch64: backends/arm/qlinear_eltwise_neon.c), chosen once (PIQC_ISA
 * forces). */
#ifndef PQ_QLINEAR_ELTWISE_H
#define PQ_QLINEAR_ELTWISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/ref/ref.h"

/* Parameters of one QLinearAdd: scales (finite, > 0), zero points, activation bounds, dtype. */
typedef struct pq_qadd_params {
    float sa, sb, sc;
    int32_t za, zb, zc;
    float lo, hi; /* activation clamp of the real sum (lo <= hi, not NaN) */
    bool is_u8;   /* u8 operands and result, else s8 (bytes as two's complement) */
    bool mul;     /* QLinearMul: r = fa * fb instead of fa + fb */
} pq_qadd_params;

/* y[i] = QLinearAdd(a[i], b_bcast ? b[0] : b[i]) for i < n, formula above. */
typedef void (*pq_qadd_fn)(const uint8_t *a, const uint8_t *b, size_t n, bool b_bcast,
                           const pq_qadd_params *p, uint8_t *y);

/* Row broadcast over a run of n elements starting at global element e0 (a and y point at it): b
 * holds one value per row of `inner` (>= 16) elements, element e reads b[e / inner]. Optional: one
 * pass across row boundaries instead of one add() call per row. */
typedef void (*pq_qadd_rows_fn)(const uint8_t *a, const uint8_t *b, size_t e0, size_t n,
                                size_t inner, const pq_qadd_params *p, uint8_t *y);

/* y[i] = lut[a[i]] for i < n (a 256-entry byte table). Where one operand is broadcast over rows
 * and a row, or a run of consecutive rows with the same B byte, holds at least PQ_QE_LUT_MIN
 * elements, the node runner builds that byte's table with add() over the bytes 0..255 (so its
 * entries are add()'s own results) and maps the run through it. */
typedef void (*pq_qlut_fn)(const uint8_t *a, size_t n, const uint8_t *lut, uint8_t *y);

/* The byte-at-a-time table lookup (the scalar and AVX2 tables' map: on AVX2 a 256-entry byte table
 * has no lookup faster than two loads and a store per byte, and that still beats add()'s
 * arithmetic on the runs that qualify: mobilenet_v3_small's QLinearMul 112 -> 88 us per run). */
void pq_qlut__portable(const uint8_t *a, size_t n, const uint8_t *lut, uint8_t *y);

/* Elements from which a run of rows goes through a table (a table costs 256 add() elements). */
#define PQ_QE_LUT_MIN 384

typedef struct pq_qeltwise_kernels {
    const char *name; /* "scalar", "avx2", "avx512", "neon" */
    pq_qadd_fn add;
    pq_qadd_rows_fn add_rows; /* NULL: add() per row */
    pq_qlut_fn map;           /* NULL: no table lookup faster than add() */
    /* QLinearGlobalAveragePool's plane sum: the integer sum of n (<= 65536) u8 bytes, or of n s8
     * bytes (is_u8 false); NULL: the SSE2 / portable one */
    int32_t (*gap_sum)(const uint8_t *x, int64_t n, bool is_u8);
} pq_qeltwise_kernels;

extern const pq_qeltwise_kernels pq_qeltwise_kernels_scalar;
extern const pq_qeltwise_kernels pq_qeltwise_kernels_avx2;
extern const pq_qeltwise_kernels pq_qeltwise_kernels_avx512;
/* pq_qeltwise_kernels_avx512 plus an AVX-512 VBMI table lookup (vpermi2b); also named "avx512",
 * what pq_qeltwise_kernels_for("avx512") returns on CPUs with VBMI. */
extern const pq_qeltwise_kernels pq_qeltwise_kernels_avx512vbmi;
extern const pq_qeltwise_kernels pq_qeltwise_kernels_neon; /* aarch64 builds only */

/* Kernels of one ISA by name, NULL when this build or CPU cannot run them ("avx512": the VBMI
 * variant when the CPU has VBMI). */
const pq_qeltwise_kernels *pq_qeltwise_kernels_for(const char *isa);
/* PIQC_ISA's kernels when available, else the best: avx512 > avx2 > neon > scalar. Never NULL. */
const pq_qeltwise_kernels *pq_qeltwise_kernels_get(void);

/* QLinearAdd / QLinearMul node runner with kernels k (NULL: pq_qeltwise_kernels_get()): UNSUPPORTED
 * (outputs and err untouched) outside the cases above, else OK; never allocates. Splits large
 * tensors over a->n_threads. */
enum pq_status pq_qlinear_add_run(const pq_qeltwise_kernels *k, const pq_kernel_args *a);

/* QLinearGlobalAveragePool on NCHW u8/s8 with per-tensor parameters (finite positive scales, a
 * plane of at most 2^24 / 256 elements so that its integer sum is exact in f32), planes split over
 * a->n_threads, plane sums by pq_qeltwise_kernels_get()'s gap_sum; the reference's formula
 * (backends/ref/ref_qlinear.c), bit-exact. UNSUPPORTED (outputs and err untouched) otherwise. */
enum pq_status pq_qlinear_gap_run(const pq_kernel_args *a);

/* The fast-table entries (QLinearAdd and QLinearMul; QLinearGlobalAveragePool). */
enum pq_status pq_fast_qlinear_add(const pq_kernel_args *a);
enum pq_status pq_fast_qlinear_gap(const pq_kernel_args *a);

#endif
