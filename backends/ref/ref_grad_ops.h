/* Reference kernels of the backward ops the gradient rules emit (domain "piqc", internal;
 * shape rules and attributes in ir/infer_grad_ops.h), entries of pq_ref_kernels. */
#ifndef PQ_REF_GRAD_OPS_H
#define PQ_REF_GRAD_OPS_H

#include "ref.h"

/* MaxPoolGrad(x, g) -> dx: zeros, then for every output position of the MaxPool with the node's
 * attributes, g added at the window's maximum: the first valid element in window order (depth,
 * row, column) unless a later one is strictly greater, compared on f32 values as the MaxPool
 * reference kernel does (a tie gives the whole gradient to the first). Sums in double, one rounding
 * per element. */
enum pq_status pq_ref_grad_max_pool(const pq_kernel_args *a);
/* AveragePoolGrad(x, g) -> dx: every output position's g divided by its divisor (the valid window
 * elements, or with count_include_pad the positions inside the padded input, as AveragePool) and
 * added to each valid window element. Sums in double. */
enum pq_status pq_ref_grad_average_pool(const pq_kernel_args *a);
/* ResizeGrad(g, x_shape, roi?, scales?, sizes?) -> dx: the transpose of the Resize with the node's
 * attributes: each g element added to the input elements its output element reads, times their
 * weights (the same taps as Resize; tf_crop_and_resize positions outside the input read the
 * extrapolation value and give nothing). Sums in double. INVALID / UNSUPPORTED as Resize. */
enum pq_status pq_ref_grad_resize(const pq_kernel_args *a);

#endif
