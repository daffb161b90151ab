/* Helpers for pass tests: one pass run with YAML options through the pipeline parser, model
 * loading, graph runs and comparisons, small graph queries and hand-built f32 graphs. */
#include "pass_test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "frontends/frontends.h"
#include "frontends/onnx.h"
#include "frontends/onnx_export.h"
#include "ir/alloc.h"
#include "runtime/runtime.h"

enum pq_status pq_test_run_pass(pq_graph *g, const pq_pass *pass, const char *opts_yaml,
                                pq_pass_ctx *ctx, bool prepare, pq_error *err) {
    char text[2048];
    if (opts_yaml && *opts_yaml)
        snprintf(text, sizeof text, "passes:\n  - %s: %s\n", pass->name, opts_yaml);
    else
        snprintf(text, sizeof text, "passes:\n  - %s\n", pass->name);
    const pq_pass *table[1] = {pass};
    pq_pipeline *p = NULL;
    PQ_TRY(pq_pipeline_parse_with(table, 1, text, strlen(text), "test", &p, err));
    const char *saved = ctx->current_pass;
    ctx->current_pass = pass->name;
    enum pq_status st = pass->run(g, &p->entries[0].opts, ctx, err);
    ctx->current_pass = saved;
    pq_pipeline_destroy(p);
    if (st == PQ_OK && prepare) st = pq_runtime_prepare(g, err);
    return st;
}

pq_graph *pq_test_clone_run_pass(const pq_graph *g, const pq_pass *pass, const char *opts_yaml,
                                 pq_pass_ctx *ctx, const char *what) {
    pq_error err;
    pq_error_clear(&err);
    pq_graph *r = NULL;
    cr_assert_eq(pq_graph_clone(g, &r, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_test_run_pass(r, pass, opts_yaml, ctx, true, &err), PQ_OK, "%s%s%s",
                 what ? what : "", what ? ": " : "", err.msg);
    return r;
}

pq_graph *pq_test_qdq_round_trip(const pq_graph *g) {
    pq_error err;
    uint8_t *buf = NULL;
    size_t len = 0;
    pq_onnx_export_opts o = {.qdq = true};
    cr_assert_eq(pq_onnx_export_buffer(g, &o, &buf, &len, &err), PQ_OK, "%s", err.msg);
    pq_graph *h = NULL;
    cr_assert_eq(pq_onnx_import_buffer(buf, len, NULL, &h, &err), PQ_OK, "%s", err.msg);
    pq_free(buf);
    cr_assert_eq(pq_runtime_prepare(h, &err), PQ_OK, "%s", err.msg);
    return h;
}

pq_graph *pq_test_load_onnx(const char *rel) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", PQ_SOURCE_DIR, rel);
    pq_error err;
    pq_error_clear(&err);
    pq_graph *g = NULL;
    cr_assert_eq(pq_onnx_import_file(path, &g, &err), PQ_OK, "%s: %s", path, err.msg);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s: %s", path, err.msg);
    return g;
}

pq_tensor *pq_test_read_npy(const char *rel) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", PQ_SOURCE_DIR, rel);
    pq_error err;
    pq_tensor *t = NULL;
    cr_assert_eq(pq_npy_read(path, &t, &err), PQ_OK, "%s: %s", path, err.msg);
    return t;
}

pq_tensor **pq_test_run_inputs(pq_graph *g, const pq_tensor *const *ins) {
    pq_error err;
    pq_error_clear(&err);
    pq_session *s = NULL;
    cr_assert_eq(pq_session_create(g, NULL, &s, &err), PQ_OK, "%s", err.msg);
    pq_tensor **outs = pq_calloc(g->n_outputs ? g->n_outputs : 1, sizeof *outs);
    cr_assert(outs);
    cr_assert_eq(pq_session_run(s, ins, g->n_inputs, outs, g->n_outputs, &err), PQ_OK, "%s",
                 err.msg);
    pq_session_destroy(s);
    return outs;
}

pq_tensor **pq_test_run(pq_graph *g, const pq_tensor *in) {
    cr_assert_eq(g->n_inputs, 1u, "pq_test_run: graph has %u inputs", g->n_inputs);
    const pq_tensor *ins[1] = {in};
    return pq_test_run_inputs(g, ins);
}

pq_tensor **pq_test_run_npy(pq_graph *g, const char *rel) {
    pq_tensor *in = pq_test_read_npy(rel);
    pq_tensor **outs = pq_test_run(g, in);
    pq_tensor_destroy(in);
    return outs;
}

void pq_test_free_outputs(pq_tensor **outs, uint32_t n) {
    if (!outs) return;
    for (uint32_t i = 0; i < n; i++)
        pq_tensor_destroy(outs[i]);
    pq_free(outs);
}

uint32_t pq_test_count_op(const pq_graph *g, enum pq_op op) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++)
        n += g->nodes[i].op == op;
    return n;
}

void pq_test_max_diff(pq_tensor *const *a, pq_tensor *const *b, uint32_t n, double *max_diff,
                      double *max_ref) {
    *max_diff = 0;
    *max_ref = 0;
    for (uint32_t o = 0; o < n; o++) {
        cr_assert_eq(pq_tensor_numel(a[o]), pq_tensor_numel(b[o]), "output %u size", o);
        if (a[o]->dtype != PQ_DTYPE_F32) continue;
        const float *x = a[o]->data, *y = b[o]->data;
        for (int64_t i = 0; i < pq_tensor_numel(a[o]); i++) {
            double d = fabs((double)x[i] - (double)y[i]);
            if (!(d <= *max_diff)) *max_diff = d; /* NaN propagates */
            if (fabs(x[i]) > *max_ref) *max_ref = fabs(x[i]);
        }
    }
}

pq_graph *pq_test_graph(void) {
    pq_error err;
    pq_graph *g = pq_graph_create(NULL, &err);
    cr_assert(g, "%s", err.msg);
    cr_assert_eq(pq_graph_add_opset(g, "", 17, &err), PQ_OK, "%s", err.msg);
    return g;
}

uint32_t pq_test_add_input(pq_graph *g, const char *name, int rank, const int64_t *dims) {
    pq_error err;
    pq_shape s;
    memset(&s, 0, sizeof s);
    s.rank = rank;
    for (int d = 0; d < rank; d++)
        s.dims[d].size = dims[d];
    uint32_t v;
    cr_assert_eq(pq_graph_add_value(g, name, PQ_DTYPE_F32, &s, &v, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_graph_add_input(g, v, &err), PQ_OK, "%s", err.msg);
    return v;
}

uint32_t pq_test_add_const(pq_graph *g, const char *name, int rank, const int64_t *dims,
                           pq_test_fill_fn fill) {
    pq_error err;
    int64_t n = 1;
    for (int d = 0; d < rank; d++)
        n *= dims[d];
    float *data = pq_malloc(sizeof(float) * (size_t)(n ? n : 1));
    cr_assert(data);
    for (int64_t i = 0; i < n; i++)
        data[i] = fill(i);
    uint32_t v;
    cr_assert_eq(pq_build_const_f32(g, name, rank, dims, data, &v, &err), PQ_OK, "%s", err.msg);
    pq_free(data);
    return v;
}

pq_tensor *pq_test_tensor(int rank, const int64_t *dims, pq_test_fill_fn fill) {
    pq_error err;
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_F32, rank, dims, &err);
    cr_assert(t, "%s", err.msg);
    float *d = t->data;
    for (int64_t i = 0; i < pq_tensor_numel(t); i++)
        d[i] = fill(i);
    return t;
}
