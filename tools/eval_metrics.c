/* Implementation of the `piqc eval` metrics: label checks, top-1 hits, cross-entropy from logits,
 * probabilities or log-probabilities, and row cosine / max abs difference against a reference. */
#include "eval_metrics.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Element i of t as a double (f32 read directly: the common case, and the hot loop). */
static inline double pq_eval_at(const pq_tensor *t, size_t i) {
    return t->dtype == PQ_DTYPE_F32 ? (double)((const float *)t->data)[i]
                                    : pq_dtype_load(t->dtype, t->data, i);
}

enum pq_status pq_eval_logp_kind(const pq_graph *g, int rank, enum pq_eval_logp *out,
                                 pq_error *err) {
    *out = PQ_EVAL_LOGITS;
    if (!g->n_outputs) return PQ_OK;
    uint32_t v = g->outputs[0];
    for (uint32_t hops = 0; hops <= g->n_nodes && v != PQ_NONE; hops++) {
        uint32_t p = g->values[v].producer;
        if (p == PQ_NONE) return PQ_OK;
        const pq_node *n = &g->nodes[p];
        if (n->op == PQ_OP_IDENTITY) {
            v = pq_node_input(n, 0);
            continue;
        }
        if (n->op != PQ_OP_SOFTMAX && n->op != PQ_OP_LOG_SOFTMAX) return PQ_OK;
        bool coerce = pq_node_attr_int(n, "coerce_2d", 0) != 0;
        int64_t axis = pq_node_attr_int(n, "axis", coerce ? 1 : -1);
        if (axis < 0) axis += rank;
        if (axis != rank - 1)
            return pq_error_set(
                err, PQ_ERR_UNSUPPORTED,
                "output 0 comes from %s node '%s' over axis %lld, not the last axis "
                "(%d): perplexity needs a distribution over the last axis",
                pq_op_name(n->op), n->name ? n->name : "?", (long long)axis, rank - 1);
        *out = n->op == PQ_OP_SOFTMAX ? PQ_EVAL_SOFTMAX : PQ_EVAL_LOG_SOFTMAX;
        return PQ_OK;
    }
    return PQ_OK;
}

const char *pq_eval_logp_name(enum pq_eval_logp k) {
    return k == PQ_EVAL_SOFTMAX ? "softmax" : k == PQ_EVAL_LOG_SOFTMAX ? "log_softmax" : "logits";
}

enum pq_status pq_eval_check_labels(const pq_tensor *out, const pq_tensor *labels, int64_t first,
                                    pq_error *err) {
    char os[160], ls[160];
    pq_shape_format(out->rank, out->dims, os, sizeof os);
    pq_shape_format(labels->rank, labels->dims, ls, sizeof ls);
    if (!pq_dtype_is_float(out->dtype) || out->rank < 1)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "output 0 is %s%s; scores need a float tensor [samples, ..., classes]",
                            pq_dtype_name(out->dtype), os);
    if (labels->dtype != PQ_DTYPE_I64)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "labels are %s; this metric needs integer class ids (int64)",
                            pq_dtype_name(labels->dtype));
    bool ok = labels->rank == out->rank - 1;
    for (int k = 0; ok && k < labels->rank; k++)
        ok = labels->dims[k] == out->dims[k];
    if (!ok)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "labels of a batch are %s, but output 0 is %s: labels must have output "
                            "0's shape without its last (class) axis",
                            ls, os);
    int64_t c = out->dims[out->rank - 1];
    if (c < 1)
        return pq_error_set(err, PQ_ERR_INVALID, "output 0 is %s: no classes on its last axis", os);
    int64_t n = pq_tensor_numel(labels);
    int64_t per = labels->rank > 0 && labels->dims[0] > 0 ? n / labels->dims[0] : 1;
    const int64_t *l = labels->data;
    for (int64_t r = 0; r < n; r++) {
        if (l[r] >= 0 && l[r] < c) continue;
        if (per > 1)
            return pq_error_set(
                err, PQ_ERR_INVALID,
                "labels.npy: sample %lld, position %lld: label %lld outside [0, %lld)",
                (long long)(first + r / per), (long long)(r % per), (long long)l[r], (long long)c);
        return pq_error_set(err, PQ_ERR_INVALID,
                            "labels.npy: sample %lld: label %lld outside [0, %lld)",
                            (long long)(first + r), (long long)l[r], (long long)c);
    }
    return PQ_OK;
}

void pq_eval_accuracy_add(pq_eval_stats *s, const pq_tensor *out, const pq_tensor *labels) {
    int64_t c = out->dims[out->rank - 1], n = pq_tensor_numel(labels);
    const int64_t *l = labels->data;
    for (int64_t r = 0; r < n; r++) {
        int64_t best = 0;
        double bv = -INFINITY;
        for (int64_t j = 0; j < c; j++) {
            double v = pq_eval_at(out, (size_t)(r * c + j));
            if (v > bv) {
                bv = v;
                best = j;
            }
        }
        s->hits += best == l[r];
    }
    s->positions += n;
}

void pq_eval_ce_add(pq_eval_stats *s, const pq_tensor *out, const pq_tensor *labels,
                    enum pq_eval_logp kind) {
    int64_t c = out->dims[out->rank - 1], n = pq_tensor_numel(labels);
    const int64_t *l = labels->data;
    for (int64_t r = 0; r < n; r++) {
        size_t row = (size_t)(r * c);
        double target = pq_eval_at(out, row + (size_t)l[r]);
        double ce;
        if (kind == PQ_EVAL_SOFTMAX) {
            ce = -log(fmax(target, PQ_EVAL_PROB_MIN));
        } else if (kind == PQ_EVAL_LOG_SOFTMAX) {
            ce = -target;
        } else {
            double m = -INFINITY;
            for (int64_t j = 0; j < c; j++)
                m = fmax(m, pq_eval_at(out, row + (size_t)j));
            double sum = 0;
            for (int64_t j = 0; j < c; j++)
                sum += exp(pq_eval_at(out, row + (size_t)j) - m);
            ce = m + log(sum) - target;
        }
        s->ce_sum += ce;
    }
    s->positions += n;
}

enum pq_status pq_eval_compare_add(pq_eval_stats *s, pq_tensor *const *outs, pq_tensor *const *refs,
                                   uint32_t n_outputs, const char *const *names, pq_error *err) {
    for (uint32_t o = 0; o < n_outputs; o++) {
        const pq_tensor *a = outs[o], *b = refs[o];
        bool same = a->rank == b->rank;
        for (int k = 0; same && k < a->rank; k++)
            same = a->dims[k] == b->dims[k];
        if (!same) {
            char as[160], bs[160];
            pq_shape_format(a->rank, a->dims, as, sizeof as);
            pq_shape_format(b->rank, b->dims, bs, sizeof bs);
            return pq_error_set(err, PQ_ERR_INVALID,
                                "output %u '%s': shape %s, but the reference's is %s", o, names[o],
                                as, bs);
        }
    }
    if (n_outputs == 0) return PQ_OK;
    const pq_tensor *a = outs[0], *b = refs[0];
    int64_t c = a->rank ? a->dims[a->rank - 1] : 1;
    if (c < 1 || pq_tensor_numel(a) < 1) {
        char as[160];
        pq_shape_format(a->rank, a->dims, as, sizeof as);
        return pq_error_set(err, PQ_ERR_INVALID, "output 0 '%s' is %s: no rows to compare",
                            names[0], as);
    }
    int64_t rows = pq_tensor_numel(a) / c;
    for (int64_t r = 0; r < rows; r++) {
        double dot = 0, aa = 0, bb = 0;
        for (int64_t j = 0; j < c; j++) {
            double x = pq_eval_at(a, (size_t)(r * c + j));
            double y = pq_eval_at(b, (size_t)(r * c + j));
            dot += x * y;
            aa += x * x;
            bb += y * y;
        }
        double den = sqrt(aa * bb); /* sqrt(aa * aa) == aa exactly: a row against itself is 1 */
        if (!isfinite(den)) den = sqrt(aa) * sqrt(bb);
        double cs = aa == 0 && bb == 0 ? 1.0 : aa == 0 || bb == 0 ? 0.0 : dot / den;
        if (cs > 1) cs = 1;
        if (cs < -1) cs = -1;
        s->cos_sum += cs;
        if (s->rows == 0 || cs < s->cos_min || isnan(cs)) s->cos_min = cs;
        s->rows++;
    }
    for (uint32_t o = 0; o < n_outputs; o++) {
        const pq_tensor *x = outs[o], *y = refs[o];
        int64_t n = pq_tensor_numel(x);
        for (int64_t e = 0; e < n; e++) {
            double u = pq_eval_at(x, (size_t)e);
            double v = pq_eval_at(y, (size_t)e);
            double d = u == v                 ? 0.0
                       : isnan(u) && isnan(v) ? 0.0
                       : isnan(u) || isnan(v) ? INFINITY
                                              : fabs(u - v);
            if (d > s->max_abs) s->max_abs = d;
        }
    }
    return PQ_OK;
}
