/* Graph construction tests: topological sorting (including values captured by subgraphs),
 * cycles, empty graphs, attribute growth, duplicate definitions. */
#include <criterion/criterion.h>
#include <string.h>

#include "ir/ir.h"

Test(graph, toposort_empty_graph) {
    pq_error err;
    pq_graph *g = pq_graph_create(NULL, &err);
    cr_assert_eq(pq_graph_toposort(g, &err), PQ_OK);
    pq_graph_destroy(g);
}

Test(graph, toposort_orders_producers_of_captured_values_first) {
    pq_error err;
    pq_graph *g = pq_graph_create(NULL, &err);
    uint32_t x, c, y, cond, out;
    cr_assert_eq(pq_graph_add_value(g, "x", PQ_DTYPE_F32, NULL, &x, &err), PQ_OK);
    pq_graph_add_input(g, x, &err);
    cr_assert_eq(pq_graph_add_value(g, "cond", PQ_DTYPE_BOOL, NULL, &cond, &err), PQ_OK);
    pq_graph_add_input(g, cond, &err);
    pq_graph_add_value(g, "c", PQ_DTYPE_F32, NULL, &c, &err);
    pq_graph_add_value(g, "out", PQ_DTYPE_F32, NULL, &out, &err);
    /* If node first: its then-branch reads 'c', produced by the Relu added after it */
    uint32_t if_node;
    cr_assert_eq(pq_graph_add_node(g, PQ_OP_IF, "if", &cond, 1, &out, 1, &if_node, &err), PQ_OK);
    pq_graph *then_g = pq_graph_create(g, &err);
    uint32_t cap, t_out;
    cr_assert_eq(pq_graph_capture(then_g, "c", &cap, &err), PQ_OK);
    pq_graph_add_value(then_g, "t", PQ_DTYPE_F32, NULL, &t_out, &err);
    pq_graph_add_node(then_g, PQ_OP_NEG, "neg", &cap, 1, &t_out, 1, NULL, &err);
    pq_graph_add_output(then_g, t_out, &err);
    cr_assert_eq(pq_node_set_graph(g, if_node, "then_branch", then_g, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_node(g, PQ_OP_RELU, "relu", &x, 1, &c, 1, NULL, &err), PQ_OK);
    (void)y;
    cr_assert_eq(pq_graph_toposort(g, &err), PQ_OK, "%s", err.msg);
    cr_assert_str_eq(g->nodes[0].name, "relu");
    cr_assert_str_eq(g->nodes[1].name, "if");
    cr_assert_eq(g->values[c].producer, 0);
    pq_graph_destroy(g);
}

Test(graph, cycle_is_reported_with_a_node_name) {
    pq_error err;
    pq_graph *g = pq_graph_create(NULL, &err);
    uint32_t a, b;
    pq_graph_add_value(g, "a", PQ_DTYPE_F32, NULL, &a, &err);
    pq_graph_add_value(g, "b", PQ_DTYPE_F32, NULL, &b, &err);
    pq_graph_add_node(g, PQ_OP_RELU, "n1", &a, 1, &b, 1, NULL, &err);
    pq_graph_add_node(g, PQ_OP_RELU, "n2", &b, 1, &a, 1, NULL, &err);
    cr_assert_eq(pq_graph_toposort(g, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "cycle") && strstr(err.msg, "'n"), "%s", err.msg);
    pq_graph_destroy(g);
}

Test(graph, many_attributes_and_replacement) {
    pq_error err;
    pq_graph *g = pq_graph_create(NULL, &err);
    uint32_t a, b, n;
    pq_graph_add_value(g, "a", PQ_DTYPE_F32, NULL, &a, &err);
    pq_graph_add_value(g, "b", PQ_DTYPE_F32, NULL, &b, &err);
    pq_graph_add_node(g, PQ_OP_RELU, NULL, &a, 1, &b, 1, &n, &err);
    char name[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof name, "k%d", i);
        cr_assert_eq(pq_node_set_int(g, n, name, i, &err), PQ_OK);
    }
    cr_assert_eq(pq_node_set_int(g, n, "k7", -1, &err), PQ_OK);
    cr_assert_eq(g->nodes[n].n_attrs, 2000);
    cr_assert_eq(pq_node_attr_int(&g->nodes[n], "k7", 0), -1);
    cr_assert_eq(pq_node_attr_int(&g->nodes[n], "k1999", 0), 1999);
    pq_node_remove_attr(g, n, "k0");
    cr_assert_eq(g->nodes[n].n_attrs, 1999);
    cr_assert_eq(pq_node_attr_int(&g->nodes[n], "k0", 42), 42);
    pq_graph_destroy(g);
}

Test(graph, duplicate_definitions_are_invalid) {
    pq_error err;
    pq_graph *g = pq_graph_create(NULL, &err);
    uint32_t a, b;
    cr_assert_eq(pq_graph_add_value(g, "a", PQ_DTYPE_F32, NULL, &a, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_value(g, "a", PQ_DTYPE_F32, NULL, &b, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "'a'"));
    pq_graph_add_value(g, "b", PQ_DTYPE_F32, NULL, &b, &err);
    cr_assert_eq(pq_graph_add_node(g, PQ_OP_RELU, NULL, &a, 1, &b, 1, NULL, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_node(g, PQ_OP_NEG, NULL, &a, 1, &b, 1, NULL, &err), PQ_ERR_INVALID);
    pq_graph_destroy(g);
}
