/* fuse-residual: Add(Conv(x, w, b), s) (either operand order, same shape, f32, the Conv output used
 * only there) becomes piqc's ConvAdd(x, w, b, s), which oneDNN runs as a convolution with a sum
 * post-op; an activation already fused into the Add stays after the sum. */
#include <string.h>

#include "canon.h"
#include "ir/infer.h"
#include "ir/infer_piqc.h"

/* True when values a and b have the same known rank and the same dims (equal sizes, or the same
 * symbol). */
static bool pq_fres_same_shape(const pq_graph *g, uint32_t a, uint32_t b) {
    const pq_shape *x = &g->values[a].shape, *y = &g->values[b].shape;
    if (x->rank < 3 || x->rank != y->rank) return false;
    for (int i = 0; i < x->rank; i++) {
        pq_dim p = x->dims[i], q = y->dims[i];
        if (pq_dim_known(p) ? p.size != q.size : (!p.sym || p.sym != q.sym)) return false;
    }
    return true;
}

/* m->node[0] = the Conv, m->value[0] = the addend. */
static bool pq_fres_match(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m) {
    const pq_graph *g = rc->g;
    const pq_node *n = &g->nodes[nid];
    if (n->n_inputs != 2 || n->n_outputs != 1) return false;
    uint32_t y = n->outputs[0];
    if (y == PQ_NONE || g->values[y].dtype != PQ_DTYPE_F32) return false;
    for (int k = 0; k < 2; k++) {
        uint32_t c = n->inputs[k], s = n->inputs[1 - k];
        if (c == PQ_NONE || s == PQ_NONE || c == s) continue;
        if (g->values[c].dtype != PQ_DTYPE_F32 || g->values[s].dtype != PQ_DTYPE_F32) continue;
        if (!pq_match_single_use(rc, c)) continue;
        uint32_t p = pq_match_producer(rc, c, PQ_OP_CONV);
        if (p == PQ_NONE) continue;
        const pq_node *cv = &g->nodes[p];
        /* a Conv activation would run before the sum: not this form */
        if (cv->n_outputs != 1 || cv->n_inputs < 2 || pq_canon_has_activation(cv)) continue;
        if (!pq_fres_same_shape(g, c, y) || !pq_fres_same_shape(g, s, y)) continue;
        uint32_t w = cv->inputs[1];
        if (w == PQ_NONE || pq_canon_rank(g, w) < 3 || g->values[w].shape.dims[0].size < 1)
            continue;
        uint32_t b = pq_node_input(cv, 2);
        if (b != PQ_NONE && g->values[b].dtype != PQ_DTYPE_F32) continue;
        m->node[0] = p;
        m->value[0] = s;
        return true;
    }
    return false;
}

static enum pq_status pq_fres_rewrite(pq_rewrite_ctx *rc, uint32_t nid, const pq_match *m,
                                      pq_error *err) {
    pq_graph *g = rc->g;
    uint32_t cid = m->node[0];
    const pq_node *cv = &g->nodes[cid];
    uint32_t in[4] = {cv->inputs[0], cv->inputs[1], pq_node_input(cv, 2), m->value[0]};
    if (in[2] == PQ_NONE) { /* ConvAdd always has a bias: zeros (adds +0.0, no change) */
        int64_t mo = g->values[in[1]].shape.dims[0].size;
        float *z = pq_calloc((size_t)mo, sizeof *z);
        if (!z) return pq_error_nomem(err, "fuse-residual: zero bias");
        char hint[200];
        snprintf(hint, sizeof hint, "%s_zero_bias",
                 g->nodes[cid].name ? g->nodes[cid].name : "conv");
        enum pq_status st = pq_canon_const(g, hint, 1, &mo, z, &in[2], err);
        pq_free(z);
        PQ_TRY(st);
    }
    uint32_t y = g->nodes[nid].outputs[0], out, fid;
    PQ_TRY(pq_canon_build(g, PQ_OP_CONV_ADD, g->values[y].name, in, 4, &out, &fid, err));
    const char *cname = g->nodes[cid].name;
    if (cname) { /* the ConvAdd takes the Conv's node name (the dead Conv gets a fresh one) */
        const char *fresh = pq_graph_fresh_node_name(g, cname);
        if (!fresh) return pq_error_nomem(err, "fuse-residual: node name");
        g->nodes[cid].name = fresh;
        g->nodes[fid].name = cname;
    }
    /* the Conv geometry, then the Add's fused activation (applied after the sum) */
    for (int src = 0; src < 2; src++) {
        uint32_t from = src == 0 ? cid : nid;
        for (uint32_t a = 0; a < g->nodes[from].n_attrs; a++) {
            const pq_attr at = g->nodes[from].attrs[a];
            bool act = strncmp(at.name, "activation", 10) == 0;
            if (act != (src == 1)) continue;
            if (at.type == PQ_ATTR_INT)
                PQ_TRY(pq_node_set_int(g, fid, at.name, at.u.i, err));
            else if (at.type == PQ_ATTR_INTS)
                PQ_TRY(pq_node_set_ints(g, fid, at.name, at.u.ints.v, at.u.ints.n, err));
            else if (at.type == PQ_ATTR_STRING)
                PQ_TRY(pq_node_set_string(g, fid, at.name, at.u.s, err));
            else if (at.type == PQ_ATTR_FLOAT)
                PQ_TRY(pq_node_set_float(g, fid, at.name, at.u.f, err));
            else
                return pq_error_set(
                    err, PQ_ERR_UNSUPPORTED,
                    "fuse-residual: node '%s': attribute '%s' of an unexpected type",
                    g->nodes[from].name ? g->nodes[from].name : "?", at.name);
        }
    }
    PQ_TRY(pq_infer_node(g, fid, err));
    bool was_output = (g->values[y].flags & PQ_VALUE_OUTPUT) != 0;
    PQ_TRY(pq_graph_replace_all_uses(g, y, out, err));
    if (was_output) return PQ_OK; /* the output name moved with the uses */
    /* and the result takes the Add's value name (the dead Add's output gets a fresh one) */
    const char *yname = g->values[y].name;
    PQ_TRY(pq_graph_rename_value(g, y, NULL, err));
    return pq_graph_rename_value(g, out, yname, err);
}

static const pq_rewrite_rule pq_fres_rules[] = {
    {"fuse-conv-add", PQ_OP_ADD, pq_fres_match, pq_fres_rewrite},
};

static enum pq_status pq_fuse_residual_run(pq_graph *g, const pq_pass_opts *opts, pq_pass_ctx *ctx,
                                           pq_error *err) {
    (void)opts;
    return pq_canon_run(g, pq_fres_rules, sizeof pq_fres_rules / sizeof pq_fres_rules[0], NULL, ctx,
                        NULL, err);
}

const pq_pass pq_pass_fuse_residual = {
    .name = "fuse-residual",
    .summary = "merge Add(Conv(x), s) (same shape, f32, the Conv output used only there) into "
               "piqc's ConvAdd, run as oneDNN's sum post-op; the Add's activation stays after the "
               "sum",
    .options = NULL,
    .n_options = 0,
    .run = pq_fuse_residual_run,
};
