/* The reference-kernel table: one kernel per op, indexed by PQ_OP_<ID>, and the dispatcher.
 * A test walks ops.def and fails when an op has no kernel. */
#include "ref_kernels.h"

const pq_kernel_fn pq_ref_kernels[PQ_OP_COUNT] = {
    /* ---- elementwise ---- */
    [PQ_OP_ADD] = pq_ref_ew_binary,
    [PQ_OP_SUB] = pq_ref_ew_binary,
    [PQ_OP_MUL] = pq_ref_ew_binary,
    [PQ_OP_DIV] = pq_ref_ew_binary,
    [PQ_OP_POW] = pq_ref_ew_binary,
    [PQ_OP_MOD] = pq_ref_ew_binary,
    [PQ_OP_PRELU] = pq_ref_ew_binary,
    [PQ_OP_EQUAL] = pq_ref_ew_binary,
    [PQ_OP_GREATER] = pq_ref_ew_binary,
    [PQ_OP_GREATER_OR_EQUAL] = pq_ref_ew_binary,
    [PQ_OP_LESS] = pq_ref_ew_binary,
    [PQ_OP_LESS_OR_EQUAL] = pq_ref_ew_binary,
    [PQ_OP_AND] = pq_ref_ew_binary,
    [PQ_OP_OR] = pq_ref_ew_binary,
    [PQ_OP_XOR] = pq_ref_ew_binary,
    [PQ_OP_MAX] = pq_ref_ew_variadic,
    [PQ_OP_MIN] = pq_ref_ew_variadic,
    [PQ_OP_SUM] = pq_ref_ew_variadic,
    [PQ_OP_MEAN] = pq_ref_ew_variadic,
    [PQ_OP_WHERE] = pq_ref_ew_where,
    [PQ_OP_SQRT] = pq_ref_ew_unary,
    [PQ_OP_EXP] = pq_ref_ew_unary,
    [PQ_OP_LOG] = pq_ref_ew_unary,
    [PQ_OP_NEG] = pq_ref_ew_unary,
    [PQ_OP_ABS] = pq_ref_ew_unary,
    [PQ_OP_RECIPROCAL] = pq_ref_ew_unary,
    [PQ_OP_FLOOR] = pq_ref_ew_unary,
    [PQ_OP_CEIL] = pq_ref_ew_unary,
    [PQ_OP_ROUND] = pq_ref_ew_unary,
    [PQ_OP_SIGN] = pq_ref_ew_unary,
    [PQ_OP_ERF] = pq_ref_ew_unary,
    [PQ_OP_TANH] = pq_ref_ew_unary,
    [PQ_OP_SIGMOID] = pq_ref_ew_unary,
    [PQ_OP_SIN] = pq_ref_ew_unary,
    [PQ_OP_COS] = pq_ref_ew_unary,
    [PQ_OP_RELU] = pq_ref_ew_unary,
    [PQ_OP_LEAKY_RELU] = pq_ref_ew_unary,
    [PQ_OP_ELU] = pq_ref_ew_unary,
    [PQ_OP_SELU] = pq_ref_ew_unary,
    [PQ_OP_CELU] = pq_ref_ew_unary,
    [PQ_OP_HARD_SIGMOID] = pq_ref_ew_unary,
    [PQ_OP_HARD_SWISH] = pq_ref_ew_unary,
    [PQ_OP_SOFTPLUS] = pq_ref_ew_unary,
    [PQ_OP_SOFTSIGN] = pq_ref_ew_unary,
    [PQ_OP_THRESHOLDED_RELU] = pq_ref_ew_unary,
    [PQ_OP_NOT] = pq_ref_ew_unary,
    [PQ_OP_IS_NAN] = pq_ref_ew_unary,
    [PQ_OP_IS_INF] = pq_ref_ew_unary,
    [PQ_OP_CLIP] = pq_ref_ew_clip,
    [PQ_OP_CAST] = pq_ref_ew_cast,
    [PQ_OP_SOFTMAX] = pq_ref_ew_softmax,
    [PQ_OP_LOG_SOFTMAX] = pq_ref_ew_softmax,
    [PQ_OP_HARDMAX] = pq_ref_ew_softmax,
    [PQ_OP_REDUCE_MEAN] = pq_ref_ew_reduce,
    [PQ_OP_REDUCE_SUM] = pq_ref_ew_reduce,
    [PQ_OP_REDUCE_MAX] = pq_ref_ew_reduce,
    [PQ_OP_REDUCE_MIN] = pq_ref_ew_reduce,
    [PQ_OP_REDUCE_PROD] = pq_ref_ew_reduce,
    [PQ_OP_REDUCE_L1] = pq_ref_ew_reduce,
    [PQ_OP_REDUCE_L2] = pq_ref_ew_reduce,
    [PQ_OP_REDUCE_SUM_SQUARE] = pq_ref_ew_reduce,
    [PQ_OP_REDUCE_LOG_SUM] = pq_ref_ew_reduce,
    [PQ_OP_REDUCE_LOG_SUM_EXP] = pq_ref_ew_reduce,
    [PQ_OP_ARG_MAX] = pq_ref_ew_argmax,
    [PQ_OP_ARG_MIN] = pq_ref_ew_argmax,
    [PQ_OP_TOP_K] = pq_ref_ew_topk,
    [PQ_OP_CUM_SUM] = pq_ref_ew_cumsum,
    [PQ_OP_QUANTIZE_LINEAR] = pq_ref_ew_quantize,
    [PQ_OP_DEQUANTIZE_LINEAR] = pq_ref_ew_dequantize,
    [PQ_OP_DYNAMIC_QUANTIZE_LINEAR] = pq_ref_ew_dynamic_quantize,
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
