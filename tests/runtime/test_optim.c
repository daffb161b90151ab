/* Tests of runtime/optim.c against torch.optim trajectories (scripts/gen_train_fixtures.py):
 * SGD (momentum, dampening, Nesterov, weight decay), AdamW, clip_grad_norm_, LR schedules over 5
 * steps; frozen parameters untouched; state save/load continuing bit-identically; load and step
 * errors. Tolerances: parameters |a - b| <= 1e-6 max(1, |b|) after each of 5 steps (torch runs in
 * f32, piqc in double with f32 state); gradient norms 1e-6 relative (torch sums in f32);
 * learning rates 1e-12 relative. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "frontends/npy.h"
#include "ir/alloc.h"
#include "runtime/optim.h"

static pq_error err;

static pq_tensor *fx(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/tests/data/train/%s.npy", PQ_SOURCE_DIR, name);
    pq_tensor *t = NULL;
    cr_assert_eq(pq_npy_read(path, &t, &err), PQ_OK, "%s", err.msg);
    return t;
}

static pq_tensor *fxc(const char *c, const char *what) {
    char n[256];
    snprintf(n, sizeof n, "optim_%s_%s", c, what);
    return fx(n);
}

static pq_optim_config cfg_of(const pq_tensor *t) {
    const double *c = t->data;
    pq_optim_config cfg = pq_optim_config_default(c[0] != 0 ? PQ_OPTIM_ADAMW : PQ_OPTIM_SGD);
    cfg.lr = c[1], cfg.weight_decay = c[2], cfg.momentum = c[3], cfg.dampening = c[4];
    cfg.nesterov = c[5] != 0;
    if (c[0] != 0) cfg.beta1 = c[6], cfg.beta2 = c[7], cfg.eps = c[8];
    cfg.max_grad_norm = c[9];
    cfg.schedule = c[10] != 0 ? PQ_LR_COSINE : PQ_LR_CONSTANT;
    cfg.warmup_steps = (int64_t)c[11], cfg.total_steps = (int64_t)c[12];
    return cfg;
}

/* p0 [3,4] and p1 [5] over one flat row of 17; plus a frozen f [2,2]. */
typedef struct model {
    pq_tensor *p[3];
    pq_tensor *g[3];
} model;

static void model_init(model *m, const float *flat17) {
    int64_t d0[2] = {3, 4}, d1[1] = {5}, d2[2] = {2, 2};
    m->p[0] = pq_tensor_create(PQ_DTYPE_F32, 2, d0, &err);
    m->p[1] = pq_tensor_create(PQ_DTYPE_F32, 1, d1, &err);
    m->p[2] = pq_tensor_create(PQ_DTYPE_F32, 2, d2, &err);
    for (int i = 0; i < 3; i++)
        m->g[i] = pq_tensor_create(PQ_DTYPE_F32, m->p[i]->rank, m->p[i]->dims, &err);
    memcpy(m->p[0]->data, flat17, 12 * 4);
    memcpy(m->p[1]->data, flat17 + 12, 5 * 4);
    for (int i = 0; i < 4; i++)
        ((float *)m->p[2]->data)[i] = 0.5f * (float)i - 0.3f;
}

static void model_grads(model *m, const float *flat17) {
    memcpy(m->g[0]->data, flat17, 12 * 4);
    memcpy(m->g[1]->data, flat17 + 12, 5 * 4);
    for (int i = 0; i < 4; i++)
        ((float *)m->g[2]->data)[i] = 100.0f; /* frozen: ignored */
}

static void model_free(model *m) {
    for (int i = 0; i < 3; i++)
        pq_tensor_destroy(m->p[i]), pq_tensor_destroy(m->g[i]);
}

static pq_optim *make(const pq_optim_config *cfg, model *m) {
    pq_optim *o = NULL;
    cr_assert_eq(pq_optim_create(cfg, &o, &err), PQ_OK, "%s", err.msg);
    const char *names[3] = {"enc.w", "enc.b", "teacher.w"};
    for (int i = 0; i < 3; i++) {
        size_t idx = 99;
        cr_assert_eq(pq_optim_add_param(o, names[i], m->p[i], i < 2, &idx, &err), PQ_OK, "%s",
                     err.msg);
        cr_assert_eq(idx, (size_t)i);
    }
    return o;
}

static void step(pq_optim *o, model *m, const float *g17, double *norm) {
    model_grads(m, g17);
    const pq_tensor *gs[3] = {m->g[0], m->g[1], m->g[2]};
    cr_assert_eq(pq_optim_step(o, gs, 3, norm, &err), PQ_OK, "%s", err.msg);
}

static const char *k_cases[] = {"sgd_plain",
                                "sgd_momentum",
                                "sgd_nesterov",
                                "sgd_dampening",
                                "sgd_clip_cosine",
                                "adamw",
                                "adamw_wd",
                                "adamw_clip_warmup_cosine",
                                "adamw_warmup_constant"};

Test(optim, trajectories_match_torch) {
    pq_tensor *p0 = fx("optim_params0"), *grads = fx("optim_grads");
    for (size_t c = 0; c < sizeof k_cases / sizeof *k_cases; c++) {
        const char *cn = k_cases[c];
        pq_tensor *ct = fxc(cn, "cfg"), *traj = fxc(cn, "traj"), *norms = fxc(cn, "norms"),
                  *lrs = fxc(cn, "lrs");
        pq_optim_config cfg = cfg_of(ct);
        model m;
        model_init(&m, p0->data);
        float frozen[4];
        memcpy(frozen, m.p[2]->data, sizeof frozen);
        pq_optim *o = make(&cfg, &m);
        for (int k = 0; k < 5; k++) {
            double lr = pq_optim_current_lr(o), want_lr = ((const double *)lrs->data)[k];
            cr_assert(fabs(lr - want_lr) <= 1e-12 * want_lr, "%s step %d: lr %.17g, torch %.17g",
                      cn, k, lr, want_lr);
            double norm;
            step(o, &m, (const float *)grads->data + 17 * k, &norm);
            double want_norm = ((const double *)norms->data)[k];
            cr_assert(fabs(norm - want_norm) <= 1e-6 * want_norm, "%s step %d: norm %.9g vs %.9g",
                      cn, k, norm, want_norm);
            const float *want = (const float *)traj->data + 17 * (k + 1);
            for (int i = 0; i < 17; i++) {
                float got = i < 12 ? ((float *)m.p[0]->data)[i] : ((float *)m.p[1]->data)[i - 12];
                cr_assert(fabsf(got - want[i]) <= 1e-6f * fmaxf(1.0f, fabsf(want[i])),
                          "%s step %d param %d: %.9g, torch %.9g", cn, k + 1, i, got, want[i]);
            }
            cr_assert_eq(memcmp(frozen, m.p[2]->data, sizeof frozen), 0, "%s: frozen changed", cn);
        }
        cr_assert_eq(pq_optim_step_count(o), 5);
        pq_optim_destroy(o);
        model_free(&m);
        pq_tensor_destroy(ct), pq_tensor_destroy(traj), pq_tensor_destroy(norms);
        pq_tensor_destroy(lrs);
    }
    pq_tensor_destroy(p0), pq_tensor_destroy(grads);
}

/* SGD lr 1 from zero parameters: the parameters become minus the clipped gradients. */
Test(optim, clip_matches_clip_grad_norm) {
    pq_tensor *g0 = fx("clip_g0"), *g1 = fx("clip_g1"), *nt = fx("clip_norm");
    pq_tensor *o0 = fx("clip_out0"), *o1 = fx("clip_out1");
    pq_tensor *p0 = pq_tensor_create(PQ_DTYPE_F32, g0->rank, g0->dims, &err);
    pq_tensor *p1 = pq_tensor_create(PQ_DTYPE_F32, g1->rank, g1->dims, &err);
    pq_optim_config cfg = pq_optim_config_default(PQ_OPTIM_SGD);
    cfg.lr = 1.0;
    cfg.max_grad_norm = 0.75;
    pq_optim *o;
    cr_assert_eq(pq_optim_create(&cfg, &o, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_optim_add_param(o, "a", p0, true, NULL, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_optim_add_param(o, "b", p1, true, NULL, &err), PQ_OK, "%s", err.msg);
    const pq_tensor *gs[2] = {g0, g1};
    double norm;
    cr_assert_eq(pq_optim_step(o, gs, 2, &norm, &err), PQ_OK, "%s", err.msg);
    double want = ((const double *)nt->data)[0];
    cr_assert(fabs(norm - want) <= 1e-6 * want, "norm %.9g torch %.9g", norm, want);
    const pq_tensor *ps[2] = {p0, p1}, *os[2] = {o0, o1};
    double ss = 0;
    for (int t = 0; t < 2; t++)
        for (int64_t i = 0; i < pq_tensor_numel(ps[t]); i++) {
            float got = -((float *)ps[t]->data)[i], w = ((float *)os[t]->data)[i];
            ss += (double)got * got;
            cr_assert(fabsf(got - w) <= 1e-6f * fabsf(w) + 1e-7f, "tensor %d [%lld] %g vs %g", t,
                      (long long)i, got, w);
        }
    cr_assert(fabs(sqrt(ss) - 0.75) < 1e-5, "clipped norm %g", sqrt(ss));
    pq_optim_destroy(o);
    pq_tensor *ts[] = {g0, g1, nt, o0, o1, p0, p1};
    for (int i = 0; i < 7; i++)
        pq_tensor_destroy(ts[i]);
}

Test(optim, schedules) {
    pq_optim_config c = pq_optim_config_default(PQ_OPTIM_SGD);
    c.lr = 0.1;
    cr_assert_eq(pq_lr_at(&c, 0), 0.1);
    cr_assert_eq(pq_lr_at(&c, 1000), 0.1);
    c.schedule = PQ_LR_COSINE, c.total_steps = 10;
    cr_assert_eq(pq_lr_at(&c, 0), 0.1);
    cr_assert(fabs(pq_lr_at(&c, 5) - 0.05) < 1e-15);
    cr_assert(fabs(pq_lr_at(&c, 10)) < 1e-17, "cosine reaches 0 at total_steps");
    cr_assert(fabs(pq_lr_at(&c, 50)) < 1e-17, "and stays there");
    c.warmup_steps = 4;
    cr_assert(fabs(pq_lr_at(&c, 0) - 0.025) < 1e-17);
    cr_assert(fabs(pq_lr_at(&c, 3) - 0.1) < 1e-17, "warm-up ends at the base lr");
    cr_assert(fabs(pq_lr_at(&c, 4) - 0.1) < 1e-17, "cosine starts after warm-up");
    cr_assert(fabs(pq_lr_at(&c, 7) - 0.05) < 1e-15);
}

Test(optim, frozen_and_skipped_parameters_untouched) {
    pq_tensor *p0 = fx("optim_params0"), *grads = fx("optim_grads");
    pq_optim_config cfg = pq_optim_config_default(PQ_OPTIM_ADAMW);
    model m;
    model_init(&m, p0->data);
    pq_optim *o = make(&cfg, &m);
    cr_assert_eq(pq_optim_set_trainable(o, 0, false, &err), PQ_OK);
    float before0[12], before1[5];
    memcpy(before0, m.p[0]->data, sizeof before0);
    memcpy(before1, m.p[1]->data, sizeof before1);
    model_grads(&m, grads->data);
    /* p0 frozen, p1 skipped (NULL), p2 frozen with a NaN gradient (never read) */
    ((float *)m.g[2]->data)[0] = NAN;
    const pq_tensor *gs[3] = {m.g[0], NULL, m.g[2]};
    double norm;
    cr_assert_eq(pq_optim_step(o, gs, 3, &norm, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(norm, 0.0);
    cr_assert_eq(memcmp(before0, m.p[0]->data, sizeof before0), 0);
    cr_assert_eq(memcmp(before1, m.p[1]->data, sizeof before1), 0);
    cr_assert_eq(pq_optim_set_trainable(o, 7, true, &err), PQ_ERR_INVALID);
    pq_optim_destroy(o);
    model_free(&m);
    pq_tensor_destroy(p0), pq_tensor_destroy(grads);
}

/* Runs 2 steps, saves, continues 3 steps; a fresh optimizer over a copy of the 2-step parameters
 * loads the state and must reach bit-identical parameters after the same 3 steps. */
static void round_trip(const char *cn) {
    pq_tensor *p0 = fx("optim_params0"), *grads = fx("optim_grads"), *ct = fxc(cn, "cfg");
    const float *g = grads->data;
    pq_optim_config cfg = cfg_of(ct);
    model a, b;
    model_init(&a, p0->data);
    pq_optim *oa = make(&cfg, &a);
    step(oa, &a, g, NULL);
    step(oa, &a, g + 17, NULL);
    size_t size = pq_optim_state_size(oa), wrote = 0;
    unsigned char *buf = pq_malloc(size);
    cr_assert_eq(pq_optim_state_save(oa, buf, size - 1, &wrote, &err), PQ_ERR_INVALID);
    cr_assert_eq(pq_optim_state_save(oa, buf, size, &wrote, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(wrote, size);
    model_init(&b, p0->data);
    memcpy(b.p[0]->data, a.p[0]->data, 12 * 4);
    memcpy(b.p[1]->data, a.p[1]->data, 5 * 4);
    pq_optim *ob = make(&cfg, &b);
    cr_assert_eq(pq_optim_state_load(ob, buf, size, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_optim_step_count(ob), 2);
    cr_assert_eq(pq_optim_current_lr(ob), pq_optim_current_lr(oa));
    /* Saving the loaded state gives the same bytes. */
    unsigned char *buf2 = pq_malloc(size);
    cr_assert_eq(pq_optim_state_save(ob, buf2, size, NULL, &err), PQ_OK);
    cr_assert_eq(memcmp(buf, buf2, size), 0, "%s: re-saved state differs", cn);
    for (int k = 2; k < 5; k++) {
        step(oa, &a, g + 17 * k, NULL);
        step(ob, &b, g + 17 * k, NULL);
    }
    cr_assert_eq(memcmp(a.p[0]->data, b.p[0]->data, 12 * 4), 0, "%s: p0 differs", cn);
    cr_assert_eq(memcmp(a.p[1]->data, b.p[1]->data, 5 * 4), 0, "%s: p1 differs", cn);
    pq_free(buf), pq_free(buf2);
    pq_optim_destroy(oa), pq_optim_destroy(ob);
    model_free(&a), model_free(&b);
    pq_tensor_destroy(p0), pq_tensor_destroy(grads), pq_tensor_destroy(ct);
}

Test(optim, state_round_trip_continues_bit_identically) {
    round_trip("adamw_clip_warmup_cosine");
    round_trip("sgd_nesterov");
    round_trip("sgd_plain");
}

static uint64_t fnv(const unsigned char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}
static void reseal(unsigned char *b, size_t n) {
    uint64_t h = fnv(b, n - 8);
    for (int i = 0; i < 8; i++)
        b[n - 8 + i] = (unsigned char)(h >> (8 * i));
}

static void expect_load(pq_optim *o, const unsigned char *b, size_t n, enum pq_status st,
                        const char *needle) {
    cr_assert_eq(pq_optim_state_load(o, b, n, &err), st, "status (%s)", err.msg);
    cr_assert(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg, needle);
}

Test(optim, state_load_errors) {
    pq_tensor *p0 = fx("optim_params0"), *grads = fx("optim_grads");
    pq_optim_config cfg = pq_optim_config_default(PQ_OPTIM_ADAMW);
    model m;
    model_init(&m, p0->data);
    pq_optim *o = make(&cfg, &m);
    step(o, &m, grads->data, NULL);
    size_t n = pq_optim_state_size(o);
    unsigned char *b = pq_malloc(n), *c = pq_malloc(n + 8);
    cr_assert_eq(pq_optim_state_save(o, b, n, NULL, &err), PQ_OK);

    /* target: fresh optimizer, whose state must stay untouched by every failed load */
    model m2;
    model_init(&m2, p0->data);
    pq_optim *t = make(&cfg, &m2);
    expect_load(t, b, 10, PQ_ERR_INVALID, "too short");
    expect_load(t, b, n - 1, PQ_ERR_INVALID, "checksum");
    memcpy(c, b, n);
    c[0] = 'X';
    expect_load(t, c, n, PQ_ERR_INVALID, "bad magic");
    memcpy(c, b, n);
    c[n / 2] ^= 1;
    expect_load(t, c, n, PQ_ERR_INVALID, "checksum");
    memcpy(c, b, n);
    c[8] = 9, reseal(c, n);
    expect_load(t, c, n, PQ_ERR_UNSUPPORTED, "version 9");
    memcpy(c, b, n);
    c[12] = 0, reseal(c, n);
    expect_load(t, c, n, PQ_ERR_INVALID, "saved by sgd, loading into adamw");
    memcpy(c, b, n);
    c[36] = 'X', reseal(c, n); /* first name "enc.w" starts at byte 36 */
    expect_load(t, c, n, PQ_ERR_INVALID, "parameter 0 is 'Xnc.w', expected 'enc.w'");
    memcpy(c, b, n);
    memset(c + n - 8, 0, 8);
    memcpy(c + n, b + n - 8, 8);
    reseal(c, n + 8);
    expect_load(t, c, n + 8, PQ_ERR_INVALID, "trailing");
    cr_assert_eq(pq_optim_step_count(t), 0, "failed loads changed nothing");

    /* Other shapes / other optimizer settings. */
    int64_t d[2] = {4, 3};
    pq_tensor *w = pq_tensor_create(PQ_DTYPE_F32, 2, d, &err);
    pq_optim *s;
    cr_assert_eq(pq_optim_create(&cfg, &s, &err), PQ_OK);
    cr_assert_eq(pq_optim_add_param(s, "enc.w", w, true, NULL, &err), PQ_OK);
    expect_load(s, b, n, PQ_ERR_INVALID, "3 parameters, optimizer has 1");
    cr_assert_eq(pq_optim_add_param(s, "enc.b", m2.p[1], true, NULL, &err), PQ_OK);
    cr_assert_eq(pq_optim_add_param(s, "teacher.w", m2.p[2], false, NULL, &err), PQ_OK);
    expect_load(s, b, n, PQ_ERR_INVALID, "parameter 'enc.w' has rank 2 / other dims than [4,3]");
    pq_optim_destroy(s);
    pq_tensor_destroy(w);

    pq_optim_config sgd = pq_optim_config_default(PQ_OPTIM_SGD);
    sgd.momentum = 0.9;
    model m3;
    model_init(&m3, p0->data);
    pq_optim *os = make(&sgd, &m3);
    expect_load(os, b, n, PQ_ERR_INVALID, "saved by adamw, loading into sgd");
    pq_optim_destroy(os);
    model_free(&m3);

    pq_free(b), pq_free(c);
    pq_optim_destroy(o), pq_optim_destroy(t);
    model_free(&m), model_free(&m2);
    pq_tensor_destroy(p0), pq_tensor_destroy(grads);
}

Test(optim, step_and_config_errors) {
    pq_tensor *p0 = fx("optim_params0"), *grads = fx("optim_grads");
    pq_optim_config cfg = pq_optim_config_default(PQ_OPTIM_SGD);
    cfg.momentum = 0.9;
    model m;
    model_init(&m, p0->data);
    pq_optim *o = make(&cfg, &m);
    model_grads(&m, grads->data);
    float before[12];
    memcpy(before, m.p[0]->data, sizeof before);
    const pq_tensor *gs[3] = {m.g[0], m.g[0], NULL}; /* enc.b gets a [3,4] gradient */
    cr_assert_eq(pq_optim_step(o, gs, 3, NULL, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "gradient of 'enc.b' is f32 [3,4], expected f32 [5]"), "%s", err.msg);
    cr_assert_eq(pq_optim_step(o, gs, 2, NULL, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "2 gradients for 3 parameters"), "%s", err.msg);
    gs[1] = m.g[1];
    ((float *)m.g[1]->data)[3] = INFINITY;
    cr_assert_eq(pq_optim_step(o, gs, 3, NULL, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "gradient of 'enc.b' is inf at index 3; step not applied"), "%s",
              err.msg);
    cr_assert_eq(memcmp(before, m.p[0]->data, sizeof before), 0, "failed steps changed p0");
    cr_assert_eq(pq_optim_step_count(o), 0);
    /* registration errors */
    cr_assert_eq(pq_optim_add_param(o, "enc.w", m.p[2], true, NULL, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "'enc.w' registered twice"), "%s", err.msg);
    pq_tensor *i64 = pq_tensor_create(PQ_DTYPE_I64, 1, (int64_t[]){2}, &err);
    cr_assert_eq(pq_optim_add_param(o, "ids", i64, true, NULL, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "'ids' is i64, expected f32"), "%s", err.msg);
    pq_tensor_destroy(i64);
    pq_optim_destroy(o);
    model_free(&m);

    pq_optim_config c = pq_optim_config_default(PQ_OPTIM_SGD);
    c.nesterov = true;
    pq_optim *x = NULL;
    cr_assert_eq(pq_optim_create(&c, &x, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "nesterov needs momentum > 0"), "%s", err.msg);
    cr_assert_null(x);
    c = pq_optim_config_default(PQ_OPTIM_ADAMW);
    c.schedule = PQ_LR_COSINE, c.warmup_steps = 5, c.total_steps = 5;
    cr_assert_eq(pq_optim_create(&c, &x, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "total_steps (5) > warmup_steps (5)"), "%s", err.msg);
    c = pq_optim_config_default(PQ_OPTIM_ADAMW);
    c.beta2 = 1.0;
    cr_assert_eq(pq_optim_create(&c, &x, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "beta2 = 1"), "%s", err.msg);
    c = pq_optim_config_default(PQ_OPTIM_ADAMW);
    c.lr = NAN;
    cr_assert_eq(pq_optim_create(&c, &x, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "lr = nan"), "%s", err.msg);
    pq_tensor_destroy(p0), pq_tensor_destroy(grads);
}

Test(optim, allocation_failure_is_clean) {
    pq_optim_config cfg = pq_optim_config_default(PQ_OPTIM_ADAMW);
    int64_t d[1] = {8};
    for (long k = 0; k < 8; k++) {
        pq_tensor *w = pq_tensor_create(PQ_DTYPE_F32, 1, d, &err);
        pq_optim *o = NULL;
        pq_alloc_fail_after(k);
        enum pq_status st = pq_optim_create(&cfg, &o, &err);
        if (st == PQ_OK) st = pq_optim_add_param(o, "w", w, true, NULL, &err);
        pq_alloc_fail_after(-1);
        cr_assert(st == PQ_OK || st == PQ_ERR_NOMEM, "k=%ld: %s", k, err.msg);
        pq_optim_destroy(o);
        pq_tensor_destroy(w);
    }
}
