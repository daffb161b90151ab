/* Deep copy of a graph (pq_graph_clone, declared in edit.h): values, constants, nodes, typed
 * attributes, opsets, symbols and nested subgraphs, with identical value and node ids. */
#include <string.h>

#include "alloc.h"
#include "edit.h"

static enum pq_status pq_clone_rec(const pq_graph *src, pq_graph *parent, pq_graph **out,
                                   pq_error *err);

/* Copies attribute a of a source node onto node nid of dst. */
static enum pq_status pq_clone_attr(pq_graph *dst, uint32_t nid, const pq_attr *a, pq_error *err) {
    switch (a->type) {
    case PQ_ATTR_INT:
        return pq_node_set_int(dst, nid, a->name, a->u.i, err);
    case PQ_ATTR_FLOAT:
        return pq_node_set_float(dst, nid, a->name, a->u.f, err);
    case PQ_ATTR_STRING:
        return pq_node_set_string(dst, nid, a->name, a->u.s, err);
    case PQ_ATTR_INTS:
        return pq_node_set_ints(dst, nid, a->name, a->u.ints.v, a->u.ints.n, err);
    case PQ_ATTR_FLOATS:
        return pq_node_set_floats(dst, nid, a->name, a->u.floats.v, a->u.floats.n, err);
    case PQ_ATTR_STRINGS:
        return pq_node_set_strings(dst, nid, a->name, a->u.strings.v, a->u.strings.n, err);
    case PQ_ATTR_TENSOR: {
        pq_tensor *t = pq_tensor_clone(a->u.tensor, err);
        if (!t) return err ? err->status : PQ_ERR_NOMEM;
        return pq_node_set_tensor(dst, nid, a->name, t, err);
    }
    case PQ_ATTR_GRAPH: {
        pq_graph *sub = NULL;
        PQ_TRY(pq_clone_rec(a->u.graph, dst, &sub, err));
        return pq_node_set_graph(dst, nid, a->name, sub, err);
    }
    }
    return pq_error_set(err, PQ_ERR_INTERNAL, "clone: attribute '%s' has bad type %d", a->name,
                        (int)a->type);
}

/* Fills dst (empty, created with the right parent) from src. */
static enum pq_status pq_clone_fill(const pq_graph *src, pq_graph *dst, pq_error *err) {
    if (src->name && !(dst->name = pq_graph_strdup(dst, src->name)))
        return pq_error_nomem(err, "graph name");
    if (src->producer_name && !(dst->producer_name = pq_graph_strdup(dst, src->producer_name)))
        return pq_error_nomem(err, "producer name");
    dst->ir_version = src->ir_version;
    if (!src->parent) /* symbols live in the root graph only */
        for (uint32_t i = 1; i < src->n_symbols; i++)
            if (pq_graph_intern_symbol(dst, src->symbols[i]) != i)
                return pq_error_nomem(err, "symbols");
    for (uint32_t i = 0; i < src->n_opsets; i++)
        PQ_TRY(pq_graph_add_opset(dst, src->opsets[i].domain, src->opsets[i].version, err));
    for (uint32_t v = 0; v < src->n_values; v++) {
        const pq_value *sv = &src->values[v];
        uint32_t id;
        PQ_TRY(pq_graph_add_value(dst, sv->name, sv->dtype, &sv->shape, &id, err));
        if (id != v) return pq_error_set(err, PQ_ERR_INTERNAL, "clone: value ids diverge");
    }
    for (uint32_t i = 0; i < src->n_nodes; i++) {
        const pq_node *sn = &src->nodes[i];
        uint32_t nid;
        PQ_TRY(pq_graph_add_node(dst, sn->op, sn->name, sn->inputs, sn->n_inputs, sn->outputs,
                                 sn->n_outputs, &nid, err));
        for (uint32_t a = 0; a < sn->n_attrs; a++)
            PQ_TRY(pq_clone_attr(dst, nid, &sn->attrs[a], err));
    }
    for (uint32_t v = 0; v < src->n_values; v++) {
        const pq_value *sv = &src->values[v];
        pq_value *dv = &dst->values[v];
        dv->producer = sv->producer;
        dv->producer_slot = sv->producer_slot;
        dv->outer = sv->outer;
        if (sv->constant) {
            pq_tensor *t = pq_tensor_clone(sv->constant, err);
            if (!t) return err ? err->status : PQ_ERR_NOMEM;
            PQ_TRY(pq_graph_set_constant(dst, v, t, err));
            dv->dtype = sv->dtype; /* keep the declared type exactly */
            dv->shape = sv->shape;
        }
    }
    for (uint32_t i = 0; i < src->n_inputs; i++)
        PQ_TRY(pq_graph_add_input(dst, src->inputs[i], err));
    for (uint32_t i = 0; i < src->n_outputs; i++)
        PQ_TRY(pq_graph_add_output(dst, src->outputs[i], err));
    for (uint32_t v = 0; v < src->n_values; v++)
        dst->values[v].flags = src->values[v].flags;
    dst->name_counter = src->name_counter;
    return PQ_OK;
}

static enum pq_status pq_clone_rec(const pq_graph *src, pq_graph *parent, pq_graph **out,
                                   pq_error *err) {
    *out = NULL;
    pq_graph *dst = pq_graph_create(parent, err);
    if (!dst) return PQ_ERR_NOMEM;
    enum pq_status st = pq_clone_fill(src, dst, err);
    if (st != PQ_OK) {
        pq_graph_destroy(dst);
        return st;
    }
    *out = dst;
    return PQ_OK;
}

enum pq_status pq_graph_clone(const pq_graph *g, pq_graph **out, pq_error *err) {
    return pq_clone_rec(g, g->parent, out, err);
}
