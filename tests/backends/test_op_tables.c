/* Op-table completeness: every op of ir/ops.def must have a shape-inference rule and a
 * reference kernel, and its metadata must be coherent. */
#include <criterion/criterion.h>

#include "backends/ref/ref.h"
#include "ir/ir.h"

Test(op_tables, every_op_has_inference_and_reference_kernel) {
    int missing = 0;
    for (int op = 0; op < PQ_OP_COUNT; op++) {
        if (!pq_infer_table[op]) {
            cr_log_error("op %s has no shape inference rule", pq_op_name(op));
            missing++;
        }
        if (!pq_ref_kernels[op]) {
            cr_log_error("op %s has no reference kernel", pq_op_name(op));
            missing++;
        }
    }
    cr_assert_eq(missing, 0, "%d op table entries missing", missing);
}

Test(op_tables, metadata_is_coherent) {
    for (int op = 0; op < PQ_OP_COUNT; op++) {
        const pq_op_info *oi = pq_op_get(op);
        cr_assert(oi->min_inputs <= oi->max_inputs, "%s", oi->name);
        cr_assert(oi->min_outputs <= oi->max_outputs, "%s", oi->name);
        enum pq_op back;
        cr_assert(pq_op_from_name(oi->name, &back) && back == (enum pq_op)op, "%s", oi->name);
    }
}
