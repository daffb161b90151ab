/* QLinearAdd against onnxruntime-node: a .pir model with two QLinearAdds (same shape; per-channel
 * broadcast with a fused Relu and zero point 17) is run by piqc and, exported with --onnx-qdq
 * (DequantizeLinear x2 -> Add [-> Relu] -> QuantizeLinear), by onnxruntime. Unoptimized (its plain
 * f32 DQ/Add/Relu/Q ops) onnxruntime gives the same bytes as piqc; optimized it fuses the first
 * Add into its com.microsoft QLinearAdd (MLAS computes a*(sa/sc) + b*(sb/sc) + zero-point
 * adjustment, a different f32 rounding), within 1 LSB on a small fraction of the elements, and
 * the second Add (Relu between Add and Q with a non-zero zero point: not fused) within 3 LSB (the
 * 1 LSB of its input times s_c / s_d = 2.25). Skips visibly without onnxruntime-node. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontends/npy.h"
#include "ir/ir.h"
#include "tools/cli_util.h"

#define PIQC PQ_BINARY_DIR "/tools/piqc"
#define ORT_RUN "node " PQ_SOURCE_DIR "/tests/tools/ort_run.js"
#define ORT_MODULE PQ_SOURCE_DIR "/node_modules/onnxruntime-node/package.json"

static char tmp[256];

static void setup(void) {
    pq_cli_mkdtemp(tmp, sizeof tmp, "qladd");
}

static void teardown(void) {
    pq_cli_rmtree(tmp);
}

TestSuite(qlinear_add_ort, .init = setup, .fini = teardown, .timeout = 300);

static const char model[] =
    "piqc 1\ngraph t {\n"
    "  input %x: f32[2, 64, 28, 28]\n  input %xb: f32[2, 64, 28, 28]\n"
    "  const %sa: f32[] = [0.031]\n  const %za: u8[] = [120]\n"
    "  const %sb: f32[] = [0.0043]\n  const %zb: u8[] = [3]\n"
    "  const %sc: f32[] = [0.045]\n  const %zc: u8[] = [99]\n"
    "  const %sd: f32[] = [0.02]\n  const %zd: u8[] = [17]\n"
    "  %m = GlobalAveragePool(%x)\n"
    "  %qa = QuantizeLinear(%x, %sa, %za)\n"
    "  %qb = QuantizeLinear(%xb, %sb, %zb)\n"
    "  %qm = QuantizeLinear(%m, %sa, %za)\n"
    "  %y1 = QLinearAdd(%qa, %sa, %za, %qb, %sb, %zb, %sc, %zc)\n"
    "  %y2 = QLinearAdd(%y1, %sc, %zc, %qm, %sa, %za, %sd, %zd) {activation = \"Relu\"}\n"
    "  output %y1\n  output %y2\n}\n";

static void write_input(const char *name, float lo, float span, uint64_t seed) {
    int64_t dims[4] = {2, 64, 28, 28};
    pq_error err;
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_F32, 4, dims, &err);
    cr_assert_not_null(t);
    for (int64_t i = 0; i < pq_tensor_numel(t); i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        ((float *)t->data)[i] = lo + span * (float)((seed >> 40) & 0xFFFFFF) / 16777216.0f;
    }
    char path[400];
    snprintf(path, sizeof path, "%s/%s.npy", tmp, name);
    cr_assert_eq(pq_npy_write(path, t, &err), PQ_OK, "%s", err.msg);
    pq_tensor_destroy(t);
}

static pq_tensor *npy(const char *dir, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%s.npy", tmp, dir, name);
    pq_tensor *t = NULL;
    pq_error err;
    cr_assert_eq(pq_npy_read(path, &t, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(t->dtype, PQ_DTYPE_U8, "%s", path);
    return t;
}

/* Elements of output name that differ between piqc and dir, and the largest difference. */
static void diff(const char *dir, const char *name, int64_t *n_diff, int64_t *max_diff,
                 int64_t *n) {
    pq_tensor *a = npy("piqc", name), *b = npy(dir, name);
    cr_assert_eq(pq_tensor_numel(a), pq_tensor_numel(b));
    *n = pq_tensor_numel(a);
    *n_diff = *max_diff = 0;
    for (int64_t i = 0; i < *n; i++) {
        int64_t d = (int64_t)((uint8_t *)a->data)[i] - ((uint8_t *)b->data)[i];
        d = d < 0 ? -d : d;
        *n_diff += d != 0;
        *max_diff = d > *max_diff ? d : *max_diff;
    }
    pq_tensor_destroy(a);
    pq_tensor_destroy(b);
}

Test(qlinear_add_ort, qdq_export_matches_onnxruntime) {
    char out[16384], path[400];
    snprintf(path, sizeof path, "%s/m.pir", tmp);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(model, f);
    fclose(f);
    write_input("x", -4.0f, 8.0f, 1);
    write_input("xb", 0.0f, 1.2f, 2);
    cr_assert_eq(pq_cli_sh(out, sizeof out, PIQC " export %s/m.pir --onnx-qdq %s/m.onnx", tmp, tmp),
                 0, "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           PIQC " run %s/m.pir --input x=%s/x.npy --input xb=%s/xb.npy "
                                "--output-dir %s/piqc",
                           tmp, tmp, tmp, tmp),
                 0, "%s", out);
    if (access(ORT_MODULE, R_OK) != 0)
        cr_skip("onnxruntime-node is not installed (ONNXRUNTIME_NODE_INSTALL=skip npm install "
                "at the repository root): QLinearAdd's QDQ export was written but not run");
    static const char *const modes[2] = {"--no-optimize", ""};
    static const char *const dirs[2] = {"ort_plain", "ort_opt"};
    for (int k = 0; k < 2; k++)
        cr_assert_eq(pq_cli_sh(out, sizeof out,
                               ORT_RUN " %s/m.onnx --input x=%s/x.npy --input xb=%s/xb.npy "
                                       "--output-dir %s/%s %s",
                               tmp, tmp, tmp, tmp, dirs[k], modes[k]),
                     0, "%s", out);
    int64_t nd, md, n;
    for (int o = 0; o < 2; o++) {
        const char *name = o ? "y2" : "y1";
        diff("ort_plain", name, &nd, &md, &n);
        cr_assert_eq(nd, 0, "%s: %lld of %lld differ from unoptimized onnxruntime (max %lld)", name,
                     (long long)nd, (long long)n, (long long)md);
    }
    diff("ort_opt", "y1", &nd, &md, &n);
    fprintf(stderr,
            "QLinearAdd vs onnxruntime: unfused QDQ bit-exact; fused (MLAS QLinearAdd) y1 %lld of "
            "%lld differ, max %lld LSB",
            (long long)nd, (long long)n, (long long)md);
    cr_assert_leq(md, 1);
    cr_assert_leq(nd * 100, n, "more than 1%% of the elements differ");
    diff("ort_opt", "y2", &nd, &md, &n);
    fprintf(stderr, "; y2 %lld differ, max %lld LSB\n", (long long)nd, (long long)md);
    cr_assert_leq(md, 3);
}

/* QLinearMul (same shape; x * a QLinearGlobalAveragePool result [N, C, 1, 1], the squeeze-excite
 * form) and QLinearGlobalAveragePool: unoptimized onnxruntime gives piqc's bytes for the Mul of
 * two inputs (y4); the pool p (piqc sums the codes exactly, onnxruntime's f32 GlobalAveragePool
 * sums rounded values) and the Mul reading it (y3) are within 1 LSB on a small fraction.
 * Optimized, onnxruntime fuses all three into its com.microsoft ops: within 1 LSB too. */
static const char model_mul[] = "piqc 1\ngraph t {\n"
                                "  input %x: f32[2, 64, 28, 28]\n  input %xb: f32[2, 64, 28, 28]\n"
                                "  const %sa: f32[] = [0.031]\n  const %za: u8[] = [120]\n"
                                "  const %sb: f32[] = [0.0043]\n  const %zb: u8[] = [3]\n"
                                "  const %sc: f32[] = [0.045]\n  const %zc: u8[] = [99]\n"
                                "  const %sd: f32[] = [0.02]\n  const %zd: u8[] = [17]\n"
                                "  const %se: f32[] = [0.001]\n  const %ze: u8[] = [128]\n"
                                "  %qa = QuantizeLinear(%x, %sa, %za)\n"
                                "  %qb = QuantizeLinear(%xb, %sb, %zb)\n"
                                "  %p = QLinearGlobalAveragePool(%qa, %sa, %za, %se, %ze)\n"
                                "  %y3 = QLinearMul(%qa, %sa, %za, %p, %se, %ze, %sd, %zd)\n"
                                "  %y4 = QLinearMul(%qa, %sa, %za, %qb, %sb, %zb, %sc, %zc)\n"
                                "  output %p\n  output %y3\n  output %y4\n}\n";

Test(qlinear_add_ort, qlinear_mul_and_pool_match_onnxruntime) {
    char out[16384], path[400];
    snprintf(path, sizeof path, "%s/m.pir", tmp);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(model_mul, f);
    fclose(f);
    write_input("x", -4.0f, 8.0f, 3);
    write_input("xb", 0.0f, 1.2f, 4);
    cr_assert_eq(pq_cli_sh(out, sizeof out, PIQC " export %s/m.pir --onnx-qdq %s/m.onnx", tmp, tmp),
                 0, "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           PIQC " run %s/m.pir --input x=%s/x.npy --input xb=%s/xb.npy "
                                "--output-dir %s/piqc",
                           tmp, tmp, tmp, tmp),
                 0, "%s", out);
    if (access(ORT_MODULE, R_OK) != 0)
        cr_skip("onnxruntime-node is not installed: the QDQ export was written but not run");
    static const char *const modes[2] = {"--no-optimize", ""};
    static const char *const dirs[2] = {"ort_plain", "ort_opt"};
    for (int k = 0; k < 2; k++)
        cr_assert_eq(pq_cli_sh(out, sizeof out,
                               ORT_RUN " %s/m.onnx --input x=%s/x.npy --input xb=%s/xb.npy "
                                       "--output-dir %s/%s %s",
                               tmp, tmp, tmp, tmp, dirs[k], modes[k]),
                     0, "%s", out);
    static const char *const names[3] = {"p", "y3", "y4"};
    int64_t nd, md, n;
    for (int o = 0; o < 3; o++) {
        diff("ort_plain", names[o], &nd, &md, &n);
        fprintf(stderr, "%s vs unfused onnxruntime: %lld of %lld differ, max %lld LSB; ", names[o],
                (long long)nd, (long long)n, (long long)md);
        if (o == 2)
            cr_assert_eq(nd, 0, "%s: %lld of %lld differ from unoptimized onnxruntime", names[o],
                         (long long)nd, (long long)n);
        cr_assert_leq(md, 1, "%s", names[o]);
        cr_assert_leq(nd * 50, n, "%s: more than 2%% differ", names[o]);
        diff("ort_opt", names[o], &nd, &md, &n);
        fprintf(stderr, "%s vs fused onnxruntime: %lld of %lld differ, max %lld LSB\n", names[o],
                (long long)nd, (long long)n, (long long)md);
        cr_assert_leq(md, 1, "%s", names[o]);
        cr_assert_leq(nd * 100, n, "%s: more than 1%% differ", names[o]);
    }
}

/* A QOperator model with onnxruntime's own com.microsoft QLinearGlobalAveragePool, QLinearMul and
 * QLinearAdd (tests/passes/gen_qdq_models.py, as its static quantizer writes them) imports into
 * piqc's ops of those names and runs on the u8 kernels; onnxruntime runs the same file with its
 * fused kernels (other f32 roundings): the pool equal, y within 1 LSB on under 1% of the bytes. */
Test(qlinear_add_ort, com_microsoft_qoperator_import) {
    const char *dir = PQ_BINARY_DIR "/tests/data/qdq";
    char out[16384], model_path[512];
    snprintf(model_path, sizeof model_path, "%s/qop_contrib.onnx", dir);
    if (access(model_path, R_OK) != 0)
        cr_skip("%s was not generated (python3-onnx missing at build time)", model_path);
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           PIQC " run %s --input x=%s/input_contrib.npy --output-dir %s/piqc",
                           model_path, dir, tmp),
                 0, "%s", out);
    cr_assert(strstr(out, "output 'y': u8[2,16,10,10]"), "%s", out);
    if (access(ORT_MODULE, R_OK) != 0)
        cr_skip("onnxruntime-node is not installed: the com.microsoft model ran in piqc only");
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           ORT_RUN " %s --input x=%s/input_contrib.npy --output-dir %s/ort",
                           model_path, dir, tmp),
                 0, "%s", out);
    int64_t nd, md, n;
    diff("ort", "g", &nd, &md, &n);
    cr_assert_leq(md, 1, "pool: %lld of %lld differ, max %lld", (long long)nd, (long long)n,
                  (long long)md);
    diff("ort", "y", &nd, &md, &n);
    fprintf(stderr,
            "com.microsoft QOperator model vs onnxruntime: y %lld of %lld differ, max %lld\n",
            (long long)nd, (long long)n, (long long)md);
    cr_assert_leq(md, 1);
    cr_assert_leq(nd * 100, n, "more than 1%% of the elements differ");
}
