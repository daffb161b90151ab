/* AVX2 QuantizeLinear / DequantizeLinear (qdq_ops.h): 8 lanes, scalar-formula tails. Same
 * operations in the same order as the reference (f32 division, round half to even, + zp, NaN ->
 * zp, clamp; dequantize as an f32 product), so bit-exact. */
#include <immintrin.h>
#include <math.h>

#include "qdq_ops.h"

static void pq_qdq_quant__avx2(const float *x, size_t n, float s, int32_t zp, bool is_u8,
                               uint8_t *y) {
    float flo = is_u8 ? 0.0f : -128.0f, fhi = is_u8 ? 255.0f : 127.0f, z = (float)zp;
    __m256 vs = _mm256_set1_ps(s), vz = _mm256_set1_ps(z);
    __m256 lo = _mm256_set1_ps(flo), hi = _mm256_set1_ps(fhi);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i), vs);
        v = _mm256_add_ps(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), vz);
        v = _mm256_blendv_ps(v, vz, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
        __m256i q = _mm256_cvtps_epi32(v);
        __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        w = is_u8 ? _mm_packus_epi16(w, w) : _mm_packs_epi16(w, w);
        _mm_storel_epi64((__m128i *)(y + i), w);
    }
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

const pq_qdq_kernels pq_qdq_kernels_avx2 = {
    .name = "avx2", .quant = pq_qdq_quant__avx2, .dequant = pq_qdq_dequant__avx2};
