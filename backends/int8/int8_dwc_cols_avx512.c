/* AVX-512 depthwise convolution with output columns in the lanes (the AVX-512 tables' kernel for
 * wide planes): one channel at a time, 16 outputs per vpdpbusd whose tap quads are 64-byte loads
 * of the input rows themselves; no tap shuffles, no channel-last copies. Bit-exact. */
#include <immintrin.h>
#include <stdbool.h>
#include <string.h>

#include "backends/cpu.h"
#include "int8_gemm.h"
#include "int8_internal.h"
#include "int8_requant_avx512.h"

/* Stride 2: lane j of phase r (r < 2) holds output column 2 j + r of its block, whose taps 4 g ..
 * 4 g + 3 of a kernel row are the row's bytes from (2 j + r) 2 - pl + 4 g = 4 j + (2 r - pl + 4 g):
 * dword j of one 64-byte load (masked to the row, zp elsewhere). Blocks of 32 columns, four
 * vectors per 64 output bytes, which the packs' vpermb puts in column order; rows of at most 32
 * outputs pair with the next output row (its block in the last two vectors). Stride 1: the
 * input rows are copied with their zp padding back to back (pitch p = OW + KW - 1), so that
 * output (row, column) is position s = row p + column of the copy and its taps 4 g .. of kernel
 * row kh the dword at s + kh dh p + 4 g: lane j of phase r < 4 holds s = 64 k + 4 j + r, plain
 * loads, and per 64 positions a vpermb gathers the outputs (column < OW) for one store. */

#define PQ_I8_DWCC_KH 8     /* kernel rows at most */
#define PQ_I8_DWCC_G 2      /* quads per kernel row at most (KW <= 8) */
#define PQ_I8_DWCC_PACKS 16 /* 64-column blocks per output row at most */

enum { PQ_I8_DWCC_ROW, PQ_I8_DWCC_PAIR }; /* stride 2: output rows per four vectors */

static int pq_i8_dwcc_mode = -1;

void pq_i8_dwc_force_cols(int mode) {
    pq_i8_dwcc_mode = mode < 0 ? -1 : mode != 0;
}

bool pq_i8_dwcc_fits(const pq_i8_dwc *a) {
    if (pq_i8_dwcc_mode == 0 || !pq_cpu_has_avx512_vbmi()) return false;
    if (a->dw != 1 || !((a->sw == 1 && a->sh == 1) || a->sw == 2) || a->KH > PQ_I8_DWCC_KH ||
        a->KW > 4 * PQ_I8_DWCC_G || a->OW > 64 * PQ_I8_DWCC_PACKS)
        return false;
    if (pq_i8_dwcc_mode == 1) return true;
    return a->OW >= 28;
}

/* Stride 2, per 64-column block pk and vector q: the row byte of lane 0's first tap (b), the bytes
 * inside the input row per quad g (km), the vectors to compute (nv), and the vpermb after the
 * packs. */
typedef struct pq_i8_dwcc_plan {
    int64_t b[PQ_I8_DWCC_PACKS][4];
    __mmask64 km[PQ_I8_DWCC_PACKS][4][PQ_I8_DWCC_G];
    int nv[PQ_I8_DWCC_PACKS], npk;
    __m512i perm;
} pq_i8_dwcc_plan;

static void pq_i8_dwcc_plan_of(const pq_i8_dwc *a, int form, int G, pq_i8_dwcc_plan *pl) {
    int64_t P = 2;
    pl->npk = form == PQ_I8_DWCC_ROW ? (int)((a->OW + 63) / 64) : 1;
    _Alignas(64) uint8_t order[64];
    for (int c = 0; c < 64; c++) { /* output byte c <- (vector q, lane l) after the packs */
        int q = (int)(c / (16 * P) * P + c % P), l = (int)(c % (16 * P) / P);
        order[c] = (uint8_t)(16 * (l / 4) + 4 * q + l % 4);
    }
    pl->perm = _mm512_load_si512((const void *)order);
    for (int pk = 0; pk < pl->npk; pk++) {
        pl->nv[pk] = 0;
        for (int q = 0; q < 4; q++) {
            /* a pair's second row repeats the first block's columns */
            int qq = form == PQ_I8_DWCC_PAIR ? q % 2 : q;
            int64_t cb = 64 * pk + 16 * P * (qq / P) + qq % P;
            if (cb < a->OW) pl->nv[pk] = q + 1;
            pl->b[pk][q] = cb * a->sw - a->pl;
            for (int g = 0; g < G; g++) {
                int64_t o = pl->b[pk][q] + 4 * g;
                pl->km[pk][q][g] = pq_i8_bits64(-o, a->W - o);
            }
        }
    }
}

/* The requantized i32 of one vector: kernel row r from rp[r] at byte b (masked by km[g] unless
 * PLAIN); the sums start at add (bias - zp_x * sum(w)). */
static inline __attribute__((always_inline)) __m512i
pq_i8_dwcc_vec(int KH, int G, int PLAIN, int kind, const uint8_t *const *rp, int64_t b,
               const __mmask64 *km, const __m512i *wq, __m512i add, __m512i zq, __m512 m,
               const pq_i8_act16 *act, __m512 hi, __m512i vz) {
    __m512i acc = add;
    for (int r = 0; r < KH; r++)
        for (int g = 0; g < G; g++) {
            const uint8_t *p = rp[r] + b + 4 * g;
            __m512i t =
                PLAIN ? _mm512_loadu_si512((const void *)p) : _mm512_mask_loadu_epi8(zq, km[g], p);
            acc = _mm512_dpbusd_epi32(acc, t, wq[r * G + g]);
        }
    return pq_i8_rq16s_k(kind, acc, _mm512_setzero_si512(), m, act, hi, vz);
}

/* Stride 2: output rows [ob, oe) of one channel (KH, G, FORM, kind: constants in the
 * specialised callers); zrow: W bytes of zp. */
static inline __attribute__((always_inline, target("avx512vbmi"))) void
pq_i8_dwcc_chan(int KH, int G, int FORM, int kind, const pq_i8_dwc *a, const pq_i8_dwcc_plan *pl,
                const uint8_t *x, const uint8_t *zrow, uint8_t *y, const __m512i *wq, __m512i add,
                __m512 m, const pq_i8_act16 *act, int64_t ob, int64_t oe) {
    __m512i vz = _mm512_set1_epi32(a->zp_y), zq = _mm512_set1_epi8((char)a->zp_x);
    __m512 hi = _mm512_set1_ps((float)(255 - a->zp_y));
    int64_t W = a->W, OW = a->OW;
    __mmask64 kst = pq_i8_bits64(0, OW), kst2 = pq_i8_bits64(32, 32 + OW);
    for (int64_t oh = ob; oh < oe; oh += FORM == PQ_I8_DWCC_ROW ? 1 : 2) {
        const uint8_t *ra[PQ_I8_DWCC_KH], *rb[PQ_I8_DWCC_KH];
        bool two = FORM == PQ_I8_DWCC_PAIR && oh + 1 < oe;
        for (int r = 0; r < KH; r++) {
            int64_t ih = oh * a->sh - a->pt + r * a->dh, ih2 = ih + a->sh;
            ra[r] = ih >= 0 && ih < a->H ? x + ih * W : zrow;
            rb[r] = two && ih2 >= 0 && ih2 < a->H ? x + ih2 * W : zrow;
        }
        uint8_t *yr = y + oh * OW;
        for (int pk = 0; pk < (FORM == PQ_I8_DWCC_ROW ? pl->npk : 1); pk++) {
            __m512i v[4];
            int nv = pl->nv[pk];
            for (int q = 0; q < 4; q++)
                v[q] = q == 0 || q < nv
                           ? pq_i8_dwcc_vec(
                                 KH, G, 0, kind, FORM == PQ_I8_DWCC_PAIR && q >= 2 ? rb : ra,
                                 pl->b[pk][q], pl->km[pk][q], wq, add, zq, m, act, hi, vz)
                           : v[0];
            __m512i bytes = _mm512_permutexvar_epi8(
                pl->perm, _mm512_packus_epi16(_mm512_packs_epi32(v[0], v[1]),
                                              _mm512_packs_epi32(v[2], v[3])));
            if (FORM == PQ_I8_DWCC_ROW) {
                _mm512_mask_storeu_epi8(yr + 64 * pk, pq_i8_bits64(0, OW - 64 * pk), bytes);
            } else {
                _mm512_mask_storeu_epi8(yr, kst, bytes);
                if (two) _mm512_mask_storeu_epi8(yr + OW - 32, kst2, bytes);
            }
        }
    }
}

/* Stride 1, per 64 positions k of the copy: the vpermb that gathers its outputs in order after
 * the packs, their count and the first one's offset in the channel's output rows [ob, oe). */
typedef struct pq_i8_dwcc_win {
    int32_t y0, n;
} pq_i8_dwcc_win;

static void pq_i8_dwcc_wins(int64_t p, int64_t OW, int64_t nout, int64_t K, uint8_t *perm,
                            pq_i8_dwcc_win *win) {
    /* position i of a window is lane i / 4 of vector i % 4: byte 16 (l / 4) + 4 q + l % 4 */
    uint8_t from[64];
    for (int i = 0; i < 64; i++)
        from[i] = (uint8_t)(16 * (i / 16) + 4 * (i % 4) + i / 4 % 4);
    int64_t row = 0, col = 0; /* of the window's next position */
    for (int64_t k = 0; k < K; k++) {
        int64_t n = 0, i = 0;
        win[k].y0 = 0;
        while (i < 64 && row < nout) { /* runs of outputs and of padding columns */
            bool out = col < OW;
            int64_t run = (out ? OW : p) - col < 64 - i ? (out ? OW : p) - col : 64 - i;
            if (out) {
                if (n == 0) win[k].y0 = (int32_t)(row * OW + col);
                memcpy(perm + 64 * k + n, from + i, (size_t)run);
                n += run;
            }
            i += run;
            col += run;
            if (col == p) {
                col = 0;
                row++;
            }
        }
        memset(perm + 64 * k + n, 0, (size_t)(64 - n));
        win[k].n = (int32_t)n;
    }
}

/* Stride 1: the input rows of one channel x read by output rows [ob, oe) copied into buf (zp
 * elsewhere) in order, by whole 64-byte stores: zp past a row's end until the next row's copy. */
static void pq_i8_dwcc_copy(const pq_i8_dwc *a, const uint8_t *x, uint8_t *buf, int64_t ob,
                            int64_t oe) {
    __m512i zq = _mm512_set1_epi8((char)a->zp_x);
    int64_t W = a->W, p = a->OW + a->KW - 1, ih0 = ob - a->pt;
    int64_t rows = oe - ob + (a->KH - 1) * a->dh;
    for (int64_t rr = 0; rr < rows; rr++) {
        int64_t ih = ih0 + rr;
        if (ih < 0 || ih >= a->H) continue;
        for (int64_t c = 0; c < W; c += 64)
            _mm512_storeu_si512((void *)(buf + rr * p + a->pl + c),
                                _mm512_mask_loadu_epi8(zq, pq_i8_bits64(0, W - c), x + ih * W + c));
    }
}

/* Stride 1: output rows [ob, oe) of one channel from its copy buf (KH, G, kind: constants in the
 * specialised callers), four vectors per window. */
static inline __attribute__((always_inline, target("avx512vbmi"))) void
pq_i8_dwcc_flat(int KH, int G, int kind, const pq_i8_dwc *a, const uint8_t *buf,
                const uint8_t *perm, const pq_i8_dwcc_win *win, int64_t K, uint8_t *y,
                const __m512i *wq, __m512i add, __m512 m, const pq_i8_act16 *act, int64_t ob) {
    __m512i vz = _mm512_set1_epi32(a->zp_y), zq = _mm512_set1_epi8((char)a->zp_x);
    __m512 hi = _mm512_set1_ps((float)(255 - a->zp_y));
    int64_t p = a->OW + a->KW - 1;
    const uint8_t *rp[PQ_I8_DWCC_KH];
    for (int r = 0; r < KH; r++)
        rp[r] = buf + r * a->dh * p;
    uint8_t *yb = y + ob * a->OW;
    for (int64_t k = 0; k < K; k++) {
        __m512i v[4];
        for (int q = 0; q < 4; q++)
            v[q] =
                pq_i8_dwcc_vec(KH, G, 1, kind, rp, 64 * k + q, NULL, wq, add, zq, m, act, hi, vz);
        __m512i bytes = _mm512_permutexvar_epi8(
            _mm512_load_si512((const void *)(perm + 64 * k)),
            _mm512_packus_epi16(_mm512_packs_epi32(v[0], v[1]), _mm512_packs_epi32(v[2], v[3])));
        _mm512_mask_storeu_epi8(yb + win[k].y0, pq_i8_bits64(0, win[k].n), bytes);
    }
}

__attribute__((target("avx512vbmi"))) void pq_i8_dwcc__avx512(const pq_i8_dwc *a) {
    int KH = (int)a->KH, KW = (int)a->KW, KK = KH * KW, G = (KW + 3) / 4;
    bool flat = a->sw == 1; /* (and sh == 1: pq_i8_dwcc_fits) */
    int form = a->OW <= 32 ? PQ_I8_DWCC_PAIR : PQ_I8_DWCC_ROW;
    int64_t ob = a->oh_begin, oe = a->oh_end > ob ? a->oh_end : a->OH;
    uint8_t *buf = a->scratch, *perm = NULL, *bufs[2] = {buf, buf};
    pq_i8_dwcc_win *win = NULL;
    pq_i8_dwcc_plan pl;
    int64_t K = 0;
    size_t hw = (size_t)(a->H * a->W), osp = (size_t)(a->OH * a->OW);
    if (flat) { /* two copies: channel c + 1's is written while c's is read */
        int64_t p = a->OW + KW - 1;
        size_t one = (size_t)((oe - ob + (KH - 1) * a->dh) * p) + 192;
        bufs[1] = buf + ((size_t)((a->OH + (KH - 1) * a->dh) * p) + 192 + 63) / 64 * 64;
        memset(bufs[0], a->zp_x, one);
        memset(bufs[1], a->zp_x, one);
        K = ((oe - ob) * p + 63) / 64;
        perm = bufs[1] + (bufs[1] - bufs[0]);
        win = (pq_i8_dwcc_win *)(perm + K * 64);
        pq_i8_dwcc_wins(p, a->OW, oe - ob, K, perm, win);
        pq_i8_dwcc_copy(a, a->x, bufs[0], ob, oe);
    } else {
        memset(buf, a->zp_x, (size_t)a->W);
        pq_i8_dwcc_plan_of(a, form, G, &pl);
    }
    pq_i8_act16 act = pq_i8_act16_init(a->act);
    for (int c = 0; c < a->nc; c++) {
        if (flat && c + 1 < a->nc)
            pq_i8_dwcc_copy(a, a->x + (size_t)(c + 1) * hw, bufs[(c + 1) & 1], ob, oe);
        const int8_t *w = a->w + (size_t)c * (size_t)KK;
        __m512i wq[PQ_I8_DWCC_KH * PQ_I8_DWCC_G];
        int32_t wsum = 0;
        for (int r = 0; r < KH; r++)
            for (int g = 0; g < G; g++) {
                uint32_t q = 0;
                for (int t = 0; t < 4 && 4 * g + t < KW; t++) {
                    int8_t wt = w[r * KW + 4 * g + t];
                    q |= (uint32_t)(uint8_t)wt << (8 * t);
                    wsum += wt;
                }
                wq[r * G + g] = _mm512_set1_epi32((int32_t)q);
            }
        /* bias - zp_x * sum(w) (wrapping i32 like the reference's correction) */
        uint32_t addu = (uint32_t)(a->bias ? a->bias[c] : 0) - (uint32_t)a->zp_x * (uint32_t)wsum;
        __m512i add = _mm512_set1_epi32((int32_t)addu);
        __m512 m = _mm512_set1_ps(a->m[c]);
        const uint8_t *x = a->x + (size_t)c * hw;
        uint8_t *y = a->y + (size_t)c * osp;
#define PQ_I8Z_FORMS(KH_, G_)                                                                      \
    do {                                                                                           \
        if (flat)                                                                                  \
            pq_i8_dwcc_flat(KH_, G_, kind, a, bufs[c & 1], perm, win, K, y, wq, add, m, &act, ob); \
        else if (form == PQ_I8_DWCC_PAIR)                                                          \
            pq_i8_dwcc_chan(KH_, G_, PQ_I8_DWCC_PAIR, kind, a, &pl, x, buf, y, wq, add, m, &act,   \
                            ob, oe);                                                               \
        else                                                                                       \
            pq_i8_dwcc_chan(KH_, G_, PQ_I8_DWCC_ROW, kind, a, &pl, x, buf, y, wq, add, m, &act,    \
                            ob, oe);                                                               \
    } while (0)
#define PQ_I8Z_CHAN(KIND)                                                                          \
    do {                                                                                           \
        const int kind = KIND;                                                                     \
        if (KH == 3 && G == 1)                                                                     \
            PQ_I8Z_FORMS(3, 1);                                                                    \
        else if (KH == 5 && G == 2)                                                                \
            PQ_I8Z_FORMS(5, 2);                                                                    \
        else                                                                                       \
            PQ_I8Z_FORMS(KH, G);                                                                   \
    } while (0)
        PQ_I8_ACT_SPECIALISE(act.kind, PQ_I8Z_CHAN)
#undef PQ_I8Z_CHAN
#undef PQ_I8Z_FORMS
    }
}
