/* Shared by the gradient-rule tests (tests/passes/test_grad_*.c): small graphs written in the text
 * IR with generated constants, loss = ReduceSum(y * R), and the check of every gradient the
 * autodiff pass exposes against central finite differences of the loss. */
#ifndef PQ_GRAD_CHECK_H
#define PQ_GRAD_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/ir.h"

/* Step and tolerance of a check: |fd - ad| <= tol * max(1, |fd|), or with atol > 0
 * |fd - ad| <= tol * |fd| + atol; five_point uses the fourth-order stencil
 * (8 (L(x+h) - L(x-h)) - (L(x+2h) - L(x-2h))) / 12h. */
typedef struct pq_gc_tol {
    double h, tol;
    bool five_point;
    double atol;
} pq_gc_tol;

/* f64 graphs whose kernels compute in double: step 1e-5, 1e-6 relative, central differences. */
extern const pq_gc_tol PQ_GC_F64;
/* f64 graphs through kernels that compute in f32 (Conv, pooling, normalisations, MatMul, Gemm):
 * step 1e-2, five-point stencil, 1e-3 relative (f32 rounding of the loss divided by the step). */
extern const pq_gc_tol PQ_GC_F32K;

/* Parses a test graph. body is the inside of a graph block in the text IR (opset "" 18 is added)
 * where a constant's elements may be generated: `= @s` signed values in +-[0.2, 1], `@p` positive
 * [0.2, 1], `@u` values in (-0.8, 0.8) spread evenly and shuffled, `@d` distinct values (a shuffled
 * ramp 0.1 apart around 0, for max-like ops), `@w` values in [1.2, 2] (for Acosh). The values
 * depend only on the body text. The value named `y` gets the loss ReduceSum(y * R) (R a generated
 * constant of y's shape) as the single graph output `loss`. Asserts (Criterion) on any error. */
pq_graph *pq_gc_graph(const char *body);

/* Runs autodiff (YAML options opts, NULL for the defaults: every float constant of rank >= 1) on a
 * clone of g, checks the loss is unchanged and every exposed gradient grad/<c> against finite
 * differences of the loss w.r.t. every element of c, with tol. Returns the number of gradients
 * checked (R's included when selected). Asserts, naming what, on a mismatch. */
uint32_t pq_gc_check(pq_graph *g, const char *opts, pq_gc_tol tol, const char *what);

/* pq_gc_check for a graph with inputs (ins: one tensor per graph input) and any outputs, one of
 * them named `loss` (options default to {loss: loss} when there are several); at most max_elems
 * evenly spaced elements of each gradient are checked (0: all). */
uint32_t pq_gc_check_in(pq_graph *g, const pq_tensor *const *ins, const char *opts, pq_gc_tol tol,
                        int64_t max_elems, const char *what);

/* The same for the graph of body with the default options, then destroys it; asserts that want
 * gradients were checked. */
void pq_gc_body(const char *body, pq_gc_tol tol, uint32_t want);
/* pq_gc_body with options (e.g. "{wrt: '^X$'}"). */
void pq_gc_body_opts(const char *body, const char *opts, pq_gc_tol tol, uint32_t want);

/* Runs autodiff (opts) on g and asserts it fails with status and a message containing every
 * non-NULL needle. */
void pq_gc_expect_error(pq_graph *g, const char *opts, enum pq_status status, const char *needle1,
                        const char *needle2);

/* The gradients autodiff gives for g (opts): runs the differentiated graph; *outs receives the
 * outputs (loss first, then grad/...), *ga the graph (the caller frees both with
 * pq_test_free_outputs(outs, ga->n_outputs) and pq_graph_destroy). */
void pq_gc_run(pq_graph *g, const char *opts, pq_graph **ga, pq_tensor ***outs);
/* pq_gc_run for a graph with inputs ins. */
void pq_gc_run_in(pq_graph *g, const pq_tensor *const *ins, const char *opts, pq_graph **ga,
                  pq_tensor ***outs);
/* Output `name` of a graph run by pq_gc_run (asserts it exists). */
const pq_tensor *pq_gc_out(const pq_graph *ga, pq_tensor *const *outs, const char *name);

#endif
