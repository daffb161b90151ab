/* cse: common-subexpression elimination. Identical small constants (same dtype, shape and bytes,
 * <= 4 KiB) merge first; then nodes with the same op, inputs and attributes merge, in one
 * topological sweep (merging rewires later nodes, so chains of duplicates collapse at once).
 * Subgraph-owning nodes and Dropout (random when training) never merge. */
#include <string.h>

#include "canon.h"

#define PQ_CSE_MAX_CONST_BYTES 4096

static uint64_t pq_cse_mix(uint64_t h, uint64_t x) {
    h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0x100000001b3ull;
}

static uint64_t pq_cse_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static bool pq_cse_tensor_eq(const pq_tensor *a, const pq_tensor *b) {
    if (a->dtype != b->dtype || a->rank != b->rank || a->nbytes != b->nbytes) return false;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d]) return false;
    return a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0;
}

static uint64_t pq_cse_tensor_hash(const pq_tensor *t) {
    uint64_t h = pq_cse_mix(1469598103934665603ull, (uint64_t)t->dtype);
    h = pq_cse_mix(h, (uint64_t)t->rank);
    for (int d = 0; d < t->rank; d++)
        h = pq_cse_mix(h, (uint64_t)t->dims[d]);
    return pq_cse_bytes(h, t->data, t->nbytes);
}

/* Deep equality of two attributes of the same name (floats by bits, tensors by bytes). */
static bool pq_cse_attr_eq(const pq_attr *a, const pq_attr *b) {
    if (a->type != b->type) return false;
    switch (a->type) {
    case PQ_ATTR_INT:
        return a->u.i == b->u.i;
    case PQ_ATTR_FLOAT:
        return memcmp(&a->u.f, &b->u.f, sizeof a->u.f) == 0;
    case PQ_ATTR_STRING:
        return strcmp(a->u.s, b->u.s) == 0;
    case PQ_ATTR_INTS:
        return a->u.ints.n == b->u.ints.n &&
               (a->u.ints.n == 0 ||
                memcmp(a->u.ints.v, b->u.ints.v, sizeof(int64_t) * a->u.ints.n) == 0);
    case PQ_ATTR_FLOATS:
        return a->u.floats.n == b->u.floats.n &&
               (a->u.floats.n == 0 ||
                memcmp(a->u.floats.v, b->u.floats.v, sizeof(float) * a->u.floats.n) == 0);
    case PQ_ATTR_STRINGS:
        if (a->u.strings.n != b->u.strings.n) return false;
        for (uint32_t i = 0; i < a->u.strings.n; i++)
            if (strcmp(a->u.strings.v[i], b->u.strings.v[i]) != 0) return false;
        return true;
    case PQ_ATTR_TENSOR:
        return pq_cse_tensor_eq(a->u.tensor, b->u.tensor);
    case PQ_ATTR_GRAPH:
        return false;
    }
    return false;
}

static bool pq_cse_node_eq(const pq_node *a, const pq_node *b) {
    if (a->op != b->op || a->n_inputs != b->n_inputs || a->n_outputs != b->n_outputs ||
        a->n_attrs != b->n_attrs)
        return false;
    for (uint32_t i = 0; i < a->n_inputs; i++)
        if (a->inputs[i] != b->inputs[i]) return false;
    for (uint32_t o = 0; o < a->n_outputs; o++)
        if ((a->outputs[o] == PQ_NONE) != (b->outputs[o] == PQ_NONE)) return false;
    for (uint32_t k = 0; k < a->n_attrs; k++) {
        const pq_attr *bb = pq_node_attr(b, a->attrs[k].name);
        if (!bb || !pq_cse_attr_eq(&a->attrs[k], bb)) return false;
    }
    return true;
}

static uint64_t pq_cse_node_hash(const pq_node *n) {
    uint64_t h = pq_cse_mix(1469598103934665603ull, (uint64_t)n->op);
    for (uint32_t i = 0; i < n->n_inputs; i++)
        h = pq_cse_mix(h, n->inputs[i]);
    h = pq_cse_mix(h, n->n_outputs);
    /* attributes are order-insensitive: sum of per-attribute name hashes */
    uint64_t ah = 0;
    for (uint32_t k = 0; k < n->n_attrs; k++) {
        const pq_attr *a = &n->attrs[k];
        uint64_t x = pq_cse_bytes(1469598103934665603ull, a->name, strlen(a->name));
        if (a->type == PQ_ATTR_INT) x = pq_cse_mix(x, (uint64_t)a->u.i);
        ah += x;
    }
    return pq_cse_mix(h, ah);
}

/* Open-addressing table of ids keyed by 64-bit hashes. */
typedef struct {
    uint64_t *key;
    uint32_t *id;
    uint32_t cap;
} pq_cse_table;

static enum pq_status pq_cse_table_init(pq_cse_table *t, uint32_t n, pq_error *err) {
    t->cap = 16;
    while (t->cap < 2 * n + 2)
        t->cap *= 2;
    t->key = pq_malloc(sizeof *t->key * t->cap);
    t->id = pq_malloc(sizeof *t->id * t->cap);
    if (!t->key || !t->id) {
        pq_free(t->key);
        pq_free(t->id);
        return pq_error_nomem(err, "cse table");
    }
    for (uint32_t i = 0; i < t->cap; i++)
        t->id[i] = PQ_NONE;
    return PQ_OK;
}

static void pq_cse_table_free(pq_cse_table *t) {
    pq_free(t->key);
    pq_free(t->id);
}

/* Whether outputs of a duplicate may be redirected to those of the kept one: graph-output names
 * must survive, so a duplicate output that is a graph output may only move to a kept value that
 * is neither a graph input nor a graph output (replace_all_uses then moves the name). */
static bool pq_cse_may_replace(const pq_graph *g, uint32_t dup, uint32_t keep) {
    if (dup == PQ_NONE || dup == keep) return true;
    if (!(g->values[dup].flags & PQ_VALUE_OUTPUT)) return true;
    return !(g->values[keep].flags & (PQ_VALUE_OUTPUT | PQ_VALUE_INPUT));
}

static enum pq_status pq_cse_constants(pq_graph *g, uint32_t *merged, pq_error *err) {
    pq_cse_table t;
    PQ_TRY(pq_cse_table_init(&t, g->n_values, err));
    enum pq_status st = PQ_OK;
    for (uint32_t v = 0; v < g->n_values; v++) {
        const pq_tensor *c = g->values[v].constant;
        if (!c || c->nbytes > PQ_CSE_MAX_CONST_BYTES) continue;
        if (g->values[v].flags & PQ_VALUE_INPUT) continue;
        uint64_t h = pq_cse_tensor_hash(c);
        uint32_t i = (uint32_t)h & (t.cap - 1);
        for (; t.id[i] != PQ_NONE; i = (i + 1) & (t.cap - 1)) {
            if (t.key[i] != h) continue;
            uint32_t k = t.id[i];
            if (!pq_cse_tensor_eq(g->values[k].constant, c)) continue;
            if (!pq_cse_may_replace(g, v, k)) continue;
            if ((g->values[v].flags & PQ_VALUE_OUTPUT) && (g->values[k].flags & PQ_VALUE_OUTPUT))
                continue;
            PQ_TRY_GOTO(st, pq_graph_replace_all_uses(g, v, k, err), cleanup);
            (*merged)++;
            break;
        }
        if (t.id[i] == PQ_NONE) {
            t.key[i] = h;
            t.id[i] = v;
        }
    }
cleanup:
    pq_cse_table_free(&t);
    return st;
}

static enum pq_status pq_cse_nodes(pq_graph *g, uint32_t *merged, pq_error *err) {
    pq_cse_table t;
    PQ_TRY(pq_cse_table_init(&t, g->n_nodes, err));
    enum pq_status st = PQ_OK;
    for (uint32_t nid = 0; nid < g->n_nodes; nid++) {
        const pq_node *n = &g->nodes[nid];
        if (pq_op_get(n->op)->flags & PQ_OPF_SUBGRAPH) continue;
        if (n->op == PQ_OP_DROPOUT) continue; /* random in training mode */
        uint64_t h = pq_cse_node_hash(n);
        uint32_t i = (uint32_t)h & (t.cap - 1);
        bool done = false;
        for (; t.id[i] != PQ_NONE; i = (i + 1) & (t.cap - 1)) {
            if (t.key[i] != h) continue;
            const pq_node *k = &g->nodes[t.id[i]];
            if (!pq_cse_node_eq(k, n)) continue;
            bool ok = true;
            for (uint32_t o = 0; o < n->n_outputs && ok; o++)
                ok = pq_cse_may_replace(g, n->outputs[o], k->outputs[o]);
            if (!ok) continue;
            uint32_t keep = t.id[i];
            for (uint32_t o = 0; o < g->nodes[nid].n_outputs; o++) {
                uint32_t dv = g->nodes[nid].outputs[o], kv = g->nodes[keep].outputs[o];
                if (dv == PQ_NONE) continue;
                PQ_TRY_GOTO(st, pq_graph_replace_all_uses(g, dv, kv, err), cleanup);
            }
            (*merged)++;
            done = true;
            break;
        }
        if (!done) {
            t.key[i] = h;
            t.id[i] = nid;
        }
    }
cleanup:
    pq_cse_table_free(&t);
    return st;
}

static enum pq_status pq_cse_run(pq_graph *g, const pq_pass_opts *opts, pq_pass_ctx *ctx,
                                 pq_error *err) {
    (void)opts;
    uint32_t consts = 0, nodes = 0, removed = 0;
    PQ_TRY(pq_graph_toposort(g, err));
    PQ_TRY(pq_cse_constants(g, &consts, err));
    PQ_TRY(pq_cse_nodes(g, &nodes, err));
    PQ_TRY(pq_graph_remove_dead(g, &removed, err));
    PQ_TRY(pq_graph_compact(g, NULL, err));
    pq_pass_log(ctx, 1, "merged %u constant%s and %u node%s", consts, consts == 1 ? "" : "s", nodes,
                nodes == 1 ? "" : "s");
    return PQ_OK;
}

const pq_pass pq_pass_cse = {
    .name = "cse",
    .summary = "merge identical nodes (same op, inputs, attributes) and identical small constants",
    .options = NULL,
    .n_options = 0,
    .run = pq_cse_run,
};
