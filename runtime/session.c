/* Sessions: checking and binding inputs against the graph's declared types, (re)planning when
 * input shapes change, running the frame (kept across runs) and handing outputs to the caller. */
#include <stdio.h>
#include <string.h>

#include "backends/onednn/onednn.h"
#include "exec.h"

struct pq_session {
    pq_graph *g;
    pq_session_opts opts;
    pq_plan plan;
    /* The frame every run uses: its per-value arrays are allocated once (for frame_nv values) and
     * emptied after each run, so a run allocates only its outputs. */
    pq_frame frame;
    uint32_t frame_nv;
    /* Owned: oneDNN primitives and reordered weights per node of g, created in
     * pq_session_create, freed in pq_session_destroy, bound to the calling thread for the
     * duration of each pq_session_run (see pq_onednn_cache in backends/onednn/onednn.h). */
    pq_onednn_cache *backend_cache;
};

enum pq_status pq_session_create(pq_graph *g, const pq_session_opts *opts, pq_session **out,
                                 pq_error *err) {
    pq_session *s = pq_calloc(1, sizeof *s);
    if (!s) return pq_error_nomem(err, "session");
    s->g = g;
    s->backend_cache = pq_onednn_cache_create();
    if (!s->backend_cache) {
        pq_free(s);
        return pq_error_nomem(err, "session backend cache");
    }
    if (opts) s->opts = *opts;
    if (s->opts.n_threads <= 0) s->opts.n_threads = 1;
    enum pq_status st = pq_frame_init(&s->frame, g, NULL, &s->plan, s->opts.n_threads, err);
    if (st != PQ_OK) {
        pq_onednn_cache_destroy(s->backend_cache);
        pq_free(s);
        return st;
    }
    s->frame_nv = g->n_values;
    /* piqc's parallel kernels on oneDNN's OpenMP threads while those spin (one set of threads) */
    if (s->opts.n_threads > 1) pq_onednn_parallel_install(s->opts.n_threads);
    *out = s;
    return PQ_OK;
}

void pq_session_destroy(pq_session *s) {
    if (!s) return;
    pq_frame_free(&s->frame);
    pq_plan_free(&s->plan, s->g);
    pq_onednn_cache_destroy(s->backend_cache);
    pq_free(s);
}

size_t pq_session_planned_peak(const pq_session *s) {
    return s->plan.peak;
}

/* Checks one input tensor against the declared type of graph input i; binds symbols. */
static enum pq_status pq_check_input(const pq_graph *g, uint32_t i, const pq_tensor *t,
                                     int64_t *sym_size, pq_error *err) {
    const pq_value *v = &g->values[g->inputs[i]];
    char got[160]; /* the given shape, formatted only for a message (this runs every call) */
#define PQ_GOT (pq_shape_format(t->rank, t->dims, got, sizeof got), got)
    if (v->dtype != PQ_DTYPE_UNDEFINED && t->dtype != v->dtype)
        return pq_error_set(err, PQ_ERR_INVALID, "input '%s': expected %s, got %s%s", v->name,
                            pq_dtype_name(v->dtype), pq_dtype_name(t->dtype), PQ_GOT);
    if (v->shape.rank >= 0 && v->shape.rank != t->rank)
        return pq_error_set(err, PQ_ERR_INVALID, "input '%s': expected rank %d, got shape %s",
                            v->name, v->shape.rank, PQ_GOT);
    for (int d = 0; d < v->shape.rank; d++) {
        pq_dim dim = v->shape.dims[d];
        if (pq_dim_known(dim) && dim.size != t->dims[d])
            return pq_error_set(err, PQ_ERR_INVALID,
                                "input '%s': dimension %d must be %lld, got shape %s", v->name, d,
                                (long long)dim.size, PQ_GOT);
        if (!pq_dim_known(dim) && dim.sym) {
            if (sym_size[dim.sym] >= 0 && sym_size[dim.sym] != t->dims[d])
                return pq_error_set(err, PQ_ERR_INVALID,
                                    "input '%s': dimension %d ('%s') is %lld here but %lld in "
                                    "another input",
                                    v->name, d, pq_graph_symbol_name(g, dim.sym),
                                    (long long)t->dims[d], (long long)sym_size[dim.sym]);
            sym_size[dim.sym] = t->dims[d];
        }
    }
#undef PQ_GOT
    return PQ_OK;
}

static enum pq_status pq_session_bind(pq_session *s, const pq_tensor *const *inputs,
                                      uint32_t n_inputs, pq_error *err) {
    pq_graph *g = s->g;
    if (n_inputs != g->n_inputs)
        return pq_error_set(err, PQ_ERR_INVALID, "the model has %u inputs, %u given", g->n_inputs,
                            n_inputs);
    /* the dtypes and shapes the current plan was made for passed every check below then */
    bool all = true;
    for (uint32_t i = 0; i < n_inputs && all; i++)
        all = inputs[i] != NULL;
    if (all && pq_plan_matches(&s->plan, g, inputs)) return PQ_OK;
    int64_t *sym = pq_malloc(sizeof(int64_t) * (g->n_symbols + 1));
    if (!sym) return pq_error_nomem(err, "symbols");
    for (uint32_t i = 0; i <= g->n_symbols; i++)
        sym[i] = -1;
    enum pq_status st = PQ_OK;
    for (uint32_t i = 0; i < n_inputs && st == PQ_OK; i++) {
        if (!inputs[i])
            st = pq_error_set(err, PQ_ERR_INVALID, "input '%s' is missing",
                              g->values[g->inputs[i]].name);
        else
            st = pq_check_input(g, i, inputs[i], sym, err);
    }
    pq_free(sym);
    if (st != PQ_OK) return st;
    if (!pq_plan_matches(&s->plan, g, inputs)) {
        pq_plan_free(&s->plan, g);
        PQ_TRY(pq_plan_build(g, inputs, &s->plan, err));
    }
    return PQ_OK;
}

enum pq_status pq_session_plan(pq_session *s, const int64_t *const *shapes, pq_error *err) {
    pq_graph *g = s->g;
    pq_tensor *shells = pq_calloc(g->n_inputs ? g->n_inputs : 1, sizeof *shells);
    const pq_tensor **ptrs = pq_calloc(g->n_inputs ? g->n_inputs : 1, sizeof *ptrs);
    enum pq_status st = PQ_OK;
    if (!shells || !ptrs) {
        st = pq_error_nomem(err, "plan");
        goto done;
    }
    for (uint32_t i = 0; i < g->n_inputs; i++) {
        const pq_value *v = &g->values[g->inputs[i]];
        shells[i].dtype = v->dtype;
        shells[i].rank = v->shape.rank < 0 ? 0 : v->shape.rank;
        for (int d = 0; d < shells[i].rank; d++)
            shells[i].dims[d] = shapes[i][d];
        ptrs[i] = &shells[i];
    }
    st = pq_session_bind(s, ptrs, g->n_inputs, err);
done:
    pq_free(shells);
    pq_free(ptrs);
    return st;
}

enum pq_status pq_session_run(pq_session *s, const pq_tensor *const *inputs, uint32_t n_inputs,
                              pq_tensor **outputs, uint32_t n_outputs, pq_error *err) {
    pq_graph *g = s->g;
    for (uint32_t o = 0; o < n_outputs; o++)
        outputs[o] = NULL;
    if (n_outputs != g->n_outputs)
        return pq_error_set(err, PQ_ERR_INTERNAL, "the model has %u outputs, %u requested",
                            g->n_outputs, n_outputs);
    PQ_TRY(pq_session_bind(s, inputs, n_inputs, err));
    pq_frame *f = &s->frame;
    if (s->frame_nv != g->n_values) { /* the graph grew since the last run */
        pq_frame_free(f);
        s->frame_nv = 0;
        PQ_TRY(pq_frame_init(f, g, NULL, &s->plan, s->opts.n_threads, err));
        s->frame_nv = g->n_values;
    }
    f->last_use = s->plan.last_use; /* rebuilt with the plan */
    for (uint32_t i = 0; i < n_inputs; i++)
        f->ext[g->inputs[i]] = inputs[i];
    f->observe = s->opts.observe;
    f->observe_ctx = s->opts.observe_ctx;
    f->profile = s->opts.profile;
    pq_onednn_cache *prev = pq_onednn_cache_bind(s->backend_cache);
    enum pq_status st = pq_frame_run(f, err);
    pq_onednn_cache_bind(prev);
    for (uint32_t o = 0; o < n_outputs && st == PQ_OK; o++)
        st = pq_frame_take(f, g->outputs[o], &outputs[o], err);
    if (st != PQ_OK)
        for (uint32_t o = 0; o < n_outputs; o++) {
            pq_tensor_destroy(outputs[o]);
            outputs[o] = NULL;
        }
    pq_frame_reset(f);
    return st;
}
