/* Graph editing for passes: use lists, input rewiring, replace-all-uses, constants, deep clone and
 * compaction of dead nodes and values, with the id and pointer stability rules passes rely on. */
#ifndef PQ_EDIT_H
#define PQ_EDIT_H

#include "graph.h"

/* Stability rules (every pass may rely on these):
 * - Value and node ids stay valid while values and nodes are only added, rewired or have their
 *   attributes changed; pq_graph_compact and pq_graph_remove_nodes renumber them (both return
 *   the old -> new maps when asked).
 * - pq_value / pq_node POINTERS are invalidated by any call that adds a value or a node (the
 *   arrays grow); re-take them by id after such a call.
 * - A pq_uses table describes the graph at the time it was built; any edit makes it stale
 *   (rebuild it; building is O(nodes + values)). */

/* One use of a value: input slot `slot` of node `node`. */
typedef struct pq_use {
    uint32_t node, slot;
} pq_use;

/* Use lists of every value of one graph in one CSR table: the uses of value v are
 * use[start[v] .. start[v+1]) in node order, then slot order. Subgraph captures of v count as a
 * use of the owning node with slot PQ_NONE. n_graph_outputs[v] counts how often v is a graph
 * output. */
typedef struct pq_uses {
    uint32_t n_values;
    uint32_t *start; /* n_values + 1 entries */
    pq_use *use;
    uint32_t *n_graph_outputs;
} pq_uses;

/* Builds the use table of g (pq_malloc'ed arrays; free with pq_uses_free). NOMEM on failure. */
enum pq_status pq_uses_build(const pq_graph *g, pq_uses *u, pq_error *err);
void pq_uses_free(pq_uses *u);
/* Number of node uses of v (captures included, graph outputs not). */
static inline uint32_t pq_uses_count(const pq_uses *u, uint32_t v) {
    return u->start[v + 1] - u->start[v];
}
/* True when v is used by exactly one node slot and is not a graph output. */
bool pq_uses_single(const pq_uses *u, uint32_t v);

/* Sets input slot `slot` (< n_inputs) of node nid to value vid (PQ_NONE omits it). INTERNAL on
 * bad ids. */
enum pq_status pq_graph_set_input(pq_graph *g, uint32_t nid, uint32_t slot, uint32_t vid,
                                  pq_error *err);
/* Appends an input to node nid (arena growth; the node's inputs pointer changes). */
enum pq_status pq_graph_append_input(pq_graph *g, uint32_t nid, uint32_t vid, pq_error *err);
/* Every node input, graph output and subgraph capture (value.outer) that reads old_v reads new_v
 * instead. A graph output keeps its position; when old_v was a graph output, new_v takes its
 * place in g->outputs and old_v loses PQ_VALUE_OUTPUT. When old_v was an output and new_v is
 * neither a graph input nor already a graph output, the output NAME moves too (old_v gets a fresh
 * name, new_v takes old_v's name), so graph interfaces keep their names. Captured copies in
 * subgraphs follow (renamed; merged when a subgraph already captured new_v, which compacts that
 * subgraph's value ids). old_v == new_v is a no-op. INTERNAL on bad ids, NOMEM. */
enum pq_status pq_graph_replace_all_uses(pq_graph *g, uint32_t old_v, uint32_t new_v,
                                         pq_error *err);
/* Renames value vid (INVALID when the name exists; NULL -> fresh "_tN"), keeping the name map
 * and the names of captured copies in subgraphs consistent (INVALID when a subgraph already has a
 * value of that name). INTERNAL on a bad id, NOMEM. */
enum pq_status pq_graph_rename_value(pq_graph *g, uint32_t vid, const char *name, pq_error *err);

/* Unique names derived from hint: hint itself when free, else "hint_1", "hint_2", ... (values:
 * free in g's name map; nodes: no node of g has it). hint NULL or "" -> "_tN" for values, "node"
 * for nodes. Arena copies; NULL on allocation failure. */
const char *pq_graph_fresh_value_name(pq_graph *g, const char *hint);
const char *pq_graph_fresh_node_name(pq_graph *g, const char *hint);

/* Adds a new constant value holding t (ownership moves to the graph, also on failure). name NULL
 * or already taken: a fresh name derived from `name` ("w" -> "w_1"). */
enum pq_status pq_graph_add_constant(pq_graph *g, const char *name, pq_tensor *t, uint32_t *out_id,
                                     pq_error *err);
/* Adds a fresh value (unique name derived from hint, may be NULL) with unknown type. */
enum pq_status pq_graph_add_temp(pq_graph *g, const char *hint, uint32_t *out_id, pq_error *err);

/* Deep copy of g: values, constants (data copied), nodes, attributes, opsets, symbols and
 * subgraphs; ids are identical in the copy. Cloning a subgraph gives a copy with the same parent
 * (its captures still point there; the parent does not own the copy). NOMEM on failure (nothing
 * leaks, *out stays NULL). */
enum pq_status pq_graph_clone(const pq_graph *g, pq_graph **out, pq_error *err);

/* True when node nid has no used output per u (no node use, not a graph output, not captured). */
bool pq_uses_node_dead(const pq_graph *g, const pq_uses *u, uint32_t nid);

/* Marks nodes whose outputs are all unused (no node use, not a graph output, not captured) as
 * dead, transitively, and removes them with pq_graph_remove_nodes. Nodes with side effects do not
 * exist in piqc, so every op is removable. *removed (may be NULL) receives the count. */
enum pq_status pq_graph_remove_dead(pq_graph *g, uint32_t *removed, pq_error *err);

/* Drops values that nothing references (no producer node output, no node input, not a graph input
 * or output, not captured by a subgraph; constants included) and renumbers value ids densely,
 * keeping the order of the survivors; node input/output ids, graph inputs/outputs and subgraph
 * `outer` links are rewritten. When value_map is non-NULL it receives a pq_malloc'ed array of
 * old n_values entries: new id or PQ_NONE. */
enum pq_status pq_graph_compact(pq_graph *g, uint32_t **value_map, pq_error *err);

#endif
