/* Op builders for passes: one call adds a node with a fresh, uniquely named output value, or a
 * constant from host data; plus small queries passes need when matching (producer, scalars). */
#ifndef PQ_BUILD_H
#define PQ_BUILD_H

#include "graph.h"

/* Adds a node of op reading inputs[0..n_inputs) (PQ_NONE omits an optional input) with one fresh
 * output value of unknown type. The value is named from name_hint ("hint", "hint_1", ...; NULL ->
 * "_tN") and the node from name_hint too (unique among node names; NULL -> the op name). Set
 * attributes afterwards with pq_node_set_*, then type the output with pq_infer_node. out_value
 * and out_node may be NULL. Node and value pointers taken before the call are invalidated.
 * INTERNAL on a bad op or input id, NOMEM. */
enum pq_status pq_build(pq_graph *g, enum pq_op op, const char *name_hint, const uint32_t *inputs,
                        uint32_t n_inputs, uint32_t *out_value, uint32_t *out_node, pq_error *err);

/* Adds a constant f32 (or i64) tensor of the given rank and dims holding numel elements copied
 * from data (data may be NULL for zeros; dims may be NULL when rank is 0). The value is uniquely
 * named from name_hint. INVALID for a bad rank or dims, NOMEM. */
enum pq_status pq_build_const_f32(pq_graph *g, const char *name_hint, int rank, const int64_t *dims,
                                  const float *data, uint32_t *out_value, pq_error *err);
enum pq_status pq_build_const_i64(pq_graph *g, const char *name_hint, int rank, const int64_t *dims,
                                  const int64_t *data, uint32_t *out_value, pq_error *err);

/* Node id producing value v, or PQ_NONE (input, constant, captured, bad id). */
uint32_t pq_value_producer(const pq_graph *g, uint32_t v);
/* Constant tensor of value v, or NULL. */
const pq_tensor *pq_value_constant(const pq_graph *g, uint32_t v);
/* True when v is a constant with exactly one element of dtype f32, f64, f16, bf16 or any
 * integer type; *out receives it as float. */
bool pq_value_const_scalar_f32(const pq_graph *g, uint32_t v, float *out);

#endif
