/* Tests of the Conv, ConvTranspose and ConvInteger reference kernels: sweeps against a naive
 * direct double-precision convolution written here, and ONNX conformance literals for auto_pad,
 * asymmetric pads, output_shape and dilations. */
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

typedef struct conv_case {
    int nsp;
    int64_t n, c, m, group;
    int64_t in[3], k[3], s[3], d[3], pb[3], pe[3];
    bool bias;
} conv_case;

/* Naive direct convolution in double; returns the output (caller frees) and its spatial dims. */
static double *naive_conv(const conv_case *cc, const float *x, const float *w, const float *b,
                          int64_t *out) {
    int64_t osp = 1, isp = 1, ksp = 1;
    for (int i = 0; i < cc->nsp; i++) {
        out[i] =
            (cc->in[i] + cc->pb[i] + cc->pe[i] - ((cc->k[i] - 1) * cc->d[i] + 1)) / cc->s[i] + 1;
        osp *= out[i];
        isp *= cc->in[i];
        ksp *= cc->k[i];
    }
    int64_t cg = cc->c / cc->group, mg = cc->m / cc->group;
    double *y = pq_calloc((size_t)(cc->n * cc->m * osp), sizeof(double));
    for (int64_t n = 0; n < cc->n; n++)
        for (int64_t m = 0; m < cc->m; m++) {
            int64_t g = m / mg;
            for (int64_t o = 0; o < osp; o++) {
                int64_t oi[3], r = o;
                for (int i = cc->nsp - 1; i >= 0; i--) {
                    oi[i] = r % out[i];
                    r /= out[i];
                }
                double s = b ? b[m] : 0.0;
                for (int64_t ci = 0; ci < cg; ci++)
                    for (int64_t kk = 0; kk < ksp; kk++) {
                        int64_t ki[3], rr = kk, xoff = 0;
                        bool ok = true;
                        for (int i = cc->nsp - 1; i >= 0; i--) {
                            ki[i] = rr % cc->k[i];
                            rr /= cc->k[i];
                        }
                        for (int i = 0; i < cc->nsp; i++) {
                            int64_t p = oi[i] * cc->s[i] - cc->pb[i] + ki[i] * cc->d[i];
                            if (p < 0 || p >= cc->in[i]) ok = false;
                            xoff = xoff * cc->in[i] + p;
                        }
                        if (!ok) continue;
                        s += (double)x[((n * cc->c) + g * cg + ci) * isp + xoff] *
                             w[(m * cg + ci) * ksp + kk];
                    }
                y[(n * cc->m + m) * osp + o] = s;
            }
        }
    return y;
}

static void run_conv_case(const conv_case *cc, uint32_t seed) {
    int64_t xd[5] = {cc->n, cc->c}, wd[5] = {cc->m, cc->c / cc->group}, bd[1] = {cc->m};
    for (int i = 0; i < cc->nsp; i++) {
        xd[2 + i] = cc->in[i];
        wd[2 + i] = cc->k[i];
    }
    pq_tensor *X = pq_test_nn_rand(PQ_DTYPE_F32, cc->nsp + 2, xd, seed);
    pq_tensor *W = pq_test_nn_rand(PQ_DTYPE_F32, cc->nsp + 2, wd, seed + 1);
    pq_tensor *B = cc->bias ? pq_test_nn_rand(PQ_DTYPE_F32, 1, bd, seed + 2) : NULL;
    const pq_tensor *in[3] = {X, W, B};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_CONV, in, B ? 3 : 2, 1, 1, &nid);
    pq_error err;
    int64_t pads[6];
    for (int i = 0; i < cc->nsp; i++) {
        pads[i] = cc->pb[i];
        pads[i + cc->nsp] = cc->pe[i];
    }
    pq_node_set_ints(g, nid, "strides", cc->s, (uint32_t)cc->nsp, &err);
    pq_node_set_ints(g, nid, "dilations", cc->d, (uint32_t)cc->nsp, &err);
    pq_node_set_ints(g, nid, "pads", pads, (uint32_t)(2 * cc->nsp), &err);
    pq_node_set_ints(g, nid, "kernel_shape", cc->k, (uint32_t)cc->nsp, &err);
    if (cc->group != 1) pq_node_set_int(g, nid, "group", cc->group, &err);
    pq_tensor *out[1];
    cr_assert_eq(pq_test_nn_run(g, nid, out, &err), PQ_OK, "%s", err.msg);
    int64_t od[3];
    double *want = naive_conv(cc, X->data, W->data, B ? B->data : NULL, od);
    cr_assert_eq(out[0]->dims[1], cc->m);
    for (int i = 0; i < cc->nsp; i++)
        cr_assert_eq(out[0]->dims[2 + i], od[i]);
    int64_t ck = cc->c / cc->group * cc->k[0] * (cc->nsp > 1 ? cc->k[1] : 1);
    pq_test_nn_close(out[0], want, pq_tensor_numel(out[0]), 1e-5, 1e-6 * (double)ck);
    pq_free(want);
    pq_tensor_destroy(out[0]);
    pq_tensor_destroy(X);
    pq_tensor_destroy(W);
    pq_tensor_destroy(B);
    pq_graph_destroy(g);
}

Test(ref_conv, sweep_against_naive) {
    const conv_case cases[] = {
        /* nsp n c m group in k s d pb pe bias */
        {1, 2, 4, 5, 1, {10}, {3}, {1}, {1}, {0}, {0}, true},
        {1, 2, 4, 5, 1, {10}, {3}, {2}, {2}, {1}, {2}, true},
        {1, 2, 4, 6, 2, {6}, {3}, {1}, {1}, {0}, {0}, true},
        {2, 2, 3, 4, 1, {7, 5}, {3, 2}, {1, 1}, {1, 1}, {0, 0}, {0, 0}, true},
        {2, 1, 3, 4, 1, {7, 5}, {3, 3}, {2, 2}, {1, 1}, {1, 0}, {1, 0}, false},
        {2, 2, 4, 8, 4, {6, 6}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, true}, /* depthwise x2 */
        {2, 2, 3, 2, 1, {8, 8}, {3, 3}, {2, 2}, {2, 2}, {1, 1}, {1, 1}, true},
        {2, 1, 16, 13, 1, {20, 17}, {3, 3}, {1, 1}, {1, 1}, {0, 0}, {0, 0}, false},
        {2, 1, 8, 6, 1, {9, 11}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}, true}, /* pointwise */
        {2, 1, 8, 6, 2, {9, 11}, {1, 1}, {2, 1}, {1, 1}, {0, 0}, {0, 0}, true}, /* strided 1x1 */
        {3, 2, 3, 4, 1, {3, 4, 5}, {2, 3, 4}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}, true},
        {3, 1, 4, 6, 2, {5, 5, 5}, {2, 2, 2}, {2, 2, 2}, {2, 1, 1}, {1, 0, 1}, {1, 1, 0}, true},
        /* big enough for several im2col chunks: ck = 64 * 9, 1024 columns per row block */
        {2, 1, 64, 16, 1, {70, 66}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_conv_case(&cases[i], 10 + (uint32_t)i);
}

/* Runs a 2-D conformance case with float inputs x[1,1,h,w] and 3x3 ones weights. */
static pq_tensor *conv_literal(int64_t h, int64_t w, const char *auto_pad, const int64_t *pads,
                               const int64_t *strides) {
    float x[64], ones[9];
    for (int i = 0; i < h * w; i++)
        x[i] = (float)i;
    for (int i = 0; i < 9; i++)
        ones[i] = 1.0f;
    pq_tensor *X = pq_test_nn_f32(4, (int64_t[]){1, 1, h, w}, x);
    pq_tensor *W = pq_test_nn_f32(4, (int64_t[]){1, 1, 3, 3}, ones);
    const pq_tensor *in[2] = {X, W};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_CONV, in, 2, 1, 1, &nid);
    pq_error err;
    if (auto_pad) pq_node_set_string(g, nid, "auto_pad", auto_pad, &err);
    if (pads) pq_node_set_ints(g, nid, "pads", pads, 4, &err);
    pq_node_set_ints(g, nid, "strides", strides, 2, &err);
    pq_tensor *out[1];
    cr_assert_eq(pq_test_nn_run(g, nid, out, &err), PQ_OK, "%s", err.msg);
    pq_tensor_destroy(X);
    pq_tensor_destroy(W);
    pq_graph_destroy(g);
    return out[0];
}

Test(ref_conv, conformance_autopad_same_lower_and_asymmetric) {
    pq_tensor *y = conv_literal(5, 5, "SAME_LOWER", NULL, (int64_t[]){2, 2});
    const float want1[9] = {12, 27, 24, 63, 108, 81, 72, 117, 84};
    cr_assert_eq(y->dims[2], 3);
    pq_test_nn_close_f(y, want1, 9, 0, 1e-5);
    pq_tensor_destroy(y);
    y = conv_literal(7, 5, NULL, (int64_t[]){1, 0, 1, 0}, (int64_t[]){2, 2});
    const float want2[8] = {21, 33, 99, 117, 189, 207, 171, 183};
    cr_assert_eq(y->dims[2], 4);
    cr_assert_eq(y->dims[3], 2);
    pq_test_nn_close_f(y, want2, 8, 0, 1e-5);
    pq_tensor_destroy(y);
}

Test(ref_conv, f16_and_f64_inputs) {
    enum pq_dtype dts[2] = {PQ_DTYPE_F16, PQ_DTYPE_F64};
    for (int t = 0; t < 2; t++) {
        pq_tensor *X = pq_test_nn_rand(dts[t], 4, (int64_t[]){1, 2, 5, 5}, 3);
        pq_tensor *W = pq_test_nn_rand(dts[t], 4, (int64_t[]){3, 2, 3, 3}, 4);
        const pq_tensor *in[2] = {X, W};
        uint32_t nid;
        pq_graph *g = pq_test_nn_node(PQ_OP_CONV, in, 2, 1, 1, &nid);
        pq_tensor *out[1];
        pq_error err;
        cr_assert_eq(pq_test_nn_run(g, nid, out, &err), PQ_OK, "%s", err.msg);
        cr_assert_eq(out[0]->dtype, dts[t]);
        double want[27];
        for (int m = 0; m < 3; m++)
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++) {
                    double s = 0;
                    for (int c = 0; c < 2; c++)
                        for (int a = 0; a < 3; a++)
                            for (int b = 0; b < 3; b++)
                                s += pq_dtype_load(dts[t], X->data,
                                                   (size_t)((c * 5 + i + a) * 5 + j + b)) *
                                     pq_dtype_load(dts[t], W->data,
                                                   (size_t)(((m * 2 + c) * 3 + a) * 3 + b));
                    want[(m * 3 + i) * 3 + j] = s;
                }
        pq_test_nn_close(out[0], want, 27, t == 0 ? 1e-2 : 1e-5, t == 0 ? 1e-2 : 1e-5);
        pq_tensor_destroy(out[0]);
        pq_tensor_destroy(X);
        pq_tensor_destroy(W);
        pq_graph_destroy(g);
    }
}

/* ---- ConvTranspose ---- */

/* Naive ConvTranspose: scatter into the full result then crop at begin pads pb (2-D, group g). */
static void naive_convt(const float *x, const float *w, const float *b, int64_t n, int64_t c,
                        int64_t mg, int64_t group, const int64_t *in, const int64_t *k,
                        const int64_t *s, const int64_t *d, const int64_t *pb, const int64_t *out,
                        double *y) {
    int64_t cg = c / group, m = mg * group;
    for (int64_t i = 0; i < n * m * out[0] * out[1]; i++)
        y[i] = b ? b[(i / (out[0] * out[1])) % m] : 0;
    for (int64_t nn = 0; nn < n; nn++)
        for (int64_t ci = 0; ci < c; ci++) {
            int64_t g = ci / cg;
            for (int64_t ih = 0; ih < in[0]; ih++)
                for (int64_t iw = 0; iw < in[1]; iw++)
                    for (int64_t mm = 0; mm < mg; mm++)
                        for (int64_t a = 0; a < k[0]; a++)
                            for (int64_t bb = 0; bb < k[1]; bb++) {
                                int64_t oh = ih * s[0] + a * d[0] - pb[0];
                                int64_t ow = iw * s[1] + bb * d[1] - pb[1];
                                if (oh < 0 || oh >= out[0] || ow < 0 || ow >= out[1]) continue;
                                y[((nn * m + g * mg + mm) * out[0] + oh) * out[1] + ow] +=
                                    (double)x[((nn * c + ci) * in[0] + ih) * in[1] + iw] *
                                    w[((ci * mg + mm) * k[0] + a) * k[1] + bb];
                            }
        }
}

Test(ref_conv, conv_transpose_sweep) {
    struct {
        int64_t n, c, mg, group, in[2], k[2], s[2], d[2], p[4], op[2];
        bool bias;
    } cases[] = {
        {1, 3, 4, 1, {7, 6}, {3, 3}, {3, 2}, {1, 1}, {1, 1, 1, 1}, {1, 1}, true},
        {1, 3, 4, 1, {6, 7}, {3, 3}, {2, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, false},
        {2, 3, 3, 1, {4, 5}, {3, 3}, {3, 3}, {1, 1}, {1, 1, 1, 1}, {2, 2}, false},
        {2, 4, 2, 2, {5, 4}, {2, 3}, {2, 1}, {2, 1}, {0, 1, 1, 0}, {1, 0}, true},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        int64_t C = cases[t].c, out[2];
        for (int i = 0; i < 2; i++)
            out[i] = cases[t].s[i] * (cases[t].in[i] - 1) + cases[t].op[i] +
                     (cases[t].k[i] - 1) * cases[t].d[i] + 1 - cases[t].p[i] - cases[t].p[i + 2];
        pq_tensor *X = pq_test_nn_rand(PQ_DTYPE_F32, 4,
                                       (int64_t[]){cases[t].n, C, cases[t].in[0], cases[t].in[1]},
                                       5 + (uint32_t)t);
        pq_tensor *W = pq_test_nn_rand(PQ_DTYPE_F32, 4,
                                       (int64_t[]){C, cases[t].mg, cases[t].k[0], cases[t].k[1]},
                                       9 + (uint32_t)t);
        pq_tensor *B = cases[t].bias ? pq_test_nn_rand(PQ_DTYPE_F32, 1,
                                                       (int64_t[]){cases[t].mg * cases[t].group}, 2)
                                     : NULL;
        const pq_tensor *in[3] = {X, W, B};
        uint32_t nid;
        pq_graph *g = pq_test_nn_node(PQ_OP_CONV_TRANSPOSE, in, B ? 3 : 2, 1, 1, &nid);
        pq_error err;
        pq_node_set_ints(g, nid, "strides", cases[t].s, 2, &err);
        pq_node_set_ints(g, nid, "dilations", cases[t].d, 2, &err);
        pq_node_set_ints(g, nid, "pads", cases[t].p, 4, &err);
        pq_node_set_ints(g, nid, "output_padding", cases[t].op, 2, &err);
        if (cases[t].group != 1) pq_node_set_int(g, nid, "group", cases[t].group, &err);
        pq_tensor *o[1];
        cr_assert_eq(pq_test_nn_run(g, nid, o, &err), PQ_OK, "%s", err.msg);
        cr_assert_eq(o[0]->dims[2], out[0]);
        cr_assert_eq(o[0]->dims[3], out[1]);
        int64_t n = pq_tensor_numel(o[0]);
        double *want = pq_malloc((size_t)n * sizeof(double));
        naive_convt(X->data, W->data, B ? B->data : NULL, cases[t].n, C, cases[t].mg,
                    cases[t].group, cases[t].in, cases[t].k, cases[t].s, cases[t].d, cases[t].p,
                    out, want);
        pq_test_nn_close(o[0], want, n, 1e-5, 1e-5);
        pq_free(want);
        pq_tensor_destroy(o[0]);
        pq_tensor_destroy(X);
        pq_tensor_destroy(W);
        pq_tensor_destroy(B);
        pq_graph_destroy(g);
    }
}

/* ConvTranspose of x = 0..8 [1,1,3,3] with ones weights [1,2,3,3] and the given attributes. */
static pq_tensor *convt_literal(const char *attr, const int64_t *v, uint32_t nv,
                                const char *auto_pad, const int64_t *strides) {
    float x[9], w[18];
    for (int i = 0; i < 9; i++)
        x[i] = (float)i;
    for (int i = 0; i < 18; i++)
        w[i] = 1.0f;
    pq_tensor *X = pq_test_nn_f32(4, (int64_t[]){1, 1, 3, 3}, x);
    pq_tensor *W = pq_test_nn_f32(4, (int64_t[]){1, 2, 3, 3}, w);
    const pq_tensor *in[2] = {X, W};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_CONV_TRANSPOSE, in, 2, 1, 1, &nid);
    pq_error err;
    if (attr) pq_node_set_ints(g, nid, attr, v, nv, &err);
    if (auto_pad) pq_node_set_string(g, nid, "auto_pad", auto_pad, &err);
    pq_node_set_ints(g, nid, "strides", strides, 2, &err);
    pq_tensor *out[1];
    cr_assert_eq(pq_test_nn_run(g, nid, out, &err), PQ_OK, "%s", err.msg);
    pq_tensor_destroy(X);
    pq_tensor_destroy(W);
    pq_graph_destroy(g);
    return out[0];
}

/* Both output channels of the ones-weight cases equal want[n]. */
static void check_two_channels(const pq_tensor *y, const float *want, int64_t n) {
    cr_assert_eq(pq_tensor_numel(y), 2 * n);
    for (int64_t i = 0; i < 2 * n; i++)
        cr_assert_float_eq(((const float *)y->data)[i], want[i % n], 1e-5, "element %lld",
                           (long long)i);
}

Test(ref_conv, conv_transpose_conformance) {
    /* test_convtranspose_output_shape: output_shape [10, 8], strides [3, 2] (one channel shown,
     * both are equal) */
    pq_tensor *y = convt_literal("output_shape", (int64_t[]){10, 8}, 2, NULL, (int64_t[]){3, 2});
    const float os[80] = {0,  0, 1, 1, 3, 2, 2,  0, 0,  0, 1,  1, 3,  2, 2, 0, 0, 0, 1,  1,
                          3,  2, 2, 0, 3, 3, 7,  4, 9,  5, 5,  0, 3,  3, 7, 4, 9, 5, 5,  0,
                          3,  3, 7, 4, 9, 5, 5,  0, 6,  6, 13, 7, 15, 8, 8, 0, 6, 6, 13, 7,
                          15, 8, 8, 0, 6, 6, 13, 7, 15, 8, 8,  0, 0,  0, 0, 0, 0, 0, 0,  0};
    cr_assert_eq(y->dims[1], 2);
    cr_assert_eq(y->dims[2], 10);
    cr_assert_eq(y->dims[3], 8);
    check_two_channels(y, os, 80);
    pq_tensor_destroy(y);
    /* test_convtranspose_autopad_same: SAME_UPPER, strides 2 -> 6x6 */
    y = convt_literal(NULL, NULL, 0, "SAME_UPPER", (int64_t[]){2, 2});
    const float as[36] = {0, 0, 1, 1, 3, 2, 0, 0, 1,  1,  3,  2,  3, 3, 8,  5, 12, 7,
                          3, 3, 7, 4, 9, 5, 9, 9, 20, 11, 24, 13, 6, 6, 13, 7, 15, 8};
    cr_assert_eq(y->dims[2], 6);
    check_two_channels(y, as, 36);
    pq_tensor_destroy(y);
    /* test_convtranspose_pads: pads [1,2,1,2], strides [3,2] -> 7x3 */
    y = convt_literal("pads", (int64_t[]){1, 2, 1, 2}, 4, NULL, (int64_t[]){3, 2});
    const float ps[21] = {1, 1, 3, 1, 1, 3, 7, 4, 9, 7, 4, 9, 7, 4, 9, 13, 7, 15, 13, 7, 15};
    cr_assert_eq(y->dims[2], 7);
    cr_assert_eq(y->dims[3], 3);
    check_two_channels(y, ps, 21);
    pq_tensor_destroy(y);
}

Test(ref_conv, conv_transpose_1d_and_dilations) {
    pq_tensor *X = pq_test_nn_f32(3, (int64_t[]){1, 1, 3}, (float[]){0, 1, 2});
    pq_tensor *W = pq_test_nn_f32(3, (int64_t[]){1, 2, 3}, (float[]){1, 1, 1, 1, 1, 1});
    const pq_tensor *in[2] = {X, W};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_CONV_TRANSPOSE, in, 2, 1, 1, &nid);
    pq_tensor *out[1];
    pq_error err;
    cr_assert_eq(pq_test_nn_run(g, nid, out, &err), PQ_OK, "%s", err.msg);
    const float w1[10] = {0, 1, 3, 3, 2, 0, 1, 3, 3, 2};
    pq_test_nn_close_f(out[0], w1, 10, 0, 1e-6);
    pq_tensor_destroy(out[0]);
    pq_tensor_destroy(X);
    pq_tensor_destroy(W);
    pq_graph_destroy(g);

    X = pq_test_nn_f32(4, (int64_t[]){1, 1, 3, 3}, (float[]){3, 8, 1, 9, 5, 7, 3, 2, 6});
    W = pq_test_nn_f32(4, (int64_t[]){1, 1, 2, 2}, (float[]){7, 2, 1, 9});
    const pq_tensor *in2[2] = {X, W};
    g = pq_test_nn_node(PQ_OP_CONV_TRANSPOSE, in2, 2, 1, 1, &nid);
    pq_node_set_ints(g, nid, "dilations", (int64_t[]){2, 2}, 2, &err);
    cr_assert_eq(pq_test_nn_run(g, nid, out, &err), PQ_OK, "%s", err.msg);
    const float w2[25] = {21, 56, 13, 16, 2,  63, 35, 67, 10, 14, 24, 22, 76,
                          76, 21, 9,  5,  88, 45, 63, 3,  2,  33, 18, 54};
    pq_test_nn_close_f(out[0], w2, 25, 0, 1e-5);
    pq_tensor_destroy(out[0]);
    pq_tensor_destroy(X);
    pq_tensor_destroy(W);
    pq_graph_destroy(g);
}

/* ---- ConvInteger ---- */

Test(ref_conv, conv_integer_conformance_padding) {
    pq_error err;
    pq_tensor *X = pq_tensor_create(PQ_DTYPE_U8, 4, (int64_t[]){1, 1, 3, 3}, &err);
    pq_tensor *W = pq_tensor_create(PQ_DTYPE_U8, 4, (int64_t[]){1, 1, 2, 2}, &err);
    pq_tensor *Z = pq_tensor_create(PQ_DTYPE_U8, 0, NULL, &err);
    const uint8_t xv[9] = {2, 3, 4, 5, 6, 7, 8, 9, 10}, wv[4] = {1, 1, 1, 1};
    memcpy(X->data, xv, 9);
    memcpy(W->data, wv, 4);
    ((uint8_t *)Z->data)[0] = 1;
    const pq_tensor *in[3] = {X, W, Z};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_CONV_INTEGER, in, 3, 1, 1, &nid);
    pq_node_set_ints(g, nid, "pads", (int64_t[]){1, 1, 1, 1}, 4, &err);
    pq_tensor *out[1];
    cr_assert_eq(pq_test_nn_run(g, nid, out, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(out[0]->dtype, PQ_DTYPE_I32);
    const int32_t want[16] = {1, 3, 5, 3, 5, 12, 16, 9, 11, 24, 28, 15, 7, 15, 17, 9};
    cr_assert_arr_eq(out[0]->data, want, sizeof want);
    pq_tensor_destroy(out[0]);
    pq_tensor_destroy(X);
    pq_tensor_destroy(W);
    pq_tensor_destroy(Z);
    pq_graph_destroy(g);
}

Test(ref_conv, conv_integer_i8_per_channel_zero_point) {
    pq_error err;
    pq_tensor *X = pq_tensor_create(PQ_DTYPE_I8, 4, (int64_t[]){1, 2, 4, 3}, &err);
    pq_tensor *W = pq_tensor_create(PQ_DTYPE_I8, 4, (int64_t[]){2, 2, 2, 2}, &err);
    pq_tensor *XZ = pq_tensor_create(PQ_DTYPE_I8, 0, NULL, &err);
    pq_tensor *WZ = pq_tensor_create(PQ_DTYPE_I8, 1, (int64_t[]){2}, &err);
    int8_t *x = X->data, *w = W->data;
    for (int i = 0; i < 24; i++)
        x[i] = (int8_t)(i * 37 % 255 - 127);
    for (int i = 0; i < 16; i++)
        w[i] = (int8_t)(i * 53 % 251 - 120);
    ((int8_t *)XZ->data)[0] = -3;
    ((int8_t *)WZ->data)[0] = 5;
    ((int8_t *)WZ->data)[1] = -7;
    const pq_tensor *in[4] = {X, W, XZ, WZ};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_CONV_INTEGER, in, 4, 1, 1, &nid);
    pq_tensor *out[1];
    cr_assert_eq(pq_test_nn_run(g, nid, out, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(out[0]->dims[2], 3);
    cr_assert_eq(out[0]->dims[3], 2);
    const int32_t *y = out[0]->data;
    const int8_t wz[2] = {5, -7};
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 2; j++) {
                int32_t s = 0;
                for (int c = 0; c < 2; c++)
                    for (int a = 0; a < 2; a++)
                        for (int b = 0; b < 2; b++)
                            s += (x[(c * 4 + i + a) * 3 + j + b] + 3) *
                                 (w[((m * 2 + c) * 2 + a) * 2 + b] - wz[m]);
                cr_assert_eq(y[(m * 3 + i) * 2 + j], s, "m%d i%d j%d", m, i, j);
            }
    pq_tensor_destroy(out[0]);
    pq_tensor_destroy(X);
    pq_tensor_destroy(W);
    pq_tensor_destroy(XZ);
    pq_tensor_destroy(WZ);
    pq_graph_destroy(g);
}
