/* The op metadata table, generated from ops.def by the X-macro, and name lookup.
 * Adding an op is one line in ops.def plus its entries in each folder's table. */
#include "op.h"

#include <string.h>

static const pq_op_info pq_op_table[PQ_OP_COUNT] = {
#define PQ_OP(id, nm, min_in, max_in, min_out, max_out, fl)                                        \
    [PQ_OP_##id] = {.name = nm,                                                                    \
                    .min_inputs = min_in,                                                          \
                    .max_inputs = max_in,                                                          \
                    .min_outputs = min_out,                                                        \
                    .max_outputs = max_out,                                                        \
                    .flags = fl},
#include "ops.def"
#undef PQ_OP
};

const pq_op_info *pq_op_get(enum pq_op op) {
    return (unsigned)op < PQ_OP_COUNT ? &pq_op_table[op] : NULL;
}

const char *pq_op_name(enum pq_op op) {
    return (unsigned)op < PQ_OP_COUNT ? pq_op_table[op].name : "?";
}

bool pq_op_from_name(const char *name, enum pq_op *out) {
    for (int i = 0; i < PQ_OP_COUNT; i++) {
        if (strcmp(pq_op_table[i].name, name) == 0) {
            *out = (enum pq_op)i;
            return true;
        }
    }
    return false;
}
