/* Helpers for pass tests: one pass run with YAML options through the pipeline parser, model
 * loading, and small graph queries. */
#include "pass_test_util.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "frontends/frontends.h"
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

pq_tensor **pq_test_run(pq_graph *g, const pq_tensor *in) {
    pq_error err;
    pq_error_clear(&err);
    cr_assert_eq(g->n_inputs, 1u, "pq_test_run: graph has %u inputs", g->n_inputs);
    pq_session *s = NULL;
    cr_assert_eq(pq_session_create(g, NULL, &s, &err), PQ_OK, "%s", err.msg);
    pq_tensor **outs = pq_calloc(g->n_outputs ? g->n_outputs : 1, sizeof *outs);
    cr_assert(outs);
    const pq_tensor *ins[1] = {in};
    cr_assert_eq(pq_session_run(s, ins, 1, outs, g->n_outputs, &err), PQ_OK, "%s", err.msg);
    pq_session_destroy(s);
    return outs;
}

pq_tensor **pq_test_run_npy(pq_graph *g, const char *rel) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", PQ_SOURCE_DIR, rel);
    pq_error err;
    pq_tensor *in = NULL;
    cr_assert_eq(pq_npy_read(path, &in, &err), PQ_OK, "%s: %s", path, err.msg);
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
