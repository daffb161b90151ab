/* Shape and type inference: the per-op table (filled in ir/infer_*.c) and the helpers the
 * rules share. The runtime calls the same rules with concrete shapes and known input data. */
#ifndef PQ_INFER_H
#define PQ_INFER_H

#include "graph.h"

/* What is known about one node input or output. */
typedef struct pq_type_info {
    bool present;        /* false for an omitted optional input/output */
    enum pq_dtype dtype; /* UNDEFINED when unknown */
    pq_shape shape;      /* rank -1 when unknown */
    const pq_tensor
        *value; /* inputs only: known data (constant, or the actual tensor at run time) */
} pq_type_info;

typedef struct pq_infer_ctx {
    pq_graph *graph; /* for symbols and subgraph attributes */
    const pq_node *node;
    const pq_type_info *in;
    uint32_t n_in;
    pq_type_info *out; /* rules fill dtype and shape of every present output */
    uint32_t n_out;
    pq_error *err;
} pq_infer_ctx;

/* A rule validates what it can check (ranks, dtypes, attribute values, broadcast compatibility)
 * and returns INVALID with a message naming the problem; UNSUPPORTED for legal ONNX piqc does not
 * handle. Unknown dims stay unknown (size -1) unless a symbol can be carried over. When every input
 * shape is static and every shape-determining input has a value, every output shape must be static
 * (except for ops flagged PQ_OPF_DYNAMIC). */
typedef enum pq_status (*pq_infer_fn)(pq_infer_ctx *ctx);

/* One rule per op, designated-initializer table in ir/infer_table.c. */
extern const pq_infer_fn pq_infer_table[PQ_OP_COUNT];

/* Runs the rule of node nid on the graph's current value types and stores the results into the
 * output values (merging with declared shapes: a declared static dim wins over an unknown one,
 * a conflict is INVALID). Error messages are prefixed with the node name and op. */
enum pq_status pq_infer_node(pq_graph *g, uint32_t nid, pq_error *err);
/* Infers every node in topological order (the graph must be sorted). */
enum pq_status pq_graph_infer_shapes(pq_graph *g, pq_error *err);

/* ---- helpers shared by rules ---- */

/* Numpy-style multidirectional broadcast of a and b into out. INVALID when incompatible. */
enum pq_status pq_infer_broadcast(const pq_shape *a, const pq_shape *b, pq_shape *out,
                                  pq_error *err);
/* Reads a known integer input (any integer dtype, rank 0 or 1) into out[0..*n). Returns false when
 * the value is unknown or has more than max elements. */
bool pq_infer_const_ints(const pq_type_info *t, int64_t *out, int max, int *n);
/* Normalises axis (may be negative) for a rank; INVALID when out of [-rank, rank). */
enum pq_status pq_infer_axis(int64_t axis, int rank, int *out, pq_error *err);
/* Sets out to the same dtype and shape as in (elementwise unary ops). */
void pq_infer_copy(const pq_type_info *in, pq_type_info *out);

/* Topologically sorts g and infers every node's output types in order, subgraphs included (their
 * captured values first take the current types of the enclosing scope). Used after import and
 * after every pass. INVALID/UNSUPPORTED from the first rule that fails, prefixed with the owning
 * node for subgraphs; INVALID when subgraphs nest deeper than 32. */
enum pq_status pq_graph_sort_infer(pq_graph *g, pq_error *err);

#endif
