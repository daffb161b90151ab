/* Private declarations of the reference kernels, one section per kernel file, gathered into
 * pq_ref_kernels by ref_table.c. */
#ifndef PQ_REF_KERNELS_H
#define PQ_REF_KERNELS_H

#include "ref.h"

/* ---- elementwise ---- */
enum pq_status pq_ref_ew_binary(const pq_kernel_args *a);
enum pq_status pq_ref_ew_variadic(const pq_kernel_args *a);
enum pq_status pq_ref_ew_where(const pq_kernel_args *a);
enum pq_status pq_ref_ew_unary(const pq_kernel_args *a);
enum pq_status pq_ref_ew_clip(const pq_kernel_args *a);
enum pq_status pq_ref_ew_cast(const pq_kernel_args *a);
enum pq_status pq_ref_ew_softmax(const pq_kernel_args *a);
enum pq_status pq_ref_ew_reduce(const pq_kernel_args *a);
enum pq_status pq_ref_ew_argmax(const pq_kernel_args *a);
enum pq_status pq_ref_ew_topk(const pq_kernel_args *a);
enum pq_status pq_ref_ew_cumsum(const pq_kernel_args *a);
enum pq_status pq_ref_ew_quantize(const pq_kernel_args *a);
enum pq_status pq_ref_ew_dequantize(const pq_kernel_args *a);
enum pq_status pq_ref_ew_dynamic_quantize(const pq_kernel_args *a);
/* ---- end elementwise ---- */

/* ---- nn ---- */
/* ref_matmul.c, ref_conv.c, ref_pool.c, ref_norm.c, ref_rnn.c, ref_integer.c */
enum pq_status pq_ref_matmul(const pq_kernel_args *a);
enum pq_status pq_ref_matmul_integer(const pq_kernel_args *a);
enum pq_status pq_ref_gemm(const pq_kernel_args *a);
enum pq_status pq_ref_conv(const pq_kernel_args *a);
enum pq_status pq_ref_conv_integer(const pq_kernel_args *a);
enum pq_status pq_ref_conv_transpose(const pq_kernel_args *a);
enum pq_status pq_ref_conv_add(const pq_kernel_args *a); /* ref_conv_add.c */
enum pq_status pq_ref_max_pool(const pq_kernel_args *a);
enum pq_status pq_ref_average_pool(const pq_kernel_args *a);
enum pq_status pq_ref_global_average_pool(const pq_kernel_args *a);
enum pq_status pq_ref_global_max_pool(const pq_kernel_args *a);
enum pq_status pq_ref_batch_normalization(const pq_kernel_args *a);
enum pq_status pq_ref_layer_normalization(const pq_kernel_args *a);
enum pq_status pq_ref_instance_normalization(const pq_kernel_args *a);
enum pq_status pq_ref_lp_normalization(const pq_kernel_args *a);
enum pq_status pq_ref_lstm(const pq_kernel_args *a);
enum pq_status pq_ref_gru(const pq_kernel_args *a);
enum pq_status pq_ref_rnn(const pq_kernel_args *a);
/* ---- end nn ---- */

/* ---- movement ---- */
/* Shared by the movement kernel files (defined in ref_movement.c). */
/* Runs the node's shape-inference rule on the actual inputs (their data as known values) and
 * gives every present output its dtype and shape: allocates outputs whose data is NULL, checks
 * planned ones (INTERNAL on a mismatch). Propagates the rule's INVALID/UNSUPPORTED; INVALID when
 * an output shape cannot be determined from the inputs. */
enum pq_status pq_ref_mv_outputs(const pq_kernel_args *a);
/* Copies a strided view in row-major order: dst[i...] = src[sum(idx[k] * sstride[k])] for the
 * index space dims[0..rank) (rank <= PQ_MAX_RANK); strides in elements, may be 0 or negative;
 * es is the element size in bytes. */
void pq_ref_mv_walk(void *dst, const void *src, int rank, const int64_t *dims,
                    const int64_t *sstride, size_t es);
/* Kernels: ref_movement.c, ref_shape.c, ref_pad_resize.c, ref_control.c. pq_ref_mv_copy copies
 * the input bytes (Reshape, Flatten, Squeeze, Unsqueeze). */
enum pq_status pq_ref_mv_copy(const pq_kernel_args *a);
enum pq_status pq_ref_transpose(const pq_kernel_args *a);
enum pq_status pq_ref_concat(const pq_kernel_args *a);
enum pq_status pq_ref_split(const pq_kernel_args *a);
enum pq_status pq_ref_slice(const pq_kernel_args *a);
enum pq_status pq_ref_gather(const pq_kernel_args *a);
enum pq_status pq_ref_gather_elements(const pq_kernel_args *a);
enum pq_status pq_ref_expand(const pq_kernel_args *a);
enum pq_status pq_ref_tile(const pq_kernel_args *a);
enum pq_status pq_ref_pad(const pq_kernel_args *a);
enum pq_status pq_ref_resize(const pq_kernel_args *a);
enum pq_status pq_ref_depth_to_space(const pq_kernel_args *a);
enum pq_status pq_ref_space_to_depth(const pq_kernel_args *a);
enum pq_status pq_ref_shape(const pq_kernel_args *a);
enum pq_status pq_ref_size(const pq_kernel_args *a);
enum pq_status pq_ref_constant_of_shape(const pq_kernel_args *a);
enum pq_status pq_ref_constant(const pq_kernel_args *a);
enum pq_status pq_ref_range(const pq_kernel_args *a);
enum pq_status pq_ref_one_hot(const pq_kernel_args *a);
enum pq_status pq_ref_trilu(const pq_kernel_args *a);
enum pq_status pq_ref_identity(const pq_kernel_args *a);
enum pq_status pq_ref_dropout(const pq_kernel_args *a);
enum pq_status pq_ref_if(const pq_kernel_args *a);
enum pq_status pq_ref_loop(const pq_kernel_args *a);
/* Resize's source taps along one axis (ref_pad_resize.c), shared with ResizeGrad: output
 * coordinate o reads the n input indices idx[] with weights w[], or (outside, with
 * tf_crop_and_resize) the extrapolation value. */
#define PQ_REF_RESIZE_TAPS 4
typedef struct pq_ref_resize_tap {
    int n;
    bool outside;
    int64_t idx[PQ_REF_RESIZE_TAPS];
    double w[PQ_REF_RESIZE_TAPS];
} pq_ref_resize_tap;
/* The taps of every axis for a Resize with node n's attributes from input dims xd to output dims
 * yd (rank r), with the optional roi, scales and sizes tensors (NULL when absent): *block (one
 * pq_malloc block, the caller frees it) holds sum(yd) taps, axis i's starting at ax[i].
 * INVALID for an unknown mode or a roi of the wrong length, UNSUPPORTED for antialias, NOMEM.
 * *block is NULL (and PQ_OK) when the output is empty. */
enum pq_status pq_ref_resize_taps(const pq_node *n, int r, const int64_t *xd, const int64_t *yd,
                                  const pq_tensor *roi, const pq_tensor *sc, const pq_tensor *sz,
                                  pq_ref_resize_tap **block, pq_ref_resize_tap **ax, pq_error *err);
/* ---- end movement ---- */

/* ---- extra ---- */
/* ref_extra_unary.c, ref_extra_index.c, ref_extra_nn.c (further ONNX ops). pq_ref_x_prep checks
 * inputs 0..n_in-1 and outputs 0..n_out-1 are present, then gives outputs their shapes through
 * pq_ref_mv_outputs (allocating them when unplanned). */
enum pq_status pq_ref_x_prep(const pq_kernel_args *a, uint32_t n_in, uint32_t n_out);
enum pq_status pq_ref_x_unary(const pq_kernel_args *a); /* Tan ... Atanh, Shrink */
enum pq_status pq_ref_x_cast_like(const pq_kernel_args *a);
enum pq_status pq_ref_x_bit_shift(const pq_kernel_args *a);
enum pq_status pq_ref_x_eye_like(const pq_kernel_args *a);
enum pq_status pq_ref_x_non_zero(const pq_kernel_args *a);
enum pq_status pq_ref_x_gather_nd(const pq_kernel_args *a);
enum pq_status pq_ref_x_scatter_elements(const pq_kernel_args *a); /* also Scatter */
enum pq_status pq_ref_x_scatter_nd(const pq_kernel_args *a);
enum pq_status pq_ref_x_compress(const pq_kernel_args *a);
enum pq_status pq_ref_x_reverse_sequence(const pq_kernel_args *a);
enum pq_status pq_ref_x_unique(const pq_kernel_args *a);
enum pq_status pq_ref_x_mvn(const pq_kernel_args *a);
enum pq_status pq_ref_x_lrn(const pq_kernel_args *a);
enum pq_status pq_ref_x_det(const pq_kernel_args *a);
enum pq_status pq_ref_x_einsum(const pq_kernel_args *a);
enum pq_status pq_ref_x_max_unpool(const pq_kernel_args *a);
enum pq_status pq_ref_x_nll_loss(const pq_kernel_args *a);
enum pq_status pq_ref_x_sce_loss(const pq_kernel_args *a);
enum pq_status pq_ref_x_qlinear_matmul(const pq_kernel_args *a);
enum pq_status pq_ref_x_qlinear_conv(const pq_kernel_args *a);
enum pq_status pq_ref_x_grid_sample(const pq_kernel_args *a);
enum pq_status pq_ref_x_qlinear_add(const pq_kernel_args *a); /* ref_qlinear.c, also QLinearMul */
enum pq_status pq_ref_x_qlinear_gap(const pq_kernel_args *a); /* QLinearGlobalAveragePool */
/* ---- end extra ---- */

#endif
