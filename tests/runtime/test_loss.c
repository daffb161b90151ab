/* Tests of runtime/loss.c against PyTorch references (scripts/gen_train_fixtures.py, float64
 * autograd): cross-entropy, MSE, KD both directions, cosine feature loss, the weighted total;
 * gradient accumulation, the eps guard, and INVALID errors that name the bad argument and write
 * nothing. Tolerances: loss values 1e-9 relative (all double), gradients
 * |a - b| <= 1e-6 |b| + 1e-7 max|b| (one f32 rounding per element). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "frontends/npy.h"
#include "backends/ref/loss.h"

static pq_error err;

static pq_tensor *fx(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/tests/data/train/%s.npy", PQ_SOURCE_DIR, name);
    pq_tensor *t = NULL;
    cr_assert_eq(pq_npy_read(path, &t, &err), PQ_OK, "%s", err.msg);
    return t;
}

static pq_tensor *fx2(const char *a, const char *b) {
    char n[256];
    snprintf(n, sizeof n, "%s_%s", a, b);
    return fx(n);
}

static double scalar(const pq_tensor *t) {
    cr_assert_eq(t->dtype, PQ_DTYPE_F64);
    return ((const double *)t->data)[0];
}

static pq_tensor *zeros_like(const pq_tensor *t) {
    pq_tensor *g = pq_tensor_create(PQ_DTYPE_F32, t->rank, t->dims, &err);
    cr_assert(g, "%s", err.msg);
    return g;
}

static void check_loss(double got, double want, const char *what) {
    cr_assert(fabs(got - want) <= 1e-9 * fabs(want) + 1e-12, "%s: loss %.17g, torch %.17g", what,
              got, want);
}

static void check_grad(const pq_tensor *got, const pq_tensor *want, const char *what) {
    cr_assert_eq(want->dtype, PQ_DTYPE_F64);
    int64_t n = pq_tensor_numel(want);
    cr_assert_eq(pq_tensor_numel(got), n, "%s: numel", what);
    const float *g = got->data;
    const double *w = want->data;
    double mx = 0;
    for (int64_t i = 0; i < n; i++)
        mx = fmax(mx, fabs(w[i]));
    for (int64_t i = 0; i < n; i++)
        cr_assert(fabs(g[i] - w[i]) <= 1e-6 * fabs(w[i]) + 1e-7 * mx,
                  "%s: grad[%lld] %.9g, torch %.9g", what, (long long)i, g[i], w[i]);
}

static void run_ce(const char *name) {
    pq_tensor *x = fx2(name, "logits"), *y = fx2(name, "labels"), *l = fx2(name, "loss"),
              *gw = fx2(name, "grad");
    pq_tensor *g = zeros_like(x);
    double v = -1;
    cr_assert_eq(pq_loss_cross_entropy(x, y, &v, g, 1.0, &err), PQ_OK, "%s", err.msg);
    check_loss(v, scalar(l), name);
    check_grad(g, gw, name);
    pq_tensor_destroy(x), pq_tensor_destroy(y), pq_tensor_destroy(l), pq_tensor_destroy(gw);
    pq_tensor_destroy(g);
}

Test(loss, cross_entropy_matches_torch) {
    run_ce("ce");
    run_ce("ce_vec"); /* rank-1 logits, rank-0 label */
    run_ce("ce_big"); /* logits near +-1000: stable log-softmax */
}

Test(loss, mse_matches_torch) {
    pq_tensor *p = fx("mse_pred"), *t = fx("mse_target"), *l = fx("mse_loss"), *gw = fx("mse_grad");
    pq_tensor *g = zeros_like(p);
    double v;
    cr_assert_eq(pq_loss_mse(p, t, &v, g, 1.0, &err), PQ_OK, "%s", err.msg);
    check_loss(v, scalar(l), "mse");
    check_grad(g, gw, "mse");
    pq_tensor_destroy(p), pq_tensor_destroy(t), pq_tensor_destroy(l), pq_tensor_destroy(gw);
    pq_tensor_destroy(g);
}

Test(loss, kd_matches_torch_both_directions) {
    const char *cases[] = {"kd_fwd_t1", "kd_fwd_t2", "kd_rev_t1", "kd_rev_t3"};
    for (int c = 0; c < 4; c++) {
        pq_tensor *t = fx2(cases[c], "teacher"), *s = fx2(cases[c], "student"),
                  *cfg = fx2(cases[c], "cfg"), *l = fx2(cases[c], "loss"),
                  *gw = fx2(cases[c], "grad");
        const double *cv = cfg->data;
        pq_tensor *g = zeros_like(s);
        double v;
        cr_assert_eq(
            pq_loss_kd(t, s, cv[0], cv[1] != 0 ? PQ_KD_REVERSE : PQ_KD_FORWARD, &v, g, 1.0, &err),
            PQ_OK, "%s", err.msg);
        check_loss(v, scalar(l), cases[c]);
        check_grad(g, gw, cases[c]);
        pq_tensor_destroy(t), pq_tensor_destroy(s), pq_tensor_destroy(cfg), pq_tensor_destroy(l);
        pq_tensor_destroy(gw), pq_tensor_destroy(g);
    }
}

Test(loss, kd_of_identical_logits_is_zero) {
    pq_tensor *s = fx("kd_fwd_t1_student");
    pq_tensor *g = zeros_like(s);
    double v = -1;
    cr_assert_eq(pq_loss_kd(s, s, 2.0, PQ_KD_FORWARD, &v, g, 1.0, &err), PQ_OK, "%s", err.msg);
    cr_assert(fabs(v) < 1e-14, "%g", v);
    const float *gd = g->data;
    for (int64_t i = 0; i < pq_tensor_numel(g); i++)
        cr_assert(fabs(gd[i]) < 1e-9f);
    pq_tensor_destroy(s), pq_tensor_destroy(g);
}

Test(loss, feature_matches_torch) {
    pq_tensor *t0 = fx("feat_t0"), *s0 = fx("feat_s0"), *t1 = fx("feat_t1"), *s1 = fx("feat_s1");
    pq_tensor *l = fx("feat_loss"), *g0w = fx("feat_g0"), *g1w = fx("feat_g1");
    pq_tensor *g0 = zeros_like(s0), *g1 = zeros_like(s1);
    pq_feature_pair pairs[2] = {{"block0.out", t0, s0, g0}, {"block1.out", t1, s1, g1}};
    double v;
    cr_assert_eq(pq_loss_feature(pairs, 2, PQ_LOSS_COS_EPS, &v, 1.0, &err), PQ_OK, "%s", err.msg);
    check_loss(v, scalar(l), "feature");
    check_grad(g0, g0w, "feature pair 0");
    check_grad(g1, g1w, "feature pair 1");
    pq_tensor *ts[] = {t0, s0, t1, s1, l, g0w, g1w, g0, g1};
    for (int i = 0; i < 9; i++)
        pq_tensor_destroy(ts[i]);
}

Test(loss, cosine_zero_vector_is_guarded) {
    int64_t dims[2] = {2, 3};
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_F32, 2, dims, &err), *s = zeros_like(t),
              *g = zeros_like(t);
    float *td = t->data, *sd = s->data;
    for (int i = 0; i < 6; i++)
        td[i] = (float)(i + 1);
    sd[3] = 8, sd[4] = 10, sd[5] = 12; /* row 0 zero (cos 0), row 1 = 2 * teacher (cos 1) */
    double v;
    cr_assert_eq(pq_loss_cosine(t, s, PQ_LOSS_COS_EPS, &v, g, 1.0, &err), PQ_OK, "%s", err.msg);
    cr_assert(fabs(v - 0.5) < 1e-12, "%g", v);
    const float *gd = g->data;
    for (int i = 0; i < 6; i++)
        cr_assert(isfinite(gd[i]), "grad[%d] %g", i, gd[i]);
    for (int i = 3; i < 6; i++)
        cr_assert(fabs(gd[i]) < 1e-7, "parallel row grad %g", gd[i]);
    pq_tensor_destroy(t), pq_tensor_destroy(s), pq_tensor_destroy(g);
}

Test(loss, total_defaults_match_torch) {
    pq_tensor *z = fx("total_logits"), *zt = fx("total_teacher"), *y = fx("total_labels");
    pq_tensor *t0 = fx("total_t0"), *s0 = fx("total_s0"), *t1 = fx("total_t1"),
              *s1 = fx("total_s1");
    pq_tensor *vals = fx("total_values"), *gw = fx("total_grad"), *g0w = fx("total_g0"),
              *g1w = fx("total_g1");
    pq_tensor *g = zeros_like(z), *g0 = zeros_like(s0), *g1 = zeros_like(s1);
    /* Poison: total overwrites its gradients. */
    for (int64_t i = 0; i < pq_tensor_numel(g); i++)
        ((float *)g->data)[i] = 123.0f;
    pq_feature_pair pairs[2] = {{"a", t0, s0, g0}, {"b", t1, s1, g1}};
    pq_loss_config cfg = pq_loss_config_default();
    cr_assert_eq(cfg.w_task, 1.0);
    cr_assert_eq(cfg.w_kd, 0.5);
    cr_assert_eq(cfg.w_feat, 0.2);
    cr_assert_eq(cfg.temperature, 1.0);
    pq_loss_inputs in = {z, y, zt, pairs, 2};
    pq_loss_values out;
    cr_assert_eq(pq_loss_total(&cfg, &in, &out, g, &err), PQ_OK, "%s", err.msg);
    const double *w = vals->data;
    check_loss(out.task, w[0], "total: task");
    check_loss(out.kd, w[1], "total: kd");
    check_loss(out.feature, w[2], "total: feature");
    check_loss(out.total, w[3], "total");
    check_grad(g, gw, "total: logits");
    check_grad(g0, g0w, "total: feature a");
    check_grad(g1, g1w, "total: feature b");
    pq_tensor *ts[] = {z, zt, y, t0, s0, t1, s1, vals, gw, g0w, g1w, g, g0, g1};
    for (int i = 0; i < 14; i++)
        pq_tensor_destroy(ts[i]);
}

Test(loss, total_mse_and_label_free) {
    pq_tensor *p = fx("mse_pred"), *t = fx("mse_target"), *l = fx("mse_loss"), *gw = fx("mse_grad");
    pq_tensor *g = zeros_like(p);
    pq_loss_config cfg = pq_loss_config_default();
    cfg.task = PQ_TASK_MSE;
    cfg.w_task = 2.0;
    pq_loss_inputs in = {.logits = p, .labels = t};
    pq_loss_values out;
    cr_assert_eq(pq_loss_total(&cfg, &in, &out, g, &err), PQ_OK, "%s", err.msg);
    check_loss(out.total, 2.0 * scalar(l), "total mse");
    cr_assert_eq(out.kd, 0.0);
    cr_assert_eq(out.feature, 0.0);
    const float *gd = g->data;
    const double *wd = gw->data;
    for (int64_t i = 0; i < pq_tensor_numel(g); i++)
        cr_assert(fabs(gd[i] - 2.0 * wd[i]) <= 2e-6 * fabs(wd[i]) + 1e-9);
    /* Label-free distillation: task NONE, KD only. */
    pq_tensor *kt = fx("kd_fwd_t1_teacher"), *ks = fx("kd_fwd_t1_student"),
              *kl = fx("kd_fwd_t1_loss");
    pq_tensor *kg = zeros_like(ks);
    cfg = pq_loss_config_default();
    cfg.task = PQ_TASK_NONE;
    pq_loss_inputs kin = {.logits = ks, .teacher_logits = kt};
    cr_assert_eq(pq_loss_total(&cfg, &kin, &out, kg, &err), PQ_OK, "%s", err.msg);
    check_loss(out.total, 0.5 * scalar(kl), "label-free total");
    pq_tensor *ts[] = {p, t, l, gw, g, kt, ks, kl, kg};
    for (int i = 0; i < 9; i++)
        pq_tensor_destroy(ts[i]);
}

Test(loss, gradients_accumulate_with_scale) {
    pq_tensor *x = fx("ce_logits"), *y = fx("ce_labels"), *gw = fx("ce_grad");
    pq_tensor *g = zeros_like(x);
    cr_assert_eq(pq_loss_cross_entropy(x, y, NULL, g, 0.25, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_loss_cross_entropy(x, y, NULL, g, 0.75, &err), PQ_OK, "%s", err.msg);
    check_grad(g, gw, "0.25 + 0.75");
    double v;
    cr_assert_eq(pq_loss_cross_entropy(x, y, &v, NULL, 1.0, &err), PQ_OK, "%s", err.msg);
    pq_tensor_destroy(x), pq_tensor_destroy(y), pq_tensor_destroy(gw), pq_tensor_destroy(g);
}

/* Calls that must fail with INVALID, mention `needle`, and leave grad and *loss untouched. */
static void expect_invalid(enum pq_status st, const char *needle, const pq_tensor *g, double v) {
    cr_assert_eq(st, PQ_ERR_INVALID, "status %d (%s)", (int)st, err.msg);
    cr_assert(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg, needle);
    if (g) {
        const float *gd = g->data;
        for (int64_t i = 0; i < pq_tensor_numel(g); i++)
            cr_assert_eq(gd[i], 7.0f, "grad written");
    }
    cr_assert_eq(v, -5.0, "loss written");
}

static void poison(pq_tensor *g) {
    for (int64_t i = 0; i < pq_tensor_numel(g); i++)
        ((float *)g->data)[i] = 7.0f;
}

Test(loss, errors_name_the_bad_argument) {
    pq_tensor *x = fx("ce_logits"), *y = fx("ce_labels");
    pq_tensor *g = zeros_like(x);
    poison(g);
    double v = -5.0;
    int64_t *lab = y->data;
    lab[7] = 5; /* C = 5 */
    expect_invalid(pq_loss_cross_entropy(x, y, &v, g, 1.0, &err), "labels[7] = 5 is out of range",
                   g, v);
    lab[7] = -1;
    expect_invalid(pq_loss_cross_entropy(x, y, &v, g, 1.0, &err), "labels[7] = -1", g, v);
    lab[7] = 0;
    /* labels [4,3] vs logits [3,4,5] (transposed shape) */
    y->dims[0] = 3, y->dims[1] = 4;
    expect_invalid(pq_loss_cross_entropy(x, y, &v, g, 1.0, &err), "labels has shape [3,4]", g, v);
    y->dims[0] = 4, y->dims[1] = 3;
    /* f32 labels */
    expect_invalid(pq_loss_cross_entropy(x, x, &v, g, 1.0, &err), "labels has dtype f32", g, v);
    /* gradient of the wrong shape */
    pq_tensor *t = fx("mse_pred");
    expect_invalid(pq_loss_cross_entropy(x, y, &v, t, 1.0, &err), "gradient of logits", NULL, v);
    /* mse shapes */
    expect_invalid(pq_loss_mse(t, x, &v, NULL, 1.0, &err), "target has shape [4,3,5]", NULL, v);
    /* kd: shapes, temperature */
    pq_tensor *ks = fx("kd_fwd_t1_student");
    pq_tensor *kg = zeros_like(ks);
    poison(kg);
    expect_invalid(pq_loss_kd(x, ks, 1.0, PQ_KD_FORWARD, &v, kg, 1.0, &err),
                   "student logits has shape [2,3,6]", kg, v);
    expect_invalid(pq_loss_kd(ks, ks, 0.0, PQ_KD_FORWARD, &v, kg, 1.0, &err), "temperature 0", kg,
                   v);
    expect_invalid(pq_loss_kd(ks, ks, NAN, PQ_KD_FORWARD, &v, kg, 1.0, &err), "temperature", kg, v);
    /* feature: the second pair is bad; the first pair's gradient stays untouched */
    pq_tensor *t0 = fx("feat_t0"), *s0 = fx("feat_s0"), *t1 = fx("feat_t1");
    pq_tensor *g0 = zeros_like(s0);
    poison(g0);
    pq_feature_pair pairs[2] = {{"enc.3", t0, s0, g0}, {"enc.7", t1, s0, NULL}};
    expect_invalid(pq_loss_feature(pairs, 2, PQ_LOSS_COS_EPS, &v, 1.0, &err), "feature 'enc.7'", g0,
                   v);
    expect_invalid(pq_loss_feature(pairs, 0, PQ_LOSS_COS_EPS, &v, 1.0, &err), "no feature pairs",
                   NULL, v);
    /* zero positions */
    int64_t d0[2] = {0, 5};
    pq_tensor *empty = pq_tensor_create(PQ_DTYPE_F32, 2, d0, &err);
    expect_invalid(pq_loss_kd(empty, empty, 1.0, PQ_KD_FORWARD, &v, NULL, 1.0, &err),
                   "at least one position", NULL, v);
    /* total: missing labels, and a bad KD term leaves the (poisoned) logits gradient alone */
    pq_loss_config cfg = pq_loss_config_default();
    pq_loss_inputs in = {.logits = x};
    pq_loss_values out;
    expect_invalid(pq_loss_total(&cfg, &in, &out, g, &err), "needs labels", g, v);
    in.labels = y;
    in.teacher_logits = ks;
    expect_invalid(pq_loss_total(&cfg, &in, &out, g, &err), "kd", g, v);
    pq_tensor *ts[] = {x, y, g, t, ks, kg, t0, s0, t1, g0, empty};
    for (int i = 0; i < 11; i++)
        pq_tensor_destroy(ts[i]);
}
