/* AVX-512 kernels for int8 weights (packed_int8.h): 16 codes vpmovsxbd + vcvtdq2ps, 16-wide FMA,
 * gemv 4 rows at a time, gemm on f32 panels (packed_wide_simd.h). */
#include <immintrin.h>

#include "backends/packed_int8.h"

#define PQ_WT int8_t
#define PQ_VW 16
#define pq_vf __m512
#define pq_vzero() _mm512_setzero_ps()
#define pq_vload(p) _mm512_loadu_ps(p)
#define pq_vstore(p, v) _mm512_storeu_ps(p, v)
#define pq_vfma(a, b, c) _mm512_fmadd_ps(a, b, c)
#define pq_vadd(a, b) _mm512_add_ps(a, b)
#define pq_vhsum(v) _mm512_reduce_add_ps(v)
#define pq_wscalar(v) ((float)(v))

static inline __m512 pq_wload(const int8_t *p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
}

#include "backends/packed_wide_simd.h"

void pq_w8_gemv_ukernel__avx512(const int8_t *q, const float *s, int64_t rows, int64_t cols,
                                const float *x, float *y) {
    pq_wide_gemv(q, s, rows, cols, x, y);
}

void pq_w8_gemm_ukernel__avx512(const int8_t *q, const float *s, int64_t rows, int64_t cols,
                                const float *x, int64_t M, float *y, float *panel) {
    pq_wide_gemm(q, s, rows, cols, x, M, y, panel);
}

const pq_w8_kernels pq_w8_kernels_avx512 = {
    .isa = "avx512",
    .gemv = pq_w8_gemv_ukernel__avx512,
    .gemm = pq_w8_gemm_ukernel__avx512,
};
