/* Internal to runtime/: execution frames (one per running graph or subgraph body), the static
 * memory plan of a top-level graph, and node execution shared by both. */
#ifndef PQ_EXEC_H
#define PQ_EXEC_H

#include "runtime.h"

/* Static memory plan for one set of bound input shapes. Everything here depends only on the
 * graph and the input dtypes and shapes, so a session reuses it until an input shape changes. */
typedef struct pq_plan {
    int64_t *bound_dims; /* per input: dtype, rank, dims (what the plan was made for) */
    size_t n_bound;
    pq_tensor **folded; /* per value: constant computed at plan time (owned), else NULL */
    bool *node_skip;    /* per node: every output folded */
    bool *node_alias;   /* per node: a Reshape-like copy whose output 0 is a view of input 0's bytes
                           (same dtype and size; the executor skips the kernel) */
    int64_t *offset;    /* per value: arena offset, -1 when not in the arena (an aliased value has
                           its root's offset) */
    bool *known;        /* per value: planned[v] holds its dtype and dims, inferred at plan time
                           (static shape, producer not dynamic): no inference at run time */
    pq_tensor *planned; /* per value: dtype and dims of known values (data NULL) */
    uint32_t *last_use; /* per value: index of the last node reading it (PQ_NONE: none) */
    size_t peak;        /* arena bytes */
    unsigned char *arena;
} pq_plan;

/* A running graph: one tensor slot per value. Kernels reach the session's backend cache (oneDNN
 * primitives and reordered weights per node, owned by the pq_session) not through the frame but
 * through the thread binding pq_session_run sets around pq_frame_run (pq_onednn_cache_bind); a
 * frame run outside a session runs with whatever cache is bound (usually none). */
typedef struct pq_frame {
    pq_graph *g;
    const struct pq_frame *parent; /* frame of the enclosing graph (subgraph bodies) */
    const pq_plan *plan;           /* static plan (top-level graph) or NULL */
    const pq_tensor **ext;         /* per value: borrowed tensors (bound graph inputs) */
    pq_tensor *slots;              /* per value: computed tensors */
    bool *has;                     /* per value: slot holds a computed tensor */
    uint32_t *last_use;            /* per value (owned copy when no plan) */
    int n_threads;
    pq_observe_fn observe; /* top-level frames only */
    void *observe_ctx;
    pq_op_profile *profile; /* top-level frames only */
} pq_frame;

/* Allocates the per-value arrays of a frame for g. */
enum pq_status pq_frame_init(pq_frame *f, pq_graph *g, const pq_frame *parent, const pq_plan *plan,
                             int n_threads, pq_error *err);
/* Empties the frame for another run of the same graph: frees the computed tensors it owns and
 * unbinds borrowed ones; the per-value arrays stay allocated. */
void pq_frame_reset(pq_frame *f);
/* Empties the frame for another run of the same graph: frees the computed tensors it owns and
 * unbinds borrowed ones; the per-value arrays stay allocated. */
void pq_frame_reset(pq_frame *f);
/* Frees the frame's owned tensors and arrays. */
void pq_frame_free(pq_frame *f);
/* Tensor currently bound to value v (constant, folded, input, captured or computed); NULL if none.
 */
const pq_tensor *pq_frame_get(const pq_frame *f, uint32_t v);
/* Executes every node of the frame's graph in order. */
enum pq_status pq_frame_run(pq_frame *f, pq_error *err);
/* Moves (or copies, when not owned by the frame) the tensor of value v into a new tensor. */
enum pq_status pq_frame_take(pq_frame *f, uint32_t v, pq_tensor **out, pq_error *err);

/* Index of the last node that reads each value of g (graph outputs: n_nodes); PQ_NONE if none.
 * Values captured by subgraphs count as read by the node owning the subgraph. */
enum pq_status pq_compute_last_use(const pq_graph *g, uint32_t *last_use, pq_error *err);

/* Builds a plan for g with the given input tensors' shapes (data is not read). */
enum pq_status pq_plan_build(pq_graph *g, const pq_tensor *const *inputs, pq_plan *plan,
                             pq_error *err);
void pq_plan_free(pq_plan *plan, const pq_graph *g);
/* True when inputs have exactly the shapes the plan was built for. */
bool pq_plan_matches(const pq_plan *plan, const pq_graph *g, const pq_tensor *const *inputs);

#endif
