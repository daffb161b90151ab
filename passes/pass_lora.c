/* The `lora` pass (SPEC 8): adds a low-rank adapter branch y' = y + (alpha / r) * ((x A^T) B^T) to
 * selected linear layers (MatMul, Gemm, 1x1 Conv with group 1), built from standard ops.
 *
 * Per layer with weight view d_out x d_in (the weight may sit behind a FakeQuant: lora after
 * fake-quant; the base path is never touched):
 *   MatMul/Gemm (transA = 0):  t = MatMul(x, A^T [d_in, r]); u = MatMul(t, B^T [r, d_out]);
 *   Conv 1x1, group 1:         t = Conv(x, A [r, Cin, 1.., 1]) with the layer's strides, pads,
 *                              auto_pad and dilations; u = Conv(t, B [Cout, r, 1.., 1]);
 *   then s = Mul(u, alpha / r) and y' = Add(y, s), which every former reader of y now reads.
 * The adapter constants are named "<weight>.lora_A" and "<weight>.lora_B" (stored as laid out
 * above: A^T / B^T for MatMul and Gemm, A / B for Conv), the scale "<weight>.lora_scale"; a weight
 * shared by several layers gets one adapter used by all of them (it is a delta of the weight).
 * B = 0, so the pass does not change the function. A = U(-1/sqrt(d_in), 1/sqrt(d_in)) drawn with
 * the LCG of SPEC 6: state starts at `seed` once per pass run; for every new adapter in graph
 * order, for i in 0..r, j in 0..d_in (A in [r, d_in] order): state = state * 6364136223846793005 +
 * 1442695040888963407 (mod 2^64), u = (state >> 40) * 2^-24 (the top 24 bits, in [0, 1)),
 * A[i][j] = (float)((2u - 1) * (1 / sqrt((double)d_in))), so |A| <= (float)(1/sqrt(d_in)).
 * dropout (training only) is stored as the float attribute `lora_dropout` on the adapter's first
 * node when > 0 and ignored at inference.
 * A fused `activation` (with activation_alpha/beta) on the layer moves to the Add so the adapter is
 * added before it. Skipped with a message: Gemm transA = 1, Conv that is not 1x1 or is grouped,
 * batched MatMul weights, r > min(d_in, d_out), a weight that already has an adapter. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/infer_piqc.h"
#include "ir/ir.h"
#include "pass.h"
#include "select.h"

static const pq_pass_option pq_lora_options[] = {
    PQ_SELECT_OPTION_ENTRIES,
    {"rank", PQ_OPT_INT, "adapter rank r (<= min(d_in, d_out))", "16", 1, 4096, NULL},
    {"alpha", PQ_OPT_FLOAT, "adapter scale numerator: the branch is scaled by alpha / r", "32",
     1e-30, 1e30, NULL},
    {"dropout", PQ_OPT_FLOAT, "dropout on the adapter input (training only)", "0", 0, 1, NULL},
    {"seed", PQ_OPT_INT, "seed of A's initialisation (SPEC 6 LCG)", "1", 0, 9007199254740992.0,
     NULL},
};

/* One LCG draw (SPEC 6 state update) as a uniform double in [0, 1) from the top 24 bits. */
static double pq_lora_uniform(uint64_t *state) {
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*state >> 40) * (1.0 / 16777216.0);
}

/* An adapter already built for a weight value (shared weights share it). */
typedef struct pq_lora_adapter {
    uint32_t weight; /* weight constant value id */
    bool conv;
    int64_t d_in, d_out;
    uint32_t a, b, scale; /* constant value ids */
} pq_lora_adapter;

/* Builds the adapter constants of weight wv for a layer (conv: ksp spatial dims of size 1). */
static enum pq_status pq_lora_constants(pq_graph *g, const pq_weight_view *wv, bool conv, int ksp,
                                        int64_t d_in, int64_t d_out, int64_t r, float scale,
                                        uint64_t *state, pq_lora_adapter *ad, pq_error *err) {
    enum pq_status st = PQ_OK;
    size_t na = (size_t)(r * d_in);
    float *a = pq_malloc(sizeof(float) * (na ? na : 1));
    if (!a) return pq_error_nomem(err, "lora A");
    double bound = 1.0 / sqrt((double)d_in);
    for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < d_in; j++) {
            float v = (float)((2.0 * pq_lora_uniform(state) - 1.0) * bound);
            if (conv)
                a[i * d_in + j] = v; /* A [r, Cin, 1..] */
            else
                a[j * r + i] = v; /* A^T [d_in, r] */
        }
    int64_t da[PQ_MAX_RANK], db[PQ_MAX_RANK];
    int rank = 2;
    if (conv) {
        rank = 2 + ksp;
        da[0] = r, da[1] = d_in, db[0] = d_out, db[1] = r;
        for (int k = 0; k < ksp; k++)
            da[2 + k] = db[2 + k] = 1;
    } else {
        da[0] = d_in, da[1] = r, db[0] = r, db[1] = d_out;
    }
    char name[512];
    snprintf(name, sizeof name, "%s.lora_A", wv->name);
    PQ_TRY_GOTO(st, pq_build_const_f32(g, name, rank, da, a, &ad->a, err), cleanup);
    snprintf(name, sizeof name, "%s.lora_B", wv->name);
    PQ_TRY_GOTO(st, pq_build_const_f32(g, name, rank, db, NULL, &ad->b, err), cleanup);
    snprintf(name, sizeof name, "%s.lora_scale", wv->name);
    PQ_TRY_GOTO(st, pq_build_const_f32(g, name, 0, NULL, &scale, &ad->scale, err), cleanup);
    ad->weight = wv->value;
    ad->conv = conv;
    ad->d_in = d_in;
    ad->d_out = d_out;
cleanup:
    pq_free(a);
    return st;
}

/* Copies the INTS attribute name of node src to node dst when present. */
static enum pq_status pq_lora_copy_ints(pq_graph *g, uint32_t src, uint32_t dst, const char *name,
                                        pq_error *err) {
    const int64_t *v = NULL;
    uint32_t n = 0;
    if (!pq_node_attr_ints(&g->nodes[src], name, &v, &n)) return PQ_OK;
    int64_t copy[2 * PQ_CONV_MAX_SPATIAL];
    if (n > 2 * PQ_CONV_MAX_SPATIAL) n = 2 * PQ_CONV_MAX_SPATIAL;
    memcpy(copy, v, sizeof(int64_t) * n);
    return pq_node_set_ints(g, dst, name, copy, n, err);
}

/* Moves the fused activation attributes of node from to node to. */
static enum pq_status pq_lora_move_activation(pq_graph *g, uint32_t from, uint32_t to,
                                              pq_error *err) {
    static const char *const names[] = {"activation", "activation_alpha", "activation_beta"};
    for (int k = 0; k < 3; k++) {
        const pq_attr *at = pq_node_attr(&g->nodes[from], names[k]);
        if (!at) continue;
        if (at->type == PQ_ATTR_STRING) {
            const char *s = at->u.s; /* arena string: stays valid */
            PQ_TRY(pq_node_set_string(g, to, names[k], s, err));
        } else {
            PQ_TRY(pq_node_set_float(g, to, names[k], at->u.f, err));
        }
        pq_node_remove_attr(g, from, names[k]);
    }
    return PQ_OK;
}

/* Adds node op(inputs) named from hint and types its output; returns output value and node. */
static enum pq_status pq_lora_node(pq_graph *g, enum pq_op op, const char *layer, const char *what,
                                   const uint32_t *in, uint32_t n_in, uint32_t *out_v,
                                   uint32_t *out_n, pq_error *err) {
    char hint[512];
    snprintf(hint, sizeof hint, "%s.%s", layer, what);
    return pq_build(g, op, hint, in, n_in, out_v, out_n, err);
}

/* Inserts the adapter branch for layer nid with adapter ad. */
static enum pq_status pq_lora_insert(pq_graph *g, uint32_t nid, const pq_lora_adapter *ad,
                                     double dropout, pq_error *err) {
    char layer[256];
    snprintf(layer, sizeof layer, "%s", g->nodes[nid].name);
    enum pq_op op = ad->conv ? PQ_OP_CONV : PQ_OP_MATMUL;
    uint32_t x = pq_node_input(&g->nodes[nid], 0);
    uint32_t y = pq_node_output(&g->nodes[nid], 0);
    uint32_t t, u, s, y2, n_down, n_up, n_mul, n_add;
    uint32_t in[2] = {x, ad->a};
    PQ_TRY(pq_lora_node(g, op, layer, "lora_down", in, 2, &t, &n_down, err));
    if (ad->conv) {
        static const char *const geo[] = {"strides", "pads", "dilations"};
        for (int k = 0; k < 3; k++)
            PQ_TRY(pq_lora_copy_ints(g, nid, n_down, geo[k], err));
        const char *ap = pq_node_attr_string(&g->nodes[nid], "auto_pad", NULL);
        if (ap) PQ_TRY(pq_node_set_string(g, n_down, "auto_pad", ap, err));
    }
    if (dropout > 0) PQ_TRY(pq_node_set_float(g, n_down, "lora_dropout", (float)dropout, err));
    PQ_TRY(pq_infer_node(g, n_down, err));
    in[0] = t, in[1] = ad->b;
    PQ_TRY(pq_lora_node(g, op, layer, "lora_up", in, 2, &u, &n_up, err));
    PQ_TRY(pq_infer_node(g, n_up, err));
    in[0] = u, in[1] = ad->scale;
    PQ_TRY(pq_lora_node(g, PQ_OP_MUL, layer, "lora_scaled", in, 2, &s, &n_mul, err));
    PQ_TRY(pq_infer_node(g, n_mul, err));
    in[0] = y, in[1] = s;
    PQ_TRY(pq_lora_node(g, PQ_OP_ADD, layer, "lora_add", in, 2, &y2, &n_add, err));
    PQ_TRY(pq_lora_move_activation(g, nid, n_add, err));
    PQ_TRY(pq_infer_node(g, n_add, err));
    /* every reader of y (and the graph output) reads y2; the Add keeps reading y */
    PQ_TRY(pq_graph_replace_all_uses(g, y, y2, err));
    return pq_graph_set_input(g, n_add, 0, y, err);
}

static enum pq_status pq_lora_run(pq_graph *g, const pq_pass_opts *o, pq_pass_ctx *ctx,
                                  pq_error *err) {
    enum pq_status st = PQ_OK;
    pq_weight_target *targets = NULL;
    pq_lora_adapter *adapters = NULL;
    uint32_t n_targets = 0, n_adapters = 0, n_layers = 0, n_skipped = 0;
    int64_t r = pq_opts_int(o, "rank");
    double alpha = pq_opts_float(o, "alpha");
    double dropout = pq_opts_float(o, "dropout");
    uint64_t state = (uint64_t)pq_opts_int(o, "seed");
    float scale = (float)(alpha / (double)r);

    PQ_TRY_GOTO(st,
                pq_select_weights_ex(g, o, PQ_SELECT_THROUGH_FAKE_QUANT, &targets, &n_targets, err),
                cleanup);
    adapters = pq_calloc(n_targets ? n_targets : 1, sizeof *adapters);
    if (!adapters) {
        st = pq_error_nomem(err, "lora adapters");
        goto cleanup;
    }
    for (uint32_t i = 0; i < n_targets; i++) {
        const pq_weight_target *tg = &targets[i];
        const pq_node *nd = &g->nodes[tg->node];
        const char *opn = pq_op_name(nd->op);
        bool conv = nd->op == PQ_OP_CONV;
        int ksp = 0;
        int64_t d_in = tg->view.cols, d_out = tg->view.rows;
        if (nd->op == PQ_OP_GEMM && pq_node_attr_int(nd, "transA", 0) != 0) {
            pq_pass_log(ctx, 1, "node '%s' (Gemm): skipped, transA = 1", nd->name);
            n_skipped++;
            continue;
        }
        if (nd->op == PQ_OP_MATMUL && tg->view.batch != 1) {
            pq_pass_log(ctx, 1, "node '%s' (MatMul): skipped, batched weight '%s' (rank %d)",
                        nd->name, tg->view.name, tg->view.rank);
            n_skipped++;
            continue;
        }
        if (conv) {
            bool one = pq_node_attr_int(nd, "group", 1) == 1;
            ksp = tg->view.rank - 2;
            for (int k = 2; k < tg->view.rank; k++)
                one = one && tg->view.dims[k] == 1;
            if (!one) {
                pq_pass_log(ctx, 1,
                            "node '%s' (Conv): skipped, only 1x1 convolutions with group 1 are "
                            "linear layers for LoRA",
                            nd->name);
                n_skipped++;
                continue;
            }
            d_in = tg->view.dims[1];
            d_out = tg->view.dims[0];
        }
        if (r > d_in || r > d_out) {
            pq_pass_log(ctx, 1, "node '%s' (%s): skipped, rank %lld > min(d_in %lld, d_out %lld)",
                        nd->name, opn, (long long)r, (long long)d_in, (long long)d_out);
            n_skipped++;
            continue;
        }
        if (pq_node_attr(nd, "activation")) {
            pq_activation act;
            pq_error e2;
            if (pq_node_activation(nd, &act, &e2) != PQ_OK) {
                pq_pass_log(ctx, 1, "node '%s' (%s): skipped, cannot move its activation: %s",
                            nd->name, opn, e2.msg);
                n_skipped++;
                continue;
            }
        }
        const pq_lora_adapter *ad = NULL;
        for (uint32_t k = 0; k < n_adapters && !ad; k++)
            if (adapters[k].weight == tg->view.value && adapters[k].conv == conv &&
                adapters[k].d_in == d_in && adapters[k].d_out == d_out)
                ad = &adapters[k];
        if (!ad) {
            char name[512];
            snprintf(name, sizeof name, "%s.lora_A", tg->view.name);
            if (pq_graph_find_value(g, name) != PQ_NONE) {
                pq_pass_log(ctx, 1, "node '%s' (%s): skipped, weight '%s' already has an adapter",
                            nd->name, opn, tg->view.name);
                n_skipped++;
                continue;
            }
            pq_weight_view wv = tg->view;
            PQ_TRY_GOTO(st,
                        pq_lora_constants(g, &wv, conv, ksp, d_in, d_out, r, scale, &state,
                                          &adapters[n_adapters], err),
                        cleanup);
            ad = &adapters[n_adapters++];
        }
        st = pq_lora_insert(g, tg->node, ad, dropout, err);
        if (st != PQ_OK) {
            pq_error_prefix(err, "node '%s': ", g->nodes[tg->node].name);
            goto cleanup;
        }
        n_layers++;
    }
    PQ_TRY_GOTO(st, pq_graph_toposort(g, err), cleanup);
    pq_pass_log(ctx, 1,
                "added adapters to %u layers (%u adapters, rank %lld, alpha %g), skipped %u",
                n_layers, n_adapters, (long long)r, alpha, n_skipped);

cleanup:
    pq_free(targets);
    pq_free(adapters);
    return st;
}

const pq_pass pq_pass_lora = {
    .name = "lora",
    .summary = "add LoRA adapter branches (B = 0: function unchanged) to linear layers (SPEC 8)",
    .options = pq_lora_options,
    .n_options = sizeof pq_lora_options / sizeof pq_lora_options[0],
    .run = pq_lora_run,
    .check = pq_select_check,
};
