/* Shared helpers of the reference kernels: broadcast iteration with dims simplified once up
 * front (no per-element division), axis splitting, exact integer element access. */
#include "ref_util.h"

#include <string.h>

void pq_ref_bcast_init(pq_ref_bcast *b, int out_rank, const int64_t *out_dims, int n_ops,
                       const int *ranks, const int64_t *const *dims) {
    memset(b, 0, sizeof *b);
    b->n_ops = n_ops;
    int64_t numel = 1;
    for (int i = 0; i < out_rank; i++)
        numel *= out_dims[i];
    b->numel = numel;
    /* Full-rank strides per operand, then drop size-1 dims and merge contiguous ones. */
    int64_t st[PQ_REF_BCAST_MAX][PQ_MAX_RANK];
    for (int k = 0; k < n_ops; k++) {
        int64_t s = 1;
        for (int i = out_rank - 1; i >= 0; i--) {
            int ik = i - (out_rank - ranks[k]);
            int64_t d = ik >= 0 ? dims[k][ik] : 1;
            st[k][i] = (d == 1 && out_dims[i] != 1) ? 0 : s;
            if (out_dims[i] == 1) st[k][i] = 0;
            s *= d;
        }
    }
    int r = 0;
    for (int i = 0; i < out_rank; i++) {
        if (out_dims[i] == 1) continue;
        if (r > 0) {
            bool merge = true;
            for (int k = 0; k < n_ops; k++)
                if (b->strides[k][r - 1] != st[k][i] * out_dims[i]) merge = false;
            if (merge) {
                b->dims[r - 1] *= out_dims[i];
                for (int k = 0; k < n_ops; k++)
                    b->strides[k][r - 1] = st[k][i];
                continue;
            }
        }
        b->dims[r] = out_dims[i];
        for (int k = 0; k < n_ops; k++)
            b->strides[k][r] = st[k][i];
        r++;
    }
    if (r == 0) {
        b->dims[0] = 1;
        for (int k = 0; k < n_ops; k++)
            b->strides[k][0] = 0;
        r = 1;
    }
    b->rank = r;
    b->inner = b->dims[r - 1];
    for (int k = 0; k < n_ops; k++)
        b->istride[k] = b->strides[k][r - 1];
}

void pq_ref_bcast_init_tensors(pq_ref_bcast *b, const pq_tensor *out, int n_ops,
                               const pq_tensor *const *ops) {
    int ranks[PQ_REF_BCAST_MAX];
    const int64_t *dims[PQ_REF_BCAST_MAX];
    for (int k = 0; k < n_ops && k < PQ_REF_BCAST_MAX; k++) {
        ranks[k] = ops[k]->rank;
        dims[k] = ops[k]->dims;
    }
    pq_ref_bcast_init(b, out->rank, out->dims, n_ops, ranks, dims);
}

void pq_ref_bcast_first(const pq_ref_bcast *b, pq_ref_bcast_it *it) {
    (void)b;
    memset(it, 0, sizeof *it);
}

void pq_ref_bcast_next(const pq_ref_bcast *b, pq_ref_bcast_it *it) {
    it->out += b->inner;
    for (int i = b->rank - 2; i >= 0; i--) {
        if (++it->idx[i] < b->dims[i]) {
            for (int k = 0; k < b->n_ops; k++)
                it->off[k] += b->strides[k][i];
            return;
        }
        it->idx[i] = 0;
        for (int k = 0; k < b->n_ops; k++)
            it->off[k] -= b->strides[k][i] * (b->dims[i] - 1);
    }
}

void pq_ref_split_axis(int rank, const int64_t *dims, int axis, int64_t *outer, int64_t *n,
                       int64_t *inner) {
    int64_t o = 1, in = 1;
    for (int i = 0; i < axis; i++)
        o *= dims[i];
    for (int i = axis + 1; i < rank; i++)
        in *= dims[i];
    *outer = o;
    *n = axis < rank ? dims[axis] : 1;
    *inner = in;
}

void pq_ref_store_int(enum pq_dtype t, void *data, size_t i, int64_t v) {
    uint64_t u = (uint64_t)v;
    switch (t) {
    case PQ_DTYPE_I8:
        ((int8_t *)data)[i] = (int8_t)(uint8_t)u;
        break;
    case PQ_DTYPE_U8:
        ((uint8_t *)data)[i] = (uint8_t)u;
        break;
    case PQ_DTYPE_BOOL:
        ((uint8_t *)data)[i] = v != 0;
        break;
    case PQ_DTYPE_I16:
        ((int16_t *)data)[i] = (int16_t)(uint16_t)u;
        break;
    case PQ_DTYPE_U16:
        ((uint16_t *)data)[i] = (uint16_t)u;
        break;
    case PQ_DTYPE_I32:
        ((int32_t *)data)[i] = (int32_t)(uint32_t)u;
        break;
    case PQ_DTYPE_U32:
        ((uint32_t *)data)[i] = (uint32_t)u;
        break;
    case PQ_DTYPE_I64:
        ((int64_t *)data)[i] = v;
        break;
    case PQ_DTYPE_U64:
        ((uint64_t *)data)[i] = u;
        break;
    default:
        pq_dtype_store(t, data, i, (double)v);
        break;
    }
}

bool pq_ref_dtype_unsigned(enum pq_dtype t) {
    return t == PQ_DTYPE_U8 || t == PQ_DTYPE_U16 || t == PQ_DTYPE_U32 || t == PQ_DTYPE_U64;
}

enum pq_status pq_ref_read_ints(const pq_tensor *t, int64_t *out, int max, int *n, const char *what,
                                pq_error *err) {
    *n = 0;
    if (!t) return PQ_OK;
    if (!pq_dtype_is_integer(t->dtype) || t->rank > 1)
        return pq_error_set(err, PQ_ERR_INVALID, "%s must be an integer scalar or 1-D tensor",
                            what);
    int64_t cnt = pq_tensor_numel(t);
    if (cnt > max)
        return pq_error_set(err, PQ_ERR_INVALID, "%s has %lld elements, at most %d allowed", what,
                            (long long)cnt, max);
    for (int64_t i = 0; i < cnt; i++)
        out[i] = pq_dtype_load_i64(t->dtype, t->data, (size_t)i);
    *n = (int)cnt;
    return PQ_OK;
}

enum pq_status pq_ref_check_args(const pq_kernel_args *a, uint32_t n_in, uint32_t n_out) {
    if (a->n_in < n_in || a->n_out < n_out)
        return pq_error_set(a->err, PQ_ERR_INVALID,
                            "expected %u input(s) and %u output(s), got %u and %u", n_in, n_out,
                            a->n_in, a->n_out);
    for (uint32_t i = 0; i < n_in; i++)
        if (!a->in[i]) return pq_error_set(a->err, PQ_ERR_INVALID, "input %u is missing", i);
    for (uint32_t i = 0; i < n_out; i++) {
        const pq_tensor *t = a->out[i];
        if (!t) return pq_error_set(a->err, PQ_ERR_INVALID, "output %u is missing", i);
        if (!t->data && pq_tensor_numel(t) != 0)
            return pq_error_set(
                a->err, PQ_ERR_INTERNAL,
                "output %u has no buffer (its shape should be known before the run)", i);
    }
    return PQ_OK;
}
