/* Preparing an imported or parsed graph for execution: topological sort, shape and type
 * inference (subgraphs included, with captured values refreshed from the enclosing scope), verify.
 */
#include "runtime.h"

static enum pq_status pq_prepare_graph(pq_graph *g, int depth, pq_error *err);

/* Copies the current types of captured values from the enclosing graph into subgraph sub. */
static void pq_refresh_captures(pq_graph *sub) {
    for (uint32_t v = 0; v < sub->n_values; v++) {
        pq_value *val = &sub->values[v];
        if (val->outer == PQ_NONE || !sub->parent) continue;
        const pq_value *ov = &sub->parent->values[val->outer];
        val->dtype = ov->dtype;
        val->shape = ov->shape;
    }
}

static enum pq_status pq_prepare_graph(pq_graph *g, int depth, pq_error *err) {
    if (depth > 32) return pq_error_set(err, PQ_ERR_INVALID, "subgraphs nested deeper than 32");
    PQ_TRY(pq_graph_toposort(g, err));
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        pq_node *n = &g->nodes[i];
        for (uint32_t a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].type != PQ_ATTR_GRAPH) continue;
            pq_graph *sub = n->attrs[a].u.graph;
            pq_refresh_captures(sub);
            enum pq_status st = pq_prepare_graph(sub, depth + 1, err);
            if (st != PQ_OK)
                return pq_error_prefix(err, "node '%s' (%s), subgraph '%s': ", n->name,
                                       pq_op_name(n->op), n->attrs[a].name);
        }
        PQ_TRY(pq_infer_node(g, i, err));
    }
    return PQ_OK;
}

enum pq_status pq_runtime_prepare(pq_graph *g, pq_error *err) {
    PQ_TRY(pq_prepare_graph(g, 0, err));
    return pq_graph_verify(g, err);
}
