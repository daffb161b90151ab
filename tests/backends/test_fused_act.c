/* Fused activations on Conv, Gemm, MatMul and Add: the fused node must give exactly what the
 * separate activation op's reference kernel gives on the unfused result (Gelu and Swish as their
 * op decompositions) through the reference kernels; through the fast path (oneDNN eltwise
 * post-ops) Relu/Clip/LeakyRelu exactly and the others within the bound of onednn.h, and exactly
 * again with PIQC_ONEDNN_ACT=ref. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/onednn/onednn.h"
#include "piqc_harness.h"

typedef struct act_spec {
    const char *name;
    bool has_alpha, has_beta;
    float alpha, beta;
} act_spec;

static const act_spec k_acts[] = {
    {"Relu", false, false, 0, 0},        {"Clip", true, true, -0.3f, 0.4f},
    {"Clip", false, true, 0, 0.5f},      {"LeakyRelu", false, false, 0, 0},
    {"LeakyRelu", true, false, 0.2f, 0}, {"Sigmoid", false, false, 0, 0},
    {"HardSigmoid", false, false, 0, 0}, {"HardSigmoid", true, true, 0.3f, 0.4f},
    {"HardSwish", false, false, 0, 0},   {"Tanh", false, false, 0, 0},
    {"Gelu", false, false, 0, 0},        {"Swish", false, false, 0, 0},
};
#define N_ACTS (sizeof k_acts / sizeof k_acts[0])

static pq_tensor *scalar(float v) {
    pq_tensor *t = pq_tp_tensor(PQ_DTYPE_F32, 0, NULL);
    *(float *)t->data = v;
    return t;
}

/* Runs op on in[] with the reference kernel; optional float attributes alpha/beta. */
static pq_tensor *run_ref(enum pq_op op, const pq_tensor *const *in, uint32_t n, const char *an,
                          float av, const char *bn, float bv) {
    pq_tp t = pq_tp_node(op, in, n);
    if (an) pq_tp_float(&t, an, av);
    if (bn) pq_tp_float(&t, bn, bv);
    pq_error err;
    pq_tensor *y;
    cr_assert_eq(pq_tp_run(&t, NULL, &y, &err), PQ_OK, "%s", err.msg);
    pq_tp_free(&t);
    return y;
}

/* The separate op(s) of activation a applied to y0 with reference kernels. */
static pq_tensor *separate(const pq_tensor *y0, const act_spec *a) {
    const pq_tensor *in1[1] = {y0};
    if (!strcmp(a->name, "Relu")) return run_ref(PQ_OP_RELU, in1, 1, NULL, 0, NULL, 0);
    if (!strcmp(a->name, "Sigmoid")) return run_ref(PQ_OP_SIGMOID, in1, 1, NULL, 0, NULL, 0);
    if (!strcmp(a->name, "Tanh")) return run_ref(PQ_OP_TANH, in1, 1, NULL, 0, NULL, 0);
    if (!strcmp(a->name, "HardSwish")) return run_ref(PQ_OP_HARD_SWISH, in1, 1, NULL, 0, NULL, 0);
    if (!strcmp(a->name, "LeakyRelu"))
        return run_ref(PQ_OP_LEAKY_RELU, in1, 1, a->has_alpha ? "alpha" : NULL, a->alpha, NULL, 0);
    if (!strcmp(a->name, "HardSigmoid"))
        return run_ref(PQ_OP_HARD_SIGMOID, in1, 1, a->has_alpha ? "alpha" : NULL, a->alpha,
                       a->has_beta ? "beta" : NULL, a->beta);
    if (!strcmp(a->name, "Clip")) {
        pq_tensor *lo = a->has_alpha ? scalar(a->alpha) : NULL;
        pq_tensor *hi = a->has_beta ? scalar(a->beta) : NULL;
        const pq_tensor *in[3] = {y0, lo, hi};
        pq_tensor *y = run_ref(PQ_OP_CLIP, in, 3, NULL, 0, NULL, 0);
        pq_tensor_destroy(lo);
        pq_tensor_destroy(hi);
        return y;
    }
    if (!strcmp(a->name, "Swish")) {
        pq_tensor *s = run_ref(PQ_OP_SIGMOID, in1, 1, NULL, 0, NULL, 0);
        const pq_tensor *in[2] = {y0, s};
        pq_tensor *y = run_ref(PQ_OP_MUL, in, 2, NULL, 0, NULL, 0);
        pq_tensor_destroy(s);
        return y;
    }
    /* Gelu: Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5), as exported from PyTorch */
    pq_tensor *c2 = scalar(1.41421353816986083984375f), *c1 = scalar(1.0f), *ch = scalar(0.5f);
    const pq_tensor *i1[2] = {y0, c2};
    pq_tensor *d = run_ref(PQ_OP_DIV, i1, 2, NULL, 0, NULL, 0);
    const pq_tensor *i2[1] = {d};
    pq_tensor *e = run_ref(PQ_OP_ERF, i2, 1, NULL, 0, NULL, 0);
    const pq_tensor *i3[2] = {e, c1};
    pq_tensor *u = run_ref(PQ_OP_ADD, i3, 2, NULL, 0, NULL, 0);
    const pq_tensor *i4[2] = {y0, u};
    pq_tensor *v = run_ref(PQ_OP_MUL, i4, 2, NULL, 0, NULL, 0);
    const pq_tensor *i5[2] = {v, ch};
    pq_tensor *y = run_ref(PQ_OP_MUL, i5, 2, NULL, 0, NULL, 0);
    pq_tensor *tmp[7] = {c2, c1, ch, d, e, u, v};
    for (int i = 0; i < 7; i++)
        pq_tensor_destroy(tmp[i]);
    return y;
}

typedef void (*attrs_fn)(pq_tp *t);

static void conv_attrs(pq_tp *t) {
    int64_t p[4] = {1, 1, 1, 1};
    pq_tp_ints(t, "pads", p, 4);
}
static void gemm_attrs(pq_tp *t) {
    pq_tp_int(t, "transB", 1);
}

/* Whether the fast path may differ from the reference for activation a (oneDNN post-ops). */
static bool approx_on_fast(enum pq_op op, const act_spec *a) {
    if (op == PQ_OP_ADD) return false; /* no oneDNN: the reference epilogue */
    const char *e = getenv("PIQC_ONEDNN_ACT");
    if (e && !strcmp(e, "ref")) return false;
    return strcmp(a->name, "Relu") && strcmp(a->name, "Clip") && strcmp(a->name, "LeakyRelu");
}

/* fused(op) == separate(act, unfused(op)) exactly for the reference runner, and for the fast
 * runner exactly or within PQ_ONEDNN_ACT_RTOL |ref| + PQ_ONEDNN_ACT_ATOL (approx_on_fast). */
static void check_op(enum pq_op op, const pq_tensor *const *in, uint32_t n, attrs_fn attrs) {
    pq_kernel_fn runners[2] = {NULL, pq_kernel_run};
    const char *rn[2] = {"ref", "fast"};
    for (int r = 0; r < 2; r++) {
        pq_tp base = pq_tp_node(op, in, n);
        if (attrs) attrs(&base);
        pq_error err;
        pq_tensor *y0;
        cr_assert_eq(pq_tp_run(&base, runners[r], &y0, &err), PQ_OK, "%s", err.msg);
        for (size_t k = 0; k < N_ACTS; k++) {
            const act_spec *a = &k_acts[k];
            pq_tp t = pq_tp_node(op, in, n);
            if (attrs) attrs(&t);
            pq_tp_str(&t, "activation", a->name);
            if (a->has_alpha) pq_tp_float(&t, "activation_alpha", a->alpha);
            if (a->has_beta) pq_tp_float(&t, "activation_beta", a->beta);
            pq_tensor *y1;
            cr_assert_eq(pq_tp_run(&t, runners[r], &y1, &err), PQ_OK, "%s", err.msg);
            pq_tensor *y2 = separate(y0, a);
            cr_assert_eq(pq_tensor_numel(y1), pq_tensor_numel(y2));
            const float *p1 = y1->data, *p2 = y2->data;
            bool approx = r == 1 && approx_on_fast(op, a);
            double worst = 0.0;
            for (int64_t i = 0; i < pq_tensor_numel(y1); i++) {
                double d = fabs((double)p1[i] - (double)p2[i]);
                double bound =
                    approx ? PQ_ONEDNN_ACT_RTOL * fabs((double)p2[i]) + PQ_ONEDNN_ACT_ATOL : 0.0;
                if (approx && d / (bound > 0 ? bound : 1) > worst) worst = d / bound;
                cr_assert(d <= bound || (isnan(p1[i]) && isnan(p2[i])),
                          "%s %s %s: element %lld: fused %.9g, separate %.9g", rn[r],
                          pq_op_name(op), a->name, (long long)i, (double)p1[i], (double)p2[i]);
            }
            if (approx)
                cr_log_info("%s %s: worst |fused - separate| = %.3f of the bound", pq_op_name(op),
                            a->name, worst);
            pq_tensor_destroy(y1);
            pq_tensor_destroy(y2);
            pq_tp_free(&t);
        }
        pq_tensor_destroy(y0);
        pq_tp_free(&base);
    }
}

/* Shapes are above oneDNN's minimum problem size, so the fast path runs oneDNN. */
Test(fused_act, conv_equals_separate_op) {
    int64_t xd[4] = {1, 4, 8, 8}, wd[4] = {8, 4, 3, 3}, bd[1] = {8};
    pq_tensor *x = pq_tp_rand(4, xd, 1, 3.0f), *w = pq_tp_rand(4, wd, 2, 1.0f);
    pq_tensor *b = pq_tp_rand(1, bd, 3, 1.0f);
    const pq_tensor *in[3] = {x, w, b};
    check_op(PQ_OP_CONV, in, 3, conv_attrs);
    pq_tensor_destroy(x);
    pq_tensor_destroy(w);
    pq_tensor_destroy(b);
}

Test(fused_act, gemm_equals_separate_op) {
    int64_t ad[2] = {16, 32}, bd[2] = {24, 32}, cd[1] = {24};
    pq_tensor *a = pq_tp_rand(2, ad, 4, 2.0f), *b = pq_tp_rand(2, bd, 5, 1.0f);
    pq_tensor *c = pq_tp_rand(1, cd, 6, 1.0f);
    const pq_tensor *in[3] = {a, b, c};
    check_op(PQ_OP_GEMM, in, 3, gemm_attrs);
    pq_tensor_destroy(a);
    pq_tensor_destroy(b);
    pq_tensor_destroy(c);
}

Test(fused_act, matmul_equals_separate_op) {
    int64_t ad[3] = {2, 16, 32}, bd[2] = {32, 24};
    pq_tensor *a = pq_tp_rand(3, ad, 7, 2.0f), *b = pq_tp_rand(2, bd, 8, 1.0f);
    const pq_tensor *in[2] = {a, b};
    check_op(PQ_OP_MATMUL, in, 2, NULL);
    pq_tensor_destroy(a);
    pq_tensor_destroy(b);
}

Test(fused_act, add_equals_separate_op) {
    int64_t ad[2] = {4, 33}, bd[1] = {33};
    pq_tensor *a = pq_tp_rand(2, ad, 9, 4.0f), *b = pq_tp_rand(1, bd, 10, 4.0f);
    const pq_tensor *in[2] = {a, b};
    check_op(PQ_OP_ADD, in, 2, NULL);
    pq_tensor_destroy(a);
    pq_tensor_destroy(b);
}

/* PIQC_ONEDNN_ACT=ref: the oneDNN kernels apply the reference epilogue, bit-identical again
 * (criterion runs each test in its own process; the variable is read at first use). */
Test(fused_act, onednn_ref_epilogue_exact) {
    setenv("PIQC_ONEDNN_ACT", "ref", 1);
    int64_t xd[4] = {1, 4, 8, 8}, wd[4] = {8, 4, 3, 3}, bd[1] = {8};
    pq_tensor *x = pq_tp_rand(4, xd, 11, 3.0f), *w = pq_tp_rand(4, wd, 12, 1.0f);
    pq_tensor *b = pq_tp_rand(1, bd, 13, 1.0f);
    const pq_tensor *in[3] = {x, w, b};
    check_op(PQ_OP_CONV, in, 3, conv_attrs);
    int64_t ad[2] = {16, 32}, gd[2] = {24, 32};
    pq_tensor *a = pq_tp_rand(2, ad, 14, 2.0f), *g = pq_tp_rand(2, gd, 15, 1.0f);
    const pq_tensor *gin[3] = {a, g, b};
    int64_t cd[1] = {24};
    pq_tensor *c = pq_tp_rand(1, cd, 16, 1.0f);
    gin[2] = c;
    check_op(PQ_OP_GEMM, gin, 3, gemm_attrs);
    pq_tensor *tensors[6] = {x, w, b, a, g, c};
    for (int i = 0; i < 6; i++)
        pq_tensor_destroy(tensors[i]);
    unsetenv("PIQC_ONEDNN_ACT");
}

Test(fused_act, unknown_activation_is_invalid_naming_node_and_names) {
    int64_t ad[2] = {2, 3};
    pq_tensor *a = pq_tp_rand(2, ad, 1, 1.0f), *b = pq_tp_rand(2, ad, 2, 1.0f);
    const pq_tensor *in[2] = {a, b};
    pq_tp t = pq_tp_node(PQ_OP_ADD, in, 2);
    pq_tp_str(&t, "activation", "Mish");
    pq_error err;
    pq_tensor *y;
    cr_assert_eq(pq_tp_run(&t, NULL, &y, &err), PQ_ERR_INVALID);
    cr_assert_null(y);
    cr_assert(strstr(err.msg, "'n0'") && strstr(err.msg, "Mish") && strstr(err.msg, "HardSwish") &&
                  strstr(err.msg, "Gelu"),
              "%s", err.msg);
    pq_tp_free(&t);
    pq_tensor_destroy(a);
    pq_tensor_destroy(b);
}
