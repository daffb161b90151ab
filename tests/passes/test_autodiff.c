/* autodiff pass (issue 7): every gradient rule checked against central finite differences of
 * loss = ReduceSum(y * R) (R a fixed random constant, so every output element matters), plus an
 * MLP end to end, broadcasting, a value used twice, non-differentiable ops, errors, golden IR. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backends/quant/quant.h"
#include "ir/ir.h"
#include "ir/text.h"
#include "pass_test_util.h"
#include "passes/grad.h"
#include "runtime/runtime.h"

extern const pq_pass pq_pass_autodiff;

/* Deterministic values in +-[0.2, 1.0] (positive: [0.2, 1.0]), away from Relu's kink. */
static double pq_ad_val(uint64_t *s, bool positive) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    double u = (double)(*s >> 40) * (1.0 / 16777216.0);
    double m = 0.2 + 0.8 * u;
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    if (!positive && (*s >> 63)) m = -m;
    return m;
}

static uint64_t pq_ad_seed = 12345;

static uint32_t pq_ad_const(pq_graph *g, enum pq_dtype dt, const char *name, int rank,
                            const int64_t *dims, bool positive) {
    pq_error err;
    pq_tensor *t = pq_tensor_create(dt, rank, dims, &err);
    cr_assert(t, "%s", err.msg);
    for (int64_t i = 0; i < pq_tensor_numel(t); i++)
        pq_dtype_store(dt, t->data, (size_t)i, pq_ad_val(&pq_ad_seed, positive));
    uint32_t v;
    cr_assert_eq(pq_graph_add_constant(g, name, t, &v, &err), PQ_OK, "%s", err.msg);
    return v;
}

/* Adds op(in[0..n)) named `name` (typed after attributes: call pq_ad_type). */
static uint32_t pq_ad_node(pq_graph *g, enum pq_op op, const char *name, const uint32_t *in,
                           uint32_t n, uint32_t *nid) {
    pq_error err;
    uint32_t v, id;
    cr_assert_eq(pq_build(g, op, name, in, n, &v, &id, &err), PQ_OK, "%s", err.msg);
    if (nid) *nid = id;
    return v;
}

static void pq_ad_type(pq_graph *g, uint32_t nid) {
    pq_error err;
    cr_assert_eq(pq_infer_node(g, nid, &err), PQ_OK, "%s", err.msg);
}

static uint32_t pq_ad_op(pq_graph *g, enum pq_op op, const char *name, const uint32_t *in,
                         uint32_t n) {
    uint32_t nid, v = pq_ad_node(g, op, name, in, n, &nid);
    pq_ad_type(g, nid);
    return v;
}

static uint32_t pq_ad_op2(pq_graph *g, enum pq_op op, const char *name, uint32_t a, uint32_t b) {
    uint32_t in[2] = {a, b};
    return pq_ad_op(g, op, name, in, 2);
}

static uint32_t pq_ad_i64(pq_graph *g, const char *name, int n, const int64_t *v) {
    pq_error err;
    uint32_t id;
    int64_t d = n;
    cr_assert_eq(pq_build_const_i64(g, name, 1, &d, v, &id, &err), PQ_OK, "%s", err.msg);
    return id;
}

/* loss = ReduceSum(y * R) as the single graph output. */
static void pq_ad_loss(pq_graph *g, uint32_t y) {
    const pq_value *yv = &g->values[y];
    int64_t dims[PQ_MAX_RANK];
    cr_assert(pq_shape_is_static(&yv->shape, dims), "y has no static shape");
    uint32_t r = pq_ad_const(g, yv->dtype, "R", yv->shape.rank, dims, false);
    uint32_t m = pq_ad_op2(g, PQ_OP_MUL, "yR", y, r), nid;
    uint32_t l = pq_ad_node(g, PQ_OP_REDUCE_SUM, "loss", &m, 1, &nid);
    pq_error err;
    cr_assert_eq(pq_node_set_int(g, nid, "keepdims", 0, &err), PQ_OK);
    pq_ad_type(g, nid);
    cr_assert_eq(pq_graph_add_output(g, l, &err), PQ_OK);
}

static double pq_ad_run_loss(pq_graph *g) {
    pq_tensor **o = pq_test_run_inputs(g, NULL);
    double l = pq_dtype_load(o[0]->dtype, o[0]->data, 0);
    pq_test_free_outputs(o, g->n_outputs);
    return l;
}

/* Runs autodiff (options opts) on a clone of g and compares every exposed gradient with central
 * differences of step h: |fd - ad| <= tol * max(1, |fd|). Returns the number of gradients. */
static uint32_t pq_ad_check(pq_graph *g, const char *opts, double h, double tol, const char *what) {
    pq_error err;
    pq_error_clear(&err);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s: %s", what, err.msg);
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    pq_graph *ga = pq_test_clone_run_pass(g, &pq_pass_autodiff, opts, &ctx, what);
    pq_pass_ctx_free(&ctx);
    pq_tensor **outs = pq_test_run_inputs(ga, NULL);
    double l0 = pq_dtype_load(outs[0]->dtype, outs[0]->data, 0);
    cr_assert(fabs(l0 - pq_ad_run_loss(g)) <= 1e-9 * (1 + fabs(l0)), "%s: loss changed", what);
    uint32_t n_grads = 0;
    for (uint32_t o = 1; o < ga->n_outputs; o++) {
        const char *name = ga->values[ga->outputs[o]].name;
        cr_assert(strncmp(name, "grad/", 5) == 0, "%s: output '%s'", what, name);
        uint32_t c = pq_graph_find_value(g, name + 5);
        cr_assert_neq(c, PQ_NONE, "%s: no constant for '%s'", what, name);
        pq_tensor *t = g->values[c].constant;
        cr_assert(t);
        cr_assert_eq(pq_tensor_numel(outs[o]), pq_tensor_numel(t), "%s: %s size", what, name);
        for (int64_t i = 0; i < pq_tensor_numel(t); i++) {
            double x = pq_dtype_load(t->dtype, t->data, (size_t)i);
            pq_dtype_store(t->dtype, t->data, (size_t)i, x + h);
            double xp = pq_dtype_load(t->dtype, t->data, (size_t)i);
            double lp = pq_ad_run_loss(g);
            pq_dtype_store(t->dtype, t->data, (size_t)i, x - h);
            double xm = pq_dtype_load(t->dtype, t->data, (size_t)i);
            double lm = pq_ad_run_loss(g);
            pq_dtype_store(t->dtype, t->data, (size_t)i, x);
            double fd = (lp - lm) / (xp - xm);
            double ad = pq_dtype_load(outs[o]->dtype, outs[o]->data, (size_t)i);
            double lim = tol * fmax(1.0, fabs(fd));
            cr_assert(fabs(fd - ad) <= lim, "%s: %s[%lld]: autodiff %.9g, finite difference %.9g",
                      what, name, (long long)i, ad, fd);
        }
        n_grads++;
    }
    pq_test_free_outputs(outs, ga->n_outputs);
    pq_graph_destroy(ga);
    return n_grads;
}

/* f64 graphs of ops the reference computes in double: step and tolerance */
#define PQ_AD_H 1e-5
#define PQ_AD_TOL 1e-6
/* MatMul / Gemm: the reference computes f64 through f32 views, so f32-level noise */
#define PQ_AD_H_MM 1e-2
#define PQ_AD_TOL_MM 1e-3

static const enum pq_dtype F64 = PQ_DTYPE_F64;

Test(autodiff, binary_same_shape) {
    enum pq_op ops[] = {PQ_OP_ADD, PQ_OP_SUB, PQ_OP_MUL, PQ_OP_DIV};
    for (int k = 0; k < 4; k++) {
        pq_graph *g = pq_test_graph();
        int64_t d[2] = {2, 3};
        uint32_t a = pq_ad_const(g, F64, "A", 2, d, false),
                 b = pq_ad_const(g, F64, "B", 2, d, true);
        pq_ad_loss(g, pq_ad_op2(g, ops[k], "y", a, b));
        cr_assert_eq(pq_ad_check(g, NULL, PQ_AD_H, PQ_AD_TOL, pq_op_name(ops[k])), 3u);
        pq_graph_destroy(g);
    }
}

Test(autodiff, binary_broadcast) {
    enum pq_op ops[] = {PQ_OP_ADD, PQ_OP_SUB, PQ_OP_MUL, PQ_OP_DIV};
    /* (A shape, B shape) pairs: trailing, size-1 axes, both sides broadcasting */
    int ra[] = {3, 3, 3, 2}, rb[] = {2, 1, 3, 3};
    int64_t da[][3] = {{2, 3, 4}, {2, 3, 4}, {1, 3, 1}, {3, 1}};
    int64_t db[][3] = {{3, 1}, {4}, {2, 1, 4}, {2, 1, 4}};
    for (int s = 0; s < 4; s++)
        for (int k = 0; k < 4; k++) {
            pq_graph *g = pq_test_graph();
            uint32_t a = pq_ad_const(g, F64, "A", ra[s], da[s], false);
            uint32_t b = pq_ad_const(g, F64, "B", rb[s], db[s], true);
            pq_ad_loss(g, pq_ad_op2(g, ops[k], "y", a, b));
            char what[64];
            snprintf(what, sizeof what, "%s shapes %d", pq_op_name(ops[k]), s);
            cr_assert_eq(pq_ad_check(g, NULL, PQ_AD_H, PQ_AD_TOL, what), 3u, "%s", what);
            pq_graph_destroy(g);
        }
}

Test(autodiff, unary) {
    enum pq_op ops[] = {PQ_OP_RELU, PQ_OP_SIGMOID, PQ_OP_TANH, PQ_OP_IDENTITY,
                        PQ_OP_NEG,  PQ_OP_EXP,     PQ_OP_LOG,  PQ_OP_SQRT};
    for (int k = 0; k < 8; k++) {
        pq_graph *g = pq_test_graph();
        int64_t d[2] = {2, 5};
        bool pos = ops[k] == PQ_OP_LOG || ops[k] == PQ_OP_SQRT;
        uint32_t x = pq_ad_const(g, F64, "X", 2, d, pos);
        pq_ad_loss(g, pq_ad_op(g, ops[k], "y", &x, 1));
        cr_assert_eq(pq_ad_check(g, NULL, PQ_AD_H, PQ_AD_TOL, pq_op_name(ops[k])), 2u);
        pq_graph_destroy(g);
    }
}

Test(autodiff, softmax_log_softmax) {
    enum pq_op ops[] = {PQ_OP_SOFTMAX, PQ_OP_LOG_SOFTMAX};
    int64_t axes[] = {-1, 0, 1};
    for (int k = 0; k < 2; k++)
        for (int a = 0; a < 3; a++) {
            pq_graph *g = pq_test_graph();
            int64_t d[3] = {2, 3, 4};
            uint32_t x = pq_ad_const(g, F64, "X", 3, d, false), nid;
            uint32_t y = pq_ad_node(g, ops[k], "y", &x, 1, &nid);
            pq_error err;
            cr_assert_eq(pq_node_set_int(g, nid, "axis", axes[a], &err), PQ_OK);
            pq_ad_type(g, nid);
            pq_ad_loss(g, y);
            char what[64];
            snprintf(what, sizeof what, "%s axis %lld", pq_op_name(ops[k]), (long long)axes[a]);
            cr_assert_eq(pq_ad_check(g, NULL, PQ_AD_H, PQ_AD_TOL, what), 2u);
            pq_graph_destroy(g);
        }
}

Test(autodiff, movement) {
    pq_error err;
    for (int k = 0; k < 5; k++) {
        pq_graph *g = pq_test_graph();
        int64_t d[3] = {2, 3, 4};
        uint32_t x = pq_ad_const(g, F64, "X", 3, d, false), y = PQ_NONE, nid;
        const char *what = "?";
        if (k == 0) {
            int64_t s[2] = {6, -1};
            y = pq_ad_op2(g, PQ_OP_RESHAPE, "y", x, pq_ad_i64(g, "shape", 2, s));
            what = "Reshape";
        } else if (k == 1) {
            y = pq_ad_node(g, PQ_OP_FLATTEN, "y", &x, 1, &nid);
            cr_assert_eq(pq_node_set_int(g, nid, "axis", 2, &err), PQ_OK);
            pq_ad_type(g, nid);
            what = "Flatten";
        } else if (k == 2) {
            int64_t perm[3] = {2, 0, 1};
            y = pq_ad_node(g, PQ_OP_TRANSPOSE, "y", &x, 1, &nid);
            cr_assert_eq(pq_node_set_ints(g, nid, "perm", perm, 3, &err), PQ_OK);
            pq_ad_type(g, nid);
            what = "Transpose";
        } else if (k == 3) {
            y = pq_ad_op(g, PQ_OP_TRANSPOSE, "y", &x, 1);
            what = "Transpose (default perm)";
        } else {
            int64_t ax[1] = {1};
            y = pq_ad_op2(g, PQ_OP_UNSQUEEZE, "y", x, pq_ad_i64(g, "axes", 1, ax));
            what = "Unsqueeze";
        }
        pq_ad_loss(g, y);
        cr_assert_eq(pq_ad_check(g, NULL, PQ_AD_H, PQ_AD_TOL, what), 2u);
        pq_graph_destroy(g);
    }
}

Test(autodiff, reductions) {
    pq_error err;
    enum pq_op ops[] = {PQ_OP_REDUCE_SUM, PQ_OP_REDUCE_MEAN};
    int n_axes[] = {1, 2, 0};
    int64_t axes[][2] = {{1, 0}, {0, -1}, {0, 0}};
    for (int k = 0; k < 2; k++)
        for (int a = 0; a < 3; a++)
            for (int keep = 0; keep < 2; keep++) {
                pq_graph *g = pq_test_graph();
                int64_t d[3] = {2, 3, 4};
                uint32_t x = pq_ad_const(g, F64, "X", 3, d, false), nid;
                uint32_t in[2] = {x,
                                  n_axes[a] ? pq_ad_i64(g, "axes", n_axes[a], axes[a]) : PQ_NONE};
                uint32_t y = pq_ad_node(g, ops[k], "y", in, n_axes[a] ? 2 : 1, &nid);
                cr_assert_eq(pq_node_set_int(g, nid, "keepdims", keep, &err), PQ_OK);
                pq_ad_type(g, nid);
                if (g->values[y].shape.rank == 0) { /* loss of a scalar: make it rank 1 */
                    int64_t one[1] = {1};
                    y = pq_ad_op2(g, PQ_OP_RESHAPE, "y1", y, pq_ad_i64(g, "s1", 1, one));
                }
                pq_ad_loss(g, y);
                char what[64];
                snprintf(what, sizeof what, "%s axes %d keepdims %d", pq_op_name(ops[k]), a, keep);
                cr_assert_eq(pq_ad_check(g, NULL, PQ_AD_H, PQ_AD_TOL, what), 2u, "%s", what);
                pq_graph_destroy(g);
            }
}

Test(autodiff, matmul) {
    int ra[] = {2, 3, 2, 3}, rb[] = {2, 2, 3, 3};
    int64_t da[][3] = {{3, 4}, {2, 3, 4}, {3, 4}, {2, 3, 4}};
    int64_t db[][3] = {{4, 2}, {4, 2}, {2, 4, 5}, {1, 4, 2}};
    for (int s = 0; s < 4; s++) {
        pq_graph *g = pq_test_graph();
        uint32_t a = pq_ad_const(g, F64, "A", ra[s], da[s], false);
        uint32_t b = pq_ad_const(g, F64, "B", rb[s], db[s], false);
        pq_ad_loss(g, pq_ad_op2(g, PQ_OP_MATMUL, "y", a, b));
        char what[64];
        snprintf(what, sizeof what, "MatMul shapes %d", s);
        cr_assert_eq(pq_ad_check(g, NULL, PQ_AD_H_MM, PQ_AD_TOL_MM, what), 3u, "%s", what);
        pq_graph_destroy(g);
    }
}

Test(autodiff, gemm) {
    pq_error err;
    int rc[] = {1, 2, 2, 0};
    int64_t dc[][2] = {{5}, {3, 5}, {1, 5}, {0}};
    for (int t = 0; t < 4; t++)
        for (int c = 0; c < 4; c++) {
            int ta = t & 1, tb = t >> 1;
            pq_graph *g = pq_test_graph();
            int64_t da[2] = {ta ? 4 : 3, ta ? 3 : 4}, db[2] = {tb ? 5 : 4, tb ? 4 : 5};
            uint32_t in[3] = {pq_ad_const(g, F64, "A", 2, da, false),
                              pq_ad_const(g, F64, "B", 2, db, false),
                              rc[c] ? pq_ad_const(g, F64, "C", rc[c], dc[c], false) : PQ_NONE};
            uint32_t nid, y = pq_ad_node(g, PQ_OP_GEMM, "y", in, rc[c] ? 3 : 2, &nid);
            cr_assert_eq(pq_node_set_int(g, nid, "transA", ta, &err), PQ_OK);
            cr_assert_eq(pq_node_set_int(g, nid, "transB", tb, &err), PQ_OK);
            cr_assert_eq(pq_node_set_float(g, nid, "alpha", 0.7f, &err), PQ_OK);
            cr_assert_eq(pq_node_set_float(g, nid, "beta", 1.3f, &err), PQ_OK);
            pq_ad_type(g, nid);
            pq_ad_loss(g, y);
            char what[64];
            snprintf(what, sizeof what, "Gemm transA %d transB %d C %d", ta, tb, c);
            cr_assert_eq(pq_ad_check(g, NULL, PQ_AD_H_MM, PQ_AD_TOL_MM, what), rc[c] ? 4u : 3u,
                         "%s", what);
            pq_graph_destroy(g);
        }
}

/* X [4, 6] -> Gemm(W1 [8, 6]^T, b1) -> Relu -> Gemm(W2 [8, 3], b2) -> Softmax. */
static pq_graph *pq_ad_mlp(enum pq_dtype dt) {
    pq_error err;
    pq_graph *g = pq_test_graph();
    int64_t dx[2] = {4, 6}, d1[2] = {8, 6}, db1[1] = {8}, d2[2] = {8, 3}, db2[1] = {3};
    uint32_t in1[3] = {pq_ad_const(g, dt, "X", 2, dx, false),
                       pq_ad_const(g, dt, "W1", 2, d1, false),
                       pq_ad_const(g, dt, "b1", 1, db1, false)};
    uint32_t nid, h = pq_ad_node(g, PQ_OP_GEMM, "fc1", in1, 3, &nid);
    cr_assert_eq(pq_node_set_int(g, nid, "transB", 1, &err), PQ_OK);
    pq_ad_type(g, nid);
    uint32_t r = pq_ad_op(g, PQ_OP_RELU, "relu", &h, 1);
    uint32_t in2[3] = {r, pq_ad_const(g, dt, "W2", 2, d2, false),
                       pq_ad_const(g, dt, "b2", 1, db2, false)};
    uint32_t o = pq_ad_op(g, PQ_OP_GEMM, "fc2", in2, 3);
    pq_ad_loss(g, pq_ad_op(g, PQ_OP_SOFTMAX, "probs", &o, 1));
    return g;
}

Test(autodiff, mlp_f64) {
    pq_graph *g = pq_ad_mlp(F64);
    /* X, W1, b1, W2, b2, R */
    cr_assert_eq(pq_ad_check(g, NULL, PQ_AD_H_MM, PQ_AD_TOL_MM, "mlp f64"), 6u);
    pq_graph_destroy(g);
}

Test(autodiff, mlp_f32) {
    pq_graph *g = pq_ad_mlp(PQ_DTYPE_F32);
    cr_assert_eq(pq_ad_check(g, NULL, 1e-2, 1e-2, "mlp f32"), 6u);
    pq_graph_destroy(g);
}

/* A used by two nodes and twice by one: y = A * A + A @ B (gradient contributions summed). */
Test(autodiff, value_used_twice) {
    pq_graph *g = pq_test_graph();
    int64_t d[2] = {3, 3};
    uint32_t a = pq_ad_const(g, F64, "A", 2, d, false), b = pq_ad_const(g, F64, "B", 2, d, false);
    uint32_t sq = pq_ad_op2(g, PQ_OP_MUL, "sq", a, a);
    uint32_t mm = pq_ad_op2(g, PQ_OP_MATMUL, "mm", a, b);
    pq_ad_loss(g, pq_ad_op2(g, PQ_OP_ADD, "y", sq, mm));
    cr_assert_eq(pq_ad_check(g, NULL, PQ_AD_H_MM, PQ_AD_TOL_MM, "used twice"), 3u);
    pq_graph_destroy(g);
}

/* wrt selects constants by name; a Floor (non-differentiable) stops the flow to A. */
Test(autodiff, wrt_and_nondiff) {
    pq_graph *g = pq_test_graph();
    int64_t d[2] = {2, 3};
    uint32_t a = pq_ad_const(g, F64, "A", 2, d, false), b = pq_ad_const(g, F64, "B", 2, d, false);
    uint32_t f = pq_ad_op(g, PQ_OP_FLOOR, "floor", &a, 1);
    pq_ad_loss(g, pq_ad_op2(g, PQ_OP_MUL, "y", f, b));
    cr_assert_eq(pq_ad_check(g, "{wrt: '^[AB]$'}", PQ_AD_H, PQ_AD_TOL, "wrt"), 1u);
    pq_error err;
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    pq_graph *ga = pq_test_clone_run_pass(g, &pq_pass_autodiff, NULL, &ctx, "all");
    cr_assert_neq(pq_graph_find_value(ga, "grad/B"), PQ_NONE);
    cr_assert_neq(pq_graph_find_value(ga, "grad/R"), PQ_NONE);
    cr_assert_eq(pq_graph_find_value(ga, "grad/A"), PQ_NONE);
    /* running it again would clash with the outputs it made */
    cr_assert_eq(pq_test_run_pass(ga, &pq_pass_autodiff, "{loss: loss}", &ctx, true, &err),
                 PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "grad/"), "%s", err.msg);
    pq_graph_destroy(ga);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(g);
}

Test(autodiff, unsupported_op_named) {
    pq_graph *g = pq_test_graph();
    int64_t dd[3] = {2, 3, 3};
    uint32_t a = pq_ad_const(g, F64, "A", 3, dd, false);
    pq_ad_loss(g, pq_ad_op(g, PQ_OP_DET, "my_det", &a, 1));
    pq_error err;
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    cr_assert_eq(pq_test_run_pass(g, &pq_pass_autodiff, NULL, &ctx, false, &err),
                 PQ_ERR_UNSUPPORTED);
    cr_assert(strstr(err.msg, "'my_det' (Det)") && strstr(err.msg, "no gradient rule yet"), "%s",
              err.msg);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(g);
}

Test(autodiff, bad_loss) {
    pq_graph *g = pq_test_graph();
    int64_t d[2] = {2, 3};
    uint32_t a = pq_ad_const(g, F64, "A", 2, d, false);
    pq_ad_loss(g, pq_ad_op(g, PQ_OP_RELU, "y", &a, 1));
    pq_error err;
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    cr_assert_eq(pq_test_run_pass(g, &pq_pass_autodiff, "{loss: y}", &ctx, false, &err),
                 PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "'y'") && strstr(err.msg, "scalar"), "%s", err.msg);
    cr_assert_eq(pq_test_run_pass(g, &pq_pass_autodiff, "{loss: nope}", &ctx, false, &err),
                 PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "'nope'"), "%s", err.msg);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(g);
}

/* The printed backward graph of loss = ReduceSum(Relu(W) * R), W only. */
Test(autodiff, golden_ir) {
    pq_graph *g = pq_test_graph();
    int64_t d[1] = {3};
    uint32_t w = pq_ad_const(g, PQ_DTYPE_F32, "W", 1, d, false);
    pq_ad_loss(g, pq_ad_op(g, PQ_OP_RELU, "h", &w, 1));
    pq_error err;
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    pq_graph *ga = pq_test_clone_run_pass(g, &pq_pass_autodiff, "{wrt: '^W$'}", &ctx, "golden");
    char *text = NULL;
    cr_assert_eq(pq_text_print_string(ga, NULL, &text, &err), PQ_OK, "%s", err.msg);
    const char *want[] = {
        "const %loss/seed: f32[] = [1]\n",
        "%h/grad_1: bool[3] = Greater(%W, %h/grad)",
        "%yR/grad: f32[3] = Mul(%loss/grad_3, %R)",
        "%grad/W: f32[3] = Where(%h/grad_1, %yR/grad, %h/grad)",
        "  output %loss\n  output %grad/W\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(strstr(text, want[i]), "missing '%s' in:\n%s", want[i], text);
    pq_free(text);
    pq_graph_destroy(ga);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(g);
}

/* ---- FakeQuant (SPEC 7): loss = ReduceSum((X @ FakeQuant(W, S)) * R) ---- */

#define PQ_FQ_SEED 777
/* W is [PQ_FQ_K, PQ_FQ_N], groups of PQ_FQ_G along a row of the view (partial last groups both
 * ways) */
#define PQ_FQ_K 12
#define PQ_FQ_N 10
#define PQ_FQ_G 8
#define PQ_FQ_KN (PQ_FQ_K * PQ_FQ_N)

/* X [3, K] @ W_hat [K, N], W_hat = FakeQuant(W, S) (format piq3, qgroup G, the given view and
 * ste; f16: no S), or W itself when fq is false; the same X, W, R values for the same seed. S: f16
 * words +-(0.25 + 0.02 i) (signs alternate), steps about 0.2 to 0.45 for |w| in [0.2, 1]: both
 * inside and clipped weights. */
static pq_graph *pq_ad_fq_graph(bool fq, const char *format, int transposed, const char *ste) {
    pq_error err;
    pq_ad_seed = PQ_FQ_SEED;
    pq_graph *g = pq_test_graph();
    int64_t dx[2] = {3, PQ_FQ_K}, dw[2] = {PQ_FQ_K, PQ_FQ_N};
    uint32_t x = pq_ad_const(g, PQ_DTYPE_F32, "X", 2, dx, false);
    uint32_t w = pq_ad_const(g, PQ_DTYPE_F32, "W", 2, dw, false);
    uint32_t wh = w;
    if (fq) {
        bool f16 = !strcmp(format, "f16");
        uint32_t s = PQ_NONE;
        if (!f16) {
            int64_t rows = transposed ? PQ_FQ_N : PQ_FQ_K, cols = transposed ? PQ_FQ_K : PQ_FQ_N;
            int64_t ds[2] = {rows, (cols + PQ_FQ_G - 1) / PQ_FQ_G};
            pq_tensor *t = pq_tensor_create(PQ_DTYPE_F16, 2, ds, &err);
            cr_assert(t, "%s", err.msg);
            for (int64_t i = 0; i < pq_tensor_numel(t); i++)
                ((uint16_t *)t->data)[i] =
                    pq_f32_to_f16((i % 2 ? -1.0f : 1.0f) * (0.25f + 0.01f * (float)i));
            cr_assert_eq(pq_graph_add_constant(g, "S", t, &s, &err), PQ_OK, "%s", err.msg);
        }
        uint32_t in[2] = {w, s}, nid;
        wh = pq_ad_node(g, PQ_OP_FAKE_QUANT, "fq", in, f16 ? 1 : 2, &nid);
        cr_assert_eq(pq_node_set_string(g, nid, "format", format, &err), PQ_OK);
        if (!f16) cr_assert_eq(pq_node_set_int(g, nid, "qgroup", PQ_FQ_G, &err), PQ_OK);
        cr_assert_eq(pq_node_set_int(g, nid, "transposed", transposed, &err), PQ_OK);
        if (ste) cr_assert_eq(pq_node_set_string(g, nid, "ste", ste, &err), PQ_OK);
        pq_ad_type(g, nid);
    }
    pq_ad_loss(g, pq_ad_op2(g, PQ_OP_MATMUL, "y", x, wh));
    return g;
}

/* Runs autodiff with wrt on g; the outputs (loss, grads...) into *outs, the graph into *ga. */
static void pq_ad_fq_run(pq_graph *g, const char *opts, pq_graph **ga, pq_tensor ***outs) {
    pq_error err;
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    *ga = pq_test_clone_run_pass(g, &pq_pass_autodiff, opts, &ctx, opts);
    pq_pass_ctx_free(&ctx);
    *outs = pq_test_run_inputs(*ga, NULL);
}

static const pq_tensor *pq_ad_fq_out(pq_graph *ga, pq_tensor **outs, const char *name) {
    for (uint32_t o = 0; o < ga->n_outputs; o++)
        if (!strcmp(ga->values[ga->outputs[o]].name, name)) return outs[o];
    cr_assert_fail("no output '%s'", name);
    return NULL;
}

/* dL/dw_hat: the gradient of W in the same graph without FakeQuant (K * N floats). */
static void pq_ad_fq_dwhat(float *dwhat) {
    pq_graph *g = pq_ad_fq_graph(false, NULL, 0, NULL), *ga;
    pq_tensor **outs;
    pq_ad_fq_run(g, "{wrt: '^W$'}", &ga, &outs);
    const pq_tensor *t = pq_ad_fq_out(ga, outs, "grad/W");
    cr_assert_eq(t->dtype, PQ_DTYPE_F32);
    cr_assert_eq(pq_tensor_numel(t), PQ_FQ_KN);
    memcpy(dwhat, t->data, PQ_FQ_KN * sizeof(float));
    pq_test_free_outputs(outs, ga->n_outputs);
    pq_graph_destroy(ga);
    pq_graph_destroy(g);
}

/* Step, group and code r = rne(w / step) of W[i][j] in the piq3 view (qgroup G). */
static void pq_ad_fq_code(const pq_graph *g, int i, int j, int transposed, float *r, int *row,
                          int *grp) {
    const pq_tensor *w = g->values[pq_graph_find_value(g, "W")].constant;
    const pq_tensor *s = g->values[pq_graph_find_value(g, "S")].constant;
    int rr = transposed ? j : i, cc = transposed ? i : j, ng = (int)s->dims[1];
    float step = pq_qstep(PQ_QFORMAT_PIQ3, ((const uint16_t *)s->data)[rr * ng + cc / PQ_FQ_G]);
    *r = nearbyintf(((const float *)w->data)[i * PQ_FQ_N + j] / step);
    *row = rr;
    *grp = cc / PQ_FQ_G;
}

/* standard: dL/dW = dL/dw_hat; clipped: dL/dW = dL/dw_hat * inside (piq3: -4 <= r <= 3); both
 * views. f16: straight through. Equal to within 1e-6 relative (the same f32 MatMul either way). */
Test(autodiff, fake_quant_standard_clipped_f16) {
    float dwhat[PQ_FQ_KN];
    pq_ad_fq_dwhat(dwhat);
    const char *stes[] = {NULL, "standard", "clipped", "f16"};
    for (int k = 0; k < 4; k++)
        for (int tr = 0; tr < 2; tr++) {
            bool f16 = k == 3;
            pq_graph *g = pq_ad_fq_graph(true, f16 ? "f16" : "piq3", tr, f16 ? NULL : stes[k]), *ga;
            pq_tensor **outs;
            pq_ad_fq_run(g, "{wrt: '^W$'}", &ga, &outs);
            cr_assert_eq(ga->n_outputs, 2u);
            const pq_tensor *dw = pq_ad_fq_out(ga, outs, "grad/W");
            int n_in = 0, n_out = 0;
            for (int i = 0; i < PQ_FQ_K; i++)
                for (int j = 0; j < PQ_FQ_N; j++) {
                    bool inside = true;
                    if (k == 2) {
                        float r;
                        int row, grp;
                        pq_ad_fq_code(g, i, j, tr, &r, &row, &grp);
                        inside = r >= -4.0f && r <= 3.0f;
                        n_in += inside;
                        n_out += !inside;
                    }
                    double want = inside ? dwhat[i * PQ_FQ_N + j] : 0.0;
                    double got = ((const float *)dw->data)[i * PQ_FQ_N + j];
                    cr_assert(fabs(got - want) <= 1e-6 * fabs(want),
                              "ste %s tr %d: dW[%d][%d] %.9g, want %.9g",
                              stes[k] ? stes[k] : "(default)", tr, i, j, got, want);
                }
            if (k == 2)
                cr_assert(n_in > 0 && n_out > 0, "tr %d: %d inside, %d out", tr, n_in, n_out);
            pq_test_free_outputs(outs, ga->n_outputs);
            pq_graph_destroy(ga);
            pq_graph_destroy(g);
        }
}

/* lsq with W and S selected: dL/dW = dL/dw_hat * inside, and grad/S (f32, the shape of S) =
 * sum over the group of dL/dw_hat * c (c = r - v inside, -4 below, 3 above) / sqrt(N * 3) * pi/4
 * with N the weights of the group (partial last groups of 2 and 4 weights);
 * within 1e-5 relative (f32 vs double sums). */
Test(autodiff, fake_quant_lsq_scale_gradient) {
    float dwhat[PQ_FQ_KN];
    pq_ad_fq_dwhat(dwhat);
    for (int tr = 0; tr < 2; tr++) {
        pq_graph *g = pq_ad_fq_graph(true, "piq3", tr, "lsq"), *ga;
        pq_tensor **outs;
        pq_ad_fq_run(g, "{wrt: '^(W|S)$'}", &ga, &outs);
        cr_assert_eq(ga->n_outputs, 3u);
        const pq_tensor *dw = pq_ad_fq_out(ga, outs, "grad/W");
        const pq_tensor *ds = pq_ad_fq_out(ga, outs, "grad/S");
        const pq_tensor *s = g->values[pq_graph_find_value(g, "S")].constant;
        cr_assert_eq(ds->dtype, PQ_DTYPE_F32);
        cr_assert_eq(ds->rank, 2);
        cr_assert_eq(ds->dims[0], s->dims[0]);
        cr_assert_eq(ds->dims[1], s->dims[1]);
        int rows = tr ? PQ_FQ_N : PQ_FQ_K, cols = tr ? PQ_FQ_K : PQ_FQ_N,
            ng = (cols + PQ_FQ_G - 1) / PQ_FQ_G;
        double want_ds[64] = {0};
        for (int i = 0; i < PQ_FQ_K; i++)
            for (int j = 0; j < PQ_FQ_N; j++) {
                float r;
                int row, grp;
                pq_ad_fq_code(g, i, j, tr, &r, &row, &grp);
                const pq_tensor *wt = g->values[pq_graph_find_value(g, "W")].constant;
                int rr = tr ? j : i, cc = tr ? i : j;
                float step =
                    pq_qstep(PQ_QFORMAT_PIQ3, ((const uint16_t *)s->data)[rr * ng + cc / PQ_FQ_G]);
                float v = ((const float *)wt->data)[i * PQ_FQ_N + j] / step;
                bool inside = r >= -4.0f && r <= 3.0f;
                double cval = inside ? (double)r - (double)v : (r < -4.0f ? -4.0 : 3.0);
                want_ds[row * ng + grp] += (double)dwhat[i * PQ_FQ_N + j] * cval;
                double want = inside ? dwhat[i * PQ_FQ_N + j] : 0.0;
                double got = ((const float *)dw->data)[i * PQ_FQ_N + j];
                cr_assert(fabs(got - want) <= 1e-6 * fabs(want),
                          "tr %d: dW[%d][%d] %.9g, want %.9g", tr, i, j, got, want);
            }
        for (int r = 0; r < rows; r++)
            for (int gi = 0; gi < ng; gi++) {
                int n = gi < ng - 1 ? PQ_FQ_G : cols - PQ_FQ_G * gi;
                double want = want_ds[r * ng + gi] / sqrt(3.0 * n) * (PQ_PI / 4);
                double got = ((const float *)ds->data)[r * ng + gi];
                cr_assert(fabs(got - want) <= 1e-5 * fabs(want) + 1e-7,
                          "tr %d: dS[%d][%d] %.9g, want %.9g", tr, r, gi, got, want);
            }
        pq_test_free_outputs(outs, ga->n_outputs);
        pq_graph_destroy(ga);
        pq_graph_destroy(g);
    }
}

/* Scales selected with an estimator that has no scale gradient: UNSUPPORTED naming the node and
 * the scales. lsq with W alone: no grad/S. */
Test(autodiff, fake_quant_scales_need_lsq) {
    pq_graph *g = pq_ad_fq_graph(true, "piq3", 0, "clipped");
    pq_error err;
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    cr_assert_eq(pq_test_run_pass(g, &pq_pass_autodiff, "{wrt: '^(W|S)$'}", &ctx, false, &err),
                 PQ_ERR_UNSUPPORTED);
    cr_assert(strstr(err.msg, "'fq' (FakeQuant)") && strstr(err.msg, "'S'") &&
                  strstr(err.msg, "lsq"),
              "%s", err.msg);
    pq_graph_destroy(g);
    g = pq_ad_fq_graph(true, "piq3", 0, "lsq");
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    pq_graph *ga = pq_test_clone_run_pass(g, &pq_pass_autodiff, "{wrt: '^W$'}", &ctx, "lsq W");
    cr_assert_neq(pq_graph_find_value(ga, "grad/W"), PQ_NONE);
    cr_assert_eq(pq_graph_find_value(ga, "grad/S"), PQ_NONE);
    const pq_node *fqg = NULL;
    for (uint32_t i = 0; i < ga->n_nodes; i++)
        if (ga->nodes[i].op == PQ_OP_FAKE_QUANT_GRAD) fqg = &ga->nodes[i];
    cr_assert(fqg);
    cr_assert_eq(fqg->n_outputs, 1u);
    cr_assert_str_eq(pq_node_attr_string(fqg, "format", ""), "piq3");
    cr_assert_str_eq(pq_node_attr_string(fqg, "ste", ""), "lsq");
    cr_assert_eq(pq_node_attr_int(fqg, "qgroup", 0), PQ_FQ_G);
    pq_graph_destroy(ga);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(g);
}

/* Conv (f32 reference): x [2, 3, 7, 6], w [4, 3, 3, 2], bias; strides, pads, dilations varied
 * (including sizes where the last rows are not read: output_padding / trimmed weight gradient);
 * central differences, the f32 tolerances of mlp_f32 (step 1e-2, 1e-2 relative). */
Test(autodiff, conv) {
    pq_error err;
    int64_t strides[][2] = {{1, 1}, {2, 1}, {2, 2}, {1, 2}};
    int64_t dils[][2] = {{1, 1}, {1, 2}, {1, 1}, {2, 1}};
    int64_t pads[][4] = {{0, 0, 0, 0}, {1, 0, 1, 1}, {1, 1, 0, 0}, {0, 1, 2, 0}};
    for (int k = 0; k < 4; k++) {
        pq_graph *g = pq_test_graph();
        int64_t dx[4] = {2, 3, 7, 6}, dw[4] = {4, 3, 3, 2}, db[1] = {4};
        uint32_t in[3] = {pq_ad_const(g, PQ_DTYPE_F32, "X", 4, dx, false),
                          pq_ad_const(g, PQ_DTYPE_F32, "W", 4, dw, false),
                          pq_ad_const(g, PQ_DTYPE_F32, "B", 1, db, false)};
        uint32_t nid, y = pq_ad_node(g, PQ_OP_CONV, "y", in, 3, &nid);
        cr_assert_eq(pq_node_set_ints(g, nid, "strides", strides[k], 2, &err), PQ_OK);
        cr_assert_eq(pq_node_set_ints(g, nid, "dilations", dils[k], 2, &err), PQ_OK);
        cr_assert_eq(pq_node_set_ints(g, nid, "pads", pads[k], 4, &err), PQ_OK);
        pq_ad_type(g, nid);
        pq_ad_loss(g, y);
        char what[64];
        snprintf(what, sizeof what, "Conv case %d", k);
        cr_assert_eq(pq_ad_check(g, NULL, 1e-2, 1e-2, what), 4u, "%s", what);
        pq_graph_destroy(g);
    }
}

/* Grouped Conv (group 2): input, weight and bias gradients. */
Test(autodiff, conv_grouped) {
    pq_error err;
    pq_graph *g = pq_test_graph();
    int64_t dx[4] = {2, 4, 5, 5}, dw[4] = {4, 2, 3, 3}, db[1] = {4}, st[2] = {2, 1};
    uint32_t in[3] = {pq_ad_const(g, PQ_DTYPE_F32, "X", 4, dx, false),
                      pq_ad_const(g, PQ_DTYPE_F32, "W", 4, dw, false),
                      pq_ad_const(g, PQ_DTYPE_F32, "B", 1, db, false)};
    uint32_t nid, y = pq_ad_node(g, PQ_OP_CONV, "y", in, 3, &nid);
    cr_assert_eq(pq_node_set_int(g, nid, "group", 2, &err), PQ_OK);
    cr_assert_eq(pq_node_set_ints(g, nid, "strides", st, 2, &err), PQ_OK);
    pq_ad_type(g, nid);
    pq_ad_loss(g, y);
    cr_assert_eq(pq_ad_check(g, NULL, 1e-2, 1e-2, "grouped Conv"), 4u);
    pq_graph_destroy(g);
}
