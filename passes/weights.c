/* Finding quantizable weights and converting between their stored ONNX layout and the
 * rows x cols weight view of SPEC section 2 (transposed for MatMul/Gemm B in [K, N] form). */
#include "weights.h"

#include "select.h"

#include <string.h>

enum pq_status pq_weights_find(const pq_graph *g, int64_t min_elements, pq_weight_view **out,
                               uint32_t *n_out, pq_error *err) {
    *out = NULL;
    *n_out = 0;
    pq_weight_view *list = pq_calloc(g->n_values ? g->n_values : 1, sizeof *list);
    bool *seen = pq_calloc(g->n_values ? g->n_values : 1, sizeof *seen);
    if (!list || !seen) {
        pq_free(list);
        pq_free(seen);
        return pq_error_nomem(err, "weight list");
    }
    uint32_t cnt = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const pq_node *n = &g->nodes[i];
        if (n->op != PQ_OP_MATMUL && n->op != PQ_OP_GEMM && n->op != PQ_OP_CONV &&
            n->op != PQ_OP_CONV_TRANSPOSE)
            continue;
        uint32_t v = pq_node_input(n, 1);
        if (v == PQ_NONE || seen[v]) continue;
        if (pq_select_view_of(g, i, v, &list[cnt]) &&
            pq_tensor_numel(g->values[v].constant) >= min_elements) {
            seen[v] = true;
            cnt++;
        }
    }
    pq_free(seen);
    *out = list;
    *n_out = cnt;
    return PQ_OK;
}

enum pq_status pq_weight_view_read(const pq_graph *g, const pq_weight_view *wv, float **out,
                                   pq_error *err) {
    const pq_tensor *t = g->values[wv->value].constant;
    int64_t total = wv->batch * wv->rows * wv->cols;
    if (!t || pq_tensor_numel(t) != total)
        return pq_error_set(err, PQ_ERR_INTERNAL, "weight '%s' changed shape", wv->name);
    float *m = pq_malloc(sizeof(float) * (size_t)(total ? total : 1));
    if (!m) return pq_error_nomem(err, "weight view");
    const float *src = t->data;
    if (!wv->transposed) {
        memcpy(m, src, sizeof(float) * (size_t)total);
    } else { /* stored [batch, K=cols, N=rows] -> view [batch, rows, cols] */
        int64_t mat = wv->rows * wv->cols;
        for (int64_t b = 0; b < wv->batch; b++)
            for (int64_t k = 0; k < wv->cols; k++)
                for (int64_t r = 0; r < wv->rows; r++)
                    m[b * mat + r * wv->cols + k] = src[b * mat + k * wv->rows + r];
    }
    *out = m;
    return PQ_OK;
}

enum pq_status pq_weight_view_write(pq_graph *g, const pq_weight_view *wv, const float *m,
                                    pq_error *err) {
    pq_tensor *t = g->values[wv->value].constant;
    int64_t total = wv->batch * wv->rows * wv->cols;
    if (!t || pq_tensor_numel(t) != total || t->dtype != PQ_DTYPE_F32)
        return pq_error_set(err, PQ_ERR_INTERNAL, "weight '%s' changed shape", wv->name);
    float *dst = t->data;
    if (!wv->transposed) {
        memcpy(dst, m, sizeof(float) * (size_t)total);
    } else {
        int64_t mat = wv->rows * wv->cols;
        for (int64_t b = 0; b < wv->batch; b++)
            for (int64_t k = 0; k < wv->cols; k++)
                for (int64_t r = 0; r < wv->rows; r++)
                    dst[b * mat + k * wv->rows + r] = m[b * mat + r * wv->cols + k];
    }
    return PQ_OK;
}
