/* The shape-inference table: one rule per op, indexed by PQ_OP_<ID>. A test walks ops.def and
 * fails when an op has no entry. */
#include "infer_rules.h"

const pq_infer_fn pq_infer_table[PQ_OP_COUNT] = {
    /* ---- elementwise ---- */
    /* ---- end elementwise ---- */
    /* ---- nn ---- */
    /* ---- end nn ---- */
    /* ---- movement ---- */
    [PQ_OP_RESHAPE] = pq_infer_reshape,
    [PQ_OP_FLATTEN] = pq_infer_flatten,
    [PQ_OP_TRANSPOSE] = pq_infer_transpose,
    [PQ_OP_CONCAT] = pq_infer_concat,
    [PQ_OP_SPLIT] = pq_infer_split,
    [PQ_OP_SLICE] = pq_infer_slice,
    [PQ_OP_GATHER] = pq_infer_gather,
    [PQ_OP_GATHER_ELEMENTS] = pq_infer_gather_elements,
    [PQ_OP_SQUEEZE] = pq_infer_squeeze,
    [PQ_OP_UNSQUEEZE] = pq_infer_unsqueeze,
    [PQ_OP_EXPAND] = pq_infer_expand,
    [PQ_OP_TILE] = pq_infer_tile,
    [PQ_OP_PAD] = pq_infer_pad,
    [PQ_OP_RESIZE] = pq_infer_resize,
    [PQ_OP_DEPTH_TO_SPACE] = pq_infer_depth_to_space,
    [PQ_OP_SPACE_TO_DEPTH] = pq_infer_space_to_depth,
    [PQ_OP_SHAPE] = pq_infer_shape,
    [PQ_OP_SIZE] = pq_infer_size,
    [PQ_OP_CONSTANT_OF_SHAPE] = pq_infer_constant_of_shape,
    [PQ_OP_CONSTANT] = pq_infer_constant,
    [PQ_OP_RANGE] = pq_infer_range,
    [PQ_OP_ONE_HOT] = pq_infer_one_hot,
    [PQ_OP_TRILU] = pq_infer_trilu,
    [PQ_OP_IDENTITY] = pq_infer_identity,
    [PQ_OP_DROPOUT] = pq_infer_dropout,
    [PQ_OP_IF] = pq_infer_if,
    [PQ_OP_LOOP] = pq_infer_loop,
    /* ---- end movement ---- */
};
