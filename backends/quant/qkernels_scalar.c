/* Scalar reference kernels for packed PiQ3/PiQ2/Q3/Q2 rows (SPEC section 2): quantize, dequantize,
 * gemv, gemm. They define the codes every SIMD kernel must reproduce bit for bit and the float
 * summation order SIMD results are compared against (within a bound). */
#include <math.h>
#include <string.h>

#include "backends/quant/quant.h"
#include "ir/dtype.h"

/* Columns decoded at a time by gemm (a multiple of 8, so chunks start on packed-block edges). */
#define PQ_GEMM_CHUNK 256

float pq_qformat_step_mult(enum pq_qformat f) {
    static const float pi_over_k[6] = {
        0.0f, 0.0f, (float)(PQ_PI / 2), (float)(PQ_PI / 3), (float)(PQ_PI / 4), (float)(PQ_PI / 5),
    };
    int k = pq_qformat_k(f);
    if (k >= 2 && k <= 5) return pi_over_k[k];
    return 1.0f; /* uniform Q3/Q2 (and, defensively, anything else) */
}

float pq_qstep(enum pq_qformat f, uint16_t a) {
    return pq_f16_to_f32(a) * pq_qformat_step_mult(f);
}

uint16_t pq_scale_clamp(uint16_t a) {
    uint16_t sign = a & 0x8000u, mag = a & 0x7FFFu;
    if (mag > 0x7C00u) return PQ_SCALE_F16_MIN; /* NaN */
    if (mag < PQ_SCALE_F16_MIN) return (uint16_t)(sign | PQ_SCALE_F16_MIN);
    if (mag > PQ_SCALE_F16_MAX) return (uint16_t)(sign | PQ_SCALE_F16_MAX);
    return a;
}

int pq_qcode(float w, float step, int bits) {
    float v = w / step;
    if (v != v) return 0;
    float lo = -(float)(1 << (bits - 1)), hi = (float)((1 << (bits - 1)) - 1);
    float r = nearbyintf(v);
    if (r < lo) r = lo;
    if (r > hi) r = hi;
    return (int)r;
}

/* Packs 8 codes (already offset to unsigned u) into bits bytes. */
static void pq_pack8(int bits, const uint8_t u[8], uint8_t *dst) {
    if (bits == 3) {
        uint32_t word = 0;
        for (int i = 0; i < 8; i++)
            word |= (uint32_t)u[i] << (3 * i);
        dst[0] = (uint8_t)(word & 0xFFu);
        dst[1] = (uint8_t)((word >> 8) & 0xFFu);
        dst[2] = (uint8_t)(word >> 16);
    } else {
        dst[0] = (uint8_t)(u[0] | u[1] << 2 | u[2] << 4 | u[3] << 6);
        dst[1] = (uint8_t)(u[4] | u[5] << 2 | u[6] << 4 | u[7] << 6);
    }
}

/* Unpacks 8 signed codes from bits bytes. */
static void pq_unpack8(int bits, const uint8_t *src, int q[8]) {
    if (bits == 3) {
        uint32_t word = (uint32_t)src[0] | (uint32_t)src[1] << 8 | (uint32_t)src[2] << 16;
        for (int i = 0; i < 8; i++)
            q[i] = (int)((word >> (3 * i)) & 7u) - 4;
    } else {
        for (int i = 0; i < 4; i++) {
            q[i] = (int)((src[0] >> (2 * i)) & 3u) - 2;
            q[4 + i] = (int)((src[1] >> (2 * i)) & 3u) - 2;
        }
    }
}

static uint16_t pq_load_le16(const uint8_t *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}

void pq_q_quantize_row_ukernel__scalar(enum pq_qformat f, const float *w, int64_t cols,
                                       int64_t group, const uint16_t *scales, uint8_t *dst) {
    if (cols <= 0 || group <= 0) return;
    int bits = pq_qformat_bits(f);
    int off = 1 << (bits - 1);
    int64_t ngroups = (cols + group - 1) / group;
    for (int64_t g = 0; g < ngroups; g++) {
        int64_t c0 = g * group;
        int64_t n = cols - c0 < group ? cols - c0 : group;
        uint16_t a = scales[g];
        dst[0] = (uint8_t)(a & 0xFFu);
        dst[1] = (uint8_t)(a >> 8);
        dst += 2;
        float step = pq_qstep(f, a);
        for (int64_t j = 0; j < n; j += 8) {
            uint8_t u[8];
            for (int i = 0; i < 8; i++) {
                int q = j + i < n ? pq_qcode(w[c0 + j + i], step, bits) : 0;
                u[i] = (uint8_t)(q + off);
            }
            pq_pack8(bits, u, dst);
            dst += bits;
        }
    }
}

void pq_q_dequantize_row_ukernel__scalar(enum pq_qformat f, const uint8_t *src, int64_t cols,
                                         int64_t group, float *dst) {
    if (cols <= 0 || group <= 0) return;
    int bits = pq_qformat_bits(f);
    int64_t ngroups = (cols + group - 1) / group;
    for (int64_t g = 0; g < ngroups; g++) {
        int64_t c0 = g * group;
        int64_t n = cols - c0 < group ? cols - c0 : group;
        float step = pq_qstep(f, pq_load_le16(src));
        src += 2;
        for (int64_t j = 0; j < n; j += 8) {
            int q[8];
            pq_unpack8(bits, src, q);
            src += bits;
            for (int i = 0; i < 8 && j + i < n; i++)
                dst[c0 + j + i] = (float)q[i] * step;
        }
    }
}

void pq_q_gemv_ukernel__scalar(enum pq_qformat f, const uint8_t *w, int64_t rows, int64_t cols,
                               int64_t group, const float *x, float *y) {
    pq_q_gemm_ukernel__scalar(f, w, rows, cols, group, x, 1, y);
}

/* Decodes columns [j0, j0 + len) of one group (j0 a multiple of 8) whose codes start at codes. */
static void pq_decode_span(int bits, const uint8_t *codes, float step, int64_t j0, int64_t len,
                           float *out) {
    const uint8_t *p = codes + (j0 / 8) * bits;
    for (int64_t j = 0; j < len; j += 8) {
        int q[8];
        pq_unpack8(bits, p, q);
        p += bits;
        for (int i = 0; i < 8 && j + i < len; i++)
            out[j + i] = (float)q[i] * step;
    }
}

void pq_q_gemm_ukernel__scalar(enum pq_qformat f, const uint8_t *w, int64_t rows, int64_t cols,
                               int64_t group, const float *x, int64_t batch, float *y) {
    if (rows <= 0 || cols <= 0 || group <= 0 || batch <= 0) return;
    int bits = pq_qformat_bits(f);
    size_t row_bytes = pq_packed_row_bytes(f, cols, group);
    int64_t ngroups = (cols + group - 1) / group;
    float buf[PQ_GEMM_CHUNK];
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *p = w + (size_t)r * row_bytes;
        for (int64_t b = 0; b < batch; b++)
            y[b * rows + r] = 0.0f;
        for (int64_t g = 0; g < ngroups; g++) {
            int64_t c0 = g * group;
            int64_t n = cols - c0 < group ? cols - c0 : group;
            float step = pq_qstep(f, pq_load_le16(p));
            const uint8_t *codes = p + 2;
            for (int64_t j0 = 0; j0 < n; j0 += PQ_GEMM_CHUNK) {
                int64_t len = n - j0 < PQ_GEMM_CHUNK ? n - j0 : PQ_GEMM_CHUNK;
                pq_decode_span(bits, codes, step, j0, len, buf);
                for (int64_t b = 0; b < batch; b++) {
                    const float *xb = x + b * cols + c0 + j0;
                    float acc = y[b * rows + r];
                    for (int64_t j = 0; j < len; j++) {
                        float prod = buf[j] * xb[j];
                        acc += prod;
                    }
                    y[b * rows + r] = acc;
                }
            }
            p += 2 + pq_packed_code_bytes(f, n);
        }
    }
}

const pq_qkernels pq_qkernels_scalar = {
    .isa = "scalar",
    .quantize_row = pq_q_quantize_row_ukernel__scalar,
    .dequantize_row = pq_q_dequantize_row_ukernel__scalar,
    .gemv = pq_q_gemv_ukernel__scalar,
    .gemm = pq_q_gemm_ukernel__scalar,
    .fwht = pq_fwht_ukernel__scalar, /* backends/quant/fwht.c */
    .fwht_rows = pq_fwht_rows_ukernel__scalar,
};
