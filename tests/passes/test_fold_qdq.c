/* fold-qdq: QDQ models shaped like onnxruntime's quantizer writes them (generated at build time
 * by gen_qdq_models.py) and QDQ exported by piqc fold into QLinearConv/QLinearMatMul; the folded
 * graph's outputs equal the unfused graph's within 1 LSB (exactly, for piqc's own export). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "frontends/npy.h"
#include "frontends/onnx.h"
#include "model_util.h"
#include "pass_test_util.h"
#include "runtime/runtime.h"

#define QDQ_DIR PQ_BINARY_DIR "/tests/data/qdq"

static pq_graph *load_abs(const char *path) {
    pq_graph *g = NULL;
    pq_error err;
    cr_assert_eq(pq_onnx_import_file(path, &g, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    return g;
}

static pq_tensor *run1(pq_graph *g, const pq_tensor *in) {
    pq_session *s = NULL;
    pq_error err;
    cr_assert_eq(pq_session_create(g, NULL, &s, &err), PQ_OK, "%s", err.msg);
    pq_tensor *out = NULL;
    const pq_tensor *ins[1] = {in};
    cr_assert_eq(pq_session_run(s, ins, 1, &out, 1, &err), PQ_OK, "%s", err.msg);
    pq_session_destroy(s);
    return out;
}

/* Largest |a - b| in units of step. */
static double max_steps(const pq_tensor *a, const pq_tensor *b, double step) {
    cr_assert_eq(pq_tensor_numel(a), pq_tensor_numel(b));
    double m = 0;
    for (int64_t i = 0; i < pq_tensor_numel(a); i++) {
        double d = fabs(((const float *)a->data)[i] - ((const float *)b->data)[i]) / step;
        m = d > m ? d : m;
    }
    return m;
}

static void other_tool_model(const char *name, enum pq_op fused, uint32_t n_fused) {
    char path[512], in_path[512];
    snprintf(path, sizeof path, QDQ_DIR "/qdq_%s.onnx", name);
    snprintf(in_path, sizeof in_path, QDQ_DIR "/input_%s.npy", name);
    if (access(path, R_OK) != 0)
        cr_skip("%s missing: gen_qdq_models.py did not run (needs python3-onnx)", path);
    pq_graph *g = load_abs(path);
    pq_tensor *in = NULL;
    pq_error err;
    cr_assert_eq(pq_npy_read(in_path, &in, &err), PQ_OK, "%s", err.msg);
    pq_graph *h = NULL;
    cr_assert_eq(pq_graph_clone(g, &h, &err), PQ_OK, "%s", err.msg);
    pq_mu_run_pass(h, "fold-qdq");
    cr_assert_eq(pq_test_count_op(h, fused), n_fused, "%s: %u %s", name, pq_test_count_op(h, fused),
                 pq_op_name(fused));
    cr_assert_eq(pq_test_count_op(h, PQ_OP_CONV) + pq_test_count_op(h, PQ_OP_MATMUL), 0u);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_RELU), 0u);
    uint32_t ys = pq_graph_find_value(g, "y_scale");
    cr_assert_neq(ys, PQ_NONE);
    double step = ((const float *)g->values[ys].constant->data)[0];
    pq_tensor *a = run1(g, in), *b = run1(h, in);
    double d = max_steps(a, b, step);
    int64_t diff = 0;
    for (int64_t i = 0; i < pq_tensor_numel(a); i++)
        diff += ((const float *)a->data)[i] != ((const float *)b->data)[i];
    fprintf(stderr, "fold-qdq %s: %u %s, outputs vs unfused: %lld of %lld differ, max %.3g LSB\n",
            name, n_fused, pq_op_name(fused), (long long)diff, (long long)pq_tensor_numel(a), d);
    cr_assert_leq(d, 1.0001, "%s: folded differs from unfused by %g LSB", name, d);
    pq_tensor_destroy(a);
    pq_tensor_destroy(b);
    pq_tensor_destroy(in);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}

Test(fold_qdq, onnxruntime_style_conv) {
    other_tool_model("conv", PQ_OP_QLINEAR_CONV, 2);
}

Test(fold_qdq, onnxruntime_style_matmul) {
    other_tool_model("matmul", PQ_OP_QLINEAR_MATMUL, 1);
}

/* QOperator graph -> piqc export --onnx-qdq form -> import -> fold-qdq gives the QLinear ops back
 * with the same i32 bias, and exactly the original outputs. */
Test(fold_qdq, piqc_export_round_trip_exact) {
    pq_graph *g = pq_mu_parse(
        "piqc 1\ngraph t {\n"
        "  input %x: f32[2, 2, 5, 5]\n"
        "  const %sx: f32[] = [0.03125]\n  const %zx: u8[] = [128]\n"
        "  const %w: i8[3, 2, 3, 3] = [1, -2, 3, 4, -5, 6, 7, -8, 9, 10, -11, 12, 13, -14, 15, 16, "
        "-17, 18, -19, 20, -21, 22, -23, 24, -25, 26, -27, 28, -29, 30, -31, 32, -33, 34, -35, 36, "
        "127, -127, 0, 5, 5, 5, -9, 9, -9, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n"
        "  const %sw: f32[3] = [0.01, 0.02, 0.005]\n  const %zw: i8[] = [0]\n"
        "  const %sy: f32[] = [0.05]\n  const %zy: u8[] = [0]\n"
        "  const %b: i32[3] = [100, -2000, 37]\n"
        "  const %w2: i8[3, 4] = [1, 2, 3, 4, -5, -6, -7, -8, 9, 10, 11, 127]\n"
        "  const %sw2: f32[4] = [0.1, 0.2, 0.3, 0.4]\n  const %zw2: i8[4] = [0, 0, 0, 0]\n"
        "  const %sm: f32[] = [0.25]\n  const %zm: u8[] = [10]\n"
        "  const %perm: i64[4] = [0, 2, 3, 1]\n"
        "  %xq = QuantizeLinear(%x, %sx, %zx)\n"
        "  %c = QLinearConv(%xq, %sx, %zx, %w, %sw, %zw, %sy, %zy, %b) {pads = [1, 1, 1, 1]}\n"
        "  %t = Transpose(%c) {perm = [0, 2, 3, 1]}\n"
        "  %m = QLinearMatMul(%t, %sy, %zy, %w2, %sw2, %zw2, %sm, %zm)\n"
        "  %y = DequantizeLinear(%m, %sm, %zm)\n"
        "  output %y\n}\n");
    pq_graph *h = pq_test_qdq_round_trip(g);
    cr_assert_eq(
        pq_test_count_op(h, PQ_OP_QLINEAR_CONV) + pq_test_count_op(h, PQ_OP_QLINEAR_MATMUL), 0u);
    /* unfused QDQ (f32 Conv/MatMul in piqc) equals the QOperator graph within 1 LSB */
    double d0 = pq_mu_same_function(g, h);
    pq_mu_run_pass(h, "fold-qdq");
    cr_assert_eq(pq_test_count_op(h, PQ_OP_QLINEAR_CONV), 1u);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_QLINEAR_MATMUL), 1u);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_CONV) + pq_test_count_op(h, PQ_OP_MATMUL), 0u);
    for (uint32_t i = 0; i < h->n_nodes; i++)
        if (h->nodes[i].op == PQ_OP_QLINEAR_CONV) {
            const pq_tensor *b = h->values[h->nodes[i].inputs[8]].constant;
            cr_assert_not_null(b);
            cr_assert_eq(b->dtype, PQ_DTYPE_I32);
            cr_assert_eq(((const int32_t *)b->data)[1], -2000, "the bias codes are reused");
        }
    double d1 = pq_mu_same_function(g, h);
    cr_assert_eq(d1, 0.0, "folded export differs from the QOperator graph by %g", d1);
    fprintf(stderr,
            "fold-qdq piqc export: unfused vs QOperator max diff %g (step 0.25), folded 0\n", d0);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}

/* A QLinearConv with a fused epilogue activation -> piqc's QDQ export (DequantizeLinear -> Conv ->
 * activation -> QuantizeLinear; Swish as Sigmoid and Mul) -> import -> fold-qdq: the activation
 * is folded back onto the QLinearConv, and the outputs equal the original graph's exactly. */
static void act_round_trip(const char *act_attrs) {
    char text[2048];
    snprintf(
        text, sizeof text,
        "piqc 1\ngraph t {\n"
        "  input %%x: f32[1, 2, 6, 6]\n"
        "  const %%sx: f32[] = [0.03125]\n  const %%zx: u8[] = [128]\n"
        "  const %%w: i8[3, 2, 3, 3] = [1, -2, 3, 4, -5, 6, 7, -8, 9, 10, -11, 12, 13, -14, "
        "15, 16, -17, 18, -19, 20, -21, 22, -23, 24, -25, 26, -27, 28, -29, 30, -31, 32, -33, "
        "34, -35, 36, 127, -127, 0, 5, 5, 5, -9, 9, -9, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n"
        "  const %%sw: f32[3] = [0.01, 0.02, 0.005]\n  const %%zw: i8[] = [0]\n"
        "  const %%sy: f32[] = [0.02]\n  const %%zy: u8[] = [40]\n"
        "  const %%b: i32[3] = [100, -2000, 37]\n"
        "  %%xq = QuantizeLinear(%%x, %%sx, %%zx)\n"
        "  %%c = QLinearConv(%%xq, %%sx, %%zx, %%w, %%sw, %%zw, %%sy, %%zy, %%b) {pads = [1, 1, "
        "1, 1], %s}\n"
        "  %%y = DequantizeLinear(%%c, %%sy, %%zy)\n"
        "  output %%y\n}\n",
        act_attrs);
    pq_graph *g = pq_mu_parse(text);
    pq_graph *h = pq_test_qdq_round_trip(g);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_QLINEAR_CONV), 0u);
    pq_mu_run_pass(h, "fold-qdq");
    cr_assert_eq(pq_test_count_op(h, PQ_OP_QLINEAR_CONV), 1u, "%s", act_attrs);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_CONV), 0u, "%s", act_attrs);
    double d = pq_mu_same_function(g, h);
    cr_assert_eq(d, 0.0, "%s: folded export differs from the original by %g", act_attrs, d);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}

Test(fold_qdq, piqc_export_round_trip_epilogue_activations) {
    act_round_trip("activation = \"HardSwish\"");
    act_round_trip("activation = \"Swish\"");
    act_round_trip("activation = \"Sigmoid\"");
    act_round_trip("activation = \"HardSigmoid\", activation_alpha = 0.25, activation_beta = 0.5");
    act_round_trip("activation = \"LeakyRelu\", activation_alpha = 0.125");
}

/* Nothing to fold: a Relu before a QuantizeLinear whose zero point is not the lowest code, a
 * non-constant weight. */
Test(fold_qdq, leaves_what_it_cannot_fold) {
    pq_graph *g = pq_mu_parse("piqc 1\ngraph t {\n"
                              "  input %x: f32[3, 4]\n  input %wf: f32[4, 2]\n"
                              "  const %s: f32[] = [0.1]\n  const %z: u8[] = [5]\n"
                              "  const %w: i8[4, 2] = [1, 2, 3, 4, 5, 6, 7, 8]\n"
                              "  %xq = QuantizeLinear(%x, %s, %z)\n"
                              "  %xd = DequantizeLinear(%xq, %s, %z)\n"
                              "  %wd = DequantizeLinear(%w, %s)\n"
                              "  %m = MatMul(%xd, %wd)\n  %r = Relu(%m)\n"
                              "  %q = QuantizeLinear(%r, %s, %z)\n"
                              "  %m2 = MatMul(%xd, %wf)\n"
                              "  %q2 = QuantizeLinear(%m2, %s, %z)\n"
                              "  output %q\n  output %q2\n}\n");
    pq_mu_run_pass(g, "fold-qdq");
    cr_assert_eq(pq_test_count_op(g, PQ_OP_QLINEAR_MATMUL), 0u);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_MATMUL), 2u);
    pq_graph_destroy(g);
}
