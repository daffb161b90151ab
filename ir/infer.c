/* Driving shape inference over a graph (merging inferred with declared types) and the helpers
 * that the per-op rules share: broadcasting, constant int inputs, axes. */
#include "infer.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"

enum pq_status pq_infer_broadcast(const pq_shape *a, const pq_shape *b, pq_shape *out,
                                  pq_error *err) {
    if (a->rank < 0 || b->rank < 0) {
        *out = pq_shape_unknown();
        return PQ_OK;
    }
    int r = a->rank > b->rank ? a->rank : b->rank;
    pq_shape s;
    memset(&s, 0, sizeof s);
    s.rank = r;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        pq_dim da = ia >= 0 ? a->dims[ia] : pq_dim_of(1);
        pq_dim db = ib >= 0 ? b->dims[ib] : pq_dim_of(1);
        pq_dim d;
        if (da.size == 1)
            d = db;
        else if (db.size == 1)
            d = da;
        else if (pq_dim_known(da) && pq_dim_known(db)) {
            if (da.size != db.size)
                return pq_error_set(err, PQ_ERR_INVALID,
                                    "cannot broadcast dimension %lld with %lld (axis %d of %d)",
                                    (long long)da.size, (long long)db.size, i, r);
            d = da;
        } else if (pq_dim_known(da))
            d = da; /* the unknown one must be 1 or equal */
        else if (pq_dim_known(db))
            d = db;
        else if (pq_dim_equal(da, db))
            d = da;
        else
            d = pq_dim_unknown();
        s.dims[i] = d;
    }
    *out = s;
    return PQ_OK;
}

bool pq_infer_const_ints(const pq_type_info *t, int64_t *out, int max, int *n) {
    if (!t || !t->present || !t->value) return false;
    const pq_tensor *v = t->value;
    if (!pq_dtype_is_integer(v->dtype) || v->rank > 1) return false;
    int64_t cnt = pq_tensor_numel(v);
    if (cnt > max) return false;
    for (int64_t i = 0; i < cnt; i++)
        out[i] = pq_dtype_load_i64(v->dtype, v->data, (size_t)i);
    *n = (int)cnt;
    return true;
}

enum pq_status pq_infer_axis(int64_t axis, int rank, int *out, pq_error *err) {
    if (axis < -rank || axis >= (rank ? rank : 1))
        return pq_error_set(err, PQ_ERR_INVALID, "axis %lld out of range for rank %d",
                            (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return PQ_OK;
}

void pq_infer_copy(const pq_type_info *in, pq_type_info *out) {
    out->dtype = in->dtype;
    out->shape = in->shape;
}

/* Merges an inferred shape into a declared one. */
static enum pq_status pq_merge_shape(pq_shape *decl, const pq_shape *inf, const char *vname,
                                     pq_error *err) {
    if (inf->rank < 0) return PQ_OK;
    if (decl->rank < 0) {
        *decl = *inf;
        return PQ_OK;
    }
    if (decl->rank != inf->rank)
        return pq_error_set(err, PQ_ERR_INVALID, "value '%s' is declared with rank %d, inferred %d",
                            vname, decl->rank, inf->rank);
    for (int i = 0; i < decl->rank; i++) {
        pq_dim *d = &decl->dims[i];
        pq_dim f = inf->dims[i];
        if (pq_dim_known(f)) {
            if (pq_dim_known(*d) && d->size != f.size)
                return pq_error_set(err, PQ_ERR_INVALID,
                                    "value '%s' is declared with dim %d = %lld, inferred %lld",
                                    vname, i, (long long)d->size, (long long)f.size);
            *d = f;
        } else if (!pq_dim_known(*d) && d->sym == 0) {
            *d = f;
        }
    }
    return PQ_OK;
}

enum pq_status pq_infer_node(pq_graph *g, uint32_t nid, pq_error *err) {
    const pq_node *n = &g->nodes[nid];
    pq_infer_fn fn = pq_infer_table[n->op];
    if (!fn)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED, "node '%s' (%s): no shape inference rule",
                            n->name, pq_op_name(n->op));
    pq_type_info in_small[16], out_small[16];
    pq_type_info *in = n->n_inputs <= 16 ? in_small : pq_calloc(n->n_inputs, sizeof *in);
    pq_type_info *out = n->n_outputs <= 16 ? out_small : pq_calloc(n->n_outputs, sizeof *out);
    enum pq_status st = PQ_OK;
    if (!in || !out) {
        st = pq_error_nomem(err, "inference");
        goto done;
    }
    for (uint32_t i = 0; i < n->n_inputs; i++) {
        memset(&in[i], 0, sizeof in[i]);
        uint32_t v = n->inputs[i];
        if (v == PQ_NONE) {
            in[i].shape = pq_shape_unknown();
            continue;
        }
        in[i].present = true;
        in[i].dtype = g->values[v].dtype;
        in[i].shape = g->values[v].shape;
        in[i].value = g->values[v].constant;
    }
    for (uint32_t i = 0; i < n->n_outputs; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].present = n->outputs[i] != PQ_NONE;
        out[i].shape = pq_shape_unknown();
    }
    pq_infer_ctx ctx = {g, n, in, n->n_inputs, out, n->n_outputs, err};
    st = fn(&ctx);
    if (st != PQ_OK) goto done;
    for (uint32_t i = 0; i < n->n_outputs; i++) {
        uint32_t v = n->outputs[i];
        if (v == PQ_NONE) continue;
        pq_value *val = &g->values[v];
        if (out[i].dtype != PQ_DTYPE_UNDEFINED) {
            if (val->dtype != PQ_DTYPE_UNDEFINED && val->dtype != out[i].dtype) {
                st =
                    pq_error_set(err, PQ_ERR_INVALID, "output '%s' is declared %s but computes %s",
                                 val->name, pq_dtype_name(val->dtype), pq_dtype_name(out[i].dtype));
                goto done;
            }
            val->dtype = out[i].dtype;
        }
        st = pq_merge_shape(&val->shape, &out[i].shape, val->name, err);
        if (st != PQ_OK) goto done;
    }
done:
    if (st != PQ_OK && err && st != PQ_ERR_NOMEM)
        pq_error_prefix(err, "node '%s' (%s): ", n->name, pq_op_name(n->op));
    if (in != in_small) pq_free(in);
    if (out != out_small) pq_free(out);
    return st;
}

enum pq_status pq_graph_infer_shapes(pq_graph *g, pq_error *err) {
    for (uint32_t i = 0; i < g->n_nodes; i++)
        PQ_TRY(pq_infer_node(g, i, err));
    return PQ_OK;
}

/* Copies the current types of captured values from the enclosing graph into subgraph sub. */
static void pq_refresh_captures(pq_graph *sub) {
    for (uint32_t v = 0; v < sub->n_values; v++) {
        pq_value *val = &sub->values[v];
        if (val->outer == PQ_NONE || !sub->parent || val->outer >= sub->parent->n_values) continue;
        const pq_value *ov = &sub->parent->values[val->outer];
        val->dtype = ov->dtype;
        val->shape = ov->shape;
    }
}

static enum pq_status pq_graph_sort_infer_at(pq_graph *g, int depth, pq_error *err) {
    if (depth > 32) return pq_error_set(err, PQ_ERR_INVALID, "subgraphs nested deeper than 32");
    PQ_TRY(pq_graph_toposort(g, err));
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        pq_node *n = &g->nodes[i];
        for (uint32_t a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].type != PQ_ATTR_GRAPH) continue;
            pq_graph *sub = n->attrs[a].u.graph;
            pq_refresh_captures(sub);
            enum pq_status st = pq_graph_sort_infer_at(sub, depth + 1, err);
            if (st != PQ_OK)
                return pq_error_prefix(err, "node '%s' (%s), subgraph '%s': ", n->name,
                                       pq_op_name(n->op), n->attrs[a].name);
        }
        PQ_TRY(pq_infer_node(g, i, err));
    }
    return PQ_OK;
}

enum pq_status pq_graph_sort_infer(pq_graph *g, pq_error *err) {
    return pq_graph_sort_infer_at(g, 0, err);
}
