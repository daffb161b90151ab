/* ONNX conformance runner: imports every model of the ONNX test suites (libonnx-testdata),
 * runs each test_data_set through a pq_session in a forked, time-limited child and compares the
 * outputs. Prints failures and counts; exits non-zero when a failure is not in exceptions.txt. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frontends/onnx.h"
#include "ir/ir.h"
#include "runtime/runtime.h"

#define RTOL 1e-3
#define ATOL 1e-7
#define MAX_OUTPUT_ELEMENTS 50000000LL
#define MAX_IO 64

static const char *const suites[] = {"node", "pytorch-converted", "pytorch-operator", "simple"};

typedef struct opts {
    const char *data_dir;
    const char *exceptions;
    const char *filter;
    int timeout;
    int verbose;
} opts;

/* ---- helpers ---- */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the entries of dir starting with prefix (directories only when dirs). */
static char **list_dir(const char *dir, const char *prefix, int dirs, int *count) {
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char **names = NULL;
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || (dirs && !S_ISDIR(st.st_mode))) continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 64;
            char **n = realloc(names, sizeof(char *) * (size_t)cap);
            if (!n) break;
            names = n;
        }
        names[(*count)++] = strdup(e->d_name);
    }
    closedir(d);
    if (names) qsort(names, (size_t)*count, sizeof(char *), cmp_str);
    return names;
}

static void free_list(char **l, int n) {
    for (int i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* Writes a one-line result for the parent: "P", "F reason" or "U reason" (newlines removed). */
static void report(int fd, char kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void report(int fd, char kind, const char *fmt, ...) {
    char buf[3072];
    buf[0] = kind;
    buf[1] = ' ';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + 2, sizeof buf - 3, fmt, ap);
    va_end(ap);
    for (char *p = buf; *p; p++)
        if (*p == '\n') *p = ' ';
    size_t n = strlen(buf);
    buf[n++] = '\n';
    ssize_t w = write(fd, buf, n);
    (void)w;
}

static void shape_str(const pq_tensor *t, char *buf, int n) {
    pq_shape_format(t->rank, t->dims, buf, n);
}

/* Compares one output; returns 0 when equal within tolerance, else describes the first mismatch. */
static int compare(const pq_tensor *got, const pq_tensor *want, char *why, size_t n) {
    if (got->dtype != want->dtype) {
        snprintf(why, n, "dtype %s, expected %s", pq_dtype_name(got->dtype),
                 pq_dtype_name(want->dtype));
        return 1;
    }
    int same = got->rank == want->rank;
    for (int i = 0; same && i < got->rank; i++)
        same = got->dims[i] == want->dims[i];
    if (!same) {
        char a[128], b[128];
        shape_str(got, a, sizeof a);
        shape_str(want, b, sizeof b);
        snprintf(why, n, "shape %s, expected %s", a, b);
        return 1;
    }
    int64_t count = pq_tensor_numel(want), bad = 0, first = -1;
    double worst = 0;
    for (int64_t i = 0; i < count; i++) {
        int ok;
        if (pq_dtype_is_float(want->dtype)) {
            double a = pq_dtype_load(got->dtype, got->data, (size_t)i);
            double b = pq_dtype_load(want->dtype, want->data, (size_t)i);
            if (isnan(a) || isnan(b))
                ok = isnan(a) && isnan(b);
            else if (isinf(a) || isinf(b))
                ok = a == b;
            else {
                double d = fabs(a - b);
                ok = d <= ATOL + RTOL * fabs(b);
                if (!ok && d > worst) worst = d;
            }
        } else {
            ok = pq_dtype_load_i64(got->dtype, got->data, (size_t)i) ==
                 pq_dtype_load_i64(want->dtype, want->data, (size_t)i);
        }
        if (!ok) {
            if (first < 0) first = i;
            bad++;
        }
    }
    if (!bad) return 0;
    snprintf(why, n, "%lld of %lld elements differ; first at %lld: got %.9g, expected %.9g%s",
             (long long)bad, (long long)count, (long long)first,
             pq_dtype_load(got->dtype, got->data, (size_t)first),
             pq_dtype_load(want->dtype, want->data, (size_t)first),
             pq_dtype_is_float(want->dtype) ? "" : " (exact)");
    return 1;
}

/* Loads prefix_K.pb for K = 0.. into ts; returns the count or -1 (message in err). */
static int load_set(const char *dir, const char *prefix, pq_tensor **ts, pq_error *err) {
    int n = 0;
    for (; n < MAX_IO; n++) {
        char path[4096];
        int len = snprintf(path, sizeof path, "%s/%s_%d.pb", dir, prefix, n);
        if (len < 0 || (size_t)len >= sizeof path) {
            pq_error_set(err, PQ_ERR_IO, "conformance: path '%s/%s_%d.pb' is longer than %zu bytes",
                         dir, prefix, n, sizeof path - 1);
            for (int i = 0; i < n; i++)
                pq_tensor_destroy(ts[i]);
            return -1;
        }
        if (!file_exists(path)) break;
        if (pq_onnx_load_tensor_file(path, &ts[n], NULL, err) != PQ_OK) {
            for (int i = 0; i < n; i++)
                pq_tensor_destroy(ts[i]);
            return -1;
        }
    }
    return n;
}

/* Runs one case (in the child). Reports one line to fd. */
static void run_case(const char *case_dir, int fd) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/model.onnx", case_dir) >= (int)sizeof path) {
        report(fd, 'F', "path too long");
        return;
    }
    pq_graph *g = NULL;
    pq_error err;
    enum pq_status st = pq_onnx_import_file(path, &g, &err);
    if (st == PQ_ERR_UNSUPPORTED) {
        report(fd, 'U', "%s", err.msg);
        return;
    }
    if (st != PQ_OK) {
        report(fd, 'F', "import: %s", err.msg);
        return;
    }
    st = pq_runtime_prepare(g, &err);
    if (st == PQ_ERR_UNSUPPORTED) {
        pq_graph_destroy(g);
        report(fd, 'U', "prepare: %s", err.msg);
        return;
    }
    if (st != PQ_OK) {
        pq_graph_destroy(g);
        report(fd, 'F', "prepare: %s", err.msg);
        return;
    }
    pq_session *s = NULL;
    if ((st = pq_session_create(g, NULL, &s, &err)) != PQ_OK) {
        pq_graph_destroy(g);
        report(fd, st == PQ_ERR_UNSUPPORTED ? 'U' : 'F', "session: %s", err.msg);
        return;
    }
    int n_sets;
    char **sets = list_dir(case_dir, "test_data_set_", 1, &n_sets);
    char kind = 'P';
    char msg[PQ_ERROR_MSG_MAX + 600] = "";
    if (n_sets == 0) {
        kind = 'F';
        snprintf(msg, sizeof msg, "no test_data_set_* folders");
    }
    for (int k = 0; k < n_sets && kind == 'P'; k++) {
        char sdir[4096];
        if (snprintf(sdir, sizeof sdir, "%s/%s", case_dir, sets[k]) >= (int)sizeof sdir) continue;
        pq_tensor *in[MAX_IO] = {0}, *want[MAX_IO] = {0}, *got[MAX_IO] = {0};
        int n_in = load_set(sdir, "input", in, &err);
        int n_want = n_in < 0 ? -1 : load_set(sdir, "output", want, &err);
        if (n_in < 0 || n_want < 0) {
            kind = err.status == PQ_ERR_UNSUPPORTED ? 'U' : 'F';
            snprintf(msg, sizeof msg, "%s: %s", sets[k], err.msg);
        } else if ((uint32_t)n_in != g->n_inputs || (uint32_t)n_want != g->n_outputs) {
            kind = 'F';
            snprintf(msg, sizeof msg, "%s: %d inputs / %d outputs, model has %u / %u", sets[k],
                     n_in, n_want, g->n_inputs, g->n_outputs);
        } else {
            /* ONNX test data stores bfloat16 tensors as uint16 bit patterns */
            for (int i = 0; i < n_in; i++)
                if (in[i]->dtype == PQ_DTYPE_U16 && g->values[g->inputs[i]].dtype == PQ_DTYPE_BF16)
                    in[i]->dtype = PQ_DTYPE_BF16;
            for (int i = 0; i < n_want; i++)
                if (want[i]->dtype == PQ_DTYPE_U16 &&
                    g->values[g->outputs[i]].dtype == PQ_DTYPE_BF16)
                    want[i]->dtype = PQ_DTYPE_BF16;
            int64_t total = 0;
            for (int i = 0; i < n_want; i++)
                total += pq_tensor_numel(want[i]);
            if (total > MAX_OUTPUT_ELEMENTS) {
                kind = 'U';
                snprintf(msg, sizeof msg, "unsupported-size: %lld output elements",
                         (long long)total);
            } else {
                st = pq_session_run(s, (const pq_tensor *const *)in, (uint32_t)n_in, got,
                                    (uint32_t)n_want, &err);
                if (st != PQ_OK) {
                    kind = st == PQ_ERR_UNSUPPORTED ? 'U' : 'F';
                    snprintf(msg, sizeof msg, "%s: run: %s", sets[k], err.msg);
                }
                for (int i = 0; i < n_want && kind == 'P'; i++) {
                    char why[512];
                    if (compare(got[i], want[i], why, sizeof why)) {
                        kind = 'F';
                        snprintf(msg, sizeof msg, "%s: output %d '%s': %s", sets[k], i,
                                 g->values[g->outputs[i]].name, why);
                    }
                }
            }
        }
        for (int i = 0; i < MAX_IO; i++) {
            pq_tensor_destroy(in[i]);
            pq_tensor_destroy(want[i]);
            pq_tensor_destroy(got[i]);
        }
    }
    free_list(sets, n_sets);
    pq_session_destroy(s);
    pq_graph_destroy(g);
    report(fd, kind, "%s", msg);
}

/* ---- exceptions ---- */

typedef struct exceptions {
    char **names;
    int n;
    int *used;
} exceptions;

static void load_exceptions(const char *path, exceptions *ex) {
    memset(ex, 0, sizeof *ex);
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[1024];
    int cap = 0;
    while (fgets(line, sizeof line, f)) {
        char name[512];
        if (line[0] == '#' || sscanf(line, "%511s", name) != 1) continue;
        if (ex->n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(ex->names, sizeof(char *) * (size_t)cap);
            if (!nn) break;
            ex->names = nn;
        }
        ex->names[ex->n++] = strdup(name);
    }
    fclose(f);
    ex->used = calloc((size_t)(ex->n ? ex->n : 1), sizeof(int));
}

static int is_exception(exceptions *ex, const char *name) {
    for (int i = 0; i < ex->n; i++)
        if (strcmp(ex->names[i], name) == 0) {
            ex->used[i] = 1;
            return 1;
        }
    return 0;
}

/* ---- driver ---- */

/* Runs case_dir in a child with a time limit; fills kind and msg. */
static void run_isolated(const char *case_dir, int timeout, char *kind, char *msg, size_t n) {
    int p[2];
    if (pipe(p) != 0) {
        *kind = 'F';
        snprintf(msg, n, "pipe: %s", strerror(errno));
        return;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        alarm((unsigned)timeout);
        run_case(case_dir, p[1]);
        close(p[1]);
        _exit(0);
    }
    close(p[1]);
    char buf[4096];
    size_t used = 0;
    ssize_t r;
    while (used + 1 < sizeof buf && (r = read(p[0], buf + used, sizeof buf - 1 - used)) != 0) {
        if (r < 0) {
            if (errno == EINTR) continue;
            break;
        }
        used += (size_t)r;
    }
    buf[used] = '\0';
    close(p[0]);
    int status = 0;
    if (pid > 0) waitpid(pid, &status, 0);
    if (pid < 0) {
        *kind = 'F';
        snprintf(msg, n, "fork: %s", strerror(errno));
    } else if (WIFSIGNALED(status)) {
        *kind = 'F';
        if (WTERMSIG(status) == SIGALRM)
            snprintf(msg, n, "timeout after %d s", timeout);
        else
            snprintf(msg, n, "crashed with signal %d", WTERMSIG(status));
    } else if (used < 1) {
        *kind = 'F';
        snprintf(msg, n, "no result (exit status %d)", WEXITSTATUS(status));
    } else {
        *kind = buf[0];
        buf[strcspn(buf, "\n")] = '\0';
        snprintf(msg, n, "%.*s", (int)(n - 1), used > 2 ? buf + 2 : "");
    }
}

static void usage(void) {
    fprintf(stderr,
            "usage: conformance [--data DIR] [--exceptions FILE] [--filter TEXT] [--timeout S] "
            "[-v]\n");
}

int main(int argc, char **argv) {
    opts o = {"/usr/share/libonnx-testdata/data", PQ_SOURCE_DIR "/tests/conformance/exceptions.txt",
              NULL, 120, 0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
            o.data_dir = argv[++i];
        else if (strcmp(argv[i], "--exceptions") == 0 && i + 1 < argc)
            o.exceptions = argv[++i];
        else if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc)
            o.filter = argv[++i];
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            o.timeout = atoi(argv[++i]);
        else if (strcmp(argv[i], "-v") == 0)
            o.verbose = 1;
        else {
            usage();
            return 1;
        }
    }
    if (o.timeout <= 0) o.timeout = 120;
    exceptions ex;
    load_exceptions(o.exceptions, &ex);
    int run = 0, passed = 0, failed = 0, unsupported = 0, unexpected = 0;
    for (size_t s = 0; s < sizeof suites / sizeof suites[0]; s++) {
        char sdir[4096];
        snprintf(sdir, sizeof sdir, "%s/%s", o.data_dir, suites[s]);
        int n;
        char **cases = list_dir(sdir, "", 1, &n);
        for (int c = 0; c < n; c++) {
            char name[1024], cdir[8192];
            snprintf(name, sizeof name, "%s/%s", suites[s], cases[c]);
            if (o.filter && !strstr(name, o.filter)) continue;
            snprintf(cdir, sizeof cdir, "%s/%s", sdir, cases[c]);
            char kind, msg[PQ_ERROR_MSG_MAX + 1024];
            run_isolated(cdir, o.timeout, &kind, msg, sizeof msg);
            if (kind == 'U') {
                unsupported++;
                if (o.verbose) printf("UNSUPPORTED %s: %.300s\n", name, msg);
                continue;
            }
            run++;
            if (kind == 'P') {
                passed++;
                if (o.verbose) printf("PASS %s\n", name);
                if (is_exception(&ex, name))
                    printf("note: %s passes but is listed in exceptions\n", name);
                continue;
            }
            failed++;
            int known = is_exception(&ex, name);
            if (!known) unexpected++;
            printf("FAIL %s%s: %.600s\n", name, known ? " (known)" : "", msg);
        }
        free_list(cases, n);
    }
    printf("conformance: run %d, passed %d, failed %d, unsupported %d (%d failures not in %s)\n",
           run, passed, failed, unsupported, unexpected, o.exceptions);
    printf("%d passed, %d failed\n", passed, failed);
    for (int i = 0; i < ex.n; i++)
        free(ex.names[i]);
    free(ex.names);
    free(ex.used);
    if (run + unsupported == 0) {
        fprintf(stderr, "conformance: no cases found under %s\n", o.data_dir);
        return 1;
    }
    return unexpected ? 1 : 0;
}
