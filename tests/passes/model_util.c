/* Helpers for the rewrite-pass tests: passes on vs off over every test model (same inputs, outputs
 * within a stated bound) and tiny graphs parsed from text IR. */
#include "model_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "frontends/frontends.h"
#include "pass_test_util.h"
#include "passes/pass.h"
#include "runtime/runtime.h"

const pq_mu_model pq_mu_models[] = {
    {"mlp", "tests/models/mlp/model.onnx", "tests/models/mlp/input_x.npy"},
    {"cnn_bn", "tests/models/cnn_bn/model.onnx", "tests/models/cnn_bn/input_x.npy"},
    {"transformer13", "tests/models/transformer13/model.onnx",
     "tests/models/transformer13/input_tokens.npy"},
    {"transformer17", "tests/models/transformer17/model.onnx",
     "tests/models/transformer17/input_tokens.npy"},
    {"lstm", "tests/models/lstm/model.onnx", "tests/models/lstm/input_x.npy"},
    {"bilstm", "tests/models/bilstm/model.onnx", "tests/models/bilstm/input_x.npy"},
    {"gru", "tests/models/gru/model.onnx", "tests/models/gru/input_x.npy"},
    {"digits", "examples/digits/model.onnx", "examples/digits/test_x.npy"},
};
const uint32_t pq_mu_n_models = sizeof pq_mu_models / sizeof pq_mu_models[0];

const pq_mu_model *pq_mu_model_get(const char *name) {
    for (uint32_t i = 0; i < pq_mu_n_models; i++)
        if (!strcmp(pq_mu_models[i].name, name)) return &pq_mu_models[i];
    cr_assert_fail("no test model %s", name);
    return NULL;
}

/* Max |a - b| and max |b| over equal-shaped outputs. */
static void pq_mu_diff(const pq_tensor *a, const pq_tensor *b, double *diff, double *ref,
                       const char *what) {
    cr_assert_eq(a->dtype, b->dtype, "%s: dtype", what);
    cr_assert_eq(a->rank, b->rank, "%s: rank", what);
    for (int d = 0; d < a->rank; d++)
        cr_assert_eq(a->dims[d], b->dims[d], "%s: dim %d", what, d);
    int64_t n = pq_tensor_numel(a);
    for (int64_t i = 0; i < n; i++) {
        double x = pq_dtype_load(a->dtype, a->data, (size_t)i);
        double y = pq_dtype_load(b->dtype, b->data, (size_t)i);
        cr_assert(isfinite(x) == isfinite(y), "%s: element %lld finite mismatch", what,
                  (long long)i);
        if (!isfinite(y)) continue;
        if (fabs(x - y) > *diff) *diff = fabs(x - y);
        if (fabs(y) > *ref) *ref = fabs(y);
    }
}

void pq_mu_run_pass(pq_graph *g, const char *name) {
    const pq_pass *p = pq_pass_find(name);
    cr_assert_not_null(p, "pass %s is not registered", name);
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    pq_error err;
    pq_error_clear(&err);
    enum pq_status st = pq_test_run_pass(g, p, NULL, &ctx, true, &err);
    pq_pass_ctx_free(&ctx);
    cr_assert_eq(st, PQ_OK, "pass %s: %s", name, err.msg);
    cr_assert_eq(pq_graph_verify(g, &err), PQ_OK, "after %s: %s", name, err.msg);
}

pq_graph *pq_mu_on_off(const pq_mu_model *m, const char *const *passes, uint32_t n,
                       pq_mu_result *r) {
    pq_error err;
    pq_error_clear(&err);
    pq_graph *g = pq_test_load_onnx(m->onnx);
    pq_graph *h = NULL;
    cr_assert_eq(pq_graph_clone(g, &h, &err), PQ_OK, "%s", err.msg);
    memset(r, 0, sizeof *r);
    r->nodes_before = g->n_nodes;
    char list[256] = "";
    for (uint32_t i = 0; i < n; i++) {
        pq_mu_run_pass(h, passes[i]);
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", passes[i]);
    }
    r->nodes_after = h->n_nodes;
    pq_tensor **off = pq_test_run_npy(g, m->input);
    pq_tensor **on = pq_test_run_npy(h, m->input);
    cr_assert_eq(g->n_outputs, h->n_outputs, "%s: outputs", m->name);
    for (uint32_t o = 0; o < g->n_outputs; o++) {
        cr_assert_str_eq(g->values[g->outputs[o]].name, h->values[h->outputs[o]].name,
                         "%s [%s]: output %u renamed", m->name, list, o);
        pq_mu_diff(on[o], off[o], &r->max_diff, &r->max_ref, m->name);
    }
    double bound = PQ_MU_RTOL * fmax(1.0, r->max_ref);
    fprintf(stderr, "on/off %-13s [%s]: max diff %.3g (bound %.3g), nodes %u -> %u\n", m->name,
            list, r->max_diff, bound, r->nodes_before, r->nodes_after);
    cr_assert(r->max_diff <= bound, "%s [%s]: max diff %g > %g", m->name, list, r->max_diff, bound);
    pq_test_free_outputs(off, g->n_outputs);
    pq_test_free_outputs(on, h->n_outputs);
    pq_graph_destroy(g);
    return h;
}

pq_graph *pq_mu_parse(const char *text) {
    pq_error err;
    pq_error_clear(&err);
    pq_graph *g = NULL;
    cr_assert_eq(pq_text_parse(text, strlen(text), NULL, 0, &g, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    return g;
}

double pq_mu_same_function(pq_graph *a, pq_graph *b) {
    pq_error err;
    cr_assert_eq(a->n_inputs, b->n_inputs);
    cr_assert_eq(a->n_outputs, b->n_outputs);
    pq_tensor *ins[8] = {0};
    cr_assert(a->n_inputs <= 8);
    for (uint32_t i = 0; i < a->n_inputs; i++) {
        const pq_value *v = &a->values[a->inputs[i]];
        int64_t dims[PQ_MAX_RANK];
        cr_assert(v->dtype == PQ_DTYPE_F32 && pq_shape_is_static(&v->shape, dims),
                  "input %s: f32 with a static shape expected", v->name);
        ins[i] = pq_tensor_create(PQ_DTYPE_F32, v->shape.rank, dims, &err);
        cr_assert_not_null(ins[i]);
        float *p = ins[i]->data;
        int64_t n = pq_tensor_numel(ins[i]);
        for (int64_t k = 0; k < n; k++) /* covers negatives, both clip edges and zero */
            p[k] = (float)((k * 37 + (int64_t)i * 11) % 65) / 8.0f - 4.0f;
    }
    pq_tensor **x = pq_test_run_inputs(a, (const pq_tensor *const *)ins);
    pq_tensor **y = pq_test_run_inputs(b, (const pq_tensor *const *)ins);
    double diff = 0, ref = 0;
    for (uint32_t o = 0; o < a->n_outputs; o++)
        pq_mu_diff(y[o], x[o], &diff, &ref, a->values[a->outputs[o]].name);
    cr_assert(diff <= PQ_MU_RTOL * fmax(1.0, ref), "max diff %g (max |y| %g)", diff, ref);
    pq_test_free_outputs(x, a->n_outputs);
    pq_test_free_outputs(y, b->n_outputs);
    for (uint32_t i = 0; i < a->n_inputs; i++)
        pq_tensor_destroy(ins[i]);
    return diff;
}

pq_graph *pq_mu_pass_clone(pq_graph *g, const char *name) {
    pq_error err;
    pq_graph *h = NULL;
    cr_assert_eq(pq_graph_clone(g, &h, &err), PQ_OK, "%s", err.msg);
    pq_mu_run_pass(h, name);
    pq_mu_same_function(g, h);
    return h;
}

char *pq_mu_print(const pq_graph *g) {
    pq_error err;
    char *s = NULL;
    cr_assert_eq(pq_text_print_string(g, NULL, &s, &err), PQ_OK, "%s", err.msg);
    return s;
}
