/* fold-constants: on vs off on every test model (outputs within 1e-5 * max(1, max|y|)), shape
 * chains of the transformers folded, and tiny graphs for what folds and what must not. */
#include <criterion/criterion.h>
#include <string.h>

#include "model_util.h"
#include "pass_test_util.h"
#include "passes/pass.h"

Test(fold_constants, on_off_every_model) {
    const char *passes[] = {"fold-constants"};
    for (uint32_t i = 0; i < pq_mu_n_models; i++) {
        pq_mu_result r;
        pq_graph *g = pq_mu_on_off(&pq_mu_models[i], passes, 1, &r);
        cr_assert_leq(r.nodes_after, r.nodes_before, "%s", pq_mu_models[i].name);
        pq_graph_destroy(g);
    }
}

Test(fold_constants, transformer17_shape_chains_fold) {
    pq_graph *g = pq_test_load_onnx("tests/models/transformer17/model.onnx");
    uint32_t shape0 = pq_test_count_op(g, PQ_OP_SHAPE), gather0 = pq_test_count_op(g, PQ_OP_GATHER),
             unsq0 = pq_test_count_op(g, PQ_OP_UNSQUEEZE), n0 = g->n_nodes;
    pq_graph_destroy(g);
    const char *passes[] = {"fold-constants"};
    pq_mu_result r;
    g = pq_mu_on_off(pq_mu_model_get("transformer17"), passes, 1, &r);
    uint32_t shape1 = pq_test_count_op(g, PQ_OP_SHAPE), gather1 = pq_test_count_op(g, PQ_OP_GATHER),
             unsq1 = pq_test_count_op(g, PQ_OP_UNSQUEEZE);
    fprintf(stderr,
            "transformer17 fold: nodes %u -> %u, Shape %u -> %u, Gather %u -> %u, "
            "Unsqueeze %u -> %u\n",
            n0, g->n_nodes, shape0, shape1, gather0, gather1, unsq0, unsq1);
    cr_assert_lt(gather1, gather0);
    cr_assert_lt(unsq1, unsq0);
    cr_assert_leq(shape1, shape0);
    cr_assert_lt(g->n_nodes, n0);
    pq_graph_destroy(g);
}

/* A chain of constant arithmetic and a Shape of a static input fold to constants; the input's
 * own computation stays. */
Test(fold_constants, constant_chain_and_static_shape) {
    pq_graph *g = pq_mu_parse("piqc 1\n"
                              "graph t {\n"
                              "  input %x: f32[3, 2]\n"
                              "  const %a: f32[2] = [1, 2]\n"
                              "  const %b: f32[] = [2]\n"
                              "  %c = Mul(%a, %b)\n"
                              "  %d = Neg(%c)\n"
                              "  %s = Shape(%x)\n"
                              "  %sf = Cast(%s) {to = \"f32\"}\n"
                              "  %e = Add(%x, %d)\n"
                              "  %y = Mul(%e, %sf)\n"
                              "  output %y\n"
                              "}\n");
    cr_assert_eq(g->n_nodes, 6u);
    pq_graph *h = pq_mu_pass_clone(g, "fold-constants");
    cr_assert_eq(h->n_nodes, 2u, "Add and the final Mul stay; got %u nodes", h->n_nodes);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_ADD), 1u);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}

/* Gather of a known dim of a partly symbolic shape folds; the symbolic one stays. */
Test(fold_constants, shape_gather_of_known_dim) {
    pq_graph *g = pq_mu_parse("piqc 1\n"
                              "graph t {\n"
                              "  symbols N\n"
                              "  input %x: f32[N, 4]\n"
                              "  const %i0: i64[] = [0]\n"
                              "  const %i1: i64[] = [1]\n"
                              "  %s = Shape(%x)\n"
                              "  %n = Gather(%s, %i0) {axis = 0}\n"
                              "  %c = Gather(%s, %i1) {axis = 0}\n"
                              "  output %n\n"
                              "  output %c\n"
                              "}\n");
    pq_graph *h = NULL;
    pq_error err;
    cr_assert_eq(pq_graph_clone(g, &h, &err), PQ_OK);
    pq_mu_run_pass(h, "fold-constants");
    cr_assert_eq(pq_test_count_op(h, PQ_OP_GATHER), 1u);
    uint32_t c = pq_graph_find_value(h, "c");
    cr_assert_neq(c, PQ_NONE, "graph output name 'c' kept");
    cr_assert_not_null(h->values[c].constant, "c folded to a constant");
    cr_assert_eq(((const int64_t *)h->values[c].constant->data)[0], 4);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}

/* max-bytes: an output above the limit is left alone. */
Test(fold_constants, max_bytes_respected) {
    pq_graph *g = pq_mu_parse("piqc 1\n"
                              "graph t {\n"
                              "  input %x: f32[4]\n"
                              "  const %a: f32[4] = [1, 2, 3, 4]\n"
                              "  %c = Neg(%a)\n"
                              "  %y = Add(%x, %c)\n"
                              "  output %y\n"
                              "}\n");
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    pq_error err;
    cr_assert_eq(
        pq_test_run_pass(g, pq_pass_find("fold-constants"), "{max-bytes: 8}", &ctx, true, &err),
        PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_NEG), 1u, "16-byte output folded despite max-bytes 8");
    cr_assert_eq(
        pq_test_run_pass(g, pq_pass_find("fold-constants"), "{max-bytes: 16}", &ctx, true, &err),
        PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_NEG), 0u);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(g);
}

/* A graph output that becomes constant stays an output under its name. */
Test(fold_constants, constant_graph_output_keeps_name) {
    pq_graph *g = pq_mu_parse("piqc 1\n"
                              "graph t {\n"
                              "  input %x: f32[2]\n"
                              "  const %a: f32[2] = [1, -2]\n"
                              "  %k = Abs(%a)\n"
                              "  %y = Add(%x, %a)\n"
                              "  output %y\n"
                              "  output %k\n"
                              "}\n");
    pq_graph *h = pq_mu_pass_clone(g, "fold-constants");
    cr_assert_str_eq(h->values[h->outputs[1]].name, "k");
    cr_assert_not_null(h->values[h->outputs[1]].constant);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_ABS), 0u);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}

/* piqc's own ops (FakeQuant for training) are never folded, even on constant inputs. */
Test(fold_constants, internal_ops_stay) {
    pq_graph *g = pq_mu_parse("piqc 1\n"
                              "graph t {\n"
                              "  input %x: f32[1, 2]\n"
                              "  const %w: f32[2, 2] = [1, 2.5, -3, 0.125]\n"
                              "  %q = FakeQuant(%w) {format = \"f16\"}\n"
                              "  %y = MatMul(%x, %q)\n"
                              "  output %y\n"
                              "}\n");
    pq_graph *h = pq_mu_pass_clone(g, "fold-constants");
    cr_assert_eq(pq_test_count_op(h, PQ_OP_FAKE_QUANT), 1u);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}

/* An initializer that is also a graph input is a default the caller may override: not folded. */
Test(fold_constants, overridable_initializer_not_folded) {
    pq_graph *g = pq_mu_parse("piqc 1\n"
                              "graph t {\n"
                              "  input %x: f32[2]\n"
                              "  input %a: f32[2] = [1, -2]\n"
                              "  %n = Neg(%a)\n"
                              "  %y = Add(%x, %n)\n"
                              "  output %y\n"
                              "}\n");
    pq_graph *h = pq_mu_pass_clone(g, "fold-constants");
    cr_assert_eq(pq_test_count_op(h, PQ_OP_NEG), 1u);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}
