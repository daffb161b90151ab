/* AVX-512 row kernels of backends/movement_fast.h: the linear-Resize row in double, 8 outputs per
 * step in the reference's order (bit-exact, numerics in movement_fast.h); 32-bit transposes use
 * the AVX2 8x8 kernel. */
#include "backends/movement_fast.h"

#if defined(__x86_64__)
#include <immintrin.h>

static inline __m512d pq_mv_ld8(const double *p) {
    return _mm512_loadu_pd(p);
}

static void pq_mv_linear_row__avx512(const double *a0, const double *a1, const double *b0,
                                     const double *b1, double wy0, double wy1, const double *wx0,
                                     const double *wx1, float *y, int64_t n) {
    int64_t j = 0;
    const __m512d z = _mm512_setzero_pd(), vy0 = _mm512_set1_pd(wy0), vy1 = _mm512_set1_pd(wy1);
    if (b0) {
        for (; j + 8 <= n; j += 8) {
            __m512d w0 = _mm512_loadu_pd(wx0 + j), w1 = _mm512_loadu_pd(wx1 + j);
            __m512d acc =
                _mm512_add_pd(z, _mm512_mul_pd(_mm512_mul_pd(vy0, w0), pq_mv_ld8(a0 + j)));
            acc = _mm512_add_pd(acc, _mm512_mul_pd(_mm512_mul_pd(vy0, w1), pq_mv_ld8(a1 + j)));
            acc = _mm512_add_pd(acc, _mm512_mul_pd(_mm512_mul_pd(vy1, w0), pq_mv_ld8(b0 + j)));
            acc = _mm512_add_pd(acc, _mm512_mul_pd(_mm512_mul_pd(vy1, w1), pq_mv_ld8(b1 + j)));
            _mm256_storeu_ps(y + j, _mm512_cvtpd_ps(acc));
        }
    } else {
        for (; j + 8 <= n; j += 8) {
            __m512d w0 = _mm512_loadu_pd(wx0 + j), w1 = _mm512_loadu_pd(wx1 + j);
            __m512d acc =
                _mm512_add_pd(z, _mm512_mul_pd(_mm512_mul_pd(vy0, w0), pq_mv_ld8(a0 + j)));
            acc = _mm512_add_pd(acc, _mm512_mul_pd(_mm512_mul_pd(vy0, w1), pq_mv_ld8(a1 + j)));
            _mm256_storeu_ps(y + j, _mm512_cvtpd_ps(acc));
        }
    }
    if (j < n)
        pq_movement_kernels_scalar.linear_row(a0 + j, a1 + j, b0 ? b0 + j : NULL,
                                              b1 ? b1 + j : NULL, wy0, wy1, wx0 + j, wx1 + j, y + j,
                                              n - j);
}

const pq_movement_kernels pq_movement_kernels_avx512 = {
    .isa = "avx512",
    .linear_row = pq_mv_linear_row__avx512,
    .transpose32 = pq_mv_transpose32__avx2,
};
#else
const pq_movement_kernels pq_movement_kernels_avx512 = {.isa = "avx512"};
#endif
