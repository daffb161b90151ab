/* Kernel contract for packed PiQ/Q weights and the Walsh-Hadamard transform: one function table
 * per ISA (scalar reference, AVX2, AVX-512, NEON), chosen once at run time (PIQC_ISA overrides). */
#ifndef PQ_QKERNELS_H
#define PQ_QKERNELS_H

#include <stdint.h>

#include "ir/packed.h"

/* Step multiplier of a format: (float)(PQ_PI / k) for PiQ (k = 4, 3), 1.0f for uniform Q3/Q2.
 * The step of a group is computed once as pq_f16_to_f32(a) * mult, in f32 (SPEC section 2). */
float pq_qformat_step_mult(enum pq_qformat f);

/* All kernels work on the SPEC row layout: per group of `group` weights (last one may be partial),
 * a little-endian f16 scale word then the packed codes (padded to 8 codes with q = 0).
 * Quantization of one value: v = w / step (a division), q = clamp(rne(v), -2^(b-1), 2^(b-1)-1),
 * NaN -> q = 0. Dequantized value: (float)q * step. */
typedef struct pq_qkernels {
    const char *isa; /* "scalar", "avx2", "avx512", "neon" */
    /* Quantizes one row of cols weights; scales[g] is the f16 scale word of group g (already
     * calibrated and clamped). Writes pq_packed_row_bytes(f, cols, group) bytes to dst. */
    void (*quantize_row)(enum pq_qformat f, const float *w, int64_t cols, int64_t group,
                         const uint16_t *scales, uint8_t *dst);
    /* Reconstructs one row of cols weights from its packed form. */
    void (*dequantize_row)(enum pq_qformat f, const uint8_t *src, int64_t cols, int64_t group,
                           float *dst);
    /* y[r] = sum_c W_hat[r][c] * x[c] for rows x cols packed W (rows contiguous, each
     * pq_packed_row_bytes long). f32 accumulation. */
    void (*gemv)(enum pq_qformat f, const uint8_t *w, int64_t rows, int64_t cols, int64_t group,
                 const float *x, float *y);
    /* Y[b][r] = sum_c W_hat[r][c] * X[b][c], X is batch x cols, Y is batch x rows (row-major). */
    void (*gemm)(enum pq_qformat f, const uint8_t *w, int64_t rows, int64_t cols, int64_t group,
                 const float *x, int64_t batch, float *y);
    /* In-place unnormalised Sylvester butterfly (SPEC section 6 order) on n = 2^m floats, then
     * multiply every element by scale. 8 <= n <= 65536. */
    void (*fwht)(float *x, int64_t n, float scale);
    /* fwht on each of rows contiguous vectors of length n. */
    void (*fwht_rows)(float *x, int64_t rows, int64_t n, float scale);
} pq_qkernels;

/* Kernel tables; an ISA's table is NULL-filled ({0}) when not compiled in. */
extern const pq_qkernels pq_qkernels_scalar;
extern const pq_qkernels pq_qkernels_avx2;
extern const pq_qkernels pq_qkernels_avx512;

/* The table for the best ISA the CPU supports, or the one PIQC_ISA names
 * (scalar|avx2|avx512|neon); decided once. Falls back to scalar, with a warning on stderr, when
 * PIQC_ISA names an ISA the CPU lacks. */
const pq_qkernels *pq_qkernels_get(void);
/* The table for a named ISA if the CPU supports it, else NULL (tests use it to sweep ISAs). */
const pq_qkernels *pq_qkernels_for(const char *isa);

#endif
