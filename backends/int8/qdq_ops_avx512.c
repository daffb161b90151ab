/* AVX-512 QuantizeLinear / DequantizeLinear (qdq_ops.h): 16 lanes, masked tails. Quantize divides
 * (vdivps, exact like the scalar division), rounds half to even, adds the zero point, maps NaN to
 * it and clamps: the same operations in the same order as the reference, so bit-exact. */
#include <immintrin.h>

#include "qdq_ops.h"

static void pq_qdq_quant__avx512(const float *x, size_t n, float s, int32_t zp, bool is_u8,
                                 uint8_t *y) {
    __m512 vs = _mm512_set1_ps(s), vz = _mm512_set1_ps((float)zp);
    __m512 lo = _mm512_set1_ps(is_u8 ? 0.0f : -128.0f),
           hi = _mm512_set1_ps(is_u8 ? 255.0f : 127.0f);
    for (size_t i = 0; i < n; i += 16) {
        size_t left = n - i < 16 ? n - i : 16;
        __mmask16 m = (__mmask16)((1u << left) - 1u);
        __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + i), vs);
        v = _mm512_add_ps(_mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                          vz);
        v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), vz);
        v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
        _mm_mask_storeu_epi8(y + i, m, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v)));
    }
}

static void pq_qdq_dequant__avx512(const uint8_t *x, size_t n, bool is_u8, int32_t zp, float s,
                                   float *y) {
    __m512 vs = _mm512_set1_ps(s);
    __m512i vz = _mm512_set1_epi32(zp);
    for (size_t i = 0; i < n; i += 16) {
        size_t left = n - i < 16 ? n - i : 16;
        __mmask16 m = (__mmask16)((1u << left) - 1u);
        __m128i b = _mm_maskz_loadu_epi8(m, x + i);
        __m512i v = is_u8 ? _mm512_cvtepu8_epi32(b) : _mm512_cvtepi8_epi32(b);
        __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(v, vz)), vs);
        _mm512_mask_storeu_ps(y + i, m, f);
    }
}

const pq_qdq_kernels pq_qdq_kernels_avx512 = {
    .name = "avx512", .quant = pq_qdq_quant__avx512, .dequant = pq_qdq_dequant__avx512};
