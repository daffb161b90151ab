/* Tests of the training graph (runtime/train.h) on the PyTorch MLP of tests/models/mlp: input
 * roles, batch, parameters and their gradient outputs; the loss output against pq_loss_total on
 * the model's own logits; every gradient output against a central finite difference of the loss
 * computed here in double; LoRA and LSQ parameter selection through real pipelines; build errors;
 * a short pq_train_run (teacher untouched, deterministic, parameters stored back); and
 * pq_train_config_read on YAML text (defaults, every key, errors naming FILE:LINE:COL and key). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/ref/loss.h"
#include "frontends/frontends.h"
#include "ir/text.h"
#include "passes/manager.h"
#include "passes/pipeline.h"
#include "runtime/runtime.h"
#include "runtime/train.h"
#include "runtime/trainer.h"

#define MLP PQ_SOURCE_DIR "/tests/models/mlp/model.onnx"
#define HIDDEN "/Relu_output_0"

static pq_error err;

/* x: f32[N, 20] -> Gemm(fc1) -> Relu -> Gemm(fc2) -> y: f32[N, 5]. */
static pq_graph *load_mlp(void) {
    pq_graph *g = NULL;
    cr_assert_eq(pq_onnx_import_file(MLP, &g, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    return g;
}

static pq_graph *parse_pir(const char *text) {
    pq_graph *g = NULL;
    cr_assert_eq(pq_text_parse(text, strlen(text), NULL, 0, &g, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    return g;
}

static pq_tensor *rnd(int rank, const int64_t *dims, uint32_t seed, float scale) {
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_F32, rank, dims, &err);
    cr_assert_not_null(t, "%s", err.msg);
    uint32_t s = seed * 2654435761u + 3u;
    float *p = t->data;
    for (int64_t i = 0; i < pq_tensor_numel(t); i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = ((float)(s >> 8) / (float)(1u << 24) * 2.0f - 1.0f) * scale;
    }
    return t;
}

static pq_tensor *ids(int64_t n, uint32_t seed, int64_t c) {
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_I64, 1, &n, &err);
    cr_assert_not_null(t);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        ((int64_t *)t->data)[i] = (int64_t)((seed >> 8) % (uint32_t)c);
    }
    return t;
}

static const pq_tensor *constant(const pq_graph *g, const char *name) {
    uint32_t v = pq_graph_find_value(g, name);
    cr_assert_neq(v, PQ_NONE, "no value '%s'", name);
    return g->values[v].constant;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* Loss config with f32-exact weights (the TrainLoss node stores them as f32 attributes). */
static pq_train_config mlp_config(int64_t batch) {
    pq_train_config c = pq_train_config_default();
    c.batch = batch;
    c.loss.w_task = 1.0;
    c.loss.w_kd = 0.5;
    c.loss.w_feat = 0.25;
    c.loss.temperature = 2.0;
    c.features[0] = HIDDEN;
    c.n_features = 1;
    return c;
}

static void build(const pq_graph *student, const pq_train_config *cfg, bool labels, bool teacher,
                  pq_train_graph *tg) {
    pq_train_graph_opts o = {.cfg = cfg,
                             .with_teacher = teacher,
                             .with_labels = labels,
                             .label_dtype = PQ_DTYPE_I64,
                             .log = NULL};
    cr_assert_eq(pq_train_graph_build(student, &o, tg, &err), PQ_OK, "%s", err.msg);
}

static const pq_train_param *param(const pq_train_graph *tg, const char *name) {
    for (uint32_t i = 0; i < tg->n_params; i++)
        if (!strcmp(tg->params[i].name, name)) return &tg->params[i];
    return NULL;
}

static bool static_dims(const pq_value *v, int rank, const int64_t *dims) {
    int64_t d[PQ_MAX_RANK];
    if (v->shape.rank != rank || !pq_shape_is_static(&v->shape, d)) return false;
    for (int i = 0; i < rank; i++)
        if (d[i] != dims[i]) return false;
    return true;
}

TestSuite(train_graph, .timeout = 60);

Test(train_graph, roles_batch_and_parameters) {
    pq_graph *s = load_mlp();
    uint32_t n_values = s->n_values, n_nodes = s->n_nodes;
    pq_train_config cfg = mlp_config(3);
    pq_train_graph tg;
    build(s, &cfg, true, true, &tg);
    pq_graph *g = tg.g;
    cr_assert_str_eq(tg.logits, "y");
    cr_assert(!tg.logits_from_softmax);
    cr_assert(tg.has_labels && tg.has_teacher);
    cr_assert_eq(tg.n_features, 1);
    /* inputs: the model input first with the batch, then labels, teacher logits, the teacher
     * feature and the four parameters (in any order after the model input) */
    cr_assert_eq(g->n_inputs, 1 + 3 + 4);
    int seen[5] = {0};
    for (uint32_t i = 0; i < g->n_inputs; i++) {
        const pq_value *v = &g->values[g->inputs[i]];
        seen[tg.in_role[i]]++;
        switch (tg.in_role[i]) {
        case PQ_TRAIN_IN_MODEL:
            cr_assert_eq(i, 0);
            cr_assert_eq(tg.in_index[i], 0);
            cr_assert_str_eq(v->name, "x");
            cr_assert(static_dims(v, 2, (int64_t[]){3, 20}), "x gets the batch");
            break;
        case PQ_TRAIN_IN_LABELS:
            cr_assert_str_eq(v->name, "labels");
            cr_assert_eq(v->dtype, PQ_DTYPE_I64);
            cr_assert(static_dims(v, 1, (int64_t[]){3}));
            break;
        case PQ_TRAIN_IN_TEACHER:
            cr_assert_str_eq(v->name, "teacher/logits");
            cr_assert_eq(v->dtype, PQ_DTYPE_F32);
            cr_assert(static_dims(v, 2, (int64_t[]){3, 5}));
            break;
        case PQ_TRAIN_IN_TEACHER_FEATURE:
            cr_assert_str_eq(v->name, "teacher/" HIDDEN);
            cr_assert_eq(tg.in_index[i], 0);
            cr_assert(static_dims(v, 2, (int64_t[]){3, 32}));
            break;
        case PQ_TRAIN_IN_PARAM: {
            cr_assert_lt(tg.in_index[i], tg.n_params);
            const pq_train_param *p = &tg.params[tg.in_index[i]];
            cr_assert_str_eq(p->name, v->name, "input %u feeds parameter %s", i, p->name);
            cr_assert_null(v->constant, "a parameter is no longer a constant");
            break;
        }
        }
    }
    cr_assert_eq(seen[PQ_TRAIN_IN_MODEL], 1);
    cr_assert_eq(seen[PQ_TRAIN_IN_LABELS], 1);
    cr_assert_eq(seen[PQ_TRAIN_IN_TEACHER], 1);
    cr_assert_eq(seen[PQ_TRAIN_IN_TEACHER_FEATURE], 1);
    cr_assert_eq(seen[PQ_TRAIN_IN_PARAM], 4);
    /* full QAT of an FP32 model: every weight and bias, f32 masters equal to the model's values */
    static const char *const names[4] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
    cr_assert_eq(tg.n_params, 4);
    for (int k = 0; k < 4; k++) {
        const pq_train_param *p = param(&tg, names[k]);
        cr_assert_not_null(p, "%s is trainable", names[k]);
        const pq_tensor *c = constant(s, names[k]);
        cr_assert_eq(p->master->dtype, PQ_DTYPE_F32);
        cr_assert_eq(p->master->nbytes, c->nbytes);
        cr_assert_eq(memcmp(p->master->data, c->data, c->nbytes), 0, "%s master", names[k]);
        cr_assert_eq(p->feed, p->master, "an f32 parameter is fed from its master");
        cr_assert(!p->is_scale);
        /* its gradient output: grad/<name>, the parameter's shape */
        cr_assert_lt(p->grad_index, g->n_outputs);
        const pq_value *gv = &g->values[g->outputs[p->grad_index]];
        char want[64];
        snprintf(want, sizeof want, "grad/%s", names[k]);
        cr_assert_str_eq(gv->name, want);
        cr_assert(static_dims(gv, c->rank, c->dims), "%s shape", want);
    }
    /* outputs: loss (scalar) and the three terms first */
    cr_assert_str_eq(g->values[g->outputs[0]].name, "loss");
    cr_assert_eq(g->values[g->outputs[0]].shape.rank, 0);
    cr_assert_str_eq(g->values[g->outputs[1]].name, "loss/terms");
    cr_assert(static_dims(&g->values[g->outputs[1]], 1, (int64_t[]){3}));
    cr_assert_eq(g->n_outputs, 2 + 4);
    /* the student is borrowed, not changed */
    cr_assert_eq(s->n_values, n_values);
    cr_assert_eq(s->n_nodes, n_nodes);
    cr_assert_eq(s->n_inputs, 1);
    cr_assert_not_null(constant(s, "fc1.weight"));
    pq_train_graph_free(&tg);
    pq_train_graph_free(&tg); /* freeing twice is harmless (zeroed) */

    /* no labels and no teacher: only the model input and the parameters (and the feature) */
    pq_train_config c2 = mlp_config(2);
    c2.n_features = 0;
    c2.loss.w_task = 0;
    build(s, &c2, false, true, &tg);
    cr_assert(!tg.has_labels && tg.has_teacher);
    cr_assert_eq(tg.g->n_inputs, 1 + 1 + 4);
    pq_train_graph_free(&tg);
    pq_graph_destroy(s);
}

/* ---- the loss and its gradients, recomputed in double ---- */

typedef struct mlp_params {
    double w1[32 * 20], b1[32], w2[5 * 32], b2[5];
} mlp_params;

static void params_from(const pq_graph *s, mlp_params *p) {
    const pq_tensor *t[4] = {constant(s, "fc1.weight"), constant(s, "fc1.bias"),
                             constant(s, "fc2.weight"), constant(s, "fc2.bias")};
    double *d[4] = {p->w1, p->b1, p->w2, p->b2};
    for (int k = 0; k < 4; k++)
        for (int64_t i = 0; i < pq_tensor_numel(t[k]); i++)
            d[k][i] = ((const float *)t[k]->data)[i];
}

/* Inputs of the loss: x [B,20], labels [B], teacher logits [B,5], teacher feature [B,32]. */
typedef struct loss_data {
    int64_t B;
    const pq_tensor *x, *labels, *tz, *tf;
    double w_task, w_kd, w_feat, T;
} loss_data;

/* w_task CE + w_kd T^2 KL(p_t || p_s) at T + w_feat mean(1 - cos(t, h)), all in double. */
static double loss_double(const mlp_params *p, const loss_data *d) {
    double ce = 0, kd = 0, feat = 0;
    const float *x = d->x->data, *tz = d->tz->data, *tf = d->tf->data;
    const int64_t *y = d->labels->data;
    for (int64_t b = 0; b < d->B; b++) {
        double h[32], z[5];
        for (int j = 0; j < 32; j++) {
            double a = p->b1[j];
            for (int i = 0; i < 20; i++)
                a += x[b * 20 + i] * p->w1[j * 20 + i];
            h[j] = a > 0 ? a : 0;
        }
        for (int c = 0; c < 5; c++) {
            double a = p->b2[c];
            for (int j = 0; j < 32; j++)
                a += h[j] * p->w2[c * 32 + j];
            z[c] = a;
        }
        /* CE */
        double m = z[0];
        for (int c = 1; c < 5; c++)
            m = fmax(m, z[c]);
        double se = 0;
        for (int c = 0; c < 5; c++)
            se += exp(z[c] - m);
        ce += m + log(se) - z[y[b]];
        /* KD forward at T */
        double ms = -INFINITY, mt = -INFINITY, ss = 0, st = 0;
        for (int c = 0; c < 5; c++) {
            ms = fmax(ms, z[c] / d->T);
            mt = fmax(mt, tz[b * 5 + c] / d->T);
        }
        for (int c = 0; c < 5; c++) {
            ss += exp(z[c] / d->T - ms);
            st += exp(tz[b * 5 + c] / d->T - mt);
        }
        for (int c = 0; c < 5; c++) {
            double lps = z[c] / d->T - ms - log(ss), lpt = tz[b * 5 + c] / d->T - mt - log(st);
            kd += exp(lpt) * (lpt - lps);
        }
        /* cosine feature */
        double dot = 0, nt = 0, ns = 0;
        for (int j = 0; j < 32; j++) {
            dot += tf[b * 32 + j] * h[j];
            nt += (double)tf[b * 32 + j] * tf[b * 32 + j];
            ns += h[j] * h[j];
        }
        feat += 1.0 - dot / (fmax(sqrt(nt), 1e-8) * fmax(sqrt(ns), 1e-8));
    }
    double n = (double)d->B;
    return d->w_task * ce / n + d->w_kd * d->T * d->T * kd / n + d->w_feat * feat / n;
}

/* Runs the training graph once: outputs[0] loss, [1] terms, gradients at grad_index. */
static void run_train_graph(const pq_train_graph *tg, const loss_data *d, pq_tensor **outs) {
    const pq_tensor *feeds[16];
    for (uint32_t i = 0; i < tg->g->n_inputs; i++) {
        switch (tg->in_role[i]) {
        case PQ_TRAIN_IN_MODEL:
            feeds[i] = d->x;
            break;
        case PQ_TRAIN_IN_LABELS:
            feeds[i] = d->labels;
            break;
        case PQ_TRAIN_IN_TEACHER:
            feeds[i] = d->tz;
            break;
        case PQ_TRAIN_IN_TEACHER_FEATURE:
            feeds[i] = d->tf;
            break;
        case PQ_TRAIN_IN_PARAM:
            feeds[i] = tg->params[tg->in_index[i]].feed;
            break;
        }
    }
    pq_session *se = NULL;
    pq_session_opts so = {.n_threads = 1};
    cr_assert_eq(pq_session_create(tg->g, &so, &se, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_session_run(se, feeds, tg->g->n_inputs, outs, tg->g->n_outputs, &err), PQ_OK,
                 "%s", err.msg);
    pq_session_destroy(se);
}

Test(train_graph, loss_matches_pq_loss_total_and_gradients_match_finite_differences) {
    pq_graph *s = load_mlp();
    const int64_t B = 4;
    pq_train_config cfg = mlp_config(B);
    pq_train_graph tg;
    build(s, &cfg, true, true, &tg);
    pq_tensor *x = rnd(2, (int64_t[]){B, 20}, 1, 2.0f), *y = ids(B, 2, 5);
    pq_tensor *tz = rnd(2, (int64_t[]){B, 5}, 3, 3.0f), *tf = rnd(2, (int64_t[]){B, 32}, 4, 1.0f);
    loss_data d = {B, x, y, tz, tf, 1.0, 0.5, 0.25, 2.0};
    pq_tensor *outs[16] = {0};
    run_train_graph(&tg, &d, outs);
    float loss = ((const float *)outs[0]->data)[0];
    const float *terms = outs[1]->data;

    /* 1. the loss output = pq_loss_total on the model's own logits and hidden values */
    pq_graph *m = NULL;
    cr_assert_eq(pq_graph_clone(s, &m, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_output(m, pq_graph_find_value(m, HIDDEN), &err), PQ_OK, "%s",
                 err.msg);
    cr_assert_eq(pq_runtime_prepare(m, &err), PQ_OK, "%s", err.msg);
    pq_session *ms = NULL;
    pq_session_opts so = {.n_threads = 1};
    pq_tensor *mo[2] = {0};
    cr_assert_eq(pq_session_create(m, &so, &ms, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_session_run(ms, (const pq_tensor *const[]){x}, 1, mo, 2, &err), PQ_OK, "%s",
                 err.msg);
    pq_loss_config lc = cfg.loss;
    lc.cos_eps = (double)(float)PQ_LOSS_COS_EPS;
    pq_feature_pair fp = {HIDDEN, tf, mo[1], NULL};
    pq_loss_inputs li = {mo[0], y, tz, &fp, 1};
    pq_loss_values lv;
    cr_assert_eq(pq_loss_total(&lc, &li, &lv, NULL, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(loss, (float)lv.total, "graph loss %.9g, pq_loss_total %.9g", loss, lv.total);
    cr_assert_eq(terms[0], (float)lv.task, "task %.9g vs %.9g", terms[0], lv.task);
    cr_assert_eq(terms[1], (float)lv.kd, "kd %.9g vs %.9g", terms[1], lv.kd);
    cr_assert_eq(terms[2], (float)lv.feature, "feature %.9g vs %.9g", terms[2], lv.feature);
    cr_assert(lv.task > 0 && lv.kd > 0 && lv.feature > 0, "every term contributes");
    pq_tensor_destroy(mo[0]);
    pq_tensor_destroy(mo[1]);
    pq_session_destroy(ms);
    pq_graph_destroy(m);

    /* 2. the double-precision loss agrees with the graph's (f32 forward) */
    mlp_params p;
    params_from(s, &p);
    double L = loss_double(&p, &d);
    cr_assert(fabs(L - loss) <= 1e-5 * fabs(L), "double loss %.9g, graph %.9g", L, loss);

    /* 3. gradients vs central differences (step 1e-4, in double), every 7th element plus the
     * last of each parameter. Tolerance |g - fd| <= 1e-4 |fd| + 1e-6 max|g of the tensor| (1e-5 and
     * 1e-7 pass: 10x margin); the graph's gradient is computed in f32 (and the FD's truncation
     * error is O(1e-8)). */
    double *pd[4] = {p.w1, p.b1, p.w2, p.b2};
    static const char *const names[4] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
    int checked = 0;
    for (int k = 0; k < 4; k++) {
        const pq_train_param *pp = param(&tg, names[k]);
        cr_assert_not_null(pp);
        const pq_tensor *gt = outs[pp->grad_index];
        const float *gr = gt->data;
        int64_t n = pq_tensor_numel(gt);
        double gmax = 0;
        for (int64_t i = 0; i < n; i++)
            gmax = fmax(gmax, fabs(gr[i]));
        cr_assert(gmax > 0, "%s: gradient is all zero", names[k]);
        for (int64_t i = 0; i < n; i += (i + 7 < n || i == n - 1) ? 7 : n - 1 - i) {
            const double h = 1e-4, keep = pd[k][i];
            pd[k][i] = keep + h;
            double lp = loss_double(&p, &d);
            pd[k][i] = keep - h;
            double lm = loss_double(&p, &d);
            pd[k][i] = keep;
            double fd = (lp - lm) / (2 * h);
            cr_assert(fabs(gr[i] - fd) <= 1e-4 * fabs(fd) + 1e-6 * gmax,
                      "%s[%lld]: graph %.9g, finite difference %.9g", names[k], (long long)i, gr[i],
                      fd);
            checked++;
            if (i == n - 1) break;
        }
    }
    cr_assert_gt(checked, 100);
    for (uint32_t i = 0; i < tg.g->n_outputs; i++)
        pq_tensor_destroy(outs[i]);
    pq_train_graph_free(&tg);
    pq_tensor_destroy(x);
    pq_tensor_destroy(y);
    pq_tensor_destroy(tz);
    pq_tensor_destroy(tf);
    pq_graph_destroy(s);
}

/* ---- parameter selection through pipelines ---- */

static void run_pipeline(pq_graph *g, const char *yaml) {
    pq_pipeline *p = NULL;
    cr_assert_eq(pq_pipeline_parse(yaml, strlen(yaml), "test.yaml", &p, &err), PQ_OK, "%s",
                 err.msg);
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    pq_pass_manager_opts mo;
    memset(&mo, 0, sizeof mo);
    cr_assert_eq(pq_pipeline_run(g, p, &mo, &ctx, NULL, &err), PQ_OK, "%s", err.msg);
    pq_pass_ctx_free(&ctx);
    pq_pipeline_destroy(p);
}

Test(train_graph, lora_mode_trains_only_the_adapters) {
    pq_graph *s = load_mlp();
    run_pipeline(s, "passes:\n  - lora: {rank: 2, alpha: 4, min-elements: 0}\n");
    pq_train_config cfg = mlp_config(2);
    cfg.n_features = 0;
    pq_train_graph tg;
    build(s, &cfg, true, false, &tg);
    cr_assert_eq(tg.n_params, 4, "%u parameters", tg.n_params);
    for (uint32_t i = 0; i < tg.n_params; i++) {
        const char *n = tg.params[i].name;
        cr_assert(ends_with(n, ".lora_A") || ends_with(n, ".lora_B"), "'%s' trains", n);
        cr_assert(!tg.params[i].is_scale);
    }
    cr_assert_not_null(param(&tg, "fc1.weight.lora_A"));
    cr_assert_not_null(param(&tg, "fc2.weight.lora_B"));
    /* the base weights and biases stay constants of the training graph */
    static const char *const frozen[4] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
    for (int k = 0; k < 4; k++)
        cr_assert_not_null(constant(tg.g, frozen[k]), "%s stays frozen", frozen[k]);
    /* the gradients of the adapters: B starts at 0, so dL/dA = 0 and dL/dB != 0 */
    pq_tensor *x = rnd(2, (int64_t[]){2, 20}, 5, 1.0f), *y = ids(2, 6, 5);
    loss_data d = {2, x, y, NULL, NULL, 1, 0, 0, 1};
    pq_tensor *outs[16] = {0};
    run_train_graph(&tg, &d, outs);
    const pq_train_param *b = param(&tg, "fc2.weight.lora_B");
    double bmax = 0;
    for (int64_t i = 0; i < pq_tensor_numel(outs[b->grad_index]); i++)
        bmax = fmax(bmax, fabs(((float *)outs[b->grad_index]->data)[i]));
    cr_assert(bmax > 0, "dL/dB is zero");
    for (uint32_t i = 0; i < tg.g->n_outputs; i++)
        pq_tensor_destroy(outs[i]);
    pq_tensor_destroy(x);
    pq_tensor_destroy(y);
    pq_train_graph_free(&tg);
    pq_graph_destroy(s);
}

Test(train_graph, lsq_scales_become_parameters) {
    static const char *const ste[2] = {"lsq", "standard"};
    for (int k = 0; k < 2; k++) {
        for (int lora = 0; lora < 2; lora++) {
            pq_graph *s = load_mlp();
            char yaml[256];
            snprintf(yaml, sizeof yaml,
                     "passes:\n  - fake-quant: {format: piq3, group: 8, calib: absmax, ste: %s, "
                     "min-elements: 0}\n%s",
                     ste[k], lora ? "  - lora: {rank: 2, alpha: 4, min-elements: 0}\n" : "");
            run_pipeline(s, yaml);
            pq_train_config cfg = mlp_config(2);
            cfg.n_features = 0;
            pq_train_graph tg;
            build(s, &cfg, true, false, &tg);
            uint32_t scales = 0, weights = 0, adapters = 0;
            for (uint32_t i = 0; i < tg.n_params; i++) {
                const pq_train_param *p = &tg.params[i];
                if (ends_with(p->name, ".lora_A") || ends_with(p->name, ".lora_B")) adapters++;
                if (!strcmp(p->name, "fc1.weight") || !strcmp(p->name, "fc2.weight")) weights++;
                if (!p->is_scale) {
                    cr_assert_eq(p->feed, p->master);
                    continue;
                }
                scales++;
                /* an f16 scale-word tensor: f32 master, f16 feed with the same values, the
                 * smallest normal f16 as floor */
                cr_assert_eq(p->feed->dtype, PQ_DTYPE_F16, "%s", p->name);
                cr_assert_neq(p->feed, p->master);
                cr_assert_eq(p->scale_floor, 6.103515625e-05f);
                for (int64_t j = 0; j < pq_tensor_numel(p->master); j++)
                    cr_assert_eq(((float *)p->master->data)[j],
                                 (float)pq_dtype_load(PQ_DTYPE_F16, p->feed->data, (size_t)j));
                const pq_value *gv = &tg.g->values[tg.g->outputs[p->grad_index]];
                cr_assert(ends_with(gv->name, p->name) && !strncmp(gv->name, "grad/", 5), "%s",
                          gv->name);
            }
            if (k == 0)
                cr_assert_eq(scales, 2, "lsq: the two layers' scale tensors train (%u)", scales);
            else
                cr_assert_eq(scales, 0, "standard STE: scales stay constants (%u)", scales);
            cr_assert_eq(weights, lora ? 0u : 2u, "weights train only without LoRA");
            cr_assert_eq(adapters, lora ? 4u : 0u);
            pq_train_graph_free(&tg);
            pq_graph_destroy(s);
        }
    }
}

/* ---- build errors and the logits of a Softmax output ---- */

static void build_fails(const char *pir, const pq_train_config *cfg, bool labels,
                        const char *needle) {
    pq_graph *g = parse_pir(pir);
    pq_train_graph tg;
    pq_train_graph_opts o = {.cfg = cfg, .with_labels = labels, .label_dtype = PQ_DTYPE_I64};
    enum pq_status st = pq_train_graph_build(g, &o, &tg, &err);
    cr_assert_eq(st, PQ_ERR_INVALID, "want INVALID with '%s': %d %s", needle, (int)st, err.msg);
    cr_assert(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg, needle);
    cr_assert_null(tg.g, "nothing is left allocated");
    cr_assert_eq(tg.n_params, 0);
    pq_graph_destroy(g);
}

#define PIR_HEAD "piqc 1\ngraph t {\n  symbols N, K\n  opset \"\" 17\n"
#define PIR_W                                                                                      \
    "  const %W: f32[3, 4] = [0.5, -0.2, 0.1, 0.3, -0.4, 0.2, 0.6, -0.1, 0.2, 0.7, -0.3, 0.4]\n"

Test(train_graph, build_errors) {
    pq_train_config cfg = pq_train_config_default();
    cfg.batch = 2;
    build_fails(PIR_HEAD "  input %x: f32[4, 3]\n" PIR_W "  %y = MatMul(%x, %W)\n  output %y\n}\n",
                &cfg, true, "model input 'x' has a fixed batch of 4");
    build_fails(PIR_HEAD "  input %x: f32[N, K]\n" PIR_W "  %y = MatMul(%x, %W)\n  output %y\n}\n",
                &cfg, true, "model input 'x' has a dynamic axis 1");
    build_fails(PIR_HEAD "  input %x: f32[N, 3]\n" PIR_W
                         "  %y = MatMul(%x, %W)\n  %a = ArgMax(%y) {axis = 1}\n  output %a\n}\n",
                &cfg, true, "output 0 of the model is not an f32 tensor");
    build_fails(PIR_HEAD "  input %x: f32[N, 3]\n  %y = Relu(%x)\n  output %y\n}\n", &cfg, false,
                "nothing to train");
    build_fails(PIR_HEAD "  input %labels: f32[N, 3]\n" PIR_W
                         "  %y = MatMul(%labels, %W)\n  output %y\n}\n",
                &cfg, true, "already has a value named 'labels'");
    pq_train_config fc = cfg;
    fc.features[0] = "nope";
    fc.n_features = 1;
    build_fails(PIR_HEAD "  input %x: f32[N, 3]\n" PIR_W "  %y = MatMul(%x, %W)\n  output %y\n}\n",
                &fc, true, "feature 'nope' is not a float value computed by the model");
    fc.features[0] = "W";
    build_fails(PIR_HEAD "  input %x: f32[N, 3]\n" PIR_W "  %y = MatMul(%x, %W)\n  output %y\n}\n",
                &fc, true, "feature 'W' is not a float value computed by the model");

    /* a Softmax output: its input is the logits, and the log says so */
    pq_graph *g = parse_pir(PIR_HEAD "  input %x: f32[N, 3]\n" PIR_W
                                     "  %z = MatMul(%x, %W)\n  %p = Softmax(%z) {axis = -1}\n"
                                     "  output %p\n}\n");
    char *logbuf = NULL;
    size_t loglen = 0;
    FILE *log = open_memstream(&logbuf, &loglen);
    pq_train_graph tg;
    pq_train_graph_opts o = {
        .cfg = &cfg, .with_labels = true, .label_dtype = PQ_DTYPE_I64, .log = log};
    cr_assert_eq(pq_train_graph_build(g, &o, &tg, &err), PQ_OK, "%s", err.msg);
    fclose(log);
    cr_assert(tg.logits_from_softmax);
    cr_assert_str_eq(tg.logits, "z");
    cr_assert(strstr(logbuf, "output 'p' comes from a Softmax/LogSoftmax: its input 'z' is used"),
              "%s", logbuf);
    cr_assert(strstr(logbuf, "full QAT"), "%s", logbuf);
    free(logbuf);
    bool sm;
    cr_assert_str_eq(pq_train_logits_name(g, &sm), "z");
    cr_assert(sm);
    pq_train_graph_free(&tg);
    pq_graph_destroy(g);
}

/* ---- the loop on the C API: the teacher is untouched, runs are deterministic ---- */

static char dir[256];

static void write_npy(const char *name, const pq_tensor *t) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cr_assert_eq(pq_npy_write(path, t, &err), PQ_OK, "%s", err.msg);
}

/* Trains a fresh copy of the MLP for 6 steps (batch 4 of 12 samples, KD + CE) and returns the
 * trained masters concatenated (pq_free), checking the teacher's bytes against a fresh import. */
static float *train_once(pq_train_result *res, size_t *n_out) {
    pq_graph *teacher = load_mlp(), *student = load_mlp(), *fresh = load_mlp();
    pq_dataset *ds = NULL;
    cr_assert_eq(pq_dataset_open(dir, student, true, &ds, &err), PQ_OK, "%s", err.msg);
    pq_train_config cfg = mlp_config(4);
    cfg.n_features = 0;
    cfg.max_steps = 6;
    cfg.epochs = 5;
    cfg.optim.lr = 0.01;
    pq_train_graph tg;
    build(student, &cfg, true, true, &tg);
    pq_trainer_opts o = {.cfg = &cfg, .student = student, .teacher = teacher, .data = ds};
    cr_assert_eq(pq_train_run(&o, &tg, res, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(res->steps, 6);
    cr_assert_eq(res->steps_this_run, 6);
    cr_assert(isfinite(res->last_loss) && res->last_loss > 0, "%g", res->last_loss);
    /* the teacher's constants are byte-identical to a fresh import */
    uint32_t compared = 0;
    for (uint32_t v = 0; v < fresh->n_values; v++) {
        const pq_tensor *a = fresh->values[v].constant;
        if (!a) continue;
        const pq_tensor *b = constant(teacher, fresh->values[v].name);
        cr_assert_not_null(b);
        cr_assert_eq(a->nbytes, b->nbytes);
        cr_assert_eq(memcmp(a->data, b->data, a->nbytes), 0, "teacher '%s' changed",
                     fresh->values[v].name);
        compared++;
    }
    cr_assert_eq(compared, 4);
    /* the trained values moved, and store writes them into the student */
    size_t n = 0;
    for (uint32_t i = 0; i < tg.n_params; i++)
        n += (size_t)pq_tensor_numel(tg.params[i].master);
    float *all = pq_calloc(n, sizeof *all);
    size_t at = 0;
    bool moved = false;
    cr_assert_eq(pq_train_graph_store(&tg, student, &err), PQ_OK, "%s", err.msg);
    for (uint32_t i = 0; i < tg.n_params; i++) {
        const pq_tensor *m = tg.params[i].master, *c = constant(student, tg.params[i].name);
        const pq_tensor *f = constant(fresh, tg.params[i].name);
        cr_assert_eq(memcmp(m->data, c->data, m->nbytes), 0, "store: %s", tg.params[i].name);
        moved |= memcmp(m->data, f->data, m->nbytes) != 0;
        memcpy(all + at, m->data, m->nbytes);
        at += (size_t)pq_tensor_numel(m);
    }
    cr_assert(moved, "training changed nothing");
    *n_out = n;
    pq_train_graph_free(&tg);
    pq_dataset_destroy(ds);
    pq_graph_destroy(teacher);
    pq_graph_destroy(student);
    pq_graph_destroy(fresh);
    return all;
}

Test(train_graph, train_run_keeps_the_teacher_and_is_deterministic) {
    snprintf(dir, sizeof dir, "/tmp/piqc-train-graph-XXXXXX");
    cr_assert(mkdtemp(dir));
    pq_tensor *x = rnd(2, (int64_t[]){12, 20}, 9, 1.5f), *y = ids(12, 10, 5);
    write_npy("x.npy", x);
    write_npy("labels.npy", y);
    pq_train_result r1, r2;
    size_t n1, n2;
    float *a = train_once(&r1, &n1), *b = train_once(&r2, &n2);
    cr_assert_eq(n1, n2);
    cr_assert_eq(memcmp(a, b, n1 * sizeof *a), 0, "two runs with the same seed differ");
    cr_assert_eq(r1.last_loss, r2.last_loss);
    pq_free(a);
    pq_free(b);
    pq_tensor_destroy(x);
    pq_tensor_destroy(y);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* ---- pq_train_config_read ---- */

static pq_pipeline *parse(const char *yaml) {
    pq_pipeline *p = NULL;
    cr_assert_eq(pq_pipeline_parse(yaml, strlen(yaml), "t.yaml", &p, &err), PQ_OK, "%s", err.msg);
    return p;
}

static void config_fails(const char *yaml, const char *needle) {
    pq_pipeline *p = parse(yaml);
    pq_train_config c = pq_train_config_default();
    enum pq_status st = pq_train_config_read(p, &c, &err);
    cr_assert_eq(st, PQ_ERR_INVALID, "want INVALID with '%s': %d (%s)", needle, (int)st, err.msg);
    cr_assert(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg, needle);
    pq_pipeline_destroy(p);
}

Test(train_graph, config_defaults) {
    pq_train_config c = pq_train_config_default();
    cr_assert_eq(c.loss.task, PQ_TASK_CROSS_ENTROPY);
    cr_assert_eq(c.loss.w_task, 1.0);
    cr_assert_eq(c.loss.w_kd, 0.5);
    cr_assert_eq(c.loss.w_feat, 0.2);
    cr_assert_eq(c.loss.temperature, 1.0);
    cr_assert_eq(c.loss.kd_direction, PQ_KD_FORWARD);
    cr_assert_eq(c.n_features, 0);
    cr_assert_eq(c.optim.kind, PQ_OPTIM_ADAMW);
    cr_assert_eq(c.optim.lr, 1e-3);
    cr_assert_eq(c.optim.weight_decay, 0.0);
    cr_assert_eq(c.optim.schedule, PQ_LR_COSINE);
    cr_assert_eq(c.optim.warmup_steps, 0);
    cr_assert_eq(c.epochs, 1);
    cr_assert_eq(c.batch, 16);
    cr_assert_eq(c.max_steps, 0);
    cr_assert_eq(c.seed, 1);
    cr_assert_eq(c.threads, 1);
    cr_assert(!c.merge);
    cr_assert_eq(c.checkpoint_every, 0);
    /* no pipeline, or one without train:, leaves the values alone */
    pq_train_config d = c;
    d.batch = 7;
    cr_assert_eq(pq_train_config_read(NULL, &d, &err), PQ_OK);
    cr_assert_eq(d.batch, 7);
    pq_pipeline *p = parse("passes:\n  - dce\n");
    cr_assert_eq(pq_train_config_read(p, &d, &err), PQ_OK);
    cr_assert_eq(d.batch, 7);
    cr_assert_eq(memcmp(&d.loss, &c.loss, sizeof c.loss), 0);
    pq_pipeline_destroy(p);
}

Test(train_graph, config_every_key) {
    /* the example */
    pq_pipeline *p = parse("passes:\n"
                           "  - fake-quant: {format: piq3, group: 256, calib: mse, ste: lsq}\n"
                           "train:\n"
                           "  loss: {task: 0.0, kd: 1.0, feature: 0.0, temperature: 3}\n"
                           "  optimizer: {name: adamw, lr: 1.0e-4, weight-decay: 0.0}\n"
                           "  schedule: {name: cosine, warmup-steps: 20}\n"
                           "  epochs: 3\n"
                           "  batch: 16\n");
    pq_train_config c = pq_train_config_default();
    cr_assert_eq(pq_train_config_read(p, &c, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(c.loss.w_task, 0.0);
    cr_assert_eq(c.loss.w_kd, 1.0);
    cr_assert_eq(c.loss.w_feat, 0.0);
    cr_assert_eq(c.loss.temperature, 3.0);
    cr_assert_eq(c.optim.kind, PQ_OPTIM_ADAMW);
    cr_assert_eq(c.optim.lr, 1e-4);
    cr_assert_eq(c.optim.weight_decay, 0.0);
    cr_assert_eq(c.optim.schedule, PQ_LR_COSINE);
    cr_assert_eq(c.optim.warmup_steps, 20);
    cr_assert_eq(c.epochs, 3);
    cr_assert_eq(c.batch, 16);
    pq_pipeline_destroy(p);
    /* every other key (block style) */
    p = parse("passes:\n  - dce\n"
              "train:\n"
              "  loss:\n"
              "    task: 2.5\n"
              "    kind: mse\n"
              "    kd: -0.5\n"
              "    kd-direction: reverse\n"
              "    feature: 0.3\n"
              "    features: [a, \"b/c\"]\n"
              "  optimizer:\n"
              "    lr: 0.05\n"
              "    name: sgd\n"
              "    momentum: 0.9\n"
              "    nesterov: true\n"
              "    max-grad-norm: 1.5\n"
              "  schedule: {name: constant}\n"
              "  max-steps: 123\n"
              "  seed: 99\n"
              "  merge: true\n"
              "  checkpoint-every: 10\n");
    c = pq_train_config_default();
    cr_assert_eq(pq_train_config_read(p, &c, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(c.loss.task, PQ_TASK_MSE);
    cr_assert_eq(c.loss.w_task, 2.5);
    cr_assert_eq(c.loss.w_kd, -0.5);
    cr_assert_eq(c.loss.kd_direction, PQ_KD_REVERSE);
    cr_assert_eq(c.loss.w_feat, 0.3);
    cr_assert_eq(c.n_features, 2);
    cr_assert_str_eq(c.features[0], "a");
    cr_assert_str_eq(c.features[1], "b/c");
    cr_assert_eq(c.optim.kind, PQ_OPTIM_SGD);
    cr_assert_eq(c.optim.lr, 0.05, "lr applies after name whatever the key order");
    cr_assert_eq(c.optim.momentum, 0.9);
    cr_assert(c.optim.nesterov);
    cr_assert_eq(c.optim.max_grad_norm, 1.5);
    cr_assert_eq(c.optim.weight_decay, 0.0);
    cr_assert_eq(c.optim.schedule, PQ_LR_CONSTANT);
    cr_assert_eq(c.max_steps, 123);
    cr_assert_eq(c.seed, 99);
    cr_assert(c.merge);
    cr_assert_eq(c.checkpoint_every, 10);
    cr_assert_eq(c.epochs, 1, "untouched keys keep their values");
    cr_assert_eq(c.batch, 16);
    pq_pipeline_destroy(p);
    /* adamw's betas and eps; loss kind none */
    p = parse("passes: [dce]\ntrain:\n  optimizer: {beta1: 0.8, beta2: 0.99, eps: 1.0e-6}\n"
              "  loss: {kind: none}\n");
    c = pq_train_config_default();
    cr_assert_eq(pq_train_config_read(p, &c, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(c.optim.beta1, 0.8);
    cr_assert_eq(c.optim.beta2, 0.99);
    cr_assert_eq(c.optim.eps, 1e-6);
    cr_assert_eq(c.loss.task, PQ_TASK_NONE);
    pq_pipeline_destroy(p);
}

Test(train_graph, config_errors_name_file_line_column_and_key) {
    config_fails("passes: [dce]\ntrain:\n  epochs: 2\n  bogus: 1\n",
                 "t.yaml:4:3: train: 'train' has an unknown key 'bogus'; accepted: loss,");
    config_fails("passes: [dce]\ntrain:\n  loss: {task: 1.0, temprature: 2}\n",
                 "t.yaml:3:21: train: 'loss' has an unknown key 'temprature'");
    config_fails("passes: [dce]\ntrain:\n  optimizer: {name: adam}\n",
                 "t.yaml:3:21: train: 'optimizer.name' must be one of adamw, sgd");
    config_fails("passes: [dce]\ntrain:\n  loss: {kind: hinge}\n",
                 "train: 'loss.kind' must be one of none, cross_entropy, mse");
    config_fails("passes: [dce]\ntrain:\n  loss: {kd-direction: up}\n",
                 "train: 'loss.kd-direction' must be one of forward, reverse");
    config_fails("passes: [dce]\ntrain:\n  schedule: {name: linear}\n",
                 "train: 'schedule.name' must be one of constant, cosine");
    config_fails("passes: [dce]\ntrain:\n  schedule: {warmup: 3}\n",
                 "train: 'schedule' has an unknown key 'warmup'; accepted: name, warmup-steps");
    config_fails("passes: [dce]\ntrain:\n  epochs: 0\n",
                 "t.yaml:3:11: train: 'epochs' = 0 is out of range [1, 1000000]");
    config_fails("passes: [dce]\ntrain:\n  batch: 2.5\n", "train: 'batch' must be an integer");
    config_fails("passes: [dce]\ntrain:\n  batch: \"16\"\n", "train: 'batch' must be an integer");
    config_fails("passes: [dce]\ntrain:\n  optimizer: {lr: fast}\n",
                 "train: 'optimizer.lr' must be a number");
    config_fails("passes: [dce]\ntrain:\n  optimizer: {lr: -1}\n",
                 "train: 'optimizer.lr' = -1 is out of range [0, 1000]");
    config_fails("passes: [dce]\ntrain:\n  optimizer: {lr: .nan}\n",
                 "train: 'optimizer.lr' must be a number");
    config_fails("passes: [dce]\ntrain:\n  loss: {temperature: 0}\n",
                 "train: 'loss.temperature' = 0 is out of range");
    config_fails("passes: [dce]\ntrain:\n  optimizer: {nesterov: yes}\n",
                 "train: 'optimizer.nesterov' must be true or false");
    config_fails("passes: [dce]\ntrain:\n  merge: 1\n", "train: 'merge' must be true or false");
    config_fails("passes: [dce]\ntrain:\n  loss: {features: hidden}\n",
                 "train: 'loss.features' must be a list of value names");
    config_fails("passes: [dce]\ntrain:\n  loss: 3\n", "train: 'loss' must be a mapping");
    config_fails("passes: [dce]\ntrain:\n  seed: -1\n", "train: 'seed' = -1 is out of range");
    config_fails(
        "passes: [dce]\ntrain:\n  loss:\n    features: [a, b, c, d, e, f, g, h, i, j, k, l, "
        "m, n, o, p, q]\n",
        "train: 'loss.features' has more than 16 names");
}
