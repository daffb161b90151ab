/* Gradient rules of the elementwise ops (passes/grad_elementwise.c) against central finite
 * differences on f64 graphs (the reference computes them in double: step 1e-5, 1e-6 relative):
 * every unary op with a rule and its attributes, inputs kept away from kinks; Pow, Mod, PRelu,
 * Where, Max/Min (ties split), Sum/Mean with broadcasting, Clip, Cast, CastLike, Dropout. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "grad_check.h"
#include "pass_test_util.h"

/* x: 12 values away from every kink the activations below have (0, +-0.5, +-1, +-1.5, 2, +-2.5,
 * +-3). */
#define PQ_GE_X                                                                                    \
    "  const %X: f64[3, 4] = [-4.1, -2.7, -1.3, -0.6, -0.25, 0.3, 0.7, 1.2, 2.2, 3.6, -1.8, "      \
    "1.7]\n"

static void pq_ge_unary(const char *op, const char *attrs, const char *gen) {
    char body[1024];
    if (gen)
        snprintf(body, sizeof body, "  const %%X: f64[3, 4] = %s\n  %%y = %s(%%X) %s\n", gen, op,
                 attrs ? attrs : "");
    else
        snprintf(body, sizeof body, "%s  %%y = %s(%%X) %s\n", PQ_GE_X, op, attrs ? attrs : "");
    pq_gc_body(body, PQ_GC_F64, 2);
}

Test(grad_elementwise, smooth_unary) {
    const char *any[] = {"Neg",      "Exp",  "Sigmoid",  "Tanh", "Erf",       "Sin",
                         "Cos",      "Sinh", "Cosh",     "Atan", "Asinh",     "Softplus",
                         "Softsign", "Abs",  "Identity", "Relu", "Reciprocal"};
    for (size_t i = 0; i < sizeof any / sizeof *any; i++)
        pq_ge_unary(any[i], NULL, "@s");
    const char *pos[] = {"Log", "Sqrt"};
    for (size_t i = 0; i < 2; i++)
        pq_ge_unary(pos[i], NULL, "@p");
    const char *unit[] = {"Asin", "Acos", "Atanh", "Tan"};
    for (size_t i = 0; i < 4; i++)
        pq_ge_unary(unit[i], NULL, "@u");
    pq_ge_unary("Acosh", NULL, "@w");
}

/* Piecewise activations on both sides of their kinks, default and given attributes. */
Test(grad_elementwise, piecewise_unary) {
    const char *ops[][2] = {
        {"Relu", NULL},
        {"LeakyRelu", NULL},
        {"LeakyRelu", "{alpha = 0.2}"},
        {"Elu", NULL},
        {"Elu", "{alpha = 0.7}"},
        {"Selu", NULL},
        {"Selu", "{alpha = 1.5, gamma = 2.0}"},
        {"Celu", NULL},
        {"Celu", "{alpha = 1.5}"},
        {"HardSigmoid", NULL},
        {"HardSigmoid", "{alpha = 0.5, beta = 0.5}"},
        {"HardSwish", NULL},
        {"ThresholdedRelu", NULL},
        {"ThresholdedRelu", "{alpha = 2.0}"},
        {"Shrink", NULL},
        {"Shrink", "{lambd = 1.5, bias = 0.1}"},
        {"Abs", NULL},
        {"Softplus", NULL},
        {"Softsign", NULL},
    };
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        pq_ge_unary(ops[i][0], ops[i][1], NULL);
}

Test(grad_elementwise, pow) {
    /* both inputs, broadcasting b */
    pq_gc_body("  const %A: f64[2, 3] = @p\n  const %B: f64[3] = @s\n  %y = Pow(%A, %B)\n",
               PQ_GC_F64, 3);
    /* an integer exponent: only A */
    pq_gc_body("  const %A: f64[2, 3] = @s\n  const %k: i64[] = [3]\n  %y = Pow(%A, %k)\n",
               PQ_GC_F64, 2);
    /* a scalar float exponent */
    pq_gc_body("  const %A: f64[2, 3] = @p\n  const %B: f64[] = [2.5]\n  %y = Pow(%A, %B)\n",
               PQ_GC_F64, 2);
}

/* The exponent's gradient is 0 where the base is not positive (real powers). */
Test(grad_elementwise, pow_base_not_positive) {
    pq_graph *g = pq_gc_graph("  const %A: f64[3] = [-2.0, 0.0, 1.5]\n"
                              "  const %B: f64[3] = [2.0, 3.0, 2.0]\n  %y = Pow(%A, %B)\n");
    pq_graph *ga;
    pq_tensor **outs;
    pq_gc_run(g, "{wrt: '^B$'}", &ga, &outs);
    const pq_tensor *db = pq_gc_out(ga, outs, "grad/B");
    const double *d = db->data;
    cr_assert(d[0] == 0.0 && d[1] == 0.0 && d[2] != 0.0, "%g %g %g", d[0], d[1], d[2]);
    pq_test_free_outputs(outs, ga->n_outputs);
    pq_graph_destroy(ga);
    pq_graph_destroy(g);
}

Test(grad_elementwise, mod_fmod) {
    pq_gc_body("  const %A: f64[2, 3] = [2.3, -3.7, 5.2, 0.45, -1.9, 7.1]\n"
               "  const %B: f64[3] = [1.1, 0.8, -2.2]\n  %y = Mod(%A, %B) {fmod = 1}\n",
               PQ_GC_F64, 3);
}

Test(grad_elementwise, prelu) {
    /* per-channel slope [C, 1, 1] and a slope along the last axis */
    pq_gc_body("  const %X: f64[2, 3, 2, 2] = @s\n  const %S: f64[3, 1, 1] = @s\n"
               "  %y = PRelu(%X, %S)\n",
               PQ_GC_F64, 3);
    pq_gc_body("  const %X: f64[2, 3, 4] = @s\n  const %S: f64[4] = @p\n  %y = PRelu(%X, %S)\n",
               PQ_GC_F64, 3);
}

Test(grad_elementwise, where) {
    pq_gc_body("  const %c: bool[2, 1] = [true, false]\n  const %A: f64[2, 3] = @s\n"
               "  const %B: f64[3] = @s\n  %y = Where(%c, %A, %B)\n",
               PQ_GC_F64, 3);
}

Test(grad_elementwise, max_min_variadic) {
    const char *ops[] = {"Max", "Min"};
    for (int k = 0; k < 2; k++) {
        char body[512];
        snprintf(body, sizeof body,
                 "  const %%A: f64[2, 3] = @d\n  const %%B: f64[3] = @d\n"
                 "  const %%C: f64[2, 1] = @d\n  %%y = %s(%%A, %%B, %%C)\n",
                 ops[k]);
        pq_gc_body(body, PQ_GC_F64, 4);
        snprintf(body, sizeof body, "  const %%A: f64[2, 3] = @s\n  %%y = %s(%%A)\n", ops[k]);
        pq_gc_body(body, PQ_GC_F64, 2);
    }
}

/* Ties split the gradient evenly: Max(A, B) with A == B gives each g / 2 (their sum is the
 * derivative of Max(a, a) = a). */
Test(grad_elementwise, max_ties_split) {
    pq_graph *g = pq_gc_graph("  const %A: f64[3] = [1.0, 2.0, -1.0]\n"
                              "  const %B: f64[3] = [1.0, 0.5, -1.0]\n  %y = Max(%A, %B)\n");
    pq_graph *ga;
    pq_tensor **outs;
    pq_gc_run(g, "{wrt: '^[AB]$'}", &ga, &outs);
    const double *da = pq_gc_out(ga, outs, "grad/A")->data,
                 *db = pq_gc_out(ga, outs, "grad/B")->data;
    const double *r = g->values[pq_graph_find_value(g, "R")].constant->data;
    cr_assert(da[0] == r[0] / 2 && db[0] == r[0] / 2, "%g %g", da[0], db[0]);
    cr_assert(da[1] == r[1] && db[1] == 0.0);
    cr_assert(da[2] == r[2] / 2 && db[2] == r[2] / 2);
    pq_test_free_outputs(outs, ga->n_outputs);
    pq_graph_destroy(ga);
    pq_graph_destroy(g);
}

Test(grad_elementwise, sum_mean_variadic) {
    pq_gc_body("  const %A: f64[2, 3] = @s\n  const %B: f64[3] = @s\n  const %C: f64[2, 1] = @s\n"
               "  %y = Sum(%A, %B, %C)\n",
               PQ_GC_F64, 4);
    pq_gc_body("  const %A: f64[2, 3] = @s\n  const %B: f64[3] = @s\n  const %C: f64[2, 1] = @s\n"
               "  %y = Mean(%A, %B, %C)\n",
               PQ_GC_F64, 4);
}

Test(grad_elementwise, clip) {
    /* both bounds (values below, inside and above), only min, only max, none */
    pq_gc_body(PQ_GE_X "  const %lo: f64[] = [-1.0]\n  const %hi: f64[] = [1.5]\n"
                       "  %y = Clip(%X, %lo, %hi)\n",
               PQ_GC_F64, 2);
    pq_gc_body_opts(PQ_GE_X "  const %lo: f64[1] = [-1.0]\n  const %hi: f64[1] = [1.5]\n"
                            "  %y = Clip(%X, %lo, %hi)\n",
                    NULL, PQ_GC_F64, 4);
    pq_gc_body_opts(PQ_GE_X "  const %lo: f64[1] = [-1.0]\n  %y = Clip(%X, %lo)\n", NULL, PQ_GC_F64,
                    3);
    pq_gc_body_opts(PQ_GE_X "  const %hi: f64[1] = [0.5]\n  %y = Clip(%X, _, %hi)\n", NULL,
                    PQ_GC_F64, 3);
    pq_gc_body(PQ_GE_X "  %y = Clip(%X)\n", PQ_GC_F64, 2);
    /* min > max: the output is max everywhere */
    pq_gc_body_opts(PQ_GE_X "  const %lo: f64[1] = [1.0]\n  const %hi: f64[1] = [0.5]\n"
                            "  %y = Clip(%X, %lo, %hi)\n",
                    NULL, PQ_GC_F64, 4);
}

/* f64 -> f32 -> f64: the f32 part rounds, so the f32-kernel tolerance. */
Test(grad_elementwise, cast_cast_like) {
    pq_gc_body(
        "  const %X: f64[2, 3] = @s\n  const %K: f32[3] = @s\n"
        "  %a = Cast(%X) {to = \"f32\"}\n  %b = Mul(%a, %K)\n  %y = Cast(%b) {to = \"f64\"}\n",
        PQ_GC_F32K, 3);
    pq_gc_body_opts(
        "  const %X: f64[2, 3] = @s\n  const %L: f32[1] = [0.0]\n  const %K: f32[3] = @s\n"
        "  %a = CastLike(%X, %L)\n  %b = Mul(%a, %K)\n  %y = Cast(%b) {to = \"f64\"}\n",
        "{wrt: '^(X|K|R)$'}", PQ_GC_F32K, 3);
}

Test(grad_elementwise, dropout_identity) {
    pq_gc_body("  const %X: f64[2, 3] = @s\n  const %r: f64[] = [0.3]\n  %y, _ = Dropout(%X, %r)\n",
               PQ_GC_F64, 2);
    pq_gc_body("  const %X: f64[2, 3] = @s\n  %h = Identity(%X)\n  %y = Mul(%h, %h)\n", PQ_GC_F64,
               2);
}
