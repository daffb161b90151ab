/* INT8 QLinearConv / QLinearMatMul kernels (backends/int8/, every ISA this CPU runs) against
 * oneDNN FP32 Conv / MatMul on the same shapes through the fast-kernel path (pq_kernel_run), in
 * the same run, single-threaded: ResNet-ish 3x3 convs (64 -> 64 at 56x56; 512 -> 512 at 7x7,
 * where output positions become the broadcast rows), a 3x3 stride-2 conv, 1x1 convs (64 -> 256
 * at 56x56; stride 2), a mobilenet depthwise 5x5 with a fused HardSwish and a GEMM (256 x 768 x
 * 768). Prints medians of wall time and the minimum and median of thread-CPU time per call (the
 * minimum is the least disturbed by other processes on a shared machine), GOP/s (2 ops per
 * multiply-add, from the minimum) and ratios to oneDNN FP32. Weights are packed per call here
 * (no session cache). `bench_int8 models [threads] [resnet18|mobilenet_v3_small|""]
 * [layer-substring] [calls per sample]` instead times every conv shape of resnet18 /
 * mobilenet_v3_small as a session runs it (weights cached; PIQC_ISA picks the INT8 kernels), with
 * GMAC/s and totals per model. Not a test: nothing asserts on time. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/fast.h"
#include "backends/int8/int8_gemm.h"
#include "backends/int8/int8_ops.h"
#include "backends/onednn/onednn.h"
#include "ir/ir.h"

#define SAMPLES 21

static int g_reps = 1;      /* calls per timed sample (models mode, for profilers) */
static const char *g_layer; /* models mode: only layers whose name contains this */

static double now(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef enum pq_status (*run_fn)(const pq_i8_kernels *k, const pq_kernel_args *a);

/* Median wall, minimum and median CPU seconds per call of run(k, a) (run NULL:
 * pq_kernel_run(a)). */
static double g_wall_min; /* the minimum wall time of the last time_it */

static void time_it(run_fn run, const pq_i8_kernels *k, const pq_kernel_args *a, double *wall,
                    double *cpu, double *cpu_med) {
    double w[SAMPLES], c[SAMPLES];
    for (int i = -2; i < SAMPLES; i++) {
        double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_THREAD_CPUTIME_ID);
        enum pq_status st = PQ_OK;
        for (int r = 0; r < g_reps && st == PQ_OK; r++)
            st = run ? run(k, a) : pq_kernel_run(a);
        if (st != PQ_OK) {
            fprintf(stderr, "bench_int8: kernel failed (%d): %s\n", (int)st, a->err->msg);
            exit(1);
        }
        if (i >= 0) {
            w[i] = (now(CLOCK_MONOTONIC) - w0) / g_reps;
            c[i] = (now(CLOCK_THREAD_CPUTIME_ID) - c0) / g_reps;
        }
    }
    qsort(w, SAMPLES, sizeof(double), cmp_d);
    qsort(c, SAMPLES, sizeof(double), cmp_d);
    *wall = w[SAMPLES / 2];
    g_wall_min = w[0];
    *cpu = c[0];
    *cpu_med = c[SAMPLES / 2];
}

static pq_error g_err;
static uint64_t g_rng = 0x1234567887654321ULL;
static uint64_t rnd(void) {
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 2685821657736338717ULL;
}

static pq_tensor *tens(enum pq_dtype dt, int rank, const int64_t *dims) {
    pq_tensor *t = pq_tensor_create(dt, rank, dims, &g_err);
    if (!t) {
        fprintf(stderr, "bench_int8: %s\n", g_err.msg);
        exit(1);
    }
    uint8_t *p = t->data;
    if (dt == PQ_DTYPE_F32)
        for (int64_t i = 0; i < pq_tensor_numel(t); i++)
            ((float *)p)[i] = (float)((double)(rnd() >> 11) * 0x1p-53 - 0.5);
    else if (dt == PQ_DTYPE_U8 || dt == PQ_DTYPE_I8)
        for (size_t i = 0; i < t->nbytes; i++)
            p[i] = (uint8_t)(rnd() >> 40);
    return t;
}

static pq_tensor *scalar(enum pq_dtype dt, double v) {
    pq_tensor *t = pq_tensor_create(dt, 0, NULL, &g_err);
    pq_dtype_store(dt, t->data, 0, v);
    return t;
}

static pq_graph *one_node(enum pq_op op, uint32_t nin, uint32_t *nid) {
    pq_graph *g = pq_graph_create(NULL, &g_err);
    uint32_t ins[9], out;
    for (uint32_t i = 0; i < nin; i++)
        pq_graph_add_value(g, NULL, PQ_DTYPE_UNDEFINED, NULL, &ins[i], &g_err);
    pq_graph_add_value(g, NULL, PQ_DTYPE_UNDEFINED, NULL, &out, &g_err);
    pq_graph_add_node(g, op, "n", ins, nin, &out, 1, nid, &g_err);
    return g;
}

static void conv_attrs(pq_graph *g, uint32_t nid, int64_t pad, int64_t stride, int64_t group) {
    int64_t pads[4] = {pad, pad, pad, pad}, st[2] = {stride, stride};
    pq_node_set_ints(g, nid, "pads", pads, 4, &g_err);
    pq_node_set_ints(g, nid, "strides", st, 2, &g_err);
    pq_node_set_int(g, nid, "group", group, &g_err);
}

/* One shape: FP32 oneDNN then the int8 kernels of every available ISA. conv: C -> M channels on
 * HW x HW, kk x kk kernel, stride st, group grp (C = M = grp: depthwise), act a fused activation
 * name or NULL; else a GEMM rows x C x M. */
static void bench_shape(const char *name, int conv, int64_t C, int64_t HW, int64_t M, int64_t kk,
                        int64_t rows, int64_t st, int64_t grp, const char *act) {
    double ops;
    uint32_t fn, qn;
    pq_graph *fg, *qg;
    pq_tensor *fin[3], *qin[9], *fy, *qy;
    uint32_t nf, nq;
    if (conv) {
        int64_t OHW = (HW + 2 * (kk / 2) - kk) / st + 1;
        int64_t dx[4] = {1, C, HW, HW}, dw[4] = {M, C / grp, kk, kk}, dy[4] = {1, M, OHW, OHW},
                db[1] = {M};
        ops = 2.0 * (double)(M * (C / grp) * kk * kk * OHW * OHW);
        fg = one_node(PQ_OP_CONV, 3, &fn);
        qg = one_node(PQ_OP_QLINEAR_CONV, 9, &qn);
        conv_attrs(fg, fn, kk / 2, st, grp);
        conv_attrs(qg, qn, kk / 2, st, grp);
        if (act) {
            pq_node_set_string(fg, fn, "activation", act, &g_err);
            pq_node_set_string(qg, qn, "activation", act, &g_err);
        }
        fin[0] = tens(PQ_DTYPE_F32, 4, dx), fin[1] = tens(PQ_DTYPE_F32, 4, dw);
        fin[2] = tens(PQ_DTYPE_F32, 1, db);
        fy = tens(PQ_DTYPE_F32, 4, dy);
        nf = 3;
        qin[0] = tens(PQ_DTYPE_U8, 4, dx), qin[3] = tens(PQ_DTYPE_I8, 4, dw);
        qin[4] = tens(PQ_DTYPE_F32, 1, db);
        for (int64_t i = 0; i < M; i++)
            ((float *)qin[4]->data)[i] = 0.01f + 0.0001f * (float)i;
        qin[5] = pq_tensor_create(PQ_DTYPE_I8, 1, db, &g_err);
        qin[8] = pq_tensor_create(PQ_DTYPE_I32, 1, db, &g_err);
        for (int64_t i = 0; i < M; i++)
            ((int32_t *)qin[8]->data)[i] = (int32_t)(rnd() % 2001) - 1000;
        qy = tens(PQ_DTYPE_U8, 4, dy);
        nq = 9;
    } else {
        int64_t da[2] = {rows, C}, dw[2] = {C, M}, dy[2] = {rows, M}, dn[1] = {M};
        ops = 2.0 * (double)(rows * C * M);
        fg = one_node(PQ_OP_MATMUL, 2, &fn);
        qg = one_node(PQ_OP_QLINEAR_MATMUL, 8, &qn);
        fin[0] = tens(PQ_DTYPE_F32, 2, da), fin[1] = tens(PQ_DTYPE_F32, 2, dw);
        fy = tens(PQ_DTYPE_F32, 2, dy);
        nf = 2;
        qin[0] = tens(PQ_DTYPE_U8, 2, da), qin[3] = tens(PQ_DTYPE_I8, 2, dw);
        qin[4] = tens(PQ_DTYPE_F32, 1, dn);
        for (int64_t i = 0; i < M; i++)
            ((float *)qin[4]->data)[i] = 0.01f + 0.0001f * (float)i;
        qin[5] = pq_tensor_create(PQ_DTYPE_I8, 1, dn, &g_err);
        qy = tens(PQ_DTYPE_U8, 2, dy);
        nq = 8;
    }
    qin[1] = scalar(PQ_DTYPE_F32, 0.02);
    qin[2] = scalar(PQ_DTYPE_U8, 128);
    qin[6] = scalar(PQ_DTYPE_F32, 0.5);
    qin[7] = scalar(PQ_DTYPE_U8, 100);
    pq_tensor *fo[1] = {fy}, *qo[1] = {qy};
    pq_kernel_args fa = {fg, &fg->nodes[fn], (const pq_tensor *const *)fin, nf, fo, 1, NULL,
                         1,  &g_err};
    pq_kernel_args qa = {qg, &qg->nodes[qn], (const pq_tensor *const *)qin, nq, qo, 1, NULL,
                         1,  &g_err};
    double fw, fc, fcm;
    time_it(NULL, NULL, &fa, &fw, &fc, &fcm);
    printf("\n%s  (%.1f MOP per call)\n", name, ops * 1e-6);
    printf("  %-22s %9s %9s %9s %8s %9s\n", "kernel", "wall ms", "cpu min", "cpu med", "GOP/s",
           "vs fp32");
    printf("  %-22s %9.3f %9.3f %9.3f %8.1f %9s\n", "oneDNN fp32", fw * 1e3, fc * 1e3, fcm * 1e3,
           ops / fc * 1e-9, "1.00x");
    for (int isa = 0; isa < PQ_I8_ISA_COUNT; isa++) {
        const pq_i8_kernels *k = pq_i8_kernels_for((enum pq_i8_isa)isa);
        if (!k) {
            printf("  int8 %-17s skipped (not available on this CPU/build)\n",
                   pq_i8_isa_name((enum pq_i8_isa)isa));
            continue;
        }
        double w, c, cm;
        time_it(conv ? pq_i8_qlinear_conv_run : pq_i8_qlinear_matmul_run, k, &qa, &w, &c, &cm);
        printf("  int8 %-17s %9.3f %9.3f %9.3f %8.1f %8.2fx\n", k->name, w * 1e3, c * 1e3, cm * 1e3,
               ops / c * 1e-9, fc / c);
    }
    for (uint32_t i = 0; i < nf; i++)
        pq_tensor_destroy(fin[i]);
    for (uint32_t i = 0; i < nq; i++)
        pq_tensor_destroy(qin[i]);
    pq_tensor_destroy(fy);
    pq_tensor_destroy(qy);
    pq_graph_destroy(fg);
    pq_graph_destroy(qg);
}

/* ---- per-layer mode: every conv shape of a model (argv: models [threads]) ---- */

typedef struct layer {
    const char *name;
    int64_t C, HW, M, kk, st, grp;
    const char *act;
    int count; /* identical layers in the model */
} layer;

/* resnet18 at 224 x 224 (20 convs, batch-norm folded, ReLU fused) */
static const layer resnet18[] = {
    {"conv1 7x7/2 3->64 224", 3, 224, 64, 7, 2, 1, "Relu", 1},
    {"l1 3x3 64->64 56", 64, 56, 64, 3, 1, 1, "Relu", 4},
    {"l2 3x3/2 64->128 56", 64, 56, 128, 3, 2, 1, "Relu", 1},
    {"l2 1x1/2 64->128 56", 64, 56, 128, 1, 2, 1, NULL, 1},
    {"l2 3x3 128->128 28", 128, 28, 128, 3, 1, 1, "Relu", 3},
    {"l3 3x3/2 128->256 28", 128, 28, 256, 3, 2, 1, "Relu", 1},
    {"l3 1x1/2 128->256 28", 128, 28, 256, 1, 2, 1, NULL, 1},
    {"l3 3x3 256->256 14", 256, 14, 256, 3, 1, 1, "Relu", 3},
    {"l4 3x3/2 256->512 14", 256, 14, 512, 3, 2, 1, "Relu", 1},
    {"l4 1x1/2 256->512 14", 256, 14, 512, 1, 2, 1, NULL, 1},
    {"l4 3x3 512->512 7", 512, 7, 512, 3, 1, 1, "Relu", 3},
};

/* torchvision mobilenet_v3_small at 224 x 224 (52 convs; SE convs on 1 x 1) */
static const layer mbv3s[] = {
    {"stem 3x3/2 3->16 224 hs", 3, 224, 16, 3, 2, 1, "HardSwish", 1},
    {"b1 dw3/2 16 112", 16, 112, 16, 3, 2, 16, "Relu", 1},
    {"b1 se 16->8", 16, 1, 8, 1, 1, 1, "Relu", 1},
    {"b1 se 8->16", 8, 1, 16, 1, 1, 1, NULL, 1},
    {"b1 pw 16->16 56", 16, 56, 16, 1, 1, 1, NULL, 1},
    {"b2 pw 16->72 56", 16, 56, 72, 1, 1, 1, "Relu", 1},
    {"b2 dw3/2 72 56", 72, 56, 72, 3, 2, 72, "Relu", 1},
    {"b2 pw 72->24 28", 72, 28, 24, 1, 1, 1, NULL, 1},
    {"b3 pw 24->88 28", 24, 28, 88, 1, 1, 1, "Relu", 1},
    {"b3 dw3 88 28", 88, 28, 88, 3, 1, 88, "Relu", 1},
    {"b3 pw 88->24 28", 88, 28, 24, 1, 1, 1, NULL, 1},
    {"b4 pw 24->96 28 hs", 24, 28, 96, 1, 1, 1, "HardSwish", 1},
    {"b4 dw5/2 96 28 hs", 96, 28, 96, 5, 2, 96, "HardSwish", 1},
    {"b4 se 96->24", 96, 1, 24, 1, 1, 1, "Relu", 1},
    {"b4 se 24->96", 24, 1, 96, 1, 1, 1, NULL, 1},
    {"b4 pw 96->40 14", 96, 14, 40, 1, 1, 1, NULL, 1},
    {"b5,6 pw 40->240 14 hs", 40, 14, 240, 1, 1, 1, "HardSwish", 2},
    {"b5,6 dw5 240 14 hs", 240, 14, 240, 5, 1, 240, "HardSwish", 2},
    {"b5,6 se 240->64", 240, 1, 64, 1, 1, 1, "Relu", 2},
    {"b5,6 se 64->240", 64, 1, 240, 1, 1, 1, NULL, 2},
    {"b5,6 pw 240->40 14", 240, 14, 40, 1, 1, 1, NULL, 2},
    {"b7 pw 40->120 14 hs", 40, 14, 120, 1, 1, 1, "HardSwish", 1},
    {"b7 dw5 120 14 hs", 120, 14, 120, 5, 1, 120, "HardSwish", 1},
    {"b7 se 120->32", 120, 1, 32, 1, 1, 1, "Relu", 1},
    {"b7 se 32->120", 32, 1, 120, 1, 1, 1, NULL, 1},
    {"b7 pw 120->48 14", 120, 14, 48, 1, 1, 1, NULL, 1},
    {"b8 pw 48->144 14 hs", 48, 14, 144, 1, 1, 1, "HardSwish", 1},
    {"b8 dw5 144 14 hs", 144, 14, 144, 5, 1, 144, "HardSwish", 1},
    {"b8 se 144->40", 144, 1, 40, 1, 1, 1, "Relu", 1},
    {"b8 se 40->144", 40, 1, 144, 1, 1, 1, NULL, 1},
    {"b8 pw 144->48 14", 144, 14, 48, 1, 1, 1, NULL, 1},
    {"b9 pw 48->288 14 hs", 48, 14, 288, 1, 1, 1, "HardSwish", 1},
    {"b9 dw5/2 288 14 hs", 288, 14, 288, 5, 2, 288, "HardSwish", 1},
    {"b9 se 288->72", 288, 1, 72, 1, 1, 1, "Relu", 1},
    {"b9 se 72->288", 72, 1, 288, 1, 1, 1, NULL, 1},
    {"b9 pw 288->96 7", 288, 7, 96, 1, 1, 1, NULL, 1},
    {"b10,11 pw 96->576 7 hs", 96, 7, 576, 1, 1, 1, "HardSwish", 2},
    {"b10,11 dw5 576 7 hs", 576, 7, 576, 5, 1, 576, "HardSwish", 2},
    {"b10,11 se 576->144", 576, 1, 144, 1, 1, 1, "Relu", 2},
    {"b10,11 se 144->576", 144, 1, 576, 1, 1, 1, NULL, 2},
    {"b10,11 pw 576->96 7", 576, 7, 96, 1, 1, 1, NULL, 2},
    {"last pw 96->576 7 hs", 96, 7, 576, 1, 1, 1, "HardSwish", 1},
};

/* One layer as a session would run it: weights and bias graph constants, a bound oneDNN cache
 * (packed INT8 weights and oneDNN primitives kept between calls). Returns the INT8 time (s) and
 * stores the FP32 one in *fp32; at one thread thread-CPU minima, else wall minima. */
static double bench_layer(const layer *L, int threads, double *fp32) {
    int64_t kk = L->kk, OHW = (L->HW + 2 * (kk / 2) - kk) / L->st + 1;
    int64_t dx[4] = {1, L->C, L->HW, L->HW}, dw[4] = {L->M, L->C / L->grp, kk, kk};
    int64_t dy[4] = {1, L->M, OHW, OHW}, db[1] = {L->M};
    uint32_t fn, qn;
    pq_graph *fg = one_node(PQ_OP_CONV, 3, &fn), *qg = one_node(PQ_OP_QLINEAR_CONV, 9, &qn);
    conv_attrs(fg, fn, kk / 2, L->st, L->grp);
    conv_attrs(qg, qn, kk / 2, L->st, L->grp);
    if (L->act) {
        pq_node_set_string(fg, fn, "activation", L->act, &g_err);
        pq_node_set_string(qg, qn, "activation", L->act, &g_err);
    }
    pq_tensor *fin[3], *qin[9] = {0};
    fin[0] = tens(PQ_DTYPE_F32, 4, dx), fin[1] = tens(PQ_DTYPE_F32, 4, dw);
    fin[2] = tens(PQ_DTYPE_F32, 1, db);
    pq_tensor *fy = tens(PQ_DTYPE_F32, 4, dy), *qy = tens(PQ_DTYPE_U8, 4, dy);
    qin[0] = tens(PQ_DTYPE_U8, 4, dx), qin[3] = tens(PQ_DTYPE_I8, 4, dw);
    qin[4] = tens(PQ_DTYPE_F32, 1, db);
    for (int64_t i = 0; i < L->M; i++)
        ((float *)qin[4]->data)[i] = 0.01f + 0.0001f * (float)i;
    qin[5] = pq_tensor_create(PQ_DTYPE_I8, 1, db, &g_err);
    qin[8] = pq_tensor_create(PQ_DTYPE_I32, 1, db, &g_err);
    for (int64_t i = 0; i < L->M; i++)
        ((int32_t *)qin[8]->data)[i] = (int32_t)(rnd() % 2001) - 1000;
    qin[1] = scalar(PQ_DTYPE_F32, 0.02);
    qin[2] = scalar(PQ_DTYPE_U8, 128);
    qin[6] = scalar(PQ_DTYPE_F32, 0.5);
    qin[7] = scalar(PQ_DTYPE_U8, 100);
    /* the weights and biases become graph constants (owned by the graphs from here) */
    pq_graph_set_constant(fg, fg->nodes[fn].inputs[1], fin[1], &g_err);
    pq_graph_set_constant(fg, fg->nodes[fn].inputs[2], fin[2], &g_err);
    pq_graph_set_constant(qg, qg->nodes[qn].inputs[3], qin[3], &g_err);
    pq_graph_set_constant(qg, qg->nodes[qn].inputs[8], qin[8], &g_err);
    pq_tensor *fo[1] = {fy}, *qo[1] = {qy};
    pq_kernel_args fa = {fg,      &fg->nodes[fn], (const pq_tensor *const *)fin, 3, fo, 1, NULL,
                         threads, &g_err};
    pq_kernel_args qa = {qg,      &qg->nodes[qn], (const pq_tensor *const *)qin, 9, qo, 1, NULL,
                         threads, &g_err};
    pq_onednn_cache *cache = pq_onednn_cache_create();
    pq_onednn_cache *prev = pq_onednn_cache_bind(cache);
    double w, c, cm, f, q;
    time_it(NULL, NULL, &fa, &w, &c, &cm);
    f = threads > 1 ? g_wall_min : c;
    time_it(pq_i8_qlinear_conv_run, pq_i8_kernels_get(), &qa, &w, &c, &cm);
    q = threads > 1 ? g_wall_min : c;
    pq_onednn_cache_bind(prev);
    pq_onednn_cache_destroy(cache);
    pq_tensor_destroy(fin[0]);
    for (int i = 0; i < 9; i++)
        if (i != 3 && i != 8) pq_tensor_destroy(qin[i]);
    pq_tensor_destroy(fy);
    pq_tensor_destroy(qy);
    pq_graph_destroy(fg);
    pq_graph_destroy(qg);
    *fp32 = f;
    return q;
}

static void bench_model(const char *name, const layer *L, size_t n, int threads) {
    printf("\n%s, %d thread(s), int8 kernels %s (%s per call)\n", name, threads,
           pq_i8_kernels_get()->name, threads > 1 ? "wall min" : "thread-CPU min");
    printf("  %-26s %3s %8s %9s %9s %8s %7s\n", "layer", "n", "MMAC", "fp32 us", "int8 us",
           "GMAC/s", "vs fp32");
    double tf = 0, tq = 0, tm = 0;
    for (size_t i = 0; i < n; i++) {
        if (g_layer && !strstr(L[i].name, g_layer)) continue;
        int64_t OHW = (L[i].HW + 2 * (L[i].kk / 2) - L[i].kk) / L[i].st + 1;
        double mac = (double)(L[i].M * (L[i].C / L[i].grp) * L[i].kk * L[i].kk * OHW * OHW);
        double f, q = bench_layer(&L[i], threads, &f);
        printf("  %-26s %3d %8.2f %9.1f %9.1f %8.1f %6.2fx\n", L[i].name, L[i].count, mac * 1e-6,
               f * 1e6, q * 1e6, mac / q * 1e-9, f / q);
        tf += f * L[i].count;
        tq += q * L[i].count;
        tm += mac * L[i].count;
    }
    printf("  %-26s %3s %8.1f %9.1f %9.1f %8.1f %6.2fx\n", "total", "", tm * 1e-6, tf * 1e6,
           tq * 1e6, tm / tq * 1e-9, tf / tq);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "models") == 0) {
        int threads = argc > 2 ? atoi(argv[2]) : 1;
        const char *only = argc > 3 ? argv[3] : "";
        g_layer = argc > 4 ? argv[4] : NULL;
        g_reps = argc > 5 && atoi(argv[5]) > 0 ? atoi(argv[5]) : 1;
        if (threads < 1) threads = 1;
        if (!*only || strcmp(only, "resnet18") == 0)
            bench_model("resnet18", resnet18, sizeof resnet18 / sizeof resnet18[0], threads);
        if (!*only || strcmp(only, "mobilenet_v3_small") == 0)
            bench_model("mobilenet_v3_small", mbv3s, sizeof mbv3s / sizeof mbv3s[0], threads);
        return 0;
    }
    printf(
        "bench_int8: single thread, medians of %d calls (cpu = thread CPU time; ratios use it)\n",
        SAMPLES);
    bench_shape("conv 3x3 64->64 56x56 pad 1", 1, 64, 56, 64, 3, 0, 1, 1, NULL);
    bench_shape("conv 3x3 512->512 7x7 pad 1", 1, 512, 7, 512, 3, 0, 1, 1, NULL);
    bench_shape("conv 3x3 64->128 56x56 stride 2", 1, 64, 56, 128, 3, 0, 2, 1, NULL);
    bench_shape("conv 1x1 64->256 56x56", 1, 64, 56, 256, 1, 0, 1, 1, NULL);
    bench_shape("conv 1x1 256->512 14x14 stride 2", 1, 256, 14, 512, 1, 0, 2, 1, NULL);
    bench_shape("depthwise 5x5 240 14x14 + HardSwish", 1, 240, 14, 240, 5, 0, 1, 240, "HardSwish");
    bench_shape("gemm 256x768 * 768x768", 0, 768, 0, 768, 0, 256, 1, 1, NULL);
    return 0;
}
