/* INT8 QLinearConv / QLinearMatMul kernels (backends/int8/, every ISA this CPU runs) against
 * oneDNN FP32 Conv / MatMul on the same shapes through the fast-kernel path (pq_kernel_run), in
 * the same run, single-threaded: ResNet-ish 3x3 convs (64 -> 64 at 56x56; 512 -> 512 at 7x7,
 * where output positions become the broadcast rows), a 3x3 stride-2 conv, 1x1 convs (64 -> 256
 * at 56x56; stride 2), a mobilenet depthwise 5x5 with a fused HardSwish and a GEMM (256 x 768 x
 * 768). Prints medians of wall time and the minimum and median of thread-CPU time per call (the
 * minimum is the least disturbed by other processes on a shared machine), GOP/s (2 ops per
 * multiply-add, from the minimum) and ratios to oneDNN FP32. Weights are packed per call here
 * (no session cache). Not a test: nothing asserts on time. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/fast.h"
#include "backends/int8/int8_gemm.h"
#include "backends/int8/int8_ops.h"
#include "ir/ir.h"

#define SAMPLES 21

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
static void time_it(run_fn run, const pq_i8_kernels *k, const pq_kernel_args *a, double *wall,
                    double *cpu, double *cpu_med) {
    double w[SAMPLES], c[SAMPLES];
    for (int i = -2; i < SAMPLES; i++) {
        double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_THREAD_CPUTIME_ID);
        enum pq_status st = run ? run(k, a) : pq_kernel_run(a);
        if (st != PQ_OK) {
            fprintf(stderr, "bench_int8: kernel failed (%d): %s\n", (int)st, a->err->msg);
            exit(1);
        }
        if (i >= 0) {
            w[i] = now(CLOCK_MONOTONIC) - w0;
            c[i] = now(CLOCK_THREAD_CPUTIME_ID) - c0;
        }
    }
    qsort(w, SAMPLES, sizeof(double), cmp_d);
    qsort(c, SAMPLES, sizeof(double), cmp_d);
    *wall = w[SAMPLES / 2];
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

int main(void) {
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
