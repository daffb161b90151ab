/* Private declarations of the shape-inference rules, one section per rules file, gathered
 * into pq_infer_table by infer_table.c. */
#ifndef PQ_INFER_RULES_H
#define PQ_INFER_RULES_H

#include "infer.h"

/* ---- infer_elementwise.c / infer_reduce.c (elementwise, activations, reductions, quant ops) ----
 */
enum pq_status pq_infer_ew_binary(pq_infer_ctx *c);
enum pq_status pq_infer_ew_variadic(pq_infer_ctx *c);
enum pq_status pq_infer_ew_where(pq_infer_ctx *c);
enum pq_status pq_infer_ew_unary(pq_infer_ctx *c);
enum pq_status pq_infer_ew_clip(pq_infer_ctx *c);
enum pq_status pq_infer_ew_cast(pq_infer_ctx *c);
enum pq_status pq_infer_ew_softmax(pq_infer_ctx *c);
enum pq_status pq_infer_ew_reduce(pq_infer_ctx *c);
enum pq_status pq_infer_ew_argmax(pq_infer_ctx *c);
enum pq_status pq_infer_ew_topk(pq_infer_ctx *c);
enum pq_status pq_infer_ew_cumsum(pq_infer_ctx *c);
enum pq_status pq_infer_ew_quantize(pq_infer_ctx *c);
enum pq_status pq_infer_ew_dequantize(pq_infer_ctx *c);
enum pq_status pq_infer_ew_dynamic_quantize(pq_infer_ctx *c);
/* ---- end elementwise ---- */

/* ---- infer_nn.c (matmul, gemm, conv, pooling, normalisation, recurrent) ---- */
enum pq_status pq_infer_matmul(pq_infer_ctx *c);
enum pq_status pq_infer_matmul_integer(pq_infer_ctx *c);
enum pq_status pq_infer_gemm(pq_infer_ctx *c);
enum pq_status pq_infer_conv(pq_infer_ctx *c);
enum pq_status pq_infer_conv_integer(pq_infer_ctx *c);
enum pq_status pq_infer_conv_transpose(pq_infer_ctx *c);
enum pq_status pq_infer_max_pool(pq_infer_ctx *c);
enum pq_status pq_infer_average_pool(pq_infer_ctx *c);
enum pq_status pq_infer_global_pool(pq_infer_ctx *c); /* GlobalAveragePool, GlobalMaxPool */
enum pq_status pq_infer_batch_normalization(pq_infer_ctx *c);
enum pq_status pq_infer_layer_normalization(pq_infer_ctx *c);
enum pq_status pq_infer_instance_normalization(pq_infer_ctx *c);
enum pq_status pq_infer_lp_normalization(pq_infer_ctx *c);
/* infer_rnn.c */
enum pq_status pq_infer_lstm(pq_infer_ctx *c);
enum pq_status pq_infer_gru(pq_infer_ctx *c);
enum pq_status pq_infer_rnn(pq_infer_ctx *c);
/* ---- end nn ---- */

/* ---- infer_movement.c / infer_control.c (shape, data movement, constants, control flow) ---- */
enum pq_status pq_infer_reshape(pq_infer_ctx *c);
enum pq_status pq_infer_flatten(pq_infer_ctx *c);
enum pq_status pq_infer_transpose(pq_infer_ctx *c);
enum pq_status pq_infer_concat(pq_infer_ctx *c);
enum pq_status pq_infer_split(pq_infer_ctx *c);
enum pq_status pq_infer_slice(pq_infer_ctx *c);
enum pq_status pq_infer_gather(pq_infer_ctx *c);
enum pq_status pq_infer_gather_elements(pq_infer_ctx *c);
enum pq_status pq_infer_squeeze(pq_infer_ctx *c);
enum pq_status pq_infer_unsqueeze(pq_infer_ctx *c);
enum pq_status pq_infer_expand(pq_infer_ctx *c);
enum pq_status pq_infer_tile(pq_infer_ctx *c);
enum pq_status pq_infer_pad(pq_infer_ctx *c);
enum pq_status pq_infer_resize(pq_infer_ctx *c);
enum pq_status pq_infer_depth_to_space(pq_infer_ctx *c);
enum pq_status pq_infer_space_to_depth(pq_infer_ctx *c);
enum pq_status pq_infer_shape(pq_infer_ctx *c);
enum pq_status pq_infer_size(pq_infer_ctx *c);
enum pq_status pq_infer_constant_of_shape(pq_infer_ctx *c);
enum pq_status pq_infer_constant(pq_infer_ctx *c);
enum pq_status pq_infer_range(pq_infer_ctx *c);
enum pq_status pq_infer_one_hot(pq_infer_ctx *c);
enum pq_status pq_infer_trilu(pq_infer_ctx *c);
enum pq_status pq_infer_identity(pq_infer_ctx *c);
enum pq_status pq_infer_dropout(pq_infer_ctx *c);
enum pq_status pq_infer_if(pq_infer_ctx *c);
enum pq_status pq_infer_loop(pq_infer_ctx *c);
/* Helpers shared by infer_movement.c and infer_control.c. Shape of a rank with unknown dims: */
pq_shape pq_infer_mv_rank_only(int rank);
/* Length of a 1-D input when its shape is known, else -1. */
int64_t pq_infer_mv_len1(const pq_type_info *t);
/* Reads optional int input idx into v[0..*n) (max entries); *known false when absent/unknown.
 * INVALID for a non-integer or rank > 1 tensor, UNSUPPORTED when longer than max. */
enum pq_status pq_infer_mv_ints(pq_infer_ctx *c, uint32_t idx, const char *what, int64_t *v,
                                int max, int *n, bool *known);
/* INVALID when a known rank is below lo. */
enum pq_status pq_infer_mv_need_rank(pq_infer_ctx *c, int rank, int lo, const char *what);
/* Normalises one Slice axis of size dim (ONNX clamping rules); first index and length. */
void pq_infer_slice_axis(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t *first,
                         int64_t *len);
/* ---- end movement ---- */

/* ---- extra (infer_extra*.c: further ONNX ops) ---- */
/* infer_extra.c: helpers (INVALID when input i is missing / not a float / not i32 or i64) */
enum pq_status pq_infer_x_need(pq_infer_ctx *c, uint32_t i, const char *what);
enum pq_status pq_infer_x_float(pq_infer_ctx *c, uint32_t i, const char *what);
enum pq_status pq_infer_x_index(pq_infer_ctx *c, uint32_t i, const char *what);
/* Maps an ONNX TensorProto element type code to a piqc dtype; false when piqc lacks it. */
bool pq_infer_x_onnx_dtype(int64_t code, enum pq_dtype *out);
enum pq_status pq_infer_x_unary(pq_infer_ctx *c); /* Tan ... Atanh, Shrink */
enum pq_status pq_infer_x_cast_like(pq_infer_ctx *c);
enum pq_status pq_infer_x_bit_shift(pq_infer_ctx *c);
enum pq_status pq_infer_x_eye_like(pq_infer_ctx *c);
enum pq_status pq_infer_x_non_zero(pq_infer_ctx *c);
enum pq_status pq_infer_x_gather_nd(pq_infer_ctx *c);
enum pq_status pq_infer_x_scatter_elements(pq_infer_ctx *c); /* also Scatter */
enum pq_status pq_infer_x_scatter_nd(pq_infer_ctx *c);
enum pq_status pq_infer_x_compress(pq_infer_ctx *c);
enum pq_status pq_infer_x_reverse_sequence(pq_infer_ctx *c);
enum pq_status pq_infer_x_unique(pq_infer_ctx *c);
/* infer_extra_nn.c */
enum pq_status pq_infer_x_mvn(pq_infer_ctx *c);
enum pq_status pq_infer_x_lrn(pq_infer_ctx *c);
enum pq_status pq_infer_x_det(pq_infer_ctx *c);
enum pq_status pq_infer_x_einsum(pq_infer_ctx *c);
enum pq_status pq_infer_x_max_unpool(pq_infer_ctx *c);
enum pq_status
pq_infer_x_loss(pq_infer_ctx *c); /* NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss */
enum pq_status pq_infer_x_qlinear_matmul(pq_infer_ctx *c);
enum pq_status pq_infer_x_qlinear_conv(pq_infer_ctx *c);
enum pq_status pq_infer_x_grid_sample(pq_infer_ctx *c);
enum pq_status pq_infer_x_qlinear_add(pq_infer_ctx *c); /* infer_qlinear.c, also QLinearMul */
enum pq_status pq_infer_x_qlinear_gap(pq_infer_ctx *c); /* QLinearGlobalAveragePool */
/* ---- end extra ---- */

#endif
