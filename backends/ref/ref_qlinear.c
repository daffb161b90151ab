/* Reference kernel of QLinearAdd (com.microsoft contrib op on u8/s8): exactly the composition of
 * piqc's DequantizeLinear, DequantizeLinear -> Add [-> fused Relu / Clip] -> QuantizeLinear in f32.
 */
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

/* r = DQ(a) + DQ(b) with each DQ (float)(q - zp) * s, then the activation (clamp to [lo, hi],
 * NaN kept), then y = clamp(nearbyintf(r / s_c) + zp_c) with NaN -> zp_c: the f32 operations of
 * the unfused QDQ form in the same order, so the two agree bit for bit. */
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
                            "QLinearAdd with fused activation %s is not supported (Relu, Clip are)",
                            pq_act_name(act.kind));
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
            float r = fa + fb;
            r = r < lo ? lo : r;
            r = r > hi ? hi : r;
            float q = nearbyintf(r / sc) + (float)zc;
            if (q != q) q = (float)zc;
            q = q < qlo ? qlo : (q > qhi ? qhi : q);
            pq_ref_store_int(Y->dtype, Y->data, (size_t)(it.out + j), (int64_t)q);
        }
    return PQ_OK;
}
