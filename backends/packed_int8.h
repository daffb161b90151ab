/* Kernels of PackedMatMul/PackedConv on int8 weights (format "int8"): y = x W^T with
 * W[r][c] = q[r][c] * s[r] (i8 codes row-major, one f32 scale per row); scalar, AVX2, AVX-512. */
#ifndef PQ_PACKED_INT8_H
#define PQ_PACKED_INT8_H

#include <stdint.h>

/* Numerics, every ISA: y[m][r] = s[r] * acc[m][r] with acc = sum_c x[m][c] * (float)q[r][c]
 * accumulated in f32, i.e. the row sum first, the scale once at the end (never q * s per weight).
 * Scalar: c = 0, 1, ..., cols - 1 in order, separate multiply and add. SIMD: FMA into vector
 * lanes, a horizontal sum, then the scalar tail (cols mod the width) in order. Against
 * MatMul(x, q * s) in f32 the difference is f32 rounding only: |diff| <= (cols + 2) * 2^-24 *
 * sum_c |x[c]| |q[r][c] s[r]| (first order); tests assert 1e-5 of that sum. No bias, no
 * activation (the op driver adds them). */
typedef struct pq_w8_kernels {
    const char *isa; /* "scalar", "avx2", "avx512" */
    /* y[r] for one activation row x (cols values), r < rows; q is rows x cols, s has rows. */
    void (*gemv)(const int8_t *q, const float *s, int64_t rows, int64_t cols, const float *x,
                 float *y);
    /* y[m * rows + r] for M activation rows x (M x cols, row-major). The SIMD kernels widen
     * pq_panel_rows(rows, cols) rows of codes at a time to f32 (exact) into panel, which must
     * hold that many rows x cols floats, and reuse the panel for all M rows; scalar ignores
     * panel (may be NULL). */
    void (*gemm)(const int8_t *q, const float *s, int64_t rows, int64_t cols, const float *x,
                 int64_t M, float *y, float *panel);
} pq_w8_kernels;

/* Tables; an ISA's table is NULL-filled when not compiled in. */
extern const pq_w8_kernels pq_w8_kernels_scalar;
extern const pq_w8_kernels pq_w8_kernels_avx2;
extern const pq_w8_kernels pq_w8_kernels_avx512;

/* The table of a named ISA ("scalar", "avx2", "avx512") when it is compiled in and the CPU
 * supports it, else NULL (also for unknown names, e.g. "neon"). */
const pq_w8_kernels *pq_w8_kernels_for(const char *isa);

void pq_w8_gemv_ukernel__scalar(const int8_t *q, const float *s, int64_t rows, int64_t cols,
                                const float *x, float *y);
void pq_w8_gemm_ukernel__scalar(const int8_t *q, const float *s, int64_t rows, int64_t cols,
                                const float *x, int64_t M, float *y, float *panel);
void pq_w8_gemv_ukernel__avx2(const int8_t *q, const float *s, int64_t rows, int64_t cols,
                              const float *x, float *y);
void pq_w8_gemm_ukernel__avx2(const int8_t *q, const float *s, int64_t rows, int64_t cols,
                              const float *x, int64_t M, float *y, float *panel);
void pq_w8_gemv_ukernel__avx512(const int8_t *q, const float *s, int64_t rows, int64_t cols,
                                const float *x, float *y);
void pq_w8_gemm_ukernel__avx512(const int8_t *q, const float *s, int64_t rows, int64_t cols,
                                const float *x, int64_t M, float *y, float *panel);

#endif
