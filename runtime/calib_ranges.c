/* Streaming activation ranges (minmax / percentile) of chosen values over a calibration set, for
 * INT8 activation parameters (quantize-int8 asks for them through the calibration provider). */
#include "calib_ranges.h"

#include <string.h>

#include "backends/quant/quant.h"

/* One distinct value and its estimator. */
typedef struct pq_rg_acc {
    uint32_t value;
    uint32_t node, slot; /* first top-level reader and its input slot, or PQ_NONE */
    uint32_t output;     /* index in g->outputs when no node reads it, or PQ_NONE */
    pq_range_minmax mm;
    pq_range_percentile *pc; /* percentile only (heap) */
} pq_rg_acc;

typedef struct pq_rg_ctx {
    pq_rg_acc *acc;
    uint32_t n;
} pq_rg_ctx;

static void pq_rg_add(pq_rg_acc *a, const pq_tensor *t) {
    if (!t || t->dtype != PQ_DTYPE_F32) return;
    int64_t n = pq_tensor_numel(t);
    if (n <= 0) return;
    if (a->pc)
        pq_range_percentile_add(a->pc, t->data, n);
    else
        pq_range_minmax_add(&a->mm, t->data, n);
}

static enum pq_status pq_rg_observe(void *vctx, const pq_graph *g, uint32_t node,
                                    const pq_tensor *const *in, uint32_t n_in, pq_error *err) {
    (void)g;
    (void)err;
    pq_rg_ctx *c = vctx;
    for (uint32_t k = 0; k < c->n; k++)
        if (c->acc[k].node == node && c->acc[k].slot < n_in)
            pq_rg_add(&c->acc[k], in[c->acc[k].slot]);
    return PQ_OK;
}

/* Feeds graph outputs no node reads into their accumulators (the observer sees node inputs only).
 */
static enum pq_status pq_rg_outputs(void *vctx, pq_tensor *const *outs, uint32_t n_outs,
                                    pq_error *err) {
    (void)n_outs;
    (void)err;
    pq_rg_ctx *c = vctx;
    for (uint32_t k = 0; k < c->n; k++)
        if (c->acc[k].output != PQ_NONE) pq_rg_add(&c->acc[k], outs[c->acc[k].output]);
    return PQ_OK;
}

/* Runs g over cs chunk by chunk as pq_calib_run does, with the observer and the outputs. */
static enum pq_status pq_rg_run(pq_graph *g, const pq_calib_set *cs, pq_rg_ctx *c, pq_error *err) {
    int64_t chunk;
    PQ_TRY(pq_calib_chunk(g, cs, &chunk, err));
    return pq_calib_run_chunks(g, cs, cs->samples, chunk, pq_rg_observe, c, pq_rg_outputs, c,
                               "calibration ranges", err);
}

/* Where value v is seen: its first top-level reader, else the graph output slot; a constant is
 * added at once. INVALID / UNSUPPORTED naming the value otherwise. */
static enum pq_status pq_rg_locate(const pq_graph *g, pq_rg_acc *a, pq_error *err) {
    const pq_value *val = &g->values[a->value];
    if (val->dtype != PQ_DTYPE_F32)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                            "value '%s' is %s: activation ranges are measured on f32 values only",
                            val->name, pq_dtype_name(val->dtype));
    a->node = a->slot = a->output = PQ_NONE;
    if (val->constant) {
        pq_rg_add(a, val->constant);
        return PQ_OK;
    }
    for (uint32_t i = 0; i < g->n_nodes && a->node == PQ_NONE; i++)
        for (uint32_t s = 0; s < g->nodes[i].n_inputs; s++)
            if (g->nodes[i].inputs[s] == a->value) {
                a->node = i;
                a->slot = s;
                break;
            }
    for (uint32_t o = 0; o < g->n_outputs && a->node == PQ_NONE; o++)
        if (g->outputs[o] == a->value) a->output = o;
    if (a->node == PQ_NONE && a->output == PQ_NONE)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "value '%s' is read by no top-level node and is no graph output: its "
                            "range cannot be observed",
                            val->name);
    return PQ_OK;
}

enum pq_status pq_calib_ranges(pq_graph *g, const pq_calib_set *cs, const uint32_t *values,
                               uint32_t n, const char *method, double pct, float *lo, float *hi,
                               pq_error *err) {
    bool percentile;
    if (method && !strcmp(method, "minmax"))
        percentile = false;
    else if (method && !strcmp(method, "percentile"))
        percentile = true;
    else
        return pq_error_set(
            err, PQ_ERR_INVALID,
            "activation ranges: unknown method '%s' (expected minmax or percentile)",
            method ? method : "(null)");
    if (percentile && !(pct > 0.0 && pct <= 100.0))
        return pq_error_set(err, PQ_ERR_INVALID,
                            "activation ranges: percentile %g is not in (0, 100]", pct);
    for (uint32_t i = 0; i < n; i++)
        if (values[i] >= g->n_values)
            return pq_error_set(err, PQ_ERR_INVALID, "activation ranges: value id %u out of range",
                                values[i]);
    if (n == 0) return PQ_OK;

    enum pq_status st = PQ_OK;
    pq_rg_ctx c = {pq_calloc(n, sizeof(pq_rg_acc)), 0};
    uint32_t *slot = pq_malloc(sizeof(uint32_t) * n); /* entry i -> accumulator */
    if (!c.acc || !slot) {
        st = pq_error_nomem(err, "activation range accumulators");
        goto cleanup;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = 0;
        while (k < c.n && c.acc[k].value != values[i])
            k++;
        slot[i] = k;
        if (k < c.n) continue;
        pq_rg_acc *a = &c.acc[c.n++];
        a->value = values[i];
        pq_range_minmax_init(&a->mm);
        if (percentile) {
            a->pc = pq_malloc(sizeof *a->pc);
            if (!a->pc) {
                st = pq_error_nomem(err, "percentile estimator");
                goto cleanup;
            }
            pq_range_percentile_init(a->pc);
        }
        PQ_TRY_GOTO(st, pq_rg_locate(g, a, err), cleanup);
    }
    PQ_TRY_GOTO(st, pq_rg_run(g, cs, &c, err), cleanup);
    for (uint32_t i = 0; i < n; i++) {
        const pq_rg_acc *a = &c.acc[slot[i]];
        if (a->pc)
            PQ_TRY_GOTO(st, pq_range_percentile_get(a->pc, pct, &lo[i], &hi[i], err), cleanup);
        else
            pq_range_minmax_get(&a->mm, &lo[i], &hi[i]);
    }
cleanup:
    for (uint32_t k = 0; c.acc && k < c.n; k++)
        pq_free(c.acc[k].pc);
    pq_free(c.acc);
    pq_free(slot);
    return st;
}
