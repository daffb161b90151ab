/* AVX2/FMA kernel bodies for packed PiQ3/PiQ2/Q3/Q2 rows and the Walsh-Hadamard butterfly, as
 * static functions: included by qkernels_avx2.c (the AVX2 table) and by qkernels_avx512.c (which
 * reuses quantize/gemm and the 8-wide tails). Only include from a TU built with AVX2 flags. */
#ifndef PQ_QKERNELS_AVX2_IMPL_H
#define PQ_QKERNELS_AVX2_IMPL_H

#include <immintrin.h>
#include <string.h>

#include "backends/quant/quant.h"
#include "ir/packed.h"

#define PQ_INLINE static inline __attribute__((always_inline))

/* ---- small helpers ----------------------------------------------------------------------- */

PQ_INLINE uint32_t pq_ld32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

PQ_INLINE uint16_t pq_ld16(const uint8_t *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}

/* Step of a group: f16 scale word (exact F16C conversion, same value as pq_f16_to_f32) times the
 * format's multiplier, in f32 -- the pq_qstep evaluation. */
PQ_INLINE float pq_step(const uint8_t *p, float mult) {
    return _cvtsh_ss(pq_ld16(p)) * mult;
}

/* Lane mask with the first k (0..8) lanes set. */
PQ_INLINE __m256i pq_mask8(int64_t k) {
    static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(m + 8 - k));
}

PQ_INLINE float pq_hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Eight signed codes of the 8-code block at p as floats. bits = 3: the block is 3 bytes; the
 * 32-bit word is read from p - 1 (always inside the buffer: a block is preceded by the group's
 * scale word or by the previous block), so nothing past the block is touched. bits = 2: 2
 * bytes, read from p - 2. The low 3 bits of each shifted lane index the code table directly
 * (vpermps ignores the rest). */
PQ_INLINE __m256 pq_decode8(int bits, const uint8_t *p) {
    if (bits == 3) {
        const __m256i sh = _mm256_setr_epi32(8, 11, 14, 17, 20, 23, 26, 29);
        const __m256 tab = _mm256_setr_ps(-4.f, -3.f, -2.f, -1.f, 0.f, 1.f, 2.f, 3.f);
        __m256i w = _mm256_set1_epi32((int)pq_ld32(p - 1));
        return _mm256_permutevar8x32_ps(tab, _mm256_srlv_epi32(w, sh));
    } else {
        const __m256i sh = _mm256_setr_epi32(16, 18, 20, 22, 24, 26, 28, 30);
        const __m256 tab = _mm256_setr_ps(-2.f, -1.f, 0.f, 1.f, -2.f, -1.f, 0.f, 1.f);
        __m256i w = _mm256_set1_epi32((int)pq_ld32(p - 2));
        return _mm256_permutevar8x32_ps(tab, _mm256_srlv_epi32(w, sh));
    }
}

/* Unsigned codes u = q + 2^(bits-1) of 8 values (scalar pq_qcode semantics). */
PQ_INLINE __m256i pq_code8(int bits, __m256 w, __m256 vstep) {
    const __m256 lo = _mm256_set1_ps(bits == 3 ? -4.f : -2.f);
    const __m256 hi = _mm256_set1_ps(bits == 3 ? 3.f : 1.f);
    __m256 v = _mm256_div_ps(w, vstep);
    __m256 r = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm256_min_ps(_mm256_max_ps(r, lo), hi);
    r = _mm256_and_ps(r, _mm256_cmp_ps(v, v, _CMP_ORD_Q)); /* NaN -> 0 */
    return _mm256_add_epi32(_mm256_cvtps_epi32(r), _mm256_set1_epi32(bits == 3 ? 4 : 2));
}

/* u_i << (bits * i): the 8 codes of a block as disjoint bit fields. */
PQ_INLINE __m256i pq_fields8(int bits, __m256i u) {
    const __m256i sh3 = _mm256_setr_epi32(0, 3, 6, 9, 12, 15, 18, 21);
    const __m256i sh2 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    return _mm256_sllv_epi32(u, bits == 3 ? sh3 : sh2);
}

/* Writes one packed block (bits bytes) from its bit fields. */
PQ_INLINE void pq_store_block(int bits, __m256i fields, uint8_t *dst) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(fields), _mm256_extracti128_si256(fields, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    uint32_t word = (uint32_t)_mm_cvtsi128_si32(s);
    dst[0] = (uint8_t)word;
    dst[1] = (uint8_t)(word >> 8);
    if (bits == 3) dst[2] = (uint8_t)(word >> 16);
}

/* Writes four consecutive packed blocks (4 * bits bytes). */
PQ_INLINE void pq_store_block4(int bits, __m256i f0, __m256i f1, __m256i f2, __m256i f3,
                               uint8_t *dst) {
    __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(f0, f1), _mm256_hadd_epi32(f2, f3));
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    if (bits == 3) {
        const __m128i pick = _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
        s = _mm_shuffle_epi8(s, pick);
        _mm_storel_epi64((__m128i *)dst, s);
        uint32_t t = (uint32_t)_mm_extract_epi32(s, 2);
        memcpy(dst + 8, &t, 4);
    } else {
        const __m128i pick =
            _mm_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1);
        _mm_storel_epi64((__m128i *)dst, _mm_shuffle_epi8(s, pick));
    }
}

/* ---- quantize / dequantize ---------------------------------------------------------------- */

PQ_INLINE void pq_quantize_row_bits(int bits, enum pq_qformat f, const float *w, int64_t cols,
                                    int64_t group, const uint16_t *scales, uint8_t *dst) {
    int64_t ngroups = (cols + group - 1) / group;
    const float mult = pq_qformat_step_mult(f);
    for (int64_t g = 0; g < ngroups; g++) {
        const float *wg = w + g * group;
        int64_t n = cols - g * group < group ? cols - g * group : group;
        uint16_t a = scales[g];
        dst[0] = (uint8_t)(a & 0xFFu);
        dst[1] = (uint8_t)(a >> 8);
        dst += 2;
        __m256 vstep = _mm256_set1_ps(_cvtsh_ss(a) * mult);
        int64_t nb = n / 8, j = 0;
        for (; j + 4 <= nb; j += 4) {
            __m256i u0 = pq_fields8(bits, pq_code8(bits, _mm256_loadu_ps(wg + 8 * j), vstep));
            __m256i u1 = pq_fields8(bits, pq_code8(bits, _mm256_loadu_ps(wg + 8 * j + 8), vstep));
            __m256i u2 = pq_fields8(bits, pq_code8(bits, _mm256_loadu_ps(wg + 8 * j + 16), vstep));
            __m256i u3 = pq_fields8(bits, pq_code8(bits, _mm256_loadu_ps(wg + 8 * j + 24), vstep));
            pq_store_block4(bits, u0, u1, u2, u3, dst);
            dst += 4 * bits;
        }
        for (; j < nb; j++) {
            pq_store_block(
                bits, pq_fields8(bits, pq_code8(bits, _mm256_loadu_ps(wg + 8 * j), vstep)), dst);
            dst += bits;
        }
        int64_t rem = n - 8 * nb;
        if (rem) { /* padding lanes -> q = 0 */
            __m256i m = pq_mask8(rem);
            __m256i u = pq_code8(bits, _mm256_maskload_ps(wg + 8 * nb, m), vstep);
            u = _mm256_blendv_epi8(_mm256_set1_epi32(bits == 3 ? 4 : 2), u, m);
            pq_store_block(bits, pq_fields8(bits, u), dst);
            dst += bits;
        }
    }
}

static inline void pq_q_quantize_row_ukernel__avx2(enum pq_qformat f, const float *w, int64_t cols,
                                                   int64_t group, const uint16_t *scales,
                                                   uint8_t *dst) {
    if (cols <= 0 || group <= 0) return;
    if (pq_qformat_bits(f) == 3)
        pq_quantize_row_bits(3, f, w, cols, group, scales, dst);
    else
        pq_quantize_row_bits(2, f, w, cols, group, scales, dst);
}

/* Dequantizes codes of one group span: n values (blocks from codes) times step into out. */
PQ_INLINE void pq_dequant_span(int bits, const uint8_t *codes, float step, int64_t n, float *out) {
    __m256 vstep = _mm256_set1_ps(step);
    int64_t nb = n / 8, j = 0;
    for (; j + 4 <= nb; j += 4) {
        __m256 q0 = pq_decode8(bits, codes + (j + 0) * bits);
        __m256 q1 = pq_decode8(bits, codes + (j + 1) * bits);
        __m256 q2 = pq_decode8(bits, codes + (j + 2) * bits);
        __m256 q3 = pq_decode8(bits, codes + (j + 3) * bits);
        _mm256_storeu_ps(out + 8 * j, _mm256_mul_ps(q0, vstep));
        _mm256_storeu_ps(out + 8 * j + 8, _mm256_mul_ps(q1, vstep));
        _mm256_storeu_ps(out + 8 * j + 16, _mm256_mul_ps(q2, vstep));
        _mm256_storeu_ps(out + 8 * j + 24, _mm256_mul_ps(q3, vstep));
    }
    for (; j < nb; j++)
        _mm256_storeu_ps(out + 8 * j, _mm256_mul_ps(pq_decode8(bits, codes + j * bits), vstep));
    int64_t rem = n - 8 * nb;
    if (rem)
        _mm256_maskstore_ps(out + 8 * nb, pq_mask8(rem),
                            _mm256_mul_ps(pq_decode8(bits, codes + nb * bits), vstep));
}

static inline void pq_q_dequantize_row_ukernel__avx2(enum pq_qformat f, const uint8_t *src,
                                                     int64_t cols, int64_t group, float *dst) {
    if (cols <= 0 || group <= 0) return;
    int bits = pq_qformat_bits(f);
    int64_t ngroups = (cols + group - 1) / group;
    const float mult = pq_qformat_step_mult(f);
    for (int64_t g = 0; g < ngroups; g++) {
        int64_t n = cols - g * group < group ? cols - g * group : group;
        float step = pq_step(src, mult);
        if (bits == 3)
            pq_dequant_span(3, src + 2, step, n, dst + g * group);
        else
            pq_dequant_span(2, src + 2, step, n, dst + g * group);
        src += 2 + pq_packed_code_bytes(f, n);
    }
}

/* ---- fused dequant-GEMV ------------------------------------------------------------------- */

/* Software prefetch of the gemv weight streams: while a tile of R rows is read, the same
 * positions of the next tile (R * row_bytes further: rows are contiguous) are prefetched, so the
 * next tile is in cache when it starts. The R rows of a tile are R short sequential streams (a
 * packed row is ~0.8-13 KB), too short for the hardware prefetchers to ramp up. Measured on
 * 16384 x 8192 PiQ3 (1 thread, thread CPU time, median of 21): 9.98 -> 7.95 ms; 32768 x 2048:
 * 6.05 -> 4.08 ms. T1 (L2) so that tiles of long rows do not flush x out of L1. One prefetch per
 * row per PQ_GEMV_PF_BLOCKS blocks: 48 (PiQ3) / 32 (PiQ2) bytes, so every 64-byte line is
 * touched. */
#define PQ_GEMV_PF_BLOCKS 16

/* R consecutive rows (R <= 4) of the gemv: y[r] = sum over groups of step_g * sum_j q_j x_j.
 * Codes are decoded into registers and multiplied with x at once (the row never reaches
 * memory); x is loaded once for the R rows; two independent accumulators per row; the step
 * multiplies the group sum once. */
PQ_INLINE void pq_gemv_rows(int bits, int R, enum pq_qformat f, const uint8_t *w, size_t row_bytes,
                            int64_t cols, int64_t group, const float *x, float *y) {
    __m256 tot[4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        tot[r] = _mm256_setzero_ps();
    int64_t ngroups = (cols + group - 1) / group;
    const float mult = pq_qformat_step_mult(f);
    const uint8_t *p = w;
    const size_t pf = (size_t)R * row_bytes; /* prefetch distance: the next tile */
    for (int64_t g = 0; g < ngroups; g++) {
        int64_t n = cols - g * group < group ? cols - g * group : group;
        const float *xg = x + g * group;
        const uint8_t *c[4];
        __m256 acc0[4], acc1[4];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            c[r] = p + (size_t)r * row_bytes + 2;
            acc0[r] = _mm256_setzero_ps();
            acc1[r] = _mm256_setzero_ps();
        }
        int64_t nb = n / 8, j = 0;
        while (j + 2 <= nb) {
            int64_t jend = j + PQ_GEMV_PF_BLOCKS < nb ? j + PQ_GEMV_PF_BLOCKS : nb;
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                _mm_prefetch((const char *)(c[r] + j * bits + pf), _MM_HINT_T1);
            for (; j + 2 <= jend; j += 2) {
                __m256 x0 = _mm256_loadu_ps(xg + 8 * j);
                __m256 x1 = _mm256_loadu_ps(xg + 8 * j + 8);
#pragma GCC unroll 4
                for (int r = 0; r < R; r++) {
                    acc0[r] = _mm256_fmadd_ps(pq_decode8(bits, c[r] + j * bits), x0, acc0[r]);
                    acc1[r] = _mm256_fmadd_ps(pq_decode8(bits, c[r] + (j + 1) * bits), x1, acc1[r]);
                }
            }
        }
        if (j < nb) {
            __m256 x0 = _mm256_loadu_ps(xg + 8 * j);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                acc0[r] = _mm256_fmadd_ps(pq_decode8(bits, c[r] + j * bits), x0, acc0[r]);
        }
        int64_t rem = n - 8 * nb;
        if (rem) {
            __m256 x0 = _mm256_maskload_ps(xg + 8 * nb, pq_mask8(rem));
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                acc1[r] = _mm256_fmadd_ps(pq_decode8(bits, c[r] + nb * bits), x0, acc1[r]);
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m256 vstep = _mm256_set1_ps(pq_step(p + (size_t)r * row_bytes, mult));
            tot[r] = _mm256_fmadd_ps(_mm256_add_ps(acc0[r], acc1[r]), vstep, tot[r]);
        }
        p += 2 + (size_t)bits * (size_t)((n + 7) / 8);
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        y[r] = pq_hsum8(tot[r]);
}

PQ_INLINE void pq_gemv_bits(int bits, enum pq_qformat f, const uint8_t *w, int64_t rows,
                            int64_t cols, int64_t group, const float *x, float *y) {
    size_t row_bytes = pq_packed_row_bytes(f, cols, group);
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4)
        pq_gemv_rows(bits, 4, f, w + (size_t)r * row_bytes, row_bytes, cols, group, x, y + r);
    for (; r < rows; r++)
        pq_gemv_rows(bits, 1, f, w + (size_t)r * row_bytes, row_bytes, cols, group, x, y + r);
}

static inline void pq_q_gemv_ukernel__avx2(enum pq_qformat f, const uint8_t *w, int64_t rows,
                                           int64_t cols, int64_t group, const float *x, float *y) {
    if (rows <= 0 || cols <= 0 || group <= 0) return;
    if (pq_qformat_bits(f) == 3)
        pq_gemv_bits(3, f, w, rows, cols, group, x, y);
    else
        pq_gemv_bits(2, f, w, rows, cols, group, x, y);
}

/* ---- blocked dequant-GEMM ----------------------------------------------------------------- */

/* Y = X W_hat^T as a register-blocked GEMM on a small f32 panel: NR (<= 16) weight rows x KC
 * columns are dequantized once into a k-major panel P[k][16] (each value q * step exactly as
 * dequantize_row), which stays in L1 while every block of PQ_GEMM_MR activation rows streams
 * past it. The panel is decoded straight into k-major order: one 32-bit gather per packed block
 * of 8 rows gives the codes of 8 columns for 8 rows. The whole f32 weight is never
 * materialised. Each output is one FMA chain over k in column order (the scalar reference
 * order, with fused multiply-adds), started from Y when a later column chunk continues it. */
#define PQ_GEMM_MR 6    /* activation rows per micro-kernel: 6 x 2 ymm accumulators */
#define PQ_GEMM_KC 256  /* columns per panel: 256 x 16 floats = 16 KB */

/* Offsets of the packed rows r0 .. r0 + 7 from the panel's first row, rows past nr clamped to
 * the last valid one (decoded and ignored: the micro-kernel masks them out). */
PQ_INLINE __m256i pq_row_offsets8(int64_t nr, size_t row_bytes) {
    __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    lane = _mm256_min_epi32(lane, _mm256_set1_epi32((int)(nr - 1)));
    return _mm256_mullo_epi32(lane, _mm256_set1_epi32((int)row_bytes));
}

/* Decodes columns [c0, c0 + len) (c0 a multiple of 8) of nr (1..8) rows starting at w into
 * P[k][0..8) (row stride ldp floats); whole 8-blocks are written (padding codes are q = 0). */
PQ_INLINE void pq_panel_decode8(int bits, const uint8_t *w, int64_t nr, size_t row_bytes,
                                int64_t cols, int64_t group, size_t group_bytes, float mult,
                                int64_t c0, int64_t len, float *P, int64_t ldp) {
    const __m256i off = pq_row_offsets8(nr, row_bytes);
    const __m256 tab3 = _mm256_setr_ps(-4.f, -3.f, -2.f, -1.f, 0.f, 1.f, 2.f, 3.f);
    const __m256 tab2 = _mm256_setr_ps(-2.f, -1.f, 0.f, 1.f, -2.f, -1.f, 0.f, 1.f);
    const __m256 vmult = _mm256_set1_ps(mult);
    int64_t c = c0, end = c0 + len;
    while (c < end) {
        int64_t g = c / group, gs = g * group;
        int64_t ge = gs + group < cols ? gs + group : cols;
        int64_t e = ge < end ? ge : end;
        const uint8_t *gp = w + (size_t)g * group_bytes;
        /* the f16 scale words of the 8 rows (the low half of a 32-bit gather) */
        __m256i sw = _mm256_i32gather_epi32((const int *)(const void *)gp, off, 1);
        sw = _mm256_and_si256(sw, _mm256_set1_epi32(0xFFFF));
        __m128i s16 = _mm_packus_epi32(_mm256_castsi256_si128(sw), _mm256_extracti128_si256(sw, 1));
        __m256 vstep = _mm256_mul_ps(_mm256_cvtph_ps(s16), vmult);
        const uint8_t *bp = gp + 2 + (size_t)((c - gs) / 8) * (size_t)bits;
        for (; c < e; c += 8, bp += bits) {
            float *o = P + (c - c0) * ldp;
            if (bits == 3) {
                __m256i wd = _mm256_i32gather_epi32((const int *)(const void *)(bp - 1), off, 1);
#pragma GCC unroll 8
                for (int i = 0; i < 8; i++) {
                    __m256 q = _mm256_permutevar8x32_ps(tab3, _mm256_srli_epi32(wd, 8 + 3 * i));
                    _mm256_store_ps(o + i * ldp, _mm256_mul_ps(q, vstep));
                }
            } else {
                __m256i wd = _mm256_i32gather_epi32((const int *)(const void *)(bp - 2), off, 1);
#pragma GCC unroll 8
                for (int i = 0; i < 8; i++) {
                    __m256 q = _mm256_permutevar8x32_ps(tab2, _mm256_srli_epi32(wd, 16 + 2 * i));
                    _mm256_store_ps(o + i * ldp, _mm256_mul_ps(q, vstep));
                }
            }
        }
    }
}

/* Y[m][0..nr) (+)= sum_k X[m][k] P[k][0..nr) for MR rows m, NV (1, 2) vectors of 8 panel
 * columns; masks m0/m1 select the valid lanes of each vector. */
PQ_INLINE void pq_gemm_ukr8(int NV, int MR, const float *P, int64_t ldp, const float *x,
                            int64_t ldx, int64_t len, float *y, int64_t ldy, __m256i m0,
                            __m256i m1, int accumulate) {
    __m256 acc[PQ_GEMM_MR][2];
#pragma GCC unroll 6
    for (int m = 0; m < MR; m++) {
        acc[m][0] = accumulate ? _mm256_maskload_ps(y + m * ldy, m0) : _mm256_setzero_ps();
        if (NV == 2)
            acc[m][1] = accumulate ? _mm256_maskload_ps(y + m * ldy + 8, m1) : _mm256_setzero_ps();
    }
    for (int64_t k = 0; k < len; k++) {
        __m256 w0 = _mm256_load_ps(P + k * ldp);
        __m256 w1 = NV == 2 ? _mm256_load_ps(P + k * ldp + 8) : w0;
#pragma GCC unroll 6
        for (int m = 0; m < MR; m++) {
            __m256 xb = _mm256_broadcast_ss(x + m * ldx + k);
            acc[m][0] = _mm256_fmadd_ps(w0, xb, acc[m][0]);
            if (NV == 2) acc[m][1] = _mm256_fmadd_ps(w1, xb, acc[m][1]);
        }
    }
#pragma GCC unroll 6
    for (int m = 0; m < MR; m++) {
        _mm256_maskstore_ps(y + m * ldy, m0, acc[m][0]);
        if (NV == 2) _mm256_maskstore_ps(y + m * ldy + 8, m1, acc[m][1]);
    }
}

PQ_INLINE void pq_gemm_ukr8_nv(int NV, const float *P, int64_t ldp, const float *x, int64_t ldx,
                               int64_t len, int64_t batch, float *y, int64_t ldy, __m256i m0,
                               __m256i m1, int acc) {
    int64_t m = 0;
    for (; m + PQ_GEMM_MR <= batch; m += PQ_GEMM_MR)
        pq_gemm_ukr8(NV, PQ_GEMM_MR, P, ldp, x + m * ldx, ldx, len, y + m * ldy, ldy, m0, m1, acc);
    const float *xm = x + m * ldx;
    float *ym = y + m * ldy;
    switch (batch - m) {
    case 5: pq_gemm_ukr8(NV, 5, P, ldp, xm, ldx, len, ym, ldy, m0, m1, acc); break;
    case 4: pq_gemm_ukr8(NV, 4, P, ldp, xm, ldx, len, ym, ldy, m0, m1, acc); break;
    case 3: pq_gemm_ukr8(NV, 3, P, ldp, xm, ldx, len, ym, ldy, m0, m1, acc); break;
    case 2: pq_gemm_ukr8(NV, 2, P, ldp, xm, ldx, len, ym, ldy, m0, m1, acc); break;
    case 1: pq_gemm_ukr8(NV, 1, P, ldp, xm, ldx, len, ym, ldy, m0, m1, acc); break;
    default: break;
    }
}

PQ_INLINE void pq_gemm_bits(int bits, enum pq_qformat f, const uint8_t *w, int64_t rows,
                            int64_t cols, int64_t group, const float *x, int64_t batch, float *y) {
    _Alignas(64) float P[PQ_GEMM_KC * 16];
    size_t row_bytes = pq_packed_row_bytes(f, cols, group);
    size_t group_bytes = 2 + pq_packed_code_bytes(f, group);
    const float mult = pq_qformat_step_mult(f);
    for (int64_t r0 = 0; r0 < rows; r0 += 16) {
        int64_t nr = rows - r0 < 16 ? rows - r0 : 16;
        int NV = nr > 8 ? 2 : 1;
        int64_t ldp = 8 * NV;
        __m256i m0 = pq_mask8(nr < 8 ? nr : 8), m1 = pq_mask8(nr > 8 ? nr - 8 : 0);
        const uint8_t *wr = w + (size_t)r0 * row_bytes;
        for (int64_t c0 = 0; c0 < cols; c0 += PQ_GEMM_KC) {
            int64_t len = cols - c0 < PQ_GEMM_KC ? cols - c0 : PQ_GEMM_KC;
            pq_panel_decode8(bits, wr, nr < 8 ? nr : 8, row_bytes, cols, group, group_bytes, mult,
                             c0, len, P, ldp);
            if (NV == 2) {
                pq_panel_decode8(bits, wr + 8 * row_bytes, nr - 8, row_bytes, cols, group,
                                 group_bytes, mult, c0, len, P + 8, ldp);
                pq_gemm_ukr8_nv(2, P, ldp, x + c0, cols, len, batch, y + r0, rows, m0, m1, c0 > 0);
            } else {
                pq_gemm_ukr8_nv(1, P, ldp, x + c0, cols, len, batch, y + r0, rows, m0, m1, c0 > 0);
            }
        }
    }
}

static inline void pq_q_gemm_ukernel__avx2(enum pq_qformat f, const uint8_t *w, int64_t rows,
                                           int64_t cols, int64_t group, const float *x,
                                           int64_t batch, float *y) {
    if (rows <= 0 || cols <= 0 || group <= 0 || batch <= 0) return;
    if (batch == 1) {
        pq_q_gemv_ukernel__avx2(f, w, rows, cols, group, x, y);
        return;
    }
    if (pq_qformat_bits(f) == 3)
        pq_gemm_bits(3, f, w, rows, cols, group, x, batch, y);
    else
        pq_gemm_bits(2, f, w, rows, cols, group, x, batch, y);
}

/* ---- Walsh-Hadamard butterfly ------------------------------------------------------------- */

/* Stages h = 1, 2, 4 inside one vector of 8: lane i < partner gets v + s (a + b), the partner
 * lane gets s - v (a - b), exactly the scalar operations. */
PQ_INLINE __m256 pq_fwht8(__m256 v) {
    __m256 s = _mm256_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1));
    v = _mm256_blend_ps(_mm256_add_ps(v, s), _mm256_sub_ps(s, v), 0xAA);
    s = _mm256_permute_ps(v, _MM_SHUFFLE(1, 0, 3, 2));
    v = _mm256_blend_ps(_mm256_add_ps(v, s), _mm256_sub_ps(s, v), 0xCC);
    s = _mm256_permute2f128_ps(v, v, 0x01);
    return _mm256_blend_ps(_mm256_add_ps(v, s), _mm256_sub_ps(s, v), 0xF0);
}

/* One pass over x doing L (0..3) consecutive stages h0, 2 h0, .., h0 2^(L-1) (h0 >= 8) on
 * 2^L vectors held in registers; inreg first applies stages 1, 2, 4 (then h0 = 8); scale != 0
 * multiplies the result (last pass). Each element sees the scalar operations in scalar order. */
PQ_INLINE void pq_fwht_pass(int L, int inreg, float *x, int64_t n, int64_t h0, int last,
                            float scale) {
    const int V = 1 << L;
    const int64_t span = h0 << L;
    const __m256 vs = _mm256_set1_ps(scale);
    for (int64_t j = 0; j < n; j += span) {
        for (int64_t i = 0; i < h0; i += 8) {
            float *base = x + j + i;
            __m256 v[8];
#pragma GCC unroll 8
            for (int t = 0; t < V; t++) {
                v[t] = _mm256_loadu_ps(base + t * h0);
                if (inreg) v[t] = pq_fwht8(v[t]);
            }
#pragma GCC unroll 3
            for (int s = 0; s < L; s++) {
                int d = 1 << s;
#pragma GCC unroll 8
                for (int t = 0; t < V; t++) {
                    if (t & d) continue;
                    __m256 a = v[t], b = v[t + d];
                    v[t] = _mm256_add_ps(a, b);
                    v[t + d] = _mm256_sub_ps(a, b);
                }
            }
#pragma GCC unroll 8
            for (int t = 0; t < V; t++) {
                __m256 o = last ? _mm256_mul_ps(v[t], vs) : v[t];
                _mm256_storeu_ps(base + t * h0, o);
            }
        }
    }
}

static inline void pq_f32_fwht_ukernel__avx2(float *x, int64_t n, float scale) {
    if (n < 8) { /* outside the kernel contract: fall back to the reference */
        pq_fwht_ukernel__scalar(x, n, scale);
        return;
    }
    int m = 0;
    while (((int64_t)1 << m) < n)
        m++;
    int left = m - 3; /* stages with h >= 8 */
    int L = left < 3 ? left : 3;
    int last = (left - L) == 0;
    switch (L) {
    case 0:
        pq_fwht_pass(0, 1, x, n, 8, last, scale);
        break;
    case 1:
        pq_fwht_pass(1, 1, x, n, 8, last, scale);
        break;
    case 2:
        pq_fwht_pass(2, 1, x, n, 8, last, scale);
        break;
    default:
        pq_fwht_pass(3, 1, x, n, 8, last, scale);
        break;
    }
    int64_t h0 = (int64_t)8 << L;
    left -= L;
    while (left > 0) {
        L = left < 3 ? left : 3;
        last = (left - L) == 0;
        switch (L) {
        case 1:
            pq_fwht_pass(1, 0, x, n, h0, last, scale);
            break;
        case 2:
            pq_fwht_pass(2, 0, x, n, h0, last, scale);
            break;
        default:
            pq_fwht_pass(3, 0, x, n, h0, last, scale);
            break;
        }
        h0 <<= L;
        left -= L;
    }
}

static inline void pq_f32_fwht_rows_ukernel__avx2(float *x, int64_t rows, int64_t n, float scale) {
    for (int64_t r = 0; r < rows; r++)
        pq_f32_fwht_ukernel__avx2(x + r * n, n, scale);
}

#endif
