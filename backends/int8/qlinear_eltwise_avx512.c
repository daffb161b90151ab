/* AVX-512 QLinearAdd / QLinearMul (qlinear_eltwise.h): 16 lanes, masked tails. The same f32
 * operations in the same order as the scalar kernel (no FMA: products and sum stay separate), so
 * bit-exact. */
#include <immintrin.h>

#include "qlinear_eltwise.h"

static void pq_qadd__avx512(const uint8_t *a, const uint8_t *b, size_t n, bool b_bcast,
                            const pq_qadd_params *p, uint8_t *y) {
    __m512 sa = _mm512_set1_ps(p->sa), sb = _mm512_set1_ps(p->sb), sc = _mm512_set1_ps(p->sc);
    __m512i za = _mm512_set1_epi32(p->za), zb = _mm512_set1_epi32(p->zb);
    __m512 lo = _mm512_set1_ps(p->lo), hi = _mm512_set1_ps(p->hi);
    __m512 vzc = _mm512_set1_ps((float)p->zc);
    __m512 vqlo = _mm512_set1_ps(p->is_u8 ? 0.0f : -128.0f);
    __m512 vqhi = _mm512_set1_ps(p->is_u8 ? 255.0f : 127.0f);
    __m512 fb_b = _mm512_setzero_ps();
    if (b_bcast) {
        int32_t ib = p->is_u8 ? (int32_t)b[0] : (int32_t)(int8_t)b[0];
        fb_b = _mm512_set1_ps((float)(ib - p->zb) * p->sb);
    }
    for (size_t i = 0; i < n; i += 16) {
        size_t left = n - i < 16 ? n - i : 16;
        __mmask16 m = (__mmask16)((1u << left) - 1u);
        __m128i ba = _mm_maskz_loadu_epi8(m, a + i);
        __m512i ia = p->is_u8 ? _mm512_cvtepu8_epi32(ba) : _mm512_cvtepi8_epi32(ba);
        __m512 fa = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(ia, za)), sa);
        __m512 fb = fb_b;
        if (!b_bcast) {
            __m128i bb = _mm_maskz_loadu_epi8(m, b + i);
            __m512i ib = p->is_u8 ? _mm512_cvtepu8_epi32(bb) : _mm512_cvtepi8_epi32(bb);
            fb = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(ib, zb)), sb);
        }
        __m512 r = p->mul ? _mm512_mul_ps(fa, fb) : _mm512_add_ps(fa, fb);
        r = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
        r = _mm512_div_ps(r, sc);
        r = _mm512_add_ps(_mm512_roundscale_ps(r, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                          vzc);
        r = _mm512_min_ps(_mm512_max_ps(r, vqlo), vqhi);
        _mm_mask_storeu_epi8(y + i, m, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(r)));
    }
}

const pq_qeltwise_kernels pq_qeltwise_kernels_avx512 = {.name = "avx512", .add = pq_qadd__avx512};
