/* NEON requantization epilogue of the INT8 kernels (int8_gemm.h's formula) on f32x4 lanes, with
 * the fused activations, shared by backends/arm/int8_gemm_neon.c and int8_dwc_neon.c (aarch64
 * only). Bit-exact with pq_i8_requant__scalar for any multiplier and activation constants. */
#ifndef PQ_INT8_REQUANT_NEON_H
#define PQ_INT8_REQUANT_NEON_H

#include <arm_neon.h>
#include <stdbool.h>

#include "backends/int8/int8_gemm.h"

/* A fused activation's constants as vectors (on false: no activation and no 1 / s_y). */
typedef struct pq_i8n_act4 {
    enum pq_i8_act_kind kind;
    bool on;
    float32x4_t alpha, beta, inv;
} pq_i8n_act4;

static inline pq_i8n_act4 pq_i8n_act4_init(const pq_i8_act *a) {
    pq_i8n_act4 v = {.kind = a ? a->kind : PQ_I8_ACT_NONE, .on = a != NULL};
    v.alpha = vdupq_n_f32(a ? a->alpha : 0.0f);
    v.beta = vdupq_n_f32(a ? a->beta : 0.0f);
    v.inv = vdupq_n_f32(a ? a->inv_sy : 1.0f);
    return v;
}

/* pq_i8_sigmoid_f32 on 4 lanes: the same operations in the same order, the coefficients by byte
 * table lookups (vqtbl4q over the 64 bytes of a table); a NaN lane converts to index 0 and stays
 * NaN. */
static inline float32x4_t pq_i8n_sigmoid4(float32x4_t r) {
    const float(*t)[16] = pq_i8_sigmoid_table();
    float32x4_t a = vabsq_f32(r), one = vdupq_n_f32(1.0f);
    a = vbslq_f32(vcgtq_f32(a, vdupq_n_f32(16.0f)), vdupq_n_f32(16.0f), a);
    int32x4_t i = vminq_s32(vcvtq_s32_f32(a), vdupq_n_s32(15));
    float32x4_t f = vsubq_f32(a, vcvtq_f32_s32(i));
    /* byte indices 4 i .. 4 i + 3 of each lane's float */
    uint8x16_t bi = vreinterpretq_u8_u32(
        vaddq_u32(vmulq_n_u32(vreinterpretq_u32_s32(i), 0x04040404u), vdupq_n_u32(0x03020100u)));
    float32x4_t c[5];
    for (int k = 0; k < 5; k++) {
        uint8x16x4_t tb = {{vld1q_u8((const uint8_t *)t[k]), vld1q_u8((const uint8_t *)(t[k] + 4)),
                            vld1q_u8((const uint8_t *)(t[k] + 8)),
                            vld1q_u8((const uint8_t *)(t[k] + 12))}};
        c[k] = vreinterpretq_f32_u8(vqtbl4q_u8(tb, bi));
    }
    float32x4_t p = c[4];
    for (int k = 3; k >= 0; k--)
        p = vfmaq_f32(c[k], p, f); /* c[k] + p f, rounded once (fmaf) */
    return vbslq_f32(vcltq_f32(r, vdupq_n_f32(0.0f)), vsubq_f32(one, p), p);
}

/* pq_i8_act_f32 on 4 lanes, then the multiply by 1 / s_y (as pq_i8_rq1_act, also for kind
 * NONE): the scalar compares as compare-and-select, so NaNs and signed zeros go the same way;
 * separate multiplies and adds (needs -ffp-contract=off, the ISO C default). */
static inline float32x4_t pq_i8n_act4_apply(const pq_i8n_act4 *a, float32x4_t r) {
    float32x4_t zero = vdupq_n_f32(0.0f), one = vdupq_n_f32(1.0f), h;
    switch (a->kind) {
    case PQ_I8_ACT_RELU:
        r = vbslq_f32(vcltq_f32(r, zero), zero, r);
        break;
    case PQ_I8_ACT_CLIP:
        r = vbslq_f32(vcltq_f32(r, a->alpha), a->alpha, r);
        r = vbslq_f32(vcgtq_f32(r, a->beta), a->beta, r);
        break;
    case PQ_I8_ACT_LEAKY_RELU:
        r = vbslq_f32(vcltq_f32(r, zero), vmulq_f32(a->alpha, r), r);
        break;
    case PQ_I8_ACT_HARD_SIGMOID:
        h = vfmaq_f32(a->beta, a->alpha, r);
        h = vbslq_f32(vcltq_f32(h, zero), zero, h);
        r = vbslq_f32(vcgtq_f32(h, one), one, h);
        break;
    case PQ_I8_ACT_HARD_SWISH:
        h = vfmaq_f32(vdupq_n_f32(0.5f), r, vdupq_n_f32(1.0f / 6.0f));
        h = vbslq_f32(vcltq_f32(h, zero), zero, h);
        h = vbslq_f32(vcgtq_f32(h, one), one, h);
        r = vmulq_f32(r, h);
        break;
    case PQ_I8_ACT_SIGMOID:
        r = pq_i8n_sigmoid4(r);
        break;
    case PQ_I8_ACT_SWISH:
        r = vmulq_f32(r, pq_i8n_sigmoid4(r));
        break;
    default:
        break;
    }
    return vmulq_f32(r, a->inv);
}

/* 4 lanes of pq_i8_rq1 / pq_i8_rq1_act: (float)(acc + add) * m (i32 add wrapping), the
 * activation when a->on, clamp to [lo, hi] = [-zp, 255 - zp] (fmax / fmin keep a NaN, which
 * fcvtns turns into 0, i.e. the byte zp, as pq_i8_rqv), round half to even, + zp: i32 in
 * [0, 255]. */
static inline int32x4_t pq_i8n_rq4(int32x4_t acc, int32x4_t add, float32x4_t m,
                                   const pq_i8n_act4 *a, float32x4_t lo, float32x4_t hi,
                                   int32x4_t zp) {
    /* the wrapping add in u32 lanes: GCC's vaddq_s32 is a signed vector + (overflow undefined) */
    int32x4_t t =
        vreinterpretq_s32_u32(vaddq_u32(vreinterpretq_u32_s32(acc), vreinterpretq_u32_s32(add)));
    float32x4_t v = vmulq_f32(vcvtq_f32_s32(t), m);
    if (a->on) v = pq_i8n_act4_apply(a, v);
    v = vminq_f32(vmaxq_f32(v, lo), hi);
    return vaddq_s32(vcvtnq_s32_f32(v), zp);
}

/* 8 values in [0, 255] (two i32 vectors) as 8 bytes (exact narrowing). */
static inline uint8x8_t pq_i8n_pack8(int32x4_t q0, int32x4_t q1) {
    uint16x8_t h =
        vcombine_u16(vmovn_u32(vreinterpretq_u32_s32(q0)), vmovn_u32(vreinterpretq_u32_s32(q1)));
    return vmovn_u16(h);
}

#endif
