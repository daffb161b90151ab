/* Tests of the pooling reference kernels against ONNX conformance literals (ceil mode, SAME_UPPER,
 * pads, dilations, Indices with storage_order, u8) and torch literals (3-D dilated max pool with
 * indices, average pool with ceil_mode and count_include_pad). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "backends/ref/ref.h"
#include "ir/ir.h"

/* harness in test_ref_matmul.c */
pq_tensor *pq_test_nn_f32(int rank, const int64_t *dims, const float *vals);
pq_graph *pq_test_nn_node(enum pq_op op, const pq_tensor *const *in, uint32_t n_in,
                          uint32_t out_mask, uint32_t n_out, uint32_t *nid);
enum pq_status pq_test_nn_run(pq_graph *g, uint32_t nid, pq_tensor **outs, pq_error *err);
void pq_test_nn_close_f(const pq_tensor *t, const float *want, int64_t n, double rtol, double atol);

typedef struct pool_attrs {
    const int64_t *k, *s, *p, *d;
    const char *auto_pad;
    int ceil, cip, storage;
} pool_attrs;

/* Pools x (f32, values i+1 when vals is NULL) and returns the outputs (indices when n_out 2). */
static void pool_run(enum pq_op op, int rank, const int64_t *dims, const float *vals,
                     const pool_attrs *pa, uint32_t n_out, pq_tensor **out) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dims[i];
    float *x = pq_malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        x[i] = vals ? vals[i] : (float)(i + 1);
    pq_tensor *X = pq_test_nn_f32(rank, dims, x);
    pq_free(x);
    const pq_tensor *in[1] = {X};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(op, in, 1, n_out == 2 ? 3u : 1u, n_out, &nid);
    pq_error err;
    uint32_t nsp = (uint32_t)rank - 2;
    if (pa->k) pq_node_set_ints(g, nid, "kernel_shape", pa->k, nsp, &err);
    if (pa->s) pq_node_set_ints(g, nid, "strides", pa->s, nsp, &err);
    if (pa->p) pq_node_set_ints(g, nid, "pads", pa->p, 2 * nsp, &err);
    if (pa->d) pq_node_set_ints(g, nid, "dilations", pa->d, nsp, &err);
    if (pa->auto_pad) pq_node_set_string(g, nid, "auto_pad", pa->auto_pad, &err);
    if (pa->ceil) pq_node_set_int(g, nid, "ceil_mode", 1, &err);
    if (pa->cip) pq_node_set_int(g, nid, "count_include_pad", 1, &err);
    if (pa->storage) pq_node_set_int(g, nid, "storage_order", 1, &err);
    cr_assert_eq(pq_test_nn_run(g, nid, out, &err), PQ_OK, "%s", err.msg);
    pq_tensor_destroy(X);
    pq_graph_destroy(g);
}

static const int64_t d44[4] = {1, 1, 4, 4}, d55[4] = {1, 1, 5, 5};

Test(ref_pool, maxpool_conformance) {
    pq_tensor *o[2];
    pool_attrs a1 = {.k = (int64_t[]){3, 3}, .s = (int64_t[]){2, 2}, .ceil = 1};
    pool_run(PQ_OP_MAX_POOL, 4, d44, NULL, &a1, 1, o);
    pq_test_nn_close_f(o[0], (float[]){11, 12, 15, 16}, 4, 0, 0);
    pq_tensor_destroy(o[0]);
    pool_attrs a2 = {.k = (int64_t[]){2, 2}, .s = (int64_t[]){1, 1}, .d = (int64_t[]){2, 2}};
    pool_run(PQ_OP_MAX_POOL, 4, d44, NULL, &a2, 1, o);
    pq_test_nn_close_f(o[0], (float[]){11, 12, 15, 16}, 4, 0, 0);
    pq_tensor_destroy(o[0]);
    pool_attrs a3 = {.k = (int64_t[]){3, 3}, .s = (int64_t[]){2, 2}, .auto_pad = "SAME_UPPER"};
    pool_run(PQ_OP_MAX_POOL, 4, d55, NULL, &a3, 1, o);
    pq_test_nn_close_f(o[0], (float[]){7, 9, 10, 17, 19, 20, 22, 24, 25}, 9, 0, 0);
    pq_tensor_destroy(o[0]);
}

Test(ref_pool, maxpool_indices) {
    pq_tensor *o[2];
    pool_attrs a1 = {.k = (int64_t[]){2, 2}, .s = (int64_t[]){2, 2}, .storage = 1};
    pool_run(PQ_OP_MAX_POOL, 4, d55, NULL, &a1, 2, o);
    pq_test_nn_close_f(o[0], (float[]){7, 9, 17, 19}, 4, 0, 0);
    cr_assert_eq(o[1]->dtype, PQ_DTYPE_I64);
    const int64_t i1[4] = {6, 16, 8, 18}; /* column-major */
    cr_assert_arr_eq(o[1]->data, i1, sizeof i1);
    pq_tensor_destroy(o[0]);
    pq_tensor_destroy(o[1]);
    pool_attrs a2 = {.k = (int64_t[]){5, 5}, .p = (int64_t[]){2, 2, 2, 2}};
    pool_run(PQ_OP_MAX_POOL, 4, d55, NULL, &a2, 2, o);
    const float y2[25] = {13, 14, 15, 15, 15, 18, 19, 20, 20, 20, 23, 24, 25,
                          25, 25, 23, 24, 25, 25, 25, 23, 24, 25, 25, 25};
    const int64_t i2[25] = {12, 13, 14, 14, 14, 17, 18, 19, 19, 19, 22, 23, 24,
                            24, 24, 22, 23, 24, 24, 24, 22, 23, 24, 24, 24};
    pq_test_nn_close_f(o[0], y2, 25, 0, 0);
    cr_assert_arr_eq(o[1]->data, i2, sizeof i2);
    pq_tensor_destroy(o[0]);
    pq_tensor_destroy(o[1]);
}

Test(ref_pool, maxpool_3d_dilated_torch) {
    int64_t dims[5] = {1, 2, 4, 5, 6};
    float x[240];
    /* torch: sin(arange(240) * 1.7) in f32 */
    for (int i = 0; i < 240; i++)
        x[i] = sinf((float)i * 1.7f);
    pool_attrs a = {.k = (int64_t[]){2, 2, 3},
                    .s = (int64_t[]){1, 2, 2},
                    .p = (int64_t[]){1, 0, 1, 1, 0, 1},
                    .d = (int64_t[]){2, 1, 1}};
    pq_tensor *o[2];
    pool_run(PQ_OP_MAX_POOL, 5, dims, x, &a, 2, o);
    cr_assert_eq(o[0]->dims[2], 4);
    cr_assert_eq(o[0]->dims[3], 2);
    cr_assert_eq(o[0]->dims[4], 3);
    const float want[48] = {
        0.670229f, 0.98059f,  0.949405f, 0.998858f, 0.998858f, 0.892012f, 0.994827f, 0.991665f,
        0.968587f, 0.999793f, 0.964962f, 0.985601f, 0.999435f, 0.999435f, 0.949405f, 0.998858f,
        0.998858f, 0.944852f, 0.994827f, 0.719211f, 0.968587f, 0.709283f, 0.964962f, 0.964962f,
        0.965206f, 0.709928f, 0.968357f, 0.597077f, 0.994732f, 0.994732f, 0.891591f, 0.998901f,
        0.983102f, 0.98077f,  0.999404f, 0.949107f, 0.965206f, 0.999773f, 0.999773f, 0.858688f,
        0.994732f, 0.994732f, 0.891591f, 0.998901f, 0.756253f, 0.98077f,  0.98077f,  0.949107f};
    const int64_t idx[48] = {30, 38,  34, 49, 49, 45, 60, 1,   71, 12, 75, 23, 97, 97, 34, 49,
                             49, 112, 60, 67, 71, 79, 75, 75,  36, 32, 40, 43, 51, 51, 66, 62,
                             3,  73,  14, 77, 36, 99, 99, 103, 51, 51, 66, 62, 69, 73, 73, 77};
    pq_test_nn_close_f(o[0], want, 48, 1e-5, 1e-5);
    const int64_t *got = o[1]->data;
    for (int i = 0; i < 48; i++) /* torch indexes within a channel; ONNX adds n*C+c offsets */
        cr_assert_eq(got[i], idx[i] + (i >= 24 ? 120 : 0), "index %d: %lld", i, (long long)got[i]);
    pq_tensor_destroy(o[0]);
    pq_tensor_destroy(o[1]);
}

Test(ref_pool, maxpool_u8) {
    pq_error err;
    pq_tensor *X = pq_tensor_create(PQ_DTYPE_U8, 4, d55, &err);
    for (int i = 0; i < 25; i++)
        ((uint8_t *)X->data)[i] = (uint8_t)(i + 1);
    const pq_tensor *in[1] = {X};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_MAX_POOL, in, 1, 1, 1, &nid);
    pq_node_set_ints(g, nid, "kernel_shape", (int64_t[]){5, 5}, 2, &err);
    pq_node_set_ints(g, nid, "pads", (int64_t[]){2, 2, 2, 2}, 4, &err);
    pq_tensor *o[1];
    cr_assert_eq(pq_test_nn_run(g, nid, o, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(o[0]->dtype, PQ_DTYPE_U8);
    const uint8_t want[25] = {13, 14, 15, 15, 15, 18, 19, 20, 20, 20, 23, 24, 25,
                              25, 25, 23, 24, 25, 25, 25, 23, 24, 25, 25, 25};
    cr_assert_arr_eq(o[0]->data, want, sizeof want);
    pq_tensor_destroy(o[0]);
    pq_tensor_destroy(X);
    pq_graph_destroy(g);
}

Test(ref_pool, averagepool_conformance) {
    pq_tensor *o[1];
    pool_attrs a1 = {.k = (int64_t[]){5, 5}, .p = (int64_t[]){2, 2, 2, 2}};
    pool_run(PQ_OP_AVERAGE_POOL, 4, d55, NULL, &a1, 1, o);
    const float w1[25] = {7,     7.5f,  8,     8.5f,  9,     9.5f,  10,    10.5f, 11,
                          11.5f, 12,    12.5f, 13,    13.5f, 14,    14.5f, 15,    15.5f,
                          16,    16.5f, 17,    17.5f, 18,    18.5f, 19};
    pq_test_nn_close_f(o[0], w1, 25, 1e-6, 1e-6);
    pq_tensor_destroy(o[0]);
    pool_attrs a2 = {.k = (int64_t[]){5, 5}, .p = (int64_t[]){2, 2, 2, 2}, .cip = 1};
    pool_run(PQ_OP_AVERAGE_POOL, 4, d55, NULL, &a2, 1, o);
    const float w2[25] = {2.52f,  3.6f,  4.8f,  4.08f, 3.24f, 4.56f, 6.4f,  8.4f, 7.04f,
                          5.52f,  7.2f,  10.0f, 13.0f, 10.8f, 8.4f,  6.96f, 9.6f, 12.4f,
                          10.24f, 7.92f, 6.12f, 8.4f,  10.8f, 8.88f, 6.84f};
    pq_test_nn_close_f(o[0], w2, 25, 1e-5, 1e-6);
    pq_tensor_destroy(o[0]);
    pool_attrs a3 = {.k = (int64_t[]){3, 3}, .s = (int64_t[]){2, 2}, .ceil = 1};
    pool_run(PQ_OP_AVERAGE_POOL, 4, d44, NULL, &a3, 1, o);
    pq_test_nn_close_f(o[0], (float[]){6, 7.5f, 12, 13.5f}, 4, 1e-6, 0);
    pq_tensor_destroy(o[0]);
    pool_attrs a4 = {.k = (int64_t[]){3, 3}, .s = (int64_t[]){2, 2}, .auto_pad = "SAME_UPPER"};
    pool_run(PQ_OP_AVERAGE_POOL, 4, d55, NULL, &a4, 1, o);
    pq_test_nn_close_f(o[0], (float[]){4, 5.5f, 7, 11.5f, 13, 14.5f, 19, 20.5f, 22}, 9, 1e-6, 0);
    pq_tensor_destroy(o[0]);
}

Test(ref_pool, averagepool_ceil_count_include_pad_torch) {
    float x[30];
    for (int i = 0; i < 30; i++)
        x[i] = (float)i * 0.5f - 3.0f;
    int64_t dims[4] = {1, 1, 5, 6};
    pq_tensor *o[1];
    pool_attrs a = {.k = (int64_t[]){3, 3},
                    .s = (int64_t[]){2, 2},
                    .p = (int64_t[]){1, 1, 1, 1},
                    .ceil = 1,
                    .cip = 1};
    pool_run(PQ_OP_AVERAGE_POOL, 4, dims, x, &a, 1, o);
    cr_assert_eq(o[0]->dims[2], 3);
    cr_assert_eq(o[0]->dims[3], 4);
    const float w1[12] = {-0.555556f, -0.333333f, 0.333333f, 0.333333f, 2.166667f, 4.0f,
                          5.0f,       2.75f,      3.444444f, 5.666667f, 6.333333f, 3.333333f};
    pq_test_nn_close_f(o[0], w1, 12, 1e-5, 1e-6);
    pq_tensor_destroy(o[0]);
    a.cip = 0;
    pool_run(PQ_OP_AVERAGE_POOL, 4, dims, x, &a, 1, o);
    const float w2[12] = {-1.25f, -0.5f, 0.5f,  1.0f, 3.25f, 4.0f,
                          5.0f,   5.5f,  7.75f, 8.5f, 9.5f,  10.0f};
    pq_test_nn_close_f(o[0], w2, 12, 1e-5, 1e-6);
    pq_tensor_destroy(o[0]);
}

Test(ref_pool, global_pools) {
    int64_t d[4] = {2, 3, 2, 2};
    float x[24];
    for (int i = 0; i < 24; i++)
        x[i] = (float)((i * 7) % 11) - 4.0f;
    pq_tensor *o[1];
    pool_attrs none = {0};
    pool_run(PQ_OP_GLOBAL_AVERAGE_POOL, 4, d, x, &none, 1, o);
    cr_assert_eq(o[0]->rank, 4);
    cr_assert_eq(o[0]->dims[2], 1);
    float wa[6], wm[6];
    for (int c = 0; c < 6; c++) {
        wa[c] = 0;
        wm[c] = -INFINITY;
        for (int i = 0; i < 4; i++) {
            wa[c] += x[c * 4 + i] / 4.0f;
            if (x[c * 4 + i] > wm[c]) wm[c] = x[c * 4 + i];
        }
    }
    pq_test_nn_close_f(o[0], wa, 6, 1e-6, 1e-6);
    pq_tensor_destroy(o[0]);
    pool_run(PQ_OP_GLOBAL_MAX_POOL, 4, d, x, &none, 1, o);
    pq_test_nn_close_f(o[0], wm, 6, 0, 0);
    pq_tensor_destroy(o[0]);
    /* conformance precomputed: 1..9 -> 5 and 9 */
    int64_t d3[4] = {1, 1, 3, 3};
    pool_run(PQ_OP_GLOBAL_AVERAGE_POOL, 4, d3, NULL, &none, 1, o);
    pq_test_nn_close_f(o[0], (float[]){5}, 1, 0, 1e-6);
    pq_tensor_destroy(o[0]);
    pool_run(PQ_OP_GLOBAL_MAX_POOL, 4, d3, NULL, &none, 1, o);
    pq_test_nn_close_f(o[0], (float[]){9}, 1, 0, 0);
    pq_tensor_destroy(o[0]);
}
