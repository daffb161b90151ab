/* lower-quant {activations: int8}: every PackedMatMul / PackedConv on piq/q codes gets
 * act_quant = "int8" (int8 / f16 weights and the default never do), the graph runs, and its
 * outputs stay close to the f32-activation lowering of the same FakeQuant graph (passes on vs
 * off): relative L2 error and cosine per output, top-1 agreement on classifiers. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pass_test_util.h"
#include "passes/passes.h"
#include "runtime/runtime.h"

extern const pq_pass pq_pass_fake_quant;
extern const pq_pass pq_pass_lower_quant;

/* Number of PackedMatMul + PackedConv nodes of g, and how many carry act_quant = "int8". */
static void count_packed(const pq_graph *g, uint32_t *packed, uint32_t *i8) {
    *packed = *i8 = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const pq_node *n = &g->nodes[i];
        if (n->op != PQ_OP_PACKED_MAT_MUL && n->op != PQ_OP_PACKED_CONV) continue;
        (*packed)++;
        const char *aq = pq_node_attr_string(n, "act_quant", NULL);
        if (aq) {
            cr_assert_str_eq(aq, "int8", "node '%s': act_quant = '%s'", n->name, aq);
            (*i8)++;
        }
    }
}

typedef struct {
    double rel_l2, cosine, agree; /* agree: top-1 agreement over rows of the last axis, or -1 */
} cmp_t;

static cmp_t compare(const pq_tensor *a, const pq_tensor *b) {
    cmp_t c = {0, 0, -1};
    int64_t n = pq_tensor_numel(a);
    cr_assert_eq(n, pq_tensor_numel(b));
    const float *x = a->data, *y = b->data;
    double num = 0, den = 0, dot = 0, na = 0, nb = 0;
    for (int64_t i = 0; i < n; i++) {
        cr_assert(isfinite(x[i]) && isfinite(y[i]), "element %lld not finite", (long long)i);
        num += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        den += (double)y[i] * y[i];
        dot += (double)x[i] * y[i];
        na += (double)x[i] * x[i];
        nb += (double)y[i] * y[i];
    }
    c.rel_l2 = sqrt(num / (den > 0 ? den : 1));
    c.cosine = na > 0 && nb > 0 ? dot / sqrt(na * nb) : 1.0;
    int64_t last = a->rank > 0 ? a->dims[a->rank - 1] : 1;
    if (last > 1 && n % last == 0) {
        int64_t rows = n / last, same = 0;
        for (int64_t r = 0; r < rows; r++) {
            int64_t ia = 0, ib = 0;
            for (int64_t j = 1; j < last; j++) {
                if (x[r * last + j] > x[r * last + ia]) ia = j;
                if (y[r * last + j] > y[r * last + ib]) ib = j;
            }
            same += ia == ib;
        }
        c.agree = (double)same / (double)rows;
    }
    return c;
}

/* FakeQuant (fq_opts) model, lower one clone with {activations: int8} and one with the default,
 * check the attribute, run both on input and require per output rel_l2 <= max_rel and top-1
 * agreement >= min_agree (when the output has a class axis and min_agree >= 0). Measured when
 * written: rel L2 0.002-0.007, cosine >= 0.99997, top-1 agreement 100% (digits: 360 images). */
static void check_model(const char *model, const char *input, const char *fq_opts, double max_rel,
                        double min_agree) {
    pq_error err;
    pq_error_clear(&err);
    pq_graph *g = pq_test_load_onnx(model);
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    cr_assert_eq(pq_test_run_pass(g, &pq_pass_fake_quant, fq_opts, &ctx, true, &err), PQ_OK, "%s",
                 err.msg);
    pq_graph *f32 = pq_test_clone_run_pass(g, &pq_pass_lower_quant, NULL, &ctx, "default");
    pq_graph *off = pq_test_clone_run_pass(g, &pq_pass_lower_quant, "{activations: f32}", &ctx,
                                           "activations: f32");
    pq_graph *on = pq_test_clone_run_pass(g, &pq_pass_lower_quant, "{activations: int8}", &ctx,
                                          "activations: int8");
    uint32_t packed, i8;
    count_packed(f32, &packed, &i8);
    cr_assert(packed > 0, "%s: nothing lowered", model);
    cr_assert_eq(i8, 0u, "%s: the default set act_quant", model);
    count_packed(off, &packed, &i8);
    cr_assert_eq(i8, 0u, "%s: activations: f32 set act_quant", model);
    count_packed(on, &packed, &i8);
    cr_assert_eq(i8, packed, "%s: %u of %u packed ops have act_quant = int8", model, i8, packed);
    pq_tensor **a = pq_test_run_npy(f32, input), **b = pq_test_run_npy(off, input);
    pq_tensor **c = pq_test_run_npy(on, input);
    for (uint32_t o = 0; o < g->n_outputs; o++) {
        cr_assert(memcmp(a[o]->data, b[o]->data, a[o]->nbytes) == 0,
                  "%s: activations: f32 differs from the default", model);
        cmp_t m = compare(c[o], a[o]);
        fprintf(stderr,
                "lower-quant activations int8 vs f32, %s %s output %u: rel L2 %.3g, cosine "
                "%.6f, top-1 agreement %.4f\n",
                model, fq_opts ? fq_opts : "{}", o, m.rel_l2, m.cosine, m.agree);
        cr_assert(m.rel_l2 <= max_rel, "%s output %u: relative L2 error %g > %g", model, o,
                  m.rel_l2, max_rel);
        if (m.agree >= 0 && min_agree >= 0)
            cr_assert(m.agree >= min_agree, "%s output %u: top-1 agreement %g < %g", model, o,
                      m.agree, min_agree);
    }
    pq_test_free_outputs(a, g->n_outputs);
    pq_test_free_outputs(b, g->n_outputs);
    pq_test_free_outputs(c, g->n_outputs);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(g);
    pq_graph_destroy(f32);
    pq_graph_destroy(off);
    pq_graph_destroy(on);
}

Test(lower_quant_i8, digits_piq3_close_to_f32_activations) {
    check_model("examples/digits/model.onnx", "examples/digits/test_x.npy", "{min-elements: 0}",
                0.02, 0.99);
}

Test(lower_quant_i8, digits_piq2_and_uniform_close) {
    check_model("examples/digits/model.onnx", "examples/digits/test_x.npy",
                "{format: piq2, group: 64, min-elements: 0}", 0.02, 0.99);
    check_model("examples/digits/model.onnx", "examples/digits/test_x.npy",
                "{format: q3, group: 32, min-elements: 0}", 0.02, 0.99);
}

Test(lower_quant_i8, cnn_bn_close_to_f32_activations) {
    check_model("tests/models/cnn_bn/model.onnx", "tests/models/cnn_bn/input_x.npy",
                "{min-elements: 0}", 0.02, -1);
}

Test(lower_quant_i8, transformer_close_to_f32_activations) {
    check_model("tests/models/transformer17/model.onnx",
                "tests/models/transformer17/input_tokens.npy", NULL, 0.02, 0.95);
    check_model("tests/models/mlp/model.onnx", "tests/models/mlp/input_x.npy", "{min-elements: 0}",
                0.02, -1);
}

/* int8 and f16 weights never get the attribute; the option's values are checked. */
Test(lower_quant_i8, wide_formats_and_bad_values) {
    pq_error err;
    pq_error_clear(&err);
    const char *fmts[] = {"{format: int8, min-elements: 0}", "{format: f16, min-elements: 0}"};
    for (int i = 0; i < 2; i++) {
        pq_graph *g = pq_test_load_onnx("examples/digits/model.onnx");
        pq_pass_ctx ctx;
        pq_pass_ctx_init(&ctx);
        ctx.verbose = 0;
        cr_assert_eq(pq_test_run_pass(g, &pq_pass_fake_quant, fmts[i], &ctx, true, &err), PQ_OK,
                     "%s", err.msg);
        cr_assert_eq(
            pq_test_run_pass(g, &pq_pass_lower_quant, "{activations: int8}", &ctx, true, &err),
            PQ_OK, "%s", err.msg);
        uint32_t packed, i8;
        count_packed(g, &packed, &i8);
        cr_assert(packed > 0);
        cr_assert_eq(i8, 0u, "%s weights got act_quant", fmts[i]);
        pq_pass_ctx_free(&ctx);
        pq_graph_destroy(g);
    }
    pq_graph *g = pq_test_load_onnx("examples/digits/model.onnx");
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    cr_assert_neq(
        pq_test_run_pass(g, &pq_pass_lower_quant, "{activations: int4}", &ctx, true, &err), PQ_OK,
        "activations: int4 was accepted");
    cr_assert(strstr(err.msg, "int4"), "message does not name the value: %s", err.msg);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(g);
}
