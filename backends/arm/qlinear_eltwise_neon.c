/* NEON QLinearAdd / QLinearMul (qlinear_eltwise.h, aarch64 only): 16 elements per step as four
 * f32x4 vectors, tails through a 16-byte buffer, and the one-pass row broadcast (add_rows). The
 * same f32 operations in the same order as the scalar kernel: separate multiplies and adds (GCC
 * may fuse vmulq + vaddq under -ffp-contract=fast, so this file needs the ISO C default
 * -ffp-contract=off that -std=c11 and tests/neon/run.sh give), f32 division (fdiv), frintn
 * (round half to even = nearbyintf in the default mode), so bit-exact. */
#include <arm_neon.h>
#include <string.h>

#include "backends/arm/int8_codes_neon.h"
#include "backends/int8/qlinear_eltwise.h"

/* The per-call constants as vectors. */
typedef struct pq_qen {
    float32x4_t sa, sb, sc, lo, hi, zc, qlo, qhi;
    int32x4_t za, zb;
    bool is_u8, mul;
} pq_qen;

static inline void pq_qen_init(pq_qen *c, const pq_qadd_params *p) {
    c->sa = vdupq_n_f32(p->sa);
    c->sb = vdupq_n_f32(p->sb);
    c->sc = vdupq_n_f32(p->sc);
    c->lo = vdupq_n_f32(p->lo);
    c->hi = vdupq_n_f32(p->hi);
    c->zc = vdupq_n_f32((float)p->zc);
    c->qlo = vdupq_n_f32(p->is_u8 ? 0.0f : -128.0f);
    c->qhi = vdupq_n_f32(p->is_u8 ? 255.0f : 127.0f);
    c->za = vdupq_n_s32(p->za);
    c->zb = vdupq_n_s32(p->zb);
    c->is_u8 = p->is_u8;
    c->mul = p->mul;
}

/* 16 result codes from the real operands: combine, activation clamp, divide, round, + zc,
 * saturate (exact integers afterwards, so the narrowing keeps them). */
static inline uint8x16_t pq_qen_out(const pq_qen *c, const float32x4_t fa[4],
                                    const float32x4_t fb[4]) {
    int32x4_t q[4];
    for (int j = 0; j < 4; j++) {
        float32x4_t r = c->mul ? vmulq_f32(fa[j], fb[j]) : vaddq_f32(fa[j], fb[j]);
        r = vminq_f32(vmaxq_f32(r, c->lo), c->hi);
        r = vdivq_f32(r, c->sc);
        r = vaddq_f32(vrndnq_f32(r), c->zc);
        r = vminq_f32(vmaxq_f32(r, c->qlo), c->qhi);
        q[j] = vcvtq_s32_f32(r);
    }
    int16x8_t h0 = vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]));
    int16x8_t h1 = vcombine_s16(vmovn_s32(q[2]), vmovn_s32(q[3]));
    return vreinterpretq_u8_s8(vcombine_s8(vmovn_s16(h0), vmovn_s16(h1)));
}

/* n (< 16) bytes at p as a vector (the rest zero), never reading past p + n. */
static inline uint8x16_t pq_qen_load_tail(const uint8_t *p, size_t n) {
    uint8_t t[16] = {0};
    memcpy(t, p, n);
    return vld1q_u8(t);
}

static inline void pq_qen_store_tail(uint8_t *y, uint8x16_t v, size_t n) {
    uint8_t t[16];
    vst1q_u8(t, v);
    memcpy(y, t, n);
}

static void pq_qadd__neon(const uint8_t *a, const uint8_t *b, size_t n, bool b_bcast,
                          const pq_qadd_params *p, uint8_t *y) {
    pq_qen c;
    pq_qen_init(&c, p);
    float32x4_t fa[4], fb[4];
    if (b_bcast) {
        int32_t ib = p->is_u8 ? (int32_t)b[0] : (int32_t)(int8_t)b[0];
        fb[0] = fb[1] = fb[2] = fb[3] = vdupq_n_f32((float)(ib - p->zb) * p->sb);
    }
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        pq_i8n_real16(vld1q_u8(a + i), c.is_u8, c.za, c.sa, fa);
        if (!b_bcast) pq_i8n_real16(vld1q_u8(b + i), c.is_u8, c.zb, c.sb, fb);
        vst1q_u8(y + i, pq_qen_out(&c, fa, fb));
    }
    if (i < n) {
        size_t left = n - i;
        pq_i8n_real16(pq_qen_load_tail(a + i, left), c.is_u8, c.za, c.sa, fa);
        if (!b_bcast) pq_i8n_real16(pq_qen_load_tail(b + i, left), c.is_u8, c.zb, c.sb, fb);
        pq_qen_store_tail(y + i, pq_qen_out(&c, fa, fb), left);
    }
}

/* The real value of B code x (the scalar formula). */
static inline float pq_qen_fb(const pq_qadd_params *p, uint8_t x) {
    int32_t i = p->is_u8 ? (int32_t)x : (int32_t)(int8_t)x;
    return (float)(i - p->zb) * p->sb;
}

/* Row broadcast in one pass: a 16-element step that crosses a row end (at most one: inner >= 16)
 * takes the next row's value in the lanes past it. Per lane the same operations as
 * pq_qadd__neon. */
static void pq_qadd_rows__neon(const uint8_t *a, const uint8_t *b, size_t e0, size_t n,
                               size_t inner, const pq_qadd_params *p, uint8_t *y) {
    pq_qen c;
    pq_qen_init(&c, p);
    static const uint32_t lane[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    size_t r = e0 / inner, row_end = (r + 1) * inner;
    float fcur = pq_qen_fb(p, b[r]);
    for (size_t i = 0; i < n; i += 16) {
        size_t e = e0 + i, left = n - i < 16 ? n - i : 16;
        if (e >= row_end) {
            r++;
            row_end += inner;
            fcur = pq_qen_fb(p, b[r]);
        }
        float32x4_t fa[4], fb[4];
        fb[0] = fb[1] = fb[2] = fb[3] = vdupq_n_f32(fcur);
        size_t boundary = row_end - e;
        if (boundary < left) { /* lanes [boundary, left) belong to row r + 1, which exists */
            float32x4_t next = vdupq_n_f32(pq_qen_fb(p, b[r + 1]));
            uint32x4_t vb = vdupq_n_u32((uint32_t)boundary);
            for (int j = 0; j < 4; j++)
                fb[j] = vbslq_f32(vcltq_u32(vld1q_u32(lane + 4 * j), vb), fb[j], next);
        }
        if (left == 16) {
            pq_i8n_real16(vld1q_u8(a + i), c.is_u8, c.za, c.sa, fa);
            vst1q_u8(y + i, pq_qen_out(&c, fa, fb));
        } else {
            pq_i8n_real16(pq_qen_load_tail(a + i, left), c.is_u8, c.za, c.sa, fa);
            pq_qen_store_tail(y + i, pq_qen_out(&c, fa, fb), left);
        }
    }
}

const pq_qeltwise_kernels pq_qeltwise_kernels_neon = {
    .name = "neon", .add = pq_qadd__neon, .add_rows = pq_qadd_rows__neon};
