/* AVX2 requantization epilogue shared by the AVX2 and AVX-VNNI translation units (included by
 * each, compiled with that file's flags): double multiply, round half to even, clamp. */
#ifndef PQ_INT8_REQUANT_X86_H
#define PQ_INT8_REQUANT_X86_H

#include <immintrin.h>

#include "int8_gemm.h"

/* 4 lanes: nearbyint(((double)acc + bias) * m) clamped to [-1024, 1024] (any value beyond lies
 * outside [0, 255] after adding a zero point in [0, 255], as before the clamp), as i32. Needs
 * finite bias and m so the product is finite. */
static inline __m128i pq_i8_rq4__avx2(__m128i acc, __m256d bias, __m256d m) {
    __m256d v = _mm256_mul_pd(_mm256_add_pd(_mm256_cvtepi32_pd(acc), bias), m);
    v = _mm256_round_pd(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm256_min_pd(_mm256_max_pd(v, _mm256_set1_pd(-1024.0)), _mm256_set1_pd(1024.0));
    return _mm256_cvtpd_epi32(v);
}

static inline void pq_i8_requant_body__avx2(const int32_t *acc, size_t n, double bias, double ms,
                                            const double *mv, int32_t zp, uint8_t *y) {
    __m256d vb = _mm256_set1_pd(bias), vm = _mm256_set1_pd(ms);
    __m128i vz = _mm_set1_epi32(zp);
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256d m0 = mv ? _mm256_loadu_pd(mv + j) : vm, m1 = mv ? _mm256_loadu_pd(mv + j + 4) : vm;
        __m128i q0 =
            _mm_add_epi32(pq_i8_rq4__avx2(_mm_loadu_si128((const __m128i *)(acc + j)), vb, m0), vz);
        __m128i q1 = _mm_add_epi32(
            pq_i8_rq4__avx2(_mm_loadu_si128((const __m128i *)(acc + j + 4)), vb, m1), vz);
        __m128i b = _mm_packus_epi16(_mm_packs_epi32(q0, q1), _mm_setzero_si128());
        _mm_storel_epi64((__m128i *)(y + j), b);
    }
    if (j < n) pq_i8_requant__scalar(acc + j, n - j, bias, ms, mv ? mv + j : NULL, zp, y + j);
}

#endif
