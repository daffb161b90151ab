/* AVX-512 QuantizeLinear / DequantizeLinear (qdq_ops.h): 16 lanes, masked tails. Quantize divides
 * (every other vector with vdivps, the others with the exact divide-free product of qdiv_x86.h, so
 * that the divider and the vector ALUs work at once), rounds half to even, adds the zero point,
 * maps NaN to it and clamps: bit-exact with the reference (the argument at pq_qdq_bytes512). */
#include <immintrin.h>

#include "qdiv_x86.h"
#include "qdq_ops.h"

/* The bytes of clamp(nearbyint(q) + zp, lo, hi), NaN -> zp, for q = x / s. qlo = lo - zp and
 * qhi = hi - zp are integers, so clamping q to them before rounding is clamping nearbyint(q) after
 * it (rounding is monotone and keeps integers), and the reference's f32 sum nearbyint(q) + zp is
 * then exact: the conversion rounds (MXCSR round-to-nearest-even, as nearbyintf) and zp is added
 * as an integer. A NaN q passes both clamps (vmaxps / vminps return their second operand when one
 * is NaN), converts to 0x80000000, whose low byte plus zp is zp's byte, and vpmovdb keeps low
 * bytes.
 */
static inline __m128i pq_qdq_bytes512(__m512 q, __m512 qlo, __m512 qhi, __m512i vz) {
    q = _mm512_min_ps(qhi, _mm512_max_ps(qlo, q));
    return _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(q), vz));
}

static void pq_qdq_quant__avx512(const float *x, size_t n, float s, int32_t zp, bool is_u8,
                                 uint8_t *y) {
    __m512 vs = _mm512_set1_ps(s);
    __m512d vr = _mm512_set1_pd(pq_qdiv_recip(s));
    __m512i vz = _mm512_set1_epi32(zp);
    __m512 qlo = _mm512_set1_ps((float)((is_u8 ? 0 : -128) - zp)),
           qhi = _mm512_set1_ps((float)((is_u8 ? 255 : 127) - zp));
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 q0 = _mm512_div_ps(_mm512_loadu_ps(x + i), vs);
        __m512 q1 = pq_qdiv_ps512(_mm512_loadu_ps(x + i + 16), vr);
        _mm_storeu_si128((__m128i *)(y + i), pq_qdq_bytes512(q0, qlo, qhi, vz));
        _mm_storeu_si128((__m128i *)(y + i + 16), pq_qdq_bytes512(q1, qlo, qhi, vz));
    }
    for (; i < n; i += 16) {
        size_t left = n - i < 16 ? n - i : 16;
        __mmask16 m = (__mmask16)((1u << left) - 1u);
        __m512 q = _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + i), vs);
        _mm_mask_storeu_epi8(y + i, m, pq_qdq_bytes512(q, qlo, qhi, vz));
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

static void pq_qdq_div__avx512(const float *x, size_t n, float s, float *q) {
    __m512d vr = _mm512_set1_pd(pq_qdiv_recip(s));
    for (size_t i = 0; i < n; i += 16) {
        size_t left = n - i < 16 ? n - i : 16;
        __mmask16 m = (__mmask16)((1u << left) - 1u);
        _mm512_mask_storeu_ps(q + i, m, pq_qdiv_ps512(_mm512_maskz_loadu_ps(m, x + i), vr));
    }
}

const pq_qdq_kernels pq_qdq_kernels_avx512 = {.name = "avx512",
                                              .quant = pq_qdq_quant__avx512,
                                              .dequant = pq_qdq_dequant__avx512,
                                              .div = pq_qdq_div__avx512};
