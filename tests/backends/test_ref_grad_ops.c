/* The backward ops of the gradient rules (MaxPoolGrad, AveragePoolGrad, ResizeGrad): hand-computed
 * results (the tie rule of MaxPoolGrad, count_include_pad and ceil_mode divisors, the adjoint of
 * nearest and linear Resize: <Resize(x), g> = <x, ResizeGrad(g)> for random x and g) and the
 * shape rules' refusals. */
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
void pq_test_nn_close_f(const pq_tensor *t, const float *want, int64_t n, double rtol, double atol);

static const int64_t d1144[4] = {1, 1, 4, 4}, d1122[4] = {1, 1, 2, 2};

/* Runs op(in...) with 2-D kernel k, strides s, optional pads p, ceil and cip; one output. */
static pq_tensor *pq_tg_pool(enum pq_op op, const pq_tensor *const *in, const int64_t *k,
                             const int64_t *s, const int64_t *p, int ceil, int cip) {
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(op, in, 2, 1, 1, &nid);
    pq_error err;
    cr_assert_eq(pq_node_set_ints(g, nid, "kernel_shape", k, 2, &err), PQ_OK);
    if (s) cr_assert_eq(pq_node_set_ints(g, nid, "strides", s, 2, &err), PQ_OK);
    if (p) cr_assert_eq(pq_node_set_ints(g, nid, "pads", p, 4, &err), PQ_OK);
    if (ceil) cr_assert_eq(pq_node_set_int(g, nid, "ceil_mode", 1, &err), PQ_OK);
    if (cip) cr_assert_eq(pq_node_set_int(g, nid, "count_include_pad", 1, &err), PQ_OK);
    pq_tensor *o[1];
    cr_assert_eq(pq_test_nn_run(g, nid, o, &err), PQ_OK, "%s", err.msg);
    pq_graph_destroy(g);
    return o[0];
}

/* 2x2 windows, stride 2: each g goes to its window's maximum; a tie (window 0 holds 5, 5) gives
 * it to the first in window order. */
Test(ref_grad_ops, max_pool_grad) {
    pq_tensor *x =
        pq_test_nn_f32(4, d1144, (float[]){5, 1, 0, 9, 2, 5, 3, 3, 7, 0, 1, 1, 0, 8, 4, 1});
    pq_tensor *g = pq_test_nn_f32(4, d1122, (float[]){1, 2, 3, 4});
    const pq_tensor *in[2] = {x, g};
    pq_tensor *dx =
        pq_tg_pool(PQ_OP_MAX_POOL_GRAD, in, (int64_t[]){2, 2}, (int64_t[]){2, 2}, NULL, 0, 0);
    pq_test_nn_close_f(dx, (float[]){1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 4, 0}, 16, 0, 0);
    pq_tensor_destroy(dx);
    pq_tensor_destroy(x);
    pq_tensor_destroy(g);
}

/* 3x3 windows, stride 2, pads 1 on a 4x4 input: 2x2 outputs; without count_include_pad the
 * divisor is the number of real elements (4, 6, 6, 9), with it always 9. ceil_mode adds a window
 * hanging off the end (kernel 3, stride 2, no pads: out 2 with ceil, the last window sees 2x2). */
Test(ref_grad_ops, average_pool_grad) {
    pq_tensor *x = pq_test_nn_f32(4, d1144, NULL);
    pq_tensor *g = pq_test_nn_f32(4, d1122, (float[]){36, 36, 36, 36});
    const pq_tensor *in[2] = {x, g};
    int64_t k[2] = {3, 3}, s[2] = {2, 2}, p[4] = {1, 1, 1, 1};
    pq_tensor *dx = pq_tg_pool(PQ_OP_AVERAGE_POOL_GRAD, in, k, s, p, 0, 0);
    /* window rows/cols: output 0 reads 0..1 (A), output 1 reads 1..3 (B); real elements per
     * window 4, 6, 6, 9, so g = 36 gives 9, 6, 6, 4 per element */
    float want[16];
    for (int i = 0; i < 16; i++) {
        int r = i / 4, c = i % 4;
        bool ra = r <= 1, rb = r >= 1, ca = c <= 1, cb = c >= 1;
        want[i] = (float)(9 * (ra && ca) + 6 * (ra && cb) + 6 * (rb && ca) + 4 * (rb && cb));
    }
    pq_test_nn_close_f(dx, want, 16, 1e-6, 0);
    pq_tensor_destroy(dx);
    dx = pq_tg_pool(PQ_OP_AVERAGE_POOL_GRAD, in, k, s, p, 0, 1);
    for (int i = 0; i < 16; i++) { /* every divisor 9: 4 per window covering the element */
        int r = i / 4, c = i % 4;
        int nr = (r <= 1) + (r >= 1), nc = (c <= 1) + (c >= 1);
        want[i] = 4.0f * (float)(nr * nc);
    }
    pq_test_nn_close_f(dx, want, 16, 1e-6, 0);
    pq_tensor_destroy(dx);
    pq_tensor_destroy(x);
    pq_tensor_destroy(g);
    /* ceil_mode: 4x4, kernel 3, stride 2 -> 2x2; window (1,1) sees rows/cols 2..3 only */
    x = pq_test_nn_f32(4, d1144, NULL);
    g = pq_test_nn_f32(4, d1122, (float[]){9, 0, 0, 4});
    const pq_tensor *in2[2] = {x, g};
    dx = pq_tg_pool(PQ_OP_AVERAGE_POOL_GRAD, in2, k, s, NULL, 1, 0);
    pq_test_nn_close_f(dx, (float[]){1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 2, 1, 0, 0, 1, 1}, 16, 1e-6, 0);
    pq_tensor_destroy(dx);
    pq_tensor_destroy(x);
    pq_tensor_destroy(g);
}

/* <Resize(x), g> = <x, ResizeGrad(g)>: the adjoint, for nearest and linear over several
 * coordinate modes, up and down. */
Test(ref_grad_ops, resize_grad_is_the_adjoint) {
    const char *modes[][2] = {{"nearest", "half_pixel"},        {"nearest", "asymmetric"},
                              {"linear", "half_pixel"},         {"linear", "align_corners"},
                              {"linear", "pytorch_half_pixel"}, {"cubic", "half_pixel"}};
    float scales[2][4] = {{1, 1, 2, 1.5f}, {1, 1, 0.5f, 0.75f}};
    int64_t xd[4] = {1, 2, 4, 4};
    for (int m = 0; m < 6; m++)
        for (int sc = 0; sc < 2; sc++) {
            pq_tensor *x = pq_test_nn_rand(PQ_DTYPE_F32, 4, xd, 3);
            int64_t s4 = 4;
            pq_tensor *st = pq_test_nn_f32(1, &s4, scales[sc]);
            const pq_tensor *in[3] = {x, NULL, st};
            uint32_t nid;
            pq_graph *g = pq_test_nn_node(PQ_OP_RESIZE, in, 3, 1, 1, &nid);
            pq_error err;
            pq_node_set_string(g, nid, "mode", modes[m][0], &err);
            pq_node_set_string(g, nid, "coordinate_transformation_mode", modes[m][1], &err);
            pq_tensor *y[1];
            cr_assert_eq(pq_test_nn_run(g, nid, y, &err), PQ_OK, "%s", err.msg);
            pq_tensor *gy = pq_test_nn_rand(PQ_DTYPE_F32, y[0]->rank, y[0]->dims, 5);
            pq_tensor *shp = pq_tensor_create(PQ_DTYPE_I64, 1, &s4, &err);
            memcpy(shp->data, xd, sizeof xd);
            const pq_tensor *bin[4] = {gy, shp, NULL, st};
            uint32_t bid;
            pq_graph *gb = pq_test_nn_node(PQ_OP_RESIZE_GRAD, bin, 4, 1, 1, &bid);
            pq_node_set_string(gb, bid, "mode", modes[m][0], &err);
            pq_node_set_string(gb, bid, "coordinate_transformation_mode", modes[m][1], &err);
            pq_tensor *dx[1];
            cr_assert_eq(pq_test_nn_run(gb, bid, dx, &err), PQ_OK, "%s", err.msg);
            double lhs = 0, rhs = 0;
            for (int64_t i = 0; i < pq_tensor_numel(y[0]); i++)
                lhs += (double)((float *)y[0]->data)[i] * ((float *)gy->data)[i];
            for (int64_t i = 0; i < pq_tensor_numel(x); i++)
                rhs += (double)((float *)x->data)[i] * ((float *)dx[0]->data)[i];
            cr_assert(fabs(lhs - rhs) <= 1e-5 * (1 + fabs(lhs)), "%s %s scales %d: %g vs %g",
                      modes[m][0], modes[m][1], sc, lhs, rhs);
            pq_tensor_destroy(y[0]);
            pq_tensor_destroy(dx[0]);
            pq_tensor_destroy(gy);
            pq_tensor_destroy(shp);
            pq_tensor_destroy(st);
            pq_tensor_destroy(x);
            pq_graph_destroy(g);
            pq_graph_destroy(gb);
        }
}

/* g whose shape is not the forward output's: INVALID naming the dims. */
Test(ref_grad_ops, shape_rules_refuse_a_wrong_g) {
    pq_tensor *x = pq_test_nn_f32(4, d1144, NULL);
    int64_t d3[4] = {1, 1, 3, 3};
    pq_tensor *g = pq_test_nn_f32(4, d3, NULL);
    const pq_tensor *in[2] = {x, g};
    uint32_t nid;
    pq_graph *gr = pq_test_nn_node(PQ_OP_MAX_POOL_GRAD, in, 2, 1, 1, &nid);
    pq_error err;
    pq_node_set_ints(gr, nid, "kernel_shape", (int64_t[]){2, 2}, 2, &err);
    pq_node_set_ints(gr, nid, "strides", (int64_t[]){2, 2}, 2, &err);
    cr_assert_eq(pq_infer_node(gr, nid, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "g dim 2 is 3"), "%s", err.msg);
    pq_graph_destroy(gr);
    int64_t s4 = 4;
    pq_tensor *shp = pq_tensor_create(PQ_DTYPE_I64, 1, &s4, &err);
    memcpy(shp->data, d1122, sizeof d1122);
    pq_tensor *st = pq_test_nn_f32(1, &s4, (float[]){1, 1, 2, 2});
    const pq_tensor *bin[4] = {g, shp, NULL, st};
    gr = pq_test_nn_node(PQ_OP_RESIZE_GRAD, bin, 4, 1, 1, &nid);
    cr_assert_eq(pq_infer_node(gr, nid, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "g dim 2 is 3, the forward output has 4"), "%s", err.msg);
    pq_graph_destroy(gr);
    pq_tensor_destroy(shp);
    pq_tensor_destroy(st);
    pq_tensor_destroy(x);
    pq_tensor_destroy(g);
}
