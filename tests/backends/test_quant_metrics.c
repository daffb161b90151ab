/* Tests of the quality metrics (SPEC section 5): MSE/SD/cosine edge cases (infinities, zero
 * norms), outlier selection (count, ties, per-group tolerance), aggregation over tensors, bits per
 * weight, packed-tensor path and allocation failure. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "backends/quant/quant.h"
#include "ir/alloc.h"
#include "ir/dtype.h"

static pq_metrics tm_one(const float *w, const float *wh, int64_t rows, int64_t cols, int64_t group,
                         const float *steps) {
    pq_metrics_acc acc;
    pq_metrics m;
    pq_error err;
    pq_metrics_acc_init(&acc);
    cr_assert_eq(pq_metrics_acc_add(&acc, w, wh, rows, cols, group, steps, &err), PQ_OK, "%s",
                 err.msg);
    pq_metrics_acc_finish(&acc, &m);
    return m;
}

Test(quant_metrics, exact_reconstruction) {
    float w[4] = {1, -2, 3, 0.5f}, s[1] = {1};
    pq_metrics m = tm_one(w, w, 1, 4, 8, s);
    cr_assert_eq(m.mse, 0.0);
    cr_assert(isinf(m.sd_db) && m.sd_db < 0);
    cr_assert_float_eq(m.cosine, 1.0, 1e-15);
    cr_assert_eq(m.outliers, 1);
    cr_assert_eq(m.outliers_kept, 1);
    cr_assert_eq(m.outlier_retention, 1.0);
}

Test(quant_metrics, zero_weights) {
    float z[3] = {0, 0, 0}, wh[3] = {0, 1, 0}, s[1] = {0.5f};
    pq_metrics m = tm_one(z, wh, 1, 3, 8, s);
    cr_assert(isinf(m.sd_db) && m.sd_db > 0, "sum w^2 = 0, e != 0 -> +inf");
    cr_assert_eq(m.cosine, 0.0, "one zero norm -> 0");
    cr_assert_float_eq(m.mse, 1.0 / 3.0, 1e-15);
    m = tm_one(z, z, 1, 3, 8, s);
    cr_assert(isinf(m.sd_db) && m.sd_db < 0, "e = 0 -> -inf even with w = 0");
    cr_assert_eq(m.cosine, 1.0, "both norms zero -> 1");
    float w[3] = {1, 2, 3};
    m = tm_one(w, z, 1, 3, 8, s);
    cr_assert_eq(m.cosine, 0.0);
    cr_assert_float_eq(m.sd_db, 0.0, 1e-12);
}

Test(quant_metrics, known_values) {
    float w[2] = {1, 2}, wh[2] = {1, 1}, s[1] = {1};
    pq_metrics m = tm_one(w, wh, 1, 2, 8, s);
    cr_assert_float_eq(m.mse, 0.5, 1e-15);
    cr_assert_float_eq(m.sd_db, 10.0 * log10(0.2), 1e-12);
    cr_assert_float_eq(m.cosine, 3.0 / (sqrt(5.0) * sqrt(2.0)), 1e-15);
    /* outlier = index 1 (|w| = 2), error 1 <= step 1 -> kept */
    cr_assert_eq(m.outliers, 1);
    cr_assert_eq(m.outliers_kept, 1);
    s[0] = 0.999f;
    m = tm_one(w, wh, 1, 2, 8, s);
    cr_assert_eq(m.outliers_kept, 0);
}

Test(quant_metrics, outlier_count) {
    static const int64_t ns[] = {1, 99, 100, 101, 250, 1000, 1001};
    static const int64_t want[] = {1, 1, 1, 2, 3, 10, 11};
    for (size_t t = 0; t < sizeof ns / sizeof *ns; t++) {
        float *w = calloc((size_t)ns[t], sizeof(float));
        float s[1] = {1};
        for (int64_t i = 0; i < ns[t]; i++)
            w[i] = (float)(i % 17);
        pq_metrics m = tm_one(w, w, 1, ns[t], ns[t] + 8, s);
        cr_assert_eq(m.outliers, want[t], "n=%lld", (long long)ns[t]);
        cr_assert_eq(m.outliers_kept, want[t]);
        free(w);
    }
}

Test(quant_metrics, outlier_ties_lower_index_first) {
    /* |w| ties at 5: index 0 is chosen (k = 1). Its error is large, index 1 and 2 are exact. */
    float w[5] = {5, -5, 5, 1, 2}, wh[5] = {0, -5, 5, 1, 2}, s[1] = {1};
    pq_metrics m = tm_one(w, wh, 1, 5, 8, s);
    cr_assert_eq(m.outliers, 1);
    cr_assert_eq(m.outliers_kept, 0, "tie must pick index 0");
    /* Swap: index 0 exact, index 1 wrong -> kept. */
    float wh2[5] = {5, 0, 0, 1, 2};
    m = tm_one(w, wh2, 1, 5, 8, s);
    cr_assert_eq(m.outliers_kept, 1);
    /* 101 weights -> k = 2: 3 tied maxima at 0, 50, 100 -> 0 and 50 chosen */
    float big[101], bh[101];
    for (int i = 0; i < 101; i++)
        big[i] = bh[i] = 0.1f;
    big[0] = big[50] = big[100] = -7.0f;
    bh[0] = bh[50] = -7.0f;
    bh[100] = 0.0f; /* wrong, but must not be an outlier */
    m = tm_one(big, bh, 1, 101, 128, s);
    cr_assert_eq(m.outliers, 2);
    cr_assert_eq(m.outliers_kept, 2);
}

Test(quant_metrics, tolerance_uses_own_group_step) {
    /* 2 rows x 16 cols, group 8: steps per (row, group). Outlier (k = 1) at row 1 col 9. */
    float w[32], wh[32];
    for (int i = 0; i < 32; i++)
        w[i] = wh[i] = 0.01f * (float)(i % 5);
    w[16 + 9] = 10.0f;
    wh[16 + 9] = 9.5f; /* error 0.5 */
    float steps[4] = {1.0f, 1.0f, 1.0f, 0.25f};
    pq_metrics m = tm_one(w, wh, 2, 16, 8, steps);
    cr_assert_eq(m.outliers_kept, 0, "group (1,1) step 0.25 < 0.5");
    steps[3] = -0.5f; /* magnitude used; error exactly equal is kept */
    m = tm_one(w, wh, 2, 16, 8, steps);
    cr_assert_eq(m.outliers_kept, 1);
}

Test(quant_metrics, aggregate_is_concatenation) {
    float a[3] = {1, 2, 3}, ah[3] = {1, 2, 2}, b[2] = {-4, 1}, bh[2] = {-4, 0};
    float all[5] = {1, 2, 3, -4, 1}, allh[5] = {1, 2, 2, -4, 0};
    float s[1] = {0.5f};
    pq_metrics_acc acc;
    pq_metrics m, whole;
    pq_error err;
    pq_metrics_acc_init(&acc);
    cr_assert_eq(pq_metrics_acc_add(&acc, a, ah, 1, 3, 8, s, &err), PQ_OK);
    cr_assert_eq(pq_metrics_acc_add(&acc, b, bh, 1, 2, 8, s, &err), PQ_OK);
    pq_metrics_acc_finish(&acc, &m);
    whole = tm_one(all, allh, 1, 5, 8, s);
    cr_assert_eq(m.n, 5);
    cr_assert_float_eq(m.mse, whole.mse, 1e-15);
    cr_assert_float_eq(m.sd_db, whole.sd_db, 1e-12);
    cr_assert_float_eq(m.cosine, whole.cosine, 1e-15);
    /* union of own top 1%: index 2 of a (error 1 > 0.5: lost) and index 0 of b (kept) */
    cr_assert_eq(m.outliers, 2);
    cr_assert_eq(m.outliers_kept, 1);
    cr_assert_eq(m.outlier_retention, 0.5);
    cr_assert_eq(whole.outliers, 1); /* the concatenation alone would pick only -4 */
}

Test(quant_metrics, bits_per_weight) {
    cr_assert_eq(pq_bpw_nominal(PQ_QFORMAT_PIQ3, 256), 3.0625);
    cr_assert_eq(pq_bpw_nominal(PQ_QFORMAT_PIQ2, 256), 2.0625);
    cr_assert_eq(pq_bpw_nominal(PQ_QFORMAT_PIQ3, 32), 3.5);
    cr_assert_eq(pq_bpw_nominal(PQ_QFORMAT_Q2, 32), 2.5);
    cr_assert_eq(pq_bpw_nominal(PQ_QFORMAT_Q2, 0), 0.0);
    cr_assert_eq(pq_bpw_actual(100, 0), 0.0);
    /* 1 row of 300 PiQ3 weights at G=256: 2+96 + 2+6*3... = 98 + 2 + 18 = 118 bytes */
    size_t bytes = pq_packed_bytes(PQ_QFORMAT_PIQ3, 1, 300, 256);
    cr_assert_eq(bytes, 118);
    cr_assert_float_eq(pq_bpw_actual(bytes, 300), 8.0 * 118 / 300, 1e-15);
}

Test(quant_metrics, packed_path) {
    enum { R = 3, C = 40, G = 16 };
    float w[R * C], wh[R * C], steps[R * 3];
    for (int i = 0; i < R * C; i++)
        w[i] = sinf((float)i * 0.37f) * (1.0f + (float)(i % 7));
    size_t bytes = pq_packed_bytes(PQ_QFORMAT_PIQ3, R, C, G);
    uint8_t *pk = malloc(bytes);
    pq_error err;
    cr_assert_eq(pq_quantize_matrix("t", w, R, C, PQ_QFORMAT_PIQ3, G, PQ_CALIB_MSE, NULL, pk, &err),
                 PQ_OK);
    cr_assert_eq(pq_dequantize_matrix(pk, R, C, PQ_QFORMAT_PIQ3, G, wh, &err), PQ_OK);
    cr_assert_eq(pq_packed_group_steps(pk, R, C, PQ_QFORMAT_PIQ3, G, steps, &err), PQ_OK);
    for (int i = 0; i < R * 3; i++)
        cr_assert(steps[i] > 0.0f);
    pq_metrics a = tm_one(w, wh, R, C, G, steps), b;
    pq_metrics_acc acc;
    pq_metrics_acc_init(&acc);
    cr_assert_eq(pq_metrics_acc_add_packed(&acc, w, pk, R, C, PQ_QFORMAT_PIQ3, G, &err), PQ_OK);
    pq_metrics_acc_finish(&acc, &b);
    cr_assert_eq(a.mse, b.mse);
    cr_assert_eq(a.sd_db, b.sd_db);
    cr_assert_eq(a.cosine, b.cosine);
    cr_assert_eq(a.outliers_kept, b.outliers_kept);
    cr_assert_eq(b.outliers, 2);
    cr_assert(b.cosine > 0.9 && b.cosine <= 1.0 + 1e-12);
    cr_assert_float_eq(b.bpw_actual, 8.0 * (double)bytes / (R * C), 1e-15);
    free(pk);
}

Test(quant_metrics, invalid_and_nomem) {
    float w[4] = {1, 2, 3, 4}, s[1] = {1};
    pq_metrics_acc acc;
    pq_error err;
    pq_metrics_acc_init(&acc);
    cr_assert_eq(pq_metrics_acc_add(&acc, w, w, 0, 4, 8, s, &err), PQ_ERR_INVALID);
    cr_assert_eq(pq_metrics_acc_add(&acc, w, NULL, 1, 4, 8, s, &err), PQ_ERR_INVALID);
    pq_alloc_fail_after(0);
    enum pq_status st = pq_metrics_acc_add(&acc, w, w, 1, 4, 8, s, &err);
    pq_alloc_fail_after(-1);
    cr_assert_eq(st, PQ_ERR_NOMEM);
    cr_assert_eq(acc.n, 0, "acc unchanged on error");
    cr_assert_eq(acc.outliers, 0);
}
