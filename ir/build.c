/* Op builders for passes: a node with one fresh uniquely named output, constants from host data,
 * and the small value queries (producer, constant scalar) pattern matchers need. */
#include "build.h"

#include <string.h>

#include "edit.h"

enum pq_status pq_build(pq_graph *g, enum pq_op op, const char *name_hint, const uint32_t *inputs,
                        uint32_t n_inputs, uint32_t *out_value, uint32_t *out_node, pq_error *err) {
    if ((unsigned)op >= PQ_OP_COUNT)
        return pq_error_set(err, PQ_ERR_INTERNAL, "build: bad op %d", op);
    for (uint32_t i = 0; i < n_inputs; i++)
        if (inputs[i] != PQ_NONE && inputs[i] >= g->n_values)
            return pq_error_set(err, PQ_ERR_INTERNAL, "build %s: input %u has bad value id %u",
                                pq_op_name(op), i, inputs[i]);
    const char *hint = name_hint && *name_hint ? name_hint : NULL;
    uint32_t v;
    PQ_TRY(pq_graph_add_temp(g, hint, &v, err));
    const char *nn = pq_graph_fresh_node_name(g, hint ? hint : pq_op_name(op));
    if (!nn) return pq_error_nomem(err, "node name");
    uint32_t nid;
    PQ_TRY(pq_graph_add_node(g, op, nn, inputs, n_inputs, &v, 1, &nid, err));
    if (out_value) *out_value = v;
    if (out_node) *out_node = nid;
    return PQ_OK;
}

static enum pq_status pq_build_const(pq_graph *g, const char *name_hint, enum pq_dtype dt, int rank,
                                     const int64_t *dims, const void *data, uint32_t *out_value,
                                     pq_error *err) {
    pq_tensor *t = pq_tensor_create(dt, rank, dims, err);
    if (!t) return err ? err->status : PQ_ERR_NOMEM;
    if (data && t->nbytes) memcpy(t->data, data, t->nbytes);
    return pq_graph_add_constant(g, name_hint && *name_hint ? name_hint : "const", t, out_value,
                                 err);
}

enum pq_status pq_build_const_f32(pq_graph *g, const char *name_hint, int rank, const int64_t *dims,
                                  const float *data, uint32_t *out_value, pq_error *err) {
    return pq_build_const(g, name_hint, PQ_DTYPE_F32, rank, dims, data, out_value, err);
}

enum pq_status pq_build_const_i64(pq_graph *g, const char *name_hint, int rank, const int64_t *dims,
                                  const int64_t *data, uint32_t *out_value, pq_error *err) {
    return pq_build_const(g, name_hint, PQ_DTYPE_I64, rank, dims, data, out_value, err);
}

uint32_t pq_value_producer(const pq_graph *g, uint32_t v) {
    return v < g->n_values ? g->values[v].producer : PQ_NONE;
}

const pq_tensor *pq_value_constant(const pq_graph *g, uint32_t v) {
    return v < g->n_values ? g->values[v].constant : NULL;
}

bool pq_value_const_scalar_f32(const pq_graph *g, uint32_t v, float *out) {
    const pq_tensor *t = pq_value_constant(g, v);
    if (!t || !t->data || pq_tensor_numel(t) != 1) return false;
    if (pq_dtype_is_float(t->dtype)) {
        *out = (float)pq_dtype_load(t->dtype, t->data, 0);
        return true;
    }
    if (pq_dtype_is_integer(t->dtype)) {
        *out = (float)pq_dtype_load_i64(t->dtype, t->data, 0);
        return true;
    }
    return false;
}
