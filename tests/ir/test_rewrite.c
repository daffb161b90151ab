/* Tests of the rewrite-rule driver (ir/rewrite.h): toy rules (Neg(Neg(x)) -> x, Identity removal)
 * reach a fixpoint, dead nodes go, hit counts, error prefixes and the sweep limit. */
#include <criterion/criterion.h>
#include <string.h>

#include "ir/ir.h"

static pq_graph *parse(const char *text) {
    pq_error err;
    pq_graph *g = NULL;
    cr_assert_eq(pq_text_parse(text, strlen(text), NULL, 0, &g, &err), PQ_OK, "%s", err.msg);
    return g;
}

static bool match_neg_neg(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m) {
    uint32_t inner = pq_match_producer(rc, pq_match_input(rc, nid, 0), PQ_OP_NEG);
    if (inner == PQ_NONE) return false;
    m->node[0] = inner;
    m->value[0] = pq_match_input(rc, inner, 0);
    return m->value[0] != PQ_NONE;
}

static enum pq_status rewrite_to_value0(pq_rewrite_ctx *rc, uint32_t nid, const pq_match *m,
                                        pq_error *err) {
    if (rc->user) (*(int *)rc->user)++;
    return pq_graph_replace_all_uses(rc->g, rc->g->nodes[nid].outputs[0], m->value[0], err);
}

static bool match_identity(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m) {
    m->value[0] = pq_match_input(rc, nid, 0);
    return m->value[0] != PQ_NONE;
}

static const pq_rewrite_rule toy_rules[] = {
    {"neg_neg", PQ_OP_NEG, match_neg_neg, rewrite_to_value0},
    {"identity", PQ_OP_IDENTITY, match_identity, rewrite_to_value0},
};

#define HDR "piqc 1\ngraph g {\n"

Test(rewrite, toy_rules_reach_a_fixpoint) {
    pq_graph *g = parse(HDR "  input %x: f32[2]\n  %a = Neg(%x)  # n1\n  %b = Neg(%a)  # n2\n"
                            "  %c = Identity(%b)  # i1\n  %d = Relu(%c)  # relu\n"
                            "  %e = Neg(%d)  # n3\n  %f = Neg(%e)  # n4\n  %h = Neg(%f)  # n5\n"
                            "  %y = Identity(%h)  # i2\n  output %y\n}\n");
    pq_error err;
    uint32_t applied = 0, hits[2] = {0};
    int calls = 0;
    pq_rewrite_opts opts = {.hits = hits};
    cr_assert_eq(pq_rewrite_run_opts(g, toy_rules, 2, &calls, &opts, &applied, &err), PQ_OK, "%s",
                 err.msg);
    cr_assert_eq(applied, hits[0] + hits[1]);
    cr_assert_eq((int)applied, calls);
    cr_assert_geq(hits[0], 2);
    cr_assert_eq(hits[1], 2);
    cr_assert_eq(pq_graph_verify_structure(g, &err), PQ_OK, "%s", err.msg);
    char *s = NULL;
    cr_assert_eq(pq_text_print_string(g, NULL, &s, &err), PQ_OK);
    cr_assert_str_eq(s, HDR "  input %x: f32[2]\n  %d = Relu(%x)  # relu\n  %y = Neg(%d)  # n5\n"
                            "  output %y\n}\n");
    pq_free(s);
    /* already at the fixpoint: nothing fires */
    cr_assert_eq(pq_rewrite_run(g, toy_rules, 2, NULL, &applied, &err), PQ_OK);
    cr_assert_eq(applied, 0);
    pq_graph_destroy(g);
}

Test(rewrite, identity_on_an_input_and_an_empty_rule_table) {
    pq_graph *g = parse(HDR "  input %x: f32[2]\n  %y = Identity(%x)  # i\n  output %y\n}\n");
    pq_error err;
    uint32_t applied = 0;
    cr_assert_eq(pq_rewrite_run(g, toy_rules, 0, NULL, &applied, &err), PQ_OK);
    cr_assert_eq(applied, 0);
    cr_assert_eq(pq_rewrite_run(g, toy_rules, 2, NULL, &applied, &err), PQ_OK);
    cr_assert_eq(applied, 1);
    cr_assert_eq(g->n_nodes, 0);
    cr_assert_eq(g->n_outputs, 1);
    cr_assert_str_eq(g->values[g->outputs[0]].name, "x");
    pq_graph_destroy(g);
}

/* Replaces every Relu by a fresh copy: never reaches a fixpoint. */
static bool match_any(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m) {
    (void)rc;
    (void)nid;
    (void)m;
    return true;
}

static enum pq_status rewrite_copy(pq_rewrite_ctx *rc, uint32_t nid, const pq_match *m,
                                   pq_error *err) {
    (void)m;
    uint32_t in = rc->g->nodes[nid].inputs[0], v;
    PQ_TRY(pq_build(rc->g, PQ_OP_RELU, "copy", &in, 1, &v, NULL, err));
    return pq_graph_replace_all_uses(rc->g, rc->g->nodes[nid].outputs[0], v, err);
}

static enum pq_status rewrite_fail(pq_rewrite_ctx *rc, uint32_t nid, const pq_match *m,
                                   pq_error *err) {
    (void)rc;
    (void)nid;
    (void)m;
    return pq_error_set(err, PQ_ERR_UNSUPPORTED, "cannot do it");
}

Test(rewrite, a_rule_that_keeps_firing_is_reported) {
    pq_graph *g = parse(HDR "  input %x: f32[2]\n  %y = Relu(%x)  # r\n  output %y\n}\n");
    pq_error err;
    const pq_rewrite_rule rules[] = {{"relu_forever", PQ_OP_RELU, match_any, rewrite_copy}};
    pq_rewrite_opts opts = {.max_sweeps = 5};
    uint32_t applied = 0;
    cr_assert_eq(pq_rewrite_run_opts(g, rules, 1, NULL, &opts, &applied, &err), PQ_ERR_INTERNAL);
    cr_assert(strstr(err.msg, "'relu_forever'") && strstr(err.msg, "5 sweeps"), "%s", err.msg);
    cr_assert_eq(applied, 5);
    cr_assert_eq(g->n_nodes, 1, "dead copies are removed between sweeps");
    pq_graph_destroy(g);
}

Test(rewrite, a_failing_rewrite_names_rule_and_node) {
    pq_graph *g = parse(HDR "  input %x: f32[2]\n  %y = Relu(%x)  # r\n  output %y\n}\n");
    pq_error err;
    const pq_rewrite_rule rules[] = {{"boom", PQ_OP_COUNT, match_any, rewrite_fail}};
    cr_assert_eq(pq_rewrite_run(g, rules, 1, NULL, NULL, &err), PQ_ERR_UNSUPPORTED);
    cr_assert(strstr(err.msg, "rule 'boom' on node 'r' (Relu): cannot do it"), "%s", err.msg);
    pq_graph_destroy(g);
}

Test(rewrite, match_helpers) {
    pq_graph *g = parse(HDR "  input %x: f32[2]\n  %a = Neg(%x)  # n1\n  %b = Add(%a, %a)  # add\n"
                            "  %c = Neg(%b)  # n2\n  output %c\n  output %b\n}\n");
    pq_error err;
    pq_rewrite_ctx rc = {.g = g};
    cr_assert_eq(pq_uses_build(g, &rc.uses, &err), PQ_OK);
    uint32_t x = pq_graph_find_value(g, "x"), a = pq_graph_find_value(g, "a");
    uint32_t b = pq_graph_find_value(g, "b");
    cr_assert(pq_match_single_use(&rc, x));
    cr_assert(!pq_match_single_use(&rc, a));
    cr_assert(!pq_match_single_use(&rc, b));
    cr_assert_eq(pq_match_producer(&rc, a, PQ_OP_NEG), 0);
    cr_assert_eq(pq_match_producer(&rc, a, PQ_OP_RELU), PQ_NONE);
    cr_assert_eq(pq_match_producer(&rc, a, PQ_OP_COUNT), 0);
    cr_assert_eq(pq_match_producer(&rc, x, PQ_OP_COUNT), PQ_NONE);
    cr_assert_eq(pq_match_input(&rc, 1, 1), a);
    cr_assert_eq(pq_match_input(&rc, 1, 2), PQ_NONE);
    cr_assert_eq(pq_match_input(&rc, 99, 0), PQ_NONE);
    pq_uses_free(&rc.uses);
    pq_graph_destroy(g);
}
