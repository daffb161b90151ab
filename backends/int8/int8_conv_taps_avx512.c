/* The AVX-512 BW byte transposes of the INT8 conv drivers (the AVX-512 tables' taps_copy and
 * transpose, int8_gemm.h): 16 channels x 64 columns per register transpose, masked tails. */
#include <immintrin.h>
#include <stdint.h>

#include "int8_internal.h"
#include "int8_transpose_x86.h"

/* One 16-byte channel group x of the pixel at d: cn bytes, or cn zero-extended i16 (E = 2). */
static inline void pq_i8t_put(uint8_t *d, __m128i x, size_t cn, size_t E) {
    if (E == 2) {
        __m256i h = _mm256_cvtepu8_epi16(x);
        if (cn == 16)
            _mm256_storeu_si256((__m256i *)d, h);
        else
            _mm256_mask_storeu_epi16(d, (__mmask16)((1u << cn) - 1u), h);
    } else if (cn == 16) {
        _mm_storeu_si128((__m128i *)d, x);
    } else {
        _mm_mask_storeu_epi8(d, (__mmask16)((1u << cn) - 1u), x);
    }
}

void pq_i8t_copy_block__avx512(const uint8_t *src, size_t hw, size_t cn, int64_t wend,
                               const size_t *co, size_t E, uint8_t *dst) {
    for (int64_t iw0 = 0; iw0 < wend; iw0 += 64) {
        int64_t nw = wend - iw0 < 64 ? wend - iw0 : 64;
        __mmask64 km = nw == 64 ? ~(__mmask64)0 : (((__mmask64)1 << nw) - 1);
        __m512i v[16];
        for (size_t c = 0; c < 16; c++)
            v[c] =
                c < cn ? _mm512_maskz_loadu_epi8(km, src + c * hw + iw0) : _mm512_setzero_si512();
        pq_i8_tr16x64__avx512(v);
        const size_t *cw = co + iw0;
        /* column 16 L + j is 128-bit lane L of v[j] */
#define PQ_I8T_LANE(L)                                                                             \
    for (int64_t j = 0; j < 16 && 16 * (L) + j < nw; j++)                                          \
        if (cw[16 * (L) + j] != SIZE_MAX)                                                          \
            pq_i8t_put(dst + cw[16 * (L) + j], _mm512_extracti32x4_epi32(v[j], L), cn, E);
        PQ_I8T_LANE(0)
        PQ_I8T_LANE(1)
        PQ_I8T_LANE(2)
        PQ_I8T_LANE(3)
#undef PQ_I8T_LANE
    }
}

/* 16 bytes at p, or the first n < 16 of them (masked: nothing read past them). */
static inline __m128i pq_i8t_load16(const uint8_t *p, size_t n) {
    return n >= 16 ? _mm_loadu_si128((const __m128i *)p)
                   : _mm_maskz_loadu_epi8((__mmask16)((1u << n) - 1u), p);
}

void pq_i8t_out_rows__avx512(const uint8_t *src, size_t lds, size_t rows, size_t cols, uint8_t *dst,
                             size_t ldd) {
    for (size_t r0 = 0; r0 < rows; r0 += 64) {
        size_t nr = rows - r0 < 64 ? rows - r0 : 64;
        __mmask64 km = nr == 64 ? ~(__mmask64)0 : (((__mmask64)1 << nr) - 1);
        for (size_t c0 = 0; c0 < cols; c0 += 16) {
            size_t nc = cols - c0 < 16 ? cols - c0 : 16;
            /* lane L of v[j]: the channels of row 16 L + j (zero past the rows) */
            __m512i v[16];
            for (size_t j = 0; j < 16; j++) {
                __m128i q[4];
                for (size_t L = 0; L < 4; L++) {
                    size_t r = 16 * L + j;
                    q[L] =
                        r < nr ? pq_i8t_load16(src + (r0 + r) * lds + c0, nc) : _mm_setzero_si128();
                }
                __m512i z = _mm512_castsi128_si512(q[0]);
                z = _mm512_inserti32x4(z, q[1], 1);
                z = _mm512_inserti32x4(z, q[2], 2);
                v[j] = _mm512_inserti32x4(z, q[3], 3);
            }
            pq_i8_tr16x64__avx512(v); /* v[c]: rows 0..63 of channel c0 + c */
            for (size_t c = 0; c < nc; c++)
                _mm512_mask_storeu_epi8(dst + (c0 + c) * ldd + r0, km, v[c]);
        }
    }
}
