/* Tests of the elementwise reference kernels (binary with broadcasting, variadic, Where, unary,
 * activations, Clip, Cast, softmax family) run through their inference rules. Expected values
 * come from naive double loops in the test or numpy/torch literals. Also holds the small
 * single-node harness (pq_test_ew_*) the reduce and quant kernel tests share. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "backends/ref/ref.h"
#include "ir/ir.h"

/* ---- single-node harness (shared with test_ref_reduce.c and test_ref_quant_ops.c) ---- */

/* Tensor of dtype t with the given dims and values stored through pq_dtype_store. */
pq_tensor *pq_test_ew_tensor(enum pq_dtype t, int rank, const int64_t *dims, const double *vals);
/* i64 tensor (exact values). */
pq_tensor *pq_test_ew_i64(int rank, const int64_t *dims, const int64_t *vals);
/* Builds a graph with one node of op whose inputs are constants cloned from in[] (NULL = omitted
 * input) and n_out outputs; returns the graph and node id. */
pq_graph *pq_test_ew_graph(enum pq_op op, const pq_tensor *const *in, uint32_t n_in, uint32_t n_out,
                           uint32_t *nid);
/* Runs inference then the reference kernel; outs[i] receive new tensors (caller destroys). */
enum pq_status pq_test_ew_run(pq_graph *g, uint32_t nid, pq_tensor **outs, pq_error *err);
/* Everything in one call for a node without attributes; asserts success; returns output 0 and
 * destroys the graph. */
pq_tensor *pq_test_ew_simple(enum pq_op op, const pq_tensor *const *in, uint32_t n_in);

pq_tensor *pq_test_ew_tensor(enum pq_dtype t, int rank, const int64_t *dims, const double *vals) {
    pq_error err;
    pq_tensor *x = pq_tensor_create(t, rank, dims, &err);
    cr_assert_not_null(x, "%s", err.msg);
    int64_t n = pq_tensor_numel(x);
    for (int64_t i = 0; i < n; i++)
        pq_dtype_store(t, x->data, (size_t)i, vals[i]);
    return x;
}

pq_tensor *pq_test_ew_i64(int rank, const int64_t *dims, const int64_t *vals) {
    pq_error err;
    pq_tensor *x = pq_tensor_create(PQ_DTYPE_I64, rank, dims, &err);
    cr_assert_not_null(x, "%s", err.msg);
    if (pq_tensor_numel(x)) memcpy(x->data, vals, (size_t)pq_tensor_numel(x) * sizeof(int64_t));
    return x;
}

pq_graph *pq_test_ew_graph(enum pq_op op, const pq_tensor *const *in, uint32_t n_in, uint32_t n_out,
                           uint32_t *nid) {
    pq_error err;
    pq_graph *g = pq_graph_create(NULL, &err);
    cr_assert_not_null(g);
    uint32_t ins[8], outs[4];
    for (uint32_t i = 0; i < n_in; i++) {
        if (!in[i]) {
            ins[i] = PQ_NONE;
            continue;
        }
        cr_assert_eq(pq_graph_add_value(g, NULL, in[i]->dtype, NULL, &ins[i], &err), PQ_OK);
        pq_tensor *c = pq_tensor_clone(in[i], &err);
        cr_assert_not_null(c);
        cr_assert_eq(pq_graph_set_constant(g, ins[i], c, &err), PQ_OK, "%s", err.msg);
    }
    for (uint32_t i = 0; i < n_out; i++)
        cr_assert_eq(pq_graph_add_value(g, NULL, PQ_DTYPE_UNDEFINED, NULL, &outs[i], &err), PQ_OK);
    cr_assert_eq(pq_graph_add_node(g, op, "n0", ins, n_in, outs, n_out, nid, &err), PQ_OK, "%s",
                 err.msg);
    return g;
}

enum pq_status pq_test_ew_run(pq_graph *g, uint32_t nid, pq_tensor **outs, pq_error *err) {
    pq_error_clear(err);
    PQ_TRY(pq_infer_node(g, nid, err));
    const pq_node *n = &g->nodes[nid];
    const pq_tensor *in[8];
    for (uint32_t i = 0; i < n->n_inputs; i++)
        in[i] = n->inputs[i] == PQ_NONE ? NULL : g->values[n->inputs[i]].constant;
    for (uint32_t i = 0; i < n->n_outputs; i++) {
        const pq_value *v = &g->values[n->outputs[i]];
        int64_t dims[PQ_MAX_RANK];
        cr_assert(pq_shape_is_static(&v->shape, dims), "output %u shape not static", i);
        outs[i] = pq_tensor_create(v->dtype, v->shape.rank, dims, err);
        cr_assert_not_null(outs[i], "%s", err->msg);
        memset(outs[i]->data, 0xA5, outs[i]->nbytes); /* poison */
    }
    pq_kernel_args a;
    memset(&a, 0, sizeof a);
    a.graph = g;
    a.node = n;
    a.in = in;
    a.n_in = n->n_inputs;
    a.out = outs;
    a.n_out = n->n_outputs;
    a.n_threads = 1;
    a.err = err;
    return pq_ref_run(&a);
}

pq_tensor *pq_test_ew_simple(enum pq_op op, const pq_tensor *const *in, uint32_t n_in) {
    uint32_t nid;
    pq_graph *g = pq_test_ew_graph(op, in, n_in, 1, &nid);
    pq_tensor *out[1] = {NULL};
    pq_error err;
    enum pq_status st = pq_test_ew_run(g, nid, out, &err);
    cr_assert_eq(st, PQ_OK, "%s: %s", pq_op_name(op), err.msg);
    pq_graph_destroy(g);
    return out[0];
}

/* ---- helpers of this file ---- */

static void assert_close(const pq_tensor *y, const double *want, int64_t n, double rtol,
                         double atol) {
    cr_assert_eq(pq_tensor_numel(y), n);
    for (int64_t i = 0; i < n; i++) {
        double got = pq_dtype_load(y->dtype, y->data, (size_t)i);
        if (isnan(want[i])) {
            cr_assert(isnan(got), "elem %lld: got %g want nan", (long long)i, got);
            continue;
        }
        if (got == want[i]) continue; /* also equal infinities */
        cr_assert(fabs(got - want[i]) <= atol + rtol * fabs(want[i]),
                  "elem %lld: got %.9g want %.9g", (long long)i, got, want[i]);
    }
}

static void fill_pattern(double *v, int64_t n, double scale, double shift) {
    for (int64_t i = 0; i < n; i++)
        v[i] = sin((double)i * 1.7 + shift) * scale;
}

/* Runs a single-attribute-free binary op and returns the output. */
static pq_tensor *run2(enum pq_op op, const pq_tensor *a, const pq_tensor *b) {
    const pq_tensor *in[2] = {a, b};
    return pq_test_ew_simple(op, in, 2);
}

/* ---- binary ---- */

Test(ref_ew, add_mul_sub_div_f32_broadcast_4d) {
    int64_t da[4] = {2, 3, 4, 5}, db[4] = {1, 3, 1, 1}, dc[2] = {4, 1};
    double va[120], vb[3], vc[4];
    fill_pattern(va, 120, 3.0, 0.0);
    fill_pattern(vb, 3, 2.0, 1.0);
    fill_pattern(vc, 4, 1.0, 2.0);
    vc[1] = 0.75;
    pq_tensor *A = pq_test_ew_tensor(PQ_DTYPE_F32, 4, da, va);
    pq_tensor *B = pq_test_ew_tensor(PQ_DTYPE_F32, 4, db, vb);
    pq_tensor *C = pq_test_ew_tensor(PQ_DTYPE_F32, 2, dc, vc);
    enum pq_op ops[4] = {PQ_OP_ADD, PQ_OP_SUB, PQ_OP_MUL, PQ_OP_DIV};
    for (int k = 0; k < 4; k++) {
        pq_tensor *y1 = run2(ops[k], A, B); /* channel broadcast */
        pq_tensor *y2 = run2(ops[k], C, A); /* rank-2 operand first, broadcast on the left */
        cr_assert_eq(y1->rank, 4);
        cr_assert_eq(y2->rank, 4);
        double w1[120], w2[120];
        for (int n = 0; n < 2; n++)
            for (int c = 0; c < 3; c++)
                for (int h = 0; h < 4; h++)
                    for (int w = 0; w < 5; w++) {
                        int i = ((n * 3 + c) * 4 + h) * 5 + w;
                        double a = (float)va[i], b = (float)vb[c], cc = (float)vc[h];
                        w1[i] = k == 0 ? a + b : k == 1 ? a - b : k == 2 ? a * b : a / b;
                        w2[i] = k == 0 ? cc + a : k == 1 ? cc - a : k == 2 ? cc * a : cc / a;
                    }
        assert_close(y1, w1, 120, 1e-6, 1e-6);
        assert_close(y2, w2, 120, 1e-6, 1e-6);
        pq_tensor_destroy(y1);
        pq_tensor_destroy(y2);
    }
    pq_tensor_destroy(A);
    pq_tensor_destroy(B);
    pq_tensor_destroy(C);
}

Test(ref_ew, add_scalar_and_empty) {
    int64_t d[1] = {3}, e[2] = {0, 3};
    double v[3] = {1, 2, 3}, s = 10;
    pq_tensor *A = pq_test_ew_tensor(PQ_DTYPE_F32, 1, d, v);
    pq_tensor *S = pq_test_ew_tensor(PQ_DTYPE_F32, 0, NULL, &s);
    pq_tensor *E = pq_test_ew_tensor(PQ_DTYPE_F32, 2, e, v);
    pq_tensor *y = run2(PQ_OP_ADD, S, A);
    double w[3] = {11, 12, 13};
    assert_close(y, w, 3, 0, 0);
    pq_tensor *z = run2(PQ_OP_ADD, E, A);
    cr_assert_eq(z->rank, 2);
    cr_assert_eq(z->dims[0], 0);
    pq_tensor *ss = run2(PQ_OP_MUL, S, S);
    cr_assert_eq(ss->rank, 0);
    cr_assert_eq(((float *)ss->data)[0], 100.0f);
    pq_tensor_destroy(A), pq_tensor_destroy(S), pq_tensor_destroy(E);
    pq_tensor_destroy(y), pq_tensor_destroy(z), pq_tensor_destroy(ss);
}

Test(ref_ew, pow_f32_and_mixed_types) {
    int64_t d[1] = {4};
    double b[4] = {2, 3, 0.5, 4}, e[4] = {3, 0.5, 2, -1};
    pq_tensor *B = pq_test_ew_tensor(PQ_DTYPE_F32, 1, d, b);
    pq_tensor *E = pq_test_ew_tensor(PQ_DTYPE_F32, 1, d, e);
    pq_tensor *y = run2(PQ_OP_POW, B, E);
    double w[4] = {8, 1.7320508075688772, 0.25, 0.25};
    assert_close(y, w, 4, 1e-6, 0);
    /* i64 base, f32 exponent -> i64 (ONNX test_pow_types_int64_float32) */
    int64_t d3[1] = {3};
    int64_t ib[3] = {1, 2, 3};
    double fe[3] = {4, 5, 6};
    pq_tensor *IB = pq_test_ew_i64(1, d3, ib);
    pq_tensor *FE = pq_test_ew_tensor(PQ_DTYPE_F32, 1, d3, fe);
    pq_tensor *yi = run2(PQ_OP_POW, IB, FE);
    cr_assert_eq(yi->dtype, PQ_DTYPE_I64);
    int64_t *r = yi->data;
    cr_assert(r[0] == 1 && r[1] == 32 && r[2] == 729);
    /* f32 base, i64 exponent -> f32 */
    pq_tensor *IE = pq_test_ew_i64(1, d3, ib);
    pq_tensor *FB = pq_test_ew_tensor(PQ_DTYPE_F32, 1, d3, fe);
    pq_tensor *yf = run2(PQ_OP_POW, FB, IE);
    cr_assert_eq(yf->dtype, PQ_DTYPE_F32);
    double wf[3] = {4, 25, 216};
    assert_close(yf, wf, 3, 0, 0);
    /* i64 ^ i64 exact beyond 2^53 */
    int64_t bb[2] = {3, 7}, ee[2] = {39, 2};
    int64_t d2[1] = {2};
    pq_tensor *BB = pq_test_ew_i64(1, d2, bb), *EE = pq_test_ew_i64(1, d2, ee);
    pq_tensor *yy = run2(PQ_OP_POW, BB, EE);
    cr_assert_eq(((int64_t *)yy->data)[0], 4052555153018976267LL);
    cr_assert_eq(((int64_t *)yy->data)[1], 49);
    pq_tensor_destroy(B), pq_tensor_destroy(E), pq_tensor_destroy(y), pq_tensor_destroy(IB);
    pq_tensor_destroy(FE), pq_tensor_destroy(yi), pq_tensor_destroy(IE), pq_tensor_destroy(FB);
    pq_tensor_destroy(yf), pq_tensor_destroy(BB), pq_tensor_destroy(EE), pq_tensor_destroy(yy);
}

Test(ref_ew, integer_arithmetic_exact) {
    int64_t d[1] = {6};
    int64_t a[6] = {(1LL << 60) + 1, -7, 7, -7, INT64_MIN, 5};
    int64_t b[6] = {1, 2, -2, 3, -1, 0};
    pq_tensor *A = pq_test_ew_i64(1, d, a), *B = pq_test_ew_i64(1, d, b);
    pq_tensor *s = run2(PQ_OP_ADD, A, B), *q = run2(PQ_OP_DIV, A, B), *m = run2(PQ_OP_MOD, A, B);
    int64_t *sv = s->data, *qv = q->data, *mv = m->data;
    cr_assert_eq(sv[0], (1LL << 60) + 2);
    cr_assert_eq(qv[0], (1LL << 60) + 1);
    cr_assert_eq(qv[1], -3); /* truncation toward zero */
    cr_assert_eq(qv[2], -3);
    cr_assert_eq(qv[3], -2);
    cr_assert_eq(qv[4], INT64_MIN); /* wraps, no trap */
    cr_assert_eq(qv[5], 0);         /* division by zero does not crash */
    /* Mod without fmod: sign of the divisor (Python/numpy) */
    cr_assert_eq(mv[1], 1);  /* -7 mod 2 */
    cr_assert_eq(mv[2], -1); /* 7 mod -2 */
    cr_assert_eq(mv[3], 2);  /* -7 mod 3 */
    cr_assert_eq(mv[5], 0);
    pq_tensor_destroy(s), pq_tensor_destroy(q), pq_tensor_destroy(m);

    /* fmod=1: sign of the dividend */
    const pq_tensor *in[2] = {A, B};
    uint32_t nid;
    pq_graph *g = pq_test_ew_graph(PQ_OP_MOD, in, 2, 1, &nid);
    pq_error err;
    cr_assert_eq(pq_node_set_int(g, nid, "fmod", 1, &err), PQ_OK);
    pq_tensor *out[1];
    cr_assert_eq(pq_test_ew_run(g, nid, out, &err), PQ_OK, "%s", err.msg);
    int64_t *fv = out[0]->data;
    cr_assert_eq(fv[1], -1);
    cr_assert_eq(fv[2], 1);
    cr_assert_eq(fv[3], -1);
    pq_tensor_destroy(out[0]);
    pq_graph_destroy(g);
    pq_tensor_destroy(A), pq_tensor_destroy(B);

    /* u8 wraps like numpy; u8 division */
    int64_t d2[1] = {3};
    double ua[3] = {250, 7, 200}, ub[3] = {10, 2, 100};
    pq_tensor *UA = pq_test_ew_tensor(PQ_DTYPE_U8, 1, d2, ua),
              *UB = pq_test_ew_tensor(PQ_DTYPE_U8, 1, d2, ub);
    pq_tensor *us = run2(PQ_OP_ADD, UA, UB), *ud = run2(PQ_OP_DIV, UA, UB),
              *um = run2(PQ_OP_MUL, UA, UB);
    uint8_t *usv = us->data, *udv = ud->data, *umv = um->data;
    cr_assert(usv[0] == 4 && usv[1] == 9 && usv[2] == 44);
    cr_assert(udv[0] == 25 && udv[1] == 3 && udv[2] == 2);
    cr_assert(umv[0] == (uint8_t)2500 && umv[1] == 14 && umv[2] == (uint8_t)20000);
    pq_tensor_destroy(UA), pq_tensor_destroy(UB), pq_tensor_destroy(us), pq_tensor_destroy(ud);
    pq_tensor_destroy(um);
}

Test(ref_ew, mod_float_fmod_and_i32_broadcast) {
    int64_t d[1] = {4}, d1[1] = {1};
    double a[4] = {-4.3, 7.2, 5.0, -5.5}, b[4] = {2.1, -3.4, 8.0, 1.5};
    pq_tensor *A = pq_test_ew_tensor(PQ_DTYPE_F32, 1, d, a),
              *B = pq_test_ew_tensor(PQ_DTYPE_F32, 1, d, b);
    const pq_tensor *in[2] = {A, B};
    uint32_t nid;
    pq_graph *g = pq_test_ew_graph(PQ_OP_MOD, in, 2, 1, &nid);
    pq_error err;
    pq_tensor *out[1];
    /* float Mod without fmod=1 is invalid */
    cr_assert_eq(pq_test_ew_run(g, nid, out, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "fmod"), "%s", err.msg);
    cr_assert_eq(pq_node_set_int(g, nid, "fmod", 1, &err), PQ_OK);
    cr_assert_eq(pq_test_ew_run(g, nid, out, &err), PQ_OK, "%s", err.msg);
    double w[4];
    for (int i = 0; i < 4; i++)
        w[i] = fmod((float)a[i], (float)b[i]);
    assert_close(out[0], w, 4, 1e-6, 1e-6);
    pq_tensor_destroy(out[0]);
    pq_graph_destroy(g);
    /* i32 [4] mod [1] */
    double ia[4] = {-4, 7, 5, -5}, ib[1] = {3};
    pq_tensor *IA = pq_test_ew_tensor(PQ_DTYPE_I32, 1, d, ia),
              *IB = pq_test_ew_tensor(PQ_DTYPE_I32, 1, d1, ib);
    pq_tensor *y = run2(PQ_OP_MOD, IA, IB);
    int32_t *yv = y->data;
    cr_assert(yv[0] == 2 && yv[1] == 1 && yv[2] == 2 && yv[3] == 1);
    pq_tensor_destroy(A), pq_tensor_destroy(B), pq_tensor_destroy(IA), pq_tensor_destroy(IB);
    pq_tensor_destroy(y);
}

Test(ref_ew, comparisons_and_logic) {
    int64_t d[2] = {2, 3}, d1[1] = {3};
    double a[6] = {1, NAN, 3, -1, 2, 5}, b[3] = {1, 2, 4};
    pq_tensor *A = pq_test_ew_tensor(PQ_DTYPE_F32, 2, d, a),
              *B = pq_test_ew_tensor(PQ_DTYPE_F32, 1, d1, b);
    enum pq_op ops[5] = {PQ_OP_EQUAL, PQ_OP_GREATER, PQ_OP_GREATER_OR_EQUAL, PQ_OP_LESS,
                         PQ_OP_LESS_OR_EQUAL};
    for (int k = 0; k < 5; k++) {
        pq_tensor *y = run2(ops[k], A, B);
        cr_assert_eq(y->dtype, PQ_DTYPE_BOOL);
        const uint8_t *yv = y->data;
        for (int i = 0; i < 6; i++) {
            double x = a[i], z = b[i % 3];
            int want = k == 0 ? x == z : k == 1 ? x > z : k == 2 ? x >= z : k == 3 ? x < z : x <= z;
            cr_assert_eq(yv[i], want, "op %d elem %d", k, i);
        }
        pq_tensor_destroy(y);
    }
    /* i64 compare beyond double precision, u64 above 2^63 */
    int64_t va[2] = {(1LL << 60) + 1, -5}, vb[2] = {1LL << 60, 3};
    int64_t d2[1] = {2};
    pq_tensor *IA = pq_test_ew_i64(1, d2, va), *IB = pq_test_ew_i64(1, d2, vb);
    pq_tensor *g = run2(PQ_OP_GREATER, IA, IB), *e = run2(PQ_OP_EQUAL, IA, IB);
    cr_assert(((uint8_t *)g->data)[0] == 1 && ((uint8_t *)g->data)[1] == 0);
    cr_assert(((uint8_t *)e->data)[0] == 0);
    pq_tensor *UA = pq_tensor_clone(IA, NULL), *UB = pq_tensor_clone(IB, NULL);
    UA->dtype = UB->dtype = PQ_DTYPE_U64;
    pq_tensor *ug = run2(PQ_OP_GREATER, UA, UB);
    cr_assert(((uint8_t *)ug->data)[1] == 1); /* 2^64-5 > 3 */
    /* bool logic with broadcasting */
    double ba[4] = {0, 1, 0, 1}, bb[2] = {0, 1};
    int64_t d22[2] = {2, 2}, d21[2] = {2, 1};
    pq_tensor *BA = pq_test_ew_tensor(PQ_DTYPE_BOOL, 2, d22, ba),
              *BB = pq_test_ew_tensor(PQ_DTYPE_BOOL, 2, d21, bb);
    pq_tensor *an = run2(PQ_OP_AND, BA, BB), *o = run2(PQ_OP_OR, BA, BB),
              *x = run2(PQ_OP_XOR, BA, BB);
    const uint8_t wa[4] = {0, 0, 0, 1}, wo[4] = {0, 1, 1, 1}, wx[4] = {0, 1, 1, 0};
    cr_assert(memcmp(an->data, wa, 4) == 0 && memcmp(o->data, wo, 4) == 0 &&
              memcmp(x->data, wx, 4) == 0);
    pq_tensor_destroy(A), pq_tensor_destroy(B), pq_tensor_destroy(IA), pq_tensor_destroy(IB);
    pq_tensor_destroy(g), pq_tensor_destroy(e), pq_tensor_destroy(UA), pq_tensor_destroy(UB);
    pq_tensor_destroy(ug), pq_tensor_destroy(BA), pq_tensor_destroy(BB), pq_tensor_destroy(an);
    pq_tensor_destroy(o), pq_tensor_destroy(x);
}

Test(ref_ew, prelu_and_where) {
    int64_t dx[3] = {2, 3, 2}, ds[2] = {3, 1};
    double x[12], s[3] = {0.1, 0.2, 0.3};
    fill_pattern(x, 12, 2.0, 0.3);
    pq_tensor *X = pq_test_ew_tensor(PQ_DTYPE_F32, 3, dx, x),
              *S = pq_test_ew_tensor(PQ_DTYPE_F32, 2, ds, s);
    pq_tensor *y = run2(PQ_OP_PRELU, X, S);
    double w[12];
    for (int i = 0; i < 12; i++) {
        double xv = (float)x[i];
        w[i] = xv < 0 ? xv * (float)s[(i / 2) % 3] : xv;
    }
    assert_close(y, w, 12, 1e-6, 0);
    /* Where: cond [2,1,2], X [3,1], Y scalar -> [2,3,2] */
    int64_t dc[3] = {2, 1, 2}, dxx[2] = {3, 1};
    double c[4] = {1, 0, 0, 1}, xv[3] = {10, 20, 30}, yv = -1;
    pq_tensor *C = pq_test_ew_tensor(PQ_DTYPE_BOOL, 3, dc, c);
    pq_tensor *XX = pq_test_ew_tensor(PQ_DTYPE_I64, 2, dxx, xv);
    pq_tensor *YY = pq_test_ew_tensor(PQ_DTYPE_I64, 0, NULL, &yv);
    const pq_tensor *in[3] = {C, XX, YY};
    pq_tensor *r = pq_test_ew_simple(PQ_OP_WHERE, in, 3);
    cr_assert_eq(r->rank, 3);
    cr_assert(r->dims[0] == 2 && r->dims[1] == 3 && r->dims[2] == 2);
    int64_t want[12] = {10, -1, 20, -1, 30, -1, -1, 10, -1, 20, -1, 30};
    cr_assert(memcmp(r->data, want, sizeof want) == 0);
    pq_tensor_destroy(X), pq_tensor_destroy(S), pq_tensor_destroy(y), pq_tensor_destroy(C);
    pq_tensor_destroy(XX), pq_tensor_destroy(YY), pq_tensor_destroy(r);
}

Test(ref_ew, variadic_max_min_sum_mean) {
    int64_t d0[2] = {2, 3}, d1[1] = {3}, d2[2] = {2, 1};
    double a[6] = {1, 5, NAN, -2, 0, 7}, b[3] = {3, 3, 3}, c[2] = {4, -8};
    pq_tensor *A = pq_test_ew_tensor(PQ_DTYPE_F32, 2, d0, a),
              *B = pq_test_ew_tensor(PQ_DTYPE_F32, 1, d1, b);
    pq_tensor *C = pq_test_ew_tensor(PQ_DTYPE_F32, 2, d2, c);
    const pq_tensor *in[3] = {B, A, C};
    pq_tensor *mx = pq_test_ew_simple(PQ_OP_MAX, in, 3), *mn = pq_test_ew_simple(PQ_OP_MIN, in, 3);
    pq_tensor *sm = pq_test_ew_simple(PQ_OP_SUM, in, 3), *me = pq_test_ew_simple(PQ_OP_MEAN, in, 3);
    double wmx[6], wmn[6], wsm[6], wme[6];
    for (int i = 0; i < 6; i++) {
        double x = a[i], y = b[i % 3], z = c[i / 3];
        wmx[i] = isnan(x) ? NAN : fmax(fmax(x, y), z);
        wmn[i] = isnan(x) ? NAN : fmin(fmin(x, y), z);
        wsm[i] = x + y + z;
        wme[i] = wsm[i] / 3;
    }
    assert_close(mx, wmx, 6, 0, 0);
    assert_close(mn, wmn, 6, 0, 0);
    assert_close(sm, wsm, 6, 1e-6, 0);
    assert_close(me, wme, 6, 1e-6, 0);
    /* one input: copy; f16 and u64 Max */
    const pq_tensor *one[1] = {C};
    pq_tensor *cp = pq_test_ew_simple(PQ_OP_MAX, one, 1);
    assert_close(cp, c, 2, 0, 0);
    double h1[3] = {1.5, -2, 65504}, h2[3] = {1.25, -1, 3};
    pq_tensor *H1 = pq_test_ew_tensor(PQ_DTYPE_F16, 1, d1, h1),
              *H2 = pq_test_ew_tensor(PQ_DTYPE_F16, 1, d1, h2);
    const pq_tensor *hin[2] = {H1, H2};
    pq_tensor *hm = pq_test_ew_simple(PQ_OP_MAX, hin, 2);
    double wh[3] = {1.5, -1, 65504};
    assert_close(hm, wh, 3, 0, 0);
    int64_t u1[2] = {-1, 5}, u2[2] = {7, 9}, du[1] = {2};
    pq_tensor *U1 = pq_test_ew_i64(1, du, u1), *U2 = pq_test_ew_i64(1, du, u2);
    U1->dtype = U2->dtype = PQ_DTYPE_U64;
    const pq_tensor *uin[2] = {U1, U2};
    pq_tensor *um = pq_test_ew_simple(PQ_OP_MIN, uin, 2);
    cr_assert_eq(((uint64_t *)um->data)[0], 7u);
    cr_assert_eq(((uint64_t *)um->data)[1], 5u);
    pq_tensor_destroy(A), pq_tensor_destroy(B), pq_tensor_destroy(C), pq_tensor_destroy(mx);
    pq_tensor_destroy(mn), pq_tensor_destroy(sm), pq_tensor_destroy(me), pq_tensor_destroy(cp);
    pq_tensor_destroy(H1), pq_tensor_destroy(H2), pq_tensor_destroy(hm), pq_tensor_destroy(U1);
    pq_tensor_destroy(U2), pq_tensor_destroy(um);
}

/* ---- unary ---- */

static const double ux[8] = {-3, -1.5, -0.5, 0, 0.25, 1, 2.5, 4};

static void check_unary(enum pq_op op, const char *attr, double attr_v, const double *want) {
    int64_t d[1] = {8};
    pq_tensor *X = pq_test_ew_tensor(PQ_DTYPE_F32, 1, d, ux);
    const pq_tensor *in[1] = {X};
    uint32_t nid;
    pq_graph *g = pq_test_ew_graph(op, in, 1, 1, &nid);
    pq_error err;
    if (attr) cr_assert_eq(pq_node_set_float(g, nid, attr, (float)attr_v, &err), PQ_OK);
    pq_tensor *out[1];
    cr_assert_eq(pq_test_ew_run(g, nid, out, &err), PQ_OK, "%s: %s", pq_op_name(op), err.msg);
    cr_assert_eq(out[0]->dtype, PQ_DTYPE_F32);
    assert_close(out[0], want, 8, 2e-6, 1e-7);
    /* same op in f64 and f16 */
    pq_tensor *X64 = pq_test_ew_tensor(PQ_DTYPE_F64, 1, d, ux);
    pq_tensor *X16 = pq_test_ew_tensor(PQ_DTYPE_F16, 1, d, ux);
    for (int k = 0; k < 2; k++) {
        const pq_tensor *in2[1] = {k ? X16 : X64};
        pq_graph *g2 = pq_test_ew_graph(op, in2, 1, 1, &nid);
        if (attr) cr_assert_eq(pq_node_set_float(g2, nid, attr, (float)attr_v, &err), PQ_OK);
        pq_tensor *o2[1];
        cr_assert_eq(pq_test_ew_run(g2, nid, o2, &err), PQ_OK, "%s", err.msg);
        cr_assert_eq(o2[0]->dtype, k ? PQ_DTYPE_F16 : PQ_DTYPE_F64);
        assert_close(o2[0], want, 8, k ? 1e-3 : 1e-6, k ? 1e-3 : 1e-7);
        pq_tensor_destroy(o2[0]);
        pq_graph_destroy(g2);
    }
    pq_tensor_destroy(X), pq_tensor_destroy(X64), pq_tensor_destroy(X16), pq_tensor_destroy(out[0]);
    pq_graph_destroy(g);
}

Test(ref_ew, unary_math) {
    double w[8];
    for (int i = 0; i < 8; i++)
        w[i] = exp(ux[i]);
    check_unary(PQ_OP_EXP, NULL, 0, w);
    const double sig[8] = {0.0474258736, 0.182425529, 0.377540678, 0.5,
                           0.562176526,  0.731058598, 0.924141824, 0.982013762};
    check_unary(PQ_OP_SIGMOID, NULL, 0, sig);
    const double th[8] = {-0.995054781, -0.905148268, -0.462117165, 0,
                          0.244918659,  0.761594176,  0.986614287,  0.999329329};
    check_unary(PQ_OP_TANH, NULL, 0, th);
    const double er[8] = {-0.999977887, -0.966105163, -0.520499885, 0,
                          0.276326388,  0.842700779,  0.999593019,  1};
    check_unary(PQ_OP_ERF, NULL, 0, er);
    const double sn[8] = {-0.141120002, -0.997494996, -0.47942555, 0,
                          0.247403964,  0.841470957,  0.598472118, -0.756802499};
    check_unary(PQ_OP_SIN, NULL, 0, sn);
    const double cs[8] = {-0.989992499, 0.070737198, 0.87758255,   1,
                          0.968912423,  0.540302277, -0.801143587, -0.653643608};
    check_unary(PQ_OP_COS, NULL, 0, cs);
    for (int i = 0; i < 8; i++)
        w[i] = -ux[i];
    check_unary(PQ_OP_NEG, NULL, 0, w);
    for (int i = 0; i < 8; i++)
        w[i] = fabs(ux[i]);
    check_unary(PQ_OP_ABS, NULL, 0, w);
    for (int i = 0; i < 8; i++)
        w[i] = floor(ux[i]);
    check_unary(PQ_OP_FLOOR, NULL, 0, w);
    for (int i = 0; i < 8; i++)
        w[i] = ceil(ux[i]);
    check_unary(PQ_OP_CEIL, NULL, 0, w);
    for (int i = 0; i < 8; i++)
        w[i] = ux[i] > 0 ? 1 : ux[i] < 0 ? -1 : 0;
    check_unary(PQ_OP_SIGN, NULL, 0, w);
    for (int i = 0; i < 8; i++)
        w[i] = 1.0 / ux[i];
    w[3] = INFINITY;
    check_unary(PQ_OP_RECIPROCAL, NULL, 0, w);
    for (int i = 0; i < 8; i++)
        w[i] = ux[i] >= 0 ? sqrt(ux[i]) : NAN;
    check_unary(PQ_OP_SQRT, NULL, 0, w);
    for (int i = 0; i < 8; i++)
        w[i] = ux[i] > 0 ? log(ux[i]) : (ux[i] == 0 ? -INFINITY : NAN);
    check_unary(PQ_OP_LOG, NULL, 0, w);
}

Test(ref_ew, activations) {
    double w[8];
    for (int i = 0; i < 8; i++)
        w[i] = ux[i] > 0 ? ux[i] : 0;
    check_unary(PQ_OP_RELU, NULL, 0, w);
    const double lk[8] = {-0.300000012, -0.150000006, -0.0500000007, 0, 0.25, 1, 2.5, 4};
    check_unary(PQ_OP_LEAKY_RELU, "alpha", 0.1, lk);
    for (int i = 0; i < 8; i++)
        w[i] = ux[i] < 0 ? 0.01 * ux[i] : ux[i];
    check_unary(PQ_OP_LEAKY_RELU, NULL, 0, w); /* default alpha */
    const double elu2[8] = {-1.90042591, -1.55373967, -0.786938667, 0, 0.25, 1, 2.5, 4};
    check_unary(PQ_OP_ELU, "alpha", 2.0, elu2);
    const double selu[8] = {-1.6705687,  -1.36581433, -0.691758215, 0,
                            0.262675256, 1.05070102,  2.62675238,   4.20280409};
    check_unary(PQ_OP_SELU, NULL, 0, selu);
    const double celu2[8] = {-1.55373967, -1.05526686, -0.442398429, 0, 0.25, 1, 2.5, 4};
    check_unary(PQ_OP_CELU, "alpha", 2.0, celu2);
    const double hs[8] = {0, 0.200000003, 0.400000006, 0.5, 0.550000012, 0.699999988, 1, 1};
    check_unary(PQ_OP_HARD_SIGMOID, NULL, 0, hs);
    const double hw[8] = {-0, -0.375, -0.208333328, 0, 0.135416672, 0.666666687, 2.29166675, 4};
    check_unary(PQ_OP_HARD_SWISH, NULL, 0, hw);
    const double sp[8] = {0.048587352, 0.201413274, 0.474076986, 0.693147182,
                          0.825939417, 1.31326163,  2.57888985,  4.01814985};
    check_unary(PQ_OP_SOFTPLUS, NULL, 0, sp);
    const double ss[8] = {-0.75,       -0.600000024, -0.333333343, 0,
                          0.200000003, 0.5,          0.714285731,  0.800000012};
    check_unary(PQ_OP_SOFTSIGN, NULL, 0, ss);
    const double tr[8] = {0, 0, 0, 0, 0, 0, 2.5, 4};
    check_unary(PQ_OP_THRESHOLDED_RELU, NULL, 0, tr);
    const double tr2[8] = {0, 0, 0, 0, 0, 0, 2.5, 4};
    check_unary(PQ_OP_THRESHOLDED_RELU, "alpha", 2.0, tr2);
}

Test(ref_ew, round_half_to_even_and_integer_unary) {
    /* ONNX test_round */
    int64_t d[1] = {15};
    double x[15] = {0.1, 0.5,  0.9,  1.2,  1.5,  1.8,  2.3, 2.5,
                    2.7, -1.1, -1.5, -1.9, -2.2, -2.5, -2.8};
    double w[15] = {0, 0, 1, 1, 2, 2, 2, 2, 3, -1, -2, -2, -2, -2, -3};
    pq_tensor *X = pq_test_ew_tensor(PQ_DTYPE_F32, 1, d, x);
    const pq_tensor *in[1] = {X};
    pq_tensor *y = pq_test_ew_simple(PQ_OP_ROUND, in, 1);
    assert_close(y, w, 15, 0, 0);
    int64_t d4[1] = {4};
    int64_t iv[4] = {INT64_MIN + 1, -3, 0, 9};
    pq_tensor *I = pq_test_ew_i64(1, d4, iv);
    const pq_tensor *iin[1] = {I};
    pq_tensor *ab = pq_test_ew_simple(PQ_OP_ABS, iin, 1),
              *ng = pq_test_ew_simple(PQ_OP_NEG, iin, 1);
    pq_tensor *sg = pq_test_ew_simple(PQ_OP_SIGN, iin, 1),
              *rl = pq_test_ew_simple(PQ_OP_RELU, iin, 1);
    int64_t *a = ab->data, *n = ng->data, *s = sg->data, *r = rl->data;
    cr_assert(a[0] == INT64_MAX && a[1] == 3 && a[3] == 9);
    cr_assert(n[0] == INT64_MAX && n[1] == 3 && n[3] == -9);
    cr_assert(s[0] == -1 && s[1] == -1 && s[2] == 0 && s[3] == 1);
    cr_assert(r[0] == 0 && r[1] == 0 && r[3] == 9);
    pq_tensor_destroy(X), pq_tensor_destroy(y), pq_tensor_destroy(I), pq_tensor_destroy(ab);
    pq_tensor_destroy(ng), pq_tensor_destroy(sg), pq_tensor_destroy(rl);
}

Test(ref_ew, not_isnan_isinf) {
    int64_t d[1] = {5};
    double x[5] = {-INFINITY, 1, NAN, INFINITY, 0};
    pq_tensor *X = pq_test_ew_tensor(PQ_DTYPE_F32, 1, d, x);
    const pq_tensor *in[1] = {X};
    pq_tensor *nan_ = pq_test_ew_simple(PQ_OP_IS_NAN, in, 1);
    cr_assert_eq(nan_->dtype, PQ_DTYPE_BOOL);
    const uint8_t wn[5] = {0, 0, 1, 0, 0};
    cr_assert(memcmp(nan_->data, wn, 5) == 0);
    const uint8_t wi[3][5] = {{1, 0, 0, 1, 0}, {0, 0, 0, 1, 0}, {1, 0, 0, 0, 0}};
    for (int k = 0; k < 3; k++) {
        uint32_t nid;
        pq_graph *g = pq_test_ew_graph(PQ_OP_IS_INF, in, 1, 1, &nid);
        pq_error err;
        if (k == 1) pq_node_set_int(g, nid, "detect_negative", 0, &err);
        if (k == 2) pq_node_set_int(g, nid, "detect_positive", 0, &err);
        pq_tensor *o[1];
        cr_assert_eq(pq_test_ew_run(g, nid, o, &err), PQ_OK, "%s", err.msg);
        cr_assert(memcmp(o[0]->data, wi[k], 5) == 0, "case %d", k);
        pq_tensor_destroy(o[0]);
        pq_graph_destroy(g);
    }
    double b[5] = {1, 0, 1, 1, 0};
    pq_tensor *B = pq_test_ew_tensor(PQ_DTYPE_BOOL, 1, d, b);
    const pq_tensor *bin[1] = {B};
    pq_tensor *nb = pq_test_ew_simple(PQ_OP_NOT, bin, 1);
    const uint8_t wb[5] = {0, 1, 0, 0, 1};
    cr_assert(memcmp(nb->data, wb, 5) == 0);
    pq_tensor_destroy(X), pq_tensor_destroy(nan_), pq_tensor_destroy(B), pq_tensor_destroy(nb);
}

Test(ref_ew, clip_bounds) {
    int64_t d[1] = {6};
    double x[6] = {-5, -1, 0, 0.5, 3, 10}, lo = -1.5, hi = 2;
    pq_tensor *X = pq_test_ew_tensor(PQ_DTYPE_F32, 1, d, x);
    pq_tensor *L = pq_test_ew_tensor(PQ_DTYPE_F32, 0, NULL, &lo),
              *H = pq_test_ew_tensor(PQ_DTYPE_F32, 0, NULL, &hi);
    const pq_tensor *both[3] = {X, L, H}, *maxonly[3] = {X, NULL, H}, *none[1] = {X};
    pq_tensor *y1 = pq_test_ew_simple(PQ_OP_CLIP, both, 3);
    pq_tensor *y2 = pq_test_ew_simple(PQ_OP_CLIP, maxonly, 3);
    pq_tensor *y3 = pq_test_ew_simple(PQ_OP_CLIP, none, 1);
    double w1[6] = {-1.5, -1, 0, 0.5, 2, 2}, w2[6] = {-5, -1, 0, 0.5, 2, 2};
    assert_close(y1, w1, 6, 0, 0);
    assert_close(y2, w2, 6, 0, 0);
    assert_close(y3, x, 6, 0, 0);
    /* int8 with min only */
    double xi[6] = {-128, -10, 0, 5, 100, 127}, mi = -5;
    pq_tensor *XI = pq_test_ew_tensor(PQ_DTYPE_I8, 1, d, xi),
              *MI = pq_test_ew_tensor(PQ_DTYPE_I8, 0, NULL, &mi);
    const pq_tensor *iin[2] = {XI, MI};
    pq_tensor *yi = pq_test_ew_simple(PQ_OP_CLIP, iin, 2);
    double wi[6] = {-5, -5, 0, 5, 100, 127};
    assert_close(yi, wi, 6, 0, 0);
    pq_tensor_destroy(X), pq_tensor_destroy(L), pq_tensor_destroy(H), pq_tensor_destroy(y1);
    pq_tensor_destroy(y2), pq_tensor_destroy(y3), pq_tensor_destroy(XI), pq_tensor_destroy(MI);
    pq_tensor_destroy(yi);
}

static pq_tensor *run_cast(const pq_tensor *x, const char *to) {
    const pq_tensor *in[1] = {x};
    uint32_t nid;
    pq_graph *g = pq_test_ew_graph(PQ_OP_CAST, in, 1, 1, &nid);
    pq_error err;
    cr_assert_eq(pq_node_set_string(g, nid, "to", to, &err), PQ_OK);
    pq_tensor *o[1];
    cr_assert_eq(pq_test_ew_run(g, nid, o, &err), PQ_OK, "%s", err.msg);
    pq_graph_destroy(g);
    return o[0];
}

Test(ref_ew, cast_between_dtypes) {
    int64_t d[1] = {5};
    double x[5] = {-2.7, -0.5, 0, 1.9, 300.25};
    pq_tensor *X = pq_test_ew_tensor(PQ_DTYPE_F32, 1, d, x);
    pq_tensor *i32 = run_cast(X, "i32");
    cr_assert_eq(i32->dtype, PQ_DTYPE_I32);
    int32_t *iv = i32->data;
    cr_assert(iv[0] == -2 && iv[1] == 0 && iv[2] == 0 && iv[3] == 1 && iv[4] == 300);
    pq_tensor *h = run_cast(X, "f16");
    uint16_t *hv = h->data;
    for (int i = 0; i < 5; i++)
        cr_assert_eq(hv[i], pq_f32_to_f16((float)x[i]));
    pq_tensor *b = run_cast(X, "bool");
    const uint8_t wb[5] = {1, 1, 0, 1, 1};
    cr_assert(memcmp(b->data, wb, 5) == 0);
    pq_tensor *f64 = run_cast(h, "f64");
    for (int i = 0; i < 5; i++)
        cr_assert_eq(((double *)f64->data)[i], (double)pq_f16_to_f32(hv[i]));
    /* integer casts wrap; large i64 to f32 */
    int64_t iv64[5] = {300, -1, (1LL << 40) + 3, 255, -129};
    pq_tensor *I = pq_test_ew_i64(1, d, iv64);
    pq_tensor *u8 = run_cast(I, "u8"), *i8 = run_cast(I, "i8"), *f = run_cast(I, "f32");
    uint8_t *uv = u8->data;
    int8_t *sv = i8->data;
    cr_assert(uv[0] == 44 && uv[1] == 255 && uv[3] == 255 && uv[4] == 127);
    cr_assert(sv[0] == 44 && sv[1] == -1 && sv[3] == -1 && sv[4] == 127);
    cr_assert_eq(((float *)f->data)[2], (float)((1LL << 40) + 3));
    pq_tensor *bf = run_cast(b, "f32");
    double wbf[5] = {1, 1, 0, 1, 1};
    assert_close(bf, wbf, 5, 0, 0);
    pq_tensor_destroy(X), pq_tensor_destroy(i32), pq_tensor_destroy(h), pq_tensor_destroy(b);
    pq_tensor_destroy(f64), pq_tensor_destroy(I), pq_tensor_destroy(u8), pq_tensor_destroy(i8);
    pq_tensor_destroy(f), pq_tensor_destroy(bf);
}

/* ---- softmax family ---- */

static pq_tensor *run_softmax(enum pq_op op, const pq_tensor *x, int64_t axis, int coerce) {
    const pq_tensor *in[1] = {x};
    uint32_t nid;
    pq_graph *g = pq_test_ew_graph(op, in, 1, 1, &nid);
    pq_error err;
    cr_assert_eq(pq_node_set_int(g, nid, "axis", axis, &err), PQ_OK);
    if (coerce) cr_assert_eq(pq_node_set_int(g, nid, "coerce_2d", 1, &err), PQ_OK);
    pq_tensor *o[1];
    cr_assert_eq(pq_test_ew_run(g, nid, o, &err), PQ_OK, "%s", err.msg);
    pq_graph_destroy(g);
    return o[0];
}

Test(ref_ew, softmax_logsoftmax_axes) {
    int64_t d[3] = {2, 3, 4};
    double x[24];
    fill_pattern(x, 24, 4.0, 0.1);
    x[5] = 1000; /* large values must not overflow */
    pq_tensor *X = pq_test_ew_tensor(PQ_DTYPE_F32, 3, d, x);
    for (int axis = -1; axis < 3; axis++) {
        int ax = axis < 0 ? 2 : axis;
        int64_t st[3] = {12, 4, 1};
        double w[24], wl[24];
        for (int i = 0; i < 24; i++) {
            int64_t idx[3] = {i / 12, (i / 4) % 3, i % 4};
            double mx = -INFINITY, sum = 0;
            for (int k = 0; k < d[ax]; k++) {
                int64_t j = i + (k - idx[ax]) * st[ax];
                mx = fmax(mx, (float)x[j]);
            }
            for (int k = 0; k < d[ax]; k++) {
                int64_t j = i + (k - idx[ax]) * st[ax];
                sum += exp((float)x[j] - mx);
            }
            w[i] = exp((float)x[i] - mx) / sum;
            wl[i] = (float)x[i] - mx - log(sum);
        }
        pq_tensor *y = run_softmax(PQ_OP_SOFTMAX, X, axis, 0);
        pq_tensor *yl = run_softmax(PQ_OP_LOG_SOFTMAX, X, axis, 0);
        assert_close(y, w, 24, 1e-6, 1e-7);
        assert_close(yl, wl, 24, 1e-6, 1e-6);
        pq_tensor_destroy(y), pq_tensor_destroy(yl);
    }
    /* coerce_2d with axis 1: rows of 12 */
    pq_tensor *yc = run_softmax(PQ_OP_SOFTMAX, X, 1, 1);
    for (int r = 0; r < 2; r++) {
        double mx = -INFINITY, sum = 0;
        for (int k = 0; k < 12; k++)
            mx = fmax(mx, (float)x[r * 12 + k]);
        for (int k = 0; k < 12; k++)
            sum += exp((float)x[r * 12 + k] - mx);
        for (int k = 0; k < 12; k++) {
            double want = exp((float)x[r * 12 + k] - mx) / sum;
            cr_assert(fabs(((float *)yc->data)[r * 12 + k] - want) < 1e-6);
        }
    }
    pq_tensor_destroy(yc);
    pq_tensor_destroy(X);
}

Test(ref_ew, hardmax_first_max_wins) {
    int64_t d[2] = {3, 4};
    double x[12] = {1, 3, 3, 0, -1, -1, -1, -1, 2, 0, 5, 5};
    pq_tensor *X = pq_test_ew_tensor(PQ_DTYPE_F32, 2, d, x);
    pq_tensor *y = run_softmax(PQ_OP_HARDMAX, X, -1, 0);
    double w[12] = {0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0};
    assert_close(y, w, 12, 0, 0);
    pq_tensor *y0 = run_softmax(PQ_OP_HARDMAX, X, 0, 0);
    double w0[12] = {0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1};
    assert_close(y0, w0, 12, 0, 0);
    pq_tensor_destroy(X), pq_tensor_destroy(y), pq_tensor_destroy(y0);
}

/* ---- error paths through inference ---- */

Test(ref_ew, invalid_inputs_are_reported) {
    int64_t d3[1] = {3}, d4[1] = {4};
    double v[4] = {1, 2, 3, 4};
    pq_tensor *A = pq_test_ew_tensor(PQ_DTYPE_F32, 1, d3, v),
              *B = pq_test_ew_tensor(PQ_DTYPE_F32, 1, d4, v);
    pq_tensor *I = pq_test_ew_tensor(PQ_DTYPE_I32, 1, d3, v);
    const pq_tensor *ab[2] = {A, B}, *ai[2] = {A, I}, *ii[1] = {I};
    pq_error err;
    pq_tensor *o[1];
    uint32_t nid;
    pq_graph *g = pq_test_ew_graph(PQ_OP_ADD, ab, 2, 1, &nid);
    cr_assert_eq(pq_test_ew_run(g, nid, o, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "broadcast"), "%s", err.msg);
    pq_graph_destroy(g);
    g = pq_test_ew_graph(PQ_OP_MUL, ai, 2, 1, &nid);
    cr_assert_eq(pq_test_ew_run(g, nid, o, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "dtypes"), "%s", err.msg);
    pq_graph_destroy(g);
    g = pq_test_ew_graph(PQ_OP_SQRT, ii, 1, 1, &nid);
    cr_assert_eq(pq_test_ew_run(g, nid, o, &err), PQ_ERR_INVALID);
    pq_graph_destroy(g);
    g = pq_test_ew_graph(PQ_OP_CAST, ii, 1, 1, &nid);
    cr_assert_eq(pq_test_ew_run(g, nid, o, &err), PQ_ERR_INVALID); /* no 'to' */
    cr_assert_eq(pq_node_set_string(g, nid, "to", "float", &err), PQ_OK);
    cr_assert_eq(pq_test_ew_run(g, nid, o, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "float"), "%s", err.msg);
    pq_graph_destroy(g);
    g = pq_test_ew_graph(PQ_OP_SOFTMAX, ii, 1, 1, &nid);
    cr_assert_eq(pq_test_ew_run(g, nid, o, &err), PQ_ERR_INVALID); /* integer softmax */
    pq_graph_destroy(g);
    pq_tensor_destroy(A), pq_tensor_destroy(B), pq_tensor_destroy(I);
}
