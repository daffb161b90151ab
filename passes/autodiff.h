/* The autodiff pass's core as a C function, for the training engine (runtime/train_graph.c):
 * reverse-mode gradients of one scalar value w.r.t. a chosen set of constants. */
#ifndef PQ_AUTODIFF_H
#define PQ_AUTODIFF_H

#include <stdbool.h>
#include <stdint.h>

#include "pass.h"

/* Differentiates the float scalar value `loss` of the sorted, inferred graph g with respect to
 * the constants v with wrt[v] true (wrt has g->n_values entries; values that are not float
 * constants of rank >= 1 are ignored). Appends the backward nodes and adds one graph output
 * "grad/<constant name>" per selected constant that reaches the loss (the others are logged at
 * level 2 and get none). ctx (may be NULL) receives the log lines. INVALID when the loss depends
 * on no selected constant; UNSUPPORTED naming a node on the gradient path without a rule or with
 * a fused activation; what a rule returns, prefixed with its node. */
enum pq_status pq_autodiff_graph(pq_graph *g, uint32_t loss, const bool *wrt, pq_pass_ctx *ctx,
                                 pq_error *err);

#endif
