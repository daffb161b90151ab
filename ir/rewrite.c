/* The fixpoint driver of pattern -> rewrite rules: sweeps nodes, applies the first matching rule,
 * keeps the use table current, removes dead nodes and re-sorts between sweeps. */
#include "rewrite.h"

#include <string.h>

#define PQ_REWRITE_DEFAULT_SWEEPS 100

static void pq_match_clear(pq_match *m) {
    memset(m, 0, sizeof *m);
    for (int i = 0; i < PQ_MATCH_MAX; i++)
        m->node[i] = m->value[i] = PQ_NONE;
}

/* Tries the rules on node nid; *fired = the rule applied (NULL when none matched). */
static enum pq_status pq_rewrite_node(pq_rewrite_ctx *rc, const pq_rewrite_rule *rules,
                                      uint32_t n_rules, uint32_t nid, const pq_rewrite_rule **fired,
                                      pq_error *err) {
    *fired = NULL;
    if (pq_uses_node_dead(rc->g, &rc->uses, nid)) return PQ_OK;
    for (uint32_t r = 0; r < n_rules; r++) {
        const pq_rewrite_rule *rule = &rules[r];
        if (rule->root != PQ_OP_COUNT && rule->root != rc->g->nodes[nid].op) continue;
        pq_match m;
        pq_match_clear(&m);
        rc->rule = rule;
        if (!rule->match(rc, nid, &m)) continue;
        /* the node may move in memory during the rewrite: keep its name (arena) */
        const char *nname = rc->g->nodes[nid].name;
        enum pq_op op = rc->g->nodes[nid].op;
        enum pq_status st = rule->rewrite(rc, nid, &m, err);
        if (st != PQ_OK)
            return pq_error_prefix(err, "rewrite rule '%s' on node '%s' (%s): ", rule->name, nname,
                                   pq_op_name(op));
        *fired = rule;
        return PQ_OK;
    }
    return PQ_OK;
}

enum pq_status pq_rewrite_run_opts(pq_graph *g, const pq_rewrite_rule *rules, uint32_t n_rules,
                                   void *user, const pq_rewrite_opts *opts, uint32_t *n_applied,
                                   pq_error *err) {
    pq_rewrite_ctx rc;
    memset(&rc, 0, sizeof rc);
    rc.g = g;
    rc.user = user;
    uint32_t max = opts && opts->max_sweeps ? opts->max_sweeps : PQ_REWRITE_DEFAULT_SWEEPS;
    uint32_t applied = 0;
    const pq_rewrite_rule *last = NULL;
    const char *last_node = "?";
    enum pq_status st = PQ_OK;
    if (n_applied) *n_applied = 0;
    for (uint32_t sweep = 0;; sweep++) {
        bool changed = false;
        PQ_TRY_GOTO(st, pq_uses_build(g, &rc.uses, err), done);
        /* nodes added during this sweep wait for the next one: every sweep terminates */
        uint32_t n_nodes = g->n_nodes;
        for (uint32_t nid = 0; nid < n_nodes; nid++) {
            const pq_rewrite_rule *fired;
            PQ_TRY_GOTO(st, pq_rewrite_node(&rc, rules, n_rules, nid, &fired, err), done);
            if (!fired) continue;
            applied++;
            if (opts && opts->hits) opts->hits[fired - rules]++;
            changed = true;
            last = fired;
            last_node = g->nodes[nid].name;
            pq_uses_free(&rc.uses);
            PQ_TRY_GOTO(st, pq_uses_build(g, &rc.uses, err), done);
        }
        pq_uses_free(&rc.uses);
        if (!changed) break;
        PQ_TRY_GOTO(st, pq_graph_remove_dead(g, NULL, err), done);
        PQ_TRY_GOTO(st, pq_graph_toposort(g, err), done);
        if (sweep + 1 >= max) {
            st = pq_error_set(err, PQ_ERR_INTERNAL,
                              "rewrite: no fixpoint after %u sweeps; rule '%s' keeps firing "
                              "(last on node '%s')",
                              max, last ? last->name : "?", last_node);
            goto done;
        }
    }
done:
    pq_uses_free(&rc.uses);
    if (n_applied) *n_applied = applied;
    return st;
}

enum pq_status pq_rewrite_run(pq_graph *g, const pq_rewrite_rule *rules, uint32_t n_rules,
                              void *user, uint32_t *n_applied, pq_error *err) {
    return pq_rewrite_run_opts(g, rules, n_rules, user, NULL, n_applied, err);
}

bool pq_match_single_use(const pq_rewrite_ctx *rc, uint32_t v) {
    return pq_uses_single(&rc->uses, v);
}

uint32_t pq_match_producer(const pq_rewrite_ctx *rc, uint32_t v, enum pq_op op) {
    if (v >= rc->g->n_values) return PQ_NONE;
    uint32_t p = rc->g->values[v].producer;
    if (p == PQ_NONE || p >= rc->g->n_nodes) return PQ_NONE;
    return op == PQ_OP_COUNT || rc->g->nodes[p].op == op ? p : PQ_NONE;
}

uint32_t pq_match_input(const pq_rewrite_ctx *rc, uint32_t nid, uint32_t i) {
    return nid < rc->g->n_nodes ? pq_node_input(&rc->g->nodes[nid], i) : PQ_NONE;
}
