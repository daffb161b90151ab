/* `piqc export`: a hand-built INT8 digits CNN (tests/tools/gen_int8_digits.py: QLinearConv x2,
 * QLinearMatMul) compiled to an artifact, exported with --onnx-qdq, run by onnxruntime-node
 * (tests/tools/ort_run.js) and compared with piqc's run of the artifact; usage and refusals. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontends/npy.h"
#include "frontends/onnx.h"
#include "ir/ir.h"
#include "tools/cli_util.h"

#define PIQC PQ_BINARY_DIR "/tools/piqc"
#define GEN "/usr/bin/python3 " PQ_SOURCE_DIR "/tests/tools/gen_int8_digits.py"
#define ORT_RUN "node " PQ_SOURCE_DIR "/tests/tools/ort_run.js"
#define ORT_MODULE PQ_SOURCE_DIR "/node_modules/onnxruntime-node/package.json"

static char tmp[256];

static void setup(void) {
    pq_cli_mkdtemp(tmp, sizeof tmp, "export");
}

static void teardown(void) {
    pq_cli_rmtree(tmp);
}

TestSuite(export, .init = setup, .fini = teardown, .timeout = 300);

static pq_tensor *npy(const char *fmt, const char *a) {
    char path[512];
    snprintf(path, sizeof path, fmt, tmp, a);
    pq_tensor *t = NULL;
    pq_error err;
    cr_assert_eq(pq_npy_read(path, &t, &err), PQ_OK, "%s", err.msg);
    return t;
}

/* Generates the INT8 digits model into tmp (skips visibly when python3-torch/onnx are missing). */
static void gen_int8(void) {
    char out[8192];
    if (pq_cli_sh(out, sizeof out, GEN " %s", tmp) != 0)
        cr_skip("gen_int8_digits.py failed (needs python3-onnx and python3-torch): %s", out);
}

/* Compiles the QOperator model into an artifact with a pipeline that leaves the INT8 ops alone. */
static void compile_int8(char *out, size_t size) {
    char yaml[400];
    snprintf(yaml, sizeof yaml, "%s/dce.yaml", tmp);
    FILE *f = fopen(yaml, "w");
    cr_assert_not_null(f);
    fprintf(f, "passes:\n  - dce\n");
    fclose(f);
    cr_assert_eq(pq_cli_sh(out, size,
                           PIQC " compile %s/digits_int8.onnx --pipeline %s -o %s/int8.gguf", tmp,
                           yaml, tmp),
                 0, "%s", out);
}

static uint32_t count_op(const pq_graph *g, enum pq_op op) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++)
        n += g->nodes[i].op == op;
    return n;
}

Test(export, int8_artifact_qdq_onnxruntime) {
    char out[65536];
    gen_int8();
    compile_int8(out, sizeof out);
    cr_assert_eq(
        pq_cli_sh(out, sizeof out, PIQC " export %s/int8.gguf --onnx-qdq %s/qdq.onnx", tmp, tmp), 0,
        "%s", out);
    cr_assert(strstr(out, "2 QLinearConv and 1 QLinearMatMul in QDQ form"), "%s", out);
    /* the file is the QDQ form: no QLinear op left, DQ -> Conv/MatMul -> Q */
    char path[400];
    snprintf(path, sizeof path, "%s/qdq.onnx", tmp);
    pq_graph *g = NULL;
    pq_error err;
    cr_assert_eq(pq_onnx_import_file(path, &g, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(count_op(g, PQ_OP_QLINEAR_CONV) + count_op(g, PQ_OP_QLINEAR_MATMUL), 0u);
    cr_assert_eq(count_op(g, PQ_OP_CONV), 2u);
    cr_assert_eq(count_op(g, PQ_OP_MATMUL), 1u);
    cr_assert_eq(count_op(g, PQ_OP_QUANTIZE_LINEAR), 4u); /* input + 3 layers */
    cr_assert_eq(count_op(g, PQ_OP_DEQUANTIZE_LINEAR),
                 9u); /* x, w, bias per conv; x, w for fc; out */
    cr_assert_geq(pq_graph_opset(g, ""), 13);
    const pq_tensor *ms = NULL;
    uint32_t v = pq_graph_find_value(g, "mm_scale");
    cr_assert_neq(v, PQ_NONE);
    ms = g->values[v].constant;
    cr_assert_not_null(ms);
    const double step = ((const float *)ms->data)[0];
    pq_graph_destroy(g);

    /* piqc's run of the INT8 artifact */
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           PIQC " run %s/int8.gguf --input input=%s/input_x.npy "
                                "--output-dir %s/piqc",
                           tmp, tmp, tmp),
                 0, "%s", out);
    if (access(ORT_MODULE, R_OK) != 0)
        cr_skip("onnxruntime-node is not installed (ONNXRUNTIME_NODE_INSTALL=skip npm install "
                "at the repository root): the QDQ export was written and re-imported but not run");
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           ORT_RUN " %s/qdq.onnx --input input=%s/input_x.npy "
                                   "--output-dir %s/ort",
                           tmp, tmp, tmp),
                 0, "%s", out);
    /* u8 output of the last QLinearMatMul: equal or within 1 LSB (onnxruntime's fused QLinear
     * kernels requantize with a float multiplier, piqc's reference in double) */
    pq_tensor *a = npy("%s/piqc/%s", "mm_q.npy"), *b = npy("%s/ort/%s", "mm_q.npy");
    cr_assert_eq(a->dtype, PQ_DTYPE_U8);
    cr_assert_eq(b->dtype, PQ_DTYPE_U8);
    cr_assert_eq(pq_tensor_numel(a), pq_tensor_numel(b));
    int64_t n = pq_tensor_numel(a), off = 0, maxd = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t d = (int64_t)((uint8_t *)a->data)[i] - ((uint8_t *)b->data)[i];
        d = d < 0 ? -d : d;
        off += d != 0;
        maxd = d > maxd ? d : maxd;
    }
    cr_assert_leq(maxd, 1, "u8 outputs differ by %lld LSB", (long long)maxd);
    /* f32 logits after the final DequantizeLinear (+ f32 bias): within one quantization step */
    pq_tensor *fa = npy("%s/piqc/%s", "logits.npy"), *fb = npy("%s/ort/%s", "logits.npy");
    double fmax = 0;
    for (int64_t i = 0; i < pq_tensor_numel(fa); i++) {
        double d = ((float *)fa->data)[i] - ((float *)fb->data)[i];
        fmax = d < 0 ? (-d > fmax ? -d : fmax) : (d > fmax ? d : fmax);
    }
    cr_assert_leq(fmax, step * 1.0001, "logits differ by %g > one step %g", fmax, step);
    fprintf(stderr,
            "export qdq digits int8 vs onnxruntime: u8 %lld of %lld differ (max %lld LSB); "
            "logits max |diff| %.3g (step %.3g)\n",
            (long long)off, (long long)n, (long long)maxd, fmax, step);
    pq_tensor_destroy(a);
    pq_tensor_destroy(b);
    pq_tensor_destroy(fa);
    pq_tensor_destroy(fb);
}

/* Plain --onnx keeps the QOperator ops; onnxruntime runs that file too (same bytes as piqc). */
Test(export, plain_onnx_keeps_qlinear_ops) {
    char out[65536];
    gen_int8();
    cr_assert_eq(pq_cli_sh(out, sizeof out, PIQC " export %s/digits_int8.onnx --onnx %s/plain.onnx",
                           tmp, tmp),
                 0, "%s", out);
    char path[400];
    snprintf(path, sizeof path, "%s/plain.onnx", tmp);
    pq_graph *g = NULL;
    pq_error err;
    cr_assert_eq(pq_onnx_import_file(path, &g, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(count_op(g, PQ_OP_QLINEAR_CONV), 2u);
    pq_graph_destroy(g);
    if (access(ORT_MODULE, R_OK) != 0) cr_skip("onnxruntime-node is not installed");
    cr_assert_eq(
        pq_cli_sh(out, sizeof out, ORT_RUN " %s/plain.onnx --input input=%s/input_x.npy", tmp, tmp),
        0, "%s", out);
}

/* FP32 export of the digits model runs in onnxruntime with PyTorch's logits. */
Test(export, fp32_onnxruntime_matches_pytorch) {
    char out[65536];
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           PIQC " export " PQ_SOURCE_DIR
                                "/examples/digits/model.onnx --onnx %s/d.onnx",
                           tmp),
                 0, "%s", out);
    if (access(ORT_MODULE, R_OK) != 0) cr_skip("onnxruntime-node is not installed");
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           ORT_RUN " %s/d.onnx --input input=" PQ_SOURCE_DIR
                                   "/examples/digits/test_x.npy --output-dir %s/o",
                           tmp, tmp),
                 0, "%s", out);
    pq_tensor *got = npy("%s/o/%s", "logits.npy"), *want = NULL;
    pq_error err;
    cr_assert_eq(pq_npy_read(PQ_SOURCE_DIR "/examples/digits/test_logits.npy", &want, &err), PQ_OK,
                 "%s", err.msg);
    cr_assert_eq(pq_tensor_numel(got), pq_tensor_numel(want));
    for (int64_t i = 0; i < pq_tensor_numel(got); i++) {
        float a = ((float *)got->data)[i], b = ((float *)want->data)[i];
        cr_assert(a - b <= 1e-4f + 1e-4f * (b < 0 ? -b : b) &&
                      b - a <= 1e-4f + 1e-4f * (b < 0 ? -b : b),
                  "logit %lld: %g vs %g", (long long)i, a, b);
    }
    pq_tensor_destroy(got);
    pq_tensor_destroy(want);
}

Test(export, usage_and_refusals) {
    char out[65536];
    cr_assert_eq(pq_cli_sh(out, sizeof out, PIQC " export --help"), 0, "%s", out);
    cr_assert(strstr(out, "--onnx-qdq"), "%s", out);
    cr_assert_eq(
        pq_cli_sh(out, sizeof out, PIQC " export " PQ_SOURCE_DIR "/examples/digits/model.onnx"), 1,
        "%s", out);
    cr_assert(strstr(out, "missing --onnx"), "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, PIQC " export a.onnx --onnx x.onnx --onnx-qdq y.onnx"),
                 1, "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, PIQC " export a.onnx --onnx x.onnx --opset 99"), 1,
                 "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, PIQC " export %s/none.onnx --onnx %s/x.onnx", tmp, tmp),
                 5, "%s", out);
    /* a packed artifact (PackedConv / PackedMatMul) has no ONNX form: UNSUPPORTED naming the node
     */
    char yaml[400];
    snprintf(yaml, sizeof yaml, "%s/int8w.yaml", tmp);
    FILE *f = fopen(yaml, "w");
    cr_assert_not_null(f);
    fprintf(f, "passes:\n  - fake-quant: {format: int8, min-elements: 0}\n  - lower-quant\n");
    fclose(f);
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           PIQC " compile " PQ_SOURCE_DIR
                                "/examples/digits/model.onnx --pipeline %s -o "
                                "%s/p.gguf",
                           yaml, tmp),
                 0, "%s", out);
    cr_assert_eq(
        pq_cli_sh(out, sizeof out, PIQC " export %s/p.gguf --onnx-qdq %s/p.onnx", tmp, tmp), 3,
        "%s", out);
    cr_assert(strstr(out, "(PackedConv)") || strstr(out, "(PackedMatMul)"), "%s", out);
    char p[400];
    snprintf(p, sizeof p, "%s/p.onnx", tmp);
    cr_assert_eq(access(p, F_OK), -1, "nothing written on failure");
}
