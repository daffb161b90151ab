/* The IR verifier: structural and type checks run after import, after parsing and after every
 * pass. Messages name the node, value and what is wrong. */
#ifndef PQ_VERIFY_H
#define PQ_VERIFY_H

#include "graph.h"

/* Structural checks of g and, recursively, of every graph attribute (subgraph):
 *  - ids in range (graph inputs/outputs, node inputs/outputs, producers, captured outer ids,
 *    symbol indices), ranks in -1..PQ_MAX_RANK, dims >= -1, value names present and unique;
 *  - every value used (node input, graph output) is defined exactly once: graph input (optionally
 *    with a constant: an initializer with a default), constant, captured outer value, or one node
 *    output; graph inputs/outputs not listed twice; INPUT/OUTPUT flags match the lists;
 *  - producer bookkeeping: value.producer/producer_slot match the node that lists it as output;
 *  - node op in range, input/output counts within the op's limits (pq_op_get), required
 *    (index < min) inputs and outputs present, attribute names unique, tensors and subgraphs
 *    non-NULL, subgraph parent pointers correct;
 *  - topological order: a node's inputs are produced by earlier nodes;
 *  - constants: dtype and shape equal the value's, data size matches the shape;
 *  - captured values: only in subgraphs, outer id valid in the parent and naming a value of the
 *    same name.
 * Returns INVALID with a message naming the graph, node and value on the first problem (subgraph
 * problems are prefixed with "node 'n' (If), attribute 'then_branch': "). err may be NULL. */
enum pq_status pq_graph_verify_structure(const pq_graph *g, pq_error *err);

/* pq_graph_verify_structure, then type consistency: for every node whose op has a shape
 * inference rule, the rule is run on the current input types (the graph is not modified) and
 * declared output dtypes/ranks/dims must agree with the inferred ones where both are known.
 * A rule's INVALID becomes the verifier's INVALID (prefixed with the node); UNSUPPORTED from a
 * rule is ignored (the op is legal but piqc cannot infer it). */
enum pq_status pq_graph_verify(const pq_graph *g, pq_error *err);

#endif
