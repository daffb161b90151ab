/* Reference kernels of the further indexing ops: NonZero, GatherND, ScatterElements (and the
 * opset 9-10 Scatter), ScatterND (reductions none/add/mul/max/min), Compress, ReverseSequence and
 * Unique. Indices are checked against the data's dims here (they are data, not shapes). */
#include <string.h>

#include "ref_kernels.h"
#include "ref_util.h"

/* ---- shared helpers ---- */

static bool pq_x_nonzero(const pq_tensor *t, int64_t i) {
    if (pq_dtype_is_float(t->dtype)) return pq_dtype_load(t->dtype, t->data, (size_t)i) != 0.0;
    size_t es = pq_dtype_size(t->dtype);
    const uint8_t *p = (const uint8_t *)t->data + (size_t)i * es;
    for (size_t b = 0; b < es; b++)
        if (p[b]) return true;
    return false;
}

/* Index value i of an index tensor normalised against dim (negative counts from the end);
 * INVALID when out of range. */
static enum pq_status pq_x_index(const pq_kernel_args *a, const pq_tensor *ix, int64_t i,
                                 int64_t dim, int64_t *out) {
    int64_t v = pq_dtype_load_i64(ix->dtype, ix->data, (size_t)i);
    if (v < -dim || v >= dim)
        return pq_error_set(a->err, PQ_ERR_INVALID, "index %lld out of range [-%lld, %lld)",
                            (long long)v, (long long)dim, (long long)dim);
    *out = v < 0 ? v + dim : v;
    return PQ_OK;
}

enum pq_x_red { PQ_X_RED_NONE, PQ_X_RED_ADD, PQ_X_RED_MUL, PQ_X_RED_MAX, PQ_X_RED_MIN };

static enum pq_x_red pq_x_reduction(const pq_node *n) {
    const char *r = pq_node_attr_string(n, "reduction", "none");
    if (strcmp(r, "add") == 0) return PQ_X_RED_ADD;
    if (strcmp(r, "mul") == 0) return PQ_X_RED_MUL;
    if (strcmp(r, "max") == 0) return PQ_X_RED_MAX;
    if (strcmp(r, "min") == 0) return PQ_X_RED_MIN;
    return PQ_X_RED_NONE;
}

/* y[yi] = reduce(y[yi], u[ui]) for tensors of the same dtype. */
static void pq_x_apply(pq_tensor *y, int64_t yi, const pq_tensor *u, int64_t ui, enum pq_x_red r) {
    enum pq_dtype t = y->dtype;
    size_t es = pq_dtype_size(t);
    if (r == PQ_X_RED_NONE) {
        memcpy((uint8_t *)y->data + (size_t)yi * es, (const uint8_t *)u->data + (size_t)ui * es,
               es);
    } else if (pq_dtype_is_float(t)) {
        double a = pq_dtype_load(t, y->data, (size_t)yi), b = pq_dtype_load(t, u->data, (size_t)ui);
        double v = r == PQ_X_RED_ADD   ? a + b
                   : r == PQ_X_RED_MUL ? a * b
                   : r == PQ_X_RED_MAX ? (b > a ? b : a)
                                       : (b < a ? b : a);
        pq_dtype_store(t, y->data, (size_t)yi, v);
    } else {
        int64_t a = pq_dtype_load_i64(t, y->data, (size_t)yi);
        int64_t b = pq_dtype_load_i64(t, u->data, (size_t)ui);
        bool uns = pq_ref_dtype_unsigned(t);
        bool b_gt = uns ? (uint64_t)b > (uint64_t)a : b > a;
        int64_t v = r == PQ_X_RED_ADD   ? (int64_t)((uint64_t)a + (uint64_t)b)
                    : r == PQ_X_RED_MUL ? (int64_t)((uint64_t)a * (uint64_t)b)
                    : r == PQ_X_RED_MAX ? (b_gt ? b : a)
                                        : (b_gt || a == b ? a : b);
        pq_ref_store_int(t, y->data, (size_t)yi, v);
    }
}

/* ---- NonZero ---- */

enum pq_status pq_ref_x_non_zero(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_x_prep(a, 1, 1));
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    int64_t n = pq_tensor_numel(X), cnt = Y->dims[1], k = 0, idx[PQ_MAX_RANK] = {0};
    int64_t *y = Y->data;
    for (int64_t i = 0; i < n; i++) {
        if (pq_x_nonzero(X, i)) {
            if (k >= cnt) return pq_error_set(a->err, PQ_ERR_INTERNAL, "nonzero count changed");
            for (int d = 0; d < X->rank; d++)
                y[d * cnt + k] = idx[d];
            k++;
        }
        for (int d = X->rank - 1; d >= 0; d--) {
            if (++idx[d] < X->dims[d]) break;
            idx[d] = 0;
        }
    }
    return PQ_OK;
}

/* ---- GatherND ---- */

enum pq_status pq_ref_x_gather_nd(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_x_prep(a, 2, 1));
    const pq_tensor *D = a->in[0], *Q = a->in[1];
    pq_tensor *Y = a->out[0];
    int b = (int)pq_node_attr_int(a->node, "batch_dims", 0);
    int q = Q->rank;
    int64_t k = Q->dims[q - 1];
    int64_t nb = 1, nidx = 1, slice = 1, dbs = 1, stride[PQ_MAX_RANK];
    for (int i = 0; i < b; i++)
        nb *= D->dims[i];
    for (int i = b; i < q - 1; i++)
        nidx *= Q->dims[i];
    for (int i = b + (int)k; i < D->rank; i++)
        slice *= D->dims[i];
    for (int i = D->rank - 1; i >= b; i--) {
        if (i - b < k) stride[i - b] = dbs;
        dbs *= D->dims[i];
    }
    size_t es = pq_dtype_size(D->dtype);
    const uint8_t *src = D->data;
    uint8_t *dst = Y->data;
    for (int64_t bi = 0; bi < nb; bi++)
        for (int64_t j = 0; j < nidx; j++) {
            int64_t row = bi * nidx + j, off = bi * dbs;
            for (int64_t t = 0; t < k; t++) {
                int64_t v = 0;
                PQ_TRY(pq_x_index(a, Q, row * k + t, D->dims[b + t], &v));
                off += v * stride[t];
            }
            memcpy(dst + (size_t)(row * slice) * es, src + (size_t)off * es, (size_t)slice * es);
        }
    return PQ_OK;
}

/* ---- ScatterElements / Scatter ---- */

enum pq_status pq_ref_x_scatter_elements(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_x_prep(a, 3, 1));
    const pq_tensor *D = a->in[0], *Q = a->in[1], *U = a->in[2];
    pq_tensor *Y = a->out[0];
    int ax;
    PQ_TRY(pq_infer_axis(pq_node_attr_int(a->node, "axis", 0), D->rank, &ax, a->err));
    enum pq_x_red red = pq_x_reduction(a->node);
    if (Y->data != D->data) memcpy(Y->data, D->data, Y->nbytes);
    int64_t ds[PQ_MAX_RANK], idx[PQ_MAX_RANK] = {0}, n = pq_tensor_numel(Q);
    pq_shape_strides(D->rank, D->dims, ds);
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0;
        for (int d = 0; d < D->rank; d++) {
            int64_t v = idx[d];
            if (d == ax) PQ_TRY(pq_x_index(a, Q, i, D->dims[d], &v));
            off += v * ds[d];
        }
        pq_x_apply(Y, off, U, i, red);
        for (int d = Q->rank - 1; d >= 0; d--) {
            if (++idx[d] < Q->dims[d]) break;
            idx[d] = 0;
        }
    }
    return PQ_OK;
}

/* ---- ScatterND ---- */

enum pq_status pq_ref_x_scatter_nd(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_x_prep(a, 3, 1));
    const pq_tensor *D = a->in[0], *Q = a->in[1], *U = a->in[2];
    pq_tensor *Y = a->out[0];
    enum pq_x_red red = pq_x_reduction(a->node);
    if (Y->data != D->data) memcpy(Y->data, D->data, Y->nbytes);
    int64_t k = Q->dims[Q->rank - 1], n = 1, slice = 1, ds[PQ_MAX_RANK];
    for (int i = 0; i < Q->rank - 1; i++)
        n *= Q->dims[i];
    for (int i = (int)k; i < D->rank; i++)
        slice *= D->dims[i];
    pq_shape_strides(D->rank, D->dims, ds);
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0;
        for (int64_t t = 0; t < k; t++) {
            int64_t v = 0;
            PQ_TRY(pq_x_index(a, Q, i * k + t, D->dims[t], &v));
            off += v * ds[t];
        }
        for (int64_t e = 0; e < slice; e++)
            pq_x_apply(Y, off + e, U, i * slice + e, red);
    }
    return PQ_OK;
}

/* ---- Compress ---- */

enum pq_status pq_ref_x_compress(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_x_prep(a, 2, 1));
    const pq_tensor *X = a->in[0], *C = a->in[1];
    pq_tensor *Y = a->out[0];
    const uint8_t *cond = C->data;
    int64_t nc = pq_tensor_numel(C);
    size_t es = pq_dtype_size(X->dtype);
    const uint8_t *src = X->data;
    uint8_t *dst = Y->data;
    if (!pq_node_attr(a->node, "axis")) {
        int64_t k = 0;
        for (int64_t i = 0; i < nc; i++)
            if (cond[i]) memcpy(dst + (size_t)(k++) * es, src + (size_t)i * es, es);
        return PQ_OK;
    }
    int ax;
    PQ_TRY(pq_infer_axis(pq_node_attr_int(a->node, "axis", 0), X->rank, &ax, a->err));
    int64_t outer, n, inner;
    pq_ref_split_axis(X->rank, X->dims, ax, &outer, &n, &inner);
    size_t blk = (size_t)inner * es;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < nc && i < n; i++)
            if (cond[i]) {
                memcpy(dst, src + (size_t)(o * n + i) * blk, blk);
                dst += blk;
            }
    return PQ_OK;
}

/* ---- ReverseSequence ---- */

enum pq_status pq_ref_x_reverse_sequence(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_x_prep(a, 2, 1));
    const pq_tensor *X = a->in[0], *L = a->in[1];
    pq_tensor *Y = a->out[0];
    int ba = (int)pq_node_attr_int(a->node, "batch_axis", 1);
    int64_t inner = 1;
    for (int i = 2; i < X->rank; i++)
        inner *= X->dims[i];
    int64_t B = X->dims[ba], T = X->dims[1 - ba];
    size_t blk = (size_t)inner * pq_dtype_size(X->dtype);
    const uint8_t *src = X->data;
    uint8_t *dst = Y->data;
    for (int64_t b = 0; b < B; b++) {
        int64_t len = pq_dtype_load_i64(L->dtype, L->data, (size_t)b);
        if (len < 0 || len > T)
            return pq_error_set(a->err, PQ_ERR_INVALID,
                                "sequence_lens[%lld] = %lld out of "
                                "[0, %lld]",
                                (long long)b, (long long)len, (long long)T);
        for (int64_t t = 0; t < T; t++) {
            int64_t s = t < len ? len - 1 - t : t;
            int64_t od = ba == 1 ? t * B + b : b * T + t, os = ba == 1 ? s * B + b : b * T + s;
            memcpy(dst + (size_t)od * blk, src + (size_t)os * blk, blk);
        }
    }
    return PQ_OK;
}

/* ---- Unique ---- */

typedef struct pq_x_items {
    const pq_tensor *x;
    int64_t outer, n, inner; /* item i = elements (o, i, j) for all o, j */
} pq_x_items;

static int pq_x_cmp_elem(const pq_tensor *x, int64_t p, int64_t q) {
    enum pq_dtype t = x->dtype;
    if (pq_dtype_is_float(t)) {
        double a = pq_dtype_load(t, x->data, (size_t)p), b = pq_dtype_load(t, x->data, (size_t)q);
        return a < b ? -1 : (a > b ? 1 : 0);
    }
    int64_t a = pq_dtype_load_i64(t, x->data, (size_t)p), b = pq_dtype_load_i64(t, x->data, (size_t)q);
    if (pq_ref_dtype_unsigned(t))
        return (uint64_t)a < (uint64_t)b ? -1 : ((uint64_t)a > (uint64_t)b ? 1 : 0);
    return a < b ? -1 : (a > b ? 1 : 0);
}

static int pq_x_cmp_item(const pq_x_items *it, int64_t a, int64_t b) {
    for (int64_t o = 0; o < it->outer; o++)
        for (int64_t j = 0; j < it->inner; j++) {
            int64_t base = o * it->n * it->inner + j;
            int c = pq_x_cmp_elem(it->x, base + a * it->inner, base + b * it->inner);
            if (c) return c;
        }
    return 0;
}

/* Stable merge sort of v[0..n) by item value (tmp has n entries). */
static void pq_x_sort(const pq_x_items *it, int64_t *v, int64_t *tmp, int64_t n) {
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = pq_x_cmp_item(it, v[j], v[i]) < 0 ? v[j++] : v[i++];
            while (i < mid)
                tmp[k++] = v[i++];
            while (j < hi)
                tmp[k++] = v[j++];
        }
        memcpy(v, tmp, (size_t)n * sizeof *v);
    }
}

/* Gives output o the dtype and shape, allocating it or checking a planned buffer. */
static enum pq_status pq_x_out(const pq_kernel_args *a, uint32_t o, enum pq_dtype t, int rank,
                               const int64_t *dims) {
    pq_tensor *y = a->out[o];
    if (!y->data) return pq_tensor_alloc_data(y, t, rank, dims, a->err);
    bool same = y->dtype == t && y->rank == rank;
    for (int i = 0; same && i < rank; i++)
        same = y->dims[i] == dims[i];
    if (!same)
        return pq_error_set(a->err, PQ_ERR_INTERNAL, "output %u was planned with another shape", o);
    return PQ_OK;
}

enum pq_status pq_ref_x_unique(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 1, 0));
    const pq_tensor *X = a->in[0];
    pq_x_items it = {X, 1, pq_tensor_numel(X), 1};
    int ax = -1;
    if (pq_node_attr(a->node, "axis")) {
        if (X->rank < 1) return pq_error_set(a->err, PQ_ERR_INVALID, "X is a scalar");
        PQ_TRY(pq_infer_axis(pq_node_attr_int(a->node, "axis", 0), X->rank, &ax, a->err));
        pq_ref_split_axis(X->rank, X->dims, ax, &it.outer, &it.n, &it.inner);
    }
    bool sorted = pq_node_attr_int(a->node, "sorted", 1) != 0;
    int64_t n = it.n;
    size_t cnt = (size_t)(n > 0 ? n : 1);
    int64_t *order = pq_malloc(cnt * sizeof(int64_t)), *tmp = pq_malloc(cnt * sizeof(int64_t));
    int64_t *first = pq_malloc(cnt * sizeof(int64_t)), *counts = pq_malloc(cnt * sizeof(int64_t));
    int64_t *inv = pq_malloc(cnt * sizeof(int64_t)), *rank_of = pq_malloc(cnt * sizeof(int64_t));
    enum pq_status st = PQ_OK;
    if (!order || !tmp || !first || !counts || !inv || !rank_of) {
        st = pq_error_nomem(a->err, "Unique buffers");
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        order[i] = i;
    pq_x_sort(&it, order, tmp, n);
    /* groups of equal items in sorted order; the stable sort puts the first occurrence first */
    int64_t u = 0;
    for (int64_t i = 0; i < n; i++) {
        if (i == 0 || pq_x_cmp_item(&it, order[i - 1], order[i]) != 0) {
            first[u] = order[i];
            counts[u] = 0;
            u++;
        }
        counts[u - 1]++;
        inv[order[i]] = u - 1;
    }
    if (!sorted) {
        /* renumber groups in order of first occurrence (order[] is free now: scratch) */
        for (int64_t g = 0; g < u; g++)
            rank_of[g] = -1;
        int64_t next = 0;
        for (int64_t i = 0; i < n; i++)
            if (rank_of[inv[i]] < 0) rank_of[inv[i]] = next++;
        for (int64_t g = 0; g < u; g++)
            order[rank_of[g]] = first[g];
        memcpy(first, order, (size_t)u * sizeof(int64_t));
        for (int64_t g = 0; g < u; g++)
            order[rank_of[g]] = counts[g];
        memcpy(counts, order, (size_t)u * sizeof(int64_t));
        for (int64_t i = 0; i < n; i++)
            inv[i] = rank_of[inv[i]];
    }
    if (a->n_out > 0 && a->out[0]) {
        int64_t dims[PQ_MAX_RANK];
        int rank = 1;
        dims[0] = u;
        if (ax >= 0) {
            rank = X->rank;
            memcpy(dims, X->dims, sizeof(int64_t) * (size_t)rank);
            dims[ax] = u;
        }
        PQ_TRY_GOTO(st, pq_x_out(a, 0, X->dtype, rank, dims), done);
        size_t es = pq_dtype_size(X->dtype), blk = (size_t)it.inner * es;
        const uint8_t *src = X->data;
        uint8_t *dst = a->out[0]->data;
        for (int64_t o = 0; o < it.outer; o++)
            for (int64_t g = 0; g < u; g++) {
                memcpy(dst, src + (size_t)(o * n + first[g]) * blk, blk);
                dst += blk;
            }
    }
    const int64_t *srcs[4] = {NULL, first, inv, counts};
    int64_t lens[4] = {0, u, n, u};
    for (uint32_t o = 1; o < 4 && o < a->n_out; o++) {
        if (!a->out[o]) continue;
        PQ_TRY_GOTO(st, pq_x_out(a, o, PQ_DTYPE_I64, 1, &lens[o]), done);
        if (lens[o]) memcpy(a->out[o]->data, srcs[o], (size_t)lens[o] * sizeof(int64_t));
    }
done:
    pq_free(order);
    pq_free(tmp);
    pq_free(first);
    pq_free(counts);
    pq_free(inv);
    pq_free(rank_of);
    return st;
}
