/* AVX2 + FMA row kernels of backends/eltwise_fast.h: 8-wide binary ops with scalar tails, Softmax
 * with a polynomial exp (2^n as two exponent-built factors, denormals included) and a
 * double-accumulated sum, LayerNormalization with double statistics. Numerics: eltwise_fast.h. */
#include "backends/eltwise_fast.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#define PQ_EW_AVX2(name, VOP, SOP)                                                                 \
    static void name(const float *a, int64_t sa, const float *b, int64_t sb, float *y,             \
                     int64_t n) {                                                                  \
        int64_t i = 0;                                                                             \
        if (sa && sb) {                                                                            \
            for (; i + 8 <= n; i += 8)                                                             \
                _mm256_storeu_ps(y + i, VOP(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));      \
            for (; i < n; i++)                                                                     \
                y[i] = a[i] SOP b[i];                                                              \
        } else if (sa) {                                                                           \
            __m256 vb = _mm256_set1_ps(b[0]);                                                      \
            for (; i + 8 <= n; i += 8)                                                             \
                _mm256_storeu_ps(y + i, VOP(_mm256_loadu_ps(a + i), vb));                          \
            for (; i < n; i++)                                                                     \
                y[i] = a[i] SOP b[0];                                                              \
        } else if (sb) {                                                                           \
            __m256 va = _mm256_set1_ps(a[0]);                                                      \
            for (; i + 8 <= n; i += 8)                                                             \
                _mm256_storeu_ps(y + i, VOP(va, _mm256_loadu_ps(b + i)));                          \
            for (; i < n; i++)                                                                     \
                y[i] = a[0] SOP b[i];                                                              \
        } else {                                                                                   \
            float v = a[0] SOP b[0];                                                               \
            for (; i < n; i++)                                                                     \
                y[i] = v;                                                                          \
        }                                                                                          \
    }
PQ_EW_AVX2(pq_f32_add_ukernel__avx2, _mm256_add_ps, +)
PQ_EW_AVX2(pq_f32_sub_ukernel__avx2, _mm256_sub_ps, -)
PQ_EW_AVX2(pq_f32_mul_ukernel__avx2, _mm256_mul_ps, *)
PQ_EW_AVX2(pq_f32_div_ukernel__avx2, _mm256_div_ps, /)

/* 2^k for integer lanes k in [-126, 127] built in the exponent field. */
static inline __m256 pq_pow2i(__m256i k) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23));
}

/* exp(x - m) as in eltwise_avx512.c; 2^n (n in [-150, 0]) = 2^(n>>1) * 2^(n - (n>>1)), the first
 * product exact, the second rounding once (into a denormal when small). */
static inline __m256 pq_exp_sub256(__m256 x, __m256 vm) {
    __m256 nm = _mm256_sub_ps(_mm256_setzero_ps(), vm);
    __m256 d = _mm256_add_ps(x, nm);
    __m256 bb = _mm256_sub_ps(d, x);
    __m256 err = _mm256_add_ps(_mm256_sub_ps(x, _mm256_sub_ps(d, bb)), _mm256_sub_ps(nm, bb));
    __m256 under = _mm256_cmp_ps(d, _mm256_set1_ps(-104.0f), _CMP_LT_OQ);
    __m256 dc = _mm256_max_ps(_mm256_set1_ps(-104.0f), d); /* NaN d passes (second operand) */
    __m256 n = _mm256_round_ps(_mm256_mul_ps(dc, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), dc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    r = _mm256_add_ps(r, err);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
    p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
    __m256i k = _mm256_cvtps_epi32(n); /* NaN lanes: garbage scale, p is NaN anyway */
    __m256i k1 = _mm256_srai_epi32(k, 1);
    p = _mm256_mul_ps(_mm256_mul_ps(p, pq_pow2i(k1)), pq_pow2i(_mm256_sub_epi32(k, k1)));
    return _mm256_andnot_ps(under, p);
}

static inline __m256d pq_sum_lanes256(__m256d acc, __m256 v) {
    acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

static inline double pq_hsum256d(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

/* Lanes [0, r) set, r in 0..8. */
static inline __m256i pq_tail_mask256(int64_t r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static void pq_f32_softmax_ukernel__avx2(const float *x, float *y, int64_t n) {
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 vmax = ninf;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        vmax = _mm256_max_ps(_mm256_loadu_ps(x + i), vmax); /* NaN x skipped (reference: v > mx) */
    __m256i tm = pq_tail_mask256(n - i);
    if (i < n)
        vmax = _mm256_max_ps(
            _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + i, tm), _mm256_castsi256_ps(tm)), vmax);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
    __m256 vm = _mm256_set1_ps(_mm_cvtss_f32(h));
    __m256d acc = _mm256_setzero_pd();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = pq_exp_sub256(_mm256_loadu_ps(x + i), vm);
        _mm256_storeu_ps(y + i, e);
        acc = pq_sum_lanes256(acc, e);
    }
    if (i < n) {
        __m256 e = _mm256_and_ps(pq_exp_sub256(_mm256_maskload_ps(x + i, tm), vm),
                                 _mm256_castsi256_ps(tm));
        _mm256_maskstore_ps(y + i, tm, e);
        acc = pq_sum_lanes256(acc, e);
    }
    __m256 vs = _mm256_set1_ps((float)pq_hsum256d(acc));
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_div_ps(_mm256_loadu_ps(y + i), vs));
    for (; i < n; i++)
        y[i] = y[i] / _mm256_cvtss_f32(vs);
}

static void pq_f32_layernorm_ukernel__avx2(const float *x, const float *s, const float *b, float *y,
                                           int64_t n, double eps) {
    __m256d acc = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        acc = pq_sum_lanes256(acc, _mm256_loadu_ps(x + i));
    double sum = pq_hsum256d(acc);
    for (int64_t t = i; t < n; t++)
        sum += x[t];
    double mean = sum / (double)n;
    __m256d vmean = _mm256_set1_pd(mean), a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), vmean);
        __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), vmean);
        a0 = _mm256_fmadd_pd(d0, d0, a0);
        a1 = _mm256_fmadd_pd(d1, d1, a1);
    }
    double var = pq_hsum256d(_mm256_add_pd(a0, a1));
    for (int64_t t = i; t < n; t++)
        var += ((double)x[t] - mean) * ((double)x[t] - mean);
    var /= (double)n;
    float m = (float)mean, iv = (float)(1.0 / sqrt(var + eps));
    __m256 vm = _mm256_set1_ps(m), vi = _mm256_set1_ps(iv);
    const __m256 zero = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vi);
        t = _mm256_mul_ps(t, _mm256_loadu_ps(s + i));
        _mm256_storeu_ps(y + i, _mm256_add_ps(t, b ? _mm256_loadu_ps(b + i) : zero));
    }
    for (; i < n; i++) {
        float t = (x[i] - m) * iv;
        t = t * s[i];
        y[i] = t + (b ? b[i] : 0.0f);
    }
}

/* Sum of n floats in double: two 4-lane accumulators per 8 floats, then the rest sequentially. */
static double pq_f32_sum_ukernel__avx2(const float *x, int64_t n) {
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = pq_sum_lanes256(a0, _mm256_loadu_ps(x + i));
        a1 = pq_sum_lanes256(a1, _mm256_loadu_ps(x + i + 8));
    }
    if (i + 8 <= n) {
        a0 = pq_sum_lanes256(a0, _mm256_loadu_ps(x + i));
        i += 8;
    }
    double sum = pq_hsum256d(_mm256_add_pd(a0, a1));
    for (; i < n; i++)
        sum += x[i];
    return sum;
}

/* Eight lanes (two accumulators of four) of one block at a time, or of two blocks side by side
 * (four chains): lanes l0..l0+7 of blocks b and b + 1. */
static void pq_f32_lane_sums_ukernel__avx2(const float *x, int64_t rows, int blk, int64_t nb,
                                           int64_t bstride, double *acc) {
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2)
        for (int l0 = 0; l0 < blk; l0 += 8) {
            const float *x0 = x + b * bstride + l0, *x1 = x0 + bstride;
            double *c0 = acc + b * blk + l0, *c1 = c0 + blk;
            __m256d a0 = _mm256_loadu_pd(c0), a1 = _mm256_loadu_pd(c0 + 4);
            __m256d a2 = _mm256_loadu_pd(c1), a3 = _mm256_loadu_pd(c1 + 4);
            for (int64_t r = 0; r < rows; r++) {
                __m256 v = _mm256_loadu_ps(x0 + r * blk), w = _mm256_loadu_ps(x1 + r * blk);
                a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
                a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
                a2 = _mm256_add_pd(a2, _mm256_cvtps_pd(_mm256_castps256_ps128(w)));
                a3 = _mm256_add_pd(a3, _mm256_cvtps_pd(_mm256_extractf128_ps(w, 1)));
            }
            _mm256_storeu_pd(c0, a0);
            _mm256_storeu_pd(c0 + 4, a1);
            _mm256_storeu_pd(c1, a2);
            _mm256_storeu_pd(c1 + 4, a3);
        }
    for (; b < nb; b++)
        for (int l0 = 0; l0 < blk; l0 += 8) {
            const float *x0 = x + b * bstride + l0;
            double *c0 = acc + b * blk + l0;
            __m256d a0 = _mm256_loadu_pd(c0), a1 = _mm256_loadu_pd(c0 + 4);
            for (int64_t r = 0; r < rows; r++) {
                __m256 v = _mm256_loadu_ps(x0 + r * blk);
                a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
                a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
            }
            _mm256_storeu_pd(c0, a0);
            _mm256_storeu_pd(c0 + 4, a1);
        }
}

static void pq_f32_lane_scale_ukernel__avx2(const float *x, const float *s, float *y, int64_t rows,
                                            int blk) {
    int64_t n = rows * blk;
    __m256 v0 = _mm256_loadu_ps(s), v1 = blk == 16 ? _mm256_loadu_ps(s + 8) : v0;
    for (int64_t i = 0; i < n; i += 16) { /* n is a multiple of 8 */
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), v0));
        if (i + 8 < n) _mm256_storeu_ps(y + i + 8, _mm256_mul_ps(_mm256_loadu_ps(x + i + 8), v1));
    }
}

const pq_eltwise_kernels pq_eltwise_kernels_avx2 = {
    .isa = "avx2",
    .sum = pq_f32_sum_ukernel__avx2,
    .lane_sums = pq_f32_lane_sums_ukernel__avx2,
    .lane_scale = pq_f32_lane_scale_ukernel__avx2,
    .binary = {pq_f32_add_ukernel__avx2, pq_f32_sub_ukernel__avx2, pq_f32_mul_ukernel__avx2,
               pq_f32_div_ukernel__avx2},
    .softmax = pq_f32_softmax_ukernel__avx2,
    .layernorm = pq_f32_layernorm_ukernel__avx2,
};
#else
const pq_eltwise_kernels pq_eltwise_kernels_avx2 = {.isa = "avx2"};
#endif
