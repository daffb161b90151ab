/* Test helper: builds small ONNX models and tensors in memory with the protobuf-c structs
 * (generated from onnx.proto) and serialises them, so importer tests need no fixture files. */
#ifndef PQ_TEST_ONNX_BUILDER_H
#define PQ_TEST_ONNX_BUILDER_H

#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"

/* Every object below is owned by the builder until ob_free_all(). */
void ob_free_all(void);

/* Value info of a tensor: elem is an ONNX data type, rank -1 = no shape; a dim < 0 uses the
 * symbol syms[i] (or none when syms is NULL or syms[i] is NULL). */
Onnx__ValueInfoProto *ob_value(const char *name, int elem, int rank, const int64_t *dims,
                               const char *const *syms);
/* Node with comma-separated input and output names ("a,,b" gives an empty middle input). */
Onnx__NodeProto *ob_node(const char *op, const char *name, const char *inputs, const char *outputs);
void ob_node_domain(Onnx__NodeProto *n, const char *domain);
void ob_attr_int(Onnx__NodeProto *n, const char *name, int64_t v);
void ob_attr_float(Onnx__NodeProto *n, const char *name, float v);
void ob_attr_string(Onnx__NodeProto *n, const char *name, const char *v);
void ob_attr_ints(Onnx__NodeProto *n, const char *name, const int64_t *v, size_t count);
void ob_attr_floats(Onnx__NodeProto *n, const char *name, const float *v, size_t count);
void ob_attr_tensor(Onnx__NodeProto *n, const char *name, Onnx__TensorProto *t);
void ob_attr_graph(Onnx__NodeProto *n, const char *name, Onnx__GraphProto *g);

/* Tensor with raw little-endian data (raw may be NULL for none). */
Onnx__TensorProto *ob_tensor_raw(const char *name, int dtype, int rank, const int64_t *dims,
                                 const void *raw, size_t raw_len);
Onnx__TensorProto *ob_tensor_f32(const char *name, int rank, const int64_t *dims, const float *vals,
                                 size_t n);
Onnx__TensorProto *ob_tensor_i64(const char *name, int rank, const int64_t *dims,
                                 const int64_t *vals, size_t n);
/* Tensor using the int32_data field (for i8/u8/i16/u16/bool/f16/bf16/i32). */
Onnx__TensorProto *ob_tensor_i32data(const char *name, int dtype, int rank, const int64_t *dims,
                                     const int32_t *vals, size_t n);
/* Tensor using uint64_data (u32/u64). */
Onnx__TensorProto *ob_tensor_u64data(const char *name, int dtype, int rank, const int64_t *dims,
                                     const uint64_t *vals, size_t n);
/* Adds an external_data entry key=value and marks the tensor EXTERNAL. */
void ob_tensor_external(Onnx__TensorProto *t, const char *key, const char *value);

Onnx__GraphProto *ob_graph(const char *name);
void ob_graph_input(Onnx__GraphProto *g, Onnx__ValueInfoProto *v);
void ob_graph_output(Onnx__GraphProto *g, Onnx__ValueInfoProto *v);
void ob_graph_value_info(Onnx__GraphProto *g, Onnx__ValueInfoProto *v);
void ob_graph_node(Onnx__GraphProto *g, Onnx__NodeProto *n);
void ob_graph_init(Onnx__GraphProto *g, Onnx__TensorProto *t);

/* Serialises a model with ir_version ir and one default-domain opset; *len receives the size.
 * The buffer is owned by the builder. */
uint8_t *ob_model(Onnx__GraphProto *g, int64_t ir, int64_t opset, size_t *len);
/* Serialises a tensor (buffer owned by the builder). */
uint8_t *ob_pack_tensor(Onnx__TensorProto *t, size_t *len);

#endif
