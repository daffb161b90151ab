/* Reference kernels of the reductions (ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSum/
 * LogSumExp), ArgMax/ArgMin, TopK (stable: equal values keep the lower index first) and CumSum.
 * Floats accumulate in double; integer Sum/Prod/Max/Min/L1/SumSquare/Mean are exact in 64 bits. */
#include <math.h>
#include <string.h>

#include "ref_kernels.h"
#include "ref_util.h"

/* Which axes a Reduce* node reduces (from input 1 and noop_with_empty_axes). */
static enum pq_status pq_reduce_mask(const pq_kernel_args *a, int rank, bool *mask) {
    int64_t axes[PQ_MAX_RANK];
    int n_axes = 0;
    const pq_tensor *at = a->n_in > 1 ? a->in[1] : NULL;
    PQ_TRY(pq_ref_read_ints(at, axes, PQ_MAX_RANK, &n_axes, "axes", a->err));
    bool noop = pq_node_attr_int(a->node, "noop_with_empty_axes", 0) != 0;
    for (int i = 0; i < rank; i++)
        mask[i] = n_axes == 0 && !noop;
    for (int k = 0; k < n_axes; k++) {
        int64_t ax = axes[k];
        if (ax < -rank || ax >= rank)
            return pq_error_set(a->err, PQ_ERR_INVALID, "axis %lld out of range for rank %d",
                                (long long)ax, rank);
        mask[ax < 0 ? ax + rank : ax] = true;
    }
    return PQ_OK;
}

static bool pq_reduce_int_exact(enum pq_op op) {
    return op == PQ_OP_REDUCE_SUM || op == PQ_OP_REDUCE_MEAN || op == PQ_OP_REDUCE_MAX ||
           op == PQ_OP_REDUCE_MIN || op == PQ_OP_REDUCE_PROD || op == PQ_OP_REDUCE_L1 ||
           op == PQ_OP_REDUCE_SUM_SQUARE;
}

/* Exact integer reduction: acc[] int64 (u64 bit patterns for unsigned max/min). */
static void pq_reduce_int(enum pq_op op, const pq_tensor *X, const pq_ref_bcast *bc, int64_t *acc,
                          int64_t n_out) {
    enum pq_dtype t = X->dtype;
    bool uns = pq_ref_dtype_unsigned(t);
    int64_t init = 0;
    if (op == PQ_OP_REDUCE_PROD)
        init = 1;
    else if (op == PQ_OP_REDUCE_MAX)
        init = uns ? 0 : INT64_MIN;
    else if (op == PQ_OP_REDUCE_MIN)
        init = uns ? (int64_t)UINT64_MAX : INT64_MAX;
    for (int64_t i = 0; i < n_out; i++)
        acc[i] = init;
    pq_ref_bcast_it it;
    for (pq_ref_bcast_first(bc, &it); it.out < bc->numel; pq_ref_bcast_next(bc, &it)) {
        int64_t io = it.off[0];
        for (int64_t j = 0; j < bc->inner; j++, io += bc->istride[0]) {
            int64_t v = pq_dtype_load_i64(t, X->data, (size_t)(it.out + j));
            uint64_t uv = (uint64_t)v, ua = (uint64_t)acc[io];
            switch (op) {
            case PQ_OP_REDUCE_PROD:
                acc[io] = (int64_t)(ua * uv);
                break;
            case PQ_OP_REDUCE_MAX:
                if (uns ? uv > ua : v > acc[io]) acc[io] = v;
                break;
            case PQ_OP_REDUCE_MIN:
                if (uns ? uv < ua : v < acc[io]) acc[io] = v;
                break;
            case PQ_OP_REDUCE_L1:
                acc[io] = (int64_t)(ua + (uns || v >= 0 ? uv : 0 - uv));
                break;
            case PQ_OP_REDUCE_SUM_SQUARE:
                acc[io] = (int64_t)(ua + uv * uv);
                break;
            default:
                acc[io] = (int64_t)(ua + uv);
                break;
            }
        }
    }
}

/* Floating reduction in double. LogSumExp takes two passes (max first). */
static void pq_reduce_f64(enum pq_op op, const pq_tensor *X, const pq_ref_bcast *bc, double *acc,
                          double *mx, int64_t n_out) {
    enum pq_dtype t = X->dtype;
    bool f32 = t == PQ_DTYPE_F32;
    const float *xf = X->data;
    double init = 0.0;
    if (op == PQ_OP_REDUCE_PROD)
        init = 1.0;
    else if (op == PQ_OP_REDUCE_MAX)
        init = -INFINITY;
    else if (op == PQ_OP_REDUCE_MIN)
        init = INFINITY;
    for (int64_t i = 0; i < n_out; i++)
        acc[i] = init;
    pq_ref_bcast_it it;
    if (op == PQ_OP_REDUCE_LOG_SUM_EXP) {
        for (int64_t i = 0; i < n_out; i++)
            mx[i] = -INFINITY;
        for (pq_ref_bcast_first(bc, &it); it.out < bc->numel; pq_ref_bcast_next(bc, &it)) {
            int64_t io = it.off[0];
            for (int64_t j = 0; j < bc->inner; j++, io += bc->istride[0]) {
                size_t ii = (size_t)(it.out + j);
                double v = f32 ? xf[ii] : pq_dtype_load(t, X->data, ii);
                if (v > mx[io] || v != v) mx[io] = v;
            }
        }
        for (int64_t i = 0; i < n_out; i++)
            if (isinf(mx[i])) mx[i] = 0.0; /* all -inf (or +inf present): plain sum of exp */
    }
    for (pq_ref_bcast_first(bc, &it); it.out < bc->numel; pq_ref_bcast_next(bc, &it)) {
        int64_t io = it.off[0];
        for (int64_t j = 0; j < bc->inner; j++, io += bc->istride[0]) {
            size_t ii = (size_t)(it.out + j);
            double v = f32 ? xf[ii] : pq_dtype_load(t, X->data, ii);
            switch (op) {
            case PQ_OP_REDUCE_PROD:
                acc[io] *= v;
                break;
            case PQ_OP_REDUCE_MAX:
                if (v > acc[io] || v != v) acc[io] = v;
                break;
            case PQ_OP_REDUCE_MIN:
                if (v < acc[io] || v != v) acc[io] = v;
                break;
            case PQ_OP_REDUCE_L1:
                acc[io] += fabs(v);
                break;
            case PQ_OP_REDUCE_L2:
            case PQ_OP_REDUCE_SUM_SQUARE:
                acc[io] += v * v;
                break;
            case PQ_OP_REDUCE_LOG_SUM_EXP:
                acc[io] += exp(v - mx[io]);
                break;
            default:
                acc[io] += v;
                break;
            }
        }
    }
}

/* Sum / Mean of an f32 tensor over a leading or a trailing block of axes (size-1 axes go either
 * way): contiguous loops that add the same values to each accumulator in the same order as
 * pq_reduce_f64's walk (so the results are identical), without its per-element index walk.
 * The bias and LayerNorm gradients of training graphs are such reductions. False (nothing
 * written) for any other case. */
static bool pq_reduce_f32_block(enum pq_op op, const pq_tensor *X, const bool *mask, double *acc,
                                int64_t n_out) {
    if (X->dtype != PQ_DTYPE_F32 || (op != PQ_OP_REDUCE_SUM && op != PQ_OP_REDUCE_MEAN))
        return false;
    int rank = X->rank, first_kept = rank, last_kept = -1, first_red = rank, last_red = -1;
    for (int i = 0; i < rank; i++) {
        if (X->dims[i] == 1) continue;
        if (mask[i]) {
            if (i < first_red) first_red = i;
            last_red = i;
        } else {
            if (i < first_kept) first_kept = i;
            last_kept = i;
        }
    }
    const float *x = X->data;
    int64_t n = pq_tensor_numel(X);
    for (int64_t i = 0; i < n_out; i++)
        acc[i] = 0.0;
    if (n == 0 || n_out == 0) return true;
    int64_t per = n / n_out; /* values per output */
    if (last_red < first_kept) { /* reduced axes lead: acc[c] += x[r][c] */
        for (int64_t r = 0; r < per; r++) {
            const float *row = x + r * n_out;
            for (int64_t c = 0; c < n_out; c++)
                acc[c] += (double)row[c];
        }
        return true;
    }
    if (last_kept < first_red) { /* reduced axes trail: acc[o] += x[o][j] */
        for (int64_t o = 0; o < n_out; o++) {
            const float *row = x + o * per;
            double t = 0.0;
            for (int64_t j = 0; j < per; j++)
                t += (double)row[j];
            acc[o] = t;
        }
        return true;
    }
    return false;
}

enum pq_status pq_ref_ew_reduce(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 1, 1));
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    enum pq_op op = a->node->op;
    int rank = X->rank;
    bool mask[PQ_MAX_RANK];
    PQ_TRY(pq_reduce_mask(a, rank, mask));
    /* Output with kept dims (size 1 on reduced axes), as a broadcast operand of X's shape. */
    int64_t kdims[PQ_MAX_RANK];
    int64_t n_out = 1, count = 1;
    for (int i = 0; i < rank; i++) {
        kdims[i] = mask[i] ? 1 : X->dims[i];
        n_out *= kdims[i];
        if (mask[i]) count *= X->dims[i];
    }
    if (n_out != pq_tensor_numel(Y))
        return pq_error_set(a->err, PQ_ERR_INTERNAL, "output has %lld elements, expected %lld",
                            (long long)pq_tensor_numel(Y), (long long)n_out);
    const int64_t *dims_p[1] = {kdims};
    int ranks[1] = {rank};
    pq_ref_bcast bc;
    pq_ref_bcast_init(&bc, rank, X->dims, 1, ranks, dims_p);
    enum pq_dtype t = X->dtype;
    if (pq_dtype_is_integer(t) && pq_reduce_int_exact(op)) {
        int64_t *acc = pq_malloc((size_t)n_out * sizeof *acc);
        if (!acc) return pq_error_nomem(a->err, "reduction accumulator");
        pq_reduce_int(op, X, &bc, acc, n_out);
        for (int64_t i = 0; i < n_out; i++) {
            if (count == 0 && (op == PQ_OP_REDUCE_MAX || op == PQ_OP_REDUCE_MIN)) {
                pq_dtype_store(Y->dtype, Y->data, (size_t)i,
                               op == PQ_OP_REDUCE_MAX ? -INFINITY : INFINITY);
                continue;
            }
            int64_t v = acc[i];
            if (op == PQ_OP_REDUCE_MEAN && count > 0)
                v = pq_ref_dtype_unsigned(t) ? (int64_t)((uint64_t)v / (uint64_t)count) : v / count;
            pq_ref_store_int(Y->dtype, Y->data, (size_t)i, v);
        }
        pq_free(acc);
        return PQ_OK;
    }
    double *acc = pq_malloc((size_t)n_out * 2 * sizeof *acc);
    if (!acc) return pq_error_nomem(a->err, "reduction accumulator");
    double *mx = acc + n_out;
    if (!pq_reduce_f32_block(op, X, mask, acc, n_out)) pq_reduce_f64(op, X, &bc, acc, mx, n_out);
    for (int64_t i = 0; i < n_out; i++) {
        double v = acc[i];
        switch (op) {
        case PQ_OP_REDUCE_MEAN:
            v = v / (double)count;
            break;
        case PQ_OP_REDUCE_L2:
            v = sqrt(v);
            break;
        case PQ_OP_REDUCE_LOG_SUM:
            v = log(v);
            break;
        case PQ_OP_REDUCE_LOG_SUM_EXP:
            v = log(v) + mx[i];
            break;
        default:
            break;
        }
        if (Y->dtype == PQ_DTYPE_F32)
            ((float *)Y->data)[i] = (float)v;
        else
            pq_dtype_store(Y->dtype, Y->data, (size_t)i, v);
    }
    pq_free(acc);
    return PQ_OK;
}

/* Compares elements i and j of a buffer of type t: <0, 0, >0. NaN sorts above everything. */
static int pq_elem_cmp(enum pq_dtype t, const void *d, size_t i, size_t j) {
    if (t == PQ_DTYPE_F32) {
        float x = ((const float *)d)[i], y = ((const float *)d)[j];
        if (x != x || y != y) return (x != x) - (y != y);
        return (x > y) - (x < y);
    }
    if (pq_dtype_is_float(t)) {
        double x = pq_dtype_load(t, d, i), y = pq_dtype_load(t, d, j);
        if (x != x || y != y) return (x != x) - (y != y);
        return (x > y) - (x < y);
    }
    int64_t x = pq_dtype_load_i64(t, d, i), y = pq_dtype_load_i64(t, d, j);
    if (pq_ref_dtype_unsigned(t)) return ((uint64_t)x > (uint64_t)y) - ((uint64_t)x < (uint64_t)y);
    return (x > y) - (x < y);
}

enum pq_status pq_ref_ew_argmax(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 1, 1));
    const pq_tensor *X = a->in[0];
    int64_t *y = a->out[0]->data;
    int rank = X->rank;
    int64_t axis = pq_node_attr_int(a->node, "axis", 0);
    if (axis < -rank || axis >= (rank ? rank : 1))
        return pq_error_set(a->err, PQ_ERR_INVALID, "axis %lld out of range for rank %d",
                            (long long)axis, rank);
    if (axis < 0) axis += rank;
    bool last = pq_node_attr_int(a->node, "select_last_index", 0) != 0;
    int sign = a->node->op == PQ_OP_ARG_MAX ? 1 : -1;
    int64_t outer, n, inner;
    pq_ref_split_axis(rank, X->dims, (int)axis, &outer, &n, &inner);
    if (n == 0 && outer * inner > 0)
        return pq_error_set(a->err, PQ_ERR_INVALID, "cannot take %s over an empty axis",
                            pq_op_name(a->node->op));
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            size_t base = (size_t)(o * n * inner + j);
            int64_t best = 0;
            for (int64_t i = 1; i < n; i++) {
                int c = sign * pq_elem_cmp(X->dtype, X->data, base + (size_t)(i * inner),
                                           base + (size_t)(best * inner));
                if (c > 0 || (c == 0 && last)) best = i;
            }
            y[o * inner + j] = best;
        }
    return PQ_OK;
}

/* Stable merge sort of idx[0..n) (row offsets base + idx*stride) by value; desc = largest first. */
typedef struct pq_topk_ctx {
    enum pq_dtype t;
    const void *data;
    size_t base, stride;
    int dir; /* 1: ascending, -1: descending */
} pq_topk_ctx;

static void pq_topk_sort(const pq_topk_ctx *c, int64_t *idx, int64_t *tmp, int64_t n) {
    if (n < 2) return;
    int64_t h = n / 2;
    pq_topk_sort(c, idx, tmp, h);
    pq_topk_sort(c, idx + h, tmp, n - h);
    int64_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int cmp = c->dir * pq_elem_cmp(c->t, c->data, c->base + (size_t)idx[j] * c->stride,
                                       c->base + (size_t)idx[i] * c->stride);
        tmp[k++] = cmp < 0 ? idx[j++] : idx[i++]; /* take right only when strictly before */
    }
    while (i < h)
        tmp[k++] = idx[i++];
    while (j < n)
        tmp[k++] = idx[j++];
    memcpy(idx, tmp, (size_t)n * sizeof *idx);
}

enum pq_status pq_ref_ew_topk(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 2, 2));
    const pq_tensor *X = a->in[0];
    pq_tensor *V = a->out[0], *I = a->out[1];
    int rank = X->rank;
    int64_t axis = pq_node_attr_int(a->node, "axis", -1);
    if (rank == 0 || axis < -rank || axis >= rank)
        return pq_error_set(a->err, PQ_ERR_INVALID, "axis %lld out of range for rank %d",
                            (long long)axis, rank);
    if (axis < 0) axis += rank;
    int64_t kv[1];
    int nk = 0;
    PQ_TRY(pq_ref_read_ints(a->in[1], kv, 1, &nk, "k", a->err));
    int64_t outer, n, inner;
    pq_ref_split_axis(rank, X->dims, (int)axis, &outer, &n, &inner);
    if (nk != 1 || kv[0] < 0 || kv[0] > n)
        return pq_error_set(a->err, PQ_ERR_INVALID, "k must be one value in [0, %lld]",
                            (long long)n);
    int64_t k = kv[0];
    if (V->dims[axis] != k || I->dims[axis] != k)
        return pq_error_set(a->err, PQ_ERR_INTERNAL, "outputs do not have k = %lld on axis %lld",
                            (long long)k, (long long)axis);
    bool largest = pq_node_attr_int(a->node, "largest", 1) != 0;
    int64_t *idx = pq_malloc((size_t)(2 * n + 1) * sizeof *idx);
    if (!idx) return pq_error_nomem(a->err, "topk indices");
    size_t es = pq_dtype_size(X->dtype);
    int64_t *yi = I->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            pq_topk_ctx c = {X->dtype, X->data, (size_t)(o * n * inner + j), (size_t)inner,
                             largest ? -1 : 1};
            for (int64_t i = 0; i < n; i++)
                idx[i] = i;
            pq_topk_sort(&c, idx, idx + n, n);
            for (int64_t i = 0; i < k; i++) {
                size_t dst = (size_t)(o * k * inner + i * inner + j);
                memcpy((char *)V->data + dst * es,
                       (const char *)X->data + (c.base + (size_t)idx[i] * c.stride) * es, es);
                yi[dst] = idx[i];
            }
        }
    pq_free(idx);
    return PQ_OK;
}

enum pq_status pq_ref_ew_cumsum(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 2, 1));
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    int rank = X->rank;
    int64_t axv[1];
    int na = 0;
    PQ_TRY(pq_ref_read_ints(a->in[1], axv, 1, &na, "axis", a->err));
    if (na != 1 || rank == 0 || axv[0] < -rank || axv[0] >= rank)
        return pq_error_set(a->err, PQ_ERR_INVALID, "axis must be one value in [-%d, %d)", rank,
                            rank);
    int axis = (int)(axv[0] < 0 ? axv[0] + rank : axv[0]);
    bool excl = pq_node_attr_int(a->node, "exclusive", 0) != 0;
    bool rev = pq_node_attr_int(a->node, "reverse", 0) != 0;
    int64_t outer, n, inner;
    pq_ref_split_axis(rank, X->dims, axis, &outer, &n, &inner);
    enum pq_dtype t = X->dtype;
    bool is_int = !pq_dtype_is_float(t);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            double accd = 0.0;
            int64_t acci = 0;
            for (int64_t s = 0; s < n; s++) {
                int64_t i = rev ? n - 1 - s : s;
                size_t idx = (size_t)(o * n * inner + i * inner + j);
                if (is_int) {
                    int64_t v = pq_dtype_load_i64(t, X->data, idx);
                    if (!excl) acci = (int64_t)((uint64_t)acci + (uint64_t)v);
                    pq_ref_store_int(t, Y->data, idx, acci);
                    if (excl) acci = (int64_t)((uint64_t)acci + (uint64_t)v);
                } else {
                    double v = pq_dtype_load(t, X->data, idx);
                    if (!excl) accd += v;
                    pq_dtype_store(t, Y->data, idx, accd);
                    if (excl) accd += v;
                }
            }
        }
    return PQ_OK;
}
