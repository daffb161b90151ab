/* The fixed cost of pq_session_run: chains of K tiny nodes (Relu on 4 floats, and Relu + Flatten
 * pairs), timed through a session and, as the baseline in the same run, the same kernels called
 * directly on preallocated tensors; the difference per run and per node is what the runtime adds
 * (binding, plan lookup, slots, output allocation). Prints the median thread-CPU time per run over
 * samples. Not a test: nothing asserts on time. `bench_session [samples]` */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/fast.h"
#include "runtime/runtime.h"

static int g_samples = 21;

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Text IR of a chain of k Relu nodes on x: f32[N, 4]; with flatten, each Relu is followed by a
 * Flatten (a view in a session; [N, 4] stays [N, 4]). Caller frees. */
static char *chain_text(int k, int flatten) {
    size_t cap = 256 + (size_t)k * 160;
    char *t = malloc(cap);
    if (!t) return NULL;
    size_t n = (size_t)snprintf(t, cap,
                                "piqc 1\ngraph chain {\n  symbols N\n  opset \"\" 13\n"
                                "  input %%v0: f32[N, 4]\n");
    for (int i = 0; i < k; i++) {
        if (flatten)
            n += (size_t)snprintf(t + n, cap - n,
                                  "  %%r%d: f32[N, 4] = Relu(%%v%d)\n"
                                  "  %%v%d: f32[N, 4] = Flatten(%%r%d) {axis = 1}\n",
                                  i, i, i + 1, i);
        else
            n += (size_t)snprintf(t + n, cap - n, "  %%v%d: f32[N, 4] = Relu(%%v%d)\n", i + 1, i);
    }
    snprintf(t + n, cap - n, "  output %%v%d\n}\n", k);
    return t;
}

/* Median seconds per call of fn(ctx) over g_samples samples of reps calls each. */
static double time_median(void (*fn)(void *), void *ctx, int reps) {
    double *s = malloc(sizeof *s * (size_t)g_samples);
    for (int i = 0; i < g_samples; i++) {
        double t0 = cpu_now();
        for (int r = 0; r < reps; r++)
            fn(ctx);
        s[i] = (cpu_now() - t0) / reps;
    }
    qsort(s, (size_t)g_samples, sizeof *s, cmp_double);
    double m = s[g_samples / 2];
    free(s);
    return m;
}

typedef struct {
    pq_session *s;
    const pq_tensor *in[1];
    pq_graph *g;
    pq_tensor **vals; /* direct: one tensor per value */
    int fail;
} bctx;

static void run_session(void *p) {
    bctx *c = p;
    pq_error err;
    pq_tensor *out = NULL;
    if (pq_session_run(c->s, c->in, 1, &out, 1, &err) != PQ_OK) c->fail = 1;
    pq_tensor_destroy(out);
}

/* The same nodes' kernels on preallocated tensors (Flatten: a copy, as outside a session). */
static void run_direct(void *p) {
    bctx *c = p;
    pq_error err;
    for (uint32_t i = 0; i < c->g->n_nodes; i++) {
        const pq_node *n = &c->g->nodes[i];
        const pq_tensor *in[1] = {c->vals[n->inputs[0]]};
        pq_tensor *out[1] = {c->vals[n->outputs[0]]};
        pq_kernel_args a = {c->g, n, in, 1, out, 1, NULL, 1, &err};
        if (pq_kernel_run(&a) != PQ_OK) c->fail = 1;
    }
}

static int bench_chain(int k, int flatten) {
    char *text = chain_text(k, flatten);
    pq_error err;
    pq_graph *g = NULL;
    if (!text || pq_text_parse(text, strlen(text), NULL, 0, &g, &err) != PQ_OK ||
        pq_runtime_prepare(g, &err) != PQ_OK) {
        fprintf(stderr, "bench_session: chain %d: %s\n", k, err.msg);
        free(text);
        return 1;
    }
    free(text);
    int64_t dims[2] = {1, 4};
    pq_tensor *x = pq_tensor_create(PQ_DTYPE_F32, 2, dims, &err);
    bctx c = {0};
    c.g = g;
    c.in[0] = x;
    c.vals = calloc(g->n_values, sizeof *c.vals);
    for (uint32_t v = 0; v < g->n_values; v++)
        c.vals[v] = pq_tensor_create(PQ_DTYPE_F32, 2, dims, &err);
    if (pq_session_create(g, NULL, &c.s, &err) != PQ_OK) return 1;
    for (int w = 0; w < 1000; w++) {
        run_session(&c);
        run_direct(&c);
    }
    int reps = 20000 / (k + 1) + 100;
    double ts, td;
    /* alternate to share the disturbances; the medians of medians */
    double s3[3], d3[3];
    for (int i = 0; i < 3; i++) {
        s3[i] = time_median(run_session, &c, reps);
        d3[i] = time_median(run_direct, &c, reps);
    }
    qsort(s3, 3, sizeof *s3, cmp_double);
    qsort(d3, 3, sizeof *d3, cmp_double);
    ts = s3[1];
    td = d3[1];
    printf("%-28s nodes %3u  session %8.1f ns/run  kernels alone %8.1f ns  added %7.1f ns/run "
           "(%5.1f ns/node)  ratio %.2f%s\n",
           flatten ? "Relu+Flatten chain" : "Relu chain", g->n_nodes, ts * 1e9, td * 1e9,
           (ts - td) * 1e9, (ts - td) * 1e9 / g->n_nodes, ts / td,
           c.fail ? "  (a run FAILED)" : "");
    pq_session_destroy(c.s);
    for (uint32_t v = 0; v < g->n_values; v++)
        pq_tensor_destroy(c.vals[v]);
    free(c.vals);
    pq_tensor_destroy(x);
    pq_graph_destroy(g);
    return c.fail;
}

int main(int argc, char **argv) {
    if (argc > 1) g_samples = atoi(argv[1]) > 2 ? atoi(argv[1]) : 3;
    int fail = 0;
    int ks[] = {1, 8, 64};
    for (int i = 0; i < 3; i++)
        fail |= bench_chain(ks[i], 0);
    for (int i = 0; i < 3; i++)
        fail |= bench_chain(ks[i], 1);
    return fail;
}
