/* The training loop over a pq_train_graph: seeded shuffling per epoch, teacher forward, one
 * training-graph run per step, optimizer update with the LSQ scale clamp, progress, validation,
 * metrics lines and atomic checkpoints that make a killed run resume bit-identically. */
#include "trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ir/text.h"
#include "runtime.h"
#include "train_ckpt.h"

/* Largest finite f16 (upper clamp of a scale word). */
#define PQ_TRAIN_F16_MAX 65504.0f

static double pq_tr_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* splitmix64: the permutation of each epoch comes from (seed, epoch) alone, so a resumed run
 * shuffles exactly as the original did. */
static uint64_t pq_tr_mix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void pq_tr_shuffle(int64_t *perm, int64_t n, uint64_t seed, int64_t epoch) {
    uint64_t s = seed * 0x100000001B3ull + (uint64_t)epoch * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(pq_tr_mix(&s) % (uint64_t)(i + 1));
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

static int pq_tr_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The teacher graph with outputs = its logits then the feature values (owned clone). */
static enum pq_status pq_tr_teacher_graph(const pq_graph *teacher, const pq_train_config *cfg,
                                          FILE *log, pq_graph **out, pq_error *err) {
    pq_graph *g = NULL;
    PQ_TRY(pq_graph_clone(teacher, &g, err));
    enum pq_status st = PQ_OK;
    bool from_sm;
    const char *z = pq_train_logits_name(g, &from_sm);
    uint32_t want[1 + PQ_TRAIN_MAX_FEATURES], nw = 0;
    if (!z) {
        st = pq_error_set(err, PQ_ERR_INVALID, "teacher: output 0 is not an f32 tensor");
        goto fail;
    }
    want[nw++] = pq_graph_find_value(g, z);
    for (uint32_t f = 0; f < cfg->n_features; f++) {
        uint32_t v = pq_graph_find_value(g, cfg->features[f]);
        if (v == PQ_NONE) {
            st = pq_error_set(err, PQ_ERR_INVALID,
                              "feature '%s' is not a value of the teacher (the original model)",
                              cfg->features[f]);
            goto fail;
        }
        want[nw++] = v;
    }
    for (uint32_t i = 0; i < g->n_outputs; i++)
        g->values[g->outputs[i]].flags &= ~(uint32_t)PQ_VALUE_OUTPUT;
    g->n_outputs = 0;
    for (uint32_t i = 0; i < nw && st == PQ_OK; i++)
        st = pq_graph_add_output(g, want[i], err);
    uint32_t removed;
    if (st == PQ_OK) st = pq_graph_remove_dead(g, &removed, err);
    if (st == PQ_OK) st = pq_runtime_prepare(g, err);
    if (st != PQ_OK) goto fail;
    (void)log;
    *out = g;
    return PQ_OK;
fail:
    pq_graph_destroy(g);
    return st;
}

/* Mean and extremes of |scale word| over the LSQ scale parameters (the step-size summary). */
static void pq_tr_scale_summary(const pq_train_graph *tg, double *mean, double *lo, double *hi,
                                int64_t *count) {
    double s = 0, mn = INFINITY, mx = 0;
    int64_t n = 0;
    for (uint32_t i = 0; i < tg->n_params; i++) {
        if (!tg->params[i].is_scale) continue;
        const float *m = tg->params[i].master->data;
        int64_t k = pq_tensor_numel(tg->params[i].master);
        for (int64_t j = 0; j < k; j++) {
            double a = fabs((double)m[j]);
            s += a;
            mn = a < mn ? a : mn;
            mx = a > mx ? a : mx;
        }
        n += k;
    }
    *count = n;
    *mean = n ? s / (double)n : NAN;
    *lo = n ? mn : NAN;
    *hi = n ? mx : NAN;
}

/* After an update: scale words keep their sign and |a| within [floor, f16 max] (SPEC 7); f16
 * feeds are refreshed from the masters. */
static void pq_tr_after_update(pq_train_graph *tg) {
    for (uint32_t i = 0; i < tg->n_params; i++) {
        pq_train_param *p = &tg->params[i];
        float *m = p->master->data;
        int64_t n = pq_tensor_numel(p->master);
        if (p->is_scale)
            for (int64_t j = 0; j < n; j++) {
                float a = fabsf(m[j]);
                float sign = signbit(m[j]) ? -1.0f : 1.0f;
                if (!(a >= p->scale_floor)) a = p->scale_floor;
                if (p->feed->dtype == PQ_DTYPE_F16 && a > PQ_TRAIN_F16_MAX) a = PQ_TRAIN_F16_MAX;
                m[j] = sign * a;
            }
        if (p->feed != p->master)
            for (int64_t j = 0; j < n; j++)
                pq_dtype_store(p->feed->dtype, p->feed->data, (size_t)j, m[j]);
    }
}

enum pq_status pq_train_evaluate(const pq_graph *g, const pq_dataset *ds, int64_t batch,
                                 int threads, double *acc, double *ce, pq_error *err) {
    *acc = *ce = NAN;
    const pq_tensor *labels = pq_dataset_labels(ds);
    if (!labels || labels->dtype != PQ_DTYPE_I64) return PQ_OK;
    pq_graph *eg = NULL;
    PQ_TRY(pq_graph_clone(g, &eg, err));
    enum pq_status st = PQ_OK;
    bool from_sm = false; /* the logits are the Softmax's input either way */
    const char *z = pq_train_logits_name(eg, &from_sm);
    pq_session *s = NULL;
    uint32_t nin = pq_dataset_n_inputs(ds);
    pq_tensor **in = pq_calloc(nin + 1, sizeof *in);
    int64_t *idx = pq_calloc((size_t)batch, sizeof *idx);
    pq_tensor *lab = NULL, *out = NULL;
    if (!in || !idx) {
        st = pq_error_nomem(err, "evaluation");
        goto done;
    }
    if (!z) {
        st = pq_error_set(err, PQ_ERR_INVALID, "output 0 is not an f32 tensor");
        goto done;
    }
    uint32_t zv = pq_graph_find_value(eg, z);
    for (uint32_t i = 0; i < eg->n_outputs; i++)
        eg->values[eg->outputs[i]].flags &= ~(uint32_t)PQ_VALUE_OUTPUT;
    eg->n_outputs = 0;
    uint32_t removed;
    if ((st = pq_graph_add_output(eg, zv, err)) != PQ_OK ||
        (st = pq_graph_remove_dead(eg, &removed, err)) != PQ_OK ||
        (st = pq_runtime_prepare(eg, err)) != PQ_OK)
        goto done;
    pq_session_opts so = {.n_threads = threads};
    if ((st = pq_session_create(eg, &so, &s, err)) != PQ_OK) goto done;
    int64_t n = pq_dataset_count(ds), hits = 0, positions = 0;
    double ce_sum = 0;
    for (int64_t b0 = 0; b0 < n && st == PQ_OK; b0 += batch) {
        int64_t bn = n - b0 < batch ? n - b0 : batch;
        for (int64_t k = 0; k < bn; k++)
            idx[k] = b0 + k;
        for (uint32_t i = 0; i < nin; i++) {
            pq_tensor_destroy(in[i]);
            in[i] = NULL;
        }
        pq_tensor_destroy(lab);
        lab = NULL;
        if ((st = pq_dataset_batch_alloc(ds, bn, in, &lab, err)) != PQ_OK ||
            (st = pq_dataset_gather(ds, idx, bn, in, lab, err)) != PQ_OK ||
            (st = pq_session_run(s, (const pq_tensor *const *)in, nin, &out, 1, err)) != PQ_OK)
            break;
        int64_t C = out->dims[out->rank - 1], rows = pq_tensor_numel(out) / (C ? C : 1);
        if (rows != pq_tensor_numel(lab)) {
            st = pq_error_set(err, PQ_ERR_INVALID,
                              "labels have %lld values per batch, the logits %lld rows",
                              (long long)pq_tensor_numel(lab), (long long)rows);
            break;
        }
        const float *zz = out->data;
        const int64_t *ll = lab->data;
        for (int64_t r = 0; r < rows; r++) {
            const float *row = zz + r * C;
            int64_t best = 0;
            double mx = row[0];
            for (int64_t c = 1; c < C; c++)
                if (row[c] > mx) mx = row[c], best = c;
            int64_t y = ll[r];
            if (y < 0 || y >= C) {
                st = pq_error_set(err, PQ_ERR_INVALID, "label %lld at row %lld is outside [0, %lld)",
                                  (long long)y, (long long)(b0 * rows / bn + r), (long long)C);
                break;
            }
            hits += best == y;
            double sum = 0;
            for (int64_t c = 0; c < C; c++)
                sum += exp((double)row[c] - mx);
            double lse = mx + log(sum);
            ce_sum += lse - (double)row[y];
        }
        positions += rows;
        pq_tensor_destroy(out);
        out = NULL;
    }
    if (st == PQ_OK && positions > 0) {
        *acc = (double)hits / (double)positions;
        *ce = ce_sum / (double)positions;
    }
done:
    if (in)
        for (uint32_t i = 0; i < nin; i++)
            pq_tensor_destroy(in[i]);
    pq_free(in);
    pq_free(idx);
    pq_tensor_destroy(lab);
    pq_tensor_destroy(out);
    pq_session_destroy(s);
    pq_graph_destroy(eg);
    return st;
}

/* Fingerprint of what a checkpoint must agree with: every setting that changes the run (batch,
 * epochs, max-steps, seed, the loss with its kind, direction and features, the optimizer with
 * its schedule), the training data, the trainable tensors' names and sizes, and the student graph
 * as the pipeline left it (its text IR: ops, attributes and a SHA-256 of every constant), so a
 * checkpoint of another model, pipeline or calibration is refused. */
static enum pq_status pq_tr_fingerprint(const pq_trainer_opts *o, const pq_train_graph *tg,
                                        uint64_t *out, pq_error *err) {
    const pq_train_config *c = o->cfg;
    const pq_optim_config *oc = &c->optim;
    uint64_t h = PQ_FNV_OFFSET;
    int64_t ints[11] = {
        c->batch, c->epochs,    c->max_steps, (int64_t)c->seed, c->loss.task, c->loss.kd_direction,
        oc->kind, oc->schedule, oc->nesterov, oc->warmup_steps, c->n_features};
    h = pq_fnv1a64(h, ints, sizeof ints);
    double fl[13] = {c->loss.w_task,   c->loss.w_kd, c->loss.w_feat,   c->loss.temperature,
                     c->loss.cos_eps,  oc->lr,       oc->weight_decay, oc->momentum,
                     oc->dampening,    oc->beta1,    oc->beta2,        oc->eps,
                     oc->max_grad_norm};
    h = pq_fnv1a64(h, fl, sizeof fl);
    for (uint32_t f = 0; f < c->n_features; f++)
        h = pq_fnv1a64(h, c->features[f], strlen(c->features[f]) + 1);
    const char *sha = pq_dataset_sha256(o->data);
    h = pq_fnv1a64(h, sha, strlen(sha));
    for (uint32_t i = 0; i < tg->n_params; i++) {
        h = pq_fnv1a64(h, tg->params[i].name, strlen(tg->params[i].name) + 1);
        int64_t n = pq_tensor_numel(tg->params[i].master);
        h = pq_fnv1a64(h, &n, sizeof n);
    }
    if (o->student) {
        char *text = NULL;
        PQ_TRY(pq_text_print_string(o->student, NULL, &text, err));
        h = pq_fnv1a64(h, text, strlen(text));
        pq_free(text);
    }
    *out = h;
    return PQ_OK;
}

/* Everything one run of the loop holds. */
typedef struct pq_tr_state {
    pq_session *train, *teach;
    pq_graph *teacher_g;
    pq_optim *opt;
    pq_tensor **batch_in, *batch_lab;
    const pq_tensor **feeds;
    pq_tensor **outs, **teach_outs;
    const pq_tensor **grads;
    int64_t *perm;
    double *step_ms;
    FILE *metrics;
} pq_tr_state;

static void pq_tr_state_free(pq_tr_state *s, uint32_t nin, const pq_train_graph *tg) {
    pq_session_destroy(s->train);
    pq_session_destroy(s->teach);
    pq_graph_destroy(s->teacher_g);
    pq_optim_destroy(s->opt);
    if (s->batch_in)
        for (uint32_t i = 0; i < nin; i++)
            pq_tensor_destroy(s->batch_in[i]);
    pq_free(s->batch_in);
    pq_tensor_destroy(s->batch_lab);
    pq_free(s->feeds);
    if (s->outs)
        for (uint32_t i = 0; i < tg->g->n_outputs; i++)
            pq_tensor_destroy(s->outs[i]);
    pq_free(s->outs);
    pq_free(s->teach_outs);
    pq_free(s->grads);
    pq_free(s->perm);
    pq_free(s->step_ms);
    if (s->metrics) fclose(s->metrics);
}

/* Seconds as m:ss or h:mm:ss. */
static void pq_tr_fmt_time(double s, char *buf, size_t n) {
    if (!(s >= 0) || s > 1e7) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else
        snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

enum pq_status pq_train_run(const pq_trainer_opts *o, pq_train_graph *tg, pq_train_result *res,
                            pq_error *err) {
    const pq_train_config *cfg = o->cfg;
    memset(res, 0, sizeof *res);
    res->val_metric = res->val_loss = res->last_loss = NAN;
    pq_graph *g = tg->g;
    const int64_t B = cfg->batch, N = pq_dataset_count(o->data);
    if (N < B)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "the data folder has %lld samples, fewer than one batch of %lld: lower "
                            "--batch",
                            (long long)N, (long long)B);
    const int64_t per_epoch = N / B;
    int64_t total = per_epoch * cfg->epochs;
    if (cfg->max_steps > 0 && cfg->max_steps < total) total = cfg->max_steps;
    int64_t epochs = (total + per_epoch - 1) / per_epoch;
    uint32_t nin = pq_dataset_n_inputs(o->data);
    pq_tr_state s;
    memset(&s, 0, sizeof s);
    enum pq_status st = PQ_OK;

    pq_optim_config oc = cfg->optim;
    oc.total_steps = total > oc.warmup_steps ? total : oc.warmup_steps + 1;
    PQ_TRY_GOTO(st, pq_optim_create(&oc, &s.opt, err), done);
    for (uint32_t i = 0; i < tg->n_params; i++)
        PQ_TRY_GOTO(st, pq_optim_add_param(s.opt, tg->params[i].name, tg->params[i].master, true,
                                           NULL, err),
                    done);
    pq_session_opts so = {.n_threads = cfg->threads};
    PQ_TRY_GOTO(st, pq_session_create(g, &so, &s.train, err), done);
    if (tg->has_teacher || tg->n_features) {
        if (!o->teacher) {
            st = pq_error_set(err, PQ_ERR_INVALID, "distillation needs the teacher model");
            goto done;
        }
        PQ_TRY_GOTO(st, pq_tr_teacher_graph(o->teacher, cfg, o->log, &s.teacher_g, err), done);
        PQ_TRY_GOTO(st, pq_session_create(s.teacher_g, &so, &s.teach, err), done);
    }
    s.batch_in = pq_calloc(nin + 1, sizeof *s.batch_in);
    s.feeds = pq_calloc(g->n_inputs + 1, sizeof *s.feeds);
    s.outs = pq_calloc(g->n_outputs + 1, sizeof *s.outs);
    s.teach_outs = pq_calloc(1 + PQ_TRAIN_MAX_FEATURES, sizeof *s.teach_outs);
    s.grads = pq_calloc(tg->n_params + 1, sizeof *s.grads);
    s.perm = pq_calloc((size_t)N, sizeof *s.perm);
    s.step_ms = pq_calloc((size_t)total + 1, sizeof *s.step_ms);
    if (!s.batch_in || !s.feeds || !s.outs || !s.teach_outs || !s.grads || !s.perm || !s.step_ms) {
        st = pq_error_nomem(err, "training state");
        goto done;
    }
    PQ_TRY_GOTO(st,
                pq_dataset_batch_alloc(o->data, B, s.batch_in, tg->has_labels ? &s.batch_lab : NULL,
                                       err),
                done);
    if (tg->has_labels && !s.batch_lab) {
        st = pq_error_set(err, PQ_ERR_INVALID,
                          "the loss has a task term but the data folder has no labels.npy (set "
                          "loss task: 0 for label-free distillation)");
        goto done;
    }
    if (o->metrics_path) {
        s.metrics = fopen(o->metrics_path, o->resume ? "a" : "w");
        if (!s.metrics) {
            st = pq_error_set(err, PQ_ERR_IO, "--metrics '%s': cannot open for writing",
                              o->metrics_path);
            goto done;
        }
    }

    pq_train_position pos;
    memset(&pos, 0, sizeof pos);
    PQ_TRY_GOTO(st, pq_tr_fingerprint(o, tg, &pos.fingerprint, err), done);
    if (o->resume) {
        if (!o->checkpoint_dir) {
            st = pq_error_set(err, PQ_ERR_INVALID, "--resume needs --checkpoint-dir");
            goto done;
        }
        PQ_TRY_GOTO(st, pq_train_ckpt_load(o->checkpoint_dir, &pos, tg, s.opt, err), done);
        if (o->log)
            fprintf(o->log, "piqc train: resumed from %s/%s at step %lld (epoch %lld)\n",
                    o->checkpoint_dir, PQ_TRAIN_CKPT_FILE, (long long)pos.step,
                    (long long)pos.epoch + 1);
    }
    pq_tr_after_update(tg); /* f16 feeds from the masters (also after a resume) */
    res->plan_bytes = 0;
    res->param_bytes = pq_optim_state_size(s.opt);

    /* the feeds that never change: parameters (updated in place), batch buffers */
    bool live = o->log && o->live;
    double t_run0 = pq_tr_now_ms(), last_print = 0;
    int64_t timed = 0;
    if (pos.step >= total && o->log)
        fprintf(o->log, "piqc train: the checkpoint is at the end of the run (step %lld of %lld): "
                        "nothing left to train\n",
                (long long)pos.step, (long long)total);
    for (int64_t ep = pos.epoch; ep < epochs && st == PQ_OK && pos.step < total; ep++) {
        pq_tr_shuffle(s.perm, N, cfg->seed, ep);
        double t_ep0 = pq_tr_now_ms();
        int64_t start = ep == pos.epoch ? pos.step_in_epoch : 0;
        if (ep != pos.epoch) memset(pos.sums, 0, sizeof pos.sums);
        int64_t k = start;
        for (; k < per_epoch && pos.step < total; k++) {
            PQ_TRY_GOTO(st,
                        pq_dataset_gather(o->data, s.perm + k * B, B, s.batch_in, s.batch_lab, err),
                        done);
            double t0 = pq_tr_now_ms();
            uint32_t n_teach = 0;
            if (s.teach) {
                n_teach = s.teacher_g->n_outputs;
                PQ_TRY_GOTO(st,
                            pq_session_run(s.teach, (const pq_tensor *const *)s.batch_in, nin,
                                           s.teach_outs, n_teach, err),
                            done);
            }
            for (uint32_t i = 0; i < g->n_inputs; i++) {
                uint32_t ix = tg->in_index[i];
                switch (tg->in_role[i]) {
                case PQ_TRAIN_IN_MODEL: s.feeds[i] = s.batch_in[ix]; break;
                case PQ_TRAIN_IN_LABELS: s.feeds[i] = s.batch_lab; break;
                case PQ_TRAIN_IN_TEACHER: s.feeds[i] = s.teach_outs[0]; break;
                case PQ_TRAIN_IN_TEACHER_FEATURE: s.feeds[i] = s.teach_outs[1 + ix]; break;
                case PQ_TRAIN_IN_PARAM: s.feeds[i] = tg->params[ix].feed; break;
                }
            }
            st = pq_session_run(s.train, s.feeds, g->n_inputs, s.outs, g->n_outputs, err);
            for (uint32_t i = 0; i < n_teach; i++) {
                pq_tensor_destroy(s.teach_outs[i]);
                s.teach_outs[i] = NULL;
            }
            if (st != PQ_OK) goto done;
            if (!res->plan_bytes) res->plan_bytes = pq_session_planned_peak(s.train);
            double total_loss = ((const float *)s.outs[0]->data)[0];
            const float *terms = s.outs[1]->data;
            if (!isfinite(total_loss)) {
                st = pq_error_set(err, PQ_ERR_INVALID,
                                  "the loss is %g at step %lld (epoch %lld): lower the learning "
                                  "rate or check the data",
                                  total_loss, (long long)pos.step + 1, (long long)ep + 1);
                goto done;
            }
            for (uint32_t i = 0; i < tg->n_params; i++)
                s.grads[i] = s.outs[tg->params[i].grad_index];
            double gnorm = 0;
            PQ_TRY_GOTO(st, pq_optim_step(s.opt, s.grads, tg->n_params, &gnorm, err), done);
            pq_tr_after_update(tg);
            double t1 = pq_tr_now_ms();
            s.step_ms[timed++] = t1 - t0;
            pos.sums[0] += total_loss;
            for (int j = 0; j < 3; j++)
                pos.sums[1 + j] += terms[j];
            for (uint32_t i = 0; i < g->n_outputs; i++) {
                pq_tensor_destroy(s.outs[i]);
                s.outs[i] = NULL;
            }
            pos.step++;
            pos.step_in_epoch = k + 1;
            pos.epoch = ep;
            if (live && (t1 - last_print > 200 || k + 1 == per_epoch)) {
                last_print = t1;
                double el = (t1 - t_run0) / 1e3;
                double rate = (double)timed * (double)B / (el > 0 ? el : 1e-9);
                char eta[32];
                pq_tr_fmt_time((double)(total - pos.step) * el / (double)timed, eta, sizeof eta);
                fprintf(o->log,
                        "\r\033[Kepoch %lld/%lld step %lld/%lld loss %.4f %.1f samples/s ETA %s",
                        (long long)ep + 1, (long long)epochs, (long long)k + 1,
                        (long long)per_epoch, pos.sums[0] / (double)(k + 1 - 0), rate, eta);
                fflush(o->log);
            }
            if (o->checkpoint_dir && cfg->checkpoint_every > 0 &&
                pos.step % cfg->checkpoint_every == 0)
                PQ_TRY_GOTO(st, pq_train_ckpt_save(o->checkpoint_dir, &pos, tg, s.opt, err), done);
        }
        /* end of epoch (or of the step budget) */
        int64_t done_steps = k;
        double mean[4];
        for (int j = 0; j < 4; j++)
            mean[j] = done_steps ? pos.sums[j] / (double)done_steps : NAN;
        res->last_loss = mean[0];
        if (k == per_epoch) {
            pos.epoch = ep + 1;
            pos.step_in_epoch = 0;
            memset(pos.sums, 0, sizeof pos.sums);
        }
        if (o->val) {
            pq_graph *sg = NULL;
            if ((st = pq_graph_clone(o->student, &sg, err)) == PQ_OK &&
                (st = pq_train_graph_store(tg, sg, err)) == PQ_OK)
                st = pq_train_evaluate(sg, o->val, 64, cfg->threads, &res->val_metric,
                                       &res->val_loss, err);
            pq_graph_destroy(sg);
            if (st != PQ_OK) goto done;
        }
        double ep_s = (pq_tr_now_ms() - t_ep0) / 1e3;
        double sm, slo, shi;
        int64_t sn;
        pq_tr_scale_summary(tg, &sm, &slo, &shi, &sn);
        if (o->log) {
            if (live) fprintf(o->log, "\r\033[K");
            fprintf(o->log, "epoch %lld/%lld: loss %.5f (task %.5f, kd %.5f, feature %.5f)",
                    (long long)ep + 1, (long long)epochs, mean[0], mean[1], mean[2], mean[3]);
            if (!isnan(res->val_metric))
                fprintf(o->log, ", val accuracy %.2f%%, val ce %.4f (ppl %.3f)",
                        100.0 * res->val_metric, res->val_loss, exp(res->val_loss));
            fprintf(o->log, ", lr %.3g, %.1f s\n", pq_optim_current_lr(s.opt), ep_s);
        }
        if (s.metrics) {
            fprintf(s.metrics,
                    "{\"epoch\": %lld, \"steps\": %lld, \"loss\": %.6g, \"task\": %.6g, \"kd\": "
                    "%.6g, \"feature\": %.6g, \"lr\": %.6g",
                    (long long)ep + 1, (long long)pos.step, mean[0], mean[1], mean[2], mean[3],
                    pq_optim_current_lr(s.opt));
            if (!isnan(res->val_metric))
                fprintf(s.metrics, ", \"val_accuracy\": %.6f, \"val_ce\": %.6f, \"val_ppl\": %.6f",
                        res->val_metric, res->val_loss, exp(res->val_loss));
            if (sn)
                fprintf(s.metrics,
                        ", \"scales\": {\"count\": %lld, \"mean_abs\": %.6g, \"min_abs\": %.6g, "
                        "\"max_abs\": %.6g}",
                        (long long)sn, sm, slo, shi);
            fprintf(s.metrics, ", \"time_s\": %.3f}\n", ep_s);
            fflush(s.metrics);
        }
        if (o->checkpoint_dir)
            PQ_TRY_GOTO(st, pq_train_ckpt_save(o->checkpoint_dir, &pos, tg, s.opt, err), done);
        if (pos.step >= total) break;
    }
    res->steps = pos.step;
    res->steps_this_run = timed;
    if (timed) {
        qsort(s.step_ms, (size_t)timed, sizeof *s.step_ms, pq_tr_cmp_double);
        res->step_ms_median = timed % 2 ? s.step_ms[timed / 2]
                                        : 0.5 * (s.step_ms[timed / 2 - 1] + s.step_ms[timed / 2]);
    }
    for (uint32_t i = 0; i < tg->n_params; i++)
        res->param_bytes += (size_t)pq_tensor_numel(tg->params[i].master) * 4;
done:
    pq_tr_state_free(&s, nin, tg);
    return st;
}
