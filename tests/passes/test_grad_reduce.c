/* Gradient rules of the reductions (passes/grad_reduce.c) against central finite differences on
 * f64 graphs (step 1e-5, 1e-6 relative): every reduction over one, several, negative and all axes,
 * keepdims both ways, noop_with_empty_axes; ReduceMax/Min with distinct values and with ties
 * (split evenly). */
#include <criterion/criterion.h>
#include <stdio.h>

#include "grad_check.h"
#include "pass_test_util.h"

static void pq_gr_case(const char *op, const char *gen, const char *axes, int n_axes, int keep) {
    char body[1024], ax[128] = "", in[16] = "";
    if (axes) {
        snprintf(ax, sizeof ax, "  const %%ax: i64[%d] = %s\n", n_axes, axes);
        snprintf(in, sizeof in, ", %%ax");
    }
    /* the result flattened (a rank-0 result becomes [1]) */
    snprintf(body, sizeof body,
             "  const %%X: f64[2, 3, 4] = %s\n%s  %%r = %s(%%X%s) {keepdims = %d}\n"
             "  const %%m1: i64[1] = [-1]\n  %%y = Reshape(%%r, %%m1)\n",
             gen, ax, op, in, keep);
    pq_gc_body(body, PQ_GC_F64, 2);
}

Test(grad_reduce, every_reduction) {
    const char *ops[][2] = {{"ReduceSum", "@s"},    {"ReduceMean", "@s"},
                            {"ReduceMax", "@d"},    {"ReduceMin", "@d"},
                            {"ReduceProd", "@s"},   {"ReduceL1", "@s"},
                            {"ReduceL2", "@s"},     {"ReduceSumSquare", "@s"},
                            {"ReduceLogSum", "@p"}, {"ReduceLogSumExp", "@s"}};
    const char *axes[] = {"[1]", "[-1]", "[0, 2]", NULL};
    int n_axes[] = {1, 1, 2, 0};
    for (size_t k = 0; k < sizeof ops / sizeof *ops; k++)
        for (int a = 0; a < 4; a++)
            for (int keep = 0; keep < 2; keep++)
                pq_gr_case(ops[k][0], ops[k][1], axes[a], n_axes[a], keep);
}

/* noop_with_empty_axes without axes: the identity (each op's elementwise meaning). */
Test(grad_reduce, noop_with_empty_axes) {
    const char *ops[][2] = {{"ReduceSum", "@s"},       {"ReduceMax", "@d"},
                            {"ReduceL2", "@s"},        {"ReduceLogSum", "@p"},
                            {"ReduceLogSumExp", "@s"}, {"ReduceProd", "@s"}};
    for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) {
        char body[512];
        snprintf(body, sizeof body,
                 "  const %%X: f64[2, 3] = %s\n  %%y = %s(%%X) {noop_with_empty_axes = 1}\n",
                 ops[k][1], ops[k][0]);
        pq_gc_body(body, PQ_GC_F64, 2);
    }
}

/* Ties: ReduceMax over [1, 3, 3, 0] gives 1/2 of g to each 3. */
Test(grad_reduce, max_ties_split) {
    pq_graph *g = pq_gc_graph("  const %X: f64[2, 4] = [1, 3, 3, 0, -1, -2, -1, -5]\n"
                              "  const %ax: i64[1] = [1]\n  %y = ReduceMax(%X, %ax)\n");
    pq_graph *ga;
    pq_tensor **outs;
    pq_gc_run(g, "{wrt: '^X$'}", &ga, &outs);
    const double *d = pq_gc_out(ga, outs, "grad/X")->data;
    const double *r = g->values[pq_graph_find_value(g, "R")].constant->data;
    double want[8] = {0, r[0] / 2, r[0] / 2, 0, r[1] / 2, 0, r[1] / 2, 0};
    for (int i = 0; i < 8; i++)
        cr_assert(d[i] == want[i], "dX[%d] = %g, want %g", i, d[i], want[i]);
    pq_test_free_outputs(outs, ga->n_outputs);
    pq_graph_destroy(ga);
    pq_graph_destroy(g);
}
