/* End-to-end tests of `piqc train` on the bundled digits CNN (few steps, --max-steps): a run
 * killed with SIGKILL and resumed gives the uninterrupted run's artifact byte for byte, label-free
 * distillation on a folder without labels.npy, the teacher hash line, accuracy of a short
 * qat-piq2-hadamard run through `piqc eval`, the metrics lines, and every error (usage, data,
 * checkpoints of another run or corrupted, bad `train:` keys) with no artifact left behind. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "frontends/frontends.h"
#include "ir/ir.h"
#include "runtime/runtime.h"
#include "skip_note.h"
#include "tools/cli_util.h"

#define PIQC PQ_BINARY_DIR "/tools/piqc"
#define DIGITS PQ_SOURCE_DIR "/examples/digits"
#define MODEL DIGITS "/model.onnx"

static char tmp[256];
static char out[32768];

static void setup(void) {
    /* a fixed artifact timestamp: two runs of the same training give identical bytes */
    setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
    pq_cli_mkdtemp(tmp, sizeof tmp, "train");
}

static void teardown(void) {
    pq_cli_rmtree(tmp);
}

TestSuite(train, .init = setup, .fini = teardown, .timeout = 180);

/* Runs piqc with the printf-formatted arguments (stderr merged) into out; the exit code. */
static int piqc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int piqc(const char *fmt, ...) {
    char cmd[3072];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return pq_cli_sh(out, sizeof out, PIQC " %s", cmd);
}

static bool exists(const char *rel) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    struct stat st;
    return stat(path, &st) == 0;
}

/* No file at all in tmp whose name starts with prefix (the artifact nor its temporary). */
static void assert_no_artifact(const char *prefix) {
    DIR *d = opendir(tmp);
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        cr_assert(strncmp(e->d_name, prefix, strlen(prefix)) != 0, "left behind: %s/%s", tmp,
                  e->d_name);
    closedir(d);
}

static unsigned char *read_file(const char *rel, size_t *n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    cr_assert_not_null(b);
    cr_assert_eq(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

static void write_file(const char *rel, const void *data, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "create %s", path);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void write_text(const char *rel, const char *text) {
    write_file(rel, text, strlen(text));
}

static void assert_same_file(const char *a, const char *b) {
    size_t na, nb;
    unsigned char *x = read_file(a, &na), *y = read_file(b, &nb);
    cr_assert_eq(na, nb, "%s: %zu bytes, %s: %zu bytes", a, na, b, nb);
    size_t i = 0;
    while (i < na && x[i] == y[i])
        i++;
    cr_assert_eq(i, na, "%s and %s differ first at byte %zu", a, b, i);
    free(x);
    free(y);
}

/* ---- usage ---- */

Test(train, help_and_usage_errors) {
    cr_assert_eq(piqc("train --help"), 0, "%s", out);
    cr_assert(strstr(out, "usage: piqc train MODEL.onnx --pipeline") && strstr(out, "--resume") &&
                  strstr(out, "--checkpoint-every") && strstr(out, "--max-steps"),
              "%s", out);
    static const struct {
        const char *args, *msg;
    } k_bad[] = {
        {"--pipeline qat-piq3 --data " DIGITS "/train -o %s/o.gguf --bogus",
         "unknown option '--bogus'"},
        {"--pipeline qat-piq3 -o %s/o.gguf", "missing --data DIR"},
        {"--data " DIGITS "/train -o %s/o.gguf", "missing --pipeline"},
        {"--pipeline qat-piq3 --data " DIGITS "/train -o %s/o.onnx",
         "the artifact name must end in .gguf"},
        {"--pipeline qat-piq3 --data " DIGITS "/train -o %s/o.gguf --resume",
         "--resume needs --checkpoint-dir"},
        {"--pipeline qat-piq3 --data " DIGITS "/train -o %s/o.gguf --batch 0",
         "--batch '0': an integer in [1,"},
        {"--pipeline qat-piq3 --data " DIGITS "/train -o %s/o.gguf --lr -1",
         "--lr '-1': a number in [0, 1000]"},
        {"--pipeline qat-piq3 --data " DIGITS "/train -o %s/o.gguf --epochs",
         "--epochs needs a value"},
    };
    for (size_t i = 0; i < sizeof k_bad / sizeof k_bad[0]; i++) {
        char args[1024];
        snprintf(args, sizeof args, k_bad[i].args, tmp);
        cr_assert_eq(piqc("train " MODEL " %s", args), 1, "%s: %s", args, out);
        cr_assert(strstr(out, k_bad[i].msg), "%s: '%s' lacks '%s'", args, out, k_bad[i].msg);
        assert_no_artifact("o.");
    }
    cr_assert_eq(piqc("train --pipeline qat-piq3 --data %s/train -o %s/o.gguf", DIGITS, tmp), 1);
    cr_assert(strstr(out, "missing MODEL"), "%s", out);
}

/* ---- resume after SIGKILL ---- */

/* The step recorded in DIR/checkpoint.pqck (i64 at byte 16), -1 when absent or short. */
static int64_t ckpt_step(const char *dir_rel) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/checkpoint.pqck", tmp, dir_rel);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    unsigned char b[24];
    size_t n = fread(b, 1, 24, f);
    fclose(f);
    if (n != 24) return -1;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)b[16 + i] << (8 * i);
    return (int64_t)v;
}

/* 300 updates over 4 epochs of 89 (1437 samples, batch 16), a checkpoint every 5, validation. */
#define RESUME_ARGS                                                                                \
    "--pipeline qat-piq3 --data " DIGITS "/train --val-data " DIGITS "/test --epochs 4 "           \
    "--max-steps 300 --checkpoint-every 5"

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Strips `"time_s": ...` from every metrics line (the only field that may differ). */
static void strip_times(char *s) {
    char *p;
    while ((p = strstr(s, ", \"time_s\": "))) {
        char *e = strchr(p, '}');
        cr_assert_not_null(e);
        memmove(p, e, strlen(e) + 1);
    }
}

Test(train, resume_after_kill_is_bit_identical) {
    /* A: uninterrupted */
    cr_assert_eq(piqc("train " MODEL " " RESUME_ARGS " --checkpoint-dir %s/DA --metrics %s/a.jsonl "
                      "-o %s/a.gguf",
                      tmp, tmp, tmp),
                 0, "%s", out);
    cr_assert(strstr(out, "trained 300 steps (300 in this run)"), "%s", out);
    cr_assert_eq(ckpt_step("DA"), 300);

    /* B: the same command in the background, killed once its checkpoint passed step 120 (in
     * epoch 2). Fine too if it finished first. */
    char cdir[300], met[300], o[300], log[300];
    snprintf(cdir, sizeof cdir, "%s/DB", tmp);
    snprintf(met, sizeof met, "%s/b.jsonl", tmp);
    snprintf(o, sizeof o, "%s/b.gguf", tmp);
    snprintf(log, sizeof log, "%s/b.log", tmp);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(PIQC, PIQC, "train", MODEL, "--pipeline", "qat-piq3", "--data", DIGITS "/train",
              "--val-data", DIGITS "/test", "--epochs", "4", "--max-steps", "300",
              "--checkpoint-every", "5", "--checkpoint-dir", cdir, "--metrics", met, "-o", o,
              (char *)NULL);
        _exit(127);
    }
    int status = 0;
    bool finished = false;
    for (int waited = 0; waited < 60000; waited++) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            finished = true;
            break;
        }
        if (ckpt_step("DB") >= 120) break;
        sleep_ms(1);
    }
    if (!finished) {
        cr_assert_eq(kill(pid, SIGKILL), 0);
        cr_assert_eq(waitpid(pid, &status, 0), pid);
    }
    bool killed = WIFSIGNALED(status);
    int64_t at = ckpt_step("DB");
    if (killed) {
        cr_assert_eq(WTERMSIG(status), SIGKILL);
        /* no half-written artifact: nothing at -o (nor a temporary beside it) */
        assert_no_artifact("b.gguf");
        cr_assert(at >= 120 && at < 300, "checkpoint at step %lld", (long long)at);
        cr_log_info("run B killed with its checkpoint at step %lld of 300", (long long)at);
    } else {
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "run B: status %d", status);
        PQ_TEST_NOTE("run B finished before the kill (checkpoint at step %lld)", (long long)at);
    }

    /* B resumed: the same command line plus --resume */
    cr_assert_eq(piqc("train " MODEL " " RESUME_ARGS " --checkpoint-dir %s/DB --metrics %s/b.jsonl "
                      "-o %s/b.gguf --resume",
                      tmp, tmp, tmp),
                 0, "%s", out);
    char want[512];
    snprintf(want, sizeof want,
             "piqc train: resumed from %s/DB/checkpoint.pqck at step %lld (epoch", tmp,
             (long long)at);
    cr_assert(strstr(out, want), "'%s' lacks '%s'", out, want);
    snprintf(want, sizeof want, "trained 300 steps (%lld in this run)", (long long)(300 - at));
    cr_assert(strstr(out, want), "'%s' lacks '%s'", out, want);
    assert_same_file("a.gguf", "b.gguf");
    cr_assert_eq(ckpt_step("DB"), 300);
    /* the metrics: the epochs before the kill from B's first process, the rest from the resumed
     * one, equal to A's except for the times */
    if (killed) {
        size_t na, nb;
        char *ma = (char *)read_file("a.jsonl", &na), *mb = (char *)read_file("b.jsonl", &nb);
        ma[na] = mb[nb] = 0;
        strip_times(ma);
        strip_times(mb);
        cr_assert_str_eq(mb, ma);
        free(ma);
        free(mb);
    }
}

/* ---- label-free distillation ---- */

Test(train, label_free_distillation_on_an_unlabeled_folder) {
    cr_assert_eq(pq_cli_sh(out, sizeof out, "mkdir %s/u && cp %s/train_x.npy %s/u/input.npy", tmp,
                           DIGITS, tmp),
                 0, "%s", out);
    /* qat-piq3: KD only (task weight 0), no labels.npy needed */
    cr_assert_eq(piqc("train " MODEL " --pipeline qat-piq3 --data %s/u -o %s/u.gguf --max-steps 30 "
                      "--metrics %s/u.jsonl",
                      tmp, tmp, tmp),
                 0, "%s", out);
    cr_assert(strstr(out, "1437 samples (no labels)"), "%s", out);
    cr_assert(strstr(out, "loss: task 0, kd 1"), "%s", out);
    cr_assert(strstr(out, "trained 30 steps (30 in this run)"), "%s", out);
    double kd = pq_cli_number_after(out, "(task 0.00000, kd ");
    cr_assert(kd > 0 && isfinite(kd), "%s", out);
    cr_assert(strstr(out, "wrote "), "%s", out);
    cr_assert(!strstr(out, "validation:"), "no --val-data, no validation: %s", out);
    /* the artifact runs */
    cr_assert_eq(piqc("eval %s/u.gguf --data %s/test", tmp, DIGITS), 0, "%s", out);
    cr_assert_gt(pq_cli_number_after(out, "accuracy "), 90.0, "%s", out);
    /* one metrics line without validation keys */
    cr_assert_eq(
        pq_cli_sh(out, sizeof out,
                  "/usr/bin/python3 -c '\n"
                  "import json\n"
                  "lines = open(\"%s/u.jsonl\").read().splitlines()\n"
                  "assert len(lines) == 1, lines\n"
                  "r = json.loads(lines[0])\n"
                  "assert r[\"epoch\"] == 1 and r[\"steps\"] == 30 and r[\"task\"] == 0, r\n"
                  "assert r[\"kd\"] > 0 and r[\"loss\"] == r[\"kd\"], r\n"
                  "assert \"val_accuracy\" not in r, r\n"
                  "print(\"ok\")'",
                  tmp),
        0, "%s", out);

    /* a task loss needs labels: a clear error naming labels.npy, nothing written */
    write_text("task.yaml", "passes:\n"
                            "  - fake-quant: {format: piq3, ste: lsq}\n"
                            "train:\n"
                            "  loss: {task: 1.0}\n");
    cr_assert_eq(piqc("train " MODEL " --pipeline %s/task.yaml --data %s/u -o %s/t.gguf "
                      "--max-steps 5",
                      tmp, tmp, tmp),
                 2, "%s", out);
    cr_assert(strstr(out, "labels.npy"), "%s", out);
    assert_no_artifact("t.gguf");
    /* kind: none turns the task term off even with a weight */
    write_text("none.yaml", "passes:\n"
                            "  - fake-quant: {format: piq3, ste: lsq}\n"
                            "train:\n"
                            "  loss: {task: 1.0, kind: none, kd: 1.0}\n");
    cr_assert_eq(piqc("train " MODEL " --pipeline %s/none.yaml --data %s/u -o %s/n.gguf "
                      "--max-steps 5 -q",
                      tmp, tmp, tmp),
                 0, "%s", out);
    cr_assert(exists("n.gguf"));
}

/* ---- the teacher hash ---- */

/* SHA-256 over every constant of the prepared model: name, NUL, bytes, in value order (what
 * piqc train hashes before and after training). */
static void model_sha256(char hex[65]) {
    pq_error err;
    pq_graph *g = NULL;
    cr_assert_eq(pq_onnx_import_file(MODEL, &g, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    cr_assert(md && EVP_DigestInit_ex(md, EVP_sha256(), NULL));
    int n = 0;
    for (uint32_t v = 0; v < g->n_values; v++) {
        const pq_tensor *t = g->values[v].constant;
        if (!t || !t->data) continue;
        EVP_DigestUpdate(md, g->values[v].name, strlen(g->values[v].name) + 1);
        EVP_DigestUpdate(md, t->data, t->nbytes);
        n++;
    }
    cr_assert_gt(n, 4);
    unsigned char h[32];
    unsigned int hl = 0;
    EVP_DigestFinal_ex(md, h, &hl);
    EVP_MD_CTX_free(md);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    pq_graph_destroy(g);
}

Test(train, teacher_hash_is_printed_and_is_the_models) {
    cr_assert_eq(piqc("train " MODEL " --pipeline qat-piq3 --data %s/train -o %s/h.gguf "
                      "--max-steps 10",
                      DIGITS, tmp),
                 0, "%s", out);
    char hex[65], want[128];
    model_sha256(hex);
    snprintf(want, sizeof want, "teacher weights unchanged: sha256 %.16s... before and after\n",
             hex);
    cr_assert(strstr(out, want), "'%s' lacks '%s'", out, want);
    /* -q prints nothing of it */
    cr_assert_eq(piqc("train " MODEL " --pipeline qat-piq3 --data %s/train -o %s/h.gguf "
                      "--max-steps 10 -q",
                      DIGITS, tmp),
                 0, "%s", out);
    cr_assert(!strstr(out, "teacher weights"), "%s", out);
}

/* ---- accuracy of a short QAT run, metrics, threads ---- */

Test(train, qat_piq2_hadamard_artifact_accuracy_and_metrics) {
    /* 150 updates (89 + 61, batch 16) */
    cr_assert_eq(piqc("train " MODEL " --pipeline qat-piq2-hadamard --data %s/train --val-data "
                      "%s/test --epochs 2 --max-steps 150 --metrics %s/m.jsonl -o %s/q.gguf",
                      DIGITS, DIGITS, tmp, tmp),
                 0, "%s", out);
    cr_assert(strstr(out, "trained 150 steps (150 in this run)"), "%s", out);
    double val = pq_cli_number_after(out, "validation: accuracy ");
    cr_assert(strstr(out, "step time median "), "%s", out);
    cr_assert(strstr(out, "lower-quant: lowered 2 of 2 FakeQuants"), "%s", out);
    cr_assert_eq(piqc("eval %s/q.gguf --data %s/test", tmp, DIGITS), 0, "%s", out);
    double acc = pq_cli_number_after(out, "accuracy ");
    cr_assert_geq(acc, 95.0, "PiQ2 + Hadamard QAT, 150 steps: %s", out);
    /* the packed artifact scores what the fake-quantized graph scored in validation (within one
     * of the 360 samples) */
    cr_assert(fabs(acc - val) <= 100.0 / 360 + 1e-9, "eval %.2f%%, validation %.2f%%", acc, val);
    cr_assert_eq(piqc("verify %s/q.gguf", tmp), 0, "%s", out);
    /* one JSON line per epoch with the documented keys; the loss went down */
    cr_assert_eq(
        pq_cli_sh(out, sizeof out,
                  "/usr/bin/python3 -c '\n"
                  "import json\n"
                  "rs = [json.loads(l) for l in open(\"%s/m.jsonl\").read().splitlines()]\n"
                  "assert len(rs) == 2, rs\n"
                  "for i, r in enumerate(rs):\n"
                  "    for k in (\"epoch\", \"steps\", \"loss\", \"task\", \"kd\", \"feature\", "
                  "\"lr\", \"time_s\", \"val_accuracy\", \"val_ce\"):\n"
                  "        assert k in r, (k, r)\n"
                  "    assert r[\"epoch\"] == i + 1, r\n"
                  "    assert r[\"time_s\"] >= 0 and 0.9 <= r[\"val_accuracy\"] <= 1, r\n"
                  "    assert r[\"scales\"][\"count\"] > 0, r\n"
                  "assert rs[0][\"steps\"] == 89 and rs[1][\"steps\"] == 150, rs\n"
                  "assert rs[1][\"loss\"] < rs[0][\"loss\"], rs\n"
                  "assert rs[1][\"lr\"] < rs[0][\"lr\"], rs\n"
                  "print(\"%%.6f\" %% rs[1][\"val_accuracy\"])'",
                  tmp),
        0, "%s", out);
    cr_assert(fabs(strtod(out, NULL) * 100.0 - val) < 0.01, "metrics %s vs printed %.2f", out, val);
}

/* Few steps: on a loaded machine a 2-thread step can take several times the 1-thread one. */
Test(train, same_artifact_at_any_thread_count) {
    cr_assert_eq(piqc("train " MODEL " --pipeline qat-piq3 --data %s/train -o %s/t1.gguf "
                      "--max-steps 10 -q",
                      DIGITS, tmp),
                 0, "%s", out);
    cr_assert_eq(piqc("train " MODEL " --pipeline qat-piq3 --data %s/train -o %s/t2.gguf "
                      "--max-steps 10 -q --threads 2",
                      DIGITS, tmp),
                 0, "%s", out);
    assert_same_file("t1.gguf", "t2.gguf");
    /* and another seed gives another artifact */
    cr_assert_eq(piqc("train " MODEL " --pipeline qat-piq3 --data %s/train -o %s/t3.gguf "
                      "--max-steps 10 -q --seed 7",
                      DIGITS, tmp),
                 0, "%s", out);
    size_t n1, n3;
    unsigned char *a = read_file("t1.gguf", &n1), *b = read_file("t3.gguf", &n3);
    cr_assert(n1 != n3 || memcmp(a, b, n1) != 0, "--seed changed nothing");
    free(a);
    free(b);
}

/* ---- errors ---- */

Test(train, data_errors) {
    /* fewer samples than one batch */
    cr_assert_eq(piqc("train " MODEL " --pipeline qat-piq3 --data %s/train -o %s/e.gguf --batch "
                      "2000",
                      DIGITS, tmp),
                 2, "%s", out);
    cr_assert(strstr(out, "the data folder has 1437 samples, fewer than one batch of 2000"), "%s",
              out);
    assert_no_artifact("e.gguf");
    /* a folder without the model input's file */
    cr_assert_eq(
        pq_cli_sh(out, sizeof out, "mkdir %s/w && cp %s/train_x.npy %s/w/x.npy", tmp, DIGITS, tmp),
        0, "%s", out);
    cr_assert_eq(piqc("train " MODEL " --pipeline qat-piq3 --data %s/w -o %s/e.gguf", tmp, tmp), 5,
                 "%s", out);
    cr_assert(strstr(out, "input.npy"), "%s", out);
    assert_no_artifact("e.gguf");
    /* a missing data folder */
    cr_assert_neq(
        piqc("train " MODEL " --pipeline qat-piq3 --data %s/nowhere -o %s/e.gguf", tmp, tmp), 0,
        "%s", out);
    cr_assert(strstr(out, "nowhere"), "%s", out);
    assert_no_artifact("e.gguf");
    /* validation data of another shape */
    cr_assert_eq(pq_cli_sh(out, sizeof out, "mkdir %s/v && cp %s/train_y.npy %s/v/input.npy", tmp,
                           DIGITS, tmp),
                 0, "%s", out);
    cr_assert_eq(piqc("train " MODEL " --pipeline qat-piq3 --data %s/train --val-data %s/v -o "
                      "%s/e.gguf",
                      DIGITS, tmp, tmp),
                 2, "%s", out);
    cr_assert(strstr(out, "input.npy"), "%s", out);
    assert_no_artifact("e.gguf");
}

/* examples/pipelines/qat-piq3.yaml without its comments */
static const char k_qat_piq3[] =
    "passes:\n  - fold-constants\n  - canonicalize\n  - dce\n  - cse\n  - fold-batchnorm\n"
    "  - fuse-activations\n  - fake-quant: {format: piq3, group: 256, calib: mse, ste: lsq}\n"
    "  - lower-quant\ntrain:\n  loss: {task: 0.0, kd: 1.0, feature: 0.0, temperature: 1}\n"
    "  optimizer: {name: adamw, lr: 1.0e-3, weight-decay: 0.0}\n"
    "  schedule: {name: cosine, warmup-steps: 20}\n  epochs: 3\n  batch: 16\n";

#define CK_ARGS "--pipeline qat-piq3 --data " DIGITS "/train --max-steps 10 --checkpoint-every 5"

Test(train, checkpoint_errors) {
    cr_assert_eq(
        piqc("train " MODEL " " CK_ARGS " --checkpoint-dir %s/C -o %s/c.gguf -q", tmp, tmp), 0,
        "%s", out);
    cr_assert_eq(ckpt_step("C"), 10);
    char ck[512];
    snprintf(ck, sizeof ck, "checkpoint '%s/C/checkpoint.pqck'", tmp);
    /* a checkpoint of another run: another seed, batch, or learning rate */
    static const char *const other[] = {"--seed 2", "--batch 8", "--lr 0.01"};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(piqc("train " MODEL " " CK_ARGS " --checkpoint-dir %s/C -o %s/e.gguf "
                          "--resume %s",
                          tmp, tmp, other[i]),
                     2, "%s: %s", other[i], out);
        cr_assert(strstr(out, ck) && strstr(out, "belongs to another run"), "%s: %s", other[i],
                  out);
        assert_no_artifact("e.gguf");
    }
    /* ... or the same flags with another pipeline: qat-piq3 written out (resumes), then with one
     * setting changed each (refused) */
    static const char *const k_variant[][2] = {
        {"format: piq3", "format: piq3"},
        {"format: piq3", "format: piq2"},
        {"calib: mse", "calib: absmax"},
        {"name: cosine", "name: constant"},
        {"temperature: 1}", "temperature: 1, kd-direction: reverse}"},
        {"weight-decay: 0.0}", "weight-decay: 0.0, beta1: 0.5}"},
        {"weight-decay: 0.0}", "weight-decay: 0.0, max-grad-norm: 0.01}"},
        {"name: adamw, lr: 1.0e-3, weight-decay: 0.0", "name: sgd, lr: 1.0e-3"},
    };
    for (size_t i = 0; i < sizeof k_variant / sizeof k_variant[0]; i++) {
        char yaml[1024];
        snprintf(yaml, sizeof yaml, "%s", k_qat_piq3);
        char *at = strstr(yaml, k_variant[i][0]);
        cr_assert_not_null(at, "%s", k_variant[i][0]);
        char rest[1024];
        snprintf(rest, sizeof rest, "%s", at + strlen(k_variant[i][0]));
        snprintf(at, sizeof yaml - (size_t)(at - yaml), "%s%s", k_variant[i][1], rest);
        write_text("v.yaml", yaml);
        int rc = piqc("train " MODEL " --pipeline %s/v.yaml --data " DIGITS "/train --max-steps 10 "
                      "--checkpoint-every 5 --checkpoint-dir %s/C -o %s/%s.gguf --resume",
                      tmp, tmp, tmp, i ? "v" : "ctl");
        if (i == 0) {
            /* (the artifact differs from c.gguf only by the pipeline text it records) */
            cr_assert_eq(rc, 0, "qat-piq3 written out: %s", out);
            cr_assert(strstr(out, "at step 10"), "%s", out);
            continue;
        }
        cr_assert_eq(rc, 2, "%s: %s", k_variant[i][1], out);
        cr_assert(strstr(out, ck) && strstr(out, "belongs to another run"), "%s: %s",
                  k_variant[i][1], out);
        assert_no_artifact("v.gguf");
    }
    /* the same run resumes (nothing left to do: the artifact equals the first one) */
    cr_assert_eq(
        piqc("train " MODEL " " CK_ARGS " --checkpoint-dir %s/C -o %s/r.gguf --resume", tmp, tmp),
        0, "%s", out);
    cr_assert(strstr(out, "at step 10"), "%s", out);
    assert_same_file("c.gguf", "r.gguf");

    size_t n;
    unsigned char *good = read_file("C/checkpoint.pqck", &n);
    cr_assert_gt(n, 100);
    /* one flipped byte in the middle, in the last byte, and a truncated file: checksum */
    static const size_t flips[3] = {0, 1, 2};
    for (int k = 0; k < 3; k++) {
        unsigned char *bad = malloc(n);
        memcpy(bad, good, n);
        size_t len = n;
        if (flips[k] == 0) bad[n / 2] ^= 0x10;
        if (flips[k] == 1) bad[n - 1] ^= 0x01;
        if (flips[k] == 2) len = n - 7;
        write_file("C/checkpoint.pqck", bad, len);
        free(bad);
        cr_assert_eq(piqc("train " MODEL " " CK_ARGS " --checkpoint-dir %s/C -o %s/e.gguf --resume",
                          tmp, tmp),
                     2, "case %d: %s", k, out);
        cr_assert(strstr(out, ck) && strstr(out, "checksum mismatch"), "case %d: %s", k, out);
        assert_no_artifact("e.gguf");
    }
    /* not a checkpoint at all */
    write_text("C/checkpoint.pqck", "hello, this is not a checkpoint\n");
    cr_assert_eq(
        piqc("train " MODEL " " CK_ARGS " --checkpoint-dir %s/C -o %s/e.gguf --resume", tmp, tmp),
        2, "%s", out);
    cr_assert(strstr(out, "not a piqc checkpoint"), "%s", out);
    assert_no_artifact("e.gguf");
    /* no checkpoint to resume from: I/O error naming the file */
    cr_assert_eq(piqc("train " MODEL " " CK_ARGS " --checkpoint-dir %s/none -o %s/e.gguf --resume",
                      tmp, tmp),
                 5, "%s", out);
    cr_assert(strstr(out, "none/checkpoint.pqck"), "%s", out);
    assert_no_artifact("e.gguf");
    /* the good file back: resumes again */
    write_file("C/checkpoint.pqck", good, n);
    cr_assert_eq(piqc("train " MODEL " " CK_ARGS " --checkpoint-dir %s/C -o %s/r2.gguf --resume -q",
                      tmp, tmp),
                 0, "%s", out);
    assert_same_file("c.gguf", "r2.gguf");
    free(good);
}

Test(train, bad_train_keys_in_a_pipeline_file) {
    static const struct {
        const char *yaml, *msg;
    } k_bad[] = {
        {"passes:\n  - fake-quant: {format: piq3}\ntrain:\n  optimizer: {name: adamw, "
         "learning-rate: 0.1}\n",
         "p.yaml:4:28: train: 'optimizer' has an unknown key 'learning-rate'; accepted: name, lr,"},
        {"passes:\n  - fake-quant: {format: piq3}\ntrain:\n  epochs: 2\n  bacth: 8\n",
         "p.yaml:5:3: train: 'train' has an unknown key 'bacth'"},
        {"passes:\n  - fake-quant: {format: piq3}\ntrain:\n  loss:\n    kd-direction: both\n",
         "p.yaml:5:19: train: 'loss.kd-direction' must be one of forward, reverse"},
        {"passes:\n  - fake-quant: {format: piq3}\ntrain:\n  schedule: {name: cosine, "
         "warmup-steps: -3}\n",
         "p.yaml:4:42: train: 'schedule.warmup-steps' = -3 is out of range"},
        {"passes:\n  - fake-quant: {format: piq3}\ntrain: 5\n", "p.yaml:3:"},
    };
    for (size_t i = 0; i < sizeof k_bad / sizeof k_bad[0]; i++) {
        write_text("p.yaml", k_bad[i].yaml);
        cr_assert_eq(piqc("train " MODEL " --pipeline %s/p.yaml --data %s/train -o %s/e.gguf", tmp,
                          DIGITS, tmp),
                     2, "case %zu: %s", i, out);
        cr_assert(strstr(out, k_bad[i].msg), "case %zu: '%s' lacks '%s'", i, out, k_bad[i].msg);
        assert_no_artifact("e.gguf");
    }
    /* flags override the file: a batch larger than the data from the file, fixed by --batch */
    write_text("p.yaml", "passes:\n  - fake-quant: {format: piq3}\ntrain:\n  batch: 5000\n"
                         "  loss: {task: 0, kd: 1}\n");
    cr_assert_eq(
        piqc("train " MODEL " --pipeline %s/p.yaml --data %s/train -o %s/e.gguf", tmp, DIGITS, tmp),
        2, "%s", out);
    cr_assert(strstr(out, "fewer than one batch of 5000"), "%s", out);
    cr_assert_eq(piqc("train " MODEL " --pipeline %s/p.yaml --data %s/train -o %s/f.gguf --batch "
                      "32 --max-steps 3",
                      tmp, DIGITS, tmp),
                 0, "%s", out);
    cr_assert(strstr(out, "batch 32"), "%s", out);
}
