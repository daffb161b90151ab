/* Tests of INT8 parameters (SPEC section 3): per-channel symmetric weights (ties, all-zero
 * channels, non-finite rejection), i32 bias, u8 activation scale/zero point with degenerate ranges,
 * and the streaming min/max and percentile estimators against exact sorted ranks. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/quant/quant.h"

Test(quant_int8, weights_per_channel) {
    float w[3 * 5] = {127,    -63.5f, 0.5f,  -0.5f, 1.5f, /* s = 1 */
                      0,      0,      0,     -0.0f, 0,    /* all zero: s = 1, q = 0 */
                      -2.54f, 0.01f,  1.27f, 0.02f, 0.03f};
    int8_t q[15];
    float s[3];
    pq_error err;
    cr_assert_eq(pq_int8_quantize_weights("fc.w", w, 3, 5, q, s, &err), PQ_OK);
    cr_assert_eq(s[0], 1.0f);
    const int8_t want0[5] = {127, -64, 0, 0, 2};
    cr_assert_arr_eq(q, want0, 5);
    cr_assert_eq(s[1], 1.0f);
    for (int i = 5; i < 10; i++)
        cr_assert_eq(q[i], 0);
    cr_assert_eq(s[2], 2.54f / 127.0f);
    cr_assert_eq(q[10], -127);
    cr_assert_eq(q[12], (int8_t)nearbyintf(1.27f / s[2]));
    for (int i = 10; i < 15; i++)
        cr_assert(q[i] >= -127 && q[i] <= 127);
}

Test(quant_int8, weights_reject_non_finite) {
    float w[6] = {1, 2, 3, 4, INFINITY, 6};
    int8_t q[6];
    float s[2];
    pq_error err;
    cr_assert_eq(pq_int8_quantize_weights("conv.w", w, 2, 3, q, s, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "'conv.w'") && strstr(err.msg, "index 4"), "%s", err.msg);
    cr_assert_eq(pq_int8_quantize_weights("conv.w", w, 0, 3, q, s, &err), PQ_ERR_INVALID);
}

Test(quant_int8, bias) {
    float b[3] = {1.0f, 0.3125f, -0.3125f}, sw[3] = {0.25f, 0.25f, 0.25f};
    int32_t out[3];
    pq_error err;
    cr_assert_eq(pq_int8_quantize_bias("b", b, 3, 0.5f, sw, out, &err), PQ_OK);
    cr_assert_eq(out[0], 8);
    cr_assert_eq(out[1], 2); /* 2.5 -> 2 (half to even) */
    cr_assert_eq(out[2], -2);
    float big[1] = {1e10f}, tiny[1] = {1e-3f};
    cr_assert_eq(pq_int8_quantize_bias("b", big, 1, 1e-3f, tiny, out, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "int32"), "%s", err.msg);
    float zero[1] = {0.0f};
    cr_assert_eq(pq_int8_quantize_bias("b", b, 1, 1.0f, zero, out, &err), PQ_ERR_INVALID);
}

Test(quant_int8, u8_params) {
    float s;
    uint8_t zp;
    pq_error err;
    cr_assert_eq(pq_u8_params(-1.0f, 3.0f, &s, &zp, &err), PQ_OK);
    cr_assert_eq(s, 4.0f / 255.0f);
    cr_assert_eq(zp, 64); /* 63.75 */
    cr_assert_eq(pq_u8_params(0.0f, 0.0f, &s, &zp, &err), PQ_OK);
    cr_assert_eq(s, 1.0f);
    cr_assert_eq(zp, 0);
    cr_assert_eq(pq_u8_params(2.0f, 5.0f, &s, &zp, &err), PQ_OK); /* min forced to 0 */
    cr_assert_eq(s, 5.0f / 255.0f);
    cr_assert_eq(zp, 0);
    cr_assert_eq(pq_u8_params(-5.0f, -1.0f, &s, &zp, &err), PQ_OK); /* max forced to 0 */
    cr_assert_eq(s, 5.0f / 255.0f);
    cr_assert_eq(zp, 255);
    cr_assert_eq(pq_u8_params(NAN, 1.0f, &s, &zp, &err), PQ_ERR_INVALID);
    cr_assert_eq(pq_u8_params(-3e38f, 3e38f, &s, &zp, &err), PQ_ERR_INVALID);
    cr_assert_eq(pq_u8_params(-INFINITY, 0.0f, &s, &zp, &err), PQ_ERR_INVALID);
}

Test(quant_int8, minmax) {
    pq_range_minmax r;
    float lo, hi;
    pq_range_minmax_init(&r);
    pq_range_minmax_get(&r, &lo, &hi);
    cr_assert(lo == 0.0f && hi == 0.0f);
    float a[5] = {1, NAN, -2, INFINITY, 0.5f}, b[2] = {3, -INFINITY};
    pq_range_minmax_add(&r, a, 5);
    pq_range_minmax_add(&r, b, 2);
    pq_range_minmax_get(&r, &lo, &hi);
    cr_assert_eq(lo, -2.0f);
    cr_assert_eq(hi, 3.0f);
    cr_assert_eq(r.count, 4);
    cr_assert_eq(r.nonfinite, 3);
}

static int ti_cmp(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static uint64_t ti_state;
static float ti_gauss(void) {
    ti_state = ti_state * 6364136223846793005ULL + 1442695040888963407ULL;
    float u1 = (float)((ti_state >> 40) * (1.0 / 16777216.0)) + 1e-7f;
    ti_state = ti_state * 6364136223846793005ULL + 1442695040888963407ULL;
    float u2 = (float)((ti_state >> 40) * (1.0 / 16777216.0));
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

/* Checks the estimate against the exact nearest-rank values of sorted data. */
static void ti_check(const pq_range_percentile *r, const float *sorted, int64_t n, double p) {
    float lo, hi;
    pq_error err;
    cr_assert_eq(pq_range_percentile_get(r, p, &lo, &hi, &err), PQ_OK);
    int64_t r_hi = (int64_t)ceil(p / 100.0 * (double)n), r_lo = (int64_t)ceil((1 - p / 100.0) * n);
    if (r_hi < 1) r_hi = 1;
    if (r_lo < 1) r_lo = 1;
    float ehi = sorted[r_hi - 1], elo = sorted[r_lo - 1];
    if (n - r_hi + 1 <= PQ_PCTL_EXACT) {
        cr_assert_eq(hi, ehi, "p=%g hi %g exact %g", p, hi, ehi);
    } else {
        double w = r->range / PQ_PCTL_BINS;
        cr_assert(hi >= ehi && hi <= ehi + w * 1.000001, "p=%g hi %g exact %g bin %g", p, hi, ehi,
                  w);
    }
    if (r_lo <= PQ_PCTL_EXACT) {
        cr_assert_eq(lo, elo, "p=%g lo %g exact %g", p, lo, elo);
    } else {
        double w = r->range / PQ_PCTL_BINS;
        cr_assert(lo <= elo && lo >= elo - w * 1.000001, "p=%g lo %g exact %g", p, lo, elo);
    }
}

Test(quant_int8, percentile_matches_exact_ranks) {
    enum { N = 200000 };
    float *x = malloc(sizeof(float) * N), *sorted = malloc(sizeof(float) * N);
    pq_range_percentile *r = malloc(sizeof *r);
    cr_assert(x && sorted && r);
    ti_state = 1;
    /* small values first, larger later: exercises range doubling mid-stream */
    for (int i = 0; i < N; i++) {
        x[i] = ti_gauss() * (i < N / 2 ? 0.01f : 1.0f) + (i % 10 == 0 ? 0.0f : 0.3f);
        if (i % 97 == 0) x[i] = 0.0f;
    }
    x[N - 1] = 40.0f;
    pq_range_percentile_init(r);
    for (int i = 0; i < N; i += 1000)
        pq_range_percentile_add(r, x + i, N - i < 1000 ? N - i : 1000);
    float bad[3] = {NAN, INFINITY, -INFINITY};
    pq_range_percentile_add(r, bad, 3);
    cr_assert_eq(r->count, N);
    cr_assert_eq(r->nonfinite, 3);
    memcpy(sorted, x, sizeof(float) * N);
    qsort(sorted, N, sizeof(float), ti_cmp);
    static const double ps[] = {100.0, 99.99, 99.9, 99.0, 90.0, 50.0, 10.0, 0.5};
    for (size_t i = 0; i < sizeof ps / sizeof *ps; i++)
        ti_check(r, sorted, N, ps[i]);
    float lo, hi;
    pq_error err;
    cr_assert_eq(pq_range_percentile_get(r, 100.0, &lo, &hi, &err), PQ_OK);
    cr_assert_eq(hi, 40.0f);
    cr_assert_eq(lo, sorted[0]);
    cr_assert_eq(pq_range_percentile_get(r, 0.0, &lo, &hi, &err), PQ_ERR_INVALID);
    cr_assert_eq(pq_range_percentile_get(r, 100.5, &lo, &hi, &err), PQ_ERR_INVALID);
    free(x);
    free(sorted);
    free(r);
}

Test(quant_int8, percentile_edge_streams) {
    pq_range_percentile *r = malloc(sizeof *r);
    float lo, hi;
    pq_error err;
    pq_range_percentile_init(r);
    cr_assert_eq(pq_range_percentile_get(r, 99.99, &lo, &hi, &err), PQ_OK);
    cr_assert(lo == 0.0f && hi == 0.0f);
    float z[4000] = {0};
    pq_range_percentile_add(r, z, 4000);
    cr_assert_eq(pq_range_percentile_get(r, 50.0, &lo, &hi, &err), PQ_OK);
    cr_assert(lo == 0.0f && hi == 0.0f);
    /* all negative, more values than the exact buffers: histogram path on the negative side */
    pq_range_percentile_init(r);
    float *v = malloc(sizeof(float) * 5000), *s = malloc(sizeof(float) * 5000);
    for (int i = 0; i < 5000; i++)
        v[i] = -1.0f - (float)((i * 7919) % 5000) * 0.001f;
    pq_range_percentile_add(r, v, 5000);
    memcpy(s, v, sizeof(float) * 5000);
    qsort(s, 5000, sizeof(float), ti_cmp);
    ti_check(r, s, 5000, 99.99);
    ti_check(r, s, 5000, 50.0);
    ti_check(r, s, 5000, 60.0);
    free(v);
    free(s);
    free(r);
}
