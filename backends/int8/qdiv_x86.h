/* Divide-free, bit-exact f32 division by a loop-invariant divisor for the x86 INT8 element-wise
 * kernels (QuantizeLinear, QLinearAdd / QLinearMul): v / s as (float)((double)v * (1.0 / s)).
 * Include from an AVX2 or AVX-512 translation unit only (the helpers are static inline).
 *
 * Why it is exact. Let r = RN64(1 / s) (one correctly rounded double division, done once) and
 * p = RN64((double)v * r) (v -> double is exact). Then p = (v / s)(1 + e1)(1 + e2) with
 * |e1|, |e2| <= 2^-53, so |p - v/s| <= (2^-52 + 2^-106) |v/s| < 2^-51.9 |v/s|. The double range
 * holds every operand: |v| <= 2^128, 2^-149 <= |s| <= 2^128, so 2^-277 <= |v r| <= 2^277 and no
 * intermediate overflows, underflows or goes subnormal. The last step, RN32(p) (vcvtpd2ps under
 * the default round-to-nearest-even MXCSR, the same mode vdivps uses), equals RN32(v / s) unless a
 * rounding boundary of RN32 -- a midpoint between two adjacent floats, or the overflow threshold
 * 2^128 - 2^103 (itself such a midpoint) -- lies between v/s and p, or v/s is one exactly.
 * Midpoints at or above 2^-126 (the normal range) are m = M 2^f with M odd and 2^24 < M < 2^25.
 * Write v = V 2^a, s = S 2^b with integers V, S < 2^24 (any finite float, normal or subnormal).
 * v - m s = V 2^a - M S 2^(f+b) is a multiple of 2^min(a, f+b), and it is not zero: V 2^a = M S
 * 2^(f+b) with M odd would make the odd part of V a multiple of M > 2^24 > V. So
 * |v/s - m| = |v - m s| / s >= 2^min(a, f+b) / s, i.e. relative to v/s at least
 *   2^a / v > 2^-24            when min = a, or
 *   2^(f+b) / v ~ 1 / (M S) > 2^-49   when min = f + b  (v ~ m s = M S 2^(f+b) < 2^49 2^(f+b)).
 * Either way every normal-range midpoint is farther from v/s than 2^-49 |v/s| > |p - v/s|, so the
 * double product rounds to the same float as the quotient, including the overflow to +-inf.
 * Where |v/s| < 2^-126 (results in the f32 subnormal range) the midpoints are small odd multiples
 * of 2^-150 and the quotient can sit exactly on one (e.g. v = 3 * 2^-130, s = 3 * 2^20), so RN32(p)
 * may differ from RN32(v/s) by one subnormal ulp there; every caller rounds the quotient to an
 * integer next, and both are then +-0 (|p| < 2^-125 < 0.5), so the quantized byte is the same.
 * Special values follow IEEE in both forms: v = +-0 gives +-0, v = +-inf gives +-inf, NaN stays
 * NaN; s = +-0 gives r = +-inf (v r = +-inf, or NaN for v = 0, as v / 0), s = +-inf gives r = +-0
 * (v r = +-0, or NaN for infinite v), s = NaN gives NaN, a negative s just flips the signs. Checked
 * against vdivps on random bit patterns, near-ties of the rounding to integers and every class
 * above in tests/backends/test_qdiv_x86.c.
 * Cost: 4 conversions, 2 vmulpd and a lane split / join per 16 lanes, all on the vector ALU ports,
 * so alone it is slower than vdivps on Sapphire Rapids (its divider takes ~10 cycles per zmm but
 * leaves the ALUs free); the quantizers split the vectors between the two (qdq_ops_avx2.c,
 * qdq_ops_avx512.c: about 1.35x the throughput of vdivps alone). */
#ifndef PQ_QDIV_X86_H
#define PQ_QDIV_X86_H

#include <immintrin.h>

/* The double reciprocal of the divisor s (correctly rounded): the r the helpers below take. */
static inline double pq_qdiv_recip(float s) {
    return 1.0 / (double)s;
}

#if defined(__AVX512F__) && defined(__AVX512DQ__)
/* v / s per lane, bit-exact with _mm512_div_ps(v, s) (subnormal quotients: see above); r =
 * _mm512_set1_pd(pq_qdiv_recip(s)). */
static inline __m512 pq_qdiv_ps512(__m512 v, __m512d r) {
    __m256 lo = _mm512_castps512_ps256(v), hi = _mm512_extractf32x8_ps(v, 1);
    __m256 qlo = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_cvtps_pd(lo), r));
    __m256 qhi = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_cvtps_pd(hi), r));
    return _mm512_insertf32x8(_mm512_castps256_ps512(qlo), qhi, 1);
}
#endif

#if defined(__AVX__)
/* v / s per lane, bit-exact with _mm256_div_ps(v, s) (subnormal quotients: see above); r =
 * _mm256_set1_pd(pq_qdiv_recip(s)). */
static inline __m256 pq_qdiv_ps256(__m256 v, __m256d r) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    __m128 qlo = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(lo), r));
    __m128 qhi = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(hi), r));
    return _mm256_insertf128_ps(_mm256_castps128_ps256(qlo), qhi, 1);
}
#endif

#endif
