/* End-to-end tests of `piqc compile`: presets on the digits CNN and the transformer, then verify,
 * run (packed kernels, accuracy), inspect (packed layers, resident bytes), the JSON report,
 * --disable-pass lower-quant vs the lowered artifact, errors leave no file, --dump-dir files that
 * `piqc import` reads, --print-after, weighted calibration provenance. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontends/npy.h"
#include "ir/ir.h"
#include "tools/cli_util.h"

#define PIQC PQ_BINARY_DIR "/tools/piqc"
#define SRC PQ_SOURCE_DIR
#define DIGITS SRC "/examples/digits"
#define DIGITS_RUN "--input input=" DIGITS "/test_x.npy --labels " DIGITS "/labels.npy"

static char tmpdir[256];

static void make_tmp(void) {
    pq_cli_mkdtemp(tmpdir, sizeof tmpdir, "compile");
}

static void rm_tmp(void) {
    pq_cli_rmtree(tmpdir);
}

static bool exists(const char *fmt, ...) {
    char p[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p, sizeof p, fmt, ap);
    va_end(ap);
    struct stat st;
    return stat(p, &st) == 0;
}

TestSuite(compile, .init = make_tmp, .fini = rm_tmp, .timeout = 300);

Test(compile, help_and_list_passes) {
    char out[32768];
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s compile --help", PIQC), 0);
    cr_assert(strstr(out, "--pipeline") && strstr(out, "ptq-piq3"), "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s --help", PIQC), 0);
    cr_assert(strstr(out, "compile"), "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s compile --list-passes", PIQC), 0);
    cr_assert(strstr(out, "fake-quant") && strstr(out, "lower-quant"), "%s", out);
    cr_assert_eq(
        pq_cli_sh(out, sizeof out, "%s compile %s/model.onnx -o %s/x.gguf", PIQC, DIGITS, tmpdir),
        1);
    cr_assert(strstr(out, "--pipeline"), "%s", out);
    cr_assert_eq(
        pq_cli_sh(out, sizeof out, "%s compile %s/model.onnx --pipeline ptq-piq3", PIQC, DIGITS),
        1);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s compile %s/model.onnx --pipeline ptq-piq3 --bogus",
                           PIQC, DIGITS),
                 1);
}

/* Compiles digits with preset, then verify / run / inspect the artifact. */
static void digits_preset(const char *preset) {
    char out[65536];
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s compile %s/model.onnx --pipeline %s -o %s/%s.gguf --json %s/%s.json "
                           "--time-passes",
                           PIQC, DIGITS, preset, tmpdir, preset, tmpdir, preset),
                 0, "%s", out);
    cr_assert(strstr(out, "piq3") && strstr(out, "lower-quant") && strstr(out, "vs FP32"), "%s",
              out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s verify %s/%s.gguf", PIQC, tmpdir, preset), 0, "%s",
                 out);
    cr_assert(strstr(out, "OK"), "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s run %s/%s.gguf " DIGITS_RUN, PIQC, tmpdir, preset),
                 0, "%s", out);
    double acc = pq_cli_number_after(out, "accuracy: ");
    cr_assert_geq(acc, 95.0, "%s: accuracy %.2f%%\n%s", preset, acc, out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s inspect %s/%s.gguf", PIQC, tmpdir, preset), 0, "%s",
                 out);
    cr_assert(strstr(out, "PackedMatMul") && strstr(out, "PackedConv"), "%s", out);
    cr_assert(strstr(out, "fc.weight.packed") && strstr(out, " packed\n"), "%s", out);
    cr_assert(strstr(out, "pipeline:\n") && strstr(out, "lower-quant"), "%s", out);
    double resident = pq_cli_number_after(out, "resident weights: ");
    double f32 = pq_cli_number_after(out, "f32 equivalent ");
    cr_assert(resident > 0 && f32 > 0 && resident < f32, "resident %.0f vs f32 %.0f\n%s", resident,
              f32, out);
    cr_assert_eq(
        pq_cli_sh(out, sizeof out,
                  "/usr/bin/python3 -c \"import json,sys; r=json.load(open('%s/%s.json'));"
                  "t=r['tensors']; a=r['aggregate']; p=r['passes'];"
                  "assert len(t)>=2, t; assert set(a)=={'piq3','all'}, a;"
                  "assert all(k in t[0] for k in ('name','shape','rows','cols','format','bpw',"
                  "'mse','sd_db','cosine','outlier_retention')), t[0];"
                  "assert a['all']['layers']==len(t); assert 3.0<a['piq3']['bpw']<3.5;"
                  "assert a['piq3']['bpw_nominal']==3.0625;"
                  "assert all(k in p[0] for k in ('name','ms','nodes_before','nodes_after'));"
                  "assert p[-1]['name']=='lower-quant'; assert r['artifact_bytes']>0\"",
                  tmpdir, preset),
        0, "%s", out);
}

Test(compile, digits_ptq_piq3) {
    digits_preset("ptq-piq3");
}

Test(compile, digits_ptq_piq3_hadamard) {
    digits_preset("ptq-piq3-hadamard");
}

/* Loads DIR/logits.npy as f32. */
static pq_tensor *logits(const char *dir) {
    char p[512];
    snprintf(p, sizeof p, "%s/logits.npy", dir);
    pq_tensor *t = NULL;
    pq_error err;
    cr_assert_eq(pq_npy_read(p, &t, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(t->dtype, PQ_DTYPE_F32);
    return t;
}

Test(compile, disable_lower_quant_runs_the_fake_quant_graph) {
    char out[65536];
    cr_assert_eq(
        pq_cli_sh(out, sizeof out,
                  "%s compile %s/model.onnx --pipeline ptq-piq3-hadamard -o %s/low.gguf -q && "
                  "%s compile %s/model.onnx --pipeline ptq-piq3-hadamard -o %s/fq.gguf -q "
                  "--disable-pass lower-quant",
                  PIQC, DIGITS, tmpdir, PIQC, DIGITS, tmpdir),
        0, "%s", out);
    cr_assert_eq(out[0], '\0', "-q prints nothing: %s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s inspect %s/fq.gguf", PIQC, tmpdir), 0, "%s", out);
    cr_assert(strstr(out, "FakeQuant") && !strstr(out, "PackedMatMul"), "%s", out);
    cr_assert(strstr(out, "disable-pass: lower-quant"), "the stored pipeline says so: %s", out);
    cr_assert_eq(
        pq_cli_sh(out, sizeof out,
                  "%s run %s/low.gguf --input input=%s/test_x.npy --output-dir %s/o_low && "
                  "%s run %s/fq.gguf --input input=%s/test_x.npy --output-dir %s/o_fq",
                  PIQC, tmpdir, DIGITS, tmpdir, PIQC, tmpdir, DIGITS, tmpdir),
        0, "%s", out);
    char d1[300], d2[300];
    snprintf(d1, sizeof d1, "%s/o_low", tmpdir);
    snprintf(d2, sizeof d2, "%s/o_fq", tmpdir);
    pq_tensor *a = logits(d1), *b = logits(d2);
    int64_t n = pq_tensor_numel(a);
    cr_assert_eq(n, pq_tensor_numel(b));
    cr_assert_eq(n, 3600);
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)((float *)a->data)[i] - (double)((float *)b->data)[i]);
        if (!(d <= worst)) worst = d;
    }
    cr_assert_leq(worst, 1e-4, "lowered vs fake-quant outputs differ by %g", worst);
    pq_tensor_destroy(a);
    pq_tensor_destroy(b);
}

Test(compile, bad_pipelines_leave_no_file) {
    char out[16384];
    FILE *f;
    char yaml[300];
    snprintf(yaml, sizeof yaml, "%s/bad.yaml", tmpdir);
    f = fopen(yaml, "w");
    cr_assert_not_null(f);
    fputs("passes:\n  - dce\n  - fake-quant: {format: piq9}\n", f);
    fclose(f);
    int rc = pq_cli_sh(out, sizeof out, "%s compile %s/model.onnx --pipeline %s -o %s/bad.gguf",
                       PIQC, DIGITS, yaml, tmpdir);
    cr_assert(rc == 1 || rc == 2, "rc %d: %s", rc, out);
    cr_assert(strstr(out, "bad.yaml:3:"), "file:line:col expected: %s", out);
    cr_assert(strstr(out, "piq9"), "%s", out);
    cr_assert(!exists("%s/bad.gguf", tmpdir));
    /* YAML syntax error */
    f = fopen(yaml, "w");
    fputs("passes:\n  - dce\n  - [unclosed\n", f);
    fclose(f);
    rc = pq_cli_sh(out, sizeof out, "%s compile %s/model.onnx --pipeline %s -o %s/bad.gguf", PIQC,
                   DIGITS, yaml, tmpdir);
    cr_assert(rc == 1 || rc == 2, "rc %d: %s", rc, out);
    cr_assert(strstr(out, "bad.yaml:"), "%s", out);
    /* unknown preset, unknown disabled pass, a pass that fails (weighted without data) */
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s compile %s/model.onnx --pipeline nopreset -o %s/bad.gguf", PIQC,
                           DIGITS, tmpdir),
                 1, "%s", out);
    cr_assert(strstr(out, "nopreset") && strstr(out, "ptq-piq3"), "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s compile %s/model.onnx --pipeline ptq-piq3 -o %s/bad.gguf "
                           "--disable-pass nosuch",
                           PIQC, DIGITS, tmpdir),
                 1, "%s", out);
    cr_assert(strstr(out, "nosuch"), "%s", out);
    f = fopen(yaml, "w");
    fputs("passes:\n  - fake-quant: {format: piq3, calib: weighted}\n", f);
    fclose(f);
    rc = pq_cli_sh(out, sizeof out, "%s compile %s/model.onnx --pipeline %s -o %s/bad.gguf", PIQC,
                   DIGITS, yaml, tmpdir);
    cr_assert(rc != 0, "%s", out);
    cr_assert(strstr(out, "fake-quant") && strstr(out, "--calib-data"), "%s", out);
    /* an output that cannot be written */
    rc = pq_cli_sh(out, sizeof out,
                   "%s compile %s/model.onnx --pipeline ptq-piq3 -o %s/no/dir/x.gguf", PIQC, DIGITS,
                   tmpdir);
    cr_assert_eq(rc, 5, "%s", out);
    cr_assert(!exists("%s/bad.gguf", tmpdir));
}

Test(compile, dump_dir_files_import_back_and_print_after) {
    char out[262144];
    cr_assert_eq(
        pq_cli_sh(out, sizeof out,
                  "%s compile %s/model.onnx --pipeline ptq-piq3 -o %s/d.gguf --dump-dir %s/dump "
                  "--print-after fake-quant --verify-each",
                  PIQC, DIGITS, tmpdir, tmpdir),
        0, "%s", out);
    cr_assert(strstr(out, "FakeQuant"), "--print-after shows the IR: %.2000s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "ls %s/dump | grep -c '^[0-9][0-9]-.*\\.pir$'", tmpdir),
                 0, "%s", out);
    int n = atoi(out);
    cr_assert_geq(n, 3, "%s", out);
    cr_assert(exists("%s/dump/00-input.pir", tmpdir));
    cr_assert_eq(pq_cli_sh(out, sizeof out, "ls %s/dump/*-lower-quant.pir", tmpdir), 0, "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "for f in %s/dump/*.pir; do %s import \"$f\" >/dev/null || exit 1; done",
                           tmpdir, PIQC),
                 0, "%s", out);
    /* the last dump is the compiled graph: it runs and gives the artifact's answers */
    char a[8192];
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s run %s/dump/*-lower-quant.pir " DIGITS_RUN " | grep -v median", PIQC,
                           tmpdir),
                 0, "%s", out);
    cr_assert_eq(
        pq_cli_sh(a, sizeof a, "%s run %s/d.gguf " DIGITS_RUN " | grep -v median", PIQC, tmpdir), 0,
        "%s", a);
    cr_assert_str_eq(out, a);
}

Test(compile, weighted_calibration_provenance) {
    char out[65536];
    cr_assert_eq(
        pq_cli_sh(out, sizeof out,
                  "mkdir -p %s/calib && ln -s %s/train_x.npy %s/calib/input.npy && "
                  "printf 'passes:\\n  - fold-batchnorm\\n  - fake-quant: {format: piq3, group: "
                  "64, calib: weighted}\\n  - lower-quant\\n' > %s/w.yaml",
                  tmpdir, DIGITS, tmpdir, tmpdir),
        0, "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s compile %s/model.onnx --pipeline %s/w.yaml --calib-data %s/calib "
                           "-o %s/w.gguf",
                           PIQC, DIGITS, tmpdir, tmpdir, tmpdir),
                 0, "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s inspect %s/w.gguf", PIQC, tmpdir), 0, "%s", out);
    cr_assert(strstr(out, "method weighted, 1437 samples, data sha256 "), "%s", out);
    cr_assert(strstr(out, "calib: weighted"), "pipeline text stored: %s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s run %s/w.gguf " DIGITS_RUN, PIQC, tmpdir), 0, "%s",
                 out);
    cr_assert_geq(pq_cli_number_after(out, "accuracy: "), 95.0, "%s", out);
    /* a missing calibration file is named */
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s compile %s/model.onnx --pipeline %s/w.yaml --calib-data %s/none "
                           "-o %s/w2.gguf",
                           PIQC, DIGITS, tmpdir, tmpdir, tmpdir),
                 5, "%s", out);
    cr_assert(strstr(out, "input.npy"), "%s", out);
    cr_assert(!exists("%s/w2.gguf", tmpdir));
}

Test(compile, transformer_end_to_end) {
    const char *t = SRC "/tests/models/transformer17";
    char out[65536];
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s compile %s/model.onnx --pipeline ptq-piq3-hadamard -o %s/t.gguf",
                           PIQC, t, tmpdir),
                 0, "%s", out);
    cr_assert(strstr(out, "packed in the graph: ") && !strstr(out, "packed in the graph: none"),
              "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s verify %s/t.gguf", PIQC, tmpdir), 0, "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s run %s/t.gguf --input tokens=%s/input_tokens.npy --output-dir %s/o",
                           PIQC, tmpdir, t, tmpdir),
                 0, "%s", out);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/o", tmpdir);
    pq_tensor *got = logits(dir), *want = NULL;
    pq_error err;
    char p[512];
    snprintf(p, sizeof p, "%s/output_logits.npy", t);
    cr_assert_eq(pq_npy_read(p, &want, &err), PQ_OK, "%s", err.msg);
    int64_t n = pq_tensor_numel(got);
    cr_assert_eq(n, pq_tensor_numel(want));
    double dot = 0, ng = 0, nw = 0;
    for (int64_t i = 0; i < n; i++) {
        double g = ((float *)got->data)[i], w = ((float *)want->data)[i];
        dot += g * w;
        ng += g * g;
        nw += w * w;
    }
    double cosine = dot / sqrt(ng * nw);
    cr_assert_gt(cosine, 0.97, "3-bit transformer logits vs FP32: cosine %.4f", cosine);
    pq_tensor_destroy(got);
    pq_tensor_destroy(want);
}
