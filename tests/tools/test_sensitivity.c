/* End-to-end tests of `piqc sensitivity` (table, JSON read back by python's json, SVG well-formed
 * XML by python's xml.etree, plan within budget, usage errors) and of compiling the ptq-mixed
 * presets (plan stored in the artifact, digits accuracy, transformer17 runs) on examples/digits and
 * tests/models/transformer17. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frontends/npy.h"
#include "ir/ir.h"
#include "tools/cli_util.h"

#define PIQC PQ_BINARY_DIR "/tools/piqc"
#define SRC PQ_SOURCE_DIR
#define DIGITS SRC "/examples/digits"
#define T17 SRC "/tests/models/transformer17"
#define PY "/usr/bin/python3"

static char tmpdir[256];

static void make_tmp(void) {
    pq_cli_mkdtemp(tmpdir, sizeof tmpdir, "sens");
    char out[1024];
    /* calibration data: the digits test images as the model's input "input" */
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "mkdir -p %s/dcal %s/tcal && cp %s/test_x.npy %s/dcal/input.npy", tmpdir,
                           tmpdir, DIGITS, tmpdir),
                 0, "%s", out);
    /* transformer17: 32 deterministic token rows in 0..49 */
    pq_error err;
    int64_t d[2] = {32, 8};
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_I64, 2, d, &err);
    uint32_t s = 99;
    for (int64_t i = 0; i < 32 * 8; i++) {
        s = s * 1103515245u + 12345u;
        ((int64_t *)t->data)[i] = (int64_t)((s >> 16) % 50);
    }
    char p[512];
    snprintf(p, sizeof p, "%s/tcal/tokens.npy", tmpdir);
    cr_assert_eq(pq_npy_write(p, t, &err), PQ_OK, "%s", err.msg);
    pq_tensor_destroy(t);
}

static void rm_tmp(void) {
    pq_cli_rmtree(tmpdir);
}

TestSuite(sensitivity, .init = make_tmp, .fini = rm_tmp, .timeout = 300);

/* Checks the JSON with python: layers sorted by the metric (descending), counts, and the plan's
 * bits within budget * weights; prints "ok <n layers> <bpw>". */
static void check_json(const char *json, int want_layers, double budget) {
    char out[8192];
    int rc =
        pq_cli_sh(out, sizeof out,
                  PY " -c '\n"
                     "import json, sys\n"
                     "r = json.load(open(\"%s\"))\n"
                     "L = r[\"layers\"]\n"
                     "assert len(L) == %d, len(L)\n"
                     "v = [l[\"one_minus_cosine\"] for l in L]\n"
                     "assert v == sorted(v, reverse=True), v\n"
                     "assert [l[\"rank\"] for l in L] == list(range(1, len(L) + 1))\n"
                     "for l in L:\n"
                     "    assert abs(l[\"cosine\"] + l[\"one_minus_cosine\"] - 1) < 1e-12\n"
                     "    assert 0 < l[\"one_minus_cosine\"] < 0.5 and l[\"max_abs\"] > 0\n"
                     "    assert l[\"weights\"] == l[\"rows\"] * l[\"cols\"] and l[\"kl\"] > 0\n"
                     "p = r.get(\"plan\")\n"
                     "if %d:\n"
                     "    assert p[\"bits\"] <= %.17g * p[\"weights\"] + 1e-6, p\n"
                     "    assert p[\"bits\"] == sum(l[\"plan_bits\"] for l in L)\n"
                     "    assert all(l[\"plan_format\"] in p[\"formats\"] for l in L)\n"
                     "    print(\"ok\", len(L), p[\"bpw\"])\n"
                     "else:\n"
                     "    assert p is None\n"
                     "    print(\"ok\", len(L))\n'",
                  json, want_layers, budget > 0, budget);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "ok "), "%s", out);
}

static void check_svg(const char *svg, const char *must) {
    char out[8192];
    int rc = pq_cli_sh(out, sizeof out,
                       PY " -c '\n"
                          "import xml.etree.ElementTree as E\n"
                          "r = E.parse(\"%s\").getroot()\n"
                          "ns = \"{http://www.w3.org/2000/svg}\"\n"
                          "assert r.tag == ns + \"svg\", r.tag\n"
                          "t = \" \".join(\"\".join(e.itertext()) for e in r.iter(ns + \"text\"))\n"
                          "assert \"%s\" in t, t\n"
                          "assert \"log scale\" in t and \"sensitivity\" in t, t\n"
                          "print(\"ok\", len(list(r.iter(ns + \"rect\"))))'",
                       svg, must);
    cr_assert_eq(rc, 0, "%s", out);
}

Test(sensitivity, digits_table_json_svg_plan) {
    char out[65536];
    cr_assert_eq(
        pq_cli_sh(out, sizeof out,
                  "%s sensitivity %s/model.onnx --calib-data %s/dcal --json %s/s.json --svg "
                  "%s/s.svg --budget-bpw 2.5",
                  PIQC, DIGITS, tmpdir, tmpdir, tmpdir),
        0, "%s", out);
    /* table, progress per layer on stderr, plan line */
    cr_assert(strstr(out, "1-cosine") && strstr(out, "/fc/Gemm") &&
                  strstr(out, "/features/features.3/Conv"),
              "%s", out);
    cr_assert(strstr(out, "sensitivity: [1/2]") && strstr(out, "sensitivity: [2/2]"), "%s", out);
    cr_assert(strstr(out, "plan for --budget-bpw 2.5"), "%s", out);
    double bpw = pq_cli_number_after(out, "weights = ");
    cr_assert(bpw > 2.0 && bpw <= 2.5, "%s", out);
    char path[512];
    snprintf(path, sizeof path, "%s/s.json", tmpdir);
    check_json(path, 2, 2.5);
    snprintf(path, sizeof path, "%s/s.svg", tmpdir);
    check_svg(path, "/features/features.3/Conv");
    /* without a plan: one colour, no plan in the JSON; a pipeline with hadamard first */
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s sensitivity %s/model.onnx --calib-data %s/dcal --pipeline "
                           "ptq-piq3-hadamard --max-samples 64 --json %s/h.json --svg %s/h.svg -q",
                           PIQC, DIGITS, tmpdir, tmpdir, tmpdir),
                 0, "%s", out);
    cr_assert(strstr(out, "64 calibration samples, pipeline ptq-piq3-hadamard"), "%s", out);
    cr_assert(!strstr(out, "sensitivity: [1/2]"), "-q: no progress: %s", out);
    snprintf(path, sizeof path, "%s/h.json", tmpdir);
    check_json(path, 2, 0);
    snprintf(path, sizeof path, "%s/h.svg", tmpdir);
    check_svg(path, "layer quantized alone to piq3");
}

Test(sensitivity, transformer17_plan_and_kl_metric) {
    char out[65536], path[512];
    cr_assert_eq(
        pq_cli_sh(out, sizeof out,
                  "%s sensitivity %s/model.onnx --calib-data %s/tcal --pipeline ptq-mixed-3.2 "
                  "--budget-bpw 3.2 --metric kl --json %s/t.json --svg %s/t.svg",
                  PIQC, T17, tmpdir, tmpdir, tmpdir),
        0, "%s", out);
    cr_assert(strstr(out, "self_attn"), "%s", out);
    snprintf(path, sizeof path, "%s/t.json", tmpdir);
    /* sorted by KL here: check the plan and counts only through python */
    char py[8192];
    cr_assert_eq(pq_cli_sh(py, sizeof py,
                           PY " -c 'import json; r = json.load(open(\"%s\")); L = r[\"layers\"]; "
                              "k = [l[\"kl\"] for l in L]; assert k == sorted(k, reverse=True), k; "
                              "p = r[\"plan\"]; assert p[\"bits\"] <= 3.2 * p[\"weights\"]; "
                              "assert len(L) == 4, len(L); print(\"ok\")'",
                           path),
                 0, "%s", py);
    snprintf(path, sizeof path, "%s/t.svg", tmpdir);
    check_svg(path, "KL of the outputs");
}

Test(sensitivity, usage_and_input_errors) {
    char out[16384];
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s sensitivity --help", PIQC), 0, "%s", out);
    cr_assert(strstr(out, "--calib-data") && strstr(out, "--budget-bpw"), "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s --help", PIQC), 0);
    cr_assert(strstr(out, "sensitivity"), "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s sensitivity %s/model.onnx", PIQC, DIGITS), 1, "%s",
                 out);
    cr_assert(strstr(out, "--calib-data"), "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s sensitivity %s/model.onnx --calib-data %s/dcal --format x", PIQC,
                           DIGITS, tmpdir),
                 1, "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s sensitivity %s/model.onnx --calib-data %s/dcal --budget-bpw 0.5",
                           PIQC, DIGITS, tmpdir),
                 1, "%s", out);
    /* a budget below the cheapest format names the minimum */
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s sensitivity %s/model.onnx --calib-data %s/dcal --budget-bpw 1.5 -q",
                           PIQC, DIGITS, tmpdir),
                 2, "%s", out);
    cr_assert(strstr(out, "minimum achievable 2.1121 bits per weight"), "%s", out);
    /* missing calibration file is named (I/O) */
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s sensitivity %s/model.onnx --calib-data %s/none",
                           PIQC, DIGITS, tmpdir),
                 5, "%s", out);
    cr_assert(strstr(out, "input.npy"), "%s", out);
}

/* The presets: the plan reaches the artifact (quant_format on the packed ops), within budget. */
static void compile_mixed(const char *model_dir, const char *cal, const char *preset, double budget,
                          char *out, size_t size) {
    cr_assert_eq(pq_cli_sh(out, size,
                           "%s compile %s/model.onnx --pipeline %s --calib-data %s/%s -o %s/m.gguf",
                           PIQC, model_dir, preset, tmpdir, cal, tmpdir),
                 0, "%s", out);
    double bpw = pq_cli_number_after(out, "bits = ");
    cr_assert(bpw > 2.0 && bpw <= budget, "plan bpw %g: %s", bpw, out);
    cr_assert(strstr(out, "mixed-precision: plan"), "%s", out);
    char text[65536];
    cr_assert_eq(pq_cli_sh(text, sizeof text, "%s import %s/m.gguf", PIQC, tmpdir), 0, "%s", text);
    cr_assert(strstr(text, "quant_format = \""), "the plan is stored: %s", text);
}

Test(sensitivity, presets_compile_digits_and_transformer17) {
    char out[65536];
    compile_mixed(DIGITS, "dcal", "ptq-mixed-3.2", 3.2, out, sizeof out);
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s run %s/m.gguf --input input=%s/test_x.npy --labels %s/labels.npy",
                           PIQC, tmpdir, DIGITS, DIGITS),
                 0, "%s", out);
    cr_assert_geq(pq_cli_number_after(out, "accuracy: "), 95.0, "%s", out);
    compile_mixed(DIGITS, "dcal", "ptq-mixed-2.5", 2.5, out, sizeof out);
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s run %s/m.gguf --input input=%s/test_x.npy --labels %s/labels.npy",
                           PIQC, tmpdir, DIGITS, DIGITS),
                 0, "%s", out);
    cr_assert_geq(pq_cli_number_after(out, "accuracy: "), 90.0, "%s", out);
    compile_mixed(T17, "tcal", "ptq-mixed-2.5", 2.5, out, sizeof out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s run %s/m.gguf --input tokens=%s/input_tokens.npy",
                           PIQC, tmpdir, T17),
                 0, "%s", out);
}
