/* Tests of the quantize-int8 pass: digits and cnn_bn accuracy / cosine against FP32, the graph it
 * produces (QLinear ops, Q/DQ count, no f32 weight left), exactness of a Relu / Clip(0, 6) fused
 * layer on exactly representable data, Gemm bias and MatMul, and the errors it gives. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "frontends/frontends.h"
#include "ir/text.h"
#include "model_util.h"
#include "pass_test_util.h"
#include "passes/passes.h"
#include "runtime/calib_ranges.h"

extern const pq_pass pq_pass_quantize_int8;

static pq_error err;

/* ---- a calibration provider over one in-memory input (ranges only), as the CLI's does ---- */

typedef struct tprov {
    pq_calib_provider p;
    pq_tensor *ins[1];
    pq_calib_set cs;
    uint32_t calls;
} tprov;

static enum pq_status tp_ranges(void *vctx, const pq_graph *g, const uint32_t *values, uint32_t n,
                                const char *method, double pct, float *lo, float *hi, pq_error *e) {
    tprov *tp = vctx;
    tp->calls++;
    pq_graph *c = NULL;
    PQ_TRY(pq_graph_clone(g, &c, e));
    enum pq_status st = pq_runtime_prepare(c, e);
    uint32_t ids[64];
    cr_assert(n <= 64);
    for (uint32_t i = 0; i < n && st == PQ_OK; i++) {
        ids[i] = pq_graph_find_value(c, g->values[values[i]].name);
        cr_assert_neq(ids[i], PQ_NONE);
    }
    if (st == PQ_OK) st = pq_calib_ranges(c, &tp->cs, ids, n, method, pct, lo, hi, e);
    pq_graph_destroy(c);
    return st;
}

/* Provider over in (borrowed). */
static void tp_init(tprov *tp, pq_tensor *in) {
    memset(tp, 0, sizeof *tp);
    tp->ins[0] = in;
    tp->cs = (pq_calib_set){tp->ins, 1, in->dims[0]};
    tp->p.ctx = tp;
    tp->p.ranges = tp_ranges;
    tp->p.samples = (uint64_t)in->dims[0];
}

static pq_tensor *load_npy(const char *rel) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", PQ_SOURCE_DIR, rel);
    pq_tensor *t = NULL;
    cr_assert_eq(pq_npy_read(path, &t, &err), PQ_OK, "%s: %s", path, err.msg);
    return t;
}

static bool file_exists(const char *rel) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", PQ_SOURCE_DIR, rel);
    struct stat st;
    return stat(path, &st) == 0;
}

/* Runs quantize-int8 with opts on g (prepared afterwards) with provider tp; returns the status. */
static enum pq_status run_int8(pq_graph *g, tprov *tp, const char *opts, pq_pass_ctx *ctx) {
    pq_pass_ctx_init(ctx);
    ctx->verbose = 1;
    ctx->calib = tp ? &tp->p : NULL;
    return pq_test_run_pass(g, &pq_pass_quantize_int8, opts, ctx, true, &err);
}

static double cosine(const pq_tensor *a, const pq_tensor *b) {
    cr_assert_eq(pq_tensor_numel(a), pq_tensor_numel(b));
    const float *x = a->data, *y = b->data;
    double d = 0, na = 0, nb = 0;
    for (int64_t i = 0; i < pq_tensor_numel(a); i++) {
        d += (double)x[i] * y[i];
        na += (double)x[i] * x[i];
        nb += (double)y[i] * y[i];
    }
    return na == 0 && nb == 0 ? 1.0 : (na == 0 || nb == 0 ? 0.0 : d / sqrt(na * nb));
}

/* Top-1 accuracy of logits [n, k] against i64 labels [n]. */
static double accuracy(const pq_tensor *logits, const pq_tensor *labels) {
    int64_t n = logits->dims[0], k = logits->dims[1], ok = 0;
    const float *l = logits->data;
    for (int64_t i = 0; i < n; i++) {
        int64_t best = 0;
        for (int64_t j = 1; j < k; j++)
            if (l[i * k + j] > l[i * k + best]) best = j;
        ok += best == pq_dtype_load_i64(labels->dtype, labels->data, (size_t)i);
    }
    return 100.0 * (double)ok / (double)n;
}

/* The canonical passes the int8-cnn preset runs before quantize-int8 (registered names). */
static pq_graph *load_folded(const char *rel) {
    pq_graph *g = pq_test_load_onnx(rel);
    pq_mu_run_pass(g, "fold-batchnorm");
    pq_mu_run_pass(g, "fuse-activations");
    return g;
}

/* The node producing value named name, or asserts. */
static const pq_node *producer_of(const pq_graph *g, const char *name) {
    uint32_t v = pq_graph_find_value(g, name);
    cr_assert_neq(v, PQ_NONE, "no value '%s'", name);
    uint32_t p = g->values[v].producer;
    cr_assert_neq(p, PQ_NONE, "'%s' has no producer", name);
    return &g->nodes[p];
}

/* Every QLinear node reads an i8 weight, and no f32 constant of rank >= 2 is left. */
static void assert_no_f32_weights(const pq_graph *g) {
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const pq_node *n = &g->nodes[i];
        if (n->op != PQ_OP_QLINEAR_CONV && n->op != PQ_OP_QLINEAR_MATMUL) continue;
        cr_assert_eq(g->values[n->inputs[3]].dtype, PQ_DTYPE_I8, "%s", n->name);
        cr_assert_eq(g->values[n->inputs[0]].dtype, PQ_DTYPE_U8, "%s", n->name);
        cr_assert_eq(g->values[n->outputs[0]].dtype, PQ_DTYPE_U8, "%s", n->name);
        if (n->n_inputs > 8) cr_assert_eq(g->values[n->inputs[8]].dtype, PQ_DTYPE_I32);
    }
    for (uint32_t v = 0; v < g->n_values; v++) {
        const pq_tensor *t = g->values[v].constant;
        cr_assert(!(t && t->dtype == PQ_DTYPE_F32 && t->rank >= 2), "f32 weight '%s' left",
                  g->values[v].name);
    }
}

/* digits (Conv-Relu x2, MaxPool, Flatten, Gemm): int8-cnn's passes with percentile ranges from
 * the training images; output cosine vs FP32 >= 0.995, top-1 on the 360 test digits within 1
 * point of FP32's; graph: QuantizeLinear -> QLinearConv -> QLinearConv (u8 directly) ->
 * DequantizeLinear -> MaxPool -> Flatten -> QuantizeLinear -> QLinearMatMul -> DequantizeLinear ->
 * Add(bias); one int8 record per layer. */
Test(quantize_int8, digits_accuracy_and_graph) {
    const char *calib_rel = file_exists("examples/digits/train_x.npy")
                                ? "examples/digits/train_x.npy"
                                : "examples/digits/test_x.npy";
    pq_tensor *calib = load_npy(calib_rel), *test = load_npy("examples/digits/test_x.npy");
    pq_tensor *labels = load_npy("examples/digits/labels.npy");
    pq_graph *ref = load_folded("examples/digits/model.onnx");
    pq_graph *g = load_folded("examples/digits/model.onnx");
    tprov tp;
    tp_init(&tp, calib);
    pq_pass_ctx ctx;
    cr_assert_eq(run_int8(g, &tp, "{activations: percentile}", &ctx), PQ_OK, "%s", err.msg);
    cr_assert_eq(tp.calls, 1u); /* one calibration run for every range */
    pq_tensor **y0 = pq_test_run(ref, test), **y1 = pq_test_run(g, test);
    double cos = cosine(y0[0], y1[0]), a0 = accuracy(y0[0], labels), a1 = accuracy(y1[0], labels);
    fprintf(stderr,
            "quantize-int8 digits (calibration %s, %lld samples): cosine %.6f, top-1 %.2f%% "
            "(FP32 %.2f%%)\n",
            calib_rel, (long long)calib->dims[0], cos, a1, a0);
    cr_assert_geq(cos, 0.995);
    cr_assert_leq(fabs(a1 - a0), 1.0, "int8 %.2f%% vs fp32 %.2f%%", a1, a0);
    cr_assert_float_eq(a0, 98.61, 0.01);

    cr_assert_eq(pq_test_count_op(g, PQ_OP_QLINEAR_CONV), 2u);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_QLINEAR_MATMUL), 1u);
    /* u8 from the input's QuantizeLinear to the last layer's DequantizeLinear: MaxPool and
     * Flatten run on u8 (the DequantizeLinear moved past them, the Gemm's QuantizeLinear took the
     * second Conv's constants and cancelled) */
    cr_assert_eq(pq_test_count_op(g, PQ_OP_QUANTIZE_LINEAR), 1u);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_DEQUANTIZE_LINEAR), 1u);
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == PQ_OP_MAX_POOL || g->nodes[i].op == PQ_OP_FLATTEN) {
            cr_assert_eq(g->values[g->nodes[i].inputs[0]].dtype, PQ_DTYPE_U8, "%s",
                         g->nodes[i].name);
            cr_assert_eq(g->values[g->nodes[i].outputs[0]].dtype, PQ_DTYPE_U8, "%s",
                         g->nodes[i].name);
        }
    const pq_node *mm = NULL;
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == PQ_OP_QLINEAR_MATMUL) mm = &g->nodes[i];
    cr_assert_not_null(mm);
    cr_assert_eq(producer_of(g, g->values[mm->inputs[0]].name)->op, PQ_OP_FLATTEN);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_CONV), 0u);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_GEMM), 0u);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_ADD), 1u);
    assert_no_f32_weights(g);
    /* the second Conv reads the first one's u8 output directly */
    const pq_node *c2 = producer_of(g, "/features/features.3/Conv_output_0_quantized");
    cr_assert_eq(c2->op, PQ_OP_QLINEAR_CONV);
    cr_assert_eq(producer_of(g, g->values[c2->inputs[0]].name)->op, PQ_OP_QLINEAR_CONV);
    /* the QLinearMatMul's x parameters are the second Conv's y parameters (same grid) */
    cr_assert(pq_tensor_numel(g->values[mm->inputs[1]].constant) == 1 &&
              *(const float *)g->values[mm->inputs[1]].constant->data ==
                  *(const float *)g->values[c2->inputs[6]].constant->data);
    /* the graph output keeps its name: Add(DequantizeLinear(QLinearMatMul), bias) */
    const pq_node *add = producer_of(g, "logits");
    cr_assert_eq(add->op, PQ_OP_ADD);
    cr_assert_eq(producer_of(g, g->values[add->inputs[0]].name)->op, PQ_OP_DEQUANTIZE_LINEAR);
    /* Relu fused: output zero point 0 */
    const pq_tensor *zp = g->values[c2->inputs[7]].constant;
    cr_assert_eq(zp->dtype, PQ_DTYPE_U8);
    cr_assert_eq(((const uint8_t *)zp->data)[0], 0);
    cr_assert_eq(ctx.n_records, 3u);
    for (uint32_t i = 0; i < ctx.n_records; i++) {
        const pq_quant_record *r = &ctx.records[i];
        cr_assert_str_eq(r->format, "int8");
        cr_assert_eq(r->stored_bytes, (uint64_t)(r->rows * r->cols + 4 * r->rows));
        cr_assert_gt(r->sum_w2, 0.0);
        cr_assert_lt(r->sum_e2, 1e-3 * r->sum_w2, "%s", r->value_name);
    }
    pq_test_free_outputs(y0, ref->n_outputs);
    pq_test_free_outputs(y1, g->n_outputs);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(ref);
    pq_graph_destroy(g);
    pq_tensor_destroy(calib);
    pq_tensor_destroy(test);
    pq_tensor_destroy(labels);
}

/* minmax ranges and per-tensor weights also work on digits (lower bound only: both coarser). */
Test(quantize_int8, digits_minmax_per_tensor) {
    pq_tensor *calib = load_npy("examples/digits/test_x.npy");
    pq_graph *ref = load_folded("examples/digits/model.onnx");
    pq_graph *g = load_folded("examples/digits/model.onnx");
    tprov tp;
    tp_init(&tp, calib);
    pq_pass_ctx ctx;
    cr_assert_eq(run_int8(g, &tp, "{activations: minmax, per-channel: false}", &ctx), PQ_OK, "%s",
                 err.msg);
    pq_tensor **y0 = pq_test_run(ref, calib), **y1 = pq_test_run(g, calib);
    double cos = cosine(y0[0], y1[0]);
    fprintf(stderr, "quantize-int8 digits minmax per-tensor: cosine %.6f\n", cos);
    cr_assert_geq(cos, 0.99);
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == PQ_OP_QLINEAR_CONV)
            cr_assert_eq(pq_tensor_numel(g->values[g->nodes[i].inputs[4]].constant), 1);
    pq_test_free_outputs(y0, ref->n_outputs);
    pq_test_free_outputs(y1, g->n_outputs);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(ref);
    pq_graph_destroy(g);
    pq_tensor_destroy(calib);
}

/* cnn_bn (Conv-BN-Relu, MaxPool, Conv without bias, Pad + AveragePool, 1x1 Conv, GlobalAveragePool,
 * Gemm): calibrated and evaluated on its 2 reference inputs, cosine >= 0.99. */
Test(quantize_int8, cnn_bn_cosine) {
    pq_tensor *x = load_npy("tests/models/cnn_bn/input_x.npy");
    pq_graph *ref = load_folded("tests/models/cnn_bn/model.onnx");
    pq_graph *g = load_folded("tests/models/cnn_bn/model.onnx");
    tprov tp;
    tp_init(&tp, x);
    pq_pass_ctx ctx;
    cr_assert_eq(run_int8(g, &tp, NULL, &ctx), PQ_OK, "%s", err.msg);
    pq_tensor **y0 = pq_test_run(ref, x), **y1 = pq_test_run(g, x);
    double cos = cosine(y0[0], y1[0]);
    fprintf(stderr, "quantize-int8 cnn_bn: cosine %.6f\n", cos);
    cr_assert_geq(cos, 0.99);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_QLINEAR_CONV), 3u);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_QLINEAR_MATMUL), 1u);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_CONV), 0u);
    assert_no_f32_weights(g);
    pq_test_free_outputs(y0, ref->n_outputs);
    pq_test_free_outputs(y1, g->n_outputs);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(ref);
    pq_graph_destroy(g);
    pq_tensor_destroy(x);
}

/* ---- a fused-activation Conv on exactly representable data ---- */

/* x [N, 2, 5, 5] -> Conv(W [4, 2, 3, 3], b [4]) {activation} -> y. */
static pq_graph *conv_graph(const char *act) {
    char text[4096], w[2048] = "", b[128] = "";
    for (int i = 0; i < 72;
         i++) /* weights j/127 * m_row, j in [-127, 127], each row reaching 127 */
    {
        int row = i / 18, k = i % 18;
        int j = k == 0 ? 127 : ((k * 37 + row * 11) % 255) - 127;
        double m = 0.05 * (row + 1);
        char buf[64];
        snprintf(buf, sizeof buf, "%s%.9g", i ? ", " : "", (double)(float)(j * m / 127.0));
        strcat(w, buf);
    }
    snprintf(b, sizeof b, "0.05, -0.3, 0.125, -0.01");
    snprintf(text, sizeof text,
             "piqc 1\ngraph t {\n"
             "  input %%x: f32[N, 2, 5, 5]\n"
             "  const %%w: f32[4, 2, 3, 3] = [%s]\n"
             "  const %%b: f32[4] = [%s]\n"
             "  %%y = Conv(%%x, %%w, %%b) {pads = [1, 1, 1, 1]%s}  # conv\n"
             "  output %%y\n}\n",
             w, b, act);
    pq_graph *g = NULL;
    cr_assert_eq(pq_text_parse(text, strlen(text), NULL, 0, &g, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    return g;
}

/* x values (k - 51) / 51 for k in [0, 255]: minmax range [-1, 4], so s_x = 5/255 = 1/51 and every
 * x is on the u8 grid. */
static pq_tensor *grid_input(int64_t n) {
    int64_t dims[4] = {n, 2, 5, 5};
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_F32, 4, dims, NULL);
    float *d = t->data;
    for (int64_t i = 0; i < pq_tensor_numel(t); i++) {
        int k = (int)((i * 97 + 13) % 256);
        d[i] = (float)(k - 51) / 51.0f;
    }
    d[0] = -1.0f;
    d[1] = 4.0f;
    return t;
}

/* Captures the u8 input of the DequantizeLinear node (the QLinearConv output). */
typedef struct cap8 {
    pq_tensor *t;
} cap8;

static enum pq_status cap8_observe(void *vctx, const pq_graph *g, uint32_t node,
                                   const pq_tensor *const *in, uint32_t n_in, pq_error *e) {
    (void)n_in;
    cap8 *c = vctx;
    if (g->nodes[node].op == PQ_OP_DEQUANTIZE_LINEAR && !c->t) c->t = pq_tensor_clone(in[0], e);
    return PQ_OK;
}

/* Runs the fused Conv through quantize-int8 (minmax) and compares its u8 output with
 * quantize(act(fp32 conv)) using the layer's own s_y, zp_y: within 1 LSB everywhere, and exact
 * at the clamp (every element whose FP32 value is <= 0 is code zp_y = 0). Returns s_y.
 * epilogue: the activation stays on the QLinearConv as its fused activation (HardSwish, ...): only
 * the 1 LSB bound is checked. */
static float check_fused_ex(const char *act, float clip_max, bool epilogue) {
    pq_graph *ref = conv_graph(act), *g = conv_graph(act);
    pq_tensor *x = grid_input(8);
    tprov tp;
    tp_init(&tp, x);
    pq_pass_ctx ctx;
    cr_assert_eq(run_int8(g, &tp, "{activations: minmax}", &ctx), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_QLINEAR_CONV), 1u);
    const pq_node *dq = producer_of(g, "y");
    cr_assert_eq(dq->op, PQ_OP_DEQUANTIZE_LINEAR);
    const pq_node *qc = producer_of(g, g->values[dq->inputs[0]].name);
    cr_assert_eq(qc->op, PQ_OP_QLINEAR_CONV);
    cr_assert_eq(pq_node_attr(qc, "activation") != NULL, epilogue,
                 "the activation %s on the QLinearConv", epilogue ? "stays" : "is the u8 clamp");
    float sy = *(const float *)g->values[dq->inputs[1]].constant->data;
    uint8_t zy = *(const uint8_t *)g->values[dq->inputs[2]].constant->data;
    if (!epilogue) cr_assert_eq(zy, 0);
    if (clip_max > 0) cr_assert_eq(sy, clip_max / 255.0f);
    const pq_node *q = producer_of(g, "x_quantized");
    cr_assert_float_eq(*(const float *)g->values[q->inputs[1]].constant->data, 5.0f / 255.0f, 1e-9);
    cr_assert_eq(*(const uint8_t *)g->values[q->inputs[2]].constant->data, 51);

    pq_tensor **y0 = pq_test_run(ref, x);
    cap8 c = {NULL};
    pq_session_opts o = {.n_threads = 1, .observe = cap8_observe, .observe_ctx = &c};
    pq_session *s = NULL;
    cr_assert_eq(pq_session_create(g, &o, &s, &err), PQ_OK, "%s", err.msg);
    const pq_tensor *ins[1] = {x};
    pq_tensor *outs[1] = {NULL};
    cr_assert_eq(pq_session_run(s, ins, 1, outs, 1, &err), PQ_OK, "%s", err.msg);
    cr_assert(c.t && c.t->dtype == PQ_DTYPE_U8);
    const float *yf = y0[0]->data;
    const uint8_t *yq = c.t->data;
    int64_t n = pq_tensor_numel(c.t), clamped = 0, off = 0;
    for (int64_t i = 0; i < n; i++) {
        float v = nearbyintf(yf[i] / sy) + (float)zy;
        v = v < 0 ? 0 : (v > 255 ? 255 : v);
        int d = (int)yq[i] - (int)v;
        cr_assert(d >= -1 && d <= 1, "element %lld: int8 %u vs quantized fp32 %g (y %g)",
                  (long long)i, yq[i], v, yf[i]);
        off += d != 0;
        if (!epilogue && yf[i] <= 0.0f) {
            cr_assert_eq(yq[i], 0, "element %lld: fp32 %g after the activation", (long long)i,
                         yf[i]);
            clamped++;
        }
    }
    fprintf(stderr, "quantize-int8 fused %s: %lld of %lld u8 outputs differ by 1 LSB, %lld at 0\n",
            act, (long long)off, (long long)n, (long long)clamped);
    if (!epilogue) cr_assert_gt(clamped, n / 10); /* the activation did clamp */
    pq_tensor_destroy(c.t);
    pq_tensor_destroy(outs[0]);
    pq_session_destroy(s);
    pq_test_free_outputs(y0, 1);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(ref);
    pq_graph_destroy(g);
    pq_tensor_destroy(x);
    return sy;
}

static float check_fused(const char *act, float clip_max) {
    return check_fused_ex(act, clip_max, false);
}

Test(quantize_int8, relu_fused_equals_quantized_fp32) {
    check_fused(", activation = \"Relu\"", 0);
}

/* Clip(0, 6): the output range is exactly [0, 6], so code 255 is 6.0. */
Test(quantize_int8, clip06_fused_range_is_exact) {
    check_fused(", activation = \"Clip\", activation_alpha = 0.0, activation_beta = 0.5", 0.5f);
}

/* HardSwish / HardSigmoid / LeakyRelu have no exact u8 clamp: they stay on the QLinearConv as
 * its fused activation (the INT8 epilogue), within 1 LSB of quantize(act(fp32 conv)). */
Test(quantize_int8, hard_swish_fused_epilogue) {
    check_fused_ex(", activation = \"HardSwish\"", 0, true);
}

Test(quantize_int8, hard_sigmoid_and_leaky_relu_fused_epilogue) {
    check_fused_ex(", activation = \"HardSigmoid\", activation_alpha = 0.25, activation_beta = 0.5",
                   0, true);
    check_fused_ex(", activation = \"LeakyRelu\", activation_alpha = 0.1", 0, true);
}

/* Sigmoid and Swish (EfficientNet's squeeze-excite gates and SiLU) run in the epilogue too,
 * through its own logistic function (pq_i8_sigmoid_f32). */
Test(quantize_int8, sigmoid_and_swish_fused_epilogue) {
    check_fused_ex(", activation = \"Sigmoid\"", 0, true);
    check_fused_ex(", activation = \"Swish\"", 0, true);
}

/* Tanh has neither: the layer stays FP32, the graph is unchanged. */
Test(quantize_int8, tanh_stays_fp32) {
    pq_graph *g = conv_graph(", activation = \"Tanh\"");
    pq_tensor *x = grid_input(4);
    tprov tp;
    tp_init(&tp, x);
    pq_pass_ctx ctx;
    cr_assert_eq(run_int8(g, &tp, NULL, &ctx), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_CONV), 1u);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_QLINEAR_CONV), 0u);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_QUANTIZE_LINEAR), 0u);
    cr_assert_eq(ctx.n_records, 0u);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(g);
    pq_tensor_destroy(x);
}

/* MLP: Gemm(transB, C){Relu} -> MatMul: QLinearMatMul x2, the bias on an FP32 Add that runs the
 * Relu, cosine vs FP32 >= 0.999. */
Test(quantize_int8, gemm_bias_and_matmul) {
    char text[4096], w1[1024] = "", w2[512] = "";
    for (int i = 0; i < 6 * 8; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%s%.4g", i ? ", " : "", sin(0.7 * i + 0.3));
        strcat(w1, buf);
    }
    for (int i = 0; i < 6 * 3; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%s%.4g", i ? ", " : "", cos(1.3 * i));
        strcat(w2, buf);
    }
    snprintf(text, sizeof text,
             "piqc 1\ngraph t {\n"
             "  input %%x: f32[N, 8]\n"
             "  const %%w1: f32[6, 8] = [%s]\n"
             "  const %%c: f32[6] = [0.1, -0.2, 0.3, 0.5, -0.05, 0]\n"
             "  const %%w2: f32[6, 3] = [%s]\n"
             "  %%h = Gemm(%%x, %%w1, %%c) {transB = 1, activation = \"Relu\"}  # fc1\n"
             "  %%y = MatMul(%%h, %%w2)  # fc2\n"
             "  output %%y\n}\n",
             w1, w2);
    pq_graph *ref = NULL, *g = NULL;
    cr_assert_eq(pq_text_parse(text, strlen(text), NULL, 0, &ref, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_text_parse(text, strlen(text), NULL, 0, &g, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_runtime_prepare(ref, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    int64_t dims[2] = {64, 8};
    pq_tensor *x = pq_tensor_create(PQ_DTYPE_F32, 2, dims, NULL);
    for (int64_t i = 0; i < 64 * 8; i++)
        ((float *)x->data)[i] = (float)sin(0.37 * (double)i) * 2.0f;
    tprov tp;
    tp_init(&tp, x);
    pq_pass_ctx ctx;
    cr_assert_eq(run_int8(g, &tp, NULL, &ctx), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_QLINEAR_MATMUL), 2u);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_GEMM) + pq_test_count_op(g, PQ_OP_MATMUL), 0u);
    const pq_node *add = producer_of(g, "h");
    cr_assert_eq(add->op, PQ_OP_ADD);
    cr_assert_str_eq(pq_node_attr_string(add, "activation", ""), "Relu");
    /* QLinearMatMul reads B as [K, N]: the transB weight [6, 8] is stored [8, 6] */
    const pq_node *mm =
        producer_of(g, g->values[producer_of(g, g->values[add->inputs[0]].name)->inputs[0]].name);
    cr_assert_eq(mm->op, PQ_OP_QLINEAR_MATMUL);
    const pq_tensor *wq = g->values[mm->inputs[3]].constant;
    cr_assert_eq(wq->dims[0], 8);
    cr_assert_eq(wq->dims[1], 6);
    cr_assert_eq(pq_tensor_numel(g->values[mm->inputs[4]].constant), 6);
    assert_no_f32_weights(g);
    pq_tensor **y0 = pq_test_run(ref, x), **y1 = pq_test_run(g, x);
    double cos = cosine(y0[0], y1[0]);
    fprintf(stderr, "quantize-int8 mlp (Gemm bias + Relu, MatMul): cosine %.6f\n", cos);
    cr_assert_geq(cos, 0.999);
    pq_test_free_outputs(y0, 1);
    pq_test_free_outputs(y1, 1);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(ref);
    pq_graph_destroy(g);
    pq_tensor_destroy(x);
}

/* A model with no FP32 layer left (a QDQ model fold-qdq made integer): nothing to do, so no
 * calibration data is needed and the graph is unchanged. */
Test(quantize_int8, integer_model_needs_no_calibration) {
    const char *text = "piqc 1\ngraph t {\n"
                       "  input %xq: u8[1, 2, 4, 4]\n"
                       "  const %sx: f32[] = [0.03125]\n  const %zx: u8[] = [128]\n"
                       "  const %w: i8[1, 2, 1, 1] = [3, -4]\n"
                       "  const %sw: f32[] = [0.01]\n  const %zw: i8[] = [0]\n"
                       "  const %sy: f32[] = [0.05]\n  const %zy: u8[] = [0]\n"
                       "  %c = QLinearConv(%xq, %sx, %zx, %w, %sw, %zw, %sy, %zy)\n"
                       "  output %c\n}\n";
    pq_graph *g = NULL;
    cr_assert_eq(pq_text_parse(text, strlen(text), NULL, 0, &g, &err), PQ_OK, "%s", err.msg);
    uint32_t before = g->n_nodes;
    pq_pass_ctx ctx;
    cr_assert_eq(run_int8(g, NULL, NULL, &ctx), PQ_OK, "%s", err.msg);
    cr_assert_eq(g->n_nodes, before);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_QLINEAR_CONV), 1u);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(g);
}

/* Without calibration data: INVALID naming --calib-data; a non-finite weight: INVALID naming the
 * layer, the tensor and the index; a bad regex at check time. */
Test(quantize_int8, errors) {
    pq_graph *g = conv_graph(", activation = \"Relu\"");
    pq_pass_ctx ctx;
    cr_assert_eq(run_int8(g, NULL, NULL, &ctx), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "quantize-int8 needs calibration data (--calib-data)"), "%s",
              err.msg);
    pq_pass_ctx_free(&ctx);
    /* a provider with no samples is no data either */
    pq_tensor *x = grid_input(4);
    tprov tp;
    tp_init(&tp, x);
    tp.p.samples = 0;
    cr_assert_eq(run_int8(g, &tp, NULL, &ctx), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "needs calibration data"), "%s", err.msg);
    pq_pass_ctx_free(&ctx);
    tp.p.samples = 4;
    float *w = g->values[pq_graph_find_value(g, "w")].constant->data;
    w[20] = NAN;
    cr_assert_eq(run_int8(g, &tp, NULL, &ctx), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "layer 'conv' (Conv)") && strstr(err.msg, "'w'") &&
                  strstr(err.msg, "20"),
              "%s", err.msg);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(g);
    pq_tensor_destroy(x);

    const pq_pass *p = pq_pass_find("quantize-int8");
    cr_assert_eq(p, &pq_pass_quantize_int8);
    pq_pipeline *pl = NULL;
    const char *yaml = "passes:\n  - quantize-int8: {include: \"(\"}\n";
    cr_assert_eq(pq_pipeline_parse(yaml, strlen(yaml), "t.yaml", &pl, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "include"), "%s", err.msg);
    yaml = "passes:\n  - quantize-int8: {percentile: 10}\n";
    cr_assert_eq(pq_pipeline_parse(yaml, strlen(yaml), "t.yaml", &pl, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "percentile"), "%s", err.msg);
}
