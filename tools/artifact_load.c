/* The command line's artifact glue: loading an artifact, dequantizing the packed tensors of
 * pre-compiler artifacts (f32 constants replaced) back into graph constants. */
#include "artifact_load.h"

#include <string.h>

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
