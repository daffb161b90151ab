/* fuse-residual on tiny graphs: Add(Conv(x), s) in either operand order, with and without a Relu
 * (fused before or after the residual pass), becomes one ConvAdd computing the same function
 * (within 1e-5 * max(1, max|y|), the reference kernels); what must stay unchanged; the ONNX export
 * of the fused form. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "frontends/onnx.h"
#include "frontends/onnx_export.h"
#include "model_util.h"
#include "pass_test_util.h"
#include "passes/pass.h"
#include "runtime/runtime.h"

/* x [1, 3, 4, 4] -> Conv 3x3 pad 1 (3 -> 3 channels, optional bias) -> %c; lines follow. The
 * weights mix signs so conv + skip crosses zero (Relu after the sum differs from before it). */
static const char *graph(char *buf, size_t n, const char *conv_extra, const char *lines) {
    snprintf(buf, n,
             "piqc 1\ngraph t {\n"
             "  input %%x: f32[1, 3, 4, 4]\n"
             "  input %%s: f32[1, 3, 4, 4]\n"
             "  const %%w: f32[3, 3, 1, 1] = [1, -2, 0.5, -1, 0.25, 2, 0.5, 1, -0.5]\n"
             "  const %%b: f32[3] = [0.5, -0.25, 1]\n"
             "  %%c = Conv(%%x, %%w%s) {kernel_shape = [1, 1]}\n"
             "%s"
             "  output %%y\n}\n",
             conv_extra, lines);
    return buf;
}

static pq_graph *fuse(pq_graph *g, const char *const *passes, int n) {
    pq_graph *h = NULL;
    for (int i = 0; i < n; i++) {
        pq_graph *next = pq_mu_pass_clone(h ? h : g, passes[i]);
        if (h) pq_graph_destroy(h);
        h = next;
    }
    return h;
}

/* The one ConvAdd of h (asserting there is exactly one and no Add / Relu / Conv left). */
static const pq_node *the_conv_add(const pq_graph *h, const char *what) {
    cr_assert_eq(pq_test_count_op(h, PQ_OP_CONV_ADD), 1u, "%s: ConvAdd count", what);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_ADD), 0u, "%s: Add left", what);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_CONV), 0u, "%s: Conv left", what);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_RELU), 0u, "%s: Relu left", what);
    for (uint32_t i = 0; i < h->n_nodes; i++)
        if (h->nodes[i].op == PQ_OP_CONV_ADD) return &h->nodes[i];
    return NULL;
}

static void expect_fused(const char *conv_extra, const char *lines, const char *act,
                         const char *what) {
    static const char *const orders[2][2] = {{"fuse-activations", "fuse-residual"},
                                             {"fuse-residual", "fuse-activations"}};
    for (int o = 0; o < 2; o++) {
        char buf[2048];
        pq_graph *g = pq_mu_parse(graph(buf, sizeof buf, conv_extra, lines));
        pq_graph *h = fuse(g, orders[o], 2);
        const pq_node *n = the_conv_add(h, what);
        cr_assert_str_eq(pq_node_attr_string(n, "activation", ""), act, "%s", what);
        cr_assert_eq(pq_node_attr(n, "kernel_shape") != NULL, true, "%s: Conv attributes", what);
        cr_assert_eq(n->inputs[3], h->inputs[1], "%s: the addend is %%s", what);
        cr_assert_str_eq(h->values[h->outputs[0]].name, "y", "graph output name survives");
        pq_graph_destroy(g);
        pq_graph_destroy(h);
    }
}

Test(fuse_residual, conv_plus_skip_both_orders) {
    expect_fused(", %b", "  %y = Add(%c, %s)\n", "", "Add(conv, s)");
    expect_fused(", %b", "  %y = Add(%s, %c)\n", "", "Add(s, conv)");
    expect_fused("", "  %y = Add(%c, %s)\n", "", "no bias");
}

Test(fuse_residual, relu_after_the_sum) {
    expect_fused(", %b", "  %a = Add(%c, %s)\n  %y = Relu(%a)\n", "Relu", "Relu(Add(conv, s))");
    expect_fused(", %b", "  %a = Add(%s, %c)\n  %y = Relu(%a)\n", "Relu", "Relu(Add(s, conv))");
    expect_fused("",
                 "  const %lo: f32[] = [0]\n  const %hi: f32[] = [6]\n"
                 "  %a = Add(%s, %c)\n  %y = Clip(%a, %lo, %hi)\n",
                 "Clip", "Clip(Add(s, conv))");
}

/* Relu(conv) + s: the Relu belongs to the Conv, before the sum, so nothing merges (and the result
 * must differ from Relu(conv + s) on these inputs, or the order would not be tested). */
Test(fuse_residual, relu_before_the_sum_not_merged) {
    char buf[2048];
    pq_graph *g =
        pq_mu_parse(graph(buf, sizeof buf, ", %b", "  %r = Relu(%c)\n  %y = Add(%r, %s)\n"));
    static const char *const p[2] = {"fuse-activations", "fuse-residual"};
    pq_graph *h = fuse(g, p, 2);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_CONV_ADD), 0u);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_ADD), 1u);
    pq_graph *other =
        pq_mu_parse(graph(buf, sizeof buf, ", %b", "  %a = Add(%c, %s)\n  %y = Relu(%a)\n"));
    pq_graph *fo = fuse(other, p, 2);
    cr_assert_eq(pq_test_count_op(fo, PQ_OP_CONV_ADD), 1u);
    /* same inputs: Relu(conv) + s != Relu(conv + s) somewhere */
    pq_tensor *ins[2];
    int64_t d[4] = {1, 3, 4, 4};
    for (int i = 0; i < 2; i++) {
        ins[i] = pq_tensor_create(PQ_DTYPE_F32, 4, d, NULL);
        float *p2 = ins[i]->data;
        for (int k = 0; k < 48; k++)
            p2[k] = (float)((k * 37 + i * 11) % 65) / 8.0f - 4.0f;
    }
    pq_tensor **ya = pq_test_run_inputs(h, (const pq_tensor *const *)ins);
    pq_tensor **yb = pq_test_run_inputs(fo, (const pq_tensor *const *)ins);
    cr_assert(memcmp(ya[0]->data, yb[0]->data, ya[0]->nbytes) != 0,
              "Relu before and after the sum gave the same result: the order is untested");
    const float *s = ins[1]->data, *yf = yb[0]->data;
    for (int k = 0; k < 48; k++)
        cr_assert(yf[k] >= 0.0f, "element %d: Relu not after the sum (%g, s %g)", k, yf[k], s[k]);
    pq_test_free_outputs(ya, 1);
    pq_test_free_outputs(yb, 1);
    pq_tensor_destroy(ins[0]);
    pq_tensor_destroy(ins[1]);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
    pq_graph_destroy(other);
    pq_graph_destroy(fo);
}

static void expect_unchanged(const char *conv_extra, const char *lines, const char *what) {
    char buf[2048];
    pq_graph *g = pq_mu_parse(graph(buf, sizeof buf, conv_extra, lines));
    pq_graph *h = pq_mu_pass_clone(g, "fuse-residual");
    cr_assert_eq(pq_test_count_op(h, PQ_OP_CONV_ADD), 0u, "%s", what);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_ADD), pq_test_count_op(g, PQ_OP_ADD), "%s", what);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}

Test(fuse_residual, cases_left_alone) {
    /* the Conv output has another reader */
    expect_unchanged(", %b", "  %a = Add(%c, %s)\n  %y = Mul(%a, %c)\n", "conv read twice");
    /* the Conv output is a graph output */
    expect_unchanged(", %b", "  %y = Add(%c, %s)\n  output %c\n", "conv is an output");
    /* broadcasting addends: per-channel, scalar */
    expect_unchanged(", %b", "  const %pc: f32[1, 3, 1, 1] = [1, 2, 3]\n  %y = Add(%c, %pc)\n",
                     "per-channel addend");
    expect_unchanged(", %b", "  const %k: f32[] = [1]\n  %y = Add(%k, %c)\n", "scalar addend");
    /* conv + conv of the same value */
    expect_unchanged(", %b", "  %y = Add(%c, %c)\n", "c + c");
    /* the Conv already has an activation (it runs before the sum) */
    char buf[2048];
    pq_graph *g = pq_mu_parse(graph(buf, sizeof buf, ", %b", "  %y = Add(%c, %s)\n"));
    pq_error err;
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == PQ_OP_CONV)
            cr_assert_eq(pq_node_set_string(g, i, "activation", "Relu", &err), PQ_OK);
    pq_graph *h = pq_mu_pass_clone(g, "fuse-residual");
    cr_assert_eq(pq_test_count_op(h, PQ_OP_CONV_ADD), 0u);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}

/* The ONNX export writes ConvAdd back as Conv + Add (+ Relu), and re-imports to the same
 * function. */
Test(fuse_residual, onnx_export_splits_it) {
    char buf[2048];
    pq_graph *g =
        pq_mu_parse(graph(buf, sizeof buf, ", %b", "  %a = Add(%s, %c)\n  %y = Relu(%a)\n"));
    static const char *const p[2] = {"fuse-activations", "fuse-residual"};
    pq_graph *h = fuse(g, p, 2);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_CONV_ADD), 1u);
    pq_error err;
    uint8_t *bytes = NULL;
    size_t len = 0;
    cr_assert_eq(pq_onnx_export_buffer(h, NULL, &bytes, &len, &err), PQ_OK, "%s", err.msg);
    pq_graph *back = NULL;
    cr_assert_eq(pq_onnx_import_buffer(bytes, len, NULL, &back, &err), PQ_OK, "%s", err.msg);
    pq_free(bytes);
    cr_assert_eq(pq_runtime_prepare(back, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_test_count_op(back, PQ_OP_CONV_ADD), 0u);
    cr_assert_eq(pq_test_count_op(back, PQ_OP_CONV), 1u);
    cr_assert_eq(pq_test_count_op(back, PQ_OP_ADD), 1u);
    cr_assert_eq(pq_test_count_op(back, PQ_OP_RELU), 1u);
    pq_mu_same_function(g, back);
    pq_graph_destroy(back);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}
