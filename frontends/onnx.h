/* ONNX importer: reads an ONNX model (protobuf, IR versions 3-10, default-domain opsets 6-18)
 * into a piqc graph normalised to the canonical op forms of docs/canonical-ops.md, and loads
 * single TensorProto files (the test_data_set_N/input_K.pb files of the ONNX test suite). */
#ifndef PQ_ONNX_H
#define PQ_ONNX_H

#include <stddef.h>

#include "ir/graph.h"
#include "ir/status.h"
#include "ir/tensor.h"

/* Imports the model file at path. External tensor data is looked up relative to the file's
 * folder. On success *out is a new graph (caller destroys it with pq_graph_destroy), sorted
 * topologically; shapes are those declared in the file (no inference is run: callers run
 * pq_runtime_prepare). On failure *out is NULL and err holds a message starting with "onnx: ".
 * Returns PQ_OK; PQ_ERR_IO when the file cannot be read; PQ_ERR_INVALID for malformed or
 * inconsistent models (corrupt protobuf, undefined or twice-defined values, wrong attribute types,
 * bad tensor data, cycles); PQ_ERR_UNSUPPORTED for valid ONNX that piqc does not handle (operator,
 * domain, opset, IR version, element type); PQ_ERR_NOMEM. */
enum pq_status pq_onnx_import_file(const char *path, pq_graph **out, pq_error *err);

/* Like pq_onnx_import_file for a model held in memory (data/len are only read). base_dir is the
 * folder external data paths are relative to; NULL means external data is refused (INVALID). */
enum pq_status pq_onnx_import_buffer(const void *data, size_t len, const char *base_dir,
                                     pq_graph **out, pq_error *err);

/* Loads a file holding one serialized TensorProto. *out receives a new tensor (caller destroys
 * it); when name_out is non-NULL it receives the tensor's name (possibly "", free with pq_free).
 * Statuses as for pq_onnx_import_file; STRING/COMPLEX/FLOAT8/INT4 tensors are UNSUPPORTED. */
enum pq_status pq_onnx_load_tensor_file(const char *path, pq_tensor **out, char **name_out,
                                        pq_error *err);

#endif
