/* Hostile inputs for the newer commands (`piqc compile`, `piqc sensitivity`, `piqc quantize --calib
 * gptq`): missing / malformed / non-finite calibration data, bad pipeline files, unwritable or full
 * outputs, truncated models. Each must exit non-zero with a message naming what and where, and
 * leave no output file. Full disks are simulated with RLIMIT_FSIZE (SIGXFSZ ignored: writes fail
 * with EFBIG) and, for outputs written in place, with a symlink to /dev/full in the temp dir (never
 * /dev/full itself: an atomic rename over it as root would replace the device). */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/cli_util.h"

#define PIQC PQ_BINARY_DIR "/tools/piqc"
#define SRC PQ_SOURCE_DIR
#define DIGITS SRC "/examples/digits"
#define MODEL DIGITS "/model.onnx"
#define PY "/usr/bin/python3"

static char tmp[256];
static char out[16384];

/* Runs a shell command (cwd = the temp dir), stdout+stderr into `out`; returns the exit code. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = pq_cli_vsh(out, sizeof out, tmp, fmt, ap);
    va_end(ap);
    return rc;
}

static bool exists(const char *rel) {
    char p[512];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", tmp, rel);
    return lstat(p, &sb) == 0;
}

/* No file named like an output or a temporary one is left in the temp dir's top level. */
static void assert_no_outputs(void) {
    char cmd[600];
    snprintf(
        cmd, sizeof cmd,
        "cd %s && ls -A | grep -E '\\.(gguf|json|svg)$|\\.tmp' | grep -v -E '^full\\.' || true",
        tmp);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    char left[1024];
    size_t n = fread(left, 1, sizeof left - 1, p);
    left[n] = '\0';
    pclose(p);
    cr_assert_eq(n, 0, "output files left behind: %s", left);
}

/* A failure: non-zero exit `code`, every needle in the message, no output file left. */
#define EXPECT_FAIL(code, rc, ...)                                                                 \
    do {                                                                                           \
        int rc_ = (rc);                                                                            \
        cr_assert_eq(rc_, (code), "exit %d, expected %d: %s", rc_, (code), out);                   \
        const char *needles_[] = {__VA_ARGS__};                                                    \
        for (size_t k_ = 0; k_ < sizeof needles_ / sizeof needles_[0]; k_++)                       \
            cr_assert(strstr(out, needles_[k_]), "message lacks '%s': %s", needles_[k_], out);     \
        cr_assert(!strstr(out, "AddressSanitizer") && !strstr(out, "runtime error"), "%s", out);   \
        assert_no_outputs();                                                                       \
    } while (0)

static void setup(void) {
    pq_cli_mkdtemp(tmp, sizeof tmp, "robust");
    /* calibration directories: good (64 training images), and hostile variants */
    cr_assert_eq(sh(PY " - <<'EOF'\n"
                       "import os\n"
                       "import numpy as np\n"
                       "x = np.load('" DIGITS "/train_x.npy')[:64]\n"
                       "def put(d, a):\n"
                       "    os.makedirs(d, exist_ok=True)\n"
                       "    np.save(d + '/input.npy', a)\n"
                       "put('good', x)\n"
                       "put('shape', np.zeros((4, 1, 7, 8), np.float32))\n"
                       "put('dtype', x[:4].astype(np.float64))\n"
                       "put('rank', np.zeros((4,), np.float32))\n"
                       "put('empty', np.zeros((0, 1, 8, 8), np.float32))\n"
                       "y = x.copy(); y[3, 0, 2, 2] = np.nan; put('nan', y)\n"
                       "y = x.copy(); y[5, 0, 1, 7] = -np.inf; put('inf', y)\n"
                       "put('huge', np.full((8, 1, 8, 8), 3e38, np.float32))\n"
                       "os.makedirs('wrongname', exist_ok=True)\n"
                       "np.save('wrongname/x.npy', x)\n"
                       "os.makedirs('notnpy', exist_ok=True)\n"
                       "open('notnpy/input.npy', 'w').write('not a numpy file')\n"
                       "EOF"),
                 0, "%s", out);
    cr_assert_eq(sh("sed 's/calib: mse/calib: gptq/' %s/examples/pipelines/ptq-piq3.yaml > "
                    "gptq.yaml && grep -q 'calib: gptq' gptq.yaml && : > empty.yaml && mkdir "
                    "dir.yaml && head -c 5000 %s > trunc.onnx && : > zero.onnx && ln -s "
                    "/dev/full full.json && ln -s /dev/full full.svg && ln -s /dev/full full.gguf",
                    SRC, MODEL),
                 0, "%s", out);
}

static void teardown(void) {
    pq_cli_rmtree(tmp);
}

TestSuite(robust_new, .init = setup, .fini = teardown, .timeout = 300);

/* The three commands that read calibration data, each with calibration directory DIR. */
#define COMPILE_GPTQ(dir)                                                                          \
    PIQC " compile " MODEL " --pipeline gptq.yaml --calib-data " dir " -o o.gguf -q"
#define COMPILE_MIXED(dir)                                                                         \
    PIQC " compile " MODEL " --pipeline ptq-mixed-3.2 --calib-data " dir                           \
         " -o o.gguf --json o.json -q"
#define SENS(dir) PIQC " sensitivity " MODEL " --calib-data " dir " --json s.json --svg s.svg -q"
#define QUANT(dir)                                                                                 \
    PIQC " quantize " MODEL " --format piq3 --calib gptq --calib-data " dir                        \
         " -o q.gguf --json q.json"

Test(robust_new, sanity_good_data_works) {
    cr_assert_eq(sh(COMPILE_GPTQ("good")), 0, "%s", out);
    cr_assert(exists("o.gguf"));
    cr_assert_eq(sh(SENS("good")), 0, "%s", out);
    cr_assert(exists("s.json") && exists("s.svg"));
    cr_assert_eq(sh(QUANT("good")), 0, "%s", out);
    cr_assert(exists("q.gguf") && exists("q.json"));
    cr_assert_eq(sh("rm -f o.gguf s.json s.svg q.gguf q.json"), 0);
    assert_no_outputs();
}

Test(robust_new, missing_calib_dir) {
    const char *cmds[] = {COMPILE_GPTQ("nodir"), COMPILE_MIXED("nodir"), SENS("nodir"),
                          QUANT("nodir")};
    for (size_t i = 0; i < 4; i++)
        EXPECT_FAIL(5, sh("%s", cmds[i]), "calibration data", "nodir/input.npy",
                    "No such file or directory");
}

Test(robust_new, calib_file_named_wrongly) {
    /* the directory holds x.npy, the model's input is 'input' */
    EXPECT_FAIL(5, sh(COMPILE_GPTQ("wrongname")), "one <input name>.npy per model input",
                "wrongname/input.npy");
    EXPECT_FAIL(5, sh(SENS("wrongname")), "wrongname/input.npy");
}

Test(robust_new, calib_not_npy) {
    const char *cmds[] = {COMPILE_GPTQ("notnpy"), SENS("notnpy"), QUANT("notnpy")};
    for (size_t i = 0; i < 3; i++)
        EXPECT_FAIL(2, sh("%s", cmds[i]), "notnpy/input.npy");
}

Test(robust_new, calib_wrong_shape) {
    const char *cmds[] = {COMPILE_GPTQ("shape"), COMPILE_MIXED("shape"), SENS("shape"),
                          QUANT("shape")};
    for (size_t i = 0; i < 4; i++)
        EXPECT_FAIL(2, sh("%s", cmds[i]), "input 'input'", "dimension 2 must be 8", "[4,1,7,8]");
    EXPECT_FAIL(2, sh(SENS("rank")), "input 'input'", "expected rank 4");
}

Test(robust_new, calib_wrong_dtype) {
    const char *cmds[] = {COMPILE_GPTQ("dtype"), COMPILE_MIXED("dtype"), SENS("dtype"),
                          QUANT("dtype")};
    for (size_t i = 0; i < 4; i++)
        EXPECT_FAIL(2, sh("%s", cmds[i]), "input 'input'", "expected f32", "got f64[");
}

Test(robust_new, calib_no_samples) {
    const char *cmds[] = {COMPILE_GPTQ("empty"), SENS("empty"), QUANT("empty")};
    for (size_t i = 0; i < 3; i++)
        EXPECT_FAIL(2, sh("%s", cmds[i]), "empty/input.npy", "sample axis");
}

/* Decision: non-finite calibration inputs are an error naming the directory, the input, the
 * element and the sample (before this test, sensitivity and the mixed-precision plan silently
 * skipped NaN outputs, and gptq failed with "non-finite Hessian entry 0"). */
Test(robust_new, calib_nan_rejected_naming_the_sample) {
    const char *cmds[] = {COMPILE_GPTQ("nan"), COMPILE_MIXED("nan"), SENS("nan"), QUANT("nan")};
    for (size_t i = 0; i < 4; i++)
        EXPECT_FAIL(2, sh("%s", cmds[i]), "calibration data 'nan'", "input 'input'",
                    "non-finite value nan at [3, 0, 2, 2] (sample 3)");
    /* even where the data would not be used (mse ignores it) */
    EXPECT_FAIL(2, sh(PIQC " compile " MODEL " --pipeline ptq-piq3 --calib-data nan -o o.gguf -q"),
                "non-finite value nan");
}

Test(robust_new, calib_inf_rejected) {
    EXPECT_FAIL(2, sh(SENS("inf")), "calibration data 'inf'", "-inf at [5, 0, 1, 7] (sample 5)");
    EXPECT_FAIL(2, sh(COMPILE_GPTQ("inf")), "-inf at [5, 0, 1, 7]");
}

/* Finite data that overflows inside the model: the FP32 reference is not finite. */
Test(robust_new, calib_overflowing_activations) {
    EXPECT_FAIL(2, sh(SENS("huge")), "reference model's output 'logits'", "is nan");
    EXPECT_FAIL(2, sh(COMPILE_GPTQ("huge")), "hessian: node '/features/features.3/Conv'",
                "not finite");
    EXPECT_FAIL(2, sh(COMPILE_MIXED("huge")), "pass 'mixed-precision'", "output 'logits'");
    EXPECT_FAIL(2, sh(QUANT("huge")), "hessian: node", "not finite");
}

Test(robust_new, pipeline_empty_file) {
    EXPECT_FAIL(2,
                sh(PIQC " compile " MODEL " --pipeline empty.yaml --calib-data good -o o.gguf -q"),
                "empty.yaml:1:1", "empty pipeline");
    EXPECT_FAIL(2, sh(PIQC " sensitivity " MODEL " --calib-data good --pipeline empty.yaml -q"),
                "empty.yaml:1:1", "empty pipeline");
}

Test(robust_new, pipeline_is_a_directory) {
    EXPECT_FAIL(5, sh(PIQC " compile " MODEL " --pipeline dir.yaml -o o.gguf -q"), "dir.yaml",
                "Is a directory");
    EXPECT_FAIL(5, sh(PIQC " sensitivity " MODEL " --calib-data good --pipeline ./dir.yaml -q"),
                "./dir.yaml", "Is a directory");
}

Test(robust_new, model_truncated_or_empty) {
    const char *models[] = {"trunc.onnx", "zero.onnx", "missing.onnx"};
    for (size_t i = 0; i < 3; i++) {
        int code = i == 2 ? 5 : 2;
        EXPECT_FAIL(code,
                    sh(PIQC " compile %s --pipeline ptq-mixed-3.2 --calib-data good -o o.gguf -q",
                       models[i]),
                    models[i]);
        EXPECT_FAIL(code, sh(PIQC " sensitivity %s --calib-data good --svg s.svg -q", models[i]),
                    models[i]);
        EXPECT_FAIL(code,
                    sh(PIQC " quantize %s --format piq3 --calib gptq --calib-data good -o q.gguf",
                       models[i]),
                    models[i]);
    }
}

Test(robust_new, output_in_missing_directory) {
    EXPECT_FAIL(
        5, sh(PIQC " compile " MODEL " --pipeline gptq.yaml --calib-data good -o no/o.gguf -q"),
        "no/o.gguf", "No such file or directory");
    /* the artifact is fine, the report is not: no artifact is left either */
    EXPECT_FAIL(5, sh(PIQC " compile " MODEL " --pipeline ptq-piq3 -o o.gguf --json no/o.json -q"),
                "no/o.json", "No such file or directory");
    EXPECT_FAIL(5,
                sh(PIQC " quantize " MODEL
                        " --format piq3 --calib gptq --calib-data good -o no/q.gguf --json q.json"),
                "no/q.gguf", "No such file or directory");
    EXPECT_FAIL(5, sh(PIQC " sensitivity " MODEL " --calib-data good --json no/s.json -q"),
                "no/s.json", "No such file or directory");
    /* JSON written, then the SVG fails: the JSON is removed too */
    EXPECT_FAIL(5,
                sh(PIQC " sensitivity " MODEL " --calib-data good --json s.json --svg no/s.svg -q"),
                "no/s.svg", "No such file or directory");
}

/* /proc refuses new files even for root. */
Test(robust_new, output_in_unwritable_directory) {
    EXPECT_FAIL(5, sh(PIQC " compile " MODEL " --pipeline ptq-piq3 -o /proc/piqc-o.gguf -q"),
                "/proc/piqc-o.gguf");
    EXPECT_FAIL(5, sh(PIQC " sensitivity " MODEL " --calib-data good --svg /proc/piqc-s.svg -q"),
                "/proc/piqc-s.svg");
}

Test(robust_new, output_on_read_only_directory) {
    if (geteuid() == 0) cr_skip_test("running as root: a mode 0555 directory is writable");
    cr_assert_eq(sh("mkdir ro && chmod 555 ro"), 0);
    EXPECT_FAIL(5, sh(PIQC " compile " MODEL " --pipeline ptq-piq3 -o ro/o.gguf -q"), "ro/o.gguf",
                "Permission denied");
    EXPECT_FAIL(5, sh(PIQC " sensitivity " MODEL " --calib-data good --json ro/s.json -q"),
                "ro/s.json", "Permission denied");
    EXPECT_FAIL(5, sh(PIQC " quantize " MODEL " --format piq3 -o ro/q.gguf"), "ro/q.gguf",
                "Permission denied");
}

/* Disk full while writing: RLIMIT_FSIZE of 4 KiB (the digits artifact is ~7 KiB). */
Test(robust_new, disk_full_rlimit) {
    const char *pre = "trap '' XFSZ; ulimit -f 4; ";
    EXPECT_FAIL(
        5,
        sh("%s" PIQC " compile " MODEL " --pipeline gptq.yaml --calib-data good -o o.gguf -q", pre),
        "o.gguf", "File too large");
    EXPECT_FAIL(5,
                sh("%s" PIQC " quantize " MODEL " --format piq3 --calib gptq --calib-data good "
                   "-o q.gguf --json q.json",
                   pre),
                "File too large");
    EXPECT_FAIL(5,
                sh("trap '' XFSZ; ulimit -f 1; " PIQC " sensitivity " MODEL
                   " --calib-data good --svg s.svg -q"),
                "s.svg", "File too large");
}

/* Disk full on a target written in place (a symlink to /dev/full): sensitivity writes through it
 * and reports ENOSPC; compile and quantize refuse non-regular targets (their atomic rename would
 * replace the target, see the test below). */
Test(robust_new, disk_full_dev_full) {
    EXPECT_FAIL(5, sh(PIQC " sensitivity " MODEL " --calib-data good --json full.json -q"),
                "full.json", "No space left on device");
    EXPECT_FAIL(5, sh(PIQC " sensitivity " MODEL " --calib-data good --svg full.svg -q"),
                "full.svg", "No space left on device");
    EXPECT_FAIL(5, sh(PIQC " compile " MODEL " --pipeline ptq-piq3 -o o.gguf --json full.json -q"),
                "--json 'full.json'", "not a regular file");
    EXPECT_FAIL(5, sh(PIQC " compile " MODEL " --pipeline ptq-piq3 -o full.gguf -q"),
                "-o 'full.gguf'", "not a regular file");
    EXPECT_FAIL(5, sh(PIQC " quantize " MODEL " --format piq3 -o q.gguf --json full.json"),
                "--json 'full.json'", "not a regular file");
    /* the symlinks still point at the device */
    cr_assert_eq(sh("test -L full.json && test -L full.gguf && test -c /dev/full"), 0, "%s", out);
}

/* Writing to /dev/null works where outputs are written in place, and never replaces it. */
Test(robust_new, dev_null_outputs_of_sensitivity) {
    cr_assert_eq(sh(PIQC " sensitivity " MODEL
                         " --calib-data good --json /dev/null --svg /dev/null "
                         "-q > /dev/null && test -c /dev/null"),
                 0, "%s", out);
}
