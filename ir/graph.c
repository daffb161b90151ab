/* Graph construction and queries: values, nodes, attributes, symbols, opsets, subgraph
 * captures, topological sorting and node removal. */
#include "graph.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "arena.h"
#include "edit.h"

static enum pq_status pq_grow(void **arr, uint32_t *cap, uint32_t need, size_t elem,
                              pq_error *err) {
    if (need <= *cap) return PQ_OK;
    uint32_t ncap = *cap ? *cap : 16;
    while (ncap < need) {
        if (ncap > UINT32_MAX / 2) return pq_error_set(err, PQ_ERR_INVALID, "graph too large");
        ncap *= 2;
    }
    void *p = pq_realloc(*arr, (size_t)ncap * elem);
    if (!p) return pq_error_nomem(err, "graph arrays");
    *arr = p;
    *cap = ncap;
    return PQ_OK;
}

pq_graph *pq_graph_create(pq_graph *parent, pq_error *err) {
    pq_graph *g = pq_calloc(1, sizeof *g);
    if (!g) goto fail;
    g->parent = parent;
    g->arena = pq_arena_create();
    g->names = pq_name_map_create();
    if (!g->arena || !g->names) goto fail;
    return g;
fail:
    pq_graph_destroy(g);
    pq_error_nomem(err, "graph");
    return NULL;
}

static void pq_attr_release(pq_attr *a) {
    if (a->type == PQ_ATTR_TENSOR)
        pq_tensor_destroy(a->u.tensor);
    else if (a->type == PQ_ATTR_GRAPH)
        pq_graph_destroy(a->u.graph);
    a->u.tensor = NULL;
}

void pq_graph_destroy(pq_graph *g) {
    if (!g) return;
    for (uint32_t i = 0; i < g->n_values; i++)
        pq_tensor_destroy(g->values[i].constant);
    for (uint32_t i = 0; i < g->n_nodes; i++)
        for (uint32_t a = 0; a < g->nodes[i].n_attrs; a++)
            pq_attr_release(&g->nodes[i].attrs[a]);
    pq_free(g->values);
    pq_free(g->nodes);
    pq_free(g->inputs);
    pq_free(g->outputs);
    pq_free(g->symbols);
    pq_name_map_destroy(g->names);
    pq_arena_destroy(g->arena);
    pq_free(g);
}

void *pq_graph_alloc(pq_graph *g, size_t n) {
    return pq_arena_alloc(g->arena, n);
}

const char *pq_graph_strdup(pq_graph *g, const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = pq_arena_alloc(g->arena, n);
    if (d) memcpy(d, s, n);
    return d;
}

enum pq_status pq_graph_add_value(pq_graph *g, const char *name, enum pq_dtype dtype,
                                  const pq_shape *shape, uint32_t *out_id, pq_error *err) {
    char gen[32];
    if (!name || !*name) {
        do
            snprintf(gen, sizeof gen, "_t%u", g->name_counter++);
        while (pq_name_map_get(g->names, gen) != UINT32_MAX);
        name = gen;
    } else if (pq_name_map_get(g->names, name) != UINT32_MAX) {
        return pq_error_set(err, PQ_ERR_INVALID, "value '%s' is defined twice", name);
    }
    PQ_TRY(pq_grow((void **)&g->values, &g->cap_values, g->n_values + 1, sizeof(pq_value), err));
    pq_value *v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->name = pq_graph_strdup(g, name);
    if (!v->name) return pq_error_nomem(err, "value name");
    v->dtype = dtype;
    v->shape = shape ? *shape : pq_shape_unknown();
    v->producer = PQ_NONE;
    v->outer = PQ_NONE;
    if (pq_name_map_put(g->names, v->name, g->n_values) != 0) return pq_error_nomem(err, "names");
    if (out_id) *out_id = g->n_values;
    g->n_values++;
    return PQ_OK;
}

uint32_t pq_graph_find_value(const pq_graph *g, const char *name) {
    return pq_name_map_get(g->names, name);
}

enum pq_status pq_graph_set_constant(pq_graph *g, uint32_t vid, pq_tensor *t, pq_error *err) {
    if (vid >= g->n_values) {
        pq_tensor_destroy(t);
        return pq_error_set(err, PQ_ERR_INTERNAL, "set_constant: bad value id %u", vid);
    }
    pq_value *v = &g->values[vid];
    pq_tensor_destroy(v->constant);
    v->constant = t;
    v->dtype = t->dtype;
    v->shape = pq_shape_from_dims(t->rank, t->dims);
    return PQ_OK;
}

enum pq_status pq_graph_add_input(pq_graph *g, uint32_t vid, pq_error *err) {
    PQ_TRY(pq_grow((void **)&g->inputs, &g->cap_inputs, g->n_inputs + 1, sizeof(uint32_t), err));
    g->inputs[g->n_inputs++] = vid;
    g->values[vid].flags |= PQ_VALUE_INPUT;
    return PQ_OK;
}

enum pq_status pq_graph_add_output(pq_graph *g, uint32_t vid, pq_error *err) {
    PQ_TRY(pq_grow((void **)&g->outputs, &g->cap_outputs, g->n_outputs + 1, sizeof(uint32_t), err));
    g->outputs[g->n_outputs++] = vid;
    g->values[vid].flags |= PQ_VALUE_OUTPUT;
    return PQ_OK;
}

enum pq_status pq_graph_add_node(pq_graph *g, enum pq_op op, const char *name,
                                 const uint32_t *inputs, uint32_t n_inputs, const uint32_t *outputs,
                                 uint32_t n_outputs, uint32_t *out_id, pq_error *err) {
    if ((unsigned)op >= PQ_OP_COUNT) return pq_error_set(err, PQ_ERR_INTERNAL, "bad op %d", op);
    for (uint32_t i = 0; i < n_inputs; i++)
        if (inputs[i] != PQ_NONE && inputs[i] >= g->n_values)
            return pq_error_set(err, PQ_ERR_INTERNAL, "node input id %u out of range", inputs[i]);
    for (uint32_t i = 0; i < n_outputs; i++) {
        if (outputs[i] == PQ_NONE) continue;
        if (outputs[i] >= g->n_values)
            return pq_error_set(err, PQ_ERR_INTERNAL, "node output id %u out of range", outputs[i]);
        const pq_value *v = &g->values[outputs[i]];
        if (v->producer != PQ_NONE || v->constant || (v->flags & PQ_VALUE_INPUT))
            return pq_error_set(err, PQ_ERR_INVALID, "value '%s' is defined twice", v->name);
    }
    PQ_TRY(pq_grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof(pq_node), err));
    pq_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    char gen[48];
    if (!name || !*name) {
        snprintf(gen, sizeof gen, "%s_%u", pq_op_name(op), g->n_nodes);
        name = gen;
    }
    n->name = pq_graph_strdup(g, name);
    n->op = op;
    n->inputs = pq_graph_alloc(g, sizeof(uint32_t) * (n_inputs ? n_inputs : 1));
    n->outputs = pq_graph_alloc(g, sizeof(uint32_t) * (n_outputs ? n_outputs : 1));
    if (!n->name || !n->inputs || !n->outputs) return pq_error_nomem(err, "node");
    if (n_inputs) memcpy(n->inputs, inputs, sizeof(uint32_t) * n_inputs);
    if (n_outputs) memcpy(n->outputs, outputs, sizeof(uint32_t) * n_outputs);
    n->n_inputs = n_inputs;
    n->n_outputs = n_outputs;
    for (uint32_t i = 0; i < n_outputs; i++) {
        if (outputs[i] == PQ_NONE) continue;
        g->values[outputs[i]].producer = g->n_nodes;
        g->values[outputs[i]].producer_slot = i;
    }
    if (out_id) *out_id = g->n_nodes;
    g->n_nodes++;
    return PQ_OK;
}

/* Returns the slot for attribute name on node nid (new or existing, old content released). */
static pq_attr *pq_node_attr_slot(pq_graph *g, uint32_t nid, const char *name, pq_error *err) {
    if (nid >= g->n_nodes) {
        pq_error_set(err, PQ_ERR_INTERNAL, "attribute on bad node id %u", nid);
        return NULL;
    }
    pq_node *n = &g->nodes[nid];
    for (uint32_t i = 0; i < n->n_attrs; i++) {
        if (strcmp(n->attrs[i].name, name) == 0) {
            pq_attr_release(&n->attrs[i]);
            return &n->attrs[i];
        }
    }
    if (n->n_attrs == n->cap_attrs) { /* arena arrays grow by doubling: linear total cost */
        uint32_t cap = n->cap_attrs ? n->cap_attrs * 2 : 4;
        pq_attr *na = pq_graph_alloc(g, sizeof(pq_attr) * cap);
        if (!na) {
            pq_error_nomem(err, "attributes");
            return NULL;
        }
        if (n->n_attrs) memcpy(na, n->attrs, sizeof(pq_attr) * n->n_attrs);
        n->attrs = na;
        n->cap_attrs = cap;
    }
    pq_attr *a = &n->attrs[n->n_attrs++];
    a->name = pq_graph_strdup(g, name);
    if (!a->name) {
        n->n_attrs--;
        pq_error_nomem(err, "attribute name");
        return NULL;
    }
    a->type = PQ_ATTR_INT;
    return a;
}

enum pq_status pq_node_set_int(pq_graph *g, uint32_t nid, const char *name, int64_t v,
                               pq_error *err) {
    pq_attr *a = pq_node_attr_slot(g, nid, name, err);
    if (!a) return err ? err->status : PQ_ERR_NOMEM;
    a->type = PQ_ATTR_INT;
    a->u.i = v;
    return PQ_OK;
}

enum pq_status pq_node_set_float(pq_graph *g, uint32_t nid, const char *name, float v,
                                 pq_error *err) {
    pq_attr *a = pq_node_attr_slot(g, nid, name, err);
    if (!a) return err ? err->status : PQ_ERR_NOMEM;
    a->type = PQ_ATTR_FLOAT;
    a->u.f = v;
    return PQ_OK;
}

enum pq_status pq_node_set_string(pq_graph *g, uint32_t nid, const char *name, const char *v,
                                  pq_error *err) {
    const char *s = pq_graph_strdup(g, v ? v : "");
    if (!s) return pq_error_nomem(err, "attribute");
    pq_attr *a = pq_node_attr_slot(g, nid, name, err);
    if (!a) return err ? err->status : PQ_ERR_NOMEM;
    a->type = PQ_ATTR_STRING;
    a->u.s = s;
    return PQ_OK;
}

enum pq_status pq_node_set_ints(pq_graph *g, uint32_t nid, const char *name, const int64_t *v,
                                uint32_t n, pq_error *err) {
    int64_t *c = pq_graph_alloc(g, sizeof(int64_t) * (n ? n : 1));
    if (!c) return pq_error_nomem(err, "attribute");
    if (n) memcpy(c, v, sizeof(int64_t) * n);
    pq_attr *a = pq_node_attr_slot(g, nid, name, err);
    if (!a) return err ? err->status : PQ_ERR_NOMEM;
    a->type = PQ_ATTR_INTS;
    a->u.ints.v = c;
    a->u.ints.n = n;
    return PQ_OK;
}

enum pq_status pq_node_set_floats(pq_graph *g, uint32_t nid, const char *name, const float *v,
                                  uint32_t n, pq_error *err) {
    float *c = pq_graph_alloc(g, sizeof(float) * (n ? n : 1));
    if (!c) return pq_error_nomem(err, "attribute");
    if (n) memcpy(c, v, sizeof(float) * n);
    pq_attr *a = pq_node_attr_slot(g, nid, name, err);
    if (!a) return err ? err->status : PQ_ERR_NOMEM;
    a->type = PQ_ATTR_FLOATS;
    a->u.floats.v = c;
    a->u.floats.n = n;
    return PQ_OK;
}

enum pq_status pq_node_set_strings(pq_graph *g, uint32_t nid, const char *name,
                                   const char *const *v, uint32_t n, pq_error *err) {
    const char **c = pq_graph_alloc(g, sizeof(char *) * (n ? n : 1));
    if (!c) return pq_error_nomem(err, "attribute");
    for (uint32_t i = 0; i < n; i++)
        if (!(c[i] = pq_graph_strdup(g, v[i] ? v[i] : ""))) return pq_error_nomem(err, "attribute");
    pq_attr *a = pq_node_attr_slot(g, nid, name, err);
    if (!a) return err ? err->status : PQ_ERR_NOMEM;
    a->type = PQ_ATTR_STRINGS;
    a->u.strings.v = c;
    a->u.strings.n = n;
    return PQ_OK;
}

enum pq_status pq_node_set_tensor(pq_graph *g, uint32_t nid, const char *name, pq_tensor *t,
                                  pq_error *err) {
    pq_attr *a = pq_node_attr_slot(g, nid, name, err);
    if (!a) {
        pq_tensor_destroy(t);
        return err ? err->status : PQ_ERR_NOMEM;
    }
    a->type = PQ_ATTR_TENSOR;
    a->u.tensor = t;
    return PQ_OK;
}

enum pq_status pq_node_set_graph(pq_graph *g, uint32_t nid, const char *name, pq_graph *sub,
                                 pq_error *err) {
    pq_attr *a = pq_node_attr_slot(g, nid, name, err);
    if (!a) {
        pq_graph_destroy(sub);
        return err ? err->status : PQ_ERR_NOMEM;
    }
    a->type = PQ_ATTR_GRAPH;
    a->u.graph = sub;
    sub->parent = g;
    return PQ_OK;
}

void pq_node_remove_attr(pq_graph *g, uint32_t nid, const char *name) {
    pq_node *n = &g->nodes[nid];
    for (uint32_t i = 0; i < n->n_attrs; i++) {
        if (strcmp(n->attrs[i].name, name) == 0) {
            pq_attr_release(&n->attrs[i]);
            memmove(&n->attrs[i], &n->attrs[i + 1], sizeof(pq_attr) * (n->n_attrs - i - 1));
            n->n_attrs--;
            return;
        }
    }
}

const pq_attr *pq_node_attr(const pq_node *n, const char *name) {
    for (uint32_t i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
    return NULL;
}

int64_t pq_node_attr_int(const pq_node *n, const char *name, int64_t def) {
    const pq_attr *a = pq_node_attr(n, name);
    return a && a->type == PQ_ATTR_INT ? a->u.i : def;
}

float pq_node_attr_float(const pq_node *n, const char *name, float def) {
    const pq_attr *a = pq_node_attr(n, name);
    return a && a->type == PQ_ATTR_FLOAT ? a->u.f : def;
}

const char *pq_node_attr_string(const pq_node *n, const char *name, const char *def) {
    const pq_attr *a = pq_node_attr(n, name);
    return a && a->type == PQ_ATTR_STRING ? a->u.s : def;
}

static pq_graph *pq_graph_root(pq_graph *g) {
    while (g->parent)
        g = g->parent;
    return g;
}

uint32_t pq_graph_intern_symbol(pq_graph *g, const char *name) {
    pq_graph *r = pq_graph_root(g);
    for (uint32_t i = 1; i < r->n_symbols; i++)
        if (strcmp(r->symbols[i], name) == 0) return i;
    uint32_t need = r->n_symbols ? r->n_symbols + 1 : 2;
    if (pq_grow((void **)&r->symbols, &r->cap_symbols, need, sizeof(char *), NULL) != PQ_OK)
        return 0;
    if (r->n_symbols == 0) {
        r->symbols[0] = "";
        r->n_symbols = 1;
    }
    const char *s = pq_graph_strdup(r, name);
    if (!s) return 0;
    r->symbols[r->n_symbols] = s;
    return r->n_symbols++;
}

const char *pq_graph_symbol_name(const pq_graph *g, uint32_t sym) {
    while (g->parent)
        g = g->parent;
    return sym > 0 && sym < g->n_symbols ? g->symbols[sym] : "?";
}

enum pq_status pq_graph_capture(pq_graph *g, const char *name, uint32_t *out_id, pq_error *err) {
    uint32_t id = pq_graph_find_value(g, name);
    if (id != PQ_NONE) {
        *out_id = id;
        return PQ_OK;
    }
    if (!g->parent)
        return pq_error_set(err, PQ_ERR_INVALID, "value '%s' is used but never defined", name);
    uint32_t outer;
    PQ_TRY(pq_graph_capture(g->parent, name, &outer, err));
    const pq_value *ov = &g->parent->values[outer];
    pq_shape shape = ov->shape;
    PQ_TRY(pq_graph_add_value(g, name, ov->dtype, &shape, &id, err));
    g->values[id].outer = outer;
    *out_id = id;
    return PQ_OK;
}

enum pq_status pq_graph_add_opset(pq_graph *g, const char *domain, int64_t version, pq_error *err) {
    if (g->n_opsets == g->cap_opsets) {
        uint32_t cap = g->cap_opsets ? g->cap_opsets * 2 : 4;
        pq_opset *no = pq_graph_alloc(g, sizeof(pq_opset) * cap);
        if (!no) return pq_error_nomem(err, "opsets");
        if (g->n_opsets) memcpy(no, g->opsets, sizeof(pq_opset) * g->n_opsets);
        g->opsets = no;
        g->cap_opsets = cap;
    }
    pq_opset *o = g->opsets;
    o[g->n_opsets].domain = pq_graph_strdup(g, domain ? domain : "");
    o[g->n_opsets].version = version;
    if (!o[g->n_opsets].domain) return pq_error_nomem(err, "opsets");
    g->n_opsets++;
    return PQ_OK;
}

int64_t pq_graph_opset(const pq_graph *g, const char *domain) {
    while (g) {
        for (uint32_t i = 0; i < g->n_opsets; i++)
            if (strcmp(g->opsets[i].domain, domain) == 0) return g->opsets[i].version;
        g = g->parent;
    }
    return 0;
}

/* Dependencies of node i: its inputs, then the enclosing-scope values its subgraphs capture. */
static uint32_t pq_node_n_deps(const pq_graph *g, uint32_t i) {
    const pq_node *nd = &g->nodes[i];
    uint32_t k = nd->n_inputs;
    for (uint32_t a = 0; a < nd->n_attrs; a++)
        if (nd->attrs[a].type == PQ_ATTR_GRAPH) k += nd->attrs[a].u.graph->n_values;
    return k;
}

static uint32_t pq_node_dep(const pq_graph *g, uint32_t i, uint32_t j) {
    const pq_node *nd = &g->nodes[i];
    if (j < nd->n_inputs) return nd->inputs[j];
    j -= nd->n_inputs;
    for (uint32_t a = 0; a < nd->n_attrs; a++) {
        if (nd->attrs[a].type != PQ_ATTR_GRAPH) continue;
        const pq_graph *sub = nd->attrs[a].u.graph;
        if (j < sub->n_values) return sub->values[j].outer;
        j -= sub->n_values;
    }
    return PQ_NONE;
}

enum pq_status pq_graph_toposort(pq_graph *g, pq_error *err) {
    enum pq_status st = PQ_OK;
    uint32_t n = g->n_nodes;
    uint32_t *pending = pq_calloc(n ? n : 1, sizeof(uint32_t)); /* unmet inputs per node */
    uint32_t *order = pq_malloc(sizeof(uint32_t) * (n ? n : 1));
    uint32_t *users_start = pq_calloc((size_t)g->n_values + 1, sizeof(uint32_t));
    uint32_t *users = NULL;
    pq_node *sorted = NULL;
    if (!pending || !order || !users_start) {
        st = pq_error_nomem(err, "toposort");
        goto done;
    }
    /* count, per value, the nodes that consume it (a node counts once per input slot) */
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0, nd = pq_node_n_deps(g, i); j < nd; j++) {
            uint32_t v = pq_node_dep(g, i, j);
            if (v == PQ_NONE || v >= g->n_values) continue;
            if (g->values[v].producer != PQ_NONE) {
                users_start[v + 1]++;
                pending[i]++;
                total++;
            }
        }
    for (uint32_t v = 0; v < g->n_values; v++)
        users_start[v + 1] += users_start[v];
    users = pq_malloc(sizeof(uint32_t) * (total ? total : 1));
    uint32_t *fill = pq_calloc((size_t)g->n_values + 1, sizeof(uint32_t));
    if (!users || !fill) {
        pq_free(fill);
        st = pq_error_nomem(err, "toposort");
        goto done;
    }
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0, nd = pq_node_n_deps(g, i); j < nd; j++) {
            uint32_t v = pq_node_dep(g, i, j);
            if (v == PQ_NONE || v >= g->n_values || g->values[v].producer == PQ_NONE) continue;
            users[users_start[v] + fill[v]++] = i;
        }
    pq_free(fill);
    /* Kahn's algorithm; a queue seeded in original order keeps sorted graphs unchanged */
    uint32_t head = 0, tail = 0;
    for (uint32_t i = 0; i < n; i++)
        if (pending[i] == 0) order[tail++] = i;
    while (head < tail) {
        uint32_t i = order[head++];
        const pq_node *nd = &g->nodes[i];
        for (uint32_t o = 0; o < nd->n_outputs; o++) {
            uint32_t v = nd->outputs[o];
            if (v == PQ_NONE) continue;
            for (uint32_t u = users_start[v]; u < users_start[v + 1]; u++)
                if (--pending[users[u]] == 0) order[tail++] = users[u];
        }
    }
    if (tail != n) {
        for (uint32_t i = 0; i < n; i++)
            if (pending[i]) {
                st = pq_error_set(err, PQ_ERR_INVALID, "graph has a cycle through node '%s' (%s)",
                                  g->nodes[i].name, pq_op_name(g->nodes[i].op));
                break;
            }
        goto done;
    }
    sorted = pq_malloc(sizeof(pq_node) * (n ? n : 1));
    if (!sorted) {
        st = pq_error_nomem(err, "toposort");
        goto done;
    }
    for (uint32_t i = 0; i < n; i++)
        sorted[i] = g->nodes[order[i]];
    if (n) memcpy(g->nodes, sorted, sizeof(pq_node) * n);
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t o = 0; o < g->nodes[i].n_outputs; o++)
            if (g->nodes[i].outputs[o] != PQ_NONE) g->values[g->nodes[i].outputs[o]].producer = i;
done:
    pq_free(sorted);
    pq_free(pending);
    pq_free(order);
    pq_free(users_start);
    pq_free(users);
    return st;
}

enum pq_status pq_graph_remove_nodes(pq_graph *g, const bool *dead, pq_error *err) {
    uint32_t w = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        pq_node *nd = &g->nodes[i];
        if (dead[i]) {
            for (uint32_t o = 0; o < nd->n_outputs; o++)
                if (nd->outputs[o] != PQ_NONE) g->values[nd->outputs[o]].producer = PQ_NONE;
            for (uint32_t a = 0; a < nd->n_attrs; a++)
                pq_attr_release(&nd->attrs[a]);
            continue;
        }
        g->nodes[w] = *nd;
        for (uint32_t o = 0; o < nd->n_outputs; o++)
            if (nd->outputs[o] != PQ_NONE) g->values[nd->outputs[o]].producer = w;
        w++;
    }
    g->n_nodes = w;
    /* values only the removed nodes defined or read go too, as documented */
    return pq_graph_compact(g, NULL, err);
}

static void pq_param_walk(const pq_graph *g, int64_t *el, int64_t *by) {
    for (uint32_t i = 0; i < g->n_values; i++) {
        const pq_tensor *t = g->values[i].constant;
        if (!t) continue;
        *el += pq_tensor_numel(t);
        *by += (int64_t)t->nbytes;
    }
    for (uint32_t i = 0; i < g->n_nodes; i++)
        for (uint32_t a = 0; a < g->nodes[i].n_attrs; a++)
            if (g->nodes[i].attrs[a].type == PQ_ATTR_GRAPH)
                pq_param_walk(g->nodes[i].attrs[a].u.graph, el, by);
}

void pq_graph_param_stats(const pq_graph *g, int64_t *elements, int64_t *bytes) {
    *elements = 0;
    *bytes = 0;
    pq_param_walk(g, elements, bytes);
}
