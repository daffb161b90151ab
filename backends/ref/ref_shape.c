/* Reference kernels of the shape and constant ops (Shape, Size, ConstantOfShape, Constant, Range,
 * OneHot) and of Trilu, Identity and Dropout (inference: a copy, mask all true). Shape/Size are
 * what the runtime runs to constant-fold shape subgraphs, so they follow inference exactly. */
#include <string.h>

#include "ref_kernels.h"

enum pq_status pq_ref_shape(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_mv_outputs(a));
    const pq_tensor *x = a->in[0];
    pq_tensor *y = a->out[0];
    int64_t r = x->rank;
    int64_t s = pq_node_attr_int(a->node, "start", 0), e = pq_node_attr_int(a->node, "end", r);
    if (s < 0) s += r;
    if (e < 0) e += r;
    s = s < 0 ? 0 : s > r ? r : s;
    e = e < 0 ? 0 : e > r ? r : e;
    int64_t *o = y->data;
    for (int64_t i = s; i < e; i++)
        o[i - s] = x->dims[i];
    return PQ_OK;
}

enum pq_status pq_ref_size(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_mv_outputs(a));
    *(int64_t *)a->out[0]->data = pq_tensor_numel(a->in[0]);
    return PQ_OK;
}

/* Fills n elements of size es at dst with the element at val. */
static void sh_fill(void *dst, int64_t n, const void *val, size_t es) {
    uint8_t *d = dst;
    bool zero = true;
    for (size_t i = 0; i < es; i++)
        zero = zero && ((const uint8_t *)val)[i] == 0;
    if (zero) {
        memset(d, 0, (size_t)n * es);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        memcpy(d + (size_t)i * es, val, es);
}

enum pq_status pq_ref_constant_of_shape(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_mv_outputs(a));
    pq_tensor *y = a->out[0];
    const pq_attr *va = pq_node_attr(a->node, "value");
    float zero = 0.0f;
    const void *val = va && va->type == PQ_ATTR_TENSOR ? va->u.tensor->data : &zero;
    sh_fill(y->data, pq_tensor_numel(y), val, pq_dtype_size(y->dtype));
    return PQ_OK;
}

enum pq_status pq_ref_constant(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_mv_outputs(a));
    pq_tensor *y = a->out[0];
    const pq_node *n = a->node;
    const pq_attr *at;
    if ((at = pq_node_attr(n, "value")) && at->type == PQ_ATTR_TENSOR && at->u.tensor) {
        if (at->u.tensor->nbytes) memcpy(y->data, at->u.tensor->data, at->u.tensor->nbytes);
    } else if ((at = pq_node_attr(n, "value_float")) && at->type == PQ_ATTR_FLOAT) {
        memcpy(y->data, &at->u.f, sizeof(float));
    } else if ((at = pq_node_attr(n, "value_int")) && at->type == PQ_ATTR_INT) {
        memcpy(y->data, &at->u.i, sizeof(int64_t));
    } else if ((at = pq_node_attr(n, "value_floats")) && at->type == PQ_ATTR_FLOATS) {
        if (at->u.floats.n) memcpy(y->data, at->u.floats.v, sizeof(float) * at->u.floats.n);
    } else if ((at = pq_node_attr(n, "value_ints")) && at->type == PQ_ATTR_INTS) {
        if (at->u.ints.n) memcpy(y->data, at->u.ints.v, sizeof(int64_t) * at->u.ints.n);
    }
    return PQ_OK;
}

/* Stores an integer exactly (wrapping like C) into element i of an integer buffer. */
static void sh_store_int(enum pq_dtype t, void *data, int64_t i, int64_t v) {
    switch (t) {
    case PQ_DTYPE_I8:
        ((int8_t *)data)[i] = (int8_t)v;
        break;
    case PQ_DTYPE_U8:
        ((uint8_t *)data)[i] = (uint8_t)v;
        break;
    case PQ_DTYPE_I16:
        ((int16_t *)data)[i] = (int16_t)v;
        break;
    case PQ_DTYPE_U16:
        ((uint16_t *)data)[i] = (uint16_t)v;
        break;
    case PQ_DTYPE_I32:
        ((int32_t *)data)[i] = (int32_t)v;
        break;
    case PQ_DTYPE_U32:
        ((uint32_t *)data)[i] = (uint32_t)v;
        break;
    case PQ_DTYPE_I64:
        ((int64_t *)data)[i] = v;
        break;
    case PQ_DTYPE_U64:
        ((uint64_t *)data)[i] = (uint64_t)v;
        break;
    default:
        pq_dtype_store(t, data, (size_t)i, (double)v);
        break;
    }
}

enum pq_status pq_ref_range(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_mv_outputs(a));
    pq_tensor *y = a->out[0];
    enum pq_dtype dt = y->dtype;
    int64_t n = y->dims[0];
    if (pq_dtype_is_integer(dt)) {
        int64_t s = pq_dtype_load_i64(dt, a->in[0]->data, 0);
        int64_t d = pq_dtype_load_i64(dt, a->in[2]->data, 0);
        for (int64_t i = 0; i < n; i++)
            sh_store_int(dt, y->data, i, s + i * d);
        return PQ_OK;
    }
    double s = pq_dtype_load(dt, a->in[0]->data, 0), d = pq_dtype_load(dt, a->in[2]->data, 0);
    if (dt == PQ_DTYPE_F32) {
        /* float arithmetic like numpy.arange on float32 inputs */
        float fs = (float)s, fd = (float)d;
        for (int64_t i = 0; i < n; i++)
            ((float *)y->data)[i] = fs + (float)i * fd;
        return PQ_OK;
    }
    for (int64_t i = 0; i < n; i++)
        pq_dtype_store(dt, y->data, (size_t)i, s + (double)i * d);
    return PQ_OK;
}

enum pq_status pq_ref_one_hot(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_mv_outputs(a));
    const pq_tensor *idx = a->in[0], *vals = a->in[2];
    pq_tensor *y = a->out[0];
    int r = idx->rank;
    int64_t axis = pq_node_attr_int(a->node, "axis", -1);
    if (axis < 0) axis += r + 1;
    int64_t depth = y->dims[axis], outer = 1, inner = 1;
    for (int i = 0; i < axis; i++)
        outer *= idx->dims[i];
    for (int i = (int)axis; i < r; i++)
        inner *= idx->dims[i];
    size_t es = pq_dtype_size(y->dtype);
    const uint8_t *off = vals->data, *on = off + es;
    uint8_t *d = y->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < depth; k++)
            for (int64_t i = 0; i < inner; i++, d += es) {
                double v = pq_dtype_load(idx->dtype, idx->data, (size_t)(o * inner + i));
                int64_t iv = -1;
                if (v >= -(double)depth && v < (double)depth) {
                    iv = (int64_t)v; /* onnx casts indices to integers (truncation) */
                    if (iv < 0) iv += depth;
                }
                memcpy(d, iv == k ? on : off, es);
            }
    return PQ_OK;
}

enum pq_status pq_ref_trilu(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_mv_outputs(a));
    const pq_tensor *x = a->in[0];
    pq_tensor *y = a->out[0];
    int64_t k = 0;
    if (a->n_in > 1 && a->in[1]) k = pq_dtype_load_i64(a->in[1]->dtype, a->in[1]->data, 0);
    bool upper = pq_node_attr_int(a->node, "upper", 1) != 0;
    int r = x->rank;
    int64_t rows = x->dims[r - 2], cols = x->dims[r - 1];
    int64_t mats = rows > 0 && cols > 0 ? pq_tensor_numel(x) / (rows * cols) : 0;
    size_t es = pq_dtype_size(x->dtype);
    for (int64_t m = 0; m < mats; m++)
        for (int64_t i = 0; i < rows; i++) {
            size_t off = (size_t)((m * rows + i) * cols) * es;
            for (int64_t j = 0; j < cols; j++) {
                bool keep = upper ? j - i >= k : j - i <= k;
                uint8_t *d = (uint8_t *)y->data + off + (size_t)j * es;
                if (keep)
                    memmove(d, (const uint8_t *)x->data + off + (size_t)j * es, es);
                else
                    memset(d, 0, es);
            }
        }
    return PQ_OK;
}

enum pq_status pq_ref_identity(const pq_kernel_args *a) {
    return pq_ref_mv_copy(a);
}

enum pq_status pq_ref_dropout(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_mv_copy(a));
    if (a->n_out > 1 && a->out[1]) memset(a->out[1]->data, 1, (size_t)pq_tensor_numel(a->out[1]));
    return PQ_OK;
}
