/* Training losses and their gradients w.r.t. the student (SPEC section 9): every function
 * validates all of its arguments first, then computes in double and accumulates gradients as
 * grad += scale * dL/dx. No allocation. */
#include "loss.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- validation ---- */

static void fmt_shape(const pq_tensor *t, char *buf, int size) {
    pq_shape_format(t->rank, t->dims, buf, size);
}

/* t must be a dtype tensor of rank >= min_rank with consistent data. */
static enum pq_status check_tensor(const char *loss, const char *arg, const pq_tensor *t,
                                   enum pq_dtype dt, int min_rank, pq_error *err) {
    if (!t) return pq_error_set(err, PQ_ERR_INVALID, "loss: %s: %s is missing", loss, arg);
    if (t->dtype != dt)
        return pq_error_set(err, PQ_ERR_INVALID, "loss: %s: %s has dtype %s, expected %s", loss,
                            arg, pq_dtype_name(t->dtype), pq_dtype_name(dt));
    char sh[128];
    if (t->rank < min_rank || t->rank > PQ_MAX_RANK) {
        if (t->rank >= 0 && t->rank <= PQ_MAX_RANK)
            fmt_shape(t, sh, sizeof sh);
        else
            snprintf(sh, sizeof sh, "(rank %d)", t->rank);
        return pq_error_set(err, PQ_ERR_INVALID, "loss: %s: %s has shape %s, expected rank >= %d",
                            loss, arg, sh, min_rank);
    }
    int64_t n = 0;
    pq_error e2;
    if (pq_shape_numel(t->rank, t->dims, &n, &e2) != PQ_OK) {
        fmt_shape(t, sh, sizeof sh);
        return pq_error_set(err, PQ_ERR_INVALID, "loss: %s: %s has bad shape %s", loss, arg, sh);
    }
    if ((size_t)n * pq_dtype_size(dt) > t->nbytes || (n > 0 && !t->data)) {
        fmt_shape(t, sh, sizeof sh);
        return pq_error_set(err, PQ_ERR_INVALID, "loss: %s: %s %s holds %zu bytes, too few", loss,
                            arg, sh, t->nbytes);
    }
    return PQ_OK;
}

static bool same_shape(const pq_tensor *a, const pq_tensor *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return false;
    return true;
}

static enum pq_status check_same(const char *loss, const char *an, const pq_tensor *a,
                                 const char *bn, const pq_tensor *b, pq_error *err) {
    if (same_shape(a, b)) return PQ_OK;
    char sa[128], sb[128];
    fmt_shape(a, sa, sizeof sa);
    fmt_shape(b, sb, sizeof sb);
    return pq_error_set(err, PQ_ERR_INVALID, "loss: %s: %s has shape %s, %s has shape %s", loss, bn,
                        sb, an, sa);
}

/* grad (when given) must be f32 with x's shape. */
static enum pq_status check_grad(const char *loss, const char *xn, const pq_tensor *x,
                                 const pq_tensor *grad, pq_error *err) {
    if (!grad) return PQ_OK;
    char gname[96];
    snprintf(gname, sizeof gname, "gradient of %s", xn);
    PQ_TRY(check_tensor(loss, gname, grad, PQ_DTYPE_F32, 0, err));
    PQ_TRY(check_same(loss, xn, x, gname, grad, err));
    if (grad->data == x->data && grad->nbytes)
        return pq_error_set(err, PQ_ERR_INVALID, "loss: %s: %s aliases %s", loss, gname, xn);
    return PQ_OK;
}

/* Rows = positions and C = last dim; both >= 1. */
static enum pq_status rows_of(const char *loss, const char *arg, const pq_tensor *t, int64_t *rows,
                              int64_t *c, pq_error *err) {
    *c = t->dims[t->rank - 1];
    *rows = *c > 0 ? pq_tensor_numel(t) / *c : 0;
    if (*c < 1 || *rows < 1) {
        char sh[128];
        fmt_shape(t, sh, sizeof sh);
        return pq_error_set(err, PQ_ERR_INVALID,
                            "loss: %s: %s has shape %s: needs at least one position and one "
                            "element on the last axis",
                            loss, arg, sh);
    }
    return PQ_OK;
}

/* Row log-sum-exp of x[0..c) * inv_t, in double, max subtracted. */
static double row_lse(const float *x, int64_t c, double inv_t) {
    double m = -INFINITY;
    for (int64_t j = 0; j < c; j++) {
        double v = (double)x[j] * inv_t;
        if (v > m) m = v;
    }
    if (!isfinite(m)) return m; /* all -inf, or +inf/NaN present: propagate */
    double s = 0.0;
    for (int64_t j = 0; j < c; j++)
        s += exp((double)x[j] * inv_t - m);
    return m + log(s);
}

/* ---- cross-entropy ---- */

static enum pq_status ce_check(const pq_tensor *logits, const pq_tensor *labels,
                               const pq_tensor *grad, int64_t *rows, int64_t *c, pq_error *err) {
    static const char *L = "cross_entropy";
    PQ_TRY(check_tensor(L, "logits", logits, PQ_DTYPE_F32, 1, err));
    PQ_TRY(check_tensor(L, "labels", labels, PQ_DTYPE_I64, 0, err));
    PQ_TRY(rows_of(L, "logits", logits, rows, c, err));
    bool ok = labels->rank == logits->rank - 1;
    for (int i = 0; ok && i < labels->rank; i++)
        ok = labels->dims[i] == logits->dims[i];
    if (!ok) {
        char sa[128], sb[128];
        fmt_shape(logits, sa, sizeof sa);
        fmt_shape(labels, sb, sizeof sb);
        return pq_error_set(err, PQ_ERR_INVALID,
                            "loss: %s: labels has shape %s, expected logits shape %s without its "
                            "last axis",
                            L, sb, sa);
    }
    const int64_t *lab = labels->data;
    for (int64_t r = 0; r < *rows; r++)
        if (lab[r] < 0 || lab[r] >= *c)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "loss: %s: labels[%lld] = %lld is out of range [0, %lld)", L,
                                (long long)r, (long long)lab[r], (long long)*c);
    return check_grad(L, "logits", logits, grad, err);
}

static double ce_run(const pq_tensor *logits, const pq_tensor *labels, int64_t rows, int64_t c,
                     pq_tensor *grad, double scale) {
    const float *x = logits->data;
    const int64_t *lab = labels->data;
    float *g = grad ? grad->data : NULL;
    double inv_n = 1.0 / (double)rows, sum = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * c;
        double lse = row_lse(xr, c, 1.0);
        sum += lse - (double)xr[lab[r]];
        if (!g) continue;
        float *gr = g + r * c;
        for (int64_t j = 0; j < c; j++) {
            double p = exp((double)xr[j] - lse) - (j == lab[r] ? 1.0 : 0.0);
            gr[j] = (float)((double)gr[j] + scale * p * inv_n);
        }
    }
    return sum * inv_n;
}

enum pq_status pq_loss_cross_entropy(const pq_tensor *logits, const pq_tensor *labels, double *loss,
                                     pq_tensor *grad, double scale, pq_error *err) {
    int64_t rows, c;
    PQ_TRY(ce_check(logits, labels, grad, &rows, &c, err));
    double v = ce_run(logits, labels, rows, c, grad, scale);
    if (loss) *loss = v;
    return PQ_OK;
}

/* ---- MSE ---- */

static enum pq_status mse_check(const pq_tensor *pred, const pq_tensor *target,
                                const pq_tensor *grad, pq_error *err) {
    static const char *L = "mse";
    PQ_TRY(check_tensor(L, "pred", pred, PQ_DTYPE_F32, 0, err));
    PQ_TRY(check_tensor(L, "target", target, PQ_DTYPE_F32, 0, err));
    PQ_TRY(check_same(L, "pred", pred, "target", target, err));
    if (pq_tensor_numel(pred) < 1) {
        char sh[128];
        fmt_shape(pred, sh, sizeof sh);
        return pq_error_set(err, PQ_ERR_INVALID, "loss: %s: pred has shape %s with no elements", L,
                            sh);
    }
    return check_grad(L, "pred", pred, grad, err);
}

static double mse_run(const pq_tensor *pred, const pq_tensor *target, pq_tensor *grad,
                      double scale) {
    const float *p = pred->data, *t = target->data;
    float *g = grad ? grad->data : NULL;
    int64_t n = pq_tensor_numel(pred);
    double inv_n = 1.0 / (double)n, sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)p[i] - (double)t[i];
        sum += d * d;
        if (g) g[i] = (float)((double)g[i] + scale * 2.0 * d * inv_n);
    }
    return sum * inv_n;
}

enum pq_status pq_loss_mse(const pq_tensor *pred, const pq_tensor *target, double *loss,
                           pq_tensor *grad, double scale, pq_error *err) {
    PQ_TRY(mse_check(pred, target, grad, err));
    double v = mse_run(pred, target, grad, scale);
    if (loss) *loss = v;
    return PQ_OK;
}

/* ---- KD ---- */

static enum pq_status kd_check(const pq_tensor *teacher, const pq_tensor *student, double t,
                               enum pq_kd_direction dir, const pq_tensor *grad, int64_t *rows,
                               int64_t *c, pq_error *err) {
    static const char *L = "kd";
    PQ_TRY(check_tensor(L, "teacher logits", teacher, PQ_DTYPE_F32, 1, err));
    PQ_TRY(check_tensor(L, "student logits", student, PQ_DTYPE_F32, 1, err));
    PQ_TRY(check_same(L, "teacher logits", teacher, "student logits", student, err));
    PQ_TRY(rows_of(L, "student logits", student, rows, c, err));
    if (!(isfinite(t) && t > 0.0))
        return pq_error_set(err, PQ_ERR_INVALID, "loss: %s: temperature %g must be finite and > 0",
                            L, t);
    if (dir != PQ_KD_FORWARD && dir != PQ_KD_REVERSE)
        return pq_error_set(err, PQ_ERR_INVALID, "loss: %s: unknown direction %d", L, (int)dir);
    return check_grad(L, "student logits", student, grad, err);
}

static double kd_run(const pq_tensor *teacher, const pq_tensor *student, double t,
                     enum pq_kd_direction dir, int64_t rows, int64_t c, pq_tensor *grad,
                     double scale) {
    const float *zt = teacher->data, *zs = student->data;
    float *g = grad ? grad->data : NULL;
    double inv_t = 1.0 / t, inv_n = 1.0 / (double)rows, sum = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        const float *tr = zt + r * c, *sr = zs + r * c;
        double lt = row_lse(tr, c, inv_t), ls = row_lse(sr, c, inv_t), kl = 0.0;
        for (int64_t j = 0; j < c; j++) {
            double lpt = (double)tr[j] * inv_t - lt, lps = (double)sr[j] * inv_t - ls;
            kl += dir == PQ_KD_FORWARD ? exp(lpt) * (lpt - lps) : exp(lps) * (lps - lpt);
        }
        sum += kl;
        if (!g) continue;
        float *gr = g + r * c;
        double k = scale * t * inv_n;
        for (int64_t j = 0; j < c; j++) {
            double lpt = (double)tr[j] * inv_t - lt, lps = (double)sr[j] * inv_t - ls;
            double ps = exp(lps);
            double d = dir == PQ_KD_FORWARD ? ps - exp(lpt) : ps * (lps - lpt - kl);
            gr[j] = (float)((double)gr[j] + k * d);
        }
    }
    return t * t * sum * inv_n;
}

enum pq_status pq_loss_kd(const pq_tensor *teacher, const pq_tensor *student, double temperature,
                          enum pq_kd_direction direction, double *loss, pq_tensor *grad,
                          double scale, pq_error *err) {
    int64_t rows, c;
    PQ_TRY(kd_check(teacher, student, temperature, direction, grad, &rows, &c, err));
    double v = kd_run(teacher, student, temperature, direction, rows, c, grad, scale);
    if (loss) *loss = v;
    return PQ_OK;
}

/* ---- cosine / feature ---- */

static enum pq_status cos_check(const char *name, const pq_tensor *teacher,
                                const pq_tensor *student, double eps, const pq_tensor *grad,
                                int64_t *rows, int64_t *d, pq_error *err) {
    char L[160];
    if (name)
        snprintf(L, sizeof L, "feature '%s'", name);
    else
        snprintf(L, sizeof L, "cosine");
    PQ_TRY(check_tensor(L, "teacher", teacher, PQ_DTYPE_F32, 1, err));
    PQ_TRY(check_tensor(L, "student", student, PQ_DTYPE_F32, 1, err));
    PQ_TRY(check_same(L, "teacher", teacher, "student", student, err));
    PQ_TRY(rows_of(L, "student", student, rows, d, err));
    if (!(eps >= 0.0 && isfinite(eps)))
        return pq_error_set(err, PQ_ERR_INVALID, "loss: %s: eps %g must be finite and >= 0", L,
                            eps);
    return check_grad(L, "student", student, grad, err);
}

static double cos_run(const pq_tensor *teacher, const pq_tensor *student, double eps, int64_t rows,
                      int64_t d, pq_tensor *grad, double scale) {
    const float *ht = teacher->data, *hs = student->data;
    float *g = grad ? grad->data : NULL;
    double inv_n = 1.0 / (double)rows, sum = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        const float *tr = ht + r * d, *sr = hs + r * d;
        double tt = 0.0, ss = 0.0, ts = 0.0;
        for (int64_t j = 0; j < d; j++) {
            double a = tr[j], b = sr[j];
            tt += a * a;
            ss += b * b;
            ts += a * b;
        }
        double nt_raw = sqrt(tt), ns_raw = sqrt(ss);
        double nt = nt_raw > eps ? nt_raw : eps, ns = ns_raw > eps ? ns_raw : eps;
        double cosv = nt > 0.0 && ns > 0.0 ? ts / (nt * ns) : 0.0;
        sum += 1.0 - cosv;
        if (!g || nt == 0.0 || ns == 0.0) continue;
        float *gr = g + r * d;
        double k = -scale * inv_n;
        bool clamped = !(ns_raw > eps);
        for (int64_t j = 0; j < d; j++) {
            double dc = (double)tr[j] / (nt * ns);
            if (!clamped) dc -= cosv * (double)sr[j] / ss;
            gr[j] = (float)((double)gr[j] + k * dc);
        }
    }
    return sum * inv_n;
}

enum pq_status pq_loss_cosine(const pq_tensor *teacher, const pq_tensor *student, double eps,
                              double *loss, pq_tensor *grad, double scale, pq_error *err) {
    int64_t rows, d;
    PQ_TRY(cos_check(NULL, teacher, student, eps, grad, &rows, &d, err));
    double v = cos_run(teacher, student, eps, rows, d, grad, scale);
    if (loss) *loss = v;
    return PQ_OK;
}

static enum pq_status feature_check(const pq_feature_pair *pairs, size_t n, double eps,
                                    pq_error *err) {
    if (!pairs || n == 0)
        return pq_error_set(err, PQ_ERR_INVALID, "loss: feature: no feature pairs given");
    for (size_t i = 0; i < n; i++) {
        char nm[64];
        const char *name = pairs[i].name;
        if (!name) {
            snprintf(nm, sizeof nm, "#%zu", i);
            name = nm;
        }
        int64_t rows, d;
        PQ_TRY(cos_check(name, pairs[i].teacher, pairs[i].student, eps, pairs[i].grad, &rows, &d,
                         err));
    }
    return PQ_OK;
}

static double feature_run(const pq_feature_pair *pairs, size_t n, double eps, double scale) {
    double sum = 0.0, inv = 1.0 / (double)n;
    for (size_t i = 0; i < n; i++) {
        const pq_tensor *s = pairs[i].student;
        int64_t d = s->dims[s->rank - 1], rows = pq_tensor_numel(s) / d;
        sum += cos_run(pairs[i].teacher, s, eps, rows, d, pairs[i].grad, scale * inv);
    }
    return sum * inv;
}

enum pq_status pq_loss_feature(const pq_feature_pair *pairs, size_t n, double eps, double *loss,
                               double scale, pq_error *err) {
    PQ_TRY(feature_check(pairs, n, eps, err));
    double v = feature_run(pairs, n, eps, scale);
    if (loss) *loss = v;
    return PQ_OK;
}

/* ---- total ---- */

pq_loss_config pq_loss_config_default(void) {
    pq_loss_config c = {.task = PQ_TASK_CROSS_ENTROPY,
                        .w_task = 1.0,
                        .w_kd = 0.5,
                        .w_feat = 0.2,
                        .temperature = 1.0,
                        .kd_direction = PQ_KD_FORWARD,
                        .cos_eps = PQ_LOSS_COS_EPS};
    return c;
}

static void zero_grad(pq_tensor *g) {
    if (g && g->data) memset(g->data, 0, (size_t)pq_tensor_numel(g) * sizeof(float));
}

enum pq_status pq_loss_total(const pq_loss_config *cfg, const pq_loss_inputs *in,
                             pq_loss_values *out, pq_tensor *grad_logits, pq_error *err) {
    if (!cfg || !in || !out)
        return pq_error_set(err, PQ_ERR_INVALID, "loss: total: config, inputs or output missing");
    if (!isfinite(cfg->w_task) || !isfinite(cfg->w_kd) || !isfinite(cfg->w_feat))
        return pq_error_set(err, PQ_ERR_INVALID,
                            "loss: total: weights task %g, kd %g, feature %g must be finite",
                            cfg->w_task, cfg->w_kd, cfg->w_feat);
    bool has_task = cfg->task != PQ_TASK_NONE, has_kd = in->teacher_logits != NULL;
    bool has_feat = in->n_features > 0;
    if (cfg->task != PQ_TASK_NONE && cfg->task != PQ_TASK_CROSS_ENTROPY && cfg->task != PQ_TASK_MSE)
        return pq_error_set(err, PQ_ERR_INVALID, "loss: total: unknown task loss %d",
                            (int)cfg->task);
    if ((has_task || has_kd) && !in->logits)
        return pq_error_set(err, PQ_ERR_INVALID, "loss: total: student logits are missing");
    if (has_task && !in->labels)
        return pq_error_set(err, PQ_ERR_INVALID, "loss: total: task loss %s needs labels",
                            cfg->task == PQ_TASK_MSE ? "mse" : "cross_entropy");
    /* Validate every term before writing anything. */
    int64_t rows = 0, c = 0, krows = 0, kc = 0;
    if (has_task) {
        if (cfg->task == PQ_TASK_CROSS_ENTROPY)
            PQ_TRY(ce_check(in->logits, in->labels, grad_logits, &rows, &c, err));
        else
            PQ_TRY(mse_check(in->logits, in->labels, grad_logits, err));
    }
    if (has_kd)
        PQ_TRY(kd_check(in->teacher_logits, in->logits, cfg->temperature, cfg->kd_direction,
                        grad_logits, &krows, &kc, err));
    if (has_feat) PQ_TRY(feature_check(in->features, in->n_features, cfg->cos_eps, err));
    if (in->logits && grad_logits && !has_task && !has_kd)
        PQ_TRY(check_grad("total", "logits", in->logits, grad_logits, err));
    for (size_t i = 0; has_feat && i < in->n_features; i++)
        if (grad_logits && in->features[i].grad && in->features[i].grad->data == grad_logits->data)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "loss: total: gradient of feature '%s' aliases the logits gradient",
                                in->features[i].name ? in->features[i].name : "?");

    zero_grad(grad_logits);
    for (size_t i = 0; has_feat && i < in->n_features; i++)
        zero_grad(in->features[i].grad);
    pq_loss_values v = {0};
    if (has_task)
        v.task = cfg->task == PQ_TASK_CROSS_ENTROPY
                     ? ce_run(in->logits, in->labels, rows, c, grad_logits, cfg->w_task)
                     : mse_run(in->logits, in->labels, grad_logits, cfg->w_task);
    if (has_kd)
        v.kd = kd_run(in->teacher_logits, in->logits, cfg->temperature, cfg->kd_direction, krows,
                      kc, grad_logits, cfg->w_kd);
    if (has_feat) v.feature = feature_run(in->features, in->n_features, cfg->cos_eps, cfg->w_feat);
    v.total = cfg->w_task * v.task + cfg->w_kd * v.kd + cfg->w_feat * v.feature;
    *out = v;
    return PQ_OK;
}
