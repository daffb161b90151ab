/* Weight views (SPEC section 2): which constants of a graph are quantizable weights, and how to
 * read them as a rows x cols matrix (rows = output features) and write them back. */
#ifndef PQ_WEIGHTS_H
#define PQ_WEIGHTS_H

#include "ir/ir.h"

/* One quantizable weight. A batched MatMul weight [..., K, N] is `batch` stacked N x K matrices;
 * the view is (batch * rows) x cols. */
typedef struct pq_weight_view {
    uint32_t value;        /* constant value id in the graph */
    const char *name;      /* value name (graph arena) */
    const char *node_name; /* first consumer that made it a weight */
    enum pq_op op;         /* that consumer's op */
    int rank;              /* stored (ONNX) shape */
    int64_t dims[PQ_MAX_RANK];
    int64_t batch, rows, cols;
    bool transposed; /* view is the transpose of the stored [K, N] layout (MatMul, Gemm transB=0) */
} pq_weight_view;

/* Finds the weights of every MatMul (constant B), Gemm (constant B), Conv and ConvTranspose whose
 * weight is an f32 constant with >= 2 dims and >= min_elements elements. A weight shared by several
 * nodes is listed once (first consumer's view). *out is pq_malloc'ed (pq_free it), *n its length.
 */
enum pq_status pq_weights_find(const pq_graph *g, int64_t min_elements, pq_weight_view **out,
                               uint32_t *n, pq_error *err);
/* Copies the weight into a new (batch*rows) x cols row-major matrix (*out, pq_free it). */
enum pq_status pq_weight_view_read(const pq_graph *g, const pq_weight_view *wv, float **out,
                                   pq_error *err);
/* Writes a (batch*rows) x cols matrix back into the weight's stored layout. */
enum pq_status pq_weight_view_write(pq_graph *g, const pq_weight_view *wv, const float *m,
                                    pq_error *err);

#endif
