/* The 16 x 16 byte transpose in SSE2 registers shared by the int8 conv kernels (positions-as-rows
 * output tiles, depthwise channel-last copies) of every x86 table. */
#ifndef PQ_INT8_TRANSPOSE_X86_H
#define PQ_INT8_TRANSPOSE_X86_H

#if defined(__x86_64__) || defined(__i386__)
#include <emmintrin.h>

/* In-register transpose of 16 rows of 16 bytes: r[i] byte j -> r[j] byte i (SSE2 unpacks, so it
 * inlines into AVX2 and AVX-512 functions alike). */
static inline void pq_i8_tr16x16__sse2(__m128i r[16]) {
    __m128i b[16], c[16], d[16];
    for (int i = 0; i < 8; i++) {
        b[2 * i] = _mm_unpacklo_epi8(r[2 * i], r[2 * i + 1]);
        b[2 * i + 1] = _mm_unpackhi_epi8(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        c[4 * i] = _mm_unpacklo_epi16(b[4 * i], b[4 * i + 2]);
        c[4 * i + 1] = _mm_unpackhi_epi16(b[4 * i], b[4 * i + 2]);
        c[4 * i + 2] = _mm_unpacklo_epi16(b[4 * i + 1], b[4 * i + 3]);
        c[4 * i + 3] = _mm_unpackhi_epi16(b[4 * i + 1], b[4 * i + 3]);
    }
    for (int h = 0; h < 2; h++)
        for (int i = 0; i < 4; i++) {
            d[8 * h + 2 * i] = _mm_unpacklo_epi32(c[8 * h + i], c[8 * h + 4 + i]);
            d[8 * h + 2 * i + 1] = _mm_unpackhi_epi32(c[8 * h + i], c[8 * h + 4 + i]);
        }
    for (int k = 0; k < 8; k++) {
        r[2 * k] = _mm_unpacklo_epi64(d[k], d[8 + k]);
        r[2 * k + 1] = _mm_unpackhi_epi64(d[k], d[8 + k]);
    }
}
#endif

#endif
