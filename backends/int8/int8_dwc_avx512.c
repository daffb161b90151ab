/* AVX-512 depthwise convolution with 16 channels in the lanes (pq_i8_dwc_fn of the AVX-512 and
 * AMX tables): u8 tap quads through vpdpbusd where the geometry allows and the CPU has VBMI, else
 * exact f32 tap sums; both bit-exact with the reference. */
#include <immintrin.h>
#include <stdbool.h>
#include <string.h>

#include "backends/cpu.h"
#include "int8_gemm.h"
#include "int8_internal.h"
#include "int8_requant_avx512.h"
#include "int8_transpose_x86.h"

/* ---- shared: band walking, the output transpose ---- */

/* NB outputs of 16 channels: the f32 kernel's tap sums acc[i] = sum_t w[t] * p[po[i] + toff[t]]
 * (exact integers in f32) or, with quad, the i32 sums of nt vpdpbusd over 64-byte tap quads at
 * q + po[i] + toff[t]; requantized (kind: the activation kind, constant in the specialised
 * callers) into 16 bytes each at t + 16 i. */
static inline __attribute__((always_inline)) void
pq_i8_dwc_blk__avx512(int NB, int quad, int kind, const void *p, const int *po, const int *toff,
                      const void *wv, int nt, __m512i add, __m512 m, const pq_i8_act16 *act,
                      __m512 hi, __m512i vz, uint8_t *t) {
    __m512i v[8];
    if (quad) {
        /* named accumulators and base pointers: with an indexed array gcc copied every
         * accumulator to another register (and one to the stack) on each tap */
        const uint8_t *q = p;
        const __m512i *wq = wv;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
                a7 = a0;
        const uint8_t *q0 = q + po[0], *q1 = q + po[NB > 1 ? 1 : 0], *q2 = q + po[NB > 2 ? 2 : 0],
                      *q3 = q + po[NB > 3 ? 3 : 0], *q4 = q + po[NB > 4 ? 4 : 0],
                      *q5 = q + po[NB > 5 ? 5 : 0], *q6 = q + po[NB > 6 ? 6 : 0],
                      *q7 = q + po[NB > 7 ? 7 : 0];
#define PQ_I8Z_DOT(I)                                                                              \
    if (NB > I)                                                                                    \
        __asm__("vpdpbusd %2, %1, %0"                                                              \
                : "+v"(a##I)                                                                       \
                : "v"(_mm512_loadu_si512((const void *)(q##I + o))), "v"(w));
        for (int k = 0; k < nt; k++) {
            __m512i w = _mm512_load_si512((const void *)(wq + k));
            int o = toff[k];
            PQ_I8Z_DOT(0)
            PQ_I8Z_DOT(1)
            PQ_I8Z_DOT(2)
            PQ_I8Z_DOT(3)
            PQ_I8Z_DOT(4)
            PQ_I8Z_DOT(5)
            PQ_I8Z_DOT(6)
            PQ_I8Z_DOT(7)
        }
#undef PQ_I8Z_DOT
        __m512i acc[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
        for (int i = 0; i < NB; i++)
            v[i] = pq_i8_rq16s_k(kind, acc[i], add, m, act, hi, vz);
    } else {
        const float *pf = p, *wf = wv;
        __m512 acc[8];
        for (int i = 0; i < NB; i++)
            acc[i] = _mm512_setzero_ps();
        for (int k = 0; k < nt; k++) {
            __m512 w = _mm512_load_ps(wf + 16 * k);
            int o = toff[k];
            for (int i = 0; i < NB; i++)
                acc[i] = _mm512_fmadd_ps(_mm512_loadu_ps(pf + po[i] + o), w, acc[i]);
        }
        for (int i = 0; i < NB; i++)
            v[i] = pq_i8_rq16s_k(kind, _mm512_cvtps_epi32(acc[i]), add, m, act, hi, vz);
    }
    if (NB % 4 == 0) {
        for (int i = 0; i < NB; i += 4)
            _mm512_storeu_si512((void *)(t + 16 * i),
                                pq_i8_pack64__avx512(v[i], v[i + 1], v[i + 2], v[i + 3]));
        return;
    }
    for (int i = 0; i < NB; i++)
        _mm_storeu_si128((__m128i *)(t + 16 * i),
                         _mm512_castsi512_si128(pq_i8_pack64__avx512(v[i], v[i], v[i], v[i])));
}

/* The np outputs of one band (from its first output row) in blocks of 8 / 4 / 1 positions:
 * position (row r, column ow) reads the plane at r * rstep + ow * cstep (elements of the plane:
 * floats, or bytes with quad). */
static inline __attribute__((always_inline)) void
pq_i8_dwc_band__avx512(int quad, int kind, int64_t OW, size_t np, int rstep, int cstep,
                       const void *P, const int *toff, const void *wv, int nt, __m512i add,
                       __m512 m, const pq_i8_act16 *act, __m512 hi, __m512i vz, uint8_t *t) {
    size_t p = 0;
    int po[8], rbase = 0, ow = 0; /* position p is (row base rbase, column ow) */
    while (p < np) {
        int NB = np - p >= 8 ? 8 : (np - p >= 4 ? 4 : 1);
        for (int i = 0; i < NB; i++) {
            po[i] = rbase + ow * cstep;
            if (++ow == OW) {
                ow = 0;
                rbase += rstep;
            }
        }
        uint8_t *tp = t + 16 * p;
        if (NB == 8)
            pq_i8_dwc_blk__avx512(8, quad, kind, P, po, toff, wv, nt, add, m, act, hi, vz, tp);
        else if (NB == 4)
            pq_i8_dwc_blk__avx512(4, quad, kind, P, po, toff, wv, nt, add, m, act, hi, vz, tp);
        else
            pq_i8_dwc_blk__avx512(1, quad, kind, P, po, toff, wv, nt, add, m, act, hi, vz, tp);
        p += (size_t)NB;
    }
}

/* 16 lanes of n (<= 16) bytes from 16 rows (rows >= nr read as zero), transposed. */
static inline void pq_i8_tr_load__avx512(const uint8_t *src, size_t ld, int nr, int64_t n,
                                         __m128i v[16]) {
    __mmask16 km = (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1u);
    for (int c = 0; c < 16; c++)
        v[c] = c < nr ? _mm_maskz_loadu_epi8(km, src + (size_t)c * ld) : _mm_setzero_si128();
    pq_i8_tr16x16__sse2(v);
}

/* The requantized bytes T [position][16 channels] of output rows [ob, oe) -> the NCHW planes. */
static void pq_i8_dwc_store__avx512(const pq_i8_dwc *a, const uint8_t *T, int64_t ob, int64_t oe) {
    size_t osp = (size_t)(a->OH * a->OW);
    size_t pb = (size_t)(ob * a->OW), pn = (size_t)((oe - ob) * a->OW);
    for (size_t p0 = 0; p0 < pn; p0 += 16) {
        size_t n = pn - p0 < 16 ? pn - p0 : 16;
        __mmask16 km = (__mmask16)(n == 16 ? 0xFFFF : (1u << n) - 1u);
        __m128i v[16];
        pq_i8_tr_load__avx512(T + p0 * 16, 16, (int)n, 16, v);
        for (int c = 0; c < a->nc; c++)
            _mm_mask_storeu_epi8(a->y + (size_t)c * osp + pb + p0, km, v[c]);
    }
}

/* ---- f32 tap sums ---- */

/* Columns [0, n) (n <= 64) of 16 rows (rows >= nr zero) at d[column * 16 + row] as
 * (float)byte - zp. */
static inline void pq_i8_plane64__avx512(const uint8_t *src, size_t ld, int nr, int64_t n,
                                         __m512 vzx, float *d) {
    __mmask64 km = n >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << n) - 1);
    __m512i v[16];
    for (int c = 0; c < 16; c++)
        v[c] = c < nr ? _mm512_maskz_loadu_epi8(km, src + (size_t)c * ld) : _mm512_setzero_si512();
    pq_i8_tr16x64__avx512(v);
#define PQ_I8Z_PLANE_LANE(L)                                                                       \
    for (int64_t j = 0; j < 16 && 16 * (L) + j < n; j++)                                           \
        _mm512_storeu_ps(d + (size_t)(16 * (L) + j) * 16,                                          \
                         _mm512_sub_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(                    \
                                           _mm512_extracti32x4_epi32(v[j], L))),                   \
                                       vzx));
    PQ_I8Z_PLANE_LANE(0)
    PQ_I8Z_PLANE_LANE(1)
    PQ_I8Z_PLANE_LANE(2)
    PQ_I8Z_PLANE_LANE(3)
#undef PQ_I8Z_PLANE_LANE
}

static void pq_i8_dwc_f32__avx512(const pq_i8_dwc *a) {
    int toff[256];
    pq_i8_dwc_plane pg = pq_i8_dwc_plane_of(a, 16, toff);
    size_t wp = pg.wp, hw = (size_t)(a->H * a->W);
    int KK = (int)(a->KH * a->KW), nc = a->nc;
    float *P = a->scratch;                                 /* [hb][wp][16] */
    float *wv = P + pg.hb * wp * 16;                       /* [KK + 16][16] */
    uint8_t *T = (uint8_t *)(wv + (size_t)(KK + 16) * 16); /* [osp + 16][16] */
    /* the tap weights [tap][channel] as f32, 16 taps at a time */
    for (int k0 = 0; k0 < KK; k0 += 16) {
        __m128i v[16];
        pq_i8_tr_load__avx512((const uint8_t *)a->w + k0, (size_t)KK, nc, KK - k0, v);
        for (int k = 0; k < 16 && k0 + k < KK; k++)
            _mm512_store_ps(wv + 16 * (k0 + k), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v[k])));
    }
    __mmask16 kc = (__mmask16)(nc >= 16 ? 0xFFFF : (1u << nc) - 1u);
    __m512i add = a->bias ? _mm512_maskz_loadu_epi32(kc, a->bias) : _mm512_setzero_si512();
    __m512 m = _mm512_maskz_loadu_ps(kc, a->m);
    __m512i vz = _mm512_set1_epi32(a->zp_y);
    __m512 hi = _mm512_set1_ps((float)(255 - a->zp_y));
    __m512 vzx = _mm512_set1_ps((float)a->zp_x);
    pq_i8_act16 act = pq_i8_act16_init(a->act);
    int64_t ob = a->oh_begin, oe = a->oh_end > ob ? a->oh_end : a->OH;
    for (int64_t oh0 = ob; oh0 < oe; oh0 += pg.bh) {
        int64_t nb = oe - oh0 < pg.bh ? oe - oh0 : pg.bh;
        size_t rows = (size_t)((nb - 1) * a->sh + (a->KH - 1) * a->dh + 1);
        int64_t ih0 = oh0 * a->sh - a->pt;
        pq_i8_dwc_plane_pads(a, &pg, 16, ih0, rows, P);
        for (size_t rr = 0; rr < rows; rr++) { /* x - zp inside the input */
            int64_t ih = ih0 + (int64_t)rr;
            if (ih < 0 || ih >= a->H || pg.wn <= 0) continue;
            const uint8_t *xr = a->x + (size_t)ih * (size_t)a->W;
            float *d = P + (rr * wp + pg.cl) * 16;
            for (int64_t iw = 0; iw < pg.wn; iw += 64)
                pq_i8_plane64__avx512(xr + iw, hw, nc, pg.wn - iw < 64 ? pg.wn - iw : 64, vzx,
                                      d + (size_t)iw * 16);
        }
        /* the band's outputs, 8 positions (across output rows) per block */
        size_t np = (size_t)(nb * a->OW);
        uint8_t *t = T + (size_t)((oh0 - ob) * a->OW) * 16;
        int rstep = (int)((size_t)a->sh * wp * 16), cstep = (int)a->sw * 16;
#define PQ_I8Z_BAND(KIND)                                                                          \
    pq_i8_dwc_band__avx512(0, KIND, a->OW, np, rstep, cstep, P, toff, wv, KK, add, m, &act, hi,    \
                           vz, t)
        PQ_I8_ACT_SPECIALISE(act.kind, PQ_I8Z_BAND)
#undef PQ_I8Z_BAND
    }
    pq_i8_dwc_store__avx512(a, T, ob, oe);
}

/* ---- u8 tap quads (VNNI; VBMI builds the quads) ----
 * Per band of output rows, the band's input rows of the 16 channels transposed channel-last into
 * U [row][column][16 channels] (one run of rows * W positions, no padding), then the quad plane Q
 * [row][quad column][16 channels x 4 bytes]: quad column q holds padded columns q * sw .. q * sw
 * + 3 of every channel, the four taps a kernel row reads from there: one masked 64-byte load of U
 * (positions outside the input row read as zp) and one vpermb. A kernel row is G = ceil(KW / 4)
 * quads (weights past KW zero), so a 3x3 kernel is 3 vpdpbusd per 16 outputs and a 5x5 one 10
 * (25 f32 multiply-adds before). Sums are exact i32 of x * w; zp_x * sum(w) per channel goes into
 * the added term (padding holds zp, so it adds nothing). */

static bool pq_i8_dwcq_fits(const pq_i8_dwc *a) {
    return !pq_i8_dwcq_off && a->dw == 1 && (a->sw == 1 || a->sw == 2) && a->KW <= 8 &&
           a->pl <= PQ_I8_DWCQ_PAD && a->OW + 4 <= PQ_I8_DWCQ_MAXQ &&
           a->KH * ((a->KW + 3) / 4) <= 64 && pq_cpu_has_avx512_vbmi();
}

/* Positions [0, L) of 16 channel runs from x (run stride hw; channels >= nc read as zero) into d
 * channel-last: d[p * 16 + c]. Per 64 positions one 16 x 64 byte transpose, its 128-bit lanes
 * regrouped (4 x 4 per four registers) so that each register holds four consecutive positions:
 * 16 stores of 64 bytes. */
static void pq_i8_dwcq_run__avx512(const uint8_t *x, size_t hw, int nc, int64_t L, uint8_t *d) {
    for (int64_t p0 = 0; p0 < L; p0 += 64) {
        int64_t n = L - p0 < 64 ? L - p0 : 64;
        __mmask64 km = n >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << n) - 1);
        __m512i v[16];
        for (int c = 0; c < 16; c++)
            v[c] = c < nc ? _mm512_maskz_loadu_epi8(km, x + (size_t)c * hw + (size_t)p0)
                          : _mm512_setzero_si512();
        pq_i8_tr16x64__avx512(v); /* v[j] lane l: position 16 l + j */
        for (int g = 0; g < 4; g++) {
            __m512i t0 = _mm512_shuffle_i64x2(v[4 * g], v[4 * g + 1], 0x44);
            __m512i t1 = _mm512_shuffle_i64x2(v[4 * g], v[4 * g + 1], 0xEE);
            __m512i t2 = _mm512_shuffle_i64x2(v[4 * g + 2], v[4 * g + 3], 0x44);
            __m512i t3 = _mm512_shuffle_i64x2(v[4 * g + 2], v[4 * g + 3], 0xEE);
            __m512i o[4] = {_mm512_shuffle_i64x2(t0, t2, 0x88), _mm512_shuffle_i64x2(t0, t2, 0xDD),
                            _mm512_shuffle_i64x2(t1, t3, 0x88), _mm512_shuffle_i64x2(t1, t3, 0xDD)};
            for (int l = 0; l < 4; l++) { /* o[l]: positions 16 l + 4 g .. + 3 */
                int64_t p = 16 * l + 4 * g;
                if (p + 4 <= n)
                    _mm512_storeu_si512((void *)(d + (size_t)(p0 + p) * 16), o[l]);
                else if (p < n)
                    _mm512_mask_storeu_epi32(d + (size_t)(p0 + p) * 16,
                                             (__mmask16)((1u << (4 * (n - p))) - 1u), o[l]);
            }
        }
    }
}

__attribute__((target("avx512vbmi"))) static void pq_i8_dwcq__avx512(const pq_i8_dwc *a) {
    pq_i8_dwcq_geom qg = pq_i8_dwcq_geometry(a);
    int64_t G = qg.G, sw = a->sw, W = a->W;
    size_t nq = (size_t)qg.nq, hw = (size_t)(a->H * a->W);
    int KK = (int)(a->KH * a->KW), nc = a->nc, nt = (int)(a->KH * G);
    /* U: PQ_I8_DWCQ_PAD positions of slack, [hb][W][16], slack (pq_i8_dwcq_geometry) */
    uint8_t *U = (uint8_t *)a->scratch + PQ_I8_DWCQ_PAD * 16;
    uint8_t *Q = (uint8_t *)a->scratch + (size_t)qg.ubytes; /* [hb][nq][64] */
    __m512i *wq = (__m512i *)(Q + (size_t)qg.hb * nq * 64); /* [KH * G] */
    uint8_t *T = (uint8_t *)(wq + nt);                      /* [osp + 16][16] */
    /* the taps [tap][16 channels] (16 x 16 transposes), then the weight quads: byte 4 c + t of
     * quad (kh, g) is w[c][kh][4 g + t] (0 past KW), two levels of unpacks per quad */
    _Alignas(64) uint8_t taps[256 * 16];
    for (int k0 = 0; k0 < KK; k0 += 16) {
        __m128i v[16];
        pq_i8_tr_load__avx512((const uint8_t *)a->w + k0, (size_t)KK, nc, KK - k0, v);
        for (int k = 0; k < 16 && k0 + k < KK; k++)
            _mm_store_si128((__m128i *)(taps + 16 * (k0 + k)), v[k]);
    }
    __m512i zsum = _mm512_setzero_si512(), zq = _mm512_set1_epi8((char)a->zp_x); /* zp_x bytes */
    int toff[64];
    for (int kh = 0, k = 0; kh < a->KH; kh++)
        for (int g = 0; g < G; g++, k++) {
            __m128i t4[4];
            for (int t = 0; t < 4; t++) {
                int kw = 4 * g + t;
                t4[t] = kw < a->KW
                            ? _mm_load_si128((const __m128i *)(taps + 16 * (kh * a->KW + kw)))
                            : _mm_setzero_si128();
            }
            __m128i lo01 = _mm_unpacklo_epi8(t4[0], t4[1]), hi01 = _mm_unpackhi_epi8(t4[0], t4[1]);
            __m128i lo23 = _mm_unpacklo_epi8(t4[2], t4[3]), hi23 = _mm_unpackhi_epi8(t4[2], t4[3]);
            __m512i w = _mm512_castsi128_si512(_mm_unpacklo_epi16(lo01, lo23));
            w = _mm512_inserti32x4(w, _mm_unpackhi_epi16(lo01, lo23), 1);
            w = _mm512_inserti32x4(w, _mm_unpacklo_epi16(hi01, hi23), 2);
            w = _mm512_inserti32x4(w, _mm_unpackhi_epi16(hi01, hi23), 3);
            _mm512_store_si512((void *)(wq + k), w);
            zsum = _mm512_dpbusd_epi32(zsum, zq, w); /* zp_x * the quad's weights */
            toff[k] = (int)(((size_t)(kh * a->dh) * nq + (size_t)(4 * g / sw)) * 64);
        }
    __mmask16 kc = (__mmask16)(nc >= 16 ? 0xFFFF : (1u << nc) - 1u);
    __m512i bias = a->bias ? _mm512_maskz_loadu_epi32(kc, a->bias) : _mm512_setzero_si512();
    __m512i add = _mm512_sub_epi32(bias, zsum);
    __m512 m = _mm512_maskz_loadu_ps(kc, a->m);
    __m512i vz = _mm512_set1_epi32(a->zp_y);
    __m512 hi = _mm512_set1_ps((float)(255 - a->zp_y));
    pq_i8_act16 act = pq_i8_act16_init(a->act);
    /* quad byte 4 c + t <- window byte 16 t + c */
    _Alignas(64) uint8_t order[64];
    for (int i = 0; i < 64; i++)
        order[i] = (uint8_t)((i & 3) * 16 + (i >> 2));
    __m512i perm = _mm512_load_si512((const void *)order);
    /* per quad column, the dwords (4 per window position) inside the input row */
    __mmask16 inrow[PQ_I8_DWCQ_MAXQ];
    for (size_t c = 0; c < nq; c++) {
        unsigned k = 0;
        for (int t = 0; t < 4; t++) {
            int64_t iw = (int64_t)c * sw - a->pl + t;
            if (iw >= 0 && iw < W) k |= 0xFu << (4 * t);
        }
        inrow[c] = (__mmask16)k;
    }
    int64_t ob = a->oh_begin, oe = a->oh_end > ob ? a->oh_end : a->OH;
    for (int64_t oh0 = ob; oh0 < oe; oh0 += qg.bh) {
        int64_t nb = oe - oh0 < qg.bh ? oe - oh0 : qg.bh;
        size_t rows = (size_t)((nb - 1) * a->sh + (a->KH - 1) * a->dh + 1);
        int64_t ih0 = oh0 * a->sh - a->pt, ia = ih0 < 0 ? 0 : ih0;
        int64_t ie = ih0 + (int64_t)rows < a->H ? ih0 + (int64_t)rows : a->H;
        if (ie > ia)
            pq_i8_dwcq_run__avx512(a->x + (size_t)ia * (size_t)W, hw, nc, (ie - ia) * W, U);
        for (size_t rr = 0; rr < rows; rr++) {
            int64_t ih = ih0 + (int64_t)rr;
            uint8_t *q = Q + rr * nq * 64;
            if (ih < ia || ih >= ie) { /* a padding row: all zp */
                for (size_t c = 0; c < nq; c++)
                    _mm512_store_si512((void *)(q + c * 64), zq);
                continue;
            }
            /* window c starts at input column c * sw - pl: U's slack covers the reads before
             * column 0 and after the last row (masked lanes are not read) */
            const uint8_t *u = U + ((size_t)(ih - ia) * (size_t)W) * 16 - (size_t)a->pl * 16;
            for (size_t c = 0; c < nq; c++)
                _mm512_store_si512(
                    (void *)(q + c * 64),
                    _mm512_permutexvar_epi8(
                        perm, _mm512_mask_loadu_epi32(zq, inrow[c], u + c * (size_t)sw * 16)));
        }
        size_t np = (size_t)(nb * a->OW);
        uint8_t *t = T + (size_t)((oh0 - ob) * a->OW) * 16;
        int rstep = (int)((size_t)a->sh * nq * 64);
#define PQ_I8Z_BAND(KIND)                                                                          \
    pq_i8_dwc_band__avx512(1, KIND, a->OW, np, rstep, 64, Q, toff, wq, nt, add, m, &act, hi, vz, t)
        PQ_I8_ACT_SPECIALISE(act.kind, PQ_I8Z_BAND)
#undef PQ_I8Z_BAND
    }
    pq_i8_dwc_store__avx512(a, T, ob, oe);
}

void pq_i8_dwc__avx512(const pq_i8_dwc *a) {
    if (pq_i8_dwcc_fits(a))
        pq_i8_dwcc__avx512(a);
    else if (pq_i8_dwcq_fits(a))
        pq_i8_dwcq__avx512(a);
    else
        pq_i8_dwc_f32__avx512(a);
}
