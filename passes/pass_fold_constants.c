/* fold-constants: evaluates every node computable without input data (all inputs constant, or
 * Shape/Size of a value with a static shape, or Gather of known dims of a Shape) with the
 * reference kernel and replaces its outputs by constants, to a fixpoint; shape chains vanish. */
#include <stdio.h>
#include <string.h>

#include "backends/ref/ref.h"
#include "canon.h"

#define PQ_FOLD_MAX_IO 64

typedef struct {
    int64_t max_bytes;
} pq_fold_opts;

/* Type info of node nid's inputs for its inference rule: constants as values, Shape/Size
 * inputs as shapes. */
static void pq_fold_tin(const pq_graph *g, const pq_node *n, pq_type_info *tin) {
    for (uint32_t k = 0; k < n->n_inputs; k++) {
        memset(&tin[k], 0, sizeof tin[k]);
        uint32_t v = n->inputs[k];
        if (v == PQ_NONE) {
            tin[k].shape = pq_shape_unknown();
            continue;
        }
        tin[k].present = true;
        tin[k].dtype = g->values[v].dtype;
        tin[k].shape = g->values[v].shape;
        tin[k].value = pq_canon_constant(g, v);
    }
}

/* Output types of node n computed from its known inputs; false when the rule fails or an output
 * is not static, of unknown dtype or larger than max_bytes. */
static bool pq_fold_types(const pq_graph *g, const pq_node *n, int64_t max_bytes,
                          pq_type_info *tout) {
    pq_type_info tin[PQ_FOLD_MAX_IO];
    pq_error err;
    pq_fold_tin(g, n, tin);
    for (uint32_t o = 0; o < n->n_outputs; o++) {
        memset(&tout[o], 0, sizeof tout[o]);
        tout[o].present = n->outputs[o] != PQ_NONE;
        tout[o].shape = pq_shape_unknown();
    }
    pq_infer_fn fn = pq_infer_table[n->op];
    if (!fn) return false;
    pq_infer_ctx ctx = {(pq_graph *)g, n, tin, n->n_inputs, tout, n->n_outputs, &err};
    if (fn(&ctx) != PQ_OK) return false;
    for (uint32_t o = 0; o < n->n_outputs; o++) {
        if (!tout[o].present) continue;
        int64_t dims[PQ_MAX_RANK], numel;
        if (tout[o].dtype == PQ_DTYPE_UNDEFINED || !pq_shape_is_static(&tout[o].shape, dims))
            return false;
        if (pq_shape_numel(tout[o].shape.rank, dims, &numel, NULL) != PQ_OK) return false;
        if ((double)numel * (double)pq_dtype_size(tout[o].dtype) > (double)max_bytes) return false;
    }
    return true;
}

/* fold: every present input constant (Shape/Size: a static input shape). */
static bool pq_fold_match(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m) {
    const pq_graph *g = rc->g;
    const pq_node *n = &g->nodes[nid];
    const pq_fold_opts *fo = rc->user;
    (void)m;
    if (pq_op_get(n->op)->flags & (PQ_OPF_SUBGRAPH | PQ_OPF_DYNAMIC | PQ_OPF_INTERNAL))
        return false;
    if (n->n_inputs > PQ_FOLD_MAX_IO || n->n_outputs > PQ_FOLD_MAX_IO) return false;
    if (n->n_inputs == 0 && n->op != PQ_OP_CONSTANT) return false;
    if (pq_canon_has_activation(n)) return false; /* the reference kernels run it, but stay safe */
    bool shape_only = n->op == PQ_OP_SHAPE || n->op == PQ_OP_SIZE;
    for (uint32_t k = 0; k < n->n_inputs; k++) {
        uint32_t v = n->inputs[k];
        if (v == PQ_NONE) continue;
        if (shape_only) {
            if (!pq_shape_is_static(&g->values[v].shape, NULL)) return false;
        } else if (!pq_canon_constant(g, v)) {
            return false;
        }
    }
    pq_type_info tout[PQ_FOLD_MAX_IO];
    return pq_fold_types(g, n, fo->max_bytes, tout);
}

/* Replaces output value v by constant t (owned), named like v. */
static enum pq_status pq_fold_replace(pq_graph *g, uint32_t v, pq_tensor *t, pq_error *err) {
    uint32_t c;
    char hint[256];
    snprintf(hint, sizeof hint, "%s", g->values[v].name);
    PQ_TRY(pq_graph_add_constant(g, hint, t, &c, err));
    return pq_graph_replace_all_uses(g, v, c, err);
}

static enum pq_status pq_fold_rewrite(pq_rewrite_ctx *rc, uint32_t nid, const pq_match *m,
                                      pq_error *err) {
    pq_graph *g = rc->g;
    const pq_fold_opts *fo = rc->user;
    const pq_node *n = &g->nodes[nid];
    (void)m;
    /* Identity of a constant: read the constant itself (no copy) unless it names a graph output */
    if (n->op == PQ_OP_IDENTITY && rc->uses.n_graph_outputs[n->outputs[0]] == 0)
        return pq_graph_replace_all_uses(g, n->outputs[0], n->inputs[0], err);
    enum pq_status st = PQ_OK;
    pq_type_info tout[PQ_FOLD_MAX_IO];
    const pq_tensor *in[PQ_FOLD_MAX_IO];
    pq_tensor shells[PQ_FOLD_MAX_IO];
    pq_tensor *out[PQ_FOLD_MAX_IO] = {0};
    uint32_t n_out = n->n_outputs, outs[PQ_FOLD_MAX_IO];
    if (!pq_fold_types(g, n, fo->max_bytes, tout))
        return pq_error_set(err, PQ_ERR_INTERNAL, "output types changed between match and fold");
    for (uint32_t k = 0; k < n->n_inputs; k++) {
        uint32_t v = n->inputs[k];
        in[k] = NULL;
        if (v == PQ_NONE) continue;
        if (pq_canon_constant(g, v)) {
            in[k] = pq_canon_constant(g, v);
        } else { /* Shape/Size: dims only */
            memset(&shells[k], 0, sizeof shells[k]);
            shells[k].dtype = g->values[v].dtype;
            shells[k].rank = g->values[v].shape.rank;
            for (int d = 0; d < shells[k].rank; d++)
                shells[k].dims[d] = g->values[v].shape.dims[d].size;
            in[k] = &shells[k];
        }
    }
    for (uint32_t o = 0; o < n_out; o++) {
        outs[o] = n->outputs[o];
        if (outs[o] == PQ_NONE) continue;
        int64_t dims[PQ_MAX_RANK];
        pq_shape_is_static(&tout[o].shape, dims);
        out[o] = pq_tensor_create(tout[o].dtype, tout[o].shape.rank, dims, err);
        if (!out[o]) {
            st = err->status;
            goto cleanup;
        }
    }
    pq_kernel_args args = {g, n, in, n->n_inputs, out, n_out, NULL, 1, err};
    PQ_TRY_GOTO(st, pq_ref_run(&args), cleanup);
    for (uint32_t o = 0; o < n_out; o++) {
        if (!out[o]) continue;
        pq_tensor *t = out[o];
        out[o] = NULL;
        if (pq_uses_count(&rc->uses, outs[o]) == 0 && rc->uses.n_graph_outputs[outs[o]] == 0) {
            pq_tensor_destroy(t);
            continue;
        }
        PQ_TRY_GOTO(st, pq_fold_replace(g, outs[o], t, err), cleanup);
    }
cleanup:
    for (uint32_t o = 0; o < n_out; o++)
        pq_tensor_destroy(out[o]);
    return st;
}

/* Gather(Shape(x), indices) when the gathered dims of x are known (x's shape may be partly
 * symbolic): an i64 constant. Shape's start/end attributes (opset 15) are honoured. */
static bool pq_fold_shape_gather_dims(const pq_graph *g, uint32_t nid, int64_t *out, int *n_out) {
    const pq_node *n = &g->nodes[nid];
    uint32_t sv = n->inputs[0];
    uint32_t sid = pq_value_producer(g, sv);
    if (sid == PQ_NONE || g->nodes[sid].op != PQ_OP_SHAPE) return false;
    if (pq_node_attr_int(n, "axis", 0) != 0) return false;
    const pq_shape *xs = &g->values[g->nodes[sid].inputs[0]].shape;
    int r = xs->rank;
    if (r < 0) return false;
    int64_t start = pq_node_attr_int(&g->nodes[sid], "start", 0);
    int64_t end = pq_node_attr_int(&g->nodes[sid], "end", r);
    if (start < 0) start += r;
    if (end < 0) end += r;
    if (start < 0) start = 0;
    if (end > r) end = r;
    int64_t len = end > start ? end - start : 0;
    const pq_tensor *it = pq_canon_constant(g, n->inputs[1]);
    if (!it || !pq_dtype_is_integer(it->dtype) || it->rank > 1) return false;
    int64_t ni = pq_tensor_numel(it);
    if (ni > PQ_MAX_RANK) return false;
    for (int64_t i = 0; i < ni; i++) {
        int64_t k = pq_dtype_load_i64(it->dtype, it->data, (size_t)i);
        if (k < 0) k += len;
        if (k < 0 || k >= len) return false;
        pq_dim d = xs->dims[start + k];
        if (!pq_dim_known(d)) return false;
        out[i] = d.size;
    }
    *n_out = (int)ni;
    return true;
}

static bool pq_fold_shape_gather_match(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m) {
    int64_t dims[PQ_MAX_RANK];
    int n;
    (void)m;
    return pq_fold_shape_gather_dims(rc->g, nid, dims, &n);
}

static enum pq_status pq_fold_shape_gather_rewrite(pq_rewrite_ctx *rc, uint32_t nid,
                                                   const pq_match *m, pq_error *err) {
    pq_graph *g = rc->g;
    int64_t vals[PQ_MAX_RANK];
    int n;
    (void)m;
    if (!pq_fold_shape_gather_dims(g, nid, vals, &n))
        return pq_error_set(err, PQ_ERR_INTERNAL, "shape gather no longer matches");
    const pq_tensor *it = pq_canon_constant(g, g->nodes[nid].inputs[1]);
    int64_t one = n;
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_I64, it->rank, it->rank ? &one : NULL, err);
    if (!t) return err->status;
    memcpy(t->data, vals, sizeof(int64_t) * (size_t)n);
    return pq_fold_replace(g, g->nodes[nid].outputs[0], t, err);
}

static const pq_rewrite_rule pq_fold_rules[] = {
    {"shape-gather", PQ_OP_GATHER, pq_fold_shape_gather_match, pq_fold_shape_gather_rewrite},
    {"fold", PQ_OP_COUNT, pq_fold_match, pq_fold_rewrite},
};

static enum pq_status pq_fold_constants_run(pq_graph *g, const pq_pass_opts *opts, pq_pass_ctx *ctx,
                                            pq_error *err) {
    pq_fold_opts fo = {(int64_t)64 << 20};
    if (opts && opts->n) fo.max_bytes = pq_opts_int(opts, "max-bytes");
    return pq_canon_run(g, pq_fold_rules, sizeof pq_fold_rules / sizeof pq_fold_rules[0], &fo, ctx,
                        NULL, err);
}

static const pq_pass_option pq_fold_options[] = {
    {"max-bytes", PQ_OPT_INT, "largest output (bytes) a node may have to be folded", "67108864", 0,
     1099511627776.0, NULL},
};

const pq_pass pq_pass_fold_constants = {
    .name = "fold-constants",
    .summary = "evaluate nodes whose inputs are constants (and static shapes) and replace them by "
               "constants",
    .options = pq_fold_options,
    .n_options = 1,
    .run = pq_fold_constants_run,
};
