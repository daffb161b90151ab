/* The IR verifier: structural checks (ids, definitions, producer bookkeeping, arity, topological
 * order, constants, captures, subgraphs) and type consistency against the shape-inference rules. */
#include "verify.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "infer.h"

#define PQ_VERIFY_MAX_DEPTH 64

static const char *pq_gname(const pq_graph *g) {
    return g->name ? g->name : "(unnamed)";
}

static enum pq_status pq_vfail(pq_error *err, const pq_graph *g, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum pq_status pq_vfail(pq_error *err, const pq_graph *g, const char *fmt, ...) {
    char msg[PQ_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pq_error_set(err, PQ_ERR_INVALID, "verify: graph '%s': %s", pq_gname(g), msg);
}

static const pq_graph *pq_vroot(const pq_graph *g) {
    while (g->parent)
        g = g->parent;
    return g;
}

static enum pq_status pq_verify_shape(const pq_graph *g, const pq_value *v, pq_error *err) {
    const pq_shape *s = &v->shape;
    if (s->rank < -1 || s->rank > PQ_MAX_RANK)
        return pq_vfail(err, g, "value '%s' has rank %d (must be -1..%d)", v->name, s->rank,
                        PQ_MAX_RANK);
    uint32_t nsym = pq_vroot(g)->n_symbols;
    for (int i = 0; i < s->rank; i++) {
        pq_dim d = s->dims[i];
        if (d.size < -1)
            return pq_vfail(err, g, "value '%s' has dim %d = %lld", v->name, i, (long long)d.size);
        if (d.size == -1 && d.sym != 0 && d.sym >= nsym)
            return pq_vfail(err, g, "value '%s' dim %d refers to symbol %u of %u", v->name, i,
                            d.sym, nsym ? nsym - 1 : 0);
    }
    if ((unsigned)v->dtype >= PQ_DTYPE_COUNT)
        return pq_vfail(err, g, "value '%s' has invalid dtype %d", v->name, (int)v->dtype);
    return PQ_OK;
}

static enum pq_status pq_verify_tensor(const pq_graph *g, const pq_tensor *t, const char *what,
                                       pq_error *err) {
    if (t->dtype == PQ_DTYPE_UNDEFINED || (unsigned)t->dtype >= PQ_DTYPE_COUNT)
        return pq_vfail(err, g, "%s has an invalid dtype", what);
    int64_t n;
    pq_error tmp;
    if (pq_shape_numel(t->rank, t->dims, &n, &tmp) != PQ_OK)
        return pq_vfail(err, g, "%s: %s", what, tmp.msg);
    size_t need = (size_t)n * pq_dtype_size(t->dtype);
    if (t->nbytes < need || (need && !t->data))
        return pq_vfail(err, g, "%s holds %zu bytes, its shape needs %zu", what, t->nbytes, need);
    return PQ_OK;
}

/* Per-value definition counts gathered in one sweep. */
typedef struct pq_vinfo {
    uint32_t defs;       /* number of definitions */
    uint32_t in_inputs;  /* times listed in g->inputs */
    uint32_t in_outputs; /* times listed in g->outputs */
    uint32_t def_node;   /* first node defining it, PQ_NONE */
} pq_vinfo;

static enum pq_status pq_verify_graph(const pq_graph *g, int depth, pq_error *err);

static enum pq_status pq_verify_node_attrs(const pq_graph *g, const pq_node *n, int depth,
                                           pq_error *err) {
    for (uint32_t a = 0; a < n->n_attrs; a++) {
        const pq_attr *at = &n->attrs[a];
        if (!at->name)
            return pq_vfail(err, g, "node '%s' (%s): attribute %u has no name", n->name,
                            pq_op_name(n->op), a);
        for (uint32_t b = 0; b < a; b++)
            if (strcmp(n->attrs[b].name, at->name) == 0)
                return pq_vfail(err, g, "node '%s' (%s): attribute '%s' appears twice", n->name,
                                pq_op_name(n->op), at->name);
        switch (at->type) {
        case PQ_ATTR_INT:
        case PQ_ATTR_FLOAT:
            break;
        case PQ_ATTR_STRING:
            if (!at->u.s)
                return pq_vfail(err, g, "node '%s': attribute '%s' is a NULL string", n->name,
                                at->name);
            break;
        case PQ_ATTR_INTS:
        case PQ_ATTR_FLOATS:
        case PQ_ATTR_STRINGS:
            if (at->u.ints.n && !at->u.ints.v)
                return pq_vfail(err, g, "node '%s': attribute '%s' has a NULL array", n->name,
                                at->name);
            if (at->type == PQ_ATTR_STRINGS)
                for (uint32_t i = 0; i < at->u.strings.n; i++)
                    if (!at->u.strings.v[i])
                        return pq_vfail(err, g, "node '%s': attribute '%s' string %u is NULL",
                                        n->name, at->name, i);
            break;
        case PQ_ATTR_TENSOR: {
            if (!at->u.tensor)
                return pq_vfail(err, g, "node '%s': tensor attribute '%s' is NULL", n->name,
                                at->name);
            char what[256];
            snprintf(what, sizeof what, "node '%s': tensor attribute '%s'", n->name, at->name);
            PQ_TRY(pq_verify_tensor(g, at->u.tensor, what, err));
            break;
        }
        case PQ_ATTR_GRAPH: {
            const pq_graph *sub = at->u.graph;
            if (!sub)
                return pq_vfail(err, g, "node '%s': graph attribute '%s' is NULL", n->name,
                                at->name);
            if (sub->parent != g)
                return pq_vfail(err, g,
                                "node '%s': subgraph '%s' does not point back to its parent graph",
                                n->name, at->name);
            if (depth + 1 > PQ_VERIFY_MAX_DEPTH)
                return pq_vfail(err, g, "subgraphs nested deeper than %d", PQ_VERIFY_MAX_DEPTH);
            enum pq_status st = pq_verify_graph(sub, depth + 1, err);
            if (st != PQ_OK)
                return pq_error_prefix(err, "node '%s' (%s), attribute '%s': ", n->name,
                                       pq_op_name(n->op), at->name);
            break;
        }
        default:
            return pq_vfail(err, g, "node '%s': attribute '%s' has invalid type %d", n->name,
                            at->name, (int)at->type);
        }
    }
    return PQ_OK;
}

/* Op and arity of every node, before anything indexes its arrays. */
static enum pq_status pq_verify_arity(const pq_graph *g, pq_error *err) {
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const pq_node *n = &g->nodes[i];
        const char *nn = n->name ? n->name : "(unnamed)";
        const pq_op_info *info = pq_op_get(n->op);
        if (!info) return pq_vfail(err, g, "node %u '%s' has invalid op %d", i, nn, (int)n->op);
        const char *op = info->name;
        if ((n->n_inputs && !n->inputs) || (n->n_outputs && !n->outputs) ||
            (n->n_attrs && !n->attrs))
            return pq_vfail(err, g, "node '%s' (%s) has a NULL array", nn, op);
        if (n->n_inputs < info->min_inputs ||
            (info->max_inputs != PQ_VARIADIC && n->n_inputs > info->max_inputs))
            return pq_vfail(err, g, "node '%s' (%s) has %u inputs, the op takes %u..%d", nn, op,
                            n->n_inputs, info->min_inputs,
                            info->max_inputs == PQ_VARIADIC ? -1 : (int)info->max_inputs);
        if (n->n_outputs < info->min_outputs ||
            (info->max_outputs != PQ_VARIADIC && n->n_outputs > info->max_outputs))
            return pq_vfail(err, g, "node '%s' (%s) has %u outputs, the op gives %u..%d", nn, op,
                            n->n_outputs, info->min_outputs,
                            info->max_outputs == PQ_VARIADIC ? -1 : (int)info->max_outputs);
    }
    return PQ_OK;
}

static enum pq_status pq_verify_nodes(const pq_graph *g, pq_vinfo *vi, int depth, pq_error *err) {
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const pq_node *n = &g->nodes[i];
        const char *nn = n->name ? n->name : "(unnamed)";
        const pq_op_info *info = pq_op_get(n->op);
        const char *op = info->name;
        for (uint32_t k = 0; k < n->n_inputs; k++) {
            uint32_t v = n->inputs[k];
            if (v == PQ_NONE) {
                if (k < info->min_inputs)
                    return pq_vfail(err, g, "node '%s' (%s): required input %u is missing", nn, op,
                                    k);
                continue;
            }
            if (v >= g->n_values)
                return pq_vfail(err, g,
                                "node '%s' (%s): input %u is value id %u, out of range "
                                "(%u values)",
                                nn, op, k, v, g->n_values);
            const pq_value *val = &g->values[v];
            if (vi[v].defs == 0)
                return pq_vfail(err, g, "node '%s' (%s): input %u '%s' is never defined", nn, op, k,
                                val->name);
            if (vi[v].def_node != PQ_NONE && vi[v].def_node >= i)
                return pq_vfail(err, g,
                                "node '%s' (%s): input '%s' is produced by node '%s', which comes "
                                "%s (nodes must be in topological order)",
                                nn, op, val->name, g->nodes[vi[v].def_node].name,
                                vi[v].def_node == i ? "itself" : "later");
        }
        for (uint32_t k = 0; k < n->n_outputs; k++) {
            uint32_t v = n->outputs[k];
            if (v == PQ_NONE) {
                if (k < info->min_outputs)
                    return pq_vfail(err, g, "node '%s' (%s): required output %u is missing", nn, op,
                                    k);
                continue;
            }
            const pq_value *val = &g->values[v];
            if (val->producer != i || val->producer_slot != k)
                return pq_vfail(err, g,
                                "node '%s' (%s): output %u '%s' records producer %u slot %u, "
                                "expected node %u slot %u",
                                nn, op, k, val->name, val->producer, val->producer_slot, i, k);
        }
        PQ_TRY(pq_verify_node_attrs(g, n, depth, err));
    }
    return PQ_OK;
}

static enum pq_status pq_verify_graph(const pq_graph *g, int depth, pq_error *err) {
    enum pq_status st = PQ_OK;
    if (g->n_values && !g->values) return pq_vfail(err, g, "values array is NULL");
    if (g->n_nodes && !g->nodes) return pq_vfail(err, g, "nodes array is NULL");
    PQ_TRY(pq_verify_arity(g, err));
    pq_vinfo *vi = pq_calloc(g->n_values ? g->n_values : 1, sizeof *vi);
    if (!vi) return pq_error_nomem(err, "verifier");
    for (uint32_t v = 0; v < g->n_values; v++)
        vi[v].def_node = PQ_NONE;

    /* graph inputs and outputs: ids in range, listed once */
    for (uint32_t i = 0; i < g->n_inputs; i++) {
        uint32_t v = g->inputs[i];
        if (v >= g->n_values) {
            st = pq_vfail(err, g, "input %u is value id %u, out of range (%u values)", i, v,
                          g->n_values);
            goto done;
        }
        if (vi[v].in_inputs++) {
            st = pq_vfail(err, g, "value '%s' is listed as a graph input twice", g->values[v].name);
            goto done;
        }
    }
    for (uint32_t i = 0; i < g->n_outputs; i++) {
        uint32_t v = g->outputs[i];
        if (v >= g->n_values) {
            st = pq_vfail(err, g, "output %u is value id %u, out of range (%u values)", i, v,
                          g->n_values);
            goto done;
        }
        vi[v].in_outputs++;
    }

    /* values: names, shapes, flags, constants, captures */
    for (uint32_t v = 0; v < g->n_values; v++) {
        const pq_value *val = &g->values[v];
        if (!val->name) {
            st = pq_vfail(err, g, "value %u has no name", v);
            goto done;
        }
        uint32_t found = pq_graph_find_value(g, val->name);
        if (found != v) {
            st = pq_vfail(err, g, "value name '%s' is not unique (ids %u and %u)", val->name, v,
                          found);
            goto done;
        }
        PQ_TRY_GOTO(st, pq_verify_shape(g, val, err), done);
        bool is_in = (val->flags & PQ_VALUE_INPUT) != 0,
             is_out = (val->flags & PQ_VALUE_OUTPUT) != 0;
        if (is_in != (vi[v].in_inputs > 0) || is_out != (vi[v].in_outputs > 0)) {
            st = pq_vfail(err, g, "value '%s': %s flag does not match the graph's %s list",
                          val->name, is_in != (vi[v].in_inputs > 0) ? "input" : "output",
                          is_in != (vi[v].in_inputs > 0) ? "input" : "output");
            goto done;
        }
        if (vi[v].in_inputs || val->constant) vi[v].defs++;
        if (val->constant) {
            char what[256];
            snprintf(what, sizeof what, "constant '%s'", val->name);
            PQ_TRY_GOTO(st, pq_verify_tensor(g, val->constant, what, err), done);
            const pq_tensor *t = val->constant;
            pq_shape ts = pq_shape_from_dims(t->rank, t->dims);
            bool same = val->dtype == t->dtype && val->shape.rank == ts.rank;
            for (int d = 0; same && d < ts.rank; d++)
                same = val->shape.dims[d].size == ts.dims[d].size;
            if (!same) {
                st = pq_vfail(err, g,
                              "value '%s': declared type differs from its constant's "
                              "(%s, rank %d)",
                              val->name, pq_dtype_name(t->dtype), t->rank);
                goto done;
            }
        }
        if (val->outer != PQ_NONE) {
            if (!g->parent) {
                st = pq_vfail(err, g, "value '%s' is captured but the graph has no parent",
                              val->name);
                goto done;
            }
            if (val->outer >= g->parent->n_values) {
                st = pq_vfail(err, g, "captured value '%s' refers to outer id %u, out of range",
                              val->name, val->outer);
                goto done;
            }
            const char *on = g->parent->values[val->outer].name;
            if (!on || strcmp(on, val->name) != 0) {
                st = pq_vfail(err, g, "captured value '%s' refers to outer value '%s'", val->name,
                              on ? on : "(unnamed)");
                goto done;
            }
            if (vi[v].in_inputs || val->constant || val->producer != PQ_NONE) {
                st = pq_vfail(err, g, "captured value '%s' is also defined in the subgraph",
                              val->name);
                goto done;
            }
            vi[v].defs++;
        }
        if (val->producer != PQ_NONE) {
            if (val->producer >= g->n_nodes) {
                st = pq_vfail(err, g, "value '%s' records producer node %u, out of range",
                              val->name, val->producer);
                goto done;
            }
            const pq_node *pn = &g->nodes[val->producer];
            if (val->producer_slot >= pn->n_outputs || !pn->outputs ||
                pn->outputs[val->producer_slot] != v) {
                st = pq_vfail(err, g,
                              "value '%s' records producer '%s' slot %u, which does not "
                              "list it",
                              val->name, pn->name, val->producer_slot);
                goto done;
            }
        }
    }

    /* node outputs: each defines its value once */
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const pq_node *n = &g->nodes[i];
        for (uint32_t k = 0; k < n->n_outputs && n->outputs; k++) {
            uint32_t v = n->outputs[k];
            if (v == PQ_NONE) continue;
            if (v >= g->n_values) {
                st = pq_vfail(err, g,
                              "node '%s' (%s): output %u is value id %u, out of range "
                              "(%u values)",
                              n->name, pq_op_name(n->op), k, v, g->n_values);
                goto done;
            }
            if (vi[v].defs) {
                const char *other = vi[v].def_node != PQ_NONE ? g->nodes[vi[v].def_node].name
                                    : g->values[v].constant   ? "a constant"
                                    : vi[v].in_inputs         ? "a graph input"
                                                              : "a captured value";
                st = pq_vfail(err, g, "value '%s' is defined twice: by node '%s' and by %s%s%s",
                              g->values[v].name, n->name, vi[v].def_node != PQ_NONE ? "node '" : "",
                              other, vi[v].def_node != PQ_NONE ? "'" : "");
                goto done;
            }
            vi[v].defs++;
            vi[v].def_node = i;
        }
    }
    PQ_TRY_GOTO(st, pq_verify_nodes(g, vi, depth, err), done);
    for (uint32_t i = 0; i < g->n_outputs; i++) {
        uint32_t v = g->outputs[i];
        if (!vi[v].defs) {
            st = pq_vfail(err, g, "output '%s' is never defined", g->values[v].name);
            goto done;
        }
    }
done:
    pq_free(vi);
    return st;
}

enum pq_status pq_graph_verify_structure(const pq_graph *g, pq_error *err) {
    if (!g) return pq_error_set(err, PQ_ERR_INVALID, "verify: no graph");
    if (g->parent == NULL && g->n_symbols && !g->symbols)
        return pq_vfail(err, g, "symbol table is NULL");
    return pq_verify_graph(g, 0, err);
}

/* ---- type consistency against inference ---- */

static enum pq_status pq_verify_types(const pq_graph *g, int depth, pq_error *err) {
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const pq_node *n = &g->nodes[i];
        for (uint32_t a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].type != PQ_ATTR_GRAPH || depth >= PQ_VERIFY_MAX_DEPTH) continue;
            enum pq_status st = pq_verify_types(n->attrs[a].u.graph, depth + 1, err);
            if (st != PQ_OK)
                return pq_error_prefix(err, "node '%s' (%s), attribute '%s': ", n->name,
                                       pq_op_name(n->op), n->attrs[a].name);
        }
        pq_infer_fn fn = pq_infer_table[n->op];
        if (!fn) continue;
        pq_type_info *in = pq_calloc(n->n_inputs + 1, sizeof *in);
        pq_type_info *out = pq_calloc(n->n_outputs + 1, sizeof *out);
        if (!in || !out) {
            pq_free(in);
            pq_free(out);
            return pq_error_nomem(err, "verifier");
        }
        for (uint32_t k = 0; k < n->n_inputs; k++) {
            uint32_t v = n->inputs[k];
            in[k].shape = pq_shape_unknown();
            if (v == PQ_NONE) continue;
            in[k].present = true;
            in[k].dtype = g->values[v].dtype;
            in[k].shape = g->values[v].shape;
            in[k].value = g->values[v].constant;
        }
        for (uint32_t k = 0; k < n->n_outputs; k++) {
            out[k].present = n->outputs[k] != PQ_NONE;
            out[k].shape = pq_shape_unknown();
        }
        pq_error tmp;
        pq_error_clear(&tmp);
        /* rules only read the graph (symbols, subgraphs); the cast does not license writes */
        pq_infer_ctx ctx = {(pq_graph *)g, n, in, n->n_inputs, out, n->n_outputs, &tmp};
        enum pq_status st = fn(&ctx);
        if (st == PQ_ERR_INVALID) {
            pq_error_set(err, PQ_ERR_INVALID, "verify: graph '%s': node '%s' (%s): %s", pq_gname(g),
                         n->name, pq_op_name(n->op), tmp.msg);
        } else if (st == PQ_ERR_NOMEM) {
            pq_error_nomem(err, "verifier");
        } else if (st == PQ_OK) {
            for (uint32_t k = 0; k < n->n_outputs && st == PQ_OK; k++) {
                uint32_t v = n->outputs[k];
                if (v == PQ_NONE) continue;
                const pq_value *val = &g->values[v];
                if (out[k].dtype != PQ_DTYPE_UNDEFINED && val->dtype != PQ_DTYPE_UNDEFINED &&
                    out[k].dtype != val->dtype) {
                    st = pq_vfail(err, g, "node '%s' (%s): output '%s' is declared %s, inferred %s",
                                  n->name, pq_op_name(n->op), val->name, pq_dtype_name(val->dtype),
                                  pq_dtype_name(out[k].dtype));
                    break;
                }
                const pq_shape *ds = &val->shape, *is = &out[k].shape;
                if (ds->rank < 0 || is->rank < 0) continue;
                if (ds->rank != is->rank) {
                    st = pq_vfail(err, g,
                                  "node '%s' (%s): output '%s' is declared with rank %d, "
                                  "inferred %d",
                                  n->name, pq_op_name(n->op), val->name, ds->rank, is->rank);
                    break;
                }
                for (int d = 0; d < ds->rank; d++) {
                    if (pq_dim_known(ds->dims[d]) && pq_dim_known(is->dims[d]) &&
                        ds->dims[d].size != is->dims[d].size) {
                        st = pq_vfail(err, g,
                                      "node '%s' (%s): output '%s' dim %d is declared "
                                      "%lld, inferred %lld",
                                      n->name, pq_op_name(n->op), val->name, d,
                                      (long long)ds->dims[d].size, (long long)is->dims[d].size);
                        break;
                    }
                }
            }
        } else {
            st = PQ_OK; /* UNSUPPORTED and the like: nothing to compare */
        }
        pq_free(in);
        pq_free(out);
        if (st != PQ_OK) return st;
    }
    return PQ_OK;
}

enum pq_status pq_graph_verify(const pq_graph *g, pq_error *err) {
    PQ_TRY(pq_graph_verify_structure(g, err));
    return pq_verify_types(g, 0, err);
}
