/* Reference kernels of piqc's own ops: the shared kernels of backends/piqc_ops.c run on the
 * scalar quant kernel table (pq_qkernels_scalar), the oracle of every ISA. */
#include "ref_piqc.h"

#include "backends/piqc_ops.h"
#include "backends/quant/qkernels.h"

enum pq_status pq_ref_piqc_hadamard(const pq_kernel_args *a) {
    return pq_piqc_hadamard_run(&pq_qkernels_scalar, a);
}

enum pq_status pq_ref_piqc_fake_quant(const pq_kernel_args *a) {
    return pq_piqc_fake_quant_run(a);
}

enum pq_status pq_ref_piqc_packed_matmul(const pq_kernel_args *a) {
    return pq_piqc_packed_matmul_run(&pq_qkernels_scalar, a);
}

enum pq_status pq_ref_piqc_packed_conv(const pq_kernel_args *a) {
    return pq_piqc_packed_conv_run(&pq_qkernels_scalar, a);
}
