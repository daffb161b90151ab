/* Body of the 256-bit integer-activation PiQ GEMV shared by the AVX2 (vpmaddubsw + vpmaddwd) and
 * AVX-VNNI (vpdpbusd) tables: 32 codes per step decoded to bytes with 16-bit multiplies, 4 rows at
 * a time. Include only from a TU built with AVX2 flags, after defining PQ_I8Y_VNNI (0 or 1). */
#ifndef PQ_PIQ_GEMV_I8_AVX2_IMPL_H
#define PQ_PIQ_GEMV_I8_AVX2_IMPL_H

#include <immintrin.h>
#include <string.h>

#include "backends/quant/piq_gemv_i8.h"
#include "backends/quant/quant.h"

#define PQ_I8Y_FN static inline __attribute__((always_inline))
#define PQ_I8Y_ROWS 4
#ifndef PQ_I8Y_PF_TILES
#define PQ_I8Y_PF_TILES 2 /* the tile this many tiles ahead is prefetched */
#endif
#define PQ_I8Y_FLUSH 8 /* maddubs steps summed in i16 before widening: 8 * 2 * 7 * 127 < 2^15 */

/* 16 bytes from src, or the part of them before end (zeros after) near the end of the weights. */
PQ_I8Y_FN __m128i pq_i8y_load16(const uint8_t *src, const uint8_t *end) {
    if (src + 16 <= end) return _mm_loadu_si128((const __m128i *)src);
    uint8_t tmp[16] = {0};
    if (end > src) memcpy(tmp, src, (size_t)(end - src));
    return _mm_loadu_si128((const __m128i *)tmp);
}

/* Unsigned codes (0 .. 2^bits - 1) of the 32 codes at c as bytes in natural order. The 16 bytes
 * from c - 1 (the scale word or the previous block precede every step) go to both 128-bit
 * halves; 16-bit lane m takes a 2-byte window for code 2m (even) and one for code 2m+1 (odd).
 * Even: mulhi by 2^(16 - s) is a right shift by s, leaving the code in the low byte; odd: mullo
 * by 2^(8 - s) moves it to bit 8 (the high byte). Window starts and s per lane: tables below
 * (bits 3 repeats every 8 codes / 3 bytes; bits 2 every 4 codes / 1 byte). */
PQ_I8Y_FN __m256i pq_i8y_decode(int bits, const uint8_t *c, const uint8_t *end) {
    /* a broadcast load (a load-port uop; broadcasting a register costs a shuffle-port one,
     * the port the decode is bound by) except near the end of the weights (end NULL: the
     * caller knows the 16 bytes are inside them) */
    __m256i v = !end || c - 1 + 16 <= end
                    ? _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(c - 1)))
                    : _mm256_broadcastsi128_si256(pq_i8y_load16(c - 1, end));
    __m256i ie, io, me, mo;
    if (bits == 3) {
        ie = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 3, 4, 4, 5, 4, 5, 5, 6, 6, 7, 7, 8, 7, 8, 8,
                              9, 9, 10, 10, 11, 10, 11, 11, 12);
        io = _mm256_setr_epi8(1, 2, 2, 3, 2, 3, 3, 4, 4, 5, 5, 6, 5, 6, 6, 7, 7, 8, 8, 9, 8, 9, 9,
                              10, 10, 11, 11, 12, 11, 12, 12, 13);
        me = _mm256_setr_epi16(256, 1024, 16, 64, 256, 1024, 16, 64, 256, 1024, 16, 64, 256, 1024,
                               16, 64);
        mo = _mm256_setr_epi16(32, 128, 2, 8, 32, 128, 2, 8, 32, 128, 2, 8, 32, 128, 2, 8);
    } else {
        ie = _mm256_setr_epi8(0, 1, 0, 1, 1, 2, 1, 2, 2, 3, 2, 3, 3, 4, 3, 4, 4, 5, 4, 5, 5, 6, 5,
                              6, 6, 7, 6, 7, 7, 8, 7, 8);
        io = _mm256_setr_epi8(1, 2, 1, 2, 2, 3, 2, 3, 3, 4, 3, 4, 4, 5, 4, 5, 5, 6, 5, 6, 6, 7, 6,
                              7, 7, 8, 7, 8, 8, 9, 8, 9);
        me = _mm256_setr_epi16(256, 16, 256, 16, 256, 16, 256, 16, 256, 16, 256, 16, 256, 16, 256,
                               16);
        mo = _mm256_setr_epi16(64, 4, 64, 4, 64, 4, 64, 4, 64, 4, 64, 4, 64, 4, 64, 4);
    }
    __m256i lo = _mm256_mulhi_epu16(_mm256_shuffle_epi8(v, ie), me);
    __m256i hi = _mm256_mullo_epi16(_mm256_shuffle_epi8(v, io), mo);
    __m256i r = _mm256_blendv_epi8(lo, hi, _mm256_set1_epi16((short)0x8000));
    return _mm256_and_si256(r, _mm256_set1_epi8((char)((1 << bits) - 1)));
}

/* The four i32 sums of a[0..4) in the lanes of one vector. */
PQ_I8Y_FN __m128i pq_i8y_reduce4(const __m256i a[4]) {
    __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/* y[0 .. R) for rows w, w + row_bytes, ... (R = 1 or 4); end: one past the weights. The rows are
 * read group by group (R interleaved streams), so the tile prefetches the bytes [pf, pf_end) of
 * a later tile into L2 as one linear stream, an equal share per group. */
PQ_I8Y_FN void pq_i8y_tile_body(int bits, int R, const uint8_t *w, size_t row_bytes,
                                const uint8_t *end, int64_t cols, int64_t group, float mult,
                                const pq_piq_i8_act *a, float *y, const uint8_t *pf,
                                const uint8_t *pf_end) {
    const int sb = bits * 4; /* bytes per 32-code step */
    const int32_t off = 1 << (bits - 1);
    const __m128 vmult = _mm_set1_ps(mult);
    __m128 yacc = _mm_setzero_ps();
    const uint8_t *p = w;
    size_t pf_step =
        pf < pf_end ? ((size_t)(pf_end - pf) / (size_t)a->nblocks + 127) & ~(size_t)63 : 0;
    for (int64_t g = 0; g < a->nblocks; g++) {
        for (const uint8_t *q = pf; q < pf + pf_step && q < pf_end; q += 64)
            _mm_prefetch((const char *)q, _MM_HINT_T1);
        pf += pf_step;
        int64_t n = cols - g * group < group ? cols - g * group : group;
        int64_t cbytes = (int64_t)bits * ((n + 7) / 8);
        int64_t nch = (n + 31) / 32;
        const int8_t *xg = a->q + g * a->stride;
        __m256i acc[PQ_I8Y_ROWS];
        for (int r = 0; r < PQ_I8Y_ROWS; r++)
            acc[r] = _mm256_setzero_si256();
        const uint8_t *c = p + 2;
#if PQ_I8Y_VNNI
        for (int64_t ch = 0; ch < nch; ch++, c += sb) {
            __m256i xv = _mm256_load_si256((const __m256i *)(xg + 32 * ch));
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                acc[r] = _mm256_dpbusd_avx_epi32(
                    acc[r], pq_i8y_decode(bits, c + (size_t)r * row_bytes, end), xv);
        }
#else
        const __m256i ones = _mm256_set1_epi16(1);
        for (int64_t ch0 = 0; ch0 < nch; ch0 += PQ_I8Y_FLUSH) {
            int64_t ch1 = ch0 + PQ_I8Y_FLUSH < nch ? ch0 + PQ_I8Y_FLUSH : nch;
            __m256i a16[PQ_I8Y_ROWS];
            for (int r = 0; r < PQ_I8Y_ROWS; r++)
                a16[r] = _mm256_setzero_si256();
            for (int64_t ch = ch0; ch < ch1; ch++, c += sb) {
                __m256i xv = _mm256_load_si256((const __m256i *)(xg + 32 * ch));
#pragma GCC unroll 4
                for (int r = 0; r < R; r++)
                    a16[r] = _mm256_add_epi16(
                        a16[r], _mm256_maddubs_epi16(
                                    pq_i8y_decode(bits, c + (size_t)r * row_bytes, end), xv));
            }
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(a16[r], ones));
        }
#endif
        __m128i d = pq_i8y_reduce4(acc);
        d = _mm_sub_epi32(d, _mm_set1_epi32(off * a->sum[g]));
        uint16_t sw[8] = {0};
        for (int r = 0; r < R; r++)
            memcpy(&sw[r], p + (size_t)r * row_bytes, 2);
        __m128 step = _mm_mul_ps(_mm_cvtph_ps(_mm_loadu_si128((const __m128i *)sw)), vmult);
        __m128 cg = _mm_mul_ps(step, _mm_set1_ps(a->scale[g]));
        __m128 t = _mm_mul_ps(_mm_cvtepi32_ps(d), cg);
        yacc = _mm_add_ps(yacc, t);
        p += 2 + cbytes;
    }
    if (R == 4)
        _mm_storeu_ps(y, yacc);
    else
        _mm_store_ss(y, yacc);
}

/* The tile with the end-of-weights check compiled out when every 16-byte read of its rows stays
 * inside the weights (all tiles but the last ones). */
PQ_I8Y_FN void pq_i8y_tile(int bits, int R, const uint8_t *w, size_t row_bytes, const uint8_t *end,
                           int64_t cols, int64_t group, float mult, const pq_piq_i8_act *a,
                           float *y, const uint8_t *pf, const uint8_t *pf_end) {
    if ((size_t)(end - w) >= (size_t)R * row_bytes + 16)
        pq_i8y_tile_body(bits, R, w, row_bytes, NULL, cols, group, mult, a, y, pf, pf_end);
    else
        pq_i8y_tile_body(bits, R, w, row_bytes, end, cols, group, mult, a, y, pf, pf_end);
}

PQ_I8Y_FN void pq_i8y_gemv_bits(int bits, enum pq_qformat f, const uint8_t *w, int64_t rows,
                                int64_t cols, int64_t group, const pq_piq_i8_act *a, float *y) {
    size_t row_bytes = pq_packed_row_bytes(f, cols, group);
    const uint8_t *end = w + (size_t)rows * row_bytes;
    float mult = pq_qformat_step_mult(f);
    const size_t tile = PQ_I8Y_ROWS * row_bytes;
    int64_t r = 0;
    for (; r + PQ_I8Y_ROWS <= rows; r += PQ_I8Y_ROWS) {
        const uint8_t *t = w + (size_t)r * row_bytes;
        const uint8_t *pf = t + PQ_I8Y_PF_TILES * tile, *pf_end = pf + tile;
        pq_i8y_tile(bits, PQ_I8Y_ROWS, t, row_bytes, end, cols, group, mult, a, y + r,
                    pf < end ? pf : end, pf_end < end ? pf_end : end);
    }
    for (; r < rows; r++)
        pq_i8y_tile(bits, 1, w + (size_t)r * row_bytes, row_bytes, end, cols, group, mult, a, y + r,
                    end, end);
}

/* The gemv entry of the table (rows/cols/group <= 0: nothing). */
PQ_I8Y_FN void pq_i8y_gemv(enum pq_qformat f, const uint8_t *w, int64_t rows, int64_t cols,
                           int64_t group, const pq_piq_i8_act *a, float *y) {
    if (rows <= 0 || cols <= 0 || group <= 0) return;
    if (pq_qformat_bits(f) == 3)
        pq_i8y_gemv_bits(3, f, w, rows, cols, group, a, y);
    else
        pq_i8y_gemv_bits(2, f, w, rows, cols, group, a, y);
}

#endif
