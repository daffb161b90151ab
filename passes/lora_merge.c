/* Merging trained LoRA adapters into their base weights (train: merge: true): the branch's
 * low-rank product is added to the weight, the branch nodes are dropped. */
#include "lora.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/edit.h"

/* The constant behind value v, through a FakeQuant (its input 0); PQ_NONE when none. */
static uint32_t pq_merge_weight(const pq_graph *g, uint32_t v) {
    if (v == PQ_NONE) return PQ_NONE;
    if (g->values[v].constant) return v;
    uint32_t p = g->values[v].producer;
    if (p != PQ_NONE && g->nodes[p].op == PQ_OP_FAKE_QUANT) {
        uint32_t w = g->nodes[p].inputs[0];
        return w != PQ_NONE && g->values[w].constant ? w : PQ_NONE;
    }
    return PQ_NONE;
}

/* The producer node of v when it has op op, else PQ_NONE. */
static uint32_t pq_merge_producer(const pq_graph *g, uint32_t v, enum pq_op op) {
    if (v == PQ_NONE) return PQ_NONE;
    uint32_t p = g->values[v].producer;
    return p != PQ_NONE && g->nodes[p].op == op ? p : PQ_NONE;
}

static bool pq_merge_is_f32(const pq_graph *g, uint32_t v) {
    return v != PQ_NONE && g->values[v].constant &&
           g->values[v].constant->dtype == PQ_DTYPE_F32;
}

/* Adds s * (A B) to W. conv: A [r, d_in, 1..], B [d_out, r, 1..], W [d_out, d_in, 1..];
 * otherwise A = A^T [d_in, r], B = B^T [r, d_out] and W is [d_in, d_out] (w_rows_out false) or
 * [d_out, d_in] (Gemm transB). */
static enum pq_status pq_merge_add(pq_tensor *W, const pq_tensor *A, const pq_tensor *B, float s,
                                   bool conv, bool w_out_major, double *max_delta,
                                   const char *name, pq_error *err) {
    int64_t r, d_in, d_out;
    if (conv) {
        r = A->dims[0], d_in = A->dims[1], d_out = B->dims[0];
        w_out_major = true;
    } else {
        d_in = A->dims[0], r = A->dims[1], d_out = B->dims[1];
    }
    if (pq_tensor_numel(W) != d_in * d_out || pq_tensor_numel(A) != r * d_in ||
        pq_tensor_numel(B) != r * d_out)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "adapter of '%s': shapes do not fit (d_in %lld, d_out %lld, r %lld)",
                            name, (long long)d_in, (long long)d_out, (long long)r);
    const float *a = A->data, *b = B->data;
    float *w = W->data;
    for (int64_t o = 0; o < d_out; o++)
        for (int64_t i = 0; i < d_in; i++) {
            double acc = 0;
            for (int64_t k = 0; k < r; k++)
                acc += conv ? (double)b[o * r + k] * a[k * d_in + i]
                            : (double)a[i * r + k] * b[k * d_out + o];
            float d = (float)((double)s * acc);
            float *t = w_out_major ? &w[o * d_in + i] : &w[i * d_out + o];
            *t += d;
            if (fabs((double)d) > *max_delta) *max_delta = fabs((double)d);
        }
    return PQ_OK;
}

enum pq_status pq_lora_merge(pq_graph *g, pq_pass_ctx *ctx, uint32_t *merged, double *max_delta,
                             pq_error *err) {
    uint32_t n_merged = 0;
    double maxd = 0;
    for (uint32_t nid = 0; nid < g->n_nodes; nid++) {
        const pq_node *add = &g->nodes[nid];
        if (add->op != PQ_OP_ADD || add->n_inputs != 2) continue;
        uint32_t mul = pq_merge_producer(g, add->inputs[1], PQ_OP_MUL);
        if (mul == PQ_NONE) continue;
        uint32_t sc = g->nodes[mul].inputs[1];
        const char *sname = sc != PQ_NONE ? g->values[sc].name : "";
        size_t sl = strlen(sname);
        if (sl < 11 || strcmp(sname + sl - 11, ".lora_scale") != 0 || !pq_merge_is_f32(g, sc))
            continue;
        uint32_t up = g->values[g->nodes[mul].inputs[0]].producer;
        if (up == PQ_NONE) continue;
        bool conv = g->nodes[up].op == PQ_OP_CONV;
        uint32_t down = g->values[g->nodes[up].inputs[0]].producer;
        if (down == PQ_NONE) continue;
        uint32_t A = g->nodes[down].inputs[1], B = g->nodes[up].inputs[1];
        uint32_t y1 = add->inputs[0], layer = g->values[y1].producer;
        char wname[1024];
        snprintf(wname, sizeof wname, "%.*s", (int)(sl - 11), sname);
        if (layer == PQ_NONE || !pq_merge_is_f32(g, A) || !pq_merge_is_f32(g, B))
            return pq_error_set(err, PQ_ERR_INVALID, "adapter of '%s': malformed branch", wname);
        const pq_node *L = &g->nodes[layer];
        uint32_t W = pq_merge_weight(g, L->n_inputs > 1 ? L->inputs[1] : PQ_NONE);
        if (!pq_merge_is_f32(g, W))
            return pq_error_set(err, PQ_ERR_INVALID,
                                "adapter of '%s': the base weight is not an f32 constant", wname);
        bool out_major = L->op == PQ_OP_GEMM && pq_node_attr_int(L, "transB", 0) != 0;
        float s = ((const float *)g->values[sc].constant->data)[0];
        PQ_TRY(pq_merge_add(g->values[W].constant, g->values[A].constant, g->values[B].constant,
                            s, conv, out_major, &maxd, wname, err));
        uint32_t y = add->outputs[0];
        PQ_TRY(pq_graph_replace_all_uses(g, y, y1, err));
        n_merged++;
    }
    uint32_t removed = 0;
    PQ_TRY(pq_graph_remove_dead(g, &removed, err));
    PQ_TRY(pq_graph_compact(g, NULL, err)); /* the adapters' constants */
    pq_pass_log(ctx, 1, "merged %u LoRA adapters into their weights (largest weight change %.4g)",
                n_merged, maxd);
    if (merged) *merged = n_merged;
    if (max_delta) *max_delta = maxd;
    return PQ_OK;
}
