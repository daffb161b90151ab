/* Reference kernels of the com.microsoft contrib ops on u8/s8: QLinearAdd / QLinearMul (exactly
 * piqc's DequantizeLinear x2 -> Add|Mul [-> fused Relu / Clip] -> QuantizeLinear in f32) and
 * QLinearGlobalAveragePool (integer plane sums, then f32). */
#include <math.h>

#include "ir/infer_piqc.h"
#include "ref_kernels.h"
#include "ref_util.h"

/* Element 0 of an optional zero point (absent: 0). */
static int32_t pq_rq_zp(const pq_tensor *z) {
    if (!z || pq_tensor_numel(z) < 1) return 0;
    return (int32_t)pq_dtype_load_i64(z->dtype, z->data, 0);
}

/* Element 0 of a scale as f32 (as DequantizeLinear / QuantizeLinear read an f32 scale). */
static float pq_rq_scale(const pq_tensor *s) {
    return pq_tensor_numel(s) < 1 ? 0.0f : (float)pq_dtype_load(s->dtype, s->data, 0);
}

/* r = DQ(a) + DQ(b) (QLinearMul: DQ(a) * DQ(b)) with each DQ (float)(q - zp) * s, then the
 * activation (clamp to [lo, hi], NaN kept), then y = clamp(nearbyintf(r / s_c) + zp_c) with NaN ->
 * zp_c: the f32 operations of the unfused QDQ form in the same order, so the two agree bit for bit.
 */
enum pq_status pq_ref_x_qlinear_add(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_x_prep(a, 2, 1));
    static const uint32_t need[] = {3, 4, 6};
    for (int i = 0; i < 3; i++)
        if (need[i] >= a->n_in || !a->in[need[i]])
            return pq_error_set(a->err, PQ_ERR_INVALID, "input %u is missing", need[i]);
    pq_activation act;
    PQ_TRY(pq_node_activation(a->node, &act, a->err));
    float lo = -INFINITY, hi = INFINITY;
    if (act.kind == PQ_ACT_RELU)
        lo = 0.0f;
    else if (act.kind == PQ_ACT_CLIP) {
        lo = act.alpha;
        hi = act.beta;
    } else if (act.kind != PQ_ACT_NONE)
        return pq_error_set(a->err, PQ_ERR_UNSUPPORTED,
                            "%s with fused activation %s is not supported (Relu, Clip are)",
                            pq_op_name(a->node->op), pq_act_name(act.kind));
    const bool mul = a->node->op == PQ_OP_QLINEAR_MUL;
    const pq_tensor *A = a->in[0], *B = a->in[3];
    pq_tensor *Y = a->out[0];
    const pq_tensor *opt[3] = {a->in[2], a->n_in > 5 ? a->in[5] : NULL,
                               a->n_in > 7 ? a->in[7] : NULL};
    float sa = pq_rq_scale(a->in[1]), sb = pq_rq_scale(a->in[4]), sc = pq_rq_scale(a->in[6]);
    int32_t za = pq_rq_zp(opt[0]), zb = pq_rq_zp(opt[1]), zc = pq_rq_zp(opt[2]);
    float qlo = Y->dtype == PQ_DTYPE_U8 ? 0.0f : -128.0f,
          qhi = Y->dtype == PQ_DTYPE_U8 ? 255.0f : 127.0f;
    if (pq_tensor_numel(Y) == 0) return PQ_OK;
    const pq_tensor *ops[2] = {A, B};
    pq_ref_bcast bc;
    pq_ref_bcast_it it;
    pq_ref_bcast_init_tensors(&bc, Y, 2, ops);
    for (pq_ref_bcast_first(&bc, &it); it.out < bc.numel; pq_ref_bcast_next(&bc, &it))
        for (int64_t j = 0; j < bc.inner; j++) {
            int64_t qa =
                pq_dtype_load_i64(A->dtype, A->data, (size_t)(it.off[0] + j * bc.istride[0]));
            int64_t qb =
                pq_dtype_load_i64(B->dtype, B->data, (size_t)(it.off[1] + j * bc.istride[1]));
            float fa = (float)(qa - za) * sa;
            float fb = (float)(qb - zb) * sb;
            float r = mul ? fa * fb : fa + fb;
            r = r < lo ? lo : r;
            r = r > hi ? hi : r;
            float q = nearbyintf(r / sc) + (float)zc;
            if (q != q) q = (float)zc;
            q = q < qlo ? qlo : (q > qhi ? qhi : q);
            pq_ref_store_int(Y->dtype, Y->data, (size_t)(it.out + j), (int64_t)q);
        }
    return PQ_OK;
}

/* QLinearGlobalAveragePool on NCHW: per plane the exact integer sum t = sum(q - zp_x) (i64), then
 * r = ((float)t * s_x) / (float)(H * W) and y = clamp(nearbyintf(r / s_y) + zp_y) with NaN -> zp_y.
 * (The f32 form DequantizeLinear -> GlobalAveragePool -> QuantizeLinear sums rounded f32 values
 * instead: the two can differ by 1 LSB where r / s_y lands near a rounding tie.) */
enum pq_status pq_ref_x_qlinear_gap(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_x_prep(a, 4, 1));
    if (pq_node_attr_int(a->node, "channels_last", 0) != 0)
        return pq_error_set(a->err, PQ_ERR_UNSUPPORTED, "channels_last = 1 is not supported");
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    float sx = pq_rq_scale(a->in[1]), sy = pq_rq_scale(a->in[3]);
    int32_t zx = pq_rq_zp(a->in[2]), zy = pq_rq_zp(a->n_in > 4 ? a->in[4] : NULL);
    float qlo = Y->dtype == PQ_DTYPE_U8 ? 0.0f : -128.0f,
          qhi = Y->dtype == PQ_DTYPE_U8 ? 255.0f : 127.0f;
    int64_t planes = X->rank >= 2 ? X->dims[0] * X->dims[1] : 0, hw = 1;
    for (int i = 2; i < X->rank; i++)
        hw *= X->dims[i];
    for (int64_t p = 0; p < planes; p++) {
        int64_t t = 0;
        for (int64_t i = 0; i < hw; i++)
            t += pq_dtype_load_i64(X->dtype, X->data, (size_t)(p * hw + i)) - zx;
        float r = ((float)t * sx) / (float)hw;
        float q = nearbyintf(r / sy) + (float)zy;
        if (q != q) q = (float)zy;
        q = q < qlo ? qlo : (q > qhi ? qhi : q);
        pq_ref_store_int(Y->dtype, Y->data, (size_t)p, (int64_t)q);
    }
    return PQ_OK;
}
