/* Private building blocks of the gradient rules (passes/grad_rules.c and the grad_<family>.c
 * files): typed node builders named from the rule's hint, small constants, broadcasting undone,
 * shapes, and the declarations of the rules the table in grad_rules.c points at. */
#ifndef PQ_GRAD_UTIL_H
#define PQ_GRAD_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "grad.h"
#include "ir/edit.h"

/* The forward node (re-taken on every use: adding nodes moves the array), its inputs, outputs and
 * the gradient of output 0. Rules take their context as `c`. */
#define PQ_NODE (&c->g->nodes[c->node])
#define PQ_IN(i) pq_node_input(PQ_NODE, i)
#define PQ_OUT(i) pq_node_output(PQ_NODE, i)
#define PQ_G0 (c->out_grad[0])

/* ---- builders (every one names its values and nodes from c->hint; status as pq_build /
 * pq_infer_node: INVALID / UNSUPPORTED from inference, INTERNAL, NOMEM) ---- */

/* Adds op(in[0..n)) untyped into *v (node id *nid): set attributes, then call pq_grad_infer. */
enum pq_status pq_gb(pq_grad_ctx *c, enum pq_op op, const uint32_t *in, uint32_t n, uint32_t *v,
                     uint32_t *nid);
/* Types node nid (pq_infer_node). */
enum pq_status pq_grad_infer(pq_grad_ctx *c, uint32_t nid);
/* op(in[0..n)) without attributes, typed, into *v. */
enum pq_status pq_gop(pq_grad_ctx *c, enum pq_op op, const uint32_t *in, uint32_t n, uint32_t *v);
enum pq_status pq_gop1(pq_grad_ctx *c, enum pq_op op, uint32_t a, uint32_t *v);
enum pq_status pq_gop2(pq_grad_ctx *c, enum pq_op op, uint32_t a, uint32_t b, uint32_t *v);
/* Where(cond, a, b). */
enum pq_status pq_gwhere(pq_grad_ctx *c, uint32_t cond, uint32_t a, uint32_t b, uint32_t *v);
/* Where(cond, x, 0): x where cond holds, else 0 (x's dtype). */
enum pq_status pq_gmask(pq_grad_ctx *c, uint32_t cond, uint32_t x, uint32_t *v);
/* x * s for a double s (a scalar constant of x's dtype). */
enum pq_status pq_gscale(pq_grad_ctx *c, uint32_t x, double s, uint32_t *v);
/* Cast(x, to = dtype). */
enum pq_status pq_gcast(pq_grad_ctx *c, uint32_t x, enum pq_dtype dtype, uint32_t *v);
/* Transpose(x, perm[0..r)). */
enum pq_status pq_gtranspose(pq_grad_ctx *c, uint32_t x, const int64_t *perm, int r, uint32_t *v);
/* Transpose swapping the last two axes of x (rank >= 2). */
enum pq_status pq_gswap_last2(pq_grad_ctx *c, uint32_t x, uint32_t *out);
/* Reshape(x, dims[0..r)) with a constant shape. */
enum pq_status pq_greshape(pq_grad_ctx *c, uint32_t x, const int64_t *dims, int r, uint32_t *v);
/* Reshape(x, shape of like): x re-viewed with like's (possibly symbolic) shape. */
enum pq_status pq_greshape_like(pq_grad_ctx *c, uint32_t x, uint32_t like, uint32_t *out);
/* ReduceSum(x, axes[0..n)) with keepdims = keep (n = 0: over every axis). */
enum pq_status pq_greduce_sum(pq_grad_ctx *c, uint32_t x, const int64_t *axes, int n, bool keep,
                              uint32_t *out);
/* Slice(x, starts, ends, axes) with constant vectors of n entries and steps 1. */
enum pq_status pq_gslice(pq_grad_ctx *c, uint32_t x, const int64_t *starts, const int64_t *ends,
                         const int64_t *axes, int n, uint32_t *v);

/* ---- constants and shapes ---- */

/* A rank-0 constant of like's dtype holding v. */
enum pq_status pq_gscalar(pq_grad_ctx *c, uint32_t like, double v, uint32_t *out);
/* A 1-D i64 constant v[0..n) (n may be 0). */
enum pq_status pq_gints(pq_grad_ctx *c, const int64_t *v, int n, uint32_t *out);
/* The shape of value like as an i64 vector: a constant when static, else Shape(like). */
enum pq_status pq_gshape_of(pq_grad_ctx *c, uint32_t like, uint32_t *out);
/* Zeros of like's dtype and shape: Expand(0, shape of like) (no large constant is stored). */
enum pq_status pq_gzeros_like(pq_grad_ctx *c, uint32_t like, uint32_t *out);
/* True when value v has a static shape; its dims into dims (may be NULL), rank into *rank. */
bool pq_gstatic(const pq_grad_ctx *c, uint32_t v, int64_t *dims, int *rank);

/* dL/d(operand) of a broadcasting op from gradient gv of the broadcast result: sums over the axes
 * the operand was broadcast along and views the sum with the operand's shape. When unknown dims
 * hide which axes were broadcast, they are found when the graph runs (the axes where the
 * operand's dim is 1). UNSUPPORTED for an unknown rank or an operand of higher rank. */
enum pq_status pq_gunbroadcast(pq_grad_ctx *c, uint32_t gv, uint32_t target, uint32_t *out);

/* numel(small) / numel(big) as a scalar of big's dtype, computed when the graph runs (Size, Cast,
 * Div): the mean's divisor over dims the compiler does not know. */
enum pq_status pq_gcount_ratio(pq_grad_ctx *c, uint32_t big, uint32_t small, uint32_t *out);

/* The adjoint of a data-movement op whose parameters are only known at run time: *idx is an i64
 * tensor of x's shape holding 0 .. numel(x) - 1 (Range, Reshape) and *size numel(x) (i64 scalar);
 * running the forward op on idx gives, for each output element, the input element it reads, and
 * pq_gindex_scatter then scatter-adds g there: dx = Reshape(ScatterND(zeros[numel], picked[:,
 * None], g flat, add), shape of x). */
enum pq_status pq_gindex_map(pq_grad_ctx *c, uint32_t x, uint32_t *idx, uint32_t *size);
enum pq_status pq_gindex_scatter(pq_grad_ctx *c, uint32_t g, uint32_t picked, uint32_t x,
                                 uint32_t size, uint32_t *out);

/* For the reductions: the axes node n (input 1 a constant, or every axis; noop_with_empty_axes
 * gives *identity) reduces over x of rank `rank`, sorted and non-negative, into axes / *n_axes.
 * UNSUPPORTED when the axes are not a constant integer list. */
enum pq_status pq_greduce_axes(pq_grad_ctx *c, int rank, int64_t *axes, int *n_axes,
                               bool *identity);
/* v (a reduction's output or its gradient) with the reduced axes kept as size 1: Unsqueeze(v,
 * axes) when the node has keepdims = 0, else v itself. */
enum pq_status pq_gkeepdims(pq_grad_ctx *c, uint32_t v, const int64_t *axes, int n_axes,
                            uint32_t *out);

/* Reads INTS attribute name (cnt entries, default def) of n into v; false when present with
 * another type or length. */
bool pq_gattr_ints(const pq_node *n, const char *name, int cnt, int64_t def, int64_t *v);
/* Reads a constant integer input (rank 0 or 1, at most max entries) into v / *n; false when the
 * value is absent, not constant or too long. */
bool pq_gconst_ints(const pq_grad_ctx *c, uint32_t v, int64_t *out, int max, int *n);
/* Copies every attribute of node `from` onto node `to` (the forward's attributes onto its
 * backward op). */
enum pq_status pq_gcopy_attrs(pq_grad_ctx *c, uint32_t from, uint32_t to);

/* ---- rules (one file per family; the table in grad_rules.c points at them) ---- */

/* grad_elementwise.c: arithmetic, activations, math functions, Clip, Cast, Where, variadic */
enum pq_status pq_grad_add_rule(pq_grad_ctx *c);
enum pq_status pq_grad_sub(pq_grad_ctx *c);
enum pq_status pq_grad_mul(pq_grad_ctx *c);
enum pq_status pq_grad_div(pq_grad_ctx *c);
enum pq_status pq_grad_pow(pq_grad_ctx *c);
enum pq_status pq_grad_mod(pq_grad_ctx *c);
enum pq_status pq_grad_prelu(pq_grad_ctx *c);
enum pq_status pq_grad_where(pq_grad_ctx *c);
enum pq_status pq_grad_max_min(pq_grad_ctx *c);
enum pq_status pq_grad_sum_mean(pq_grad_ctx *c);
enum pq_status pq_grad_identity(pq_grad_ctx *c);
enum pq_status pq_grad_unary(pq_grad_ctx *c); /* every elementwise unary op with a rule */
enum pq_status pq_grad_clip(pq_grad_ctx *c);
enum pq_status pq_grad_cast(pq_grad_ctx *c);
enum pq_status pq_grad_cast_like(pq_grad_ctx *c);
enum pq_status pq_grad_dropout(pq_grad_ctx *c);

/* grad_movement.c: shape and data movement */
enum pq_status pq_grad_reshape(pq_grad_ctx *c);
enum pq_status pq_grad_transpose(pq_grad_ctx *c);
enum pq_status pq_grad_concat(pq_grad_ctx *c);
enum pq_status pq_grad_split(pq_grad_ctx *c);
enum pq_status pq_grad_slice(pq_grad_ctx *c);
enum pq_status pq_grad_gather(pq_grad_ctx *c);
enum pq_status pq_grad_gather_elements(pq_grad_ctx *c);
enum pq_status pq_grad_gather_nd(pq_grad_ctx *c);
enum pq_status pq_grad_scatter(pq_grad_ctx *c); /* ScatterElements, Scatter, ScatterND */
enum pq_status pq_grad_expand(pq_grad_ctx *c);
enum pq_status pq_grad_tile(pq_grad_ctx *c);
enum pq_status pq_grad_pad(pq_grad_ctx *c);
enum pq_status pq_grad_resize(pq_grad_ctx *c);
enum pq_status pq_grad_depth_to_space(pq_grad_ctx *c);
enum pq_status pq_grad_space_to_depth(pq_grad_ctx *c);
enum pq_status pq_grad_trilu(pq_grad_ctx *c);
enum pq_status pq_grad_cum_sum(pq_grad_ctx *c);
enum pq_status pq_grad_reverse_sequence(pq_grad_ctx *c);
enum pq_status pq_grad_compress(pq_grad_ctx *c);
enum pq_status pq_grad_top_k(pq_grad_ctx *c);
enum pq_status pq_grad_max_unpool(pq_grad_ctx *c);

/* grad_reduce.c: reductions */
enum pq_status pq_grad_reduce(pq_grad_ctx *c); /* ReduceSum, ReduceMean */
enum pq_status pq_grad_reduce_max_min(pq_grad_ctx *c);
enum pq_status pq_grad_reduce_other(pq_grad_ctx *c); /* Prod, L1, L2, SumSquare, LogSum(Exp) */

/* grad_nn.c: linear algebra, softmax, convolution, pooling, normalisation */
enum pq_status pq_grad_softmax(pq_grad_ctx *c);
enum pq_status pq_grad_log_softmax(pq_grad_ctx *c);
enum pq_status pq_grad_matmul(pq_grad_ctx *c);
enum pq_status pq_grad_gemm(pq_grad_ctx *c);
enum pq_status pq_grad_conv(pq_grad_ctx *c);
enum pq_status pq_grad_conv_transpose(pq_grad_ctx *c);
enum pq_status pq_grad_pool(pq_grad_ctx *c); /* MaxPool, AveragePool */
enum pq_status pq_grad_global_pool(pq_grad_ctx *c);
enum pq_status pq_grad_batch_norm(pq_grad_ctx *c);
enum pq_status pq_grad_layer_norm(pq_grad_ctx *c);
enum pq_status pq_grad_instance_norm(pq_grad_ctx *c);
enum pq_status pq_grad_mvn(pq_grad_ctx *c);
enum pq_status pq_grad_lp_norm(pq_grad_ctx *c);
enum pq_status pq_grad_lrn(pq_grad_ctx *c);
enum pq_status pq_grad_hadamard(pq_grad_ctx *c);

#endif
