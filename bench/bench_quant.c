/* Benchmark of the packed-weight kernels on real shapes (4096x4096, 16384x8192; 1 and 2 threads)
 * with their baselines in the same run: read and memcpy bandwidth, f32 GEMV (own AVX2 and
 * oneDNN sgemm), quantize/dequantize throughput, fused PiQ3/PiQ2 GEMV, FWHT-4096 per row, and the
 * GEMV bandwidth table (f32-activation vs int8-activation PiQ GEMV, every integer ISA the CPU
 * runs). Prints medians of >= 5 timed samples (>= 11 in the GEMV table; wall, fastest wall, and
 * the calling thread's CPU time, which excludes time-slices lost to other jobs) and ratios. Not a
 * test: nothing here asserts on time.
 * Usage: bench_quant [--quick | --gemv] [--samples N]
 *   --quick: only 4096x4096, fewer samples; --gemv: only the GEMV bandwidth table (16384x8192) */
#include <immintrin.h>
#include <math.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/cpu.h"
#include "backends/quant/fwht.h"
#include "backends/quant/piq_gemv_i8.h"
#include "backends/quant/qkernels.h"
#include "backends/quant/quant.h"
#include "ir/alloc.h"
#include "ir/dtype.h"

#define PQ_NTHREADS_MAX 2

static int g_samples = 7;
static double g_min; /* fastest sample of the last time_job */
static double g_cpu; /* median CPU time of the calling thread per call in the last time_job */

/* CPU time of the calling thread: unlike wall time it excludes time-slices lost to other jobs
 * on the shared cores (for 2-thread jobs it covers thread 0's share; barrier waits sleep). */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- two-thread runner: thread 0 is the caller, thread 1 a persistent worker --------------- */

typedef void (*job_fn)(void *arg, int tid, int nthreads);
static pthread_barrier_t g_start, g_done;
static job_fn g_job;
static void *g_arg;
static int g_nthreads;
static volatile int g_quit;

static void *worker_main(void *unused) {
    (void)unused;
    for (;;) {
        pthread_barrier_wait(&g_start);
        if (g_quit) return NULL;
        if (g_nthreads > 1) g_job(g_arg, 1, g_nthreads);
        pthread_barrier_wait(&g_done);
    }
}

static void run_job(job_fn fn, void *arg, int nthreads) {
    if (nthreads == 1) {
        fn(arg, 0, 1);
        return;
    }
    g_job = fn;
    g_arg = arg;
    g_nthreads = nthreads;
    pthread_barrier_wait(&g_start);
    fn(arg, 0, nthreads);
    pthread_barrier_wait(&g_done);
}

/* Median seconds per call over g_samples samples; each sample repeats the job so that it lasts
 * at least ~30 ms. */
static double time_job(job_fn fn, void *arg, int nthreads, int samples) {
    run_job(fn, arg, nthreads); /* warm-up (page faults, caches) */
    double t0 = now_s();
    run_job(fn, arg, nthreads);
    double one = now_s() - t0;
    int reps = one > 0.03 ? 1 : (int)(0.03 / (one > 1e-7 ? one : 1e-7)) + 1;
    double t[32], c[32];
    if (samples > 32) samples = 32;
    for (int s = 0; s < samples; s++) {
        double c0 = cpu_s();
        t0 = now_s();
        for (int r = 0; r < reps; r++)
            run_job(fn, arg, nthreads);
        t[s] = (now_s() - t0) / reps;
        c[s] = (cpu_s() - c0) / reps;
    }
    qsort(t, (size_t)samples, sizeof(double), cmp_double);
    qsort(c, (size_t)samples, sizeof(double), cmp_double);
    g_min = t[0];
    g_cpu = c[samples / 2];
    return t[samples / 2];
}

static void split(int64_t n, int tid, int nt, int64_t align, int64_t *b, int64_t *e) {
    int64_t per = (n / nt + align - 1) / align * align;
    *b = per * tid < n ? per * tid : n;
    *e = per * (tid + 1) < n && tid + 1 < nt ? per * (tid + 1) : n;
}

/* ---- baselines: read bandwidth, memcpy, f32 GEMV, peak add rate ---------------------------- */

typedef struct {
    const float *src;
    float *dst;
    int64_t n;
    volatile float sink[PQ_NTHREADS_MAX];
} bw_arg;

/* Sum of n floats read as 4 interleaved sequential streams (one per quarter of the range): one
 * stream alone leaves a core's DRAM bandwidth unused (a single-stream sum read 10-11 GB/s where
 * oneDNN's GEMV, reading many rows at once, read 30 GB/s on a Sapphire Rapids core). */
__attribute__((target("avx2,fma"))) static float read_sum_avx2(const float *p, int64_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t q = n / 4 / 16 * 16;
    const float *p0 = p, *p1 = p + q, *p2 = p + 2 * q, *p3 = p + 3 * q;
    for (int64_t i = 0; i < q; i += 16) {
        a0 = _mm256_add_ps(a0, _mm256_add_ps(_mm256_loadu_ps(p0 + i), _mm256_loadu_ps(p0 + i + 8)));
        a1 = _mm256_add_ps(a1, _mm256_add_ps(_mm256_loadu_ps(p1 + i), _mm256_loadu_ps(p1 + i + 8)));
        a2 = _mm256_add_ps(a2, _mm256_add_ps(_mm256_loadu_ps(p2 + i), _mm256_loadu_ps(p2 + i + 8)));
        a3 = _mm256_add_ps(a3, _mm256_add_ps(_mm256_loadu_ps(p3 + i), _mm256_loadu_ps(p3 + i + 8)));
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    float out[8];
    _mm256_storeu_ps(out, s);
    float t = out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
    for (int64_t i = 4 * q; i < n; i++)
        t += p[i];
    return t;
}

static void job_read(void *arg, int tid, int nt) {
    bw_arg *a = arg;
    int64_t b, e;
    split(a->n, tid, nt, 1024, &b, &e);
    a->sink[tid] = read_sum_avx2(a->src + b, e - b);
}

static void job_memcpy(void *arg, int tid, int nt) {
    bw_arg *a = arg;
    int64_t b, e;
    split(a->n, tid, nt, 1024, &b, &e);
    memcpy(a->dst + b, a->src + b, sizeof(float) * (size_t)(e - b));
}

typedef struct {
    const float *w;
    const float *x;
    float *y;
    int64_t rows, cols;
} f32gemv_arg;

/* f32 GEMV baseline, 4 rows at a time, 2 accumulators per row. */
__attribute__((target("avx2,fma"))) static void
f32_gemv_avx2(const float *w, int64_t rows, int64_t cols, const float *x, float *y) {
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *w0 = w + r * cols, *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
        __m256 a[8];
        for (int i = 0; i < 8; i++)
            a[i] = _mm256_setzero_ps();
        int64_t c = 0;
        for (; c + 16 <= cols; c += 16) {
            __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);
            a[0] = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + c), x0, a[0]);
            a[1] = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + c + 8), x1, a[1]);
            a[2] = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + c), x0, a[2]);
            a[3] = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + c + 8), x1, a[3]);
            a[4] = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + c), x0, a[4]);
            a[5] = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + c + 8), x1, a[5]);
            a[6] = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + c), x0, a[6]);
            a[7] = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + c + 8), x1, a[7]);
        }
        for (int i = 0; i < 4; i++) {
            float t[8];
            _mm256_storeu_ps(t, _mm256_add_ps(a[2 * i], a[2 * i + 1]));
            float s = t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
            for (int64_t k = c; k < cols; k++)
                s += w[(r + i) * cols + k] * x[k];
            y[r + i] = s;
        }
    }
    for (; r < rows; r++) {
        float s = 0;
        for (int64_t c = 0; c < cols; c++)
            s += w[r * cols + c] * x[c];
        y[r] = s;
    }
}

static void job_f32_gemv(void *arg, int tid, int nt) {
    f32gemv_arg *a = arg;
    int64_t b, e;
    split(a->rows, tid, nt, 4, &b, &e);
    f32_gemv_avx2(a->w + b * a->cols, e - b, a->cols, a->x, a->y + b);
}

static void job_onednn_gemv(void *arg, int tid, int nt) {
    f32gemv_arg *a = arg;
    int64_t b, e;
    split(a->rows, tid, nt, 4, &b, &e);
    /* y[1 x n] = x[1 x K] * W^T, W stored n x K row-major */
    dnnl_sgemm('N', 'T', 1, e - b, a->cols, 1.0f, a->x, a->cols, a->w + b * a->cols, a->cols, 0.0f,
               a->y + b, e - b);
}

/* Independent vaddps chains: adds per second of one core (the FWHT bound). */
#define PQ_ADD12(op) op(0) op(1) op(2) op(3) op(4) op(5) op(6) op(7) op(8) op(9) op(10) op(11)
__attribute__((target("avx2"))) static double peak_add_rate(void) {
#define PQ_DECL(i) __m256 a##i = _mm256_set1_ps((float)i);
#define PQ_ADD(i) a##i = _mm256_add_ps(a##i, d);
#define PQ_SUM(i) t = _mm256_add_ps(t, a##i);
    PQ_ADD12(PQ_DECL)
    const __m256 d = _mm256_set1_ps(1e-7f);
    const long iters = 5000000;
    double best = 0;
    for (int s = 0; s < 5; s++) {
        double t0 = now_s();
        for (long it = 0; it < iters; it++) {
            PQ_ADD12(PQ_ADD)
            __asm__ volatile("" : "+x"(a0), "+x"(a6));
        }
        double rate = 96.0 * (double)iters / (now_s() - t0);
        if (rate > best) best = rate;
    }
    __m256 t = _mm256_setzero_ps();
    PQ_ADD12(PQ_SUM)
    float out[8];
    _mm256_storeu_ps(out, t);
    if (out[0] == 12345.0f) printf("!");
    return best;
#undef PQ_DECL
#undef PQ_ADD
#undef PQ_SUM
}

/* ---- packed-kernel jobs ------------------------------------------------------------------- */

typedef struct {
    const pq_qkernels *k;
    enum pq_qformat f;
    int64_t rows, cols, group;
    const float *w;         /* rows x cols f32 */
    const uint16_t *scales; /* rows x ngroups fixed scale words */
    uint8_t *packed;
    float *out; /* dequantize output */
    const float *x;
    float *y;
    size_t row_bytes;
    int64_t ngroups;
} q_arg;

static void job_quantize(void *arg, int tid, int nt) {
    q_arg *a = arg;
    int64_t b, e;
    split(a->rows, tid, nt, 1, &b, &e);
    for (int64_t r = b; r < e; r++)
        a->k->quantize_row(a->f, a->w + r * a->cols, a->cols, a->group, a->scales + r * a->ngroups,
                           a->packed + (size_t)r * a->row_bytes);
}

static void job_dequantize(void *arg, int tid, int nt) {
    q_arg *a = arg;
    int64_t b, e;
    split(a->rows, tid, nt, 1, &b, &e);
    for (int64_t r = b; r < e; r++)
        a->k->dequantize_row(a->f, a->packed + (size_t)r * a->row_bytes, a->cols, a->group,
                             a->out + r * a->cols);
}

static void job_qgemv(void *arg, int tid, int nt) {
    q_arg *a = arg;
    int64_t b, e;
    split(a->rows, tid, nt, 4, &b, &e);
    a->k->gemv(a->f, a->packed + (size_t)b * a->row_bytes, e - b, a->cols, a->group, a->x,
               a->y + b);
}

typedef struct {
    q_arg q;
    enum pq_status st;
} mse_arg;

static void job_quantize_mse(void *arg, int tid, int nt) {
    mse_arg *a = arg;
    int64_t b, e;
    split(a->q.rows, tid, nt, 1, &b, &e);
    if (e > b)
        a->st = pq_quantize_matrix("bench", a->q.w + b * a->q.cols, e - b, a->q.cols, a->q.f,
                                   a->q.group, PQ_CALIB_MSE, NULL,
                                   a->q.packed + (size_t)b * a->q.row_bytes, NULL);
}

typedef struct {
    const pq_qkernels *k;
    float *x;
    int64_t rows, n;
} fwht_arg;

static void job_fwht(void *arg, int tid, int nt) {
    fwht_arg *a = arg;
    int64_t b, e;
    split(a->rows, tid, nt, 1, &b, &e);
    a->k->fwht_rows(a->x + b * a->n, e - b, a->n, 0.015625f);
}

/* ---- report ------------------------------------------------------------------------------- */

static void row(const char *what, int thr, double sec, double gbytes, const char *extra) {
    printf("  %-34s %d  %9.3f ms (min %8.3f, cpu %8.3f)  %7.2f GB/s  %s\n", what, thr, 1e3 * sec,
           1e3 * g_min, 1e3 * g_cpu, gbytes / sec, extra);
}

static void bench_shape(int64_t rows, int64_t cols, const pq_qkernels *best) {
    const int64_t group = 256;
    int64_t n = rows * cols;
    double fbytes = 4.0 * (double)n;
    printf("\nshape %lld x %lld (f32 %.0f MB), group %lld, kernels %s\n", (long long)rows,
           (long long)cols, fbytes / 1e6, (long long)group, best->isa);
    float *w = pq_malloc_aligned(sizeof(float) * (size_t)n);
    float *scratch = pq_malloc_aligned(sizeof(float) * (size_t)n);
    float *x = pq_malloc_aligned(sizeof(float) * (size_t)cols);
    float *y = pq_malloc_aligned(sizeof(float) * (size_t)rows);
    if (!w || !scratch || !x || !y) {
        printf("  out of memory, shape skipped\n");
        goto done;
    }
    uint64_t s = 88172645463325252ULL;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        w[i] = (float)((int64_t)(s >> 40) - (1 << 23)) * 0x1p-26f; /* ~ +-0.125 */
    }
    memset(scratch, 0, sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < cols; i++)
        x[i] = (float)((i * 7919) % 200 - 100) * 0.01f;

    double rd[PQ_NTHREADS_MAX + 1], f32v[PQ_NTHREADS_MAX + 1], dnnlv[PQ_NTHREADS_MAX + 1];
    double rd_cpu[PQ_NTHREADS_MAX + 1], f32v_cpu[PQ_NTHREADS_MAX + 1]; /* same, from CPU time */
    char extra[256];
    for (int thr = 1; thr <= PQ_NTHREADS_MAX; thr++) {
        bw_arg ba = {.src = w, .dst = scratch, .n = n};
        double t = time_job(job_read, &ba, thr, g_samples);
        rd[thr] = fbytes / t;
        rd_cpu[thr] = fbytes / g_cpu;
        row("read bandwidth (AVX2 sum)", thr, t, fbytes / 1e9, "");
        t = time_job(job_memcpy, &ba, thr, g_samples);
        row("memcpy (bytes copied)", thr, t, fbytes / 1e9, "");
        f32gemv_arg fa = {.w = w, .x = x, .y = y, .rows = rows, .cols = cols};
        t = time_job(job_f32_gemv, &fa, thr, g_samples);
        f32v[thr] = t;
        f32v_cpu[thr] = g_cpu;
        snprintf(extra, sizeof extra, "%6.2f Gw/s  %3.0f%% of read BW", (double)n / t / 1e9,
                 100.0 * fbytes / t / rd[thr]);
        row("gemv f32 (own AVX2)", thr, t, fbytes / 1e9, extra);
        t = time_job(job_onednn_gemv, &fa, thr, g_samples);
        dnnlv[thr] = t;
        snprintf(extra, sizeof extra, "%6.2f Gw/s  %3.0f%% of read BW", (double)n / t / 1e9,
                 100.0 * fbytes / t / rd[thr]);
        row("gemv f32 (oneDNN sgemm M=1)", thr, t, fbytes / 1e9, extra);
    }

    const enum pq_qformat fmts[2] = {PQ_QFORMAT_PIQ3, PQ_QFORMAT_PIQ2};
    for (int fi = 0; fi < 2; fi++) {
        enum pq_qformat f = fmts[fi];
        int64_t ngroups = (cols + group - 1) / group;
        size_t row_bytes = pq_packed_row_bytes(f, cols, group);
        double pbytes = (double)row_bytes * (double)rows;
        uint8_t *packed = pq_malloc_aligned(row_bytes * (size_t)rows);
        uint16_t *scales = pq_malloc(sizeof(uint16_t) * (size_t)(rows * ngroups));
        if (!packed || !scales) {
            printf("  out of memory\n");
            pq_free(packed);
            pq_free(scales);
            continue;
        }
        /* fixed alpha: absmax rule computed once outside the timing */
        for (int64_t r = 0; r < rows; r++)
            for (int64_t g = 0; g < ngroups; g++) {
                int64_t c0 = g * group, len = cols - c0 < group ? cols - c0 : group;
                scales[r * ngroups + g] =
                    pq_calib_group_scale(f, PQ_CALIB_ABSMAX, w + r * cols + c0, NULL, len);
            }
        printf(" %s (%.4f bits/weight, packed %.1f MB)\n", pq_qformat_name(f),
               8.0 * pbytes / (double)n, pbytes / 1e6);
        const pq_qkernels *ks[2] = {&pq_qkernels_scalar, best};
        for (int ki = 0; ki < 2; ki++) {
            const pq_qkernels *k = ks[ki];
            if (ki == 1 && k == ks[0]) break;
            int big = n > ((int64_t)1 << 25);
            for (int thr = 1; thr <= PQ_NTHREADS_MAX; thr++) {
                if (k == &pq_qkernels_scalar && (thr > 1 || big))
                    continue; /* reference: 1 thr, small */
                q_arg qa = {.k = k,
                            .f = f,
                            .rows = rows,
                            .cols = cols,
                            .group = group,
                            .w = w,
                            .scales = scales,
                            .packed = packed,
                            .out = scratch,
                            .x = x,
                            .y = y,
                            .row_bytes = row_bytes,
                            .ngroups = ngroups};
                char what[96];
                double t = time_job(job_quantize, &qa, thr, big ? 5 : g_samples);
                snprintf(what, sizeof what, "quantize fixed alpha [%s]", k->isa);
                snprintf(extra, sizeof extra, "(GB/s of f32 input; target >= 2)");
                row(what, thr, t, fbytes / 1e9, extra);
                t = time_job(job_dequantize, &qa, thr, big ? 5 : g_samples);
                snprintf(what, sizeof what, "dequantize [%s]", k->isa);
                row(what, thr, t, fbytes / 1e9, "(GB/s of f32 output)");
                t = time_job(job_qgemv, &qa, thr, g_samples);
                snprintf(what, sizeof what, "gemv fused %s [%s]", pq_qformat_name(f), k->isa);
                snprintf(extra, sizeof extra,
                         "%6.2f Gw/s  %3.0f%% of read BW  x%.2f vs f32 own  x%.2f vs oneDNN"
                         "  [cpu: %3.0f%% of read BW, x%.2f vs f32 own]",
                         (double)n / t / 1e9, 100.0 * pbytes / t / rd[thr], f32v[thr] / t,
                         dnnlv[thr] / t, 100.0 * pbytes / g_cpu / rd_cpu[thr],
                         f32v_cpu[thr] / g_cpu);
                row(what, thr, t, pbytes / 1e9, extra);
            }
        }
        /* mse calibration on a slice of rows (AVX2 search, bit-identical to the scalar definition;
         * PIQC_ISA=scalar times the definition itself) */
        {
            int64_t mrows = rows < 128 ? rows : 128;
            mse_arg ma = {.q = {.f = f,
                                .rows = mrows,
                                .cols = cols,
                                .group = group,
                                .w = w,
                                .packed = packed,
                                .row_bytes = row_bytes}};
            double t = time_job(job_quantize_mse, &ma, 1, 5);
            snprintf(extra, sizeof extra, "%.2f MB/s of f32 input (%lld rows; status %s)",
                     4.0 * (double)(mrows * cols) / t / 1e6, (long long)mrows,
                     pq_status_name(ma.st));
            char what[96];
            snprintf(what, sizeof what, "quantize mse calibration [%s]",
                     best == &pq_qkernels_scalar ? "scalar" : "avx2");
            row(what, 1, t, 4.0 * (double)(mrows * cols) / 1e9, extra);
        }
        pq_free(packed);
        pq_free(scales);
    }
done:
    pq_free(w);
    pq_free(scratch);
    pq_free(x);
    pq_free(y);
}

/* ---- GEMV bandwidth table: f32 vs f32-activation PiQ vs int8-activation PiQ --------------- */

typedef struct {
    const pq_piq_i8_kernels *k;
    enum pq_qformat f;
    const uint8_t *packed;
    int64_t rows, cols, group;
    size_t row_bytes;
    const float *x;
    float *y;
    void *abuf[PQ_NTHREADS_MAX]; /* one quantized-activation buffer per thread */
} i8_arg;

/* Each thread quantizes all of x (what the serial quantization before the threaded rows costs
 * in wall time) then runs its rows. */
static void job_i8gemv(void *arg, int tid, int nt) {
    i8_arg *a = arg;
    int64_t b, e;
    split(a->rows, tid, nt, 32, &b, &e);
    pq_piq_i8_act act;
    pq_piq_i8_act_init(&act, a->cols, a->group, a->abuf[tid]);
    pq_piq_i8_quantize(a->x, &act);
    a->k->gemv(a->f, a->packed + (size_t)b * a->row_bytes, e - b, a->cols, a->group, &act,
               a->y + b);
}

/* One kernel of the GEMV table: its job, the bytes it reads (for GB/s), calls per sample, and
 * the samples of the current thread count. */
typedef struct {
    char what[64];
    job_fn fn;
    void *arg;
    double bytes;
    int kind; /* 0 read baseline, 1 memcpy, 2 f32 own, 3 f32 oneDNN, 4 packed GEMV, 5 read of a
               * packed format's byte count */
    int reps;
    double t[32], c[32];
    int ref; /* packed GEMV: the kind-5 job reading as many bytes (0: none) */
} gemv_job;

static double median_of(double *v, int n) {
    double tmp[32];
    memcpy(tmp, v, sizeof(double) * (size_t)n);
    qsort(tmp, (size_t)n, sizeof(double), cmp_double);
    return tmp[n / 2];
}

static double min_of(const double *v, int n) {
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

/* Samples every job in turn (one sample of each, then the next round), so that all kernels of a
 * thread count see the same load on a shared machine; medians and fastest samples per job. */
static void gemv_table_run(gemv_job *jobs, int nj, int thr, int samples) {
    if (samples > 32) samples = 32;
    for (int j = 0; j < nj; j++) {
        run_job(jobs[j].fn, jobs[j].arg, thr); /* warm-up */
        double t0 = now_s();
        run_job(jobs[j].fn, jobs[j].arg, thr);
        double one = now_s() - t0;
        jobs[j].reps = one > 0.02 ? 1 : (int)(0.02 / (one > 1e-7 ? one : 1e-7)) + 1;
    }
    for (int sidx = 0; sidx < samples; sidx++)
        for (int j = 0; j < nj; j++) {
            double c0 = cpu_s(), t0 = now_s();
            for (int r = 0; r < jobs[j].reps; r++)
                run_job(jobs[j].fn, jobs[j].arg, thr);
            jobs[j].t[sidx] = (now_s() - t0) / jobs[j].reps;
            jobs[j].c[sidx] = (cpu_s() - c0) / jobs[j].reps;
        }
    double rd = 0, rd_min = 0, own = 0, dnnl = 0;
    for (int j = 0; j < nj; j++) {
        double t = median_of(jobs[j].t, samples);
        if (jobs[j].kind == 0) {
            rd = jobs[j].bytes / t;
            rd_min = jobs[j].bytes / min_of(jobs[j].t, samples);
        }
        if (jobs[j].kind == 2) own = t;
        if (jobs[j].kind == 3) dnnl = t;
    }
    for (int j = 0; j < nj; j++) {
        double t = median_of(jobs[j].t, samples), tmin = min_of(jobs[j].t, samples);
        double c = median_of(jobs[j].c, samples);
        char ratio[64] = "- | -", same[32] = "-";
        if (jobs[j].kind >= 2 && jobs[j].kind <= 4)
            snprintf(ratio, sizeof ratio, "%.2f | %.2f", own / t, dnnl / t);
        if (jobs[j].ref > 0)
            snprintf(same, sizeof same, "%.0f%%",
                     100.0 * median_of(jobs[jobs[j].ref].t, samples) / t);
        printf("| %s | %d | %.3f | %.3f | %.3f | %.2f | %.0f%% | %.0f%% | %s | %s |\n",
               jobs[j].what, thr, 1e3 * t, 1e3 * tmin, 1e3 * c, jobs[j].bytes / t / 1e9,
               100.0 * jobs[j].bytes / t / rd, 100.0 * jobs[j].bytes / tmin / rd_min, same, ratio);
    }
}

static void bench_gemv_table(int64_t rows, int64_t cols, int samples) {
    const int64_t group = 256;
    int64_t n = rows * cols;
    double fbytes = 4.0 * (double)n;
    printf("\nGEMV bandwidth table: %lld x %lld, group %lld; %d interleaved samples per kernel "
           "(each >= 20 ms or 1 call)\n",
           (long long)rows, (long long)cols, (long long)group, samples);
    float *w = pq_malloc_aligned(sizeof(float) * (size_t)n);
    float *scratch = pq_malloc_aligned(sizeof(float) * (size_t)n);
    float *x = pq_malloc_aligned(sizeof(float) * (size_t)cols);
    float *y = pq_malloc_aligned(sizeof(float) * (size_t)rows);
    float *y2 = pq_malloc_aligned(sizeof(float) * (size_t)rows);
    const enum pq_qformat fmts[2] = {PQ_QFORMAT_PIQ3, PQ_QFORMAT_PIQ2};
    const char *i8isas[] = {"avx512", "avxvnni", "avx2"};
    int64_t ngroups = (cols + group - 1) / group;
    uint8_t *packed[2] = {NULL, NULL};
    uint16_t *scales = NULL;
    void *ab[2][2] = {{NULL, NULL}, {NULL, NULL}};
    q_arg qa[2];
    i8_arg ia[2][3];
    bw_arg rb[2];
    gemv_job jobs[16];
    int nj = 0;
    if (!w || !scratch || !x || !y || !y2) {
        printf("  out of memory, table skipped\n");
        goto done;
    }
    uint64_t s = 88172645463325252ULL;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        w[i] = (float)((int64_t)(s >> 40) - (1 << 23)) * 0x1p-26f;
    }
    memset(scratch, 0, sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < cols; i++)
        x[i] = (float)((i * 7919) % 200 - 100) * 0.01f;
    bw_arg ba = {.src = w, .dst = scratch, .n = n};
    f32gemv_arg fa = {.w = w, .x = x, .y = y, .rows = rows, .cols = cols};
    jobs[nj++] = (gemv_job){.fn = job_read, .arg = &ba, .bytes = fbytes, .kind = 0};
    snprintf(jobs[0].what, sizeof jobs[0].what, "read bandwidth (sum, %.0f MB = f32 size)",
             fbytes / 1e6);
    jobs[nj++] = (gemv_job){"memcpy (bytes copied)", job_memcpy, &ba, fbytes, 1, 0, {0}, {0}, 0};
    jobs[nj++] = (gemv_job){"f32 GEMV (own AVX2)", job_f32_gemv, &fa, fbytes, 2, 0, {0}, {0}, 0};
    jobs[nj++] =
        (gemv_job){"f32 GEMV (oneDNN sgemm M=1)", job_onednn_gemv, &fa, fbytes, 3, 0, {0}, {0}, 0};
    const pq_qkernels *best = pq_qkernels_get();
    scales = pq_malloc(sizeof(uint16_t) * (size_t)(rows * ngroups));
    if (!scales) goto done;
    for (int fi = 0; fi < 2; fi++) {
        enum pq_qformat f = fmts[fi];
        size_t row_bytes = pq_packed_row_bytes(f, cols, group);
        double pbytes = (double)row_bytes * (double)rows;
        packed[fi] = pq_malloc_aligned(row_bytes * (size_t)rows);
        ab[fi][0] = pq_malloc(pq_piq_i8_act_bytes(cols, group));
        ab[fi][1] = pq_malloc(pq_piq_i8_act_bytes(cols, group));
        if (!packed[fi] || !ab[fi][0] || !ab[fi][1]) {
            printf("  out of memory\n");
            goto done;
        }
        for (int64_t r = 0; r < rows; r++)
            for (int64_t g = 0; g < ngroups; g++) {
                int64_t c0 = g * group, len = cols - c0 < group ? cols - c0 : group;
                scales[r * ngroups + g] =
                    pq_calib_group_scale(f, PQ_CALIB_ABSMAX, w + r * cols + c0, NULL, len);
            }
        qa[fi] = (q_arg){.k = best,
                         .f = f,
                         .rows = rows,
                         .cols = cols,
                         .group = group,
                         .w = w,
                         .scales = scales,
                         .packed = packed[fi],
                         .x = x,
                         .y = y,
                         .row_bytes = row_bytes,
                         .ngroups = ngroups};
        run_job(job_quantize, &qa[fi], PQ_NTHREADS_MAX);
        printf(" %s: packed %.1f MB (%.4f bits/weight)\n", pq_qformat_name(f), pbytes / 1e6,
               8.0 * pbytes / (double)n);
        /* the same bytes read as plain floats: where the packed weights fit in the last-level
         * cache and the f32 matrix does not, this is the bandwidth they can really be read at */
        int same = nj;
        rb[fi] = (bw_arg){.src = w, .dst = scratch, .n = (int64_t)(pbytes / 4.0) / 1024 * 1024};
        jobs[nj++] =
            (gemv_job){.fn = job_read, .arg = &rb[fi], .bytes = 4.0 * (double)rb[fi].n, .kind = 5};
        snprintf(jobs[same].what, sizeof jobs[same].what, "read bandwidth (sum, %.1f MB = %s size)",
                 4.0 * (double)rb[fi].n / 1e6, pq_qformat_name(f));
        gemv_job *jf = &jobs[nj++];
        *jf = (gemv_job){.fn = job_qgemv, .arg = &qa[fi], .bytes = pbytes, .kind = 4, .ref = same};
        snprintf(jf->what, sizeof jf->what, "%s fused GEMV, f32 act [%s]", pq_qformat_name(f),
                 best->isa);
        /* the f32-activation result, to report the int8 path's deviation */
        run_job(job_qgemv, &qa[fi], 1);
        memcpy(y2, y, sizeof(float) * (size_t)rows);
        for (int ii = 0; ii < 3; ii++) {
            const pq_piq_i8_kernels *k = pq_piq_i8_kernels_for(i8isas[ii]);
            if (!k) {
                printf("  int8-activation GEMV [%s]: not available on this CPU/build\n",
                       i8isas[ii]);
                continue;
            }
            ia[fi][ii] = (i8_arg){.k = k,
                                  .f = f,
                                  .packed = packed[fi],
                                  .rows = rows,
                                  .cols = cols,
                                  .group = group,
                                  .row_bytes = row_bytes,
                                  .x = x,
                                  .y = y,
                                  .abuf = {ab[fi][0], ab[fi][1]}};
            gemv_job *ji = &jobs[nj++];
            *ji = (gemv_job){
                .fn = job_i8gemv, .arg = &ia[fi][ii], .bytes = pbytes, .kind = 4, .ref = same};
            snprintf(ji->what, sizeof ji->what, "%s GEMV, int8 act [%s]", pq_qformat_name(f),
                     k->isa);
            run_job(job_i8gemv, &ia[fi][ii], 1);
            double num = 0, den = 0, dot = 0, na = 0, nb = 0;
            for (int64_t r = 0; r < rows; r++) {
                num += ((double)y[r] - y2[r]) * ((double)y[r] - y2[r]);
                den += (double)y2[r] * y2[r];
                dot += (double)y[r] * y2[r];
                na += (double)y[r] * y[r];
                nb += (double)y2[r] * y2[r];
            }
            printf("  %s int8 vs f32 activations [%s]: relative L2 error %.2e, cosine %.7f\n",
                   pq_qformat_name(f), k->isa, sqrt(num / (den > 0 ? den : 1)),
                   dot / sqrt(na * nb + 1e-300));
        }
    }
    printf(
        "\nms: median wall time per call (min: fastest sample; cpu: median CPU time of the "
        "calling thread, its share of the rows at 2 threads); GB/s of weight bytes read, from "
        "the median; %% of read BW from medians (and from fastest samples); x: f32 GEMV time / "
        "this time; same-size: the time of a plain read of as many bytes as the packed weights / "
        "this "
        "time (packed weights that fit in the last-level cache read faster than the f32 matrix)\n"
        "| kernel | threads | ms | min ms | cpu ms | GB/s | %% of read BW | (fastest) "
        "| %% of same-size read | x f32 own | x oneDNN |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int thr = 1; thr <= PQ_NTHREADS_MAX; thr++)
        gemv_table_run(jobs, nj, thr, samples);
done:
    pq_free(w);
    pq_free(scratch);
    pq_free(x);
    pq_free(y);
    pq_free(y2);
    pq_free(scales);
    for (int fi = 0; fi < 2; fi++) {
        pq_free(packed[fi]);
        pq_free(ab[fi][0]);
        pq_free(ab[fi][1]);
    }
}

static void bench_fwht(void) {
    const int64_t n = 4096, rows = 64; /* 1 MB working set */
    double add_rate = peak_add_rate();
    double bound_us = 1e6 * (double)n * 12.0 / add_rate;
    printf("\nFWHT n = %lld (%lld rows per call, 1 thread); peak add rate %.1f Gadd/s -> "
           "n*log2(n) adds take %.3f us\n",
           (long long)n, (long long)rows, add_rate / 1e9, bound_us);
    float *x = pq_malloc_aligned(sizeof(float) * (size_t)(n * rows));
    for (int64_t i = 0; i < n * rows; i++)
        x[i] = (float)(i % 17) - 8.0f;
    const char *isas[] = {"scalar", "avx2", "avx512"};
    for (int i = 0; i < 3; i++) {
        const pq_qkernels *k = pq_qkernels_for(isas[i]);
        if (!k) {
            printf("  %-8s not available on this CPU\n", isas[i]);
            continue;
        }
        fwht_arg fa = {.k = k, .x = x, .rows = rows, .n = n};
        double t = time_job(job_fwht, &fa, 1, g_samples) / (double)rows;
        printf("  %-8s %8.3f us/row   x%.2f of the add bound%s\n", isas[i], 1e6 * t,
               1e6 * t / bound_us, i == 1 ? "   (target <= 2 us)" : "");
    }
    pq_free(x);
}

int main(int argc, char **argv) {
    int quick = 0, gemv_only = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            printf("usage: bench_quant [--quick | --gemv] [--samples N]\n"
                   "  --quick      only 4096x4096, 5 samples\n"
                   "  --gemv       only the GEMV bandwidth table (16384x8192, 1 and 2 threads)\n"
                   "  --samples N  timed samples per measurement (default 7; the GEMV table uses "
                   "at least 11)\n"
                   "PIQC_ISA=scalar|avx2|avx512 forces the kernel table (and the calibration "
                   "path).\n");
            return 0;
        }
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
            g_samples = 5;
        } else if (strcmp(argv[i], "--gemv") == 0) {
            gemv_only = 1;
        } else if (strcmp(argv[i], "--samples") == 0 && i + 1 < argc) {
            g_samples = atoi(argv[++i]);
            if (g_samples < 1 || g_samples > 32) {
                fprintf(stderr, "bench_quant: --samples must be 1..32\n");
                return 2;
            }
        } else {
            fprintf(stderr, "bench_quant: unknown argument '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }
    setenv("OMP_NUM_THREADS", "1", 1); /* oneDNN: one thread per caller; we split rows */
    const pq_qkernels *best = pq_qkernels_get();
    printf("bench_quant: kernels %s (avx2 %d, avx512 %d), int8-activation GEMV %s; medians of %d "
           "samples, each >= 30 ms or 1 call.\nNote: the 2 cores are shared with other jobs; "
           "numbers are noisy.\n",
           best->isa, pq_cpu_has_avx2(), pq_cpu_has_avx512(), pq_piq_i8_kernels_get()->isa,
           g_samples);
    pthread_barrier_init(&g_start, NULL, 2);
    pthread_barrier_init(&g_done, NULL, 2);
    pthread_t th;
    pthread_create(&th, NULL, worker_main, NULL);
    int table_samples = g_samples > 11 ? g_samples : 11;
    if (gemv_only) {
        bench_gemv_table(16384, 8192, table_samples);
    } else {
        bench_fwht();
        bench_shape(4096, 4096, best);
        if (!quick) {
            bench_shape(16384, 8192, best);
            bench_gemv_table(16384, 8192, table_samples);
        }
    }
    g_quit = 1;
    pthread_barrier_wait(&g_start);
    pthread_join(th, NULL);
    return 0;
}
