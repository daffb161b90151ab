/* canonicalize, fold-batchnorm and fuse-activations: on vs off on every test model (and all passes
 * in sequence), with outputs within 1e-5 * max(1, max|y|); what each pass must find in digits and
 * the transformers; tiny graphs for every pattern and for the cases that must stay unchanged. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "model_util.h"
#include "pass_test_util.h"
#include "passes/pass.h"
#include "runtime/runtime.h"

static void on_off_all(const char *const *passes, uint32_t n) {
    for (uint32_t i = 0; i < pq_mu_n_models; i++) {
        pq_mu_result r;
        pq_graph *g = pq_mu_on_off(&pq_mu_models[i], passes, n, &r);
        cr_assert_leq(r.nodes_after, r.nodes_before, "%s", pq_mu_models[i].name);
        pq_graph_destroy(g);
    }
}

Test(canonical, canonicalize_on_off_every_model) {
    const char *p[] = {"canonicalize"};
    on_off_all(p, 1);
}
Test(canonical, fold_batchnorm_on_off_every_model) {
    const char *p[] = {"fold-batchnorm"};
    on_off_all(p, 1);
}
Test(canonical, fuse_activations_on_off_every_model) {
    const char *p[] = {"fuse-activations"};
    on_off_all(p, 1);
}
Test(canonical, all_passes_in_sequence_every_model) {
    const char *p[] = {"canonicalize",   "fold-constants",   "cse",
                       "fold-batchnorm", "fuse-activations", "canonicalize"};
    on_off_all(p, 6);
}

Test(canonical, digits_batchnorm_folded_relu_fused) {
    const pq_mu_model *m = pq_mu_model_get("digits");
    const char *p[] = {"fold-batchnorm", "fuse-activations"};
    pq_mu_result r;
    pq_graph *g = pq_mu_on_off(m, p, 2, &r);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_BATCH_NORMALIZATION), 0u);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_RELU), 0u);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_CONV), 2u);
    cr_assert_eq(r.nodes_after, r.nodes_before - 4, "2 BN + 2 Relu removed: %u -> %u",
                 r.nodes_before, r.nodes_after);
    uint32_t fused = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == PQ_OP_CONV)
            fused += !strcmp(pq_node_attr_string(&g->nodes[i], "activation", ""), "Relu");
    cr_assert_eq(fused, 2u);
    char *text = pq_mu_print(g);
    cr_assert(strstr(text, "activation = \"Relu\""), "printed IR lacks the fused activation:\n%s",
              text);
    pq_free(text);
    pq_graph_destroy(g);
}

Test(canonical, cnn_bn_batchnorm_folded) {
    const char *p[] = {"fold-batchnorm", "fuse-activations"};
    pq_mu_result r;
    pq_graph *g = pq_mu_on_off(pq_mu_model_get("cnn_bn"), p, 2, &r);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_BATCH_NORMALIZATION), 0u);
    pq_graph_destroy(g);
}

Test(canonical, transformer13_layernorm_recognised) {
    const char *p[] = {"canonicalize"};
    pq_mu_result r;
    pq_graph *g = pq_mu_on_off(pq_mu_model_get("transformer13"), p, 1, &r);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_LAYER_NORMALIZATION), 4u);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_REDUCE_MEAN), 0u);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_SQRT), 0u);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_POW), 0u);
    char *text = pq_mu_print(g);
    cr_assert(strstr(text, "LayerNormalization("));
    pq_free(text);
    pq_graph_destroy(g);
}

/* ---- fold-batchnorm on tiny graphs -------------------------------------------------------- */

#define BN_CONSTS                                                                                  \
    "  const %gam: f32[2] = [1.5, -0.5]\n"                                                         \
    "  const %bet: f32[2] = [0.25, 1]\n"                                                           \
    "  const %mu: f32[2] = [0.1, -0.3]\n"                                                          \
    "  const %var: f32[2] = [2, 0.5]\n"

Test(canonical, fold_batchnorm_conv_without_bias) {
    pq_graph *g = pq_mu_parse("piqc 1\ngraph t {\n"
                              "  input %x: f32[1, 3, 4, 4]\n"
                              "  const %w: f32[2, 3, 1, 1] = [1, 2, 3, -1, 0.5, 2]\n" BN_CONSTS
                              "  %c = Conv(%x, %w)\n"
                              "  %y = BatchNormalization(%c, %gam, %bet, %mu, %var)\n"
                              "  output %y\n}\n");
    pq_graph *h = pq_mu_pass_clone(g, "fold-batchnorm");
    cr_assert_eq(pq_test_count_op(h, PQ_OP_BATCH_NORMALIZATION), 0u);
    cr_assert_eq(h->nodes[0].n_inputs, 3u, "bias created");
    cr_assert_str_eq(h->values[h->outputs[0]].name, "y");
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}

Test(canonical, fold_batchnorm_grouped_conv_transpose) {
    pq_graph *g = pq_mu_parse("piqc 1\ngraph t {\n"
                              "  input %x: f32[1, 2, 3, 3]\n"
                              "  const %w: f32[2, 1, 2, 2] = [1, 2, 3, 4, -1, 0.5, 2, 1]\n"
                              "  const %b: f32[2] = [0.5, -1]\n" BN_CONSTS
                              "  %c = ConvTranspose(%x, %w, %b) {group = 2, strides = [2, 2]}\n"
                              "  %y = BatchNormalization(%c, %gam, %bet, %mu, %var)\n"
                              "  output %y\n}\n");
    pq_graph *h = pq_mu_pass_clone(g, "fold-batchnorm");
    cr_assert_eq(pq_test_count_op(h, PQ_OP_BATCH_NORMALIZATION), 0u);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}

Test(canonical, fold_batchnorm_conv_transpose_cout) {
    /* W [Cin=1, Cout=2, 2, 2]: output channels are dim 1 */
    pq_graph *g =
        pq_mu_parse("piqc 1\ngraph t {\n"
                    "  input %x: f32[1, 1, 3, 3]\n"
                    "  const %w: f32[1, 2, 2, 2] = [1, 2, 3, 4, -1, 0.5, 2, 1]\n" BN_CONSTS
                    "  %c = ConvTranspose(%x, %w)\n"
                    "  %y = BatchNormalization(%c, %gam, %bet, %mu, %var)\n"
                    "  output %y\n}\n");
    pq_graph *h = pq_mu_pass_clone(g, "fold-batchnorm");
    cr_assert_eq(pq_test_count_op(h, PQ_OP_BATCH_NORMALIZATION), 0u);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}

Test(canonical, fold_batchnorm_gemm_transb_and_matmul) {
    pq_graph *g = pq_mu_parse("piqc 1\ngraph t {\n"
                              "  input %x: f32[3, 3]\n"
                              "  const %w: f32[2, 3] = [1, 2, 3, -1, 0.5, 2]\n"
                              "  const %wm: f32[3, 2] = [1, 2, 3, -1, 0.5, 2]\n"
                              "  const %cb: f32[2] = [0.5, -1]\n" BN_CONSTS
                              "  %a = Gemm(%x, %w, %cb) {transB = 1, alpha = 0.5, beta = 2.0}\n"
                              "  %y = BatchNormalization(%a, %gam, %bet, %mu, %var)\n"
                              "  %m = MatMul(%x, %wm)\n"
                              "  %z = BatchNormalization(%m, %gam, %bet, %mu, %var)\n"
                              "  output %y\n  output %z\n}\n");
    pq_graph *h = pq_mu_pass_clone(g, "fold-batchnorm");
    cr_assert_eq(pq_test_count_op(h, PQ_OP_BATCH_NORMALIZATION), 0u);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_ADD), 1u, "MatMul + BN -> MatMul, Add");
    cr_assert_str_eq(h->values[h->outputs[1]].name, "z");
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}

Test(canonical, fold_batchnorm_not_when_conv_output_has_another_use) {
    pq_graph *g = pq_mu_parse("piqc 1\ngraph t {\n"
                              "  input %x: f32[1, 3, 4, 4]\n"
                              "  const %w: f32[2, 3, 1, 1] = [1, 2, 3, -1, 0.5, 2]\n" BN_CONSTS
                              "  %c = Conv(%x, %w)\n"
                              "  %y = BatchNormalization(%c, %gam, %bet, %mu, %var)\n"
                              "  %z = Relu(%c)\n"
                              "  output %y\n  output %z\n}\n");
    pq_graph *h = pq_mu_pass_clone(g, "fold-batchnorm");
    cr_assert_eq(pq_test_count_op(h, PQ_OP_BATCH_NORMALIZATION), 1u);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}

/* ---- fuse-activations on tiny graphs ------------------------------------------------------ */

static const char *fuse_graph(char *buf, size_t n, const char *act) {
    snprintf(buf, n,
             "piqc 1\ngraph t {\n"
             "  input %%x: f32[2, 3]\n"
             "  const %%w: f32[3, 4] = [1, -2, 3, 0.5, -1, 0.25, 2, -3, 0.5, 1, -0.5, 2]\n"
             "  const %%lo: f32[] = [-1.5]\n  const %%hi: f32[] = [2.5]\n"
             "  %%m = MatMul(%%x, %%w)\n"
             "%s"
             "  output %%y\n}\n",
             act);
    return buf;
}

static void expect_fused(const char *act_lines, const char *name) {
    char buf[2048];
    pq_graph *g = pq_mu_parse(fuse_graph(buf, sizeof buf, act_lines));
    pq_graph *h = pq_mu_pass_clone(g, "fuse-activations");
    cr_assert_eq(h->n_nodes, 1u, "%s: %u nodes left", name, h->n_nodes);
    cr_assert_str_eq(pq_node_attr_string(&h->nodes[0], "activation", ""), name);
    cr_assert_str_eq(h->values[h->outputs[0]].name, "y", "graph output name survives");
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}

Test(canonical, fuse_each_activation) {
    expect_fused("  %y = Relu(%m)\n", "Relu");
    expect_fused("  %y = Clip(%m, %lo, %hi)\n", "Clip");
    expect_fused("  %y = Clip(%m, _, %hi)\n", "Clip");
    expect_fused("  %y = LeakyRelu(%m) {alpha = 0.125}\n", "LeakyRelu");
    expect_fused("  %y = Sigmoid(%m)\n", "Sigmoid");
    expect_fused("  %y = HardSigmoid(%m) {alpha = 0.3, beta = 0.4}\n", "HardSigmoid");
    expect_fused("  %y = HardSwish(%m)\n", "HardSwish");
    expect_fused("  %y = Tanh(%m)\n", "Tanh");
    expect_fused("  %s = Sigmoid(%m)\n  %y = Mul(%s, %m)\n", "Swish");
    expect_fused("  const %r2: f32[] = [1.41421354]\n  const %one: f32[] = [1]\n"
                 "  const %half: f32[] = [0.5]\n"
                 "  %d = Div(%m, %r2)\n  %e = Erf(%d)\n  %p = Add(%e, %one)\n"
                 "  %q = Mul(%m, %p)\n  %y = Mul(%q, %half)\n",
                 "Gelu");
    expect_fused("  const %k: f32[] = [0.707106769]\n  const %one: f32[] = [1]\n"
                 "  const %half: f32[] = [0.5]\n"
                 "  %h = Mul(%half, %m)\n  %d = Mul(%k, %m)\n  %e = Erf(%d)\n"
                 "  %p = Add(%one, %e)\n  %y = Mul(%p, %h)\n",
                 "Gelu");
}

Test(canonical, fuse_into_conv_gemm_add) {
    pq_graph *g = pq_mu_parse("piqc 1\ngraph t {\n"
                              "  input %x: f32[1, 2, 3, 3]\n"
                              "  const %w: f32[2, 2, 1, 1] = [1, -2, 0.5, 1]\n"
                              "  const %b: f32[2, 1, 1] = [0.5, -0.5]\n"
                              "  %c = Conv(%x, %w)\n  %r = Relu(%c)\n"
                              "  %a = Add(%r, %b)\n  %y = Tanh(%a)\n"
                              "  output %y\n}\n");
    pq_graph *h = pq_mu_pass_clone(g, "fuse-activations");
    cr_assert_eq(h->n_nodes, 2u);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}

Test(canonical, relu_output_used_twice_not_fused) {
    char buf[2048];
    /* the MatMul output feeds Relu and is also read elsewhere: no fusion */
    pq_graph *g = pq_mu_parse(fuse_graph(buf, sizeof buf, "  %r = Relu(%m)\n  %y = Add(%r, %m)\n"));
    pq_graph *h = pq_mu_pass_clone(g, "fuse-activations");
    cr_assert_eq(pq_test_count_op(h, PQ_OP_RELU), 1u);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
    /* the linear output is a graph output itself */
    g = pq_mu_parse(fuse_graph(buf, sizeof buf, "  %y = Relu(%m)\n  output %m\n"));
    h = pq_mu_pass_clone(g, "fuse-activations");
    cr_assert_eq(pq_test_count_op(h, PQ_OP_RELU), 1u);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
    /* Clip with a bound computed at run time */
    g = pq_mu_parse(fuse_graph(buf, sizeof buf,
                               "  %lo2 = ReduceMin(%x) {keepdims = 0}\n"
                               "  %y = Clip(%m, %lo2, %hi)\n"));
    h = pq_mu_pass_clone(g, "fuse-activations");
    cr_assert_eq(pq_test_count_op(h, PQ_OP_CLIP), 1u);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}

/* ---- canonicalize on tiny graphs ---------------------------------------------------------- */

static pq_graph *canon(const char *body, uint32_t want_nodes, enum pq_op want_op) {
    char buf[4096];
    snprintf(buf, sizeof buf,
             "piqc 1\ngraph t {\n  input %%x: f32[2, 3, 4]\n"
             "  const %%three: f32[] = [3]\n  const %%zero: f32[] = [0]\n"
             "  const %%six: f32[] = [6]\n  const %%sixth: f32[] = [0.166666672]\n%s"
             "  output %%y\n}\n",
             body);
    pq_graph *g = pq_mu_parse(buf);
    pq_graph *h = pq_mu_pass_clone(g, "canonicalize");
    cr_assert_eq(h->n_nodes, want_nodes, "%u nodes after canonicalize for:\n%s", h->n_nodes, body);
    if (want_op != PQ_OP_COUNT)
        cr_assert_eq(pq_test_count_op(h, want_op), 1u, "no %s for:\n%s", pq_op_name(want_op), body);
    cr_assert_str_eq(h->values[h->outputs[0]].name, "y");
    pq_graph_destroy(g);
    return h;
}

Test(canonical, hardswish_variants) {
    const char *v[] = {
        "  %a = Add(%x, %three)\n  %c = Clip(%a, %zero, %six)\n  %m = Mul(%x, %c)\n"
        "  %y = Div(%m, %six)\n",
        "  %a = Add(%three, %x)\n  %c = Clip(%a, %zero, %six)\n  %m = Mul(%c, %x)\n"
        "  %y = Mul(%m, %sixth)\n",
        "  %a = Add(%x, %three)\n  %c = Clip(%a, %zero, %six)\n  %d = Div(%c, %six)\n"
        "  %y = Mul(%x, %d)\n",
        "  %h = HardSigmoid(%x) {alpha = 0.166666672, beta = 0.5}\n  %y = Mul(%x, %h)\n",
    };
    for (int i = 0; i < 4; i++)
        pq_graph_destroy(canon(v[i], 1, PQ_OP_HARD_SWISH));
    /* HardSigmoid with ONNX's default alpha 0.2 is not HardSwish */
    pq_graph_destroy(canon("  %h = HardSigmoid(%x)\n  %y = Mul(%x, %h)\n", 2, PQ_OP_COUNT));
    /* x+3 clipped to [0, 5] is not relu6 */
    pq_graph_destroy(canon("  const %five: f32[] = [5]\n  %a = Add(%x, %three)\n"
                           "  %c = Clip(%a, %zero, %five)\n  %m = Mul(%x, %c)\n"
                           "  %y = Div(%m, %six)\n",
                           4, PQ_OP_COUNT));
}

Test(canonical, layernorm_pattern) {
    const char *ln = "  const %two: f32[] = [2]\n  const %eps: f32[] = [9.99999975e-06]\n"
                     "  const %ax: i64[1] = [-1]\n"
                     "  const %gamma: f32[4] = [1, 2, 0.5, -1]\n"
                     "  const %beta: f32[4] = [0, 0.5, -0.5, 1]\n"
                     "  %mu = ReduceMean(%x, %ax)\n  %d = Sub(%x, %mu)\n"
                     "  %p = Pow(%d, %two)\n  %v = ReduceMean(%p, %ax)\n"
                     "  %ve = Add(%v, %eps)\n  %s = Sqrt(%ve)\n  %n = Div(%d, %s)\n"
                     "  %g = Mul(%n, %gamma)\n  %y = Add(%g, %beta)\n";
    pq_graph *h = canon(ln, 1, PQ_OP_LAYER_NORMALIZATION);
    cr_assert_eq(h->nodes[0].n_inputs, 3u, "gamma and beta folded into scale and bias");
    pq_graph_destroy(h);
    /* the centred value escapes: not a layer norm */
    pq_graph *g = pq_mu_parse("piqc 1\ngraph t {\n  input %x: f32[2, 4]\n"
                              "  const %two: f32[] = [2]\n  const %eps: f32[] = [1e-05]\n"
                              "  const %ax: i64[1] = [-1]\n"
                              "  %mu = ReduceMean(%x, %ax)\n  %d = Sub(%x, %mu)\n"
                              "  %p = Pow(%d, %two)\n  %v = ReduceMean(%p, %ax)\n"
                              "  %ve = Add(%v, %eps)\n  %s = Sqrt(%ve)\n  %y = Div(%d, %s)\n"
                              "  output %y\n  output %d\n}\n");
    h = pq_mu_pass_clone(g, "canonicalize");
    cr_assert_eq(pq_test_count_op(h, PQ_OP_LAYER_NORMALIZATION), 0u);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}

Test(canonical, movement_cleanup) {
    /* Transpose of Transpose that cancels, identity Transpose, Identity, same-dtype Cast */
    pq_graph_destroy(canon("  %t = Transpose(%x) {perm = [1, 0, 2]}\n"
                           "  %u = Transpose(%t) {perm = [1, 0, 2]}\n"
                           "  %i = Identity(%u)\n  %c = Cast(%i) {to = \"f32\"}\n"
                           "  %e = Transpose(%c) {perm = [0, 1, 2]}\n  %y = Neg(%e)\n",
                           1, PQ_OP_NEG));
    /* Transpose of Transpose that composes into one */
    pq_graph *h = canon("  %t = Transpose(%x) {perm = [1, 0, 2]}\n"
                        "  %y = Transpose(%t) {perm = [2, 0, 1]}\n",
                        1, PQ_OP_TRANSPOSE);
    pq_graph_destroy(h);
    /* Reshape of Reshape -> one Reshape; identity Reshape removed */
    pq_graph_destroy(canon("  const %s1: i64[2] = [6, 4]\n  const %s2: i64[2] = [4, 6]\n"
                           "  const %s3: i64[3] = [2, 3, 4]\n"
                           "  %a = Reshape(%x, %s1)\n  %b = Reshape(%a, %s2)\n"
                           "  %c = Reshape(%b, %s3)\n  %y = Neg(%c)\n",
                           1, PQ_OP_NEG));
    /* Unsqueeze then Squeeze of the same axis; Squeeze then Unsqueeze */
    pq_graph_destroy(canon("  const %a1: i64[1] = [1]\n  %u = Unsqueeze(%x, %a1)\n"
                           "  %s = Squeeze(%u, %a1)\n  %y = Neg(%s)\n",
                           1, PQ_OP_NEG));
    pq_graph_destroy(canon("  const %a0: i64[1] = [-1]\n  const %a3: i64[1] = [3]\n"
                           "  %u = Unsqueeze(%x, %a3)\n  %s = Squeeze(%u, %a0)\n"
                           "  %w = Unsqueeze(%s, %a3)\n  %y = Squeeze(%w, %a3)\n",
                           2, PQ_OP_COUNT)); /* y stays: forwarding would rename input x */
    /* Squeeze/Unsqueeze of different axes stay */
    pq_graph_destroy(canon("  const %a0: i64[1] = [0]\n  const %a1: i64[1] = [1]\n"
                           "  %u = Unsqueeze(%x, %a0)\n  %v = Unsqueeze(%u, %a0)\n"
                           "  %y = Squeeze(%v, %a1)\n",
                           3, PQ_OP_COUNT));
}

/* Allocation failures anywhere in the five rewrite passes give OK or NOMEM (never a crash; leaks
 * show up under the sanitizer build), and the graph stays destroyable. */
Test(canonical, allocation_failures_are_errors) {
    static const char text[] =
        "piqc 1\ngraph t {\n  input %x: f32[1, 2, 4, 4]\n"
        "  const %w: f32[2, 2, 1, 1] = [1, -2, 0.5, 1]\n" BN_CONSTS
        "  const %two: f32[] = [2]\n  const %eps: f32[] = [1e-05]\n  const %ax: i64[1] = [-1]\n"
        "  const %three: f32[] = [3]\n  const %zero: f32[] = [0]\n  const %six: f32[] = [6]\n"
        "  const %k1: f32[4] = [1, 2, 3, 4]\n  const %k2: f32[4] = [1, 2, 3, 4]\n"
        "  %c = Conv(%x, %w)\n  %b = BatchNormalization(%c, %gam, %bet, %mu, %var)\n"
        "  %r = Relu(%b)\n"
        "  %m = ReduceMean(%x, %ax)\n  %d = Sub(%x, %m)\n  %p = Pow(%d, %two)\n"
        "  %v = ReduceMean(%p, %ax)\n  %ve = Add(%v, %eps)\n  %s = Sqrt(%ve)\n  %n = Div(%d, %s)\n"
        "  %a3 = Add(%n, %three)\n  %cl = Clip(%a3, %zero, %six)\n  %hm = Mul(%n, %cl)\n"
        "  %hs = Div(%hm, %six)\n"
        "  %kk = Mul(%k1, %k2)\n  %t1 = Add(%hs, %kk)\n  %t2 = Add(%hs, %kk)\n"
        "  %i = Identity(%t2)\n  %y = Add(%t1, %i)\n"
        "  output %r\n  output %y\n}\n";
    const char *names[] = {"canonicalize", "fold-constants", "cse", "fold-batchnorm",
                           "fuse-activations"};
    bool done = false;
    long k;
    for (k = 0; k < 20000 && !done; k++) {
        pq_graph *g = pq_mu_parse(text);
        pq_pass_ctx ctx;
        pq_pass_ctx_init(&ctx);
        ctx.verbose = 0;
        pq_error err;
        pq_error_clear(&err);
        enum pq_status st = PQ_OK;
        pq_alloc_fail_after(k);
        for (int i = 0; i < 5 && st == PQ_OK; i++)
            st = pq_pass_find(names[i])->run(g, NULL, &ctx, &err);
        pq_alloc_fail_after(-1);
        cr_assert(st == PQ_OK || st == PQ_ERR_NOMEM, "k=%ld: %s", k, err.msg);
        if (st == PQ_OK) {
            cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "k=%ld: %s", k, err.msg);
            cr_assert_eq(pq_test_count_op(g, PQ_OP_BATCH_NORMALIZATION), 0u);
            cr_assert_eq(pq_test_count_op(g, PQ_OP_LAYER_NORMALIZATION), 1u);
            cr_assert_eq(pq_test_count_op(g, PQ_OP_HARD_SWISH), 1u);
            done = true;
        }
        pq_pass_ctx_free(&ctx);
        pq_graph_destroy(g);
    }
    cr_assert(done, "never succeeded");
    fprintf(stderr, "rewrite passes: %ld allocation failure points checked\n", k - 1);
}
