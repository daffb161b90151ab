/* ONNX writer: a piqc graph (top level) -> ONNX ModelProto (protobuf-c, constants as raw_data
 * initializers), written atomically; optionally with QLinearConv / QLinearMatMul rewritten into
 * the QDQ form (DequantizeLinear -> Conv/MatMul -> QuantizeLinear) that onnxruntime fuses. */
#ifndef PQ_ONNX_EXPORT_H
#define PQ_ONNX_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir/graph.h"
#include "ir/status.h"

/* Export options (zero-initialised = plain export at the lowest opset the graph allows). */
typedef struct pq_onnx_export_opts {
    bool qdq;             /* rewrite QLinearConv / QLinearMatMul with pq_onnx_qdq_expand first */
    int64_t min_opset;    /* lowest default-domain opset to write (0: no extra floor) */
    const char *producer; /* producer_name (NULL: "piqc") */
} pq_onnx_export_opts;

/* Serialises g as an ONNX model into a new pq_malloc buffer (*out, *len; the caller pq_frees it).
 * g is not changed (the writer works on a clone). What is written:
 *  - ir_version 8; the default-domain opset is the highest of the graph's own opset, 7,
 *    opts->min_opset and what the canonical forms of docs/canonical-ops.md present in g need
 *    (ReduceMean axes input -> 18, Squeeze axes input -> 13, LayerNormalization -> 17, per-channel
 *    QuantizeLinear/DequantizeLinear -> 13, ...); other domains of g are copied;
 *  - every constant a node or graph output reads as an initializer (raw_data, little-endian); a
 *    constant that is also a graph input (overridable initializer) is listed in both;
 *  - graph inputs and outputs with element type and shape (dim_value, dim_param for symbols,
 *    an empty dim when unknown); no value_info for intermediates;
 *  - attributes as typed; Cast 'to' / EyeLike 'dtype' back to ONNX type numbers; fused
 *    activations (attribute `activation`) expanded into their ONNX ops (Relu, Clip, ..., Gelu as
 *    Div/Erf/Add/Mul/Mul, Swish as Sigmoid/Mul); Softmax/LogSoftmax/Hardmax with coerce_2d
 *    written as Flatten -> op(axis -1) -> Reshape(Shape(x)) when the opset is 13 or later.
 * Statuses: UNSUPPORTED naming the node for If/Loop (subgraphs), piqc's own ops (PackedMatMul,
 * FakeQuant, ...) and QDQ rewrites that need non-constant scales; INVALID when g is a subgraph, a
 * graph input or output has an unknown dtype, or a fused activation is malformed; the statuses of
 * pq_onnx_qdq_expand; NOMEM. Messages start with "onnx export: ". */
enum pq_status pq_onnx_export_buffer(const pq_graph *g, const pq_onnx_export_opts *opts,
                                     uint8_t **out, size_t *len, pq_error *err);

/* Like pq_onnx_export_buffer, then writes the bytes to path atomically (temporary file in the
 * same folder, fsync, rename): on failure nothing is left at path. IO naming the path. */
enum pq_status pq_onnx_export_file(const pq_graph *g, const pq_onnx_export_opts *opts,
                                   const char *path, pq_error *err);

/* Rewrites, in place, every QLinearAdd / QLinearMul into DequantizeLinear(A), DequantizeLinear(B)
 * -> Add / Mul [-> its fused Relu / Clip] -> QuantizeLinear(C_scale, C_zero_point) (the plain
 * export does this too: they are not default-domain ops), every QLinearGlobalAveragePool into
 * DequantizeLinear(X) -> GlobalAveragePool -> QuantizeLinear(y_scale, y_zero_point) (same),
 * every QLinearConv into
 *   DequantizeLinear(x, s_x, zp_x), DequantizeLinear(w, s_w, zp_w[, axis 0 when s_w has more
 *   than one element]), [DequantizeLinear(bias_i32, s_x*s_w (f32), axis 0)] -> Conv (same
 *   attributes) -> QuantizeLinear(y, s_y, zp_y)
 * and every QLinearMatMul into DequantizeLinear(a), DequantizeLinear(b[, axis rank(b)-1]) ->
 * MatMul -> QuantizeLinear(y, s_y, zp_y). A per-tensor weight zero point used with per-channel
 * scales is expanded to one per channel; a missing one becomes zeros of the weight's dtype.
 * The result keeps the output names; the QLinear nodes are removed, the graph is re-sorted and its
 * types re-inferred. *n_rewritten (may be NULL) receives the count. UNSUPPORTED naming the node
 * when a bias is present but s_x or s_w is not a constant, when a zero point that must be expanded
 * is not a constant, or when QLinearMatMul has a per-row a_scale; INVALID from inference; NOMEM. */
enum pq_status pq_onnx_qdq_expand(pq_graph *g, uint32_t *n_rewritten, pq_error *err);

#endif
