/* Shape rules of the backward ops the gradient rules emit (domain "piqc", internal,
 * non-differentiable; ir/infer_grad_ops.c): MaxPoolGrad, AveragePoolGrad, ResizeGrad. */
#ifndef PQ_INFER_GRAD_OPS_H
#define PQ_INFER_GRAD_OPS_H

#include "infer.h"

/* MaxPoolGrad(x, g) / AveragePoolGrad(x, g) -> dx. Attributes: those of MaxPool / AveragePool
 * (kernel_shape, strides, pads, dilations, auto_pad, ceil_mode, count_include_pad). x: float of
 * rank 3 to 5; g: x's dtype, the shape the pool gives for x. dx: x's dtype and shape. INVALID
 * (message naming the problem) otherwise, as the pool's own rule. */
enum pq_status pq_infer_grad_pool(pq_infer_ctx *c);

/* ResizeGrad(g, x_shape, roi?, scales?, sizes?) -> dx. Attributes: those of Resize. g: float;
 * x_shape: i64 vector, the shape of the Resize's input; roi, scales, sizes: the Resize's inputs
 * 1..3. g must have the shape Resize gives for an input of shape x_shape. dx: g's dtype, shape
 * x_shape (rank only while x_shape is not known). */
enum pq_status pq_infer_grad_resize(pq_infer_ctx *c);

#endif
