/* Tests of the QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear reference kernels:
 * ONNX conformance values (test_quantizelinear*, test_dequantizelinear_axis,
 * test_dynamicquantizelinear*), round half to even, saturation, i8 output, shape checks. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "backends/ref/ref.h"
#include "ir/ir.h"

/* harness from test_ref_elementwise.c */
pq_tensor *pq_test_ew_tensor(enum pq_dtype t, int rank, const int64_t *dims, const double *vals);
pq_graph *pq_test_ew_graph(enum pq_op op, const pq_tensor *const *in, uint32_t n_in, uint32_t n_out,
                           uint32_t *nid);
enum pq_status pq_test_ew_run(pq_graph *g, uint32_t nid, pq_tensor **outs, pq_error *err);
pq_tensor *pq_test_ew_simple(enum pq_op op, const pq_tensor *const *in, uint32_t n_in);

Test(ref_quant, quantize_per_tensor_u8) {
    int64_t d[1] = {6};
    double x[6] = {0, 2, 3, 1000, -254, -1000}, s = 2, z = 128;
    pq_tensor *X = pq_test_ew_tensor(PQ_DTYPE_F32, 1, d, x);
    pq_tensor *S = pq_test_ew_tensor(PQ_DTYPE_F32, 0, NULL, &s);
    pq_tensor *Z = pq_test_ew_tensor(PQ_DTYPE_U8, 0, NULL, &z);
    const pq_tensor *in[3] = {X, S, Z};
    pq_tensor *y = pq_test_ew_simple(PQ_OP_QUANTIZE_LINEAR, in, 3);
    cr_assert_eq(y->dtype, PQ_DTYPE_U8);
    const uint8_t w[6] = {128, 129, 130, 255, 1, 0}; /* 3/2 = 1.5 rounds to 2 */
    cr_assert(memcmp(y->data, w, 6) == 0);
    /* no zero point: u8 with zp 0 */
    const pq_tensor *in2[2] = {X, S};
    pq_tensor *y2 = pq_test_ew_simple(PQ_OP_QUANTIZE_LINEAR, in2, 2);
    cr_assert_eq(y2->dtype, PQ_DTYPE_U8);
    const uint8_t w2[6] = {0, 1, 2, 255, 0, 0};
    cr_assert(memcmp(y2->data, w2, 6) == 0);
    pq_tensor_destroy(X), pq_tensor_destroy(S), pq_tensor_destroy(Z), pq_tensor_destroy(y);
    pq_tensor_destroy(y2);
}

Test(ref_quant, quantize_i8_half_to_even) {
    int64_t d[1] = {8};
    double x[8] = {0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 300, -300}, s = 1, z = -1;
    pq_tensor *X = pq_test_ew_tensor(PQ_DTYPE_F32, 1, d, x);
    pq_tensor *S = pq_test_ew_tensor(PQ_DTYPE_F32, 0, NULL, &s);
    pq_tensor *Z = pq_test_ew_tensor(PQ_DTYPE_I8, 0, NULL, &z);
    const pq_tensor *in[3] = {X, S, Z};
    pq_tensor *y = pq_test_ew_simple(PQ_OP_QUANTIZE_LINEAR, in, 3);
    cr_assert_eq(y->dtype, PQ_DTYPE_I8);
    const int8_t w[8] = {-1, 1, 1, -1, -3, -3, 127, -128};
    cr_assert(memcmp(y->data, w, 8) == 0);
    pq_tensor_destroy(X), pq_tensor_destroy(S), pq_tensor_destroy(Z), pq_tensor_destroy(y);
}

static const double qa_x[18] = {-162, 10, -100, 232, -20,  -50,  -76,  0,    0,
                                252,  32, -44,  245, -485, -960, -270, -375, -470};
static const double qa_q[18] = {3,  89, 34, 200, 74, 59, 5,   24,  24,
                                87, 32, 13, 245, 99, 4,  142, 121, 102};

Test(ref_quant, quantize_dequantize_per_axis) {
    int64_t d[4] = {1, 3, 3, 2}, d3[1] = {3};
    double s[3] = {2, 4, 5}, z[3] = {84, 24, 196};
    pq_tensor *X = pq_test_ew_tensor(PQ_DTYPE_F32, 4, d, qa_x);
    pq_tensor *S = pq_test_ew_tensor(PQ_DTYPE_F32, 1, d3, s);
    pq_tensor *Z = pq_test_ew_tensor(PQ_DTYPE_U8, 1, d3, z);
    const pq_tensor *in[3] = {X, S, Z};
    pq_tensor *q = pq_test_ew_simple(PQ_OP_QUANTIZE_LINEAR, in, 3);
    for (int i = 0; i < 18; i++)
        cr_assert_eq(((uint8_t *)q->data)[i], (uint8_t)qa_q[i], "elem %d", i);
    const pq_tensor *din[3] = {q, S, Z};
    pq_tensor *r = pq_test_ew_simple(PQ_OP_DEQUANTIZE_LINEAR, din, 3);
    cr_assert_eq(r->dtype, PQ_DTYPE_F32);
    for (int i = 0; i < 18; i++)
        cr_assert_eq(((float *)r->data)[i], (float)qa_x[i], "elem %d", i);
    /* explicit negative axis selects the same dim */
    uint32_t nid;
    pq_graph *g = pq_test_ew_graph(PQ_OP_DEQUANTIZE_LINEAR, din, 3, 1, &nid);
    pq_error err;
    cr_assert_eq(pq_node_set_int(g, nid, "axis", -3, &err), PQ_OK);
    pq_tensor *o[1];
    cr_assert_eq(pq_test_ew_run(g, nid, o, &err), PQ_OK, "%s", err.msg);
    cr_assert(memcmp(o[0]->data, r->data, 18 * sizeof(float)) == 0);
    pq_tensor_destroy(o[0]);
    /* axis pointing at a dim of the wrong size is invalid */
    cr_assert_eq(pq_node_set_int(g, nid, "axis", 3, &err), PQ_OK);
    cr_assert_eq(pq_test_ew_run(g, nid, o, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "scale has 3 elements"), "%s", err.msg);
    pq_graph_destroy(g);
    pq_tensor_destroy(X), pq_tensor_destroy(S), pq_tensor_destroy(Z), pq_tensor_destroy(q);
    pq_tensor_destroy(r);
}

Test(ref_quant, dequantize_i32_and_i8) {
    int64_t d[1] = {4};
    double x[4] = {-2000000, -1, 0, 123456}, s = 0.5;
    pq_tensor *X = pq_test_ew_tensor(PQ_DTYPE_I32, 1, d, x);
    pq_tensor *S = pq_test_ew_tensor(PQ_DTYPE_F32, 0, NULL, &s);
    const pq_tensor *in[2] = {X, S};
    pq_tensor *y = pq_test_ew_simple(PQ_OP_DEQUANTIZE_LINEAR, in, 2);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(((float *)y->data)[i], (float)(x[i] * 0.5));
    double xi[4] = {-128, -1, 0, 127}, z = -3;
    pq_tensor *XI = pq_test_ew_tensor(PQ_DTYPE_I8, 1, d, xi);
    pq_tensor *Z = pq_test_ew_tensor(PQ_DTYPE_I8, 0, NULL, &z);
    const pq_tensor *in2[3] = {XI, S, Z};
    pq_tensor *y2 = pq_test_ew_simple(PQ_OP_DEQUANTIZE_LINEAR, in2, 3);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(((float *)y2->data)[i], (float)((xi[i] + 3) * 0.5));
    /* zero point dtype must match x */
    const pq_tensor *bad[3] = {X, S, Z};
    uint32_t nid;
    pq_graph *g = pq_test_ew_graph(PQ_OP_DEQUANTIZE_LINEAR, bad, 3, 1, &nid);
    pq_error err;
    pq_tensor *o[1];
    cr_assert_eq(pq_test_ew_run(g, nid, o, &err), PQ_ERR_INVALID);
    pq_graph_destroy(g);
    pq_tensor_destroy(X), pq_tensor_destroy(S), pq_tensor_destroy(y), pq_tensor_destroy(XI);
    pq_tensor_destroy(Z), pq_tensor_destroy(y2);
}

static void check_dynamic(int rank, const int64_t *dims, const double *x, int n, const uint8_t *wq,
                          float wscale, uint8_t wzp) {
    pq_tensor *X = pq_test_ew_tensor(PQ_DTYPE_F32, rank, dims, x);
    const pq_tensor *in[1] = {X};
    uint32_t nid;
    pq_graph *g = pq_test_ew_graph(PQ_OP_DYNAMIC_QUANTIZE_LINEAR, in, 1, 3, &nid);
    pq_error err;
    pq_tensor *o[3];
    cr_assert_eq(pq_test_ew_run(g, nid, o, &err), PQ_OK, "%s", err.msg);
    cr_assert(o[0]->dtype == PQ_DTYPE_U8 && o[1]->dtype == PQ_DTYPE_F32 &&
              o[2]->dtype == PQ_DTYPE_U8);
    cr_assert(o[1]->rank == 0 && o[2]->rank == 0);
    for (int i = 0; i < n; i++)
        cr_assert_eq(((uint8_t *)o[0]->data)[i], wq[i], "elem %d", i);
    cr_assert(fabsf(((float *)o[1]->data)[0] - wscale) <= 1e-7f * wscale);
    cr_assert_eq(((uint8_t *)o[2]->data)[0], wzp);
    for (int i = 0; i < 3; i++)
        pq_tensor_destroy(o[i]);
    pq_graph_destroy(g);
    pq_tensor_destroy(X);
}

Test(ref_quant, dynamic_quantize_conformance_values) {
    int64_t d6[1] = {6};
    double x[6] = {0, 2, -3, -2.5, 1.34, 0.5};
    const uint8_t q[6] = {153, 255, 0, 26, 221, 179};
    check_dynamic(1, d6, x, 6, q, 0.019607843831181526f, 153);
    int64_t d34[2] = {3, 4};
    double x2[12] = {1, 2.1, 1.3, 2.5, 3.34, 4, 1.5, 2.6, 3.9, 4, 3, 2.345};
    const uint8_t q2[12] = {64, 134, 83, 159, 213, 255, 96, 166, 249, 255, 191, 149};
    check_dynamic(2, d34, x2, 12, q2, 0.01568627543747425f, 0);
    /* all zeros: scale 0, no division by zero */
    double z[3] = {0, 0, 0};
    const uint8_t qz[3] = {0, 0, 0};
    int64_t d3[1] = {3};
    check_dynamic(1, d3, z, 3, qz, 0.0f, 0);
}
