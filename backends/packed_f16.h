/* Kernels of PackedMatMul/PackedConv on f16 weights (format "f16"): y = x W^T with
 * W[r][c] = f32(h[r][c]) (IEEE binary16 bits, row-major); scalar, AVX2 + F16C, AVX-512. */
#ifndef PQ_PACKED_F16_H
#define PQ_PACKED_F16_H

#include <stdint.h>

/* Numerics, every ISA: acc = sum_c x[m][c] * f32(h[r][c]) in f32 (the f16 -> f32 widening is
 * exact: pq_f16_to_f32 in scalar code, vcvtph2ps in SIMD). Scalar: c in order, separate multiply
 * and add. SIMD: FMA into vector lanes, horizontal sum, scalar tail in order. Against
 * MatMul(x, f32(h)) the difference is f32 summation order only: |diff| <= cols * 2^-24 *
 * sum_c |x[c]| |f32(h[r][c])| (first order); tests assert 1e-5 of that sum. */
typedef struct pq_f16_kernels {
    const char *isa; /* "scalar", "avx2", "avx512" */
    /* y[r] for one activation row x (cols values); h is rows x cols. */
    void (*gemv)(const uint16_t *h, int64_t rows, int64_t cols, const float *x, float *y);
    /* y[m * rows + r] for M activation rows (M x cols). SIMD kernels widen pq_panel_rows(rows,
     * cols) rows at a time into panel (that many rows x cols floats) and reuse it for all M rows;
     * scalar ignores panel (may be NULL). */
    void (*gemm)(const uint16_t *h, int64_t rows, int64_t cols, const float *x, int64_t M, float *y,
                 float *panel);
} pq_f16_kernels;

/* Tables; an ISA's table is NULL-filled when not compiled in. */
extern const pq_f16_kernels pq_f16_kernels_scalar;
extern const pq_f16_kernels pq_f16_kernels_avx2;
extern const pq_f16_kernels pq_f16_kernels_avx512;

/* The table of a named ISA ("scalar", "avx2" (which includes F16C), "avx512") when compiled in
 * and supported by the CPU, else NULL. */
const pq_f16_kernels *pq_f16_kernels_for(const char *isa);

void pq_f16_gemv_ukernel__scalar(const uint16_t *h, int64_t rows, int64_t cols, const float *x,
                                 float *y);
void pq_f16_gemm_ukernel__scalar(const uint16_t *h, int64_t rows, int64_t cols, const float *x,
                                 int64_t M, float *y, float *panel);
void pq_f16_gemv_ukernel__avx2(const uint16_t *h, int64_t rows, int64_t cols, const float *x,
                               float *y);
void pq_f16_gemm_ukernel__avx2(const uint16_t *h, int64_t rows, int64_t cols, const float *x,
                               int64_t M, float *y, float *panel);
void pq_f16_gemv_ukernel__avx512(const uint16_t *h, int64_t rows, int64_t cols, const float *x,
                                 float *y);
void pq_f16_gemm_ukernel__avx512(const uint16_t *h, int64_t rows, int64_t cols, const float *x,
                                 int64_t M, float *y, float *panel);

#endif
