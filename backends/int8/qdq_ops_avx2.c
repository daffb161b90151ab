/* AVX2 QuantizeLinear / DequantizeLinear (qdq_ops.h): 8 lanes, scalar-formula tails. Quantize
 * divides (three vectors in four with vdivps, the fourth with the exact divide-free product of
 * qdiv_x86.h, so that the divider and the vector ALUs work at once), rounds half to even, adds the
 * zero point, maps NaN to it and clamps; dequantize is an f32 product: bit-exact with the reference
 * (the argument at pq_qdq_bytes256). */
#include <immintrin.h>
#include <math.h>

#include "qdiv_x86.h"
#include "qdq_ops.h"

/* The 8 bytes of clamp(nearbyint(q) + zp, lo, hi), NaN -> zp, for q = x / s. qlo = lo - zp and
 * qhi = hi - zp are integers, so clamping q to them before rounding is clamping nearbyint(q) after
 * it (rounding is monotone and keeps integers), and the reference's f32 sum nearbyint(q) + zp is
 * then exact: the conversion rounds (MXCSR round-to-nearest-even, as nearbyintf) and zp is added
 * as an integer. A NaN q passes both clamps (vmaxps / vminps return their second operand when one
 * is NaN), converts to 0x80000000, whose low byte plus zp is zp's byte; the shuffle keeps the low
 * byte of every lane (no saturation). */
static inline __m128i pq_qdq_bytes256(__m256 q, __m256 qlo, __m256 qhi, __m256i vz) {
    const __m256i low =
        _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12,
                         -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    q = _mm256_min_ps(qhi, _mm256_max_ps(qlo, q));
    __m256i b = _mm256_shuffle_epi8(_mm256_add_epi32(_mm256_cvtps_epi32(q), vz), low);
    return _mm_unpacklo_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
}

static void pq_qdq_quant__avx2(const float *x, size_t n, float s, int32_t zp, bool is_u8,
                               uint8_t *y) {
    float flo = is_u8 ? 0.0f : -128.0f, fhi = is_u8 ? 255.0f : 127.0f, z = (float)zp;
    __m256 vs = _mm256_set1_ps(s);
    __m256d vr = _mm256_set1_pd(pq_qdiv_recip(s));
    __m256i vz = _mm256_set1_epi32(zp);
    __m256 qlo = _mm256_set1_ps(flo - z), qhi = _mm256_set1_ps(fhi - z);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 q0 = _mm256_div_ps(_mm256_loadu_ps(x + i), vs);
        __m256 q1 = _mm256_div_ps(_mm256_loadu_ps(x + i + 8), vs);
        __m256 q2 = _mm256_div_ps(_mm256_loadu_ps(x + i + 16), vs);
        __m256 q3 = pq_qdiv_ps256(_mm256_loadu_ps(x + i + 24), vr);
        _mm_storel_epi64((__m128i *)(y + i), pq_qdq_bytes256(q0, qlo, qhi, vz));
        _mm_storel_epi64((__m128i *)(y + i + 8), pq_qdq_bytes256(q1, qlo, qhi, vz));
        _mm_storel_epi64((__m128i *)(y + i + 16), pq_qdq_bytes256(q2, qlo, qhi, vz));
        _mm_storel_epi64((__m128i *)(y + i + 24), pq_qdq_bytes256(q3, qlo, qhi, vz));
    }
    for (; i + 8 <= n; i += 8)
        _mm_storel_epi64((__m128i *)(y + i),
                         pq_qdq_bytes256(_mm256_div_ps(_mm256_loadu_ps(x + i), vs), qlo, qhi, vz));
    for (; i < n; i++) {
        float q = nearbyintf(x[i] / s) + z;
        if (q != q) q = z;
        q = q < flo ? flo : (q > fhi ? fhi : q);
        y[i] = (uint8_t)(int32_t)q;
    }
}

static void pq_qdq_dequant__avx2(const uint8_t *x, size_t n, bool is_u8, int32_t zp, float s,
                                 float *y) {
    __m256 vs = _mm256_set1_ps(s);
    __m256i vz = _mm256_set1_epi32(zp);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i b = _mm_loadl_epi64((const __m128i *)(x + i));
        __m256i v = is_u8 ? _mm256_cvtepu8_epi32(b) : _mm256_cvtepi8_epi32(b);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(v, vz)), vs));
    }
    for (; i < n; i++)
        y[i] = (float)((is_u8 ? (int32_t)x[i] : (int32_t)(int8_t)x[i]) - zp) * s;
}

static void pq_qdq_div__avx2(const float *x, size_t n, float s, float *q) {
    __m256d vr = _mm256_set1_pd(pq_qdiv_recip(s));
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(q + i, pq_qdiv_ps256(_mm256_loadu_ps(x + i), vr));
    for (; i < n; i++)
        q[i] = x[i] / s;
}

const pq_qdq_kernels pq_qdq_kernels_avx2 = {.name = "avx2",
                                            .quant = pq_qdq_quant__avx2,
                                            .dequant = pq_qdq_dequant__avx2,
                                            .div = pq_qdq_div__avx2};
