/* Reference (plain C) kernels: the oracle every optimised kernel and backend is tested against.
 * One kernel per op in the table pq_ref_kernels (backends/ref/ref_table.c). */
#ifndef PQ_REF_H
#define PQ_REF_H

#include "ir/ir.h"

/* Runs a subgraph (If branch, Loop body) for control-flow kernels. The runner binds the body's
 * captured values from the enclosing scope itself. inputs follow body->inputs; outputs receive
 * newly allocated tensors (caller destroys them) in body->outputs order. */
typedef struct pq_subgraph_runner {
    void *ctx;
    enum pq_status (*run)(void *ctx, const pq_graph *body, const pq_tensor *const *inputs,
                          uint32_t n_inputs, pq_tensor **outputs, uint32_t n_outputs,
                          pq_error *err);
} pq_subgraph_runner;

/* Arguments of one kernel invocation. Inputs have been validated by the op's inference rule
 * with these exact shapes and values. For every present output, dtype/rank/dims are set from
 * inference and data points to nbytes of writable memory (not zeroed) -- except when data is
 * NULL (shape depends on data, PQ_OPF_DYNAMIC or unknown at plan time): then the kernel calls
 * pq_tensor_alloc_data itself. */
typedef struct pq_kernel_args {
    const pq_graph *graph;
    const pq_node *node;
    const pq_tensor *const *in; /* in[i] NULL when the optional input is omitted */
    uint32_t n_in;
    pq_tensor *const *out; /* out[i] NULL when the optional output is omitted */
    uint32_t n_out;
    const pq_subgraph_runner *subgraph; /* non-NULL for ops with PQ_OPF_SUBGRAPH */
    int n_threads;
    pq_error *err;
} pq_kernel_args;

typedef enum pq_status (*pq_kernel_fn)(const pq_kernel_args *a);

/* The reference kernel of every op (NULL = missing; a test fails on any NULL). */
extern const pq_kernel_fn pq_ref_kernels[PQ_OP_COUNT];

/* Runs the reference kernel of a->node->op; UNSUPPORTED when it has none. Error messages are
 * prefixed with the node's name and op. */
enum pq_status pq_ref_run(const pq_kernel_args *a);

#endif
