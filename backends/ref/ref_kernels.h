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
/* ---- end nn ---- */

/* ---- movement ---- */
/* ---- end movement ---- */

#endif
