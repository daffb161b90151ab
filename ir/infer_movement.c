/* Shape-inference rules of the shape and data-movement ops (Reshape ... Trilu): they use known
 * input data (shape tensors, axes, pads, scales) to give static output shapes, and carry symbolic
 * dims through when data is unknown. The reference kernels reuse these rules for output shapes. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "infer_rules.h"

#define MV_MAXV 64 /* largest int vector read from a shape-like input here */

/* ---- small helpers ---- */

pq_shape pq_infer_mv_rank_only(int rank) {
    pq_shape s;
    memset(&s, 0, sizeof s);
    s.rank = rank;
    for (int i = 0; i < rank; i++)
        s.dims[i] = pq_dim_unknown();
    return s;
}

/* Formats a pq_shape for messages ("[2,?,4]"). */
static void mv_fmt(const pq_shape *s, char *buf, int size) {
    if (s->rank < 0) {
        snprintf(buf, (size_t)size, "[?rank]");
        return;
    }
    int used = snprintf(buf, (size_t)size, "[");
    for (int i = 0; i < s->rank && used < size; i++) {
        if (s->dims[i].size >= 0)
            used += snprintf(buf + used, (size_t)(size - used), "%s%lld", i ? "," : "",
                             (long long)s->dims[i].size);
        else
            used += snprintf(buf + used, (size_t)(size - used), "%s?", i ? "," : "");
    }
    if (used < size) snprintf(buf + used, (size_t)(size - used), "]");
}

static bool mv_is_index_type(enum pq_dtype t) {
    return t == PQ_DTYPE_I64 || t == PQ_DTYPE_I32;
}

/* Length of a 1-D input when its shape is known, else -1. */
int64_t pq_infer_mv_len1(const pq_type_info *t) {
    if (!t->present) return -1;
    if (t->value) return pq_tensor_numel(t->value);
    if (t->shape.rank == 1 && pq_dim_known(t->shape.dims[0])) return t->shape.dims[0].size;
    if (t->shape.rank == 0) return 1;
    return -1;
}

/* Reads an optional int input; *known false when present but unknown. Returns INVALID when the
 * value is too long or not an integer tensor. */
enum pq_status pq_infer_mv_ints(pq_infer_ctx *c, uint32_t idx, const char *what, int64_t *v,
                                int max, int *n, bool *known) {
    *known = false;
    *n = 0;
    if (idx >= c->n_in || !c->in[idx].present) return PQ_OK;
    const pq_type_info *t = &c->in[idx];
    if (t->dtype != PQ_DTYPE_UNDEFINED && !pq_dtype_is_integer(t->dtype))
        return pq_error_set(c->err, PQ_ERR_INVALID, "%s must be an integer tensor, got %s", what,
                            pq_dtype_name(t->dtype));
    if (!t->value) return PQ_OK;
    if (t->value->rank > 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "%s must be 1-D, got rank %d", what,
                            t->value->rank);
    if (!pq_infer_const_ints(t, v, max, n))
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "%s has more than %d elements", what, max);
    *known = true;
    return PQ_OK;
}

/* Product of dims[lo..hi) as a pq_dim: the dim itself when one, known product, or unknown. */
static pq_dim mv_prod(const pq_shape *s, int lo, int hi) {
    if (hi - lo == 1) return s->dims[lo];
    int64_t p = 1;
    for (int i = lo; i < hi; i++) {
        if (!pq_dim_known(s->dims[i])) {
            /* a zero dim makes the product zero even with unknowns */
            for (int j = lo; j < hi; j++)
                if (s->dims[j].size == 0) return pq_dim_of(0);
            return pq_dim_unknown();
        }
        p *= s->dims[i].size;
    }
    return pq_dim_of(p);
}

enum pq_status pq_infer_mv_need_rank(pq_infer_ctx *c, int rank, int lo, const char *what) {
    if (rank >= 0 && rank < lo)
        return pq_error_set(c->err, PQ_ERR_INVALID, "%s needs rank >= %d, got %d", what, lo, rank);
    return PQ_OK;
}

/* ---- Reshape ---- */

enum pq_status pq_infer_reshape(pq_infer_ctx *c) {
    const pq_type_info *x = &c->in[0];
    c->out[0].dtype = x->dtype;
    int64_t allowzero = pq_node_attr_int(c->node, "allowzero", 0);
    int64_t sv[PQ_MAX_RANK + 1];
    int n;
    bool known;
    if (c->in[1].value && pq_tensor_numel(c->in[1].value) > PQ_MAX_RANK)
        return pq_error_set(c->err, PQ_ERR_INVALID, "Reshape: target shape has %lld dims (max %d)",
                            (long long)pq_tensor_numel(c->in[1].value), PQ_MAX_RANK);
    PQ_TRY(pq_infer_mv_ints(c, 1, "Reshape shape", sv, PQ_MAX_RANK, &n, &known));
    if (!known) {
        int64_t len = pq_infer_mv_len1(&c->in[1]);
        if (len > PQ_MAX_RANK)
            return pq_error_set(c->err, PQ_ERR_INVALID, "Reshape: target shape has %lld dims",
                                (long long)len);
        c->out[0].shape = len >= 0 ? pq_infer_mv_rank_only((int)len) : pq_shape_unknown();
        return PQ_OK;
    }
    pq_shape o = pq_infer_mv_rank_only(n);
    int neg = -1;
    bool has_zero = false;
    for (int i = 0; i < n; i++) {
        if (sv[i] < -1)
            return pq_error_set(c->err, PQ_ERR_INVALID, "Reshape: invalid dim %lld in shape",
                                (long long)sv[i]);
        if (sv[i] == -1) {
            if (neg >= 0)
                return pq_error_set(c->err, PQ_ERR_INVALID, "Reshape: more than one -1 in shape");
            neg = i;
        } else if (sv[i] == 0 && !allowzero) {
            if (x->shape.rank >= 0 && i >= x->shape.rank)
                return pq_error_set(c->err, PQ_ERR_INVALID,
                                    "Reshape: 0 at dim %d copies a dim the rank-%d input lacks", i,
                                    x->shape.rank);
            o.dims[i] = x->shape.rank >= 0 ? x->shape.dims[i] : pq_dim_unknown();
        } else {
            if (sv[i] == 0) has_zero = true;
            o.dims[i] = pq_dim_of(sv[i]);
        }
    }
    if (allowzero && has_zero && neg >= 0)
        return pq_error_set(c->err, PQ_ERR_INVALID, "Reshape: allowzero shape has both 0 and -1");
    if (x->shape.rank < 0) {
        c->out[0].shape = o;
        return PQ_OK;
    }
    /* Cancel known products and matching symbols between input and output. */
    int64_t num = 1, den = 1;
    bool num_zero = false;
    uint32_t isyms[PQ_MAX_RANK];
    int nis = 0, anon_in = 0, anon_out = 0;
    for (int i = 0; i < x->shape.rank; i++) {
        pq_dim d = x->shape.dims[i];
        if (pq_dim_known(d)) {
            if (d.size == 0)
                num_zero = true;
            else
                num *= d.size;
        } else if (d.sym)
            isyms[nis++] = d.sym;
        else
            anon_in++;
    }
    for (int i = 0; i < n; i++) {
        if (i == neg) continue;
        pq_dim d = o.dims[i];
        if (pq_dim_known(d)) {
            if (d.size == 0) {
                if (!num_zero && anon_in == 0 && nis == 0)
                    return pq_error_set(c->err, PQ_ERR_INVALID,
                                        "Reshape: cannot reshape %lld elements to a shape with 0",
                                        (long long)num);
                den = 0;
            } else
                den *= d.size;
        } else if (d.sym) {
            int k = 0;
            while (k < nis && isyms[k] != d.sym)
                k++;
            if (k < nis)
                isyms[k] = isyms[--nis];
            else
                anon_out++;
        } else
            anon_out++;
    }
    bool exact = nis == 0 && anon_in == 0 && anon_out == 0;
    if (exact) {
        if (neg >= 0) {
            if (den == 0) {
                if (!num_zero)
                    return pq_error_set(c->err, PQ_ERR_INVALID,
                                        "Reshape: -1 with a 0 dim in the target is ambiguous");
                o.dims[neg] = pq_dim_of(0); /* onnx: any size works; pick 0 */
            } else {
                int64_t total = num_zero ? 0 : num;
                if (total % den != 0) {
                    char buf[160];
                    mv_fmt(&o, buf, sizeof buf);
                    return pq_error_set(
                        c->err, PQ_ERR_INVALID,
                        "Reshape: cannot reshape %lld elements to %s (-1 at dim %d)",
                        (long long)total, buf, neg);
                }
                o.dims[neg] = pq_dim_of(total / den);
            }
        } else {
            int64_t total = num_zero ? 0 : num;
            if (total != den) {
                char buf[160];
                mv_fmt(&o, buf, sizeof buf);
                return pq_error_set(c->err, PQ_ERR_INVALID,
                                    "Reshape: cannot reshape %lld elements to %s", (long long)total,
                                    buf);
            }
        }
    }
    c->out[0].shape = o;
    return PQ_OK;
}

/* ---- Flatten ---- */

enum pq_status pq_infer_flatten(pq_infer_ctx *c) {
    const pq_type_info *x = &c->in[0];
    c->out[0].dtype = x->dtype;
    int r = x->shape.rank;
    if (r < 0) {
        c->out[0].shape = pq_infer_mv_rank_only(2);
        return PQ_OK;
    }
    int64_t axis = pq_node_attr_int(c->node, "axis", 1);
    if (axis < -r || axis > r)
        return pq_error_set(c->err, PQ_ERR_INVALID, "Flatten: axis %lld out of range for rank %d",
                            (long long)axis, r);
    int a = (int)(axis < 0 ? axis + r : axis);
    pq_shape o = pq_infer_mv_rank_only(2);
    o.dims[0] = a == 0 ? pq_dim_of(1) : mv_prod(&x->shape, 0, a);
    o.dims[1] = a == r ? pq_dim_of(1) : mv_prod(&x->shape, a, r);
    c->out[0].shape = o;
    return PQ_OK;
}

/* ---- Transpose ---- */

enum pq_status pq_infer_transpose(pq_infer_ctx *c) {
    const pq_type_info *x = &c->in[0];
    c->out[0].dtype = x->dtype;
    const pq_attr *pa = pq_node_attr(c->node, "perm");
    int r = x->shape.rank;
    if (pa && pa->type != PQ_ATTR_INTS)
        return pq_error_set(c->err, PQ_ERR_INVALID, "Transpose: perm must be ints");
    if (r < 0) {
        c->out[0].shape = pa ? pq_infer_mv_rank_only((int)pa->u.ints.n) : pq_shape_unknown();
        return PQ_OK;
    }
    int perm[PQ_MAX_RANK];
    if (pa) {
        if ((int)pa->u.ints.n != r)
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "Transpose: perm has %u entries for rank %d", pa->u.ints.n, r);
        bool seen[PQ_MAX_RANK] = {false};
        for (int i = 0; i < r; i++) {
            int64_t p = pa->u.ints.v[i];
            if (p < -r || p >= r)
                return pq_error_set(c->err, PQ_ERR_INVALID,
                                    "Transpose: perm entry %lld out of range", (long long)p);
            if (p < 0) p += r;
            if (seen[p])
                return pq_error_set(c->err, PQ_ERR_INVALID, "Transpose: perm repeats axis %lld",
                                    (long long)p);
            seen[p] = true;
            perm[i] = (int)p;
        }
    } else {
        for (int i = 0; i < r; i++)
            perm[i] = r - 1 - i;
    }
    pq_shape o = pq_infer_mv_rank_only(r);
    for (int i = 0; i < r; i++)
        o.dims[i] = x->shape.dims[perm[i]];
    c->out[0].shape = o;
    return PQ_OK;
}

/* ---- Concat ---- */

enum pq_status pq_infer_concat(pq_infer_ctx *c) {
    int64_t axis = pq_node_attr_int(c->node, "axis", INT64_MIN);
    if (axis == INT64_MIN)
        return pq_error_set(c->err, PQ_ERR_INVALID, "Concat: missing attribute axis");
    int rank = -1;
    enum pq_dtype dt = PQ_DTYPE_UNDEFINED;
    for (uint32_t i = 0; i < c->n_in; i++) {
        const pq_type_info *t = &c->in[i];
        if (!t->present) continue;
        if (t->dtype != PQ_DTYPE_UNDEFINED) {
            if (dt != PQ_DTYPE_UNDEFINED && dt != t->dtype)
                return pq_error_set(c->err, PQ_ERR_INVALID, "Concat: input %u is %s, input 0 is %s",
                                    i, pq_dtype_name(t->dtype), pq_dtype_name(dt));
            dt = t->dtype;
        }
        if (t->shape.rank >= 0) {
            if (rank >= 0 && rank != t->shape.rank)
                return pq_error_set(c->err, PQ_ERR_INVALID,
                                    "Concat: input %u has rank %d, others rank %d", i,
                                    t->shape.rank, rank);
            rank = t->shape.rank;
        }
    }
    c->out[0].dtype = dt;
    if (rank < 0) return PQ_OK;
    if (rank == 0) return pq_error_set(c->err, PQ_ERR_INVALID, "Concat: inputs are scalars");
    int a;
    PQ_TRY(pq_infer_axis(axis, rank, &a, c->err));
    pq_shape o = pq_infer_mv_rank_only(rank);
    int64_t sum = 0;
    bool sum_known = true;
    bool first = true;
    for (uint32_t i = 0; i < c->n_in; i++) {
        const pq_type_info *t = &c->in[i];
        if (!t->present) continue;
        if (t->shape.rank < 0) {
            sum_known = false;
            continue;
        }
        for (int d = 0; d < rank; d++) {
            pq_dim v = t->shape.dims[d];
            if (d == a) {
                if (pq_dim_known(v))
                    sum += v.size;
                else
                    sum_known = false;
                continue;
            }
            if (first)
                o.dims[d] = v;
            else if (pq_dim_known(v)) {
                if (pq_dim_known(o.dims[d]) && o.dims[d].size != v.size)
                    return pq_error_set(c->err, PQ_ERR_INVALID,
                                        "Concat: input %u has dim %d = %lld, expected %lld", i, d,
                                        (long long)v.size, (long long)o.dims[d].size);
                o.dims[d] = v;
            } else if (!pq_dim_known(o.dims[d]) && o.dims[d].sym == 0) {
                o.dims[d] = v;
            }
        }
        first = false;
    }
    /* a single input along the axis keeps its (possibly symbolic) dim */
    uint32_t n_present = 0, last = 0;
    for (uint32_t i = 0; i < c->n_in; i++)
        if (c->in[i].present) n_present++, last = i;
    if (n_present == 1 && c->in[last].shape.rank >= 0)
        o.dims[a] = c->in[last].shape.dims[a];
    else
        o.dims[a] = sum_known ? pq_dim_of(sum) : pq_dim_unknown();
    c->out[0].shape = o;
    return PQ_OK;
}

/* ---- Split ---- */

enum pq_status pq_infer_split(pq_infer_ctx *c) {
    const pq_type_info *x = &c->in[0];
    uint32_t nout = c->n_out;
    for (uint32_t i = 0; i < nout; i++)
        c->out[i].dtype = x->dtype;
    int r = x->shape.rank;
    if (r < 0) return PQ_OK;
    int a;
    PQ_TRY(pq_infer_axis(pq_node_attr_int(c->node, "axis", 0), r, &a, c->err));
    int64_t num = pq_node_attr_int(c->node, "num_outputs", (int64_t)nout);
    if (num != (int64_t)nout)
        return pq_error_set(c->err, PQ_ERR_INVALID, "Split: num_outputs %lld but %u outputs",
                            (long long)num, nout);
    pq_dim d = x->shape.dims[a];
    int64_t *sv = pq_malloc(sizeof(int64_t) * (nout + 1));
    if (!sv) return pq_error_nomem(c->err, "Split");
    int n = 0;
    bool known = false;
    enum pq_status st = PQ_OK;
    if (c->n_in > 1 && c->in[1].present) {
        st = pq_infer_mv_ints(c, 1, "Split split", sv, (int)nout + 1, &n, &known);
        if (st != PQ_OK) goto done;
        if (!known && c->in[1].value) {
            st =
                pq_error_set(c->err, PQ_ERR_INVALID, "Split: split has %lld entries for %u outputs",
                             (long long)pq_tensor_numel(c->in[1].value), nout);
            goto done;
        }
        if (known) {
            if ((uint32_t)n != nout) {
                st = pq_error_set(c->err, PQ_ERR_INVALID,
                                  "Split: split has %d entries for %u outputs", n, nout);
                goto done;
            }
            int64_t sum = 0;
            for (int i = 0; i < n; i++) {
                if (sv[i] < 0) {
                    st = pq_error_set(c->err, PQ_ERR_INVALID, "Split: negative split %lld",
                                      (long long)sv[i]);
                    goto done;
                }
                sum += sv[i];
            }
            if (pq_dim_known(d) && sum != d.size) {
                st = pq_error_set(c->err, PQ_ERR_INVALID,
                                  "Split: parts sum to %lld but axis %d has %lld", (long long)sum,
                                  a, (long long)d.size);
                goto done;
            }
        }
    } else if (pq_dim_known(d)) {
        if (nout == 0) {
            st = pq_error_set(c->err, PQ_ERR_INVALID, "Split: no outputs");
            goto done;
        }
        int64_t chunk = (d.size + (int64_t)nout - 1) / (int64_t)nout;
        int64_t left = d.size;
        for (uint32_t i = 0; i < nout; i++) {
            sv[i] = left < chunk ? left : chunk;
            left -= sv[i];
        }
        n = (int)nout;
        known = true;
    } else if (nout == 1) {
        sv[0] = -1;
    }
    for (uint32_t i = 0; i < nout; i++) {
        pq_shape o = x->shape;
        if (known)
            o.dims[a] = pq_dim_of(sv[i]);
        else if (nout == 1 && !(c->n_in > 1 && c->in[1].present))
            o.dims[a] = d;
        else
            o.dims[a] = pq_dim_unknown();
        c->out[i].shape = o;
    }
done:
    pq_free(sv);
    return st;
}

/* ---- Slice ---- */

/* Normalises one slice (ONNX rules: negative start/end count from the end, clamped by step sign);
 * writes the first index and the output length. */
void pq_infer_slice_axis(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t *first,
                         int64_t *len) {
    if (start < 0) start += dim;
    if (end < 0) end += dim;
    if (step > 0) {
        start = start < 0 ? 0 : start > dim ? dim : start;
        end = end < 0 ? 0 : end > dim ? dim : end;
        *len = end > start ? (end - start + step - 1) / step : 0;
    } else {
        start = start < 0 ? 0 : start > dim - 1 ? dim - 1 : start;
        end = end < -1 ? -1 : end > dim - 1 ? dim - 1 : end;
        *len = start > end ? (start - end + (-step) - 1) / (-step) : 0;
    }
    *first = start;
}

enum pq_status pq_infer_slice(pq_infer_ctx *c) {
    const pq_type_info *x = &c->in[0];
    c->out[0].dtype = x->dtype;
    int r = x->shape.rank;
    if (r < 0) return PQ_OK;
    int64_t st[MV_MAXV], en[MV_MAXV], ax[MV_MAXV], sp[MV_MAXV];
    int ns, ne, na = 0, nsp = 0;
    bool ks, ke, ka = true, ksp = true;
    PQ_TRY(pq_infer_mv_ints(c, 1, "Slice starts", st, MV_MAXV, &ns, &ks));
    PQ_TRY(pq_infer_mv_ints(c, 2, "Slice ends", en, MV_MAXV, &ne, &ke));
    bool has_axes = c->n_in > 3 && c->in[3].present;
    bool has_steps = c->n_in > 4 && c->in[4].present;
    if (has_axes) PQ_TRY(pq_infer_mv_ints(c, 3, "Slice axes", ax, MV_MAXV, &na, &ka));
    if (has_steps) PQ_TRY(pq_infer_mv_ints(c, 4, "Slice steps", sp, MV_MAXV, &nsp, &ksp));
    if (!ka) {
        c->out[0].shape = pq_infer_mv_rank_only(r);
        return PQ_OK;
    }
    pq_shape o = x->shape;
    int64_t len = ks ? ns : ke ? ne : pq_infer_mv_len1(&c->in[1]);
    if (ks && ke && ns != ne)
        return pq_error_set(c->err, PQ_ERR_INVALID, "Slice: %d starts but %d ends", ns, ne);
    if (has_axes && len >= 0 && na != len)
        return pq_error_set(c->err, PQ_ERR_INVALID, "Slice: %d axes for %lld starts", na,
                            (long long)len);
    if (has_steps && ksp && len >= 0 && nsp != len)
        return pq_error_set(c->err, PQ_ERR_INVALID, "Slice: %d steps for %lld starts", nsp,
                            (long long)len);
    if (!has_axes) {
        if (len < 0) {
            c->out[0].shape = pq_infer_mv_rank_only(r);
            return PQ_OK;
        }
        if (len > r)
            return pq_error_set(c->err, PQ_ERR_INVALID, "Slice: %lld starts for rank %d",
                                (long long)len, r);
        na = (int)len;
        for (int i = 0; i < na; i++)
            ax[i] = i;
    }
    bool seen[PQ_MAX_RANK] = {false};
    for (int i = 0; i < na; i++) {
        int a;
        PQ_TRY(pq_infer_axis(ax[i], r, &a, c->err));
        if (seen[a]) return pq_error_set(c->err, PQ_ERR_INVALID, "Slice: axis %d repeated", a);
        seen[a] = true;
        int64_t step = has_steps && ksp ? sp[i] : 1;
        if (step == 0) return pq_error_set(c->err, PQ_ERR_INVALID, "Slice: step is 0");
        pq_dim d = x->shape.dims[a];
        if (!ks || !ke || (has_steps && !ksp) || !pq_dim_known(d)) {
            /* whole-axis slices keep the dim */
            if (ks && ke && (!has_steps || (ksp && step == 1)) && st[i] == 0 &&
                en[i] >= INT64_C(0x7fffffff))
                continue;
            o.dims[a] = pq_dim_unknown();
            continue;
        }
        int64_t first, l;
        pq_infer_slice_axis(d.size, st[i], en[i], step, &first, &l);
        o.dims[a] = pq_dim_of(l);
    }
    c->out[0].shape = o;
    return PQ_OK;
}

/* ---- Gather / GatherElements ---- */

enum pq_status pq_infer_gather(pq_infer_ctx *c) {
    const pq_type_info *x = &c->in[0], *idx = &c->in[1];
    c->out[0].dtype = x->dtype;
    if (idx->dtype != PQ_DTYPE_UNDEFINED && !mv_is_index_type(idx->dtype))
        return pq_error_set(c->err, PQ_ERR_INVALID, "Gather: indices must be i32 or i64, got %s",
                            pq_dtype_name(idx->dtype));
    int r = x->shape.rank;
    if (r < 0) return PQ_OK;
    PQ_TRY(pq_infer_mv_need_rank(c, r, 1, "Gather data"));
    int a;
    PQ_TRY(pq_infer_axis(pq_node_attr_int(c->node, "axis", 0), r, &a, c->err));
    if (idx->shape.rank < 0) return PQ_OK;
    int q = idx->shape.rank;
    if (r - 1 + q > PQ_MAX_RANK)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "Gather: output rank %d above %d",
                            r - 1 + q, PQ_MAX_RANK);
    pq_shape o = pq_infer_mv_rank_only(r - 1 + q);
    int k = 0;
    for (int i = 0; i < a; i++)
        o.dims[k++] = x->shape.dims[i];
    for (int i = 0; i < q; i++)
        o.dims[k++] = idx->shape.dims[i];
    for (int i = a + 1; i < r; i++)
        o.dims[k++] = x->shape.dims[i];
    c->out[0].shape = o;
    return PQ_OK;
}

enum pq_status pq_infer_gather_elements(pq_infer_ctx *c) {
    const pq_type_info *x = &c->in[0], *idx = &c->in[1];
    c->out[0].dtype = x->dtype;
    if (idx->dtype != PQ_DTYPE_UNDEFINED && !mv_is_index_type(idx->dtype))
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "GatherElements: indices must be i32 or i64, got %s",
                            pq_dtype_name(idx->dtype));
    c->out[0].shape = idx->shape;
    if (x->shape.rank >= 0 && idx->shape.rank >= 0) {
        if (x->shape.rank != idx->shape.rank)
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "GatherElements: data rank %d but indices rank %d", x->shape.rank,
                                idx->shape.rank);
        PQ_TRY(pq_infer_mv_need_rank(c, x->shape.rank, 1, "GatherElements data"));
        int a;
        PQ_TRY(pq_infer_axis(pq_node_attr_int(c->node, "axis", 0), x->shape.rank, &a, c->err));
    }
    return PQ_OK;
}

/* ---- Squeeze / Unsqueeze ---- */

enum pq_status pq_infer_squeeze(pq_infer_ctx *c) {
    const pq_type_info *x = &c->in[0];
    c->out[0].dtype = x->dtype;
    int r = x->shape.rank;
    int64_t ax[MV_MAXV];
    int n;
    bool known;
    bool has_axes = c->n_in > 1 && c->in[1].present;
    PQ_TRY(pq_infer_mv_ints(c, 1, "Squeeze axes", ax, MV_MAXV, &n, &known));
    if (r < 0) return PQ_OK;
    bool drop[PQ_MAX_RANK] = {false};
    if (has_axes && !known) {
        int64_t len = pq_infer_mv_len1(&c->in[1]);
        c->out[0].shape =
            len >= 0 && len <= r ? pq_infer_mv_rank_only(r - (int)len) : pq_shape_unknown();
        return PQ_OK;
    }
    if (has_axes) {
        for (int i = 0; i < n; i++) {
            int a;
            PQ_TRY(pq_infer_axis(ax[i], r, &a, c->err));
            if (drop[a])
                return pq_error_set(c->err, PQ_ERR_INVALID, "Squeeze: axis %d repeated", a);
            pq_dim d = x->shape.dims[a];
            if (pq_dim_known(d) && d.size != 1)
                return pq_error_set(c->err, PQ_ERR_INVALID, "Squeeze: axis %d has size %lld, not 1",
                                    a, (long long)d.size);
            drop[a] = true;
        }
    } else {
        for (int i = 0; i < r; i++) {
            if (!pq_dim_known(x->shape.dims[i])) return PQ_OK; /* rank depends on data */
            drop[i] = x->shape.dims[i].size == 1;
        }
    }
    pq_shape o = pq_infer_mv_rank_only(0);
    for (int i = 0; i < r; i++)
        if (!drop[i]) o.dims[o.rank++] = x->shape.dims[i];
    c->out[0].shape = o;
    return PQ_OK;
}

enum pq_status pq_infer_unsqueeze(pq_infer_ctx *c) {
    const pq_type_info *x = &c->in[0];
    c->out[0].dtype = x->dtype;
    int r = x->shape.rank;
    int64_t ax[MV_MAXV];
    int n;
    bool known;
    PQ_TRY(pq_infer_mv_ints(c, 1, "Unsqueeze axes", ax, MV_MAXV, &n, &known));
    if (r < 0) return PQ_OK;
    if (!known) {
        int64_t len = pq_infer_mv_len1(&c->in[1]);
        if (len >= 0 && r + len <= PQ_MAX_RANK)
            c->out[0].shape = pq_infer_mv_rank_only(r + (int)len);
        return PQ_OK;
    }
    int orank = r + n;
    if (orank > PQ_MAX_RANK)
        return pq_error_set(c->err, PQ_ERR_INVALID, "Unsqueeze: output rank %d above %d", orank,
                            PQ_MAX_RANK);
    bool ins[PQ_MAX_RANK] = {false};
    for (int i = 0; i < n; i++) {
        int a;
        PQ_TRY(pq_infer_axis(ax[i], orank, &a, c->err));
        if (ins[a]) return pq_error_set(c->err, PQ_ERR_INVALID, "Unsqueeze: axis %d repeated", a);
        ins[a] = true;
    }
    pq_shape o = pq_infer_mv_rank_only(orank);
    for (int i = 0, k = 0; i < orank; i++)
        o.dims[i] = ins[i] ? pq_dim_of(1) : x->shape.dims[k++];
    c->out[0].shape = o;
    return PQ_OK;
}

/* ---- Expand / Tile ---- */

enum pq_status pq_infer_expand(pq_infer_ctx *c) {
    const pq_type_info *x = &c->in[0];
    c->out[0].dtype = x->dtype;
    int64_t sv[MV_MAXV];
    int n;
    bool known;
    PQ_TRY(pq_infer_mv_ints(c, 1, "Expand shape", sv, MV_MAXV, &n, &known));
    pq_shape s;
    if (known) {
        if (n > PQ_MAX_RANK)
            return pq_error_set(c->err, PQ_ERR_INVALID, "Expand: shape has %d dims", n);
        s = pq_infer_mv_rank_only(n);
        for (int i = 0; i < n; i++) {
            if (sv[i] < 0)
                return pq_error_set(c->err, PQ_ERR_INVALID, "Expand: negative dim %lld in shape",
                                    (long long)sv[i]);
            s.dims[i] = pq_dim_of(sv[i]);
        }
    } else {
        int64_t len = pq_infer_mv_len1(&c->in[1]);
        if (len < 0 || len > PQ_MAX_RANK) return PQ_OK;
        s = pq_infer_mv_rank_only((int)len);
    }
    pq_shape o;
    PQ_TRY(pq_infer_broadcast(&x->shape, &s, &o, c->err));
    /* an unknown target dim over a known input dim 1 stays unknown */
    if (!known && o.rank >= 0) {
        for (int i = 0; i < o.rank; i++) {
            int ix = i - (o.rank - (x->shape.rank < 0 ? 0 : x->shape.rank));
            int is = i - (o.rank - s.rank);
            if (is >= 0 && (ix < 0 || x->shape.dims[ix].size == 1)) o.dims[i] = pq_dim_unknown();
        }
    }
    c->out[0].shape = o;
    return PQ_OK;
}

enum pq_status pq_infer_tile(pq_infer_ctx *c) {
    const pq_type_info *x = &c->in[0];
    c->out[0].dtype = x->dtype;
    int r = x->shape.rank;
    int64_t rv[MV_MAXV];
    int n;
    bool known;
    PQ_TRY(pq_infer_mv_ints(c, 1, "Tile repeats", rv, MV_MAXV, &n, &known));
    if (r < 0) return PQ_OK;
    pq_shape o = pq_infer_mv_rank_only(r);
    if (!known) {
        for (int i = 0; i < r; i++)
            if (x->shape.dims[i].size == 0) o.dims[i] = pq_dim_of(0);
        c->out[0].shape = o;
        return PQ_OK;
    }
    if (n != r) return pq_error_set(c->err, PQ_ERR_INVALID, "Tile: %d repeats for rank %d", n, r);
    for (int i = 0; i < r; i++) {
        if (rv[i] < 0)
            return pq_error_set(c->err, PQ_ERR_INVALID, "Tile: negative repeat %lld",
                                (long long)rv[i]);
        pq_dim d = x->shape.dims[i];
        if (rv[i] == 1)
            o.dims[i] = d;
        else if (pq_dim_known(d)) {
            if (d.size && rv[i] > PQ_MAX_NUMEL / d.size)
                return pq_error_set(c->err, PQ_ERR_INVALID, "Tile: dim %d too large", i);
            o.dims[i] = pq_dim_of(d.size * rv[i]);
        } else if (rv[i] == 0)
            o.dims[i] = pq_dim_of(0);
    }
    c->out[0].shape = o;
    return PQ_OK;
}

/* ---- Pad ---- */

enum pq_status pq_infer_pad(pq_infer_ctx *c) {
    const pq_type_info *x = &c->in[0];
    c->out[0].dtype = x->dtype;
    const char *mode = pq_node_attr_string(c->node, "mode", "constant");
    if (strcmp(mode, "constant") && strcmp(mode, "reflect") && strcmp(mode, "edge") &&
        strcmp(mode, "wrap"))
        return pq_error_set(c->err, PQ_ERR_INVALID, "Pad: unknown mode '%s'", mode);
    if (c->n_in > 2 && c->in[2].present && c->in[2].dtype != PQ_DTYPE_UNDEFINED &&
        x->dtype != PQ_DTYPE_UNDEFINED && c->in[2].dtype != x->dtype)
        return pq_error_set(c->err, PQ_ERR_INVALID, "Pad: constant_value is %s, data is %s",
                            pq_dtype_name(c->in[2].dtype), pq_dtype_name(x->dtype));
    int r = x->shape.rank;
    int64_t pv[2 * PQ_MAX_RANK], av[PQ_MAX_RANK];
    int np, na = 0;
    bool kp, ka = true;
    if (c->in[1].value && pq_tensor_numel(c->in[1].value) > 2 * PQ_MAX_RANK)
        return pq_error_set(c->err, PQ_ERR_INVALID, "Pad: %lld pads",
                            (long long)pq_tensor_numel(c->in[1].value));
    PQ_TRY(pq_infer_mv_ints(c, 1, "Pad pads", pv, 2 * PQ_MAX_RANK, &np, &kp));
    bool has_axes = c->n_in > 3 && c->in[3].present;
    if (has_axes) {
        if (c->in[3].value && pq_tensor_numel(c->in[3].value) > PQ_MAX_RANK)
            return pq_error_set(c->err, PQ_ERR_INVALID, "Pad: too many axes");
        PQ_TRY(pq_infer_mv_ints(c, 3, "Pad axes", av, PQ_MAX_RANK, &na, &ka));
    }
    if (r < 0) return PQ_OK;
    if (!kp || !ka) {
        c->out[0].shape = pq_infer_mv_rank_only(r);
        return PQ_OK;
    }
    if (!has_axes) {
        na = r;
        for (int i = 0; i < r; i++)
            av[i] = i;
    }
    if (np != 2 * na)
        return pq_error_set(c->err, PQ_ERR_INVALID, "Pad: %d pads for %d axes", np, na);
    pq_shape o = x->shape;
    bool seen[PQ_MAX_RANK] = {false};
    for (int i = 0; i < na; i++) {
        int a;
        PQ_TRY(pq_infer_axis(av[i], r, &a, c->err));
        if (seen[a]) return pq_error_set(c->err, PQ_ERR_INVALID, "Pad: axis %d repeated", a);
        seen[a] = true;
        int64_t b = pv[i], e = pv[i + na];
        if (b < -PQ_MAX_NUMEL || b > PQ_MAX_NUMEL || e < -PQ_MAX_NUMEL || e > PQ_MAX_NUMEL)
            return pq_error_set(c->err, PQ_ERR_INVALID, "Pad: pad out of range on axis %d", a);
        if (b == 0 && e == 0) continue;
        pq_dim d = x->shape.dims[a];
        if (!pq_dim_known(d)) {
            o.dims[a] = pq_dim_unknown();
            continue;
        }
        int64_t v = d.size + b + e;
        if (v < 0)
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "Pad: axis %d of size %lld padded by %lld,%lld is negative", a,
                                (long long)d.size, (long long)b, (long long)e);
        o.dims[a] = pq_dim_of(v);
    }
    c->out[0].shape = o;
    return PQ_OK;
}

/* ---- Resize ---- */

/* Reads a known float input (scales) into out; false when unknown. */
static bool mv_floats(const pq_type_info *t, double *out, int max, int *n) {
    if (!t->present || !t->value || !pq_dtype_is_float(t->value->dtype)) return false;
    int64_t cnt = pq_tensor_numel(t->value);
    if (cnt > max) return false;
    for (int64_t i = 0; i < cnt; i++)
        out[i] = pq_dtype_load(t->value->dtype, t->value->data, i);
    *n = (int)cnt;
    return true;
}

enum pq_status pq_infer_resize(pq_infer_ctx *c) {
    const pq_type_info *x = &c->in[0];
    c->out[0].dtype = x->dtype;
    int r = x->shape.rank;
    const char *mode = pq_node_attr_string(c->node, "mode", "nearest");
    if (strcmp(mode, "nearest") && strcmp(mode, "linear") && strcmp(mode, "cubic"))
        return pq_error_set(c->err, PQ_ERR_INVALID, "Resize: unknown mode '%s'", mode);
    const char *policy = pq_node_attr_string(c->node, "keep_aspect_ratio_policy", "stretch");
    if (strcmp(policy, "stretch") && strcmp(policy, "not_larger") && strcmp(policy, "not_smaller"))
        return pq_error_set(c->err, PQ_ERR_INVALID, "Resize: unknown keep_aspect_ratio_policy '%s'",
                            policy);
    if (r < 0) return PQ_OK;
    int axes[PQ_MAX_RANK];
    int na = r;
    const pq_attr *aa = pq_node_attr(c->node, "axes");
    if (aa && aa->type == PQ_ATTR_INTS) {
        if (aa->u.ints.n > (uint32_t)r)
            return pq_error_set(c->err, PQ_ERR_INVALID, "Resize: %u axes for rank %d", aa->u.ints.n,
                                r);
        na = (int)aa->u.ints.n;
        for (int i = 0; i < na; i++)
            PQ_TRY(pq_infer_axis(aa->u.ints.v[i], r, &axes[i], c->err));
    } else {
        for (int i = 0; i < r; i++)
            axes[i] = i;
    }
    bool has_scales = c->n_in > 2 && c->in[2].present &&
                      !(c->in[2].value && pq_tensor_numel(c->in[2].value) == 0) &&
                      !(c->in[2].shape.rank == 1 && c->in[2].shape.dims[0].size == 0);
    bool has_sizes = c->n_in > 3 && c->in[3].present &&
                     !(c->in[3].value && pq_tensor_numel(c->in[3].value) == 0) &&
                     !(c->in[3].shape.rank == 1 && c->in[3].shape.dims[0].size == 0);
    if (has_scales == has_sizes)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "Resize: exactly one of scales and sizes must be given");
    pq_shape o = x->shape;
    if (has_sizes) {
        int64_t sv[PQ_MAX_RANK];
        int n;
        bool known;
        if (c->in[3].value && pq_tensor_numel(c->in[3].value) > PQ_MAX_RANK)
            return pq_error_set(c->err, PQ_ERR_INVALID, "Resize: sizes too long");
        PQ_TRY(pq_infer_mv_ints(c, 3, "Resize sizes", sv, PQ_MAX_RANK, &n, &known));
        if (!known) {
            for (int i = 0; i < na; i++)
                o.dims[axes[i]] = pq_dim_unknown();
            c->out[0].shape = o;
            return PQ_OK;
        }
        if (n != na)
            return pq_error_set(c->err, PQ_ERR_INVALID, "Resize: %d sizes for %d axes", n, na);
        for (int i = 0; i < n; i++)
            if (sv[i] < 0)
                return pq_error_set(c->err, PQ_ERR_INVALID, "Resize: negative size %lld",
                                    (long long)sv[i]);
        if (strcmp(policy, "stretch") == 0) {
            for (int i = 0; i < na; i++)
                o.dims[axes[i]] = pq_dim_of(sv[i]);
        } else {
            bool small = strcmp(policy, "not_larger") == 0;
            double sc = small ? INFINITY : 0;
            for (int i = 0; i < na; i++) {
                pq_dim d = x->shape.dims[axes[i]];
                if (!pq_dim_known(d) || d.size == 0) {
                    for (int j = 0; j < na; j++)
                        o.dims[axes[j]] = pq_dim_unknown();
                    c->out[0].shape = o;
                    return PQ_OK;
                }
                double s = (double)sv[i] / (double)d.size;
                sc = small ? fmin(sc, s) : fmax(sc, s);
            }
            for (int i = 0; i < na; i++)
                o.dims[axes[i]] =
                    pq_dim_of((int64_t)floor(sc * (double)x->shape.dims[axes[i]].size + 0.5));
        }
    } else {
        double sv[PQ_MAX_RANK], roi[2 * PQ_MAX_RANK];
        int n, nroi = 0;
        bool crop = !strcmp(pq_node_attr_string(c->node, "coordinate_transformation_mode", ""),
                            "tf_crop_and_resize") &&
                    c->n_in > 1 && c->in[1].present;
        if (!mv_floats(&c->in[2], sv, PQ_MAX_RANK, &n)) {
            if (c->in[2].value)
                return pq_error_set(c->err, PQ_ERR_INVALID, "Resize: scales must be float, %d long",
                                    na);
            for (int i = 0; i < na; i++)
                o.dims[axes[i]] = pq_dim_unknown();
            c->out[0].shape = o;
            return PQ_OK;
        }
        if (n != na)
            return pq_error_set(c->err, PQ_ERR_INVALID, "Resize: %d scales for %d axes", n, na);
        for (int i = 0; i < na; i++) {
            if (!(sv[i] > 0) || sv[i] > 1e6)
                return pq_error_set(c->err, PQ_ERR_INVALID, "Resize: scale %g is not positive",
                                    sv[i]);
            pq_dim d = x->shape.dims[axes[i]];
            double f = sv[i];
            if (crop) { /* tf_crop_and_resize: output = floor(input * (roi_end - roi_start) * scale)
                         */
                if (!pq_dim_known(d) || !mv_floats(&c->in[1], roi, 2 * PQ_MAX_RANK, &nroi) ||
                    nroi != 2 * na) {
                    o.dims[axes[i]] = pq_dim_unknown();
                    continue;
                }
                f *= roi[i + na] - roi[i];
                if (!(f >= 0) || f > 1e6)
                    return pq_error_set(c->err, PQ_ERR_INVALID, "Resize: bad roi for axis %d",
                                        axes[i]);
            }
            if (f == 1.0) continue;
            o.dims[axes[i]] =
                pq_dim_known(d) ? pq_dim_of((int64_t)floor((double)d.size * f)) : pq_dim_unknown();
        }
    }
    int64_t dims[PQ_MAX_RANK], numel;
    if (pq_shape_is_static(&o, dims)) PQ_TRY(pq_shape_numel(o.rank, dims, &numel, c->err));
    c->out[0].shape = o;
    return PQ_OK;
}

/* ---- DepthToSpace / SpaceToDepth ---- */

static enum pq_status mv_depth_space(pq_infer_ctx *c, bool to_space) {
    const pq_type_info *x = &c->in[0];
    const char *name = to_space ? "DepthToSpace" : "SpaceToDepth";
    c->out[0].dtype = x->dtype;
    int64_t b = pq_node_attr_int(c->node, "blocksize", 0);
    if (b <= 0 || b > 65536)
        return pq_error_set(c->err, PQ_ERR_INVALID, "%s: blocksize %lld must be positive", name,
                            (long long)b);
    if (to_space) {
        const char *m = pq_node_attr_string(c->node, "mode", "DCR");
        if (strcmp(m, "DCR") && strcmp(m, "CRD"))
            return pq_error_set(c->err, PQ_ERR_INVALID, "DepthToSpace: unknown mode '%s'", m);
    }
    int r = x->shape.rank;
    if (r < 0) {
        c->out[0].shape = pq_infer_mv_rank_only(4);
        return PQ_OK;
    }
    if (r != 4)
        return pq_error_set(c->err, PQ_ERR_INVALID, "%s: input must be 4-D, got rank %d", name, r);
    pq_shape o = x->shape;
    pq_dim ch = x->shape.dims[1];
    if (to_space) {
        if (pq_dim_known(ch)) {
            if (ch.size % (b * b))
                return pq_error_set(c->err, PQ_ERR_INVALID,
                                    "DepthToSpace: %lld channels not divisible by blocksize^2 %lld",
                                    (long long)ch.size, (long long)(b * b));
            o.dims[1] = pq_dim_of(ch.size / (b * b));
        } else
            o.dims[1] = pq_dim_unknown();
        for (int i = 2; i < 4; i++)
            o.dims[i] = pq_dim_known(x->shape.dims[i]) ? pq_dim_of(x->shape.dims[i].size * b)
                                                       : pq_dim_unknown();
    } else {
        o.dims[1] = pq_dim_known(ch) ? pq_dim_of(ch.size * b * b) : pq_dim_unknown();
        for (int i = 2; i < 4; i++) {
            pq_dim d = x->shape.dims[i];
            if (pq_dim_known(d) && d.size % b)
                return pq_error_set(c->err, PQ_ERR_INVALID,
                                    "SpaceToDepth: dim %d (%lld) not divisible by blocksize %lld",
                                    i, (long long)d.size, (long long)b);
            o.dims[i] = pq_dim_known(d) ? pq_dim_of(d.size / b) : pq_dim_unknown();
        }
    }
    c->out[0].shape = o;
    return PQ_OK;
}

enum pq_status pq_infer_depth_to_space(pq_infer_ctx *c) {
    return mv_depth_space(c, true);
}
enum pq_status pq_infer_space_to_depth(pq_infer_ctx *c) {
    return mv_depth_space(c, false);
}
