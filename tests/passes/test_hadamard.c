/* Tests of the hadamard pass and of weight selection (passes/select.h): the rotated graph computes
 * the same function on every test model (max abs difference <= 1e-4 * max|y|), golden text IR,
 * side: both, sharing, folding, cancelling, skips and option errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backends/quant/fwht.h"
#include "ir/ir.h"
#include "model_util.h"
#include "pass_test_util.h"
#include "passes/rotate.h"
#include "passes/select.h"
#include "runtime/runtime.h"

extern const pq_pass pq_pass_hadamard;

/* Relative tolerance of every equality check: max |y_rot - y| <= 1e-4 * max |y| per output. */
#define PQT_RTOL 1e-4

/* Runs pass with opts on a clone of model m and checks the function is unchanged; returns the
 * rotated graph (caller destroys). */
static pq_graph *pqt_check_model(const pq_mu_model *m, const char *opts, pq_pass_ctx *ctx) {
    pq_graph *g = pq_test_load_onnx(m->onnx);
    pq_graph *r = pq_test_clone_run_pass(g, &pq_pass_hadamard, opts, ctx, m->name);
    pq_tensor **ya = pq_test_run_npy(g, m->input);
    pq_tensor **yb = pq_test_run_npy(r, m->input);
    double d, my;
    pq_test_max_diff(ya, yb, g->n_outputs, &d, &my);
    cr_log_info("hadamard %s %s: max abs diff %.3g, max |y| %.3g, %u Hadamard nodes", m->name, opts,
                d, my, pq_test_count_op(r, PQ_OP_HADAMARD));
    cr_assert(d <= PQT_RTOL * my, "%s (%s): max abs diff %g > 1e-4 * max|y| (%g)", m->name, opts, d,
              my);
    pq_test_free_outputs(ya, g->n_outputs);
    pq_test_free_outputs(yb, r->n_outputs);
    pq_graph_destroy(g);
    return r;
}

/* Number of notes with rotated_in. */
static uint32_t pqt_rotated(const pq_pass_ctx *ctx) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < ctx->n_notes; i++)
        n += ctx->notes[i].rotated_in;
    return n;
}

static void pqt_models_case(const char *opts) {
    for (uint32_t i = 0; i < pq_mu_n_models; i++) {
        pq_pass_ctx ctx;
        pq_pass_ctx_init(&ctx);
        ctx.verbose = 0;
        pq_graph *r = pqt_check_model(&pq_mu_models[i], opts, &ctx);
        const char *nm = pq_mu_models[i].name;
        if (!strcmp(nm, "digits") || !strcmp(nm, "cnn_bn") || !strncmp(nm, "transformer", 11)) {
            cr_assert(pqt_rotated(&ctx) >= 1, "%s: no layer rotated", nm);
            cr_assert(pq_test_count_op(r, PQ_OP_HADAMARD) >= 1, "%s: no Hadamard node", nm);
        }
        /* every note keeps the un-rotated original */
        for (uint32_t k = 0; k < ctx.n_notes; k++)
            cr_assert(ctx.notes[k].original, "%s: note '%s' has no original", nm,
                      ctx.notes[k].value_name);
        pq_graph_destroy(r);
        pq_pass_ctx_free(&ctx);
    }
}

Test(hadamard, every_model_same_function_input_side) {
    pqt_models_case("{min-elements: 0}");
}

Test(hadamard, every_model_same_function_both_sides) {
    pqt_models_case("{min-elements: 0, side: both, seed: 7}");
}

Test(hadamard, default_options_leave_small_models_valid) {
    pqt_models_case("");
}

/* ---- hand-built graphs ---- */

static uint64_t pqt_rng = 12345;
static float pqt_rand(void) {
    pqt_rng = pqt_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(pqt_rng >> 40) / 16777216.0 * 2.0 - 1.0);
}

static float pqt_fill_rand(int64_t i) {
    (void)i;
    return pqt_rand();
}

static uint32_t pqt_const(pq_graph *g, const char *name, int rank, const int64_t *dims) {
    return pq_test_add_const(g, name, rank, dims, pqt_fill_rand);
}

static uint32_t pqt_node(pq_graph *g, enum pq_op op, const char *name, uint32_t a, uint32_t b,
                         uint32_t *nid) {
    pq_error err;
    uint32_t in[2] = {a, b}, out, n;
    cr_assert_eq(pq_build(g, op, name, in, b == PQ_NONE ? 1 : 2, &out, &n, &err), PQ_OK, "%s",
                 err.msg);
    if (nid) *nid = n;
    return out;
}

/* Makes y the output of g, prepares g, runs the pass with opts on a clone (notes into ctx, which
 * this initialises) and checks both compute the same function on a random input of shape
 * xd[0..rank). Returns the clone (pqt_done frees all three). */
static pq_graph *pqt_run(pq_graph *g, uint32_t y, const char *opts, pq_pass_ctx *ctx, int rank,
                         const int64_t *xd) {
    pq_error err;
    pq_error_clear(&err);
    cr_assert_eq(pq_graph_add_output(g, y, &err), PQ_OK, "%s", err.msg);
    pq_pass_ctx_init(ctx);
    ctx->verbose = 0;
    pq_tensor *in = pq_test_tensor(rank, xd, pqt_fill_rand);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    pq_graph *r = pq_test_clone_run_pass(g, &pq_pass_hadamard, opts, ctx, NULL);
    pq_tensor **ya = pq_test_run(g, in);
    pq_tensor **yb = pq_test_run(r, in);
    double d, my;
    pq_test_max_diff(ya, yb, g->n_outputs, &d, &my);
    cr_assert(d <= PQT_RTOL * my, "max abs diff %g > 1e-4 * max|y| (%g)", d, my);
    pq_test_free_outputs(ya, g->n_outputs);
    pq_test_free_outputs(yb, r->n_outputs);
    pq_tensor_destroy(in);
    return r;
}

static void pqt_done(pq_graph *g, pq_graph *r, pq_pass_ctx *ctx) {
    pq_graph_destroy(g);
    pq_graph_destroy(r);
    pq_pass_ctx_free(ctx);
}

static const float *pqt_data(const pq_graph *g, const char *name) {
    uint32_t v = pq_graph_find_value(g, name);
    cr_assert(v != PQ_NONE && g->values[v].constant, "no constant '%s'", name);
    return g->values[v].constant->data;
}

Test(hadamard, golden_text_ir_matmul) {
    pq_graph *g = pq_test_graph();
    int64_t xd[2] = {3, 16}, wd[2] = {16, 8};
    uint32_t x = pq_test_add_input(g, "x", 2, xd);
    uint32_t w = pqt_const(g, "w", 2, wd);
    uint32_t y = pqt_node(g, PQ_OP_MATMUL, "mm", x, w, NULL);
    pq_error err;
    pq_pass_ctx ctx;
    pq_graph *r = pqt_run(g, y, "{min-elements: 0}", &ctx, 2, xd);
    char *text = NULL;
    cr_assert_eq(pq_text_print_string(r, NULL, &text, &err), PQ_OK);
    cr_assert(strstr(text, "Hadamard(%x)"), "%s", text);
    cr_assert(strstr(text, "seed = 42"), "%s", text);
    cr_assert(strstr(text, "axis = -1"), "%s", text);
    cr_assert(strstr(text, "MatMul(%x.rot, %w)"), "%s", text);
    /* the weight changed: W' = R W column-wise, i.e. every column of the stored [K, N] is R w */
    const float *w0 = pqt_data(g, "w"), *w1 = pqt_data(r, "w");
    float col[16];
    for (int n = 0; n < 8; n++) {
        for (int k = 0; k < 16; k++)
            col[k] = w0[k * 8 + n];
        cr_assert_eq(pq_rht_forward(col, 16, 42, &err), PQ_OK);
        for (int k = 0; k < 16; k++)
            cr_assert_eq(w1[k * 8 + n], col[k], "w[%d][%d]", k, n);
    }
    cr_assert(memcmp(w0, w1, sizeof(float) * 128) != 0);
    const pq_weight_note *note = pq_pass_find_note(&ctx, "w");
    cr_assert(note && note->rotated_in && note->seed_in == 42 && !note->rotated_out);
    cr_assert(note->original && !memcmp(note->original->data, w0, sizeof(float) * 128));
    pq_free(text);
    pqt_done(g, r, &ctx);
}

Test(hadamard, both_sides_gemm_conv) {
    /* Gemm(transB=1, bias) -> Relu -> Reshape-free chain is not possible for Conv; two graphs */
    pq_error err;
    pq_graph *g = pq_test_graph();
    int64_t xd[2] = {4, 32}, wd[2] = {16, 32}, bd[1] = {16};
    uint32_t x = pq_test_add_input(g, "x", 2, xd);
    uint32_t w = pqt_const(g, "w", 2, wd), b = pqt_const(g, "b", 1, bd);
    uint32_t gn;
    uint32_t in3[3] = {x, w, b}, y;
    cr_assert_eq(pq_build(g, PQ_OP_GEMM, "gemm", in3, 3, &y, &gn, &err), PQ_OK);
    cr_assert_eq(pq_node_set_int(g, gn, "transB", 1, &err), PQ_OK);
    pq_pass_ctx ctx;
    pq_graph *r = pqt_run(g, y, "{min-elements: 0, side: both}", &ctx, 2, xd);
    cr_assert_eq(pq_test_count_op(r, PQ_OP_HADAMARD), 2);
    const pq_weight_note *note = pq_pass_find_note(&ctx, "w");
    cr_assert(note && note->rotated_in && note->rotated_out);
    cr_assert_str_eq(r->values[r->outputs[0]].name, g->values[g->outputs[0]].name);
    pqt_done(g, r, &ctx);

    /* Conv 3x3 with bias, both sides */
    g = pq_test_graph();
    int64_t cx[4] = {2, 16, 5, 5}, cw[4] = {8, 16, 3, 3}, cb[1] = {8};
    x = pq_test_add_input(g, "x", 4, cx);
    w = pqt_const(g, "cw", 4, cw);
    b = pqt_const(g, "cb", 1, cb);
    uint32_t in3c[3] = {x, w, b};
    cr_assert_eq(pq_build(g, PQ_OP_CONV, "conv", in3c, 3, &y, &gn, &err), PQ_OK);
    int64_t pads[4] = {1, 1, 1, 1};
    cr_assert_eq(pq_node_set_ints(g, gn, "pads", pads, 4, &err), PQ_OK);
    r = pqt_run(g, y, "{min-elements: 0, side: both}", &ctx, 4, cx);
    cr_assert_eq(pq_test_count_op(r, PQ_OP_HADAMARD), 2);
    for (uint32_t i = 0; i < r->n_nodes; i++)
        if (r->nodes[i].op == PQ_OP_HADAMARD)
            cr_assert_eq(pq_node_attr_int(&r->nodes[i], "axis", 0), 1);
    pqt_done(g, r, &ctx);
}

Test(hadamard, grouped_and_depthwise_conv_skipped) {
    pq_error err;
    pq_graph *g = pq_test_graph();
    int64_t cx[4] = {1, 16, 6, 6}, cw[4] = {16, 8, 3, 3}, dw[4] = {16, 1, 3, 3};
    uint32_t x = pq_test_add_input(g, "x", 4, cx);
    uint32_t w = pqt_const(g, "gw", 4, cw), w2 = pqt_const(g, "dw", 4, dw);
    uint32_t n1, n2;
    uint32_t y = pqt_node(g, PQ_OP_CONV, "grouped", x, w, &n1);
    cr_assert_eq(pq_node_set_int(g, n1, "group", 2, &err), PQ_OK);
    uint32_t z = pqt_node(g, PQ_OP_CONV, "depthwise", y, w2, &n2);
    cr_assert_eq(pq_node_set_int(g, n2, "group", 16, &err), PQ_OK);
    pq_pass_ctx ctx;
    pq_graph *r = pqt_run(g, z, "{min-elements: 0, side: both}", &ctx, 4, cx);
    cr_assert_eq(pq_test_count_op(r, PQ_OP_HADAMARD), 0);
    cr_assert_eq(ctx.n_notes, 0u);
    cr_assert(!memcmp(pqt_data(g, "gw"), pqt_data(r, "gw"), sizeof(float) * 16 * 8 * 9));
    pqt_done(g, r, &ctx);
}

/* Regression: a weight shared by two MatMuls is rotated once (rotating it per use would apply R
 * twice); both layers share one Hadamard node when they read the same activation. */
Test(hadamard, shared_weight_rotated_once) {
    pq_error err;
    pq_graph *g = pq_test_graph();
    int64_t xd[2] = {2, 16}, wd[2] = {16, 16};
    uint32_t x = pq_test_add_input(g, "x", 2, xd);
    uint32_t w = pqt_const(g, "w", 2, wd);
    uint32_t a = pqt_node(g, PQ_OP_MATMUL, "mm1", x, w, NULL);
    uint32_t b = pqt_node(g, PQ_OP_MATMUL, "mm2", x, w, NULL);
    uint32_t c = pqt_node(g, PQ_OP_MATMUL, "mm3", a, w, NULL); /* a different activation */
    uint32_t s = pqt_node(g, PQ_OP_ADD, "sum", b, c, NULL);
    pq_pass_ctx ctx;
    pq_graph *r = pqt_run(g, s, "{min-elements: 0}", &ctx, 2, xd);
    /* one node on x (shared by mm1, mm2); mm3's input is mm1's output: folded into mm1 is not
     * possible (mm1's weight is shared), so a second node */
    cr_assert_eq(pq_test_count_op(r, PQ_OP_HADAMARD), 2);
    const float *w0 = pqt_data(g, "w"), *w1 = pqt_data(r, "w");
    float col[16];
    for (int n = 0; n < 16; n++) {
        for (int k = 0; k < 16; k++)
            col[k] = w0[k * 16 + n];
        cr_assert_eq(pq_rht_forward(col, 16, 42, &err), PQ_OK);
        for (int k = 0; k < 16; k++)
            cr_assert_eq(w1[k * 16 + n], col[k], "w rotated more than once at [%d][%d]", k, n);
    }
    cr_assert_eq(ctx.n_notes, 1u);
    pqt_done(g, r, &ctx);
}

Test(hadamard, shared_weight_with_unrotated_use_gets_private_copy) {
    pq_graph *g = pq_test_graph();
    int64_t xd[2] = {2, 16}, wd[2] = {16, 16};
    uint32_t x = pq_test_add_input(g, "x", 2, xd);
    uint32_t w = pqt_const(g, "w", 2, wd);
    uint32_t a = pqt_node(g, PQ_OP_MATMUL, "keep", x, w, NULL);
    uint32_t b = pqt_node(g, PQ_OP_MATMUL, "rot", x, w, NULL);
    uint32_t s = pqt_node(g, PQ_OP_ADD, "sum", a, b, NULL);
    pq_pass_ctx ctx;
    pq_graph *r = pqt_run(g, s, "{min-elements: 0, exclude: '^keep$'}", &ctx, 2, xd);
    cr_assert(!memcmp(pqt_data(g, "w"), pqt_data(r, "w"), sizeof(float) * 256));
    cr_assert(pq_graph_find_value(r, "w.rot") != PQ_NONE);
    cr_assert(pq_pass_find_note(&ctx, "w.rot"));
    pqt_done(g, r, &ctx);
}

/* x [3, 16] -> mm1 (w1 [16, 32]) -> mm2 (w2 [32, 8]): two linear layers in a chain; *y = mm2's
 * output. */
static const int64_t pqt_two_matmuls_x[2] = {3, 16};
static pq_graph *pqt_two_matmuls(uint32_t *y) {
    pq_graph *g = pq_test_graph();
    int64_t w1d[2] = {16, 32}, w2d[2] = {32, 8};
    uint32_t x = pq_test_add_input(g, "x", 2, pqt_two_matmuls_x);
    uint32_t w1 = pqt_const(g, "w1", 2, w1d), w2 = pqt_const(g, "w2", 2, w2d);
    uint32_t h = pqt_node(g, PQ_OP_MATMUL, "mm1", x, w1, NULL);
    *y = pqt_node(g, PQ_OP_MATMUL, "mm2", h, w2, NULL);
    return g;
}

Test(hadamard, fold_into_linear_producer) {
    uint32_t y;
    pq_graph *g = pqt_two_matmuls(&y);
    pq_pass_ctx ctx;
    pq_graph *r = pqt_run(g, y, "{min-elements: 0}", &ctx, 2, pqt_two_matmuls_x);
    /* x gets a node; mm2's rotation is folded into mm1's output features */
    cr_assert_eq(pq_test_count_op(r, PQ_OP_HADAMARD), 1);
    const pq_weight_note *n1 = pq_pass_find_note(&ctx, "w1");
    cr_assert(n1 && n1->rotated_in && n1->rotated_out && n1->seed_out == 42);
    pqt_done(g, r, &ctx);
}

Test(hadamard, both_sides_chain_cancels_inverse) {
    uint32_t y;
    pq_graph *g = pqt_two_matmuls(&y);
    pq_pass_ctx ctx;
    pq_graph *r = pqt_run(g, y, "{min-elements: 0, side: both}", &ctx, 2, pqt_two_matmuls_x);
    /* forward on x, mm1's inverse cancelled against mm2's forward, inverse after mm2 */
    cr_assert_eq(pq_test_count_op(r, PQ_OP_HADAMARD), 2);
    pqt_done(g, r, &ctx);
}

Test(hadamard, skips_gemm_trans_a_and_small_blocks) {
    pq_error err;
    pq_graph *g = pq_test_graph();
    int64_t xd[2] = {16, 3}, wd[2] = {16, 8}, vd[2] = {8, 12};
    uint32_t x = pq_test_add_input(g, "x", 2, xd);
    uint32_t w = pqt_const(g, "w", 2, wd), v = pqt_const(g, "v", 2, vd);
    uint32_t gn;
    uint32_t y = pqt_node(g, PQ_OP_GEMM, "gemm", x, w, &gn);
    cr_assert_eq(pq_node_set_int(g, gn, "transA", 1, &err), PQ_OK);
    uint32_t z = pqt_node(g, PQ_OP_MATMUL, "mm", y, v, NULL); /* K = 8: block 8, ok */
    pq_pass_ctx ctx;
    pq_graph *r = pqt_run(g, z, "{min-elements: 0}", &ctx, 2, xd);
    /* the Gemm itself is skipped (no input rotation), but mm's rotation folds into its output
     * features: no Hadamard node at all */
    cr_assert_eq(pq_test_count_op(r, PQ_OP_HADAMARD), 0);
    const pq_weight_note *nv = pq_pass_find_note(&ctx, "v");
    cr_assert(nv && nv->rotated_in);
    const pq_weight_note *nw = pq_pass_find_note(&ctx, "w");
    cr_assert(nw && !nw->rotated_in && nw->rotated_out);
    pqt_done(g, r, &ctx);

    /* 12 input features: largest power of two dividing 12 is 4 < 8 -> skipped */
    g = pq_test_graph();
    int64_t x2[2] = {2, 12}, w2[2] = {12, 16};
    x = pq_test_add_input(g, "x", 2, x2);
    w = pqt_const(g, "w", 2, w2);
    y = pqt_node(g, PQ_OP_MATMUL, "mm", x, w, NULL);
    r = pqt_run(g, y, "{min-elements: 0}", &ctx, 2, x2);
    cr_assert_eq(pq_test_count_op(r, PQ_OP_HADAMARD), 0);
    pqt_done(g, r, &ctx);
}

/* ---- selection (passes/select.h) ---- */

static pq_graph *pqt_three_layers(void) {
    pq_error err;
    pq_graph *g = pq_test_graph();
    int64_t xd[2] = {2, 16}, wd[2] = {16, 16}, sd[2] = {16, 2};
    uint32_t x = pq_test_add_input(g, "x", 2, xd);
    uint32_t a = pqt_node(g, PQ_OP_MATMUL, "layer0", x, pqt_const(g, "w0", 2, wd), NULL);
    uint32_t b = pqt_node(g, PQ_OP_MATMUL, "layer1", a, pqt_const(g, "w1", 2, wd), NULL);
    uint32_t c = pqt_node(g, PQ_OP_MATMUL, "layer2", b, pqt_const(g, "w2", 2, wd), NULL);
    uint32_t d = pqt_node(g, PQ_OP_MATMUL, "small", c, pqt_const(g, "ws", 2, sd), NULL);
    cr_assert_eq(pq_graph_add_output(g, d, &err), PQ_OK);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    return g;
}

/* Selected node names joined with ',' for opts. */
static void pqt_select(const pq_graph *g, const char *opts, char *out, size_t cap,
                       enum pq_status *st_out, pq_error *err) {
    char text[512];
    snprintf(text, sizeof text, "passes:\n  - hadamard: %s\n", opts);
    const pq_pass *table[1] = {&pq_pass_hadamard};
    pq_pipeline *p = NULL;
    out[0] = 0;
    /* a bad regex is already an error when the pipeline is read (pq_select_check) */
    *st_out = pq_pipeline_parse_with(table, 1, text, strlen(text), "t", &p, err);
    if (*st_out != PQ_OK) return;
    pq_weight_target *t = NULL;
    uint32_t n = 0;
    *st_out = pq_select_weights(g, &p->entries[0].opts, &t, &n, err);
    out[0] = 0;
    for (uint32_t i = 0; i < n; i++) {
        cr_assert_eq(t[i].slot, 1u);
        cr_assert_eq(t[i].fake_quant, PQ_NONE);
        cr_assert_str_eq(t[i].view.node_name, g->nodes[t[i].node].name);
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%s", i ? "," : "", g->nodes[t[i].node].name);
    }
    pq_free(t);
    pq_pipeline_destroy(p);
}

Test(select, filters) {
    pq_graph *g = pqt_three_layers();
    pq_error err;
    enum pq_status st;
    char got[256];
    pqt_select(g, "{min-elements: 0}", got, sizeof got, &st, &err);
    cr_assert_str_eq(got, "layer0,layer1,layer2,small");
    pqt_select(g, "{}", got, sizeof got, &st, &err); /* default 1024: none of these */
    cr_assert_str_eq(got, "");
    pqt_select(g, "{min-elements: 100}", got, sizeof got, &st, &err);
    cr_assert_str_eq(got, "layer0,layer1,layer2");
    pqt_select(g, "{min-elements: 0, skip: [first, last]}", got, sizeof got, &st, &err);
    cr_assert_str_eq(got, "layer1,layer2");
    pqt_select(g, "{min-elements: 0, include: 'layer[12]'}", got, sizeof got, &st, &err);
    cr_assert_str_eq(got, "layer1,layer2");
    pqt_select(g, "{min-elements: 0, include: '^w[0-9]$', exclude: '^w1$|small'}", got, sizeof got,
               &st, &err);
    cr_assert_str_eq(got, "layer0,layer2");
    pqt_select(g, "{min-elements: 0, targets: [Conv, Gemm]}", got, sizeof got, &st, &err);
    cr_assert_str_eq(got, "");
    pqt_select(g, "{min-elements: 0, include: 'layer(', skip: [last]}", got, sizeof got, &st, &err);
    cr_assert_eq(st, PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "include"), "%s", err.msg);
    pq_graph_destroy(g);
}

Test(select, schema_starts_with_common_options) {
    cr_assert_eq(PQ_SELECT_N_OPTIONS, 5);
    cr_assert(pq_pass_hadamard.n_options > PQ_SELECT_N_OPTIONS);
    for (int i = 0; i < PQ_SELECT_N_OPTIONS; i++)
        cr_assert_str_eq(pq_pass_hadamard.options[i].name, pq_select_options[i].name);
    cr_assert_str_eq(pq_select_options[3].name, "min-elements");
    cr_assert_str_eq(pq_select_options[3].def, "1024");
}

Test(hadamard, invalid_regex_is_an_error) {
    pq_graph *g = pqt_three_layers();
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    pq_error err;
    pq_error_clear(&err);
    cr_assert_eq(pq_test_run_pass(g, &pq_pass_hadamard, "{exclude: '[a-'}", &ctx, false, &err),
                 PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "exclude"), "%s", err.msg);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(g);
}
