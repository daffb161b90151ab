/* NEON INT8 GEMM for the u8 x s8 kernels of backends/int8/: u8 operands are packed flipped to s8
 * (x ^ 0x80 = x - 128, the zero point lowered by 128 in the correction), then s8 x s8 dot
 * products: sdot (vdotq_s32) when the CPU has the dot-product extension (run-time HWCAP check,
 * compiled with a target attribute), else vmull_s8 + vpadalq_s16 (products fit i16, pair sums
 * widen to i32: no saturation). 4 rows x 8 lanes, k in quads. f32 requant epilogue with the
 * fused activations (int8_requant_neon.h). Depthwise with 16 channels in the lanes:
 * backends/arm/int8_dwc_neon.c. */
#include <arm_neon.h>
#include <string.h>
#include <sys/auxv.h>

#include "backends/arm/int8_dwc_neon.h"
#include "backends/arm/int8_requant_neon.h"
#include "backends/int8/int8_gemm.h"

#define PQ_I8N_MR 4
#define PQ_I8N_NR 8

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif

static inline int32x4_t pq_i8n_bcast(const uint8_t *a) {
    int32_t quad;
    memcpy(&quad, a, 4);
    return vdupq_n_s32(quad);
}

/* ---- widening: acc[r][v] holds [lane 2v k01, lane 2v k23, lane 2v+1 k01, lane 2v+1 k23] ---- */

static inline __attribute__((always_inline)) void pq_i8n_widen_tile(int MR, size_t kq,
                                                                    const uint8_t *a, size_t lda,
                                                                    size_t qs, const int8_t *p,
                                                                    int32_t *c) {
    int32x4_t acc[PQ_I8N_MR][4];
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < 4; v++)
            acc[r][v] = vdupq_n_s32(0);
    for (size_t q = 0; q < kq; q++, p += 4 * PQ_I8N_NR) {
        int8x8_t b0 = vld1_s8(p), b1 = vld1_s8(p + 8), b2 = vld1_s8(p + 16), b3 = vld1_s8(p + 24);
        for (int r = 0; r < MR; r++) {
            int8x8_t av =
                vreinterpret_s8_s32(vget_low_s32(pq_i8n_bcast(a + (size_t)r * lda + q * qs)));
            acc[r][0] = vpadalq_s16(acc[r][0], vmull_s8(av, b0));
            acc[r][1] = vpadalq_s16(acc[r][1], vmull_s8(av, b1));
            acc[r][2] = vpadalq_s16(acc[r][2], vmull_s8(av, b2));
            acc[r][3] = vpadalq_s16(acc[r][3], vmull_s8(av, b3));
        }
    }
    for (int r = 0; r < MR; r++) {
        vst1q_s32(c + r * PQ_I8N_NR, vpaddq_s32(acc[r][0], acc[r][1]));
        vst1q_s32(c + r * PQ_I8N_NR + 4, vpaddq_s32(acc[r][2], acc[r][3]));
    }
}

static void pq_i8_gemm_ukernel__neon_4x8(int mr, size_t kq, const void *a, size_t lda, size_t qs,
                                         const void *p, int32_t *c) {
    switch (mr) {
    case 1:
        pq_i8n_widen_tile(1, kq, a, lda, qs, p, c);
        break;
    case 2:
        pq_i8n_widen_tile(2, kq, a, lda, qs, p, c);
        break;
    case 3:
        pq_i8n_widen_tile(3, kq, a, lda, qs, p, c);
        break;
    default:
        pq_i8n_widen_tile(4, kq, a, lda, qs, p, c);
        break;
    }
}

/* ---- sdot ---- */

#define PQ_I8N_DOT __attribute__((target("arch=armv8.2-a+dotprod")))

static inline __attribute__((always_inline)) PQ_I8N_DOT void
pq_i8n_dot_tile(int MR, size_t kq, const uint8_t *a, size_t lda, size_t qs, const int8_t *p,
                int32_t *c) {
    int32x4_t acc[PQ_I8N_MR][2];
    for (int r = 0; r < MR; r++)
        acc[r][0] = acc[r][1] = vdupq_n_s32(0);
    for (size_t q = 0; q < kq; q++, p += 4 * PQ_I8N_NR) {
        int8x16_t b0 = vld1q_s8(p), b1 = vld1q_s8(p + 16);
        for (int r = 0; r < MR; r++) {
            int8x16_t av = vreinterpretq_s8_s32(pq_i8n_bcast(a + (size_t)r * lda + q * qs));
            acc[r][0] = vdotq_s32(acc[r][0], b0, av);
            acc[r][1] = vdotq_s32(acc[r][1], b1, av);
        }
    }
    for (int r = 0; r < MR; r++) {
        vst1q_s32(c + r * PQ_I8N_NR, acc[r][0]);
        vst1q_s32(c + r * PQ_I8N_NR + 4, acc[r][1]);
    }
}

static PQ_I8N_DOT void pq_i8_gemm_ukernel__neondot_4x8(int mr, size_t kq, const void *a, size_t lda,
                                                       size_t qs, const void *p, int32_t *c) {
    switch (mr) {
    case 1:
        pq_i8n_dot_tile(1, kq, a, lda, qs, p, c);
        break;
    case 2:
        pq_i8n_dot_tile(2, kq, a, lda, qs, p, c);
        break;
    case 3:
        pq_i8n_dot_tile(3, kq, a, lda, qs, p, c);
        break;
    default:
        pq_i8n_dot_tile(4, kq, a, lda, qs, p, c);
        break;
    }
}

/* ---- epilogue: int8_requant_neon.h on 8 values per step (fused activations included), the
 * scalar epilogue on the tail ---- */

static void pq_i8_requant__neon(const int32_t *acc, size_t n, int32_t add, float ms,
                                const float *mv, const pq_i8_act *act, int32_t zp, uint8_t *y) {
    int32x4_t va = vdupq_n_s32(add), vz = vdupq_n_s32(zp);
    float32x4_t vm = vdupq_n_f32(ms), lo = vdupq_n_f32((float)-zp);
    float32x4_t hi = vdupq_n_f32((float)(255 - zp));
    pq_i8n_act4 a = pq_i8n_act4_init(act);
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        float32x4_t m0 = mv ? vld1q_f32(mv + j) : vm, m1 = mv ? vld1q_f32(mv + j + 4) : vm;
        int32x4_t q0 = pq_i8n_rq4(vld1q_s32(acc + j), va, m0, &a, lo, hi, vz);
        int32x4_t q1 = pq_i8n_rq4(vld1q_s32(acc + j + 4), va, m1, &a, lo, hi, vz);
        vst1_u8(y + j, pq_i8n_pack8(q0, q1));
    }
    if (j < n) pq_i8_requant__scalar(acc + j, n - j, add, ms, mv ? mv + j : NULL, act, zp, y + j);
}

static const pq_i8_kernels pq_i8_neon_widen = {
    .isa = PQ_I8_NEON,
    .name = "neon",
    .mr = PQ_I8N_MR,
    .nr = PQ_I8N_NR,
    .kb = 4,
    .elem = 1,
    .flip = true,
    .ukernel = {pq_i8_gemm_ukernel__neon_4x8, pq_i8_gemm_ukernel__neon_4x8},
    .ukernel_rq = {NULL, NULL},
    .requant = pq_i8_requant__neon,
    .dwc = pq_i8_dwc__neon,
    .dwc_lanes = PQ_I8_DWC_NEON_LANES,
};

static const pq_i8_kernels pq_i8_neon_dot = {
    .isa = PQ_I8_NEON,
    .name = "neon-dotprod",
    .mr = PQ_I8N_MR,
    .nr = PQ_I8N_NR,
    .kb = 4,
    .elem = 1,
    .flip = true,
    .ukernel = {pq_i8_gemm_ukernel__neondot_4x8, pq_i8_gemm_ukernel__neondot_4x8},
    .ukernel_rq = {NULL, NULL},
    .requant = pq_i8_requant__neon,
    .dwc = pq_i8_dwc__neon,
    .dwc_lanes = PQ_I8_DWC_NEON_LANES,
};

const pq_i8_kernels *pq_i8_kernels_neon(int dot) {
    if (!dot) return &pq_i8_neon_widen;
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) ? &pq_i8_neon_dot : NULL;
}
