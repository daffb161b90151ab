/* NEON QuantizeLinear / DequantizeLinear (qdq_ops.h, aarch64 only): 16 elements per step as four
 * f32x4 vectors, tails through a buffer. Quantize divides (fdiv, exact like the scalar division),
 * rounds half to even (frintn = nearbyintf in the default mode), adds the zero point, maps NaN to
 * it and clamps; dequantize is one f32 product: the reference's operations in its order, so
 * bit-exact for any scale (zero, NaN, infinities included). */
#include <arm_neon.h>
#include <string.h>

#include "backends/arm/int8_codes_neon.h"
#include "backends/int8/qdq_ops.h"

/* 16 quantized codes of x[0..15]. */
static inline uint8x16_t pq_qdqn_quant16(const float *x, float32x4_t s, float32x4_t z,
                                         float32x4_t lo, float32x4_t hi) {
    int32x4_t q[4];
    for (int j = 0; j < 4; j++) {
        float32x4_t v = vdivq_f32(vld1q_f32(x + 4 * j), s);
        v = vaddq_f32(vrndnq_f32(v), z);
        v = vbslq_f32(vceqq_f32(v, v), v, z); /* NaN -> zp */
        v = vminq_f32(vmaxq_f32(v, lo), hi);
        q[j] = vcvtq_s32_f32(v); /* an exact integer in [lo, hi] */
    }
    int16x8_t h0 = vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]));
    int16x8_t h1 = vcombine_s16(vmovn_s32(q[2]), vmovn_s32(q[3]));
    return vreinterpretq_u8_s8(vcombine_s8(vmovn_s16(h0), vmovn_s16(h1)));
}

static void pq_qdq_quant__neon(const float *x, size_t n, float s, int32_t zp, bool is_u8,
                               uint8_t *y) {
    float32x4_t vs = vdupq_n_f32(s), vz = vdupq_n_f32((float)zp);
    float32x4_t lo = vdupq_n_f32(is_u8 ? 0.0f : -128.0f), hi = vdupq_n_f32(is_u8 ? 255.0f : 127.0f);
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        vst1q_u8(y + i, pq_qdqn_quant16(x + i, vs, vz, lo, hi));
    if (i < n) {
        float t[16] = {0};
        uint8_t b[16];
        memcpy(t, x + i, (n - i) * sizeof(float));
        vst1q_u8(b, pq_qdqn_quant16(t, vs, vz, lo, hi));
        memcpy(y + i, b, n - i);
    }
}

/* (float)(x - zp) * s of 16 codes into y. */
static inline void pq_qdqn_dequant16(uint8x16_t v, bool is_u8, int32x4_t z, float32x4_t s,
                                     float *y) {
    float32x4_t f[4];
    pq_i8n_real16(v, is_u8, z, s, f);
    for (int j = 0; j < 4; j++)
        vst1q_f32(y + 4 * j, f[j]);
}

static void pq_qdq_dequant__neon(const uint8_t *x, size_t n, bool is_u8, int32_t zp, float s,
                                 float *y) {
    float32x4_t vs = vdupq_n_f32(s);
    int32x4_t vz = vdupq_n_s32(zp);
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        pq_qdqn_dequant16(vld1q_u8(x + i), is_u8, vz, vs, y + i);
    if (i < n) {
        uint8_t b[16] = {0};
        float t[16];
        memcpy(b, x + i, n - i);
        pq_qdqn_dequant16(vld1q_u8(b), is_u8, vz, vs, t);
        memcpy(y + i, t, (n - i) * sizeof(float));
    }
}

const pq_qdq_kernels pq_qdq_kernels_neon = {
    .name = "neon", .quant = pq_qdq_quant__neon, .dequant = pq_qdq_dequant__neon};
