/* SGD and AdamW over registered f32 parameters (torch.optim semantics; arithmetic in double,
 * state stored as f32), global-norm clipping, learning-rate schedules and the checkpoint state
 * buffer. Single-threaded and deterministic. */
#include "optim.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/alloc.h"

#define OPTIM_PI 3.14159265358979323846
#define OPTIM_MAGIC "PQOPTIM"

typedef struct optim_param {
    char *name;
    pq_tensor *t;
    bool trainable;
    int64_t numel;
    int64_t steps; /* updates applied to this parameter */
    float *buf[2]; /* SGD: momentum; AdamW: exp_avg, exp_avg_sq */
} optim_param;

struct pq_optim {
    pq_optim_config cfg;
    optim_param *params;
    size_t n, cap;
    int64_t step;
    int nbuf;
    bool locked; /* a step or load happened: no more parameters */
};

pq_optim_config pq_optim_config_default(enum pq_optim_kind kind) {
    pq_optim_config c = {.kind = kind,
                         .lr = 1e-3,
                         .weight_decay = kind == PQ_OPTIM_ADAMW ? 1e-2 : 0.0,
                         .beta1 = 0.9,
                         .beta2 = 0.999,
                         .eps = 1e-8,
                         .schedule = PQ_LR_CONSTANT};
    return c;
}

double pq_lr_at(const pq_optim_config *cfg, int64_t k) {
    if (k < 0) k = 0;
    if (k < cfg->warmup_steps) return cfg->lr * (double)(k + 1) / (double)cfg->warmup_steps;
    if (cfg->schedule != PQ_LR_COSINE) return cfg->lr;
    double span = (double)(cfg->total_steps - cfg->warmup_steps);
    double prog = span > 0 ? (double)(k - cfg->warmup_steps) / span : 1.0;
    if (prog > 1.0) prog = 1.0;
    return cfg->lr * 0.5 * (1.0 + cos(OPTIM_PI * prog));
}

static enum pq_status bad(pq_error *err, const char *field, double v, const char *want) {
    return pq_error_set(err, PQ_ERR_INVALID, "optim: %s = %g, expected %s", field, v, want);
}

enum pq_status pq_optim_config_check(const pq_optim_config *c, pq_error *err) {
    if (!c) return pq_error_set(err, PQ_ERR_INVALID, "optim: config is missing");
    if (c->kind != PQ_OPTIM_SGD && c->kind != PQ_OPTIM_ADAMW)
        return bad(err, "kind", c->kind, "sgd (0) or adamw (1)");
    if (!(isfinite(c->lr) && c->lr >= 0)) return bad(err, "lr", c->lr, "finite and >= 0");
    if (!(isfinite(c->weight_decay) && c->weight_decay >= 0))
        return bad(err, "weight_decay", c->weight_decay, "finite and >= 0");
    if (!(isfinite(c->max_grad_norm) && c->max_grad_norm >= 0))
        return bad(err, "max_grad_norm", c->max_grad_norm, "finite and >= 0 (0 = off)");
    if (c->kind == PQ_OPTIM_SGD) {
        if (!(c->momentum >= 0 && c->momentum < 1))
            return bad(err, "momentum", c->momentum, "in [0, 1)");
        if (!(c->dampening >= 0 && c->dampening <= 1))
            return bad(err, "dampening", c->dampening, "in [0, 1]");
        if (c->nesterov && (c->momentum <= 0 || c->dampening != 0))
            return pq_error_set(
                err, PQ_ERR_INVALID,
                "optim: nesterov needs momentum > 0 (is %g) and dampening 0 (is %g)", c->momentum,
                c->dampening);
    } else {
        if (!(c->beta1 >= 0 && c->beta1 < 1)) return bad(err, "beta1", c->beta1, "in [0, 1)");
        if (!(c->beta2 >= 0 && c->beta2 < 1)) return bad(err, "beta2", c->beta2, "in [0, 1)");
        if (!(isfinite(c->eps) && c->eps > 0)) return bad(err, "eps", c->eps, "finite and > 0");
    }
    if (c->schedule != PQ_LR_CONSTANT && c->schedule != PQ_LR_COSINE)
        return bad(err, "schedule", c->schedule, "constant (0) or cosine (1)");
    if (c->warmup_steps < 0) return bad(err, "warmup_steps", (double)c->warmup_steps, ">= 0");
    if (c->schedule == PQ_LR_COSINE && c->total_steps <= c->warmup_steps)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "optim: cosine schedule needs total_steps (%lld) > warmup_steps (%lld)",
                            (long long)c->total_steps, (long long)c->warmup_steps);
    return PQ_OK;
}

enum pq_status pq_optim_create(const pq_optim_config *cfg, pq_optim **out, pq_error *err) {
    *out = NULL;
    PQ_TRY(pq_optim_config_check(cfg, err));
    pq_optim *o = pq_calloc(1, sizeof *o);
    if (!o) return pq_error_nomem(err, "optimizer");
    o->cfg = *cfg;
    o->nbuf = cfg->kind == PQ_OPTIM_ADAMW ? 2 : cfg->momentum > 0 ? 1 : 0;
    *out = o;
    return PQ_OK;
}

void pq_optim_destroy(pq_optim *o) {
    if (!o) return;
    for (size_t i = 0; i < o->n; i++) {
        pq_free(o->params[i].name);
        for (int b = 0; b < 2; b++)
            pq_free(o->params[i].buf[b]);
    }
    pq_free(o->params);
    pq_free(o);
}

enum pq_status pq_optim_add_param(pq_optim *o, const char *name, pq_tensor *t, bool trainable,
                                  size_t *index, pq_error *err) {
    if (!o) return pq_error_set(err, PQ_ERR_INVALID, "optim: optimizer is missing");
    if (!name || !*name)
        return pq_error_set(err, PQ_ERR_INVALID, "optim: parameter without a name");
    if (o->locked)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "optim: parameter '%s' added after the first step or a state load",
                            name);
    if (!t || t->dtype != PQ_DTYPE_F32)
        return pq_error_set(err, PQ_ERR_INVALID, "optim: parameter '%s' is %s, expected f32", name,
                            t ? pq_dtype_name(t->dtype) : "missing");
    int64_t numel = 0;
    if (pq_shape_numel(t->rank, t->dims, &numel, err) != PQ_OK)
        return pq_error_prefix(err, "optim: parameter '%s': ", name);
    if ((size_t)numel * sizeof(float) > t->nbytes || (numel > 0 && !t->data))
        return pq_error_set(err, PQ_ERR_INVALID, "optim: parameter '%s' holds %zu bytes, too few",
                            name, t->nbytes);
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->params[i].name, name))
            return pq_error_set(err, PQ_ERR_INVALID, "optim: parameter '%s' registered twice",
                                name);
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 8;
        optim_param *p = pq_realloc(o->params, cap * sizeof *p);
        if (!p) return pq_error_nomem(err, "optimizer parameters");
        o->params = p;
        o->cap = cap;
    }
    optim_param p = {.t = t, .trainable = trainable, .numel = numel};
    p.name = pq_strdup(name);
    if (!p.name) return pq_error_nomem(err, "optimizer parameter name");
    for (int b = 0; b < o->nbuf; b++) {
        p.buf[b] = pq_calloc((size_t)(numel ? numel : 1), sizeof(float));
        if (!p.buf[b]) {
            for (int k = 0; k <= b; k++)
                pq_free(p.buf[k]);
            pq_free(p.name);
            return pq_error_nomem(err, "optimizer state");
        }
    }
    o->params[o->n] = p;
    if (index) *index = o->n;
    o->n++;
    return PQ_OK;
}

enum pq_status pq_optim_set_trainable(pq_optim *o, size_t index, bool trainable, pq_error *err) {
    if (!o || index >= o->n)
        return pq_error_set(err, PQ_ERR_INVALID, "optim: parameter index %zu out of range (%zu)",
                            index, o ? o->n : 0);
    o->params[index].trainable = trainable;
    return PQ_OK;
}

size_t pq_optim_param_count(const pq_optim *o) {
    return o ? o->n : 0;
}
int64_t pq_optim_step_count(const pq_optim *o) {
    return o ? o->step : 0;
}
double pq_optim_current_lr(const pq_optim *o) {
    return o ? pq_lr_at(&o->cfg, o->step) : 0.0;
}

/* ---- step ---- */

static void sgd_update(const pq_optim_config *c, optim_param *p, const float *g, double coef,
                       double lr) {
    float *w = p->t->data, *buf = p->buf[0];
    for (int64_t i = 0; i < p->numel; i++) {
        float gi = coef < 1.0 ? (float)((double)g[i] * coef) : g[i];
        double d = (double)gi + c->weight_decay * (double)w[i];
        if (c->momentum > 0) {
            double b = p->steps == 0 ? d : c->momentum * (double)buf[i] + (1.0 - c->dampening) * d;
            buf[i] = (float)b;
            d = c->nesterov ? d + c->momentum * (double)buf[i] : (double)buf[i];
        }
        w[i] = (float)((double)w[i] - lr * d);
    }
}

static void adamw_update(const pq_optim_config *c, optim_param *p, const float *g, double coef,
                         double lr) {
    float *w = p->t->data, *m = p->buf[0], *v = p->buf[1];
    double t = (double)(p->steps + 1);
    double bc1 = 1.0 - pow(c->beta1, t), bc2 = 1.0 - pow(c->beta2, t);
    double step_size = lr / bc1, sbc2 = sqrt(bc2), decay = 1.0 - lr * c->weight_decay;
    for (int64_t i = 0; i < p->numel; i++) {
        double gi = coef < 1.0 ? (double)(float)((double)g[i] * coef) : (double)g[i];
        m[i] = (float)(c->beta1 * (double)m[i] + (1.0 - c->beta1) * gi);
        v[i] = (float)(c->beta2 * (double)v[i] + (1.0 - c->beta2) * gi * gi);
        double denom = sqrt((double)v[i]) / sbc2 + c->eps;
        w[i] = (float)((double)w[i] * decay - step_size * (double)m[i] / denom);
    }
}

enum pq_status pq_optim_step(pq_optim *o, const pq_tensor *const *grads, size_t n,
                             double *grad_norm, pq_error *err) {
    if (!o) return pq_error_set(err, PQ_ERR_INVALID, "optim: optimizer is missing");
    if (n != o->n || (n && !grads))
        return pq_error_set(err, PQ_ERR_INVALID, "optim: step got %zu gradients for %zu parameters",
                            grads ? n : 0, o->n);
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) {
        const optim_param *p = &o->params[i];
        const pq_tensor *g = grads[i];
        if (!p->trainable || !g) continue;
        bool ok = g->dtype == PQ_DTYPE_F32 && g->rank == p->t->rank &&
                  g->nbytes >= (size_t)p->numel * sizeof(float) && (p->numel == 0 || g->data);
        for (int d = 0; ok && d < g->rank; d++)
            ok = g->dims[d] == p->t->dims[d];
        if (!ok) {
            char sg[128] = "?", sp[128];
            if (g->rank >= 0 && g->rank <= PQ_MAX_RANK)
                pq_shape_format(g->rank, g->dims, sg, sizeof sg);
            pq_shape_format(p->t->rank, p->t->dims, sp, sizeof sp);
            return pq_error_set(err, PQ_ERR_INVALID,
                                "optim: gradient of '%s' is %s %s, expected f32 %s", p->name,
                                pq_dtype_name(g->dtype), sg, sp);
        }
        const float *gd = g->data;
        for (int64_t k = 0; k < p->numel; k++) {
            double x = gd[k];
            if (!isfinite(x))
                return pq_error_set(err, PQ_ERR_INVALID,
                                    "optim: gradient of '%s' is %g at index %lld; step not applied",
                                    p->name, x, (long long)k);
            ss += x * x;
        }
    }
    double norm = sqrt(ss), coef = 1.0;
    if (o->cfg.max_grad_norm > 0) {
        double c = o->cfg.max_grad_norm / (norm + 1e-6);
        if (c < 1.0) coef = c;
    }
    if (grad_norm) *grad_norm = norm;
    double lr = pq_lr_at(&o->cfg, o->step);
    for (size_t i = 0; i < n; i++) {
        optim_param *p = &o->params[i];
        if (!p->trainable || !grads[i]) continue;
        if (o->cfg.kind == PQ_OPTIM_SGD)
            sgd_update(&o->cfg, p, grads[i]->data, coef, lr);
        else
            adamw_update(&o->cfg, p, grads[i]->data, coef, lr);
        p->steps++;
    }
    o->step++;
    o->locked = true;
    return PQ_OK;
}

/* ---- state buffer ---- */

uint64_t pq_fnv1a64(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

typedef struct wbuf {
    unsigned char *p;
    size_t off;
} wbuf;

static void put_le(wbuf *w, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++)
        w->p[w->off++] = (unsigned char)(v >> (8 * i));
}
static void put_bytes(wbuf *w, const void *src, size_t n) {
    if (n) memcpy(w->p + w->off, src, n);
    w->off += n;
}

size_t pq_optim_state_size(const pq_optim *o) {
    if (!o) return 0;
    size_t s = 8 + 4 + 4 + 8 + 8;
    for (size_t i = 0; i < o->n; i++) {
        const optim_param *p = &o->params[i];
        s += 4 + strlen(p->name) + 1 + 4 + 8 * (size_t)p->t->rank + 8 + 4;
        s += (size_t)o->nbuf * (size_t)p->numel * 4;
    }
    return s + 8;
}

enum pq_status pq_optim_state_save(const pq_optim *o, void *buf, size_t cap, size_t *written,
                                   pq_error *err) {
    if (!o) return pq_error_set(err, PQ_ERR_INVALID, "optim: optimizer is missing");
    size_t need = pq_optim_state_size(o);
    if (!buf || cap < need)
        return pq_error_set(err, PQ_ERR_INVALID, "optim: state buffer of %zu bytes, need %zu",
                            buf ? cap : 0, need);
    wbuf w = {buf, 0};
    put_bytes(&w, OPTIM_MAGIC, 8);
    put_le(&w, PQ_OPTIM_STATE_VERSION, 4);
    put_le(&w, (uint32_t)o->cfg.kind, 4);
    put_le(&w, (uint64_t)o->n, 8);
    put_le(&w, (uint64_t)o->step, 8);
    for (size_t i = 0; i < o->n; i++) {
        const optim_param *p = &o->params[i];
        size_t ln = strlen(p->name);
        put_le(&w, (uint32_t)ln, 4);
        put_bytes(&w, p->name, ln);
        put_le(&w, p->trainable ? 1 : 0, 1);
        put_le(&w, (uint32_t)p->t->rank, 4);
        for (int d = 0; d < p->t->rank; d++)
            put_le(&w, (uint64_t)p->t->dims[d], 8);
        put_le(&w, (uint64_t)p->steps, 8);
        put_le(&w, (uint32_t)o->nbuf, 4);
        for (int b = 0; b < o->nbuf; b++)
            for (int64_t k = 0; k < p->numel; k++) {
                uint32_t bits;
                memcpy(&bits, &p->buf[b][k], 4);
                put_le(&w, bits, 4);
            }
    }
    put_le(&w, pq_fnv1a64(PQ_FNV_OFFSET, buf, w.off), 8);
    if (written) *written = w.off;
    return PQ_OK;
}

typedef struct rbuf {
    const unsigned char *p;
    size_t off, len;
} rbuf;

static bool get_le(rbuf *r, int bytes, uint64_t *v) {
    if (r->len - r->off < (size_t)bytes) return false;
    uint64_t x = 0;
    for (int i = 0; i < bytes; i++)
        x |= (uint64_t)r->p[r->off + i] << (8 * i);
    r->off += (size_t)bytes;
    *v = x;
    return true;
}

#define TRUNC(what)                                                                                \
    pq_error_set(err, PQ_ERR_INVALID, "optim: state: truncated at byte %zu (%s)", r.off, what)

/* Parses the state after the header checks; writes into o only when apply. */
static enum pq_status state_walk(pq_optim *o, const unsigned char *buf, size_t body, bool apply,
                                 pq_error *err) {
    rbuf r = {buf, 24, body};
    uint64_t v;
    if (!get_le(&r, 8, &v)) return TRUNC("step count");
    int64_t step = (int64_t)v;
    if (step < 0)
        return pq_error_set(err, PQ_ERR_INVALID, "optim: state: step count %lld", (long long)step);
    for (size_t i = 0; i < o->n; i++) {
        optim_param *p = &o->params[i];
        if (!get_le(&r, 4, &v)) return TRUNC("name length");
        size_t ln = strlen(p->name);
        if (v > r.len - r.off) return TRUNC("name");
        if (v != ln || memcmp(buf + r.off, p->name, ln))
            return pq_error_set(err, PQ_ERR_INVALID,
                                "optim: state: parameter %zu is '%.*s', expected '%s'", i,
                                (int)(v < 200 ? v : 200), (const char *)buf + r.off, p->name);
        r.off += ln;
        uint64_t tr, rank;
        if (!get_le(&r, 1, &tr) || !get_le(&r, 4, &rank)) return TRUNC("flags");
        if (tr > 1)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "optim: state: parameter '%s' trainable flag %llu", p->name,
                                (unsigned long long)tr);
        bool ok = rank == (uint64_t)p->t->rank;
        int64_t dims[PQ_MAX_RANK] = {0};
        for (uint64_t d = 0; ok && d < rank; d++) {
            if (!get_le(&r, 8, &v)) return TRUNC("dims");
            dims[d] = (int64_t)v;
            ok = dims[d] == p->t->dims[d];
        }
        if (!ok) {
            char sp[128];
            pq_shape_format(p->t->rank, p->t->dims, sp, sizeof sp);
            return pq_error_set(err, PQ_ERR_INVALID,
                                "optim: state: parameter '%s' has rank %llu / other dims than %s "
                                "in the state",
                                p->name, (unsigned long long)rank, sp);
        }
        uint64_t psteps, nb;
        if (!get_le(&r, 8, &psteps) || !get_le(&r, 4, &nb)) return TRUNC("counts");
        if ((int64_t)psteps < 0 || (int64_t)psteps > step)
            return pq_error_set(
                err, PQ_ERR_INVALID,
                "optim: state: parameter '%s' has %lld updates, more than %lld steps", p->name,
                (long long)psteps, (long long)step);
        if (nb != (uint64_t)o->nbuf)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "optim: state: parameter '%s' has %llu state buffers, this "
                                "optimizer keeps %d (momentum on/off differs?)",
                                p->name, (unsigned long long)nb, o->nbuf);
        size_t bytes = (size_t)o->nbuf * (size_t)p->numel * 4;
        if (bytes > r.len - r.off) return TRUNC("state buffers");
        if (apply) {
            p->trainable = tr == 1;
            p->steps = (int64_t)psteps;
            for (int b = 0; b < o->nbuf; b++)
                for (int64_t k = 0; k < p->numel; k++) {
                    get_le(&r, 4, &v);
                    uint32_t bits = (uint32_t)v;
                    memcpy(&p->buf[b][k], &bits, 4);
                }
        } else {
            r.off += bytes;
        }
    }
    if (r.off != r.len)
        return pq_error_set(err, PQ_ERR_INVALID, "optim: state: %zu trailing bytes", r.len - r.off);
    if (apply) {
        o->step = step;
        o->locked = true;
    }
    return PQ_OK;
}

enum pq_status pq_optim_state_load(pq_optim *o, const void *buf, size_t len, pq_error *err) {
    if (!o) return pq_error_set(err, PQ_ERR_INVALID, "optim: optimizer is missing");
    const unsigned char *b = buf;
    if (!b || len < 24 + 8 + 8)
        return pq_error_set(err, PQ_ERR_INVALID, "optim: state: %zu bytes, too short", b ? len : 0);
    if (memcmp(b, OPTIM_MAGIC, 8))
        return pq_error_set(err, PQ_ERR_INVALID,
                            "optim: state: bad magic (not an optimizer state)");
    rbuf r = {b, 8, len};
    uint64_t ver, kind, n, sum;
    get_le(&r, 4, &ver);
    get_le(&r, 4, &kind);
    get_le(&r, 8, &n);
    if (ver != PQ_OPTIM_STATE_VERSION)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                            "optim: state: version %llu, this build reads %u",
                            (unsigned long long)ver, PQ_OPTIM_STATE_VERSION);
    r.off = len - 8;
    get_le(&r, 8, &sum);
    if (sum != pq_fnv1a64(PQ_FNV_OFFSET, b, len - 8))
        return pq_error_set(err, PQ_ERR_INVALID,
                            "optim: state: checksum mismatch (corrupt or truncated)");
    if (kind != (uint64_t)o->cfg.kind)
        return pq_error_set(err, PQ_ERR_INVALID, "optim: state: saved by %s, loading into %s",
                            kind == PQ_OPTIM_SGD     ? "sgd"
                            : kind == PQ_OPTIM_ADAMW ? "adamw"
                                                     : "?",
                            o->cfg.kind == PQ_OPTIM_SGD ? "sgd" : "adamw");
    if (n != o->n)
        return pq_error_set(err, PQ_ERR_INVALID, "optim: state: %llu parameters, optimizer has %zu",
                            (unsigned long long)n, o->n);
    PQ_TRY(state_walk(o, b, len - 8, false, err));
    return state_walk(o, b, len - 8, true, err);
}
