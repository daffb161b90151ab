/* `piqc run MODEL --input NAME=FILE.npy ...`: runs a model on .npy inputs with the reference
 * runtime, prints each output's shape and statistics and the median latency, optionally writes
 * the outputs as .npy files and reports top-1 accuracy against labels. */
#include <errno.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cmd.h"
#include "frontends/frontends.h"
#include "runtime/runtime.h"

#define PQ_RUN_MAX_INPUTS 64

static void pq_run_help(FILE *f) {
    fprintf(f,
            "usage: piqc run MODEL [--input NAME=FILE.npy]... [--output-dir DIR] [--threads N]\n"
            "                [--repeat N] [--warmup N] [--labels FILE.npy]\n\n"
            "Runs MODEL (.onnx or .pir) on the given inputs and prints every output's shape and\n"
            "min/max/mean, then 'median N.NNN ms' over the runs.\n"
            "  --input NAME=FILE  bind graph input NAME to a .npy file (split at the first '=';\n"
            "                     a model with one input also takes a bare FILE)\n"
            "  --output-dir DIR   write each output to DIR/<name>.npy (DIR and its parents\n"
            "                     created if missing)\n"
            "  --threads N        threads per kernel (default 1): piqc's own pool for the packed\n"
            "                     PiQ/int8/f16 ops and oneDNN's OpenMP threads, set together;\n"
            "                     other reference kernels stay single-threaded; while other\n"
            "                     processes keep the cores busy only large calls are split\n"
            "                     (PIQC_THREADS_ADAPT=0: never checked). With N > 1 leave\n"
            "                     OMP_WAIT_POLICY unset, or bound libgomp's spinning with\n"
            "                     GOMP_SPINCOUNT=10000; OMP_WAIT_POLICY=passive makes every\n"
            "                     oneDNN call a thread wake-up, so piqc then threads only the\n"
            "                     largest convolutions\n"
            "  --repeat N         run N times (default 1) and report the median latency\n"
            "  --warmup N         untimed runs before those (default 0; the first run creates\n"
            "                     the oneDNN primitives and packs the weights)\n"
            "  --labels FILE      integer class labels: print top-1 accuracy of output 0\n"
            "  --profile          print the kernel time per op type over all runs, then the\n"
            "                     nodes that take the most time (op, share, name)\n"
            "  --profile-nodes N  with --profile: how many nodes the node table shows\n"
            "                     (default 15; 0: all timed nodes)\n");
}

/* Kernel time per op type, most expensive first, per run. */
static void pq_print_profile(const pq_op_profile *p, int64_t runs) {
    double total = 0;
    for (int op = 0; op < PQ_OP_COUNT; op++)
        total += p->ms[op];
    printf("kernel time per run by op (%lld runs):\n", (long long)runs);
    bool done[PQ_OP_COUNT] = {false};
    for (;;) {
        int best = -1;
        for (int op = 0; op < PQ_OP_COUNT; op++)
            if (!done[op] && p->calls[op] && (best < 0 || p->ms[op] > p->ms[best])) best = op;
        if (best < 0) break;
        done[best] = true;
        printf("  %-24s %9.3f ms %5.1f%%  %lld calls\n", pq_op_name(best),
               p->ms[best] / (double)runs, total > 0 ? 100.0 * p->ms[best] / total : 0.0,
               (long long)(p->calls[best] / runs));
    }
}

/* A node's kernel time, for sorting the node table (most first; ties by node index). */
typedef struct pq_node_time {
    double ms;
    uint32_t node;
} pq_node_time;

static int pq_cmp_node_time(const void *a, const void *b) {
    const pq_node_time *x = a, *y = b;
    if (x->ms != y->ms) return x->ms < y->ms ? 1 : -1;
    return (x->node > y->node) - (x->node < y->node);
}

/* The top nodes with the most kernel time (0: all), most expensive first, per run, with the type
 * of their first output. */
static void pq_print_node_profile(const pq_graph *g, const pq_op_profile *p, int64_t runs,
                                  uint32_t top) {
    pq_node_time *t = pq_calloc(p->n_nodes + 1, sizeof *t);
    if (!t) return; /* the table is an extra: skipped when out of memory */
    double total = 0;
    uint32_t timed = 0;
    for (uint32_t i = 0; i < p->n_nodes; i++) {
        total += p->node_ms[i];
        if (p->node_calls[i]) t[timed++] = (pq_node_time){p->node_ms[i], i};
    }
    qsort(t, timed, sizeof *t, pq_cmp_node_time);
    if (top == 0 || top > timed) top = timed;
    printf("kernel time per run by node (the %u slowest of %u):\n", top, timed);
    for (uint32_t k = 0; k < top; k++) {
        const pq_node *n = &g->nodes[t[k].node];
        char type[200] = "-";
        if (n->n_outputs && n->outputs[0] != PQ_NONE)
            pq_cli_format_type(g, &g->values[n->outputs[0]], type, sizeof type);
        printf("  %-24s %9.4f ms %5.1f%%  %-22s %s\n", pq_op_name(n->op), t[k].ms / (double)runs,
               total > 0 ? 100.0 * t[k].ms / total : 0.0, type, n->name ? n->name : "(unnamed)");
    }
    pq_free(t);
}

/* Zeroes the profile's counters (its per-node arrays stay attached). */
static void pq_profile_reset(pq_op_profile *p) {
    memset(p->ms, 0, sizeof p->ms);
    memset(p->calls, 0, sizeof p->calls);
    if (p->node_ms) memset(p->node_ms, 0, p->n_nodes * sizeof *p->node_ms);
    if (p->node_calls) memset(p->node_calls, 0, p->n_nodes * sizeof *p->node_calls);
}

static int pq_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void pq_print_stats(const pq_graph *g, const char *name, const pq_tensor *t) {
    char shape[160];
    pq_shape_format(t->rank, t->dims, shape, sizeof shape);
    int64_t n = pq_tensor_numel(t);
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = pq_dtype_load(t->dtype, t->data, (size_t)i);
        if (v < mn) mn = v;
        if (v > mx) mx = v;
        sum += v;
    }
    (void)g;
    if (n)
        printf("output '%s': %s%s min %.6g max %.6g mean %.6g\n", name, pq_dtype_name(t->dtype),
               shape, mn, mx, sum / (double)n);
    else
        printf("output '%s': %s%s (empty)\n", name, pq_dtype_name(t->dtype), shape);
}

/* Top-1 accuracy of logits [..., C] against integer labels with one entry per row. */
static enum pq_status pq_accuracy(const pq_tensor *logits, const pq_tensor *labels, int64_t *hits,
                                  int64_t *total, pq_error *err) {
    if (logits->rank < 1 || !pq_dtype_is_float(logits->dtype))
        return pq_error_set(err, PQ_ERR_INVALID, "--labels: output 0 is not a float tensor");
    int64_t c = logits->dims[logits->rank - 1];
    int64_t rows = c ? pq_tensor_numel(logits) / c : 0;
    if (pq_tensor_numel(labels) != rows || !pq_dtype_is_integer(labels->dtype))
        return pq_error_set(err, PQ_ERR_INVALID,
                            "--labels: expected %lld integer labels (one per output row), got "
                            "%lld of type %s",
                            (long long)rows, (long long)pq_tensor_numel(labels),
                            pq_dtype_name(labels->dtype));
    *hits = 0;
    *total = rows;
    for (int64_t r = 0; r < rows; r++) {
        int64_t best = 0;
        double bv = -INFINITY;
        for (int64_t j = 0; j < c; j++) {
            double v = pq_dtype_load(logits->dtype, logits->data, (size_t)(r * c + j));
            if (v > bv) {
                bv = v;
                best = j;
            }
        }
        if (best == pq_dtype_load_i64(labels->dtype, labels->data, (size_t)r)) (*hits)++;
    }
    return PQ_OK;
}

/* Creates directory dir and any missing parents (as mkdir -p); IO naming the first directory
 * that cannot be made, or a path part that exists but is not a directory. */
static enum pq_status pq_make_dirs(const char *dir, pq_error *err) {
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path)
        return pq_error_set(err, PQ_ERR_IO, "output directory '%s': empty or too long", dir);
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0') continue;
        char c = path[i];
        path[i] = '\0';
        struct stat sb;
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return pq_error_set(err, PQ_ERR_IO, "cannot create output directory '%s': %s", path,
                                strerror(errno));
        if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
            return pq_error_set(err, PQ_ERR_IO,
                                "cannot create output directory '%s': '%s' is not a directory", dir,
                                path);
        path[i] = c;
    }
    return PQ_OK;
}

/* Writes each output to dir/<name>.npy (dir made by pq_make_dirs before the runs). */
static enum pq_status pq_write_outputs(const pq_graph *g, pq_tensor **outs, const char *dir,
                                       pq_error *err) {
    char(*used)[256] = pq_calloc(g->n_outputs ? g->n_outputs : 1, sizeof *used);
    if (!used) return pq_error_nomem(err, "output names");
    enum pq_status st = PQ_OK;
    for (uint32_t o = 0; o < g->n_outputs && st == PQ_OK; o++) {
        char base[200], name[256];
        pq_cli_sanitize_name(g->values[g->outputs[o]].name, base, sizeof base);
        snprintf(name, sizeof name, "%s", base);
        for (int k = 1;; k++) {
            bool clash = false;
            for (uint32_t p = 0; p < o; p++)
                clash |= !strcmp(used[p], name);
            if (!clash) break;
            snprintf(name, sizeof name, "%s_%d", base, k);
        }
        snprintf(used[o], sizeof used[o], "%s", name);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.npy", dir, name);
        st = pq_npy_write(path, outs[o], err);
    }
    pq_free(used);
    return st;
}

int pq_cmd_run(int argc, char **argv) {
    const char *model = NULL, *out_dir = NULL, *labels_path = NULL;
    const char *in_names[PQ_RUN_MAX_INPUTS], *in_files[PQ_RUN_MAX_INPUTS];
    int n_in = 0;
    int64_t threads = 1, repeat = 1, warmup = 0, profile_nodes = 15;
    pq_op_profile *profile = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            pq_run_help(stdout);
            return 0;
        } else if (!strcmp(a, "--input") || !strcmp(a, "-i")) {
            if (++i >= argc) return pq_cli_usage_error("run", "--input needs NAME=FILE.npy");
            if (n_in >= PQ_RUN_MAX_INPUTS) return pq_cli_usage_error("run", "too many --input");
            const char *eq = strchr(argv[i], '=');
            in_names[n_in] = eq ? argv[i] : NULL;
            in_files[n_in] = eq ? eq + 1 : argv[i];
            if (eq) argv[i][eq - argv[i]] = '\0';
            n_in++;
        } else if (!strcmp(a, "--output-dir")) {
            if (++i >= argc) return pq_cli_usage_error("run", "--output-dir needs a directory");
            out_dir = argv[i];
        } else if (!strcmp(a, "--labels")) {
            if (++i >= argc) return pq_cli_usage_error("run", "--labels needs a .npy file");
            labels_path = argv[i];
        } else if (!strcmp(a, "--profile")) {
            profile = pq_calloc(1, sizeof *profile);
            if (!profile) {
                fprintf(stderr, "piqc run: out of memory\n");
                return 4;
            }
        } else if (!strcmp(a, "--profile-nodes")) {
            if (++i >= argc || !pq_cli_parse_int(argv[i], 0, 1000000, &profile_nodes))
                return pq_cli_usage_error("run", "--profile-nodes needs an integer in 0..1000000");
        } else if (!strcmp(a, "--threads")) {
            if (++i >= argc || !pq_cli_parse_int(argv[i], 1, 1024, &threads))
                return pq_cli_usage_error("run", "--threads needs an integer in 1..1024");
        } else if (!strcmp(a, "--warmup")) {
            if (++i >= argc || !pq_cli_parse_int(argv[i], 0, 1000000, &warmup))
                return pq_cli_usage_error("run", "--warmup needs an integer in 0..1000000");
        } else if (!strcmp(a, "--repeat")) {
            if (++i >= argc || !pq_cli_parse_int(argv[i], 1, 1000000, &repeat))
                return pq_cli_usage_error("run", "--repeat needs an integer in 1..1000000");
        } else if (a[0] == '-') {
            return pq_cli_usage_error("run", "unknown option '%s'", a);
        } else if (!model) {
            model = a;
        } else {
            return pq_cli_usage_error("run", "unexpected argument '%s'", a);
        }
    }
    if (!model) return pq_cli_usage_error("run", "missing MODEL");

    pq_error err;
    pq_error_clear(&err);
    pq_graph *g = NULL;
    pq_session *s = NULL;
    pq_tensor **ins = NULL, **outs = NULL, *labels = NULL;
    double *times = NULL;
    int rc = 0;
    if (pq_cli_load_model(model, true, &g, &err) != PQ_OK) {
        pq_free(profile);
        return pq_cli_fail("run", &err);
    }
    if (profile) {
        profile->n_nodes = g->n_nodes;
        profile->node_ms = pq_calloc(g->n_nodes + 1, sizeof *profile->node_ms);
        profile->node_calls = pq_calloc(g->n_nodes + 1, sizeof *profile->node_calls);
        if (!profile->node_ms || !profile->node_calls) {
            pq_error_nomem(&err, "run profile");
            goto fail;
        }
    }
    ins = pq_calloc(g->n_inputs + 1, sizeof *ins);
    outs = pq_calloc(g->n_outputs + 1, sizeof *outs);
    times = pq_calloc((size_t)repeat, sizeof *times);
    if (!ins || !outs || !times) {
        pq_error_nomem(&err, "run");
        goto fail;
    }
    for (int k = 0; k < n_in; k++) {
        uint32_t slot = PQ_NONE;
        if (!in_names[k]) {
            if (g->n_inputs != 1) {
                rc = pq_cli_usage_error("run", "--input %s: the model has %u inputs; use NAME=FILE",
                                        in_files[k], g->n_inputs);
                goto done;
            }
            slot = 0;
        } else {
            for (uint32_t i = 0; i < g->n_inputs; i++)
                if (!strcmp(g->values[g->inputs[i]].name, in_names[k])) slot = i;
        }
        if (slot == PQ_NONE) {
            fprintf(stderr, "piqc run: the model has no input '%s'; its inputs are:", in_names[k]);
            for (uint32_t i = 0; i < g->n_inputs; i++)
                fprintf(stderr, " '%s'", g->values[g->inputs[i]].name);
            fprintf(stderr, "\n");
            rc = 1;
            goto done;
        }
        if (ins[slot]) {
            rc = pq_cli_usage_error("run", "input '%s' given twice",
                                    g->values[g->inputs[slot]].name);
            goto done;
        }
        if (pq_npy_read(in_files[k], &ins[slot], &err) != PQ_OK) goto fail;
    }
    for (uint32_t i = 0; i < g->n_inputs; i++) {
        if (ins[i]) continue;
        char type[200];
        pq_cli_format_type(g, &g->values[g->inputs[i]], type, sizeof type);
        pq_error_set(&err, PQ_ERR_INVALID, "missing input '%s' (%s): give --input %s=FILE.npy",
                     g->values[g->inputs[i]].name, type, g->values[g->inputs[i]].name);
        goto fail;
    }
    /* the output directory first: a bad one fails before the runs, not after them */
    if (out_dir && pq_make_dirs(out_dir, &err) != PQ_OK) goto fail;
    pq_session_opts opts = {.n_threads = (int)threads, .profile = profile};
#if defined(__GLIBC__)
    /* Every run hands its outputs over in new buffers, which this loop frees before the next
     * run. Past glibc's mmap threshold (at most 32 MiB; lraspp_mobilenet_v3_large at batch 8
     * has a 69 MB output) each one is a fresh mmap whose pages are faulted in and zeroed by the
     * kernel again on every run (16.8K page faults per run there). Served from the heap and
     * never trimmed, the same memory is reused run after run (as onnxruntime's arena does). */
    if (repeat + warmup > 1) {
        mallopt(M_MMAP_THRESHOLD, 1 << 30);
        mallopt(M_TRIM_THRESHOLD, 1 << 30);
    }
#endif
    if (pq_session_create(g, &opts, &s, &err) != PQ_OK) goto fail;
    for (int64_t r = 0; r < warmup; r++) {
        for (uint32_t o = 0; o < g->n_outputs; o++) {
            pq_tensor_destroy(outs[o]);
            outs[o] = NULL;
        }
        if (pq_session_run(s, (const pq_tensor *const *)ins, g->n_inputs, outs, g->n_outputs,
                           &err) != PQ_OK)
            goto fail;
    }
    if (profile) pq_profile_reset(profile); /* the timed runs only */
    for (int64_t r = 0; r < repeat; r++) {
        for (uint32_t o = 0; o < g->n_outputs; o++) {
            pq_tensor_destroy(outs[o]);
            outs[o] = NULL;
        }
        double t0 = pq_cli_now_ms();
        if (pq_session_run(s, (const pq_tensor *const *)ins, g->n_inputs, outs, g->n_outputs,
                           &err) != PQ_OK)
            goto fail;
        times[r] = pq_cli_now_ms() - t0;
    }
    for (uint32_t o = 0; o < g->n_outputs; o++)
        pq_print_stats(g, g->values[g->outputs[o]].name, outs[o]);
    qsort(times, (size_t)repeat, sizeof *times, pq_cmp_double);
    double median =
        repeat % 2 ? times[repeat / 2] : 0.5 * (times[repeat / 2 - 1] + times[repeat / 2]);
    if (profile) {
        pq_print_profile(profile, repeat);
        pq_print_node_profile(g, profile, repeat, (uint32_t)profile_nodes);
    }
    printf("planned peak activation memory: %zu bytes\n", pq_session_planned_peak(s));
    /* three decimals, and microsecond digits below 1 ms (a small model's 0.004 ms hid 30%) */
    printf("median %.*f ms over %lld run%s\n", median < 1.0 ? 5 : 3, median, (long long)repeat,
           repeat == 1 ? "" : "s");
    if (labels_path) {
        int64_t hits = 0, total = 0;
        if (pq_npy_read(labels_path, &labels, &err) != PQ_OK) goto fail;
        if (pq_accuracy(outs[0], labels, &hits, &total, &err) != PQ_OK) goto fail;
        printf("accuracy: %.2f%% (%lld/%lld)\n", total ? 100.0 * (double)hits / (double)total : 0.0,
               (long long)hits, (long long)total);
    }
    if (out_dir && pq_write_outputs(g, outs, out_dir, &err) != PQ_OK) goto fail;
    goto done;
fail:
    rc = pq_cli_fail("run", &err);
done:
    if (ins)
        for (uint32_t i = 0; i < g->n_inputs; i++)
            pq_tensor_destroy(ins[i]);
    if (outs)
        for (uint32_t o = 0; o < g->n_outputs; o++)
            pq_tensor_destroy(outs[o]);
    pq_tensor_destroy(labels);
    pq_free(ins);
    pq_free(outs);
    pq_free(times);
    if (profile) {
        pq_free(profile->node_ms);
        pq_free(profile->node_calls);
    }
    pq_free(profile);
    pq_session_destroy(s);
    pq_graph_destroy(g);
    return rc;
}
