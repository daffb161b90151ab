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

uint32_t pq_test_count_op(const pq_graph *g, enum pq_op op) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++)
        n += g->nodes[i].op == op;
    return n;
}
