/* Tests of the lora pass: with B = 0 every test model computes the same outputs, the adapter
 * constants exist with the documented shapes, A lies within 1/sqrt(d_in), fused activations move
 * to the Add, and unsuitable layers are skipped. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"
#include "model_util.h"
#include "pass_test_util.h"
#include "passes/weights.h"
#include "runtime/runtime.h"

extern const pq_pass pq_pass_lora;

/* Checks the adapter of weight w in g (after the pass): shapes, B = 0, |A| <= 1/sqrt(d_in). */
static void pqt_check_adapter(const pq_graph *g, const pq_weight_view *w, int64_t r) {
    char name[512];
    bool conv = w->op == PQ_OP_CONV;
    int64_t d_in = conv ? w->dims[1] : w->cols, d_out = conv ? w->dims[0] : w->rows;
    snprintf(name, sizeof name, "%s.lora_A", w->name);
    uint32_t a = pq_graph_find_value(g, name);
    cr_assert(a != PQ_NONE && g->values[a].constant, "no %s", name);
    const pq_tensor *ta = g->values[a].constant;
    snprintf(name, sizeof name, "%s.lora_B", w->name);
    uint32_t b = pq_graph_find_value(g, name);
    cr_assert(b != PQ_NONE && g->values[b].constant, "no %s", name);
    const pq_tensor *tb = g->values[b].constant;
    if (conv) {
        cr_assert(ta->rank == w->rank && ta->dims[0] == r && ta->dims[1] == d_in, "%s", w->name);
        cr_assert(tb->rank == w->rank && tb->dims[0] == d_out && tb->dims[1] == r, "%s", w->name);
    } else {
        cr_assert(ta->rank == 2 && ta->dims[0] == d_in && ta->dims[1] == r, "%s A^T shape",
                  w->name);
        cr_assert(tb->rank == 2 && tb->dims[0] == r && tb->dims[1] == d_out, "%s B^T shape",
                  w->name);
    }
    float bound = (float)(1.0 / sqrt((double)d_in));
    const float *da = ta->data, *db = tb->data;
    bool nonzero = false;
    for (int64_t i = 0; i < pq_tensor_numel(ta); i++) {
        cr_assert(fabsf(da[i]) <= bound, "%s: |A| %g > %g", w->name, da[i], bound);
        nonzero = nonzero || da[i] != 0;
    }
    cr_assert(nonzero, "%s: A is all zero", w->name);
    for (int64_t i = 0; i < pq_tensor_numel(tb); i++)
        cr_assert_eq(db[i], 0.0f, "%s: B not zero", w->name);
}

Test(lora, every_model_unchanged_with_adapters) {
    for (uint32_t m = 0; m < pq_mu_n_models; m++) {
        const pq_mu_model *md = &pq_mu_models[m];
        pq_error err;
        pq_error_clear(&err);
        pq_graph *g = pq_test_load_onnx(md->onnx);
        pq_weight_view *ws = NULL;
        uint32_t nw = 0;
        cr_assert_eq(pq_weights_find(g, 0, &ws, &nw, &err), PQ_OK);
        pq_pass_ctx ctx;
        pq_pass_ctx_init(&ctx);
        ctx.verbose = 0;
        pq_graph *r =
            pq_test_clone_run_pass(g, &pq_pass_lora, "{min-elements: 0, rank: 4}", &ctx, md->name);
        pq_tensor **ya = pq_test_run_npy(g, md->input);
        pq_tensor **yb = pq_test_run_npy(r, md->input);
        double d, my;
        pq_test_max_diff(ya, yb, g->n_outputs, &d, &my);
        uint32_t adapters = 0;
        for (uint32_t i = 0; i < nw; i++) {
            const pq_weight_view *w = &ws[i];
            bool linear = w->op == PQ_OP_MATMUL || w->op == PQ_OP_GEMM;
            if (w->op == PQ_OP_CONV) {
                linear = true;
                for (int k = 2; k < w->rank; k++)
                    linear = linear && w->dims[k] == 1;
            }
            int64_t d_in = w->op == PQ_OP_CONV ? w->dims[1] : w->cols;
            int64_t d_out = w->op == PQ_OP_CONV ? w->dims[0] : w->rows;
            if (!linear || w->batch != 1 || d_in < 4 || d_out < 4) continue;
            pqt_check_adapter(r, w, 4);
            adapters++;
        }
        cr_log_info("lora %s: %u adapters, max abs diff %.3g (max |y| %.3g)", md->name, adapters, d,
                    my);
        cr_assert(d <= 1e-4 * my, "%s: max abs diff %g", md->name, d);
        if (strcmp(md->name, "lstm") && strcmp(md->name, "bilstm") && strcmp(md->name, "gru"))
            cr_assert(adapters >= 1, "%s: no adapter", md->name);
        pq_test_free_outputs(ya, g->n_outputs);
        pq_test_free_outputs(yb, r->n_outputs);
        pq_free(ws);
        pq_graph_destroy(g);
        pq_graph_destroy(r);
        pq_pass_ctx_free(&ctx);
    }
}

/* ---- hand-built graphs ---- */

static float pqt_fill_const(int64_t i) {
    return (float)((i * 37) % 23) / 23.0f - 0.5f;
}

static float pqt_fill_input(int64_t i) {
    return (float)((i * 13) % 17) / 8.0f - 1.0f;
}

static uint32_t pqt_const(pq_graph *g, const char *name, int rank, const int64_t *dims) {
    return pq_test_add_const(g, name, rank, dims, pqt_fill_const);
}

static pq_tensor *pqt_tensor(int rank, const int64_t *dims) {
    return pq_test_tensor(rank, dims, pqt_fill_input);
}

/* Runs lora with opts on a clone of prepared g; the outputs must be identical (B = 0). */
static pq_graph *pqt_lora(pq_graph *g, const char *opts, const pq_tensor *in) {
    pq_error err;
    pq_error_clear(&err);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    pq_graph *r = pq_test_clone_run_pass(g, &pq_pass_lora, opts, &ctx, NULL);
    pq_pass_ctx_free(&ctx);
    pq_tensor **ya = pq_test_run(g, in), **yb = pq_test_run(r, in);
    for (uint32_t o = 0; o < g->n_outputs; o++) {
        cr_assert_eq(ya[o]->nbytes, yb[o]->nbytes);
        cr_assert(!memcmp(ya[o]->data, yb[o]->data, ya[o]->nbytes), "output %u changed", o);
    }
    pq_test_free_outputs(ya, g->n_outputs);
    pq_test_free_outputs(yb, r->n_outputs);
    return r;
}

static const pq_node *pqt_find_node(const pq_graph *g, const char *name) {
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].name, name)) return &g->nodes[i];
    cr_assert_fail("no node '%s'", name);
    return NULL;
}

Test(lora, fused_activation_moves_to_the_add) {
    pq_error err;
    pq_graph *g = pq_test_graph();
    int64_t xd[2] = {3, 16}, wd[2] = {16, 8};
    uint32_t x = pq_test_add_input(g, "x", 2, xd);
    uint32_t in[2] = {x, pqt_const(g, "w", 2, wd)}, y, n;
    cr_assert_eq(pq_build(g, PQ_OP_MATMUL, "mm", in, 2, &y, &n, &err), PQ_OK);
    cr_assert_eq(pq_node_set_string(g, n, "activation", "Relu", &err), PQ_OK);
    cr_assert_eq(pq_graph_add_output(g, y, &err), PQ_OK);
    pq_tensor *t = pqt_tensor(2, xd);
    pq_graph *r = pqt_lora(g, "{min-elements: 0, rank: 2, alpha: 4, dropout: 0.1}", t);
    cr_assert_null(pq_node_attr(pqt_find_node(r, "mm"), "activation"));
    const pq_node *add = pqt_find_node(r, "mm.lora_add");
    cr_assert_eq(add->op, PQ_OP_ADD);
    cr_assert_str_eq(pq_node_attr_string(add, "activation", ""), "Relu");
    const pq_node *down = pqt_find_node(r, "mm.lora_down");
    cr_assert_float_eq(pq_node_attr_float(down, "lora_dropout", 0), 0.1f, 1e-7);
    uint32_t sc = pq_graph_find_value(r, "w.lora_scale");
    cr_assert(sc != PQ_NONE);
    cr_assert_eq(((const float *)r->values[sc].constant->data)[0], 2.0f);
    /* the graph output keeps its name */
    cr_assert_str_eq(r->values[r->outputs[0]].name, g->values[g->outputs[0]].name);
    pq_tensor_destroy(t);
    pq_graph_destroy(g);
    pq_graph_destroy(r);
}

Test(lora, conv_1x1_adapter_and_skips) {
    pq_error err;
    pq_graph *g = pq_test_graph();
    int64_t xd[4] = {1, 8, 5, 5}, w1[4] = {16, 8, 1, 1}, w3[4] = {16, 16, 3, 3},
            wg[4] = {16, 8, 1, 1};
    uint32_t x = pq_test_add_input(g, "x", 4, xd);
    uint32_t in[2] = {x, pqt_const(g, "pw", 4, w1)}, a, b, c, n;
    cr_assert_eq(pq_build(g, PQ_OP_CONV, "pointwise", in, 2, &a, &n, &err), PQ_OK);
    int64_t strides[2] = {2, 2}, pads[4] = {1, 1, 1, 1};
    cr_assert_eq(pq_node_set_ints(g, n, "strides", strides, 2, &err), PQ_OK);
    cr_assert_eq(pq_node_set_ints(g, n, "pads", pads, 4, &err), PQ_OK);
    in[0] = a, in[1] = pqt_const(g, "k3", 4, w3);
    cr_assert_eq(pq_build(g, PQ_OP_CONV, "conv3", in, 2, &b, &n, &err), PQ_OK);
    in[0] = b, in[1] = pqt_const(g, "gw", 4, wg);
    cr_assert_eq(pq_build(g, PQ_OP_CONV, "grouped", in, 2, &c, &n, &err), PQ_OK);
    cr_assert_eq(pq_node_set_int(g, n, "group", 2, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_output(g, c, &err), PQ_OK);
    pq_tensor *t = pqt_tensor(4, xd);
    pq_graph *r = pqt_lora(g, "{min-elements: 0, rank: 4}", t);
    pq_weight_view wv;
    memset(&wv, 0, sizeof wv);
    wv.name = "pw";
    wv.op = PQ_OP_CONV;
    wv.rank = 4;
    memcpy(wv.dims, w1, sizeof w1);
    pqt_check_adapter(r, &wv, 4);
    const pq_node *down = pqt_find_node(r, "pointwise.lora_down");
    cr_assert_eq(down->op, PQ_OP_CONV);
    cr_assert_eq(pq_node_attr(down, "strides")->u.ints.v[0], 2);
    cr_assert(pq_graph_find_value(r, "k3.lora_A") == PQ_NONE);
    cr_assert(pq_graph_find_value(r, "gw.lora_A") == PQ_NONE);
    pq_tensor_destroy(t);
    pq_graph_destroy(g);
    pq_graph_destroy(r);
}

Test(lora, rank_too_large_skipped_and_shared_weight_one_adapter) {
    pq_error err;
    pq_graph *g = pq_test_graph();
    int64_t xd[2] = {2, 8}, wd[2] = {8, 8}, sd[2] = {8, 2};
    uint32_t x = pq_test_add_input(g, "x", 2, xd);
    uint32_t w = pqt_const(g, "w", 2, wd), s = pqt_const(g, "s", 2, sd);
    uint32_t in[2] = {x, w}, a, b, c, d, n;
    cr_assert_eq(pq_build(g, PQ_OP_MATMUL, "m1", in, 2, &a, &n, &err), PQ_OK);
    in[0] = a;
    cr_assert_eq(pq_build(g, PQ_OP_MATMUL, "m2", in, 2, &b, &n, &err), PQ_OK);
    in[0] = b, in[1] = s;
    cr_assert_eq(pq_build(g, PQ_OP_MATMUL, "narrow", in, 2, &c, &n, &err), PQ_OK);
    in[0] = c, in[1] = c;
    cr_assert_eq(pq_build(g, PQ_OP_ADD, "sum", in, 2, &d, &n, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_output(g, d, &err), PQ_OK);
    pq_tensor *t = pqt_tensor(2, xd);
    pq_graph *r = pqt_lora(g, "{min-elements: 0, rank: 4}", t);
    cr_assert(pq_graph_find_value(r, "s.lora_A") == PQ_NONE); /* d_out 2 < rank 4 */
    cr_assert(pq_graph_find_value(r, "w.lora_A") != PQ_NONE);
    cr_assert(pq_graph_find_value(r, "w.lora_A_1") == PQ_NONE); /* one adapter for both uses */
    cr_assert_eq(pq_test_count_op(r, PQ_OP_ADD), 3);            /* sum + two adapter Adds */
    pq_tensor_destroy(t);
    pq_graph_destroy(g);
    pq_graph_destroy(r);
}

Test(lora, running_twice_does_not_stack_adapters) {
    pq_error err;
    pq_graph *g = pq_test_load_onnx("examples/digits/model.onnx");
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    cr_assert_eq(pq_test_run_pass(g, &pq_pass_lora, "{min-elements: 0, rank: 4}", &ctx, true, &err),
                 PQ_OK, "%s", err.msg);
    uint32_t adds = pq_test_count_op(g, PQ_OP_ADD);
    cr_assert_eq(pq_test_run_pass(g, &pq_pass_lora, "{min-elements: 0, rank: 4}", &ctx, true, &err),
                 PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_ADD), adds);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(g);
}
