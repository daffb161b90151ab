/* The `hadamard` pass (SPEC 6): rotates the input features (and optionally the output features) of
 * selected MatMul/Gemm/Conv weights offline and inserts the matching online Hadamard nodes, so the
 * graph computes the same function while the weights become incoherent (easier to quantize).
 *
 * Per selected layer with input features n (MatMul/Gemm: the view's cols; Conv group 1: Cin):
 *   W' = W R^T (every input-feature vector of the weight goes through pq_rht_forward; Conv: the Cin
 *   vector at every kernel position) and the activation input x is replaced by Hadamard(x) with
 *   the same seed (axis -1 for MatMul/Gemm, axis 1 for Conv), so op(R x, W R^T) = op(x, W).
 * One Hadamard node serves every rotated layer reading the same (value, axis). Instead of a node:
 *   - cancel: when x is the output of an inverse Hadamard with the same seed and axis (side: both
 *     on the previous layer), the layer reads that node's input directly;
 *   - fold: when x is produced by a MatMul/Gemm with an f32 constant weight used only there, no
 *     fused activation, a bias (Gemm C) that is absent or a constant over the output features used
 *     only there, and every use of x is a layer of this group, the producer's output features
 *     (weight rows and bias) are rotated offline instead (exact up to rounding).
 * side: both also rotates the output features, W' = R W R^T and bias' = R b (Gemm C, Conv B), and
 * puts an inverse Hadamard (inverse = 1) on the layer's output.
 * Skipped with a message: Gemm transA = 1, grouped/depthwise Conv, n without a Hadamard block of
 * at least 8 (SPEC 6), a weight an earlier pass already rotated; side: both is dropped (input side
 * kept) for layers with a fused `activation`, an output count without a block, or a bias that is
 * not a rotatable constant. A weight shared by several layers is rotated once when every use is a
 * layer rotated the same way; otherwise each rotated layer gets its own copy ("<w>.rot").
 * Every rotated weight gets a pq_weight_note (original tensor, rotated_in/seed_in,
 * rotated_out/seed_out) so fake-quant can measure against the un-rotated original. */
#include <stdio.h>
#include <string.h>

#include "backends/quant/fwht.h"
#include "ir/ir.h"
#include "pass.h"
#include "rotate.h"
#include "select.h"

static const char *const pq_hadamard_side_choices[] = {"input", "both", NULL};

static const pq_pass_option pq_hadamard_options[] = {
    PQ_SELECT_OPTION_ENTRIES,
    {"seed", PQ_OPT_INT, "seed of the random signs (SPEC 6 LCG)", "42", 0, 9007199254740992.0,
     NULL},
    {"side", PQ_OPT_ENUM, "input: rotate input features; both: also output features", "input", 0, 0,
     pq_hadamard_side_choices},
};

/* What the pass does to one selected layer. */
typedef struct pq_had_plan {
    uint32_t node;
    pq_weight_view view; /* refreshed when the layer gets a private copy of its weight */
    int64_t axis;        /* of the activation (input 0) and of the output: -1, or 1 for Conv */
    int64_t n_in;        /* input features */
    int64_t stride;      /* Conv: prod(kernel), else 1 */
    bool out;            /* rotate the output side too */
} pq_had_plan;

static bool pq_had_block_ok(int64_t n) {
    int64_t block = 0;
    return pq_rht_block_size(n, &block, NULL) == PQ_OK;
}

/* True when the output-side bias of node nd (Gemm C, Conv B; input 2) can be rotated over the
 * n_out output features: absent, or an f32 constant whose last dim is n_out. */
static bool pq_had_bias_ok(const pq_graph *g, const pq_node *nd, int64_t n_out) {
    uint32_t b = pq_node_input(nd, 2);
    if (b == PQ_NONE) return true;
    const pq_tensor *t = g->values[b].constant;
    return t && t->dtype == PQ_DTYPE_F32 && t->rank >= 1 && t->dims[t->rank - 1] == n_out;
}

/* Plans target t; false (with a log line) when the layer is skipped. */
static bool pq_had_plan_of(const pq_graph *g, const pq_weight_target *t, bool both,
                           pq_pass_ctx *ctx, pq_had_plan *p) {
    const pq_node *nd = &g->nodes[t->node];
    memset(p, 0, sizeof *p);
    p->node = t->node;
    p->view = t->view;
    p->axis = -1;
    p->stride = 1;
    p->n_in = t->view.cols;
    int64_t n_out = t->view.rows;
    if (nd->op == PQ_OP_GEMM && pq_node_attr_int(nd, "transA", 0) != 0) {
        pq_pass_log(ctx, 1,
                    "node '%s' (Gemm): skipped, transA = 1 (features are not the last axis)",
                    nd->name);
        return false;
    }
    if (nd->op == PQ_OP_CONV) {
        if (pq_node_attr_int(nd, "group", 1) != 1) {
            pq_pass_log(ctx, 1, "node '%s' (Conv): skipped, grouped convolution (group = %lld)",
                        nd->name, (long long)pq_node_attr_int(nd, "group", 1));
            return false;
        }
        p->axis = 1;
        p->n_in = t->view.dims[1];
        p->stride = p->n_in ? t->view.cols / p->n_in : 1;
    }
    if (!pq_had_block_ok(p->n_in)) {
        pq_pass_log(ctx, 1,
                    "node '%s' (%s): skipped, %lld input features have no Hadamard block of at "
                    "least 8",
                    nd->name, pq_op_name(nd->op), (long long)p->n_in);
        return false;
    }
    const pq_weight_note *note = pq_pass_find_note(ctx, t->view.name);
    if (note && (note->rotated_in || note->rotated_out)) {
        pq_pass_log(ctx, 1, "node '%s' (%s): skipped, weight '%s' is already rotated", nd->name,
                    pq_op_name(nd->op), t->view.name);
        return false;
    }
    if (!both) return true;
    if (pq_node_attr(nd, "activation")) {
        pq_pass_log(ctx, 1,
                    "node '%s' (%s): output side not rotated, the node has a fused activation "
                    "(non-linear); input side only",
                    nd->name, pq_op_name(nd->op));
    } else if (!pq_had_block_ok(n_out)) {
        pq_pass_log(ctx, 1,
                    "node '%s' (%s): output side not rotated, %lld output features have no "
                    "Hadamard block of at least 8; input side only",
                    nd->name, pq_op_name(nd->op), (long long)n_out);
    } else if (!pq_had_bias_ok(g, nd, n_out)) {
        pq_pass_log(ctx, 1,
                    "node '%s' (%s): output side not rotated, bias '%s' is not a constant over "
                    "the %lld output features; input side only",
                    nd->name, pq_op_name(nd->op), g->values[pq_node_input(nd, 2)].name,
                    (long long)n_out);
    } else {
        p->out = true;
    }
    return true;
}

/* Records the original of weight value v in ctx (first time only) and returns its note. */
static enum pq_status pq_had_note(pq_graph *g, uint32_t v, pq_pass_ctx *ctx, pq_weight_note **out,
                                  pq_error *err) {
    pq_weight_note *note = pq_pass_note(ctx, g->values[v].name);
    if (!note) return pq_error_nomem(err, "weight note");
    if (!note->original) {
        note->original = pq_tensor_clone(g->values[v].constant, err);
        if (!note->original) return pq_error_prefix(err, "weight '%s': ", g->values[v].name);
    }
    *out = note;
    return PQ_OK;
}

/* Gives input `slot` of node nid a private copy of its constant named "<name>.rot". */
static enum pq_status pq_had_private_copy(pq_graph *g, uint32_t nid, uint32_t slot, pq_error *err) {
    uint32_t v = g->nodes[nid].inputs[slot];
    pq_tensor *t = pq_tensor_clone(g->values[v].constant, err);
    if (!t) return pq_error_prefix(err, "copy of '%s': ", g->values[v].name);
    char name[512];
    snprintf(name, sizeof name, "%s.rot", g->values[v].name);
    uint32_t nv = PQ_NONE;
    PQ_TRY(pq_graph_add_constant(g, name, t, &nv, err));
    return pq_graph_set_input(g, nid, slot, nv, err);
}

/* Rotates f32 constant v over its last dim (length n) with seed: bias' = R b. */
static enum pq_status pq_had_rotate_bias(pq_graph *g, uint32_t v, int64_t n, uint64_t seed,
                                         pq_error *err) {
    pq_tensor *t = g->values[v].constant;
    int64_t total = pq_tensor_numel(t);
    if (total == 0) return PQ_OK;
    return pq_rotate_view_in(t->data, total / n, n, 1, seed, false, err);
}

/* Rotates the weight of plan p offline (input side, and output side when p->out). */
static enum pq_status pq_had_rotate_weight(pq_graph *g, const pq_had_plan *p, uint64_t seed,
                                           pq_pass_ctx *ctx, pq_error *err) {
    pq_weight_note *note = NULL;
    PQ_TRY(pq_had_note(g, p->view.value, ctx, &note, err));
    float *m = NULL;
    PQ_TRY(pq_weight_view_read(g, &p->view, &m, err));
    enum pq_status st = pq_rotate_view_in(m, p->view.batch * p->view.rows, p->view.cols, p->stride,
                                          seed, false, err);
    if (st == PQ_OK && p->out)
        st = pq_rotate_view_out(m, p->view.batch, p->view.rows, p->view.cols, seed, false, err);
    if (st == PQ_OK) st = pq_weight_view_write(g, &p->view, m, err);
    pq_free(m);
    if (st != PQ_OK) return pq_error_prefix(err, "weight '%s': ", p->view.name);
    note->rotated_in = true;
    note->seed_in = seed;
    if (p->out) {
        note->rotated_out = true;
        note->seed_out = seed;
    }
    return PQ_OK;
}

/* Adds Hadamard(x) {axis, seed, inverse} and returns its output value and node. */
static enum pq_status pq_had_add_node(pq_graph *g, uint32_t x, int64_t axis, uint64_t seed,
                                      bool inverse, uint32_t *out_v, uint32_t *out_n,
                                      pq_error *err) {
    char hint[512];
    snprintf(hint, sizeof hint, "%s.%s", g->values[x].name, inverse ? "unrot" : "rot");
    PQ_TRY(pq_build(g, PQ_OP_HADAMARD, hint, &x, 1, out_v, out_n, err));
    PQ_TRY(pq_node_set_int(g, *out_n, "axis", axis, err));
    PQ_TRY(pq_node_set_int(g, *out_n, "seed", (int64_t)seed, err));
    PQ_TRY(pq_node_set_int(g, *out_n, "inverse", inverse ? 1 : 0, err));
    return PQ_OK;
}

/* Same rotation of the weight (so it can be shared). */
static bool pq_had_same(const pq_had_plan *a, const pq_had_plan *b) {
    return a->out == b->out && a->stride == b->stride && a->view.transposed == b->view.transposed &&
           a->view.batch == b->view.batch && a->view.rows == b->view.rows &&
           a->view.cols == b->view.cols;
}

/* A group of planned layers reading the same (activation value, axis). */
typedef struct pq_had_group {
    uint32_t value;
    int64_t axis;
    uint32_t n_members;
    enum { PQ_HAD_INSERT, PQ_HAD_CANCEL, PQ_HAD_FOLD } how;
    uint32_t source; /* CANCEL: value to read instead; FOLD: producer node */
} pq_had_group;

/* Decides whether group gr can be folded into its producer (see the file comment). */
static bool pq_had_can_fold(const pq_graph *g, const pq_uses *u, const pq_had_group *gr,
                            int64_t n_in, const pq_pass_ctx *ctx) {
    uint32_t v = gr->value;
    if (gr->axis != -1 || u->n_graph_outputs[v] != 0) return false;
    if (pq_uses_count(u, v) != gr->n_members) return false;
    uint32_t pid = g->values[v].producer;
    if (pid == PQ_NONE || pid >= g->n_nodes) return false;
    const pq_node *p = &g->nodes[pid];
    if ((p->op != PQ_OP_MATMUL && p->op != PQ_OP_GEMM) || pq_node_output(p, 0) != v) return false;
    if (pq_node_attr(p, "activation")) return false;
    pq_weight_view pv;
    if (!pq_select_view(g, pid, &pv) || pv.rows != n_in) return false;
    if (pq_uses_count(u, pv.value) != 1 || u->n_graph_outputs[pv.value] != 0) return false;
    const pq_weight_note *note = pq_pass_find_note(ctx, pv.name);
    if (note && note->rotated_out) return false;
    if (p->op == PQ_OP_GEMM) {
        if (!pq_had_bias_ok(g, p, n_in)) return false;
        uint32_t b = pq_node_input(p, 2);
        if (b != PQ_NONE && (pq_uses_count(u, b) != 1 || u->n_graph_outputs[b] != 0)) return false;
    }
    return true;
}

/* Folds the rotation of group gr into its producer: its weight's output features and bias. */
static enum pq_status pq_had_fold(pq_graph *g, const pq_had_group *gr, uint64_t seed,
                                  pq_pass_ctx *ctx, pq_error *err) {
    uint32_t pid = gr->source;
    pq_weight_view pv;
    if (!pq_select_view(g, pid, &pv))
        return pq_error_set(err, PQ_ERR_INTERNAL, "node '%s': fold target lost its weight",
                            g->nodes[pid].name);
    pq_weight_note *note = NULL;
    PQ_TRY(pq_had_note(g, pv.value, ctx, &note, err));
    float *m = NULL;
    PQ_TRY(pq_weight_view_read(g, &pv, &m, err));
    enum pq_status st = pq_rotate_view_out(m, pv.batch, pv.rows, pv.cols, seed, false, err);
    if (st == PQ_OK) st = pq_weight_view_write(g, &pv, m, err);
    pq_free(m);
    if (st != PQ_OK) return pq_error_prefix(err, "weight '%s': ", pv.name);
    note->rotated_out = true;
    note->seed_out = seed;
    uint32_t b = g->nodes[pid].op == PQ_OP_GEMM ? pq_node_input(&g->nodes[pid], 2) : PQ_NONE;
    if (b != PQ_NONE) {
        st = pq_had_rotate_bias(g, b, pv.rows, seed, err);
        if (st != PQ_OK) return pq_error_prefix(err, "bias '%s': ", g->values[b].name);
    }
    return PQ_OK;
}

static enum pq_status pq_hadamard_run(pq_graph *g, const pq_pass_opts *o, pq_pass_ctx *ctx,
                                      pq_error *err) {
    enum pq_status st = PQ_OK;
    pq_weight_target *targets = NULL;
    pq_had_plan *plans = NULL;
    pq_had_group *groups = NULL;
    uint32_t *group_of = NULL; /* plan -> group */
    bool *rotated = NULL;      /* weight value ids rotated in place */
    uint32_t n_targets = 0, n_plans = 0, n_groups = 0, n_values0 = g->n_values;
    uint32_t n_inserted = 0, n_inverse = 0, n_folded = 0, n_cancelled = 0, n_copies = 0;
    pq_uses u = {0};
    bool have_uses = false;
    uint64_t seed = (uint64_t)pq_opts_int(o, "seed");
    const char *side = pq_opts_string(o, "side");
    bool both = side && strcmp(side, "both") == 0;

    PQ_TRY_GOTO(st, pq_select_weights(g, o, &targets, &n_targets, err), cleanup);
    if (n_targets == 0) {
        pq_pass_log(ctx, 1, "no layer selected");
        goto cleanup;
    }
    plans = pq_calloc(n_targets, sizeof *plans);
    groups = pq_calloc(n_targets, sizeof *groups);
    group_of = pq_calloc(n_targets, sizeof *group_of);
    rotated = pq_calloc(n_values0 ? n_values0 : 1, sizeof *rotated);
    if (!plans || !groups || !group_of || !rotated) {
        st = pq_error_nomem(err, "hadamard plans");
        goto cleanup;
    }
    for (uint32_t i = 0; i < n_targets; i++)
        if (pq_had_plan_of(g, &targets[i], both, ctx, &plans[n_plans])) n_plans++;

    /* 1. weights: rotate in place when every use is a layer rotated the same way, else copy */
    PQ_TRY_GOTO(st, pq_uses_build(g, &u, err), cleanup);
    have_uses = true;
    bool *exclusive = pq_calloc(n_plans ? n_plans : 1, sizeof *exclusive);
    if (!exclusive) {
        st = pq_error_nomem(err, "hadamard plans");
        goto cleanup;
    }
    for (uint32_t i = 0; i < n_plans; i++) {
        uint32_t w = plans[i].view.value;
        bool ok = u.n_graph_outputs[w] == 0;
        for (uint32_t k = u.start[w]; k < u.start[w + 1] && ok; k++) {
            const pq_use *us = &u.use[k];
            bool found = false;
            for (uint32_t j = 0; j < n_plans && !found; j++)
                found =
                    plans[j].node == us->node && us->slot == 1 && pq_had_same(&plans[i], &plans[j]);
            ok = found;
        }
        exclusive[i] = ok;
    }
    /* output-side biases with other uses get a copy too (checked before any edit) */
    bool *bias_copy = pq_calloc(n_plans ? n_plans : 1, sizeof *bias_copy);
    if (!bias_copy) {
        pq_free(exclusive);
        st = pq_error_nomem(err, "hadamard plans");
        goto cleanup;
    }
    for (uint32_t i = 0; i < n_plans; i++) {
        uint32_t b = plans[i].out ? pq_node_input(&g->nodes[plans[i].node], 2) : PQ_NONE;
        bias_copy[i] = b != PQ_NONE && (pq_uses_count(&u, b) != 1 || u.n_graph_outputs[b] != 0);
    }
    pq_uses_free(&u);
    have_uses = false;
    for (uint32_t i = 0; i < n_plans && st == PQ_OK; i++) {
        pq_had_plan *p = &plans[i];
        if (!exclusive[i]) {
            const char *old = p->view.name;
            st = pq_had_private_copy(g, p->node, 1, err);
            if (st != PQ_OK) break;
            n_copies++;
            pq_select_view(g, p->node, &p->view);
            pq_pass_log(ctx, 1,
                        "node '%s': weight '%s' has uses that are not rotated the same way; "
                        "rotating a private copy '%s'",
                        g->nodes[p->node].name, old, p->view.name);
        }
        bool done = p->view.value < n_values0 && rotated[p->view.value]; /* shared: once */
        if (!done) {
            st = pq_had_rotate_weight(g, p, seed, ctx, err);
            if (st != PQ_OK) break;
            if (p->view.value < n_values0) rotated[p->view.value] = true;
        }
        if (p->out && pq_node_input(&g->nodes[p->node], 2) != PQ_NONE) {
            if (bias_copy[i]) st = pq_had_private_copy(g, p->node, 2, err);
            uint32_t b = pq_node_input(&g->nodes[p->node], 2);
            if (st == PQ_OK) st = pq_had_rotate_bias(g, b, p->view.rows, seed, err);
            if (st != PQ_OK) pq_error_prefix(err, "bias '%s': ", g->values[b].name);
        }
    }
    pq_free(exclusive);
    pq_free(bias_copy);
    if (st != PQ_OK) goto cleanup;

    /* 2. output side: layer -> y' (rotated), inverse Hadamard y' -> y for the old consumers */
    for (uint32_t i = 0; i < n_plans; i++) {
        if (!plans[i].out) continue;
        uint32_t y = pq_node_output(&g->nodes[plans[i].node], 0), z = PQ_NONE, hn = PQ_NONE;
        PQ_TRY_GOTO(st, pq_had_add_node(g, y, plans[i].axis, seed, true, &z, &hn, err), cleanup);
        PQ_TRY_GOTO(st, pq_graph_replace_all_uses(g, y, z, err), cleanup);
        PQ_TRY_GOTO(st, pq_graph_set_input(g, hn, 0, y, err), cleanup);
        n_inverse++;
    }

    /* 3. input side: group the layers by (activation, axis), then cancel / fold / insert */
    for (uint32_t i = 0; i < n_plans; i++) {
        uint32_t x = pq_node_input(&g->nodes[plans[i].node], 0);
        uint32_t k = 0;
        while (k < n_groups && !(groups[k].value == x && groups[k].axis == plans[i].axis))
            k++;
        if (k == n_groups) {
            groups[k].value = x;
            groups[k].axis = plans[i].axis;
            groups[k].how = PQ_HAD_INSERT;
            n_groups++;
        }
        groups[k].n_members++;
        group_of[i] = k;
    }
    PQ_TRY_GOTO(st, pq_uses_build(g, &u, err), cleanup);
    have_uses = true;
    for (uint32_t k = 0; k < n_groups; k++) {
        pq_had_group *gr = &groups[k];
        int64_t n_in = 0;
        for (uint32_t i = 0; i < n_plans; i++)
            if (group_of[i] == k) n_in = plans[i].n_in;
        uint32_t pid = g->values[gr->value].producer;
        const pq_node *p = pid != PQ_NONE && pid < g->n_nodes ? &g->nodes[pid] : NULL;
        if (p && p->op == PQ_OP_HADAMARD && pq_node_attr_int(p, "inverse", 0) == 1 &&
            pq_node_attr_int(p, "axis", -1) == gr->axis &&
            (uint64_t)pq_node_attr_int(p, "seed", 0) == seed && pq_node_input(p, 0) != PQ_NONE) {
            gr->how = PQ_HAD_CANCEL;
            gr->source = pq_node_input(p, 0);
        } else if (pq_had_can_fold(g, &u, gr, n_in, ctx)) {
            gr->how = PQ_HAD_FOLD;
            gr->source = pid;
        }
    }
    pq_uses_free(&u);
    have_uses = false;
    for (uint32_t k = 0; k < n_groups; k++) {
        pq_had_group *gr = &groups[k];
        uint32_t with = gr->value;
        if (gr->how == PQ_HAD_CANCEL) {
            with = gr->source;
            n_cancelled++;
        } else if (gr->how == PQ_HAD_FOLD) {
            PQ_TRY_GOTO(st, pq_had_fold(g, gr, seed, ctx, err), cleanup);
            pq_pass_log(ctx, 2, "rotation of '%s' folded into node '%s'", g->values[gr->value].name,
                        g->nodes[gr->source].name);
            n_folded++;
        } else {
            uint32_t hn = PQ_NONE;
            PQ_TRY_GOTO(st, pq_had_add_node(g, gr->value, gr->axis, seed, false, &with, &hn, err),
                        cleanup);
            n_inserted++;
        }
        for (uint32_t i = 0; i < n_plans; i++)
            if (group_of[i] == k)
                PQ_TRY_GOTO(st, pq_graph_set_input(g, plans[i].node, 0, with, err), cleanup);
    }
    PQ_TRY_GOTO(st, pq_graph_toposort(g, err), cleanup);
    /* type the new nodes (their inputs are typed now that the order is topological) */
    if (n_cancelled > 0) PQ_TRY_GOTO(st, pq_graph_remove_dead(g, NULL, err), cleanup);
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == PQ_OP_HADAMARD &&
            g->values[g->nodes[i].outputs[0]].dtype == PQ_DTYPE_UNDEFINED)
            PQ_TRY_GOTO(st, pq_infer_node(g, i, err), cleanup);
    pq_pass_log(ctx, 1,
                "rotated %u layers (%u also on the output side), inserted %u Hadamard nodes "
                "(%u inverse), folded %u, cancelled %u, %u private weight copies",
                n_plans, n_inverse, n_inserted + n_inverse, n_inverse, n_folded, n_cancelled,
                n_copies);

cleanup:
    if (have_uses) pq_uses_free(&u);
    pq_free(targets);
    pq_free(plans);
    pq_free(groups);
    pq_free(group_of);
    pq_free(rotated);
    return st;
}

const pq_pass pq_pass_hadamard = {
    .name = "hadamard",
    .summary = "rotate MatMul/Gemm/Conv weights with randomised Hadamard transforms (SPEC 6)",
    .options = pq_hadamard_options,
    .n_options = sizeof pq_hadamard_options / sizeof pq_hadamard_options[0],
    .run = pq_hadamard_run,
    .check = pq_select_check,
};
