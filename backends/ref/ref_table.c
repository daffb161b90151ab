/* The reference-kernel table: one kernel per op, indexed by PQ_OP_<ID>, and the dispatcher.
 * A test walks ops.def and fails when an op has no kernel. */
#include "ref_kernels.h"

const pq_kernel_fn pq_ref_kernels[PQ_OP_COUNT] = {
    /* ---- elementwise ---- */
    /* ---- end elementwise ---- */
    /* ---- nn ---- */
    /* ---- end nn ---- */
    /* ---- movement ---- */
    /* ---- end movement ---- */
};

enum pq_status pq_ref_run(const pq_kernel_args *a) {
    const pq_node *n = a->node;
    pq_kernel_fn fn = (unsigned)n->op < PQ_OP_COUNT ? pq_ref_kernels[n->op] : NULL;
    if (!fn)
        return pq_error_set(a->err, PQ_ERR_UNSUPPORTED, "node '%s' (%s): no reference kernel",
                            n->name, pq_op_name(n->op));
    enum pq_status st = fn(a);
    if (st != PQ_OK) pq_error_prefix(a->err, "node '%s' (%s): ", n->name, pq_op_name(n->op));
    return st;
}
