/* Reverse-mode gradient rules for the autodiff pass: one rule per op in a designated-initializer
 * table indexed by op (passes/grad_rules.c), beside the op tables of ir/ and backends/ref/. A rule
 * appends backward nodes built from existing ops (ir/build.h) to the graph. */
#ifndef PQ_GRAD_H
#define PQ_GRAD_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/ir.h"

/* What a rule sees. The forward node is g->nodes[node] (re-take the pointer after adding nodes).
 * out_grad[i] (n_outputs entries) is dL/d(output i), a value of the output's dtype and shape, or
 * PQ_NONE when that output does not reach the loss (a zero gradient). need[i] (n_inputs entries)
 * tells which inputs want a gradient (present, float, depending on a differentiated constant);
 * the rule stores dL/d(input i), a value of input i's dtype and shape, into in_grad[i] for every
 * needed input (in_grad is PQ_NONE on entry) and may leave the others alone. Every node it adds
 * is typed with pq_infer_node. hint is the name hint of the values and nodes it adds. */
typedef struct pq_grad_ctx {
    pq_graph *g;
    uint32_t node;
    const uint32_t *out_grad;
    const bool *need;
    uint32_t *in_grad;
    const char *hint;
    pq_error *err;
} pq_grad_ctx;

/* A gradient rule. Returns PQ_OK, UNSUPPORTED for a case the rule does not handle (message names
 * the attribute or shape; the caller prefixes the node), INVALID / NOMEM from building. */
typedef enum pq_status (*pq_grad_fn)(pq_grad_ctx *c);

/* The rules, indexed by op; NULL = no rule (ops flagged PQ_OPF_NONDIFF need none: they stop
 * gradient flow). Every other op has an entry (tests/passes/test_grad_table.c checks it). */
extern const pq_grad_fn pq_grad_rules[PQ_OP_COUNT];

/* Float-valued, differentiable ops that have no gradient rule yet, with the reason (NULL for every
 * other op). Their entry in pq_grad_rules answers UNSUPPORTED with "<Op> has no gradient rule yet:
 * <reason>", so the autodiff pass stops naming the node, the op and why. */
extern const char *const pq_grad_not_yet[PQ_OP_COUNT];

/* Runs rule on c, then gives every gradient it stored the static shape of its input when the
 * input has one and the rule's result does not (a Reshape to the constant shape: rules working on
 * values with unknown dims, e.g. in a graph with symbolic batch dims, know less than the input's
 * own declaration). Status of the rule, INVALID / NOMEM from building. */
enum pq_status pq_grad_apply(pq_grad_ctx *c, pq_grad_fn rule);

/* dL/dv accumulated from two contributions: a new Add(a, b) node (typed) into *out. */
enum pq_status pq_grad_add(pq_graph *g, const char *hint, uint32_t a, uint32_t b, uint32_t *out,
                           pq_error *err);

/* A new constant of dtype (a float type) and static shape dims[0..rank) filled with v, into *out.
 * INVALID for bad dims, NOMEM. */
enum pq_status pq_grad_fill(pq_graph *g, const char *hint, enum pq_dtype dtype, int rank,
                            const int64_t *dims, double v, uint32_t *out, pq_error *err);

/* Rules that live in their own files (the table in grad_rules.c points at them). */
/* TrainLoss -> one TrainLossGrad(dtotal, the loss's inputs) giving dlogits and the student
 * features' gradients (passes/grad_loss.c); its terms output is not differentiable. */
enum pq_status pq_grad_train_loss(pq_grad_ctx *c);

#endif
