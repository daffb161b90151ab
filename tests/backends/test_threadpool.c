/* Tests of piqc's thread pool (backends/threadpool.h): every index in exactly one chunk for many
 * sizes and thread counts, the documented split, repeated and nested calls, concurrent callers,
 * shutdown and restart; and the threaded packed ops (PiQ3/PiQ2, int8, f16 PackedMatMul and
 * PackedConv) giving the same bytes at 1, 2 and 3 threads on every ISA. No timings asserted. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "backends/onednn/onednn.h"
#include "backends/packed_wide.h"
#include "backends/piqc_ops.h"
#include "backends/quant/quant.h"
#include "backends/threadpool.h"
#include "piqc_harness.h"
#include "skip_note.h"

/* ---- pool ---- */

#define MAX_CALLS 64

typedef struct cover {
    int64_t n;
    _Atomic int *hits;
    _Atomic int calls;
    int64_t begins[MAX_CALLS], ends[MAX_CALLS];
} cover;

static void cover_fn(void *vctx, int64_t b, int64_t e) {
    cover *c = vctx;
    cr_assert(b < e && b >= 0 && e <= c->n, "chunk [%lld, %lld) of %lld", (long long)b,
              (long long)e, (long long)c->n);
    int k = atomic_fetch_add(&c->calls, 1);
    if (k < MAX_CALLS) {
        c->begins[k] = b;
        c->ends[k] = e;
    }
    for (int64_t i = b; i < e; i++)
        atomic_fetch_add(&c->hits[i], 1);
}

/* pq_parallel_for(nt, n) calls fn once per documented chunk and hits every index once. */
static void check_cover(int nt, int64_t n) {
    cover c = {.n = n};
    c.hits = calloc((size_t)(n > 0 ? n : 1), sizeof *c.hits);
    cr_assert_not_null(c.hits);
    pq_parallel_for(nt, n, cover_fn, &c);
    int64_t chunks = pq_parallel_chunks(nt, n);
    cr_assert_eq(atomic_load(&c.calls), chunks, "nt %d n %lld: %d calls, expected %lld", nt,
                 (long long)n, atomic_load(&c.calls), (long long)chunks);
    for (int64_t i = 0; i < n; i++)
        cr_assert_eq(atomic_load(&c.hits[i]), 1, "nt %d n %lld: index %lld hit %d times", nt,
                     (long long)n, (long long)i, atomic_load(&c.hits[i]));
    /* the chunks are exactly pq_parallel_range's */
    for (int64_t k = 0; k < chunks && k < MAX_CALLS; k++) {
        int64_t b = c.begins[k], e = c.ends[k], i;
        for (i = 0; i < chunks; i++) {
            int64_t rb, re;
            pq_parallel_range(n, chunks, i, &rb, &re);
            if (rb == b && re == e) break;
        }
        cr_assert(i < chunks, "nt %d n %lld: chunk [%lld, %lld) is not a documented one", nt,
                  (long long)n, (long long)b, (long long)e);
    }
    free(c.hits);
}

Test(threadpool, every_index_once_many_sizes_and_thread_counts) {
    static const int64_t sizes[] = {0, 1, 2, 3, 4, 5, 7, 64, 1000, 100003};
    static const int nts[] = {-1, 0, 1, 2, 3, 4, 8, 63};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        for (size_t j = 0; j < sizeof nts / sizeof *nts; j++)
            check_cover(nts[j], sizes[i]);
}

Test(threadpool, range_split_is_contiguous_and_balanced) {
    static const int64_t sizes[] = {0, 1, 5, 6, 7, 1000, (int64_t)1 << 40};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (int64_t k = 1; k <= 9; k++) {
            int64_t n = sizes[s], prev = 0, lo = INT64_MAX, hi = 0;
            for (int64_t i = 0; i < k; i++) {
                int64_t b, e;
                pq_parallel_range(n, k, i, &b, &e);
                cr_assert_eq(b, prev, "n %lld k %lld chunk %lld", (long long)n, (long long)k,
                             (long long)i);
                lo = e - b < lo ? e - b : lo;
                hi = e - b > hi ? e - b : hi;
                prev = e;
            }
            cr_assert_eq(prev, n);
            cr_assert(hi - lo <= 1);
        }
    cr_assert_eq(pq_parallel_chunks(2, 0), 0);
    cr_assert_eq(pq_parallel_chunks(0, 5), 1);
    cr_assert_eq(pq_parallel_chunks(3, 2), 2);
    cr_assert_eq(pq_parallel_chunks(2, 100), 2);
}

static void sum_fn(void *vctx, int64_t b, int64_t e) {
    _Atomic int64_t *s = vctx;
    int64_t t = 0;
    for (int64_t i = b; i < e; i++)
        t += i;
    atomic_fetch_add(s, t);
}

Test(threadpool, repeated_calls_and_changing_thread_counts) {
    for (int r = 0; r < 3000; r++) {
        _Atomic int64_t s = 0;
        int64_t n = 1 + r % 97;
        pq_parallel_for(1 + r % 4, n, sum_fn, &s);
        cr_assert_eq(atomic_load(&s), n * (n - 1) / 2, "round %d", r);
    }
    cr_assert(pq_threadpool_workers() >= 1 && pq_threadpool_workers() <= 3,
              "%d workers after calls with up to 4 threads", pq_threadpool_workers());
}

typedef struct nest {
    pthread_t outer[MAX_CALLS];
    _Atomic int n_outer;
    _Atomic int inner_hits[40];
    _Atomic int inner_foreign; /* inner chunks run on another thread than their caller */
} nest;

typedef struct nest_inner {
    nest *ns;
    pthread_t self;
    int64_t base;
} nest_inner;

static void nest_inner_fn(void *vctx, int64_t b, int64_t e) {
    nest_inner *in = vctx;
    if (!pthread_equal(pthread_self(), in->self)) atomic_fetch_add(&in->ns->inner_foreign, 1);
    for (int64_t i = b; i < e; i++)
        atomic_fetch_add(&in->ns->inner_hits[in->base + i], 1);
}

static void nest_outer_fn(void *vctx, int64_t b, int64_t e) {
    nest *ns = vctx;
    for (int64_t i = b; i < e; i++) {
        nest_inner in = {ns, pthread_self(), i * 10};
        pq_parallel_for(3, 10, nest_inner_fn, &in);
    }
}

Test(threadpool, nested_call_runs_inline_on_the_calling_thread) {
    nest ns = {0};
    pq_parallel_for(2, 4, nest_outer_fn, &ns);
    for (int i = 0; i < 40; i++)
        cr_assert_eq(atomic_load(&ns.inner_hits[i]), 1, "index %d", i);
    cr_assert_eq(atomic_load(&ns.inner_foreign), 0, "a nested chunk left its caller's thread");
}

static void *caller_main(void *arg) {
    int *ok = arg;
    for (int r = 0; r < 500; r++) {
        _Atomic int64_t s = 0;
        pq_parallel_for(2, 1000, sum_fn, &s);
        if (atomic_load(&s) != 1000 * 999 / 2) return NULL;
    }
    *ok = 1;
    return NULL;
}

Test(threadpool, concurrent_callers_each_get_every_index) {
    pthread_t th[3];
    int ok[3] = {0};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, caller_main, &ok[i]), 0);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        cr_assert(ok[i], "caller %d saw a wrong sum", i);
    }
}

/* The jobs on oneDNN's OpenMP team (the runner sessions install): the same chunks, every index
 * once, nested calls inline on their thread, concurrent callers each with a team of their own. */
Test(threadpool, openmp_runner_same_contract) {
    pq_onednn_parallel_install(1);
    pq_onednn_parallel_force(1);
    static const int64_t sizes[] = {0, 1, 2, 3, 7, 64, 1000, 100003};
    static const int nts[] = {1, 2, 3, 4, 8};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        for (size_t j = 0; j < sizeof nts / sizeof *nts; j++)
            check_cover(nts[j], sizes[i]);
    nest ns = {0};
    pq_parallel_for(2, 4, nest_outer_fn, &ns);
    for (int i = 0; i < 40; i++)
        cr_assert_eq(atomic_load(&ns.inner_hits[i]), 1, "index %d", i);
    cr_assert_eq(atomic_load(&ns.inner_foreign), 0, "a nested chunk left its caller's thread");
    pthread_t th[3];
    int ok[3] = {0};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, caller_main, &ok[i]), 0);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        cr_assert(ok[i], "caller %d saw a wrong sum", i);
    }
    pq_onednn_parallel_force(0); /* declined: the pool again */
    check_cover(3, 1000);
    pq_onednn_parallel_force(-1);
    pq_parallel_set_runner(NULL);
}

Test(threadpool, shutdown_then_restart) {
    _Atomic int64_t s = 0;
    pq_parallel_for(2, 100, sum_fn, &s);
    cr_assert_eq(atomic_load(&s), 4950);
    pq_threadpool_shutdown();
    cr_assert_eq(pq_threadpool_workers(), 0);
    pq_threadpool_shutdown(); /* twice is harmless */
    atomic_store(&s, 0);
    pq_parallel_for(3, 100, sum_fn, &s);
    cr_assert_eq(atomic_load(&s), 4950);
    cr_assert_geq(pq_threadpool_workers(), 1);
    cr_assert_eq(pq_parallel_chunks(1, 100), 1);
}

/* ---- packed ops: same bytes at 1, 2, 3 threads ---- */

static int g_nt;
static const pq_qkernels *g_qk;
static const char *g_wisa;

static enum pq_status run_pmm(const pq_kernel_args *a) {
    pq_kernel_args b = *a;
    b.n_threads = g_nt;
    return g_qk ? pq_piqc_packed_matmul_run(g_qk, &b) : pq_packed_wide_matmul_run(g_wisa, &b);
}
static enum pq_status run_pconv(const pq_kernel_args *a) {
    pq_kernel_args b = *a;
    b.n_threads = g_nt;
    return g_qk ? pq_piqc_packed_conv_run(g_qk, &b) : pq_packed_wide_conv_run(g_wisa, &b);
}

static const char *const k_isas[] = {"scalar", "avx2", "avx512"};

/* kind 0: PiQ3, 1: PiQ2, 2: int8, 3: f16. Selects the kernel table of ISA isa; false (and a
 * visible note) when this CPU/build lacks it. */
static bool use(int kind, const char *isa) {
    g_qk = NULL;
    g_wisa = NULL;
    if (kind < 2) {
        g_qk = pq_qkernels_for(isa);
        if (!g_qk) PQ_TEST_NOTE("ISA %s not available: skipped", isa);
        return g_qk != NULL;
    }
    g_wisa = isa;
    /* packed_wide falls back to scalar for an unsupported ISA: still a valid run */
    return true;
}

/* The weight inputs of a packed node of kind over rows x cols, and its attributes. */
typedef struct wt {
    pq_tensor *w, *s;
} wt;

static uint32_t lcg(uint32_t *s) {
    return *s = *s * 1664525u + 1013904223u;
}

static wt make_weight(int kind, int64_t rows, int64_t cols, uint32_t seed) {
    wt r = {0};
    int64_t n[1] = {rows * cols}, nr[1] = {rows};
    if (kind < 2) {
        enum pq_qformat f = kind == 0 ? PQ_QFORMAT_PIQ3 : PQ_QFORMAT_PIQ2;
        int64_t d[2] = {rows, cols};
        pq_tensor *w = pq_tp_rand(2, d, seed, 0.5f);
        int64_t nd[1] = {(int64_t)pq_packed_bytes(f, rows, cols, 64)};
        r.w = pq_tp_tensor(PQ_DTYPE_U8, 1, nd);
        pq_error err;
        cr_assert_eq(pq_quantize_matrix("w", w->data, rows, cols, f, 64, PQ_CALIB_MSE, NULL,
                                        r.w->data, &err),
                     PQ_OK, "%s", err.msg);
        pq_tensor_destroy(w);
    } else if (kind == 2) {
        r.w = pq_tp_tensor(PQ_DTYPE_I8, 1, n);
        r.s = pq_tp_rand(1, nr, seed + 1, 0.01f);
        int8_t *q = r.w->data;
        for (int64_t i = 0; i < rows * cols; i++)
            q[i] = (int8_t)((int)(lcg(&seed) % 255) - 127);
    } else {
        r.w = pq_tp_tensor(PQ_DTYPE_F16, 1, n);
        uint16_t *h = r.w->data;
        for (int64_t i = 0; i < rows * cols; i++)
            h[i] = pq_f32_to_f16((float)((int)(lcg(&seed) >> 20) - 2048) / 4096.0f);
    }
    return r;
}

static void set_attrs(pq_tp *t, int kind, int64_t rows, int64_t cols) {
    static const char *const names[] = {"piq3", "piq2", "int8", "f16"};
    pq_tp_str(t, "format", names[kind]);
    if (kind < 2) pq_tp_int(t, "qgroup", 64);
    pq_tp_int(t, "rows", rows);
    pq_tp_int(t, "cols", cols);
}

/* Runs t at 1, 2 and 3 threads with every ISA table; the outputs must be the same bytes. */
static void same_bytes_at_1_2_3(pq_tp *t, pq_kernel_fn fn, int kind, const char *what) {
    for (int i = 0; i < 3; i++) {
        if (!use(kind, k_isas[i])) continue;
        pq_tensor *y[3];
        for (int nt = 1; nt <= 3; nt++) {
            pq_error err;
            g_nt = nt;
            cr_assert_eq(pq_tp_run(t, fn, &y[nt - 1], &err), PQ_OK, "%s %s nt %d: %s", what,
                         k_isas[i], nt, err.msg);
        }
        for (int nt = 2; nt <= 3; nt++) {
            cr_assert_eq(y[nt - 1]->nbytes, y[0]->nbytes);
            const uint32_t *a = y[0]->data, *b = y[nt - 1]->data;
            for (size_t e = 0; e < y[0]->nbytes / 4; e++)
                cr_assert_eq(a[e], b[e], "%s %s: %d threads differ at %zu: %08x vs %08x", what,
                             k_isas[i], nt, e, a[e], b[e]);
        }
        /* not vacuous: every output was written (poison 0xFFFFFFFF is a NaN no kernel makes) */
        const uint32_t *a = y[0]->data;
        for (size_t e = 0; e < y[0]->nbytes / 4; e++)
            cr_assert_neq(a[e], 0xFFFFFFFFu, "%s %s: element %zu not written", what, k_isas[i], e);
        for (int nt = 0; nt < 3; nt++)
            pq_tensor_destroy(y[nt]);
    }
}

static void check_matmul(int kind, int64_t M, int64_t rows, int64_t cols, bool bias,
                         const char *act) {
    wt w = make_weight(kind, rows, cols, (uint32_t)(rows * 7 + cols + M));
    int64_t xd[2] = {M, cols}, bd[1] = {rows};
    pq_tensor *x = pq_tp_rand(2, xd, 5, 1.0f);
    pq_tensor *b = bias ? pq_tp_rand(1, bd, 6, 1.0f) : NULL;
    const pq_tensor *in[4] = {x, w.w, b, w.s};
    pq_tp t = pq_tp_node(PQ_OP_PACKED_MAT_MUL, in, kind == 2 ? 4 : 3);
    set_attrs(&t, kind, rows, cols);
    if (act) pq_tp_str(&t, "activation", act);
    char what[96];
    snprintf(what, sizeof what, "matmul kind %d M %lld %lld x %lld", kind, (long long)M,
             (long long)rows, (long long)cols);
    same_bytes_at_1_2_3(&t, run_pmm, kind, what);
    pq_tp_free(&t);
    pq_tensor_destroy(x);
    pq_tensor_destroy(b);
    pq_tensor_destroy(w.w);
    pq_tensor_destroy(w.s);
}

Test(threadpool, packed_matmul_same_bytes_at_1_2_3_threads) {
    for (int kind = 0; kind < 4; kind++) {
        /* gemv: enough work for 3 threads, rows not a multiple of the 32-row unit */
        check_matmul(kind, 1, 517, 777, true, "Gelu");
        check_matmul(kind, 1, 70, 3000, false, NULL); /* 3 units of 32 rows, last one short */
        /* gemm: small M, M across the 256-row scratch blocks (300 = 2 x 150, 513 = 3 x 171) */
        static const int64_t ms[] = {2, 3, 7, 300, 513};
        for (size_t i = 0; i < sizeof ms / sizeof *ms; i++)
            check_matmul(kind, ms[i], 200, 300, i % 2 == 0, i == 3 ? "Relu" : NULL);
    }
    cr_assert_geq(pq_threadpool_workers(), 1, "the threaded runs never started a worker");
}

typedef struct conv_case {
    int64_t n, c, m, group, h, w, k, s, p;
} conv_case;

static void check_conv(int kind, const conv_case *cc) {
    int64_t cg = cc->c / cc->group, cols = cg * cc->k * cc->k;
    wt w = make_weight(kind, cc->m, cols, (uint32_t)(cc->m * 3 + cols));
    int64_t xd[4] = {cc->n, cc->c, cc->h, cc->w}, bd[1] = {cc->m};
    pq_tensor *x = pq_tp_rand(4, xd, 9, 1.0f);
    pq_tensor *b = pq_tp_rand(1, bd, 10, 1.0f);
    const pq_tensor *in[4] = {x, w.w, b, w.s};
    pq_tp t = pq_tp_node(PQ_OP_PACKED_CONV, in, kind == 2 ? 4 : 3);
    set_attrs(&t, kind, cc->m, cols);
    int64_t ks[2] = {cc->k, cc->k}, st[2] = {cc->s, cc->s}, pads[4] = {cc->p, cc->p, cc->p, cc->p};
    pq_tp_ints(&t, "kernel_shape", ks, 2);
    pq_tp_ints(&t, "strides", st, 2);
    pq_tp_ints(&t, "pads", pads, 4);
    pq_tp_int(&t, "group", cc->group);
    pq_tp_str(&t, "activation", "Relu");
    char what[96];
    snprintf(what, sizeof what, "conv kind %d n %lld c %lld m %lld g %lld %lldx%lld", kind,
             (long long)cc->n, (long long)cc->c, (long long)cc->m, (long long)cc->group,
             (long long)cc->h, (long long)cc->w);
    same_bytes_at_1_2_3(&t, run_pconv, kind, what);
    pq_tp_free(&t);
    pq_tensor_destroy(x);
    pq_tensor_destroy(b);
    pq_tensor_destroy(w.w);
    pq_tensor_destroy(w.s);
}

Test(threadpool, packed_conv_same_bytes_at_1_2_3_threads) {
    static const conv_case cases[] = {
        /* cols 288: tiles of 227 positions over 600 (3 tiles) */
        {6, 32, 24, 1, 10, 10, 3, 1, 1},
        /* 5 x 91 = 455 = 2 x 227 + 1: the last tile has one position (gemv) */
        {5, 32, 24, 1, 7, 13, 3, 1, 1},
        /* groups, stride 2, no padding (unpadded im2col path for wide; padded for PiQ) */
        {4, 16, 32, 2, 17, 15, 3, 2, 0},
        /* many small images: tiles span images */
        {40, 8, 16, 1, 8, 8, 3, 1, 1},
    };
    for (int kind = 0; kind < 4; kind++)
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
            check_conv(kind, &cases[i]);
}
