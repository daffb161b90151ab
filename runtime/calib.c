/* Chunked calibration runs over a calibration set and the per-column importance statistics
 * used by weighted calibration. */
#include "calib.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum pq_status pq_calib_chunk(const pq_graph *g, const pq_calib_set *cs, int64_t *chunk,
                              pq_error *err) {
    *chunk = cs->samples < 32 ? cs->samples : 32;
    for (uint32_t i = 0; i < g->n_inputs; i++) {
        const pq_value *v = &g->values[g->inputs[i]];
        if (v->shape.rank > 0 && pq_dim_known(v->shape.dims[0])) {
            *chunk = v->shape.dims[0].size;
            if (*chunk < 1 || cs->samples % *chunk)
                return pq_error_set(err, PQ_ERR_INVALID,
                                    "calibration data: input '%s' has a fixed batch of %lld, "
                                    "which does not divide the %lld samples",
                                    v->name, (long long)*chunk, (long long)cs->samples);
        }
    }
    return PQ_OK;
}

enum pq_status pq_calib_run_chunks(pq_graph *g, const pq_calib_set *cs, int64_t n, int64_t chunk,
                                   pq_observe_fn observe, void *observe_ctx,
                                   pq_calib_outputs_fn outputs, void *outputs_ctx,
                                   const char *label, pq_error *err) {
    if (n <= 0 || chunk <= 0) return PQ_OK;
    pq_session_opts opts = {.n_threads = 1, .observe = observe, .observe_ctx = observe_ctx};
    pq_session *s = NULL;
    PQ_TRY(pq_session_create(g, &opts, &s, err));
    pq_tensor *views = pq_calloc(cs->n + 1, sizeof *views);
    const pq_tensor **ptrs = pq_calloc(cs->n + 1, sizeof *ptrs);
    pq_tensor **outs = pq_calloc(g->n_outputs + 1, sizeof *outs);
    enum pq_status st = PQ_OK;
    if (!views || !ptrs || !outs) st = pq_error_nomem(err, "calibration run");
    int64_t n_chunks = (n + chunk - 1) / chunk;
    bool tty = label && n_chunks > 4 && isatty(STDERR_FILENO);
    for (int64_t c = 0; c < n_chunks && st == PQ_OK; c++) {
        int64_t start = c * chunk, len = n - start < chunk ? n - start : chunk;
        for (uint32_t i = 0; i < cs->n; i++) {
            const pq_tensor *t = cs->inputs[i];
            size_t row = t->dims[0] ? t->nbytes / (size_t)t->dims[0] : 0;
            views[i] = *t;
            views[i].owns_data = false;
            views[i].dims[0] = len;
            views[i].data = (unsigned char *)t->data + (size_t)start * row;
            views[i].nbytes = row * (size_t)len;
            ptrs[i] = &views[i];
        }
        st = pq_session_run(s, ptrs, cs->n, outs, g->n_outputs, err);
        if (st == PQ_OK && outputs) st = outputs(outputs_ctx, outs, g->n_outputs, err);
        for (uint32_t o = 0; o < g->n_outputs && outs; o++) {
            pq_tensor_destroy(outs[o]);
            outs[o] = NULL;
        }
        if (tty)
            fprintf(stderr, "\r%s: %lld/%lld samples", label, (long long)(start + len),
                    (long long)n);
    }
    if (tty) fprintf(stderr, "\n");
    pq_free(views);
    pq_free(ptrs);
    pq_free(outs);
    pq_session_destroy(s);
    return st;
}

enum pq_status pq_calib_run(pq_graph *g, const pq_calib_set *cs, pq_observe_fn observe, void *ctx,
                            pq_error *err) {
    int64_t chunk;
    PQ_TRY(pq_calib_chunk(g, cs, &chunk, err));
    return pq_calib_run_chunks(g, cs, cs->samples, chunk, observe, ctx, NULL, NULL, "calibration",
                               err);
}

/* Accumulators of one weight's input statistics. */
typedef struct {
    uint32_t node;    /* consumer node index */
    int kind;         /* 0 feature-last (MatMul, Gemm), 1 Gemm transA, 2 Conv, 3 none */
    int64_t features; /* MatMul/Gemm: K; Conv: input channels C */
    double *sum;      /* per feature / channel */
    int64_t count;    /* values per feature accumulated */
} pq_imp_acc;

typedef struct {
    pq_imp_acc *acc;
    uint32_t n;
} pq_imp_ctx;

static enum pq_status pq_imp_observe(void *vctx, const pq_graph *g, uint32_t node,
                                     const pq_tensor *const *in, uint32_t n_in, pq_error *err) {
    (void)g;
    pq_imp_ctx *ctx = vctx;
    for (uint32_t k = 0; k < ctx->n; k++) {
        pq_imp_acc *a = &ctx->acc[k];
        if (a->node != node || a->kind == 3 || n_in < 1 || !in[0]) continue;
        const pq_tensor *x = in[0];
        if (x->dtype != PQ_DTYPE_F32 || x->rank < 1) continue;
        const float *d = x->data;
        int64_t n = pq_tensor_numel(x);
        if (a->kind == 0) {
            int64_t f = x->dims[x->rank - 1];
            if (f != a->features) continue;
            for (int64_t i = 0; i < n; i++)
                a->sum[i % f] += (double)d[i] * d[i];
            a->count += f ? n / f : 0;
        } else if (a->kind == 1) { /* Gemm transA: A is [K, M] */
            if (x->rank != 2 || x->dims[0] != a->features) continue;
            for (int64_t r = 0; r < x->dims[0]; r++)
                for (int64_t c = 0; c < x->dims[1]; c++)
                    a->sum[r] += (double)d[r * x->dims[1] + c] * d[r * x->dims[1] + c];
            a->count += x->dims[1];
        } else if (a->kind == 2) { /* Conv: [N, C, spatial...] */
            if (x->rank < 3 || x->dims[1] != a->features) continue;
            int64_t C = x->dims[1], sp = n / (x->dims[0] * C);
            for (int64_t b = 0; b < x->dims[0]; b++)
                for (int64_t ch = 0; ch < C; ch++) {
                    const float *p = d + (b * C + ch) * sp;
                    double s = 0;
                    for (int64_t i = 0; i < sp; i++)
                        s += (double)p[i] * p[i];
                    a->sum[ch] += s;
                }
            a->count += x->dims[0] * sp;
        }
    }
    (void)err;
    return PQ_OK;
}

void pq_importance_free(pq_importance *imp) {
    for (uint32_t i = 0; i < imp->n; i++)
        if (imp->per_tensor) pq_free(imp->per_tensor[i]);
    pq_free(imp->per_tensor);
    memset(imp, 0, sizeof *imp);
}

enum pq_status pq_calib_importance(pq_graph *g, const pq_calib_set *cs, const pq_weight_view *views,
                                   uint32_t n, pq_importance *out, pq_error *err) {
    memset(out, 0, sizeof *out);
    pq_imp_ctx ctx = {pq_calloc(n + 1, sizeof(pq_imp_acc)), n};
    out->per_tensor = pq_calloc(n + 1, sizeof *out->per_tensor);
    out->n = n;
    enum pq_status st = PQ_OK;
    if (!ctx.acc || !out->per_tensor) {
        st = pq_error_nomem(err, "importance");
        goto done;
    }
    for (uint32_t k = 0; k < n; k++) {
        pq_imp_acc *a = &ctx.acc[k];
        a->kind = 3;
        for (uint32_t i = 0; i < g->n_nodes; i++)
            if (!strcmp(g->nodes[i].name, views[k].node_name)) a->node = i;
        const pq_node *nd = &g->nodes[a->node];
        if (views[k].op == PQ_OP_MATMUL || views[k].op == PQ_OP_GEMM) {
            a->kind = views[k].op == PQ_OP_GEMM && pq_node_attr_int(nd, "transA", 0) ? 1 : 0;
            a->features = views[k].cols;
        } else if (views[k].op == PQ_OP_CONV) {
            a->kind = 2;
            int64_t cg = views[k].dims[1];
            int64_t groups = pq_node_attr_int(nd, "group", 1);
            a->features = cg * groups;
        }
        if (a->kind != 3) {
            a->sum = pq_calloc((size_t)a->features + 1, sizeof(double));
            if (!a->sum) {
                st = pq_error_nomem(err, "importance");
                goto done;
            }
        }
    }
    st = pq_calib_run(g, cs, pq_imp_observe, &ctx, err);
    for (uint32_t k = 0; k < n && st == PQ_OK; k++) {
        pq_imp_acc *a = &ctx.acc[k];
        if (a->kind == 3 || a->count == 0) continue;
        float *h = pq_malloc(sizeof(float) * (size_t)views[k].cols);
        if (!h) {
            st = pq_error_nomem(err, "importance");
            break;
        }
        if (a->kind == 2) {
            int64_t cg = views[k].dims[1], groups = a->features / (cg ? cg : 1);
            int64_t kpos = views[k].cols / (cg ? cg : 1);
            for (int64_t j = 0; j < views[k].cols; j++) {
                int64_t c = j / (kpos ? kpos : 1);
                double s = 0;
                for (int64_t gi = 0; gi < groups; gi++)
                    s += a->sum[gi * cg + c];
                h[j] = (float)(s / (double)groups / (double)a->count);
            }
        } else {
            for (int64_t j = 0; j < views[k].cols; j++)
                h[j] = (float)(a->sum[j] / (double)a->count);
        }
        out->per_tensor[k] = h;
    }
done:
    if (ctx.acc)
        for (uint32_t k = 0; k < n; k++)
            pq_free(ctx.acc[k].sum);
    pq_free(ctx.acc);
    if (st != PQ_OK) pq_importance_free(out);
    return st;
}
