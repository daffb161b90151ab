/* Tests of graph editing (ir/edit.h, ir/clone.c, ir/build.h): use lists with captures and
 * outputs, input rewiring, replace-all-uses, renaming, deep clone, compaction and removal. */
#include <criterion/criterion.h>
#include <string.h>

#include "ir/ir.h"

#define HDR "piqc 1\ngraph g {\n"

/* x, c inputs; k constant used only by a capture; 'unused' constant; a = Relu(x);
 * b = Add(a, a) (an output); d, e a dead chain; y = If(c) capturing a and k. */
static const char *const GRAPH_TEXT =
    HDR "  input %x: f32[2]\n  input %c: bool[]\n  const %k: f32[2] = [1, 2]\n"
        "  const %unused: f32[] = [3]\n  %a = Relu(%x)  # r\n  %b = Add(%a, %a)  # add\n"
        "  %d = Neg(%b)  # dead1\n  %e = Neg(%d)  # dead2\n"
        "  %y = If(%c) {\n    then_branch = graph t {\n      capture %a: f32[*]\n"
        "      %o = Neg(%a)\n      output %o\n    },\n    else_branch = graph e {\n"
        "      capture %k: f32[2]\n      %o = Neg(%k)\n      output %o\n    }\n  }  # if\n"
        "  output %y\n  output %b\n}\n";

static pq_graph *parse(const char *text) {
    pq_error err;
    pq_graph *g = NULL;
    cr_assert_eq(pq_text_parse(text, strlen(text), NULL, 0, &g, &err), PQ_OK, "%s", err.msg);
    return g;
}

static char *print(const pq_graph *g) {
    pq_error err;
    char *s = NULL;
    cr_assert_eq(pq_text_print_string(g, NULL, &s, &err), PQ_OK, "%s", err.msg);
    return s;
}

static uint32_t val(const pq_graph *g, const char *name) {
    uint32_t v = pq_graph_find_value(g, name);
    cr_assert_neq(v, PQ_NONE, "no value '%s'", name);
    return v;
}

static uint32_t node(const pq_graph *g, const char *name) {
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i].name, name) == 0) return i;
    cr_assert_fail("no node '%s'", name);
    return PQ_NONE;
}

static pq_graph *sub_of(const pq_graph *g, const char *nname, const char *attr) {
    const pq_attr *a = pq_node_attr(&g->nodes[node(g, nname)], attr);
    cr_assert(a && a->type == PQ_ATTR_GRAPH);
    return a->u.graph;
}

static void verify(const pq_graph *g) {
    pq_error err;
    cr_assert_eq(pq_graph_verify_structure(g, &err), PQ_OK, "%s", err.msg);
}

Test(edit, uses_cover_inputs_captures_and_outputs) {
    pq_graph *g = parse(GRAPH_TEXT);
    pq_error err;
    pq_uses u;
    cr_assert_eq(pq_uses_build(g, &u, &err), PQ_OK);
    uint32_t a = val(g, "a"), b = val(g, "b"), k = val(g, "k"), x = val(g, "x");
    cr_assert_eq(u.n_values, g->n_values);
    cr_assert_eq(pq_uses_count(&u, a), 3); /* Add twice, If capture */
    const pq_use *ua = &u.use[u.start[a]];
    cr_assert_eq(ua[0].node, node(g, "add"));
    cr_assert_eq(ua[0].slot, 0);
    cr_assert_eq(ua[1].slot, 1);
    cr_assert_eq(ua[2].node, node(g, "if"));
    cr_assert_eq(ua[2].slot, PQ_NONE);
    cr_assert_eq(pq_uses_count(&u, k), 1);
    cr_assert(pq_uses_single(&u, k));
    cr_assert(pq_uses_single(&u, x));
    cr_assert_eq(u.n_graph_outputs[b], 1);
    cr_assert_eq(pq_uses_count(&u, b), 1);
    cr_assert(!pq_uses_single(&u, b), "an output is never single-use");
    cr_assert_eq(pq_uses_count(&u, val(g, "e")), 0);
    cr_assert(pq_uses_node_dead(g, &u, node(g, "dead2")));
    cr_assert(!pq_uses_node_dead(g, &u, node(g, "dead1")));
    cr_assert(!pq_uses_node_dead(g, &u, node(g, "if")));
    pq_uses_free(&u);
    pq_graph_destroy(g);
}

Test(edit, set_input_and_append_input) {
    pq_graph *g = parse(GRAPH_TEXT);
    pq_error err;
    uint32_t add = node(g, "add"), x = val(g, "x"), k = val(g, "k");
    cr_assert_eq(pq_graph_set_input(g, add, 1, x, &err), PQ_OK);
    cr_assert_eq(g->nodes[add].inputs[1], x);
    cr_assert_eq(pq_graph_set_input(g, add, 2, x, &err), PQ_ERR_INTERNAL);
    cr_assert(strstr(err.msg, "'add'"), "%s", err.msg);
    cr_assert_eq(pq_graph_set_input(g, add, 0, 999, &err), PQ_ERR_INTERNAL);
    cr_assert_eq(pq_graph_set_input(g, 999, 0, x, &err), PQ_ERR_INTERNAL);
    uint32_t r = node(g, "r");
    cr_assert_eq(pq_graph_append_input(g, r, k, &err), PQ_OK);
    cr_assert_eq(g->nodes[r].n_inputs, 2);
    cr_assert_eq(g->nodes[r].inputs[0], x);
    cr_assert_eq(g->nodes[r].inputs[1], k);
    cr_assert_eq(pq_graph_append_input(g, r, PQ_NONE, &err), PQ_OK);
    cr_assert_eq(g->nodes[r].inputs[2], PQ_NONE);
    cr_assert_eq(pq_graph_set_input(g, r, 2, PQ_NONE, &err), PQ_OK);
    pq_graph_destroy(g);
}

Test(edit, replace_all_uses_on_an_output_moves_its_name) {
    pq_graph *g = parse(HDR "  input %x: f32[2]\n  %a = Relu(%x)  # r\n  %b = Neg(%a)  # n\n"
                            "  output %b\n}\n");
    pq_error err;
    uint32_t a = val(g, "a"), b = val(g, "b"), nv, nn;
    cr_assert_eq(pq_build(g, PQ_OP_ABS, "abs", &a, 1, &nv, &nn, &err), PQ_OK);
    cr_assert_str_eq(g->values[nv].name, "abs");
    cr_assert_eq(pq_graph_replace_all_uses(g, b, nv, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(g->outputs[0], nv);
    cr_assert_str_eq(g->values[nv].name, "b");
    cr_assert(g->values[nv].flags & PQ_VALUE_OUTPUT);
    cr_assert(!(g->values[b].flags & PQ_VALUE_OUTPUT));
    cr_assert_str_eq(g->values[b].name, "b_1");
    cr_assert_eq(pq_graph_find_value(g, "b"), nv);
    cr_assert_eq(pq_graph_find_value(g, "b_1"), b);
    cr_assert_eq(pq_graph_find_value(g, "abs"), PQ_NONE);
    uint32_t removed;
    cr_assert_eq(pq_graph_remove_dead(g, &removed, &err), PQ_OK);
    cr_assert_eq(removed, 1);
    verify(g);
    char *s = print(g);
    cr_assert_str_eq(s, HDR "  input %x: f32[2]\n  %a = Relu(%x)  # r\n  %b = Abs(%a)  # abs\n"
                            "  output %b\n}\n");
    pq_free(s);
    pq_graph_destroy(g);
}

Test(edit, replace_all_uses_with_a_graph_input_keeps_the_input_name) {
    pq_graph *g = parse(HDR "  input %x: f32[2]\n  %y = Identity(%x)  # id\n  output %y\n}\n");
    pq_error err;
    uint32_t x = val(g, "x"), y = val(g, "y");
    cr_assert_eq(pq_graph_replace_all_uses(g, y, x, &err), PQ_OK);
    cr_assert_eq(g->outputs[0], x);
    cr_assert_str_eq(g->values[x].name, "x");
    cr_assert(g->values[x].flags & PQ_VALUE_INPUT);
    cr_assert(g->values[x].flags & PQ_VALUE_OUTPUT);
    cr_assert_eq(pq_graph_replace_all_uses(g, x, x, &err), PQ_OK);
    cr_assert_eq(pq_graph_replace_all_uses(g, x, 99, &err), PQ_ERR_INTERNAL);
    pq_graph_destroy(g);
}

Test(edit, replace_all_uses_redirects_and_merges_captures) {
    pq_graph *g = parse(GRAPH_TEXT);
    pq_error err;
    uint32_t a = val(g, "a"), k = val(g, "k");
    pq_graph *t = sub_of(g, "if", "then_branch"), *e = sub_of(g, "if", "else_branch");
    /* then-branch captured a; now it reads k and is renamed like it */
    cr_assert_eq(pq_graph_replace_all_uses(g, a, k, &err), PQ_OK, "%s", err.msg);
    uint32_t tk = val(t, "k");
    cr_assert_eq(t->values[tk].outer, k);
    cr_assert_eq(pq_graph_find_value(t, "a"), PQ_NONE);
    cr_assert_eq(g->nodes[node(g, "add")].inputs[0], k);
    verify(g);
    /* a subgraph capturing both k and x: replacing k by x merges the two captures */
    uint32_t ex;
    cr_assert_eq(pq_graph_capture(e, "x", &ex, &err), PQ_OK);
    uint32_t eo, nn;
    cr_assert_eq(pq_build(e, PQ_OP_NEG, "n2", &ex, 1, &eo, &nn, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_output(e, eo, &err), PQ_OK);
    uint32_t n_before = e->n_values;
    uint32_t x = val(g, "x");
    cr_assert_eq(pq_graph_replace_all_uses(g, k, x, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(e->n_values, n_before - 1, "the duplicate capture is compacted away");
    uint32_t ecap = val(e, "x");
    cr_assert_eq(e->values[ecap].outer, x);
    for (uint32_t i = 0; i < e->n_nodes; i++)
        cr_assert_eq(e->nodes[i].inputs[0], ecap);
    cr_assert_eq(t->values[val(t, "x")].outer, x);
    verify(g);
    pq_graph_destroy(g);
}

Test(edit, rename_value_keeps_names_and_captures_consistent) {
    pq_graph *g = parse(GRAPH_TEXT);
    pq_error err;
    uint32_t a = val(g, "a");
    cr_assert_eq(pq_graph_rename_value(g, a, "alpha", &err), PQ_OK);
    cr_assert_str_eq(g->values[a].name, "alpha");
    cr_assert_eq(pq_graph_find_value(g, "alpha"), a);
    cr_assert_eq(pq_graph_find_value(g, "a"), PQ_NONE);
    pq_graph *t = sub_of(g, "if", "then_branch");
    cr_assert_neq(pq_graph_find_value(t, "alpha"), PQ_NONE);
    verify(g);
    cr_assert_eq(pq_graph_rename_value(g, a, "b", &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "'b'"), "%s", err.msg);
    /* the then-branch has a local 'o': renaming a captured value to it must fail cleanly */
    cr_assert_eq(pq_graph_rename_value(g, a, "o", &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "subgraph"), "%s", err.msg);
    cr_assert_str_eq(g->values[a].name, "alpha");
    cr_assert_eq(pq_graph_rename_value(g, a, NULL, &err), PQ_OK);
    cr_assert_eq(g->values[a].name[0], '_');
    verify(g);
    pq_graph_destroy(g);
}

Test(edit, fresh_names_and_constants) {
    pq_graph *g = parse(GRAPH_TEXT);
    pq_error err;
    uint32_t t1, t2, c;
    cr_assert_eq(pq_graph_add_temp(g, "t", &t1, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_temp(g, "t", &t2, &err), PQ_OK);
    cr_assert_str_eq(g->values[t1].name, "t");
    cr_assert_str_eq(g->values[t2].name, "t_1");
    cr_assert_eq(g->values[t2].dtype, PQ_DTYPE_UNDEFINED);
    cr_assert_eq(g->values[t2].shape.rank, -1);
    pq_tensor *tk = pq_tensor_create(PQ_DTYPE_F32, 1, (int64_t[]){3}, &err);
    cr_assert_eq(pq_graph_add_constant(g, "k", tk, &c, &err), PQ_OK);
    cr_assert_str_eq(g->values[c].name, "k_1");
    cr_assert_eq(g->values[c].constant, tk);
    cr_assert_eq(g->values[c].shape.rank, 1);
    cr_assert_str_eq(pq_graph_fresh_node_name(g, "add"), "add_1");
    cr_assert_str_eq(pq_graph_fresh_node_name(g, "mul"), "mul");
    uint32_t x = val(g, "x"), v1, v2, n1, n2;
    cr_assert_eq(pq_build(g, PQ_OP_RELU, "r", &x, 1, &v1, &n1, &err), PQ_OK);
    cr_assert_eq(pq_build(g, PQ_OP_RELU, "r", &x, 1, &v2, &n2, &err), PQ_OK);
    cr_assert_str_eq(g->nodes[n1].name, "r_1");
    cr_assert_str_eq(g->nodes[n2].name, "r_2");
    cr_assert_str_eq(g->values[v2].name, "r_1");
    cr_assert_eq(g->values[v2].producer, n2);
    cr_assert_eq(pq_build(g, PQ_OP_RELU, NULL, &x, 1, &v1, &n1, &err), PQ_OK);
    cr_assert_str_eq(g->nodes[n1].name, "Relu");
    cr_assert_eq(pq_build(g, PQ_OP_RELU, "bad", (uint32_t[]){777}, 1, NULL, NULL, &err),
                 PQ_ERR_INTERNAL);
    pq_graph_destroy(g);
}

Test(edit, build_constants_and_scalar_queries) {
    pq_error err;
    pq_graph *g = pq_graph_create(NULL, &err);
    uint32_t f, i, m, z;
    cr_assert_eq(pq_build_const_f32(g, "s", 0, NULL, (float[]){2.5f}, &f, &err), PQ_OK);
    cr_assert_eq(pq_build_const_i64(g, "s", 1, (int64_t[]){1}, (int64_t[]){-7}, &i, &err), PQ_OK);
    cr_assert_eq(pq_build_const_f32(g, NULL, 2, (int64_t[]){2, 2}, (float[]){1, 2, 3, 4}, &m, &err),
                 PQ_OK);
    cr_assert_eq(pq_build_const_f32(g, "z", 1, (int64_t[]){3}, NULL, &z, &err), PQ_OK);
    cr_assert_str_eq(g->values[i].name, "s_1");
    cr_assert_str_eq(g->values[m].name, "const");
    float out = 0;
    cr_assert(pq_value_const_scalar_f32(g, f, &out));
    cr_assert_float_eq(out, 2.5f, 0);
    cr_assert(pq_value_const_scalar_f32(g, i, &out));
    cr_assert_float_eq(out, -7.0f, 0);
    cr_assert(!pq_value_const_scalar_f32(g, m, &out));
    cr_assert(!pq_value_const_scalar_f32(g, 1234, &out));
    cr_assert_float_eq(((float *)g->values[m].constant->data)[3], 4.0f, 0);
    cr_assert_float_eq(((float *)g->values[z].constant->data)[2], 0.0f, 0);
    cr_assert_eq(pq_build_const_f32(g, "bad", 1, (int64_t[]){-1}, NULL, &z, &err), PQ_ERR_INVALID);
    uint32_t v, n;
    cr_assert_eq(pq_build(g, PQ_OP_ADD, "sum", (uint32_t[]){f, m}, 2, &v, &n, &err), PQ_OK);
    cr_assert_eq(pq_value_producer(g, v), n);
    cr_assert_eq(pq_value_producer(g, f), PQ_NONE);
    cr_assert_eq(pq_value_producer(g, 999), PQ_NONE);
    cr_assert_eq(pq_infer_node(g, n, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(g->values[v].shape.rank, 2);
    pq_graph_destroy(g);
}

Test(edit, clone_is_deep) {
    pq_graph *g = parse(GRAPH_TEXT);
    pq_error err;
    pq_node_set_ints(g, node(g, "r"), "ints", (int64_t[]){1, 2}, 2, &err);
    pq_node_set_tensor(g, node(g, "r"), "t",
                       pq_tensor_create(PQ_DTYPE_I64, 1, (int64_t[]){2}, &err), &err);
    pq_graph_add_opset(g, "", 17, &err);
    pq_shape sh = pq_shape_unknown();
    sh.rank = 1;
    sh.dims[0].size = -1;
    sh.dims[0].sym = pq_graph_intern_symbol(g, "N");
    uint32_t sv;
    cr_assert_eq(pq_graph_add_value(g, "sym", PQ_DTYPE_F32, &sh, &sv, &err), PQ_OK);
    pq_graph_add_input(g, sv, &err);
    char *before = print(g);
    pq_graph *c = NULL;
    cr_assert_eq(pq_graph_clone(g, &c, &err), PQ_OK, "%s", err.msg);
    char *cs = print(c);
    cr_assert_str_eq(cs, before);
    cr_assert_eq(c->n_values, g->n_values);
    cr_assert_eq(c->n_nodes, g->n_nodes);
    for (uint32_t v = 0; v < g->n_values; v++) {
        cr_assert_str_eq(c->values[v].name, g->values[v].name);
        cr_assert_eq(c->values[v].producer, g->values[v].producer);
        cr_assert_eq(c->values[v].flags, g->values[v].flags);
    }
    cr_assert_eq(pq_graph_opset(c, ""), 17);
    cr_assert_str_eq(pq_graph_symbol_name(c, c->values[sv].shape.dims[0].sym), "N");
    pq_graph *ct = sub_of(c, "if", "then_branch");
    cr_assert_eq(ct->parent, c);
    cr_assert_neq(ct, sub_of(g, "if", "then_branch"));
    verify(c);
    /* mutate the clone everywhere: the original does not change */
    uint32_t k = val(c, "k");
    cr_assert_neq(c->values[k].constant, g->values[k].constant);
    ((float *)c->values[k].constant->data)[0] = 42.0f;
    pq_node_set_int(c, node(c, "r"), "extra", 1, &err);
    cr_assert_eq(pq_graph_rename_value(c, val(c, "a"), "renamed", &err), PQ_OK);
    ct->nodes[0].op = PQ_OP_ABS;
    uint32_t removed;
    cr_assert_eq(pq_graph_remove_dead(c, &removed, &err), PQ_OK);
    cr_assert_eq(removed, 2);
    char *after = print(g);
    cr_assert_str_eq(after, before);
    char *cs2 = print(c);
    cr_assert_str_neq(cs2, before);
    pq_free(before);
    pq_free(after);
    pq_free(cs);
    pq_free(cs2);
    pq_graph_destroy(c);
    pq_graph_destroy(g);
}

Test(edit, clone_of_an_empty_graph) {
    pq_error err;
    pq_graph *g = pq_graph_create(NULL, &err), *c = NULL;
    cr_assert_eq(pq_graph_clone(g, &c, &err), PQ_OK);
    cr_assert_eq(c->n_values, 0);
    pq_graph_destroy(c);
    pq_graph_destroy(g);
}

Test(edit, clone_fails_cleanly_when_memory_runs_out) {
    pq_graph *g = parse(GRAPH_TEXT);
    pq_error err;
    char *ref = print(g);
    bool ok = false;
    for (long n = 0; n < 400 && !ok; n++) {
        pq_graph *c = NULL;
        pq_alloc_fail_after(n);
        enum pq_status st = pq_graph_clone(g, &c, &err);
        pq_alloc_fail_after(-1);
        if (st == PQ_OK) {
            char *s = print(c);
            cr_assert_str_eq(s, ref);
            pq_free(s);
            ok = true;
        } else {
            cr_assert_eq(st, PQ_ERR_NOMEM, "%s", err.msg);
            cr_assert_null(c);
        }
        pq_graph_destroy(c);
    }
    cr_assert(ok);
    pq_free(ref);
    pq_graph_destroy(g);
}

Test(edit, compact_renumbers_densely) {
    pq_graph *g = parse(GRAPH_TEXT);
    pq_error err;
    uint32_t t1, t2;
    pq_graph_add_temp(g, "orphan", &t1, &err);
    pq_graph_add_temp(g, "orphan", &t2, &err);
    uint32_t old_n = g->n_values, unused = val(g, "unused"), y = val(g, "y");
    char *before = print(g);
    uint32_t *map = NULL;
    cr_assert_eq(pq_graph_compact(g, &map, &err), PQ_OK);
    cr_assert_eq(g->n_values, old_n - 3);
    cr_assert_eq(map[unused], PQ_NONE);
    cr_assert_eq(map[t1], PQ_NONE);
    cr_assert_eq(map[t2], PQ_NONE);
    cr_assert_eq(map[y], y - 1);
    cr_assert_eq(pq_graph_find_value(g, "unused"), PQ_NONE);
    cr_assert_eq(pq_graph_find_value(g, "y"), y - 1);
    cr_assert_eq(g->outputs[0], y - 1);
    for (uint32_t v = 0; v < g->n_values; v++)
        cr_assert_eq(pq_graph_find_value(g, g->values[v].name), v);
    /* captures follow the renumbering */
    pq_graph *e = sub_of(g, "if", "else_branch");
    cr_assert_eq(e->values[val(e, "k")].outer, val(g, "k"));
    verify(g);
    /* the text is the same apart from the dropped constant */
    const char *drop = "  const %unused: f32[] = [3]\n";
    char *p = strstr(before, drop);
    cr_assert_not_null(p);
    memmove(p, p + strlen(drop), strlen(p + strlen(drop)) + 1);
    char *after = print(g);
    cr_assert_str_eq(after, before);
    pq_free(map);
    pq_free(before);
    pq_free(after);
    pq_graph_destroy(g);
}

Test(edit, remove_dead_is_transitive) {
    pq_graph *g = parse(GRAPH_TEXT);
    pq_error err;
    uint32_t removed = 0;
    cr_assert_eq(pq_graph_remove_dead(g, &removed, &err), PQ_OK);
    cr_assert_eq(removed, 2);
    cr_assert_eq(g->n_nodes, 3);
    cr_assert_eq(pq_graph_find_value(g, "d"), PQ_NONE);
    cr_assert_eq(pq_graph_find_value(g, "e"), PQ_NONE);
    verify(g);
    cr_assert_eq(pq_graph_remove_dead(g, &removed, &err), PQ_OK);
    cr_assert_eq(removed, 0);
    /* a whole chain feeding nothing goes, including captured inputs' producers */
    pq_graph *h =
        parse(HDR "  input %x: f32[2]\n  input %c: bool[]\n  %a = Relu(%x)\n"
                  "  %y = If(%c) {\n    then_branch = graph t {\n      capture %a: f32[*]\n"
                  "      %o = Neg(%a)\n      output %o\n    }\n  }  # if\n  %z = Neg(%x)\n"
                  "  output %z\n}\n");
    cr_assert_eq(pq_graph_remove_dead(h, &removed, &err), PQ_OK);
    cr_assert_eq(removed, 2);
    cr_assert_eq(h->n_nodes, 1);
    verify(h);
    pq_graph_destroy(h);
    pq_graph_destroy(g);
}

/* Regression: pq_graph_remove_nodes dropped nodes but kept the values only they defined. */
Test(edit, remove_nodes_drops_unreferenced_values) {
    pq_graph *g = parse(GRAPH_TEXT);
    pq_error err;
    bool dead[16] = {0};
    dead[node(g, "dead2")] = true;
    uint32_t n_before = g->n_values, y = val(g, "y");
    cr_assert_eq(pq_graph_remove_nodes(g, dead, &err), PQ_OK);
    cr_assert_eq(pq_graph_find_value(g, "e"), PQ_NONE);
    cr_assert_eq(pq_graph_find_value(g, "unused"), PQ_NONE);
    cr_assert_eq(g->n_values, n_before - 2);
    cr_assert_eq(pq_graph_find_value(g, "y"), y - 2);
    cr_assert_eq(g->nodes[node(g, "if")].outputs[0], y - 2);
    verify(g);
    pq_graph_destroy(g);
}
