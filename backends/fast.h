/* Optimised kernels (oneDNN, SIMD) that the runtime tries before the reference kernel. A fast
 * kernel returns PQ_ERR_UNSUPPORTED, without touching outputs or err->msg, for any case it does
 * not handle; the runtime then runs the reference kernel. PIQC_BACKEND=ref disables them. */
#ifndef PQ_FAST_H
#define PQ_FAST_H

#include "backends/ref/ref.h"

/* One optional fast kernel per op (NULL = none), table in backends/fast_table.c. */
extern const pq_kernel_fn pq_fast_kernels[PQ_OP_COUNT];

/* Runs the fast kernel of the node's op when there is one and the environment allows it,
 * falling back to pq_ref_run on PQ_ERR_UNSUPPORTED. */
enum pq_status pq_kernel_run(const pq_kernel_args *a);

#endif
