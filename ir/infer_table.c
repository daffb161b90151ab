/* The shape-inference table: one rule per op, indexed by PQ_OP_<ID>. A test walks ops.def and
 * fails when an op has no entry. */
#include "infer_rules.h"

const pq_infer_fn pq_infer_table[PQ_OP_COUNT] = {
    /* ---- elementwise ---- */
    /* ---- end elementwise ---- */
    /* ---- nn ---- */
    /* ---- end nn ---- */
    /* ---- movement ---- */
    /* ---- end movement ---- */
};
