/* Reference kernels of the broadcasting binary ops (arithmetic, comparisons, logic, PRelu),
 * Where and the variadic Max/Min/Sum/Mean. f32 has a fast path; integers use exact 64-bit
 * arithmetic (division truncates toward zero); other floats compute in double. */
#include <math.h>
#include <string.h>

#include "backends/piqc_ops.h"
#include "ref_kernels.h"
#include "ref_util.h"

/* ---- scalar semantics ---- */

static double pq_ew_bin_f64(enum pq_op op, double x, double y, int fmod_attr) {
    (void)fmod_attr;
    switch (op) {
    case PQ_OP_ADD:
    case PQ_OP_SUM:
    case PQ_OP_MEAN:
        return x + y;
    case PQ_OP_SUB:
        return x - y;
    case PQ_OP_MUL:
        return x * y;
    case PQ_OP_DIV:
        return x / y;
    case PQ_OP_POW:
        return pow(x, y);
    case PQ_OP_MOD:
        return fmod(x, y);
    case PQ_OP_PRELU:
        return x < 0 ? x * y : x;
    case PQ_OP_MAX:
        return x != x ? x : (y != y ? y : (x >= y ? x : y));
    case PQ_OP_MIN:
        return x != x ? x : (y != y ? y : (x <= y ? x : y));
    default:
        return 0.0;
    }
}

static float pq_ew_bin_f32(enum pq_op op, float x, float y) {
    switch (op) {
    case PQ_OP_ADD:
    case PQ_OP_SUM:
    case PQ_OP_MEAN:
        return x + y;
    case PQ_OP_SUB:
        return x - y;
    case PQ_OP_MUL:
        return x * y;
    case PQ_OP_DIV:
        return x / y;
    case PQ_OP_POW:
        return powf(x, y);
    case PQ_OP_MOD:
        return fmodf(x, y);
    case PQ_OP_PRELU:
        return x < 0 ? x * y : x;
    case PQ_OP_MAX:
        return x != x ? x : (y != y ? y : (x >= y ? x : y));
    case PQ_OP_MIN:
        return x != x ? x : (y != y ? y : (x <= y ? x : y));
    default:
        return 0.0f;
    }
}

/* Integer power by squaring (wrapping); negative exponents give 0 except for bases 1 and -1. */
static int64_t pq_ew_ipow(int64_t b, int64_t e) {
    if (e < 0) return b == 1 ? 1 : (b == -1 ? ((e & 1) ? -1 : 1) : 0);
    uint64_t r = 1, x = (uint64_t)b;
    while (e) {
        if (e & 1) r *= x;
        x *= x;
        e >>= 1;
    }
    return (int64_t)r;
}

/* Exact integer semantics; uns: operands are u64 bit patterns. Division by zero gives 0. */
static int64_t pq_ew_bin_int(enum pq_op op, int64_t x, int64_t y, bool uns, int fmod_attr) {
    uint64_t ux = (uint64_t)x, uy = (uint64_t)y;
    switch (op) {
    case PQ_OP_ADD:
    case PQ_OP_SUM:
    case PQ_OP_MEAN:
        return (int64_t)(ux + uy);
    case PQ_OP_SUB:
        return (int64_t)(ux - uy);
    case PQ_OP_MUL:
        return (int64_t)(ux * uy);
    case PQ_OP_DIV:
        if (y == 0) return 0;
        if (uns) return (int64_t)(ux / uy);
        if (y == -1) return (int64_t)(0 - ux);
        return x / y;
    case PQ_OP_MOD: {
        if (y == 0) return 0;
        if (uns) return (int64_t)(ux % uy);
        if (y == -1) return 0;
        int64_t r = x % y;
        if (!fmod_attr && r != 0 && ((r < 0) != (y < 0))) r += y; /* sign of the divisor */
        return r;
    }
    case PQ_OP_POW:
        return pq_ew_ipow(x, y);
    case PQ_OP_PRELU:
        return x < 0 ? (int64_t)(ux * uy) : x;
    case PQ_OP_MAX:
        return uns ? (ux >= uy ? x : y) : (x >= y ? x : y);
    case PQ_OP_MIN:
        return uns ? (ux <= uy ? x : y) : (x <= y ? x : y);
    default:
        return 0;
    }
}

static bool pq_ew_cmp(enum pq_op op, int c) {
    switch (op) {
    case PQ_OP_EQUAL:
        return c == 0;
    case PQ_OP_GREATER:
        return c > 0;
    case PQ_OP_GREATER_OR_EQUAL:
        return c >= 0;
    case PQ_OP_LESS:
        return c < 0;
    case PQ_OP_LESS_OR_EQUAL:
        return c <= 0;
    default:
        return false;
    }
}

/* Three-way compare; 2 means unordered (NaN): every comparison is false. */
static int pq_ew_cmp_d(double x, double y) {
    if (x != x || y != y) return 2;
    return x < y ? -1 : (x > y ? 1 : 0);
}

static bool pq_ew_is_cmp(enum pq_op op) {
    return op == PQ_OP_EQUAL || op == PQ_OP_GREATER || op == PQ_OP_GREATER_OR_EQUAL ||
           op == PQ_OP_LESS || op == PQ_OP_LESS_OR_EQUAL;
}

/* ---- loops ---- */

#define PQ_EW_LOOP2(bc, ...)                                                                       \
    do {                                                                                           \
        pq_ref_bcast_it it_;                                                                       \
        const int64_t sa_ = (bc).istride[0], sb_ = (bc).istride[1];                                \
        for (pq_ref_bcast_first(&(bc), &it_); it_.out < (bc).numel;                                \
             pq_ref_bcast_next(&(bc), &it_)) {                                                     \
            int64_t ia = it_.off[0], ib = it_.off[1], io = it_.out;                                \
            for (int64_t j_ = 0; j_ < (bc).inner; j_++, ia += sa_, ib += sb_, io++) {              \
                __VA_ARGS__;                                                                       \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* y = A op B with A, B broadcast to y. y may alias A when A has y's shape (variadic ops). */
static void pq_ew_binary(enum pq_op op, const pq_tensor *A, const pq_tensor *B, pq_tensor *Y,
                         int fmod_attr) {
    const pq_tensor *ops[2] = {A, B};
    pq_ref_bcast bc;
    pq_ref_bcast_init_tensors(&bc, Y, 2, ops);
    enum pq_dtype ta = A->dtype, tb = B->dtype, ty = Y->dtype;

    if (pq_ew_is_cmp(op)) {
        uint8_t *y = Y->data;
        if (ta == PQ_DTYPE_F32) {
            const float *a = A->data, *b = B->data;
            switch (op) {
            case PQ_OP_EQUAL:
                PQ_EW_LOOP2(bc, y[io] = a[ia] == b[ib]);
                break;
            case PQ_OP_GREATER:
                PQ_EW_LOOP2(bc, y[io] = a[ia] > b[ib]);
                break;
            case PQ_OP_GREATER_OR_EQUAL:
                PQ_EW_LOOP2(bc, y[io] = a[ia] >= b[ib]);
                break;
            case PQ_OP_LESS:
                PQ_EW_LOOP2(bc, y[io] = a[ia] < b[ib]);
                break;
            default:
                PQ_EW_LOOP2(bc, y[io] = a[ia] <= b[ib]);
                break;
            }
        } else if (pq_dtype_is_float(ta)) {
            PQ_EW_LOOP2(bc, y[io] = pq_ew_cmp(op, pq_ew_cmp_d(pq_dtype_load(ta, A->data, ia),
                                                              pq_dtype_load(tb, B->data, ib))));
        } else {
            bool uns = pq_ref_dtype_unsigned(ta);
            PQ_EW_LOOP2(bc, {
                int64_t x = pq_dtype_load_i64(ta, A->data, ia),
                        v = pq_dtype_load_i64(tb, B->data, ib);
                int c = uns ? ((uint64_t)x < (uint64_t)v ? -1 : (uint64_t)x > (uint64_t)v)
                            : (x < v ? -1 : x > v);
                y[io] = pq_ew_cmp(op, c);
            });
        }
        return;
    }
    if (op == PQ_OP_AND || op == PQ_OP_OR || op == PQ_OP_XOR) {
        const uint8_t *a = A->data, *b = B->data;
        uint8_t *y = Y->data;
        if (op == PQ_OP_AND)
            PQ_EW_LOOP2(bc, y[io] = (a[ia] != 0) & (b[ib] != 0));
        else if (op == PQ_OP_OR)
            PQ_EW_LOOP2(bc, y[io] = (a[ia] != 0) | (b[ib] != 0));
        else
            PQ_EW_LOOP2(bc, y[io] = (a[ia] != 0) ^ (b[ib] != 0));
        return;
    }
    if (ta == PQ_DTYPE_F32 && tb == PQ_DTYPE_F32 && ty == PQ_DTYPE_F32) {
        const float *a = A->data, *b = B->data;
        float *y = Y->data;
        switch (op) {
        case PQ_OP_ADD:
        case PQ_OP_SUM:
        case PQ_OP_MEAN:
            PQ_EW_LOOP2(bc, y[io] = a[ia] + b[ib]);
            break;
        case PQ_OP_SUB:
            PQ_EW_LOOP2(bc, y[io] = a[ia] - b[ib]);
            break;
        case PQ_OP_MUL:
            PQ_EW_LOOP2(bc, y[io] = a[ia] * b[ib]);
            break;
        case PQ_OP_DIV:
            PQ_EW_LOOP2(bc, y[io] = a[ia] / b[ib]);
            break;
        default:
            PQ_EW_LOOP2(bc, y[io] = pq_ew_bin_f32(op, a[ia], b[ib]));
            break;
        }
        return;
    }
    if (pq_dtype_is_integer(ta) && pq_dtype_is_integer(tb)) {
        bool uns = pq_ref_dtype_unsigned(ta);
        PQ_EW_LOOP2(bc, pq_ref_store_int(ty, Y->data, io,
                                         pq_ew_bin_int(op, pq_dtype_load_i64(ta, A->data, ia),
                                                       pq_dtype_load_i64(tb, B->data, ib), uns,
                                                       fmod_attr)));
        return;
    }
    /* Floats other than f32, and Pow with mixed types: compute in double, store in y's type
     * (truncation toward zero for an integer result, like numpy's astype). */
    PQ_EW_LOOP2(bc, pq_dtype_store(ty, Y->data, io,
                                   pq_ew_bin_f64(op, pq_dtype_load(ta, A->data, ia),
                                                 pq_dtype_load(tb, B->data, ib), fmod_attr)));
}

enum pq_status pq_ref_ew_binary(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 2, 1));
    int fmod_attr = (int)pq_node_attr_int(a->node, "fmod", 0);
    pq_ew_binary(a->node->op, a->in[0], a->in[1], a->out[0], fmod_attr);
    /* fused activation (PQ_OK when none); only Add accepts one */
    return a->node->op == PQ_OP_ADD ? pq_act_epilogue(a->node, a->out[0], a->err) : PQ_OK;
}

enum pq_status pq_ref_ew_variadic(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 1, 1));
    for (uint32_t i = 0; i < a->n_in; i++)
        if (!a->in[i]) return pq_error_set(a->err, PQ_ERR_INVALID, "input %u is missing", i);
    enum pq_op op = a->node->op;
    pq_tensor *Y = a->out[0];
    /* y = broadcast(in[0]); then y = y op in[k] (y has the full shape, so it may alias A). */
    const pq_tensor *src = a->in[0];
    const pq_tensor *ops[1] = {src};
    pq_ref_bcast bc;
    pq_ref_bcast_init_tensors(&bc, Y, 1, ops);
    size_t es = pq_dtype_size(Y->dtype);
    pq_ref_bcast_it it;
    for (pq_ref_bcast_first(&bc, &it); it.out < bc.numel; pq_ref_bcast_next(&bc, &it)) {
        int64_t is = it.off[0];
        for (int64_t j = 0; j < bc.inner; j++, is += bc.istride[0])
            memcpy((char *)Y->data + (size_t)(it.out + j) * es,
                   (const char *)src->data + (size_t)is * es, es);
    }
    for (uint32_t k = 1; k < a->n_in; k++)
        pq_ew_binary(op, Y, a->in[k], Y, 0);
    if (op == PQ_OP_MEAN && a->n_in > 1) {
        int64_t n = pq_tensor_numel(Y);
        double inv = (double)a->n_in;
        if (Y->dtype == PQ_DTYPE_F32) {
            float *y = Y->data;
            for (int64_t i = 0; i < n; i++)
                y[i] = (float)(y[i] / inv);
        } else if (pq_dtype_is_integer(Y->dtype)) {
            for (int64_t i = 0; i < n; i++)
                pq_ref_store_int(Y->dtype, Y->data, (size_t)i,
                                 pq_dtype_load_i64(Y->dtype, Y->data, (size_t)i) /
                                     (int64_t)a->n_in);
        } else {
            for (int64_t i = 0; i < n; i++)
                pq_dtype_store(Y->dtype, Y->data, (size_t)i,
                               pq_dtype_load(Y->dtype, Y->data, (size_t)i) / inv);
        }
    }
    return PQ_OK;
}

enum pq_status pq_ref_ew_where(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 3, 1));
    const pq_tensor *ops[3] = {a->in[0], a->in[1], a->in[2]};
    pq_tensor *Y = a->out[0];
    pq_ref_bcast bc;
    pq_ref_bcast_init_tensors(&bc, Y, 3, ops);
    const uint8_t *c = a->in[0]->data;
    size_t es = pq_dtype_size(Y->dtype);
    const char *x = a->in[1]->data, *yv = a->in[2]->data;
    char *out = Y->data;
    pq_ref_bcast_it it;
    for (pq_ref_bcast_first(&bc, &it); it.out < bc.numel; pq_ref_bcast_next(&bc, &it)) {
        int64_t ic = it.off[0], ix = it.off[1], iy = it.off[2];
        for (int64_t j = 0; j < bc.inner; j++) {
            const char *src = c[ic] ? x + (size_t)ix * es : yv + (size_t)iy * es;
            memcpy(out + (size_t)(it.out + j) * es, src, es);
            ic += bc.istride[0];
            ix += bc.istride[1];
            iy += bc.istride[2];
        }
    }
    return PQ_OK;
}
