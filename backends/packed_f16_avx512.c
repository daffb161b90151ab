/* AVX-512 kernels for f16 weights (packed_f16.h): 16-wide vcvtph2ps widening and FMA, gemv 4 rows
 * at a time, gemm on f32 panels (packed_wide_simd.h). */
#include <immintrin.h>

#include "backends/packed_f16.h"

#define PQ_WT uint16_t
#define PQ_VW 16
#define pq_vf __m512
#define pq_vzero() _mm512_setzero_ps()
#define pq_vload(p) _mm512_loadu_ps(p)
#define pq_vstore(p, v) _mm512_storeu_ps(p, v)
#define pq_vfma(a, b, c) _mm512_fmadd_ps(a, b, c)
#define pq_vadd(a, b) _mm512_add_ps(a, b)
#define pq_vhsum(v) _mm512_reduce_add_ps(v)
#define pq_wscalar(v) _cvtsh_ss(v)

static inline __m512 pq_wload(const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

#include "backends/packed_wide_simd.h"

void pq_f16_gemv_ukernel__avx512(const uint16_t *h, int64_t rows, int64_t cols, const float *x,
                                 float *y) {
    pq_wide_gemv(h, NULL, rows, cols, x, y);
}

void pq_f16_gemm_ukernel__avx512(const uint16_t *h, int64_t rows, int64_t cols, const float *x,
                                 int64_t M, float *y, float *panel) {
    pq_wide_gemm(h, NULL, rows, cols, x, M, y, panel);
}

const pq_f16_kernels pq_f16_kernels_avx512 = {
    .isa = "avx512",
    .gemv = pq_f16_gemv_ukernel__avx512,
    .gemm = pq_f16_gemm_ukernel__avx512,
};
