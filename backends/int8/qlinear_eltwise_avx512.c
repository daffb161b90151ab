/* AVX-512 QLinearAdd / QLinearMul (qlinear_eltwise.h): 16 lanes, masked tails. The same f32
 * operations in the same order as the scalar kernel (no FMA: products and sum stay separate), the
 * rounding and clamping as integers (pq_qe_bytes512), so bit-exact. */
#include <immintrin.h>

#include "qlinear_eltwise.h"

/* The bytes of clamp(nearbyint(q) + zc, lo, hi) for q = r / sc (never NaN here). qlo = lo - zc and
 * qhi = hi - zc are integers, so clamping q to them before rounding is clamping nearbyint(q) after
 * it (rounding is monotone and keeps integers) and makes the reference's f32 sum nearbyint(q) + zc
 * exact: the conversion rounds (MXCSR round-to-nearest-even, as nearbyintf), zc is added as an
 * integer, and the result is already in range for vpmovdb's truncation. */
static inline __m128i pq_qe_bytes512(__m512 q, __m512 qlo, __m512 qhi, __m512i vzc) {
    q = _mm512_min_ps(qhi, _mm512_max_ps(qlo, q));
    return _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(q), vzc));
}

static void pq_qadd__avx512(const uint8_t *a, const uint8_t *b, size_t n, bool b_bcast,
                            const pq_qadd_params *p, uint8_t *y) {
    __m512 sa = _mm512_set1_ps(p->sa), sb = _mm512_set1_ps(p->sb), sc = _mm512_set1_ps(p->sc);
    __m512i za = _mm512_set1_epi32(p->za), zb = _mm512_set1_epi32(p->zb);
    __m512 lo = _mm512_set1_ps(p->lo), hi = _mm512_set1_ps(p->hi);
    __m512i vzc = _mm512_set1_epi32(p->zc);
    __m512 vqlo = _mm512_set1_ps((float)((p->is_u8 ? 0 : -128) - p->zc));
    __m512 vqhi = _mm512_set1_ps((float)((p->is_u8 ? 255 : 127) - p->zc));
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
        _mm_mask_storeu_epi8(y + i, m, pq_qe_bytes512(_mm512_div_ps(r, sc), vqlo, vqhi, vzc));
    }
}

/* The real value of B code x (the scalar formula). */
static inline float pq_qe_fb(const pq_qadd_params *p, uint8_t x) {
    int32_t i = p->is_u8 ? (int32_t)x : (int32_t)(int8_t)x;
    return (float)(i - p->zb) * p->sb;
}

/* Row broadcast in one pass: a vector that crosses a row end (at most one: inner >= 16) takes the
 * next row's value in the lanes past it. Per lane the same operations as pq_qadd__avx512. */
static void pq_qadd_rows__avx512(const uint8_t *a, const uint8_t *b, size_t e0, size_t n,
                                 size_t inner, const pq_qadd_params *p, uint8_t *y) {
    __m512 sa = _mm512_set1_ps(p->sa), sc = _mm512_set1_ps(p->sc);
    __m512i za = _mm512_set1_epi32(p->za);
    __m512 lo = _mm512_set1_ps(p->lo), hi = _mm512_set1_ps(p->hi);
    __m512i vzc = _mm512_set1_epi32(p->zc);
    __m512 vqlo = _mm512_set1_ps((float)((p->is_u8 ? 0 : -128) - p->zc));
    __m512 vqhi = _mm512_set1_ps((float)((p->is_u8 ? 255 : 127) - p->zc));
    size_t r = e0 / inner, row_end = (r + 1) * inner;
    float fcur = pq_qe_fb(p, b[r]);
    for (size_t i = 0; i < n; i += 16) {
        size_t e = e0 + i, left = n - i < 16 ? n - i : 16;
        if (e >= row_end) {
            r++;
            row_end += inner;
            fcur = pq_qe_fb(p, b[r]);
        }
        __m512 fb = _mm512_set1_ps(fcur);
        size_t boundary = row_end - e;
        if (boundary < left) /* lanes [boundary, left) belong to row r + 1, which exists */
            fb = _mm512_mask_mov_ps(fb, (__mmask16)(0xFFFFu << boundary),
                                    _mm512_set1_ps(pq_qe_fb(p, b[r + 1])));
        __mmask16 m = (__mmask16)((1u << left) - 1u);
        __m128i ba = _mm_maskz_loadu_epi8(m, a + i);
        __m512i ia = p->is_u8 ? _mm512_cvtepu8_epi32(ba) : _mm512_cvtepi8_epi32(ba);
        __m512 fa = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(ia, za)), sa);
        __m512 r0 = p->mul ? _mm512_mul_ps(fa, fb) : _mm512_add_ps(fa, fb);
        r0 = _mm512_min_ps(_mm512_max_ps(r0, lo), hi);
        _mm_mask_storeu_epi8(y + i, m, pq_qe_bytes512(_mm512_div_ps(r0, sc), vqlo, vqhi, vzc));
    }
}

/* The plane sum of QLinearGlobalAveragePool (gap_sum): vpsadbw over 64 bytes a step (s8 as u8
 * after ^0x80, minus 128 n), the tail through a zeroing byte mask. */
static int32_t pq_qgap_sum__avx512(const uint8_t *x, int64_t n, bool is_u8) {
    __m512i vb = _mm512_set1_epi8(is_u8 ? 0 : (char)0x80), zero = _mm512_setzero_si512();
    __m512i acc = zero;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        acc = _mm512_add_epi64(
            acc, _mm512_sad_epu8(_mm512_xor_si512(_mm512_loadu_si512(x + i), vb), zero));
    if (i < n) {
        __mmask64 m = (__mmask64)(~0ULL >> (64 - (n - i)));
        __m512i v =
            _mm512_maskz_mov_epi8(m, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, x + i), vb));
        acc = _mm512_add_epi64(acc, _mm512_sad_epu8(v, zero));
    }
    int32_t t = (int32_t)_mm512_reduce_add_epi64(acc); /* <= 255 * 65536 */
    return is_u8 ? t : t - 128 * (int32_t)n;
}

const pq_qeltwise_kernels pq_qeltwise_kernels_avx512 = {.name = "avx512",
                                                        .add = pq_qadd__avx512,
                                                        .add_rows = pq_qadd_rows__avx512,
                                                        .gap_sum = pq_qgap_sum__avx512};

/* y[i] = lut[a[i]], 64 bytes per step: vpermi2b looks up the low 7 bits in each 128-byte half of
 * the table and the top bit picks the half; masked tail. */
__attribute__((target("avx512vbmi"))) static void
pq_qlut__avx512vbmi(const uint8_t *a, size_t n, const uint8_t *lut, uint8_t *y) {
    __m512i t0 = _mm512_loadu_si512(lut), t1 = _mm512_loadu_si512(lut + 64);
    __m512i t2 = _mm512_loadu_si512(lut + 128), t3 = _mm512_loadu_si512(lut + 192);
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512i x = _mm512_loadu_si512(a + i);
        __m512i lo = _mm512_permutex2var_epi8(t0, x, t1), hi = _mm512_permutex2var_epi8(t2, x, t3);
        _mm512_storeu_si512(y + i, _mm512_mask_mov_epi8(lo, _mm512_movepi8_mask(x), hi));
    }
    if (i < n) {
        __mmask64 m = (__mmask64)(~0ULL >> (64 - (n - i)));
        __m512i x = _mm512_maskz_loadu_epi8(m, a + i);
        __m512i lo = _mm512_permutex2var_epi8(t0, x, t1), hi = _mm512_permutex2var_epi8(t2, x, t3);
        _mm512_mask_storeu_epi8(y + i, m, _mm512_mask_mov_epi8(lo, _mm512_movepi8_mask(x), hi));
    }
}

const pq_qeltwise_kernels pq_qeltwise_kernels_avx512vbmi = {.name = "avx512",
                                                            .add = pq_qadd__avx512,
                                                            .add_rows = pq_qadd_rows__avx512,
                                                            .map = pq_qlut__avx512vbmi,
                                                            .gap_sum = pq_qgap_sum__avx512};
