/* Private helpers of the local rewrite passes (fold-constants, fold-batchnorm, fuse-activations,
 * canonicalize): constant queries, product flattening for activation patterns, rule running. */
#ifndef PQ_CANON_H
#define PQ_CANON_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/build.h"
#include "ir/ir.h"
#include "ir/rewrite.h"
#include "pass.h"

/* Rank of value v, -1 when unknown or v is PQ_NONE. */
int pq_canon_rank(const pq_graph *g, uint32_t v);

/* The constant of v, or NULL when v has none or is a graph input (an initializer listed as a
 * graph input is a default the caller may override, so no pass may bake it in). */
const pq_tensor *pq_canon_constant(const pq_graph *g, uint32_t v);

/* The constant of v (pq_canon_constant) when it is an f32 tensor, else NULL. */
const pq_tensor *pq_canon_const_f32(const pq_graph *g, uint32_t v);

/* True when v is a one-element constant (see pq_value_const_scalar_f32) whose rank is at most
 * max_rank, so broadcasting it against a tensor of rank max_rank keeps that tensor's shape.
 * max_rank < 0 (unknown) never matches. *out receives the value. */
bool pq_canon_scalar(const pq_graph *g, uint32_t v, int max_rank, float *out);

/* True when v is a constant holding exactly the one float want (rank <= max_rank), compared
 * with relative tolerance rtol. */
bool pq_canon_scalar_is(const pq_graph *g, uint32_t v, int max_rank, float want, float rtol);

/* |a - b| <= rtol * max(|a|, |b|). */
bool pq_canon_near(float a, float b, float rtol);

/* Reads an integer constant of rank 0 or 1 with at most max elements into out[0..*n). */
bool pq_canon_const_ints(const pq_graph *g, uint32_t v, int64_t *out, int max, int *n);

/* True when value v is a graph output or has more than `uses` node uses. */
bool pq_canon_escapes(const pq_rewrite_ctx *rc, uint32_t v, uint32_t uses);

/* True when node n carries a fused activation attribute (`activation`). */
bool pq_canon_has_activation(const pq_node *n);

/* A product x1 * x2 * ... * k found under a value: Mul nodes and Div by a one-element constant
 * are walked through (inner values only when used exactly once), one-element constants multiply
 * into k, everything else is a factor. */
#define PQ_CANON_MAX_FACTORS 4
typedef struct pq_canon_product {
    uint32_t factor[PQ_CANON_MAX_FACTORS];
    int n;
    double k;
} pq_canon_product;

/* Flattens the product rooted at value v (which may have any number of uses). The constants must
 * have rank <= rank(v). False when it has more than PQ_CANON_MAX_FACTORS factors or v's rank is
 * unknown. */
bool pq_canon_flatten_product(const pq_rewrite_ctx *rc, uint32_t v, pq_canon_product *p);

/* Adds node op(inputs) with a fresh output named from hint (pq_build); the caller sets attributes
 * and then types the output with pq_infer_node. *out_value / *out_node may be NULL. */
enum pq_status pq_canon_build(pq_graph *g, enum pq_op op, const char *hint, const uint32_t *inputs,
                              uint32_t n_inputs, uint32_t *out_value, uint32_t *out_node,
                              pq_error *err);

/* Adds an f32 constant of the given shape copying data (numel elements). */
enum pq_status pq_canon_const(pq_graph *g, const char *hint, int rank, const int64_t *dims,
                              const float *data, uint32_t *out_value, pq_error *err);

/* Runs rules over g to a fixpoint (pq_rewrite_run) and logs, at verbosity 1, the number of
 * rewrites per rule that fired ("<pass>: 3 rewrites: fuse-relu 2, fuse-clip 1"). Returns the
 * driver's status. *total (may be NULL) receives the number of rewrites. */
enum pq_status pq_canon_run(pq_graph *g, const pq_rewrite_rule *rules, uint32_t n_rules, void *user,
                            pq_pass_ctx *ctx, uint32_t *total, pq_error *err);

/* ---- canonicalize pattern rules (canon_patterns.c) ---- */

/* HardSwish: root Mul or Div computing x*clip(x+3,0,6)/6 (Div by 6 or Mul by 1/6 anywhere in the
 * product) or x*HardSigmoid(x, 1/6, 0.5). m->value[0] = x. */
bool pq_canon_hardswish_match(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m);
enum pq_status pq_canon_hardswish_rewrite(pq_rewrite_ctx *rc, uint32_t nid, const pq_match *m,
                                          pq_error *err);
/* LayerNormalization (scale ones, no bias): root Div of the decomposed form over trailing axes. */
bool pq_canon_layernorm_match(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m);
enum pq_status pq_canon_layernorm_rewrite(pq_rewrite_ctx *rc, uint32_t nid, const pq_match *m,
                                          pq_error *err);
/* Mul (scale) / Add (bias) by a constant of a LayerNormalization output used only there. */
bool pq_canon_layernorm_affine_match(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m);
enum pq_status pq_canon_layernorm_affine_rewrite(pq_rewrite_ctx *rc, uint32_t nid,
                                                 const pq_match *m, pq_error *err);

#endif
