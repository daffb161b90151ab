/* The command line's calibration provider: calibration files, the reference graph for drift, and
 * the callbacks passes use to ask for importance, Hessians, output drift and activation ranges. */
#include "calib_provider.h"

#include <string.h>

#include "runtime/calib_drift.h"
#include "runtime/calib_ranges.h"

/* Output drift of g against the reference model over the first max_samples calibration samples;
 * the reference outputs are computed once per sample count and cached in the pq_cli_calib. */
static enum pq_status pq_cli_calib_drift(void *vctx, const pq_graph *g, int64_t max_samples,
                                         struct pq_drift *out, pq_error *err) {
    pq_cli_calib *cc = vctx;
    enum pq_status st =
        pq_calib_drift(g, cc->reference, &cc->files.set, max_samples, &cc->ref_outputs,
                       &cc->n_ref_outputs, &cc->ref_samples, out, err);
    if (st != PQ_OK) pq_error_prefix(err, "calibration: ");
    return st;
}

/* Importance E[x_j^2] of the columns of the given weights, measured on the current graph g. */
static enum pq_status pq_cli_calib_importance(void *vctx, const pq_graph *g, const uint32_t *values,
                                              uint32_t n, float **out, pq_error *err) {
    pq_cli_calib *cc = vctx;
    pq_calib_files *cf = &cc->files;
    for (uint32_t i = 0; i < n; i++)
        out[i] = NULL;
    pq_graph *c = NULL;
    pq_weight_view *views = NULL, *sel = NULL;
    uint32_t nv = 0, ns = 0, *idx = NULL;
    pq_importance imp = {0};
    enum pq_status st;
    PQ_TRY(pq_graph_clone(g, &c, err));
    PQ_TRY_GOTO(st, pq_runtime_prepare(c, err), cleanup);
    PQ_TRY_GOTO(st, pq_weights_find(c, 1, &views, &nv, err), cleanup);
    sel = pq_calloc(n + 1, sizeof *sel);
    idx = pq_calloc(n + 1, sizeof *idx);
    if (!sel || !idx) {
        st = pq_error_nomem(err, "calibration views");
        goto cleanup;
    }
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t k = 0; k < nv; k++)
            if (views[k].value == values[i]) {
                sel[ns] = views[k];
                idx[ns++] = i;
                break;
            }
    PQ_TRY_GOTO(st, pq_calib_importance(c, &cf->set, sel, ns, &imp, err), cleanup);
    for (uint32_t k = 0; k < ns && k < imp.n; k++) {
        out[idx[k]] = imp.per_tensor[k];
        imp.per_tensor[k] = NULL;
    }
cleanup:
    pq_importance_free(&imp);
    pq_free(sel);
    pq_free(idx);
    pq_free(views);
    pq_graph_destroy(c);
    if (st != PQ_OK) pq_error_prefix(err, "calibration: ");
    return st;
}

/* Hessian X^T X of node `node`'s weight inputs, collected on a prepared clone of the current
 * graph g (earlier FakeQuant nodes and rotations in effect). The clone is found by the node's name
 * (preparing may re-sort nodes). */
static enum pq_status pq_cli_calib_hessian(void *vctx, const pq_graph *g, uint32_t node, double **h,
                                           int64_t *cols, int64_t *nsamples, pq_error *err) {
    pq_cli_calib *cc = vctx;
    *h = NULL;
    *cols = 0;
    *nsamples = 0;
    if (node >= g->n_nodes)
        return pq_error_set(err, PQ_ERR_INVALID, "calibration: node %u out of range", node);
    const char *name = g->nodes[node].name;
    enum pq_op op = g->nodes[node].op;
    pq_graph *c = NULL;
    enum pq_status st;
    PQ_TRY(pq_graph_clone(g, &c, err));
    PQ_TRY_GOTO(st, pq_runtime_prepare(c, err), cleanup);
    uint32_t nid = PQ_NONE;
    for (uint32_t i = 0; i < c->n_nodes && nid == PQ_NONE; i++)
        if (c->nodes[i].op == op && name && c->nodes[i].name && !strcmp(c->nodes[i].name, name))
            nid = i;
    if (nid == PQ_NONE) {
        st = pq_error_set(err, PQ_ERR_INTERNAL, "node '%s' (%s) not found in the prepared copy",
                          name ? name : "", pq_op_name(op));
        goto cleanup;
    }
    st = pq_calib_hessian(c, &cc->files.set, nid, h, cols, nsamples, err);
cleanup:
    pq_graph_destroy(c);
    if (st != PQ_OK) pq_error_prefix(err, "calibration: ");
    return st;
}

/* Activation ranges (INT8) of the given values of the current graph g, measured on a prepared
 * clone; values are matched by name (preparing may re-sort nodes). */
static enum pq_status pq_cli_calib_ranges(void *vctx, const pq_graph *g, const uint32_t *values,
                                          uint32_t n, const char *method, double pct, float *lo,
                                          float *hi, pq_error *err) {
    pq_cli_calib *cc = vctx;
    pq_graph *c = NULL;
    uint32_t *ids = NULL;
    enum pq_status st;
    PQ_TRY(pq_graph_clone(g, &c, err));
    PQ_TRY_GOTO(st, pq_runtime_prepare(c, err), cleanup);
    ids = pq_malloc(sizeof *ids * (n ? n : 1));
    if (!ids) {
        st = pq_error_nomem(err, "range values");
        goto cleanup;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (values[i] >= g->n_values) {
            st = pq_error_set(err, PQ_ERR_INVALID, "value id %u out of range", values[i]);
            goto cleanup;
        }
        ids[i] = pq_graph_find_value(c, g->values[values[i]].name);
        if (ids[i] == PQ_NONE) {
            st = pq_error_set(err, PQ_ERR_INTERNAL, "value '%s' not found in the prepared copy",
                              g->values[values[i]].name);
            goto cleanup;
        }
    }
    st = pq_calib_ranges(c, &cc->files.set, ids, n, method, pct, lo, hi, err);
cleanup:
    pq_free(ids);
    pq_graph_destroy(c);
    if (st != PQ_OK) pq_error_prefix(err, "calibration: ");
    return st;
}

enum pq_status pq_cli_calib_init(pq_cli_calib *c, const pq_graph *g, const char *dir,
                                 pq_error *err) {
    memset(c, 0, sizeof *c);
    PQ_TRY(pq_calib_files_load(g, dir, &c->files, err));
    enum pq_status st = pq_graph_clone(g, &c->reference, err);
    if (st == PQ_OK) st = pq_runtime_prepare(c->reference, err);
    if (st == PQ_OK && (st = pq_calib_set_check_finite(g, &c->files.set, err)) != PQ_OK)
        pq_error_prefix(err, "calibration data '%s': ", dir);
    if (st != PQ_OK) {
        pq_cli_calib_free(c);
        return st;
    }
    c->provider.ctx = c;
    c->provider.importance = pq_cli_calib_importance;
    c->provider.hessian = pq_cli_calib_hessian;
    c->provider.drift = pq_cli_calib_drift;
    c->provider.ranges = pq_cli_calib_ranges;
    c->provider.samples = (uint64_t)c->files.set.samples;
    c->provider.data_sha256 = c->files.sha256;
    return PQ_OK;
}

void pq_cli_calib_free(pq_cli_calib *c) {
    if (c->ref_outputs)
        for (uint32_t i = 0; i < c->n_ref_outputs; i++)
            pq_tensor_destroy(c->ref_outputs[i]);
    pq_free(c->ref_outputs);
    pq_graph_destroy(c->reference);
    pq_calib_files_free(&c->files);
    memset(c, 0, sizeof *c);
}
