/* The command line's artifact glue: packing a quantization report into pq_artifact_write's
 * tensors, and dequantizing an artifact's packed tensors back into graph constants. */
#include "artifact_load.h"

#include <string.h>

enum pq_status pq_cli_write_artifact(const pq_graph *g, const pq_qreport *rep,
                                     const pq_provenance *prov, const char *path, pq_error *err) {
    if (rep->fmt.is_int8)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED, "'%s': INT8 artifacts are not supported yet",
                            path);
    pq_artifact_tensor *ts = pq_calloc(rep->n + 1, sizeof *ts);
    if (!ts) return pq_error_nomem(err, "artifact tensors");
    for (uint32_t i = 0; i < rep->n; i++) {
        const pq_qtensor *t = &rep->tensors[i];
        ts[i].name = t->view.name;
        ts[i].fmt = rep->fmt.qf;
        ts[i].rows = t->view.batch * t->view.rows;
        ts[i].cols = t->view.cols;
        ts[i].group = rep->group;
        ts[i].data = t->packed;
        ts[i].size = t->packed_size;
        ts[i].onnx_dims = t->view.dims;
        ts[i].onnx_rank = t->view.rank;
    }
    enum pq_status st = pq_artifact_write(g, "", ts, rep->n, prov, path, err);
    pq_free(ts);
    return st;
}

enum pq_status pq_cli_load_artifact(const char *path, pq_artifact **out, pq_error *err) {
    *out = NULL;
    pq_artifact *a = NULL;
    PQ_TRY(pq_artifact_read(path, &a, err));
    pq_weight_view *views = NULL;
    uint32_t nv = 0;
    float *m = NULL;
    enum pq_status st = pq_weights_find(a->graph, 1, &views, &nv, err);
    for (uint32_t i = 0; i < a->n_packed && st == PQ_OK; i++) {
        const pq_artifact_packed *p = &a->packed[i];
        if (p->in_graph_packed) continue; /* a compiled graph runs its packed bytes as they are */
        const pq_weight_view *wv = NULL;
        for (uint32_t k = 0; k < nv; k++)
            if (views[k].value == p->value) wv = &views[k];
        if (!wv || wv->batch * wv->rows != p->rows || wv->cols != p->cols) {
            st = pq_error_set(err, PQ_ERR_INVALID,
                              "artifact '%s': packed tensor '%s' (%lldx%lld) does not match the "
                              "weight view of its consumer in the graph",
                              path, p->name, (long long)p->rows, (long long)p->cols);
            break;
        }
        m = pq_malloc(sizeof(float) * (size_t)(p->rows * p->cols));
        if (!m) {
            st = pq_error_nomem(err, "dequantized weight");
            break;
        }
        st = pq_dequantize_matrix(p->data, p->rows, p->cols, p->fmt, p->group, m, err);
        if (st == PQ_OK) st = pq_weight_view_write(a->graph, wv, m, err);
        pq_free(m);
        m = NULL;
    }
    pq_free(views);
    if (st != PQ_OK) {
        pq_artifact_destroy(a);
        return st;
    }
    *out = a;
    return PQ_OK;
}
