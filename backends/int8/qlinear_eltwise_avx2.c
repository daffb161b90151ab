/* AVX2 QLinearAdd / QLinearMul (qlinear_eltwise.h): 8 lanes, the scalar formula on the tail. The
 * same f32 operations in the same order as the scalar kernel (no FMA: products and sum stay
 * separate), the rounding and clamping as integers, so bit-exact. */
#include <immintrin.h>
#include <math.h>

#include "qlinear_eltwise.h"

/* 8 bytes at p as i32 lanes (u8 zero-extended, s8 sign-extended). */
static inline __m256i pq_qe_load8(const uint8_t *p, bool is_u8) {
    __m128i b = _mm_loadl_epi64((const __m128i *)p);
    return is_u8 ? _mm256_cvtepu8_epi32(b) : _mm256_cvtepi8_epi32(b);
}

static void pq_qadd__avx2(const uint8_t *a, const uint8_t *b, size_t n, bool b_bcast,
                          const pq_qadd_params *p, uint8_t *y) {
    float qlo = p->is_u8 ? 0.0f : -128.0f, qhi = p->is_u8 ? 255.0f : 127.0f, zc = (float)p->zc;
    __m256 sa = _mm256_set1_ps(p->sa), sb = _mm256_set1_ps(p->sb), sc = _mm256_set1_ps(p->sc);
    __m256i za = _mm256_set1_epi32(p->za), zb = _mm256_set1_epi32(p->zb);
    __m256 lo = _mm256_set1_ps(p->lo), hi = _mm256_set1_ps(p->hi);
    __m256i vzc = _mm256_set1_epi32(p->zc);
    /* rounding and clamping as integers: clamping r / sc to the integers qlo - zc, qhi - zc before
     * the rounding conversion (MXCSR round-to-nearest-even, as nearbyintf) is clamping after it,
     * and makes the sum with zc exact (the reference adds it in f32) */
    __m256 vqlo = _mm256_set1_ps(qlo - zc), vqhi = _mm256_set1_ps(qhi - zc);
    __m256 fb_b = _mm256_setzero_ps();
    if (b_bcast) {
        int32_t ib = p->is_u8 ? (int32_t)b[0] : (int32_t)(int8_t)b[0];
        fb_b = _mm256_set1_ps((float)(ib - p->zb) * p->sb);
    }
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 fa = _mm256_cvtepi32_ps(_mm256_sub_epi32(pq_qe_load8(a + i, p->is_u8), za));
        fa = _mm256_mul_ps(fa, sa);
        __m256 fb = fb_b;
        if (!b_bcast) {
            fb = _mm256_cvtepi32_ps(_mm256_sub_epi32(pq_qe_load8(b + i, p->is_u8), zb));
            fb = _mm256_mul_ps(fb, sb);
        }
        __m256 r = p->mul ? _mm256_mul_ps(fa, fb) : _mm256_add_ps(fa, fb);
        r = _mm256_min_ps(_mm256_max_ps(r, lo), hi);
        r = _mm256_min_ps(vqhi, _mm256_max_ps(vqlo, _mm256_div_ps(r, sc)));
        __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(r), vzc);
        __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        w = p->is_u8 ? _mm_packus_epi16(w, w) : _mm_packs_epi16(w, w);
        _mm_storel_epi64((__m128i *)(y + i), w);
    }
    for (; i < n; i++) {
        uint8_t ba = a[i], bb = b_bcast ? b[0] : b[i];
        int32_t ia = p->is_u8 ? (int32_t)ba : (int32_t)(int8_t)ba;
        int32_t ib = p->is_u8 ? (int32_t)bb : (int32_t)(int8_t)bb;
        float fa = (float)(ia - p->za) * p->sa;
        float fb = (float)(ib - p->zb) * p->sb;
        float r = p->mul ? fa * fb : fa + fb;
        r = r < p->lo ? p->lo : r;
        r = r > p->hi ? p->hi : r;
        float q = nearbyintf(r / p->sc) + zc;
        q = q < qlo ? qlo : (q > qhi ? qhi : q);
        y[i] = (uint8_t)(int32_t)q;
    }
}

const pq_qeltwise_kernels pq_qeltwise_kernels_avx2 = {
    .name = "avx2", .add = pq_qadd__avx2, .map = pq_qlut__portable};
