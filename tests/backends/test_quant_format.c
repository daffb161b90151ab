/* Tests of the packed PiQ3/PiQ2/Q3/Q2 formats and the scalar reference kernels: SPEC test vectors,
 * round trips over sizes and group lengths with partial groups, padding codes, NaN handling,
 * scale-word clamp, step multipliers, and gemv/gemm against a plain loop. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backends/quant/quant.h"
#include "ir/dtype.h"

static uint64_t tq_state;
static float tq_uniform(void) { /* [0, 1) */
    tq_state = tq_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((tq_state >> 40) * (1.0 / 16777216.0));
}
static float tq_gauss(void) {
    float u1 = tq_uniform() + 1e-7f, u2 = tq_uniform();
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

/* Independent unpacker of code i of a group's code bytes. */
static int tq_code_at(enum pq_qformat f, const uint8_t *codes, int64_t i) {
    int bits = pq_qformat_bits(f);
    if (bits == 3) {
        const uint8_t *p = codes + (i / 8) * 3;
        uint32_t word = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
        return (int)((word >> (3 * (i % 8))) & 7u) - 4;
    }
    return (int)((codes[i / 4] >> (2 * (i % 4))) & 3u) - 2;
}

Test(quant_format, step_mult) {
    cr_assert_eq(pq_qformat_step_mult(PQ_QFORMAT_PIQ3), (float)(PQ_PI / 4));
    cr_assert_eq(pq_qformat_step_mult(PQ_QFORMAT_PIQ2), (float)(PQ_PI / 3));
    cr_assert_eq(pq_qformat_step_mult(PQ_QFORMAT_Q3), 1.0f);
    cr_assert_eq(pq_qformat_step_mult(PQ_QFORMAT_Q2), 1.0f);
    cr_assert_eq(pq_qformat_step_mult(PQ_QFORMAT_PIQ3), 0.785398185253143310546875f);
    cr_assert_eq(pq_qstep(PQ_QFORMAT_PIQ3, 0x3C00), (float)(PQ_PI / 4));
    cr_assert_eq(pq_qstep(PQ_QFORMAT_PIQ2, 0xC000), -2.0f * (float)(PQ_PI / 3));
}

Test(quant_format, piq3_vector) {
    /* a = 1/(pi/4) is not an f16, so use the Q3 grid (step = a) for exact codes, then PiQ3 with
     * weights built as q * step from its own step. */
    enum pq_qformat fs[2] = {PQ_QFORMAT_Q3, PQ_QFORMAT_PIQ3};
    for (int t = 0; t < 2; t++) {
        uint16_t a = 0x3C00; /* 1.0 */
        float step = pq_qstep(fs[t], a);
        float w[8];
        for (int i = 0; i < 8; i++)
            w[i] = (float)(i - 4) * step;
        uint8_t dst[6];
        memset(dst, 0xEE, sizeof dst);
        pq_qkernels_scalar.quantize_row(fs[t], w, 8, 8, &a, dst);
        const uint8_t want[5] = {0x00, 0x3C, 0x88, 0xC6, 0xFA};
        cr_assert_arr_eq(dst, want, 5);
        cr_assert_eq(dst[5], 0xEE, "overrun");
        float back[8];
        pq_qkernels_scalar.dequantize_row(fs[t], dst, 8, 8, back);
        for (int i = 0; i < 8; i++)
            cr_assert_eq(back[i], w[i]);
    }
}

Test(quant_format, piq2_vector) {
    enum pq_qformat fs[2] = {PQ_QFORMAT_Q2, PQ_QFORMAT_PIQ2};
    for (int t = 0; t < 2; t++) {
        uint16_t a = 0x3C00;
        float step = pq_qstep(fs[t], a);
        float w[4] = {-2 * step, -1 * step, 0.0f, 1 * step};
        uint8_t dst[5];
        memset(dst, 0xEE, sizeof dst);
        pq_qkernels_scalar.quantize_row(fs[t], w, 4, 8, &a, dst);
        /* 4 weights, then 4 padding codes q = 0 (u = 2): 0b10101010. */
        const uint8_t want[4] = {0x00, 0x3C, 0xE4, 0xAA};
        cr_assert_arr_eq(dst, want, 4);
        cr_assert_eq(dst[4], 0xEE, "overrun");
    }
}

Test(quant_format, piq3_padding_is_q0) {
    uint16_t a = 0x3C00;
    float w[1] = {-4.0f};
    uint8_t dst[6];
    memset(dst, 0xEE, sizeof dst);
    pq_qkernels_scalar.quantize_row(PQ_QFORMAT_Q3, w, 1, 8, &a, dst);
    /* u0 = 0, u1..7 = 4: word = 0x924920 (bits 100 repeated above the first 3 zero bits). */
    uint32_t word = 0;
    for (int i = 1; i < 8; i++)
        word |= 4u << (3 * i);
    cr_assert_eq(dst[2], word & 0xFF);
    cr_assert_eq(dst[3], (word >> 8) & 0xFF);
    cr_assert_eq(dst[4], word >> 16);
    cr_assert_eq(dst[5], 0xEE);
}

Test(quant_format, codes_round_half_even_and_clamp) {
    cr_assert_eq(pq_qcode(0.5f, 1.0f, 3), 0);
    cr_assert_eq(pq_qcode(1.5f, 1.0f, 3), 2);
    cr_assert_eq(pq_qcode(2.5f, 1.0f, 3), 2);
    cr_assert_eq(pq_qcode(-0.5f, 1.0f, 3), 0);
    cr_assert_eq(pq_qcode(-3.5f, 1.0f, 3), -4);
    cr_assert_eq(pq_qcode(3.5f, 1.0f, 3), 3);
    cr_assert_eq(pq_qcode(100.0f, 1.0f, 3), 3);
    cr_assert_eq(pq_qcode(-100.0f, 1.0f, 3), -4);
    cr_assert_eq(pq_qcode(-100.0f, 1.0f, 2), -2);
    cr_assert_eq(pq_qcode(100.0f, 1.0f, 2), 1);
    cr_assert_eq(pq_qcode(1.5f, -1.0f, 2), -2);
    cr_assert_eq(pq_qcode(NAN, 1.0f, 3), 0);
    cr_assert_eq(pq_qcode(INFINITY, 1.0f, 3), 3);
    cr_assert_eq(pq_qcode(-INFINITY, 1.0f, 2), -2);
    cr_assert_eq(pq_qcode(1e30f, 1e-30f, 3), 3); /* v = inf */
    /* division, not multiplication by a reciprocal: 3 * (1/3) in f32 vs 3 / 3 differ in general */
    cr_assert_eq(pq_qcode(2.5f * 0.1f, 0.1f, 3), (int)nearbyintf((2.5f * 0.1f) / 0.1f));
}

Test(quant_format, nan_weight_in_kernel_maps_to_zero) {
    uint16_t a = 0x3C00;
    float w[8] = {NAN, 1, 2, 3, -1, -2, -3, -4};
    uint8_t dst[5];
    pq_qkernels_scalar.quantize_row(PQ_QFORMAT_Q3, w, 8, 8, &a, dst);
    cr_assert_eq(tq_code_at(PQ_QFORMAT_Q3, dst + 2, 0), 0);
    cr_assert_eq(tq_code_at(PQ_QFORMAT_Q3, dst + 2, 7), -4);
}

Test(quant_format, scale_clamp) {
    cr_assert_eq(pq_scale_clamp(0x0000), PQ_SCALE_F16_MIN);
    cr_assert_eq(pq_scale_clamp(0x8000), 0x8000 | PQ_SCALE_F16_MIN);
    cr_assert_eq(pq_scale_clamp(0x0001), PQ_SCALE_F16_MIN);          /* subnormal */
    cr_assert_eq(pq_scale_clamp(0x83FF), 0x8000 | PQ_SCALE_F16_MIN); /* negative subnormal */
    cr_assert_eq(pq_scale_clamp(0x7C00), PQ_SCALE_F16_MAX);          /* +inf */
    cr_assert_eq(pq_scale_clamp(0xFC00), 0x8000 | PQ_SCALE_F16_MAX); /* -inf */
    cr_assert_eq(pq_scale_clamp(0x7E00), PQ_SCALE_F16_MIN);          /* NaN */
    cr_assert_eq(pq_scale_clamp(0x3C00), 0x3C00);
    cr_assert_eq(pq_scale_clamp(0xBC00), 0xBC00);
    cr_assert_eq(pq_f16_to_f32(PQ_SCALE_F16_MIN), ldexpf(1.0f, -14));
    cr_assert_eq(pq_f16_to_f32(PQ_SCALE_F16_MAX), 65504.0f);
}

/* One round trip of a rows x cols matrix with random scales of both signs. */
static void tq_round_trip(enum pq_qformat f, int64_t rows, int64_t cols, int64_t group) {
    int64_t ngroups = (cols + group - 1) / group;
    size_t row_bytes = pq_packed_row_bytes(f, cols, group);
    size_t bytes = pq_packed_bytes(f, rows, cols, group);
    cr_assert_eq(bytes, row_bytes * (size_t)rows);
    float *w = malloc(sizeof(float) * (size_t)(rows * cols));
    float *back = malloc(sizeof(float) * (size_t)(rows * cols));
    uint16_t *scales = malloc(sizeof(uint16_t) * (size_t)(rows * ngroups));
    uint8_t *dst = malloc(bytes + 16);
    uint8_t *again = malloc(bytes + 16);
    cr_assert(w && back && scales && dst && again);
    for (int64_t i = 0; i < rows * cols; i++)
        w[i] = tq_gauss();
    for (int64_t i = 0; i < rows * ngroups; i++) {
        float s = 0.3f + tq_uniform();
        scales[i] = pq_f32_to_f16(tq_uniform() < 0.5f ? -s : s);
    }
    memset(dst, 0xA5, bytes + 16);
    for (int64_t r = 0; r < rows; r++)
        pq_qkernels_scalar.quantize_row(f, w + r * cols, cols, group, scales + r * ngroups,
                                        dst + (size_t)r * row_bytes);
    for (int i = 0; i < 16; i++)
        cr_assert_eq(dst[bytes + i], 0xA5, "overrun");
    for (int64_t i = 0; i < rows * cols; i++)
        back[i] = NAN;
    for (int64_t r = 0; r < rows; r++)
        pq_qkernels_scalar.dequantize_row(f, dst + (size_t)r * row_bytes, cols, group,
                                          back + r * cols);
    int bits = pq_qformat_bits(f);
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *p = dst + (size_t)r * row_bytes;
        for (int64_t g = 0; g < ngroups; g++) {
            int64_t n = cols - g * group < group ? cols - g * group : group;
            uint16_t a = (uint16_t)(p[0] | p[1] << 8);
            cr_assert_eq(a, scales[r * ngroups + g]);
            float step = pq_f16_to_f32(a) * pq_qformat_step_mult(f);
            int64_t padded = (n + 7) / 8 * 8;
            for (int64_t j = 0; j < padded; j++) {
                int q = tq_code_at(f, p + 2, j);
                if (j >= n) {
                    cr_assert_eq(q, 0, "padding code at row %lld group %lld pos %lld", (long long)r,
                                 (long long)g, (long long)j);
                    continue;
                }
                float wv = w[r * cols + g * group + j];
                cr_assert_eq(q, pq_qcode(wv, step, bits));
                cr_assert_eq(back[r * cols + g * group + j], (float)q * step);
            }
            p += 2 + pq_packed_code_bytes(f, n);
        }
        cr_assert_eq(p, dst + (size_t)(r + 1) * row_bytes);
    }
    /* Quantizing the reconstruction with the same scales gives the same bytes. */
    for (int64_t r = 0; r < rows; r++)
        pq_qkernels_scalar.quantize_row(f, back + r * cols, cols, group, scales + r * ngroups,
                                        again + (size_t)r * row_bytes);
    cr_assert_arr_eq(again, dst, bytes);
    free(w);
    free(back);
    free(scales);
    free(dst);
    free(again);
}

Test(quant_format, round_trips) {
    static const int64_t sizes[] = {1, 7, 8, 9, 255, 256, 257};
    static const int64_t groups[] = {8, 32, 256};
    tq_state = 7;
    for (int f = 0; f < PQ_QFORMAT_COUNT; f++)
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
            for (size_t g = 0; g < sizeof groups / sizeof *groups; g++)
                tq_round_trip((enum pq_qformat)f, 3, sizes[s], groups[g]);
}

Test(quant_format, negative_scale_mirrors_levels) {
    /* PiQ3 with a < 0 reaches {-3..4} x |step|. */
    uint16_t a = 0xBC00; /* -1.0 */
    float step = pq_qstep(PQ_QFORMAT_Q3, a);
    cr_assert_eq(step, -1.0f);
    float w[8] = {4, -3, 5, -9, 0, 1, 2, 3};
    uint8_t dst[5];
    float back[8];
    pq_qkernels_scalar.quantize_row(PQ_QFORMAT_Q3, w, 8, 8, &a, dst);
    pq_qkernels_scalar.dequantize_row(PQ_QFORMAT_Q3, dst, 8, 8, back);
    const float want[8] = {4, -3, 4, -3, 0, 1, 2, 3};
    for (int i = 0; i < 8; i++)
        cr_assert_eq(back[i], want[i], "i=%d got %g", i, back[i]);
}

/* gemv/gemm against a plain loop over the dequantized matrix in the documented order. */
Test(quant_format, gemv_gemm_match_reference_order) {
    tq_state = 11;
    static const int64_t shapes[][3] = {
        {1, 1, 8}, {3, 9, 8}, {5, 257, 32}, {4, 700, 256}, {2, 600, 512}};
    for (int f = 0; f < PQ_QFORMAT_COUNT; f++) {
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            int64_t rows = shapes[s][0], cols = shapes[s][1], group = shapes[s][2], batch = 3;
            int64_t ngroups = (cols + group - 1) / group;
            size_t row_bytes = pq_packed_row_bytes((enum pq_qformat)f, cols, group);
            float *w = malloc(sizeof(float) * (size_t)(rows * cols));
            float *wh = malloc(sizeof(float) * (size_t)(rows * cols));
            float *x = malloc(sizeof(float) * (size_t)(batch * cols));
            float *y = malloc(sizeof(float) * (size_t)(batch * rows));
            float *y1 = malloc(sizeof(float) * (size_t)rows);
            uint16_t *sc = malloc(sizeof(uint16_t) * (size_t)(rows * ngroups));
            uint8_t *pk = malloc(row_bytes * (size_t)rows);
            for (int64_t i = 0; i < rows * cols; i++)
                w[i] = tq_gauss();
            for (int64_t i = 0; i < batch * cols; i++)
                x[i] = tq_gauss();
            for (int64_t i = 0; i < rows * ngroups; i++)
                sc[i] = pq_f32_to_f16(0.4f);
            for (int64_t r = 0; r < rows; r++) {
                pq_qkernels_scalar.quantize_row((enum pq_qformat)f, w + r * cols, cols, group,
                                                sc + r * ngroups, pk + r * row_bytes);
                pq_qkernels_scalar.dequantize_row((enum pq_qformat)f, pk + r * row_bytes, cols,
                                                  group, wh + r * cols);
            }
            pq_qkernels_scalar.gemm((enum pq_qformat)f, pk, rows, cols, group, x, batch, y);
            for (int64_t b = 0; b < batch; b++) {
                pq_qkernels_scalar.gemv((enum pq_qformat)f, pk, rows, cols, group, x + b * cols,
                                        y1);
                for (int64_t r = 0; r < rows; r++) {
                    float acc = 0.0f;
                    for (int64_t c = 0; c < cols; c++) {
                        float prod = wh[r * cols + c] * x[b * cols + c];
                        acc += prod;
                    }
                    cr_assert_eq(y[b * rows + r], acc, "gemm f=%d shape %zu b=%lld r=%lld", f, s,
                                 (long long)b, (long long)r);
                    cr_assert_eq(y1[r], acc, "gemv f=%d shape %zu", f, s);
                }
            }
            free(w);
            free(wh);
            free(x);
            free(y);
            free(y1);
            free(sc);
            free(pk);
        }
    }
}

Test(quant_format, kernel_table_complete) {
    cr_assert_str_eq(pq_qkernels_scalar.isa, "scalar");
    cr_assert_not_null(pq_qkernels_scalar.quantize_row);
    cr_assert_not_null(pq_qkernels_scalar.dequantize_row);
    cr_assert_not_null(pq_qkernels_scalar.gemv);
    cr_assert_not_null(pq_qkernels_scalar.gemm);
    cr_assert_not_null(pq_qkernels_scalar.fwht);
    cr_assert_not_null(pq_qkernels_scalar.fwht_rows);
}
