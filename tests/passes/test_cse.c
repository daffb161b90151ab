/* cse: on vs off on every test model (outputs within 1e-5 * max(1, max|y|)); tiny graphs: duplicate
 * nodes and chains merge, attributes compared deeply (floats by bits), small constants merge, large
 * ones and graph-output names are left alone. */
#include <criterion/criterion.h>
#include <string.h>

#include "model_util.h"
#include "pass_test_util.h"

Test(cse, on_off_every_model) {
    const char *p[] = {"cse"};
    for (uint32_t i = 0; i < pq_mu_n_models; i++) {
        pq_mu_result r;
        pq_graph *g = pq_mu_on_off(&pq_mu_models[i], p, 1, &r);
        cr_assert_leq(r.nodes_after, r.nodes_before, "%s", pq_mu_models[i].name);
        pq_graph_destroy(g);
    }
}

/* The transformers compute Shape of the same value several times. */
Test(cse, transformer13_merges_shape_nodes) {
    const char *p[] = {"cse"};
    pq_mu_result r;
    pq_graph *g = pq_mu_on_off(pq_mu_model_get("transformer13"), p, 1, &r);
    cr_assert_lt(r.nodes_after, r.nodes_before);
    pq_graph_destroy(g);
}

Test(cse, duplicate_chains_merge) {
    pq_graph *g = pq_mu_parse("piqc 1\ngraph t {\n  input %x: f32[2, 3]\n"
                              "  const %k1: f32[] = [2]\n  const %k2: f32[] = [2]\n"
                              "  %a = Mul(%x, %k1)\n  %b = Mul(%x, %k2)\n"
                              "  %c = Relu(%a)\n  %d = Relu(%b)\n"
                              "  %y = Add(%c, %d)\n  output %y\n}\n");
    pq_graph *h = pq_mu_pass_clone(g, "cse");
    cr_assert_eq(h->n_nodes, 3u, "Mul, Relu, Add expected, got %u nodes", h->n_nodes);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}

Test(cse, attributes_compared_deeply) {
    /* same op and input, different attributes (float -0.0 vs 0.0 by bits, ints, strings) */
    pq_graph *g = pq_mu_parse("piqc 1\ngraph t {\n  input %x: f32[2, 3]\n"
                              "  %a = LeakyRelu(%x) {alpha = 0.0}\n"
                              "  %b = LeakyRelu(%x) {alpha = -0.0}\n"
                              "  %c = LeakyRelu(%x) {alpha = 0.0}\n"
                              "  %s1 = Softmax(%x) {axis = 0}\n  %s2 = Softmax(%x) {axis = 1}\n"
                              "  %t1 = Transpose(%x) {perm = [1, 0]}\n"
                              "  %t2 = Transpose(%x) {perm = [1, 0]}\n"
                              "  %u = Add(%a, %b)\n  %v = Add(%u, %c)\n  %w = Add(%s1, %s2)\n"
                              "  %z = Add(%t1, %t2)\n"
                              "  %y = Add(%v, %w)\n  output %y\n  output %z\n}\n");
    pq_graph *h = pq_mu_pass_clone(g, "cse");
    cr_assert_eq(pq_test_count_op(h, PQ_OP_LEAKY_RELU), 2u, "a and c merge, b (-0.0) stays");
    cr_assert_eq(pq_test_count_op(h, PQ_OP_SOFTMAX), 2u);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_TRANSPOSE), 1u);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}

Test(cse, small_constants_merge_large_stay) {
    char text[1 << 16];
    int len = snprintf(text, sizeof text, "piqc 1\ngraph t {\n  input %%x: f32[1100]\n");
    for (int k = 0; k < 2; k++) { /* two identical 4400-byte constants */
        len += snprintf(text + len, sizeof text - (size_t)len, "  const %%big%d: f32[1100] = [", k);
        for (int i = 0; i < 1100; i++)
            len += snprintf(text + len, sizeof text - (size_t)len, "%s%d", i ? ", " : "", i % 7);
        len += snprintf(text + len, sizeof text - (size_t)len, "]\n");
    }
    snprintf(text + len, sizeof text - (size_t)len,
             "  const %%s0: f32[2] = [1, 2]\n  const %%s1: f32[2] = [1, 2]\n"
             "  const %%s2: i64[2] = [1, 2]\n"
             "  %%a = Add(%%x, %%big0)\n  %%b = Add(%%a, %%big1)\n"
             "  %%p = Add(%%s0, %%s1)\n  %%q = Cast(%%s2) {to = \"f32\"}\n"
             "  %%r = Add(%%p, %%q)\n  output %%b\n  output %%r\n  output %%p\n}\n");
    pq_graph *g = pq_mu_parse(text);
    pq_graph *h = NULL;
    pq_error err;
    cr_assert_eq(pq_graph_clone(g, &h, &err), PQ_OK);
    pq_mu_run_pass(h, "cse");
    cr_assert_neq(pq_graph_find_value(h, "big0"), PQ_NONE);
    cr_assert_neq(pq_graph_find_value(h, "big1"), PQ_NONE, "constants above 4 KiB stay apart");
    cr_assert_neq(pq_graph_find_value(h, "s0"), PQ_NONE);
    cr_assert_eq(pq_graph_find_value(h, "s1"), PQ_NONE, "s1 merged into s0");
    cr_assert_neq(pq_graph_find_value(h, "s2"), PQ_NONE, "i64 constant is not the f32 one");
    uint32_t p = pq_graph_find_value(h, "p");
    const pq_node *pn = &h->nodes[h->values[p].producer];
    cr_assert_eq(pn->inputs[0], pn->inputs[1]);
    cr_assert_str_eq(h->values[h->outputs[2]].name, "p");
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}

Test(cse, graph_output_names_survive) {
    pq_graph *g = pq_mu_parse("piqc 1\ngraph t {\n  input %x: f32[2]\n"
                              "  %a = Neg(%x)\n  %b = Neg(%x)\n  %c = Neg(%x)\n"
                              "  %y = Abs(%c)\n"
                              "  output %a\n  output %b\n  output %y\n}\n");
    pq_graph *h = pq_mu_pass_clone(g, "cse");
    cr_assert_str_eq(h->values[h->outputs[0]].name, "a");
    cr_assert_str_eq(h->values[h->outputs[1]].name, "b");
    cr_assert_str_eq(h->values[h->outputs[2]].name, "y");
    cr_assert_eq(pq_test_count_op(h, PQ_OP_NEG), 2u, "c merges into a; a and b both name outputs");
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}
