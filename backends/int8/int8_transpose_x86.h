/* The byte transposes shared by the int8 conv kernels (positions-as-rows output tiles, depthwise
 * and implicit-GEMM channel-last copies): 16 x 16 in SSE2 registers, 16 x 64 in AVX-512 ones. */
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

#if defined(__AVX512BW__)
#include <immintrin.h>

/* Four 16 x 16 byte transposes at once: r[i] holds bytes 0-63 of row i; afterwards 128-bit lane
 * L of r[j] holds column 16 L + j (byte i from row i). */
static inline void pq_i8_tr16x64__avx512(__m512i r[16]) {
    __m512i b[16], c[16], d[16];
    for (int i = 0; i < 8; i++) {
        b[2 * i] = _mm512_unpacklo_epi8(r[2 * i], r[2 * i + 1]);
        b[2 * i + 1] = _mm512_unpackhi_epi8(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        c[4 * i] = _mm512_unpacklo_epi16(b[4 * i], b[4 * i + 2]);
        c[4 * i + 1] = _mm512_unpackhi_epi16(b[4 * i], b[4 * i + 2]);
        c[4 * i + 2] = _mm512_unpacklo_epi16(b[4 * i + 1], b[4 * i + 3]);
        c[4 * i + 3] = _mm512_unpackhi_epi16(b[4 * i + 1], b[4 * i + 3]);
    }
    for (int h = 0; h < 2; h++)
        for (int i = 0; i < 4; i++) {
            d[8 * h + 2 * i] = _mm512_unpacklo_epi32(c[8 * h + i], c[8 * h + 4 + i]);
            d[8 * h + 2 * i + 1] = _mm512_unpackhi_epi32(c[8 * h + i], c[8 * h + 4 + i]);
        }
    for (int k = 0; k < 8; k++) {
        r[2 * k] = _mm512_unpacklo_epi64(d[k], d[8 + k]);
        r[2 * k + 1] = _mm512_unpackhi_epi64(d[k], d[8 + k]);
    }
}
#endif

#endif
