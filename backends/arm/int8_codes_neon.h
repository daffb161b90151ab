/* The real values of 16 u8 / s8 codes on NEON f32x4 lanes, shared by the QuantizeLinear /
 * DequantizeLinear and QLinearAdd / QLinearMul kernels (aarch64 only). */
#ifndef PQ_INT8_CODES_NEON_H
#define PQ_INT8_CODES_NEON_H

#include <arm_neon.h>
#include <stdbool.h>

/* f[j] = (float)(q - z) * s for the 16 codes of v, 4 per vector in order (u8 zero-extended, s8
 * sign-extended; one f32 multiply, as the scalar kernels). */
static inline void pq_i8n_real16(uint8x16_t v, bool is_u8, int32x4_t z, float32x4_t s,
                                 float32x4_t f[4]) {
    int32x4_t i[4];
    if (is_u8) {
        uint16x8_t l = vmovl_u8(vget_low_u8(v)), h = vmovl_u8(vget_high_u8(v));
        i[0] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(l)));
        i[1] = vreinterpretq_s32_u32(vmovl_u16(vget_high_u16(l)));
        i[2] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(h)));
        i[3] = vreinterpretq_s32_u32(vmovl_u16(vget_high_u16(h)));
    } else {
        int8x16_t s8 = vreinterpretq_s8_u8(v);
        int16x8_t l = vmovl_s8(vget_low_s8(s8)), h = vmovl_s8(vget_high_s8(s8));
        i[0] = vmovl_s16(vget_low_s16(l));
        i[1] = vmovl_s16(vget_high_s16(l));
        i[2] = vmovl_s16(vget_low_s16(h));
        i[3] = vmovl_s16(vget_high_s16(h));
    }
    for (int j = 0; j < 4; j++)
        f[j] = vmulq_f32(vcvtq_f32_s32(vsubq_s32(i[j], z)), s);
}

#endif
