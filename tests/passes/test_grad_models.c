/* autodiff end to end on whole models: PyTorch-exported ONNX models of the repository
 * (tests/models/transformer17: embedding, positional Slice, multi-head attention with its
 * Shape/Gather/Concat/Reshape chains, LayerNormalization, Relu MLP; tests/models/cnn_bn: Conv,
 * BatchNormalization, Pad, MaxPool, AveragePool, GlobalAveragePool, Gemm; the digits CNN) with a
 * mean cross-entropy loss appended, converted to f64 so finite differences can check every weight
 * tensor (sampled elements); and a character-level transformer LM block written as the colleague's
 * export writes it (constant reshape shapes with -1 for the batch, mask added before Softmax). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "grad_check.h"
#include "pass_test_util.h"
#include "runtime/runtime.h"

/* Every f32 value of g becomes f64 (constants converted, Cast to f32 retargeted). */
static void pq_gm_to_f64(pq_graph *g) {
    pq_error err;
    for (uint32_t v = 0; v < g->n_values; v++) {
        pq_value *pv = &g->values[v];
        if (pv->dtype != PQ_DTYPE_F32) continue;
        if (pv->constant) {
            const pq_tensor *t = pv->constant;
            pq_tensor *d = pq_tensor_create(PQ_DTYPE_F64, t->rank, t->dims, &err);
            cr_assert(d, "%s", err.msg);
            for (int64_t i = 0; i < pq_tensor_numel(t); i++)
                pq_dtype_store(PQ_DTYPE_F64, d->data, (size_t)i,
                               pq_dtype_load(t->dtype, t->data, (size_t)i));
            cr_assert_eq(pq_graph_set_constant(g, v, d, &err), PQ_OK, "%s", err.msg);
        }
        g->values[v].dtype = PQ_DTYPE_F64;
    }
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == PQ_OP_CAST &&
            !strcmp(pq_node_attr_string(&g->nodes[i], "to", ""), "f32"))
            cr_assert_eq(pq_node_set_string(g, i, "to", "f64", &err), PQ_OK);
}

/* Relu becomes Softplus (smooth): finite differences with the step the f32 kernels need would
 * step over Relu kinks in models this size; Relu's own rule is checked in test_grad_elementwise.c
 * away from its kink. */
static void pq_gm_smooth(pq_graph *g) {
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == PQ_OP_RELU) g->nodes[i].op = PQ_OP_SOFTPLUS;
}

/* Appends loss = mean over positions of -log softmax(logits)[label] (last axis), with a new graph
 * input `labels` (i64, logits' shape with the last dim 1), as output `loss`. */
static void pq_gm_add_ce(pq_graph *g, const char *logits) {
    pq_error err;
    uint32_t lg = pq_graph_find_value(g, logits), nid, lsm, lab, pick, neg, loss;
    cr_assert_neq(lg, PQ_NONE);
    cr_assert_eq(pq_build(g, PQ_OP_LOG_SOFTMAX, "lsm", &lg, 1, &lsm, &nid, &err), PQ_OK);
    cr_assert_eq(pq_node_set_int(g, nid, "axis", -1, &err), PQ_OK);
    cr_assert_eq(pq_infer_node(g, nid, &err), PQ_OK, "%s", err.msg);
    pq_shape s = g->values[lg].shape;
    s.dims[s.rank - 1] = pq_dim_of(1);
    cr_assert_eq(pq_graph_add_value(g, "labels", PQ_DTYPE_I64, &s, &lab, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_input(g, lab, &err), PQ_OK);
    uint32_t in[2] = {lsm, lab};
    cr_assert_eq(pq_build(g, PQ_OP_GATHER_ELEMENTS, "pick", in, 2, &pick, &nid, &err), PQ_OK);
    cr_assert_eq(pq_node_set_int(g, nid, "axis", -1, &err), PQ_OK);
    cr_assert_eq(pq_infer_node(g, nid, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_build(g, PQ_OP_NEG, "nll", &pick, 1, &neg, &nid, &err), PQ_OK);
    cr_assert_eq(pq_infer_node(g, nid, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_build(g, PQ_OP_REDUCE_MEAN, "loss", &neg, 1, &loss, &nid, &err), PQ_OK);
    cr_assert_eq(pq_node_set_int(g, nid, "keepdims", 0, &err), PQ_OK);
    cr_assert_eq(pq_infer_node(g, nid, &err), PQ_OK, "%s", err.msg);
    cr_assert_str_eq(g->values[loss].name, "loss");
    cr_assert_eq(pq_graph_add_output(g, loss, &err), PQ_OK);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
}

/* An i64 tensor of dims with element i = (a i + b) mod m. */
static pq_tensor *pq_gm_ids(int rank, const int64_t *dims, int64_t a, int64_t b, int64_t m) {
    pq_error err;
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_I64, rank, dims, &err);
    cr_assert(t, "%s", err.msg);
    for (int64_t i = 0; i < pq_tensor_numel(t); i++)
        ((int64_t *)t->data)[i] = (a * i + b) % m;
    return t;
}

/* f64 models through f32 kernels: step 1e-2 (five points), |fd - ad| <= 2e-3 |fd| + 1e-4. */
static const pq_gc_tol PQ_GM_TOL = {1e-2, 2e-3, true, 1e-4};

Test(grad_models, transformer17_onnx) {
    pq_graph *g = pq_test_load_onnx("tests/models/transformer17/model.onnx");
    pq_gm_to_f64(g);
    pq_gm_smooth(g);
    pq_gm_add_ce(g, "logits");
    int64_t dt[2] = {2, 8}, dl[3] = {2, 8, 1};
    pq_tensor *ins[2] = {pq_test_read_npy("tests/models/transformer17/input_tokens.npy"),
                         pq_gm_ids(3, dl, 3, 1, 7)};
    (void)dt;
    uint32_t n =
        pq_gc_check_in(g, (const pq_tensor *const *)ins, NULL, PQ_GM_TOL, 24, "transformer17");
    cr_assert(n >= 16, "%u gradients", n);
    pq_tensor_destroy(ins[0]);
    pq_tensor_destroy(ins[1]);
    pq_graph_destroy(g);
}

/* The f64 copy of an f32 (or f64) tensor, its first n_first rows along axis 0 (0: all). */
static pq_tensor *pq_gm_f64(const pq_tensor *t, int64_t n_first) {
    pq_error err;
    int64_t dims[PQ_MAX_RANK];
    memcpy(dims, t->dims, sizeof(int64_t) * (size_t)t->rank);
    if (n_first > 0 && n_first < dims[0]) dims[0] = n_first;
    pq_tensor *d = pq_tensor_create(PQ_DTYPE_F64, t->rank, dims, &err);
    cr_assert(d, "%s", err.msg);
    for (int64_t i = 0; i < pq_tensor_numel(d); i++)
        pq_dtype_store(PQ_DTYPE_F64, d->data, (size_t)i,
                       pq_dtype_load(t->dtype, t->data, (size_t)i));
    return d;
}

/* A CNN exported by PyTorch with a symbolic batch: Conv (bias and none), BatchNormalization,
 * MaxPool, Pad, AveragePool, GlobalAveragePool, Flatten, Gemm; every weight, bias and BatchNorm
 * statistic differentiated. */
static void pq_gm_cnn(const char *model, const char *input, int64_t n, bool avg, const char *opts,
                      const char *what) {
    pq_graph *g = pq_test_load_onnx(model);
    pq_gm_to_f64(g);
    pq_gm_smooth(g);
    if (avg) /* MaxPool -> AveragePool: see digits_onnx */
        for (uint32_t i = 0; i < g->n_nodes; i++)
            if (g->nodes[i].op == PQ_OP_MAX_POOL) g->nodes[i].op = PQ_OP_AVERAGE_POOL;
    pq_gm_add_ce(g, "logits");
    pq_tensor *x = pq_test_read_npy(input);
    int64_t dl[2] = {n, 1};
    pq_tensor *ins[2] = {pq_gm_f64(x, n), pq_gm_ids(2, dl, 7, 2, 10)};
    pq_tensor_destroy(x);
    uint32_t k = pq_gc_check_in(g, (const pq_tensor *const *)ins, opts, PQ_GM_TOL, 16, what);
    cr_assert(k >= 8, "%s: %u gradients", what, k);
    pq_tensor_destroy(ins[0]);
    pq_tensor_destroy(ins[1]);
    pq_graph_destroy(g);
}

Test(grad_models, cnn_bn_onnx) {
    pq_gm_cnn("tests/models/cnn_bn/model.onnx", "tests/models/cnn_bn/input_x.npy", 2, false, NULL,
              "cnn_bn");
}

/* The digits CNN: a weight step of 1e-2 moves its feature maps enough to switch the maximum of
 * MaxPool windows on both sides of the weight (the loss is only piecewise smooth there; finite
 * differences do not converge), so its MaxPool is checked as AveragePool (MaxPool itself:
 * test_grad_nn.c and cnn_bn above); its running variances are too small for the step. */
Test(grad_models, digits_onnx) {
    pq_gm_cnn("examples/digits/model.onnx", "examples/digits/test_x.npy", 3, true,
              "{loss: loss, wrt: '^(fc|features)[.0-9]*(weight|bias|running_mean)$'}", "digits");
}

/* The character-level LM's block as its export writes it (scripts/train_charlm.py: Linear layers as
 * MatMul + Add of the bias, constant reshape shapes with -1 for the batch, the causal mask added
 * to the scaled scores, Relu MLP, final LayerNorm and head), with a symbolic batch, the token ids
 * and next-token labels as inputs and the mean cross-entropy as the loss; every parameter
 * (p_*) against finite differences (Relu as Softplus, as above). */
/* clang-format off */
static const char pq_gm_charlm[] =
    "  symbols N\n"
    "  input %tokens: i64[N, 5]\n"
    "  input %labels: i64[N, 5, 1]\n"
    "  const %p_tok: f64[7, 8] = @s\n"
    "  const %p_pos: f64[5, 8] = @s\n"
    "  const %p_ln1s: f64[8] = @p\n"
    "  const %p_ln1b: f64[8] = @s\n"
    "  const %p_wq: f64[8, 8] = @s\n"
    "  const %p_bq: f64[8] = @s\n"
    "  const %p_wk: f64[8, 8] = @s\n"
    "  const %p_bk: f64[8] = @s\n"
    "  const %p_wv: f64[8, 8] = @s\n"
    "  const %p_bv: f64[8] = @s\n"
    "  const %p_wo: f64[8, 8] = @s\n"
    "  const %p_bo: f64[8] = @s\n"
    "  const %p_ln2s: f64[8] = @p\n"
    "  const %p_ln2b: f64[8] = @s\n"
    "  const %p_w1: f64[8, 32] = @s\n"
    "  const %p_b1: f64[32] = @s\n"
    "  const %p_w2: f64[32, 8] = @s\n"
    "  const %p_b2: f64[8] = @s\n"
    "  const %p_lnfs: f64[8] = @p\n"
    "  const %p_lnfb: f64[8] = @s\n"
    "  const %p_wh: f64[8, 7] = @s\n"
    "  const %p_bh: f64[7] = @s\n"
    "  const %s4: i64[4] = [-1, 5, 2, 4]\n"
    "  const %s3: i64[3] = [-1, 5, 8]\n"
    "  const %scale: f64[] = [0.5]\n"
    "  const %one: i64[1] = [1]\n"
    "  const %mask: f64[5, 5] = [0, -1e4, -1e4, -1e4, -1e4, 0, 0, -1e4, -1e4, -1e4, "
    "0, 0, 0, -1e4, -1e4, 0, 0, 0, 0, -1e4, 0, 0, 0, 0, 0]\n"
    "  %e = Gather(%p_tok, %tokens)\n"
    "  %x0 = Add(%e, %p_pos)\n"
    "  %a = LayerNormalization(%x0, %p_ln1s, %p_ln1b) {axis = -1, epsilon = 1e-05}\n"
    "  %q0_m = MatMul(%a, %p_wq)\n"
    "  %q0 = Add(%p_bq, %q0_m)\n"
    "  %k0_m = MatMul(%a, %p_wk)\n"
    "  %k0 = Add(%p_bk, %k0_m)\n"
    "  %v0_m = MatMul(%a, %p_wv)\n"
    "  %v0 = Add(%p_bv, %v0_m)\n"
    "  %q_r = Reshape(%q0, %s4)\n"
    "  %q = Transpose(%q_r) {perm = [0, 2, 1, 3]}\n"
    "  %k_r = Reshape(%k0, %s4)\n"
    "  %k = Transpose(%k_r) {perm = [0, 2, 3, 1]}\n"
    "  %v_r = Reshape(%v0, %s4)\n"
    "  %v = Transpose(%v_r) {perm = [0, 2, 1, 3]}\n"
    "  %s0 = MatMul(%q, %k)\n"
    "  %s1 = Mul(%s0, %scale)\n"
    "  %s = Add(%s1, %mask)\n"
    "  %p = Softmax(%s) {axis = -1}\n"
    "  %o = MatMul(%p, %v)\n"
    "  %ot = Transpose(%o) {perm = [0, 2, 1, 3]}\n"
    "  %or = Reshape(%ot, %s3)\n"
    "  %pr_m = MatMul(%or, %p_wo)\n"
    "  %pr = Add(%p_bo, %pr_m)\n"
    "  %x1 = Add(%x0, %pr)\n"
    "  %b = LayerNormalization(%x1, %p_ln2s, %p_ln2b) {axis = -1, epsilon = 1e-05}\n"
    "  %f1_m = MatMul(%b, %p_w1)\n"
    "  %f1 = Add(%p_b1, %f1_m)\n"
    "  %r = Relu(%f1)\n"
    "  %f2_m = MatMul(%r, %p_w2)\n"
    "  %f2 = Add(%p_b2, %f2_m)\n"
    "  %x2 = Add(%x1, %f2)\n"
    "  %lf = LayerNormalization(%x2, %p_lnfs, %p_lnfb) {axis = -1, epsilon = 1e-05}\n"
    "  %logits_m = MatMul(%lf, %p_wh)\n"
    "  %logits = Add(%p_bh, %logits_m)\n"
    "  %lsm = LogSoftmax(%logits) {axis = -1}\n"
    "  %pick = GatherElements(%lsm, %labels) {axis = -1}\n"
    "  %nll = Neg(%pick)\n"
    "  %ce = ReduceMean(%nll) {keepdims = 0}\n"
    "  %y = Reshape(%ce, %one)\n";

/* clang-format on */

Test(grad_models, charlm_block) {
    pq_graph *g = pq_gc_graph(pq_gm_charlm);
    pq_gm_smooth(g);
    pq_error err;
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    int64_t dt[2] = {3, 5}, dl[3] = {3, 5, 1};
    pq_tensor *ins[2] = {pq_gm_ids(2, dt, 5, 3, 7), pq_gm_ids(3, dl, 3, 1, 7)};
    uint32_t n = pq_gc_check_in(g, (const pq_tensor *const *)ins, "{wrt: '^p_'}", PQ_GM_TOL, 0,
                                "charlm block");
    cr_assert_eq(n, 22u, "%u gradients", n);
    pq_tensor_destroy(ins[0]);
    pq_tensor_destroy(ins[1]);
    pq_graph_destroy(g);
}
