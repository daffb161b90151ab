/* End-to-end tests of `piqc eval`: digits accuracy equals `piqc run --labels`, JSON and data hash,
 * cosine of a model against itself, a compiled artifact, perplexity of transformer17 and of
 * Softmax/LogSoftmax .pir graphs against values computed here, fixed batch axes, every error. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontends/frontends.h"
#include "ir/ir.h"
#include "tools/cli_util.h"

#define PIQC PQ_BINARY_DIR "/tools/piqc"
#define SRC PQ_SOURCE_DIR
#define DIGITS SRC "/examples/digits"
#define T17 SRC "/tests/models/transformer17/model.onnx"

static char tmp[256];
static char out[16384];
static pq_error err;

static void setup(void) {
    pq_cli_mkdtemp(tmp, sizeof tmp, "eval");
    /* digits: the model's input is named "input" */
    cr_assert_eq(
        pq_cli_sh(out, sizeof out,
                  "mkdir %s/d && cp %s/test_x.npy %s/d/input.npy && cp %s/labels.npy %s/d/", tmp,
                  DIGITS, tmp, DIGITS, tmp),
        0, "%s", out);
}

static void teardown(void) {
    pq_cli_rmtree(tmp);
}

TestSuite(eval, .init = setup, .fini = teardown, .timeout = 300);

/* Runs a piqc command line (stderr merged) into out; returns the exit code. */
static int piqc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int piqc(const char *fmt, ...) {
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return pq_cli_sh(out, sizeof out, PIQC " %s", cmd);
}

static void put(const char *rel, const pq_tensor *t) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    cr_assert_eq(pq_npy_write(path, t, &err), PQ_OK, "%s", err.msg);
}

static pq_tensor *get(const char *rel) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    pq_tensor *t = NULL;
    cr_assert_eq(pq_npy_read(path, &t, &err), PQ_OK, "%s", err.msg);
    return t;
}

static void mkdir_tmp(const char *rel) {
    char o[256];
    cr_assert_eq(pq_cli_sh(o, sizeof o, "mkdir -p %s/%s", tmp, rel), 0, "%s", o);
}

static void write_text(const char *rel, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
}

/* A tensor with deterministic pseudo-random entries: integers in [0, mod) or floats in [-4, 4). */
static pq_tensor *rnd(enum pq_dtype dt, int rank, const int64_t *dims, uint32_t seed, int mod) {
    pq_tensor *t = pq_tensor_create(dt, rank, dims, &err);
    cr_assert(t, "%s", err.msg);
    for (int64_t i = 0; i < pq_tensor_numel(t); i++) {
        seed = seed * 1103515245u + 12345u;
        uint32_t r = seed >> 8;
        double v = mod ? (double)(r % (uint32_t)mod) : (double)(r % 65536u) / 8192.0 - 4.0;
        pq_dtype_store(dt, t->data, (size_t)i, v);
    }
    return t;
}

/* Mean over rows of log-sum-exp(x) - x[label] (double), x f32 [rows, c], labels i64 [rows]. */
static double ref_ce(const pq_tensor *x, const pq_tensor *labels, int64_t *hits) {
    int64_t c = x->dims[x->rank - 1], rows = pq_tensor_numel(labels);
    const float *v = x->data;
    const int64_t *l = labels->data;
    double sum = 0;
    *hits = 0;
    for (int64_t r = 0; r < rows; r++) {
        double m = -INFINITY;
        int64_t best = 0;
        for (int64_t j = 0; j < c; j++)
            if (v[r * c + j] > m) {
                m = v[r * c + j];
                best = j;
            }
        double s = 0;
        for (int64_t j = 0; j < c; j++)
            s += exp(v[r * c + j] - m);
        sum += m + log(s) - v[r * c + l[r]];
        *hits += best == l[r];
    }
    return sum / (double)rows;
}

Test(eval, digits_accuracy_matches_run) {
    cr_assert_eq(piqc("run %s/model.onnx --input input=%s/test_x.npy --labels %s/labels.npy",
                      DIGITS, DIGITS, DIGITS),
                 0, "%s", out);
    const char *acc = strstr(out, "accuracy: ");
    cr_assert(acc, "%s", out);
    char want[64];
    snprintf(want, sizeof want, "accuracy %s", acc + strlen("accuracy: "));
    cr_assert_str_eq(want, "accuracy 98.61% (355/360)\n");
    cr_assert_eq(
        pq_cli_sh(out, sizeof out, PIQC " eval %s/model.onnx --data %s/d 2>/dev/null", DIGITS, tmp),
        0, "%s", out);
    cr_assert_str_eq(out, want);
    /* batch size, a partial last batch and threads do not change it */
    cr_assert_eq(piqc("eval %s/model.onnx --data %s/d --batch 7 --threads 3", DIGITS, tmp), 0, "%s",
                 out);
    cr_assert_str_eq(out, want);
    cr_assert_eq(piqc("eval %s/model.onnx --data %s/d --metric accuracy --batch 360", DIGITS, tmp),
                 0, "%s", out);
    cr_assert_str_eq(out, want);
}

Test(eval, digits_json_and_hash) {
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           PIQC " eval %s/model.onnx --data %s/d --json > %s/r.json && "
                                "/usr/bin/python3 -c '\n"
                                "import json, hashlib\n"
                                "r = json.load(open(\"%s/r.json\"))\n"
                                "h = hashlib.sha256()\n"
                                "for f in (\"input.npy\", \"labels.npy\"):\n"
                                "    h.update(open(\"%s/d/\" + f, \"rb\").read())\n"
                                "assert r[\"data_sha256\"] == h.hexdigest(), r\n"
                                "assert r[\"metric\"] == \"accuracy\" and r[\"samples\"] == 360\n"
                                "assert r[\"correct\"] == 355 and r[\"positions\"] == 360\n"
                                "assert abs(r[\"accuracy\"] - 355 / 360) < 1e-15 and r[\"batch\"] "
                                "== 64\n"
                                "print(\"ok\")'",
                           DIGITS, tmp, tmp, tmp, tmp),
                 0, "%s", out);
    cr_assert_str_eq(out, "ok\n");
}

Test(eval, cosine_against_itself) {
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           PIQC " eval %s/model.onnx --data %s/d --reference %s/model.onnx "
                                "--batch 50 2>/dev/null",
                           DIGITS, tmp, DIGITS),
                 0, "%s", out);
    cr_assert_str_eq(out, "cosine 1.00000 (min 1.0000), max abs diff 0\n");
    cr_assert_eq(piqc("eval %s/model.onnx --data %s/d --reference %s/model.onnx --metric cosine "
                      "--json",
                      DIGITS, tmp, DIGITS),
                 0, "%s", out);
    cr_assert_eq(pq_cli_number_after(out, "\"cosine\": "), 1.0, "%s", out);
    cr_assert_eq(pq_cli_number_after(out, "\"cosine_min\": "), 1.0, "%s", out);
    cr_assert_eq(pq_cli_number_after(out, "\"max_abs_diff\": "), 0.0, "%s", out);
    cr_assert_eq(pq_cli_number_after(out, "\"rows\": "), 360.0, "%s", out);
}

Test(eval, compiled_artifact) {
    cr_assert_eq(piqc("compile %s/model.onnx --pipeline ptq-piq3 -o %s/m.gguf", DIGITS, tmp), 0,
                 "%s", out);
    /* accuracy of the artifact = piqc run of the artifact */
    cr_assert_eq(piqc("run %s/m.gguf --input input=%s/test_x.npy --labels %s/labels.npy", tmp,
                      DIGITS, DIGITS),
                 0, "%s", out);
    double run_acc = pq_cli_number_after(out, "accuracy: ");
    cr_assert_eq(piqc("eval %s/m.gguf --data %s/d", tmp, tmp), 0, "%s", out);
    cr_assert_float_eq(pq_cli_number_after(out, "accuracy "), run_acc, 1e-9, "%s", out);
    /* against the FP32 model: close but not identical */
    cr_assert_eq(
        piqc("eval %s/m.gguf --data %s/d --reference %s/model.onnx --json", tmp, tmp, DIGITS), 0,
        "%s", out);
    double cos = pq_cli_number_after(out, "\"cosine\": ");
    double mn = pq_cli_number_after(out, "\"cosine_min\": ");
    double mad = pq_cli_number_after(out, "\"max_abs_diff\": ");
    cr_assert(cos > 0.95 && cos < 1.0 && mn <= cos && mn > 0.5 && mad > 0, "%s", out);
}

/* transformer17: tokens i64 [20, 8] in 0..49 -> logits [20, 8, 7]; labels i64 [20, 8]. */
static void make_seq(void) {
    mkdir_tmp("s");
    pq_tensor *tok = rnd(PQ_DTYPE_I64, 2, (int64_t[]){20, 8}, 7, 50);
    pq_tensor *lab = rnd(PQ_DTYPE_I64, 2, (int64_t[]){20, 8}, 11, 7);
    put("s/tokens.npy", tok);
    put("s/labels.npy", lab);
    pq_tensor_destroy(tok);
    pq_tensor_destroy(lab);
}

Test(eval, perplexity_sequence_model) {
    make_seq();
    cr_assert_eq(piqc("run %s --input tokens=%s/s/tokens.npy --output-dir %s/so", T17, tmp, tmp), 0,
                 "%s", out);
    pq_tensor *logits = get("so/logits.npy"), *lab = get("s/labels.npy");
    int64_t hits = 0;
    double ce = ref_ce(logits, lab, &hits);
    for (int b = 0; b < 2; b++) {
        cr_assert_eq(piqc("eval %s --data %s/s --metric perplexity --json %s", T17, tmp,
                          b ? "--batch 6" : ""),
                     0, "%s", out);
        cr_assert(strstr(out, "holds logits"), "%s", out);
        double got = pq_cli_number_after(out, "\"cross_entropy\": ");
        cr_assert(fabs(got - ce) <= 1e-6 * ce, "ce %.17g, want %.17g: %s", got, ce, out);
        cr_assert(fabs(pq_cli_number_after(out, "\"perplexity\": ") - exp(ce)) <= 1e-6 * exp(ce),
                  "%s", out);
        cr_assert_eq(pq_cli_number_after(out, "\"positions\": "), 160.0, "%s", out);
    }
    cr_assert_eq(piqc("eval %s --data %s/s --metric perplexity", T17, tmp), 0, "%s", out);
    char want[128];
    snprintf(want, sizeof want, "perplexity %.3f (cross-entropy %.4f nats over 160 positions)",
             exp(ce), ce);
    cr_assert(strstr(out, want), "want '%s' in %s", want, out);
    /* accuracy over all positions */
    cr_assert_eq(piqc("eval %s --data %s/s --batch 6 --json", T17, tmp), 0, "%s", out);
    cr_assert_eq(pq_cli_number_after(out, "\"correct\": "), (double)hits, "%s", out);
    cr_assert_eq(pq_cli_number_after(out, "\"positions\": "), 160.0, "%s", out);
    pq_tensor_destroy(logits);
    pq_tensor_destroy(lab);
}

static const char softmax_pir[] = "piqc 1\n"
                                  "graph sm {\n"
                                  "  opset \"\" 17\n"
                                  "  input %%x: f32[N, 3, 5]\n"
                                  "  %%p = %s(%%x) {axis = %d}\n"
                                  "  %%q = Identity(%%p)\n"
                                  "  output %%q\n"
                                  "}\n";

/* x f32 [10, 3, 5], labels i64 [10, 3]; returns the reference cross-entropy. */
static double make_softmax(const char *op, int axis) {
    char text[512];
    snprintf(text, sizeof text, softmax_pir, op, axis);
    write_text("sm.pir", text);
    mkdir_tmp("x");
    pq_tensor *x = rnd(PQ_DTYPE_F32, 3, (int64_t[]){10, 3, 5}, 3, 0);
    pq_tensor *lab = rnd(PQ_DTYPE_I64, 2, (int64_t[]){10, 3}, 5, 5);
    put("x/x.npy", x);
    put("x/labels.npy", lab);
    int64_t hits;
    double ce = ref_ce(x, lab, &hits);
    pq_tensor_destroy(x);
    pq_tensor_destroy(lab);
    return ce;
}

Test(eval, perplexity_of_softmax_output) {
    double ce = make_softmax("Softmax", -1);
    cr_assert_eq(piqc("eval %s/sm.pir --data %s/x --metric perplexity --batch 4 --json", tmp, tmp),
                 0, "%s", out);
    cr_assert(strstr(out, "comes from a Softmax node"), "%s", out);
    cr_assert(strstr(out, "\"scores\": \"softmax\""), "%s", out);
    double got = pq_cli_number_after(out, "\"cross_entropy\": ");
    cr_assert(fabs(got - ce) <= 1e-5 * ce, "ce %.17g, want %.17g", got, ce);
    cr_assert_eq(pq_cli_number_after(out, "\"positions\": "), 30.0, "%s", out);
}

Test(eval, perplexity_of_log_softmax_output) {
    double ce = make_softmax("LogSoftmax", 2);
    cr_assert_eq(piqc("eval %s/sm.pir --data %s/x --metric perplexity --json", tmp, tmp), 0, "%s",
                 out);
    cr_assert(strstr(out, "comes from a LogSoftmax node"), "%s", out);
    double got = pq_cli_number_after(out, "\"cross_entropy\": ");
    cr_assert(fabs(got - ce) <= 1e-5 * ce, "ce %.17g, want %.17g", got, ce);
}

Test(eval, softmax_over_another_axis_refused) {
    make_softmax("Softmax", 1);
    cr_assert_eq(piqc("eval %s/sm.pir --data %s/x --metric perplexity", tmp, tmp), 3, "%s", out);
    cr_assert(strstr(out, "axis 1, not the last axis"), "%s", out);
}

Test(eval, fixed_batch_axis) {
    make_softmax("Softmax", -1);
    write_text("f.pir", "piqc 1\ngraph f {\n  input %x: f32[2, 3, 5]\n  %y = Relu(%x)\n"
                        "  output %y\n}\n");
    cr_assert_eq(piqc("eval %s/f.pir --data %s/x", tmp, tmp), 0, "%s", out);
    cr_assert(strstr(out, "fixes the batch to 2 samples"), "%s", out);
    cr_assert(strstr(out, "/30)"), "%s", out);
    cr_assert_eq(piqc("eval %s/f.pir --data %s/x --batch 3", tmp, tmp), 2, "%s", out);
    cr_assert(strstr(out, "--batch 3: input 'x' fixes axis 0"), "%s", out);
    write_text("f3.pir", "piqc 1\ngraph f {\n  input %x: f32[3, 3, 5]\n  %y = Relu(%x)\n"
                         "  output %y\n}\n");
    cr_assert_eq(piqc("eval %s/f3.pir --data %s/x", tmp, tmp), 2, "%s", out);
    cr_assert(strstr(out, "10 samples are not a multiple"), "%s", out);
}

/* Expects exit code rc and needle in the output of `piqc eval ARGS`. */
static void expect(int rc, const char *needle, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void expect(int rc, const char *needle, const char *fmt, ...) {
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int got = pq_cli_sh(out, sizeof out, PIQC " eval %s", cmd);
    cr_assert_eq(got, rc, "eval %s: exit %d, want %d: %s", cmd, got, rc, out);
    cr_assert(strstr(out, needle), "eval %s: '%s' not in: %s", cmd, needle, out);
}

Test(eval, usage_errors) {
    cr_assert_eq(piqc("eval --help"), 0, "%s", out);
    cr_assert(strstr(out, "usage: piqc eval MODEL --data DIR"), "%s", out);
    cr_assert_eq(piqc("--help"), 0, "%s", out);
    cr_assert(strstr(out, "  eval "), "%s", out);
    expect(1, "missing MODEL", "--data %s/d", tmp);
    expect(1, "missing --data", "%s/model.onnx", DIGITS);
    expect(1, "unknown metric 'top5'", "%s/model.onnx --data %s/d --metric top5", DIGITS, tmp);
    expect(1, "--metric cosine needs --reference", "%s/model.onnx --data %s/d --metric cosine",
           DIGITS, tmp);
    expect(1, "only used by --metric cosine",
           "%s/model.onnx --data %s/d --metric accuracy --reference %s/model.onnx", DIGITS, tmp,
           DIGITS);
    expect(1, "--batch needs", "%s/model.onnx --data %s/d --batch 0", DIGITS, tmp);
    expect(1, "--threads needs", "%s/model.onnx --data %s/d --threads x", DIGITS, tmp);
    expect(1, "unknown option '--bogus'", "%s/model.onnx --data %s/d --bogus", DIGITS, tmp);
    expect(1, "unexpected argument", "%s/model.onnx extra --data %s/d", DIGITS, tmp);
    expect(1, "unknown model kind", "%s/d/labels.npy --data %s/d", tmp, tmp);
}

Test(eval, data_errors) {
    expect(5, "/nope", "%s/model.onnx --data %s/nope", DIGITS, tmp);
    expect(2, "not a directory", "%s/model.onnx --data %s/d/labels.npy", DIGITS, tmp);
    /* no labels: accuracy needs them; without --metric nothing applies */
    mkdir_tmp("n");
    cr_assert_eq(pq_cli_sh(out, sizeof out, "cp %s/test_x.npy %s/n/input.npy", DIGITS, tmp), 0);
    expect(2, "labels.npy", "%s/model.onnx --data %s/n --metric accuracy", DIGITS, tmp);
    expect(2, "--reference MODEL.onnx for cosine", "%s/model.onnx --data %s/n", DIGITS, tmp);
    /* missing input file names it */
    mkdir_tmp("e");
    cr_assert_eq(pq_cli_sh(out, sizeof out, "cp %s/labels.npy %s/e/", DIGITS, tmp), 0);
    expect(5, "input.npy", "%s/model.onnx --data %s/e", DIGITS, tmp);
    /* hostile input file */
    write_text("e/input.npy", "\x93NUMPY\x01\x00garbage");
    expect(2, "input.npy", "%s/model.onnx --data %s/e", DIGITS, tmp);
    /* wrong shape: digits images are [N,1,8,8] */
    pq_tensor *x = rnd(PQ_DTYPE_F32, 4, (int64_t[]){360, 1, 8, 7}, 1, 0);
    put("e/input.npy", x);
    pq_tensor_destroy(x);
    expect(2, "has 8 at axis 3", "%s/model.onnx --data %s/e", DIGITS, tmp);
    /* count mismatch between input and labels */
    x = rnd(PQ_DTYPE_F32, 4, (int64_t[]){359, 1, 8, 8}, 1, 0);
    put("e/input.npy", x);
    pq_tensor_destroy(x);
    expect(2, "360 samples", "%s/model.onnx --data %s/e", DIGITS, tmp);
}

Test(eval, label_errors) {
    /* first bad label: sample 17 (classifier) */
    pq_tensor *lab = get("d/labels.npy");
    ((int64_t *)lab->data)[17] = 10;
    ((int64_t *)lab->data)[200] = -1;
    put("d/labels.npy", lab);
    expect(2, "labels.npy: sample 17: label 10 outside [0, 10)", "%s/model.onnx --data %s/d",
           DIGITS, tmp);
    expect(2, "sample 17", "%s/model.onnx --data %s/d --metric perplexity --batch 5", DIGITS, tmp);
    pq_tensor_destroy(lab);
    /* labels with an extra axis */
    lab = rnd(PQ_DTYPE_I64, 2, (int64_t[]){360, 1}, 1, 10);
    put("d/labels.npy", lab);
    pq_tensor_destroy(lab);
    expect(2, "without its last (class) axis", "%s/model.onnx --data %s/d", DIGITS, tmp);
    /* f32 labels: regression targets are not class ids */
    lab = rnd(PQ_DTYPE_F32, 1, (int64_t[]){360}, 1, 10);
    put("d/labels.npy", lab);
    pq_tensor_destroy(lab);
    expect(2, "float32 labels", "%s/model.onnx --data %s/d", DIGITS, tmp);
    expect(2, "needs integer class ids", "%s/model.onnx --data %s/d --metric perplexity", DIGITS,
           tmp);
    /* i32 labels are refused when the folder is opened */
    lab = rnd(PQ_DTYPE_I32, 1, (int64_t[]){360}, 1, 10);
    put("d/labels.npy", lab);
    pq_tensor_destroy(lab);
    expect(2, "expected int64", "%s/model.onnx --data %s/d", DIGITS, tmp);
    /* sequence model: sample and position of the first bad label */
    make_seq();
    lab = get("s/labels.npy");
    ((int64_t *)lab->data)[3 * 8 + 5] = 7;
    put("s/labels.npy", lab);
    pq_tensor_destroy(lab);
    expect(2, "sample 3, position 5: label 7 outside [0, 7)", "%s --data %s/s --batch 2", T17, tmp);
}

Test(eval, model_errors) {
    make_softmax("Softmax", -1);
    write_text("z.pir", "piqc 1\ngraph z {\n  input %x: f32[N, 3, 5]\n  %y = Relu(%x)\n}\n");
    expect(2, "has no outputs", "%s/z.pir --data %s/x", tmp, tmp);
    /* output 0 without a sample axis */
    write_text("r.pir", "piqc 1\ngraph r {\n  opset \"\" 17\n  input %x: f32[N, 3, 5]\n"
                        "  %y = ReduceSum(%x) {keepdims = 0}\n  output %y\n}\n");
    expect(2, "must be the sample axis", "%s/r.pir --data %s/x", tmp, tmp);
    /* reference with other inputs or another number of outputs */
    expect(2, "input 'tokens' is not an input of the model",
           "%s/model.onnx --data %s/d --reference %s", DIGITS, tmp, T17);
    write_text("two.pir", "piqc 1\ngraph t {\n  input %input: f32[N, 1, 8, 8]\n"
                          "  %a = Relu(%input)\n  %b = Neg(%input)\n  output %a\n  output %b\n}\n");
    expect(2, "has 2 outputs, the model 1", "%s/model.onnx --data %s/d --reference %s/two.pir",
           DIGITS, tmp, tmp);
    /* reference whose output 0 has another shape */
    write_text("flat.pir", "piqc 1\ngraph f {\n  opset \"\" 17\n  input %input: f32[N, 1, 8, 8]\n"
                           "  %a = Flatten(%input) {axis = 1}\n  output %a\n}\n");
    expect(2, "output 0 'logits': shape [9,10], but the reference's is [9,64]",
           "%s/model.onnx --data %s/d --reference %s/flat.pir --batch 9", DIGITS, tmp, tmp);
    expect(5, "/none.onnx", "%s/model.onnx --data %s/d --reference %s/none.onnx", DIGITS, tmp, tmp);
}
