/* QLinearAdd / QLinearMul in the passes: quantize-int8 on a tiny residual block (Conv-Relu, Conv,
 * Add+Relu, 1x1 Conv) keeps the residual Add in u8 between the int8 convolutions (option
 * qlinear-add, and off), and on a squeeze-excite block the Mul (QLinearMul), outputs close to FP32;
 * the QDQ export of QLinearAdd (DequantizeLinear x2 -> Add [-> Relu]
 * -> QuantizeLinear) computes the same bytes unfused and folds back into QLinearAdd (fold-qdq);
 * QLinearGlobalAveragePool's export is within 1 LSB unfused and folds back exactly. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "frontends/frontends.h"
#include "frontends/onnx.h"
#include "frontends/onnx_export.h"
#include "ir/alloc.h"
#include "ir/text.h"
#include "model_util.h"
#include "pass_test_util.h"
#include "passes/passes.h"
#include "runtime/calib_ranges.h"

extern const pq_pass pq_pass_quantize_int8;

static pq_error err;

/* ---- a calibration provider over one in-memory input (ranges only) ---- */

typedef struct tprov {
    pq_calib_provider p;
    pq_tensor *ins[1];
    pq_calib_set cs;
} tprov;

static enum pq_status tp_ranges(void *vctx, const pq_graph *g, const uint32_t *values, uint32_t n,
                                const char *method, double pct, float *lo, float *hi, pq_error *e) {
    tprov *tp = vctx;
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

static void tp_init(tprov *tp, pq_tensor *in) {
    memset(tp, 0, sizeof *tp);
    tp->ins[0] = in;
    tp->cs = (pq_calib_set){tp->ins, 1, in->dims[0]};
    tp->p.ctx = tp;
    tp->p.ranges = tp_ranges;
    tp->p.samples = (uint64_t)in->dims[0];
}

static uint64_t g_s = 0x2545F4914F6CDD1DULL;
static double urand(void) { /* [-1, 1) */
    g_s ^= g_s >> 12;
    g_s ^= g_s << 25;
    g_s ^= g_s >> 27;
    return (double)((g_s * 2685821657736338717ULL) >> 11) / 4503599627370496.0 - 1.0;
}

/* n comma-separated values urand() * m. */
static void rand_list(char *buf, size_t size, int n, double m) {
    size_t len = 0;
    for (int i = 0; i < n && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%.6g", i ? ", " : "", urand() * m);
}

/* x [N, 4, 6, 6] -> Conv3x3+Relu -> c1; Conv3x3(c1) -> c2; Add(c2, c1)+Relu -> s; Conv1x1(s). */
static pq_graph *residual_graph(void) {
    static char w1[4096], w2[4096], w3[1024], b[3][256], text[16384];
    g_s = 0x2545F4914F6CDD1DULL;
    rand_list(w1, sizeof w1, 144, 0.3);
    rand_list(w2, sizeof w2, 144, 0.3);
    rand_list(w3, sizeof w3, 16, 0.5);
    for (int i = 0; i < 3; i++)
        rand_list(b[i], sizeof b[i], 4, 0.1);
    snprintf(text, sizeof text,
             "piqc 1\ngraph t {\n  input %%x: f32[N, 4, 6, 6]\n"
             "  const %%w1: f32[4, 4, 3, 3] = [%s]\n  const %%b1: f32[4] = [%s]\n"
             "  const %%w2: f32[4, 4, 3, 3] = [%s]\n  const %%b2: f32[4] = [%s]\n"
             "  const %%w3: f32[4, 4, 1, 1] = [%s]\n  const %%b3: f32[4] = [%s]\n"
             "  %%c1 = Conv(%%x, %%w1, %%b1) {pads = [1, 1, 1, 1], activation = \"Relu\"}\n"
             "  %%c2 = Conv(%%c1, %%w2, %%b2) {pads = [1, 1, 1, 1]}\n"
             "  %%s = Add(%%c2, %%c1) {activation = \"Relu\"}\n"
             "  %%y = Conv(%%s, %%w3, %%b3)\n  output %%y\n}\n",
             w1, b[0], w2, b[1], w3, b[2]);
    pq_graph *g = NULL;
    cr_assert_eq(pq_text_parse(text, strlen(text), NULL, 0, &g, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    return g;
}

/* x -> Conv3x3+Relu -> c1; GlobalAveragePool(c1) -> Conv1x1+HardSigmoid -> s [N, 4, 1, 1];
 * Mul(c1, s) -> Conv3x3 -> y (mobilenet_v3's squeeze-excite, shortened). */
static pq_graph *se_graph(void) {
    static char w1[4096], w2[4096], w3[1024], b[3][256], text[16384];
    g_s = 0x2545F4914F6CDD1DULL;
    rand_list(w1, sizeof w1, 144, 0.3);
    rand_list(w2, sizeof w2, 144, 0.3);
    rand_list(w3, sizeof w3, 16, 2.0);
    for (int i = 0; i < 3; i++)
        rand_list(b[i], sizeof b[i], 4, 0.1);
    snprintf(text, sizeof text,
             "piqc 1\ngraph t {\n  input %%x: f32[N, 4, 6, 6]\n"
             "  const %%w1: f32[4, 4, 3, 3] = [%s]\n  const %%b1: f32[4] = [%s]\n"
             "  const %%w2: f32[4, 4, 3, 3] = [%s]\n  const %%b2: f32[4] = [%s]\n"
             "  const %%w3: f32[4, 4, 1, 1] = [%s]\n  const %%b3: f32[4] = [%s]\n"
             "  %%c1 = Conv(%%x, %%w1, %%b1) {pads = [1, 1, 1, 1], activation = \"Relu\"}\n"
             "  %%g = GlobalAveragePool(%%c1)\n"
             "  %%s = Conv(%%g, %%w3, %%b3) {activation = \"HardSigmoid\", activation_alpha = "
             "0.16666667, activation_beta = 0.5}\n"
             "  %%m = Mul(%%c1, %%s)\n"
             "  %%y = Conv(%%m, %%w2, %%b2) {pads = [1, 1, 1, 1]}\n  output %%y\n}\n",
             w1, b[0], w2, b[1], w3, b[2]);
    pq_graph *g = NULL;
    cr_assert_eq(pq_text_parse(text, strlen(text), NULL, 0, &g, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    return g;
}

static pq_tensor *rand_input(int64_t n) {
    int64_t dims[4] = {n, 4, 6, 6};
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_F32, 4, dims, NULL);
    cr_assert_not_null(t);
    for (int64_t i = 0; i < pq_tensor_numel(t); i++)
        ((float *)t->data)[i] = (float)(urand() * 2.0);
    return t;
}

static double cosine(const pq_tensor *a, const pq_tensor *b) {
    const float *x = a->data, *y = b->data;
    double d = 0, na = 0, nb = 0;
    for (int64_t i = 0; i < pq_tensor_numel(a); i++) {
        d += (double)x[i] * y[i];
        na += (double)x[i] * x[i];
        nb += (double)y[i] * y[i];
    }
    return d / sqrt(na * nb);
}

static const pq_node *only(const pq_graph *g, enum pq_op op) {
    const pq_node *n = NULL;
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == op) {
            cr_assert_null(n, "more than one %s", pq_op_name(op));
            n = &g->nodes[i];
        }
    cr_assert_not_null(n, "no %s", pq_op_name(op));
    return n;
}

/* The residual Add reads two int8 results: it becomes QLinearAdd with its fused Relu and u8 flows
 * from the input's QuantizeLinear to the last layer's DequantizeLinear; cosine vs FP32 >= 0.999. */
Test(qlinear_add_pass, quantize_int8_residual_block) {
    pq_tensor *calib = rand_input(16), *test = rand_input(4);
    pq_graph *ref = residual_graph(), *g = residual_graph();
    tprov tp;
    tp_init(&tp, calib);
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 2;
    ctx.calib = &tp.p;
    cr_assert_eq(pq_test_run_pass(g, &pq_pass_quantize_int8, NULL, &ctx, true, &err), PQ_OK, "%s",
                 err.msg);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_QLINEAR_CONV), 3u);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_ADD), 0u);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_QUANTIZE_LINEAR), 1u);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_DEQUANTIZE_LINEAR), 1u);
    const pq_node *qa = only(g, PQ_OP_QLINEAR_ADD);
    cr_assert_eq(qa->n_inputs, 8u);
    for (uint32_t k = 0; k < 2; k++) {
        uint32_t p = g->values[qa->inputs[3 * k]].producer;
        cr_assert_neq(p, PQ_NONE);
        cr_assert_eq(g->nodes[p].op, PQ_OP_QLINEAR_CONV, "input %u", 3 * k);
    }
    cr_assert_str_eq(pq_node_attr_string(qa, "activation", ""), "Relu");
    const pq_tensor *zc = g->values[qa->inputs[7]].constant;
    cr_assert_eq(((const uint8_t *)zc->data)[0], 0, "Relu range: zero point 0");
    cr_assert_eq(g->values[qa->outputs[0]].dtype, PQ_DTYPE_U8);
    /* the last Conv reads the QLinearAdd's u8 output with the same scale constant bytes */
    const pq_node *last = NULL;
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == PQ_OP_QLINEAR_CONV && g->nodes[i].inputs[0] == qa->outputs[0])
            last = &g->nodes[i];
    cr_assert_not_null(last);
    pq_tensor **y0 = pq_test_run(ref, test), **y1 = pq_test_run(g, test);
    double cos = cosine(y0[0], y1[0]);
    fprintf(stderr, "quantize-int8 residual block with QLinearAdd: cosine vs FP32 %.6f\n", cos);
    cr_assert_geq(cos, 0.999);
    pq_test_free_outputs(y0, ref->n_outputs);
    pq_test_free_outputs(y1, g->n_outputs);
    pq_pass_ctx_free(&ctx);

    /* qlinear-add off: the Add stays FP32 between a DequantizeLinear pair and a QuantizeLinear */
    pq_graph *h = residual_graph();
    pq_pass_ctx_init(&ctx);
    ctx.calib = &tp.p;
    cr_assert_eq(
        pq_test_run_pass(h, &pq_pass_quantize_int8, "{qlinear-add: false}", &ctx, true, &err),
        PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_QLINEAR_ADD), 0u);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_ADD), 1u);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(h);
    pq_graph_destroy(ref);
    pq_graph_destroy(g);
    pq_tensor_destroy(calib);
    pq_tensor_destroy(test);
}

/* The squeeze-excite Mul of two int8 results (x u8 from a QLinearConv, s [N, C, 1, 1] u8 from a
 * QLinearConv with its HardSigmoid epilogue) becomes a broadcasting QLinearMul; cosine >= 0.999. */
Test(qlinear_add_pass, quantize_int8_squeeze_excite_mul) {
    pq_tensor *calib = rand_input(16), *test = rand_input(4);
    pq_graph *ref = se_graph(), *g = se_graph();
    tprov tp;
    tp_init(&tp, calib);
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 2;
    ctx.calib = &tp.p;
    cr_assert_eq(pq_test_run_pass(g, &pq_pass_quantize_int8, NULL, &ctx, true, &err), PQ_OK, "%s",
                 err.msg);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_QLINEAR_CONV), 3u);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_MUL), 0u);
    const pq_node *qm = only(g, PQ_OP_QLINEAR_MUL);
    cr_assert_eq(g->values[qm->inputs[3]].shape.rank, 4);
    cr_assert_eq(g->values[qm->inputs[3]].shape.dims[2].size, 1);
    for (uint32_t k = 0; k < 2; k++)
        cr_assert_eq(g->nodes[g->values[qm->inputs[3 * k]].producer].op, PQ_OP_QLINEAR_CONV);
    pq_tensor **y0 = pq_test_run(ref, test), **y1 = pq_test_run(g, test);
    double cos = cosine(y0[0], y1[0]);
    fprintf(stderr, "quantize-int8 squeeze-excite with QLinearMul: cosine vs FP32 %.6f\n", cos);
    cr_assert_geq(cos, 0.999);
    pq_test_free_outputs(y0, ref->n_outputs);
    pq_test_free_outputs(y1, g->n_outputs);
    pq_pass_ctx_free(&ctx);
    pq_graph *h = se_graph(); /* qlinear-mul off: the Mul stays FP32 */
    pq_pass_ctx_init(&ctx);
    ctx.calib = &tp.p;
    cr_assert_eq(
        pq_test_run_pass(h, &pq_pass_quantize_int8, "{qlinear-mul: false}", &ctx, true, &err),
        PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_QLINEAR_MUL), 0u);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_MUL), 1u);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(h);
    pq_graph_destroy(ref);
    pq_graph_destroy(g);
    pq_tensor_destroy(calib);
    pq_tensor_destroy(test);
}

/* QLinearAdd (same shape, no activation; per-channel broadcast with a fused Relu and a zero point
 * that is not the lowest code) -> QDQ export -> import: the unfused graph gives the same bytes,
 * and fold-qdq folds both back into QLinearAdd with the same bytes. */
Test(qlinear_add_pass, qdq_export_unfused_exact_and_folds_back) {
    pq_graph *g = pq_mu_parse(
        "piqc 1\ngraph t {\n"
        "  input %x: f32[2, 8, 5, 5]\n"
        "  const %sa: f32[] = [0.031]\n  const %za: u8[] = [120]\n"
        "  const %sb: f32[] = [0.0043]\n  const %zb: u8[] = [3]\n"
        "  const %sc: f32[] = [0.045]\n  const %zc: u8[] = [99]\n"
        "  const %sd: f32[] = [0.02]\n  const %zd: u8[] = [17]\n"
        "  %s = Sigmoid(%x)\n"
        "  %m = GlobalAveragePool(%x)\n"
        "  %qa = QuantizeLinear(%x, %sa, %za)\n"
        "  %qb = QuantizeLinear(%s, %sb, %zb)\n"
        "  %qm = QuantizeLinear(%m, %sa, %za)\n"
        "  %y1 = QLinearAdd(%qa, %sa, %za, %qb, %sb, %zb, %sc, %zc)\n"
        "  %y2 = QLinearAdd(%y1, %sc, %zc, %qm, %sa, %za, %sd, %zd) {activation = \"Relu\"}\n"
        "  %y3 = QLinearMul(%y2, %sd, %zd, %qm, %sa, %za, %sc, %zc)\n"
        "  %f1 = DequantizeLinear(%y1, %sc, %zc)\n"
        "  %f2 = DequantizeLinear(%y2, %sd, %zd)\n"
        "  %f3 = DequantizeLinear(%y3, %sc, %zc)\n"
        "  output %f1\n  output %f2\n  output %f3\n}\n");
    uint8_t *buf = NULL;
    size_t len = 0;
    pq_onnx_export_opts o = {.qdq = true};
    pq_graph *h = pq_test_qdq_round_trip(g);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_QLINEAR_ADD), 0u);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_ADD), 2u);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_MUL), 1u);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_RELU), 1u);
    double d0 = pq_mu_same_function(g, h);
    cr_assert_eq(d0, 0.0, "unfused QDQ differs from QLinearAdd by %g", d0);
    pq_mu_run_pass(h, "fold-qdq");
    cr_assert_eq(pq_test_count_op(h, PQ_OP_QLINEAR_ADD), 2u);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_QLINEAR_MUL), 1u);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_ADD) + pq_test_count_op(h, PQ_OP_RELU) +
                     pq_test_count_op(h, PQ_OP_MUL),
                 0u);
    double d1 = pq_mu_same_function(g, h);
    cr_assert_eq(d1, 0.0, "folded QDQ differs from QLinearAdd by %g", d1);
    /* the plain export writes QLinearAdd in its QDQ form too (no default-domain op) */
    o.qdq = false;
    cr_assert_eq(pq_onnx_export_buffer(g, &o, &buf, &len, &err), PQ_OK, "%s", err.msg);
    pq_graph *p = NULL;
    cr_assert_eq(pq_onnx_import_buffer(buf, len, NULL, &p, &err), PQ_OK, "%s", err.msg);
    pq_free(buf);
    cr_assert_eq(pq_test_count_op(p, PQ_OP_QLINEAR_ADD), 0u);
    cr_assert_eq(pq_test_count_op(p, PQ_OP_ADD), 2u);
    pq_graph_destroy(p);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}

/* QLinearGlobalAveragePool -> QDQ export (DequantizeLinear -> GlobalAveragePool -> QuantizeLinear)
 * -> import -> fold-qdq gives QLinearGlobalAveragePool again with the same bytes; the unfused f32
 * pool (rounded f32 sum) is within one step (1 LSB) of the integer one. */
Test(qlinear_add_pass, qlinear_gap_export_and_fold) {
    pq_graph *g = pq_mu_parse("piqc 1\ngraph t {\n"
                              "  input %x: f32[2, 16, 7, 7]\n"
                              "  const %sa: f32[] = [0.031]\n  const %za: u8[] = [120]\n"
                              "  const %sc: f32[] = [0.0021]\n  const %zc: u8[] = [128]\n"
                              "  %qa = QuantizeLinear(%x, %sa, %za)\n"
                              "  %p = QLinearGlobalAveragePool(%qa, %sa, %za, %sc, %zc)\n"
                              "  %f = DequantizeLinear(%p, %sc, %zc)\n"
                              "  output %f\n}\n");
    pq_graph *h = pq_test_qdq_round_trip(g);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_QLINEAR_GLOBAL_AVERAGE_POOL), 0u);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_GLOBAL_AVERAGE_POOL), 1u);
    int64_t dims[4] = {2, 16, 7, 7};
    pq_tensor *x = pq_tensor_create(PQ_DTYPE_F32, 4, dims, NULL);
    for (int64_t i = 0; i < pq_tensor_numel(x); i++)
        ((float *)x->data)[i] = (float)(urand() * 3.5);
    pq_tensor **y0 = pq_test_run(g, x), **y1 = pq_test_run(h, x);
    double md = 0;
    for (int64_t i = 0; i < pq_tensor_numel(y0[0]); i++) {
        double d = fabs((double)((float *)y0[0]->data)[i] - ((float *)y1[0]->data)[i]);
        md = d > md ? d : md;
    }
    cr_assert_leq(md, 0.0021 * 1.0001, "unfused pool differs by %g (> 1 step)", md);
    pq_test_free_outputs(y1, h->n_outputs);
    pq_mu_run_pass(h, "fold-qdq");
    cr_assert_eq(pq_test_count_op(h, PQ_OP_QLINEAR_GLOBAL_AVERAGE_POOL), 1u);
    cr_assert_eq(pq_test_count_op(h, PQ_OP_GLOBAL_AVERAGE_POOL), 0u);
    y1 = pq_test_run(h, x);
    cr_assert_eq(memcmp(y0[0]->data, y1[0]->data, y0[0]->nbytes), 0, "folded pool differs");
    fprintf(stderr, "QLinearGlobalAveragePool: unfused QDQ max diff %g (step 0.0021), folded 0\n",
            md);
    pq_test_free_outputs(y0, g->n_outputs);
    pq_test_free_outputs(y1, h->n_outputs);
    pq_tensor_destroy(x);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}
