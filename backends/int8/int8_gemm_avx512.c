/* AVX-512 VNNI INT8 GEMM: 512-bit vpdpbusd (u8 x s8 quads into i32 lanes, no intermediate
 * saturation), 8 rows x 32 lanes per micro-kernel call, with the requantization epilogue (f32
 * multiply, clamp, round half to even: int8_gemm.h) fused on the registers, masked, no scalar
 * tail. */
#include <immintrin.h>
#include <string.h>

#include "int8_gemm.h"
#include "int8_internal.h"
#include "int8_requant_avx512.h"
#include "int8_transpose_x86.h"

#define PQ_I8Z_MR 8

/* rows_u8: dpbusd(acc, rows (u8), panel (s8)); else dpbusd(acc, panel (u8), rows (s8)). With
 * toff non-NULL the rows are read at ntaps bases a + toff[t], kq quads each, the panel's quads
 * following one another across taps (the implicit-GEMM form, pq_i8_taps_fn). */
static inline __attribute__((always_inline)) void
pq_i8_avx512_tile_taps(int MR, int rows_u8, size_t kq, const uint8_t *a, size_t lda, size_t qs,
                       const size_t *toff, int ntaps, const uint8_t *p, int32_t *c,
                       const pq_i8_tile_ep *ep) {
    /* 16 named accumulators: an array indexed in the loop made gcc copy every register each
     * iteration (vmovdqa64 between the dpbusd) */
    __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m512i c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00;
    __m512i c61 = c00, c70 = c00, c71 = c00;
#define PQ_I8Z_ROW(R)                                                                              \
    if (MR > R) {                                                                                  \
        int32_t qv;                                                                                \
        memcpy(&qv, a##R + o, 4);                                                                  \
        __m512i av = _mm512_set1_epi32(qv);                                                        \
        if (rows_u8) {                                                                             \
            c##R##0 = _mm512_dpbusd_epi32(c##R##0, av, b0);                                        \
            c##R##1 = _mm512_dpbusd_epi32(c##R##1, av, b1);                                        \
        } else {                                                                                   \
            c##R##0 = _mm512_dpbusd_epi32(c##R##0, b0, av);                                        \
            c##R##1 = _mm512_dpbusd_epi32(c##R##1, b1, av);                                        \
        }                                                                                          \
    }
    for (int t = 0; t < ntaps; t++) {
        const uint8_t *ab = toff ? a + toff[t] : a;
        const uint8_t *a0 = ab, *a1 = ab + lda, *a2 = ab + 2 * lda, *a3 = ab + 3 * lda;
        const uint8_t *a4 = ab + 4 * lda, *a5 = ab + 5 * lda, *a6 = ab + 6 * lda;
        const uint8_t *a7 = ab + 7 * lda;
        size_t o = 0;
        for (size_t q = 0; q < kq; q++, p += 4 * PQ_I8Z_NR, o += qs) {
            __m512i b0 = _mm512_loadu_si512((const void *)p);
            __m512i b1 = _mm512_loadu_si512((const void *)(p + 64));
            PQ_I8Z_ROW(0)
            PQ_I8Z_ROW(1)
            PQ_I8Z_ROW(2)
            PQ_I8Z_ROW(3)
            PQ_I8Z_ROW(4)
            PQ_I8Z_ROW(5)
            PQ_I8Z_ROW(6)
            PQ_I8Z_ROW(7)
        }
    }
#undef PQ_I8Z_ROW
    __m512i acc[PQ_I8Z_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31},
                                 {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
    pq_i8_avx512_finish(MR, acc, c, ep);
}

static inline __attribute__((always_inline)) void
pq_i8_avx512_tile(int MR, int rows_u8, size_t kq, const uint8_t *a, size_t lda, size_t qs,
                  const uint8_t *p, int32_t *c, const pq_i8_tile_ep *ep) {
    pq_i8_avx512_tile_taps(MR, rows_u8, kq, a, lda, qs, NULL, 1, p, c, ep);
}

#define PQ_I8Z_SWITCH(U, C, EP)                                                                    \
    switch (mr) {                                                                                  \
    case 1:                                                                                        \
        pq_i8_avx512_tile(1, U, kq, a, lda, qs, p, C, EP);                                         \
        break;                                                                                     \
    case 2:                                                                                        \
        pq_i8_avx512_tile(2, U, kq, a, lda, qs, p, C, EP);                                         \
        break;                                                                                     \
    case 3:                                                                                        \
        pq_i8_avx512_tile(3, U, kq, a, lda, qs, p, C, EP);                                         \
        break;                                                                                     \
    case 4:                                                                                        \
        pq_i8_avx512_tile(4, U, kq, a, lda, qs, p, C, EP);                                         \
        break;                                                                                     \
    case 5:                                                                                        \
        pq_i8_avx512_tile(5, U, kq, a, lda, qs, p, C, EP);                                         \
        break;                                                                                     \
    case 6:                                                                                        \
        pq_i8_avx512_tile(6, U, kq, a, lda, qs, p, C, EP);                                         \
        break;                                                                                     \
    case 7:                                                                                        \
        pq_i8_avx512_tile(7, U, kq, a, lda, qs, p, C, EP);                                         \
        break;                                                                                     \
    default:                                                                                       \
        pq_i8_avx512_tile(8, U, kq, a, lda, qs, p, C, EP);                                         \
        break;                                                                                     \
    }

static void pq_i8_gemm_ukernel__avx512vnni_8x32_su(int mr, size_t kq, const void *a, size_t lda,
                                                   size_t qs, const void *p, int32_t *c) {
    PQ_I8Z_SWITCH(0, c, NULL)
}

static void pq_i8_gemm_ukernel__avx512vnni_8x32_us(int mr, size_t kq, const void *a, size_t lda,
                                                   size_t qs, const void *p, int32_t *c) {
    PQ_I8Z_SWITCH(1, c, NULL)
}

static void pq_i8_gemm_ukernel_rq__avx512vnni_8x32_su(int mr, size_t kq, const void *a, size_t lda,
                                                      size_t qs, const void *p,
                                                      const pq_i8_tile_ep *ep) {
    PQ_I8Z_SWITCH(0, NULL, ep)
}

static void pq_i8_gemm_ukernel_rq__avx512vnni_8x32_us(int mr, size_t kq, const void *a, size_t lda,
                                                      size_t qs, const void *p,
                                                      const pq_i8_tile_ep *ep) {
    PQ_I8Z_SWITCH(1, NULL, ep)
}

/* The implicit-GEMM tile (pq_i8_taps_fn): 8 output positions x 32 channels, every tap. */
static void pq_i8_taps__avx512vnni_8x32(int mr, const uint8_t *x, size_t lda, const size_t *toff,
                                        int ntaps, size_t cq, const void *p,
                                        const pq_i8_tile_ep *ep) {
    const uint8_t *a = x, *pp = p;
#define PQ_I8Z_TAPS(R) pq_i8_avx512_tile_taps(R, 1, cq, a, lda, 4, toff, ntaps, pp, NULL, ep)
    switch (mr) {
    case 1:
        PQ_I8Z_TAPS(1);
        break;
    case 2:
        PQ_I8Z_TAPS(2);
        break;
    case 3:
        PQ_I8Z_TAPS(3);
        break;
    case 4:
        PQ_I8Z_TAPS(4);
        break;
    case 5:
        PQ_I8Z_TAPS(5);
        break;
    case 6:
        PQ_I8Z_TAPS(6);
        break;
    case 7:
        PQ_I8Z_TAPS(7);
        break;
    default:
        PQ_I8Z_TAPS(8);
        break;
    }
#undef PQ_I8Z_TAPS
}

static void pq_i8_requant__avx512(const int32_t *acc, size_t n, int32_t add, float ms,
                                  const float *mv, const pq_i8_act *act, int32_t zp, uint8_t *y) {
    pq_i8_act16 a16 = pq_i8_act16_init(act);
    __m512i va = _mm512_set1_epi32(add), vz = _mm512_set1_epi32(zp);
    __m512 vm = _mm512_set1_ps(ms), lo = _mm512_set1_ps((float)-zp);
    __m512 hi = _mm512_set1_ps((float)(255 - zp));
    for (size_t j = 0; j < n; j += 16) {
        size_t left = n - j < 16 ? n - j : 16;
        __mmask16 k = (__mmask16)((1u << left) - 1u);
        __m512i a = _mm512_maskz_loadu_epi32(k, acc + j);
        __m512 m = mv ? _mm512_maskz_loadu_ps(k, mv + j) : vm;
        __m512i q = pq_i8_rq16__avx512(a, va, m, &a16, lo, hi, vz);
        _mm_mask_storeu_epi8(y + j, k, _mm512_cvtepi32_epi8(q));
    }
}

/* ---- packing four tap rows into quads (x == 0: this table never flips) ---- */

static inline void pq_i8_quad16__avx512(const uint8_t *r0, const uint8_t *r1, const uint8_t *r2,
                                        const uint8_t *r3, uint8_t *o) {
    __m128i a = _mm_loadu_si128((const __m128i *)r0), b = _mm_loadu_si128((const __m128i *)r1);
    __m128i c = _mm_loadu_si128((const __m128i *)r2), d = _mm_loadu_si128((const __m128i *)r3);
    __m128i ab0 = _mm_unpacklo_epi8(a, b), ab1 = _mm_unpackhi_epi8(a, b);
    __m128i cd0 = _mm_unpacklo_epi8(c, d), cd1 = _mm_unpackhi_epi8(c, d);
    _mm_storeu_si128((__m128i *)o, _mm_unpacklo_epi16(ab0, cd0));
    _mm_storeu_si128((__m128i *)(o + 16), _mm_unpackhi_epi16(ab0, cd0));
    _mm_storeu_si128((__m128i *)(o + 32), _mm_unpacklo_epi16(ab1, cd1));
    _mm_storeu_si128((__m128i *)(o + 48), _mm_unpackhi_epi16(ab1, cd1));
}

/* 32 lanes: the 128-bit halves of the in-lane interleave put back in lane order. */
static inline void pq_i8_quad32__avx512(const uint8_t *r0, const uint8_t *r1, const uint8_t *r2,
                                        const uint8_t *r3, uint8_t *o) {
    __m256i a = _mm256_loadu_si256((const __m256i *)r0),
            b = _mm256_loadu_si256((const __m256i *)r1);
    __m256i c = _mm256_loadu_si256((const __m256i *)r2),
            d = _mm256_loadu_si256((const __m256i *)r3);
    __m256i ab0 = _mm256_unpacklo_epi8(a, b), ab1 = _mm256_unpackhi_epi8(a, b);
    __m256i cd0 = _mm256_unpacklo_epi8(c, d), cd1 = _mm256_unpackhi_epi8(c, d);
    __m256i w0 = _mm256_unpacklo_epi16(ab0, cd0); /* lanes 0-3 | 16-19 */
    __m256i w1 = _mm256_unpackhi_epi16(ab0, cd0); /* 4-7 | 20-23 */
    __m256i w2 = _mm256_unpacklo_epi16(ab1, cd1); /* 8-11 | 24-27 */
    __m256i w3 = _mm256_unpackhi_epi16(ab1, cd1); /* 12-15 | 28-31 */
    _mm256_storeu_si256((__m256i *)o, _mm256_permute2x128_si256(w0, w1, 0x20));
    _mm256_storeu_si256((__m256i *)(o + 32), _mm256_permute2x128_si256(w2, w3, 0x20));
    _mm256_storeu_si256((__m256i *)(o + 64), _mm256_permute2x128_si256(w0, w1, 0x31));
    _mm256_storeu_si256((__m256i *)(o + 96), _mm256_permute2x128_si256(w2, w3, 0x31));
}

/* 64 lanes over two panels: lanes 0-31 to o0, 32-63 to o1 (a 4x4 transpose of the 128-bit
 * blocks of the in-lane interleave puts them in lane order). */
static inline void pq_i8_quad64__avx512(const uint8_t *r0, const uint8_t *r1, const uint8_t *r2,
                                        const uint8_t *r3, uint8_t *o0, uint8_t *o1) {
    __m512i a = _mm512_loadu_si512((const void *)r0), b = _mm512_loadu_si512((const void *)r1);
    __m512i c = _mm512_loadu_si512((const void *)r2), d = _mm512_loadu_si512((const void *)r3);
    __m512i ab0 = _mm512_unpacklo_epi8(a, b), ab1 = _mm512_unpackhi_epi8(a, b);
    __m512i cd0 = _mm512_unpacklo_epi8(c, d), cd1 = _mm512_unpackhi_epi8(c, d);
    __m512i w0 = _mm512_unpacklo_epi16(ab0, cd0); /* lanes 0-3 | 16-19 | 32-35 | 48-51 */
    __m512i w1 = _mm512_unpackhi_epi16(ab0, cd0); /* 4-7 | 20-23 | ... */
    __m512i w2 = _mm512_unpacklo_epi16(ab1, cd1); /* 8-11 | 24-27 | ... */
    __m512i w3 = _mm512_unpackhi_epi16(ab1, cd1); /* 12-15 | 28-31 | ... */
    __m512i t0 = _mm512_shuffle_i32x4(w0, w1, 0x44), t1 = _mm512_shuffle_i32x4(w2, w3, 0x44);
    __m512i t2 = _mm512_shuffle_i32x4(w0, w1, 0xEE), t3 = _mm512_shuffle_i32x4(w2, w3, 0xEE);
    _mm512_storeu_si512((void *)o0, _mm512_shuffle_i32x4(t0, t1, 0x88));
    _mm512_storeu_si512((void *)(o0 + 64), _mm512_shuffle_i32x4(t0, t1, 0xDD));
    _mm512_storeu_si512((void *)o1, _mm512_shuffle_i32x4(t2, t3, 0x88));
    _mm512_storeu_si512((void *)(o1 + 64), _mm512_shuffle_i32x4(t2, t3, 0xDD));
}

static void pq_i8_packq__avx512(const uint8_t *const rb[4], const pq_i8_chunk *ch, size_t nch,
                                size_t qoff, uint8_t x, bool slack, bool last, const uint8_t *ztail,
                                uint8_t *dst) {
    (void)x; /* never flipped */
    for (size_t c = 0; c < nch; c++) {
        size_t src = ch[c].src, n = ch[c].n, t = 0;
        const uint8_t *r0 = rb[0] ? rb[0] + src : ztail + ch[c].j;
        const uint8_t *r1 = rb[1] ? rb[1] + src : ztail + ch[c].j;
        const uint8_t *r2 = rb[2] ? rb[2] + src : ztail + ch[c].j;
        const uint8_t *r3 = rb[3] ? rb[3] + src : ztail + ch[c].j;
        uint8_t *o = dst + ch[c].dst + qoff;
        if (n == PQ_I8Z_NR && c + 1 < nch && ch[c + 1].n == PQ_I8Z_NR &&
            ch[c + 1].src == src + PQ_I8Z_NR && ch[c + 1].j == ch[c].j + PQ_I8Z_NR) {
            /* two whole panels of one run */
            pq_i8_quad64__avx512(r0, r1, r2, r3, o, dst + ch[c + 1].dst + qoff);
            c++;
            continue;
        }
        for (; t + 32 <= n; t += 32)
            pq_i8_quad32__avx512(r0 + t, r1 + t, r2 + t, r3 + t, o + 4 * t);
        for (; t + 16 <= n; t += 16)
            pq_i8_quad16__avx512(r0 + t, r1 + t, r2 + t, r3 + t, o + 4 * t);
        if (t < n && slack) {
            if (ch[c].overrun || !last) {
                pq_i8_quad16__avx512(r0 + t, r1 + t, r2 + t, r3 + t, o + 4 * t);
            } else {
                uint32_t tmp[16];
                pq_i8_quad16__avx512(r0 + t, r1 + t, r2 + t, r3 + t, (uint8_t *)tmp);
                for (size_t u = 0; u < n - t; u++)
                    memcpy(o + 4 * (t + u), tmp + u, 4);
            }
            t = n;
        }
        for (; t < n; t++) {
            o[4 * t] = r0[t];
            o[4 * t + 1] = r1[t];
            o[4 * t + 2] = r2[t];
            o[4 * t + 3] = r3[t];
        }
    }
}

/* ---- depthwise: 16-lane f32 FMAs on exact integers, up to 64 outputs in flight ---- */

/* out[i] = sum_t w[t] * src[off[t] + i] for i < n (n <= 64), as i32. */
static inline void pq_i8_dw64__avx512(const float *src, const size_t *off, const float *w, int KK,
                                      int n, int32_t *out) {
    __mmask16 k[4];
    for (int i = 0; i < 4; i++) {
        int rem = n - 16 * i;
        k[i] = rem >= 16 ? (__mmask16)0xFFFF : (__mmask16)(rem > 0 ? (1u << rem) - 1u : 0);
    }
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    if (n > 48) {
        for (int t = 0; t < KK; t++) {
            const float *p = src + off[t];
            __m512 wv = _mm512_set1_ps(w[t]);
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(p), wv, a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(p + 16), wv, a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(p + 32), wv, a2);
            a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k[3], p + 48), wv, a3);
        }
    } else {
        for (int t = 0; t < KK; t++) {
            const float *p = src + off[t];
            __m512 wv = _mm512_set1_ps(w[t]);
            a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k[0], p), wv, a0);
            a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k[1], p + 16), wv, a1);
            a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k[2], p + 32), wv, a2);
        }
    }
    _mm512_mask_storeu_epi32(out, k[0], _mm512_cvtps_epi32(a0));
    _mm512_mask_storeu_epi32(out + 16, k[1], _mm512_cvtps_epi32(a1));
    _mm512_mask_storeu_epi32(out + 32, k[2], _mm512_cvtps_epi32(a2));
    _mm512_mask_storeu_epi32(out + 48, k[3], _mm512_cvtps_epi32(a3));
}

static void pq_i8_dw__avx512(const float *pad, const pq_i8_dw_geom *g, const float *w,
                             int32_t *acc) {
    int KK = g->KH * g->KW;
    const size_t *off = g->off;
    /* short rows, stride 1 down: the outputs over whole padded rows as one run (the columns
     * past OW are computed and dropped), fewer partial vectors */
    size_t wide = (size_t)(g->OH - 1) * g->rs + (size_t)g->OW;
    if (g->sh == 1 && g->OW < 32 && g->OH > 1 && wide <= 4096) {
        int32_t buf[4096 + 64];
        for (size_t p = 0; p < wide; p += 64)
            pq_i8_dw64__avx512(pad + p, off, w, KK, wide - p < 64 ? (int)(wide - p) : 64, buf + p);
        for (int oh = 0; oh < g->OH; oh++)
            memcpy(acc + (size_t)oh * (size_t)g->OW, buf + (size_t)oh * g->rs,
                   (size_t)g->OW * sizeof(int32_t));
        return;
    }
    for (int oh = 0; oh < g->OH; oh++) {
        const float *base = pad + (size_t)(oh * g->sh) * g->rs;
        int32_t *ar = acc + (size_t)oh * (size_t)g->OW;
        for (int ow = 0; ow < g->OW; ow += 64)
            pq_i8_dw64__avx512(base + ow, off, w, KK, g->OW - ow < 64 ? g->OW - ow : 64, ar + ow);
    }
}

/* The f32 plane: zeroed whole, then every input row converted (u8 -> f32 - zp, 16 or 32 at a
 * time) and stored at its padded columns; stride 2 splits even and odd input columns with
 * vpermt2ps into their phases (input column iw is padded column iw + pl). */
static void pq_i8_dwpad__avx512(const uint8_t *x, int64_t H, int64_t W, int64_t pt, int64_t pl,
                                float zp, size_t hr, const pq_i8_dw_geom *g, float *row,
                                float *pad) {
    size_t sw = (size_t)g->sw, wq = g->rs;
    if (sw > 2) {
        pq_i8_dwpad__portable(x, H, W, pt, pl, zp, hr, g, row, pad);
        return;
    }
    memset(pad, 0, sw * g->ps * sizeof(float));
    /* input columns that land inside the copy: iw + pl < sw * wq */
    int64_t wn = (int64_t)(sw * wq) - pl < W ? (int64_t)(sw * wq) - pl : W;
    int64_t r0 = pt > 0 ? pt : 0, r1 = pt + H < (int64_t)hr ? pt + H : (int64_t)hr;
    __m512 vz = _mm512_set1_ps(zp);
    __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
    for (int64_t r = r0; r < r1 && wn > 0; r++) {
        const uint8_t *xr = x + (r - pt) * W;
        if (sw == 1) {
            float *d = pad + (size_t)r * wq + pl;
            for (int64_t i = 0; i < wn; i += 16) {
                int64_t n = wn - i < 16 ? wn - i : 16;
                __mmask16 k = (__mmask16)(n == 16 ? 0xFFFF : (1u << n) - 1u);
                __m512i v = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, xr + i));
                _mm512_mask_storeu_ps(d + i, k, _mm512_sub_ps(_mm512_cvtepi32_ps(v), vz));
            }
            continue;
        }
        /* even iw = 2i: phase pl % 2, column i + pl / 2; odd iw = 2i + 1: phase (pl + 1) % 2,
         * column i + (pl + 1) / 2 */
        float *de = pad + (size_t)(pl % 2) * g->ps + (size_t)r * wq + (size_t)(pl / 2);
        float *dd = pad + (size_t)((pl + 1) % 2) * g->ps + (size_t)r * wq + (size_t)((pl + 1) / 2);
        for (int64_t i = 0; i < wn; i += 32) { /* input columns i .. i + 31 */
            int64_t n = wn - i < 32 ? wn - i : 32, ne = (n + 1) / 2, no = n / 2;
            __mmask32 k = (__mmask32)(n == 32 ? 0xFFFFFFFFu : (1u << n) - 1u);
            __m256i b = _mm256_maskz_loadu_epi8(k, xr + i);
            __m512 lo = _mm512_sub_ps(
                _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(b))), vz);
            __m512 hi = _mm512_sub_ps(
                _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_extracti128_si256(b, 1))), vz);
            _mm512_mask_storeu_ps(de + i / 2, (__mmask16)((1u << ne) - 1u),
                                  _mm512_permutex2var_ps(lo, ev, hi));
            _mm512_mask_storeu_ps(dd + i / 2, (__mmask16)((1u << no) - 1u),
                                  _mm512_permutex2var_ps(lo, od, hi));
        }
    }
    (void)row;
}

const pq_i8_kernels pq_i8_kernels_avx512 = {
    .isa = PQ_I8_AVX512,
    .name = "avx512",
    .mr = PQ_I8Z_MR,
    .nr = PQ_I8Z_NR,
    .kb = 4,
    .elem = 1,
    .flip = false,
    .ukernel = {pq_i8_gemm_ukernel__avx512vnni_8x32_su, pq_i8_gemm_ukernel__avx512vnni_8x32_us},
    .ukernel_rq = {pq_i8_gemm_ukernel_rq__avx512vnni_8x32_su,
                   pq_i8_gemm_ukernel_rq__avx512vnni_8x32_us},
    .requant = pq_i8_requant__avx512,
    .packq = pq_i8_packq__avx512,
    .dw = pq_i8_dw__avx512,
    .dwpad = pq_i8_dwpad__avx512,
    .dwc = pq_i8_dwc__avx512,
    .dwc_lanes = 16,
    .taps = pq_i8_taps__avx512vnni_8x32,
    .gemv_rq = pq_i8_gemv_rq__avx512vnni,
    .transpose = pq_i8t_out_rows__avx512,
    .taps_copy = pq_i8t_copy_block__avx512,
};
