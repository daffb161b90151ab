/* aarch64 Advanced SIMD (NEON) kernels for packed PiQ3/PiQ2/Q3/Q2 rows and the Walsh-Hadamard
 * butterfly, matching pq_qkernels_scalar: codes, packed bytes, dequantized values and fwht
 * bit-exact; gemv/gemm accumulate in a different order (bound 1e-5 * sum|w_hat x|). Built only for
 * aarch64 (cross-compiled and run under qemu by tests/neon/run.sh). */
#if defined(__aarch64__)
#include "backends/arm/qkernels_neon.h"

#include <arm_neon.h>
#include <string.h>

#include "backends/quant/quant.h"
#include "ir/dtype.h"
#include "ir/packed.h"

#define PQ_INLINE static inline __attribute__((always_inline))

PQ_INLINE uint32_t pq_ld32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

PQ_INLINE float pq_step(const uint8_t *p, float mult) {
    return pq_f16_to_f32((uint16_t)(p[0] | p[1] << 8)) * mult;
}

/* The 8 codes of the block at p as two float vectors (lanes 0-3, 4-7). The 32-bit word is read
 * from p - 1 (3-bit) or p - 2 (2-bit): a block is always preceded by its group's scale word or
 * the previous block, so nothing past the block is read. Codes are exact small integers. */
PQ_INLINE void pq_decode8(int bits, const uint8_t *p, float32x4_t *lo, float32x4_t *hi) {
    if (bits == 3) {
        static const int32_t s0[4] = {-8, -11, -14, -17}, s1[4] = {-20, -23, -26, -29};
        uint32x4_t w = vdupq_n_u32(pq_ld32(p - 1));
        uint32x4_t m = vdupq_n_u32(7);
        float32x4_t off = vdupq_n_f32(4.0f);
        *lo = vsubq_f32(vcvtq_f32_u32(vandq_u32(vshlq_u32(w, vld1q_s32(s0)), m)), off);
        *hi = vsubq_f32(vcvtq_f32_u32(vandq_u32(vshlq_u32(w, vld1q_s32(s1)), m)), off);
    } else {
        static const int32_t s0[4] = {-16, -18, -20, -22}, s1[4] = {-24, -26, -28, -30};
        uint32x4_t w = vdupq_n_u32(pq_ld32(p - 2));
        uint32x4_t m = vdupq_n_u32(3);
        float32x4_t off = vdupq_n_f32(2.0f);
        *lo = vsubq_f32(vcvtq_f32_u32(vandq_u32(vshlq_u32(w, vld1q_s32(s0)), m)), off);
        *hi = vsubq_f32(vcvtq_f32_u32(vandq_u32(vshlq_u32(w, vld1q_s32(s1)), m)), off);
    }
}

/* Unsigned codes of 4 values (scalar pq_qcode semantics: division, round-half-even, float clamp,
 * NaN -> 0). */
PQ_INLINE uint32x4_t pq_code4(int bits, float32x4_t w, float32x4_t vstep) {
    float32x4_t lo = vdupq_n_f32(bits == 3 ? -4.f : -2.f), hi = vdupq_n_f32(bits == 3 ? 3.f : 1.f);
    float32x4_t v = vdivq_f32(w, vstep);
    float32x4_t r = vminq_f32(vmaxq_f32(vrndnq_f32(v), lo), hi);
    uint32x4_t ok = vceqq_f32(v, v); /* false for NaN */
    r = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(r), ok));
    return vreinterpretq_u32_s32(vaddq_s32(vcvtq_s32_f32(r), vdupq_n_s32(bits == 3 ? 4 : 2)));
}

/* Packs 8 unsigned codes (two vectors) into bits bytes at dst. */
PQ_INLINE void pq_pack8(int bits, uint32x4_t u0, uint32x4_t u1, uint8_t *dst) {
    static const int32_t t3a[4] = {0, 3, 6, 9}, t3b[4] = {12, 15, 18, 21};
    static const int32_t t2a[4] = {0, 2, 4, 6}, t2b[4] = {8, 10, 12, 14};
    uint32x4_t f0 = vshlq_u32(u0, vld1q_s32(bits == 3 ? t3a : t2a));
    uint32x4_t f1 = vshlq_u32(u1, vld1q_s32(bits == 3 ? t3b : t2b));
    uint32_t word = vaddvq_u32(vorrq_u32(f0, f1)); /* disjoint fields: sum = or */
    dst[0] = (uint8_t)word;
    dst[1] = (uint8_t)(word >> 8);
    if (bits == 3) dst[2] = (uint8_t)(word >> 16);
}

/* Loads k (0..8) floats from p into two vectors, zero-filled (no read past p + k). */
PQ_INLINE void pq_load_partial(const float *p, int64_t k, float32x4_t *a, float32x4_t *b) {
    float t[8] = {0};
    memcpy(t, p, sizeof(float) * (size_t)k);
    *a = vld1q_f32(t);
    *b = vld1q_f32(t + 4);
}

PQ_INLINE void pq_quantize_row_bits(int bits, enum pq_qformat f, const float *w, int64_t cols,
                                    int64_t group, const uint16_t *scales, uint8_t *dst) {
    int64_t ngroups = (cols + group - 1) / group;
    const float mult = pq_qformat_step_mult(f);
    for (int64_t g = 0; g < ngroups; g++) {
        const float *wg = w + g * group;
        int64_t n = cols - g * group < group ? cols - g * group : group;
        uint16_t a = scales[g];
        dst[0] = (uint8_t)(a & 0xFFu);
        dst[1] = (uint8_t)(a >> 8);
        dst += 2;
        float32x4_t vstep = vdupq_n_f32(pq_f16_to_f32(a) * mult);
        int64_t nb = n / 8;
        for (int64_t j = 0; j < nb; j++) {
            pq_pack8(bits, pq_code4(bits, vld1q_f32(wg + 8 * j), vstep),
                     pq_code4(bits, vld1q_f32(wg + 8 * j + 4), vstep), dst);
            dst += bits;
        }
        int64_t rem = n - 8 * nb;
        if (rem) {
            float32x4_t a0, a1;
            pq_load_partial(wg + 8 * nb, rem, &a0, &a1);
            uint32x4_t u0 = pq_code4(bits, a0, vstep), u1 = pq_code4(bits, a1, vstep);
            /* padding lanes -> q = 0 whatever the step */
            static const uint32_t idx[8] = {0, 1, 2, 3, 4, 5, 6, 7};
            uint32x4_t kk = vdupq_n_u32((uint32_t)rem), zero = vdupq_n_u32(bits == 3 ? 4 : 2);
            u0 = vbslq_u32(vcltq_u32(vld1q_u32(idx), kk), u0, zero);
            u1 = vbslq_u32(vcltq_u32(vld1q_u32(idx + 4), kk), u1, zero);
            pq_pack8(bits, u0, u1, dst);
            dst += bits;
        }
    }
}

static void pq_q_quantize_row_ukernel__neon(enum pq_qformat f, const float *w, int64_t cols,
                                            int64_t group, const uint16_t *scales, uint8_t *dst) {
    if (cols <= 0 || group <= 0) return;
    if (pq_qformat_bits(f) == 3)
        pq_quantize_row_bits(3, f, w, cols, group, scales, dst);
    else
        pq_quantize_row_bits(2, f, w, cols, group, scales, dst);
}

/* Dequantizes columns [0, n) of a group span (codes at codes) into out; whole 8-blocks unless
 * exact is set, which stops at n. */
PQ_INLINE void pq_dequant_span(int bits, const uint8_t *codes, float step, int64_t n, float *out,
                               int exact) {
    float32x4_t vstep = vdupq_n_f32(step);
    int64_t nb = n / 8;
    for (int64_t j = 0; j < nb; j++) {
        float32x4_t lo, hi;
        pq_decode8(bits, codes + j * bits, &lo, &hi);
        vst1q_f32(out + 8 * j, vmulq_f32(lo, vstep));
        vst1q_f32(out + 8 * j + 4, vmulq_f32(hi, vstep));
    }
    int64_t rem = n - 8 * nb;
    if (rem) {
        float32x4_t lo, hi;
        float t[8];
        pq_decode8(bits, codes + nb * bits, &lo, &hi);
        vst1q_f32(t, vmulq_f32(lo, vstep));
        vst1q_f32(t + 4, vmulq_f32(hi, vstep));
        memcpy(out + 8 * nb, t, sizeof(float) * (size_t)(exact ? rem : 8));
    }
}

static void pq_q_dequantize_row_ukernel__neon(enum pq_qformat f, const uint8_t *src, int64_t cols,
                                              int64_t group, float *dst) {
    if (cols <= 0 || group <= 0) return;
    int bits = pq_qformat_bits(f);
    const float mult = pq_qformat_step_mult(f);
    int64_t ngroups = (cols + group - 1) / group;
    for (int64_t g = 0; g < ngroups; g++) {
        int64_t n = cols - g * group < group ? cols - g * group : group;
        float step = pq_step(src, mult);
        if (bits == 3)
            pq_dequant_span(3, src + 2, step, n, dst + g * group, 1);
        else
            pq_dequant_span(2, src + 2, step, n, dst + g * group, 1);
        src += 2 + pq_packed_code_bytes(f, n);
    }
}

/* One row of the fused GEMV: codes decoded into registers, FMA with x, one step per group. */
PQ_INLINE float pq_gemv_row(int bits, const uint8_t *p, int64_t cols, int64_t group, float mult,
                            const float *x) {
    float32x4_t tot = vdupq_n_f32(0.0f);
    int64_t ngroups = (cols + group - 1) / group;
    for (int64_t g = 0; g < ngroups; g++) {
        int64_t n = cols - g * group < group ? cols - g * group : group;
        const float *xg = x + g * group;
        const uint8_t *c = p + 2;
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
        int64_t nb = n / 8, j = 0;
        for (; j + 2 <= nb; j += 2) {
            float32x4_t l0, h0, l1, h1;
            pq_decode8(bits, c + j * bits, &l0, &h0);
            pq_decode8(bits, c + (j + 1) * bits, &l1, &h1);
            a0 = vfmaq_f32(a0, l0, vld1q_f32(xg + 8 * j));
            a1 = vfmaq_f32(a1, h0, vld1q_f32(xg + 8 * j + 4));
            a2 = vfmaq_f32(a2, l1, vld1q_f32(xg + 8 * j + 8));
            a3 = vfmaq_f32(a3, h1, vld1q_f32(xg + 8 * j + 12));
        }
        if (j < nb) {
            float32x4_t l0, h0;
            pq_decode8(bits, c + j * bits, &l0, &h0);
            a0 = vfmaq_f32(a0, l0, vld1q_f32(xg + 8 * j));
            a1 = vfmaq_f32(a1, h0, vld1q_f32(xg + 8 * j + 4));
        }
        int64_t rem = n - 8 * nb;
        if (rem) {
            float32x4_t l0, h0, x0, x1;
            pq_decode8(bits, c + nb * bits, &l0, &h0);
            pq_load_partial(xg + 8 * nb, rem, &x0, &x1);
            a2 = vfmaq_f32(a2, l0, x0);
            a3 = vfmaq_f32(a3, h0, x1);
        }
        float32x4_t s = vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3));
        tot = vfmaq_f32(tot, s, vdupq_n_f32(pq_step(p, mult)));
        p += 2 + (size_t)bits * (size_t)((n + 7) / 8);
    }
    return vaddvq_f32(tot);
}

static void pq_q_gemv_ukernel__neon(enum pq_qformat f, const uint8_t *w, int64_t rows, int64_t cols,
                                    int64_t group, const float *x, float *y) {
    if (rows <= 0 || cols <= 0 || group <= 0) return;
    size_t row_bytes = pq_packed_row_bytes(f, cols, group);
    const float mult = pq_qformat_step_mult(f);
    int bits = pq_qformat_bits(f);
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *p = w + (size_t)r * row_bytes;
        y[r] = bits == 3 ? pq_gemv_row(3, p, cols, group, mult, x)
                         : pq_gemv_row(2, p, cols, group, mult, x);
    }
}

#define PQ_NEON_KC 1024 /* columns of one row dequantized at a time (4 KB, reused over the batch)  \
                         */

static void pq_q_gemm_ukernel__neon(enum pq_qformat f, const uint8_t *w, int64_t rows, int64_t cols,
                                    int64_t group, const float *x, int64_t batch, float *y) {
    if (rows <= 0 || cols <= 0 || group <= 0 || batch <= 0) return;
    if (batch == 1) {
        pq_q_gemv_ukernel__neon(f, w, rows, cols, group, x, y);
        return;
    }
    int bits = pq_qformat_bits(f);
    size_t row_bytes = pq_packed_row_bytes(f, cols, group);
    size_t group_bytes = 2 + pq_packed_code_bytes(f, group);
    const float mult = pq_qformat_step_mult(f);
    float buf[PQ_NEON_KC + 8];
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *row = w + (size_t)r * row_bytes;
        for (int64_t c0 = 0; c0 < cols; c0 += PQ_NEON_KC) {
            int64_t len = cols - c0 < PQ_NEON_KC ? cols - c0 : PQ_NEON_KC;
            /* dequantize [c0, c0 + len): c0 is a multiple of 8, groups start on 8-blocks */
            for (int64_t c = c0; c < c0 + len;) {
                int64_t g = c / group, gs = g * group;
                int64_t ge = gs + group < cols ? gs + group : cols;
                int64_t e = ge < c0 + len ? ge : c0 + len;
                const uint8_t *p = row + (size_t)g * group_bytes;
                const uint8_t *codes = p + 2 + (size_t)((c - gs) / 8) * (size_t)bits;
                if (bits == 3)
                    pq_dequant_span(3, codes, pq_step(p, mult), e - c, buf + (c - c0), 1);
                else
                    pq_dequant_span(2, codes, pq_step(p, mult), e - c, buf + (c - c0), 1);
                c = e;
            }
            for (int64_t b = 0; b < batch; b++) {
                const float *xb = x + b * cols + c0;
                float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;
                int64_t k = 0;
                for (; k + 8 <= len; k += 8) {
                    a0 = vfmaq_f32(a0, vld1q_f32(buf + k), vld1q_f32(xb + k));
                    a1 = vfmaq_f32(a1, vld1q_f32(buf + k + 4), vld1q_f32(xb + k + 4));
                }
                float s = vaddvq_f32(vaddq_f32(a0, a1));
                for (; k < len; k++)
                    s += buf[k] * xb[k];
                y[b * rows + r] = c0 == 0 ? s : y[b * rows + r] + s;
            }
        }
    }
}

/* ---- Walsh-Hadamard butterfly ------------------------------------------------------------- */

/* Stages h = 1, 2 inside one vector of 4: lower lane of each pair v + s, upper lane s - v. */
PQ_INLINE float32x4_t pq_fwht4(float32x4_t v) {
    static const uint32_t m1[4] = {0, ~0u, 0, ~0u}, m2[4] = {0, 0, ~0u, ~0u};
    float32x4_t s = vrev64q_f32(v);
    v = vbslq_f32(vld1q_u32(m1), vsubq_f32(s, v), vaddq_f32(v, s));
    s = vextq_f32(v, v, 2);
    return vbslq_f32(vld1q_u32(m2), vsubq_f32(s, v), vaddq_f32(v, s));
}

PQ_INLINE void pq_fwht_pass(int L, int inreg, float *x, int64_t n, int64_t h0, int last,
                            float scale) {
    const int V = 1 << L;
    const int64_t span = h0 << L;
    const float32x4_t vs = vdupq_n_f32(scale);
    for (int64_t j = 0; j < n; j += span) {
        for (int64_t i = 0; i < h0; i += 4) {
            float *base = x + j + i;
            float32x4_t v[8];
#pragma GCC unroll 8
            for (int t = 0; t < V; t++) {
                v[t] = vld1q_f32(base + t * h0);
                if (inreg) v[t] = pq_fwht4(v[t]);
            }
#pragma GCC unroll 3
            for (int s = 0; s < L; s++) {
                int d = 1 << s;
#pragma GCC unroll 8
                for (int t = 0; t < V; t++) {
                    if (t & d) continue;
                    float32x4_t a = v[t], b = v[t + d];
                    v[t] = vaddq_f32(a, b);
                    v[t + d] = vsubq_f32(a, b);
                }
            }
#pragma GCC unroll 8
            for (int t = 0; t < V; t++)
                vst1q_f32(base + t * h0, last ? vmulq_f32(v[t], vs) : v[t]);
        }
    }
}

void pq_f32_fwht_ukernel__neon(float *x, int64_t n, float scale) {
    if (n < 4) {
        pq_fwht_ukernel__scalar(x, n, scale);
        return;
    }
    int m = 0;
    while (((int64_t)1 << m) < n)
        m++;
    int left = m - 2; /* stages with h >= 4 */
    int L = left < 3 ? left : 3;
    int last = (left - L) == 0;
    switch (L) {
    case 0:
        pq_fwht_pass(0, 1, x, n, 4, last, scale);
        break;
    case 1:
        pq_fwht_pass(1, 1, x, n, 4, last, scale);
        break;
    case 2:
        pq_fwht_pass(2, 1, x, n, 4, last, scale);
        break;
    default:
        pq_fwht_pass(3, 1, x, n, 4, last, scale);
        break;
    }
    int64_t h0 = (int64_t)4 << L;
    left -= L;
    while (left > 0) {
        L = left < 3 ? left : 3;
        last = (left - L) == 0;
        switch (L) {
        case 1:
            pq_fwht_pass(1, 0, x, n, h0, last, scale);
            break;
        case 2:
            pq_fwht_pass(2, 0, x, n, h0, last, scale);
            break;
        default:
            pq_fwht_pass(3, 0, x, n, h0, last, scale);
            break;
        }
        h0 <<= L;
        left -= L;
    }
}

static void pq_f32_fwht_rows_ukernel__neon(float *x, int64_t rows, int64_t n, float scale) {
    for (int64_t r = 0; r < rows; r++)
        pq_f32_fwht_ukernel__neon(x + r * n, n, scale);
}

const pq_qkernels pq_qkernels_neon = {
    .isa = "neon",
    .quantize_row = pq_q_quantize_row_ukernel__neon,
    .dequantize_row = pq_q_dequantize_row_ukernel__neon,
    .gemv = pq_q_gemv_ukernel__neon,
    .gemm = pq_q_gemm_ukernel__neon,
    .fwht = pq_f32_fwht_ukernel__neon,
    .fwht_rows = pq_f32_fwht_rows_ukernel__neon,
};
#endif
