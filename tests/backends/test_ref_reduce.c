/* Tests of the reduction, ArgMax/ArgMin, TopK and CumSum reference kernels through their
 * inference rules, against naive double loops over a [2,3,4] input and hand-worked literals. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/ref/ref.h"
#include "ir/ir.h"

/* harness from test_ref_elementwise.c */
pq_tensor *pq_test_ew_tensor(enum pq_dtype t, int rank, const int64_t *dims, const double *vals);
pq_tensor *pq_test_ew_i64(int rank, const int64_t *dims, const int64_t *vals);
pq_graph *pq_test_ew_graph(enum pq_op op, const pq_tensor *const *in, uint32_t n_in, uint32_t n_out,
                           uint32_t *nid);
enum pq_status pq_test_ew_run(pq_graph *g, uint32_t nid, pq_tensor **outs, pq_error *err);

static const int64_t xd[3] = {2, 3, 4};

static void fill_x(double *x, bool positive) {
    for (int i = 0; i < 24; i++)
        x[i] = positive ? 0.5 + fabs(sin(i * 1.3)) * 2 : sin(i * 1.3) * 3;
}

/* Naive reduction of x[2,3,4] over mask; out in row-major order of the kept dims. */
static int naive_reduce(enum pq_op op, const double *x, const bool *mask, double *out) {
    int n_out = 0;
    for (int a = 0; a < (mask[0] ? 1 : 2); a++)
        for (int b = 0; b < (mask[1] ? 1 : 3); b++)
            for (int c = 0; c < (mask[2] ? 1 : 4); c++) {
                double acc = op == PQ_OP_REDUCE_PROD  ? 1
                             : op == PQ_OP_REDUCE_MAX ? -INFINITY
                             : op == PQ_OP_REDUCE_MIN ? INFINITY
                                                      : 0;
                double mx = -INFINITY;
                int cnt = 0;
                for (int pass = 0; pass < 2; pass++)
                    for (int i = 0; i < 2; i++)
                        for (int j = 0; j < 3; j++)
                            for (int k = 0; k < 4; k++) {
                                if ((!mask[0] && i != a) || (!mask[1] && j != b) ||
                                    (!mask[2] && k != c))
                                    continue;
                                double v = (float)x[(i * 3 + j) * 4 + k];
                                if (pass == 0) {
                                    mx = fmax(mx, v);
                                    continue;
                                }
                                cnt++;
                                switch (op) {
                                case PQ_OP_REDUCE_PROD:
                                    acc *= v;
                                    break;
                                case PQ_OP_REDUCE_MAX:
                                    acc = fmax(acc, v);
                                    break;
                                case PQ_OP_REDUCE_MIN:
                                    acc = fmin(acc, v);
                                    break;
                                case PQ_OP_REDUCE_L1:
                                    acc += fabs(v);
                                    break;
                                case PQ_OP_REDUCE_L2:
                                case PQ_OP_REDUCE_SUM_SQUARE:
                                    acc += v * v;
                                    break;
                                case PQ_OP_REDUCE_LOG_SUM_EXP:
                                    acc += exp(v - mx);
                                    break;
                                default:
                                    acc += v;
                                    break;
                                }
                            }
                if (op == PQ_OP_REDUCE_MEAN) acc /= cnt;
                if (op == PQ_OP_REDUCE_L2) acc = sqrt(acc);
                if (op == PQ_OP_REDUCE_LOG_SUM) acc = log(acc);
                if (op == PQ_OP_REDUCE_LOG_SUM_EXP) acc = log(acc) + mx;
                out[n_out++] = acc;
            }
    return n_out;
}

/* Runs op on X with optional axes (n_axes < 0: no axes input) and attributes. */
static pq_tensor *run_reduce(enum pq_op op, const pq_tensor *X, const int64_t *axes, int n_axes,
                             int keepdims, int noop, pq_error *err, enum pq_status *st) {
    int64_t ad[1] = {n_axes < 0 ? 0 : n_axes};
    pq_tensor *A = n_axes >= 0 ? pq_test_ew_i64(1, ad, axes) : NULL;
    const pq_tensor *in[2] = {X, A};
    uint32_t nid;
    pq_graph *g = pq_test_ew_graph(op, in, A ? 2 : 1, 1, &nid);
    if (keepdims >= 0) pq_node_set_int(g, nid, "keepdims", keepdims, err);
    if (noop >= 0) pq_node_set_int(g, nid, "noop_with_empty_axes", noop, err);
    pq_tensor *o[1] = {NULL};
    *st = pq_test_ew_run(g, nid, o, err);
    pq_graph_destroy(g);
    pq_tensor_destroy(A);
    return o[0];
}

Test(ref_reduce, all_ops_all_axis_sets_f32) {
    enum pq_op ops[10] = {PQ_OP_REDUCE_SUM,        PQ_OP_REDUCE_MEAN,       PQ_OP_REDUCE_MAX,
                          PQ_OP_REDUCE_MIN,        PQ_OP_REDUCE_PROD,       PQ_OP_REDUCE_L1,
                          PQ_OP_REDUCE_L2,         PQ_OP_REDUCE_SUM_SQUARE, PQ_OP_REDUCE_LOG_SUM,
                          PQ_OP_REDUCE_LOG_SUM_EXP};
    double x[24];
    for (int o = 0; o < 10; o++) {
        fill_x(x, ops[o] == PQ_OP_REDUCE_LOG_SUM);
        pq_tensor *X = pq_test_ew_tensor(PQ_DTYPE_F32, 3, xd, x);
        /* axis sets as bit masks 1..7, each given with negative axes for odd masks */
        for (int m = 0; m <= 8; m++) {
            bool mask[3] = {(m & 1) != 0, (m & 2) != 0, (m & 4) != 0};
            int64_t axes[3];
            int na = 0;
            for (int i = 2; i >= 0; i--)
                if (mask[i]) axes[na++] = (m & 1) ? i - 3 : i;
            if (m == 0 || m == 8) mask[0] = mask[1] = mask[2] = true; /* no / empty axes: all */
            for (int keep = 0; keep < 2; keep++) {
                pq_error err;
                enum pq_status st;
                pq_tensor *y = run_reduce(ops[o], X, axes, m == 0 ? -1 : na, keep, -1, &err, &st);
                cr_assert_eq(st, PQ_OK, "%s m=%d: %s", pq_op_name(ops[o]), m, err.msg);
                double want[24];
                int nw = naive_reduce(ops[o], x, mask, want);
                cr_assert_eq(pq_tensor_numel(y), nw);
                int rank_want = 0;
                for (int i = 0; i < 3; i++)
                    rank_want += keep || !mask[i];
                cr_assert_eq(y->rank, rank_want, "%s m=%d keep=%d", pq_op_name(ops[o]), m, keep);
                for (int i = 0; i < nw; i++) {
                    double got = ((float *)y->data)[i];
                    cr_assert(fabs(got - want[i]) <= 1e-5 * fabs(want[i]) + 1e-6,
                              "%s m=%d keep=%d elem %d: got %.8g want %.8g", pq_op_name(ops[o]), m,
                              keep, i, got, want[i]);
                }
                pq_tensor_destroy(y);
            }
        }
        pq_tensor_destroy(X);
    }
}

Test(ref_reduce, noop_with_empty_axes_and_f64_i64) {
    double x[24];
    fill_x(x, false);
    pq_tensor *X = pq_test_ew_tensor(PQ_DTYPE_F32, 3, xd, x);
    pq_error err;
    enum pq_status st;
    pq_tensor *y = run_reduce(PQ_OP_REDUCE_SUM, X, NULL, 0, 1, 1, &err, &st);
    cr_assert_eq(st, PQ_OK, "%s", err.msg);
    cr_assert_eq(y->rank, 3);
    cr_assert(memcmp(y->data, X->data, 24 * sizeof(float)) == 0);
    pq_tensor_destroy(y);
    pq_tensor *ys = run_reduce(PQ_OP_REDUCE_SUM_SQUARE, X, NULL, -1, 0, 1, &err, &st);
    cr_assert_eq(st, PQ_OK, "%s", err.msg);
    for (int i = 0; i < 24; i++) {
        double v = (float)x[i];
        cr_assert(fabs(((float *)ys->data)[i] - v * v) < 1e-5);
    }
    pq_tensor_destroy(ys);
    /* f64 LogSumExp over axis 1 */
    pq_tensor *X64 = pq_test_ew_tensor(PQ_DTYPE_F64, 3, xd, x);
    int64_t ax1[1] = {1};
    pq_tensor *l = run_reduce(PQ_OP_REDUCE_LOG_SUM_EXP, X64, ax1, 1, 0, -1, &err, &st);
    cr_assert_eq(st, PQ_OK, "%s", err.msg);
    cr_assert_eq(l->dtype, PQ_DTYPE_F64);
    for (int a = 0; a < 2; a++)
        for (int c = 0; c < 4; c++) {
            double s = 0;
            for (int b = 0; b < 3; b++)
                s += exp(x[(a * 3 + b) * 4 + c]);
            cr_assert(fabs(((double *)l->data)[a * 4 + c] - log(s)) < 1e-12);
        }
    pq_tensor_destroy(l);
    pq_tensor_destroy(X64);
    /* i64 sum/prod/max exact beyond 2^53; integer mean truncates */
    int64_t d2[2] = {2, 2};
    int64_t iv[4] = {(1LL << 60) + 1, 2, -7, 4};
    pq_tensor *I = pq_test_ew_i64(2, d2, iv);
    int64_t ax0[1] = {0};
    pq_tensor *is = run_reduce(PQ_OP_REDUCE_SUM, I, ax0, 1, 0, -1, &err, &st);
    cr_assert_eq(st, PQ_OK, "%s", err.msg);
    cr_assert_eq(((int64_t *)is->data)[0], (1LL << 60) - 6);
    cr_assert_eq(((int64_t *)is->data)[1], 6);
    pq_tensor *im = run_reduce(PQ_OP_REDUCE_MEAN, I, ax0, 1, 0, -1, &err, &st);
    cr_assert_eq(((int64_t *)im->data)[1], 3);
    pq_tensor *ix = run_reduce(PQ_OP_REDUCE_MAX, I, NULL, -1, 0, -1, &err, &st);
    cr_assert_eq(ix->rank, 0);
    cr_assert_eq(((int64_t *)ix->data)[0], (1LL << 60) + 1);
    pq_tensor_destroy(is), pq_tensor_destroy(im), pq_tensor_destroy(ix), pq_tensor_destroy(I);
    /* bad axes */
    int64_t bad[2] = {1, -2};
    pq_tensor *b = run_reduce(PQ_OP_REDUCE_MEAN, X, bad, 2, 1, -1, &err, &st);
    cr_assert_eq(st, PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "twice"), "%s", err.msg);
    cr_assert_null(b);
    int64_t oob[1] = {3};
    b = run_reduce(PQ_OP_REDUCE_MEAN, X, oob, 1, 1, -1, &err, &st);
    cr_assert_eq(st, PQ_ERR_INVALID);
    pq_tensor_destroy(X);
}

Test(ref_reduce, reduce_over_empty_dim) {
    int64_t d[2] = {0, 3};
    pq_tensor *X = pq_test_ew_tensor(PQ_DTYPE_F32, 2, d, NULL);
    int64_t ax[1] = {0};
    pq_error err;
    enum pq_status st;
    pq_tensor *s = run_reduce(PQ_OP_REDUCE_SUM, X, ax, 1, 0, -1, &err, &st);
    cr_assert_eq(st, PQ_OK, "%s", err.msg);
    pq_tensor *p = run_reduce(PQ_OP_REDUCE_PROD, X, ax, 1, 0, -1, &err, &st);
    pq_tensor *m = run_reduce(PQ_OP_REDUCE_MAX, X, ax, 1, 0, -1, &err, &st);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(((float *)s->data)[i], 0.0f);
        cr_assert_eq(((float *)p->data)[i], 1.0f);
        cr_assert_eq(((float *)m->data)[i], -INFINITY);
    }
    pq_tensor_destroy(s), pq_tensor_destroy(p), pq_tensor_destroy(m), pq_tensor_destroy(X);
}

static pq_tensor *run_arg(enum pq_op op, const pq_tensor *X, int64_t axis, int keep, int last) {
    const pq_tensor *in[1] = {X};
    uint32_t nid;
    pq_graph *g = pq_test_ew_graph(op, in, 1, 1, &nid);
    pq_error err;
    pq_node_set_int(g, nid, "axis", axis, &err);
    pq_node_set_int(g, nid, "keepdims", keep, &err);
    pq_node_set_int(g, nid, "select_last_index", last, &err);
    pq_tensor *o[1];
    cr_assert_eq(pq_test_ew_run(g, nid, o, &err), PQ_OK, "%s", err.msg);
    pq_graph_destroy(g);
    return o[0];
}

Test(ref_reduce, argmax_argmin) {
    int64_t d[2] = {2, 4};
    double x[8] = {2, 7, 7, 1, -3, -3, 5, -3};
    pq_tensor *X = pq_test_ew_tensor(PQ_DTYPE_F32, 2, d, x);
    pq_tensor *a = run_arg(PQ_OP_ARG_MAX, X, 1, 1, 0);
    cr_assert(a->dtype == PQ_DTYPE_I64 && a->rank == 2 && a->dims[0] == 2 && a->dims[1] == 1);
    cr_assert(((int64_t *)a->data)[0] == 1 && ((int64_t *)a->data)[1] == 2);
    pq_tensor *al = run_arg(PQ_OP_ARG_MAX, X, -1, 0, 1);
    cr_assert(al->rank == 1 && ((int64_t *)al->data)[0] == 2 && ((int64_t *)al->data)[1] == 2);
    pq_tensor *mn = run_arg(PQ_OP_ARG_MIN, X, 1, 0, 0), *mnl = run_arg(PQ_OP_ARG_MIN, X, 1, 0, 1);
    cr_assert(((int64_t *)mn->data)[0] == 3 && ((int64_t *)mn->data)[1] == 0);
    cr_assert(((int64_t *)mnl->data)[1] == 3);
    pq_tensor *a0 = run_arg(PQ_OP_ARG_MAX, X, 0, 1, 0);
    const int64_t w0[4] = {0, 0, 0, 0};
    cr_assert(memcmp(a0->data, w0, sizeof w0) == 0);
    pq_tensor_destroy(X), pq_tensor_destroy(a), pq_tensor_destroy(al), pq_tensor_destroy(mn);
    pq_tensor_destroy(mnl), pq_tensor_destroy(a0);
}

static void run_topk(const pq_tensor *X, int64_t k, int64_t axis, int largest, pq_tensor **v,
                     pq_tensor **i) {
    int64_t kd[1] = {1};
    pq_tensor *K = pq_test_ew_i64(1, kd, &k);
    const pq_tensor *in[2] = {X, K};
    uint32_t nid;
    pq_graph *g = pq_test_ew_graph(PQ_OP_TOP_K, in, 2, 2, &nid);
    pq_error err;
    pq_node_set_int(g, nid, "axis", axis, &err);
    pq_node_set_int(g, nid, "largest", largest, &err);
    pq_tensor *o[2];
    cr_assert_eq(pq_test_ew_run(g, nid, o, &err), PQ_OK, "%s", err.msg);
    *v = o[0];
    *i = o[1];
    pq_graph_destroy(g);
    pq_tensor_destroy(K);
}

Test(ref_reduce, topk_stable_ties) {
    /* ONNX test_top_k */
    int64_t d[2] = {3, 4};
    double x[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    pq_tensor *X = pq_test_ew_tensor(PQ_DTYPE_F32, 2, d, x);
    pq_tensor *v, *i;
    run_topk(X, 3, 1, 1, &v, &i);
    double wv[9] = {3, 2, 1, 7, 6, 5, 11, 10, 9};
    const int64_t wi[9] = {3, 2, 1, 3, 2, 1, 3, 2, 1};
    for (int k = 0; k < 9; k++)
        cr_assert_eq(((float *)v->data)[k], (float)wv[k]);
    cr_assert(memcmp(i->data, wi, sizeof wi) == 0);
    pq_tensor_destroy(v), pq_tensor_destroy(i), pq_tensor_destroy(X);
    /* ties: lower index first, both for largest and smallest; along axis 0 */
    int64_t d2[2] = {5, 2};
    double t[10] = {1, 0, 3, 0, 1, 9, 3, 9, 0, 9};
    pq_tensor *T = pq_test_ew_tensor(PQ_DTYPE_F32, 2, d2, t);
    run_topk(T, 3, 0, 1, &v, &i);
    cr_assert(v->dims[0] == 3 && v->dims[1] == 2);
    const int64_t wl[6] = {1, 2, 3, 3, 0, 4};
    cr_assert(memcmp(i->data, wl, sizeof wl) == 0);
    pq_tensor_destroy(v), pq_tensor_destroy(i);
    run_topk(T, 4, -2, 0, &v, &i);
    const int64_t ws[8] = {4, 0, 0, 1, 2, 2, 1, 3};
    cr_assert(memcmp(i->data, ws, sizeof ws) == 0);
    double wsv[8] = {0, 0, 1, 0, 1, 9, 3, 9};
    for (int k = 0; k < 8; k++)
        cr_assert_eq(((float *)v->data)[k], (float)wsv[k]);
    pq_tensor_destroy(v), pq_tensor_destroy(i);
    /* i64 values exact */
    int64_t big[3] = {(1LL << 60) + 1, (1LL << 60), (1LL << 60) + 2}, d3[1] = {3};
    pq_tensor *B = pq_test_ew_i64(1, d3, big);
    run_topk(B, 2, 0, 1, &v, &i);
    cr_assert(((int64_t *)v->data)[0] == (1LL << 60) + 2 &&
              ((int64_t *)v->data)[1] == (1LL << 60) + 1);
    cr_assert(((int64_t *)i->data)[0] == 2 && ((int64_t *)i->data)[1] == 0);
    pq_tensor_destroy(v), pq_tensor_destroy(i), pq_tensor_destroy(T), pq_tensor_destroy(B);
}

Test(ref_reduce, topk_k_too_large_is_invalid) {
    int64_t d[1] = {3}, kd[1] = {1}, k = 4;
    double x[3] = {1, 2, 3};
    pq_tensor *X = pq_test_ew_tensor(PQ_DTYPE_F32, 1, d, x), *K = pq_test_ew_i64(1, kd, &k);
    const pq_tensor *in[2] = {X, K};
    uint32_t nid;
    pq_graph *g = pq_test_ew_graph(PQ_OP_TOP_K, in, 2, 2, &nid);
    pq_error err;
    pq_tensor *o[2];
    cr_assert_eq(pq_test_ew_run(g, nid, o, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "exceeds"), "%s", err.msg);
    pq_graph_destroy(g);
    pq_tensor_destroy(X), pq_tensor_destroy(K);
}

static pq_tensor *run_cumsum(const pq_tensor *X, int64_t axis, int excl, int rev) {
    double av = (double)axis;
    pq_tensor *A = pq_test_ew_tensor(PQ_DTYPE_I32, 0, NULL, &av);
    const pq_tensor *in[2] = {X, A};
    uint32_t nid;
    pq_graph *g = pq_test_ew_graph(PQ_OP_CUM_SUM, in, 2, 1, &nid);
    pq_error err;
    pq_node_set_int(g, nid, "exclusive", excl, &err);
    pq_node_set_int(g, nid, "reverse", rev, &err);
    pq_tensor *o[1];
    cr_assert_eq(pq_test_ew_run(g, nid, o, &err), PQ_OK, "%s", err.msg);
    pq_graph_destroy(g);
    pq_tensor_destroy(A);
    return o[0];
}

Test(ref_reduce, cumsum_modes) {
    int64_t d[1] = {5};
    double x[5] = {1, 2, 3, 4, 5};
    pq_tensor *X = pq_test_ew_tensor(PQ_DTYPE_F64, 1, d, x);
    const double w[4][5] = {
        {1, 3, 6, 10, 15}, {0, 1, 3, 6, 10}, {15, 14, 12, 9, 5}, {14, 12, 9, 5, 0}};
    for (int m = 0; m < 4; m++) {
        pq_tensor *y = run_cumsum(X, 0, m & 1, m >> 1);
        for (int i = 0; i < 5; i++)
            cr_assert_eq(((double *)y->data)[i], w[m][i], "mode %d", m);
        pq_tensor_destroy(y);
    }
    /* 2-D along axis 1 and -2; i64 exact */
    int64_t d2[2] = {2, 3};
    int64_t iv[6] = {1LL << 60, 1, 2, 3, 4, 5};
    pq_tensor *I = pq_test_ew_i64(2, d2, iv);
    pq_tensor *y1 = run_cumsum(I, 1, 0, 0), *y0 = run_cumsum(I, -2, 0, 0);
    const int64_t w1[6] = {1LL << 60, (1LL << 60) + 1, (1LL << 60) + 3, 3, 7, 12};
    const int64_t w0[6] = {1LL << 60, 1, 2, (1LL << 60) + 3, 5, 7};
    cr_assert(memcmp(y1->data, w1, sizeof w1) == 0);
    cr_assert(memcmp(y0->data, w0, sizeof w0) == 0);
    pq_tensor_destroy(X), pq_tensor_destroy(I), pq_tensor_destroy(y1), pq_tensor_destroy(y0);
}

/* Sum/Mean of f32 over a leading or trailing block of axes take contiguous loops
 * (pq_reduce_f32_block): the result must be bit-identical to adding the values in row-major
 * order into a double per output, as the general walk does; a middle axis takes the walk. */
Test(ref_reduce, f32_sum_mean_block_paths_add_in_walk_order) {
    const int64_t d[3] = {5, 7, 33};
    double *vals = malloc(sizeof(double) * 5 * 7 * 33);
    for (int i = 0; i < 5 * 7 * 33; i++)
        vals[i] = sin(i * 0.731) * (1.0 + (i % 13) * 1e3);
    pq_tensor *X = pq_test_ew_tensor(PQ_DTYPE_F32, 3, d, vals);
    const float *x = X->data;
    static const int64_t sets[][3] = {
        {0, -1, -1}, {0, 1, -1}, {2, -1, -1}, {1, 2, -1}, {1, -1, -1}};
    static const int nset[] = {1, 2, 1, 2, 1};
    for (int s = 0; s < 5; s++)
        for (int o = 0; o < 2; o++) {
            enum pq_op op = o ? PQ_OP_REDUCE_MEAN : PQ_OP_REDUCE_SUM;
            bool mask[3] = {false, false, false};
            for (int k = 0; k < nset[s]; k++)
                mask[sets[s][k]] = true;
            pq_error err;
            enum pq_status st;
            pq_tensor *y = run_reduce(op, X, sets[s], nset[s], 0, -1, &err, &st);
            cr_assert_eq(st, PQ_OK, "%s", err.msg);
            /* reference: walk in row-major order, one double per kept index */
            double acc[5 * 7 * 33] = {0};
            int cnt = 1;
            for (int k = 0; k < 3; k++)
                if (mask[k]) cnt *= (int)d[k];
            for (int i = 0; i < 5; i++)
                for (int j = 0; j < 7; j++)
                    for (int k = 0; k < 33; k++) {
                        int io = 0;
                        if (!mask[0]) io = io * 5 + i;
                        if (!mask[1]) io = io * 7 + j;
                        if (!mask[2]) io = io * 33 + k;
                        acc[io] += (double)x[(i * 7 + j) * 33 + k];
                    }
            const float *yy = y->data;
            for (int64_t i = 0; i < pq_tensor_numel(y); i++) {
                float want = (float)(o ? acc[i] / cnt : acc[i]);
                cr_assert(memcmp(&yy[i], &want, sizeof want) == 0,
                          "set %d op %d out %lld: %.9g vs %.9g", s, o, (long long)i, yy[i], want);
            }
            pq_tensor_destroy(y);
        }
    pq_tensor_destroy(X);
    free(vals);
}
