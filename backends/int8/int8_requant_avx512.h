/* The AVX-512 requantization epilogue of the INT8 micro-kernels (int8_gemm.h formula, fused
 * activations), shared by the VNNI kernels (int8_gemm_avx512.c, int8_dwc_avx512.c) and the AMX
 * ones (int8_gemm_amx.c).
 */
#ifndef PQ_INT8_REQUANT_AVX512_H
#define PQ_INT8_REQUANT_AVX512_H

#include <immintrin.h>

#include "int8_gemm.h"

/* Lanes of one micro-kernel row: two 16-lane halves. */
#define PQ_I8Z_NR 32

/* A fused activation's constants as vectors (kind PQ_I8_ACT_NONE: none). */
typedef struct pq_i8_act16 {
    enum pq_i8_act_kind kind;
    __m512 alpha, beta, inv;
} pq_i8_act16;

static inline pq_i8_act16 pq_i8_act16_init(const pq_i8_act *a) {
    pq_i8_act16 v = {.kind = a ? a->kind : PQ_I8_ACT_NONE};
    if (a) {
        v.alpha = _mm512_set1_ps(a->alpha);
        v.beta = _mm512_set1_ps(a->beta);
        v.inv = _mm512_set1_ps(a->inv_sy);
    }
    return v;
}

/* pq_i8_sigmoid_f32 on 16 finite lanes: the same operations in the same order, the coefficient
 * tables as one register each (vpermps). */
static inline __m512 pq_i8_sigmoid16__avx512(__m512 r) {
    const float(*t)[16] = pq_i8_sigmoid_table();
    __m512 a = _mm512_min_ps(_mm512_abs_ps(r), _mm512_set1_ps(16.0f));
    __m512i i = _mm512_min_epi32(_mm512_cvttps_epi32(a), _mm512_set1_epi32(15));
    __m512 f = _mm512_sub_ps(a, _mm512_cvtepi32_ps(i));
    __m512 p = _mm512_permutexvar_ps(i, _mm512_loadu_ps(t[4]));
    for (int k = 3; k >= 0; k--)
        p = _mm512_fmadd_ps(p, f, _mm512_permutexvar_ps(i, _mm512_loadu_ps(t[k])));
    __mmask16 neg = _mm512_cmp_ps_mask(r, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_sub_ps(p, neg, _mm512_set1_ps(1.0f), p);
}

/* pq_i8_act_f32 on 16 lanes for the activation kind `kind` (a constant where the caller is
 * specialised: the switch then folds away; a->kind elsewhere), then the multiply by 1 / s_y
 * (finite inputs: min / max equal the scalar compares up to the sign of a zero, which rounding
 * erases). */
static inline __attribute__((always_inline)) __m512 pq_i8_act16_k(int kind, const pq_i8_act16 *a,
                                                                  __m512 r) {
    __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f), h;
    switch (kind) {
    case PQ_I8_ACT_RELU:
        r = _mm512_max_ps(r, zero);
        break;
    case PQ_I8_ACT_CLIP:
        r = _mm512_min_ps(_mm512_max_ps(r, a->alpha), a->beta);
        break;
    case PQ_I8_ACT_LEAKY_RELU:
        r = _mm512_mask_mul_ps(r, _mm512_cmp_ps_mask(r, zero, _CMP_LT_OQ), a->alpha, r);
        break;
    case PQ_I8_ACT_HARD_SIGMOID:
        h = _mm512_fmadd_ps(a->alpha, r, a->beta);
        r = _mm512_min_ps(_mm512_max_ps(h, zero), one);
        break;
    case PQ_I8_ACT_HARD_SWISH:
        h = _mm512_fmadd_ps(r, _mm512_set1_ps(1.0f / 6.0f), _mm512_set1_ps(0.5f));
        h = _mm512_min_ps(_mm512_max_ps(h, zero), one);
        r = _mm512_mul_ps(r, h);
        break;
    case PQ_I8_ACT_SIGMOID:
        r = pq_i8_sigmoid16__avx512(r);
        break;
    case PQ_I8_ACT_SWISH:
        r = _mm512_mul_ps(r, pq_i8_sigmoid16__avx512(r));
        break;
    default:
        return r;
    }
    return _mm512_mul_ps(r, a->inv);
}

static inline __m512 pq_i8_act16__avx512(const pq_i8_act16 *a, __m512 r) {
    return pq_i8_act16_k(a->kind, a, r);
}

/* 16 lanes: (float)(acc + add) * m (then the activation when a->kind is set) clamped to [lo, hi]
 * = [-zp, 255 - zp], rounded half to even (vcvtps2dq, default mode), + zp: i32 in [0, 255].
 * Needs finite m and activation constants. */
static inline __m512i pq_i8_rq16__avx512(__m512i acc, __m512i add, __m512 m, const pq_i8_act16 *a,
                                         __m512 lo, __m512 hi, __m512i zp) {
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc, add)), m);
    v = pq_i8_act16__avx512(a, v);
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    return _mm512_add_epi32(_mm512_cvtps_epi32(v), zp);
}

/* 16 lanes as pq_i8_rq16__avx512 without the lower clamp: cvt(min(v, hi)) + zp is the byte
 * wherever v >= lo and negative below it (cvt of a value under -2^31 gives INT_MIN, still
 * negative after + zp), so the saturating packs of pq_i8_pack64__avx512 finish the clamp. */
static inline __attribute__((always_inline)) __m512i pq_i8_rq16s_k(int kind, __m512i acc,
                                                                   __m512i add, __m512 m,
                                                                   const pq_i8_act16 *a, __m512 hi,
                                                                   __m512i zp) {
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc, add)), m);
    v = pq_i8_act16_k(kind, a, v);
    return _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_min_ps(v, hi)), zp);
}

/* 16 lanes as pq_i8_rq16s_k for a sum already holding its add term, without the upper clamp
 * either: for callers that have bounded |v| below 2^30 for every possible sum, so that cvt(v) +
 * zp stays far inside i32 and the saturating packs of pq_i8_pack64__avx512 clamp both ends. */
static inline __attribute__((always_inline)) __m512i
pq_i8_rq16u_k(int kind, __m512i acc, __m512 m, const pq_i8_act16 *a, __m512i zp) {
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), m);
    v = pq_i8_act16_k(kind, a, v);
    return _mm512_add_epi32(_mm512_cvtps_epi32(v), zp);
}

/* Four 16-lane results of pq_i8_rq16s_k as 64 bytes in order (a, b, c, d), clamped to [0, 255]
 * by the saturating packs (i32 -> i16 signed, i16 -> u8 unsigned) and put in order with one
 * dword permute: 4 shuffles instead of four 2-uop vpmovdb. */
static inline __m512i pq_i8_pack64__avx512(__m512i a, __m512i b, __m512i c, __m512i d) {
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    __m512i w = _mm512_packus_epi16(_mm512_packs_epi32(a, b), _mm512_packs_epi32(c, d));
    return _mm512_permutexvar_epi32(order, w);
}

/* Rows [0, MR) of a tile requantized (ep: the epilogue, act its activation's vectors) two rows
 * per pack; kind is the activation kind, a constant in the specialised callers below. */
static inline __attribute__((always_inline)) void
pq_i8_avx512_rows(int MR, int kind, __m512i acc[][2], const pq_i8_tile_ep *ep,
                  const pq_i8_act16 *act, __m512i ac0, __m512i ac1, __m512 mc0, __m512 mc1) {
    __m512i vz = _mm512_set1_epi32(ep->zp);
    __m512 hi = _mm512_set1_ps((float)(255 - ep->zp));
    int nj = ep->nj;
    __mmask32 ks = nj >= 32 ? ~(__mmask32)0 : (((__mmask32)1 << nj) - 1);
#pragma GCC unroll 4
    for (int r = 0; r < MR; r += 2) {
        bool pair = r + 1 < MR;
        __m512i q[2][2];
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            int rr = pair ? r + h : r;
            __m512i a0 = ac0, a1 = ac1;
            if (ep->add_row) {
                __m512i ar = _mm512_set1_epi32(ep->add_row[rr]);
                a0 = _mm512_add_epi32(a0, ar);
                a1 = _mm512_add_epi32(a1, ar);
            }
            __m512 m0 = mc0, m1 = mc1;
            if (ep->m_row) m0 = m1 = _mm512_set1_ps(ep->m_row[rr]);
            q[h][0] = pq_i8_rq16s_k(kind, acc[rr][0], a0, m0, act, hi, vz);
            q[h][1] = pq_i8_rq16s_k(kind, acc[rr][1], a1, m1, act, hi, vz);
            if (!pair) {
                q[1][0] = q[0][0];
                q[1][1] = q[0][1];
                break;
            }
        }
        __m512i b = pq_i8_pack64__avx512(q[0][0], q[0][1], q[1][0], q[1][1]);
        uint8_t *y = ep->y + (size_t)r * ep->ldy;
        if (nj >= 32) {
            _mm256_storeu_si256((__m256i *)y, _mm512_castsi512_si256(b));
            if (pair)
                _mm256_storeu_si256((__m256i *)(y + ep->ldy), _mm512_extracti64x4_epi64(b, 1));
        } else {
            _mm256_mask_storeu_epi8(y, ks, _mm512_castsi512_si256(b));
            if (pair) _mm256_mask_storeu_epi8(y + ep->ldy, ks, _mm512_extracti64x4_epi64(b, 1));
        }
    }
}

/* The tile's epilogue (ep non-NULL) or raw i32 store into c. */
static inline __attribute__((always_inline)) void
pq_i8_avx512_finish(int MR, __m512i acc[][2], int32_t *c, const pq_i8_tile_ep *ep) {
    if (!c == !ep) __builtin_unreachable(); /* exactly one (constant after inlining) */
    if (c) {
        for (int r = 0; r < MR; r++) {
            _mm512_storeu_si512((void *)(c + r * PQ_I8Z_NR), acc[r][0]);
            _mm512_storeu_si512((void *)(c + r * PQ_I8Z_NR + 16), acc[r][1]);
        }
        return;
    }
    int nj = ep->nj;
    __mmask16 k0 = nj >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nj) - 1u);
    __mmask16 k1 = nj >= 32 ? (__mmask16)0xFFFF : (__mmask16)(nj > 16 ? (1u << (nj - 16)) - 1u : 0);
    __m512i ac0 = _mm512_setzero_si512(), ac1 = _mm512_setzero_si512();
    if (ep->add_col) {
        ac0 = _mm512_maskz_loadu_epi32(k0, ep->add_col);
        ac1 = _mm512_maskz_loadu_epi32(k1, ep->add_col + 16);
    }
    __m512 mc0 = _mm512_setzero_ps(), mc1 = _mm512_setzero_ps();
    if (ep->m_col) {
        mc0 = _mm512_maskz_loadu_ps(k0, ep->m_col);
        mc1 = _mm512_maskz_loadu_ps(k1, ep->m_col + 16);
    }
    pq_i8_act16 act = pq_i8_act16_init(ep->act);
#define PQ_I8Z_ROWS(KIND) pq_i8_avx512_rows(MR, KIND, acc, ep, &act, ac0, ac1, mc0, mc1)
    PQ_I8_ACT_SPECIALISE(act.kind, PQ_I8Z_ROWS)
#undef PQ_I8Z_ROWS
}

#endif
