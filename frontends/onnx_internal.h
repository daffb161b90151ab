/* Private interface between the ONNX importer's files (onnx_import.c, onnx_tensor.c,
 * onnx_opset.c): protobuf helpers, element types, tensor conversion and op normalisation. */
#ifndef PQ_ONNX_INTERNAL_H
#define PQ_ONNX_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"
#include "onnx.pb-c.h"

/* Nesting limits: subgraphs (If/Loop bodies) and protobuf message levels. */
#define PQ_ONNX_MAX_SUBGRAPH_DEPTH 32
#define PQ_ONNX_MAX_MESSAGE_DEPTH 200
/* Bounds on hostile models: attributes per node and distinct opset domains (real models use
 * fewer than 16 of each; the graph's attribute and opset arrays grow one entry at a time). */
#define PQ_ONNX_MAX_NODE_ATTRS 64
#define PQ_ONNX_MAX_OPSETS 64
/* Largest file read (protobuf's own limit is 2 GiB). */
#define PQ_ONNX_MAX_FILE_BYTES ((size_t)1 << 31)

/* protobuf-c allocator routed through pq_malloc/pq_free. */
extern ProtobufCAllocator pq_onnx_pb_allocator;

/* Unpacks a message of descriptor desc from buf after checking the nesting depth of the wire data.
 * Returns NULL and sets INVALID/NOMEM (message prefixed "onnx: <what>: ") on failure. Free the
 * result with protobuf_c_message_free_unpacked(msg, &pq_onnx_pb_allocator). */
ProtobufCMessage *pq_onnx_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
                                 size_t len, const char *what, pq_error *err);

/* Reads a whole regular file into a new pq_malloc buffer. IO / INVALID (too large) / NOMEM. */
enum pq_status pq_onnx_read_file(const char *path, uint8_t **data, size_t *len, pq_error *err);
/* Folder part of path as a new pq_malloc string ("." when path has no slash); NULL on NOMEM. */
char *pq_onnx_dirname(const char *path);

/* ONNX TensorProto.DataType name ("FLOAT", "STRING", "FLOAT8E4M3FN", "type 99" for unknown
 * values; buf holds at least 32 bytes and is used for unknown values). */
const char *pq_onnx_type_name(int32_t dt, char *buf, size_t size);
/* piqc dtype of an ONNX data type; false for STRING, COMPLEX, FLOAT8, INT4 and unknown values. */
bool pq_onnx_dtype(int32_t dt, enum pq_dtype *out);

/* Converts a TensorProto to a new tensor. label names it in messages when the proto has no name.
 * base_dir: folder of the model for external data (NULL refuses external data). Messages have no
 * "onnx: " prefix ("tensor 'w': ..."); INVALID, UNSUPPORTED, IO, NOMEM. */
enum pq_status pq_onnx_tensor_from_proto(const Onnx__TensorProto *tp, const char *label,
                                         const char *base_dir, pq_tensor **out, pq_error *err);

/* ---- onnx_opset.c ---- */

/* What normalisation needs to know about the model being imported. */
typedef struct pq_onnx_ctx {
    const char *base_dir; /* may be NULL */
    int64_t opset;        /* default-domain opset version */
} pq_onnx_ctx;

/* piqc op of an ONNX op type of the default domain (Upsample maps to Resize); false if none. */
bool pq_onnx_op_lookup(const char *op_type, enum pq_op *op);
/* Name of an attribute type as ONNX spells it ("INTS"). */
const char *pq_onnx_attr_type_name(int type);
/* Checks attribute name of an ONNX op against the table of expected types. INVALID
 * ("attribute 'strides' has type FLOAT, expected INTS") on mismatch; unknown names pass. */
enum pq_status pq_onnx_check_attr_type(const char *op_type, const char *name, int type,
                                       pq_error *err);
/* Builds the tensor of a Constant node from its attributes (value, value_float(s), value_int(s)).
 * UNSUPPORTED for sparse/string values, INVALID when none or several are given. */
enum pq_status pq_onnx_constant_tensor(const Onnx__NodeProto *np, const pq_onnx_ctx *ctx,
                                       pq_tensor **out, pq_error *err);
/* Rewrites node nid (already added with its ONNX inputs, outputs and attributes) into the canonical
 * form of docs/canonical-ops.md for the model's opset: attributes become constant inputs, legacy
 * attributes are dropped or translated, Upsample becomes Resize. May add values and nodes to g
 * (node pointers into g are invalidated). Messages have no prefix; the caller adds node context. */
enum pq_status pq_onnx_normalize(pq_graph *g, uint32_t nid, const char *op_type,
                                 const pq_onnx_ctx *ctx, pq_error *err);
/* True for the reductions whose axes moved from an attribute to input 1 at opset 18 (ReduceMean,
 * Max, Min, Prod, L1, L2, SumSquare, LogSum, LogSumExp; ReduceSum moved at 13). The importer
 * converts the attribute below 18; the exporter needs opset 18 when input 1 is present. */
bool pq_onnx_is_reduce_axes18(enum pq_op op);

#endif
