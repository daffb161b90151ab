/* Tests of the normalisation reference kernels: BatchNormalization, LayerNormalization (axes,
 * broadcast scale, Mean/InvStdDev outputs), InstanceNormalization and LpNormalization, against
 * ONNX conformance literals and naive double loops. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "backends/ref/ref.h"
#include "ir/ir.h"

/* harness in test_ref_matmul.c */
pq_tensor *pq_test_nn_f32(int rank, const int64_t *dims, const float *vals);
pq_tensor *pq_test_nn_rand(enum pq_dtype dt, int rank, const int64_t *dims, uint32_t seed);
pq_graph *pq_test_nn_node(enum pq_op op, const pq_tensor *const *in, uint32_t n_in,
                          uint32_t out_mask, uint32_t n_out, uint32_t *nid);
enum pq_status pq_test_nn_run(pq_graph *g, uint32_t nid, pq_tensor **outs, pq_error *err);
void pq_test_nn_close(const pq_tensor *t, const double *want, int64_t n, double rtol, double atol);
void pq_test_nn_close_f(const pq_tensor *t, const float *want, int64_t n, double rtol, double atol);

Test(ref_norm, batchnorm) {
    int64_t xd[4] = {2, 3, 4, 5}, cd[1] = {3};
    pq_tensor *X = pq_test_nn_rand(PQ_DTYPE_F32, 4, xd, 1);
    pq_tensor *S = pq_test_nn_rand(PQ_DTYPE_F32, 1, cd, 2);
    pq_tensor *B = pq_test_nn_rand(PQ_DTYPE_F32, 1, cd, 3);
    pq_tensor *M = pq_test_nn_rand(PQ_DTYPE_F32, 1, cd, 4);
    pq_tensor *V = pq_test_nn_f32(1, cd, (float[]){0.5f, 1.5f, 0.01f});
    const pq_tensor *in[5] = {X, S, B, M, V};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_BATCH_NORMALIZATION, in, 5, 1, 1, &nid);
    pq_error err;
    pq_node_set_float(g, nid, "epsilon", 1e-2f, &err);
    pq_tensor *o[1];
    cr_assert_eq(pq_test_nn_run(g, nid, o, &err), PQ_OK, "%s", err.msg);
    double want[120];
    const float *x = X->data, *s = S->data, *b = B->data, *m = M->data, *v = V->data;
    for (int i = 0; i < 120; i++) {
        int c = (i / 20) % 3;
        want[i] = ((double)x[i] - m[c]) / sqrt((double)v[c] + (double)1e-2f) * s[c] + b[c];
    }
    pq_test_nn_close(o[0], want, 120, 1e-5, 1e-6);
    pq_tensor_destroy(o[0]);
    pq_graph_destroy(g);
    /* training_mode is rejected by inference */
    g = pq_test_nn_node(PQ_OP_BATCH_NORMALIZATION, in, 5, 1, 1, &nid);
    pq_node_set_int(g, nid, "training_mode", 1, &err);
    cr_assert_eq(pq_test_nn_run(g, nid, o, &err), PQ_ERR_UNSUPPORTED);
    cr_assert(strstr(err.msg, "training_mode"), "%s", err.msg);
    pq_graph_destroy(g);
    pq_tensor_destroy(X);
    pq_tensor_destroy(S);
    pq_tensor_destroy(B);
    pq_tensor_destroy(M);
    pq_tensor_destroy(V);
}

Test(ref_norm, layernorm_conformance_axis1) {
    const float x[12] = {1.7640524f,   0.40015721f,  0.97873801f, 2.2408931f,
                         1.867558f,    -0.97727787f, 0.95008844f, -0.1513572f,
                         -0.10321885f, 0.41059852f,  0.14404356f, 1.4542735f};
    const float w[4] = {-0.67246044f, -0.35955316f, -0.81314629f, -1.7262826f};
    const float b[4] = {0.17742614f, -0.40178093f, -1.6301984f, 0.46278226f};
    pq_tensor *X = pq_test_nn_f32(2, (int64_t[]){3, 4}, x);
    pq_tensor *W = pq_test_nn_f32(1, (int64_t[]){4}, w);
    pq_tensor *B = pq_test_nn_f32(1, (int64_t[]){4}, b);
    const pq_tensor *in[3] = {X, W, B};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_LAYER_NORMALIZATION, in, 3, 7, 3, &nid);
    pq_error err;
    pq_node_set_int(g, nid, "axis", 1, &err);
    pq_tensor *o[3];
    cr_assert_eq(pq_test_nn_run(g, nid, o, &err), PQ_OK, "%s", err.msg);
    const float y[12] = {-0.21967061f, 0.078528672f, -1.2084484f, -1.7192436f,
                         -0.72348869f, 0.064666867f, -2.0280533f, 1.3806628f,
                         0.83463955f,  -0.36187503f, -1.1744938f, -2.3834014f};
    pq_test_nn_close_f(o[0], y, 12, 1e-5, 1e-6);
    cr_assert_eq(o[1]->rank, 2);
    cr_assert_eq(o[1]->dims[0], 3);
    cr_assert_eq(o[1]->dims[1], 1);
    pq_test_nn_close_f(o[1], (float[]){1.3459601f, 0.42225283f, 0.47642416f}, 3, 1e-5, 1e-7);
    pq_test_nn_close_f(o[2], (float[]){1.4123993f, 0.92695254f, 1.6860834f}, 3, 1e-5, 1e-7);
    for (int i = 0; i < 3; i++)
        pq_tensor_destroy(o[i]);
    pq_tensor_destroy(X);
    pq_tensor_destroy(W);
    pq_tensor_destroy(B);
    pq_graph_destroy(g);
}

/* LayerNorm over x[2,3,4,5] from axis on, scale of shape sdims (broadcast), no bias. */
static void check_layernorm(int axis, int srank, const int64_t *sdims) {
    int64_t xd[4] = {2, 3, 4, 5};
    pq_tensor *X = pq_test_nn_rand(PQ_DTYPE_F32, 4, xd, 7);
    pq_tensor *S = pq_test_nn_rand(PQ_DTYPE_F32, srank, sdims, 8);
    const pq_tensor *in[2] = {X, S};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_LAYER_NORMALIZATION, in, 2, 1, 1, &nid);
    pq_error err;
    pq_node_set_int(g, nid, "axis", axis, &err);
    pq_node_set_float(g, nid, "epsilon", 0.1f, &err);
    pq_tensor *o[1];
    cr_assert_eq(pq_test_nn_run(g, nid, o, &err), PQ_OK, "%s", err.msg);
    int a = axis < 0 ? axis + 4 : axis;
    int64_t outer = 1, D = 1;
    for (int i = 0; i < a; i++)
        outer *= xd[i];
    for (int i = a; i < 4; i++)
        D *= xd[i];
    const float *x = X->data, *s = S->data;
    double want[120];
    for (int64_t r = 0; r < outer; r++) {
        double mean = 0, var = 0;
        for (int64_t j = 0; j < D; j++)
            mean += x[r * D + j];
        mean /= (double)D;
        for (int64_t j = 0; j < D; j++)
            var += (x[r * D + j] - mean) * (x[r * D + j] - mean);
        var /= (double)D;
        for (int64_t j = 0; j < D; j++) {
            /* scale index: broadcast of sdims against the trailing dims */
            int64_t rem = j, off = 0, stride = 1;
            for (int i = 3; i >= a; i--) {
                int64_t idx = rem % xd[i];
                rem /= xd[i];
                int si = i - (4 - srank);
                if (si >= 0 && sdims[si] != 1) off += idx * stride;
                if (si >= 0) stride *= sdims[si];
            }
            want[r * D + j] = (x[r * D + j] - mean) / sqrt(var + (double)0.1f) * s[off];
        }
    }
    pq_test_nn_close(o[0], want, 120, 1e-5, 1e-6);
    pq_tensor_destroy(o[0]);
    pq_tensor_destroy(X);
    pq_tensor_destroy(S);
    pq_graph_destroy(g);
}

Test(ref_norm, layernorm_axes_and_broadcast_scale) {
    check_layernorm(-1, 1, (int64_t[]){5});
    check_layernorm(0, 4, (int64_t[]){2, 3, 4, 5});
    check_layernorm(1, 3, (int64_t[]){3, 4, 5});
    check_layernorm(2, 2, (int64_t[]){4, 5});
    check_layernorm(2, 2, (int64_t[]){1, 5}); /* broadcast over dim 2 */
    check_layernorm(-3, 2, (int64_t[]){4, 1});
}

Test(ref_norm, instancenorm_conformance) {
    pq_tensor *X = pq_test_nn_f32(4, (int64_t[]){1, 2, 1, 3}, (float[]){-1, 0, 1, 2, 3, 4});
    pq_tensor *S = pq_test_nn_f32(1, (int64_t[]){2}, (float[]){1, 1.5f});
    pq_tensor *B = pq_test_nn_f32(1, (int64_t[]){2}, (float[]){0, 1});
    const pq_tensor *in[3] = {X, S, B};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_INSTANCE_NORMALIZATION, in, 3, 1, 1, &nid);
    pq_tensor *o[1];
    pq_error err;
    cr_assert_eq(pq_test_nn_run(g, nid, o, &err), PQ_OK, "%s", err.msg);
    const float want[6] = {-1.2247356f, 0.0f, 1.2247356f, -0.83710349f, 1.0f, 2.8371034f};
    pq_test_nn_close_f(o[0], want, 6, 1e-5, 1e-6);
    pq_tensor_destroy(o[0]);
    pq_tensor_destroy(X);
    pq_tensor_destroy(S);
    pq_tensor_destroy(B);
    pq_graph_destroy(g);
}

Test(ref_norm, lp_normalization) {
    float x[12] = {3, 4, 0, -1, 2, -2, 0, 0, 0, 5, -12, 1};
    for (int p = 1; p <= 2; p++)
        for (int axis = 0; axis < 2; axis++) {
            pq_tensor *X = pq_test_nn_f32(2, (int64_t[]){3, 4}, x);
            const pq_tensor *in[1] = {X};
            uint32_t nid;
            pq_graph *g = pq_test_nn_node(PQ_OP_LP_NORMALIZATION, in, 1, 1, 1, &nid);
            pq_error err;
            pq_node_set_int(g, nid, "p", p, &err);
            pq_node_set_int(g, nid, "axis", axis, &err);
            pq_tensor *o[1];
            cr_assert_eq(pq_test_nn_run(g, nid, o, &err), PQ_OK, "%s", err.msg);
            double want[12];
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 4; j++) {
                    double n = 0;
                    for (int k = 0; k < (axis ? 4 : 3); k++) {
                        double v = axis ? x[i * 4 + k] : x[k * 4 + j];
                        n += p == 1 ? fabs(v) : v * v;
                    }
                    if (p == 2) n = sqrt(n);
                    want[i * 4 + j] = n == 0 ? 0 : x[i * 4 + j] / n; /* zero vectors stay zero */
                }
            pq_test_nn_close(o[0], want, 12, 1e-6, 1e-7);
            pq_tensor_destroy(o[0]);
            pq_tensor_destroy(X);
            pq_graph_destroy(g);
        }
}
