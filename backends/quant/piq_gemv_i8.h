/* Integer-activation GEMV on packed PiQ3/PiQ2/Q3/Q2 weights: activations quantized per weight
 * group to int8, one exact i32 dot product per (row, group), one f32 multiply-add per group.
 * Scalar reference, AVX2 (vpmaddubsw), AVX-VNNI and AVX-512 VNNI+VBMI (vpdpbusd), NEON (sdot). */
#ifndef PQ_PIQ_GEMV_I8_H
#define PQ_PIQ_GEMV_I8_H

#include <stdint.h>

#include "ir/packed.h"

/* The numbers (every ISA computes exactly these; outputs are bit-identical to the scalar
 * reference, not merely close):
 *
 * Activation blocks. x (cols floats) is cut at the weight group edges: block g holds columns
 * [g G, g G + n_g) with n_g = min(G, cols - g G). Per block, in f32:
 *   amax   = max |x_j|                                   (exact; order-free)
 *   s_g    = amax / 127.0f                               (one f32 division)
 *   xq_j   = (int8) clamp(rne(x_j / s_g), -127, 127)     (an f32 division per element)
 * with two special cases: amax == 0 or s_g == 0 (underflow) -> s_g = 0 and xq = 0; a NaN or
 * infinite x_j in the block -> s_g = NaN and xq = 0 (so every output reading the block is NaN).
 * sum_g = sum_j xq_j (i32) is kept for the kernels' unsigned-code correction.
 *
 * Per output row r:
 *   acc = +0.0f
 *   for g = 0, 1, ...:  d = sum_j q_rj * xq_j      (i32, exact: |d| <= 4 * 127 * n_g)
 *                       c = step_rg * s_g          (step_rg = pq_qstep(f, scale word), f32)
 *                       t = (float)d * c           (int -> float rounds to nearest even)
 *                       acc = acc + t              (no FMA anywhere)
 *   y[r] = acc
 * The SIMD kernels compute d as sum_j u_rj * xq_j - 2^(bits-1) * sum_g with the stored unsigned
 * codes u = q + 2^(bits-1) (exact in i32, so the same d), and evaluate c, t and acc with the same
 * f32 operations in the same order, lane per row. Groups longer than PQ_PIQ_I8_MAX_GROUP weights
 * are not supported (i32 headroom): pq_piq_i8_supported says so and callers keep the f32 kernel. */

#define PQ_PIQ_I8_MAX_GROUP ((int64_t)1 << 21)
#define PQ_PIQ_I8_MAX_COLS ((int64_t)1 << 26) /* row offsets of a 16-row tile stay in i32 */
#define PQ_PIQ_I8_XALIGN 64 /* each activation block starts on and is zero-padded to 64 bytes */

/* Quantized activation vector of one row of x: nblocks blocks of stride bytes each (block g at
 * q + g * stride, n_g codes then zeros up to stride), plus per-block scale and code sum. */
typedef struct pq_piq_i8_act {
    int64_t cols, group; /* group: the weight group size G (> 0) */
    int64_t nblocks, stride;
    int8_t *q;
    float *scale;
    int32_t *sum;
} pq_piq_i8_act;

/* Whether the integer path can run f with this group (f any packed format; 0 < cols <=
 * PQ_PIQ_I8_MAX_COLS, 0 < group, and min(group, cols) <= PQ_PIQ_I8_MAX_GROUP). */
int pq_piq_i8_supported(enum pq_qformat f, int64_t cols, int64_t group);

/* Bytes of the buffer pq_piq_i8_act_init carves one quantized row out of (codes, scales, sums,
 * 64-byte alignment slack), for cols > 0 and group > 0. */
size_t pq_piq_i8_act_bytes(int64_t cols, int64_t group);
/* Lays a quantized row out in buf (pq_piq_i8_act_bytes(cols, group) bytes, any alignment). */
void pq_piq_i8_act_init(pq_piq_i8_act *a, int64_t cols, int64_t group, void *buf);
/* Quantizes x[0..cols) into a (laid out by pq_piq_i8_act_init with the same cols and group) by
 * the rule above; the zero padding of every block is written too. */
void pq_piq_i8_quantize(const float *x, pq_piq_i8_act *a);

/* y[r] = the integer-path GEMV of rows x cols packed W (rows contiguous, each
 * pq_packed_row_bytes long, SPEC layout) with the quantized activation a (a->cols == cols,
 * a->group == group). Reads nothing outside the rows * row_bytes weight bytes. rows <= 0 or
 * cols <= 0 write nothing. */
typedef void (*pq_piq_i8_gemv_fn)(enum pq_qformat f, const uint8_t *w, int64_t rows, int64_t cols,
                                  int64_t group, const pq_piq_i8_act *a, float *y);

typedef struct pq_piq_i8_kernels {
    const char *isa; /* "scalar", "avx2", "avxvnni", "avx512", "neon" */
    pq_piq_i8_gemv_fn gemv;
} pq_piq_i8_kernels;

void pq_piq_gemv_i8_ukernel__scalar(enum pq_qformat f, const uint8_t *w, int64_t rows, int64_t cols,
                                    int64_t group, const pq_piq_i8_act *a, float *y);

#if defined(__aarch64__)
/* The two NEON kernels behind pq_piq_i8_kernels_neon (backends/arm/piq_gemv_i8_neon.c), for the
 * NEON test: widening multiplies (any aarch64) and sdot (only when pq_piq_i8_neon_has_dot()). */
void pq_piq_gemv_i8_ukernel__neon(enum pq_qformat f, const uint8_t *w, int64_t rows, int64_t cols,
                                  int64_t group, const pq_piq_i8_act *a, float *y);
void pq_piq_gemv_i8_ukernel__neondot(enum pq_qformat f, const uint8_t *w, int64_t rows,
                                     int64_t cols, int64_t group, const pq_piq_i8_act *a, float *y);
int pq_piq_i8_neon_has_dot(void);
#endif

/* The kernels of a named ISA when this build and CPU run them, else NULL. "avx512" needs AVX-512
 * F/BW/VL/DQ + VNNI + VBMI; "avxvnni" AVX2 + AVX-VNNI; "neon" aarch64 (sdot when the CPU has the
 * dot-product extension, else widening multiplies). */
const pq_piq_i8_kernels *pq_piq_i8_kernels_for(const char *isa);
/* The kernels PIQC_ISA names when available, else the best: avx512 > avxvnni > avx2 > neon >
 * scalar. Decided once; never NULL. */
const pq_piq_i8_kernels *pq_piq_i8_kernels_get(void);

/* Per-ISA tables (x86: backends/x86/piq_gemv_i8_*.c; aarch64: backends/arm/piq_gemv_i8_neon.c).
 * A table whose gemv is NULL was not compiled in. */
extern const pq_piq_i8_kernels pq_piq_i8_kernels_scalar;
extern const pq_piq_i8_kernels pq_piq_i8_kernels_avx2;
extern const pq_piq_i8_kernels pq_piq_i8_kernels_avxvnni;
extern const pq_piq_i8_kernels pq_piq_i8_kernels_avx512;
extern const pq_piq_i8_kernels pq_piq_i8_kernels_neon;

#endif
