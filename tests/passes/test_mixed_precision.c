/* Tests of output drift (runtime/calib_drift, the function behind the CLI provider's drift
 * callback) against a direct computation, and of the mixed-precision pass: budgets never exceeded
 * (including one exactly at a boundary), deterministic plans, INVALID below the minimum, more bits
 * for the more sensitive layer; on examples/digits, tests/models/transformer17 and a built graph.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontends/frontends.h"
#include "model_util.h"
#include "pass_test_util.h"
#include "passes/mixed_plan.h"
#include "passes/passes.h"
#include "runtime/calib_drift.h"
#include "runtime/runtime.h"

extern const pq_pass pq_pass_fake_quant;
extern const pq_pass pq_pass_mixed_precision;

/* A calibration provider like the CLI's: a prepared reference and one input tensor. */
typedef struct tprov {
    pq_graph *ref;
    pq_tensor *x;
    pq_tensor *inputs[1];
    pq_calib_set cs;
    pq_tensor **ro;
    uint32_t nro;
    int64_t rs;
    int calls;
    pq_calib_provider p;
} tprov;

static enum pq_status t_drift(void *vctx, const pq_graph *g, int64_t max_samples, pq_drift *out,
                              pq_error *err) {
    tprov *t = vctx;
    t->calls++;
    return pq_calib_drift(g, t->ref, &t->cs, max_samples, &t->ro, &t->nro, &t->rs, out, err);
}

static void tprov_init(tprov *t, const pq_graph *g, pq_tensor *x) {
    pq_error err;
    memset(t, 0, sizeof *t);
    cr_assert_eq(pq_graph_clone(g, &t->ref, &err), PQ_OK);
    cr_assert_eq(pq_runtime_prepare(t->ref, &err), PQ_OK, "%s", err.msg);
    t->x = x;
    t->inputs[0] = x;
    t->cs.inputs = t->inputs;
    t->cs.n = 1;
    t->cs.samples = x->dims[0];
    t->p.ctx = t;
    t->p.drift = t_drift;
    t->p.samples = (uint64_t)x->dims[0];
}

static void tprov_free(tprov *t) {
    pq_drift_outputs_free(t->ro, t->nro);
    pq_graph_destroy(t->ref);
    pq_tensor_destroy(t->x);
}

/* Transformer calibration tokens: n x 8 in 0..49 (deterministic). */
static pq_tensor *tokens(int64_t n) {
    pq_error err;
    int64_t d[2] = {n, 8};
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_I64, 2, d, &err);
    int64_t *v = t->data;
    uint32_t s = 12345;
    for (int64_t i = 0; i < n * 8; i++) {
        s = s * 1103515245u + 12345u;
        v[i] = (int64_t)((s >> 16) % 50);
    }
    return t;
}

/* The first n samples of x as a new tensor. */
static pq_tensor *head(const pq_tensor *x, int64_t n) {
    pq_error err;
    int64_t d[PQ_MAX_RANK];
    memcpy(d, x->dims, sizeof d);
    d[0] = n;
    pq_tensor *t = pq_tensor_create(x->dtype, x->rank, d, &err);
    memcpy(t->data, x->data, t->nbytes);
    return t;
}

/* Canonical clean-up as the presets run it (digits: BN folded into the convolutions). */
static void canonical(pq_graph *g) {
    static const char *const names[] = {"fold-constants", "canonicalize",    "dce", "cse",
                                        "fold-batchnorm", "fuse-activations"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        pq_mu_run_pass(g, names[i]);
}

/* ---- drift vs a direct computation ---------------------------------------------------------- */

/* cosine / max abs / mean KL(softmax(a) || softmax(b)) over rows of L, in double. */
static void direct(const float *a, const float *b, int64_t n, int64_t L, bool probs, pq_drift *d) {
    double dot = 0, na = 0, nb = 0, mx = 0, kl = 0;
    for (int64_t i = 0; i < n; i++) {
        dot += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
        mx = fmax(mx, fabs((double)a[i] - b[i]));
    }
    for (int64_t r = 0; r < n / L; r++) {
        const float *x = a + r * L, *y = b + r * L;
        double p[64], q[64], sa = 0, sb = 0, ma = -1e300, mb = -1e300;
        for (int64_t j = 0; j < L; j++) {
            ma = fmax(ma, x[j]);
            mb = fmax(mb, y[j]);
        }
        for (int64_t j = 0; j < L; j++) {
            p[j] = probs ? x[j] : exp(x[j] - ma);
            q[j] = probs ? fmax(y[j], 1e-12) : exp(y[j] - mb);
            sa += p[j];
            sb += q[j];
        }
        for (int64_t j = 0; j < L; j++) {
            double pj = probs ? p[j] : p[j] / sa, qj = probs ? q[j] : q[j] / sb;
            if (pj > 0) kl += pj * (log(probs ? fmax(pj, 1e-12) : pj) - log(qj));
        }
    }
    d->cosine = dot / (sqrt(na) * sqrt(nb));
    d->max_abs = mx;
    d->kl = kl / (double)(n / L);
    d->has_kl = true;
}

static void near(double got, double want, double rel, const char *what) {
    cr_assert(fabs(got - want) <= rel * fmax(fabs(want), 1e-300), "%s: got %.17g, want %.17g", what,
              got, want);
}

Test(drift, matches_direct_computation_digits) {
    pq_error err;
    pq_graph *g = pq_test_load_onnx("examples/digits/model.onnx");
    tprov t;
    tprov_init(&t, g, pq_test_read_npy("examples/digits/test_x.npy"));
    /* the reference against itself */
    pq_drift d;
    cr_assert_eq(t.p.drift(t.p.ctx, g, 100, &d, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(d.cosine, 1.0);
    cr_assert_eq(d.max_abs, 0.0);
    cr_assert(d.has_kl && d.kl == 0.0, "kl %g", d.kl);
    cr_assert_eq(t.rs, 100);
    /* the fc layer alone as piq2 */
    pq_graph *q = NULL;
    cr_assert_eq(pq_graph_clone(g, &q, &err), PQ_OK);
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    cr_assert_eq(
        pq_test_run_pass(q, &pq_pass_fake_quant, "{format: piq2, include: fc}", &ctx, true, &err),
        PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_test_count_op(q, PQ_OP_FAKE_QUANT), 1);
    cr_assert_eq(t.p.drift(t.p.ctx, q, 100, &d, &err), PQ_OK, "%s", err.msg);
    pq_tensor *x100 = head(t.x, 100);
    pq_tensor **ra = pq_test_run(g, x100), **rb = pq_test_run(q, x100);
    pq_drift w;
    direct(ra[0]->data, rb[0]->data, pq_tensor_numel(ra[0]), 10, false, &w);
    /* the drift runs the samples in chunks, the direct run as one batch of 100: oneDNN's AVX2
     * kernels give batch-size-dependent f32 roundings (1.5e-10 apart in cosine), its AVX-512 ones
     * happened to give identical outputs */
    near(d.cosine, w.cosine, 1e-8, "cosine");
    near(d.max_abs, w.max_abs, 1e-5, "max abs");
    near(d.kl, w.kl, 1e-5, "kl");
    cr_assert(d.has_kl);
    cr_assert(d.cosine < 1.0 && d.cosine > 0.9 && d.kl > 0, "cos %g kl %g", d.cosine, d.kl);
    /* all samples: the cached reference is recomputed for the new sample count */
    cr_assert_eq(t.p.drift(t.p.ctx, q, 0, &d, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(t.rs, 360);
    pq_test_free_outputs(ra, 1);
    pq_test_free_outputs(rb, 1);
    pq_tensor_destroy(x100);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(q);
    tprov_free(&t);
    pq_graph_destroy(g);
}

/* A graph whose output is Softmax(x W): its values are read as probabilities. */
Test(drift, softmax_output_is_read_as_probabilities) {
    pq_error err;
    pq_graph *g = pq_graph_create(NULL, &err);
    int64_t xd[2] = {6, 32}, wd[2] = {32, 32};
    pq_shape xs = pq_shape_from_dims(2, xd);
    uint32_t x, w, h, y, sm;
    cr_assert_eq(pq_graph_add_value(g, "x", PQ_DTYPE_F32, &xs, &x, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_input(g, x, &err), PQ_OK);
    float wdata[1024];
    for (int i = 0; i < 1024; i++)
        wdata[i] = sinf((float)i * 0.37f) * 0.3f;
    cr_assert_eq(pq_build_const_f32(g, "W", 2, wd, wdata, &w, &err), PQ_OK);
    uint32_t in[2] = {x, w};
    cr_assert_eq(pq_build(g, PQ_OP_MATMUL, "mm", in, 2, &h, NULL, &err), PQ_OK);
    cr_assert_eq(pq_build(g, PQ_OP_SOFTMAX, "sm", &h, 1, &y, &sm, &err), PQ_OK);
    cr_assert_eq(pq_node_set_int(g, sm, "axis", -1, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_output(g, y, &err), PQ_OK);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_drift_output_kind(g, 0), PQ_DRIFT_PROBS);
    pq_tensor *xt = pq_tensor_create(PQ_DTYPE_F32, 2, xd, &err);
    for (int i = 0; i < 6 * 32; i++)
        ((float *)xt->data)[i] = cosf((float)i * 0.91f) * 2.0f;
    tprov t;
    tprov_init(&t, g, xt);
    pq_graph *q = NULL;
    cr_assert_eq(pq_graph_clone(g, &q, &err), PQ_OK);
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    cr_assert_eq(
        pq_test_run_pass(q, &pq_pass_fake_quant, "{format: piq2, group: 8}", &ctx, true, &err),
        PQ_OK, "%s", err.msg);
    pq_drift d, want;
    cr_assert_eq(t.p.drift(t.p.ctx, q, 0, &d, &err), PQ_OK, "%s", err.msg);
    pq_tensor **ra = pq_test_run(g, xt), **rb = pq_test_run(q, xt);
    direct(ra[0]->data, rb[0]->data, 6 * 32, 32, true, &want);
    near(d.cosine, want.cosine, 1e-12, "cosine");
    near(d.max_abs, want.max_abs, 1e-12, "max abs");
    near(d.kl, want.kl, 1e-9, "kl (probabilities)");
    cr_assert_gt(d.kl, 0);
    pq_test_free_outputs(ra, 1);
    pq_test_free_outputs(rb, 1);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(q);
    tprov_free(&t);
    pq_graph_destroy(g);
}

/* ---- the pass -------------------------------------------------------------------------------- */

typedef struct plan_result {
    enum pq_status st;
    char msg[4096];
    uint64_t bits;
    int64_t weights;
    uint32_t n_planned;
    char formats[16][16]; /* per planned layer, graph order */
    char *text;           /* printed graph */
} plan_result;

/* Runs the mixed-precision pass with opts on a copy of g (canonicalized already) and sums the
 * stored bits of the weights it planned (from the quant_format attributes). */
static plan_result run_plan(const pq_graph *g, tprov *t, const char *opts) {
    plan_result r;
    memset(&r, 0, sizeof r);
    pq_error err;
    pq_error_clear(&err);
    pq_graph *c = NULL;
    cr_assert_eq(pq_graph_clone(g, &c, &err), PQ_OK);
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    ctx.calib = t ? &t->p : NULL;
    r.st = pq_test_run_pass(c, &pq_pass_mixed_precision, opts, &ctx, true, &err);
    snprintf(r.msg, sizeof r.msg, "%s", err.msg);
    if (r.st == PQ_OK) {
        pq_weight_view *views = NULL;
        uint32_t nv = 0;
        cr_assert_eq(pq_weights_find(c, 0, &views, &nv, &err), PQ_OK);
        for (uint32_t i = 0; i < c->n_nodes; i++) {
            const char *f = pq_node_attr_string(&c->nodes[i], "quant_format", NULL);
            if (!f) continue;
            pq_weight_view wv;
            cr_assert(pq_select_view(c, i, &wv));
            bool first = true; /* a shared weight counts once */
            for (uint32_t k = 0; k < i; k++)
                if (pq_node_attr_string(&c->nodes[k], "quant_format", NULL) &&
                    pq_node_input(&c->nodes[k], 1) == wv.value) {
                    first = false;
                    cr_assert_str_eq(pq_node_attr_string(&c->nodes[k], "quant_format", ""), f,
                                     "consumers of one weight share its format");
                }
            if (!first) continue;
            int64_t R = wv.batch * wv.rows;
            r.bits += 8 * pq_mp_format_bytes(f, R, wv.cols, 256);
            r.weights += R * wv.cols;
            snprintf(r.formats[r.n_planned++ % 16], 16, "%s", f);
        }
        pq_free(views);
        r.text = pq_mu_print(c);
    }
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(c);
    return r;
}

static pq_graph *digits(tprov *t) {
    pq_graph *g = pq_test_load_onnx("examples/digits/model.onnx");
    canonical(g);
    tprov_init(t, g, pq_test_read_npy("examples/digits/test_x.npy"));
    return g;
}

static pq_graph *transformer(tprov *t) {
    pq_graph *g = pq_test_load_onnx("tests/models/transformer17/model.onnx");
    canonical(g);
    tprov_init(t, g, tokens(32));
    return g;
}

/* Bits of every layer in one format (G = 256). */
static uint64_t all_in(const pq_graph *g, const char *format, int64_t *weights) {
    pq_error err;
    pq_mp_layer *l = NULL;
    uint32_t n = 0;
    pq_pipeline *p = NULL;
    static const char *const names[] = {"mixed-precision"};
    cr_assert_eq(pq_pipeline_from_passes(names, 1, &p, &err), PQ_OK);
    cr_assert_eq(pq_mp_layers(g, &p->entries[0].opts, &l, &n, &err), PQ_OK);
    uint64_t bits = 0;
    *weights = 0;
    for (uint32_t i = 0; i < n; i++) {
        bits += 8 * pq_mp_format_bytes(format, l[i].rows, l[i].cols, 256);
        *weights += l[i].rows * l[i].cols;
    }
    pq_mp_layers_free(l, n);
    pq_pipeline_destroy(p);
    return bits;
}

static void check_budgets(pq_graph *g, tprov *t, const char *model) {
    int64_t w = 0;
    uint64_t piq3 = all_in(g, "piq3", &w), piq2 = all_in(g, "piq2", &w);
    char opts[256];
    /* exactly at a boundary: every layer in piq3 costs exactly this many bits per weight */
    double boundary = (double)piq3 / (double)w;
    const double budgets[] = {(double)piq2 / (double)w + 0.01, 2.5, 3.2, 4.0, 8.5, boundary};
    for (size_t i = 0; i < sizeof budgets / sizeof budgets[0]; i++) {
        snprintf(opts, sizeof opts, "{budget-bpw: %.17g, max-samples: 32}", budgets[i]);
        plan_result r = run_plan(g, t, opts);
        cr_assert_eq(r.st, PQ_OK, "%s %s: %s", model, opts, r.msg);
        cr_assert_eq(r.weights, w, "%s: every selected weight planned", model);
        cr_assert_leq((double)r.bits, budgets[i] * (double)w + 1e-6, "%s %s: %llu bits > budget",
                      model, opts, (unsigned long long)r.bits);
        fprintf(stderr, "mixed-precision %s budget %.4f: %.4f bpw\n", model, budgets[i],
                (double)r.bits / (double)w);
        if (i == sizeof budgets / sizeof budgets[0] - 1) {
            /* piq3 everywhere fits exactly and beats any piq2 mix of the same or fewer bits */
            cr_assert_eq(r.bits, piq3, "%s at the piq3 boundary: %llu bits, want %llu", model,
                         (unsigned long long)r.bits, (unsigned long long)piq3);
            for (uint32_t k = 0; k < r.n_planned && k < 16; k++)
                cr_assert_str_eq(r.formats[k], "piq3");
        }
        free(r.text);
    }
    /* one bit below the piq3 boundary: not everything can be piq3 */
    snprintf(opts, sizeof opts, "{budget-bpw: %.17g, max-samples: 32}",
             ((double)piq3 - 1.0) / (double)w);
    plan_result r = run_plan(g, t, opts);
    cr_assert_eq(r.st, PQ_OK, "%s", r.msg);
    cr_assert_lt(r.bits, piq3);
    free(r.text);
}

Test(mixed_precision, budget_never_exceeded_digits, .timeout = 120) {
    tprov t;
    pq_graph *g = digits(&t);
    check_budgets(g, &t, "digits");
    tprov_free(&t);
    pq_graph_destroy(g);
}

Test(mixed_precision, budget_never_exceeded_transformer17, .timeout = 120) {
    tprov t;
    pq_graph *g = transformer(&t);
    check_budgets(g, &t, "transformer17");
    tprov_free(&t);
    pq_graph_destroy(g);
}

Test(mixed_precision, plan_is_deterministic) {
    tprov t;
    pq_graph *g = transformer(&t);
    plan_result a = run_plan(g, &t, "{budget-bpw: 2.8, max-samples: 16}");
    plan_result b = run_plan(g, &t, "{budget-bpw: 2.8, max-samples: 16}");
    cr_assert_eq(a.st, PQ_OK, "%s", a.msg);
    cr_assert_eq(b.st, PQ_OK, "%s", b.msg);
    cr_assert_str_eq(a.text, b.text, "two runs give the same graph (formats and drifts)");
    cr_assert(strstr(a.text, "quant_format = \""), "the plan is in the graph text");
    cr_assert_eq(a.bits, b.bits);
    free(a.text);
    free(b.text);
    tprov_free(&t);
    pq_graph_destroy(g);
}

Test(mixed_precision, invalid_below_minimum_and_without_data) {
    tprov t;
    pq_graph *g = digits(&t);
    int64_t w = 0;
    uint64_t piq2 = all_in(g, "piq2", &w);
    char want[64];
    snprintf(want, sizeof want, "minimum achievable %.4f bits per weight",
             ceil((double)piq2 / (double)w * 1e4) / 1e4);
    plan_result r = run_plan(g, &t, "{budget-bpw: 2.0}");
    cr_assert_eq(r.st, PQ_ERR_INVALID);
    cr_assert(strstr(r.msg, want), "%s (want '%s')", r.msg, want);
    /* the message's number is itself a valid budget */
    char opts[128];
    snprintf(opts, sizeof opts, "{budget-bpw: %.4f, max-samples: 16}",
             ceil((double)piq2 / (double)w * 1e4) / 1e4);
    plan_result ok = run_plan(g, &t, opts);
    cr_assert_eq(ok.st, PQ_OK, "%s", ok.msg);
    cr_assert_eq(ok.bits, piq2);
    free(ok.text);
    r = run_plan(g, NULL, "{budget-bpw: 3.2}");
    cr_assert_eq(r.st, PQ_ERR_INVALID);
    cr_assert(strstr(r.msg, "mixed-precision needs calibration data (--calib-data)"), "%s", r.msg);
    r = run_plan(g, &t, "{formats: [piq3]}");
    cr_assert_eq(r.st, PQ_ERR_INVALID);
    cr_assert(strstr(r.msg, "budget-bpw"), "%s", r.msg);
    r = run_plan(g, &t, "{budget-bpw: 3.2, group: 12}");
    cr_assert_eq(r.st, PQ_ERR_INVALID);
    cr_assert(strstr(r.msg, "group"), "%s", r.msg);
    tprov_free(&t);
    pq_graph_destroy(g);
}

/* x [16, 64] -> y = 100 * (x W1) + x W2: W1's quantization error reaches the output 100x. */
static pq_graph *two_branch(void) {
    pq_error err;
    pq_graph *g = pq_graph_create(NULL, &err);
    int64_t xd[2] = {16, 64}, wd[2] = {64, 64}, one = 1;
    pq_shape xs = pq_shape_from_dims(2, xd);
    uint32_t x, w1, w2, a, b, s, c, y;
    cr_assert_eq(pq_graph_add_value(g, "x", PQ_DTYPE_F32, &xs, &x, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_input(g, x, &err), PQ_OK);
    float *d = pq_malloc(sizeof(float) * 4096);
    for (int i = 0; i < 4096; i++)
        d[i] = sinf((float)i * 0.37f) * 0.1f;
    cr_assert_eq(pq_build_const_f32(g, "W_quiet", 2, wd, d, &w2, &err), PQ_OK);
    for (int i = 0; i < 4096; i++)
        d[i] = cosf((float)i * 0.53f) * 0.1f;
    cr_assert_eq(pq_build_const_f32(g, "W_loud", 2, wd, d, &w1, &err), PQ_OK);
    pq_free(d);
    float hundred = 100.0f;
    cr_assert_eq(pq_build_const_f32(g, "scale", 1, &one, &hundred, &c, &err), PQ_OK);
    /* the quiet branch first in graph order: a tie-break could not explain the result */
    cr_assert_eq(pq_build(g, PQ_OP_MATMUL, "quiet", (uint32_t[]){x, w2}, 2, &b, NULL, &err), PQ_OK);
    cr_assert_eq(pq_build(g, PQ_OP_MATMUL, "loud", (uint32_t[]){x, w1}, 2, &a, NULL, &err), PQ_OK);
    cr_assert_eq(pq_build(g, PQ_OP_MUL, "amplify", (uint32_t[]){a, c}, 2, &s, NULL, &err), PQ_OK);
    cr_assert_eq(pq_build(g, PQ_OP_ADD, "sum", (uint32_t[]){s, b}, 2, &y, NULL, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_output(g, y, &err), PQ_OK);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    return g;
}

Test(mixed_precision, more_sensitive_layer_gets_more_bits) {
    pq_error err;
    pq_graph *g = two_branch();
    int64_t xd[2] = {16, 64};
    pq_tensor *x = pq_tensor_create(PQ_DTYPE_F32, 2, xd, &err);
    for (int i = 0; i < 16 * 64; i++)
        ((float *)x->data)[i] = sinf((float)i * 1.7f);
    tprov t;
    tprov_init(&t, g, x);
    /* room for one int8 layer and one piq2 layer (5.375 bpw), not two int8 */
    plan_result r = run_plan(g, &t, "{budget-bpw: 5.5, formats: [piq2, int8]}");
    cr_assert_eq(r.st, PQ_OK, "%s", r.msg);
    cr_assert_eq(r.n_planned, 2);
    cr_assert_str_eq(r.formats[0], "piq2", "quiet layer: %s", r.text);
    cr_assert_str_eq(r.formats[1], "int8", "loud layer: %s", r.text);
    cr_assert_leq((double)r.bits, 5.5 * 8192);
    free(r.text);
    /* the probes agree: the loud layer drifts far more, under each metric */
    pq_pipeline *p = NULL;
    static const char *const names[] = {"mixed-precision"};
    cr_assert_eq(pq_pipeline_from_passes(names, 1, &p, &err), PQ_OK);
    pq_mp_layer *l = NULL;
    uint32_t n = 0;
    cr_assert_eq(pq_mp_layers(g, &p->entries[0].opts, &l, &n, &err), PQ_OK);
    cr_assert_eq(n, 2);
    pq_drift dq, dl;
    cr_assert_eq(pq_mp_probe(g, &l[0], NULL, "piq2", 256, &t.p, 0, &dq, &err), PQ_OK, "%s",
                 err.msg);
    cr_assert_eq(pq_mp_probe(g, &l[1], NULL, "piq2", 256, &t.p, 0, &dl, &err), PQ_OK, "%s",
                 err.msg);
    cr_assert_str_eq(l[1].node_name, "loud");
    cr_assert_gt(1 - dl.cosine, 10 * (1 - dq.cosine), "loud %g quiet %g", 1 - dl.cosine,
                 1 - dq.cosine);
    cr_assert_gt(dl.max_abs, 10 * dq.max_abs);
    pq_mp_layers_free(l, n);
    pq_pipeline_destroy(p);
    tprov_free(&t);
    pq_graph_destroy(g);
}

/* The greedy allocation on a table: never over budget, bits add up, INVALID names the minimum. */
Test(mixed_precision, greedy_choice_within_budget) {
    pq_error err;
    enum { L = 5, F = 3 };
    const uint64_t rowbits[F] = {2, 3, 8};
    uint64_t bits[L * F];
    double drift[L * F];
    uint32_t s = 7;
    for (int l = 0; l < L; l++)
        for (int f = 0; f < F; f++) {
            s = s * 1103515245u + 12345u;
            bits[l * F + f] = rowbits[f] * 100 * (uint64_t)(l + 1);
            drift[l * F + f] = (double)((s >> 8) % 1000 + 1) * pow(10, -f) * (l + 1);
        }
    int64_t weights = 100 * (1 + 2 + 3 + 4 + 5);
    for (double budget = 2.0; budget <= 8.0; budget += 0.25) {
        uint32_t choice[L];
        uint64_t used = 0;
        cr_assert_eq(pq_mp_choose(L, F, drift, bits, weights, budget, choice, &used, &err), PQ_OK,
                     "%g: %s", budget, err.msg);
        cr_assert_leq(used, pq_mp_budget_bits(budget, weights));
        uint64_t sum = 0;
        for (int l = 0; l < L; l++)
            sum += bits[l * F + choice[l]];
        cr_assert_eq(sum, used);
    }
    uint32_t choice[L];
    uint64_t used;
    cr_assert_eq(pq_mp_choose(L, F, drift, bits, weights, 1.99, choice, &used, &err),
                 PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "minimum achievable 2.0000"), "%s", err.msg);
}
