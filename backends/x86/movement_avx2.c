/* AVX2 row kernels of backends/movement_fast.h: the linear-Resize row in double, 4 outputs per
 * step in the reference's order (bit-exact, numerics in movement_fast.h), and 8x8 32-bit
 * transposes (also used by the AVX-512 table). */
#include "backends/movement_fast.h"

#if defined(__x86_64__)
#include <immintrin.h>

static inline __m256d pq_mv_ld4(const double *p) {
    return _mm256_loadu_pd(p);
}

static void pq_mv_linear_row__avx2(const double *a0, const double *a1, const double *b0,
                                   const double *b1, double wy0, double wy1, const double *wx0,
                                   const double *wx1, float *y, int64_t n) {
    int64_t j = 0;
    const __m256d z = _mm256_setzero_pd(), vy0 = _mm256_set1_pd(wy0), vy1 = _mm256_set1_pd(wy1);
    if (b0) {
        for (; j + 4 <= n; j += 4) {
            __m256d w0 = _mm256_loadu_pd(wx0 + j), w1 = _mm256_loadu_pd(wx1 + j);
            __m256d acc =
                _mm256_add_pd(z, _mm256_mul_pd(_mm256_mul_pd(vy0, w0), pq_mv_ld4(a0 + j)));
            acc = _mm256_add_pd(acc, _mm256_mul_pd(_mm256_mul_pd(vy0, w1), pq_mv_ld4(a1 + j)));
            acc = _mm256_add_pd(acc, _mm256_mul_pd(_mm256_mul_pd(vy1, w0), pq_mv_ld4(b0 + j)));
            acc = _mm256_add_pd(acc, _mm256_mul_pd(_mm256_mul_pd(vy1, w1), pq_mv_ld4(b1 + j)));
            _mm_storeu_ps(y + j, _mm256_cvtpd_ps(acc));
        }
    } else {
        for (; j + 4 <= n; j += 4) {
            __m256d w0 = _mm256_loadu_pd(wx0 + j), w1 = _mm256_loadu_pd(wx1 + j);
            __m256d acc =
                _mm256_add_pd(z, _mm256_mul_pd(_mm256_mul_pd(vy0, w0), pq_mv_ld4(a0 + j)));
            acc = _mm256_add_pd(acc, _mm256_mul_pd(_mm256_mul_pd(vy0, w1), pq_mv_ld4(a1 + j)));
            _mm_storeu_ps(y + j, _mm256_cvtpd_ps(acc));
        }
    }
    if (j < n)
        pq_movement_kernels_scalar.linear_row(a0 + j, a1 + j, b0 ? b0 + j : NULL,
                                              b1 ? b1 + j : NULL, wy0, wy1, wx0 + j, wx1 + j, y + j,
                                              n - j);
}

/* dst row i (8 floats at d + i * ds) = source column i of the 8 rows at s + k * ss. */
static inline void pq_mv_tr8x8(const float *s, int64_t ss, float *d, int64_t ds) {
    __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + ss);
    __m256 r2 = _mm256_loadu_ps(s + 2 * ss), r3 = _mm256_loadu_ps(s + 3 * ss);
    __m256 r4 = _mm256_loadu_ps(s + 4 * ss), r5 = _mm256_loadu_ps(s + 5 * ss);
    __m256 r6 = _mm256_loadu_ps(s + 6 * ss), r7 = _mm256_loadu_ps(s + 7 * ss);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(d + ds, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(d + 2 * ds, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(d + 3 * ds, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(d + 4 * ds, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(d + 5 * ds, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(d + 6 * ds, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(d + 7 * ds, _mm256_permute2f128_ps(u3, u7, 0x31));
}

void pq_mv_transpose32__avx2(const uint32_t *src, int64_t ss, uint32_t *dst, int64_t ds, int64_t ni,
                             int64_t nj) {
    int64_t i8 = ni & ~(int64_t)7, j8 = nj & ~(int64_t)7;
    const float *s = (const float *)src;
    float *d = (float *)dst;
    for (int64_t i = 0; i < i8; i += 8)
        for (int64_t j = 0; j < j8; j += 8)
            pq_mv_tr8x8(s + j * ss + i, ss, d + i * ds + j, ds);
    /* edges: the columns j >= j8 of every row, then the rows i >= i8 */
    for (int64_t i = 0; i < i8; i++)
        for (int64_t j = j8; j < nj; j++)
            dst[i * ds + j] = src[j * ss + i];
    for (int64_t i = i8; i < ni; i++)
        for (int64_t j = 0; j < nj; j++)
            dst[i * ds + j] = src[j * ss + i];
}

const pq_movement_kernels pq_movement_kernels_avx2 = {
    .isa = "avx2",
    .linear_row = pq_mv_linear_row__avx2,
    .transpose32 = pq_mv_transpose32__avx2,
};
#else
const pq_movement_kernels pq_movement_kernels_avx2 = {.isa = "avx2"};
#endif
