/* End-to-end tests of the piqc command line: exit codes, messages, the digits example,
 * quantize -> artifact -> verify/run/inspect, tamper detection, atomic outputs, .pir round trip. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/cli_util.h"

#define PIQC PQ_BINARY_DIR "/tools/piqc"
#define SRC PQ_SOURCE_DIR

static char tmpdir[256];

static void make_tmp(void) {
    pq_cli_mkdtemp(tmpdir, sizeof tmpdir, "cli");
}

static void rm_tmp(void) {
    pq_cli_rmtree(tmpdir);
}

TestSuite(cli, .init = make_tmp, .fini = rm_tmp);

Test(cli, help_and_usage_codes) {
    char out[8192];
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s --help", PIQC), 0);
    cr_assert(strstr(out, "quantize"));
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s frobnicate", PIQC), 1);
    cr_assert(strstr(out, "unknown command 'frobnicate'"), "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s run", PIQC), 1);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s run --repeat x m.onnx", PIQC), 1);
    const char *cmds[] = {"import", "run", "inspect", "quantize", "verify", "compile"};
    for (int i = 0; i < (int)(sizeof cmds / sizeof cmds[0]); i++)
        cr_assert_eq(pq_cli_sh(out, sizeof out, "%s %s --help", PIQC, cmds[i]), 0, "%s", cmds[i]);
    /* and every subcommand the top-level help lists ("  NAME  summary" under "commands:"), so a
     * new one is covered without editing this list */
    char list[8192], cmd[64];
    cr_assert_eq(pq_cli_sh(list, sizeof list, "%s --help", PIQC), 0);
    const char *p = strstr(list, "commands:\n");
    cr_assert(p, "%s", list);
    int seen = 0;
    for (p += 10; p[0] == ' ' && p[1] == ' ' && sscanf(p, " %63s", cmd) == 1; seen++) {
        cr_assert_eq(pq_cli_sh(out, sizeof out, "%s %s --help", PIQC, cmd), 0, "%s: %s", cmd, out);
        cr_assert(strstr(out, "usage: piqc"), "%s: %s", cmd, out);
        p = strchr(p, '\n');
        if (!p) break;
        p++;
    }
    cr_assert_geq(seen, (int)(sizeof cmds / sizeof cmds[0]), "%s", list);
}

/* --version names the CPU features and kernel families; PIQC_CPU_MAX hides features (the suite
 * runs as an AVX2-only CPU would) and PIQC_ISA forces a family. */
Test(cli, version_names_cpu_and_kernels) {
    char out[4096]; /* (the suite's own PIQC_ISA / PIQC_CPU_MAX removed) */
    cr_assert_eq(pq_cli_sh(out, sizeof out, "env -u PIQC_ISA -u PIQC_CPU_MAX %s --version", PIQC),
                 0, "%s", out);
    cr_assert(strstr(out, "piqc ") && strstr(out, "\ncpu:") && strstr(out, "\nkernels: piq "), "%s",
              out);
    cr_assert_eq(
        pq_cli_sh(out, sizeof out, "env -u PIQC_ISA PIQC_CPU_MAX=scalar %s --version", PIQC), 0,
        "%s", out);
    cr_assert(strstr(out, "(capped by PIQC_CPU_MAX=scalar)") &&
                  strstr(out, "kernels: piq scalar, piq-int8 scalar, int8 scalar\n"),
              "%s", out);
    cr_assert_eq(
        pq_cli_sh(out, sizeof out, "env -u PIQC_CPU_MAX PIQC_ISA=scalar %s --version", PIQC), 0,
        "%s", out);
    cr_assert(strstr(out, "int8 scalar (forced by PIQC_ISA=scalar)"), "%s", out);
    /* an unknown level: a warning naming it, nothing hidden */
    cr_assert_eq(
        pq_cli_sh(out, sizeof out, "env -u PIQC_ISA PIQC_CPU_MAX=avx-2 %s --version 2>&1", PIQC), 0,
        "%s", out);
    cr_assert(strstr(out, "PIQC_CPU_MAX=avx-2 is not one of") && !strstr(out, "capped"), "%s", out);
#if defined(__x86_64__)
    if (pq_cli_sh(out, sizeof out, "grep -qw avx2 /proc/cpuinfo") != 0) return;
    cr_assert_eq(pq_cli_sh(out, sizeof out, "env -u PIQC_ISA PIQC_CPU_MAX=avx2 %s --version", PIQC),
                 0, "%s", out);
    cr_assert(strstr(out, "cpu: avx2 (capped by PIQC_CPU_MAX=avx2)") &&
                  strstr(out, "kernels: piq avx2, piq-int8 avx2, int8 avx2\n"),
              "%s", out);
#endif
}

Test(cli, missing_and_bad_files) {
    char out[8192];
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s run %s/nope.onnx", PIQC, tmpdir), 5, "%s", out);
    cr_assert(strstr(out, "nope.onnx"), "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s run %s/examples/digits/model.onnx", PIQC, SRC), 2,
                 "%s", out);
    cr_assert(strstr(out, "missing input 'input'"), "%s", out);
    cr_assert_eq(
        pq_cli_sh(
            out, sizeof out,
            "%s run %s/examples/digits/model.onnx --input input=%s/examples/digits/labels.npy",
            PIQC, SRC, SRC),
        2, "%s", out);
    cr_assert(strstr(out, "input 'input'"), "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s run %s/examples/digits/model.onnx --input nosuch=x.npy", PIQC, SRC),
                 1);
}

/* piqc run on the bundled digits CNN and its test images, with more options; the exit code. */
static int run_digits(char *out, size_t n, const char *options) {
    return pq_cli_sh(out, n,
                     "%s run %s/examples/digits/model.onnx --input "
                     "input=%s/examples/digits/test_x.npy %s",
                     PIQC, SRC, SRC, options);
}

Test(cli, digits_accuracy_matches_pytorch) {
    char out[8192];
    cr_assert_eq(
        pq_cli_sh(
            out, sizeof out,
            "%s run %s/examples/digits/model.onnx --input input=%s/examples/digits/test_x.npy "
            "--labels %s/examples/digits/labels.npy --repeat 2 --output-dir %s/o",
            PIQC, SRC, SRC, SRC, tmpdir),
        0, "%s", out);
    cr_assert(strstr(out, "accuracy: 98.61% (355/360)"), "%s", out);
    cr_assert(strstr(out, "median "), "%s", out);
    cr_assert_eq(run_digits(out, sizeof out, "--profile"), 0, "%s", out);
    cr_assert(strstr(out, "kernel time per run by op") && strstr(out, "Conv") &&
                  strstr(out, "MaxPool"),
              "%s", out);
    /* and per node: the slowest first, with their output type and name */
    cr_assert(strstr(out, "kernel time per run by node (the 9 slowest of 9):") &&
                  strstr(out, "f32[N,8,8,8]") && strstr(out, "/features/features.0/Conv"),
              "%s", out);
    /* --profile-nodes: the node table's length (0: every timed node); a bad value fails */
    cr_assert_eq(run_digits(out, sizeof out, "--profile --profile-nodes 3"), 0, "%s", out);
    cr_assert(strstr(out, "kernel time per run by node (the 3 slowest of 9):"), "%s", out);
    cr_assert_eq(run_digits(out, sizeof out, "--profile --profile-nodes 0"), 0, "%s", out);
    cr_assert(strstr(out, "kernel time per run by node (the 9 slowest of 9):"), "%s", out);
    cr_assert_eq(run_digits(out, sizeof out, "--profile-nodes -1"), 1, "%s", out);
    cr_assert(strstr(out, "--profile-nodes needs an integer"), "%s", out);
    /* --warmup: untimed runs first, the profile counts the timed ones only; a bad value fails */
    cr_assert_eq(run_digits(out, sizeof out, "--warmup 2 --repeat 3 --profile"), 0, "%s", out);
    cr_assert(strstr(out, "median ") && strstr(out, "over 3 runs") &&
                  strstr(out, "Conv                         ") && strstr(out, "2 calls"),
              "%s", out);
    cr_assert_eq(
        pq_cli_sh(out, sizeof out, "%s run %s/examples/digits/model.onnx --warmup x", PIQC, SRC), 1,
        "%s", out);
    cr_assert(strstr(out, "--warmup needs an integer"), "%s", out);
    char path[512];
    snprintf(path, sizeof path, "%s/o/logits.npy", tmpdir);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0, "output file written");
    /* --output-dir makes missing parents (mkdir -p); a file in the way is a clear error */
    char opt[400];
    snprintf(opt, sizeof opt, "--output-dir %s/p/q/r", tmpdir);
    cr_assert_eq(run_digits(out, sizeof out, opt), 0, "%s", out);
    snprintf(path, sizeof path, "%s/p/q/r/logits.npy", tmpdir);
    cr_assert_eq(stat(path, &sb), 0, "output file written under new parents");
    snprintf(opt, sizeof opt, "--output-dir %s/o/logits.npy/x", tmpdir);
    cr_assert_neq(run_digits(out, sizeof out, opt), 0, "%s", out);
    cr_assert(strstr(out, "is not a directory") && strstr(out, "logits.npy"), "%s", out);
}

Test(cli, quantize_artifact_roundtrip_and_tamper) {
    char out[16384], art[512];
    snprintf(art, sizeof art, "%s/d.gguf", tmpdir);
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s quantize %s/examples/digits/model.onnx --format piq3 --compare q3 "
                           "--json %s/r.json -o %s",
                           PIQC, SRC, tmpdir, art),
                 0, "%s", out);
    cr_assert(strstr(out, "G1"), "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s verify %s", PIQC, art), 0, "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s inspect %s", PIQC, art), 0, "%s", out);
    cr_assert(strstr(out, "fc.weight") && strstr(out, "piq3") && strstr(out, "integrity: OK"), "%s",
              out);
    /* a compiled artifact: fake-quant + lower-quant, weights packed in the graph; no other pass ran
     * (the BatchNormalization nodes are still there) */
    cr_assert(strstr(out, "- fake-quant:") && strstr(out, "- lower-quant"), "%s", out);
    cr_assert(strstr(out, "fc.weight.packed") && strstr(out, "PackedMatMul") &&
                  strstr(out, "PackedConv") && strstr(out, "BatchNormalization"),
              "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s run %s --input input=%s/examples/digits/test_x.npy --labels "
                           "%s/examples/digits/labels.npy",
                           PIQC, art, SRC, SRC),
                 0, "%s", out);
    cr_assert(strstr(out, "accuracy: "), "%s", out);
    /* flip the last byte (tensor data) and a byte inside the header */
    char copy[512];
    snprintf(copy, sizeof copy, "%s/t.gguf", tmpdir);
    cr_assert_eq(
        pq_cli_sh(out, sizeof out,
                  "cp %s %s && printf '\\377' | dd of=%s bs=1 seek=$(($(stat -c %%s %s) - 100)) "
                  "conv=notrunc status=none",
                  art, copy, copy, copy),
        0, "%s", out);
    cr_assert_neq(pq_cli_sh(out, sizeof out, "%s verify %s", PIQC, copy), 0, "%s", out);
    cr_assert(strstr(out, "SHA-256") || strstr(out, "sha256"), "%s", out);
    cr_assert_eq(
        pq_cli_sh(out, sizeof out,
                  "cp %s %s && printf 'X' | dd of=%s bs=1 seek=30 conv=notrunc status=none", art,
                  copy, copy),
        0, "%s", out);
    cr_assert_neq(pq_cli_sh(out, sizeof out, "%s verify %s", PIQC, copy), 0, "%s", out);
}

Test(cli, failed_write_leaves_no_file) {
    char out[8192];
    cr_assert_eq(
        pq_cli_sh(out, sizeof out,
                  "%s quantize %s/examples/digits/model.onnx --format piq2 -o %s/nodir/x.gguf",
                  PIQC, SRC, tmpdir),
        5, "%s", out);
    cr_assert(strstr(out, "nodir"), "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "ls -A %s", tmpdir), 0);
    cr_assert_eq(strlen(out), 0, "temporary files left: %s", out);
}

Test(cli, pir_roundtrip_runs_identically) {
    char out[8192], a[8192];
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s import %s/tests/models/transformer17/model.onnx -o %s/t.pir", PIQC,
                           SRC, tmpdir),
                 0, "%s", out);
    cr_assert_eq(pq_cli_sh(a, sizeof a,
                           "%s run %s/tests/models/transformer17/model.onnx --input "
                           "tokens=%s/tests/models/transformer17/input_tokens.npy | grep output",
                           PIQC, SRC, SRC),
                 0, "%s", a);
    cr_assert_eq(
        pq_cli_sh(out, sizeof out,
                  "%s run %s/t.pir --input tokens=%s/tests/models/transformer17/input_tokens.npy "
                  "| grep output",
                  PIQC, tmpdir, SRC),
        0, "%s", out);
    cr_assert_str_eq(out, a);
}

Test(cli, weighted_calibration_with_data_and_provenance) {
    char out[16384];
    cr_assert_eq(
        pq_cli_sh(out, sizeof out,
                  "mkdir -p %s/calib && ln -s %s/examples/digits/train_x.npy %s/calib/input.npy",
                  tmpdir, SRC, tmpdir),
        0, "%s", out);
    cr_assert_eq(
        pq_cli_sh(out, sizeof out,
                  "%s quantize %s/examples/digits/model.onnx --format piq3 --calib weighted "
                  "--calib-data %s/calib --json %s/w.json -o %s/w.gguf",
                  PIQC, SRC, tmpdir, tmpdir, tmpdir),
        0, "%s", out);
    cr_assert(strstr(out, "calib weighted"), "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s inspect %s/w.gguf", PIQC, tmpdir), 0, "%s", out);
    cr_assert(strstr(out, "method weighted, 1437 samples"), "%s", out);
    /* weighted calibration must differ from plain mse on real activations */
    char a[16384];
    cr_assert_eq(
        pq_cli_sh(out, sizeof out,
                  "%s quantize %s/examples/digits/model.onnx --format piq3 | grep aggregate", PIQC,
                  SRC),
        0);
    cr_assert_eq(
        pq_cli_sh(a, sizeof a,
                  "%s quantize %s/examples/digits/model.onnx --format piq3 --calib weighted "
                  "--calib-data %s/calib | grep aggregate",
                  PIQC, SRC, tmpdir),
        0);
    cr_assert_str_neq(out, a);
    /* weighted without data is a usage error; a missing data file names it */
    cr_assert_eq(
        pq_cli_sh(out, sizeof out,
                  "%s quantize %s/examples/digits/model.onnx --format piq3 --calib weighted", PIQC,
                  SRC),
        1);
    cr_assert_eq(
        pq_cli_sh(out, sizeof out,
                  "%s quantize %s/examples/digits/model.onnx --format piq3 --calib weighted "
                  "--calib-data %s/none",
                  PIQC, SRC, tmpdir),
        5, "%s", out);
    cr_assert(strstr(out, "input.npy"), "%s", out);
    /* gptq goes through the fake-quant pass: it needs the data (INVALID naming the flag) */
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s quantize %s/examples/digits/model.onnx --format piq3 --calib gptq",
                           PIQC, SRC),
                 2, "%s", out);
    cr_assert(strstr(out, "gptq") && strstr(out, "--calib-data"), "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s quantize %s/examples/digits/model.onnx --format piq3 --calib gptq "
                           "--calib-data %s/calib -o %s/g.gguf",
                           PIQC, SRC, tmpdir, tmpdir),
                 0, "%s", out);
    cr_assert(strstr(out, "calib gptq") && strstr(out, "2 of 2 quantized weights lowered"), "%s",
              out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s inspect %s/g.gguf", PIQC, tmpdir), 0, "%s", out);
    cr_assert(strstr(out, "method gptq, 1437 samples"), "%s", out);
}

Test(cli, quantize_report_shape_and_refusals) {
    char out[16384];
    /* the report keeps the ONNX weight names, the JSON keys scripts/demo and quality-report read */
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s quantize %s/examples/digits/model.onnx --format piq3 --compare q3 "
                           "--group 32 --json %s/r.json && cat %s/r.json",
                           PIQC, SRC, tmpdir, tmpdir),
                 0, "%s", out);
    cr_assert(strstr(out, "2 weight tensors quantized to piq3 (G=32, calib mse), compared with q3"),
              "%s", out);
    cr_assert(strstr(out, "{\"name\": \"features.3.weight\", \"shape\": [16, 8, 3, 3], "
                          "\"rows\": 16, \"cols\": 72, \"bpw\": "),
              "%s", out);
    cr_assert(strstr(out, "\"aggregate\": {\"piq3\": {\"bpw\": ") && strstr(out, "\"q3\": {") &&
                  strstr(out, "\"g1\": {\"wins\": "),
              "%s", out);
    /* int8 -o: lowered to PackedMatMul/PackedConv over i8 codes, runs at FP32 accuracy */
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s quantize %s/examples/digits/model.onnx --format int8 -o %s/i.gguf",
                           PIQC, SRC, tmpdir),
                 0, "%s", out);
    cr_assert(strstr(out, "2 of 2 quantized weights lowered"), "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s run %s/i.gguf --input input=%s/examples/digits/test_x.npy --labels "
                           "%s/examples/digits/labels.npy",
                           PIQC, tmpdir, SRC, SRC),
                 0, "%s", out);
    cr_assert(strstr(out, "accuracy: 98.61% (355/360)"), "%s", out);
    /* group out of range: a usage error, no file */
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s quantize %s/examples/digits/model.onnx --format piq3 --group 65544",
                           PIQC, SRC),
                 1, "%s", out);
    cr_assert(strstr(out, "--group"), "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "ls -A %s | grep -c gguf", tmpdir), 0, "%s", out);
    cr_assert_eq(atoi(out), 1, "only i.gguf: %s", out);
    /* int8 is reported (per channel: 8 bits + a f32 scale per row) */
    cr_assert_eq(pq_cli_sh(out, sizeof out,
                           "%s quantize %s/examples/digits/model.onnx --format int8", PIQC, SRC),
                 0, "%s", out);
    cr_assert(strstr(out, "fc.weight") && strstr(out, "nominal bpw 8.0000"), "%s", out);
}
