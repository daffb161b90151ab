/* The `autodiff` pass (issue 7): reverse-mode differentiation of a scalar loss with respect to
 * selected constants. Appends the backward graph (per-op rules of passes/grad.h) and exposes each
 * gradient as a graph output named "grad/<constant name>", which marks the constant trainable. */
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "autodiff.h"
#include "grad.h"
#include "ir/ir.h"
#include "pass.h"
#include "select.h"

static const pq_pass_option pq_autodiff_options[] = {
    {"loss", PQ_OPT_STRING,
     "name of the scalar float value to differentiate (default: the single graph output, when "
     "it is a scalar)",
     NULL, 0, 0, NULL},
    {"wrt", PQ_OPT_STRING,
     "POSIX extended regex on constant names: the constants that get gradients (default: every "
     "float constant of rank >= 1 that is not a graph input)",
     NULL, 0, 0, NULL},
};

static bool pq_ad_is_scalar(const pq_value *v) {
    if (v->shape.rank < 0) return false;
    for (int i = 0; i < v->shape.rank; i++)
        if (v->shape.dims[i].size != 1) return false;
    return true;
}

/* The loss value id per the options, or an error naming what is wrong. */
static enum pq_status pq_ad_loss(pq_graph *g, const pq_pass_opts *opts, uint32_t *out,
                                 pq_error *err) {
    const char *name = pq_opts_string(opts, "loss");
    uint32_t l = PQ_NONE;
    if (name && *name) {
        l = pq_graph_find_value(g, name);
        if (l == PQ_NONE)
            return pq_error_set(err, PQ_ERR_INVALID, "loss value '%s' does not exist", name);
    } else {
        if (g->n_outputs != 1)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "graph has %u outputs: name the loss with option 'loss'",
                                g->n_outputs);
        l = g->outputs[0];
    }
    const pq_value *v = &g->values[l];
    if (!pq_dtype_is_float(v->dtype) || !pq_ad_is_scalar(v))
        return pq_error_set(err, PQ_ERR_INVALID,
                            "loss '%s' must be a float scalar (one element, static shape), is %s "
                            "of rank %d",
                            v->name, pq_dtype_name(v->dtype), v->shape.rank);
    *out = l;
    return PQ_OK;
}

static enum pq_status pq_autodiff_check(const pq_pass_opts *opts, pq_error *err) {
    regex_t re;
    bool have = false;
    PQ_TRY(pq_select_regcomp(opts, "wrt", &re, &have, err));
    if (have) regfree(&re);
    return PQ_OK;
}

/* Exposes gradient gv of constant c as graph output "grad/<c name>": renames gv when this pass
 * made it and nothing else claimed it, else adds an Identity producing the named value. */
static enum pq_status pq_ad_expose(pq_graph *g, uint32_t c, uint32_t gv, uint32_t n_fwd_values,
                                   pq_error *err) {
    char name[1024];
    snprintf(name, sizeof name, "grad/%s", g->values[c].name);
    if (pq_graph_find_value(g, name) != PQ_NONE)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "value '%s' already exists (was autodiff run twice?)", name);
    if (!pq_shape_is_static(&g->values[gv].shape, NULL) ||
        g->values[gv].shape.rank != g->values[c].shape.rank)
        return pq_error_set(err, PQ_ERR_INTERNAL, "gradient of '%s' has rank %d, expected %d",
                            g->values[c].name, g->values[gv].shape.rank, g->values[c].shape.rank);
    for (int i = 0; i < g->values[c].shape.rank; i++)
        if (g->values[gv].shape.dims[i].size != g->values[c].shape.dims[i].size)
            return pq_error_set(err, PQ_ERR_INTERNAL,
                                "gradient of '%s' has dim %d = %lld, expected %lld",
                                g->values[c].name, i, (long long)g->values[gv].shape.dims[i].size,
                                (long long)g->values[c].shape.dims[i].size);
    const pq_value *v = &g->values[gv];
    bool ours = gv >= n_fwd_values && v->producer != PQ_NONE && !(v->flags & PQ_VALUE_OUTPUT) &&
                strncmp(v->name, "grad/", 5) != 0;
    uint32_t out = gv;
    if (ours) {
        PQ_TRY(pq_graph_rename_value(g, gv, name, err));
    } else {
        uint32_t nid;
        PQ_TRY(pq_build(g, PQ_OP_IDENTITY, name, &gv, 1, &out, &nid, err));
        PQ_TRY(pq_infer_node(g, nid, err));
        if (strcmp(g->values[out].name, name) != 0)
            return pq_error_set(err, PQ_ERR_INTERNAL, "could not name the gradient '%s'", name);
    }
    return pq_graph_add_output(g, out, err);
}

/* Whether constant value v can be differentiated at all. */
static bool pq_ad_candidate(const pq_value *pv) {
    return pv->constant && pq_dtype_is_float(pv->dtype) && pv->shape.rank >= 1 &&
           !(pv->flags & PQ_VALUE_INPUT);
}

static enum pq_status pq_autodiff_run(pq_graph *g, const pq_pass_opts *opts, pq_pass_ctx *ctx,
                                      pq_error *err) {
    PQ_TRY(pq_graph_sort_infer(g, err));
    uint32_t loss = PQ_NONE;
    PQ_TRY(pq_ad_loss(g, opts, &loss, err));
    regex_t re;
    bool wrt = false;
    PQ_TRY(pq_select_regcomp(opts, "wrt", &re, &wrt, err));
    bool *sel = pq_calloc(g->n_values ? g->n_values : 1, sizeof *sel);
    enum pq_status st = sel ? PQ_OK : pq_error_nomem(err, "autodiff selection");
    for (uint32_t v = 0; sel && v < g->n_values; v++)
        sel[v] = pq_ad_candidate(&g->values[v]) &&
                 (!wrt || regexec(&re, g->values[v].name, 0, NULL, 0) == 0);
    if (wrt) regfree(&re);
    if (st == PQ_OK) st = pq_autodiff_graph(g, loss, sel, ctx, err);
    pq_free(sel);
    return st;
}

enum pq_status pq_autodiff_graph(pq_graph *g, uint32_t loss, const bool *wrt, pq_pass_ctx *ctx,
                                 pq_error *err) {
    enum pq_status st = PQ_OK;
    bool *dep = NULL, *reach = NULL, *need = NULL;
    uint32_t *grad = NULL, *out_grad = NULL, *in_grad = NULL;
    const uint32_t n_values = g->n_values, n_nodes = g->n_nodes;
    uint32_t max_io = 1;
    for (uint32_t i = 0; i < n_nodes; i++) {
        if (g->nodes[i].n_inputs > max_io) max_io = g->nodes[i].n_inputs;
        if (g->nodes[i].n_outputs > max_io) max_io = g->nodes[i].n_outputs;
    }
    dep = pq_calloc(n_values, sizeof *dep);
    reach = pq_calloc(n_values, sizeof *reach);
    grad = pq_malloc(sizeof *grad * n_values);
    out_grad = pq_malloc(sizeof *out_grad * max_io);
    in_grad = pq_malloc(sizeof *in_grad * max_io);
    need = pq_calloc(max_io, sizeof *need);
    if (!dep || !reach || !grad || !out_grad || !in_grad || !need) {
        st = pq_error_nomem(err, "autodiff tables");
        goto cleanup;
    }
    /* the constants to differentiate */
    uint32_t n_wrt = 0;
    for (uint32_t v = 0; v < n_values; v++) {
        grad[v] = PQ_NONE;
        if (!wrt[v] || !pq_ad_candidate(&g->values[v])) continue;
        dep[v] = true;
        n_wrt++;
    }
    /* forward: values depending on a selected constant (non-differentiable ops stop the flow) */
    for (uint32_t i = 0; i < n_nodes; i++) {
        const pq_node *n = &g->nodes[i];
        if (pq_op_get(n->op)->flags & PQ_OPF_NONDIFF) continue;
        bool d = false;
        for (uint32_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] != PQ_NONE && dep[n->inputs[k]]) d = true;
        if (!d) continue;
        for (uint32_t k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] != PQ_NONE && pq_dtype_is_float(g->values[n->outputs[k]].dtype))
                dep[n->outputs[k]] = true;
    }
    /* backward: values the loss depends on */
    reach[loss] = true;
    for (uint32_t i = n_nodes; i-- > 0;) {
        const pq_node *n = &g->nodes[i];
        bool r = false;
        for (uint32_t k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] != PQ_NONE && reach[n->outputs[k]]) r = true;
        if (!r) continue;
        for (uint32_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] != PQ_NONE) reach[n->inputs[k]] = true;
    }
    if (!dep[loss]) {
        st = pq_error_set(err, PQ_ERR_INVALID,
                          "loss '%s' does not depend on any selected constant (%u selected)",
                          g->values[loss].name, n_wrt);
        goto cleanup;
    }
    /* seed dL/dL = 1 */
    {
        const pq_value *lv = &g->values[loss];
        int64_t dims[PQ_MAX_RANK];
        for (int i = 0; i < lv->shape.rank; i++)
            dims[i] = 1;
        char hint[512];
        snprintf(hint, sizeof hint, "%s/seed", lv->name);
        PQ_TRY_GOTO(st,
                    pq_grad_fill(g, hint, lv->dtype, lv->shape.rank, dims, 1.0, &grad[loss], err),
                    cleanup);
    }
    /* reverse walk over the forward nodes on a loss <- constant path */
    uint32_t n_before = g->n_nodes;
    for (uint32_t i = n_nodes; i-- > 0;) {
        const pq_node *n = &g->nodes[i];
        if (pq_op_get(n->op)->flags & PQ_OPF_NONDIFF) continue;
        bool any_out = false, any_need = false;
        for (uint32_t k = 0; k < n->n_outputs; k++) {
            out_grad[k] = n->outputs[k] != PQ_NONE ? grad[n->outputs[k]] : PQ_NONE;
            if (out_grad[k] != PQ_NONE) any_out = true;
        }
        for (uint32_t k = 0; k < n->n_inputs; k++) {
            uint32_t v = n->inputs[k];
            need[k] = v != PQ_NONE && dep[v] && reach[v] && pq_dtype_is_float(g->values[v].dtype);
            in_grad[k] = PQ_NONE;
            if (need[k]) any_need = true;
        }
        if (!any_out || !any_need) continue;
        const char *nname = n->name;
        const char *opname = pq_op_name(n->op);
        pq_grad_fn rule = pq_grad_rules[n->op];
        if (!rule) {
            st = pq_error_set(err, PQ_ERR_UNSUPPORTED,
                              "node '%s' (%s) is on the gradient path and has no gradient rule",
                              nname, opname);
            goto cleanup;
        }
        if (pq_node_attr(n, "activation")) {
            st = pq_error_set(err, PQ_ERR_UNSUPPORTED,
                              "node '%s' (%s) has a fused activation: run autodiff before "
                              "fuse-activations",
                              nname, opname);
            goto cleanup;
        }
        char hint[512];
        snprintf(hint, sizeof hint, "%s/grad", nname);
        pq_grad_ctx gc = {g, i, out_grad, need, in_grad, hint, err};
        st = pq_grad_apply(&gc, rule);
        if (st != PQ_OK) {
            n = &g->nodes[i];
            pq_error_prefix(err, "node '%s' (%s): gradient: ", n->name, pq_op_name(n->op));
            goto cleanup;
        }
        n = &g->nodes[i];
        for (uint32_t k = 0; k < n->n_inputs; k++) {
            if (!need[k]) continue;
            uint32_t v = n->inputs[k];
            if (in_grad[k] == PQ_NONE) {
                st = pq_error_set(err, PQ_ERR_INTERNAL,
                                  "node '%s' (%s): gradient rule gave no gradient for input %u",
                                  n->name, pq_op_name(n->op), k);
                goto cleanup;
            }
            if (grad[v] == PQ_NONE) {
                grad[v] = in_grad[k];
            } else {
                char h[512];
                snprintf(h, sizeof h, "grad/%s/sum", g->values[v].name);
                PQ_TRY_GOTO(st, pq_grad_add(g, h, grad[v], in_grad[k], &grad[v], err), cleanup);
            }
            n = &g->nodes[i];
        }
    }
    /* expose the gradients of the selected constants */
    uint32_t n_exposed = 0;
    for (uint32_t v = 0; v < n_values; v++) {
        if (!g->values[v].constant || !dep[v] || g->values[v].producer != PQ_NONE) continue;
        if (grad[v] == PQ_NONE) {
            pq_pass_log(ctx, 2, "constant '%s' does not reach the loss: no gradient",
                        g->values[v].name);
            continue;
        }
        PQ_TRY_GOTO(st, pq_ad_expose(g, v, grad[v], n_values, err), cleanup);
        n_exposed++;
    }
    pq_pass_log(ctx, 1, "%u gradients of '%s', %u backward nodes", n_exposed, g->values[loss].name,
                g->n_nodes - n_before);
cleanup:
    pq_free(dep);
    pq_free(reach);
    pq_free(grad);
    pq_free(out_grad);
    pq_free(in_grad);
    pq_free(need);
    return st;
}

const pq_pass pq_pass_autodiff = {
    .name = "autodiff",
    .summary = "reverse-mode gradients of a scalar loss w.r.t. selected constants, exposed as "
               "graph outputs grad/<constant>",
    .options = pq_autodiff_options,
    .n_options = sizeof pq_autodiff_options / sizeof pq_autodiff_options[0],
    .run = pq_autodiff_run,
    .check = pq_autodiff_check,
};
