/* The IR verifier: structural and type checks run after import, after parsing and after every
 * pass. Messages name the node, value and what is wrong. */
#ifndef PQ_VERIFY_H
#define PQ_VERIFY_H

#include "graph.h"

/* Checks g (and its subgraphs): every value defined once (graph input, constant, captured
 * outer value or exactly one node output); every node input defined; node arity within the op's
 * limits; ids in range; no cycles (nodes must be in topological order); outputs defined; captured
 * values resolve in an enclosing graph; declared dtypes/shapes consistent with inference where both
 * are known. Returns INVALID with a message on the first problem. */
enum pq_status pq_graph_verify(const pq_graph *g, pq_error *err);

#endif
