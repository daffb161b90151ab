/* Graph editing for passes: CSR use lists, input rewiring, replace-all-uses (outputs and subgraph
 * captures included), renaming with unique-name helpers, constants, dead-node removal, compaction.
 */
#include "edit.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "arena.h"

/* Subgraph `k` of node nd (in attribute order), NULL past the last one. */
static pq_graph *pq_node_sub(const pq_node *nd, uint32_t k) {
    for (uint32_t a = 0; a < nd->n_attrs; a++)
        if (nd->attrs[a].type == PQ_ATTR_GRAPH && k-- == 0) return nd->attrs[a].u.graph;
    return NULL;
}

/* ---- use lists ---- */

/* Runs BODY with v_, nid_, slot_ for every node input and subgraph capture of g. */
#define PQ_FOR_EACH_USE(g, BODY)                                                                   \
    for (uint32_t nid_ = 0; nid_ < (g)->n_nodes; nid_++) {                                         \
        const pq_node *nd_ = &(g)->nodes[nid_];                                                    \
        for (uint32_t s_ = 0; s_ < nd_->n_inputs; s_++) {                                          \
            uint32_t v_ = nd_->inputs[s_], slot_ = s_;                                             \
            BODY                                                                                   \
        }                                                                                          \
        pq_graph *sub_;                                                                            \
        for (uint32_t k_ = 0; (sub_ = pq_node_sub(nd_, k_)) != NULL; k_++)                         \
            for (uint32_t sv_ = 0; sv_ < sub_->n_values; sv_++) {                                  \
                uint32_t v_ = sub_->values[sv_].outer, slot_ = PQ_NONE;                            \
                BODY                                                                               \
            }                                                                                      \
    }

enum pq_status pq_uses_build(const pq_graph *g, pq_uses *u, pq_error *err) {
    memset(u, 0, sizeof *u);
    uint32_t nv = g->n_values;
    uint32_t *fill = NULL;
    u->n_values = nv;
    u->start = pq_calloc((size_t)nv + 1, sizeof(uint32_t));
    u->n_graph_outputs = pq_calloc(nv ? nv : 1, sizeof(uint32_t));
    if (!u->start || !u->n_graph_outputs) goto nomem;
    size_t total = 0;
    PQ_FOR_EACH_USE(g, {
        (void)slot_;
        if (v_ != PQ_NONE && v_ < nv) {
            u->start[v_ + 1]++;
            total++;
        }
    })
    for (uint32_t v = 0; v < nv; v++)
        u->start[v + 1] += u->start[v];
    u->use = pq_malloc(sizeof(pq_use) * (total ? total : 1));
    fill = pq_malloc(sizeof(uint32_t) * (nv ? nv : 1));
    if (!u->use || !fill) goto nomem;
    if (nv) memcpy(fill, u->start, sizeof(uint32_t) * nv);
    PQ_FOR_EACH_USE(g, {
        if (v_ != PQ_NONE && v_ < nv) {
            pq_use *e = &u->use[fill[v_]++];
            e->node = nid_;
            e->slot = slot_;
        }
    })
    for (uint32_t i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] < nv) u->n_graph_outputs[g->outputs[i]]++;
    pq_free(fill);
    return PQ_OK;
nomem:
    pq_free(fill);
    pq_uses_free(u);
    return pq_error_nomem(err, "use lists");
}

void pq_uses_free(pq_uses *u) {
    if (!u) return;
    pq_free(u->start);
    pq_free(u->use);
    pq_free(u->n_graph_outputs);
    memset(u, 0, sizeof *u);
}

bool pq_uses_single(const pq_uses *u, uint32_t v) {
    return v < u->n_values && pq_uses_count(u, v) == 1 && u->n_graph_outputs[v] == 0;
}

bool pq_uses_node_dead(const pq_graph *g, const pq_uses *u, uint32_t nid) {
    const pq_node *nd = &g->nodes[nid];
    for (uint32_t o = 0; o < nd->n_outputs; o++) {
        uint32_t v = nd->outputs[o];
        if (v == PQ_NONE || v >= u->n_values) continue;
        if (pq_uses_count(u, v) > 0 || u->n_graph_outputs[v] > 0) return false;
    }
    return true;
}

/* ---- inputs ---- */

enum pq_status pq_graph_set_input(pq_graph *g, uint32_t nid, uint32_t slot, uint32_t vid,
                                  pq_error *err) {
    if (nid >= g->n_nodes)
        return pq_error_set(err, PQ_ERR_INTERNAL, "set_input: bad node id %u", nid);
    pq_node *nd = &g->nodes[nid];
    if (slot >= nd->n_inputs)
        return pq_error_set(err, PQ_ERR_INTERNAL,
                            "set_input: node '%s' (%s) has %u inputs, slot %u", nd->name,
                            pq_op_name(nd->op), nd->n_inputs, slot);
    if (vid != PQ_NONE && vid >= g->n_values)
        return pq_error_set(err, PQ_ERR_INTERNAL, "set_input: node '%s': bad value id %u", nd->name,
                            vid);
    nd->inputs[slot] = vid;
    return PQ_OK;
}

enum pq_status pq_graph_append_input(pq_graph *g, uint32_t nid, uint32_t vid, pq_error *err) {
    if (nid >= g->n_nodes)
        return pq_error_set(err, PQ_ERR_INTERNAL, "append_input: bad node id %u", nid);
    if (vid != PQ_NONE && vid >= g->n_values)
        return pq_error_set(err, PQ_ERR_INTERNAL, "append_input: node '%s': bad value id %u",
                            g->nodes[nid].name, vid);
    pq_node *nd = &g->nodes[nid];
    uint32_t *in = pq_graph_alloc(g, sizeof(uint32_t) * ((size_t)nd->n_inputs + 1));
    if (!in) return pq_error_nomem(err, "node inputs");
    if (nd->n_inputs) memcpy(in, nd->inputs, sizeof(uint32_t) * nd->n_inputs);
    in[nd->n_inputs] = vid;
    nd->inputs = in;
    nd->n_inputs++;
    return PQ_OK;
}

/* ---- names ---- */

/* hint, hint_1, hint_2, ...: the first name free in g (arena copy, NULL on NOMEM). */
static const char *pq_fresh_value_candidate(pq_graph *g, const char *hint) {
    if (pq_name_map_get(g->names, hint) == UINT32_MAX) return pq_graph_strdup(g, hint);
    size_t len = strlen(hint) + 16;
    char *buf = pq_malloc(len);
    if (!buf) return NULL;
    const char *r = NULL;
    for (uint32_t k = 1; k != 0; k++) {
        snprintf(buf, len, "%s_%u", hint, k);
        if (pq_name_map_get(g->names, buf) == UINT32_MAX) {
            r = pq_graph_strdup(g, buf);
            break;
        }
    }
    pq_free(buf);
    return r;
}

const char *pq_graph_fresh_value_name(pq_graph *g, const char *hint) {
    if (hint && *hint) return pq_fresh_value_candidate(g, hint);
    char gen[32];
    do
        snprintf(gen, sizeof gen, "_t%u", g->name_counter++);
    while (pq_name_map_get(g->names, gen) != UINT32_MAX);
    return pq_graph_strdup(g, gen);
}

const char *pq_graph_fresh_node_name(pq_graph *g, const char *hint) {
    if (!hint || !*hint) hint = "node";
    size_t hl = strlen(hint);
    bool exact = false;
    uint64_t maxk = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const char *nm = g->nodes[i].name;
        if (!nm || strncmp(nm, hint, hl) != 0) continue;
        if (nm[hl] == '\0') {
            exact = true;
            continue;
        }
        if (nm[hl] != '_' || nm[hl + 1] < '0' || nm[hl + 1] > '9') continue;
        uint64_t k = 0;
        const char *p = nm + hl + 1;
        while (*p >= '0' && *p <= '9' && k < UINT32_MAX)
            k = k * 10 + (uint64_t)(*p++ - '0');
        if (*p == '\0' && k > maxk) maxk = k;
    }
    if (!exact) return pq_graph_strdup(g, hint);
    size_t len = hl + 24;
    char *buf = pq_malloc(len);
    if (!buf) return NULL;
    snprintf(buf, len, "%s_%llu", hint, (unsigned long long)(maxk + 1));
    const char *r = pq_graph_strdup(g, buf);
    pq_free(buf);
    return r;
}

/* INVALID when a subgraph capturing vid (transitively) has another value named nn. */
static enum pq_status pq_rename_check(const pq_graph *g, uint32_t vid, const char *nn,
                                      pq_error *err) {
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        pq_graph *sub;
        for (uint32_t k = 0; (sub = pq_node_sub(&g->nodes[i], k)) != NULL; k++)
            for (uint32_t sv = 0; sv < sub->n_values; sv++) {
                if (sub->values[sv].outer != vid) continue;
                uint32_t o = pq_graph_find_value(sub, nn);
                if (o != PQ_NONE && o != sv)
                    return pq_error_set(err, PQ_ERR_INVALID,
                                        "cannot rename '%s' to '%s': a subgraph of node '%s' "
                                        "already has a value named '%s'",
                                        g->values[vid].name, nn, g->nodes[i].name, nn);
                PQ_TRY(pq_rename_check(sub, sv, nn, err));
            }
    }
    return PQ_OK;
}

/* Renames vid to nn in g and in every subgraph copy capturing it (checked beforehand). */
static enum pq_status pq_rename_apply(pq_graph *g, uint32_t vid, const char *nn, pq_error *err) {
    const char *s = pq_graph_strdup(g, nn);
    if (!s) return pq_error_nomem(err, "value name");
    pq_name_map_remove(g->names, g->values[vid].name);
    if (pq_name_map_put(g->names, s, vid) != 0) return pq_error_nomem(err, "names");
    g->values[vid].name = s;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        pq_graph *sub;
        for (uint32_t k = 0; (sub = pq_node_sub(&g->nodes[i], k)) != NULL; k++)
            for (uint32_t sv = 0; sv < sub->n_values; sv++)
                if (sub->values[sv].outer == vid) PQ_TRY(pq_rename_apply(sub, sv, nn, err));
    }
    return PQ_OK;
}

enum pq_status pq_graph_rename_value(pq_graph *g, uint32_t vid, const char *name, pq_error *err) {
    if (vid >= g->n_values)
        return pq_error_set(err, PQ_ERR_INTERNAL, "rename_value: bad value id %u", vid);
    const char *nn;
    if (!name || !*name) {
        nn = pq_graph_fresh_value_name(g, NULL);
        if (!nn) return pq_error_nomem(err, "value name");
    } else {
        if (strcmp(name, g->values[vid].name) == 0) return PQ_OK;
        if (pq_graph_find_value(g, name) != PQ_NONE)
            return pq_error_set(err, PQ_ERR_INVALID, "cannot rename '%s': value '%s' exists",
                                g->values[vid].name, name);
        nn = name;
    }
    PQ_TRY(pq_rename_check(g, vid, nn, err));
    return pq_rename_apply(g, vid, nn, err);
}

/* ---- replace all uses ---- */

/* Redirects the subgraph captures of old_v to new_v (renamed like new_v; merged into an
 * existing capture of new_v, which compacts that subgraph). */
static enum pq_status pq_redirect_captures(pq_graph *g, uint32_t old_v, uint32_t new_v,
                                           pq_error *err) {
    const char *nn = g->values[new_v].name;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        pq_graph *sub;
        for (uint32_t k = 0; (sub = pq_node_sub(&g->nodes[i], k)) != NULL; k++) {
            for (uint32_t sv = 0; sv < sub->n_values; sv++) {
                if (sub->values[sv].outer != old_v) continue;
                uint32_t have = PQ_NONE;
                for (uint32_t j = 0; j < sub->n_values; j++)
                    if (sub->values[j].outer == new_v) have = j;
                if (have != PQ_NONE) {
                    PQ_TRY(pq_graph_replace_all_uses(sub, sv, have, err));
                    sub->values[sv].outer = PQ_NONE;
                    PQ_TRY(pq_graph_compact(sub, NULL, err));
                    sv = UINT32_MAX; /* ids moved: rescan from 0 */
                    continue;
                }
                uint32_t o = pq_graph_find_value(sub, nn);
                if (o != PQ_NONE && o != sv)
                    return pq_error_set(err, PQ_ERR_INVALID,
                                        "cannot redirect a capture of '%s' to '%s': a subgraph "
                                        "of node '%s' already has a value named '%s'",
                                        g->values[old_v].name, nn, g->nodes[i].name, nn);
                PQ_TRY(pq_rename_check(sub, sv, nn, err));
                PQ_TRY(pq_rename_apply(sub, sv, nn, err));
                sub->values[sv].outer = new_v;
            }
        }
    }
    return PQ_OK;
}

enum pq_status pq_graph_replace_all_uses(pq_graph *g, uint32_t old_v, uint32_t new_v,
                                         pq_error *err) {
    if (old_v >= g->n_values || new_v >= g->n_values)
        return pq_error_set(err, PQ_ERR_INTERNAL, "replace_all_uses: bad value ids %u -> %u", old_v,
                            new_v);
    if (old_v == new_v) return PQ_OK;
    const pq_value *ov = &g->values[old_v], *nv = &g->values[new_v];
    bool move_name = (ov->flags & PQ_VALUE_OUTPUT) &&
                     !(nv->flags & (PQ_VALUE_INPUT | PQ_VALUE_OUTPUT)) && nv->outer == PQ_NONE;
    if (move_name) {
        const char *oname = ov->name;
        const char *tmp = pq_graph_fresh_value_name(g, oname);
        if (!tmp) return pq_error_nomem(err, "value name");
        PQ_TRY(pq_rename_check(g, old_v, tmp, err));
        PQ_TRY(pq_rename_check(g, new_v, oname, err));
        PQ_TRY(pq_rename_apply(g, old_v, tmp, err));
        PQ_TRY(pq_rename_apply(g, new_v, oname, err));
    }
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        pq_node *nd = &g->nodes[i];
        for (uint32_t s = 0; s < nd->n_inputs; s++)
            if (nd->inputs[s] == old_v) nd->inputs[s] = new_v;
    }
    bool was_output = false;
    for (uint32_t i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == old_v) {
            g->outputs[i] = new_v;
            was_output = true;
        }
    if (was_output) {
        g->values[old_v].flags &= ~(uint32_t)PQ_VALUE_OUTPUT;
        g->values[new_v].flags |= PQ_VALUE_OUTPUT;
    }
    return pq_redirect_captures(g, old_v, new_v, err);
}

/* ---- new values ---- */

enum pq_status pq_graph_add_constant(pq_graph *g, const char *name, pq_tensor *t, uint32_t *out_id,
                                     pq_error *err) {
    if (!t) return pq_error_set(err, PQ_ERR_INTERNAL, "add_constant: no tensor");
    const char *nm = pq_graph_fresh_value_name(g, name);
    if (!nm) {
        pq_tensor_destroy(t);
        return pq_error_nomem(err, "value name");
    }
    pq_shape sh = pq_shape_from_dims(t->rank, t->dims);
    uint32_t id;
    enum pq_status st = pq_graph_add_value(g, nm, t->dtype, &sh, &id, err);
    if (st != PQ_OK) {
        pq_tensor_destroy(t);
        return st;
    }
    PQ_TRY(pq_graph_set_constant(g, id, t, err));
    if (out_id) *out_id = id;
    return PQ_OK;
}

enum pq_status pq_graph_add_temp(pq_graph *g, const char *hint, uint32_t *out_id, pq_error *err) {
    const char *nm = pq_graph_fresh_value_name(g, hint);
    if (!nm) return pq_error_nomem(err, "value name");
    return pq_graph_add_value(g, nm, PQ_DTYPE_UNDEFINED, NULL, out_id, err);
}

/* ---- removal ---- */

/* Decrements the live-use count of every value node nid reads; queues producers that die. */
static void pq_dead_release(const pq_graph *g, uint32_t nid, uint32_t *live, bool *dead,
                            uint32_t *queue, uint32_t *tail) {
    const pq_node *nd = &g->nodes[nid];
    uint32_t nin = nd->n_inputs;
    for (uint32_t j = 0;; j++) {
        uint32_t v = PQ_NONE;
        if (j < nin) {
            v = nd->inputs[j];
        } else {
            /* captures: walk subgraph values after the inputs */
            uint32_t r = j - nin;
            pq_graph *sub = NULL;
            for (uint32_t k = 0; (sub = pq_node_sub(nd, k)) != NULL; k++) {
                if (r < sub->n_values) break;
                r -= sub->n_values;
            }
            if (!sub) break;
            v = sub->values[r].outer;
        }
        if (v == PQ_NONE || v >= g->n_values || live[v] == 0) continue;
        if (--live[v] != 0) continue;
        uint32_t p = g->values[v].producer;
        if (p == PQ_NONE || p >= g->n_nodes || dead[p]) continue;
        const pq_node *pn = &g->nodes[p];
        bool all = true;
        for (uint32_t o = 0; o < pn->n_outputs && all; o++)
            if (pn->outputs[o] != PQ_NONE && live[pn->outputs[o]] != 0) all = false;
        if (all) {
            dead[p] = true;
            queue[(*tail)++] = p;
        }
    }
}

enum pq_status pq_graph_remove_dead(pq_graph *g, uint32_t *removed, pq_error *err) {
    if (removed) *removed = 0;
    pq_uses u;
    PQ_TRY(pq_uses_build(g, &u, err));
    enum pq_status st = PQ_OK;
    uint32_t n = g->n_nodes;
    uint32_t *live = pq_malloc(sizeof(uint32_t) * (g->n_values ? g->n_values : 1));
    bool *dead = pq_calloc(n ? n : 1, sizeof(bool));
    uint32_t *queue = pq_malloc(sizeof(uint32_t) * (n ? n : 1));
    if (!live || !dead || !queue) {
        st = pq_error_nomem(err, "remove_dead");
        goto done;
    }
    for (uint32_t v = 0; v < g->n_values; v++)
        live[v] = pq_uses_count(&u, v) + u.n_graph_outputs[v];
    uint32_t head = 0, tail = 0;
    for (uint32_t i = 0; i < n; i++)
        if (pq_uses_node_dead(g, &u, i)) {
            dead[i] = true;
            queue[tail++] = i;
        }
    while (head < tail)
        pq_dead_release(g, queue[head++], live, dead, queue, &tail);
    if (tail > 0) PQ_TRY_GOTO(st, pq_graph_remove_nodes(g, dead, err), done);
    if (removed) *removed = tail;
done:
    pq_uses_free(&u);
    pq_free(live);
    pq_free(dead);
    pq_free(queue);
    return st;
}

enum pq_status pq_graph_compact(pq_graph *g, uint32_t **value_map, pq_error *err) {
    if (value_map) *value_map = NULL;
    uint32_t nv = g->n_values;
    uint32_t *map = pq_malloc(sizeof(uint32_t) * (nv ? nv : 1));
    pq_name_map *names = pq_name_map_create();
    if (!map || !names) goto nomem;
    /* mark referenced values (map[v] = 1) */
    for (uint32_t v = 0; v < nv; v++) {
        const pq_value *val = &g->values[v];
        map[v] = val->producer != PQ_NONE || (val->flags & (PQ_VALUE_INPUT | PQ_VALUE_OUTPUT));
    }
    for (uint32_t i = 0; i < g->n_inputs; i++)
        if (g->inputs[i] < nv) map[g->inputs[i]] = 1;
    for (uint32_t i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] < nv) map[g->outputs[i]] = 1;
    PQ_FOR_EACH_USE(g, {
        (void)slot_;
        if (v_ != PQ_NONE && v_ < nv) map[v_] = 1;
    })
    uint32_t w = 0;
    for (uint32_t v = 0; v < nv; v++) {
        if (!map[v]) {
            map[v] = PQ_NONE;
            continue;
        }
        map[v] = w;
        if (pq_name_map_put(names, g->values[v].name, w) != 0) goto nomem;
        w++;
    }
    /* nothing can fail from here on */
    for (uint32_t v = 0; v < nv; v++) {
        if (map[v] == PQ_NONE) {
            pq_tensor_destroy(g->values[v].constant);
            continue;
        }
        g->values[map[v]] = g->values[v];
    }
    g->n_values = w;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        pq_node *nd = &g->nodes[i];
        for (uint32_t s = 0; s < nd->n_inputs; s++)
            if (nd->inputs[s] != PQ_NONE && nd->inputs[s] < nv) nd->inputs[s] = map[nd->inputs[s]];
        for (uint32_t s = 0; s < nd->n_outputs; s++)
            if (nd->outputs[s] != PQ_NONE && nd->outputs[s] < nv)
                nd->outputs[s] = map[nd->outputs[s]];
        pq_graph *sub;
        for (uint32_t k = 0; (sub = pq_node_sub(nd, k)) != NULL; k++)
            for (uint32_t sv = 0; sv < sub->n_values; sv++)
                if (sub->values[sv].outer != PQ_NONE && sub->values[sv].outer < nv)
                    sub->values[sv].outer = map[sub->values[sv].outer];
    }
    for (uint32_t i = 0; i < g->n_inputs; i++)
        if (g->inputs[i] < nv) g->inputs[i] = map[g->inputs[i]];
    for (uint32_t i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] < nv) g->outputs[i] = map[g->outputs[i]];
    pq_name_map_destroy(g->names);
    g->names = names;
    if (value_map)
        *value_map = map;
    else
        pq_free(map);
    return PQ_OK;
nomem:
    pq_free(map);
    pq_name_map_destroy(names);
    return pq_error_nomem(err, "compact");
}
