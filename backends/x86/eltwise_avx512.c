/* AVX-512 row kernels of backends/eltwise_fast.h: 16-wide binary ops with masked tails, Softmax
 * with a polynomial exp (vscalefps for 2^n, denormals included) and a double-accumulated sum,
 * LayerNormalization with double statistics, in-place Swish / HardSwish. Numerics: eltwise_fast.h.
 */
#include "backends/eltwise_fast.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

static inline __mmask16 pq_tail_mask(int64_t r) {
    return (__mmask16)((1u << r) - 1u);
}

#define PQ_EW_AVX512(name, VOP, SOP)                                                               \
    static void name(const float *a, int64_t sa, const float *b, int64_t sb, float *y,             \
                     int64_t n) {                                                                  \
        int64_t i = 0;                                                                             \
        if (sa && sb) {                                                                            \
            for (; i + 16 <= n; i += 16)                                                           \
                _mm512_storeu_ps(y + i, VOP(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));      \
            if (i < n) {                                                                           \
                __mmask16 m = pq_tail_mask(n - i);                                                 \
                _mm512_mask_storeu_ps(                                                             \
                    y + i, m,                                                                      \
                    VOP(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));        \
            }                                                                                      \
        } else if (sa) {                                                                           \
            __m512 vb = _mm512_set1_ps(b[0]);                                                      \
            for (; i + 16 <= n; i += 16)                                                           \
                _mm512_storeu_ps(y + i, VOP(_mm512_loadu_ps(a + i), vb));                          \
            if (i < n) {                                                                           \
                __mmask16 m = pq_tail_mask(n - i);                                                 \
                _mm512_mask_storeu_ps(y + i, m, VOP(_mm512_maskz_loadu_ps(m, a + i), vb));         \
            }                                                                                      \
        } else if (sb) {                                                                           \
            __m512 va = _mm512_set1_ps(a[0]);                                                      \
            for (; i + 16 <= n; i += 16)                                                           \
                _mm512_storeu_ps(y + i, VOP(va, _mm512_loadu_ps(b + i)));                          \
            if (i < n) {                                                                           \
                __mmask16 m = pq_tail_mask(n - i);                                                 \
                _mm512_mask_storeu_ps(y + i, m, VOP(va, _mm512_maskz_loadu_ps(m, b + i)));         \
            }                                                                                      \
        } else {                                                                                   \
            float v = a[0] SOP b[0];                                                               \
            for (; i < n; i++)                                                                     \
                y[i] = v;                                                                          \
        }                                                                                          \
    }
PQ_EW_AVX512(pq_f32_add_ukernel__avx512, _mm512_add_ps, +)
PQ_EW_AVX512(pq_f32_sub_ukernel__avx512, _mm512_sub_ps, -)
PQ_EW_AVX512(pq_f32_mul_ukernel__avx512, _mm512_mul_ps, *)
PQ_EW_AVX512(pq_f32_div_ukernel__avx512, _mm512_div_ps, /)

/* exp(x - m) for m = the row max (x - m <= 0 or NaN): d = x - m with its rounding error (TwoSum),
 * n = round(d / ln2), r = d - n ln2 (Cephes split), degree-6 polynomial, e * 2^n by vscalefps;
 * 0 where d < -104 (exp below half the smallest denormal; covers -inf). NaN propagates. */
static inline __m512 pq_exp_sub512(__m512 x, __m512 vm) {
    __m512 nm = _mm512_sub_ps(_mm512_setzero_ps(), vm);
    __m512 d = _mm512_add_ps(x, nm);
    __m512 bb = _mm512_sub_ps(d, x);
    __m512 err = _mm512_add_ps(_mm512_sub_ps(x, _mm512_sub_ps(d, bb)), _mm512_sub_ps(nm, bb));
    __mmask16 under = _mm512_cmp_ps_mask(d, _mm512_set1_ps(-104.0f), _CMP_LT_OQ);
    __m512 dc = _mm512_max_ps(_mm512_set1_ps(-104.0f), d); /* NaN d passes (second operand) */
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(dc, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), dc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    r = _mm512_add_ps(r, err);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);
    p = _mm512_add_ps(p, _mm512_set1_ps(1.0f));
    return _mm512_maskz_mov_ps((__mmask16)~under, _mm512_scalef_ps(p, n));
}

static inline __m512d pq_sum_lanes512(__m512d acc, __m512 v) {
    acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    return _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
}

static void pq_f32_softmax_ukernel__avx512(const float *x, float *y, int64_t n) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 vmax = ninf;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        vmax = _mm512_max_ps(_mm512_loadu_ps(x + i), vmax); /* NaN x skipped (reference: v > mx) */
    __mmask16 tm = pq_tail_mask(n - i);
    if (i < n) vmax = _mm512_max_ps(_mm512_mask_loadu_ps(ninf, tm, x + i), vmax);
    __m512 vm = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
    __m512d acc = _mm512_setzero_pd();
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 e = pq_exp_sub512(_mm512_loadu_ps(x + i), vm);
        _mm512_storeu_ps(y + i, e);
        acc = pq_sum_lanes512(acc, e);
    }
    if (i < n) {
        __m512 e = _mm512_maskz_mov_ps(tm, pq_exp_sub512(_mm512_maskz_loadu_ps(tm, x + i), vm));
        _mm512_mask_storeu_ps(y + i, tm, e);
        acc = pq_sum_lanes512(acc, e);
    }
    __m512 vs = _mm512_set1_ps((float)_mm512_reduce_add_pd(acc));
    for (i = 0; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_div_ps(_mm512_loadu_ps(y + i), vs));
    if (i < n)
        _mm512_mask_storeu_ps(y + i, tm, _mm512_div_ps(_mm512_maskz_loadu_ps(tm, y + i), vs));
}

static void pq_f32_layernorm_ukernel__avx512(const float *x, const float *s, const float *b,
                                             float *y, int64_t n, double eps) {
    __m512d acc = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        acc = pq_sum_lanes512(acc, _mm512_loadu_ps(x + i));
    double sum = _mm512_reduce_add_pd(acc);
    for (int64_t t = i; t < n; t++)
        sum += x[t];
    double mean = sum / (double)n;
    __m512d vmean = _mm512_set1_pd(mean), a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        __m512d d0 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), vmean);
        __m512d d1 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)), vmean);
        a0 = _mm512_fmadd_pd(d0, d0, a0);
        a1 = _mm512_fmadd_pd(d1, d1, a1);
    }
    double var = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
    for (int64_t t = i; t < n; t++)
        var += ((double)x[t] - mean) * ((double)x[t] - mean);
    var /= (double)n;
    __m512 vm = _mm512_set1_ps((float)mean), vi = _mm512_set1_ps((float)(1.0 / sqrt(var + eps)));
    const __m512 zero = _mm512_setzero_ps();
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm), vi);
        t = _mm512_mul_ps(t, _mm512_loadu_ps(s + i));
        _mm512_storeu_ps(y + i, _mm512_add_ps(t, b ? _mm512_loadu_ps(b + i) : zero));
    }
    if (i < n) {
        __mmask16 m = pq_tail_mask(n - i);
        __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm), vi);
        t = _mm512_mul_ps(t, _mm512_maskz_loadu_ps(m, s + i));
        _mm512_mask_storeu_ps(y + i, m,
                              _mm512_add_ps(t, b ? _mm512_maskz_loadu_ps(m, b + i) : zero));
    }
}

/* Sum of n floats in double: two 8-lane accumulators over 32-float steps, then 16, then the
 * rest sequentially (lane order: see eltwise_fast.h). */
static double pq_f32_sum_ukernel__avx512(const float *x, int64_t n) {
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = pq_sum_lanes512(a0, _mm512_loadu_ps(x + i));
        a1 = pq_sum_lanes512(a1, _mm512_loadu_ps(x + i + 16));
    }
    if (i + 16 <= n) {
        a0 = pq_sum_lanes512(a0, _mm512_loadu_ps(x + i));
        i += 16;
    }
    double sum = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
    for (; i < n; i++)
        sum += x[i];
    return sum;
}

/* One accumulator per 8 lanes and block (two accumulators for alternate rows would change the
 * order); blocks side by side: two of 16 lanes (four chains), four of 8. */
static void pq_f32_lane_sums_ukernel__avx512(const float *x, int64_t rows, int blk, int64_t nb,
                                             int64_t bstride, double *acc) {
    int64_t b = 0;
    if (blk == 16) {
        for (; b + 2 <= nb; b += 2) {
            const float *x0 = x + b * bstride, *x1 = x0 + bstride;
            double *c = acc + b * 16;
            __m512d a0 = _mm512_loadu_pd(c), a1 = _mm512_loadu_pd(c + 8);
            __m512d a2 = _mm512_loadu_pd(c + 16), a3 = _mm512_loadu_pd(c + 24);
            for (int64_t r = 0; r < rows; r++) {
                __m512 v = _mm512_loadu_ps(x0 + r * 16), w = _mm512_loadu_ps(x1 + r * 16);
                a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
                a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
                a2 = _mm512_add_pd(a2, _mm512_cvtps_pd(_mm512_castps512_ps256(w)));
                a3 = _mm512_add_pd(a3, _mm512_cvtps_pd(_mm512_extractf32x8_ps(w, 1)));
            }
            _mm512_storeu_pd(c, a0);
            _mm512_storeu_pd(c + 8, a1);
            _mm512_storeu_pd(c + 16, a2);
            _mm512_storeu_pd(c + 24, a3);
        }
        for (; b < nb; b++) {
            const float *x0 = x + b * bstride;
            double *c = acc + b * 16;
            __m512d a0 = _mm512_loadu_pd(c), a1 = _mm512_loadu_pd(c + 8);
            for (int64_t r = 0; r < rows; r++) {
                __m512 v = _mm512_loadu_ps(x0 + r * 16);
                a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
                a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
            }
            _mm512_storeu_pd(c, a0);
            _mm512_storeu_pd(c + 8, a1);
        }
        return;
    }
    for (; b + 4 <= nb; b += 4) {
        const float *x0 = x + b * bstride;
        double *c = acc + b * 8;
        __m512d a0 = _mm512_loadu_pd(c), a1 = _mm512_loadu_pd(c + 8);
        __m512d a2 = _mm512_loadu_pd(c + 16), a3 = _mm512_loadu_pd(c + 24);
        for (int64_t r = 0; r < rows; r++) {
            const float *p = x0 + r * 8;
            a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm256_loadu_ps(p)));
            a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm256_loadu_ps(p + bstride)));
            a2 = _mm512_add_pd(a2, _mm512_cvtps_pd(_mm256_loadu_ps(p + 2 * bstride)));
            a3 = _mm512_add_pd(a3, _mm512_cvtps_pd(_mm256_loadu_ps(p + 3 * bstride)));
        }
        _mm512_storeu_pd(c, a0);
        _mm512_storeu_pd(c + 8, a1);
        _mm512_storeu_pd(c + 16, a2);
        _mm512_storeu_pd(c + 24, a3);
    }
    for (; b < nb; b++) {
        const float *x0 = x + b * bstride;
        __m512d a0 = _mm512_loadu_pd(acc + b * 8);
        for (int64_t r = 0; r < rows; r++)
            a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm256_loadu_ps(x0 + r * 8)));
        _mm512_storeu_pd(acc + b * 8, a0);
    }
}

static void pq_f32_lane_scale_ukernel__avx512(const float *x, const float *s, float *y,
                                              int64_t rows, int blk) {
    int64_t n = rows * blk, i = 0;
    __m512 vs = blk == 16 ? _mm512_loadu_ps(s)
                          : _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(s)),
                                               _mm256_loadu_ps(s), 1);
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), vs));
    if (i < n) {
        __mmask16 m = pq_tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs));
    }
}

/* x * sigmoid(x) = x / (1 + 2^u), u = -x log2(e) as the exact product u + ul (FMA), 2^u =
 * 2^floor(u) * 2^f with f = u - floor(u) + ul (vreduceps) by a degree-6 polynomial (relative
 * error 9e-8 on [0, 1)) and vscalefps. For x < -88 the power overflows to +inf and y is -0 (the
 * exact value is below 1e-36 in magnitude); NaN propagates; x = -inf gives NaN (-inf / inf) as
 * the reference's -inf * 0 does. */
static inline __m512 pq_swish512(__m512 x) {
    const __m512 c = _mm512_set1_ps(-1.44269504088896341f);
    const __m512 clo = _mm512_set1_ps(-1.925963033500011e-08f); /* -log2(e) - c */
    /* |x| <= 128 for the power (2^-184 rounds to 0, 2^184 overflows: the same y); NaN kept (the
     * second operand of min / max is returned when one is NaN) */
    __m512 xc = _mm512_max_ps(_mm512_set1_ps(-128.0f), _mm512_min_ps(_mm512_set1_ps(128.0f), x));
    __m512 u = _mm512_mul_ps(xc, c);
    __m512 ul = _mm512_fmadd_ps(xc, clo, _mm512_fmsub_ps(xc, c, u));
    __m512 f = _mm512_add_ps(_mm512_reduce_ps(u, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC), ul);
    /* 2^f on [0, 1), highest degree first (relative least-squares fit, error 9e-8) */
    static const float c2[7] = {2.1701937657780945e-4f,
                                1.2439669808372855e-3f,
                                9.678857401013374e-3f,
                                5.548332259058952e-2f,
                                2.4022984504699707e-1f,
                                6.931470036506653e-1f,
                                1.0f};
    __m512 p = _mm512_set1_ps(c2[0]);
    for (int i = 1; i < 7; i++)
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(c2[i]));
    __m512 e = _mm512_scalef_ps(p, u); /* p * 2^floor(u) */
    return _mm512_div_ps(x, _mm512_add_ps(e, _mm512_set1_ps(1.0f)));
}

static void pq_f32_swish_ukernel__avx512(float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 a = pq_swish512(_mm512_loadu_ps(x + i)),
               b = pq_swish512(_mm512_loadu_ps(x + i + 16));
        _mm512_storeu_ps(x + i, a);
        _mm512_storeu_ps(x + i + 16, b);
    }
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, pq_swish512(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = pq_tail_mask(n - i);
        _mm512_mask_storeu_ps(x + i, m, pq_swish512(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

/* x * (min(max(x + 3, 0), 6) * (1/6)): x + 3 is exact near -3 (no cancellation error, unlike
 * x / 6 + 0.5), nothing overflows, and no vdivps (7 cycles per vector here, this 2). */
static inline __m512 pq_hard_swish512(__m512 x) {
    __m512 t = _mm512_add_ps(x, _mm512_set1_ps(3.0f));
    t = _mm512_min_ps(_mm512_max_ps(t, _mm512_setzero_ps()), _mm512_set1_ps(6.0f));
    return _mm512_mul_ps(x, _mm512_mul_ps(t, _mm512_set1_ps(1.0f / 6.0f)));
}

static void pq_f32_hard_swish_ukernel__avx512(float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, pq_hard_swish512(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = pq_tail_mask(n - i);
        _mm512_mask_storeu_ps(x + i, m, pq_hard_swish512(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

/* y[r] = sum_k x[k] * w[r * k + k'] for rows rows of w (row-major [rows, k]): four rows at a time
 * (four weight streams, one x load per 16 k), 16 partial sums per row added at the end. */
static void pq_f32_gemv_rows_ukernel__avx512(const float *x, const float *w, int64_t k,
                                             int64_t rows, float *y) {
    int64_t r = 0;
    __mmask16 tm = pq_tail_mask(k & 15);
    for (; r + 4 <= rows; r += 4) {
        const float *w0 = w + r * k, *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int64_t i = 0;
        for (; i + 16 <= k; i += 16) {
            __m512 xv = _mm512_loadu_ps(x + i);
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + i), xv, a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + i), xv, a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + i), xv, a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + i), xv, a3);
        }
        if (i < k) {
            __m512 xv = _mm512_maskz_loadu_ps(tm, x + i);
            a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, w0 + i), xv, a0);
            a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, w1 + i), xv, a1);
            a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, w2 + i), xv, a2);
            a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, w3 + i), xv, a3);
        }
        y[r] = _mm512_reduce_add_ps(a0);
        y[r + 1] = _mm512_reduce_add_ps(a1);
        y[r + 2] = _mm512_reduce_add_ps(a2);
        y[r + 3] = _mm512_reduce_add_ps(a3);
    }
    for (; r < rows; r++) {
        const float *w0 = w + r * k;
        __m512 a0 = _mm512_setzero_ps();
        int64_t i = 0;
        for (; i + 16 <= k; i += 16)
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + i), _mm512_loadu_ps(x + i), a0);
        if (i < k)
            a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, w0 + i),
                                 _mm512_maskz_loadu_ps(tm, x + i), a0);
        y[r] = _mm512_reduce_add_ps(a0);
    }
}

const pq_eltwise_kernels pq_eltwise_kernels_avx512 = {
    .isa = "avx512",
    .sum = pq_f32_sum_ukernel__avx512,
    .lane_sums = pq_f32_lane_sums_ukernel__avx512,
    .lane_scale = pq_f32_lane_scale_ukernel__avx512,
    .binary = {pq_f32_add_ukernel__avx512, pq_f32_sub_ukernel__avx512, pq_f32_mul_ukernel__avx512,
               pq_f32_div_ukernel__avx512},
    .softmax = pq_f32_softmax_ukernel__avx512,
    .layernorm = pq_f32_layernorm_ukernel__avx512,
    .swish = pq_f32_swish_ukernel__avx512,
    .hard_swish = pq_f32_hard_swish_ukernel__avx512,
    .gemv_rows = pq_f32_gemv_rows_ukernel__avx512,
};
#else
const pq_eltwise_kernels pq_eltwise_kernels_avx512 = {.isa = "avx512"};
#endif
