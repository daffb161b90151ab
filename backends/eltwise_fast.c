/* Fast f32 Softmax / LayerNormalization / broadcasting Add-Sub-Mul-Div: scalar row kernels, the
 * run-time ISA choice, and the node glue (shape checks, broadcast rows, threading) shared by every
 * ISA. Numerics and the cases handled: backends/eltwise_fast.h. */
#include "backends/eltwise_fast.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "backends/cpu.h"
#include "backends/onednn/onednn.h"
#include "backends/piqc_ops.h"
#include "backends/ref/ref_util.h"
#include "backends/threadpool.h"

/* ---- scalar row kernels ---- */

#define PQ_EW_SCALAR(name, OP)                                                                     \
    static void name(const float *a, int64_t sa, const float *b, int64_t sb, float *y,             \
                     int64_t n) {                                                                  \
        for (int64_t i = 0; i < n; i++)                                                            \
            y[i] = a[i * sa] OP b[i * sb];                                                         \
    }
PQ_EW_SCALAR(pq_f32_add_ukernel__scalar, +)
PQ_EW_SCALAR(pq_f32_sub_ukernel__scalar, -)
PQ_EW_SCALAR(pq_f32_mul_ukernel__scalar, *)
PQ_EW_SCALAR(pq_f32_div_ukernel__scalar, /)

static void pq_f32_softmax_ukernel__scalar(const float *x, float *y, int64_t n) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (x[i] > m) m = x[i];
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float e = (float)exp((double)x[i] - (double)m);
        y[i] = e;
        sum += e;
    }
    float s = (float)sum;
    for (int64_t i = 0; i < n; i++)
        y[i] = y[i] / s;
}

static void pq_f32_layernorm_ukernel__scalar(const float *x, const float *s, const float *b,
                                             float *y, int64_t n, double eps) {
    double mean = 0.0, var = 0.0;
    for (int64_t j = 0; j < n; j++)
        mean += x[j];
    mean /= (double)n;
    for (int64_t j = 0; j < n; j++)
        var += ((double)x[j] - mean) * ((double)x[j] - mean);
    var /= (double)n;
    float m = (float)mean, iv = (float)(1.0 / sqrt(var + eps));
    for (int64_t j = 0; j < n; j++) {
        float t = (x[j] - m) * iv;
        t = t * s[j];
        y[j] = t + (b ? b[j] : 0.0f);
    }
}

static double pq_f32_sum_ukernel__scalar(const float *x, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += x[i];
    return s;
}

static void pq_f32_lane_sums_ukernel__scalar(const float *x, int64_t rows, int blk, int64_t nb,
                                             int64_t bstride, double *acc) {
    for (int64_t b = 0; b < nb; b++)
        for (int64_t r = 0; r < rows; r++)
            for (int l = 0; l < blk; l++)
                acc[b * blk + l] += x[b * bstride + r * blk + l];
}

static void pq_f32_lane_scale_ukernel__scalar(const float *x, const float *s, float *y,
                                              int64_t rows, int blk) {
    for (int64_t r = 0; r < rows; r++)
        for (int l = 0; l < blk; l++)
            y[r * blk + l] = x[r * blk + l] * s[l];
}

const pq_eltwise_kernels pq_eltwise_kernels_scalar = {
    .sum = pq_f32_sum_ukernel__scalar,
    .lane_sums = pq_f32_lane_sums_ukernel__scalar,
    .lane_scale = pq_f32_lane_scale_ukernel__scalar,
    .isa = "scalar",
    .binary = {pq_f32_add_ukernel__scalar, pq_f32_sub_ukernel__scalar, pq_f32_mul_ukernel__scalar,
               pq_f32_div_ukernel__scalar},
    .softmax = pq_f32_softmax_ukernel__scalar,
    .layernorm = pq_f32_layernorm_ukernel__scalar,
};

/* ---- selection ---- */

const pq_eltwise_kernels *pq_eltwise_kernels_for(const char *isa) {
    if (!isa) return NULL;
    if (!strcmp(isa, "scalar")) return &pq_eltwise_kernels_scalar;
#if defined(__x86_64__)
    if (!strcmp(isa, "avx2"))
        return pq_cpu_has_avx2() && pq_eltwise_kernels_avx2.sum ? &pq_eltwise_kernels_avx2 : NULL;
    if (!strcmp(isa, "avx512"))
        return pq_cpu_has_avx512() && pq_eltwise_kernels_avx512.sum ? &pq_eltwise_kernels_avx512
                                                                    : NULL;
#endif
    return NULL;
}

static const pq_eltwise_kernels *pq_eltwise_selected;
static pthread_once_t pq_eltwise_once = PTHREAD_ONCE_INIT;

static void pq_eltwise_select(void) {
    const char *f = pq_isa_forced();
    if (f && (pq_eltwise_selected = pq_eltwise_kernels_for(f))) return;
    if (f) { /* forced but unavailable (e.g. neon on x86): the portable kernels */
        pq_eltwise_selected = &pq_eltwise_kernels_scalar;
        return;
    }
    if ((pq_eltwise_selected = pq_eltwise_kernels_for("avx512"))) return;
    if ((pq_eltwise_selected = pq_eltwise_kernels_for("avx2"))) return;
    pq_eltwise_selected = &pq_eltwise_kernels_scalar;
}

const pq_eltwise_kernels *pq_eltwise_kernels_get(void) {
    pthread_once(&pq_eltwise_once, pq_eltwise_select);
    return pq_eltwise_selected;
}

/* ---- node glue ---- */

static bool pq_ew_f32(const pq_tensor *t) {
    return t && t->dtype == PQ_DTYPE_F32 && t->data;
}

/* Threads worth using for `work` elements of cheap arithmetic: one below min_work. On idle CPUs
 * (pq_threads_usable) the caller never waits for a worker to wake up (it claims the chunks no
 * worker has taken), so work of a few microseconds is split already (PQ_EW_PAR_MIN elements:
 * ~4 us of an Add; 2 idle cores: EfficientNet-B0 and MobileNetV3 1-3% faster than with 128K);
 * while other processes keep the CPUs busy a worker may need a time slice to finish its chunk,
 * so only work of tens of microseconds is split (PQ_EW_PAR_MIN_BUSY: ~30 us of an Add, ~100 us
 * of Softmax). */
#define PQ_EW_PAR_MIN ((int64_t)1 << 14)
#define PQ_EW_PAR_MIN_BUSY ((int64_t)1 << 17)
static int pq_ew_threads(const pq_kernel_args *a, int64_t work, int64_t min_work) {
    if (a->n_threads <= 1 || work < min_work) return 1;
    if (min_work == PQ_EW_PAR_MIN && work < PQ_EW_PAR_MIN_BUSY &&
        pq_threads_usable(a->n_threads) < a->n_threads)
        return 1;
    return a->n_threads;
}

typedef struct {
    const pq_eltwise_kernels *k;
    int op;
    const pq_ref_bcast *bc;
    const float *a, *b;
    float *y;
    int64_t seg, spr; /* segment length, segments per row */
} pq_ew_bin_job;

static void pq_ew_bin_chunk(void *ctx, int64_t t0, int64_t t1) {
    const pq_ew_bin_job *j = ctx;
    const pq_ref_bcast *bc = j->bc;
    int64_t inner = bc->inner;
    for (int64_t t = t0; t < t1; t++) {
        int64_t row = t / j->spr, s0 = (t % j->spr) * j->seg;
        int64_t len = inner - s0 < j->seg ? inner - s0 : j->seg;
        int64_t oa = 0, ob = 0, r = row;
        for (int d = bc->rank - 2; d >= 0; d--) {
            int64_t i = r % bc->dims[d];
            r /= bc->dims[d];
            oa += i * bc->strides[0][d];
            ob += i * bc->strides[1][d];
        }
        int64_t sa = bc->istride[0], sb = bc->istride[1];
        j->k->binary[j->op](j->a + oa + s0 * sa, sa, j->b + ob + s0 * sb, sb,
                            j->y + row * inner + s0, len);
    }
}

enum pq_status pq_eltwise_binary_run(const pq_eltwise_kernels *k, const pq_kernel_args *a) {
    int op;
    switch (a->node->op) {
    case PQ_OP_ADD:
        op = PQ_EW_ADD;
        break;
    case PQ_OP_SUB:
        op = PQ_EW_SUB;
        break;
    case PQ_OP_MUL:
        op = PQ_EW_MUL;
        break;
    case PQ_OP_DIV:
        op = PQ_EW_DIV;
        break;
    default:
        return PQ_ERR_UNSUPPORTED;
    }
    if (!k || a->n_in != 2 || a->n_out < 1) return PQ_ERR_UNSUPPORTED;
    const pq_tensor *A = a->in[0], *B = a->in[1];
    pq_tensor *Y = a->out[0];
    if (!pq_ew_f32(A) || !pq_ew_f32(B) || !Y || !pq_ew_f32(Y)) return PQ_ERR_UNSUPPORTED;
    if (pq_tensor_numel(Y) == 0) return PQ_ERR_UNSUPPORTED;
    const pq_tensor *ops[2] = {A, B};
    pq_ref_bcast bc;
    pq_ref_bcast_init_tensors(&bc, Y, 2, ops);
    int64_t sa = bc.istride[0], sb = bc.istride[1];
    if ((sa != 0 && sa != 1) || (sb != 0 && sb != 1)) return PQ_ERR_UNSUPPORTED;
    /* Segments of at most 8192 elements so one long row (same shape, scalar) splits too. */
    pq_ew_bin_job j = {k, op, &bc, A->data, B->data, Y->data, bc.inner, 1};
    if (bc.inner > 16384) {
        j.seg = 8192;
        j.spr = (bc.inner + j.seg - 1) / j.seg;
    }
    int64_t tasks = bc.numel / bc.inner * j.spr;
    pq_parallel_for(pq_ew_threads(a, bc.numel, PQ_EW_PAR_MIN), tasks, pq_ew_bin_chunk, &j);
    /* Add's fused activation: the reference epilogue on the result (PQ_OK when none). */
    return a->node->op == PQ_OP_ADD ? pq_act_epilogue(a->node, Y, a->err) : PQ_OK;
}

typedef struct {
    const pq_eltwise_kernels *k;
    const float *x, *s, *b;
    float *y;
    int64_t n;
    double eps;
} pq_ew_row_job;

static void pq_ew_softmax_chunk(void *ctx, int64_t r0, int64_t r1) {
    const pq_ew_row_job *j = ctx;
    for (int64_t r = r0; r < r1; r++)
        j->k->softmax(j->x + r * j->n, j->y + r * j->n, j->n);
}

enum pq_status pq_eltwise_softmax_run(const pq_eltwise_kernels *k, const pq_kernel_args *a) {
    if (!k || a->node->op != PQ_OP_SOFTMAX || a->n_in < 1 || a->n_out < 1)
        return PQ_ERR_UNSUPPORTED;
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    if (!pq_ew_f32(X) || !Y || !pq_ew_f32(Y) || X->rank < 1) return PQ_ERR_UNSUPPORTED;
    int rank = X->rank;
    bool coerce = pq_node_attr_int(a->node, "coerce_2d", 0) != 0;
    int64_t axis = pq_node_attr_int(a->node, "axis", coerce ? 1 : -1);
    if (axis < 0) axis += rank;
    if (axis != rank - 1) return PQ_ERR_UNSUPPORTED;
    int64_t numel = pq_tensor_numel(X), n = X->dims[rank - 1];
    if (numel == 0 || n == 0 || pq_tensor_numel(Y) != numel) return PQ_ERR_UNSUPPORTED;
    pq_ew_row_job j = {k, X->data, NULL, NULL, Y->data, n, 0.0};
    pq_parallel_for(pq_ew_threads(a, numel, PQ_EW_PAR_MIN), numel / n, pq_ew_softmax_chunk, &j);
    return PQ_OK;
}

static void pq_ew_layernorm_chunk(void *ctx, int64_t r0, int64_t r1) {
    const pq_ew_row_job *j = ctx;
    for (int64_t r = r0; r < r1; r++)
        j->k->layernorm(j->x + r * j->n, j->s, j->b, j->y + r * j->n, j->n, j->eps);
}

enum pq_status pq_eltwise_layernorm_run(const pq_eltwise_kernels *k, const pq_kernel_args *a) {
    if (!k || a->node->op != PQ_OP_LAYER_NORMALIZATION || a->n_in < 2 || a->n_out < 1)
        return PQ_ERR_UNSUPPORTED;
    for (uint32_t i = 1; i < a->n_out; i++)
        if (a->out[i]) return PQ_ERR_UNSUPPORTED; /* Mean / InvStdDev: reference */
    const pq_tensor *X = a->in[0], *S = a->in[1], *B = a->n_in > 2 ? a->in[2] : NULL;
    pq_tensor *Y = a->out[0];
    if (!pq_ew_f32(X) || !pq_ew_f32(S) || (B && !pq_ew_f32(B)) || !Y || !pq_ew_f32(Y))
        return PQ_ERR_UNSUPPORTED;
    int64_t axis = pq_node_attr_int(a->node, "axis", -1);
    if (axis < 0) axis += X->rank;
    if (axis < 0 || axis >= X->rank) return PQ_ERR_UNSUPPORTED;
    int64_t D = 1, numel = pq_tensor_numel(X);
    for (int i = (int)axis; i < X->rank; i++)
        D *= X->dims[i];
    /* Scale / bias with D elements broadcast to the tail dims element for element. */
    if (D == 0 || numel == 0 || pq_tensor_numel(S) != D || (B && pq_tensor_numel(B) != D) ||
        pq_tensor_numel(Y) != numel)
        return PQ_ERR_UNSUPPORTED;
    double eps = pq_node_attr_float(a->node, "epsilon", 1e-5f);
    pq_ew_row_job j = {k, X->data, S->data, B ? B->data : NULL, Y->data, D, eps};
    pq_parallel_for(pq_ew_threads(a, numel, PQ_EW_PAR_MIN), numel / D, pq_ew_layernorm_chunk, &j);
    return PQ_OK;
}

typedef struct {
    const pq_eltwise_kernels *k;
    const float *x;
    float *y;
    int64_t sp;
} pq_ew_gap_job;

static void pq_ew_gap_chunk(void *ctx, int64_t r0, int64_t r1) {
    const pq_ew_gap_job *j = ctx;
    for (int64_t r = r0; r < r1; r++)
        j->y[r] = (float)(j->k->sum(j->x + r * j->sp, j->sp) / (double)j->sp);
}

enum pq_status pq_eltwise_global_avg_pool_run(const pq_eltwise_kernels *k,
                                              const pq_kernel_args *a) {
    if (!k || !k->sum || a->node->op != PQ_OP_GLOBAL_AVERAGE_POOL || a->n_in < 1 || a->n_out < 1)
        return PQ_ERR_UNSUPPORTED;
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    if (!pq_ew_f32(X) || !Y || !pq_ew_f32(Y) || X->rank < 3) return PQ_ERR_UNSUPPORTED;
    int64_t nc = X->dims[0] * X->dims[1], sp = 1;
    for (int i = 2; i < X->rank; i++)
        sp *= X->dims[i];
    if (nc == 0 || sp == 0 || pq_tensor_numel(Y) != nc) return PQ_ERR_UNSUPPORTED;
    pq_ew_gap_job j = {k, X->data, Y->data, sp};
    pq_parallel_for(pq_ew_threads(a, nc * sp, PQ_EW_PAR_MIN), nc, pq_ew_gap_chunk, &j);
    return PQ_OK;
}

/* GlobalAveragePool / Mul / Add first try oneDNN's kept blocked copies of their inputs
 * (pq_onednn_eltwise_blocked), which also writes back elided plain inputs when it declines. */
enum pq_status pq_fast_eltwise_global_avg_pool(const pq_kernel_args *a) {
    enum pq_status st = pq_onednn_eltwise_blocked(a);
    if (st != PQ_ERR_UNSUPPORTED) return st;
    return pq_eltwise_global_avg_pool_run(pq_eltwise_kernels_get(), a);
}

enum pq_status pq_fast_eltwise_binary(const pq_kernel_args *a) {
    enum pq_status st = pq_onednn_eltwise_blocked(a);
    if (st != PQ_ERR_UNSUPPORTED) return st;
    return pq_eltwise_binary_run(pq_eltwise_kernels_get(), a);
}
enum pq_status pq_fast_eltwise_softmax(const pq_kernel_args *a) {
    return pq_eltwise_softmax_run(pq_eltwise_kernels_get(), a);
}
enum pq_status pq_fast_eltwise_layernorm(const pq_kernel_args *a) {
    return pq_eltwise_layernorm_run(pq_eltwise_kernels_get(), a);
}
