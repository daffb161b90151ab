/* Preparing an imported or parsed graph for execution: topological sort, shape and type
 * inference (subgraphs included, with captured values refreshed from the enclosing scope), verify.
 */
#include "runtime.h"

enum pq_status pq_runtime_prepare(pq_graph *g, pq_error *err) {
    PQ_TRY(pq_graph_sort_infer(g, err));
    return pq_graph_verify(g, err);
}
