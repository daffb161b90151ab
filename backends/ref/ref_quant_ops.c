/* Reference kernels of the ONNX quantization ops: QuantizeLinear and DequantizeLinear (per tensor
 * or per axis) and DynamicQuantizeLinear (u8, scale and zero point from the data's range).
 * Rounding is half to even and results saturate to the integer type's range. */
#include <math.h>

#include "ref_kernels.h"
#include "ref_util.h"

/* Range of an integer quantized type. */
static void pq_q_range(enum pq_dtype t, double *lo, double *hi) {
    switch (t) {
    case PQ_DTYPE_I8:
        *lo = -128;
        *hi = 127;
        break;
    case PQ_DTYPE_U16:
        *lo = 0;
        *hi = 65535;
        break;
    case PQ_DTYPE_I16:
        *lo = -32768;
        *hi = 32767;
        break;
    case PQ_DTYPE_I32:
        *lo = -2147483648.0;
        *hi = 2147483647.0;
        break;
    case PQ_DTYPE_U32:
        *lo = 0;
        *hi = 4294967295.0;
        break;
    default:
        *lo = 0;
        *hi = 255;
        break;
    }
}

/* Works out how scale (and zero point) map onto x: per tensor (one element) or per axis.
 * Element i of x uses parameter (i / inner) % n. */
static enum pq_status pq_q_layout(const pq_kernel_args *a, const pq_tensor *X,
                                  const pq_tensor *scale, const pq_tensor *zp, int64_t *inner,
                                  int64_t *n) {
    int64_t ns = pq_tensor_numel(scale);
    if (zp && pq_tensor_numel(zp) != ns)
        return pq_error_set(a->err, PQ_ERR_INVALID,
                            "zero point has %lld elements but scale has %lld",
                            (long long)pq_tensor_numel(zp), (long long)ns);
    if (scale->rank == 0 || (ns == 1 && scale->rank <= 1)) {
        *inner = 1;
        *n = 1;
        return PQ_OK;
    }
    if (scale->rank != 1)
        return pq_error_set(a->err, PQ_ERR_INVALID, "scale must be a scalar or 1-D, has rank %d",
                            scale->rank);
    int rank = X->rank;
    int64_t axis = pq_node_attr_int(a->node, "axis", 1);
    if (axis < -rank || axis >= rank)
        return pq_error_set(a->err, PQ_ERR_INVALID, "axis %lld out of range for rank %d",
                            (long long)axis, rank);
    if (axis < 0) axis += rank;
    if (X->dims[axis] != ns)
        return pq_error_set(a->err, PQ_ERR_INVALID,
                            "scale has %lld elements but axis %lld of the input has %lld",
                            (long long)ns, (long long)axis, (long long)X->dims[axis]);
    int64_t outer;
    pq_ref_split_axis(rank, X->dims, (int)axis, &outer, n, inner);
    return PQ_OK;
}

enum pq_status pq_ref_ew_quantize(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 2, 1));
    const pq_tensor *X = a->in[0], *S = a->in[1], *Z = a->n_in > 2 ? a->in[2] : NULL;
    pq_tensor *Y = a->out[0];
    int64_t inner, n;
    PQ_TRY(pq_q_layout(a, X, S, Z, &inner, &n));
    double lo, hi;
    pq_q_range(Y->dtype, &lo, &hi);
    int64_t total = pq_tensor_numel(X);
    bool f32 = X->dtype == PQ_DTYPE_F32 && S->dtype == PQ_DTYPE_F32;
    for (int64_t i = 0; i < total; i++) {
        int64_t c = n == 1 ? 0 : (i / inner) % n;
        double zp = Z ? (double)pq_dtype_load_i64(Z->dtype, Z->data, (size_t)c) : 0.0;
        double q;
        if (f32) /* divide in f32 like the ONNX reference, then round half to even */
            q = nearbyintf(((const float *)X->data)[i] / ((const float *)S->data)[c]);
        else
            q = nearbyint(pq_dtype_load(X->dtype, X->data, (size_t)i) /
                          pq_dtype_load(S->dtype, S->data, (size_t)c));
        q += zp;
        if (q != q) q = zp;
        q = q < lo ? lo : (q > hi ? hi : q);
        pq_ref_store_int(Y->dtype, Y->data, (size_t)i, (int64_t)q);
    }
    return PQ_OK;
}

enum pq_status pq_ref_ew_dequantize(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 2, 1));
    const pq_tensor *X = a->in[0], *S = a->in[1], *Z = a->n_in > 2 ? a->in[2] : NULL;
    pq_tensor *Y = a->out[0];
    int64_t inner, n;
    PQ_TRY(pq_q_layout(a, X, S, Z, &inner, &n));
    int64_t total = pq_tensor_numel(X);
    for (int64_t i = 0; i < total; i++) {
        int64_t c = n == 1 ? 0 : (i / inner) % n;
        int64_t zp = Z ? pq_dtype_load_i64(Z->dtype, Z->data, (size_t)c) : 0;
        int64_t x = pq_dtype_load_i64(X->dtype, X->data, (size_t)i);
        double s = pq_dtype_load(S->dtype, S->data, (size_t)c);
        if (Y->dtype == PQ_DTYPE_F32)
            ((float *)Y->data)[i] = (float)(x - zp) * (float)s; /* f32 product like ONNX */
        else
            pq_dtype_store(Y->dtype, Y->data, (size_t)i, (double)(x - zp) * s);
    }
    return PQ_OK;
}

enum pq_status pq_ref_ew_dynamic_quantize(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 1, 3));
    const pq_tensor *X = a->in[0];
    int64_t total = pq_tensor_numel(X);
    float mn = 0.0f, mx = 0.0f; /* the range always includes 0 */
    for (int64_t i = 0; i < total; i++) {
        float v = (float)pq_dtype_load(X->dtype, X->data, (size_t)i);
        if (v < mn) mn = v;
        if (v > mx) mx = v;
    }
    float scale = (mx - mn) / 255.0f;
    float zpf = scale != 0.0f ? nearbyintf(0.0f - mn / scale) : 0.0f;
    zpf = zpf < 0.0f ? 0.0f : (zpf > 255.0f ? 255.0f : zpf);
    uint8_t zp = (uint8_t)zpf;
    uint8_t *y = a->out[0]->data;
    for (int64_t i = 0; i < total; i++) {
        float v = (float)pq_dtype_load(X->dtype, X->data, (size_t)i);
        float q = scale != 0.0f ? nearbyintf(v / scale) + zpf : zpf;
        if (q != q) q = zpf;
        y[i] = (uint8_t)(q < 0.0f ? 0.0f : (q > 255.0f ? 255.0f : q));
    }
    pq_dtype_store(a->out[1]->dtype, a->out[1]->data, 0, scale);
    pq_ref_store_int(a->out[2]->dtype, a->out[2]->data, 0, zp);
    return PQ_OK;
}
