/* Public face of backends/quant: PiQ/Q quantization math (scale selection, packing via the
 * scalar reference kernels, whole-matrix quantization), INT8 weight/activation parameters and
 * quality metrics (SPEC sections 2-5). The per-ISA kernel table lives in qkernels.h. */
#ifndef PQ_QUANT_H
#define PQ_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/quant/qkernels.h"
#include "ir/packed.h"
#include "ir/status.h"

/* pi in double (C11 has no M_PI). PI_OVER_K[k] = (float)(PQ_PI / k), rounded once. */
#define PQ_PI 3.14159265358979323846

/* f16 bit patterns of the scale-word clamp: |a| in [2^-14, 65504]. */
#define PQ_SCALE_F16_MIN 0x0400u /* 2^-14, smallest normal f16 */
#define PQ_SCALE_F16_MAX 0x7BFFu /* 65504, largest finite f16 */

/* ---- Scalar reference (backends/quant/qkernels_scalar.c) ------------------------------------ */

/* Code of one value: v = w / step (f32 division), q = clamp(rne(v), -2^(bits-1), 2^(bits-1)-1)
 * with the clamp done in float; NaN v -> 0. bits is 2 or 3. Every ISA must produce these codes. */
int pq_qcode(float w, float step, int bits);
/* Step of a group from its f16 scale word: pq_f16_to_f32(a) * pq_qformat_step_mult(f), in f32. */
float pq_qstep(enum pq_qformat f, uint16_t a);
/* Applies the scale-word clamp to an f16 value: |a| below 2^-14 (zero, subnormal) becomes 2^-14,
 * above 65504 (inf) becomes 65504; the sign is kept. NaN becomes +2^-14. */
uint16_t pq_scale_clamp(uint16_t a);

/* The scalar kernels of pq_qkernels_scalar (contract in qkernels.h). Summation order of the
 * products (the reference that SIMD versions match within a bound): for each output y[b][r] one
 * f32 accumulator starts at +0.0f and adds w_hat[r][c] * x[b][c] for c = 0, 1, ..., cols-1 in
 * order, the product rounded to f32 before the add (no FMA). gemm gives the same bits as gemv per
 * batch row. Sizes <= 0 write nothing. */
void pq_q_quantize_row_ukernel__scalar(enum pq_qformat f, const float *w, int64_t cols,
                                       int64_t group, const uint16_t *scales, uint8_t *dst);
void pq_q_dequantize_row_ukernel__scalar(enum pq_qformat f, const uint8_t *src, int64_t cols,
                                         int64_t group, float *dst);
void pq_q_gemv_ukernel__scalar(enum pq_qformat f, const uint8_t *w, int64_t rows, int64_t cols,
                               int64_t group, const float *x, float *y);
void pq_q_gemm_ukernel__scalar(enum pq_qformat f, const uint8_t *w, int64_t rows, int64_t cols,
                               int64_t group, const float *x, int64_t batch, float *y);

/* Scalar FWHT (backends/quant/fwht.c, SPEC section 6): in-place unnormalised Sylvester butterfly
 * on n = 2^m floats (8 <= n <= 65536) then every element times scale; the rows variant applies it
 * to `rows` contiguous vectors of length n. */
void pq_fwht_ukernel__scalar(float *x, int64_t n, float scale);
void pq_fwht_rows_ukernel__scalar(float *x, int64_t rows, int64_t n, float scale);

/* ---- Calibration (backends/quant/calibrate.c, SPEC sections 3-4) ----------------------------- */

enum pq_calib {
    PQ_CALIB_ABSMAX = 0, /* PiQ: ADR absmax rule; Q3/Q2: the signed-absmax baseline (section 3) */
    PQ_CALIB_MSE,      /* default: 2 orientations x 64 candidates, then least-squares refinement */
    PQ_CALIB_WEIGHTED, /* as mse, minimising sum h_j e_j^2 (h = per-column importance) */
    PQ_CALIB_GPTQ,     /* error-compensating rounding: pq_quantize_matrix_gptq */
    PQ_CALIB_COUNT
};

/* "absmax", "mse", "weighted", "gptq" ("invalid" out of range). */
const char *pq_calib_name(enum pq_calib c);
/* Parses a name from pq_calib_name; false if unknown. */
bool pq_calib_from_name(const char *name, enum pq_calib *out);

/* Scale word (f16 bits, clamped) of one group of n >= 1 finite weights w.
 * - absmax, PiQ: alpha = max|w| / ((2^(b-1) - 0.5) * PI_OVER_K) in f32, a = -sign(m) * alpha where
 *   m is the first element of largest |w| (so m lands on the extra level q = -2^(b-1)).
 * - absmax, Q3/Q2: a = f16(m / -2^(b-1)).
 * - mse and weighted: SPEC section 4. Candidate scale in f32:
 *   t = ((0.2f + (float)i / 63.0f) * max|w|) / (float)2^(b-1), a = f16((o * t) / mult), o = +1, -1.
 *   Refinement: a = f16((float)(S_wq / S_qq / (double)mult)) with S_wq = sum h w q, S_qq = sum h q
 * q in double (h = 1 for mse). SSE = sum h (w - w_hat)^2 in double, index order, with e = (double)w
 * - (double)w_hat. mult = pq_qformat_step_mult(f) (1 for Q3/Q2). A group whose weights are all zero
 * gets +2^-14. h (n entries, >= 0) is used by weighted only; NULL means all ones. gptq is treated
 * as mse here (the matrix-level algorithm is separate). Deterministic and allocation-free; weights
 * must be finite (pq_quantize_matrix checks). */
uint16_t pq_calib_group_scale(enum pq_qformat f, enum pq_calib c, const float *w, const float *h,
                              int64_t n);

/* Weighted squared error of one group quantized with scale word a: sum h (w - w_hat)^2 in double,
 * index order (h NULL = all ones). Used by calibration and tests. */
double pq_calib_group_sse(enum pq_qformat f, uint16_t a, const float *w, const float *h, int64_t n);

/* Quantizes a rows x cols weight (row-major, rows = output features, SPEC "weight view") into the
 * packed row layout. dst receives pq_packed_bytes(f, rows, cols, group) bytes (caller-owned).
 * importance: cols entries (h_j = E[x_j^2], finite, >= 0) for PQ_CALIB_WEIGHTED, else ignored
 * (may be NULL). tensor_name (may be NULL) names the tensor in messages.
 * Returns PQ_OK; PQ_ERR_INVALID for a non-finite weight ("quantize 'x': non-finite value at index
 * 17", first bad row-major index), bad sizes (rows/cols <= 0, group <= 0 or not a multiple of 8),
 * missing or bad importance with weighted, NULL buffers; PQ_ERR_UNSUPPORTED for an invalid format
 * or PQ_CALIB_GPTQ (use pq_quantize_matrix_gptq). Allocates nothing. */
enum pq_status pq_quantize_matrix(const char *tensor_name, const float *w, int64_t rows,
                                  int64_t cols, enum pq_qformat f, int64_t group,
                                  enum pq_calib calib, const float *importance, uint8_t *dst,
                                  pq_error *err);

/* GPTQ: adds the calibration inputs' Gram matrix to h: h[i*cols + j] += sum_s x[s][i] * x[s][j]
 * (double, cols x cols row-major, both triangles; the caller zeroes h first and may call this once
 * per batch, so calibration inputs never need to be held at once). x is nsamples x cols in the
 * weight row's column order (Conv: im2col patches). */
void pq_gptq_hessian_add(double *h, const float *x, int64_t nsamples, int64_t cols);

/* GPTQ/LDLQ quantization (SPEC section 4 "gptq") of a rows x cols weight into the packed row
 * layout (dst: pq_packed_bytes bytes). hessian = X^T X (cols x cols, not modified); it is
 * symmetrised, columns with a zero diagonal are dead (their weights become 0), then damped with
 * lambda = 1% of mean(diag). Each row is quantized column by column in index order; a group's
 * scale is chosen by mse on the error-updated weights when the group starts; the rounding error
 * (w - w_hat) / U[j][j] of column j is subtracted, times U[j][k], from the later columns k, U the
 * upper Cholesky factor of H^-1 (all in double, weights kept in f32). With H a multiple of I this
 * equals pq_quantize_matrix with mse. Deterministic. Temporarily allocates 2 * cols^2 doubles.
 * Returns PQ_OK; PQ_ERR_INVALID for non-finite weights (first index named) or Hessian entries,
 * bad sizes (cols > 65536 included), NULL buffers, or a Hessian that is not positive definite
 * after damping; PQ_ERR_UNSUPPORTED for an invalid format; PQ_ERR_NOMEM. */
enum pq_status pq_quantize_matrix_gptq(const char *tensor_name, const float *w, int64_t rows,
                                       int64_t cols, enum pq_qformat f, int64_t group,
                                       const double *hessian, uint8_t *dst, pq_error *err);

/* Dequantizes a packed rows x cols matrix into w_hat (rows*cols floats, caller-owned) with the
 * scalar kernel. Returns PQ_ERR_INVALID on bad sizes or NULL buffers. */
enum pq_status pq_dequantize_matrix(const uint8_t *src, int64_t rows, int64_t cols,
                                    enum pq_qformat f, int64_t group, float *w_hat, pq_error *err);

/* |step| of every group of a packed rows x cols matrix: steps[r * ngroups + g], ngroups =
 * ceil(cols / group) (caller-owned). Returns PQ_ERR_INVALID on bad sizes or NULL buffers. */
enum pq_status pq_packed_group_steps(const uint8_t *src, int64_t rows, int64_t cols,
                                     enum pq_qformat f, int64_t group, float *steps, pq_error *err);

/* ---- INT8 (backends/quant/int8.c, SPEC section 3 "INT8") ------------------------------------ */

/* Per-output-channel symmetric weights: for each row r of rows x cols w, s[r] = max|w_r| / 127.0f
 * (1 when the row is all zero or s underflows to 0), q = clamp(rne(w / s), -127, 127).
 * q (rows*cols) and scales (rows) are caller-owned. Returns PQ_ERR_INVALID for a non-finite weight
 * (named with its first row-major index), bad sizes or NULL buffers. */
enum pq_status pq_int8_quantize_weights(const char *tensor_name, const float *w, int64_t rows,
                                        int64_t cols, int8_t *q, float *scales, pq_error *err);

/* Bias for an INT8 layer: out[oc] = rne(b[oc] / (s_in * s_w[oc])) as i32 (quotient in double).
 * Returns PQ_ERR_INVALID when a value is non-finite or outside the i32 range, naming oc. */
enum pq_status pq_int8_quantize_bias(const char *tensor_name, const float *b, int64_t n, float s_in,
                                     const float *s_w, int32_t *out, pq_error *err);

/* u8 asymmetric activation parameters from a range: min <= 0 <= max is enforced first
 * (min = min(min, 0), max = max(max, 0)); scale = (max - min) / 255.0f, zero_point =
 * clamp(rne(-min / scale), 0, 255); min = max = 0 gives scale 1, zp 0. Returns PQ_ERR_INVALID
 * for a non-finite bound or a range whose width overflows f32. */
enum pq_status pq_u8_params(float min, float max, float *scale, uint8_t *zero_point, pq_error *err);

/* Streaming min/max of activations. Non-finite values are skipped and counted. */
typedef struct pq_range_minmax {
    float min, max;
    int64_t count;     /* finite values seen */
    int64_t nonfinite; /* NaN/inf values skipped */
} pq_range_minmax;
void pq_range_minmax_init(pq_range_minmax *r);
void pq_range_minmax_add(pq_range_minmax *r, const float *x, int64_t n);
/* min/max seen (0, 0 when nothing finite was seen). */
void pq_range_minmax_get(const pq_range_minmax *r, float *min, float *max);

/* Streaming two-sided percentile estimator in bounded memory (about 2 * (PQ_PCTL_BINS * 8 +
 * PQ_PCTL_EXACT * 4) bytes): separate histograms of |x| for positive and negative values over
 * [0, R) with R a power of two doubled on demand (bins merged pairwise, counts stay exact), plus
 * the PQ_PCTL_EXACT largest and smallest values kept exactly. Result for percentile p (0 < p <=
 * 100, default 99.99): hi = the value of nearest rank ceil(p/100 * N) in ascending order and lo =
 * the value of nearest rank max(1, ceil((1 - p/100) * N)); exact when that rank lies within the
 * kept extremes, otherwise the outer edge of its histogram bin (error below R / PQ_PCTL_BINS, never
 * clipping more than the percentile asks). Non-finite values are skipped and counted. */
#define PQ_PCTL_BINS 8192
#define PQ_PCTL_EXACT 1024
typedef struct pq_range_percentile {
    uint64_t pos[PQ_PCTL_BINS], neg[PQ_PCTL_BINS]; /* counts of |x| in bins of width R / BINS */
    int64_t zeros, count, nonfinite;
    double range;                /* R (0 until the first non-zero value) */
    float top[PQ_PCTL_EXACT];    /* min-heap of the largest values */
    float bottom[PQ_PCTL_EXACT]; /* max-heap of the smallest values */
    int32_t ntop, nbottom;
} pq_range_percentile;
/* The struct is large (~140 KB): allocate it (pq_malloc), do not put it on a small stack. */
void pq_range_percentile_init(pq_range_percentile *r);
void pq_range_percentile_add(pq_range_percentile *r, const float *x, int64_t n);
/* Range at percentile p (see above); 0, 0 when nothing finite was seen. Returns PQ_ERR_INVALID
 * when p is not in (0, 100]. */
enum pq_status pq_range_percentile_get(const pq_range_percentile *r, double p, float *lo, float *hi,
                                       pq_error *err);

/* ---- Quality metrics (backends/quant/metrics.c, SPEC section 5) ----------------------------- */

/* Running sums over the concatenation of tensors (all in double, index order). */
typedef struct pq_metrics_acc {
    int64_t n;                          /* weights */
    double sum_e2, sum_w2, sum_h2, dot; /* sum e^2, sum w^2, sum w_hat^2, sum w*w_hat */
    int64_t outliers, outliers_kept;    /* union of each tensor's own top 1% by |w| */
    uint64_t stored_bytes;              /* bytes added by pq_metrics_acc_add_packed */
} pq_metrics_acc;

typedef struct pq_metrics {
    int64_t n;
    double mse;    /* sum e^2 / n (0 when n = 0) */
    double sd_db;  /* 10 log10(sum e^2 / sum w^2); -inf when e = 0; +inf when w = 0, e != 0 */
    double cosine; /* <w, w_hat> / (|w| |w_hat|); 1 if both norms 0, 0 if exactly one is */
    double outlier_retention; /* kept / outliers (1 when there are no weights) */
    int64_t outliers, outliers_kept;
    double bpw_actual; /* 8 * stored_bytes / n (0 when no bytes were recorded or n = 0) */
} pq_metrics;

void pq_metrics_acc_init(pq_metrics_acc *acc);
/* Adds one tensor viewed as rows x cols, in groups of `group` columns: w and w_hat have rows*cols
 * floats, steps has rows * ceil(cols / group) group step magnitudes (|step|; INT8 per channel:
 * group = cols, steps = s_w). Outliers: the tensor's top max(1, ceil(0.01 n)) weights by |w| (ties:
 * lower row-major index first); kept when |w - w_hat| <= |step| of its group (compared in double).
 * Returns PQ_ERR_INVALID on bad sizes or NULL buffers, PQ_ERR_NOMEM if the top-k heap (8 bytes per
 * outlier) cannot be allocated; acc is unchanged on error. */
enum pq_status pq_metrics_acc_add(pq_metrics_acc *acc, const float *w, const float *w_hat,
                                  int64_t rows, int64_t cols, int64_t group, const float *steps,
                                  pq_error *err);
/* As pq_metrics_acc_add for a packed PiQ/Q tensor: dequantizes it (scalar kernel) and records its
 * stored bytes for the actual bits per weight. Allocates rows*cols floats temporarily. */
enum pq_status pq_metrics_acc_add_packed(pq_metrics_acc *acc, const float *w, const uint8_t *packed,
                                         int64_t rows, int64_t cols, enum pq_qformat f,
                                         int64_t group, pq_error *err);
/* Final metrics from the sums. */
void pq_metrics_acc_finish(const pq_metrics_acc *acc, pq_metrics *out);

/* Actual bits per weight: 8 * stored_bytes / n_weights (0 when n_weights <= 0). */
double pq_bpw_actual(uint64_t stored_bytes, int64_t n_weights);
/* Nominal bits per weight: bits + 16 / group (0 for an invalid format or group <= 0). */
double pq_bpw_nominal(enum pq_qformat f, int64_t group);

#endif
