/* The u8 INT8 glue ops (backends/int8/qdq_ops.c, qlinear_eltwise.c) on mobilenet_v3_small / digits
 * / resnet18 shapes, single-threaded, every ISA this CPU runs, with memcpy of the same bytes as the
 * baseline in the same run: QuantizeLinear, QLinearAdd, the squeeze-excite QLinearMul (per-channel
 * B, distinct and equal gates), QLinearGlobalAveragePool, MaxPool. Prints the minimum thread-CPU
 * time per call over samples (the least disturbed by other processes) and ratios to scalar and
 * memcpy. Not a test: nothing asserts on time. `bench_qeltwise [samples]` */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/int8/qdq_ops.h"
#include "backends/int8/qlinear_eltwise.h"
#include "ir/ir.h"

static int g_samples = 31;
static uint64_t g_s = 0x3243F6A8885A308DULL;

static uint64_t rnd(void) {
    g_s ^= g_s >> 12;
    g_s ^= g_s << 25;
    g_s ^= g_s >> 27;
    return g_s * 2685821657736338717ULL;
}

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* One node with its tensors. */
typedef struct {
    pq_graph *g;
    uint32_t nid;
    pq_error err;
    pq_tensor *in[8], *out;
    uint32_t n_in;
} bcase;

static pq_tensor *tens(enum pq_dtype dt, int rank, const int64_t *dims, bool random) {
    pq_error err;
    pq_tensor *t = pq_tensor_create(dt, rank, dims, &err);
    if (!t) {
        fprintf(stderr, "bench_qeltwise: %s\n", err.msg);
        exit(1);
    }
    if (random)
        for (size_t i = 0; i < t->nbytes; i++)
            ((uint8_t *)t->data)[i] = (uint8_t)(rnd() >> 56);
    return t;
}

static pq_tensor *f32_scalar(float v) {
    pq_tensor *t = tens(PQ_DTYPE_F32, 0, NULL, false);
    *(float *)t->data = v;
    return t;
}

static pq_tensor *u8_scalar(uint8_t v) {
    pq_tensor *t = tens(PQ_DTYPE_U8, 0, NULL, false);
    *(uint8_t *)t->data = v;
    return t;
}

static void bcase_init(bcase *c, enum pq_op op, uint32_t n_in) {
    memset(c, 0, sizeof *c);
    c->g = pq_graph_create(NULL, &c->err);
    uint32_t ins[8], out;
    for (uint32_t i = 0; i < n_in; i++)
        pq_graph_add_value(c->g, NULL, PQ_DTYPE_UNDEFINED, NULL, &ins[i], &c->err);
    pq_graph_add_value(c->g, NULL, PQ_DTYPE_UNDEFINED, NULL, &out, &c->err);
    if (pq_graph_add_node(c->g, op, "n", ins, n_in, &out, 1, &c->nid, &c->err) != PQ_OK) {
        fprintf(stderr, "bench_qeltwise: %s\n", c->err.msg);
        exit(1);
    }
    c->n_in = n_in;
}

static void bcase_free(bcase *c) {
    for (uint32_t i = 0; i < 8; i++)
        pq_tensor_destroy(c->in[i]);
    pq_tensor_destroy(c->out);
    pq_graph_destroy(c->g);
}

static pq_kernel_args bargs(bcase *c) {
    pq_kernel_args a = {
        c->g,   &c->g->nodes[c->nid], (const pq_tensor *const *)c->in, c->n_in, &c->out, 1, NULL, 1,
        &c->err};
    return a;
}

typedef enum pq_status (*run_q)(const pq_qdq_kernels *, const pq_kernel_args *);
typedef enum pq_status (*run_e)(const pq_qeltwise_kernels *, const pq_kernel_args *);
typedef enum pq_status (*run_p)(const pq_kernel_args *);

/* Minimum thread-CPU seconds per call of one runner (reps calls per sample). */
static double time_min(run_q rq, const pq_qdq_kernels *kq, run_e re, const pq_qeltwise_kernels *ke,
                       run_p rp, const pq_kernel_args *a, int reps) {
    double best = 1e30;
    for (int s = 0; s < g_samples; s++) {
        double t0 = cpu_now();
        for (int r = 0; r < reps; r++) {
            enum pq_status st = rq ? rq(kq, a) : re ? re(ke, a) : rp(a);
            if (st != PQ_OK) {
                fprintf(stderr, "bench_qeltwise: status %d\n", (int)st);
                exit(1);
            }
        }
        double t = (cpu_now() - t0) / reps;
        best = t < best ? t : best;
    }
    return best;
}

static double memcpy_min(size_t bytes, int reps) {
    uint8_t *s = malloc(bytes), *d = malloc(bytes);
    memset(s, 1, bytes);
    double best = 1e30;
    for (int k = 0; k < g_samples; k++) {
        double t0 = cpu_now();
        for (int r = 0; r < reps; r++) {
            memcpy(d, s, bytes);
            __asm__ volatile("" ::"r"(d) : "memory");
        }
        double t = (cpu_now() - t0) / reps;
        best = t < best ? t : best;
    }
    free(s);
    free(d);
    return best;
}

static const char *const isas[] = {"scalar", "avx2", "avx512"};

/* Reps so that one sample is about 100 us at ~0.2 ns per element. */
static int reps_for(int64_t n) {
    int64_t r = 500000 / (n + 1);
    return r < 1 ? 1 : (r > 2000 ? 2000 : (int)r);
}

static void row(const char *what, const char *isa, double t, double scalar, double mc) {
    printf("%-44s %-7s %9.2f us  x%6.2f vs scalar  x%6.2f vs memcpy\n", what, isa, t * 1e6,
           scalar / t, t / mc);
}

static void bench_quant(void) {
    bcase c;
    bcase_init(&c, PQ_OP_QUANTIZE_LINEAR, 3);
    int64_t d[4] = {1, 3, 224, 224};
    c.in[0] = tens(PQ_DTYPE_F32, 4, d, false);
    float *x = c.in[0]->data;
    for (int64_t i = 0; i < 3 * 224 * 224; i++)
        x[i] = (float)((double)(rnd() >> 40) / (double)(1 << 24) * 8.0 - 4.0);
    c.in[1] = f32_scalar(0.0337f);
    c.in[2] = u8_scalar(117);
    c.out = tens(PQ_DTYPE_U8, 4, d, false);
    pq_kernel_args a = bargs(&c);
    int64_t n = 3 * 224 * 224;
    double mc = memcpy_min((size_t)n * 4, reps_for(n)), sc = 0;
    for (int i = 0; i < 3; i++) {
        const pq_qdq_kernels *k = pq_qdq_kernels_for(isas[i]);
        if (!k) continue;
        double t = time_min(pq_qdq_quantize_run, k, NULL, NULL, NULL, &a, reps_for(n));
        if (i == 0) sc = t;
        row("QuantizeLinear f32 [1,3,224,224] -> u8", isas[i], t, sc, mc);
    }
    bcase_free(&c);
}

/* QLinearAdd / QLinearMul of A dims da and B dims db (u8); gates: 0 random, 1 all equal. */
static void bench_qe(const char *what, enum pq_op op, const int64_t *da, const int64_t *db,
                     int gates) {
    bcase c;
    bcase_init(&c, op, 8);
    c.in[0] = tens(PQ_DTYPE_U8, 4, da, true);
    c.in[1] = f32_scalar(0.0213f);
    c.in[2] = u8_scalar(3);
    c.in[3] = tens(PQ_DTYPE_U8, 4, db, true);
    if (gates == 1) memset(c.in[3]->data, 255, c.in[3]->nbytes);
    c.in[4] = f32_scalar(op == PQ_OP_QLINEAR_MUL ? 1.0f / 255 : 0.0371f);
    c.in[5] = u8_scalar(op == PQ_OP_QLINEAR_MUL ? 0 : 121);
    c.in[6] = f32_scalar(0.0297f);
    c.in[7] = u8_scalar(5);
    c.out = tens(PQ_DTYPE_U8, 4, da, false);
    pq_kernel_args a = bargs(&c);
    int64_t n = (int64_t)c.out->nbytes;
    double mc = memcpy_min((size_t)n, reps_for(n)), sc = 0;
    for (int i = 0; i < 3; i++) {
        const pq_qeltwise_kernels *k = pq_qeltwise_kernels_for(isas[i]);
        if (!k) continue;
        double t = time_min(NULL, NULL, pq_qlinear_add_run, k, NULL, &a, reps_for(n));
        if (i == 0) sc = t;
        row(what, isas[i], t, sc, mc);
    }
    bcase_free(&c);
}

static void bench_gap(const char *what, const int64_t *d) {
    bcase c;
    bcase_init(&c, PQ_OP_QLINEAR_GLOBAL_AVERAGE_POOL, 5);
    c.in[0] = tens(PQ_DTYPE_U8, 4, d, true);
    c.in[1] = f32_scalar(0.0213f);
    c.in[2] = u8_scalar(3);
    c.in[3] = f32_scalar(0.0117f);
    c.in[4] = u8_scalar(9);
    int64_t dy[4] = {d[0], d[1], 1, 1};
    c.out = tens(PQ_DTYPE_U8, 4, dy, false);
    pq_kernel_args a = bargs(&c);
    int64_t n = (int64_t)c.in[0]->nbytes;
    double mc = memcpy_min((size_t)n, reps_for(n));
    double t = time_min(NULL, NULL, NULL, NULL, pq_qlinear_gap_run, &a, reps_for(n));
    row(what, "-", t, t, mc);
    bcase_free(&c);
}

static void bench_pool(const char *what, const int64_t *d, const int64_t *k, const int64_t *s,
                       const int64_t *p, const int64_t *dy) {
    bcase c;
    bcase_init(&c, PQ_OP_MAX_POOL, 1);
    pq_node_set_ints(c.g, c.nid, "kernel_shape", k, 2, &c.err);
    pq_node_set_ints(c.g, c.nid, "strides", s, 2, &c.err);
    pq_node_set_ints(c.g, c.nid, "pads", p, 4, &c.err);
    c.in[0] = tens(PQ_DTYPE_U8, 4, d, true);
    c.out = tens(PQ_DTYPE_U8, 4, dy, false);
    pq_kernel_args a = bargs(&c);
    int64_t n = (int64_t)c.in[0]->nbytes;
    double mc = memcpy_min((size_t)n, reps_for(n));
    double t = time_min(NULL, NULL, NULL, NULL, pq_i8_max_pool_run, &a, reps_for(n));
    row(what, "-", t, t, mc);
    bcase_free(&c);
}

int main(int argc, char **argv) {
    if (argc > 1) g_samples = atoi(argv[1]) > 0 ? atoi(argv[1]) : g_samples;
    printf("bench_qeltwise: single thread, minimum thread-CPU time per call over %d samples\n",
           g_samples);
    bench_quant();
    const int64_t add[4] = {1, 48, 14, 14};
    bench_qe("QLinearAdd u8 [1,48,14,14] + same", PQ_OP_QLINEAR_ADD, add, add, 0);
    const int64_t se[3][4] = {{1, 16, 56, 56}, {1, 240, 14, 14}, {1, 576, 7, 7}};
    const char *const sen[3] = {"QLinearMul SE [1,16,56,56] x [1,16,1,1]",
                                "QLinearMul SE [1,240,14,14] x [1,240,1,1]",
                                "QLinearMul SE [1,576,7,7] x [1,576,1,1]"};
    for (int i = 0; i < 3; i++) {
        int64_t db[4] = {1, se[i][1], 1, 1};
        bench_qe(sen[i], PQ_OP_QLINEAR_MUL, se[i], db, 0);
    }
    int64_t db1[4] = {1, 240, 1, 1};
    bench_qe("  same, every gate byte 255", PQ_OP_QLINEAR_MUL, se[1], db1, 1);
    bench_gap("QLinearGlobalAveragePool [1,240,14,14]", se[1]);
    bench_gap("QLinearGlobalAveragePool [1,576,7,7]", se[2]);
    const int64_t pd[4] = {1, 16, 8, 8}, pdy[4] = {1, 16, 4, 4}, k2[2] = {2, 2}, p0[4] = {0};
    bench_pool("MaxPool u8 [1,16,8,8] 2x2/2 (digits)", pd, k2, k2, p0, pdy);
    const int64_t rd[4] = {1, 64, 112, 112}, rdy[4] = {1, 64, 56, 56}, k3[2] = {3, 3},
                  p1[4] = {1, 1, 1, 1};
    bench_pool("MaxPool u8 [1,64,112,112] 3x3/2 pad 1", rd, k3, k2, p1, rdy);
    return 0;
}
