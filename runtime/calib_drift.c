/* Output drift of a graph against a reference over calibration samples: collecting flattened
 * outputs chunk by chunk, and cosine / max-abs / KL between two such sets (SPEC 5). */
#include "calib_drift.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static bool pq_drift_float(enum pq_dtype d) {
    return d == PQ_DTYPE_F32 || d == PQ_DTYPE_F64 || d == PQ_DTYPE_F16 || d == PQ_DTYPE_BF16;
}

enum pq_drift_kind pq_drift_output_kind(const pq_graph *g, uint32_t i) {
    if (i >= g->n_outputs) return PQ_DRIFT_PLAIN;
    const pq_value *v = &g->values[g->outputs[i]];
    if (!pq_drift_float(v->dtype) || v->shape.rank < 2) return PQ_DRIFT_PLAIN;
    pq_dim last = v->shape.dims[v->shape.rank - 1];
    if (pq_dim_known(last) && last.size < 2) return PQ_DRIFT_PLAIN;
    if (v->producer == PQ_NONE) return PQ_DRIFT_LOGITS;
    const pq_node *nd = &g->nodes[v->producer];
    if (nd->op != PQ_OP_SOFTMAX && nd->op != PQ_OP_LOG_SOFTMAX) return PQ_DRIFT_LOGITS;
    int64_t opset = pq_graph_opset(g, "");
    int64_t axis = pq_node_attr_int(nd, "axis", opset && opset < 13 ? 1 : -1);
    int rank = v->shape.rank;
    if (axis < 0) axis += rank;
    /* before opset 13 the op flattens to 2-D at axis: the last axis only when rank is 2 */
    bool last_axis = axis == rank - 1 && (opset == 0 || opset >= 13 || rank == 2);
    if (!last_axis) return PQ_DRIFT_PLAIN; /* a distribution over another axis */
    return nd->op == PQ_OP_SOFTMAX ? PQ_DRIFT_PROBS : PQ_DRIFT_LOGPROBS;
}

/* The fixed batch size of g's inputs (0 when axis 0 is dynamic everywhere). */
static int64_t pq_drift_fixed_batch(const pq_graph *g) {
    for (uint32_t i = 0; i < g->n_inputs; i++) {
        const pq_value *v = &g->values[g->inputs[i]];
        if (v->shape.rank > 0 && pq_dim_known(v->shape.dims[0])) return v->shape.dims[0].size;
    }
    return 0;
}

enum pq_status pq_drift_samples(const pq_graph *g, const pq_calib_set *cs, int64_t max_samples,
                                int64_t *out, pq_error *err) {
    int64_t n = max_samples > 0 && max_samples < cs->samples ? max_samples : cs->samples;
    int64_t b = pq_drift_fixed_batch(g);
    if (b > 0) {
        if (b > cs->samples)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "calibration data: the model has a fixed batch of %lld but only "
                                "%lld samples are available",
                                (long long)b, (long long)cs->samples);
        n = n / b * b;
        if (n < b) n = b;
    }
    if (n < 1) return pq_error_set(err, PQ_ERR_INVALID, "calibration data: no samples");
    *out = n;
    return PQ_OK;
}

/* A growable f32 buffer of one flattened output. */
typedef struct pq_drift_buf {
    float *v;
    int64_t n, cap;
    int64_t last; /* last dim (rank >= 2), -1 before the first chunk */
    bool used;    /* a float output */
    bool rank2;   /* graph output of rank >= 2 */
} pq_drift_buf;

static enum pq_status pq_drift_append(pq_drift_buf *b, const pq_tensor *t, const char *name,
                                      pq_error *err) {
    if (!pq_drift_float(t->dtype)) return PQ_OK;
    b->used = true;
    b->rank2 = t->rank >= 2;
    if (b->rank2) {
        int64_t last = t->dims[t->rank - 1];
        if (b->last >= 0 && last != b->last)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "drift: output '%s' has last dim %lld in one chunk and %lld in "
                                "another",
                                name, (long long)b->last, (long long)last);
        b->last = last;
    }
    int64_t k = pq_tensor_numel(t);
    if (b->n + k > b->cap) {
        int64_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + k)
            cap *= 2;
        float *nv = pq_realloc(b->v, sizeof(float) * (size_t)cap);
        if (!nv) return pq_error_nomem(err, "drift outputs");
        b->v = nv;
        b->cap = cap;
    }
    float *dst = b->v + b->n;
    for (int64_t i = 0; i < k; i++) {
        switch (t->dtype) {
        case PQ_DTYPE_F32:
            dst[i] = ((const float *)t->data)[i];
            break;
        case PQ_DTYPE_F64:
            dst[i] = (float)((const double *)t->data)[i];
            break;
        case PQ_DTYPE_F16:
            dst[i] = pq_f16_to_f32(((const uint16_t *)t->data)[i]);
            break;
        default:
            dst[i] = pq_bf16_to_f32(((const uint16_t *)t->data)[i]);
            break;
        }
    }
    b->n += k;
    return PQ_OK;
}

void pq_drift_outputs_free(pq_tensor **t, uint32_t n) {
    if (!t) return;
    for (uint32_t i = 0; i < n; i++)
        pq_tensor_destroy(t[i]);
    pq_free(t);
}

/* Whether element i of a float tensor is finite (true for non-float dtypes). */
static bool pq_calib_elem_finite(const pq_tensor *t, int64_t i, double *v) {
    switch (t->dtype) {
    case PQ_DTYPE_F32:
        *v = ((const float *)t->data)[i];
        return isfinite(*v);
    case PQ_DTYPE_F64:
        *v = ((const double *)t->data)[i];
        return isfinite(*v);
    case PQ_DTYPE_F16: {
        uint16_t b = ((const uint16_t *)t->data)[i];
        *v = (b & 0x3ff) ? NAN : ((b & 0x8000) ? -INFINITY : INFINITY);
        return (b & 0x7c00) != 0x7c00;
    }
    case PQ_DTYPE_BF16: {
        uint16_t b = ((const uint16_t *)t->data)[i];
        *v = (b & 0x7f) ? NAN : ((b & 0x8000) ? -INFINITY : INFINITY);
        return (b & 0x7f80) != 0x7f80;
    }
    default:
        return true;
    }
}

enum pq_status pq_calib_set_check_finite(const pq_graph *g, const pq_calib_set *cs, pq_error *err) {
    for (uint32_t k = 0; k < cs->n; k++) {
        const pq_tensor *t = cs->inputs ? cs->inputs[k] : NULL;
        if (!t || !t->data) continue;
        if (t->dtype != PQ_DTYPE_F32 && t->dtype != PQ_DTYPE_F64 && t->dtype != PQ_DTYPE_F16 &&
            t->dtype != PQ_DTYPE_BF16)
            continue;
        int64_t n = pq_tensor_numel(t);
        for (int64_t i = 0; i < n; i++) {
            double v = 0;
            if (pq_calib_elem_finite(t, i, &v)) continue;
            char idx[160];
            size_t used = 0;
            int64_t rest = i, stride = n;
            idx[0] = '\0';
            for (int d = 0; d < t->rank && used + 24 < sizeof idx; d++) {
                stride = t->dims[d] ? stride / t->dims[d] : 1;
                int64_t c = stride ? rest / stride : 0;
                rest -= c * stride;
                used += (size_t)snprintf(idx + used, sizeof idx - used, "%s%lld", d ? ", " : "",
                                         (long long)c);
            }
            int64_t per = t->rank && t->dims[0] ? n / t->dims[0] : n;
            const char *name = k < g->n_inputs ? g->values[g->inputs[k]].name : "?";
            return pq_error_set(err, PQ_ERR_INVALID,
                                "calibration input '%s': non-finite value %s at [%s] (sample "
                                "%lld); NaN and Inf are not accepted",
                                name,
                                isnan(v) ? "nan"
                                : v > 0  ? "inf"
                                         : "-inf",
                                idx, (long long)(per ? i / per : 0));
        }
    }
    return PQ_OK;
}

/* Appends every output of a chunk to its buffer (pq_drift_outputs' collector). */
typedef struct pq_drift_run_ctx {
    const pq_graph *g;
    pq_drift_buf *bufs;
} pq_drift_run_ctx;

static enum pq_status pq_drift_collect(void *vctx, pq_tensor *const *outs, uint32_t n,
                                       pq_error *err) {
    pq_drift_run_ctx *c = vctx;
    for (uint32_t o = 0; o < n; o++)
        PQ_TRY(pq_drift_append(&c->bufs[o], outs[o], c->g->values[c->g->outputs[o]].name, err));
    return PQ_OK;
}

enum pq_status pq_drift_outputs(pq_graph *g, const pq_calib_set *cs, int64_t max_samples,
                                pq_tensor ***out, uint32_t *n_out, int64_t *samples,
                                pq_error *err) {
    *out = NULL;
    *n_out = 0;
    *samples = 0;
    if (cs->n != g->n_inputs)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "calibration data: %u tensors for a graph with %u inputs", cs->n,
                            g->n_inputs);
    PQ_TRY(pq_calib_set_check_finite(g, cs, err));
    int64_t n = 0;
    PQ_TRY(pq_drift_samples(g, cs, max_samples, &n, err));
    int64_t chunk = pq_drift_fixed_batch(g);
    if (chunk <= 0) chunk = n < 32 ? n : 32;
    uint32_t no = g->n_outputs;
    enum pq_status st = PQ_OK;
    pq_drift_buf *bufs = pq_calloc(no + 1, sizeof *bufs);
    pq_tensor **res = pq_calloc(no + 1, sizeof *res);
    if (!bufs || !res) {
        st = pq_error_nomem(err, "drift run");
        goto cleanup;
    }
    for (uint32_t o = 0; o < no; o++)
        bufs[o].last = -1;
    pq_drift_run_ctx rc = {g, bufs};
    st = pq_calib_run_chunks(g, cs, n, chunk, NULL, NULL, pq_drift_collect, &rc, NULL, err);
    if (st != PQ_OK) goto cleanup;
    for (uint32_t o = 0; o < no; o++) {
        if (!bufs[o].used) continue;
        int64_t dims[2] = {bufs[o].n, 0};
        int rank = 1;
        if (bufs[o].rank2) {
            rank = 2;
            dims[1] = bufs[o].last;
            dims[0] = bufs[o].last ? bufs[o].n / bufs[o].last : 0;
        }
        res[o] = pq_tensor_create(PQ_DTYPE_F32, rank, dims, err);
        if (!res[o]) {
            st = err ? err->status : PQ_ERR_NOMEM;
            goto cleanup;
        }
        if (bufs[o].n) memcpy(res[o]->data, bufs[o].v, sizeof(float) * (size_t)bufs[o].n);
    }
    *out = res;
    *n_out = no;
    *samples = n;
    res = NULL;
cleanup:
    if (bufs)
        for (uint32_t o = 0; o < no; o++)
            pq_free(bufs[o].v);
    pq_free(bufs);
    pq_drift_outputs_free(res, no);
    return st;
}

/* log p over one position of length L for the given kind (double, in lp[0..L)). */
static void pq_drift_logp(enum pq_drift_kind kind, const float *x, int64_t L, double *lp) {
    if (kind == PQ_DRIFT_PROBS) {
        for (int64_t j = 0; j < L; j++)
            lp[j] = log(x[j] > 1e-12f ? (double)x[j] : 1e-12);
        return;
    }
    if (kind == PQ_DRIFT_LOGPROBS) {
        for (int64_t j = 0; j < L; j++)
            lp[j] = x[j];
        return;
    }
    double mx = -INFINITY;
    for (int64_t j = 0; j < L; j++)
        if (x[j] > mx) mx = x[j];
    double s = 0;
    for (int64_t j = 0; j < L; j++)
        s += exp((double)x[j] - mx);
    double lse = mx + log(s);
    for (int64_t j = 0; j < L; j++)
        lp[j] = (double)x[j] - lse;
}

enum pq_status pq_drift_compare(const pq_graph *ref_graph, pq_tensor *const *ref,
                                pq_tensor *const *y, uint32_t n, pq_drift *out, pq_error *err) {
    memset(out, 0, sizeof *out);
    if (n != ref_graph->n_outputs)
        return pq_error_set(err, PQ_ERR_INVALID, "drift: %u outputs against a reference with %u", n,
                            ref_graph->n_outputs);
    double dot = 0, nr = 0, ny = 0, mx = 0, kl = 0;
    int64_t positions = 0;
    bool bad = false;
    double *lp = NULL, *lq = NULL;
    int64_t cap = 0;
    enum pq_status st = PQ_OK;
    for (uint32_t o = 0; o < n; o++) {
        const char *name = ref_graph->values[ref_graph->outputs[o]].name;
        const pq_tensor *r = ref[o], *t = y[o];
        if (!r && !t) continue;
        if (!r || !t || r->dtype != PQ_DTYPE_F32 || t->dtype != PQ_DTYPE_F32 ||
            r->rank != t->rank || pq_tensor_numel(r) != pq_tensor_numel(t) ||
            (r->rank == 2 && r->dims[1] != t->dims[1])) {
            st = pq_error_set(err, PQ_ERR_INVALID,
                              "drift: output '%s' does not have the reference's type and "
                              "element count",
                              name);
            goto cleanup;
        }
        const float *a = r->data, *b = t->data;
        int64_t k = pq_tensor_numel(r);
        for (int64_t i = 0; i < k; i++) {
            double u = a[i], v = b[i];
            if (!isfinite(v) || !isfinite(u)) {
                if (!isfinite(v) && isfinite(u)) bad = true;
                continue;
            }
            dot += u * v;
            nr += u * u;
            ny += v * v;
            if (fabs(u - v) > mx) mx = fabs(u - v);
        }
        enum pq_drift_kind kind = pq_drift_output_kind(ref_graph, o);
        if (kind == PQ_DRIFT_PLAIN || r->rank != 2 || r->dims[1] < 2) continue;
        int64_t L = r->dims[1], P = r->dims[0];
        if (L > cap) {
            pq_free(lp);
            pq_free(lq);
            lp = pq_malloc(sizeof(double) * (size_t)L);
            lq = pq_malloc(sizeof(double) * (size_t)L);
            cap = L;
            if (!lp || !lq) {
                st = pq_error_nomem(err, "drift KL");
                goto cleanup;
            }
        }
        for (int64_t p = 0; p < P; p++) {
            pq_drift_logp(kind, a + p * L, L, lp);
            pq_drift_logp(kind, b + p * L, L, lq);
            double s = 0;
            for (int64_t j = 0; j < L; j++) {
                double pj = exp(lp[j]);
                if (pj > 0) s += pj * (lp[j] - lq[j]);
            }
            kl += s;
            positions++;
        }
    }
    if (bad) {
        out->cosine = 0;
        out->max_abs = INFINITY;
    } else {
        out->max_abs = mx;
        if (nr == 0 && ny == 0)
            out->cosine = 1;
        else if (nr == 0 || ny == 0)
            out->cosine = 0;
        else /* one square root: sqrt(nr * nr) is nr exactly, so identical outputs give exactly 1
                (sqrt(nr) * sqrt(ny) can miss it by an ulp: a self-comparison read 1 - 2^-53 on
                oneDNN's AVX2 kernels); rounding can still leave |cosine| a hair above 1 */
            out->cosine = fmax(-1.0, fmin(1.0, dot / sqrt(nr * ny)));
    }
    out->has_kl = positions > 0;
    out->kl = positions ? kl / (double)positions : 0;
cleanup:
    pq_free(lp);
    pq_free(lq);
    return st;
}

enum pq_status pq_calib_drift(const pq_graph *g, pq_graph *reference, const pq_calib_set *cs,
                              int64_t max_samples, pq_tensor ***ref_outputs, uint32_t *n_ref,
                              int64_t *ref_samples, pq_drift *out, pq_error *err) {
    enum pq_status st = PQ_OK;
    pq_graph *c = NULL;
    pq_tensor **ys = NULL;
    uint32_t ny = 0;
    int64_t want = 0, used = 0;
    PQ_TRY(pq_drift_samples(reference, cs, max_samples, &want, err));
    if (!*ref_outputs || *ref_samples != want) {
        pq_drift_outputs_free(*ref_outputs, *n_ref);
        *ref_outputs = NULL;
        *n_ref = 0;
        *ref_samples = 0;
        PQ_TRY_GOTO(
            st, pq_drift_outputs(reference, cs, max_samples, ref_outputs, n_ref, ref_samples, err),
            cleanup);
        for (uint32_t o = 0; o < *n_ref; o++) {
            const pq_tensor *r = (*ref_outputs)[o];
            if (!r) continue;
            int64_t k = pq_tensor_numel(r);
            for (int64_t i = 0; i < k; i++) {
                float v = ((const float *)r->data)[i];
                if (isfinite(v)) continue;
                st = pq_error_set(err, PQ_ERR_INVALID,
                                  "drift: the reference model's output '%s' is %s at element "
                                  "%lld over the (finite) calibration data; drift against it "
                                  "means nothing",
                                  reference->values[reference->outputs[o]].name,
                                  isnan(v) ? "nan" : "infinite", (long long)i);
                pq_drift_outputs_free(*ref_outputs, *n_ref);
                *ref_outputs = NULL;
                *n_ref = 0;
                *ref_samples = 0;
                goto cleanup;
            }
        }
    }
    PQ_TRY_GOTO(st, pq_graph_clone(g, &c, err), cleanup);
    PQ_TRY_GOTO(st, pq_runtime_prepare(c, err), cleanup);
    PQ_TRY_GOTO(st, pq_drift_outputs(c, cs, max_samples, &ys, &ny, &used, err), cleanup);
    if (used != *ref_samples) {
        st = pq_error_set(err, PQ_ERR_INVALID,
                          "drift: the graph ran %lld samples, the reference %lld (their batch "
                          "dims differ)",
                          (long long)used, (long long)*ref_samples);
        goto cleanup;
    }
    st = pq_drift_compare(reference, *ref_outputs, ys, ny, out, err);
cleanup:
    pq_drift_outputs_free(ys, ny);
    pq_graph_destroy(c);
    return st;
}
