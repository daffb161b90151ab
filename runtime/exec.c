/* Executing graphs node by node with the reference kernels: value slots, planned or dynamic
 * output allocation (shapes from inference on the actual inputs), freeing values after their last
 * use, and running If/Loop bodies in nested frames. */
#include <string.h>
#include <time.h>

#include "backends/fast.h"
#include "backends/onednn/onednn.h"
#include "exec.h"

enum pq_status pq_compute_last_use(const pq_graph *g, uint32_t *last_use, pq_error *err) {
    (void)err;
    for (uint32_t v = 0; v < g->n_values; v++)
        last_use[v] = PQ_NONE;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const pq_node *n = &g->nodes[i];
        for (uint32_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] != PQ_NONE) last_use[n->inputs[k]] = i;
        for (uint32_t a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].type != PQ_ATTR_GRAPH) continue;
            const pq_graph *sub = n->attrs[a].u.graph;
            for (uint32_t v = 0; v < sub->n_values; v++)
                if (sub->values[v].outer != PQ_NONE && sub->values[v].outer < g->n_values)
                    last_use[sub->values[v].outer] = i;
        }
    }
    for (uint32_t o = 0; o < g->n_outputs; o++)
        last_use[g->outputs[o]] = g->n_nodes;
    return PQ_OK;
}

enum pq_status pq_frame_init(pq_frame *f, pq_graph *g, const pq_frame *parent, const pq_plan *plan,
                             int n_threads, pq_error *err) {
    memset(f, 0, sizeof *f);
    f->g = g;
    f->parent = parent;
    f->plan = plan;
    f->n_threads = n_threads;
    size_t nv = g->n_values ? g->n_values : 1;
    f->ext = pq_calloc(nv, sizeof *f->ext);
    f->slots = pq_calloc(nv, sizeof *f->slots);
    f->has = pq_calloc(nv, sizeof *f->has);
    if (!f->ext || !f->slots || !f->has) goto nomem;
    if (plan) {
        f->last_use = plan->last_use;
    } else {
        f->last_use = pq_malloc(nv * sizeof *f->last_use);
        if (!f->last_use) goto nomem;
        PQ_TRY(pq_compute_last_use(g, f->last_use, err));
    }
    return PQ_OK;
nomem:
    pq_frame_free(f);
    return pq_error_nomem(err, "execution frame");
}

static inline void pq_frame_release(pq_frame *f, uint32_t v) {
    if (!f->has[v]) return;
    if (f->slots[v].owns_data) pq_free(f->slots[v].data);
    f->slots[v].data = NULL;
    f->slots[v].owns_data = false;
    f->has[v] = false;
}

void pq_frame_reset(pq_frame *f) {
    for (uint32_t v = 0; v < f->g->n_values; v++) {
        f->ext[v] = NULL;
        if (f->has[v]) pq_frame_release(f, v);
    }
}

void pq_frame_free(pq_frame *f) {
    if (f->has)
        for (uint32_t v = 0; v < f->g->n_values; v++)
            pq_frame_release(f, v);
    pq_free(f->ext);
    pq_free(f->slots);
    pq_free(f->has);
    if (!f->plan) pq_free(f->last_use);
    memset(f, 0, sizeof *f);
}

const pq_tensor *pq_frame_get(const pq_frame *f, uint32_t v) {
    const pq_value *val = &f->g->values[v];
    if (val->constant) return val->constant;
    if (f->plan && f->plan->folded[v]) return f->plan->folded[v];
    if (val->outer != PQ_NONE) return f->parent ? pq_frame_get(f->parent, val->outer) : NULL;
    if (f->ext[v]) return f->ext[v];
    if (f->has[v]) return &f->slots[v];
    return NULL;
}

enum pq_status pq_frame_take(pq_frame *f, uint32_t v, pq_tensor **out, pq_error *err) {
    *out = NULL;
    if (f->has[v] && f->slots[v].owns_data) {
        pq_tensor *t = pq_malloc(sizeof *t);
        if (!t) return pq_error_nomem(err, "output tensor");
        *t = f->slots[v];
        f->slots[v].owns_data = false;
        f->slots[v].data = NULL;
        f->has[v] = false;
        *out = t;
        return PQ_OK;
    }
    const pq_tensor *src = pq_frame_get(f, v);
    if (!src)
        return pq_error_set(err, PQ_ERR_INTERNAL, "output '%s' was never computed",
                            f->g->values[v].name);
    *out = pq_tensor_clone(src, err);
    return *out ? PQ_OK : err->status;
}

/* pq_frame_get for a node's input, computed values first (a computed value is never also a
 * constant, folded, captured or bound one). */
static inline const pq_tensor *pq_frame_input(const pq_frame *f, uint32_t v) {
    return f->has[v] ? &f->slots[v] : pq_frame_get(f, v);
}

/* Runs a subgraph body in a child frame of the frame given as ctx. */
static enum pq_status pq_run_subgraph(void *ctx, const pq_graph *body,
                                      const pq_tensor *const *inputs, uint32_t n_inputs,
                                      pq_tensor **outputs, uint32_t n_outputs, pq_error *err) {
    const pq_frame *parent = ctx;
    if (n_inputs != body->n_inputs || n_outputs != body->n_outputs)
        return pq_error_set(
            err, PQ_ERR_INVALID, "subgraph '%s' takes %u inputs and %u outputs, given %u and %u",
            body->name ? body->name : "", body->n_inputs, body->n_outputs, n_inputs, n_outputs);
    pq_frame child;
    PQ_TRY(pq_frame_init(&child, (pq_graph *)body, parent, NULL, parent->n_threads, err));
    for (uint32_t i = 0; i < n_inputs; i++)
        child.ext[body->inputs[i]] = inputs[i];
    enum pq_status st = pq_frame_run(&child, err);
    for (uint32_t o = 0; o < n_outputs; o++)
        outputs[o] = NULL;
    for (uint32_t o = 0; o < n_outputs && st == PQ_OK; o++)
        st = pq_frame_take(&child, body->outputs[o], &outputs[o], err);
    if (st != PQ_OK)
        for (uint32_t o = 0; o < n_outputs; o++) {
            pq_tensor_destroy(outputs[o]);
            outputs[o] = NULL;
        }
    pq_frame_free(&child);
    return st;
}

/* Infers output shapes of node n from the actual input tensors. */
static enum pq_status pq_infer_runtime(pq_graph *g, const pq_node *n, const pq_tensor **in,
                                       pq_type_info *tin, pq_type_info *tout, pq_error *err) {
    for (uint32_t i = 0; i < n->n_inputs; i++) {
        memset(&tin[i], 0, sizeof tin[i]);
        if (!in[i]) {
            tin[i].shape = pq_shape_unknown();
            continue;
        }
        tin[i].present = true;
        tin[i].dtype = in[i]->dtype;
        tin[i].shape = pq_shape_from_dims(in[i]->rank, in[i]->dims);
        tin[i].value = in[i];
    }
    for (uint32_t o = 0; o < n->n_outputs; o++) {
        memset(&tout[o], 0, sizeof tout[o]);
        tout[o].present = n->outputs[o] != PQ_NONE;
        tout[o].shape = pq_shape_unknown();
    }
    pq_infer_fn fn = pq_infer_table[n->op];
    if (!fn)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED, "no shape inference rule for %s",
                            pq_op_name(n->op));
    pq_infer_ctx ctx = {g, n, tin, n->n_inputs, tout, n->n_outputs, err};
    return fn(&ctx);
}

/* Gives node n's outputs (out[], slots of the frame) shapes and memory when the plan does not
 * know them: inference on the actual inputs, then an owned buffer when the shape is static (a
 * dynamic op allocates its own). Kept out of line: a planned run never comes here. */
static enum pq_status pq_frame_infer_outputs(pq_frame *f, const pq_node *n, const pq_tensor **in,
                                             pq_tensor **out, pq_error *err) {
    pq_type_info tin_small[16], tout_small[16];
    bool big = n->n_inputs > 16 || n->n_outputs > 16;
    pq_type_info *tin = big ? pq_calloc(n->n_inputs + 1, sizeof *tin) : tin_small;
    pq_type_info *tout = big ? pq_calloc(n->n_outputs + 1, sizeof *tout) : tout_small;
    enum pq_status st = PQ_OK;
    if (!tin || !tout) {
        st = pq_error_nomem(err, "node arguments");
        goto done;
    }
    st = pq_infer_runtime(f->g, n, in, tin, tout, err);
    if (st != PQ_OK) {
        pq_error_prefix(err, "node '%s' (%s): ", n->name, pq_op_name(n->op));
        goto done;
    }
    for (uint32_t o = 0; o < n->n_outputs; o++) {
        uint32_t v = n->outputs[o];
        if (v == PQ_NONE || (f->plan && f->plan->known[v])) continue;
        pq_tensor *t = out[o];
        int64_t dims[PQ_MAX_RANK];
        t->dtype = tout[o].dtype;
        if (pq_shape_is_static(&tout[o].shape, dims) &&
            !(pq_op_get(n->op)->flags & PQ_OPF_DYNAMIC) && tout[o].dtype != PQ_DTYPE_UNDEFINED) {
            st = pq_tensor_alloc_data(t, tout[o].dtype, tout[o].shape.rank, dims, err);
            if (st != PQ_OK) goto done;
        }
    }
done:
    if (big) {
        pq_free(tin);
        pq_free(tout);
    }
    return st;
}

/* Executes node index i of the frame's graph. */
static enum pq_status pq_frame_exec_node(pq_frame *f, uint32_t i, pq_error *err) {
    pq_graph *g = f->g;
    const pq_node *n = &g->nodes[i];
    const pq_plan *plan = f->plan;
    enum pq_status st = PQ_OK;
    const pq_tensor *in_small[16];
    pq_tensor *out_small[16];
    bool big = n->n_inputs > 16 || n->n_outputs > 16;
    const pq_tensor **in = big ? pq_calloc(n->n_inputs + 1, sizeof *in) : in_small;
    pq_tensor **out = big ? pq_calloc(n->n_outputs + 1, sizeof *out) : out_small;
    if (!in || !out) {
        st = pq_error_nomem(err, "node arguments");
        goto done;
    }
    for (uint32_t k = 0; k < n->n_inputs; k++) {
        in[k] = NULL;
        if (n->inputs[k] == PQ_NONE) continue;
        in[k] = pq_frame_input(f, n->inputs[k]);
        if (!in[k]) {
            st = pq_error_set(err, PQ_ERR_INTERNAL, "node '%s' (%s): input '%s' not computed",
                              n->name, pq_op_name(n->op), g->values[n->inputs[k]].name);
            goto done;
        }
    }
    if (f->observe) {
        st = f->observe(f->observe_ctx, g, i, in, n->n_inputs, err);
        if (st != PQ_OK) goto done;
    }
    /* outputs: the plan's shapes (arena block, view of input 0, or an owned buffer of the known
     * shape for graph outputs); inference only for what the plan could not know */
    bool alias = plan && plan->node_alias[i];
    bool need_infer = false;
    for (uint32_t o = 0; o < n->n_outputs; o++) {
        uint32_t v = n->outputs[o];
        out[o] = NULL;
        if (v == PQ_NONE) continue;
        pq_frame_release(f, v);
        pq_tensor *t = &f->slots[v];
        if (plan && plan->known[v]) {
            *t = plan->planned[v];
            t->owns_data = false;
            if (alias && o == 0) {
                t->data = (void *)in[0]->data;
            } else if (plan->offset[v] >= 0) {
                t->data = plan->arena + plan->offset[v];
            } else {
                t->data = NULL;
                f->has[v] = true; /* released (freed) with the slot if the allocation fails */
                st = pq_tensor_alloc_data(t, t->dtype, t->rank, t->dims, err);
                if (st != PQ_OK) goto done;
            }
        } else {
            memset(t, 0, sizeof *t);
            need_infer = true;
        }
        f->has[v] = true;
        out[o] = t;
    }
    if (need_infer) {
        st = pq_frame_infer_outputs(f, n, in, out, err);
        if (st != PQ_OK) goto done;
    }
    struct timespec t0, t1;
    if (f->profile) clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!alias) {
        pq_subgraph_runner runner = {f, pq_run_subgraph};
        pq_kernel_args args = {g,  n, in, n->n_inputs, out, n->n_outputs, &runner, f->n_threads,
                               err};
        st = pq_kernel_run(&args);
    }
    if (f->profile) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        f->profile->ms[n->op] += ms;
        f->profile->calls[n->op]++;
        if (f->profile->node_ms && i < f->profile->n_nodes) {
            f->profile->node_ms[i] += ms;
            f->profile->node_calls[i]++;
        }
    }
    if (st != PQ_OK) goto done;
    for (uint32_t o = 0; o < n->n_outputs; o++) {
        if (!out[o]) continue;
        if (!out[o]->data && pq_tensor_numel(out[o]) != 0) {
            st = pq_error_set(err, PQ_ERR_INTERNAL, "node '%s' (%s): output %u not produced",
                              n->name, pq_op_name(n->op), o);
            goto done;
        }
    }
    /* free values whose last reader was this node (graph outputs have last_use n_nodes) */
    for (uint32_t k = 0; k < n->n_inputs; k++) {
        uint32_t v = n->inputs[k];
        if (v != PQ_NONE && f->last_use[v] == i) pq_frame_release(f, v);
    }
    for (uint32_t o = 0; o < n->n_outputs; o++) {
        uint32_t v = n->outputs[o];
        if (v != PQ_NONE && f->last_use[v] == PQ_NONE) pq_frame_release(f, v);
    }
done:
    if (big) {
        pq_free(in);
        pq_free(out);
    }
    return st;
}

enum pq_status pq_frame_run(pq_frame *f, pq_error *err) {
    /* top level: with no observer only kernels read activations, so oneDNN may keep a value
     * blocked-only between convolutions (see pq_onednn_run_begin) */
    if (!f->parent) pq_onednn_run_begin(f->observe == NULL);
    for (uint32_t i = 0; i < f->g->n_nodes; i++) {
        if (f->plan && f->plan->node_skip[i]) continue;
        PQ_TRY(pq_frame_exec_node(f, i, err));
    }
    return PQ_OK;
}
