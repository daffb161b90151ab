/* The piqc IR: a graph of values and nodes addressed by uint32_t ids, with typed attributes,
 * constants, symbolic dims and nested subgraphs (If/Loop bodies). Metadata lives in the graph's
 * arena and is freed at once by pq_graph_destroy. */
#ifndef PQ_GRAPH_H
#define PQ_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "op.h"
#include "status.h"
#include "tensor.h"

#define PQ_NONE UINT32_MAX

struct pq_graph;

enum pq_attr_type {
    PQ_ATTR_INT,
    PQ_ATTR_FLOAT,
    PQ_ATTR_STRING,
    PQ_ATTR_INTS,
    PQ_ATTR_FLOATS,
    PQ_ATTR_STRINGS,
    PQ_ATTR_TENSOR,
    PQ_ATTR_GRAPH,
};

/* A typed attribute. Arrays and strings live in the graph arena; a tensor is owned by the
 * graph; a subgraph is owned by the graph (its parent). */
typedef struct pq_attr {
    const char *name;
    enum pq_attr_type type;
    union {
        int64_t i;
        float f;
        const char *s;
        struct {
            const int64_t *v;
            uint32_t n;
        } ints;
        struct {
            const float *v;
            uint32_t n;
        } floats;
        struct {
            const char *const *v;
            uint32_t n;
        } strings;
        pq_tensor *tensor;
        struct pq_graph *graph;
    } u;
} pq_attr;

enum pq_value_flags {
    PQ_VALUE_INPUT = 1u << 0,  /* graph input */
    PQ_VALUE_OUTPUT = 1u << 1, /* graph output */
};

typedef struct pq_value {
    const char *name;    /* unique within its graph */
    enum pq_dtype dtype; /* UNDEFINED when not yet inferred */
    pq_shape shape;      /* rank -1 when unknown */
    uint32_t producer;   /* node id, or PQ_NONE (input, constant, captured) */
    uint32_t producer_slot;
    pq_tensor *constant; /* owned; non-NULL for initializers and folded constants */
    uint32_t outer;      /* subgraphs: id of the captured value in the parent graph, else PQ_NONE */
    uint32_t flags;
} pq_value;

typedef struct pq_node {
    const char *name;
    enum pq_op op;
    uint32_t n_inputs, n_outputs, n_attrs;
    uint32_t *inputs;  /* value ids; PQ_NONE marks an omitted optional input */
    uint32_t *outputs; /* value ids; PQ_NONE marks an omitted optional output */
    pq_attr *attrs;
    uint32_t cap_attrs; /* capacity of attrs (arena, grows by doubling) */
} pq_node;

typedef struct pq_opset {
    const char *domain; /* "" is the default ONNX domain */
    int64_t version;
} pq_opset;

typedef struct pq_arena pq_arena;
typedef struct pq_name_map pq_name_map;

typedef struct pq_graph {
    pq_arena *arena;
    const char *name;
    struct pq_graph *parent; /* enclosing graph for subgraphs, else NULL */
    pq_value *values;
    uint32_t n_values, cap_values;
    pq_node *nodes; /* topological order after pq_graph_toposort */
    uint32_t n_nodes, cap_nodes;
    uint32_t *inputs, n_inputs, cap_inputs;
    uint32_t *outputs, n_outputs, cap_outputs;
    const char **symbols; /* symbols[0] unused; dim.sym indexes here (shared with parent) */
    uint32_t n_symbols, cap_symbols;
    pq_opset *opsets;
    uint32_t n_opsets, cap_opsets;
    const char *producer_name; /* free text from the importer, may be NULL */
    int64_t ir_version;
    pq_name_map *names;
    uint32_t name_counter;
} pq_graph;

/* Creates an empty graph; parent is the enclosing graph for a subgraph (NULL otherwise).
 * Returns NULL and sets err on allocation failure. */
pq_graph *pq_graph_create(pq_graph *parent, pq_error *err);
/* Frees the graph, its constants, attribute tensors and subgraphs. NULL allowed. */
void pq_graph_destroy(pq_graph *g);

/* Arena allocation tied to the graph's lifetime (zeroed). NULL on failure. */
void *pq_graph_alloc(pq_graph *g, size_t n);
/* Arena copy of s (NULL on failure or when s is NULL). */
const char *pq_graph_strdup(pq_graph *g, const char *s);

/* Adds a value. name NULL or "" -> a fresh unique name "_tN". Fails with INVALID when the name
 * already exists in this graph. shape NULL means unknown rank. */
enum pq_status pq_graph_add_value(pq_graph *g, const char *name, enum pq_dtype dtype,
                                  const pq_shape *shape, uint32_t *out_id, pq_error *err);
/* Value id by name in this graph only, PQ_NONE if absent. */
uint32_t pq_graph_find_value(const pq_graph *g, const char *name);
/* Gives value vid the constant t (ownership moves to the graph, also on failure); sets the
 * value's dtype and shape from t. Replaces a previous constant. */
enum pq_status pq_graph_set_constant(pq_graph *g, uint32_t vid, pq_tensor *t, pq_error *err);
/* Marks vid as a graph input / output (appended in call order). */
enum pq_status pq_graph_add_input(pq_graph *g, uint32_t vid, pq_error *err);
enum pq_status pq_graph_add_output(pq_graph *g, uint32_t vid, pq_error *err);

/* Adds a node. inputs/outputs are copied; output values must exist and have no producer yet.
 * name NULL -> generated. out_id may be NULL. */
enum pq_status pq_graph_add_node(pq_graph *g, enum pq_op op, const char *name,
                                 const uint32_t *inputs, uint32_t n_inputs, const uint32_t *outputs,
                                 uint32_t n_outputs, uint32_t *out_id, pq_error *err);

/* Attribute setters on node nid: copy name/arrays into the arena; tensor and graph ownership
 * moves to the graph (also on failure). Setting an existing name replaces it. */
enum pq_status pq_node_set_int(pq_graph *g, uint32_t nid, const char *name, int64_t v,
                               pq_error *err);
enum pq_status pq_node_set_float(pq_graph *g, uint32_t nid, const char *name, float v,
                                 pq_error *err);
enum pq_status pq_node_set_string(pq_graph *g, uint32_t nid, const char *name, const char *v,
                                  pq_error *err);
enum pq_status pq_node_set_ints(pq_graph *g, uint32_t nid, const char *name, const int64_t *v,
                                uint32_t n, pq_error *err);
enum pq_status pq_node_set_floats(pq_graph *g, uint32_t nid, const char *name, const float *v,
                                  uint32_t n, pq_error *err);
enum pq_status pq_node_set_strings(pq_graph *g, uint32_t nid, const char *name,
                                   const char *const *v, uint32_t n, pq_error *err);
enum pq_status pq_node_set_tensor(pq_graph *g, uint32_t nid, const char *name, pq_tensor *t,
                                  pq_error *err);
enum pq_status pq_node_set_graph(pq_graph *g, uint32_t nid, const char *name, pq_graph *sub,
                                 pq_error *err);
/* Removes attribute name from node nid if present. */
void pq_node_remove_attr(pq_graph *g, uint32_t nid, const char *name);

/* Attribute lookup (NULL if absent). */
const pq_attr *pq_node_attr(const pq_node *n, const char *name);
/* Typed getters with defaults (the default is returned when absent or of another type). */
int64_t pq_node_attr_int(const pq_node *n, const char *name, int64_t def);
float pq_node_attr_float(const pq_node *n, const char *name, float def);
const char *pq_node_attr_string(const pq_node *n, const char *name, const char *def);
/* Input i of node n, or PQ_NONE when absent/omitted. */
static inline uint32_t pq_node_input(const pq_node *n, uint32_t i) {
    return i < n->n_inputs ? n->inputs[i] : PQ_NONE;
}
static inline uint32_t pq_node_output(const pq_node *n, uint32_t i) {
    return i < n->n_outputs ? n->outputs[i] : PQ_NONE;
}

/* Interns a symbolic dim name in the root graph's table; returns its 1-based index, 0 on
 * allocation failure. */
uint32_t pq_graph_intern_symbol(pq_graph *g, const char *name);
/* Name of symbol sym ("?" when 0 or out of range). */
const char *pq_graph_symbol_name(const pq_graph *g, uint32_t sym);

/* Adds a captured value to subgraph g: a value named like the enclosing-scope value it reads,
 * looked up through all ancestors. Returns its id in g (existing one if already captured).
 * INVALID if no ancestor defines name. */
enum pq_status pq_graph_capture(pq_graph *g, const char *name, uint32_t *out_id, pq_error *err);

/* Records an opset import. */
enum pq_status pq_graph_add_opset(pq_graph *g, const char *domain, int64_t version, pq_error *err);
/* Version imported for domain ("" default), 0 if none. */
int64_t pq_graph_opset(const pq_graph *g, const char *domain);

/* Reorders nodes topologically (stable for already-sorted graphs). A node that owns subgraphs
 * also depends on the enclosing-scope values its subgraphs capture. INVALID with the name of a
 * node involved when there is a cycle. */
enum pq_status pq_graph_toposort(pq_graph *g, pq_error *err);

/* Removes nodes whose ids are flagged in dead[] (n_nodes entries) and values no longer referenced
 * by any node, input, output or subgraph capture; renumbers ids. */
enum pq_status pq_graph_remove_nodes(pq_graph *g, const bool *dead, pq_error *err);

/* Number of elements / bytes in all constants (parameters), including subgraphs. */
void pq_graph_param_stats(const pq_graph *g, int64_t *elements, int64_t *bytes);

#endif
