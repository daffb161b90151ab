/* The operator enum and per-op metadata generated from ops.def: ONNX names, arity limits
 * and flags. Lookups by ONNX op type for the importers. */
#ifndef PQ_OP_H
#define PQ_OP_H

#include <stdbool.h>
#include <stdint.h>

#define PQ_VARIADIC 0xFFFF

enum pq_op_flags {
    PQ_OPF_UNARY = 1u << 0,
    PQ_OPF_BINARY = 1u << 1,
    PQ_OPF_SUBGRAPH = 1u << 2,
    PQ_OPF_NONDIFF = 1u << 3,
    PQ_OPF_DYNAMIC = 1u << 4,
    PQ_OPF_INTERNAL = 1u << 5,
};

enum pq_op {
#define PQ_OP(id, name, min_in, max_in, min_out, max_out, flags) PQ_OP_##id,
#include "ops.def"
#undef PQ_OP
    PQ_OP_COUNT
};

typedef struct pq_op_info {
    const char *name; /* ONNX op type, e.g. "Conv" */
    uint16_t min_inputs, max_inputs;
    uint16_t min_outputs, max_outputs;
    uint32_t flags;
} pq_op_info;

/* Metadata of op (NULL if op is out of range). */
const pq_op_info *pq_op_get(enum pq_op op);
/* ONNX name of op ("?" if out of range). */
const char *pq_op_name(enum pq_op op);
/* Finds an op by ONNX op type (exact, case-sensitive); false if piqc has no such op. */
bool pq_op_from_name(const char *name, enum pq_op *out);

#endif
