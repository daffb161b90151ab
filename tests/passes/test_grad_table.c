/* Gradient-rule completeness (issue 7): every op of ir/ops.def either has a gradient rule or is
 * flagged PQ_OPF_NONDIFF (integer, boolean or shape results, quantized ops, backward ops); ops
 * listed in pq_grad_not_yet (differentiable, no rule yet) have the rule that reports why, and the
 * autodiff pass stops on them naming the node, the op and the reason. */
#include <criterion/criterion.h>
#include <string.h>

#include "grad_check.h"
#include "ir/ir.h"
#include "pass_test_util.h"
#include "passes/grad.h"

Test(grad_table, every_differentiable_op_has_a_rule) {
    int missing = 0, pending = 0;
    for (int op = 0; op < PQ_OP_COUNT; op++) {
        bool nondiff = (pq_op_get(op)->flags & PQ_OPF_NONDIFF) != 0;
        if (!nondiff && !pq_grad_rules[op]) {
            cr_log_error("op %s has no gradient rule and is not flagged PQ_OPF_NONDIFF",
                         pq_op_name(op));
            missing++;
        }
        if (nondiff && pq_grad_rules[op]) {
            cr_log_error("op %s is flagged PQ_OPF_NONDIFF but has a gradient rule", pq_op_name(op));
            missing++;
        }
        if (pq_grad_not_yet[op]) {
            pending++;
            cr_assert(!nondiff, "%s: not-yet op flagged PQ_OPF_NONDIFF", pq_op_name(op));
            cr_assert(strlen(pq_grad_not_yet[op]) > 10, "%s: no reason", pq_op_name(op));
        }
    }
    cr_assert_eq(missing, 0, "%d ops without a gradient rule or flag", missing);
    cr_log_info("%d ops differentiable without a rule yet", pending);
}

/* The ops that have no rule yet share one rule, and only they have it. */
Test(grad_table, not_yet_ops_share_the_reporting_rule) {
    pq_grad_fn stub = pq_grad_rules[PQ_OP_LSTM];
    cr_assert(stub && pq_grad_not_yet[PQ_OP_LSTM]);
    for (int op = 0; op < PQ_OP_COUNT; op++)
        cr_assert_eq(pq_grad_rules[op] == stub, pq_grad_not_yet[op] != NULL, "%s", pq_op_name(op));
}

/* An op without a rule yet on the gradient path: UNSUPPORTED naming the node, op and reason. */
Test(grad_table, not_yet_op_is_named) {
    pq_graph *g = pq_gc_graph("  const %X: f64[2, 3] = @s\n  const %W: f64[3, 2] = @s\n"
                              "  %y = Einsum(%X, %W) {equation = \"ij,jk->ik\"}  # my_einsum\n");
    pq_gc_expect_error(g, NULL, PQ_ERR_UNSUPPORTED, "'my_einsum' (Einsum)",
                       "no gradient rule yet: the backward of a general equation");
    /* off the path (only R selected): no error */
    pq_graph *ga;
    pq_tensor **outs;
    pq_gc_run(g, "{wrt: '^R$'}", &ga, &outs);
    pq_test_free_outputs(outs, ga->n_outputs);
    pq_graph_destroy(ga);
    pq_graph_destroy(g);
}
