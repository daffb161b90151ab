/* The static memory plan of a top-level graph for bound input shapes: inference with concrete
 * shapes (kept, so runs skip it), constant folding of everything computable without input data
 * (shape subgraphs), Reshape-like copies turned into views of their input, and liveness-based
 * placement of activations in one arena (greedy, largest first). */
#include <stdlib.h>
#include <string.h>

#include "exec.h"

/* Largest output a node may have to be folded at plan time. */
#define PQ_FOLD_MAX_BYTES ((size_t)64 << 20)

typedef struct {
    enum pq_dtype dtype;
    pq_shape shape;
    const pq_tensor *value;
} pq_plan_info;

void pq_plan_free(pq_plan *plan, const pq_graph *g) {
    if (plan->folded)
        for (uint32_t v = 0; v < g->n_values; v++)
            pq_tensor_destroy(plan->folded[v]);
    pq_free(plan->folded);
    pq_free(plan->bound_dims);
    pq_free(plan->node_skip);
    pq_free(plan->node_alias);
    pq_free(plan->offset);
    pq_free(plan->known);
    pq_free(plan->planned);
    pq_free(plan->last_use);
    pq_free(plan->arena);
    memset(plan, 0, sizeof *plan);
}

bool pq_plan_matches(const pq_plan *plan, const pq_graph *g, const pq_tensor *const *inputs) {
    if (!plan->offset) return false;
    size_t k = 0;
    for (uint32_t i = 0; i < g->n_inputs; i++) {
        if (k + 2 > plan->n_bound || plan->bound_dims[k++] != (int64_t)inputs[i]->dtype)
            return false;
        if (plan->bound_dims[k++] != inputs[i]->rank) return false;
        for (int d = 0; d < inputs[i]->rank; d++)
            if (k >= plan->n_bound || plan->bound_dims[k++] != inputs[i]->dims[d]) return false;
    }
    return k == plan->n_bound;
}

/* Whether node n can be evaluated at plan time from the known info. */
static bool pq_plan_foldable(const pq_graph *g, const pq_node *n, const pq_plan_info *info,
                             const pq_type_info *tout) {
    const pq_op_info *oi = pq_op_get(n->op);
    if (oi->flags & (PQ_OPF_SUBGRAPH | PQ_OPF_DYNAMIC)) return false;
    bool shape_only = n->op == PQ_OP_SHAPE || n->op == PQ_OP_SIZE;
    for (uint32_t k = 0; k < n->n_inputs; k++) {
        uint32_t v = n->inputs[k];
        if (v == PQ_NONE) continue;
        if (shape_only) {
            if (!pq_shape_is_static(&info[v].shape, NULL)) return false;
        } else if (!info[v].value) {
            return false;
        }
    }
    if (n->n_inputs == 0 && n->op != PQ_OP_CONSTANT) return false;
    for (uint32_t o = 0; o < n->n_outputs; o++) {
        if (n->outputs[o] == PQ_NONE) continue;
        int64_t dims[PQ_MAX_RANK], numel;
        if (!pq_shape_is_static(&tout[o].shape, dims)) return false;
        if (pq_shape_numel(tout[o].shape.rank, dims, &numel, NULL) != PQ_OK) return false;
        if ((size_t)numel * pq_dtype_size(tout[o].dtype) > PQ_FOLD_MAX_BYTES) return false;
        if (g->values[n->outputs[o]].flags & PQ_VALUE_OUTPUT) return false;
    }
    return true;
}

/* Runs node n now with known inputs, storing its outputs as folded constants. */
static enum pq_status pq_plan_fold(pq_graph *g, const pq_node *n, pq_plan_info *info,
                                   const pq_type_info *tout, pq_plan *plan, pq_error *err) {
    const pq_tensor *in[64];
    pq_tensor shells[64];
    pq_tensor *out[64];
    if (n->n_inputs > 64 || n->n_outputs > 64) return PQ_ERR_UNSUPPORTED;
    for (uint32_t k = 0; k < n->n_inputs; k++) {
        uint32_t v = n->inputs[k];
        in[k] = NULL;
        if (v == PQ_NONE) continue;
        if (info[v].value) {
            in[k] = info[v].value;
        } else { /* Shape/Size: dims only */
            memset(&shells[k], 0, sizeof shells[k]);
            shells[k].dtype = info[v].dtype;
            shells[k].rank = info[v].shape.rank;
            for (int d = 0; d < info[v].shape.rank; d++)
                shells[k].dims[d] = info[v].shape.dims[d].size;
            in[k] = &shells[k];
        }
    }
    enum pq_status st = PQ_OK;
    for (uint32_t o = 0; o < n->n_outputs; o++) {
        out[o] = NULL;
        if (n->outputs[o] == PQ_NONE) continue;
        int64_t dims[PQ_MAX_RANK];
        pq_shape_is_static(&tout[o].shape, dims);
        out[o] = pq_tensor_create(tout[o].dtype, tout[o].shape.rank, dims, err);
        if (!out[o]) {
            st = err->status;
            goto fail;
        }
    }
    pq_kernel_args args = {g, n, in, n->n_inputs, out, n->n_outputs, NULL, 1, err};
    st = pq_ref_run(&args);
    if (st != PQ_OK) goto fail;
    for (uint32_t o = 0; o < n->n_outputs; o++) {
        uint32_t v = n->outputs[o];
        if (v == PQ_NONE) continue;
        plan->folded[v] = out[o];
        info[v].value = out[o];
    }
    return PQ_OK;
fail:
    for (uint32_t o = 0; o < n->n_outputs; o++)
        pq_tensor_destroy(out[o]);
    return st;
}

typedef struct {
    uint32_t v;
    size_t size;
    uint32_t start, end;
} pq_live;

static int pq_live_cmp(const void *a, const void *b) {
    const pq_live *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return x->v < y->v ? -1 : (x->v > y->v);
}

/* Greedy placement: largest first, lowest offset not overlapping a live-overlapping block. */
static enum pq_status pq_plan_place(pq_live *lv, size_t n, int64_t *offset, size_t *peak,
                                    pq_error *err) {
    qsort(lv, n, sizeof *lv, pq_live_cmp);
    size_t *placed_off = pq_malloc(sizeof(size_t) * (n ? n : 1));
    if (!placed_off) return pq_error_nomem(err, "memory plan");
    size_t *cand = pq_malloc(sizeof(size_t) * (n + 1));
    if (!cand) {
        pq_free(placed_off);
        return pq_error_nomem(err, "memory plan");
    }
    size_t top = 0;
    for (size_t i = 0; i < n; i++) {
        size_t sz = (lv[i].size + 63) & ~(size_t)63;
        /* candidate offsets: 0 and the end of every conflicting block */
        size_t nc = 0;
        cand[nc++] = 0;
        for (size_t j = 0; j < i; j++)
            if (lv[j].start <= lv[i].end && lv[i].start <= lv[j].end)
                cand[nc++] = placed_off[j] + ((lv[j].size + 63) & ~(size_t)63);
        size_t best = SIZE_MAX;
        for (size_t c = 0; c < nc; c++) {
            size_t off = cand[c];
            if (off >= best) continue;
            bool ok = true;
            for (size_t j = 0; j < i && ok; j++) {
                if (!(lv[j].start <= lv[i].end && lv[i].start <= lv[j].end)) continue;
                size_t js = placed_off[j], je = js + ((lv[j].size + 63) & ~(size_t)63);
                if (off < je && js < off + sz) ok = false;
            }
            if (ok) best = off;
        }
        placed_off[i] = best;
        offset[lv[i].v] = (int64_t)best;
        if (best + sz > top) top = best + sz;
    }
    *peak = top;
    pq_free(placed_off);
    pq_free(cand);
    return PQ_OK;
}

/* Whether node n (outputs inferred, output 0 of nbytes not a graph output) can run as a view of
 * its input 0: a copy op whose input keeps its bytes for the whole run (an arena block, whose
 * lifetime the caller then extends, or a bound graph input) with the same dtype and size. */
static bool pq_plan_aliasable(const pq_graph *g, const pq_node *n, const pq_plan_info *info,
                              const pq_plan *plan, const uint32_t *root, size_t nbytes) {
    switch (n->op) {
    case PQ_OP_RESHAPE:
    case PQ_OP_FLATTEN:
    case PQ_OP_SQUEEZE:
    case PQ_OP_UNSQUEEZE:
    case PQ_OP_IDENTITY:
        break;
    default:
        return false;
    }
    if (n->n_inputs < 1 || n->n_outputs != 1) return false;
    uint32_t x = n->inputs[0], y = n->outputs[0];
    if (x == PQ_NONE || y == PQ_NONE || info[x].dtype != info[y].dtype) return false;
    if (root[x] == PQ_NONE) {
        bool bound = false; /* a graph input (not a constant, captured or computed value) */
        for (uint32_t i = 0; i < g->n_inputs && !bound; i++)
            bound = g->inputs[i] == x;
        if (!bound || g->values[x].constant || g->values[x].outer != PQ_NONE) return false;
        int64_t dims[PQ_MAX_RANK], numel;
        if (!pq_shape_is_static(&info[x].shape, dims) ||
            pq_shape_numel(info[x].shape.rank, dims, &numel, NULL) != PQ_OK)
            return false;
        return (size_t)numel * pq_dtype_size(info[x].dtype) == nbytes;
    }
    return plan->planned[x].nbytes == nbytes;
}

enum pq_status pq_plan_build(pq_graph *g, const pq_tensor *const *inputs, pq_plan *plan,
                             pq_error *err) {
    enum pq_status st = PQ_OK;
    memset(plan, 0, sizeof *plan);
    size_t nv = g->n_values ? g->n_values : 1;
    pq_plan_info *info = pq_calloc(nv, sizeof *info);
    pq_type_info *tin = NULL, *tout = NULL;
    pq_live *lv = NULL;
    uint32_t *root = NULL; /* per value: the value whose arena block holds it (PQ_NONE: none) */
    size_t nb = 0;
    for (uint32_t i = 0; i < g->n_inputs; i++)
        nb += 2 + (size_t)inputs[i]->rank;
    plan->bound_dims = pq_malloc(sizeof(int64_t) * (nb ? nb : 1));
    plan->folded = pq_calloc(nv, sizeof *plan->folded);
    plan->node_skip = pq_calloc(g->n_nodes ? g->n_nodes : 1, sizeof *plan->node_skip);
    plan->node_alias = pq_calloc(g->n_nodes ? g->n_nodes : 1, sizeof *plan->node_alias);
    plan->offset = pq_malloc(sizeof(int64_t) * nv);
    plan->known = pq_calloc(nv, sizeof *plan->known);
    plan->planned = pq_calloc(nv, sizeof *plan->planned);
    plan->last_use = pq_malloc(sizeof(uint32_t) * nv);
    uint32_t max_io = 1;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].n_inputs > max_io) max_io = g->nodes[i].n_inputs;
        if (g->nodes[i].n_outputs > max_io) max_io = g->nodes[i].n_outputs;
    }
    tin = pq_calloc(max_io, sizeof *tin);
    tout = pq_calloc(max_io, sizeof *tout);
    lv = pq_calloc(nv, sizeof *lv);
    root = pq_malloc(sizeof *root * nv);
    if (!info || !plan->bound_dims || !plan->folded || !plan->node_skip || !plan->node_alias ||
        !plan->offset || !plan->known || !plan->planned || !plan->last_use || !tin || !tout ||
        !lv || !root) {
        st = pq_error_nomem(err, "memory plan");
        goto done;
    }
    plan->n_bound = nb;
    size_t k = 0;
    for (uint32_t i = 0; i < g->n_inputs; i++) {
        plan->bound_dims[k++] = (int64_t)inputs[i]->dtype;
        plan->bound_dims[k++] = inputs[i]->rank;
        for (int d = 0; d < inputs[i]->rank; d++)
            plan->bound_dims[k++] = inputs[i]->dims[d];
    }
    for (uint32_t v = 0; v < g->n_values; v++) {
        plan->offset[v] = -1;
        root[v] = PQ_NONE;
        info[v].dtype = g->values[v].dtype;
        info[v].shape = g->values[v].constant ? g->values[v].shape : pq_shape_unknown();
        info[v].value = g->values[v].constant;
    }
    for (uint32_t i = 0; i < g->n_inputs; i++) {
        uint32_t v = g->inputs[i];
        info[v].dtype = inputs[i]->dtype;
        info[v].shape = pq_shape_from_dims(inputs[i]->rank, inputs[i]->dims);
    }
    PQ_TRY_GOTO(st, pq_compute_last_use(g, plan->last_use, err), done);
    size_t n_live = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const pq_node *n = &g->nodes[i];
        for (uint32_t j = 0; j < n->n_inputs; j++) {
            memset(&tin[j], 0, sizeof tin[j]);
            uint32_t v = n->inputs[j];
            if (v == PQ_NONE) {
                tin[j].shape = pq_shape_unknown();
                continue;
            }
            tin[j].present = true;
            tin[j].dtype = info[v].dtype;
            tin[j].shape = info[v].shape;
            tin[j].value = info[v].value;
        }
        for (uint32_t o = 0; o < n->n_outputs; o++) {
            memset(&tout[o], 0, sizeof tout[o]);
            tout[o].present = n->outputs[o] != PQ_NONE;
            tout[o].shape = pq_shape_unknown();
        }
        pq_infer_fn fn = pq_infer_table[n->op];
        if (!fn) {
            st = pq_error_set(err, PQ_ERR_UNSUPPORTED, "node '%s' (%s): no shape inference rule",
                              n->name, pq_op_name(n->op));
            goto done;
        }
        pq_infer_ctx ctx = {g, n, tin, n->n_inputs, tout, n->n_outputs, err};
        st = fn(&ctx);
        if (st != PQ_OK) {
            pq_error_prefix(err, "node '%s' (%s): ", n->name, pq_op_name(n->op));
            goto done;
        }
        for (uint32_t o = 0; o < n->n_outputs; o++) {
            uint32_t v = n->outputs[o];
            if (v == PQ_NONE) continue;
            info[v].dtype = tout[o].dtype;
            info[v].shape = tout[o].shape;
        }
        if (pq_plan_foldable(g, n, info, tout)) {
            st = pq_plan_fold(g, n, info, tout, plan, err);
            if (st == PQ_OK) {
                plan->node_skip[i] = true;
                continue;
            }
            if (st != PQ_ERR_UNSUPPORTED) goto done;
            st = PQ_OK; /* cannot fold: run it at run time */
        }
        if (pq_op_get(n->op)->flags & PQ_OPF_DYNAMIC) continue;
        for (uint32_t o = 0; o < n->n_outputs; o++) {
            uint32_t v = n->outputs[o];
            int64_t dims[PQ_MAX_RANK], numel;
            if (v == PQ_NONE) continue;
            if (info[v].dtype == PQ_DTYPE_UNDEFINED || !pq_shape_is_static(&info[v].shape, dims))
                continue;
            if (pq_shape_numel(info[v].shape.rank, dims, &numel, err) != PQ_OK) {
                st = PQ_ERR_INVALID;
                goto done;
            }
            pq_tensor *pt = &plan->planned[v];
            pt->dtype = info[v].dtype;
            pt->rank = info[v].shape.rank;
            memcpy(pt->dims, dims, sizeof(int64_t) * (size_t)pt->rank);
            pt->nbytes = (size_t)numel * pq_dtype_size(pt->dtype);
            plan->known[v] = true;
            if (g->values[v].flags & PQ_VALUE_OUTPUT) continue; /* handed to the caller */
            uint32_t end = plan->last_use[v] == PQ_NONE ? i : plan->last_use[v];
            if (o == 0 && pq_plan_aliasable(g, n, info, plan, root, pt->nbytes)) {
                plan->node_alias[i] = true;
                uint32_t r = root[n->inputs[0]];
                root[v] = r;
                if (r != PQ_NONE) { /* the view keeps its root's block alive */
                    pq_live *l = &lv[plan->offset[r]];
                    if (l->end < end) l->end = end;
                }
                continue;
            }
            root[v] = v;
            plan->offset[v] = (int64_t)n_live; /* index in lv until placed below */
            lv[n_live++] = (pq_live){v, pt->nbytes, i, end};
        }
    }
    PQ_TRY_GOTO(st, pq_plan_place(lv, n_live, plan->offset, &plan->peak, err), done);
    for (uint32_t v = 0; v < g->n_values; v++) /* views share their root's bytes */
        if (root[v] != PQ_NONE) plan->offset[v] = plan->offset[root[v]];
    plan->arena = pq_malloc_aligned(plan->peak ? plan->peak : 64);
    if (!plan->arena) st = pq_error_nomem(err, "activation arena");
done:
    pq_free(info);
    pq_free(tin);
    pq_free(tout);
    pq_free(lv);
    pq_free(root);
    if (st != PQ_OK) pq_plan_free(plan, g);
    return st;
}
