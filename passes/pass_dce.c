/* dce: dead code elimination. Removes nodes none of whose outputs is used (transitively, inside
 * If/Loop bodies too) and values nothing references (unused constants and captures included). */
#include "ir/edit.h"
#include "pass.h"

/* Cleans subgraphs first (a body that stops capturing a value frees it in g), then g. */
static enum pq_status pq_dce_graph(pq_graph *g, int depth, uint32_t *nodes, uint32_t *values,
                                   pq_error *err) {
    if (depth > 32) return pq_error_set(err, PQ_ERR_INVALID, "subgraphs nested deeper than 32");
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        pq_node *n = &g->nodes[i];
        for (uint32_t a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].type != PQ_ATTR_GRAPH) continue;
            enum pq_status st = pq_dce_graph(n->attrs[a].u.graph, depth + 1, nodes, values, err);
            if (st != PQ_OK)
                return pq_error_prefix(err, "node '%s' (%s), subgraph '%s': ", n->name,
                                       pq_op_name(n->op), n->attrs[a].name);
        }
    }
    uint32_t removed = 0, before = g->n_values;
    PQ_TRY(pq_graph_remove_dead(g, &removed, err));
    PQ_TRY(pq_graph_compact(g, NULL, err));
    *nodes += removed;
    *values += before - g->n_values;
    return PQ_OK;
}

static enum pq_status pq_dce_run(pq_graph *g, const pq_pass_opts *opts, pq_pass_ctx *ctx,
                                 pq_error *err) {
    (void)opts;
    uint32_t nodes = 0, values = 0;
    PQ_TRY(pq_dce_graph(g, 0, &nodes, &values, err));
    pq_pass_log(ctx, 2, "removed %u nodes and %u values", nodes, values);
    return PQ_OK;
}

const pq_pass pq_pass_dce = {
    .name = "dce",
    .summary = "remove nodes whose results are unused (transitively) and unreferenced values",
    .options = NULL,
    .n_options = 0,
    .run = pq_dce_run,
};
