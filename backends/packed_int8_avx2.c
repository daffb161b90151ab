/* AVX2 kernels for int8 weights (packed_int8.h): vpmovsxbd + vcvtdq2ps widening, 8-wide FMA,
 * gemv 4 rows at a time, gemm on f32 panels (packed_wide_simd.h). */
#include <immintrin.h>

#include "backends/packed_int8.h"

#define PQ_WT int8_t
#define PQ_VW 8
#define pq_vf __m256
#define pq_vzero() _mm256_setzero_ps()
#define pq_vload(p) _mm256_loadu_ps(p)
#define pq_vstore(p, v) _mm256_storeu_ps(p, v)
#define pq_vfma(a, b, c) _mm256_fmadd_ps(a, b, c)
#define pq_vadd(a, b) _mm256_add_ps(a, b)
#define pq_wscalar(v) ((float)(v))

static inline float pq_vhsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __m256 pq_wload(const int8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

#include "backends/packed_wide_simd.h"

void pq_w8_gemv_ukernel__avx2(const int8_t *q, const float *s, int64_t rows, int64_t cols,
                              const float *x, float *y) {
    pq_wide_gemv(q, s, rows, cols, x, y);
}

void pq_w8_gemm_ukernel__avx2(const int8_t *q, const float *s, int64_t rows, int64_t cols,
                              const float *x, int64_t M, float *y, float *panel) {
    pq_wide_gemm(q, s, rows, cols, x, M, y, panel);
}

const pq_w8_kernels pq_w8_kernels_avx2 = {
    .isa = "avx2",
    .gemv = pq_w8_gemv_ukernel__avx2,
    .gemm = pq_w8_gemm_ukernel__avx2,
};
