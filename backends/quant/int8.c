/* INT8 quantization parameters (SPEC section 3, ADR-091): per-output-channel symmetric weights,
 * i32 bias, u8 asymmetric activation scale/zero point, and streaming activation range estimators
 * (min/max and a bounded-memory two-sided percentile) for calibration runs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/quant/quant.h"

enum pq_status pq_int8_quantize_weights(const char *tensor_name, const float *w, int64_t rows,
                                        int64_t cols, int8_t *q, float *scales, pq_error *err) {
    const char *name = tensor_name ? tensor_name : "(unnamed)";
    if (rows <= 0 || cols <= 0 || rows > ((int64_t)1 << 40) / cols || !w || !q || !scales)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "int8 quantize '%s': invalid arguments (%lld x %lld)", name,
                            (long long)rows, (long long)cols);
    int64_t total = rows * cols;
    for (int64_t i = 0; i < total; i++)
        if (!isfinite(w[i]))
            return pq_error_set(err, PQ_ERR_INVALID,
                                "int8 quantize '%s': non-finite value at index %lld (row %lld, "
                                "col %lld)",
                                name, (long long)i, (long long)(i / cols), (long long)(i % cols));
    for (int64_t r = 0; r < rows; r++) {
        const float *wr = w + r * cols;
        float mx = 0.0f;
        for (int64_t c = 0; c < cols; c++)
            mx = fmaxf(mx, fabsf(wr[c]));
        float s = mx / 127.0f;
        if (s == 0.0f) s = 1.0f; /* all-zero channel (or underflow): q = 0 */
        scales[r] = s;
        for (int64_t c = 0; c < cols; c++) {
            float v = nearbyintf(wr[c] / s);
            if (v < -127.0f) v = -127.0f;
            if (v > 127.0f) v = 127.0f;
            q[r * cols + c] = (int8_t)v;
        }
    }
    return PQ_OK;
}

enum pq_status pq_int8_quantize_bias(const char *tensor_name, const float *b, int64_t n, float s_in,
                                     const float *s_w, int32_t *out, pq_error *err) {
    const char *name = tensor_name ? tensor_name : "(unnamed)";
    if (n <= 0 || !b || !s_w || !out)
        return pq_error_set(err, PQ_ERR_INVALID, "int8 bias '%s': invalid arguments", name);
    for (int64_t oc = 0; oc < n; oc++) {
        float bs = s_in * s_w[oc]; /* the f32 bias scale an exported DequantizeLinear uses */
        double v = (double)b[oc] / (double)bs;
        if (!isfinite(b[oc]) || !isfinite(bs) || bs <= 0.0f || !isfinite(v))
            return pq_error_set(err, PQ_ERR_INVALID,
                                "int8 bias '%s': channel %lld: bias %g with scale %g is not "
                                "representable",
                                name, (long long)oc, (double)b[oc], (double)bs);
        v = nearbyint(v);
        if (v < -2147483648.0 || v > 2147483647.0)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "int8 bias '%s': channel %lld: quantized bias %.0f outside int32",
                                name, (long long)oc, v);
        out[oc] = (int32_t)v;
    }
    return PQ_OK;
}

enum pq_status pq_u8_params(float min, float max, float *scale, uint8_t *zero_point,
                            pq_error *err) {
    if (!isfinite(min) || !isfinite(max))
        return pq_error_set(err, PQ_ERR_INVALID, "u8 activation range [%g, %g] is not finite",
                            (double)min, (double)max);
    if (min > 0.0f) min = 0.0f;
    if (max < 0.0f) max = 0.0f;
    float width = max - min;
    if (!isfinite(width))
        return pq_error_set(err, PQ_ERR_INVALID, "u8 activation range [%g, %g] is too wide",
                            (double)min, (double)max);
    float s = width / 255.0f;
    if (s == 0.0f) { /* degenerate range (min = max = 0, or underflow) */
        *scale = 1.0f;
        *zero_point = 0;
        return PQ_OK;
    }
    float zp = nearbyintf(-min / s);
    if (zp < 0.0f) zp = 0.0f;
    if (zp > 255.0f) zp = 255.0f;
    *scale = s;
    *zero_point = (uint8_t)zp;
    return PQ_OK;
}

void pq_range_minmax_init(pq_range_minmax *r) {
    r->min = INFINITY;
    r->max = -INFINITY;
    r->count = 0;
    r->nonfinite = 0;
}

void pq_range_minmax_add(pq_range_minmax *r, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        if (!isfinite(v)) {
            r->nonfinite++;
            continue;
        }
        r->count++;
        if (v < r->min) r->min = v;
        if (v > r->max) r->max = v;
    }
}

void pq_range_minmax_get(const pq_range_minmax *r, float *min, float *max) {
    if (r->count == 0) {
        *min = 0.0f;
        *max = 0.0f;
        return;
    }
    *min = r->min;
    *max = r->max;
}

/* ---- percentile estimator ------------------------------------------------------------------ */

void pq_range_percentile_init(pq_range_percentile *r) {
    memset(r, 0, sizeof *r);
}

/* Binary heap on floats: sign = +1 keeps the smallest at the root (min-heap), -1 the largest. */
static bool pq_fheap_before(float a, float b, int sign) {
    return sign > 0 ? a < b : a > b;
}

static void pq_fheap_push(float *h, int32_t *size, float v, int sign) {
    int32_t i = (*size)++;
    h[i] = v;
    while (i > 0) {
        int32_t p = (i - 1) / 2;
        if (!pq_fheap_before(h[i], h[p], sign)) break;
        float t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static void pq_fheap_replace_root(float *h, int32_t size, float v, int sign) {
    h[0] = v;
    int32_t i = 0;
    for (;;) {
        int32_t l = 2 * i + 1, rr = l + 1, m = i;
        if (l < size && pq_fheap_before(h[l], h[m], sign)) m = l;
        if (rr < size && pq_fheap_before(h[rr], h[m], sign)) m = rr;
        if (m == i) return;
        float t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* Doubles R until it exceeds a, merging bin pairs so counts stay exact. */
static void pq_pctl_grow(pq_range_percentile *r, double a) {
    if (r->range == 0.0) {
        int e;
        frexp(a, &e); /* a = m * 2^e, 0.5 <= m < 1 -> a < 2^e */
        r->range = ldexp(1.0, e);
        return;
    }
    while (a >= r->range) {
        for (int i = 0; i < PQ_PCTL_BINS / 2; i++) {
            r->pos[i] = r->pos[2 * i] + r->pos[2 * i + 1];
            r->neg[i] = r->neg[2 * i] + r->neg[2 * i + 1];
        }
        for (int i = PQ_PCTL_BINS / 2; i < PQ_PCTL_BINS; i++)
            r->pos[i] = r->neg[i] = 0;
        r->range *= 2.0;
    }
}

void pq_range_percentile_add(pq_range_percentile *r, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        if (!isfinite(v)) {
            r->nonfinite++;
            continue;
        }
        r->count++;
        if (r->ntop < PQ_PCTL_EXACT)
            pq_fheap_push(r->top, &r->ntop, v, +1);
        else if (v > r->top[0])
            pq_fheap_replace_root(r->top, r->ntop, v, +1);
        if (r->nbottom < PQ_PCTL_EXACT)
            pq_fheap_push(r->bottom, &r->nbottom, v, -1);
        else if (v < r->bottom[0])
            pq_fheap_replace_root(r->bottom, r->nbottom, v, -1);
        if (v == 0.0f) {
            r->zeros++;
            continue;
        }
        double a = fabs((double)v);
        if (a >= r->range) pq_pctl_grow(r, a);
        int64_t b = (int64_t)(a / r->range * PQ_PCTL_BINS);
        if (b >= PQ_PCTL_BINS) b = PQ_PCTL_BINS - 1;
        if (v > 0.0f)
            r->pos[b]++;
        else
            r->neg[b]++;
    }
}

static int pq_cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* The t-th largest (t >= 1) value, or its bin's upper edge when outside the kept extremes. */
static float pq_pctl_from_top(const pq_range_percentile *r, int64_t t) {
    if (t <= r->ntop) {
        float tmp[PQ_PCTL_EXACT];
        memcpy(tmp, r->top, sizeof(float) * (size_t)r->ntop);
        qsort(tmp, (size_t)r->ntop, sizeof(float), pq_cmp_desc);
        return tmp[t - 1];
    }
    double w = r->range / PQ_PCTL_BINS;
    int64_t cum = 0;
    for (int b = PQ_PCTL_BINS - 1; b >= 0; b--)
        if ((cum += (int64_t)r->pos[b]) >= t) return (float)((b + 1) * w);
    if ((cum += r->zeros) >= t) return 0.0f;
    for (int b = 0; b < PQ_PCTL_BINS; b++)
        if ((cum += (int64_t)r->neg[b]) >= t) return (float)(-(b * w));
    return 0.0f; /* unreachable: counts sum to count */
}

/* The t-th smallest value, or its bin's lower edge. */
static float pq_pctl_from_bottom(const pq_range_percentile *r, int64_t t) {
    if (t <= r->nbottom) {
        float tmp[PQ_PCTL_EXACT];
        memcpy(tmp, r->bottom, sizeof(float) * (size_t)r->nbottom);
        qsort(tmp, (size_t)r->nbottom, sizeof(float), pq_cmp_desc);
        return tmp[r->nbottom - t]; /* descending order: smallest last */
    }
    double w = r->range / PQ_PCTL_BINS;
    int64_t cum = 0;
    for (int b = PQ_PCTL_BINS - 1; b >= 0; b--)
        if ((cum += (int64_t)r->neg[b]) >= t) return (float)(-((b + 1) * w));
    if ((cum += r->zeros) >= t) return 0.0f;
    for (int b = 0; b < PQ_PCTL_BINS; b++)
        if ((cum += (int64_t)r->pos[b]) >= t) return (float)(b * w);
    return 0.0f;
}

enum pq_status pq_range_percentile_get(const pq_range_percentile *r, double p, float *lo, float *hi,
                                       pq_error *err) {
    if (!(p > 0.0 && p <= 100.0))
        return pq_error_set(err, PQ_ERR_INVALID, "percentile %g is not in (0, 100]", p);
    int64_t n = r->count;
    if (n == 0) {
        *lo = 0.0f;
        *hi = 0.0f;
        return PQ_OK;
    }
    int64_t r_hi = (int64_t)ceil(p / 100.0 * (double)n);
    if (r_hi < 1) r_hi = 1;
    if (r_hi > n) r_hi = n;
    int64_t r_lo = (int64_t)ceil((1.0 - p / 100.0) * (double)n);
    if (r_lo < 1) r_lo = 1;
    if (r_lo > n) r_lo = n;
    *hi = pq_pctl_from_top(r, n - r_hi + 1);
    *lo = pq_pctl_from_bottom(r, r_lo);
    return PQ_OK;
}
