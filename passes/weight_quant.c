/* Quantizing all weights of a graph with metrics (the tests' oracle for the fake-quant pass): reads
 * each weight view, packs it with the calibrated scales (or INT8 per channel), measures error
 * against the f32 weight per tensor and over the concatenation of all tensors. */
#include "weight_quant.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

bool pq_qchoice_parse(const char *name, pq_qchoice *out) {
    memset(out, 0, sizeof *out);
    if (!strcmp(name, "int8")) {
        out->is_int8 = true;
        out->name = "int8";
        return true;
    }
    if (!pq_qformat_from_name(name, &out->qf)) return false;
    out->name = pq_qformat_name(out->qf);
    return true;
}

double pq_qchoice_nominal_bpw(const pq_qchoice *c, int64_t group) {
    return c->is_int8 ? 8.0 : pq_bpw_nominal(c->qf, group);
}

/* Quantizes m (rows x cols) to choice c; adds metrics to acc_t (tensor) and acc_a (aggregate).
 * For packed formats *packed receives the packed bytes (owned) when keep is true. */
static enum pq_status pq_quantize_one(const char *name, const float *m, int64_t rows, int64_t cols,
                                      const pq_qchoice *c, enum pq_calib calib, int64_t group,
                                      const float *importance, pq_metrics_acc *acc_t,
                                      pq_metrics_acc *acc_a, bool keep, uint8_t **packed,
                                      size_t *packed_size, pq_error *err) {
    enum pq_status st = PQ_OK;
    if (c->is_int8) {
        int8_t *q = pq_malloc((size_t)(rows * cols));
        float *s = pq_malloc(sizeof(float) * (size_t)rows);
        float *wh = pq_malloc(sizeof(float) * (size_t)(rows * cols));
        if (!q || !s || !wh) st = pq_error_nomem(err, "int8 quantization");
        if (st == PQ_OK) st = pq_int8_quantize_weights(name, m, rows, cols, q, s, err);
        if (st == PQ_OK) {
            for (int64_t r = 0; r < rows; r++)
                for (int64_t k = 0; k < cols; k++)
                    wh[r * cols + k] = (float)q[r * cols + k] * s[r];
            uint64_t bytes = (uint64_t)(rows * cols) + 4u * (uint64_t)rows;
            st = pq_metrics_acc_add(acc_t, m, wh, rows, cols, cols, s, err);
            if (st == PQ_OK) st = pq_metrics_acc_add(acc_a, m, wh, rows, cols, cols, s, err);
            acc_t->stored_bytes += bytes;
            acc_a->stored_bytes += bytes;
        }
        pq_free(q);
        pq_free(s);
        pq_free(wh);
        return st;
    }
    size_t size = pq_packed_bytes(c->qf, rows, cols, group);
    if (!size) return pq_error_set(err, PQ_ERR_INVALID, "weight '%s': bad size for packing", name);
    uint8_t *p = pq_malloc(size);
    if (!p) return pq_error_nomem(err, "packed weight");
    st = pq_quantize_matrix(name, m, rows, cols, c->qf, group, calib, importance, p, err);
    if (st == PQ_OK) st = pq_metrics_acc_add_packed(acc_t, m, p, rows, cols, c->qf, group, err);
    if (st == PQ_OK) st = pq_metrics_acc_add_packed(acc_a, m, p, rows, cols, c->qf, group, err);
    if (st == PQ_OK && keep) {
        *packed = p;
        *packed_size = size;
    } else {
        pq_free(p);
    }
    return st;
}

enum pq_status pq_quantize_weights(const pq_graph *g, const pq_importance *imp, pq_qreport *rep,
                                   pq_error *err) {
    pq_weight_view *views = NULL;
    uint32_t n = 0;
    PQ_TRY(pq_weights_find(g, 1024, &views, &n, err));
    rep->tensors = pq_calloc(n ? n : 1, sizeof *rep->tensors);
    if (!rep->tensors) {
        pq_free(views);
        return pq_error_nomem(err, "quantization report");
    }
    rep->n = n;
    pq_metrics_acc agg, cagg;
    pq_metrics_acc_init(&agg);
    pq_metrics_acc_init(&cagg);
    enum pq_status st = PQ_OK;
    int64_t total = 0, done = 0;
    for (uint32_t i = 0; i < n; i++)
        total += views[i].batch * views[i].rows * views[i].cols;
    for (uint32_t i = 0; i < n && st == PQ_OK; i++) {
        pq_qtensor *t = &rep->tensors[i];
        t->view = views[i];
        float *m = NULL;
        st = pq_weight_view_read(g, &views[i], &m, err);
        if (st != PQ_OK) break;
        int64_t rows = views[i].batch * views[i].rows, cols = views[i].cols;
        const float *h = imp && i < imp->n ? imp->per_tensor[i] : NULL;
        enum pq_calib calib = rep->calib;
        if (calib == PQ_CALIB_WEIGHTED && !h) calib = PQ_CALIB_MSE;
        pq_metrics_acc acc;
        pq_metrics_acc_init(&acc);
        st = pq_quantize_one(views[i].name, m, rows, cols, &rep->fmt, calib, rep->group, h, &acc,
                             &agg, true, &t->packed, &t->packed_size, err);
        if (st == PQ_OK) pq_metrics_acc_finish(&acc, &t->metrics);
        if (st == PQ_OK && rep->has_compare) {
            pq_metrics_acc cacc;
            pq_metrics_acc_init(&cacc);
            st = pq_quantize_one(views[i].name, m, rows, cols, &rep->cmp, rep->cmp_calib,
                                 rep->group, NULL, &cacc, &cagg, false, NULL, NULL, err);
            if (st == PQ_OK) pq_metrics_acc_finish(&cacc, &t->cmp_metrics);
        }
        pq_free(m);
        done += rows * cols;
        if (total > (1 << 24) && isatty(STDERR_FILENO))
            fprintf(stderr, "\rquantizing: %3d%% (%u/%u tensors)", (int)(100 * done / total), i + 1,
                    n);
    }
    if (total > (1 << 24) && isatty(STDERR_FILENO)) fprintf(stderr, "\n");
    pq_metrics_acc_finish(&agg, &rep->aggregate);
    if (rep->has_compare) pq_metrics_acc_finish(&cagg, &rep->cmp_aggregate);
    pq_free(views);
    return st;
}

void pq_qreport_free(pq_qreport *rep) {
    for (uint32_t i = 0; i < rep->n; i++)
        pq_free(rep->tensors[i].packed);
    pq_free(rep->tensors);
    rep->tensors = NULL;
    rep->n = 0;
}
