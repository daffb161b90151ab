/* Fast f32 Add/Sub/Mul/Div, Softmax, LayerNormalization and GlobalAveragePool
 * (backends/eltwise_fast.c) against the reference kernels for every ISA the CPU runs (scalar, avx2,
 * avx512; others skipped visibly): binary ops bit for bit, Softmax / LayerNorm / GlobalAveragePool
 * within the bounds of eltwise_fast.h (the scalar GlobalAveragePool bit for bit). Sizes with SIMD
 * tails, misaligned inputs and outputs, poison guards, NaN / +-inf, -inf masks and all -inf rows,
 * broadcast shapes, two threads, unsupported cases untouched, and the fast-table dispatch. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backends/eltwise_fast.h"
#include "backends/fast.h"
#include "backends/ref/ref.h"
#include "backends/ref/ref_act.h"
#include "ir/alloc.h"
#include "ir/ir.h"

#define GUARD 64
#define POISON 0xA5

static const int64_t SIZES[] = {1, 7, 8, 15, 16, 17, 255, 1000};
#define NSIZES (sizeof SIZES / sizeof SIZES[0])

static uint64_t g_s = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void) {
    g_s ^= g_s >> 12;
    g_s ^= g_s << 25;
    g_s ^= g_s >> 27;
    return g_s * 2685821657736338717ULL;
}
static float frand(float scale) {
    return ((float)(rnd() >> 40) / (float)(1 << 24) * 2.0f - 1.0f) * scale;
}

static const pq_eltwise_kernels *need(const char *isa) {
    const pq_eltwise_kernels *k = pq_eltwise_kernels_for(isa);
    if (!k) cr_skip_test("ISA %s is not available on this CPU/build: skipped", isa);
    return k;
}

/* Tensor whose data sits 4 bytes past a 64-byte boundary, with poisoned guards either side. */
typedef struct {
    pq_tensor *t;
    uint8_t *base;
    void *own;
} gt;

static gt gt_new(int rank, const int64_t *dims) {
    gt o;
    pq_error err;
    o.t = pq_tensor_create(PQ_DTYPE_F32, rank, dims, &err);
    cr_assert_not_null(o.t);
    o.base = pq_malloc(o.t->nbytes + 2 * GUARD + 4);
    cr_assert_not_null(o.base);
    memset(o.base, POISON, o.t->nbytes + 2 * GUARD + 4);
    o.own = o.t->data;
    o.t->data = o.base + GUARD + 4;
    return o;
}
static void gt_free(gt *o) {
    o->t->data = o->own;
    pq_tensor_destroy(o->t);
    pq_free(o->base);
}
static void gt_guards(const gt *o, const char *what) {
    for (size_t i = 0; i < GUARD + 4; i++)
        cr_assert_eq(o->base[i], POISON, "%s: byte before the output overwritten", what);
    for (size_t i = 0; i < GUARD; i++)
        cr_assert_eq(o->base[GUARD + 4 + o->t->nbytes + i], POISON, "%s: guard %zu overwritten",
                     what, i);
}
static float *gf(gt *o) {
    return o->t->data;
}

/* Random values in [-scale, scale) with a sprinkling of specials when specials != 0. */
static void fill(gt *o, float scale, int specials) {
    static const float sp[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-40f, -3e38f, 3e38f};
    int64_t n = pq_tensor_numel(o->t);
    for (int64_t i = 0; i < n; i++)
        gf(o)[i] = specials && rnd() % 7 == 0 ? sp[rnd() % 8] : frand(scale);
}

/* One-node graph with n_in inputs (tensors owned by the caller) and n_out outputs. */
typedef struct {
    pq_graph *g;
    uint32_t nid;
    pq_error err;
} node1;

static node1 node_new(enum pq_op op, uint32_t nin, uint32_t nout) {
    node1 c;
    memset(&c, 0, sizeof c);
    c.g = pq_graph_create(NULL, &c.err);
    cr_assert_not_null(c.g);
    uint32_t ids[6];
    for (uint32_t i = 0; i < nin + nout; i++)
        cr_assert_eq(pq_graph_add_value(c.g, NULL, PQ_DTYPE_UNDEFINED, NULL, &ids[i], &c.err),
                     PQ_OK);
    cr_assert_eq(pq_graph_add_node(c.g, op, "n", ids, nin, ids + nin, nout, &c.nid, &c.err), PQ_OK);
    return c;
}

typedef enum pq_status (*run_fn)(const pq_eltwise_kernels *, const pq_kernel_args *);

/* Runs the reference into r and the fast kernel (k with run; pq_kernel_run when run is NULL) into
 * f, both poisoned and misaligned, with nthreads for the fast one; checks f's guards. */
static void run_both(node1 *c, const pq_tensor *const *in, uint32_t nin, gt *r, gt *f,
                     const pq_eltwise_kernels *k, run_fn run, int nthreads, const char *what) {
    pq_tensor *ro[1] = {r->t}, *fo[1] = {f->t};
    pq_kernel_args a = {c->g, &c->g->nodes[c->nid], in, nin, ro, 1, NULL, 1, &c->err};
    cr_assert_eq(pq_ref_run(&a), PQ_OK, "%s: reference: %s", what, c->err.msg);
    a.out = fo;
    a.n_threads = nthreads;
    enum pq_status st = run ? run(k, &a) : pq_kernel_run(&a);
    cr_assert_eq(st, PQ_OK, "%s: fast status %d: %s", what, (int)st, c->err.msg);
    gt_guards(f, what);
}

static void same_bits(gt *r, gt *f, const char *what) {
    int64_t n = pq_tensor_numel(r->t);
    const uint32_t *yr = r->t->data, *yf = f->t->data;
    for (int64_t i = 0; i < n; i++)
        cr_assert_eq(yf[i], yr[i], "%s: element %lld: %a, reference %a", what, (long long)i,
                     (double)gf(f)[i], (double)gf(r)[i]);
}

/* ---- binary ---- */

static const enum pq_op BIN_OPS[] = {PQ_OP_ADD, PQ_OP_SUB, PQ_OP_MUL, PQ_OP_DIV};

/* out = A op B for every op; shapes given; returns elements compared. */
static int64_t check_binary(const pq_eltwise_kernels *k, int ra, const int64_t *da, int rb,
                            const int64_t *db, int ry, const int64_t *dy, int nthreads,
                            int specials) {
    int64_t cmp = 0;
    for (size_t o = 0; o < 4; o++) {
        gt A = gt_new(ra, da), B = gt_new(rb, db), r = gt_new(ry, dy), f = gt_new(ry, dy);
        fill(&A, 100.0f, specials);
        fill(&B, 4.0f, specials);
        node1 c = node_new(BIN_OPS[o], 2, 1);
        const pq_tensor *in[2] = {A.t, B.t};
        char what[128];
        snprintf(what, sizeof what, "%s %s ranks %d,%d -> %lld elements, %d threads", k->isa,
                 pq_op_name(BIN_OPS[o]), ra, rb, (long long)pq_tensor_numel(r.t), nthreads);
        run_both(&c, in, 2, &r, &f, k, pq_eltwise_binary_run, nthreads, what);
        same_bits(&r, &f, what);
        cmp += pq_tensor_numel(r.t);
        pq_graph_destroy(c.g);
        gt_free(&A);
        gt_free(&B);
        gt_free(&r);
        gt_free(&f);
    }
    return cmp;
}

static void binary_cases(const char *isa) {
    const pq_eltwise_kernels *k = need(isa);
    int64_t cmp = 0;
    for (size_t s = 0; s < NSIZES; s++) {
        int64_t n = SIZES[s];
        int64_t d1[1] = {n}, one[1] = {1}, d2[2] = {3, n}, d4[4] = {2, 3, n, 1};
        int64_t pc[4] = {1, 3, 1, 1}, d4w[4] = {2, 3, 1, n};
        cmp += check_binary(k, 1, d1, 1, d1, 1, d1, 1, 1);   /* same shape */
        cmp += check_binary(k, 1, d1, 0, NULL, 1, d1, 1, 1); /* scalar B (rank 0) */
        cmp += check_binary(k, 1, one, 1, d1, 1, d1, 1, 1);  /* scalar A ([1]) */
        cmp += check_binary(k, 2, d2, 1, d1, 2, d2, 1, 1);   /* last-axis vector */
        cmp += check_binary(k, 1, d1, 2, d2, 2, d2, 1, 1);   /* vector op matrix */
        cmp += check_binary(k, 4, d4, 4, pc, 4, d4, 1, 1);   /* per-channel NCHW, W = 1 */
        cmp += check_binary(k, 4, d4w, 4, pc, 4, d4w, 1, 1); /* per-channel NCHW, H = 1 */
        int64_t col[2] = {5, 1}, row[2] = {1, n}, outer[2] = {5, n};
        cmp += check_binary(k, 2, col, 2, row, 2, outer, 1, 1); /* outer product */
    }
    /* per-channel on a real CNN shape and large same-shape / scalar cases with two threads */
    int64_t nchw[4] = {1, 48, 56, 56}, pc[4] = {1, 48, 1, 1}, big[1] = {300007};
    cmp += check_binary(k, 4, nchw, 4, pc, 4, nchw, 2, 0);
    cmp += check_binary(k, 1, big, 1, big, 1, big, 2, 1);
    cmp += check_binary(k, 1, big, 0, NULL, 1, big, 2, 1);
    cr_assert_gt(cmp, 100000);
}

Test(eltwise_fast, binary_scalar) {
    binary_cases("scalar");
}
Test(eltwise_fast, binary_avx2) {
    binary_cases("avx2");
}
Test(eltwise_fast, binary_avx512) {
    binary_cases("avx512");
}

/* ---- softmax ---- */

/* rows x n Softmax; mode 0 random, 1 with -inf masks, 2 special rows (all -inf, NaN, +inf, one
 * finite among -inf, huge spread). Returns elements compared. */
static int64_t check_softmax(const pq_eltwise_kernels *k, int64_t rows, int64_t n, int mode,
                             int nthreads) {
    int64_t dims[3] = {2, rows, n};
    gt X = gt_new(3, dims), r = gt_new(3, dims), f = gt_new(3, dims);
    fill(&X, 12.0f, 0);
    float *x = gf(&X);
    for (int64_t i = 0; i < 2 * rows; i++) {
        float *row = x + i * n;
        if (mode >= 1) /* causal-style mask: entries after the row index are -inf */
            for (int64_t j = i % (n + 1); j < n; j++)
                row[j] = -INFINITY;
        if (mode == 2) {
            switch (i % 6) {
            case 0:
                for (int64_t j = 0; j < n; j++)
                    row[j] = -INFINITY;
                break;
            case 1:
                row[rnd() % n] = NAN;
                break;
            case 2:
                row[rnd() % n] = INFINITY;
                break;
            case 3:
                for (int64_t j = 0; j < n; j++)
                    row[j] = j == n / 2 ? 3.0f : -INFINITY;
                break;
            case 4:
                for (int64_t j = 0; j < n; j++)
                    row[j] = frand(120.0f); /* spread past exp's underflow: denormal outputs */
                break;
            default:
                break;
            }
        }
    }
    node1 c = node_new(PQ_OP_SOFTMAX, 1, 1);
    const pq_tensor *in[1] = {X.t};
    char what[128];
    snprintf(what, sizeof what, "%s Softmax %lld x %lld mode %d, %d threads", k->isa,
             (long long)rows, (long long)n, mode, nthreads);
    run_both(&c, in, 1, &r, &f, k, pq_eltwise_softmax_run, nthreads, what);
    int64_t N = 2 * rows * n;
    for (int64_t i = 0; i < N; i++) {
        float yr = gf(&r)[i], yf = gf(&f)[i];
        if (isnan(yr)) {
            cr_assert(isnan(yf), "%s: element %lld: %g, reference NaN", what, (long long)i, yf);
            continue;
        }
        if (x[i] == -INFINITY)
            cr_assert_eq(yf, 0.0f, "%s: masked element %lld: %g", what, (long long)i, yf);
        double tol = 1e-6 * fabs(yr) + ldexp(1.0, -148);
        cr_assert(fabs((double)yf - yr) <= tol, "%s: element %lld: %.9g, reference %.9g", what,
                  (long long)i, yf, yr);
    }
    pq_graph_destroy(c.g);
    gt_free(&X);
    gt_free(&r);
    gt_free(&f);
    return N;
}

static void softmax_cases(const char *isa) {
    const pq_eltwise_kernels *k = need(isa);
    int64_t cmp = 0;
    for (size_t s = 0; s < NSIZES; s++)
        for (int mode = 0; mode < 3; mode++)
            cmp += check_softmax(k, 7, SIZES[s], mode, 1);
    cmp += check_softmax(k, 256, 128, 1, 2);  /* encoder attention shape, two threads */
    cmp += check_softmax(k, 2048, 128, 0, 2); /* large enough to be split between threads */
    cr_assert_gt(cmp, 50000);
}

Test(eltwise_fast, softmax_scalar) {
    softmax_cases("scalar");
}
Test(eltwise_fast, softmax_avx2) {
    softmax_cases("avx2");
}
Test(eltwise_fast, softmax_avx512) {
    softmax_cases("avx512");
}

/* ---- layer normalization ---- */

static int64_t check_layernorm(const pq_eltwise_kernels *k, int rank, const int64_t *dims,
                               int64_t axis, bool bias, int specials, int nthreads) {
    int64_t ax = axis < 0 ? axis + rank : axis;
    gt X = gt_new(rank, dims), S = gt_new(rank - (int)ax, dims + ax),
       B = gt_new(rank - (int)ax, dims + ax), r = gt_new(rank, dims), f = gt_new(rank, dims);
    fill(&X, 3.0f, 0);
    float *x = gf(&X);
    int64_t D = pq_tensor_numel(S.t), N = pq_tensor_numel(X.t);
    for (int64_t i = 0; i < N; i += D) /* rows with an offset mean so the variance pass matters */
        for (int64_t j = 0; j < D; j++)
            x[i + j] += (float)(i / D % 5) * 7.0f;
    if (specials) {
        x[0] = NAN;
        if (N > 2 * D) x[D] = INFINITY;
    }
    fill(&S, 2.0f, 0);
    fill(&B, 1.0f, 0);
    node1 c = node_new(PQ_OP_LAYER_NORMALIZATION, bias ? 3 : 2, 1);
    cr_assert_eq(pq_node_set_int(c.g, c.nid, "axis", axis, &c.err), PQ_OK);
    cr_assert_eq(pq_node_set_float(c.g, c.nid, "epsilon", 1e-5f, &c.err), PQ_OK);
    const pq_tensor *in[3] = {X.t, S.t, B.t};
    char what[128];
    snprintf(what, sizeof what, "%s LayerNorm %lld rows x %lld, bias %d, %d threads", k->isa,
             (long long)(N / D), (long long)D, (int)bias, nthreads);
    run_both(&c, in, bias ? 3 : 2, &r, &f, k, pq_eltwise_layernorm_run, nthreads, what);
    for (int64_t i = 0; i < N; i++) {
        float yr = gf(&r)[i], yf = gf(&f)[i];
        if (isnan(yr)) {
            cr_assert(isnan(yf), "%s: element %lld: %g, reference NaN", what, (long long)i, yf);
            continue;
        }
        int64_t j = i % D;
        double tol = 1e-6 * (fabs(yr) + fabs(gf(&S)[j]) + (bias ? fabs(gf(&B)[j]) : 0.0));
        cr_assert(fabs((double)yf - yr) <= tol, "%s: element %lld: %.9g, reference %.9g", what,
                  (long long)i, yf, yr);
    }
    pq_graph_destroy(c.g);
    gt_free(&X);
    gt_free(&S);
    gt_free(&B);
    gt_free(&r);
    gt_free(&f);
    return N;
}

static void layernorm_cases(const char *isa) {
    const pq_eltwise_kernels *k = need(isa);
    int64_t cmp = 0;
    for (size_t s = 0; s < NSIZES; s++) {
        int64_t d[2] = {5, SIZES[s]};
        cmp += check_layernorm(k, 2, d, -1, true, 0, 1);
        cmp += check_layernorm(k, 2, d, 1, false, 1, 1);
    }
    int64_t d3[3] = {3, 4, 17}, enc[3] = {1, 128, 256};
    cmp += check_layernorm(k, 3, d3, 1, true, 0, 1); /* normalises the last two dims */
    cmp += check_layernorm(k, 3, enc, -1, true, 0, 2);
    int64_t big[2] = {1024, 256}; /* large enough to be split between threads */
    cmp += check_layernorm(k, 2, big, -1, true, 0, 2);
    cr_assert_gt(cmp, 30000);
}

Test(eltwise_fast, layernorm_scalar) {
    layernorm_cases("scalar");
}
Test(eltwise_fast, layernorm_avx2) {
    layernorm_cases("avx2");
}
Test(eltwise_fast, layernorm_avx512) {
    layernorm_cases("avx512");
}

/* ---- unsupported cases leave the output alone; dispatch through the fast table ---- */

static void untouched(node1 *c, const pq_tensor *const *in, uint32_t nin, int rank,
                      const int64_t *dims, run_fn run, uint32_t nout) {
    gt f = gt_new(rank, dims);
    pq_tensor *fo[3] = {f.t, NULL, NULL};
    pq_tensor *extra = NULL;
    if (nout > 1) {
        pq_error err;
        extra = pq_tensor_create(PQ_DTYPE_F32, 1, dims, &err);
        fo[1] = extra;
    }
    pq_kernel_args a = {c->g, &c->g->nodes[c->nid], in, nin, fo, nout, NULL, 1, &c->err};
    c->err.msg[0] = '\0';
    cr_assert_eq(run(pq_eltwise_kernels_for("scalar"), &a), PQ_ERR_UNSUPPORTED);
    cr_assert_eq(c->err.msg[0], '\0');
    for (size_t i = 0; i < f.t->nbytes + 2 * GUARD + 4; i++)
        cr_assert_eq(f.base[i], POISON, "output byte %zu touched by an unsupported case", i);
    pq_tensor_destroy(extra);
    gt_free(&f);
}

Test(eltwise_fast, unsupported_untouched) {
    int64_t d[2] = {4, 9};
    gt X = gt_new(2, d), S = gt_new(1, d + 1);
    fill(&X, 1.0f, 0);
    fill(&S, 1.0f, 0);
    node1 sm = node_new(PQ_OP_SOFTMAX, 1, 1); /* axis 0: not the last */
    cr_assert_eq(pq_node_set_int(sm.g, sm.nid, "axis", 0, &sm.err), PQ_OK);
    const pq_tensor *in1[1] = {X.t};
    untouched(&sm, in1, 1, 2, d, pq_eltwise_softmax_run, 1);
    node1 ln = node_new(PQ_OP_LAYER_NORMALIZATION, 2, 2); /* Mean output requested */
    const pq_tensor *in2[2] = {X.t, S.t};
    untouched(&ln, in2, 2, 2, d, pq_eltwise_layernorm_run, 2);
    node1 ls = node_new(PQ_OP_LOG_SOFTMAX, 1, 1); /* another op */
    untouched(&ls, in1, 1, 2, d, pq_eltwise_softmax_run, 1);
    pq_error err;
    pq_tensor *I = pq_tensor_create(PQ_DTYPE_I32, 2, d, &err); /* integer Add */
    node1 ad = node_new(PQ_OP_ADD, 2, 1);
    const pq_tensor *in3[2] = {I, I};
    untouched(&ad, in3, 2, 2, d, pq_eltwise_binary_run, 1);
    pq_tensor_destroy(I);
    pq_graph_destroy(sm.g);
    pq_graph_destroy(ln.g);
    pq_graph_destroy(ls.g);
    pq_graph_destroy(ad.g);
    gt_free(&X);
    gt_free(&S);
}

/* ---- GlobalAveragePool ---- */

static int64_t check_gap(const pq_eltwise_kernels *k, int rank, const int64_t *dims, float offset,
                         int specials, int nthreads) {
    int64_t od[5] = {dims[0], dims[1], 1, 1, 1};
    gt X = gt_new(rank, dims), r = gt_new(rank, od), f = gt_new(rank, od);
    fill(&X, 3.0f, specials);
    int64_t N = pq_tensor_numel(X.t), NC = dims[0] * dims[1], SP = N / NC;
    for (int64_t i = 0; i < N; i++)
        gf(&X)[i] += offset; /* a large common offset: the sums cancel less */
    node1 c = node_new(PQ_OP_GLOBAL_AVERAGE_POOL, 1, 1);
    const pq_tensor *in[1] = {X.t};
    char what[128];
    snprintf(what, sizeof what, "%s GlobalAveragePool %lld x %lld, %d threads", k->isa,
             (long long)NC, (long long)SP, nthreads);
    run_both(&c, in, 1, &r, &f, k, pq_eltwise_global_avg_pool_run, nthreads, what);
    if (!strcmp(k->isa, "scalar")) {
        same_bits(&r, &f, what);
    } else {
        for (int64_t i = 0; i < NC; i++) {
            float yr = gf(&r)[i], yf = gf(&f)[i];
            if (isnan(yr)) {
                cr_assert(isnan(yf), "%s: row %lld: %g, reference NaN", what, (long long)i, yf);
                continue;
            }
            if (isinf(yr)) {
                cr_assert(yf == yr, "%s: row %lld: %g, reference %g", what, (long long)i, yf, yr);
                continue;
            }
            double mabs = 0.0;
            for (int64_t j = 0; j < SP; j++)
                mabs += fabs((double)gf(&X)[i * SP + j]);
            mabs /= (double)SP;
            double tol = ldexp(fabs(yr), -23) + ldexp(mabs, -48);
            cr_assert(fabs((double)yf - yr) <= tol, "%s: row %lld: %.9g, reference %.9g", what,
                      (long long)i, yf, yr);
        }
    }
    pq_graph_destroy(c.g);
    gt_free(&X);
    gt_free(&r);
    gt_free(&f);
    return NC;
}

static void gap_cases(const char *isa) {
    const pq_eltwise_kernels *k = need(isa);
    int64_t rows = 0;
    for (size_t s = 0; s < NSIZES; s++) {
        int64_t d3[3] = {2, 5, SIZES[s]}, d4[4] = {1, 7, SIZES[s], 3};
        rows += check_gap(k, 3, d3, 0.0f, 0, 1);
        rows += check_gap(k, 4, d4, 1000.0f, 0, 1);
        rows += check_gap(k, 3, d3, 0.0f, 1, 1); /* NaN / inf rows */
    }
    int64_t se[4] = {1, 96, 56, 56}, b8[4] = {8, 40, 28, 28}, d5[5] = {1, 3, 4, 5, 6};
    rows += check_gap(k, 4, se, 0.5f, 0, 2);
    rows += check_gap(k, 4, b8, 0.0f, 0, 2);
    rows += check_gap(k, 5, d5, 0.0f, 0, 1);
    cr_assert_gt(rows, 500);
}

Test(eltwise_fast, global_avg_pool_scalar) {
    gap_cases("scalar");
}
Test(eltwise_fast, global_avg_pool_avx2) {
    gap_cases("avx2");
}
Test(eltwise_fast, global_avg_pool_avx512) {
    gap_cases("avx512");
}

/* ---- channel-blocked row kernels (the blocked GlobalAveragePool / Mul of onednn_layout.c) ---- */

static void lane_cases(const char *isa) {
    const pq_eltwise_kernels *k = need(isa), *sc = &pq_eltwise_kernels_scalar;
    static const int64_t rows[] = {1, 2, 3, 7, 49, 196, 3136};
    for (int b = 0; b < 2; b++) {
        int blk = b ? 16 : 8;
        for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++) {
            int64_t n = rows[ri] * blk, d1[1] = {n}, d2[1] = {blk};
            gt X = gt_new(1, d1), S = gt_new(1, d2), r = gt_new(1, d1), f = gt_new(1, d1);
            fill(&X, 50.0f, 1);
            fill(&S, 2.0f, 1);
            /* 1 to 5 blocks side by side inside X: r_nb rows each, block b at b * bstride (they
             * overlap when there are few rows) */
            for (int64_t nb = 1; nb <= 5; nb++) {
                int64_t r_nb = rows[ri] / nb > 0 ? rows[ri] / nb : 1;
                int64_t bstride = nb == 1 ? 0 : (rows[ri] - r_nb) / (nb - 1) * blk;
                double ar[80], af[80];
                for (int l = 0; l < 80; l++)
                    ar[l] = af[l] = l * 0.25 - 1.0;
                sc->lane_sums(gf(&X), r_nb, blk, nb, bstride, ar);
                k->lane_sums(gf(&X), r_nb, blk, nb, bstride, af);
                for (int l = 0; l < nb * blk; l++)
                    cr_assert(!memcmp(&ar[l], &af[l], sizeof ar[l]) ||
                                  (isnan(ar[l]) && isnan(af[l])),
                              "%s lane_sums blk %d rows %lld blocks %lld lane %d: %a, scalar %a",
                              isa, blk, (long long)r_nb, (long long)nb, l, af[l], ar[l]);
                for (int l = (int)nb * blk; l < 80; l++)
                    cr_assert(af[l] == l * 0.25 - 1.0, "%s lane_sums wrote past nb * blk", isa);
            }
            sc->lane_scale(gf(&X), gf(&S), gf(&r), rows[ri], blk);
            k->lane_scale(gf(&X), gf(&S), gf(&f), rows[ri], blk);
            char what[96];
            snprintf(what, sizeof what, "%s lane_scale blk %d rows %lld", isa, blk,
                     (long long)rows[ri]);
            gt_guards(&f, what);
            const uint32_t *yr = r.t->data, *yf = f.t->data;
            for (int64_t i = 0; i < n; i++)
                cr_assert(yr[i] == yf[i] || (isnan(gf(&r)[i]) && isnan(gf(&f)[i])),
                          "%s: element %lld: %a, scalar %a", what, (long long)i, (double)gf(&f)[i],
                          (double)gf(&r)[i]);
            gt_free(&X);
            gt_free(&S);
            gt_free(&r);
            gt_free(&f);
        }
    }
}

Test(eltwise_fast, lane_kernels_avx2) {
    lane_cases("avx2");
}
Test(eltwise_fast, lane_kernels_avx512) {
    lane_cases("avx512");
}

/* ---- in-place activation kernels (the oneDNN convolution's Swish / HardSwish pass) ---- */

/* Distance of y from the exact value r in units of the float spacing at |r| (2^-149 for
 * denormals). */
static double ulps(float y, double r) {
    double a = fabs(r);
    int e;
    frexp(a, &e); /* a = m 2^e, m in [0.5, 1) */
    double ulp = ldexp(1.0, (e - 24 < -149 ? -149 : e - 24));
    return fabs((double)y - r) / ulp;
}

/* Checks f (n floats computed in place from x) against the exact activation of kind (0: Swish,
 * 1: HardSwish) within the bounds of eltwise_fast.h; returns the worst ulp distance. */
static double check_act(int kind, const float *x, const float *f, int64_t n, const char *what) {
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        double r = kind ? pq_act_hard_swish_f64(v) : (double)v * pq_act_sigmoid_f64(v);
        if (isnan(r)) { /* NaN, and -inf (-inf * 0) */
            cr_assert(isnan(f[i]), "%s: x = %a: %a, want NaN", what, (double)v, (double)f[i]);
            continue;
        }
        if (isinf(v)) {
            cr_assert(f[i] == v, "%s: x = %a: %a", what, (double)v, (double)f[i]);
            continue;
        }
        if (kind == 0 && v < -60.0f) {
            cr_assert(f[i] <= 0.0f && f[i] > -0x1p-80f, "%s: x = %a: %a, exact %a", what, (double)v,
                      (double)f[i], r);
            continue;
        }
        double u = ulps(f[i], r);
        if (u > worst) worst = u;
        cr_assert(u <= 3.0, "%s: x = %a (%.9g): %a (%.9g), exact %.9g: %.2f ulp", what, (double)v,
                  (double)v, (double)f[i], (double)f[i], r, u);
    }
    return worst;
}

static void act_cases(const char *isa) {
    const pq_eltwise_kernels *k = need(isa);
    if (!k->swish || !k->hard_swish) cr_skip_test("%s has no activation kernels", isa);
    void (*fns[2])(float *, int64_t) = {k->swish, k->hard_swish};
    const char *names[2] = {"swish", "hard_swish"};
    for (int kind = 0; kind < 2; kind++) {
        char what[64];
        /* a dense grid over [-100, 100], then random magnitudes 2^-140 .. 2^40 of both signs */
        int64_t n = 400000, d1[1] = {n};
        gt X = gt_new(1, d1), F = gt_new(1, d1);
        for (int64_t i = 0; i < n; i++)
            gf(&X)[i] = i < n / 2 ? -100.0f + 200.0f * (float)i / (float)(n / 2)
                                  : ldexpf(1.0f + frand(0.5f), (int)(rnd() % 181) - 140) *
                                        (rnd() & 1 ? -1.0f : 1.0f);
        memcpy(gf(&F), gf(&X), (size_t)n * sizeof(float));
        snprintf(what, sizeof what, "%s %s sweep", isa, names[kind]);
        fns[kind](gf(&F), n);
        gt_guards(&F, what);
        double w = check_act(kind, gf(&X), gf(&F), n, what);
        cr_log_info("%s: worst %.2f ulp", what, w);
        gt_free(&X);
        gt_free(&F);
        /* SIMD tails, specials, zeros of blocked layouts' padding lanes */
        for (size_t si = 0; si < NSIZES; si++) {
            int64_t m = SIZES[si], dm[1] = {m};
            gt Y = gt_new(1, dm), G = gt_new(1, dm);
            fill(&Y, 8.0f, 1);
            memcpy(gf(&G), gf(&Y), (size_t)m * sizeof(float));
            snprintf(what, sizeof what, "%s %s n=%lld", isa, names[kind], (long long)m);
            fns[kind](gf(&G), m);
            gt_guards(&G, what);
            check_act(kind, gf(&Y), gf(&G), m, what);
            for (int64_t i = 0; i < m; i++)
                if (gf(&Y)[i] == 0.0f) cr_assert(gf(&G)[i] == 0.0f, "%s: 0 not kept", what);
            gt_free(&Y);
            gt_free(&G);
        }
        fns[kind](NULL, 0);
    }
}

Test(eltwise_fast, act_kernels_avx512) {
    act_cases("avx512");
}

/* ---- batch-1 Gemm kernel: y[r] = dot(x, w row r) ---- */

Test(eltwise_fast, gemv_rows_avx512) {
    const pq_eltwise_kernels *k = need("avx512");
    cr_assert_not_null(k->gemv_rows);
    static const int64_t ks[] = {1, 7, 15, 16, 17, 33, 960};
    static const int64_t rs[] = {1, 2, 3, 4, 5, 7, 8, 9, 64, 130};
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
        for (size_t ri = 0; ri < sizeof rs / sizeof rs[0]; ri++) {
            int64_t K = ks[ki], R = rs[ri], dx[1] = {K}, dw[1] = {R * K}, dy[1] = {R};
            gt X = gt_new(1, dx), W = gt_new(1, dw), Y = gt_new(1, dy);
            fill(&X, 2.0f, 0);
            fill(&W, 1.0f, 0);
            k->gemv_rows(gf(&X), gf(&W), K, R, gf(&Y));
            char what[64];
            snprintf(what, sizeof what, "gemv_rows k=%lld rows=%lld", (long long)K, (long long)R);
            gt_guards(&Y, what);
            for (int64_t r = 0; r < R; r++) {
                double ref = 0.0, mag = 0.0;
                for (int64_t i = 0; i < K; i++) {
                    double p = (double)gf(&X)[i] * gf(&W)[r * K + i];
                    ref += p;
                    mag += fabs(p);
                }
                /* f32 sums of K products in any order: |err| <= K 2^-24 sum |x w| (loose) */
                double bound = (double)(K + 1) * 0x1p-24 * mag + 1e-30;
                cr_assert(fabs(gf(&Y)[r] - ref) <= bound, "%s: row %lld: %.9g, exact %.9g", what,
                          (long long)r, (double)gf(&Y)[r], ref);
            }
            gt_free(&X);
            gt_free(&W);
            gt_free(&Y);
        }
}

/* pq_kernel_run picks the fast entries (default ISA) and applies Add's fused activation. */
Test(eltwise_fast, dispatch_and_fused_relu) {
    int64_t d[3] = {2, 5, 33}, v[1] = {33};
    gt A = gt_new(3, d), B = gt_new(1, v), r = gt_new(3, d), f = gt_new(3, d);
    fill(&A, 3.0f, 1);
    fill(&B, 3.0f, 0);
    node1 c = node_new(PQ_OP_ADD, 2, 1);
    cr_assert_eq(pq_node_set_string(c.g, c.nid, "activation", "Relu", &c.err), PQ_OK);
    const pq_tensor *in[2] = {A.t, B.t};
    run_both(&c, in, 2, &r, &f, NULL, NULL, 1, "Add+Relu via pq_kernel_run");
    same_bits(&r, &f, "Add+Relu via pq_kernel_run");
    for (int64_t i = 0; i < pq_tensor_numel(f.t); i++)
        cr_assert(!(gf(&f)[i] < 0.0f), "relu not applied at %lld", (long long)i);
    cr_assert_not_null(pq_fast_kernels[PQ_OP_SOFTMAX]);
    cr_assert_not_null(pq_fast_kernels[PQ_OP_LAYER_NORMALIZATION]);
    cr_assert_not_null(pq_fast_kernels[PQ_OP_GLOBAL_AVERAGE_POOL]);
    pq_graph_destroy(c.g);
    gt_free(&A);
    gt_free(&B);
    gt_free(&r);
    gt_free(&f);
}
