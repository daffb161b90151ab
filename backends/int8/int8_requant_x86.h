/* AVX2 requantization epilogue shared by the AVX2 and AVX-VNNI translation units (included by
 * each, compiled with that file's flags): f32 multiply, optional fused activation, clamp, round
 * half to even (int8_gemm.h). */
#ifndef PQ_INT8_REQUANT_X86_H
#define PQ_INT8_REQUANT_X86_H

#include <immintrin.h>
#include <string.h>

#include "int8_gemm.h"

/* A fused activation's constants as vectors (kind PQ_I8_ACT_NONE: none). */
typedef struct pq_i8_act8 {
    enum pq_i8_act_kind kind;
    __m256 alpha, beta, inv;
} pq_i8_act8;

static inline pq_i8_act8 pq_i8_act8_init(const pq_i8_act *a) {
    pq_i8_act8 v = {.kind = a ? a->kind : PQ_I8_ACT_NONE};
    if (a) {
        v.alpha = _mm256_set1_ps(a->alpha);
        v.beta = _mm256_set1_ps(a->beta);
        v.inv = _mm256_set1_ps(a->inv_sy);
    }
    return v;
}

/* pq_i8_act_f32 on 8 lanes, then the multiply by 1 / s_y (finite inputs: min / max equal the
 * scalar compares up to the sign of a zero, which rounding erases). */
static inline __m256 pq_i8_act8__avx2(const pq_i8_act8 *a, __m256 r) {
    __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f), h;
    switch (a->kind) {
    case PQ_I8_ACT_RELU:
        r = _mm256_max_ps(r, zero);
        break;
    case PQ_I8_ACT_CLIP:
        r = _mm256_min_ps(_mm256_max_ps(r, a->alpha), a->beta);
        break;
    case PQ_I8_ACT_LEAKY_RELU:
        r = _mm256_blendv_ps(r, _mm256_mul_ps(a->alpha, r), _mm256_cmp_ps(r, zero, _CMP_LT_OQ));
        break;
    case PQ_I8_ACT_HARD_SIGMOID:
        h = _mm256_add_ps(_mm256_mul_ps(a->alpha, r), a->beta);
        r = _mm256_min_ps(_mm256_max_ps(h, zero), one);
        break;
    case PQ_I8_ACT_HARD_SWISH:
        h = _mm256_add_ps(_mm256_mul_ps(r, _mm256_set1_ps(1.0f / 6.0f)), _mm256_set1_ps(0.5f));
        h = _mm256_min_ps(_mm256_max_ps(h, zero), one);
        r = _mm256_mul_ps(r, h);
        break;
    default:
        return r;
    }
    return _mm256_mul_ps(r, a->inv);
}

/* 8 lanes: (float)(acc + add) * m (then the activation when a->kind is set) clamped to [lo, hi]
 * = [-zp, 255 - zp], rounded to nearest even (vcvtps2dq in the default mode), + zp: i32 in
 * [0, 255]. Needs finite m and activation constants. */
static inline __m256i pq_i8_rq8__avx2(__m256i acc, __m256i add, __m256 m, const pq_i8_act8 *a,
                                      __m256 lo, __m256 hi, __m256i zp) {
    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(acc, add)), m);
    v = pq_i8_act8__avx2(a, v);
    v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
    return _mm256_add_epi32(_mm256_cvtps_epi32(v), zp);
}

/* 16 i32 in [0, 255] (two vectors) as 16 bytes: the saturating packs are exact; undo the
 * per-128-bit lane order. */
static inline __m128i pq_i8_pack16__avx2(__m256i q0, __m256i q1) {
    __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xD8);
    return _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
}

static inline void pq_i8_requant_body__avx2(const int32_t *acc, size_t n, int32_t add, float ms,
                                            const float *mv, const pq_i8_act *act, int32_t zp,
                                            uint8_t *y) {
    __m256i va = _mm256_set1_epi32(add), vz = _mm256_set1_epi32(zp);
    __m256 vm = _mm256_set1_ps(ms), lo = _mm256_set1_ps((float)-zp);
    __m256 hi = _mm256_set1_ps((float)(255 - zp));
    pq_i8_act8 a = pq_i8_act8_init(act);
    size_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m256 m0 = mv ? _mm256_loadu_ps(mv + j) : vm, m1 = mv ? _mm256_loadu_ps(mv + j + 8) : vm;
        __m256i q0 =
            pq_i8_rq8__avx2(_mm256_loadu_si256((const __m256i *)(acc + j)), va, m0, &a, lo, hi, vz);
        __m256i q1 = pq_i8_rq8__avx2(_mm256_loadu_si256((const __m256i *)(acc + j + 8)), va, m1, &a,
                                     lo, hi, vz);
        _mm_storeu_si128((__m128i *)(y + j), pq_i8_pack16__avx2(q0, q1));
    }
    if (j < n) pq_i8_requant__scalar(acc + j, n - j, add, ms, mv ? mv + j : NULL, act, zp, y + j);
}

/* The fused epilogue of a 16-lane tile (AVX2 and AVX-VNNI micro-kernels): the per-lane terms
 * loaded once per call, then pq_i8_ep16_row per row. */
typedef struct pq_i8_ep16 {
    __m256i ac0, ac1, vz;
    __m256 mc0, mc1, lo, hi;
    pq_i8_act8 act;
} pq_i8_ep16;

static inline void pq_i8_ep16_init(pq_i8_ep16 *e, const pq_i8_tile_ep *ep) {
    int32_t ta[16] = {0};
    float tm[16] = {0};
    int nj = ep->nj;
    if (ep->add_col) memcpy(ta, ep->add_col, (size_t)nj * sizeof(int32_t));
    if (ep->m_col) memcpy(tm, ep->m_col, (size_t)nj * sizeof(float));
    e->ac0 = _mm256_loadu_si256((const __m256i *)ta);
    e->ac1 = _mm256_loadu_si256((const __m256i *)(ta + 8));
    e->mc0 = _mm256_loadu_ps(tm);
    e->mc1 = _mm256_loadu_ps(tm + 8);
    e->vz = _mm256_set1_epi32(ep->zp);
    e->lo = _mm256_set1_ps((float)-ep->zp);
    e->hi = _mm256_set1_ps((float)(255 - ep->zp));
    e->act = pq_i8_act8_init(ep->act);
}

static inline void pq_i8_ep16_row(const pq_i8_ep16 *e, const pq_i8_tile_ep *ep, int r, __m256i a0,
                                  __m256i a1) {
    __m256i add0 = e->ac0, add1 = e->ac1;
    if (ep->add_row) {
        __m256i ar = _mm256_set1_epi32(ep->add_row[r]);
        add0 = _mm256_add_epi32(add0, ar);
        add1 = _mm256_add_epi32(add1, ar);
    }
    __m256 m0 = e->mc0, m1 = e->mc1;
    if (ep->m_row) m0 = m1 = _mm256_set1_ps(ep->m_row[r]);
    __m256i q0 = pq_i8_rq8__avx2(a0, add0, m0, &e->act, e->lo, e->hi, e->vz);
    __m256i q1 = pq_i8_rq8__avx2(a1, add1, m1, &e->act, e->lo, e->hi, e->vz);
    __m128i b = pq_i8_pack16__avx2(q0, q1);
    uint8_t *y = ep->y + (size_t)r * ep->ldy;
    if (ep->nj == 16) {
        _mm_storeu_si128((__m128i *)y, b);
    } else {
        uint8_t t[16];
        _mm_storeu_si128((__m128i *)t, b);
        memcpy(y, t, (size_t)ep->nj);
    }
}

#endif
