/* Reference kernels of piqc's own ops (domain "piqc"), entries of pq_ref_kernels: the kernels of
 * backends/piqc_ops.h on the scalar quant kernel table. */
#ifndef PQ_REF_PIQC_H
#define PQ_REF_PIQC_H

#include "ref.h"

/* Hadamard, FakeQuant, PackedMatMul, PackedConv (statuses as in backends/piqc_ops.h). */
enum pq_status pq_ref_piqc_hadamard(const pq_kernel_args *a);
enum pq_status pq_ref_piqc_fake_quant(const pq_kernel_args *a);
enum pq_status pq_ref_piqc_packed_matmul(const pq_kernel_args *a);
enum pq_status pq_ref_piqc_packed_conv(const pq_kernel_args *a);

#endif
