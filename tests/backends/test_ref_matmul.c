/* Tests of the blocked f32 GEMM, the MatMul / Gemm / MatMulInteger reference kernels (against
 * naive double loops and ONNX conformance literals). Also holds the single-node harness
 * (pq_test_nn_*) that test_ref_conv/pool/norm/rnn.c share. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "backends/ref/ref.h"
#include "backends/ref/ref_gemm.h"
#include "ir/ir.h"

/* ---- nn single-node harness ---- */

pq_tensor *pq_test_nn_f32(int rank, const int64_t *dims, const float *vals);
pq_tensor *pq_test_nn_rand(enum pq_dtype dt, int rank, const int64_t *dims, uint32_t seed);
pq_graph *pq_test_nn_node(enum pq_op op, const pq_tensor *const *in, uint32_t n_in,
                          uint32_t out_mask, uint32_t n_out, uint32_t *nid);
enum pq_status pq_test_nn_run(pq_graph *g, uint32_t nid, pq_tensor **outs, pq_error *err);
void pq_test_nn_close(const pq_tensor *t, const double *want, int64_t n, double rtol, double atol);
void pq_test_nn_close_f(const pq_tensor *t, const float *want, int64_t n, double rtol, double atol);

/* f32 tensor with the given values (vals may be NULL: zeros). */
pq_tensor *pq_test_nn_f32(int rank, const int64_t *dims, const float *vals) {
    pq_error err;
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_F32, rank, dims, &err);
    cr_assert_not_null(t, "%s", err.msg);
    if (vals) memcpy(t->data, vals, (size_t)pq_tensor_numel(t) * sizeof(float));
    return t;
}

/* Tensor of float dtype dt with deterministic pseudo-random values in [-1, 1). */
pq_tensor *pq_test_nn_rand(enum pq_dtype dt, int rank, const int64_t *dims, uint32_t seed) {
    pq_error err;
    pq_tensor *t = pq_tensor_create(dt, rank, dims, &err);
    cr_assert_not_null(t, "%s", err.msg);
    uint32_t s = seed * 2654435761u + 12345u;
    int64_t n = pq_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        double v = (double)(s >> 8) / (double)(1u << 24) * 2.0 - 1.0;
        pq_dtype_store(dt, t->data, (size_t)i, v);
    }
    return t;
}

/* One node of op with constant inputs cloned from in[] (NULL = omitted) and n_out outputs of
 * which those whose bit is set in out_mask are present. */
pq_graph *pq_test_nn_node(enum pq_op op, const pq_tensor *const *in, uint32_t n_in,
                          uint32_t out_mask, uint32_t n_out, uint32_t *nid) {
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
    for (uint32_t i = 0; i < n_out; i++) {
        outs[i] = PQ_NONE;
        if (out_mask & (1u << i))
            cr_assert_eq(pq_graph_add_value(g, NULL, PQ_DTYPE_UNDEFINED, NULL, &outs[i], &err),
                         PQ_OK);
    }
    cr_assert_eq(pq_graph_add_node(g, op, "n0", ins, n_in, outs, n_out, nid, &err), PQ_OK, "%s",
                 err.msg);
    return g;
}

/* Infers the node, allocates its present outputs poisoned with 0xFF bytes (NaN for floats) and
 * runs the reference kernel. outs[i] is NULL for absent outputs; caller destroys the others. */
enum pq_status pq_test_nn_run(pq_graph *g, uint32_t nid, pq_tensor **outs, pq_error *err) {
    pq_error_clear(err);
    const pq_node *n = &g->nodes[nid];
    for (uint32_t i = 0; i < n->n_outputs; i++)
        outs[i] = NULL;
    PQ_TRY(pq_infer_node(g, nid, err));
    const pq_tensor *in[8];
    for (uint32_t i = 0; i < n->n_inputs; i++)
        in[i] = n->inputs[i] == PQ_NONE ? NULL : g->values[n->inputs[i]].constant;
    for (uint32_t i = 0; i < n->n_outputs; i++) {
        if (n->outputs[i] == PQ_NONE) continue;
        const pq_value *v = &g->values[n->outputs[i]];
        int64_t dims[PQ_MAX_RANK];
        cr_assert(pq_shape_is_static(&v->shape, dims), "output %u shape not static", i);
        outs[i] = pq_tensor_create(v->dtype, v->shape.rank, dims, err);
        cr_assert_not_null(outs[i], "%s", err->msg);
        memset(outs[i]->data, 0xFF, outs[i]->nbytes);
    }
    pq_kernel_args a = {g, n, in, n->n_inputs, outs, n->n_outputs, NULL, 1, err};
    return pq_ref_run(&a);
}

void pq_test_nn_close(const pq_tensor *t, const double *want, int64_t n, double rtol, double atol) {
    cr_assert_eq(pq_tensor_numel(t), n, "numel %lld, expected %lld", (long long)pq_tensor_numel(t),
                 (long long)n);
    for (int64_t i = 0; i < n; i++) {
        double got = pq_dtype_load(t->dtype, t->data, (size_t)i);
        cr_assert(fabs(got - want[i]) <= atol + rtol * fabs(want[i]),
                  "element %lld: got %.9g, expected %.9g", (long long)i, got, want[i]);
    }
}

void pq_test_nn_close_f(const pq_tensor *t, const float *want, int64_t n, double rtol,
                        double atol) {
    cr_assert_eq(pq_tensor_numel(t), n, "numel %lld, expected %lld", (long long)pq_tensor_numel(t),
                 (long long)n);
    for (int64_t i = 0; i < n; i++) {
        double got = pq_dtype_load(t->dtype, t->data, (size_t)i);
        cr_assert(fabs(got - want[i]) <= atol + rtol * fabs((double)want[i]),
                  "element %lld: got %.9g, expected %.9g", (long long)i, got, (double)want[i]);
    }
}

/* ---- GEMM helper ---- */

/* naive double reference of C = alpha op(A) op(B) + beta C */
static void naive_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha,
                       const float *A, int64_t lda, const float *B, int64_t ldb, double beta,
                       const float *C0, int64_t ldc, double *out) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++)
                s += (double)(ta ? A[k * lda + i] : A[i * lda + k]) *
                     (double)(tb ? B[j * ldb + k] : B[k * ldb + j]);
            out[i * N + j] = alpha * s + (beta != 0.0 ? beta * C0[i * ldc + j] : 0.0);
        }
}

static float *rand_buf(int64_t n, uint32_t seed) {
    float *b = pq_malloc((size_t)n * sizeof(float) + 4);
    uint32_t s = seed;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        b[i] = (float)((double)(s >> 8) / (double)(1u << 24) * 2.0 - 1.0);
    }
    return b;
}

Test(ref_matmul, sgemm_sizes_trans_strides) {
    /* sizes cover 0, 1, tails of the 4x8 tile and the 128/256/2048 cache blocks */
    const int64_t sizes[][3] = {{1, 1, 1},      {3, 5, 7},     {4, 8, 1}, {5, 9, 300},
                                {130, 17, 257}, {67, 2050, 3}, {0, 4, 4}, {4, 4, 0}};
    for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++)
        for (int t = 0; t < 4; t++) {
            bool ta = t & 1, tb = t & 2;
            int64_t M = sizes[c][0], N = sizes[c][1], K = sizes[c][2];
            int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
            float *A = rand_buf((ta ? K : M) * lda + 1, 1 + (uint32_t)c);
            float *B = rand_buf((tb ? N : K) * ldb + 1, 7 + (uint32_t)c);
            float *C = rand_buf(M * ldc + 1, 11);
            double *want = pq_malloc((size_t)(M * N + 1) * sizeof(double));
            float beta = t == 3 ? 0.0f : 0.75f;
            naive_gemm(ta, tb, M, N, K, 1.5, A + 1, lda, B + 1, ldb, beta, C, ldc, want);
            if (beta == 0.0f)
                for (int64_t i = 0; i < M * ldc; i++)
                    C[i] = NAN; /* beta 0 must ignore C */
            pq_error err;
            cr_assert_eq(
                pq_ref_sgemm(ta, tb, M, N, K, 1.5f, A + 1, lda, B + 1, ldb, beta, C, ldc, &err),
                PQ_OK);
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++)
                    cr_assert(fabs(C[i * ldc + j] - want[i * N + j]) < 1e-4 * (1 + K),
                              "case %zu t%d (%lld,%lld): %g vs %g", c, t, (long long)i,
                              (long long)j, C[i * ldc + j], want[i * N + j]);
            pq_free(A);
            pq_free(B);
            pq_free(C);
            pq_free(want);
        }
}

/* Fewer than 8 columns (no packing): the bits of the packed path, which computes every column
 * independently, so C[:, :n] of an 8-column product (packed) must equal the n-column product of
 * the same leading columns of B, for every transposition, alpha, beta and K across the 256 block.
 */
Test(ref_matmul, sgemm_few_columns_same_bits_as_packed) {
    const int64_t Ms[] = {2, 4, 9, 21}, Ks[] = {1, 7, 256, 300, 600};
    const float betas[] = {0.0f, 1.0f, 0.75f}, alphas[] = {1.0f, 1.5f};
    for (size_t mi = 0; mi < sizeof Ms / sizeof Ms[0]; mi++)
        for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++)
            for (int t = 0; t < 4; t++) {
                bool ta = t & 1, tb = t & 2;
                int64_t M = Ms[mi], K = Ks[ki], N8 = 8;
                if (M < 4 && !(ta && tb)) continue; /* the few-rows path, not packed either */
                int64_t lda = (ta ? M : K) + 1, ldb = (tb ? K : N8) + 2, ldc = N8 + 1;
                float *A = rand_buf((ta ? K : M) * lda, 21 + (uint32_t)(mi * 7 + ki));
                float *B = rand_buf((tb ? N8 : K) * ldb, 31 + (uint32_t)ki);
                float *C0 = rand_buf(M * ldc, 41);
                float *C8 = pq_malloc((size_t)(M * ldc) * sizeof(float));
                float *Cn = pq_malloc((size_t)(M * ldc) * sizeof(float));
                for (size_t bi = 0; bi < sizeof betas / sizeof betas[0]; bi++)
                    for (size_t ai = 0; ai < sizeof alphas / sizeof alphas[0]; ai++)
                        for (int64_t n = 1; n < N8; n++) {
                            float alpha = alphas[ai], beta = betas[bi];
                            memcpy(C8, C0, (size_t)(M * ldc) * sizeof(float));
                            memcpy(Cn, C0, (size_t)(M * ldc) * sizeof(float));
                            pq_error err;
                            cr_assert_eq(pq_ref_sgemm(ta, tb, M, N8, K, alpha, A, lda, B, ldb, beta,
                                                      C8, ldc, &err),
                                         PQ_OK);
                            cr_assert_eq(pq_ref_sgemm(ta, tb, M, n, K, alpha, A, lda, B, ldb, beta,
                                                      Cn, ldc, &err),
                                         PQ_OK);
                            for (int64_t i = 0; i < M; i++)
                                for (int64_t j = 0; j < ldc; j++)
                                    cr_assert(!memcmp(&Cn[i * ldc + j],
                                                      j < n ? &C8[i * ldc + j] : &C0[i * ldc + j],
                                                      sizeof(float)),
                                              "M %lld K %lld t%d n %lld alpha %g beta %g: C[%lld, "
                                              "%lld] %a, packed %a",
                                              (long long)M, (long long)K, t, (long long)n, alpha,
                                              beta, (long long)i, (long long)j, Cn[i * ldc + j],
                                              C8[i * ldc + j]);
                        }
                pq_free(A);
                pq_free(B);
                pq_free(C0);
                pq_free(C8);
                pq_free(Cn);
            }
}

/* ---- MatMul ---- */

/* Runs MatMul on random a, b and compares with numpy semantics computed naively here. */
static void check_matmul(int ra, const int64_t *da, int rb, const int64_t *db, int ro,
                         const int64_t *dout, enum pq_dtype dt) {
    pq_tensor *A = pq_test_nn_rand(dt, ra, da, 3), *B = pq_test_nn_rand(dt, rb, db, 5);
    const pq_tensor *in[2] = {A, B};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_MATMUL, in, 2, 1, 1, &nid);
    pq_tensor *out[1];
    pq_error err;
    cr_assert_eq(pq_test_nn_run(g, nid, out, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(out[0]->rank, ro);
    for (int i = 0; i < ro; i++)
        cr_assert_eq(out[0]->dims[i], dout[i]);
    /* naive: promote to [batch..., M, K] x [batch..., K, N] */
    int64_t K = da[ra - 1], M = ra >= 2 ? da[ra - 2] : 1, N = rb >= 2 ? db[rb - 1] : 1;
    int64_t nout = pq_tensor_numel(out[0]), nb = nout / (M * N);
    int nbr = ro - (ra >= 2) - (rb >= 2);
    double *want = pq_malloc((size_t)nout * sizeof(double));
    for (int64_t bi = 0; bi < nb; bi++) {
        int64_t idx[PQ_MAX_RANK], r = bi;
        for (int i = nbr - 1; i >= 0; i--) {
            idx[i] = r % dout[i];
            r /= dout[i];
        }
        int64_t oa = 0, ob = 0, sa = M * K, sb = K * N;
        for (int i = nbr - 1; i >= 0; i--) {
            int ia = i - (nbr - (ra - 2)), ib = i - (nbr - (rb - 2));
            int64_t ea = ia >= 0 && ra > 2 ? da[ia] : 1, eb = ib >= 0 && rb > 2 ? db[ib] : 1;
            oa += (ea == 1 ? 0 : idx[i]) * sa;
            ob += (eb == 1 ? 0 : idx[i]) * sb;
            sa *= ea;
            sb *= eb;
        }
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++)
                    s += pq_dtype_load(dt, A->data, (size_t)(oa + i * K + k)) *
                         pq_dtype_load(dt, B->data, (size_t)(ob + k * N + j));
                want[(bi * M + i) * N + j] = s;
            }
    }
    double tol = dt == PQ_DTYPE_F16 ? 2e-2 : 1e-5;
    pq_test_nn_close(out[0], want, nout, tol, tol * (double)K);
    pq_free(want);
    pq_tensor_destroy(out[0]);
    pq_tensor_destroy(A);
    pq_tensor_destroy(B);
    pq_graph_destroy(g);
}

Test(ref_matmul, matmul_shapes) {
    check_matmul(2, (int64_t[]){3, 4}, 2, (int64_t[]){4, 3}, 2, (int64_t[]){3, 3}, PQ_DTYPE_F32);
    check_matmul(3, (int64_t[]){2, 3, 4}, 3, (int64_t[]){2, 4, 3}, 3, (int64_t[]){2, 3, 3},
                 PQ_DTYPE_F32);
    /* B shared by every batch (transformer linear layer) */
    check_matmul(3, (int64_t[]){2, 5, 33}, 2, (int64_t[]){33, 19}, 3, (int64_t[]){2, 5, 19},
                 PQ_DTYPE_F32);
    /* broadcasting batch dims both ways */
    check_matmul(4, (int64_t[]){2, 1, 3, 4}, 3, (int64_t[]){3, 4, 5}, 4, (int64_t[]){2, 3, 3, 5},
                 PQ_DTYPE_F32);
    check_matmul(2, (int64_t[]){3, 4}, 4, (int64_t[]){2, 2, 4, 6}, 4, (int64_t[]){2, 2, 3, 6},
                 PQ_DTYPE_F32);
    /* 1-D operands */
    check_matmul(1, (int64_t[]){4}, 2, (int64_t[]){4, 3}, 1, (int64_t[]){3}, PQ_DTYPE_F32);
    check_matmul(3, (int64_t[]){2, 3, 4}, 1, (int64_t[]){4}, 2, (int64_t[]){2, 3}, PQ_DTYPE_F32);
    check_matmul(1, (int64_t[]){7}, 1, (int64_t[]){7}, 0, NULL, PQ_DTYPE_F32);
    /* other float dtypes */
    check_matmul(2, (int64_t[]){5, 6}, 2, (int64_t[]){6, 3}, 2, (int64_t[]){5, 3}, PQ_DTYPE_F64);
    check_matmul(3, (int64_t[]){2, 5, 6}, 3, (int64_t[]){2, 6, 3}, 3, (int64_t[]){2, 5, 3},
                 PQ_DTYPE_F16);
}

Test(ref_matmul, matmul_int32) {
    int64_t da[2] = {2, 3}, db[2] = {3, 2};
    pq_error err;
    pq_tensor *A = pq_tensor_create(PQ_DTYPE_I32, 2, da, &err);
    pq_tensor *B = pq_tensor_create(PQ_DTYPE_I32, 2, db, &err);
    int32_t av[6] = {1, -2, 3, 4, 5, -6}, bv[6] = {7, 8, 9, -10, 11, 12};
    memcpy(A->data, av, sizeof av);
    memcpy(B->data, bv, sizeof bv);
    const pq_tensor *in[2] = {A, B};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_MATMUL, in, 2, 1, 1, &nid);
    pq_tensor *out[1];
    cr_assert_eq(pq_test_nn_run(g, nid, out, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(out[0]->dtype, PQ_DTYPE_I32);
    const int32_t want[4] = {22, 64, 7, -90};
    cr_assert_arr_eq(out[0]->data, want, sizeof want);
    pq_tensor_destroy(out[0]);
    pq_tensor_destroy(A);
    pq_tensor_destroy(B);
    pq_graph_destroy(g);
}

/* ---- Gemm ---- */

static void check_gemm(int64_t M, int64_t N, int64_t K, int ta, int tb, float alpha, float beta,
                       int crank, const int64_t *cdims) {
    int64_t da[2] = {ta ? K : M, ta ? M : K}, db[2] = {tb ? N : K, tb ? K : N};
    pq_tensor *A = pq_test_nn_rand(PQ_DTYPE_F32, 2, da, 1);
    pq_tensor *B = pq_test_nn_rand(PQ_DTYPE_F32, 2, db, 2);
    pq_tensor *C = crank >= 0 ? pq_test_nn_rand(PQ_DTYPE_F32, crank, cdims, 3) : NULL;
    const pq_tensor *in[3] = {A, B, C};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_GEMM, in, C ? 3 : 2, 1, 1, &nid);
    pq_error err;
    if (ta) pq_node_set_int(g, nid, "transA", 1, &err);
    if (tb) pq_node_set_int(g, nid, "transB", 1, &err);
    if (alpha != 1.0f) pq_node_set_float(g, nid, "alpha", alpha, &err);
    if (beta != 1.0f) pq_node_set_float(g, nid, "beta", beta, &err);
    pq_tensor *out[1];
    cr_assert_eq(pq_test_nn_run(g, nid, out, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(out[0]->dims[0], M);
    cr_assert_eq(out[0]->dims[1], N);
    double *want = pq_malloc((size_t)(M * N) * sizeof(double));
    naive_gemm(ta, tb, M, N, K, alpha, A->data, da[1], B->data, db[1], 0.0, NULL, 0, want);
    if (C) {
        const float *cv = C->data;
        int64_t cm = crank == 2 ? cdims[0] : 1, cn = crank >= 1 ? cdims[crank - 1] : 1;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++)
                want[i * N + j] += beta * cv[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
    }
    pq_test_nn_close(out[0], want, M * N, 1e-5, 1e-5 * (double)K);
    pq_free(want);
    pq_tensor_destroy(out[0]);
    pq_tensor_destroy(A);
    pq_tensor_destroy(B);
    pq_tensor_destroy(C);
    pq_graph_destroy(g);
}

Test(ref_matmul, gemm_attributes_and_bias_shapes) {
    check_gemm(4, 5, 3, 1, 1, 0.25f, 0.35f, 2, (int64_t[]){1, 5});
    check_gemm(3, 4, 6, 0, 0, 1.0f, 1.0f, 2, (int64_t[]){3, 4});
    check_gemm(3, 4, 6, 0, 1, 1.0f, 1.0f, 2, (int64_t[]){3, 1});
    check_gemm(2, 4, 3, 0, 0, 1.0f, 1.0f, 0, NULL);                /* scalar C */
    check_gemm(3, 3, 7, 0, 0, 1.0f, 1.0f, 1, (int64_t[]){1});      /* one-element vector */
    check_gemm(2, 10, 7, 1, 0, 0.5f, 0.5f, 1, (int64_t[]){10});    /* row vector */
    check_gemm(2, 3, 10, 0, 0, 1.0f, 1.0f, -1, NULL);              /* no C */
    check_gemm(37, 70, 300, 0, 1, 1.0f, 1.0f, 1, (int64_t[]){70}); /* Linear layer shape */
}

Test(ref_matmul, gemm_conformance_all_attributes) {
    /* onnx test_gemm_all_attributes: a[4,3], b[5,4], c[1,5], alpha .25 beta .35 transA transB;
     * expected computed with numpy */
    const float a[12] = {0.5488135f, 0.71518934f, 0.60276335f, 0.5448832f, 0.4236548f,  0.6458941f,
                         0.4375872f, 0.891773f,   0.96366274f, 0.3834415f, 0.79172504f, 0.5288949f};
    const float b[20] = {0.56804454f, 0.92559665f, 0.07103606f, 0.0871293f, 0.0202184f,
                         0.83261985f, 0.77815676f, 0.87001216f, 0.9786183f, 0.7991586f,
                         0.46147937f, 0.7805292f,  0.11827443f, 0.639921f,  0.14335328f,
                         0.9446689f,  0.5218483f,  0.41466194f, 0.2645556f, 0.7742337f};
    const float c[5] = {0.45615032f, 0.56843394f, 0.0187898f, 0.6176355f, 0.6120957f};
    double want[15];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 5; j++) {
            double s = 0;
            for (int k = 0; k < 4; k++)
                s += (double)a[k * 3 + i] * b[j * 4 + k];
            want[i * 5 + j] = 0.25 * s + 0.35 * c[j];
        }
    pq_tensor *A = pq_test_nn_f32(2, (int64_t[]){4, 3}, a);
    pq_tensor *B = pq_test_nn_f32(2, (int64_t[]){5, 4}, b);
    pq_tensor *C = pq_test_nn_f32(2, (int64_t[]){1, 5}, c);
    const pq_tensor *in[3] = {A, B, C};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_GEMM, in, 3, 1, 1, &nid);
    pq_error err;
    pq_node_set_int(g, nid, "transA", 1, &err);
    pq_node_set_int(g, nid, "transB", 1, &err);
    pq_node_set_float(g, nid, "alpha", 0.25f, &err);
    pq_node_set_float(g, nid, "beta", 0.35f, &err);
    pq_tensor *out[1];
    cr_assert_eq(pq_test_nn_run(g, nid, out, &err), PQ_OK, "%s", err.msg);
    pq_test_nn_close(out[0], want, 15, 1e-6, 1e-6);
    /* the conformance output_0.pb */
    const float conf[15] = {0.37979913f, 0.48367360f, 0.37501436f, 0.42580932f, 0.44547832f,
                            0.39233345f, 0.63644016f, 0.52356744f, 0.52403510f, 0.56368291f,
                            0.42334533f, 0.63895106f, 0.49747032f, 0.49676925f, 0.52593583f};
    pq_test_nn_close_f(out[0], conf, 15, 1e-5, 1e-6);
    pq_tensor_destroy(out[0]);
    pq_tensor_destroy(A);
    pq_tensor_destroy(B);
    pq_tensor_destroy(C);
    pq_graph_destroy(g);
}

/* ---- MatMulInteger ---- */

Test(ref_matmul, matmul_integer_conformance) {
    /* onnx test_matmulinteger: A u8 [4,3], B u8 [3,2], zero points 12 and 0 */
    const uint8_t a[12] = {11, 7, 3, 10, 6, 2, 9, 5, 1, 8, 4, 0};
    const uint8_t b[6] = {1, 4, 2, 5, 3, 6};
    const int32_t want[8] = {-38, -83, -44, -98, -50, -113, -56, -128};
    pq_error err;
    pq_tensor *A = pq_tensor_create(PQ_DTYPE_U8, 2, (int64_t[]){4, 3}, &err);
    pq_tensor *B = pq_tensor_create(PQ_DTYPE_U8, 2, (int64_t[]){3, 2}, &err);
    pq_tensor *za = pq_tensor_create(PQ_DTYPE_U8, 1, (int64_t[]){1}, &err);
    pq_tensor *zb = pq_tensor_create(PQ_DTYPE_U8, 1, (int64_t[]){1}, &err);
    memcpy(A->data, a, sizeof a);
    memcpy(B->data, b, sizeof b);
    ((uint8_t *)za->data)[0] = 12;
    ((uint8_t *)zb->data)[0] = 0;
    const pq_tensor *in[4] = {A, B, za, zb};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_MATMUL_INTEGER, in, 4, 1, 1, &nid);
    pq_tensor *out[1];
    cr_assert_eq(pq_test_nn_run(g, nid, out, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(out[0]->dtype, PQ_DTYPE_I32);
    cr_assert_arr_eq(out[0]->data, want, sizeof want);
    pq_tensor_destroy(out[0]);
    pq_tensor_destroy(A);
    pq_tensor_destroy(B);
    pq_tensor_destroy(za);
    pq_tensor_destroy(zb);
    pq_graph_destroy(g);
}

Test(ref_matmul, matmul_integer_per_row_col_zero_points_i8) {
    const int8_t a[6] = {-3, 5, 7, 100, -128, 127}; /* [2,3] */
    const int8_t b[6] = {1, -2, 3, 4, -5, 6};       /* [3,2] */
    const int8_t zav[2] = {1, -2}, zbv[2] = {3, -1};
    int32_t want[4];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            int32_t s = 0;
            for (int k = 0; k < 3; k++)
                s += (a[i * 3 + k] - zav[i]) * (b[k * 2 + j] - zbv[j]);
            want[i * 2 + j] = s;
        }
    pq_error err;
    pq_tensor *A = pq_tensor_create(PQ_DTYPE_I8, 2, (int64_t[]){2, 3}, &err);
    pq_tensor *B = pq_tensor_create(PQ_DTYPE_I8, 2, (int64_t[]){3, 2}, &err);
    pq_tensor *za = pq_tensor_create(PQ_DTYPE_I8, 1, (int64_t[]){2}, &err);
    pq_tensor *zb = pq_tensor_create(PQ_DTYPE_I8, 1, (int64_t[]){2}, &err);
    memcpy(A->data, a, sizeof a);
    memcpy(B->data, b, sizeof b);
    memcpy(za->data, zav, sizeof zav);
    memcpy(zb->data, zbv, sizeof zbv);
    const pq_tensor *in[4] = {A, B, za, zb};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_MATMUL_INTEGER, in, 4, 1, 1, &nid);
    pq_tensor *out[1];
    cr_assert_eq(pq_test_nn_run(g, nid, out, &err), PQ_OK, "%s", err.msg);
    cr_assert_arr_eq(out[0]->data, want, sizeof want);
    pq_tensor_destroy(out[0]);
    pq_tensor_destroy(A);
    pq_tensor_destroy(B);
    pq_tensor_destroy(za);
    pq_tensor_destroy(zb);
    pq_graph_destroy(g);
}

/* Kernels called with a missing input or output report INVALID instead of crashing. */
Test(ref_matmul, missing_arguments_are_errors) {
    const enum pq_op ops[] = {PQ_OP_MATMUL,
                              PQ_OP_GEMM,
                              PQ_OP_CONV,
                              PQ_OP_CONV_TRANSPOSE,
                              PQ_OP_LSTM,
                              PQ_OP_GRU,
                              PQ_OP_RNN,
                              PQ_OP_BATCH_NORMALIZATION,
                              PQ_OP_LAYER_NORMALIZATION,
                              PQ_OP_CONV_INTEGER,
                              PQ_OP_MATMUL_INTEGER};
    pq_tensor *X = pq_test_nn_f32(2, (int64_t[]){2, 2}, (float[]){1, 2, 3, 4});
    pq_tensor *Y = pq_test_nn_f32(2, (int64_t[]){2, 2}, NULL);
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        pq_node n = {0};
        n.name = "n";
        n.op = ops[i];
        const pq_tensor *in[5] = {X, NULL, NULL, NULL, NULL};
        pq_tensor *out[3] = {Y, NULL, NULL};
        pq_error err;
        pq_kernel_args a = {NULL, &n, in, 5, out, 1, NULL, 1, &err};
        cr_assert_eq(pq_ref_run(&a), PQ_ERR_INVALID, "%s", pq_op_name(ops[i]));
        cr_assert(strstr(err.msg, "missing"), "%s: %s", pq_op_name(ops[i]), err.msg);
    }
    pq_tensor_destroy(X);
    pq_tensor_destroy(Y);
}
