/* Regression tests for bugs found in the passes: each failed before its fix (the commit that
 * added it says which), and each names the behaviour it protects. */
#include <criterion/criterion.h>
#include <string.h>

#include "ir/ir.h"
#include "pass_test_util.h"
#include "passes/passes.h"

extern const pq_pass pq_pass_hadamard, pq_pass_fake_quant, pq_pass_lower_quant;

/* y = x W with W an initializer that is also a graph input (overridable at run time). */
static const char *winput_pir =
    "piqc 1\n"
    "graph winput {\n"
    "  symbols N\n"
    "  opset \"\" 17\n"
    "  input %x: f32[N, 8]\n"
    "  input %w: f32[8, 2] = [1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1]\n"
    "  %y = MatMul(%x, %w)  # matmul\n"
    "  output %y\n"
    "}\n";

static pq_graph *parse(const char *text) {
    pq_error err;
    pq_graph *g = NULL;
    cr_assert_eq(pq_text_parse(text, strlen(text), NULL, 0, &g, &err), PQ_OK, "%s", err.msg);
    return g;
}

/* A weight that is also a graph input must not be rotated or quantized: a caller who feeds w would
 * otherwise get a result computed with the baked-in constant. */
Test(regressions, graph_input_weight_is_not_rewritten) {
    const pq_pass *passes[] = {&pq_pass_hadamard, &pq_pass_fake_quant};
    for (int k = 0; k < 2; k++) {
        pq_graph *g = parse(winput_pir);
        pq_error err;
        pq_pass_ctx ctx;
        pq_pass_ctx_init(&ctx);
        ctx.verbose = 0;
        cr_assert_eq(pq_test_run_pass(g, passes[k], "{min-elements: 0}", &ctx, true, &err), PQ_OK,
                     "%s", err.msg);
        cr_expect_eq(pq_test_count_op(g, PQ_OP_HADAMARD), 0, "%s rotated an input",
                     passes[k]->name);
        cr_expect_eq(pq_test_count_op(g, PQ_OP_FAKE_QUANT), 0, "%s quantized an input",
                     passes[k]->name);
        uint32_t w = pq_graph_find_value(g, "w");
        const float *d = g->values[w].constant->data;
        cr_expect(d[0] == 1.0f && d[1] == 0.0f && d[15] == 1.0f, "%s changed the initializer",
                  passes[k]->name);
        pq_pass_ctx_free(&ctx);
        pq_graph_destroy(g);
    }
}

/* A bad include/exclude regex is reported when the pipeline is read, with file:line:col, not after
 * the model was imported and earlier passes ran. */
Test(regressions, bad_regex_reported_at_parse_time) {
    const char *text = "passes:\n  - hadamard: {exclude: \"conv[\"}\n";
    pq_pipeline *p = NULL;
    pq_error err;
    pq_error_clear(&err);
    cr_assert_eq(pq_pipeline_parse(text, strlen(text), "bad.yaml", &p, &err), PQ_ERR_INVALID);
    cr_expect(strstr(err.msg, "bad.yaml:2:5:") != NULL, "no position: %s", err.msg);
    cr_expect(strstr(err.msg, "exclude") != NULL, "option not named: %s", err.msg);
    cr_expect_null(p);
}

/* glibc's regcomp copies a quantified subtree per repetition: 118 stacked '+' made it allocate
 * more than 2 GB (found by fuzz_yaml). Such patterns are refused before regcomp; ordinary ones
 * still work. */
Test(regressions, regex_blowup_refused_ordinary_accepted) {
    char plus[160];
    memset(plus, '+', sizeof plus);
    memcpy(plus, "y", 1);
    plus[130] = '\0';
    char text[512];
    snprintf(text, sizeof text, "passes:\n  - hadamard: {include: \"%s\"}\n", plus);
    pq_pipeline *p = NULL;
    pq_error err;
    pq_error_clear(&err);
    cr_assert_eq(pq_pipeline_parse(text, strlen(text), "blowup.yaml", &p, &err), PQ_ERR_INVALID);
    cr_expect(strstr(err.msg, "too complex") != NULL, "%s", err.msg);
    const char *nested = "passes:\n  - hadamard: {exclude: \"((a{100}){100}){100}\"}\n";
    cr_assert_eq(pq_pipeline_parse(nested, strlen(nested), "nested.yaml", &p, &err),
                 PQ_ERR_INVALID);
    /* a '[' inside a bracket list is a member: "[M[]" closes at its first ']' (the scan used to
     * take "[]" for an opening bracket and missed the quantifiers after it; fuzz_yaml, 2 GB) */
    const char *member = "passes:\n  - hadamard: {include: \"8[M[]ak++++++++++++++++++++++++++++++"
                         "++++++++++++++++++++++++++++++++++++uandyzee++++k+\"}\n";
    cr_assert_eq(pq_pipeline_parse(member, strlen(member), "member.yaml", &p, &err),
                 PQ_ERR_INVALID);
    cr_expect(strstr(err.msg, "too complex") != NULL, "%s", err.msg);
    /* autodiff's `wrt` regex goes through the same bound (it called regcomp unchecked) */
    const char *wrt = "passes:\n  - autodiff: {wrt: \"w+++++++++++++++++++++++++++++++++++++++"
                      "+++++++++++++++++++++++++++++++++++++++\"}\n";
    cr_assert_eq(pq_pipeline_parse(wrt, strlen(wrt), "wrt.yaml", &p, &err), PQ_ERR_INVALID);
    cr_expect(strstr(err.msg, "too complex") != NULL && strstr(err.msg, "wrt") != NULL, "%s",
              err.msg);
    const char *ok[] = {"^layer[0-9]+$", "conv.*weight",  "a{2,3}b?", "[]+*?]x+",
                        "fc\\\\.weight", "[[:digit:]]+x", "[M[]a+"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(text, sizeof text, "passes:\n  - hadamard: {include: '%s'}\n", ok[i]);
        cr_assert_eq(pq_pipeline_parse(text, strlen(text), "ok.yaml", &p, &err), PQ_OK, "'%s': %s",
                     ok[i], err.msg);
        pq_pipeline_destroy(p);
        p = NULL;
    }
}
