/* AVX2 requantization epilogue shared by the AVX2 and AVX-VNNI translation units (included by
 * each, compiled with that file's flags): f32 multiply, optional fused activation, clamp, round
 * half to even (int8_gemm.h); and the depthwise kernel with 16 channels in two 8-lane halves
 * (pq_i8_dwc_fn) that both tables use. */
#ifndef PQ_INT8_REQUANT_X86_H
#define PQ_INT8_REQUANT_X86_H

#include <immintrin.h>
#include <string.h>

#include "int8_gemm.h"
#include "int8_transpose_x86.h"

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

/* Entries idx (0..15) of the 16 floats at t, 8 lanes: two vpermps and a blend. */
static inline __m256 pq_i8_lookup16__avx2(const float *t, __m256i idx) {
    __m256 lo = _mm256_permutevar8x32_ps(_mm256_loadu_ps(t), idx);
    __m256 hi = _mm256_permutevar8x32_ps(_mm256_loadu_ps(t + 8), idx);
    return _mm256_blendv_ps(lo, hi,
                            _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(7))));
}

/* pq_i8_sigmoid_f32 on 8 finite lanes: the same operations in the same order. */
static inline __m256 pq_i8_sigmoid8__avx2(__m256 r) {
    const float(*t)[16] = pq_i8_sigmoid_table();
    __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), r);
    a = _mm256_min_ps(a, _mm256_set1_ps(16.0f));
    __m256i i = _mm256_min_epi32(_mm256_cvttps_epi32(a), _mm256_set1_epi32(15));
    __m256 f = _mm256_sub_ps(a, _mm256_cvtepi32_ps(i));
    __m256 p = pq_i8_lookup16__avx2(t[4], i);
    for (int k = 3; k >= 0; k--)
        p = _mm256_fmadd_ps(p, f, pq_i8_lookup16__avx2(t[k], i));
    __m256 neg = _mm256_cmp_ps(r, _mm256_setzero_ps(), _CMP_LT_OQ);
    return _mm256_blendv_ps(p, _mm256_sub_ps(_mm256_set1_ps(1.0f), p), neg);
}

/* pq_i8_act_f32 on 8 lanes for the activation kind `kind` (a constant in the specialised callers:
 * the switch folds away), then the multiply by 1 / s_y (finite inputs: min / max equal the scalar
 * compares up to the sign of a zero, which rounding erases). */
static inline __attribute__((always_inline)) __m256 pq_i8_act8_k(int kind, const pq_i8_act8 *a,
                                                                 __m256 r) {
    __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f), h;
    switch (kind) {
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
        h = _mm256_fmadd_ps(a->alpha, r, a->beta);
        r = _mm256_min_ps(_mm256_max_ps(h, zero), one);
        break;
    case PQ_I8_ACT_HARD_SWISH:
        h = _mm256_fmadd_ps(r, _mm256_set1_ps(1.0f / 6.0f), _mm256_set1_ps(0.5f));
        h = _mm256_min_ps(_mm256_max_ps(h, zero), one);
        r = _mm256_mul_ps(r, h);
        break;
    case PQ_I8_ACT_SIGMOID:
        r = pq_i8_sigmoid8__avx2(r);
        break;
    case PQ_I8_ACT_SWISH:
        r = _mm256_mul_ps(r, pq_i8_sigmoid8__avx2(r));
        break;
    default:
        return r;
    }
    return _mm256_mul_ps(r, a->inv);
}

/* 8 lanes: (float)(acc + add) * m (then the activation of kind `kind`) clamped above at hi = 255
 * - zp, rounded to nearest even (vcvtps2dq in the default mode), + zp: the byte where the value
 * is >= -zp, negative below it (a value under -2^31 converts to INT_MIN, still negative + zp), so
 * the saturating packs of pq_i8_pack16__avx2 finish the clamp. Needs finite m and activation
 * constants. */
static inline __attribute__((always_inline)) __m256i pq_i8_rq8_k(int kind, __m256i acc, __m256i add,
                                                                 __m256 m, const pq_i8_act8 *a,
                                                                 __m256 hi, __m256i zp) {
    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(acc, add)), m);
    v = pq_i8_act8_k(kind, a, v);
    return _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_min_ps(v, hi)), zp);
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
    __m256 vm = _mm256_set1_ps(ms);
    __m256 hi = _mm256_set1_ps((float)(255 - zp));
    pq_i8_act8 a = pq_i8_act8_init(act);
    size_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m256 m0 = mv ? _mm256_loadu_ps(mv + j) : vm, m1 = mv ? _mm256_loadu_ps(mv + j + 8) : vm;
        __m256i q0 =
            pq_i8_rq8_k(a.kind, _mm256_loadu_si256((const __m256i *)(acc + j)), va, m0, &a, hi, vz);
        __m256i q1 = pq_i8_rq8_k(a.kind, _mm256_loadu_si256((const __m256i *)(acc + j + 8)), va, m1,
                                 &a, hi, vz);
        _mm_storeu_si128((__m128i *)(y + j), pq_i8_pack16__avx2(q0, q1));
    }
    if (j < n) pq_i8_requant__scalar(acc + j, n - j, add, ms, mv ? mv + j : NULL, act, zp, y + j);
}

/* The fused epilogue of a 16-lane tile (AVX2 and AVX-VNNI micro-kernels): the per-lane terms
 * loaded once per call, then pq_i8_ep16_rows. */
typedef struct pq_i8_ep16 {
    __m256i ac0, ac1, vz;
    __m256 mc0, mc1, hi;
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
    e->hi = _mm256_set1_ps((float)(255 - ep->zp));
    e->act = pq_i8_act8_init(ep->act);
}

static inline __attribute__((always_inline)) void pq_i8_ep16_row_k(int kind, const pq_i8_ep16 *e,
                                                                   const pq_i8_tile_ep *ep, int r,
                                                                   __m256i a0, __m256i a1) {
    __m256i add0 = e->ac0, add1 = e->ac1;
    if (ep->add_row) {
        __m256i ar = _mm256_set1_epi32(ep->add_row[r]);
        add0 = _mm256_add_epi32(add0, ar);
        add1 = _mm256_add_epi32(add1, ar);
    }
    __m256 m0 = e->mc0, m1 = e->mc1;
    if (ep->m_row) m0 = m1 = _mm256_set1_ps(ep->m_row[r]);
    __m256i q0 = pq_i8_rq8_k(kind, a0, add0, m0, &e->act, e->hi, e->vz);
    __m256i q1 = pq_i8_rq8_k(kind, a1, add1, m1, &e->act, e->hi, e->vz);
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

/* Rows [0, MR) of a tile's accumulators acc[r][0..1] through pq_i8_ep16_row_k, the activation
 * specialised. */
#define PQ_I8_EP16_ROW_LOOP(KIND)                                                                  \
    for (int r = 0; r < MR; r++)                                                                   \
        pq_i8_ep16_row_k(KIND, e, ep, r, acc[r][0], acc[r][1]);
static inline __attribute__((always_inline)) void
pq_i8_ep16_rows(int MR, const pq_i8_ep16 *e, const pq_i8_tile_ep *ep, __m256i acc[][2]) {
    PQ_I8_ACT_SPECIALISE(e->act.kind, PQ_I8_EP16_ROW_LOOP)
}
#undef PQ_I8_EP16_ROW_LOOP

/* ---- depthwise with 16 channels per block, two 8-lane f32 halves (pq_i8_dwc_fn) ---- */

/* Row c < nr: n (<= 16) bytes at src + c * ld (the rest zero, never read past n); then the
 * transpose. */
static inline void pq_i8_tr_load__avx2(const uint8_t *src, size_t ld, int nr, int64_t n,
                                       __m128i v[16]) {
    for (int c = 0; c < 16; c++) {
        if (c >= nr) {
            v[c] = _mm_setzero_si128();
        } else if (n >= 16) {
            v[c] = _mm_loadu_si128((const __m128i *)(src + (size_t)c * ld));
        } else {
            uint8_t t[16] = {0};
            memcpy(t, src + (size_t)c * ld, (size_t)n);
            v[c] = _mm_loadu_si128((const __m128i *)t);
        }
    }
    pq_i8_tr16x16__sse2(v);
}

/* Input rows [0, nrow) of 16 channel planes from x (plane stride hw, rows of W bytes one after
 * another; channels >= nc read as zero) into a band plane: column iw < wn of row i at d[(i * wp +
 * iw) * 16 + channel] = (float)byte - zp, columns >= wn skipped. The rows are one run of nrow * W
 * bytes per channel, so a 16 x 16 transpose covers 16 bytes of it whatever W is (per row, a 7- or
 * 14-wide map took a partial, copied load per channel and row). */
static inline void pq_i8_plane_run__avx2(const uint8_t *x, size_t hw, int nc, int64_t W,
                                         int64_t nrow, int64_t wn, size_t wp, __m256 vzx,
                                         float *d) {
    int64_t L = nrow * W, col = 0;
    float *dr = d; /* the current row's column 0 */
    for (int64_t p0 = 0; p0 < L; p0 += 16) {
        int64_t n = L - p0 < 16 ? L - p0 : 16;
        __m128i v[16];
        pq_i8_tr_load__avx2(x + p0, hw, nc, n, v);
        for (int64_t j = 0; j < n; j++) {
            if (col < wn) {
                float *o = dr + (size_t)col * 16;
                __m256 f0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v[j]));
                __m256 f1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(v[j], 8)));
                _mm256_storeu_ps(o, _mm256_sub_ps(f0, vzx));
                _mm256_storeu_ps(o + 8, _mm256_sub_ps(f1, vzx));
            }
            if (++col == W) {
                col = 0;
                dr += wp * 16;
            }
        }
    }
}

/* NB outputs (16 channels each, two halves): exact f32 tap sums, requantized to 16 bytes each. */
static inline __attribute__((always_inline)) void
pq_i8_dwc_blk__avx2(int NB, int kind, const float *p, const int *po, const int *toff,
                    const float *wv, int KK, const pq_i8_ep16 *e, uint8_t *t) {
    __m256 a[4][2];
    const float *q[4];
    for (int i = 0; i < NB; i++) {
        a[i][0] = a[i][1] = _mm256_setzero_ps();
        q[i] = p + po[i];
    }
    for (int k = 0; k < KK; k++) {
        __m256 w0 = _mm256_load_ps(wv + 16 * k), w1 = _mm256_load_ps(wv + 16 * k + 8);
        int o = toff[k];
        for (int i = 0; i < NB; i++) {
            a[i][0] = _mm256_fmadd_ps(_mm256_loadu_ps(q[i] + o), w0, a[i][0]);
            a[i][1] = _mm256_fmadd_ps(_mm256_loadu_ps(q[i] + o + 8), w1, a[i][1]);
        }
    }
    for (int i = 0; i < NB; i++) {
        __m256i q0 =
            pq_i8_rq8_k(kind, _mm256_cvtps_epi32(a[i][0]), e->ac0, e->mc0, &e->act, e->hi, e->vz);
        __m256i q1 =
            pq_i8_rq8_k(kind, _mm256_cvtps_epi32(a[i][1]), e->ac1, e->mc1, &e->act, e->hi, e->vz);
        _mm_storeu_si128((__m128i *)(t + 16 * i), pq_i8_pack16__avx2(q0, q1));
    }
}

/* The np outputs of one band in blocks of 4 / 1 positions (kind: the activation kind). */
static inline __attribute__((always_inline)) void
pq_i8_dwc_band__avx2(int kind, const pq_i8_dwc *a, size_t np, int rstep, int cstep, const float *P,
                     const int *toff, const float *wv, int KK, const pq_i8_ep16 *e, uint8_t *t) {
    size_t p = 0;
    int po[4], rbase = 0, ow = 0; /* position p is (row base rbase, column ow) */
    while (p < np) {
        int NB = np - p >= 4 ? 4 : 1;
        for (int i = 0; i < NB; i++) {
            po[i] = rbase + ow * cstep;
            if (++ow == a->OW) {
                ow = 0;
                rbase += rstep;
            }
        }
        if (NB == 4)
            pq_i8_dwc_blk__avx2(4, kind, P, po, toff, wv, KK, e, t + 16 * p);
        else
            pq_i8_dwc_blk__avx2(1, kind, P, po, toff, wv, KK, e, t + 16 * p);
        p += (size_t)NB;
    }
}

/* The same algorithm as the AVX-512 f32 one (backends/int8/int8_dwc_avx512.c): a channel-last f32
 * plane of x - zp per band of output rows, taps as multiply-adds on the channel lanes, the
 * epilogue on the lanes (bias and multiplier per channel), byte transposes back to NCHW. */
static inline void pq_i8_dwc_body__avx2(const pq_i8_dwc *a) {
    int toff[256];
    pq_i8_dwc_plane pg = pq_i8_dwc_plane_of(a, 16, toff);
    size_t wp = pg.wp, hw = (size_t)(a->H * a->W), osp = (size_t)(a->OH * a->OW);
    int KK = (int)(a->KH * a->KW), nc = a->nc;
    float *P = a->scratch;
    float *wv = P + pg.hb * wp * 16;
    uint8_t *T = (uint8_t *)(wv + (size_t)(KK + 16) * 16);
    for (int k0 = 0; k0 < KK; k0 += 16) {
        __m128i v[16];
        pq_i8_tr_load__avx2((const uint8_t *)a->w + k0, (size_t)KK, nc, KK - k0, v);
        for (int k = 0; k < 16 && k0 + k < KK; k++) {
            _mm256_store_ps(wv + 16 * (k0 + k), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v[k])));
            _mm256_store_ps(wv + 16 * (k0 + k) + 8,
                            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v[k], 8))));
        }
    }
    /* the per-lane epilogue terms: bias and multiplier per channel (zero past nc) */
    int32_t tb[16] = {0};
    float tm[16] = {0};
    if (a->bias) memcpy(tb, a->bias, (size_t)nc * sizeof(int32_t));
    memcpy(tm, a->m, (size_t)nc * sizeof(float));
    pq_i8_tile_ep tep = {.add_col = tb, .m_col = tm, .act = a->act, .zp = a->zp_y, .nj = 16};
    pq_i8_ep16 e;
    pq_i8_ep16_init(&e, &tep);
    __m256 vzx = _mm256_set1_ps((float)a->zp_x);
    int64_t ob = a->oh_begin, oe = a->oh_end > ob ? a->oh_end : a->OH;
    for (int64_t oh0 = ob; oh0 < oe; oh0 += pg.bh) {
        int64_t nb = oe - oh0 < pg.bh ? oe - oh0 : pg.bh;
        size_t rows = (size_t)((nb - 1) * a->sh + (a->KH - 1) * a->dh + 1);
        int64_t ih0 = oh0 * a->sh - a->pt, ia = ih0 < 0 ? 0 : ih0;
        int64_t ie = ih0 + (int64_t)rows < a->H ? ih0 + (int64_t)rows : a->H;
        pq_i8_dwc_plane_pads(a, &pg, 16, ih0, rows, P);
        if (ie > ia && pg.wn > 0)
            pq_i8_plane_run__avx2(a->x + (size_t)ia * (size_t)a->W, hw, nc, a->W, ie - ia, pg.wn,
                                  wp, vzx, P + ((size_t)(ia - ih0) * wp + pg.cl) * 16);
        size_t np = (size_t)(nb * a->OW);
        uint8_t *t = T + (size_t)((oh0 - ob) * a->OW) * 16;
        int rstep = (int)((size_t)a->sh * wp * 16), cstep = (int)a->sw * 16;
#define PQ_I8_DWC_BAND(KIND) pq_i8_dwc_band__avx2(KIND, a, np, rstep, cstep, P, toff, wv, KK, &e, t)
        PQ_I8_ACT_SPECIALISE(e.act.kind, PQ_I8_DWC_BAND)
#undef PQ_I8_DWC_BAND
    }
    size_t pb = (size_t)(ob * a->OW), pn = (size_t)((oe - ob) * a->OW);
    for (size_t p0 = 0; p0 < pn; p0 += 16) {
        size_t n = pn - p0 < 16 ? pn - p0 : 16;
        __m128i v[16];
        pq_i8_tr_load__avx2(T + p0 * 16, 16, (int)n, 16, v);
        for (int c = 0; c < nc; c++) {
            uint8_t *y = a->y + (size_t)c * osp + pb + p0;
            if (n == 16) {
                _mm_storeu_si128((__m128i *)y, v[c]);
            } else {
                uint8_t tt[16];
                _mm_storeu_si128((__m128i *)tt, v[c]);
                memcpy(y, tt, n);
            }
        }
    }
}

#endif
