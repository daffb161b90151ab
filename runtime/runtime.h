/* Public face of runtime/: prepares graphs (sort, infer, verify), plans memory for the bound
 * input shapes and executes with the reference kernels (optimised backends later). */
#ifndef PQ_RUNTIME_H
#define PQ_RUNTIME_H

#include <stddef.h>

#include "backends/ref/ref.h"
#include "ir/ir.h"

/* Topologically sorts g, infers shapes and dtypes, and verifies it (subgraphs included).
 * Returns the first problem (INVALID / UNSUPPORTED) with a message naming node and value. */
enum pq_status pq_runtime_prepare(pq_graph *g, pq_error *err);

/* Called before each top-level node runs, with its input tensors (NULL for omitted inputs);
 * calibration uses it to observe activations. A non-OK status stops the run. */
typedef enum pq_status (*pq_observe_fn)(void *ctx, const pq_graph *g, uint32_t node,
                                        const pq_tensor *const *inputs, uint32_t n_inputs,
                                        pq_error *err);

/* Time spent per op by the top-level graph's nodes (subgraph bodies count in their If/Loop),
 * and optionally per node: node_ms / node_calls, when non-NULL, hold n_nodes entries indexed like
 * the session graph's nodes (the caller allocates and frees them; nodes past n_nodes are not
 * counted). */
typedef struct pq_op_profile {
    double ms[PQ_OP_COUNT];
    int64_t calls[PQ_OP_COUNT];
    double *node_ms;
    int64_t *node_calls;
    uint32_t n_nodes;
} pq_op_profile;

typedef struct pq_session_opts {
    int n_threads;         /* 0 = 1 for now */
    pq_observe_fn observe; /* optional */
    void *observe_ctx;
    pq_op_profile *profile; /* optional: accumulates kernel time per op across runs */
} pq_session_opts;

typedef struct pq_session pq_session;

/* Creates a session for a prepared graph g. g is borrowed and must outlive the session. */
enum pq_status pq_session_create(pq_graph *g, const pq_session_opts *opts, pq_session **out,
                                 pq_error *err);
/* Runs the graph. inputs follow g->inputs (same count); each must match the declared dtype and
 * the known dims of its input (INVALID naming the input otherwise). Dynamic dims are bound from the
 * inputs; the memory plan, with every shape it could infer, is rebuilt when an input's shape or
 * dtype changes and reused otherwise, so a run with the previous shapes allocates only its
 * outputs. outputs receives n_outputs newly allocated tensors in g->outputs order (the caller
 * destroys them; all NULL on failure, after which the session stays usable). One run at a time
 * per session. */
enum pq_status pq_session_run(pq_session *s, const pq_tensor *const *inputs, uint32_t n_inputs,
                              pq_tensor **outputs, uint32_t n_outputs, pq_error *err);
/* Peak bytes of activations in the current static plan (0 before the first run or plan). */
size_t pq_session_planned_peak(const pq_session *s);
/* Plans memory for the given static input shapes without running (for `inspect`). shapes[i]
 * gives dims of input i (rank from the graph). */
enum pq_status pq_session_plan(pq_session *s, const int64_t *const *shapes, pq_error *err);
void pq_session_destroy(pq_session *s);

#endif
