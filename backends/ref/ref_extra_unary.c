/* Reference kernels of the further elementwise ops: Tan, Sinh, Cosh, Asin, Acos, Atan, Asinh,
 * Acosh, Atanh and Shrink (f32 fast path, other dtypes through double), CastLike (Cast to the
 * second input's dtype), BitShift (unsigned, broadcasting) and EyeLike. */
#include <math.h>
#include <string.h>

#include "ref_kernels.h"
#include "ref_util.h"

enum pq_status pq_ref_x_prep(const pq_kernel_args *a, uint32_t n_in, uint32_t n_out) {
    PQ_TRY(pq_ref_check_args(a, n_in, 0));
    for (uint32_t i = 0; i < n_out; i++)
        if (i >= a->n_out || !a->out[i])
            return pq_error_set(a->err, PQ_ERR_INVALID, "output %u is missing", i);
    PQ_TRY(pq_ref_mv_outputs(a));
    return pq_ref_check_args(a, n_in, n_out);
}

static double pq_x_unary_f64(enum pq_op op, double x, double lambd, double bias) {
    switch (op) {
    case PQ_OP_TAN:
        return tan(x);
    case PQ_OP_SINH:
        return sinh(x);
    case PQ_OP_COSH:
        return cosh(x);
    case PQ_OP_ASIN:
        return asin(x);
    case PQ_OP_ACOS:
        return acos(x);
    case PQ_OP_ATAN:
        return atan(x);
    case PQ_OP_ASINH:
        return asinh(x);
    case PQ_OP_ACOSH:
        return acosh(x);
    case PQ_OP_ATANH:
        return atanh(x);
    case PQ_OP_SHRINK:
        return x < -lambd ? x + bias : (x > lambd ? x - bias : 0.0);
    default:
        return 0.0;
    }
}

static float pq_x_unary_f32(enum pq_op op, float x, float lambd, float bias) {
    switch (op) {
    case PQ_OP_TAN:
        return tanf(x);
    case PQ_OP_SINH:
        return sinhf(x);
    case PQ_OP_COSH:
        return coshf(x);
    case PQ_OP_ASIN:
        return asinf(x);
    case PQ_OP_ACOS:
        return acosf(x);
    case PQ_OP_ATAN:
        return atanf(x);
    case PQ_OP_ASINH:
        return asinhf(x);
    case PQ_OP_ACOSH:
        return acoshf(x);
    case PQ_OP_ATANH:
        return atanhf(x);
    case PQ_OP_SHRINK:
        return x < -lambd ? x + bias : (x > lambd ? x - bias : 0.0f);
    default:
        return 0.0f;
    }
}

enum pq_status pq_ref_x_unary(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_x_prep(a, 1, 1));
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    enum pq_op op = a->node->op;
    float lambd = pq_node_attr_float(a->node, "lambd", 0.5f);
    float bias = pq_node_attr_float(a->node, "bias", 0.0f);
    int64_t n = pq_tensor_numel(X);
    if (X->dtype == PQ_DTYPE_F32) {
        const float *x = X->data;
        float *y = Y->data;
        for (int64_t i = 0; i < n; i++)
            y[i] = pq_x_unary_f32(op, x[i], lambd, bias);
    } else if (pq_dtype_is_float(X->dtype)) {
        for (int64_t i = 0; i < n; i++)
            pq_dtype_store(
                Y->dtype, Y->data, (size_t)i,
                pq_x_unary_f64(op, pq_dtype_load(X->dtype, X->data, (size_t)i), lambd, bias));
    } else {
        /* Shrink on integers: exact for integer lambd/bias, C conversion of the result */
        for (int64_t i = 0; i < n; i++) {
            int64_t v = pq_dtype_load_i64(X->dtype, X->data, (size_t)i);
            double x = pq_ref_dtype_unsigned(X->dtype) ? (double)(uint64_t)v : (double)v;
            double r = pq_x_unary_f64(op, x, lambd, bias);
            if (pq_ref_dtype_unsigned(X->dtype))
                pq_ref_store_int(Y->dtype, Y->data, (size_t)i, (int64_t)(uint64_t)r);
            else
                pq_ref_store_int(Y->dtype, Y->data, (size_t)i, (int64_t)r);
        }
    }
    return PQ_OK;
}

enum pq_status pq_ref_x_cast_like(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_x_prep(a, 2, 1));
    /* Cast reads only input 0 and the output's dtype */
    return pq_ref_ew_cast(a);
}

enum pq_status pq_ref_x_bit_shift(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_x_prep(a, 2, 1));
    const pq_tensor *ops[2] = {a->in[0], a->in[1]};
    pq_tensor *Y = a->out[0];
    if (pq_tensor_numel(Y) == 0) return PQ_OK;
    bool left = strcmp(pq_node_attr_string(a->node, "direction", "LEFT"), "LEFT") == 0;
    unsigned bits = (unsigned)(8 * pq_dtype_size(Y->dtype));
    pq_ref_bcast b;
    pq_ref_bcast_it it;
    pq_ref_bcast_init_tensors(&b, Y, 2, ops);
    for (pq_ref_bcast_first(&b, &it); it.out < b.numel; pq_ref_bcast_next(&b, &it))
        for (int64_t j = 0; j < b.inner; j++) {
            uint64_t x = (uint64_t)pq_dtype_load_i64(ops[0]->dtype, ops[0]->data,
                                                   (size_t)(it.off[0] + j * b.istride[0]));
            uint64_t s = (uint64_t)pq_dtype_load_i64(ops[1]->dtype, ops[1]->data,
                                                   (size_t)(it.off[1] + j * b.istride[1]));
            uint64_t r = s >= bits ? 0 : (left ? x << s : x >> s);
            pq_ref_store_int(Y->dtype, Y->data, (size_t)(it.out + j), (int64_t)r);
        }
    return PQ_OK;
}

enum pq_status pq_ref_x_eye_like(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_x_prep(a, 1, 1));
    pq_tensor *Y = a->out[0];
    int64_t k = pq_node_attr_int(a->node, "k", 0);
    int64_t rows = Y->dims[0], cols = Y->dims[1];
    memset(Y->data, 0, Y->nbytes);
    for (int64_t i = 0; i < rows; i++) {
        if (k > cols || -k > rows) break;
        int64_t j = i + k;
        if (j >= 0 && j < cols) pq_dtype_store(Y->dtype, Y->data, (size_t)(i * cols + j), 1.0);
    }
    return PQ_OK;
}
