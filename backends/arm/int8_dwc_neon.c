/* NEON depthwise convolution with 16 channels in the lanes (pq_i8_dwc_fn, int8_gemm.h): the
 * algorithm of the AVX2 / AVX-512 versions (backends/int8/int8_requant_x86.h, int8_dwc_avx512.c)
 * with four f32x4 vectors per 16 channels: a channel-last f32 plane of x - zp_x per band of output
 * rows (16 x 16 byte transposes by four zip rounds), every tap one multiply-add per vector (exact
 * integers below 2^24, so fused or not the sums equal the reference's i32 sums), the epilogue on
 * the channel lanes (int8_requant_neon.h, the scalar epilogue's operations and compares), byte
 * transposes back to the NCHW planes. */
#include "backends/arm/int8_dwc_neon.h"

#include <arm_neon.h>
#include <string.h>

#include "backends/arm/int8_requant_neon.h"

#define PQ_I8D_L PQ_I8_DWC_NEON_LANES

/* 16 x 16 byte transpose: v[r] holds row r; afterwards v[c] holds column c. One round of
 * zip(v[i], v[i + 8]) rotates the 8-bit (row, column) index left by one bit; four rounds swap
 * row and column. */
static inline void pq_i8d_tr16(uint8x16_t v[16]) {
    for (int round = 0; round < 4; round++) {
        uint8x16_t t[16];
        for (int i = 0; i < 8; i++) {
            t[2 * i] = vzip1q_u8(v[i], v[i + 8]);
            t[2 * i + 1] = vzip2q_u8(v[i], v[i + 8]);
        }
        for (int i = 0; i < 16; i++)
            v[i] = t[i];
    }
}

/* Rows c < nr: n (<= 16) bytes at src + c * ld (the rest zero, never read past n); rows >= nr
 * zero; then transposed. */
static inline void pq_i8d_tr_load(const uint8_t *src, size_t ld, int nr, int64_t n,
                                  uint8x16_t v[16]) {
    for (int c = 0; c < 16; c++) {
        if (c >= nr) {
            v[c] = vdupq_n_u8(0);
        } else if (n >= 16) {
            v[c] = vld1q_u8(src + (size_t)c * ld);
        } else {
            uint8_t t[16] = {0};
            memcpy(t, src + (size_t)c * ld, (size_t)n);
            v[c] = vld1q_u8(t);
        }
    }
    pq_i8d_tr16(v);
}

/* The epilogue constants on the 16 channel lanes. */
typedef struct pq_i8d_ep {
    int32x4_t add[4], zp;
    float32x4_t m[4], lo, hi;
    pq_i8n_act4 act;
} pq_i8d_ep;

/* NB (1 or 4) output positions: acc[i] = sum_t w[t] * p[po[i] + toff[t]] on 16 channels (exact
 * f32 integer sums), requantized into 16 bytes each at t + 16 i. Named accumulators: with an
 * array indexed in the tap loop gcc stored all of them to the stack on every tap. */
static inline __attribute__((always_inline)) void pq_i8d_blk(int NB, const float *p, const int *po,
                                                             const int *toff, const float *wv,
                                                             int KK, const pq_i8d_ep *e,
                                                             uint8_t *t) {
    float32x4_t z = vdupq_n_f32(0.0f);
    float32x4_t a00 = z, a01 = z, a02 = z, a03 = z, a10 = z, a11 = z, a12 = z, a13 = z;
    float32x4_t a20 = z, a21 = z, a22 = z, a23 = z, a30 = z, a31 = z, a32 = z, a33 = z;
    const float *q0 = p + po[0], *q1 = NB > 1 ? p + po[1] : q0;
    const float *q2 = NB > 2 ? p + po[2] : q0, *q3 = NB > 3 ? p + po[3] : q0;
#define PQ_I8D_TAP(I)                                                                              \
    if (NB > I) {                                                                                  \
        const float *s = q##I + o;                                                                 \
        a##I##0 = vfmaq_f32(a##I##0, vld1q_f32(s), w0);                                            \
        a##I##1 = vfmaq_f32(a##I##1, vld1q_f32(s + 4), w1);                                        \
        a##I##2 = vfmaq_f32(a##I##2, vld1q_f32(s + 8), w2);                                        \
        a##I##3 = vfmaq_f32(a##I##3, vld1q_f32(s + 12), w3);                                       \
    }
    for (int k = 0; k < KK; k++) {
        const float *wk = wv + PQ_I8D_L * k;
        float32x4_t w0 = vld1q_f32(wk), w1 = vld1q_f32(wk + 4);
        float32x4_t w2 = vld1q_f32(wk + 8), w3 = vld1q_f32(wk + 12);
        int o = toff[k];
        PQ_I8D_TAP(0)
        PQ_I8D_TAP(1)
        PQ_I8D_TAP(2)
        PQ_I8D_TAP(3)
    }
#undef PQ_I8D_TAP
    const float32x4_t acc[4][4] = {
        {a00, a01, a02, a03}, {a10, a11, a12, a13}, {a20, a21, a22, a23}, {a30, a31, a32, a33}};
    for (int i = 0; i < NB; i++) {
        int32x4_t r[4];
        for (int j = 0; j < 4; j++)
            r[j] = pq_i8n_rq4(vcvtnq_s32_f32(acc[i][j]), e->add[j], e->m[j], &e->act, e->lo, e->hi,
                              e->zp);
        vst1q_u8(t + PQ_I8D_L * i, vcombine_u8(pq_i8n_pack8(r[0], r[1]), pq_i8n_pack8(r[2], r[3])));
    }
}

/* Columns j < n of a transposed block (v[j]: 16 channel bytes) as f32 x - zp at d + j * 16. */
static inline void pq_i8d_plane_cols(const uint8x16_t v[16], int64_t n, float32x4_t vzx, float *d) {
    for (int64_t j = 0; j < n; j++) {
        uint16x8_t l = vmovl_u8(vget_low_u8(v[j])), h = vmovl_u8(vget_high_u8(v[j]));
        float *o = d + (size_t)j * PQ_I8D_L;
        vst1q_f32(o, vsubq_f32(vcvtq_f32_u32(vmovl_u16(vget_low_u16(l))), vzx));
        vst1q_f32(o + 4, vsubq_f32(vcvtq_f32_u32(vmovl_u16(vget_high_u16(l))), vzx));
        vst1q_f32(o + 8, vsubq_f32(vcvtq_f32_u32(vmovl_u16(vget_low_u16(h))), vzx));
        vst1q_f32(o + 12, vsubq_f32(vcvtq_f32_u32(vmovl_u16(vget_high_u16(h))), vzx));
    }
}

void pq_i8_dwc__neon(const pq_i8_dwc *a) {
    const int L = PQ_I8D_L;
    int toff[256];
    pq_i8_dwc_plane pg = pq_i8_dwc_plane_of(a, L, toff);
    int64_t bh = pg.bh;
    size_t wp = pg.wp;
    size_t osp = (size_t)(a->OH * a->OW), hw = (size_t)(a->H * a->W);
    int KK = (int)(a->KH * a->KW), nc = a->nc;
    float *P = a->scratch;                               /* [hb][wp][16] */
    float *wv = P + pg.hb * wp * (size_t)L;              /* [KK + 16][16] */
    uint8_t *T = (uint8_t *)(wv + (size_t)(KK + L) * L); /* [osp + 16][16] */
    /* the tap weights [tap][channel] as f32 (zero past nc) */
    for (int k = 0; k < KK; k++)
        for (int c = 0; c < L; c++)
            wv[L * k + c] = c < nc ? (float)a->w[(size_t)c * (size_t)KK + (size_t)k] : 0.0f;
    /* the per-lane epilogue terms: bias and multiplier per channel (zero past nc) */
    int32_t tb[PQ_I8D_L] = {0};
    float tm[PQ_I8D_L] = {0};
    if (a->bias) memcpy(tb, a->bias, (size_t)nc * sizeof(int32_t));
    memcpy(tm, a->m, (size_t)nc * sizeof(float));
    pq_i8d_ep e = {.zp = vdupq_n_s32(a->zp_y),
                   .lo = vdupq_n_f32((float)-a->zp_y),
                   .hi = vdupq_n_f32((float)(255 - a->zp_y)),
                   .act = pq_i8n_act4_init(a->act)};
    for (int j = 0; j < 4; j++) {
        e.add[j] = vld1q_s32(tb + 4 * j);
        e.m[j] = vld1q_f32(tm + 4 * j);
    }
    float32x4_t vzx = vdupq_n_f32((float)a->zp_x);
    int64_t ob = a->oh_begin, oe = a->oh_end > ob ? a->oh_end : a->OH;
    for (int64_t oh0 = ob; oh0 < oe; oh0 += bh) {
        int64_t nb = oe - oh0 < bh ? oe - oh0 : bh;
        size_t rows = (size_t)((nb - 1) * a->sh + (a->KH - 1) * a->dh + 1);
        int64_t ih0 = oh0 * a->sh - a->pt;
        pq_i8_dwc_plane_pads(a, &pg, L, ih0, rows, P);
        for (size_t rr = 0; rr < rows; rr++) { /* x - zp inside the input */
            int64_t ih = ih0 + (int64_t)rr;
            if (ih < 0 || ih >= a->H || pg.wn <= 0) continue;
            const uint8_t *xr = a->x + (size_t)ih * (size_t)a->W;
            float *d = P + (rr * wp + pg.cl) * (size_t)L;
            for (int64_t iw = 0; iw < pg.wn; iw += 16) {
                int64_t n = pg.wn - iw < 16 ? pg.wn - iw : 16;
                uint8x16_t v[16];
                pq_i8d_tr_load(xr + iw, hw, nc, n, v);
                pq_i8d_plane_cols(v, n, vzx, d + (size_t)iw * (size_t)L);
            }
        }
        /* the band's outputs, 4 positions (across output rows) per block */
        size_t np = (size_t)(nb * a->OW), p = 0;
        uint8_t *t = T + (size_t)((oh0 - ob) * a->OW) * (size_t)L;
        int po[4], rstep = (int)((size_t)a->sh * wp * (size_t)L), cstep = (int)a->sw * L;
        int rbase = 0, ow = 0; /* position p is (row base rbase, column ow) */
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
                pq_i8d_blk(4, P, po, toff, wv, KK, &e, t + (size_t)L * p);
            else
                pq_i8d_blk(1, P, po, toff, wv, KK, &e, t + (size_t)L * p);
            p += (size_t)NB;
        }
    }
    /* [position][channel] -> the NCHW planes, 16 x 16 bytes at a time */
    size_t pb = (size_t)(ob * a->OW), pn = (size_t)((oe - ob) * a->OW);
    for (size_t p0 = 0; p0 < pn; p0 += 16) {
        size_t n = pn - p0 < 16 ? pn - p0 : 16;
        uint8x16_t v[16];
        pq_i8d_tr_load(T + p0 * (size_t)L, (size_t)L, (int)n, 16, v);
        for (int c = 0; c < nc; c++) {
            uint8_t *y = a->y + (size_t)c * osp + pb + p0;
            if (n == 16) {
                vst1q_u8(y, v[c]);
            } else {
                uint8_t tt[16];
                vst1q_u8(tt, v[c]);
                memcpy(y, tt, n);
            }
        }
    }
}
