/* Tests of the lower-quant pass: the lowered graph computes what the fake-quant graph computes
 * (within float accumulation order), holds no f32 copy of a lowered weight, and what stays. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pass_test_util.h"
#include "passes/passes.h"
#include "runtime/runtime.h"

extern const pq_pass pq_pass_fake_quant;
extern const pq_pass pq_pass_lower_quant;

/* Max |a - b| and max |b| over two f32 tensors of the same shape. */
static void diff(const pq_tensor *a, const pq_tensor *b, double *maxdiff, double *maxabs) {
    cr_assert_eq(pq_tensor_numel(a), pq_tensor_numel(b));
    const float *x = a->data, *y = b->data;
    *maxdiff = 0;
    *maxabs = 0;
    for (int64_t i = 0; i < pq_tensor_numel(a); i++) {
        double d = fabs((double)x[i] - (double)y[i]);
        cr_assert(isfinite(d), "element %lld not finite", (long long)i);
        if (d > *maxdiff) *maxdiff = d;
        if (fabs((double)y[i]) > *maxabs) *maxabs = fabs((double)y[i]);
    }
}

/* Fake-quant (opts) a model, lower a clone, run both on the model's test input and require
 * max |y_lowered - y_fq| <= tol * max |y_fq| on every output (tol 1e-4 for piq/q, 1e-5 for int8
 * and f16): both use the same weights, only the f32 summation order of the kernels differs (and,
 * for int8, the row scale applied once after the sum instead of to every weight). Also no
 * FakeQuant and no f32 constant of a lowered weight remain; the weight is "<w>.packed" (u8),
 * "<w>.int8" (i8) or "<w>.f16" (f16). Returns the lowered graph's text. */
static char *check_lowering(const char *model, const char *input, const char *opts) {
    bool int8 = opts && strstr(opts, "int8"), f16 = opts && strstr(opts, "f16");
    const char *suffix = int8 ? "int8" : (f16 ? "f16" : "packed");
    enum pq_dtype wdt = int8 ? PQ_DTYPE_I8 : (f16 ? PQ_DTYPE_F16 : PQ_DTYPE_U8);
    double tol = int8 || f16 ? 1e-5 : 1e-4;
    pq_error err;
    pq_error_clear(&err);
    pq_graph *g = pq_test_load_onnx(model);
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    cr_assert_eq(pq_test_run_pass(g, &pq_pass_fake_quant, opts, &ctx, true, &err), PQ_OK, "%s",
                 err.msg);
    uint32_t nfq = pq_test_count_op(g, PQ_OP_FAKE_QUANT);
    cr_assert(nfq > 0);
    pq_graph *lo = NULL;
    cr_assert_eq(pq_graph_clone(g, &lo, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_test_run_pass(lo, &pq_pass_lower_quant, NULL, &ctx, true, &err), PQ_OK,
                 "%s: %s", model, err.msg);
    cr_assert_eq(pq_test_count_op(lo, PQ_OP_FAKE_QUANT), 0u, "%s: FakeQuant left", model);
    cr_assert_eq(pq_test_count_op(lo, PQ_OP_PACKED_MAT_MUL) +
                     pq_test_count_op(lo, PQ_OP_PACKED_CONV),
                 ctx.n_records, "%s: not every weight lowered", model);
    for (uint32_t r = 0; r < ctx.n_records; r++) {
        const char *w = ctx.records[r].value_name;
        /* a weight that some other node still reads as f32 (the transformer export aliases
         * layer 1's weights to layer 0's through Identity) must stay; any other must go */
        uint32_t wv = pq_graph_find_value(g, w);
        bool other_reader = false;
        for (uint32_t i = 0; i < g->n_nodes; i++)
            for (uint32_t s = 0; s < g->nodes[i].n_inputs; s++)
                other_reader |= g->nodes[i].op != PQ_OP_FAKE_QUANT && g->nodes[i].inputs[s] == wv;
        uint32_t v = pq_graph_find_value(lo, w);
        cr_assert(other_reader || v == PQ_NONE || !lo->values[v].constant ||
                      lo->values[v].constant->dtype != PQ_DTYPE_F32,
                  "%s: f32 weight '%s' still in the lowered graph", model, w);
        char packed[512];
        snprintf(packed, sizeof packed, "%s.%s", w, suffix);
        v = pq_graph_find_value(lo, packed);
        cr_assert(v != PQ_NONE && lo->values[v].constant && lo->values[v].constant->dtype == wdt,
                  "%s: no %s constant '%s'", model, pq_dtype_name(wdt), packed);
    }
    pq_tensor **a = pq_test_run_npy(g, input), **b = pq_test_run_npy(lo, input);
    cr_assert_eq(g->n_outputs, lo->n_outputs);
    for (uint32_t o = 0; o < g->n_outputs; o++) {
        double d, m;
        diff(b[o], a[o], &d, &m);
        fprintf(stderr, "lower-quant %s %s output %u: max abs diff %.3g, max |y| %.3g (%.2g rel)\n",
                model, opts ? opts : "{}", o, d, m, m > 0 ? d / m : 0.0);
        cr_assert(d <= tol * m, "%s output %u: max abs diff %g > %g * max|y| = %g", model, o, d,
                  tol, tol * m);
    }
    pq_test_free_outputs(a, g->n_outputs);
    pq_test_free_outputs(b, lo->n_outputs);
    char *text = NULL;
    cr_assert_eq(pq_text_print_string(lo, NULL, &text, &err), PQ_OK, "%s", err.msg);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(g);
    pq_graph_destroy(lo);
    return text;
}

Test(lower_quant, digits_matches_fake_quant) {
    char *t = check_lowering("examples/digits/model.onnx", "examples/digits/test_x.npy",
                             "{min-elements: 0}");
    cr_assert(strstr(t, "PackedConv("), "no PackedConv in:\n%s", t);
    cr_assert(strstr(t, "PackedMatMul("));
    cr_assert(strstr(t, "format = \"piq3\""));
    cr_assert(strstr(t, "qgroup = 256"));
    pq_free(t);
}

Test(lower_quant, cnn_bn_matches_fake_quant) {
    char *t = check_lowering("tests/models/cnn_bn/model.onnx", "tests/models/cnn_bn/input_x.npy",
                             "{min-elements: 0}");
    cr_assert(strstr(t, "PackedConv("));
    cr_assert(strstr(t, "PackedMatMul("));
    pq_free(t);
}

Test(lower_quant, transformer_matches_fake_quant) {
    char *t = check_lowering("tests/models/transformer17/model.onnx",
                             "tests/models/transformer17/input_tokens.npy", NULL);
    cr_assert(strstr(t, "PackedMatMul("));
    cr_assert(strstr(t, "format = \"piq3\""));
    cr_assert(strstr(t, "qgroup = 256"));
    cr_assert(!strstr(t, "FakeQuant("));
    pq_free(t);
}

Test(lower_quant, other_formats_match_fake_quant) {
    static const char *const opts[] = {"{format: piq2, group: 64, min-elements: 0}",
                                       "{format: q3, group: 32, min-elements: 0}",
                                       "{format: q2, group: 8, min-elements: 0}"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        pq_free(
            check_lowering("examples/digits/model.onnx", "examples/digits/test_x.npy", opts[i]));
        pq_free(check_lowering("tests/models/transformer17/model.onnx",
                               "tests/models/transformer17/input_tokens.npy", opts[i]));
    }
}

/* Small graphs. x [4, 32]. */
static pq_graph *new_graph(uint32_t *x) {
    pq_error err;
    pq_graph *g = pq_graph_create(NULL, &err);
    int64_t xd[2] = {4, 32};
    pq_shape xs = pq_shape_from_dims(2, xd);
    cr_assert_eq(pq_graph_add_value(g, "x", PQ_DTYPE_F32, &xs, x, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_input(g, *x, &err), PQ_OK);
    return g;
}

static uint32_t add_weight(pq_graph *g, const char *name, int rank, const int64_t *dims) {
    pq_error err;
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dims[i];
    float *d = pq_malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        d[i] = cosf((float)i * 0.71f) * 0.05f;
    uint32_t v;
    cr_assert_eq(pq_build_const_f32(g, name, rank, dims, d, &v, &err), PQ_OK);
    pq_free(d);
    return v;
}

static pq_tensor *test_input(void) {
    pq_error err;
    int64_t xd[2] = {4, 32};
    pq_tensor *x = pq_tensor_create(PQ_DTYPE_F32, 2, xd, &err);
    float *d = x->data;
    for (int i = 0; i < 128; i++)
        d[i] = sinf((float)i * 0.13f);
    return x;
}

/* Runs fake-quant (opts) then lower-quant on g; returns the ctx-free FakeQuant count left and
 * checks outputs against the fake-quant graph. */
static uint32_t fq_then_lower(pq_graph *g, const char *opts) {
    pq_error err;
    pq_error_clear(&err);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    cr_assert_eq(pq_test_run_pass(g, &pq_pass_fake_quant, opts, &ctx, true, &err), PQ_OK, "%s",
                 err.msg);
    pq_graph *lo = NULL;
    cr_assert_eq(pq_graph_clone(g, &lo, &err), PQ_OK);
    cr_assert_eq(pq_test_run_pass(lo, &pq_pass_lower_quant, NULL, &ctx, true, &err), PQ_OK, "%s",
                 err.msg);
    pq_tensor *x = test_input();
    pq_tensor **a = pq_test_run(g, x), **b = pq_test_run(lo, x);
    for (uint32_t o = 0; o < g->n_outputs; o++) {
        double d, m;
        diff(b[o], a[o], &d, &m);
        cr_assert(d <= 1e-4 * m, "output %u: diff %g, max %g", o, d, m);
    }
    pq_test_free_outputs(a, g->n_outputs);
    pq_test_free_outputs(b, lo->n_outputs);
    pq_tensor_destroy(x);
    uint32_t left = pq_test_count_op(lo, PQ_OP_FAKE_QUANT);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(lo);
    return left;
}

/* int8 / f16 on MatMul, Gemm (transB 0 and 1, with C) and Conv 1-D all lower. */
Test(lower_quant, int8_and_f16_lower_small_graphs) {
    static const char *const opts[] = {"{format: int8, min-elements: 0}",
                                       "{format: f16, min-elements: 0}"};
    for (int k = 0; k < 2; k++) {
        uint32_t x, y;
        pq_graph *g = new_graph(&x);
        int64_t wd[2] = {32, 48};
        uint32_t in[2] = {x, add_weight(g, "W", 2, wd)};
        pq_error err;
        cr_assert_eq(pq_build(g, PQ_OP_MATMUL, "mm", in, 2, &y, NULL, &err), PQ_OK);
        cr_assert_eq(pq_graph_add_output(g, y, &err), PQ_OK);
        cr_assert_eq(fq_then_lower(g, opts[k]), 0u, "%s MatMul stayed", opts[k]);
        pq_graph_destroy(g);
        for (int tb = 0; tb < 2; tb++) {
            uint32_t c, gn;
            g = new_graph(&x);
            int64_t gwd[2] = {tb ? 48 : 32, tb ? 32 : 48};
            uint32_t w = add_weight(g, "W", 2, gwd);
            float cdata[48];
            for (int i = 0; i < 48; i++)
                cdata[i] = 0.01f * (float)i;
            cr_assert_eq(pq_build_const_f32(g, "C", 1, (int64_t[]){48}, cdata, &c, &err), PQ_OK);
            uint32_t gin[3] = {x, w, c};
            cr_assert_eq(pq_build(g, PQ_OP_GEMM, "gemm", gin, 3, &y, &gn, &err), PQ_OK);
            cr_assert_eq(pq_node_set_int(g, gn, "transB", tb, &err), PQ_OK);
            cr_assert_eq(pq_graph_add_output(g, y, &err), PQ_OK);
            cr_assert_eq(fq_then_lower(g, opts[k]), 0u, "%s Gemm transB=%d stayed", opts[k], tb);
            pq_graph_destroy(g);
        }
        uint32_t r, shp;
        g = new_graph(&x);
        int64_t shape_data[3] = {1, 4, 32};
        cr_assert_eq(pq_build_const_i64(g, "shape", 1, (int64_t[]){3}, shape_data, &shp, &err),
                     PQ_OK);
        uint32_t rin[2] = {x, shp}, cn;
        cr_assert_eq(pq_build(g, PQ_OP_RESHAPE, "rs", rin, 2, &r, NULL, &err), PQ_OK);
        int64_t cwd[3] = {16, 4, 3};
        uint32_t cin[2] = {r, add_weight(g, "W", 3, cwd)};
        cr_assert_eq(pq_build(g, PQ_OP_CONV, "conv", cin, 2, &y, &cn, &err), PQ_OK);
        cr_assert_eq(pq_node_set_ints(g, cn, "pads", (int64_t[]){1, 1}, 2, &err), PQ_OK);
        cr_assert_eq(pq_graph_add_output(g, y, &err), PQ_OK);
        cr_assert_eq(fq_then_lower(g, opts[k]), 0u, "%s Conv stayed", opts[k]);
        pq_graph_destroy(g);
    }
}

/* int8 / f16 on digits (Conv + Gemm) and transformer17 (MatMul) equal the fake-quant graph within
 * 1e-5 of max |y|; int8 nodes read the FakeQuant's f32 scales as input 3 with no bias omitted
 * where the consumer had one. */
Test(lower_quant, int8_and_f16_models_match_fake_quant) {
    static const char *const opts[] = {"{format: int8, min-elements: 0}",
                                       "{format: f16, min-elements: 0}"};
    for (int k = 0; k < 2; k++) {
        char *t =
            check_lowering("examples/digits/model.onnx", "examples/digits/test_x.npy", opts[k]);
        cr_assert(strstr(t, "PackedConv(") && strstr(t, "PackedMatMul("), "%s", t);
        cr_assert(strstr(t, k ? "format = \"f16\"" : "format = \"int8\""), "%s", t);
        cr_assert(!strstr(t, "FakeQuant("));
        pq_free(t);
        t = check_lowering("tests/models/transformer17/model.onnx",
                           "tests/models/transformer17/input_tokens.npy", opts[k]);
        cr_assert(strstr(t, "PackedMatMul("));
        cr_assert(strstr(t, k ? ": f16[" : ": i8["), "%s", t);
        pq_free(t);
    }
}

Test(lower_quant, batched_matmul_weight_stays) {
    uint32_t x, y, r;
    pq_graph *g = new_graph(&x);
    pq_error err;
    int64_t shape_data[3] = {1, 4, 32};
    uint32_t shp;
    cr_assert_eq(pq_build_const_i64(g, "shape", 1, (int64_t[]){3}, shape_data, &shp, &err), PQ_OK);
    uint32_t rin[2] = {x, shp};
    cr_assert_eq(pq_build(g, PQ_OP_RESHAPE, "rs", rin, 2, &r, NULL, &err), PQ_OK);
    int64_t wd[3] = {2, 32, 16};
    uint32_t in[2] = {r, add_weight(g, "W", 3, wd)};
    cr_assert_eq(pq_build(g, PQ_OP_MATMUL, "bmm", in, 2, &y, NULL, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_output(g, y, &err), PQ_OK);
    cr_assert_eq(fq_then_lower(g, NULL), 1u);
    pq_graph_destroy(g);
}

/* W [32, 48] read by MatMul(x, W) (lowerable) and Gemm(transA=1) (not): the FakeQuant stays
 * for both, so the f32 weight is not duplicated next to a packed copy. */
Test(lower_quant, shared_with_unlowerable_consumer_stays) {
    uint32_t x, y1, y2, xt;
    pq_graph *g = new_graph(&x);
    pq_error err;
    int64_t wd[2] = {32, 48};
    uint32_t w = add_weight(g, "W", 2, wd);
    uint32_t in1[2] = {x, w};
    cr_assert_eq(pq_build(g, PQ_OP_MATMUL, "mm", in1, 2, &y1, NULL, &err), PQ_OK);
    uint32_t tin[1] = {x}, tn;
    cr_assert_eq(pq_build(g, PQ_OP_TRANSPOSE, "t", tin, 1, &xt, &tn, &err), PQ_OK);
    uint32_t in2[2] = {xt, w}, gn;
    cr_assert_eq(pq_build(g, PQ_OP_GEMM, "gemm_ta", in2, 2, &y2, &gn, &err), PQ_OK);
    cr_assert_eq(pq_node_set_int(g, gn, "transA", 1, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_output(g, y1, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_output(g, y2, &err), PQ_OK);
    cr_assert_eq(fq_then_lower(g, NULL), 1u);
    pq_graph_destroy(g);
}

/* Gemm transB=1 with C [1, N] and transB=0 with C [N]: both lower; C becomes a [N] bias. */
Test(lower_quant, gemm_variants_lower) {
    for (int tb = 0; tb < 2; tb++) {
        uint32_t x, y, c, gn;
        pq_graph *g = new_graph(&x);
        pq_error err;
        int64_t wd[2] = {tb ? 48 : 32, tb ? 32 : 48};
        uint32_t w = add_weight(g, "W", 2, wd);
        int64_t cd[2] = {1, 48};
        float cdata[48];
        for (int i = 0; i < 48; i++)
            cdata[i] = 0.01f * (float)i;
        cr_assert_eq(pq_build_const_f32(g, "C", tb ? 2 : 1, tb ? cd : cd + 1, cdata, &c, &err),
                     PQ_OK);
        uint32_t in[3] = {x, w, c};
        cr_assert_eq(pq_build(g, PQ_OP_GEMM, "gemm", in, 3, &y, &gn, &err), PQ_OK);
        cr_assert_eq(pq_node_set_int(g, gn, "transB", tb, &err), PQ_OK);
        cr_assert_eq(pq_graph_add_output(g, y, &err), PQ_OK);
        cr_assert_eq(fq_then_lower(g, NULL), 0u, "transB=%d did not lower", tb);
        pq_graph_destroy(g);
    }
}

/* Gemm with alpha != 1 stays. */
Test(lower_quant, gemm_alpha_stays) {
    uint32_t x, y, gn;
    pq_graph *g = new_graph(&x);
    pq_error err;
    int64_t wd[2] = {32, 48};
    uint32_t in[2] = {x, add_weight(g, "W", 2, wd)};
    cr_assert_eq(pq_build(g, PQ_OP_GEMM, "gemm", in, 2, &y, &gn, &err), PQ_OK);
    cr_assert_eq(pq_node_set_float(g, gn, "alpha", 0.5f, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_output(g, y, &err), PQ_OK);
    cr_assert_eq(fq_then_lower(g, NULL), 1u);
    pq_graph_destroy(g);
}

/* A fused activation on the consumer is kept by the packed op. */
Test(lower_quant, fused_activation_carried_over) {
    uint32_t x, y, mn;
    pq_graph *g = new_graph(&x);
    pq_error err;
    int64_t wd[2] = {32, 48};
    uint32_t in[2] = {x, add_weight(g, "W", 2, wd)};
    cr_assert_eq(pq_build(g, PQ_OP_MATMUL, "mm", in, 2, &y, &mn, &err), PQ_OK);
    cr_assert_eq(pq_node_set_string(g, mn, "activation", "LeakyRelu", &err), PQ_OK);
    cr_assert_eq(pq_node_set_float(g, mn, "activation_alpha", 0.2f, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_output(g, y, &err), PQ_OK);
    cr_assert_eq(fq_then_lower(g, NULL), 0u);
    pq_graph_destroy(g);
}

/* Conv 1-D (x [4, 32] reshaped to [1, 4, 32]; W [16, 4, 3], no kernel_shape attribute). */
Test(lower_quant, conv1d_lowers) {
    uint32_t x, r, y, cn, shp;
    pq_graph *g = new_graph(&x);
    pq_error err;
    int64_t shape_data[3] = {1, 4, 32};
    cr_assert_eq(pq_build_const_i64(g, "shape", 1, (int64_t[]){3}, shape_data, &shp, &err), PQ_OK);
    uint32_t rin[2] = {x, shp};
    cr_assert_eq(pq_build(g, PQ_OP_RESHAPE, "rs", rin, 2, &r, NULL, &err), PQ_OK);
    int64_t wd[3] = {16, 4, 3};
    uint32_t in[2] = {r, add_weight(g, "W", 3, wd)};
    cr_assert_eq(pq_build(g, PQ_OP_CONV, "conv", in, 2, &y, &cn, &err), PQ_OK);
    cr_assert_eq(pq_node_set_ints(g, cn, "pads", (int64_t[]){1, 1}, 2, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_output(g, y, &err), PQ_OK);
    cr_assert_eq(fq_then_lower(g, "{min-elements: 0, group: 8}"), 0u);
    pq_graph_destroy(g);
}

/* Allocation failures anywhere in fake-quant and lower-quant give an error status (never a crash;
 * leaks show up under the sanitizer build): piq3, int8 and f16. */
static void allocation_failures(const char *text) {
    const pq_pass *table[2] = {&pq_pass_fake_quant, &pq_pass_lower_quant};
    pq_pipeline *p = NULL;
    pq_error perr;
    cr_assert_eq(pq_pipeline_parse_with(table, 2, text, strlen(text), "test", &p, &perr), PQ_OK,
                 "%s", perr.msg);
    bool done = false;
    for (long k = 0; k < 2000 && !done; k++) {
        uint32_t x, y, gn, c;
        pq_graph *g = new_graph(&x);
        pq_error err;
        int64_t wd[2] = {48, 32};
        uint32_t w = add_weight(g, "W", 2, wd);
        float cdata[48] = {0};
        cr_assert_eq(pq_build_const_f32(g, "C", 1, (int64_t[]){48}, cdata, &c, &err), PQ_OK);
        uint32_t in[3] = {x, w, c};
        cr_assert_eq(pq_build(g, PQ_OP_GEMM, "gemm", in, 3, &y, &gn, &err), PQ_OK);
        cr_assert_eq(pq_node_set_int(g, gn, "transB", 1, &err), PQ_OK);
        cr_assert_eq(pq_graph_add_output(g, y, &err), PQ_OK);
        cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
        pq_pass_ctx ctx;
        pq_pass_ctx_init(&ctx);
        ctx.verbose = 0;
        pq_alloc_fail_after(k);
        enum pq_status st = pq_pass_fake_quant.run(g, &p->entries[0].opts, &ctx, &err);
        if (st == PQ_OK) st = pq_pass_lower_quant.run(g, &p->entries[1].opts, &ctx, &err);
        pq_alloc_fail_after(-1);
        cr_assert(st == PQ_OK || st == PQ_ERR_NOMEM, "k=%ld: %s", k, err.msg);
        if (st == PQ_OK)
            cr_assert_eq(pq_test_count_op(g, PQ_OP_FAKE_QUANT), 0u, "%s: not lowered", text);
        pq_pass_ctx_free(&ctx);
        pq_graph_destroy(g);
        done = st == PQ_OK;
    }
    cr_assert(done, "never succeeded");
    pq_pipeline_destroy(p);
}

Test(lower_quant, allocation_failures_are_errors) {
    allocation_failures("passes:\n  - fake-quant: {group: 32}\n  - lower-quant\n");
    allocation_failures("passes:\n  - fake-quant: {format: int8}\n  - lower-quant\n");
    allocation_failures("passes:\n  - fake-quant: {format: f16}\n  - lower-quant\n");
}

/* After fold-constants removes the transformer export's Identity aliases, each weight is shared by
 * both layers: quantized once, lowered for both consumers, and no f32 weight is left at all. */
Test(lower_quant, transformer_shared_weights_after_folding) {
    const pq_pass *fold = pq_pass_find("fold-constants");
    if (!fold) cr_skip_test("fold-constants pass not registered");
    pq_error err;
    pq_error_clear(&err);
    pq_graph *g = pq_test_load_onnx("tests/models/transformer17/model.onnx");
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    cr_assert_eq(pq_test_run_pass(g, fold, NULL, &ctx, true, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_test_run_pass(g, &pq_pass_fake_quant, NULL, &ctx, true, &err), PQ_OK, "%s",
                 err.msg);
    pq_graph *lo = NULL;
    cr_assert_eq(pq_graph_clone(g, &lo, &err), PQ_OK);
    cr_assert_eq(pq_test_run_pass(lo, &pq_pass_lower_quant, NULL, &ctx, true, &err), PQ_OK, "%s",
                 err.msg);
    uint32_t npm = pq_test_count_op(lo, PQ_OP_PACKED_MAT_MUL);
    cr_assert(npm > ctx.n_records, "%u PackedMatMul for %u weights: nothing shared", npm,
              ctx.n_records);
    cr_assert_eq(pq_test_count_op(lo, PQ_OP_FAKE_QUANT), 0u);
    for (uint32_t r = 0; r < ctx.n_records; r++) {
        uint32_t v = pq_graph_find_value(lo, ctx.records[r].value_name);
        cr_assert(v == PQ_NONE || !lo->values[v].constant ||
                      lo->values[v].constant->dtype != PQ_DTYPE_F32,
                  "f32 weight '%s' left", ctx.records[r].value_name);
    }
    pq_tensor **a = pq_test_run_npy(g, "tests/models/transformer17/input_tokens.npy");
    pq_tensor **b = pq_test_run_npy(lo, "tests/models/transformer17/input_tokens.npy");
    double d, m;
    diff(b[0], a[0], &d, &m);
    cr_assert(d <= 1e-4 * m, "diff %g, max %g", d, m);
    pq_test_free_outputs(a, g->n_outputs);
    pq_test_free_outputs(b, lo->n_outputs);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(g);
    pq_graph_destroy(lo);
}
