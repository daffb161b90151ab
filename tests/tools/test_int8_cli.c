/* End-to-end test of the int8-cnn preset through the command line: piqc compile with
 * --calib-data, then verify, run (top-1 on the digits test set) and inspect the artifact; and the
 * error without calibration data (no file written). */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PIQC PQ_BINARY_DIR "/tools/piqc"
#define DIGITS PQ_SOURCE_DIR "/examples/digits"

static char tmpdir[256];

/* Runs a shell command, captures stdout+stderr into out (size), returns the exit code. */
static int sh(char *out, size_t size, const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[4200];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    cr_assert(p, "popen %s", cmd);
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void setup(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/piqc-int8-XXXXXX");
    cr_assert(mkdtemp(tmpdir));
    /* calibration: the training images when present, else the test images, as input.npy */
    struct stat st;
    const char *src =
        stat(DIGITS "/train_x.npy", &st) == 0 ? DIGITS "/train_x.npy" : DIGITS "/test_x.npy";
    char out[256];
    cr_assert_eq(
        sh(out, sizeof out, "mkdir -p %s/cal && cp %s %s/cal/input.npy", tmpdir, src, tmpdir), 0,
        "%s", out);
}

static void teardown(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(int8_cli, .init = setup, .fini = teardown);

Test(int8_cli, digits_compile_verify_run_inspect) {
    static char out[65536];
    int rc = sh(out, sizeof out,
                PIQC " compile " DIGITS "/model.onnx --pipeline int8-cnn --calib-data %s/cal -o "
                     "%s/d.gguf --print-after quantize-int8",
                tmpdir, tmpdir);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "3 of 3 layers in INT8 (2 QLinearConv, 1 QLinearMatMul)"), "%s", out);
    cr_assert(strstr(out, "= QLinearConv(") && strstr(out, "= QLinearMatMul("), "%s", out);
    cr_assert(strstr(out, "int8 "), "the report lists the int8 layers: %s", out);
    rc = sh(out, sizeof out, PIQC " verify %s/d.gguf", tmpdir);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "OK"), "%s", out);
    rc =
        sh(out, sizeof out,
           PIQC " run %s/d.gguf --input input=" DIGITS "/test_x.npy --labels " DIGITS "/labels.npy",
           tmpdir);
    cr_assert_eq(rc, 0, "%s", out);
    const char *acc = strstr(out, "accuracy: ");
    cr_assert(acc, "%s", out);
    double a = atof(acc + strlen("accuracy: "));
    fprintf(stderr, "int8-cnn digits via piqc run: %.2f%% (FP32 98.61%%)\n", a);
    cr_assert_geq(a, 97.61, "%s", out);
    rc = sh(out, sizeof out, PIQC " inspect %s/d.gguf", tmpdir);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "QLinearConv") && strstr(out, "calibration: method percentile, "), "%s",
              out);
}

Test(int8_cli, no_calibration_data_is_an_error) {
    static char out[16384];
    int rc = sh(out, sizeof out,
                PIQC " compile " DIGITS "/model.onnx --pipeline int8-cnn -o %s/x.gguf", tmpdir);
    cr_assert_eq(rc, 2, "%s", out);
    cr_assert(strstr(out, "quantize-int8 needs calibration data (--calib-data)"), "%s", out);
    struct stat st;
    char path[512];
    snprintf(path, sizeof path, "%s/x.gguf", tmpdir);
    cr_assert_neq(stat(path, &st), 0, "no artifact on failure");
}
