/* Fast Resize / Transpose / Concat / Split / Slice: scalar row kernels, the run-time ISA choice and
 * the node glue (taps, dim merging, threaded copy plans) shared by every ISA. Numerics and the
 * cases handled: backends/movement_fast.h. */
#include "backends/movement_fast.h"

#include <pthread.h>
#include <string.h>

#include "backends/cpu.h"
#include "backends/ref/ref_kernels.h"
#include "backends/threadpool.h"

/* ---- scalar row kernels ---- */

static void pq_mv_linear_row__scalar(const double *a0, const double *a1, const double *b0,
                                     const double *b1, double wy0, double wy1, const double *wx0,
                                     const double *wx1, float *y, int64_t n) {
    for (int64_t j = 0; j < n; j++) {
        double acc = 0.0;
        acc += (wy0 * wx0[j]) * a0[j];
        acc += (wy0 * wx1[j]) * a1[j];
        if (b0) {
            acc += (wy1 * wx0[j]) * b0[j];
            acc += (wy1 * wx1[j]) * b1[j];
        }
        y[j] = (float)acc;
    }
}

static void pq_mv_transpose32__scalar(const uint32_t *src, int64_t ss, uint32_t *dst, int64_t ds,
                                      int64_t ni, int64_t nj) {
    for (int64_t i = 0; i < ni; i++)
        for (int64_t j = 0; j < nj; j++)
            dst[i * ds + j] = src[j * ss + i];
}

const pq_movement_kernels pq_movement_kernels_scalar = {
    .isa = "scalar",
    .linear_row = pq_mv_linear_row__scalar,
    .transpose32 = pq_mv_transpose32__scalar,
};

/* ---- selection ---- */

const pq_movement_kernels *pq_movement_kernels_for(const char *isa) {
    if (!isa) return NULL;
    if (!strcmp(isa, "scalar")) return &pq_movement_kernels_scalar;
#if defined(__x86_64__)
    if (!strcmp(isa, "avx2"))
        return pq_cpu_has_avx2() && pq_movement_kernels_avx2.linear_row ? &pq_movement_kernels_avx2
                                                                        : NULL;
    if (!strcmp(isa, "avx512"))
        return pq_cpu_has_avx512() && pq_movement_kernels_avx512.linear_row
                   ? &pq_movement_kernels_avx512
                   : NULL;
#endif
    return NULL;
}

static const pq_movement_kernels *pq_mv_selected;
static pthread_once_t pq_mv_once = PTHREAD_ONCE_INIT;

static void pq_mv_select(void) {
    const char *f = pq_isa_forced();
    if (f && (pq_mv_selected = pq_movement_kernels_for(f))) return;
    if (f) { /* forced but unavailable (e.g. neon on x86): the portable kernels */
        pq_mv_selected = &pq_movement_kernels_scalar;
        return;
    }
    if ((pq_mv_selected = pq_movement_kernels_for("avx512"))) return;
    if ((pq_mv_selected = pq_movement_kernels_for("avx2"))) return;
    pq_mv_selected = &pq_movement_kernels_scalar;
}

const pq_movement_kernels *pq_movement_kernels_get(void) {
    pthread_once(&pq_mv_once, pq_mv_select);
    return pq_mv_selected;
}

/* ---- threading ---- */

/* Work below these sizes runs on the calling thread: waking a pool worker costs microseconds on an
 * idle core and up to a time slice on a busy one. Resize: output elements (~1 ns each);
 * copies: bytes (~0.1 ns each). */
#define PQ_MV_RESIZE_PAR_MIN ((int64_t)1 << 16)
#define PQ_MV_COPY_PAR_MIN ((int64_t)1 << 19)

static int pq_mv_threads(const pq_kernel_args *a, int64_t work, int64_t min_work) {
    return a->n_threads > 1 && work >= min_work ? a->n_threads : 1;
}

/* ---- copy plans: uniform 2-D row copies split by bytes over threads ---- */

/* rows = prod(dims[0..nd)) rows of run bytes; row r goes to dst + r * dst_stride from src + the
 * odometer offset of r over dims (last fastest) with byte strides. */
typedef struct pq_mv_copy {
    uint8_t *dst;
    const uint8_t *src;
    int64_t dst_stride, run, rows;
    int nd;
    int64_t dims[PQ_MAX_RANK], strides[PQ_MAX_RANK];
} pq_mv_copy;

typedef struct {
    const pq_mv_copy *c;
    int n;
    int64_t total, chunks;
} pq_mv_copy_job;

/* Copies bytes [lb, le) of copy c (bytes counted row after row). */
static void pq_mv_copy_range(const pq_mv_copy *c, int64_t lb, int64_t le) {
    int64_t row = lb / c->run, off = lb % c->run;
    int64_t idx[PQ_MAX_RANK], soff = 0, r = row;
    for (int d = c->nd - 1; d >= 0; d--) {
        idx[d] = r % c->dims[d];
        r /= c->dims[d];
        soff += idx[d] * c->strides[d];
    }
    for (int64_t pos = lb; pos < le; row++) {
        int64_t len = c->run - off < le - pos ? c->run - off : le - pos;
        memcpy(c->dst + row * c->dst_stride + off, c->src + soff + off, (size_t)len);
        pos += len;
        off = 0;
        for (int d = c->nd - 1; d >= 0; d--) {
            soff += c->strides[d];
            if (++idx[d] < c->dims[d]) break;
            soff -= c->strides[d] * c->dims[d];
            idx[d] = 0;
        }
    }
}

static void pq_mv_copy_chunk(void *ctx, int64_t t0, int64_t t1) {
    const pq_mv_copy_job *j = ctx;
    for (int64_t t = t0; t < t1; t++) {
        int64_t b, e, base = 0;
        pq_parallel_range(j->total, j->chunks, t, &b, &e);
        for (int i = 0; i < j->n && base < e; i++) {
            int64_t nb = j->c[i].rows * j->c[i].run;
            int64_t lb = b > base ? b - base : 0, le = e - base < nb ? e - base : nb;
            if (lb < le) pq_mv_copy_range(&j->c[i], lb, le);
            base += nb;
        }
    }
}

static void pq_mv_copy_run(const pq_kernel_args *a, const pq_mv_copy *c, int n) {
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        total += c[i].rows * c[i].run;
    if (total == 0) return;
    int th = pq_mv_threads(a, total, PQ_MV_COPY_PAR_MIN);
    pq_mv_copy_job j = {c, n, total, pq_parallel_chunks(th, total)};
    pq_parallel_for(th, j.chunks, pq_mv_copy_chunk, &j);
}

/* Drops axes of size 1 and merges neighbours i, i+1 with s[i] == s[i+1] * d[i+1] (contiguous in
 * the source as in the destination). Returns the new rank (0: one element). */
static int pq_mv_merge(int r, int64_t *d, int64_t *s) {
    int n = 0;
    for (int i = 0; i < r; i++) {
        if (d[i] == 1) continue;
        if (n > 0 && s[n - 1] == s[i] * d[i]) {
            d[n - 1] *= d[i];
            s[n - 1] = s[i];
            continue;
        }
        d[n] = d[i];
        s[n] = s[i];
        n++;
    }
    return n;
}

/* A strided view (dims d, element strides s from src) copied to the packed dst: true when its
 * innermost merged axis has stride 1 and the copy ran, false otherwise (nothing written). */
static bool pq_mv_view_copy(const pq_kernel_args *a, void *dst, const void *src, int r,
                            const int64_t *dims, const int64_t *strides, size_t es) {
    int64_t d[PQ_MAX_RANK], s[PQ_MAX_RANK];
    memcpy(d, dims, sizeof(int64_t) * (size_t)r);
    memcpy(s, strides, sizeof(int64_t) * (size_t)r);
    int n = pq_mv_merge(r, d, s);
    if (n > 0 && s[n - 1] != 1) return false;
    pq_mv_copy c = {.dst = dst, .src = src, .run = (int64_t)es, .rows = 1, .nd = 0};
    if (n > 0) {
        c.run = d[n - 1] * (int64_t)es;
        c.nd = n - 1;
        for (int i = 0; i < n - 1; i++) {
            c.dims[i] = d[i];
            c.strides[i] = s[i] * (int64_t)es;
            c.rows *= d[i];
        }
    }
    c.dst_stride = c.run;
    pq_mv_copy_run(a, &c, 1);
    return true;
}

/* ---- Concat / Split ---- */

static void pq_mv_axis_split(const pq_tensor *t, int axis, int64_t *outer, int64_t *inner) {
    *outer = 1;
    *inner = 1;
    for (int i = 0; i < axis; i++)
        *outer *= t->dims[i];
    for (int i = axis + 1; i < t->rank; i++)
        *inner *= t->dims[i];
}

/* Concat / Split as one 2-D copy per input / output (pieces of n plans, allocated when many). */
static enum pq_status pq_mv_pieces(const pq_kernel_args *a, bool split) {
    PQ_TRY(pq_ref_mv_outputs(a));
    const pq_tensor *whole = split ? a->in[0] : a->out[0];
    uint32_t np = split ? a->n_out : a->n_in;
    int ax = (int)pq_node_attr_int(a->node, "axis", 0);
    if (ax < 0) ax += whole->rank;
    if (pq_tensor_numel(whole) == 0) return PQ_OK;
    size_t es = pq_dtype_size(whole->dtype);
    int64_t outer, inner;
    pq_mv_axis_split(whole, ax, &outer, &inner);
    int64_t wrow = whole->dims[ax] * inner * (int64_t)es, off = 0;
    pq_mv_copy small[8], *c = np <= 8 ? small : pq_calloc(np, sizeof *c);
    if (!c) return pq_error_nomem(a->err, split ? "Split" : "Concat");
    int n = 0;
    /* Split: sizes along the axis as the reference reads them (split input or equal parts). */
    int64_t d = whole->dims[ax], chunk = np ? (d + np - 1) / np : 0, left = d;
    for (uint32_t i = 0; i < np; i++) {
        int64_t part;
        const pq_tensor *t = split ? a->out[i] : a->in[i];
        if (!split) {
            if (!t) continue;
            part = t->dims[ax];
        } else if (a->n_in > 1 && a->in[1]) {
            part = pq_dtype_load_i64(a->in[1]->dtype, a->in[1]->data, i);
        } else {
            part = left < chunk ? left : chunk;
        }
        left -= part;
        int64_t prow = part * inner * (int64_t)es;
        if (t && prow) {
            pq_mv_copy *p = &c[n++];
            memset(p, 0, sizeof *p);
            p->run = prow;
            p->rows = outer;
            p->nd = 1;
            p->dims[0] = outer;
            if (split) {
                p->dst = t->data;
                p->dst_stride = prow;
                p->src = (const uint8_t *)whole->data + off;
                p->strides[0] = wrow;
            } else {
                p->dst = (uint8_t *)whole->data + off;
                p->dst_stride = wrow;
                p->src = t->data;
                p->strides[0] = prow;
            }
        }
        off += prow;
    }
    pq_mv_copy_run(a, c, n);
    if (c != small) pq_free(c);
    return PQ_OK;
}

enum pq_status pq_movement_concat_run(const pq_kernel_args *a) {
    if (a->node->op != PQ_OP_CONCAT || a->n_out < 1 || !a->out[0]) return PQ_ERR_UNSUPPORTED;
    for (uint32_t i = 0; i < a->n_in; i++)
        if (a->in[i] && !a->in[i]->data && pq_tensor_numel(a->in[i]) > 0) return PQ_ERR_UNSUPPORTED;
    return pq_mv_pieces(a, false);
}

enum pq_status pq_movement_split_run(const pq_kernel_args *a) {
    if (a->node->op != PQ_OP_SPLIT || a->n_in < 1 || !a->in[0] || !a->in[0]->data)
        return PQ_ERR_UNSUPPORTED;
    return pq_mv_pieces(a, true);
}

/* ---- Slice ---- */

/* First index and length of the slice start:end:step of an axis of size dim (ONNX clamping). */
static void pq_mv_slice_axis(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t *first,
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
        *len = start > end ? (start - end - step - 1) / -step : 0;
    }
    *first = start;
}

enum pq_status pq_movement_slice_run(const pq_kernel_args *a) {
    if (a->node->op != PQ_OP_SLICE || a->n_in < 3 || a->n_out < 1 || !a->out[0])
        return PQ_ERR_UNSUPPORTED;
    const pq_tensor *x = a->in[0], *st = a->in[1], *en = a->in[2];
    const pq_tensor *ax = a->n_in > 3 ? a->in[3] : NULL, *sp = a->n_in > 4 ? a->in[4] : NULL;
    if (!x || !x->data || !st || !en || !st->data || !en->data) return PQ_ERR_UNSUPPORTED;
    if ((ax && !ax->data) || (sp && !sp->data)) return PQ_ERR_UNSUPPORTED;
    int r = x->rank;
    int64_t n = pq_tensor_numel(st);
    for (int64_t i = 0; i < n; i++) { /* out-of-range axes / zero steps: the reference reports */
        int64_t axis = ax ? pq_dtype_load_i64(ax->dtype, ax->data, (size_t)i) : i;
        if (axis < -r || axis >= r) return PQ_ERR_UNSUPPORTED;
        if (sp && pq_dtype_load_i64(sp->dtype, sp->data, (size_t)i) == 0) return PQ_ERR_UNSUPPORTED;
    }
    PQ_TRY(pq_ref_mv_outputs(a));
    pq_tensor *y = a->out[0];
    if (pq_tensor_numel(y) == 0) return PQ_OK;
    int64_t xs[PQ_MAX_RANK], ss[PQ_MAX_RANK], base = 0;
    pq_shape_strides(r, x->dims, xs);
    memcpy(ss, xs, sizeof(int64_t) * (size_t)r);
    for (int64_t i = 0; i < n; i++) {
        int64_t axis = ax ? pq_dtype_load_i64(ax->dtype, ax->data, (size_t)i) : i;
        if (axis < 0) axis += r;
        int64_t step = sp ? pq_dtype_load_i64(sp->dtype, sp->data, (size_t)i) : 1;
        int64_t first, len;
        pq_mv_slice_axis(x->dims[axis], pq_dtype_load_i64(st->dtype, st->data, (size_t)i),
                         pq_dtype_load_i64(en->dtype, en->data, (size_t)i), step, &first, &len);
        if (len > 0) base += first * xs[axis];
        ss[axis] = xs[axis] * step;
    }
    size_t es = pq_dtype_size(x->dtype);
    const uint8_t *src = (const uint8_t *)x->data + base * (int64_t)es;
    return pq_mv_view_copy(a, y->data, src, r, y->dims, ss, es) ? PQ_OK : PQ_ERR_UNSUPPORTED;
}

/* ---- Transpose ---- */

/* Blocked 2-D transposes: output axis ai (stride 1 in the source) against the innermost output
 * axis; the other merged axes are the outer loop. Tasks: (outer index, block of PQ_MV_TB rows). */
#define PQ_MV_TB 64
typedef struct {
    const pq_movement_kernels *k;
    const uint8_t *src;
    uint8_t *dst;
    size_t es;
    int n, ai;
    int64_t d[PQ_MAX_RANK], s[PQ_MAX_RANK], o[PQ_MAX_RANK]; /* dims, source, dest strides */
    int64_t nbi;                                            /* row blocks per outer index */
} pq_mv_tr_job;

static void pq_mv_tr_block(const pq_mv_tr_job *j, const uint8_t *src, uint8_t *dst, int64_t ni,
                           int64_t nj) {
    int64_t ss = j->s[j->n - 1], ds = j->o[j->ai];
    size_t es = j->es;
    if (es == 4) {
        j->k->transpose32((const uint32_t *)src, ss, (uint32_t *)dst, ds, ni, nj);
        return;
    }
    for (int64_t i = 0; i < ni; i++)
        for (int64_t jj = 0; jj < nj; jj++) {
            const uint8_t *sp = src + (size_t)(jj * ss + i) * es;
            uint8_t *dp = dst + (size_t)(i * ds + jj) * es;
            switch (es) {
            case 1:
                *dp = *sp;
                break;
            case 2:
                memcpy(dp, sp, 2);
                break;
            case 8:
                memcpy(dp, sp, 8);
                break;
            default:
                memcpy(dp, sp, es);
            }
        }
}

static void pq_mv_tr_chunk(void *ctx, int64_t t0, int64_t t1) {
    const pq_mv_tr_job *j = ctx;
    int L = j->n - 1;
    for (int64_t t = t0; t < t1; t++) {
        int64_t outer = t / j->nbi, bi = t % j->nbi, so = 0, dof = 0;
        for (int d = L - 1; d >= 0; d--) {
            if (d == j->ai) continue;
            int64_t i = outer % j->d[d];
            outer /= j->d[d];
            so += i * j->s[d];
            dof += i * j->o[d];
        }
        int64_t i0 = bi * PQ_MV_TB, ni = j->d[j->ai] - i0 < PQ_MV_TB ? j->d[j->ai] - i0 : PQ_MV_TB;
        for (int64_t j0 = 0; j0 < j->d[L]; j0 += PQ_MV_TB) {
            int64_t nj = j->d[L] - j0 < PQ_MV_TB ? j->d[L] - j0 : PQ_MV_TB;
            pq_mv_tr_block(j, j->src + (size_t)(so + i0 + j0 * j->s[L]) * j->es,
                           j->dst + (size_t)(dof + i0 * j->o[j->ai] + j0) * j->es, ni, nj);
        }
    }
}

enum pq_status pq_movement_transpose_run(const pq_movement_kernels *k, const pq_kernel_args *a) {
    if (!k || a->node->op != PQ_OP_TRANSPOSE || a->n_in < 1 || a->n_out < 1 || !a->in[0] ||
        !a->in[0]->data || !a->out[0])
        return PQ_ERR_UNSUPPORTED;
    const pq_tensor *x = a->in[0];
    int r = x->rank;
    const pq_attr *pa = pq_node_attr(a->node, "perm");
    if (pa && (pa->type != PQ_ATTR_INTS || (int)pa->u.ints.n != r)) return PQ_ERR_UNSUPPORTED;
    bool seen[PQ_MAX_RANK] = {false};
    int64_t perm[PQ_MAX_RANK];
    for (int i = 0; i < r; i++) {
        int64_t p = pa ? pa->u.ints.v[i] : r - 1 - i;
        if (p < 0) p += r;
        if (p < 0 || p >= r || seen[p]) return PQ_ERR_UNSUPPORTED; /* the reference reports */
        seen[p] = true;
        perm[i] = p;
    }
    PQ_TRY(pq_ref_mv_outputs(a));
    pq_tensor *y = a->out[0];
    if (pq_tensor_numel(y) == 0) return PQ_OK;
    size_t es = pq_dtype_size(x->dtype);
    int64_t xs[PQ_MAX_RANK];
    pq_shape_strides(r, x->dims, xs);
    pq_mv_tr_job j = {.k = k, .src = x->data, .dst = y->data, .es = es};
    for (int i = 0; i < r; i++) {
        j.d[i] = y->dims[i];
        j.s[i] = xs[perm[i]];
    }
    if (pq_mv_view_copy(a, y->data, x->data, r, j.d, j.s, es)) return PQ_OK;
    j.n = pq_mv_merge(r, j.d, j.s);
    j.ai = -1;
    for (int i = 0; i < j.n; i++)
        if (j.s[i] == 1) j.ai = i;
    if (j.ai < 0 || j.ai == j.n - 1) return PQ_ERR_INTERNAL; /* a permutation keeps stride 1 */
    pq_shape_strides(j.n, j.d, j.o);
    int64_t outer = 1;
    for (int i = 0; i < j.n - 1; i++)
        if (i != j.ai) outer *= j.d[i];
    j.nbi = (j.d[j.ai] + PQ_MV_TB - 1) / PQ_MV_TB;
    int th = pq_mv_threads(a, pq_tensor_numel(y) * (int64_t)es, PQ_MV_COPY_PAR_MIN);
    pq_parallel_for(th, outer * j.nbi, pq_mv_tr_chunk, &j);
    return PQ_OK;
}

/* ---- Resize ---- */

typedef struct {
    const pq_movement_kernels *k;
    const float *x;
    float *y;
    int64_t hin, win, hout, wout, rows, tasks;
    const int64_t *plane_src;    /* source plane of each output plane */
    const pq_ref_resize_tap *ty; /* taps of the rows (axis r - 2) */
    const int64_t *ix0, *ix1;    /* column source indices, -1: none (reads 0.0f) */
    const double *wx0, *wx1;     /* column weights (linear) */
    const uint8_t *xout;         /* column outside the roi (extrapolation), or NULL */
    float extra;                 /* extrapolation_value */
    bool nearest, id_cols;       /* id_cols: ix0[j] == j for every column */
    double *scratch;             /* linear: 4 * wout doubles per task (gathered rows) */
} pq_mv_rs_job;

static void pq_mv_rs_fill(float *y, int64_t n, float v) {
    for (int64_t j = 0; j < n; j++)
        y[j] = v;
}

static void pq_mv_rs_nearest(const pq_mv_rs_job *j, int64_t b, int64_t e) {
    int64_t prev = -1;
    for (int64_t r = b; r < e; r++) {
        int64_t p = r / j->hout, oy = r % j->hout;
        const pq_ref_resize_tap *t = &j->ty[oy];
        float *yr = j->y + r * j->wout;
        if (t->outside) {
            pq_mv_rs_fill(yr, j->wout, j->extra);
            prev = -1;
            continue;
        }
        int64_t key = j->plane_src[p] * j->hin + t->idx[0];
        if (key == prev) {
            memcpy(yr, yr - j->wout, sizeof(float) * (size_t)j->wout);
            continue;
        }
        prev = key;
        const uint32_t *xr = (const uint32_t *)(j->x + key * j->win);
        if (j->id_cols) {
            memcpy(yr, xr, sizeof(float) * (size_t)j->wout);
            continue;
        }
        uint32_t *yu = (uint32_t *)yr, ev;
        memcpy(&ev, &j->extra, 4);
        for (int64_t c = 0; c < j->wout; c++)
            yu[c] = j->ix0[c] >= 0 ? xr[j->ix0[c]] : ev;
    }
}

/* The two gathered rows (first and second column tap) of source row key in one of two slots. */
static int pq_mv_rs_slot(const pq_mv_rs_job *j, int64_t *keys, double *slots[2][2], int64_t key,
                         int64_t keep) {
    if (keys[0] == key) return 0;
    if (keys[1] == key) return 1;
    int s = keys[0] == keep ? 1 : 0;
    keys[s] = key;
    const float *xr = j->x + key * j->win;
    double *g0 = slots[s][0], *g1 = slots[s][1];
    for (int64_t c = 0; c < j->wout; c++) {
        int64_t i0 = j->ix0[c], i1 = j->ix1[c];
        g0[c] = i0 >= 0 ? (double)xr[i0] : 0.0;
        g1[c] = i1 >= 0 ? (double)xr[i1] : 0.0;
    }
    return s;
}

static void pq_mv_rs_linear(const pq_mv_rs_job *j, int64_t task, int64_t b, int64_t e) {
    double *sc = j->scratch + task * 4 * j->wout;
    double *slots[2][2] = {{sc, sc + j->wout}, {sc + 2 * j->wout, sc + 3 * j->wout}};
    int64_t keys[2] = {-1, -1};
    for (int64_t r = b; r < e; r++) {
        int64_t p = r / j->hout, oy = r % j->hout;
        const pq_ref_resize_tap *t = &j->ty[oy];
        float *yr = j->y + r * j->wout;
        if (t->outside) {
            pq_mv_rs_fill(yr, j->wout, j->extra);
            continue;
        }
        int64_t k0 = j->plane_src[p] * j->hin + t->idx[0];
        int s0 = pq_mv_rs_slot(j, keys, slots, k0, -1);
        if (t->n > 1) {
            int s1 = pq_mv_rs_slot(j, keys, slots, j->plane_src[p] * j->hin + t->idx[1], k0);
            j->k->linear_row(slots[s0][0], slots[s0][1], slots[s1][0], slots[s1][1], t->w[0],
                             t->w[1], j->wx0, j->wx1, yr, j->wout);
        } else {
            j->k->linear_row(slots[s0][0], slots[s0][1], NULL, NULL, t->w[0], 0.0, j->wx0, j->wx1,
                             yr, j->wout);
        }
        if (j->xout)
            for (int64_t c = 0; c < j->wout; c++)
                if (j->xout[c]) yr[c] = j->extra;
    }
}

static void pq_mv_rs_chunk(void *ctx, int64_t t0, int64_t t1) {
    const pq_mv_rs_job *j = ctx;
    for (int64_t t = t0; t < t1; t++) {
        int64_t b, e;
        pq_parallel_range(j->rows, j->tasks, t, &b, &e);
        if (j->nearest)
            pq_mv_rs_nearest(j, b, e);
        else
            pq_mv_rs_linear(j, t, b, e);
    }
}

enum pq_status pq_movement_resize_run(const pq_movement_kernels *k, const pq_kernel_args *a) {
    if (!k || a->node->op != PQ_OP_RESIZE || a->n_in < 1 || a->n_out < 1 || !a->out[0])
        return PQ_ERR_UNSUPPORTED;
    const pq_tensor *x = a->in[0];
    if (!x || x->dtype != PQ_DTYPE_F32 || !x->data || x->rank < 2) return PQ_ERR_UNSUPPORTED;
    const char *mode = pq_node_attr_string(a->node, "mode", "nearest");
    bool nearest = !strcmp(mode, "nearest");
    if (!nearest && strcmp(mode, "linear") != 0) return PQ_ERR_UNSUPPORTED;
    if (pq_node_attr_int(a->node, "antialias", 0) != 0) return PQ_ERR_UNSUPPORTED;
    for (uint32_t i = 1; i < a->n_in && i < 4; i++)
        if (a->in[i] && !a->in[i]->data && pq_tensor_numel(a->in[i]) > 0) return PQ_ERR_UNSUPPORTED;
    PQ_TRY(pq_ref_mv_outputs(a));
    pq_tensor *y = a->out[0];
    if (y->dtype != PQ_DTYPE_F32) return PQ_ERR_UNSUPPORTED;
    int r = x->rank;
    pq_ref_resize_tap *block, *ax[PQ_MAX_RANK];
    PQ_TRY(pq_ref_resize_taps(a->node, r, x->dims, y->dims, a->n_in > 1 ? a->in[1] : NULL,
                              a->n_in > 2 ? a->in[2] : NULL, a->n_in > 3 ? a->in[3] : NULL, &block,
                              ax, a->err));
    if (!block) return PQ_OK;
    enum pq_status st = PQ_ERR_UNSUPPORTED;
    int64_t planes = 1, hout = y->dims[r - 2], wout = y->dims[r - 1];
    /* leading axes: one source index of weight 1 per output index */
    for (int i = 0; i < r - 2; i++) {
        planes *= y->dims[i];
        for (int64_t o = 0; o < y->dims[i]; o++)
            if (ax[i][o].n != 1 || ax[i][o].outside || ax[i][o].w[0] != 1.0) goto done;
    }
    for (int64_t o = 0; o < hout; o++)
        if (!ax[r - 2][o].outside && ax[r - 2][o].n < 1) goto done;
    for (int64_t o = 0; o < wout; o++)
        if (!ax[r - 1][o].outside && ax[r - 1][o].n < 1) goto done;
    pq_mv_rs_job j = {.k = k,
                      .x = x->data,
                      .y = y->data,
                      .hin = x->dims[r - 2],
                      .win = x->dims[r - 1],
                      .hout = hout,
                      .wout = wout,
                      .rows = planes * hout,
                      .ty = ax[r - 2],
                      .nearest = nearest,
                      .id_cols = nearest};
    j.extra = pq_node_attr_float(a->node, "extrapolation_value", 0.0f);
    /* one block: plane sources, column indices and weights, outside flags, scratch */
    int th = pq_mv_threads(a, j.rows * wout, PQ_MV_RESIZE_PAR_MIN);
    j.tasks = pq_parallel_chunks(th, j.rows);
    size_t n_scr = nearest ? 0 : (size_t)(4 * wout * j.tasks);
    size_t bytes = sizeof(int64_t) * (size_t)(planes + 2 * wout) +
                   sizeof(double) * 2 * (size_t)wout + sizeof(double) * n_scr + (size_t)wout;
    uint8_t *mem = pq_malloc(bytes);
    if (!mem) {
        st = pq_error_nomem(a->err, "Resize");
        goto done;
    }
    int64_t *plane_src = (int64_t *)mem, *ix0 = plane_src + planes, *ix1 = ix0 + wout;
    double *wx0 = (double *)(ix1 + wout), *wx1 = wx0 + wout;
    double *scr = wx1 + wout;
    uint8_t *xout = (uint8_t *)(scr + n_scr);
    int64_t cnt[PQ_MAX_RANK] = {0};
    for (int64_t p = 0; p < planes; p++) {
        int64_t src = 0;
        for (int i = 0; i < r - 2; i++)
            src = src * x->dims[i] + ax[i][cnt[i]].idx[0];
        plane_src[p] = src;
        for (int i = r - 3; i >= 0; i--) {
            if (++cnt[i] < y->dims[i]) break;
            cnt[i] = 0;
        }
    }
    bool any_out = false;
    for (int64_t c = 0; c < wout; c++) {
        const pq_ref_resize_tap *t = &ax[r - 1][c];
        xout[c] = t->outside;
        any_out = any_out || t->outside;
        ix0[c] = t->outside ? -1 : t->idx[0];
        wx0[c] = t->outside ? 0.0 : t->w[0];
        ix1[c] = !t->outside && t->n > 1 ? t->idx[1] : -1;
        wx1[c] = !t->outside && t->n > 1 ? t->w[1] : 0.0;
        j.id_cols = j.id_cols && ix0[c] == c && wout == j.win;
    }
    j.plane_src = plane_src;
    j.ix0 = ix0;
    j.ix1 = ix1;
    j.wx0 = wx0;
    j.wx1 = wx1;
    j.xout = any_out && !nearest ? xout : NULL;
    j.scratch = scr;
    pq_parallel_for(th, j.tasks, pq_mv_rs_chunk, &j);
    pq_free(mem);
    st = PQ_OK;
done:
    pq_free(block);
    return st;
}

/* ---- fast-table entries ---- */

enum pq_status pq_fast_movement_resize(const pq_kernel_args *a) {
    return pq_movement_resize_run(pq_movement_kernels_get(), a);
}
enum pq_status pq_fast_movement_transpose(const pq_kernel_args *a) {
    return pq_movement_transpose_run(pq_movement_kernels_get(), a);
}
enum pq_status pq_fast_movement_concat(const pq_kernel_args *a) {
    return pq_movement_concat_run(a);
}
enum pq_status pq_fast_movement_split(const pq_kernel_args *a) {
    return pq_movement_split_run(a);
}
enum pq_status pq_fast_movement_slice(const pq_kernel_args *a) {
    return pq_movement_slice_run(a);
}
