/* Pattern -> rewrite rules and the one fixpoint driver every local rewrite pass uses (in the
 * spirit of tinygrad's pattern matcher): rules match at a root node and edit the graph. */
#ifndef PQ_REWRITE_H
#define PQ_REWRITE_H

#include "edit.h"

#define PQ_MATCH_MAX 8

/* What a match function captured for its rewrite: node and value ids (PQ_NONE when unused),
 * and a few numbers (e.g. folded scalars). */
typedef struct pq_match {
    uint32_t node[PQ_MATCH_MAX];
    uint32_t value[PQ_MATCH_MAX];
    float f[4];
    int64_t i[4];
} pq_match;

/* Passed to every match and rewrite call. uses describes the graph as it is now (the driver
 * rebuilds it after each rewrite); user is the pointer given to pq_rewrite_run. */
typedef struct pq_rewrite_ctx {
    pq_graph *g;
    pq_uses uses;
    void *user;
    const struct pq_rewrite_rule *rule; /* the rule being tried */
} pq_rewrite_ctx;

/* One rule. match is called only on live nodes (some output used) whose op is root (or any op
 * when root is PQ_OP_COUNT); it must not edit the graph, and returns true with m filled (the
 * driver clears m to PQ_NONE / 0 first). rewrite then edits the graph: add nodes and values,
 * rewire inputs, replace uses; it must not remove nodes or renumber ids (the driver removes dead
 * nodes between sweeps). A rewrite that returns PQ_OK must change the graph so that the rule
 * stops matching eventually, else the driver reports it. */
typedef struct pq_rewrite_rule {
    const char *name;
    enum pq_op root; /* PQ_OP_COUNT = any op */
    bool (*match)(pq_rewrite_ctx *rc, uint32_t node, pq_match *m);
    enum pq_status (*rewrite)(pq_rewrite_ctx *rc, uint32_t node, const pq_match *m, pq_error *err);
} pq_rewrite_rule;

/* Driver options (zero-initialised = defaults). */
typedef struct pq_rewrite_opts {
    uint32_t max_sweeps; /* 0 -> 100 */
    uint32_t *hits;      /* optional, n_rules counters incremented per applied rewrite */
} pq_rewrite_opts;

/* Applies rules to g until none fires. Each sweep visits the nodes present when it starts, in
 * order (nodes added by rewrites are visited in the next sweep) and, per node, tries the rules in
 * table order; the first that matches is applied and the use table is rebuilt before the next
 * match. After a sweep with changes, dead nodes are removed (pq_graph_remove_dead, which compacts
 * ids) and the graph is re-sorted (pq_graph_toposort); then the next sweep starts. *n_applied (may
 * be NULL) receives the number of rewrites. Returns the first failing rewrite's status (message
 * prefixed with the rule and node names), INVALID from toposort when a rewrite made a cycle,
 * INTERNAL naming the rule that fired last when the sweep limit is reached, NOMEM. */
enum pq_status pq_rewrite_run(pq_graph *g, const pq_rewrite_rule *rules, uint32_t n_rules,
                              void *user, uint32_t *n_applied, pq_error *err);
enum pq_status pq_rewrite_run_opts(pq_graph *g, const pq_rewrite_rule *rules, uint32_t n_rules,
                                   void *user, const pq_rewrite_opts *opts, uint32_t *n_applied,
                                   pq_error *err);

/* ---- helpers for match functions ---- */

/* True when v has exactly one node use and is not a graph output (per rc->uses). */
bool pq_match_single_use(const pq_rewrite_ctx *rc, uint32_t v);
/* Producer node of v when it has op `op` (PQ_OP_COUNT: any op), else PQ_NONE. */
uint32_t pq_match_producer(const pq_rewrite_ctx *rc, uint32_t v, enum pq_op op);
/* Input slot i of node nid, or PQ_NONE. */
uint32_t pq_match_input(const pq_rewrite_ctx *rc, uint32_t nid, uint32_t i);

#endif
