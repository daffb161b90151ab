/* Tests of the TrainLoss / TrainLossGrad reference kernels (backends/ref/ref_loss_op.c) and shape
 * rules (ir/infer_loss.c) against pq_loss_total called directly on the same tensors: CE, MSE, KD
 * forward/reverse with a temperature, feature pairs, the terms output, dtotal scaling, and every
 * shape-rule error. The kernels round pq_loss_total's double results to f32 once, so values and
 * gradients are compared bit for bit (the attributes used are exact in f32). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backends/ref/loss.h"
#include "backends/ref/ref.h"
#include "frontends/npy.h"
#include "ir/ir.h"

static pq_error err;

/* f32 tensor with deterministic values in [-scale, scale). */
static pq_tensor *rnd(int rank, const int64_t *dims, uint32_t seed, float scale) {
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_F32, rank, dims, &err);
    cr_assert_not_null(t, "%s", err.msg);
    uint32_t s = seed * 2654435761u + 17u;
    float *p = t->data;
    for (int64_t i = 0; i < pq_tensor_numel(t); i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = ((float)(s >> 8) / (float)(1u << 24) * 2.0f - 1.0f) * scale;
    }
    return t;
}

/* i64 class ids in [0, c). */
static pq_tensor *ids(int rank, const int64_t *dims, uint32_t seed, int64_t c) {
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_I64, rank, dims, &err);
    cr_assert_not_null(t, "%s", err.msg);
    int64_t *p = t->data;
    for (int64_t i = 0; i < pq_tensor_numel(t); i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (int64_t)((seed >> 8) % (uint32_t)c);
    }
    return t;
}

static pq_tensor *scalar_f32(float v, int rank) {
    int64_t dims[2] = {1, 1};
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_F32, rank, dims, &err);
    cr_assert_not_null(t);
    ((float *)t->data)[0] = v;
    return t;
}

static pq_tensor *fx(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/tests/data/train/%s.npy", PQ_SOURCE_DIR, name);
    pq_tensor *t = NULL;
    cr_assert_eq(pq_npy_read(path, &t, &err), PQ_OK, "%s", err.msg);
    return t;
}

/* ---- one-node graphs ---- */

#define LO_MAX 16

typedef struct lo_node {
    pq_graph *g;
    uint32_t nid;
    uint32_t n_in, n_out;
    pq_tensor *out[LO_MAX];
} lo_node;

/* A TrainLoss / TrainLossGrad node over constants cloned from in[] (NULL: omitted input) with
 * n_out outputs (output k omitted when omit_mask has bit k). */
static lo_node lo_build(enum pq_op op, const pq_tensor *const *in, uint32_t n_in, uint32_t n_out,
                        uint32_t omit_mask) {
    lo_node n;
    memset(&n, 0, sizeof n);
    n.g = pq_graph_create(NULL, &err);
    cr_assert_not_null(n.g);
    n.n_in = n_in;
    n.n_out = n_out;
    uint32_t ins[LO_MAX], outs[LO_MAX];
    for (uint32_t i = 0; i < n_in; i++) {
        ins[i] = PQ_NONE;
        if (!in[i]) continue;
        char name[32];
        snprintf(name, sizeof name, "in%u", i);
        cr_assert_eq(pq_graph_add_value(n.g, name, in[i]->dtype, NULL, &ins[i], &err), PQ_OK);
        pq_tensor *c = pq_tensor_clone(in[i], &err);
        cr_assert_not_null(c);
        cr_assert_eq(pq_graph_set_constant(n.g, ins[i], c, &err), PQ_OK, "%s", err.msg);
    }
    for (uint32_t k = 0; k < n_out; k++) {
        outs[k] = PQ_NONE;
        if (omit_mask & (1u << k)) continue;
        cr_assert_eq(pq_graph_add_value(n.g, NULL, PQ_DTYPE_UNDEFINED, NULL, &outs[k], &err),
                     PQ_OK);
    }
    cr_assert_eq(pq_graph_add_node(n.g, op, "loss_node", ins, n_in, outs, n_out, &n.nid, &err),
                 PQ_OK, "%s", err.msg);
    return n;
}

static void lo_str(lo_node *n, const char *k, const char *v) {
    cr_assert_eq(pq_node_set_string(n->g, n->nid, k, v, &err), PQ_OK);
}
static void lo_float(lo_node *n, const char *k, float v) {
    cr_assert_eq(pq_node_set_float(n->g, n->nid, k, v, &err), PQ_OK);
}

/* Sets the node's attributes from cfg (weights and temperature must be exact in f32). */
static void lo_config(lo_node *n, const pq_loss_config *cfg) {
    lo_str(n, "task",
           cfg->task == PQ_TASK_NONE  ? "none"
           : cfg->task == PQ_TASK_MSE ? "mse"
                                      : "cross_entropy");
    lo_float(n, "w_task", (float)cfg->w_task);
    lo_float(n, "w_kd", (float)cfg->w_kd);
    lo_float(n, "w_feat", (float)cfg->w_feat);
    lo_float(n, "temperature", (float)cfg->temperature);
    lo_str(n, "kd_direction", cfg->kd_direction == PQ_KD_REVERSE ? "reverse" : "forward");
}

/* Infers the node (its status returned; outputs untouched on failure), allocates the present
 * outputs poisoned with 0xFF and runs the reference kernel. */
static enum pq_status lo_run(lo_node *n) {
    PQ_TRY(pq_infer_node(n->g, n->nid, &err));
    const pq_node *node = &n->g->nodes[n->nid];
    pq_tensor *outs[LO_MAX] = {0};
    for (uint32_t k = 0; k < node->n_outputs; k++) {
        if (node->outputs[k] == PQ_NONE) continue;
        const pq_value *v = &n->g->values[node->outputs[k]];
        int64_t dims[PQ_MAX_RANK];
        cr_assert(pq_shape_is_static(&v->shape, dims), "output %u shape", k);
        cr_assert_eq(v->dtype, PQ_DTYPE_F32, "output %u dtype", k);
        outs[k] = pq_tensor_create(PQ_DTYPE_F32, v->shape.rank, dims, &err);
        cr_assert_not_null(outs[k]);
        memset(outs[k]->data, 0xFF, outs[k]->nbytes);
        n->out[k] = outs[k];
    }
    const pq_tensor *in[LO_MAX];
    for (uint32_t i = 0; i < node->n_inputs; i++)
        in[i] = node->inputs[i] == PQ_NONE ? NULL : n->g->values[node->inputs[i]].constant;
    pq_kernel_args a = {n->g, node, in, node->n_inputs, outs, node->n_outputs, NULL, 1, &err};
    return pq_ref_run(&a);
}

static void lo_free(lo_node *n) {
    for (uint32_t k = 0; k < LO_MAX; k++)
        pq_tensor_destroy(n->out[k]);
    pq_graph_destroy(n->g);
}

static void expect_bits(const pq_tensor *got, const pq_tensor *want, float scale,
                        const char *what) {
    cr_assert_eq(got->rank, want->rank, "%s: rank", what);
    for (int d = 0; d < got->rank; d++)
        cr_assert_eq(got->dims[d], want->dims[d], "%s: dim %d", what, d);
    const float *a = got->data, *b = want->data;
    for (int64_t i = 0; i < pq_tensor_numel(got); i++) {
        float w = b[i] * scale;
        cr_assert(memcmp(&a[i], &w, 4) == 0, "%s[%lld]: %.9g, want %.9g", what, (long long)i, a[i],
                  w);
    }
}

/* One case: logits (+ labels, teacher, feature pairs) under cfg. Checks TrainLoss (total and
 * terms) and TrainLossGrad (dtotal = 1 and dtotal = ds) against pq_loss_total. */
typedef struct lo_case {
    const pq_tensor *logits, *labels, *teacher;
    const pq_tensor *fs[4], *ft[4]; /* student, teacher features */
    uint32_t n_feat;
} lo_case;

static void check_case(const lo_case *c, const pq_loss_config *cfg_in, float ds, const char *what) {
    /* the node's attributes are f32: the reference gets the same rounded values (w_feat 0.2) */
    pq_loss_config cfg = *cfg_in;
    cfg.w_task = (double)(float)cfg.w_task;
    cfg.w_kd = (double)(float)cfg.w_kd;
    cfg.w_feat = (double)(float)cfg.w_feat;
    cfg.temperature = (double)(float)cfg.temperature;
    cfg.cos_eps = (double)(float)PQ_LOSS_COS_EPS;
    /* direct */
    pq_tensor *gz = pq_tensor_create(PQ_DTYPE_F32, c->logits->rank, c->logits->dims, &err);
    pq_tensor *gf[4] = {0};
    pq_feature_pair pairs[4];
    for (uint32_t k = 0; k < c->n_feat; k++) {
        gf[k] = pq_tensor_create(PQ_DTYPE_F32, c->fs[k]->rank, c->fs[k]->dims, &err);
        pairs[k] = (pq_feature_pair){"f", c->ft[k], c->fs[k], gf[k]};
    }
    pq_loss_inputs li = {c->logits, cfg.task == PQ_TASK_NONE ? NULL : c->labels, c->teacher, pairs,
                         c->n_feat};
    pq_loss_values v;
    cr_assert_eq(pq_loss_total(&cfg, &li, &v, gz, &err), PQ_OK, "%s: %s", what, err.msg);

    /* TrainLoss(logits, labels?, teacher?, s1, t1, ...) -> (total, terms) */
    const pq_tensor *in[LO_MAX];
    uint32_t n_in = 0;
    in[n_in++] = c->logits;
    in[n_in++] = c->labels;
    in[n_in++] = c->teacher;
    for (uint32_t k = 0; k < c->n_feat; k++) {
        in[n_in++] = c->fs[k];
        in[n_in++] = c->ft[k];
    }
    lo_node f = lo_build(PQ_OP_TRAIN_LOSS, in, n_in, 2, 0);
    lo_config(&f, &cfg);
    cr_assert_eq(lo_run(&f), PQ_OK, "%s: %s", what, err.msg);
    cr_assert_eq(f.out[0]->rank, 0, "%s: total is a scalar", what);
    cr_assert_eq(f.out[1]->rank, 1);
    cr_assert_eq(f.out[1]->dims[0], 3);
    const float *tot = f.out[0]->data, *terms = f.out[1]->data;
    cr_assert_eq(tot[0], (float)v.total, "%s: total %.9g, pq_loss_total %.9g", what, tot[0],
                 v.total);
    cr_assert_eq(terms[0], (float)v.task, "%s: task term %.9g vs %.9g", what, terms[0], v.task);
    cr_assert_eq(terms[1], (float)v.kd, "%s: kd term %.9g vs %.9g", what, terms[1], v.kd);
    cr_assert_eq(terms[2], (float)v.feature, "%s: feature term %.9g vs %.9g", what, terms[2],
                 v.feature);
    lo_free(&f);

    /* the terms output is optional */
    lo_node f1 = lo_build(PQ_OP_TRAIN_LOSS, in, n_in, 1, 0);
    lo_config(&f1, &cfg);
    cr_assert_eq(lo_run(&f1), PQ_OK, "%s: %s", what, err.msg);
    cr_assert_eq(((float *)f1.out[0]->data)[0], (float)v.total, "%s (no terms output)", what);
    lo_free(&f1);

    /* TrainLossGrad(dtotal, same inputs) -> (dlogits, ds_1, ...), dtotal = 1 and ds */
    const float dts[2] = {1.0f, ds};
    for (int r = 0; r < 2; r++) {
        pq_tensor *dt = scalar_f32(dts[r], r); /* rank 0, then [1] */
        const pq_tensor *gin[LO_MAX];
        gin[0] = dt;
        for (uint32_t i = 0; i < n_in; i++)
            gin[1 + i] = in[i];
        lo_node b = lo_build(PQ_OP_TRAIN_LOSS_GRAD, gin, n_in + 1, 1 + c->n_feat, 0);
        lo_config(&b, &cfg);
        cr_assert_eq(lo_run(&b), PQ_OK, "%s: %s", what, err.msg);
        char w2[128];
        snprintf(w2, sizeof w2, "%s: dlogits (dtotal %g)", what, dts[r]);
        expect_bits(b.out[0], gz, dts[r], w2);
        for (uint32_t k = 0; k < c->n_feat; k++) {
            snprintf(w2, sizeof w2, "%s: dfeature %u (dtotal %g)", what, k, dts[r]);
            expect_bits(b.out[1 + k], gf[k], dts[r], w2);
        }
        lo_free(&b);
        pq_tensor_destroy(dt);
    }
    pq_tensor_destroy(gz);
    for (uint32_t k = 0; k < c->n_feat; k++)
        pq_tensor_destroy(gf[k]);
}

TestSuite(train_loss_op, .timeout = 60);

Test(train_loss_op, cross_entropy_only) {
    int64_t d[2] = {6, 5};
    pq_tensor *z = rnd(2, d, 1, 3.0f), *y = ids(1, d, 2, 5);
    lo_case c = {.logits = z, .labels = y};
    pq_loss_config cfg = pq_loss_config_default();
    check_case(&c, &cfg, 2.5f, "ce");
    /* sequence logits [2, 3, 7] with labels [2, 3]: mean over the 6 positions */
    int64_t d3[3] = {2, 3, 7};
    pq_tensor *z3 = rnd(3, d3, 3, 2.0f), *y3 = ids(2, d3, 4, 7);
    lo_case c3 = {.logits = z3, .labels = y3};
    check_case(&c3, &cfg, -0.5f, "ce rank 3");
    /* a rank-1 logits vector takes a rank-0 label */
    pq_tensor *z1 = rnd(1, (int64_t[]){4}, 5, 1.0f), *y0 = ids(0, NULL, 6, 4);
    lo_case c1 = {.logits = z1, .labels = y0};
    check_case(&c1, &cfg, 3.0f, "ce rank 1");
    pq_tensor *ts[] = {z, y, z3, y3, z1, y0};
    for (int i = 0; i < 6; i++)
        pq_tensor_destroy(ts[i]);
}

Test(train_loss_op, mse_task) {
    int64_t d[2] = {4, 3};
    pq_tensor *z = rnd(2, d, 7, 2.0f), *t = rnd(2, d, 8, 2.0f);
    lo_case c = {.logits = z, .labels = t};
    pq_loss_config cfg = pq_loss_config_default();
    cfg.task = PQ_TASK_MSE;
    cfg.w_task = 1.5;
    check_case(&c, &cfg, 0.25f, "mse");
    pq_tensor_destroy(z);
    pq_tensor_destroy(t);
}

Test(train_loss_op, kd_directions_and_temperature) {
    int64_t d[3] = {3, 2, 6};
    pq_tensor *z = rnd(3, d, 9, 4.0f), *zt = rnd(3, d, 10, 4.0f), *y = ids(2, d, 11, 6);
    static const double temps[3] = {1.0, 3.0, 0.5};
    for (int dir = 0; dir < 2; dir++)
        for (int k = 0; k < 3; k++) {
            pq_loss_config cfg = pq_loss_config_default();
            cfg.kd_direction = dir ? PQ_KD_REVERSE : PQ_KD_FORWARD;
            cfg.temperature = temps[k];
            cfg.w_kd = 1.0;
            /* label-free: task none, no labels input at all */
            cfg.task = PQ_TASK_NONE;
            lo_case c = {.logits = z, .teacher = zt};
            char what[64];
            snprintf(what, sizeof what, "kd %s T %g", dir ? "reverse" : "forward", temps[k]);
            check_case(&c, &cfg, 2.0f, what);
            /* and with a task term: weights 0.25 / 0.75 */
            cfg.task = PQ_TASK_CROSS_ENTROPY;
            cfg.w_task = 0.25;
            cfg.w_kd = 0.75;
            lo_case c2 = {.logits = z, .labels = y, .teacher = zt};
            check_case(&c2, &cfg, 1.0f, what);
        }
    /* the temperature matters: T = 3 and T = 1 give different totals */
    const pq_tensor *in[3] = {z, NULL, zt};
    float tot[2];
    for (int k = 0; k < 2; k++) {
        lo_node n = lo_build(PQ_OP_TRAIN_LOSS, in, 3, 1, 0);
        lo_str(&n, "task", "none");
        lo_float(&n, "temperature", k ? 3.0f : 1.0f);
        cr_assert_eq(lo_run(&n), PQ_OK, "%s", err.msg);
        tot[k] = ((float *)n.out[0]->data)[0];
        lo_free(&n);
    }
    cr_assert_neq(tot[0], tot[1]);
    pq_tensor_destroy(z);
    pq_tensor_destroy(zt);
    pq_tensor_destroy(y);
}

Test(train_loss_op, feature_pairs_and_all_terms) {
    int64_t dz[2] = {4, 5}, d0[3] = {4, 3, 8}, d1[2] = {4, 16};
    pq_tensor *z = rnd(2, dz, 12, 2.0f), *zt = rnd(2, dz, 13, 2.0f), *y = ids(1, dz, 14, 5);
    pq_tensor *s0 = rnd(3, d0, 15, 1.0f), *t0 = rnd(3, d0, 16, 1.0f);
    pq_tensor *s1 = rnd(2, d1, 17, 1.0f), *t1 = rnd(2, d1, 18, 1.0f);
    /* feature loss only, no labels and no teacher logits */
    pq_loss_config cfg = pq_loss_config_default();
    cfg.task = PQ_TASK_NONE;
    cfg.w_feat = 1.0;
    lo_case c = {.logits = z, .fs = {s0, s1}, .ft = {t0, t1}, .n_feat = 2};
    check_case(&c, &cfg, 4.0f, "features only");
    /* every term, SPEC default weights, reverse KD at T 2, and a negative weight */
    cfg = pq_loss_config_default();
    cfg.temperature = 2.0;
    cfg.kd_direction = PQ_KD_REVERSE;
    lo_case all = {
        .logits = z, .labels = y, .teacher = zt, .fs = {s0, s1}, .ft = {t0, t1}, .n_feat = 2};
    check_case(&all, &cfg, 0.5f, "all terms");
    cfg.w_feat = -0.75;
    check_case(&all, &cfg, 1.0f, "negative feature weight");
    pq_tensor *ts[] = {z, zt, y, s0, t0, s1, t1};
    for (int i = 0; i < 7; i++)
        pq_tensor_destroy(ts[i]);
}

/* The op on the PyTorch fixtures of tests/runtime/test_loss.c (total_*, SPEC defaults): total and
 * terms within one f32 rounding of torch's float64 values. */
Test(train_loss_op, matches_torch_total_fixture) {
    pq_tensor *z = fx("total_logits"), *zt = fx("total_teacher"), *y = fx("total_labels");
    pq_tensor *t0 = fx("total_t0"), *s0 = fx("total_s0"), *t1 = fx("total_t1"),
              *s1 = fx("total_s1"), *vals = fx("total_values");
    const pq_tensor *in[7] = {z, y, zt, s0, t0, s1, t1};
    lo_node n = lo_build(PQ_OP_TRAIN_LOSS, in, 7, 2, 0);
    cr_assert_eq(lo_run(&n), PQ_OK, "%s", err.msg);
    const double *w = vals->data;
    const float *terms = n.out[1]->data, *tot = n.out[0]->data;
    for (int k = 0; k < 3; k++)
        cr_assert(fabs(terms[k] - w[k]) <= 1.2e-7 * fabs(w[k]), "term %d: %.9g, torch %.9g", k,
                  terms[k], w[k]);
    cr_assert(fabs(tot[0] - w[3]) <= 1.2e-7 * fabs(w[3]), "total %.9g, torch %.9g", tot[0], w[3]);
    lo_free(&n);
    pq_loss_config cfg = pq_loss_config_default();
    lo_case c = {
        .logits = z, .labels = y, .teacher = zt, .fs = {s0, s1}, .ft = {t0, t1}, .n_feat = 2};
    check_case(&c, &cfg, 1.0f, "torch fixture");
    pq_tensor *ts[] = {z, zt, y, t0, s0, t1, s1, vals};
    for (int i = 0; i < 8; i++)
        pq_tensor_destroy(ts[i]);
}

/* dtotal = 0 zeroes every gradient; an omitted feature-gradient output is allowed. */
Test(train_loss_op, grad_zero_dtotal_and_omitted_outputs) {
    int64_t dz[2] = {3, 4}, df[2] = {3, 6};
    pq_tensor *z = rnd(2, dz, 20, 2.0f), *y = ids(1, dz, 21, 4);
    pq_tensor *s = rnd(2, df, 22, 1.0f), *t = rnd(2, df, 23, 1.0f), *dt = scalar_f32(0.0f, 0);
    const pq_tensor *in[6] = {dt, z, y, NULL, s, t};
    lo_node b = lo_build(PQ_OP_TRAIN_LOSS_GRAD, in, 6, 2, 0);
    cr_assert_eq(lo_run(&b), PQ_OK, "%s", err.msg);
    for (int k = 0; k < 2; k++)
        for (int64_t i = 0; i < pq_tensor_numel(b.out[k]); i++)
            cr_assert_eq(fabsf(((float *)b.out[k]->data)[i]), 0.0f, "out %d [%lld]", k,
                         (long long)i);
    lo_free(&b);
    /* the feature gradient omitted: dlogits still correct */
    ((float *)dt->data)[0] = 1.0f;
    lo_node b2 = lo_build(PQ_OP_TRAIN_LOSS_GRAD, in, 6, 2, 2u);
    cr_assert_eq(lo_run(&b2), PQ_OK, "%s", err.msg);
    pq_loss_config cfg = pq_loss_config_default();
    cfg.cos_eps = (double)(float)PQ_LOSS_COS_EPS;
    pq_tensor *gz = pq_tensor_create(PQ_DTYPE_F32, 2, dz, &err), *gf = rnd(2, df, 0, 0.0f);
    pq_feature_pair p = {"f", t, s, gf};
    pq_loss_inputs li = {z, y, NULL, &p, 1};
    pq_loss_values v;
    cr_assert_eq(pq_loss_total(&cfg, &li, &v, gz, &err), PQ_OK, "%s", err.msg);
    expect_bits(b2.out[0], gz, 1.0f, "dlogits with the feature gradient omitted");
    lo_free(&b2);
    pq_tensor *ts[] = {z, y, s, t, dt, gz, gf};
    for (int i = 0; i < 7; i++)
        pq_tensor_destroy(ts[i]);
}

/* ---- shape rules ---- */

/* A node that must fail inference with INVALID and a message containing needle. task NULL: the
 * attribute stays unset (cross_entropy). */
static void bad(enum pq_op op, const pq_tensor *const *in, uint32_t n_in, uint32_t n_out,
                const char *task, const char *attr, float attr_v, const char *needle) {
    lo_node n = lo_build(op, in, n_in, n_out, 0);
    if (task) lo_str(&n, "task", task);
    if (attr) lo_float(&n, attr, attr_v);
    enum pq_status st = pq_infer_node(n.g, n.nid, &err);
    cr_assert_eq(st, PQ_ERR_INVALID, "want INVALID with '%s', got %d (%s)", needle, (int)st,
                 err.msg);
    cr_assert(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg, needle);
    lo_free(&n);
}

#define L PQ_OP_TRAIN_LOSS
#define G PQ_OP_TRAIN_LOSS_GRAD
#define IN(...)                                                                                    \
    ((const pq_tensor *const[]){__VA_ARGS__}),                                                     \
        (sizeof((const pq_tensor *const[]){__VA_ARGS__}) / sizeof(pq_tensor *))

Test(train_loss_op, shape_rule_errors) {
    int64_t dz[2] = {4, 5}, df[2] = {4, 8}, dbad[2] = {5, 4};
    pq_tensor *z = rnd(2, dz, 30, 1.0f), *zt = rnd(2, dz, 31, 1.0f), *y = ids(1, dz, 32, 5);
    pq_tensor *yf = rnd(1, dz, 33, 1.0f);          /* f32 labels [4] */
    pq_tensor *y2 = ids(2, dz, 34, 5);             /* labels [4, 5]: the logits' rank */
    pq_tensor *y5 = ids(1, (int64_t[]){5}, 35, 5); /* labels [5] */
    pq_tensor *zbad = rnd(2, dbad, 36, 1.0f);      /* [5, 4] */
    pq_tensor *s = rnd(2, df, 37, 1.0f), *t = rnd(2, df, 38, 1.0f);
    pq_tensor *t7 = rnd(2, (int64_t[]){4, 7}, 39, 1.0f);
    pq_tensor *y32 = pq_tensor_create(PQ_DTYPE_I32, 1, dz, &err);
    pq_tensor *zi = ids(2, dz, 41, 5);
    pq_tensor *s0 = scalar_f32(1.0f, 0), *dt = scalar_f32(1.0f, 0);
    pq_tensor *dt2 = rnd(1, (int64_t[]){2}, 40, 1.0f);

    /* labels: dtype and shape for cross_entropy */
    bad(L, IN(z, yf), 1, NULL, NULL, 0, "labels must be i64 class ids for cross_entropy, not f32");
    bad(L, IN(z, y32), 1, NULL, NULL, 0, "labels must be i64 class ids for cross_entropy, not i32");
    bad(L, IN(z, y2), 1, NULL, NULL, 0,
        "labels has rank 2, logits without their last axis has rank 1");
    bad(L, IN(z, y5), 1, NULL, NULL, 0, "labels dim 0 is 5");
    /* ... and for mse */
    bad(L, IN(z, y), 1, "mse", NULL, 0, "labels (mse target) must be f32, not i64");
    bad(L, IN(z, zbad), 1, "mse", NULL, 0, "labels dim 0 is 5");
    /* a task without labels */
    bad(L, IN(z), 1, NULL, NULL, 0, "task cross_entropy needs input labels");
    bad(L, IN(z, NULL, zt), 2, "mse", NULL, 0, "task mse needs input labels");
    bad(G, IN(dt, z, NULL, zt), 1, NULL, NULL, 0, "task cross_entropy needs input labels");
    /* logits */
    bad(L, IN(NULL, y), 1, NULL, NULL, 0, "input logits is missing");
    bad(L, IN(s0), 1, "none", NULL, 0, "logits must have rank >= 1");
    bad(L, IN(zi), 1, "none", NULL, 0, "logits must be f32, not i64");
    /* teacher */
    bad(L, IN(z, NULL, zbad), 1, "none", NULL, 0, "teacher dim 0 is 5");
    bad(L, IN(z, NULL, y), 1, "none", NULL, 0, "teacher must be f32, not i64");
    /* feature inputs: pairs, present, same shape, rank >= 1 */
    bad(L, IN(z, y, NULL, s), 1, NULL, NULL, 0,
        "feature inputs come in (student, teacher) pairs; 1 given");
    bad(L, IN(z, y, NULL, s, t, s), 1, NULL, NULL, 0,
        "feature inputs come in (student, teacher) pairs; 3 given");
    bad(G, IN(dt, z, y, NULL, s), 2, NULL, NULL, 0,
        "feature inputs come in (student, teacher) pairs; 1 given");
    bad(L, IN(z, y, NULL, s, NULL), 1, NULL, NULL, 0, "feature pair 0 has an omitted input");
    bad(L, IN(z, y, NULL, s, t, NULL, t), 1, NULL, NULL, 0, "feature pair 1 has an omitted input");
    bad(L, IN(z, y, NULL, s, t7), 1, NULL, NULL, 0, "student feature dim 1 is 8");
    bad(L, IN(z, y, NULL, s0, s0), 1, NULL, NULL, 0, "feature values must have rank >= 1");
    bad(L, IN(z, y, NULL, s, y), 1, NULL, NULL, 0, "a teacher feature must be f32");
    /* attributes */
    bad(L, IN(z, y), 1, "hinge", NULL, 0, "attribute task = 'hinge'");
    lo_node k = lo_build(L, IN(z, y), 1, 0);
    lo_str(&k, "kd_direction", "sideways");
    cr_assert_eq(pq_infer_node(k.g, k.nid, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "attribute kd_direction = 'sideways' (forward or reverse)"), "%s",
              err.msg);
    lo_free(&k);
    bad(L, IN(z, y), 1, NULL, "temperature", 0.0f,
        "attribute temperature must be a finite float > 0");
    bad(L, IN(z, y), 1, NULL, "temperature", -2.0f,
        "attribute temperature must be a finite float > 0");
    bad(L, IN(z, y), 1, NULL, "w_kd", NAN, "attribute w_kd must be a finite float");
    bad(L, IN(z, y), 1, NULL, "w_task", INFINITY, "attribute w_task must be a finite float");
    bad(L, IN(z, y), 1, NULL, "cos_eps", -1e-3f, "attribute cos_eps must be a finite float >= 0");
    /* TrainLossGrad: dtotal and the output count */
    bad(G, IN(NULL, z, y), 1, NULL, NULL, 0, "input dtotal is missing");
    bad(G, IN(dt2, z, y), 1, NULL, NULL, 0, "dtotal must have one element, has 2");
    bad(G, IN(y, z, y), 1, NULL, NULL, 0, "dtotal must be f32, not i64");
    bad(G, IN(dt, z, y, NULL, s, t), 1, NULL, NULL, 0,
        "1 outputs, expected 2 (dlogits and one per student feature)");
    bad(G, IN(dt, z, y), 2, NULL, NULL, 0, "2 outputs, expected 1");
    bad(G, IN(dt, z, yf), 1, NULL, NULL, 0, "labels must be i64");

    pq_tensor *ts[] = {z, zt, y, yf, y2, y5, zbad, s, t, t7, y32, zi, s0, dt, dt2};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        pq_tensor_destroy(ts[i]);
}

/* Values the shape rule cannot see fail in the kernel with pq_loss_total's message, prefixed
 * with the node; nothing is left half-computed that a caller could mistake for a result. */
Test(train_loss_op, kernel_errors_name_the_node) {
    int64_t dz[2] = {4, 5};
    pq_tensor *z = rnd(2, dz, 50, 1.0f), *y = ids(1, dz, 51, 5), *dt = scalar_f32(1.0f, 0);
    ((int64_t *)y->data)[2] = 5;
    lo_node n = lo_build(L, IN(z, y), 1, 0);
    cr_assert_eq(lo_run(&n), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "loss_node") && strstr(err.msg, "labels[2] = 5 is out of range"),
              "%s", err.msg);
    lo_free(&n);
    lo_node b = lo_build(G, IN(dt, z, y), 1, 0);
    cr_assert_eq(lo_run(&b), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "labels[2] = 5 is out of range"), "%s", err.msg);
    lo_free(&b);
    /* label out of range ignored with task none (labels not read) */
    lo_node c = lo_build(L, IN(z, y), 1, 0);
    lo_str(&c, "task", "none");
    cr_assert_eq(lo_run(&c), PQ_OK, "%s", err.msg);
    cr_assert_eq(((float *)c.out[0]->data)[0], 0.0f);
    lo_free(&c);
    pq_tensor_destroy(z);
    pq_tensor_destroy(y);
    pq_tensor_destroy(dt);
}
