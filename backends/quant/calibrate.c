/* Scale selection for PiQ/Q groups (SPEC sections 3-4: absmax, the uniform signed-absmax baseline,
 * mse and importance-weighted mse) and whole-matrix quantization into the packed row layout.
 * Deterministic, allocation-free: the same weights give the same bytes on every machine. The
 * mse/weighted search has an AVX2 evaluation (calibrate_avx2.c) whose results are bit-identical
 * to the scalar definition here (tests/backends/test_quant_calib.c checks both agree). */
#include <math.h>
#include <string.h>

#include "backends/cpu.h"
#include "backends/quant/qkernels.h"
#include "backends/quant/quant.h"
#include "ir/dtype.h"

/* No fused multiply-adds: every SSE/least-squares term is the separately rounded product and sum
 * of SPEC section 4 (GCC in ISO C mode does not contract; clang would, within an expression). */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#if defined(__x86_64__) || defined(__i386__)
/* calibrate_avx2.c: the same search, bit-identical results, candidates in SIMD lanes; returns
 * false when its preconditions (finite inputs, mirrored steps) fail. */
bool pq_calib_search__avx2(enum pq_qformat f, const float *w, const float *h, int64_t n,
                           uint16_t *out);
#endif

#define PQ_MSE_CANDIDATES 64
#define PQ_MSE_REFINE_ROUNDS 10

static const char *const pq_calib_names[PQ_CALIB_COUNT] = {
    [PQ_CALIB_ABSMAX] = "absmax",
    [PQ_CALIB_MSE] = "mse",
    [PQ_CALIB_WEIGHTED] = "weighted",
    [PQ_CALIB_GPTQ] = "gptq",
};

const char *pq_calib_name(enum pq_calib c) {
    return (unsigned)c < PQ_CALIB_COUNT ? pq_calib_names[c] : "invalid";
}

bool pq_calib_from_name(const char *name, enum pq_calib *out) {
    if (!name) return false;
    for (int c = 0; c < PQ_CALIB_COUNT; c++) {
        if (strcmp(name, pq_calib_names[c]) == 0) {
            *out = (enum pq_calib)c;
            return true;
        }
    }
    return false;
}

/* Largest |w| and the index of its first occurrence. */
static float pq_group_absmax(const float *w, int64_t n, int64_t *at) {
    float mx = 0.0f;
    int64_t idx = 0;
    for (int64_t j = 0; j < n; j++) {
        float v = fabsf(w[j]);
        if (v > mx) {
            mx = v;
            idx = j;
        }
    }
    if (at) *at = idx;
    return mx;
}

static uint16_t pq_scale_word(float a) {
    return pq_scale_clamp(pq_f32_to_f16(a));
}

double pq_calib_group_sse(enum pq_qformat f, uint16_t a, const float *w, const float *h,
                          int64_t n) {
    int bits = pq_qformat_bits(f);
    float step = pq_qstep(f, a);
    double sse = 0.0;
    for (int64_t j = 0; j < n; j++) {
        float wh = (float)pq_qcode(w[j], step, bits) * step;
        double e = (double)w[j] - (double)wh;
        sse += h ? (double)h[j] * (e * e) : e * e;
    }
    return sse;
}

/* True when scale words a and b give the same codes for every weight. */
static bool pq_same_codes(enum pq_qformat f, uint16_t a, uint16_t b, const float *w, int64_t n) {
    if (a == b) return true;
    int bits = pq_qformat_bits(f);
    float sa = pq_qstep(f, a), sb = pq_qstep(f, b);
    for (int64_t j = 0; j < n; j++)
        if (pq_qcode(w[j], sa, bits) != pq_qcode(w[j], sb, bits)) return false;
    return true;
}

/* SPEC section 4 "mse" (h NULL) and "weighted" (h = importance): the definition. */
static uint16_t pq_calib_search_ref(enum pq_qformat f, const float *w, const float *h, int64_t n) {
    float mx = pq_group_absmax(w, n, NULL);
    if (mx == 0.0f) return PQ_SCALE_F16_MIN;
    int bits = pq_qformat_bits(f);
    float mult = pq_qformat_step_mult(f);
    float qn = (float)(1 << (bits - 1));
    uint16_t best = PQ_SCALE_F16_MIN;
    double best_sse = INFINITY;
    static const float orient[2] = {1.0f, -1.0f};
    for (int o = 0; o < 2; o++) {
        for (int i = 0; i < PQ_MSE_CANDIDATES; i++) {
            float t = ((0.2f + (float)i / 63.0f) * mx) / qn;
            uint16_t a = pq_scale_word((orient[o] * t) / mult);
            double sse = pq_calib_group_sse(f, a, w, h, n);
            if (sse < best_sse) { /* strict: ties keep the earlier orientation, then earlier i */
                best_sse = sse;
                best = a;
            }
        }
    }
    /* Least-squares refinement of the step for the current codes. */
    uint16_t cur = best;
    for (int round = 0; round < PQ_MSE_REFINE_ROUNDS; round++) {
        float step = pq_qstep(f, cur);
        double swq = 0.0, sqq = 0.0;
        for (int64_t j = 0; j < n; j++) {
            double q = (double)pq_qcode(w[j], step, bits);
            double hj = h ? (double)h[j] : 1.0;
            swq += hj * ((double)w[j] * q);
            sqq += hj * (q * q);
        }
        if (sqq == 0.0) break;
        uint16_t a = pq_scale_word((float)(swq / sqq / (double)mult));
        double sse = pq_calib_group_sse(f, a, w, h, n);
        if (sse < best_sse) {
            best_sse = sse;
            best = a;
        }
        if (pq_same_codes(f, cur, a, w, n)) break;
        cur = a;
    }
    return best;
}

static uint16_t pq_calib_search(enum pq_qformat f, const float *w, const float *h, int64_t n) {
#if defined(__x86_64__) || defined(__i386__)
    uint16_t a;
    /* PIQC_ISA=scalar (it selects the scalar kernel table) also forces the definition here. */
    if (pq_cpu_has_avx2() && pq_qkernels_get() != &pq_qkernels_scalar &&
        pq_calib_search__avx2(f, w, h, n, &a))
        return a;
#endif
    return pq_calib_search_ref(f, w, h, n);
}

uint16_t pq_calib_group_scale(enum pq_qformat f, enum pq_calib c, const float *w, const float *h,
                              int64_t n) {
    if (n <= 0 || (unsigned)f >= PQ_QFORMAT_COUNT) return PQ_SCALE_F16_MIN;
    int bits = pq_qformat_bits(f);
    float qn = (float)(1 << (bits - 1));
    if (c == PQ_CALIB_ABSMAX) {
        int64_t at;
        float mx = pq_group_absmax(w, n, &at);
        if (mx == 0.0f) return PQ_SCALE_F16_MIN;
        if (pq_qformat_k(f) == 0) /* uniform baseline: d = m / -2^(b-1) */
            return pq_scale_word(w[at] / -qn);
        float alpha = mx / ((qn - 0.5f) * pq_qformat_step_mult(f));
        return pq_scale_word(w[at] > 0.0f ? -alpha : alpha);
    }
    return pq_calib_search(f, w, c == PQ_CALIB_WEIGHTED ? h : NULL, n);
}

static bool pq_matrix_args_ok(int64_t rows, int64_t cols, enum pq_qformat f, int64_t group) {
    return rows > 0 && cols > 0 && group > 0 && group % 8 == 0 && (unsigned)f < PQ_QFORMAT_COUNT &&
           pq_packed_bytes(f, rows, cols, group) != 0;
}

enum pq_status pq_quantize_matrix(const char *tensor_name, const float *w, int64_t rows,
                                  int64_t cols, enum pq_qformat f, int64_t group,
                                  enum pq_calib calib, const float *importance, uint8_t *dst,
                                  pq_error *err) {
    const char *name = tensor_name ? tensor_name : "(unnamed)";
    if ((unsigned)f >= PQ_QFORMAT_COUNT)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED, "quantize '%s': invalid format %d", name,
                            (int)f);
    if ((unsigned)calib >= PQ_CALIB_COUNT)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED, "quantize '%s': invalid calibration %d", name,
                            (int)calib);
    if (calib == PQ_CALIB_GPTQ)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                            "quantize '%s': calibration 'gptq' needs calibration inputs "
                            "(pq_quantize_matrix_gptq), not per-column importance",
                            name);
    if (group <= 0 || group % 8 != 0)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "quantize '%s': group size %lld is not a positive multiple of 8", name,
                            (long long)group);
    if (!pq_matrix_args_ok(rows, cols, f, group))
        return pq_error_set(err, PQ_ERR_INVALID, "quantize '%s': invalid shape %lld x %lld", name,
                            (long long)rows, (long long)cols);
    if (!w || !dst)
        return pq_error_set(err, PQ_ERR_INVALID, "quantize '%s': NULL weight or output buffer",
                            name);
    if (calib == PQ_CALIB_WEIGHTED) {
        if (!importance)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "quantize '%s': calibration 'weighted' needs per-input-feature "
                                "importance from calibration data (--calib-data)",
                                name);
        for (int64_t c = 0; c < cols; c++)
            if (!isfinite(importance[c]) || importance[c] < 0.0f)
                return pq_error_set(err, PQ_ERR_INVALID,
                                    "quantize '%s': importance of input feature %lld is %g "
                                    "(must be finite and >= 0)",
                                    name, (long long)c, (double)importance[c]);
    }
    int64_t total = rows * cols;
    for (int64_t i = 0; i < total; i++)
        if (!isfinite(w[i]))
            return pq_error_set(err, PQ_ERR_INVALID,
                                "quantize '%s': non-finite value at index %lld (row %lld, col "
                                "%lld)",
                                name, (long long)i, (long long)(i / cols), (long long)(i % cols));
    /* Codes through the best kernel table: every ISA's quantize_row is bit-exact with the scalar
     * one (tests/backends/test_quant_simd.c), and the scalar loop is a large share of the time. */
    const pq_qkernels *k = pq_qkernels_get();
    size_t off = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *wr = w + r * cols;
        for (int64_t c0 = 0; c0 < cols; c0 += group) {
            int64_t n = cols - c0 < group ? cols - c0 : group;
            const float *h = calib == PQ_CALIB_WEIGHTED ? importance + c0 : NULL;
            uint16_t a = pq_calib_group_scale(f, calib, wr + c0, h, n);
            /* One group per call: cols = n <= group. */
            k->quantize_row(f, wr + c0, n, group, &a, dst + off);
            off += 2 + pq_packed_code_bytes(f, n);
        }
    }
    return PQ_OK;
}

enum pq_status pq_dequantize_matrix(const uint8_t *src, int64_t rows, int64_t cols,
                                    enum pq_qformat f, int64_t group, float *w_hat, pq_error *err) {
    if (!pq_matrix_args_ok(rows, cols, f, group) || !src || !w_hat)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "dequantize: invalid arguments (%lld x %lld, group %lld)",
                            (long long)rows, (long long)cols, (long long)group);
    size_t row_bytes = pq_packed_row_bytes(f, cols, group);
    for (int64_t r = 0; r < rows; r++)
        pq_q_dequantize_row_ukernel__scalar(f, src + (size_t)r * row_bytes, cols, group,
                                            w_hat + r * cols);
    return PQ_OK;
}

enum pq_status pq_packed_group_steps(const uint8_t *src, int64_t rows, int64_t cols,
                                     enum pq_qformat f, int64_t group, float *steps,
                                     pq_error *err) {
    if (!pq_matrix_args_ok(rows, cols, f, group) || !src || !steps)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "group steps: invalid arguments (%lld x %lld, group %lld)",
                            (long long)rows, (long long)cols, (long long)group);
    const uint8_t *p = src;
    int64_t k = 0;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c0 = 0; c0 < cols; c0 += group) {
            int64_t n = cols - c0 < group ? cols - c0 : group;
            steps[k++] = fabsf(pq_qstep(f, (uint16_t)(p[0] | p[1] << 8)));
            p += 2 + pq_packed_code_bytes(f, n);
        }
    }
    return PQ_OK;
}
