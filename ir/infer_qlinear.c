/* Shape-inference rules of the u8/s8 contrib ops (com.microsoft) between INT8 layers: QLinearAdd
 * and QLinearMul (A and B broadcast numpy-style, result in A's dtype, optional fused Relu / Clip)
 * and QLinearGlobalAveragePool (NCHW only). */
#include "infer_piqc.h"
#include "infer_rules.h"

/* INVALID unless input i is absent-or-u8/s8 matching q (q UNDEFINED: any of them). */
static enum pq_status pq_iq_quant(pq_infer_ctx *c, uint32_t i, enum pq_dtype q, const char *what) {
    enum pq_dtype t = c->in[i].dtype;
    if (t == PQ_DTYPE_UNDEFINED) return PQ_OK;
    if (t != PQ_DTYPE_U8 && t != PQ_DTYPE_I8)
        return pq_error_set(c->err, PQ_ERR_INVALID, "input %u (%s) must be u8 or i8, got %s", i,
                            what, pq_dtype_name(t));
    if (q != PQ_DTYPE_UNDEFINED && t != q)
        return pq_error_set(c->err, PQ_ERR_INVALID, "input %u (%s) is %s, expected %s", i, what,
                            pq_dtype_name(t), pq_dtype_name(q));
    return PQ_OK;
}

/* INVALID unless input i (a scale or zero point) has one element when its shape is known. */
static enum pq_status pq_iq_scalar(pq_infer_ctx *c, uint32_t i, const char *what) {
    const pq_shape *s = &c->in[i].shape;
    if (s->rank > 1 || (s->rank == 1 && pq_dim_known(s->dims[0]) && s->dims[0].size != 1))
        return pq_error_set(c->err, PQ_ERR_INVALID, "input %u (%s) must have one value", i, what);
    return PQ_OK;
}

/* Input i (zero point of operand x), optional: absent, or the same dtype as x, one value. */
static enum pq_status pq_iq_zero_point(pq_infer_ctx *c, uint32_t i, uint32_t x, const char *what) {
    if (i >= c->n_in || !c->in[i].present) return PQ_OK;
    PQ_TRY(pq_iq_quant(c, i, c->in[x].dtype, what));
    return pq_iq_scalar(c, i, what);
}

enum pq_status pq_infer_x_qlinear_add(pq_infer_ctx *c) {
    PQ_TRY(pq_infer_x_need(c, 0, "A"));
    PQ_TRY(pq_infer_x_need(c, 3, "B"));
    PQ_TRY(pq_infer_x_float(c, 1, "A_scale"));
    PQ_TRY(pq_infer_x_float(c, 4, "B_scale"));
    PQ_TRY(pq_infer_x_float(c, 6, "C_scale"));
    PQ_TRY(pq_iq_quant(c, 0, PQ_DTYPE_UNDEFINED, "A"));
    PQ_TRY(pq_iq_quant(c, 3, c->in[0].dtype, "B"));
    PQ_TRY(pq_iq_scalar(c, 1, "A_scale"));
    PQ_TRY(pq_iq_scalar(c, 4, "B_scale"));
    PQ_TRY(pq_iq_scalar(c, 6, "C_scale"));
    PQ_TRY(pq_iq_zero_point(c, 2, 0, "A_zero_point"));
    PQ_TRY(pq_iq_zero_point(c, 5, 3, "B_zero_point"));
    PQ_TRY(pq_iq_zero_point(c, 7, 0, "C_zero_point"));
    pq_activation act;
    PQ_TRY(pq_node_activation(c->node, &act, c->err));
    if (act.kind != PQ_ACT_NONE && act.kind != PQ_ACT_RELU && act.kind != PQ_ACT_CLIP)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED,
                            "fused activation %s is not supported on %s (Relu, Clip are)",
                            pq_act_name(act.kind), pq_op_name(c->node->op));
    pq_shape s;
    PQ_TRY(pq_infer_broadcast(&c->in[0].shape, &c->in[3].shape, &s, c->err));
    enum pq_dtype t = c->in[0].dtype != PQ_DTYPE_UNDEFINED ? c->in[0].dtype : c->in[3].dtype;
    c->out[0].dtype = t;
    c->out[0].shape = s;
    return PQ_OK;
}

enum pq_status pq_infer_x_qlinear_gap(pq_infer_ctx *c) {
    PQ_TRY(pq_infer_x_need(c, 0, "X"));
    PQ_TRY(pq_infer_x_float(c, 1, "x_scale"));
    PQ_TRY(pq_infer_x_float(c, 3, "y_scale"));
    PQ_TRY(pq_iq_quant(c, 0, PQ_DTYPE_UNDEFINED, "X"));
    PQ_TRY(pq_iq_scalar(c, 1, "x_scale"));
    PQ_TRY(pq_iq_scalar(c, 3, "y_scale"));
    PQ_TRY(pq_iq_zero_point(c, 2, 0, "x_zero_point"));
    PQ_TRY(pq_iq_zero_point(c, 4, 0, "y_zero_point"));
    if (pq_node_attr_int(c->node, "channels_last", 0) != 0)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "channels_last = 1 is not supported");
    const pq_shape *x = &c->in[0].shape;
    if (x->rank >= 0 && x->rank < 3)
        return pq_error_set(c->err, PQ_ERR_INVALID, "X must have rank >= 3, got %d", x->rank);
    c->out[0].dtype = c->in[0].dtype;
    c->out[0].shape = *x;
    for (int i = 2; i < x->rank; i++)
        c->out[0].shape.dims[i] = pq_dim_of(1);
    return PQ_OK;
}
