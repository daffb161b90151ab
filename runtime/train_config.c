/* The `train:` section of a pipeline file: defaults, and the parsed YAML tree read into a
 * pq_train_config with SOURCE:LINE:COL errors naming the key and the accepted values. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train.h"

pq_train_config pq_train_config_default(void) {
    pq_train_config c;
    memset(&c, 0, sizeof c);
    c.loss = pq_loss_config_default();
    c.optim = pq_optim_config_default(PQ_OPTIM_ADAMW);
    c.optim.weight_decay = 0.0;
    c.optim.schedule = PQ_LR_COSINE;
    c.epochs = 1;
    c.batch = 16;
    c.seed = 1;
    c.threads = 1;
    return c;
}

typedef struct pq_tc_ctx {
    const char *source;
    pq_error *err;
} pq_tc_ctx;

static enum pq_status pq_tc_fail(const pq_tc_ctx *c, const pq_ynode *n, const char *key,
                                 const char *what) {
    return pq_error_set(c->err, PQ_ERR_INVALID, "%s:%u:%u: train: '%s' %s", c->source,
                        n ? n->line : 0, n ? n->col : 0, key, what);
}

static enum pq_status pq_tc_float(const pq_tc_ctx *c, const pq_ynode *n, const char *key,
                                  double lo, double hi, double *out) {
    if (n->kind != PQ_YNODE_SCALAR || n->quoted)
        return pq_tc_fail(c, n, key, "must be a number");
    char *end = NULL;
    errno = 0;
    double v = strtod(n->scalar, &end);
    if (!*n->scalar || *end || errno || !isfinite(v)) return pq_tc_fail(c, n, key, "must be a number");
    if (v < lo || v > hi) {
        char msg[160];
        snprintf(msg, sizeof msg, "= %s is out of range [%g, %g]", n->scalar, lo, hi);
        return pq_tc_fail(c, n, key, msg);
    }
    *out = v;
    return PQ_OK;
}

static enum pq_status pq_tc_int(const pq_tc_ctx *c, const pq_ynode *n, const char *key, int64_t lo,
                                int64_t hi, int64_t *out) {
    if (n->kind != PQ_YNODE_SCALAR || n->quoted) return pq_tc_fail(c, n, key, "must be an integer");
    char *end = NULL;
    errno = 0;
    long long v = strtoll(n->scalar, &end, 10);
    if (!*n->scalar || *end || errno) return pq_tc_fail(c, n, key, "must be an integer");
    if (v < lo || v > hi) {
        char msg[160];
        snprintf(msg, sizeof msg, "= %s is out of range [%lld, %lld]", n->scalar, (long long)lo,
                 (long long)hi);
        return pq_tc_fail(c, n, key, msg);
    }
    *out = v;
    return PQ_OK;
}

static enum pq_status pq_tc_bool(const pq_tc_ctx *c, const pq_ynode *n, const char *key,
                                 bool *out) {
    if (n->kind == PQ_YNODE_SCALAR && !n->quoted) {
        if (!strcmp(n->scalar, "true")) {
            *out = true;
            return PQ_OK;
        }
        if (!strcmp(n->scalar, "false")) {
            *out = false;
            return PQ_OK;
        }
    }
    return pq_tc_fail(c, n, key, "must be true or false");
}

/* Index of n's text in choices[0..k), or an error listing them. */
static enum pq_status pq_tc_choice(const pq_tc_ctx *c, const pq_ynode *n, const char *key,
                                   const char *const *choices, int k, int *out) {
    if (n->kind == PQ_YNODE_SCALAR)
        for (int i = 0; i < k; i++)
            if (!strcmp(n->scalar, choices[i])) {
                *out = i;
                return PQ_OK;
            }
    char msg[256] = "must be one of";
    for (int i = 0; i < k; i++) {
        strncat(msg, i ? ", " : " ", sizeof msg - strlen(msg) - 1);
        strncat(msg, choices[i], sizeof msg - strlen(msg) - 1);
    }
    return pq_tc_fail(c, n, key, msg);
}

/* Every key of map m must be in keys[0..k). */
static enum pq_status pq_tc_keys(const pq_tc_ctx *c, const pq_ynode *m, const char *where,
                                 const char *const *keys, int k) {
    if (m->kind != PQ_YNODE_MAP) return pq_tc_fail(c, m, where, "must be a mapping");
    for (uint32_t i = 0; i < m->n; i++) {
        bool ok = false;
        for (int j = 0; j < k && !ok; j++)
            ok = !strcmp(m->keys[i].scalar, keys[j]);
        if (!ok) {
            char msg[512];
            int len = snprintf(msg, sizeof msg, "has an unknown key '%s'; accepted:",
                               m->keys[i].scalar);
            for (int j = 0; j < k && len > 0 && (size_t)len < sizeof msg; j++)
                len += snprintf(msg + len, sizeof msg - (size_t)len, "%s %s", j ? "," : "", keys[j]);
            return pq_tc_fail(c, &m->keys[i], where, msg);
        }
    }
    return PQ_OK;
}

static enum pq_status pq_tc_loss(const pq_tc_ctx *c, const pq_ynode *m, pq_train_config *cfg) {
    static const char *const keys[] = {"task",           "kd",   "feature",  "temperature",
                                       "kind",           "kd-direction", "features"};
    PQ_TRY(pq_tc_keys(c, m, "loss", keys, 7));
    const pq_ynode *n;
    if ((n = pq_ynode_get(m, "task"))) PQ_TRY(pq_tc_float(c, n, "loss.task", -1e6, 1e6, &cfg->loss.w_task));
    if ((n = pq_ynode_get(m, "kd"))) PQ_TRY(pq_tc_float(c, n, "loss.kd", -1e6, 1e6, &cfg->loss.w_kd));
    if ((n = pq_ynode_get(m, "feature")))
        PQ_TRY(pq_tc_float(c, n, "loss.feature", -1e6, 1e6, &cfg->loss.w_feat));
    if ((n = pq_ynode_get(m, "temperature")))
        PQ_TRY(pq_tc_float(c, n, "loss.temperature", 1e-6, 1e6, &cfg->loss.temperature));
    if ((n = pq_ynode_get(m, "kind"))) {
        static const char *const kinds[] = {"none", "cross_entropy", "mse"};
        int k;
        PQ_TRY(pq_tc_choice(c, n, "loss.kind", kinds, 3, &k));
        cfg->loss.task = k == 0 ? PQ_TASK_NONE : k == 1 ? PQ_TASK_CROSS_ENTROPY : PQ_TASK_MSE;
    }
    if ((n = pq_ynode_get(m, "kd-direction"))) {
        static const char *const dirs[] = {"forward", "reverse"};
        int k;
        PQ_TRY(pq_tc_choice(c, n, "loss.kd-direction", dirs, 2, &k));
        cfg->loss.kd_direction = k ? PQ_KD_REVERSE : PQ_KD_FORWARD;
    }
    if ((n = pq_ynode_get(m, "features"))) {
        if (n->kind != PQ_YNODE_SEQ) return pq_tc_fail(c, n, "loss.features", "must be a list of value names");
        if (n->n > PQ_TRAIN_MAX_FEATURES) return pq_tc_fail(c, n, "loss.features", "has more than 16 names");
        cfg->n_features = 0;
        for (uint32_t i = 0; i < n->n; i++) {
            if (n->items[i].kind != PQ_YNODE_SCALAR || !*n->items[i].scalar)
                return pq_tc_fail(c, &n->items[i], "loss.features", "items must be value names");
            cfg->features[cfg->n_features++] = n->items[i].scalar;
        }
    }
    return PQ_OK;
}

static enum pq_status pq_tc_optimizer(const pq_tc_ctx *c, const pq_ynode *m, pq_train_config *cfg) {
    static const char *const keys[] = {"name",  "lr",    "weight-decay", "momentum",     "nesterov",
                                       "beta1", "beta2", "eps",          "max-grad-norm"};
    PQ_TRY(pq_tc_keys(c, m, "optimizer", keys, 9));
    pq_optim_config *o = &cfg->optim;
    const pq_ynode *n;
    if ((n = pq_ynode_get(m, "name"))) {
        static const char *const names[] = {"adamw", "sgd"};
        int k;
        PQ_TRY(pq_tc_choice(c, n, "optimizer.name", names, 2, &k));
        pq_optim_config d = pq_optim_config_default(k ? PQ_OPTIM_SGD : PQ_OPTIM_ADAMW);
        d.schedule = o->schedule;
        d.warmup_steps = o->warmup_steps;
        d.weight_decay = 0.0;
        *o = d;
    }
    if ((n = pq_ynode_get(m, "lr"))) PQ_TRY(pq_tc_float(c, n, "optimizer.lr", 0, 1e3, &o->lr));
    if ((n = pq_ynode_get(m, "weight-decay")))
        PQ_TRY(pq_tc_float(c, n, "optimizer.weight-decay", 0, 1e3, &o->weight_decay));
    if ((n = pq_ynode_get(m, "momentum")))
        PQ_TRY(pq_tc_float(c, n, "optimizer.momentum", 0, 0.999999, &o->momentum));
    if ((n = pq_ynode_get(m, "nesterov"))) PQ_TRY(pq_tc_bool(c, n, "optimizer.nesterov", &o->nesterov));
    if ((n = pq_ynode_get(m, "beta1"))) PQ_TRY(pq_tc_float(c, n, "optimizer.beta1", 0, 0.999999, &o->beta1));
    if ((n = pq_ynode_get(m, "beta2"))) PQ_TRY(pq_tc_float(c, n, "optimizer.beta2", 0, 0.999999, &o->beta2));
    if ((n = pq_ynode_get(m, "eps"))) PQ_TRY(pq_tc_float(c, n, "optimizer.eps", 1e-30, 1, &o->eps));
    if ((n = pq_ynode_get(m, "max-grad-norm")))
        PQ_TRY(pq_tc_float(c, n, "optimizer.max-grad-norm", 0, 1e9, &o->max_grad_norm));
    return PQ_OK;
}

static enum pq_status pq_tc_schedule(const pq_tc_ctx *c, const pq_ynode *m, pq_train_config *cfg) {
    static const char *const keys[] = {"name", "warmup-steps"};
    PQ_TRY(pq_tc_keys(c, m, "schedule", keys, 2));
    const pq_ynode *n;
    if ((n = pq_ynode_get(m, "name"))) {
        static const char *const names[] = {"constant", "cosine"};
        int k;
        PQ_TRY(pq_tc_choice(c, n, "schedule.name", names, 2, &k));
        cfg->optim.schedule = k ? PQ_LR_COSINE : PQ_LR_CONSTANT;
    }
    if ((n = pq_ynode_get(m, "warmup-steps")))
        PQ_TRY(pq_tc_int(c, n, "schedule.warmup-steps", 0, INT64_C(1) << 40, &cfg->optim.warmup_steps));
    return PQ_OK;
}

enum pq_status pq_train_config_read(const pq_pipeline *p, pq_train_config *cfg, pq_error *err) {
    if (!p || !p->train) return PQ_OK;
    pq_tc_ctx c = {p->source ? p->source : "pipeline", err};
    const pq_ynode *m = p->train;
    static const char *const keys[] = {"loss",      "optimizer", "schedule", "epochs",
                                       "batch",     "max-steps", "seed",     "merge",
                                       "checkpoint-every"};
    PQ_TRY(pq_tc_keys(&c, m, "train", keys, 9));
    const pq_ynode *n;
    if ((n = pq_ynode_get(m, "loss"))) PQ_TRY(pq_tc_loss(&c, n, cfg));
    if ((n = pq_ynode_get(m, "optimizer"))) PQ_TRY(pq_tc_optimizer(&c, n, cfg));
    if ((n = pq_ynode_get(m, "schedule"))) PQ_TRY(pq_tc_schedule(&c, n, cfg));
    if ((n = pq_ynode_get(m, "epochs"))) PQ_TRY(pq_tc_int(&c, n, "epochs", 1, 1000000, &cfg->epochs));
    if ((n = pq_ynode_get(m, "batch"))) PQ_TRY(pq_tc_int(&c, n, "batch", 1, 1 << 20, &cfg->batch));
    if ((n = pq_ynode_get(m, "max-steps")))
        PQ_TRY(pq_tc_int(&c, n, "max-steps", 0, INT64_C(1) << 40, &cfg->max_steps));
    if ((n = pq_ynode_get(m, "seed"))) {
        int64_t s;
        PQ_TRY(pq_tc_int(&c, n, "seed", 0, INT64_MAX, &s));
        cfg->seed = (uint64_t)s;
    }
    if ((n = pq_ynode_get(m, "merge"))) PQ_TRY(pq_tc_bool(&c, n, "merge", &cfg->merge));
    if ((n = pq_ynode_get(m, "checkpoint-every")))
        PQ_TRY(pq_tc_int(&c, n, "checkpoint-every", 0, INT64_C(1) << 40, &cfg->checkpoint_every));
    return PQ_OK;
}
