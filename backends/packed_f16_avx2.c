/* AVX2 + F16C kernels for f16 weights (packed_f16.h): vcvtph2ps widening, 8-wide FMA, gemv 4 rows
 * at a time, gemm on f32 panels (packed_wide_simd.h). */
#include <immintrin.h>

#include "backends/packed_f16.h"

#define PQ_WT uint16_t
#define PQ_VW 8
#define pq_vf __m256
#define pq_vzero() _mm256_setzero_ps()
#define pq_vload(p) _mm256_loadu_ps(p)
#define pq_vstore(p, v) _mm256_storeu_ps(p, v)
#define pq_vfma(a, b, c) _mm256_fmadd_ps(a, b, c)
#define pq_vadd(a, b) _mm256_add_ps(a, b)
#define pq_wscalar(v) _cvtsh_ss(v)

static inline float pq_vhsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __m256 pq_wload(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

#include "backends/packed_wide_simd.h"

void pq_f16_gemv_ukernel__avx2(const uint16_t *h, int64_t rows, int64_t cols, const float *x,
                               float *y) {
    pq_wide_gemv(h, NULL, rows, cols, x, y);
}

void pq_f16_gemm_ukernel__avx2(const uint16_t *h, int64_t rows, int64_t cols, const float *x,
                               int64_t M, float *y, float *panel) {
    pq_wide_gemm(h, NULL, rows, cols, x, M, y, panel);
}

const pq_f16_kernels pq_f16_kernels_avx2 = {
    .isa = "avx2",
    .gemv = pq_f16_gemv_ukernel__avx2,
    .gemm = pq_f16_gemm_ukernel__avx2,
};
