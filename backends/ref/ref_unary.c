/* Reference kernels of the elementwise unary ops: math functions and activations (f32 fast path,
 * other floats in double, exact integers for Neg/Abs/Sign/Relu), Not/IsNaN/IsInf, Clip and Cast. */
#include <math.h>
#include <string.h>

#include "ref_act.h"
#include "ref_kernels.h"
#include "ref_util.h"

/* Attribute parameters of the activations, with ONNX defaults. */
typedef struct pq_unary_params {
    double alpha, beta, gamma;
} pq_unary_params;

static pq_unary_params pq_unary_get_params(const pq_node *n) {
    pq_unary_params p = {0, 0, 0};
    switch (n->op) {
    case PQ_OP_LEAKY_RELU:
        p.alpha = pq_node_attr_float(n, "alpha", 0.01f);
        break;
    case PQ_OP_ELU:
    case PQ_OP_CELU:
    case PQ_OP_THRESHOLDED_RELU:
        p.alpha = pq_node_attr_float(n, "alpha", 1.0f);
        break;
    case PQ_OP_SELU:
        p.alpha = pq_node_attr_float(n, "alpha", 1.67326319217681884765625f);
        p.gamma = pq_node_attr_float(n, "gamma", 1.05070102214813232421875f);
        break;
    case PQ_OP_HARD_SIGMOID:
        p.alpha = pq_node_attr_float(n, "alpha", 0.2f);
        p.beta = pq_node_attr_float(n, "beta", 0.5f);
        break;
    default:
        break;
    }
    return p;
}

static double pq_unary_f64(enum pq_op op, double x, const pq_unary_params *p) {
    switch (op) {
    case PQ_OP_SQRT:
        return sqrt(x);
    case PQ_OP_EXP:
        return exp(x);
    case PQ_OP_LOG:
        return log(x);
    case PQ_OP_NEG:
        return -x;
    case PQ_OP_ABS:
        return fabs(x);
    case PQ_OP_RECIPROCAL:
        return 1.0 / x;
    case PQ_OP_FLOOR:
        return floor(x);
    case PQ_OP_CEIL:
        return ceil(x);
    case PQ_OP_ROUND:
        return nearbyint(x); /* default rounding mode: half to even */
    case PQ_OP_SIGN:
        return x > 0 ? 1.0 : (x < 0 ? -1.0 : (x != x ? x : 0.0));
    case PQ_OP_ERF:
        return erf(x);
    case PQ_OP_TANH:
        return tanh(x);
    case PQ_OP_SIGMOID:
        return pq_act_sigmoid_f64(x);
    case PQ_OP_SIN:
        return sin(x);
    case PQ_OP_COS:
        return cos(x);
    case PQ_OP_RELU:
        return x > 0 ? x : (x != x ? x : 0.0);
    case PQ_OP_LEAKY_RELU:
        return x < 0 ? p->alpha * x : x;
    case PQ_OP_ELU:
        return x < 0 ? p->alpha * expm1(x) : x;
    case PQ_OP_SELU:
        return p->gamma * (x <= 0 ? p->alpha * expm1(x) : x);
    case PQ_OP_CELU:
        return (x > 0 ? x : 0.0) + fmin(0.0, p->alpha * expm1(x / p->alpha));
    case PQ_OP_HARD_SIGMOID:
        return pq_act_hard_sigmoid_f64(x, p->alpha, p->beta);
    case PQ_OP_HARD_SWISH:
        return pq_act_hard_swish_f64(x);
    case PQ_OP_SOFTPLUS:
        return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    case PQ_OP_SOFTSIGN:
        return x / (1.0 + fabs(x));
    case PQ_OP_THRESHOLDED_RELU:
        return x > p->alpha ? x : 0.0;
    default:
        return 0.0;
    }
}

#define PQ_UNARY_F32(EXPR)                                                                         \
    for (int64_t i = 0; i < n; i++) {                                                              \
        float x = X[i];                                                                            \
        Y[i] = (EXPR);                                                                             \
    }                                                                                              \
    break

static void pq_unary_run_f32(enum pq_op op, const float *X, float *Y, int64_t n,
                             const pq_unary_params *p) {
    const float alpha = (float)p->alpha;
    switch (op) {
    case PQ_OP_SQRT:
        PQ_UNARY_F32(sqrtf(x));
    case PQ_OP_EXP:
        PQ_UNARY_F32(expf(x));
    case PQ_OP_LOG:
        PQ_UNARY_F32(logf(x));
    case PQ_OP_NEG:
        PQ_UNARY_F32(-x);
    case PQ_OP_ABS:
        PQ_UNARY_F32(fabsf(x));
    case PQ_OP_RECIPROCAL:
        PQ_UNARY_F32(1.0f / x);
    case PQ_OP_FLOOR:
        PQ_UNARY_F32(floorf(x));
    case PQ_OP_CEIL:
        PQ_UNARY_F32(ceilf(x));
    case PQ_OP_ROUND:
        PQ_UNARY_F32(nearbyintf(x));
    case PQ_OP_ERF:
        PQ_UNARY_F32(erff(x));
    case PQ_OP_TANH:
        PQ_UNARY_F32(tanhf(x));
    case PQ_OP_RELU:
        PQ_UNARY_F32(pq_act_relu_f32(x)); /* NaN and -0 pass through; branch-free */
    case PQ_OP_LEAKY_RELU:
        PQ_UNARY_F32(pq_act_leaky_relu_f32(x, alpha));
    default:
        PQ_UNARY_F32((float)pq_unary_f64(op, x, p));
    }
}

/* Integer versions of the ops legal on integers (Neg, Abs, Sign, Relu); wrap like numpy. */
static int64_t pq_unary_int(enum pq_op op, int64_t x, bool uns) {
    switch (op) {
    case PQ_OP_NEG:
        return (int64_t)(0 - (uint64_t)x);
    case PQ_OP_ABS:
        return uns || x >= 0 ? x : (int64_t)(0 - (uint64_t)x);
    case PQ_OP_SIGN:
        return uns ? (x != 0) : (x > 0) - (x < 0);
    case PQ_OP_RELU:
        return uns || x > 0 ? x : 0;
    default:
        return x; /* Floor/Ceil/Round of an integer */
    }
}

enum pq_status pq_ref_ew_unary(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 1, 1));
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    enum pq_op op = a->node->op;
    int64_t n = pq_tensor_numel(X);
    pq_unary_params p = pq_unary_get_params(a->node);
    enum pq_dtype t = X->dtype;
    if (op == PQ_OP_NOT) {
        const uint8_t *x = X->data;
        uint8_t *y = Y->data;
        for (int64_t i = 0; i < n; i++)
            y[i] = !x[i];
        return PQ_OK;
    }
    if (op == PQ_OP_IS_NAN || op == PQ_OP_IS_INF) {
        bool pos = pq_node_attr_int(a->node, "detect_positive", 1) != 0;
        bool neg = pq_node_attr_int(a->node, "detect_negative", 1) != 0;
        uint8_t *y = Y->data;
        for (int64_t i = 0; i < n; i++) {
            double v = pq_dtype_load(t, X->data, (size_t)i);
            if (op == PQ_OP_IS_NAN)
                y[i] = v != v;
            else
                y[i] = (pos && v == INFINITY) || (neg && v == -INFINITY);
        }
        return PQ_OK;
    }
    if (t == PQ_DTYPE_F32 && Y->dtype == PQ_DTYPE_F32) {
        pq_unary_run_f32(op, X->data, Y->data, n, &p);
    } else if (pq_dtype_is_integer(t)) {
        bool uns = pq_ref_dtype_unsigned(t);
        for (int64_t i = 0; i < n; i++)
            pq_ref_store_int(Y->dtype, Y->data, (size_t)i,
                             pq_unary_int(op, pq_dtype_load_i64(t, X->data, (size_t)i), uns));
    } else {
        for (int64_t i = 0; i < n; i++)
            pq_dtype_store(Y->dtype, Y->data, (size_t)i,
                           pq_unary_f64(op, pq_dtype_load(t, X->data, (size_t)i), &p));
    }
    return PQ_OK;
}

enum pq_status pq_ref_ew_clip(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 1, 1));
    const pq_tensor *X = a->in[0];
    const pq_tensor *lo_t = a->n_in > 1 ? a->in[1] : NULL, *hi_t = a->n_in > 2 ? a->in[2] : NULL;
    if ((lo_t && pq_tensor_numel(lo_t) != 1) || (hi_t && pq_tensor_numel(hi_t) != 1))
        return pq_error_set(a->err, PQ_ERR_INVALID, "min and max must hold one element");
    pq_tensor *Y = a->out[0];
    int64_t n = pq_tensor_numel(X);
    enum pq_dtype t = X->dtype;
    if (t == PQ_DTYPE_F32) {
        const float *x = X->data;
        float *y = Y->data;
        float lo = lo_t ? (float)pq_dtype_load(lo_t->dtype, lo_t->data, 0) : -INFINITY;
        float hi = hi_t ? (float)pq_dtype_load(hi_t->dtype, hi_t->data, 0) : INFINITY;
        for (int64_t i = 0; i < n; i++) {
            y[i] = pq_act_clip_f32(x[i], lo, hi);
        }
    } else if (pq_dtype_is_integer(t)) {
        bool uns = pq_ref_dtype_unsigned(t);
        int64_t lo = lo_t ? pq_dtype_load_i64(lo_t->dtype, lo_t->data, 0) : 0;
        int64_t hi = hi_t ? pq_dtype_load_i64(hi_t->dtype, hi_t->data, 0) : 0;
        for (int64_t i = 0; i < n; i++) {
            int64_t v = pq_dtype_load_i64(t, X->data, (size_t)i);
            if (uns) {
                if (lo_t && (uint64_t)v < (uint64_t)lo) v = lo;
                if (hi_t && (uint64_t)v > (uint64_t)hi) v = hi;
            } else {
                if (lo_t && v < lo) v = lo;
                if (hi_t && v > hi) v = hi;
            }
            pq_ref_store_int(t, Y->data, (size_t)i, v);
        }
    } else {
        double lo = lo_t ? pq_dtype_load(lo_t->dtype, lo_t->data, 0) : -INFINITY;
        double hi = hi_t ? pq_dtype_load(hi_t->dtype, hi_t->data, 0) : INFINITY;
        for (int64_t i = 0; i < n; i++) {
            double v = pq_dtype_load(t, X->data, (size_t)i);
            v = v < lo ? lo : v;
            pq_dtype_store(t, Y->data, (size_t)i, v > hi ? hi : v);
        }
    }
    return PQ_OK;
}

enum pq_status pq_ref_ew_cast(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 1, 1));
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    enum pq_dtype ti = X->dtype, to = Y->dtype;
    int64_t n = pq_tensor_numel(X);
    if (ti == to) {
        memcpy(Y->data, X->data, (size_t)n * pq_dtype_size(ti));
    } else if (ti == PQ_DTYPE_F32 && to == PQ_DTYPE_F16) {
        const float *x = X->data;
        uint16_t *y = Y->data;
        for (int64_t i = 0; i < n; i++)
            y[i] = pq_f32_to_f16(x[i]);
    } else if (ti == PQ_DTYPE_F32 && to == PQ_DTYPE_BF16) {
        const float *x = X->data;
        uint16_t *y = Y->data;
        for (int64_t i = 0; i < n; i++)
            y[i] = pq_f32_to_bf16(x[i]);
    } else if (!pq_dtype_is_float(ti) && !pq_dtype_is_float(to)) {
        /* integer/bool to integer/bool: exact, wrapping (bool: nonzero -> 1) */
        for (int64_t i = 0; i < n; i++)
            pq_ref_store_int(to, Y->data, (size_t)i, pq_dtype_load_i64(ti, X->data, (size_t)i));
    } else if ((ti == PQ_DTYPE_I64 || ti == PQ_DTYPE_U64) && pq_dtype_is_float(to)) {
        bool uns = ti == PQ_DTYPE_U64;
        for (int64_t i = 0; i < n; i++) {
            int64_t v = pq_dtype_load_i64(ti, X->data, (size_t)i);
            double d = uns ? (double)(uint64_t)v : (double)v;
            if (to == PQ_DTYPE_F32)
                ((float *)Y->data)[i] = uns ? (float)(uint64_t)v : (float)v;
            else
                pq_dtype_store(to, Y->data, (size_t)i, d);
        }
    } else if (to == PQ_DTYPE_BOOL) {
        uint8_t *y = Y->data;
        for (int64_t i = 0; i < n; i++)
            y[i] = pq_dtype_load(ti, X->data, (size_t)i) != 0.0;
    } else {
        for (int64_t i = 0; i < n; i++)
            pq_dtype_store(to, Y->data, (size_t)i, pq_dtype_load(ti, X->data, (size_t)i));
    }
    return PQ_OK;
}
