/* fuse-activations: an activation (Relu, Clip with constant bounds, LeakyRelu, Sigmoid,
 * HardSigmoid, HardSwish, Tanh, and the patterns x*Sigmoid(x) -> Swish, erf-form Gelu -> Gelu)
 * reading the only use of a Conv/ConvTranspose/Gemm/MatMul/Add/ConvAdd/Packed* output moves into
 * that node's `activation`, `activation_alpha`, `activation_beta` attributes. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "canon.h"
#include "ir/infer_piqc.h"

/* Ops that execute a fused activation. */
static bool pq_fuse_host(enum pq_op op) {
    switch (op) {
    case PQ_OP_CONV:
    case PQ_OP_CONV_TRANSPOSE:
    case PQ_OP_GEMM:
    case PQ_OP_MATMUL:
    case PQ_OP_ADD:
    case PQ_OP_PACKED_MAT_MUL:
    case PQ_OP_PACKED_CONV:
    case PQ_OP_CONV_ADD: /* fuse-residual's Conv + addend: the activation runs after the sum */
        return true;
    default:
        return false;
    }
}

/* Producer of x when it can take a fused activation and x is f32 with exactly `uses` node uses
 * (and no graph output); else PQ_NONE. */
static uint32_t pq_fuse_host_of(const pq_rewrite_ctx *rc, uint32_t x, uint32_t uses) {
    const pq_graph *g = rc->g;
    if (x == PQ_NONE || g->values[x].dtype != PQ_DTYPE_F32) return PQ_NONE;
    if (rc->uses.n_graph_outputs[x] || pq_uses_count(&rc->uses, x) != uses) return PQ_NONE;
    uint32_t p = pq_value_producer(g, x);
    if (p == PQ_NONE || !pq_fuse_host(g->nodes[p].op)) return PQ_NONE;
    if (g->nodes[p].n_outputs != 1 || pq_canon_has_activation(&g->nodes[p])) return PQ_NONE;
    return p;
}

/* Sets the activation of node host and makes the uses of `out` read host's output. m->i[0] is the
 * kind, m->f[0..1] alpha/beta, m->i[1] whether alpha is given, m->i[2] whether beta is. */
static enum pq_status pq_fuse_apply(pq_rewrite_ctx *rc, uint32_t host, uint32_t out,
                                    const pq_match *m, pq_error *err) {
    pq_graph *g = rc->g;
    PQ_TRY(pq_node_set_string(g, host, "activation", pq_act_name((enum pq_act)m->i[0]), err));
    if (m->i[1]) PQ_TRY(pq_node_set_float(g, host, "activation_alpha", m->f[0], err));
    if (m->i[2]) PQ_TRY(pq_node_set_float(g, host, "activation_beta", m->f[1], err));
    return pq_graph_replace_all_uses(g, out, g->nodes[host].outputs[0], err);
}

/* Unary activation nodes: m->node[0] = host. */
static bool pq_fuse_unary_match(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m) {
    const pq_graph *g = rc->g;
    const pq_node *n = &g->nodes[nid];
    uint32_t host = pq_fuse_host_of(rc, n->inputs[0], 1);
    if (host == PQ_NONE) return false;
    switch (n->op) {
    case PQ_OP_RELU:
        m->i[0] = PQ_ACT_RELU;
        break;
    case PQ_OP_SIGMOID:
        m->i[0] = PQ_ACT_SIGMOID;
        break;
    case PQ_OP_TANH:
        m->i[0] = PQ_ACT_TANH;
        break;
    case PQ_OP_HARD_SWISH:
        m->i[0] = PQ_ACT_HARD_SWISH;
        break;
    case PQ_OP_LEAKY_RELU:
        m->i[0] = PQ_ACT_LEAKY_RELU;
        m->f[0] = pq_node_attr_float(n, "alpha", 0.01f);
        m->i[1] = 1;
        break;
    case PQ_OP_HARD_SIGMOID:
        m->i[0] = PQ_ACT_HARD_SIGMOID;
        m->f[0] = pq_node_attr_float(n, "alpha", 0.2f);
        m->f[1] = pq_node_attr_float(n, "beta", 0.5f);
        m->i[1] = m->i[2] = 1;
        break;
    case PQ_OP_CLIP: {
        m->i[0] = PQ_ACT_CLIP;
        uint32_t lo = pq_node_input(n, 1), hi = pq_node_input(n, 2);
        float f;
        if (lo != PQ_NONE) {
            if (!pq_canon_scalar(g, lo, PQ_MAX_RANK, &f)) return false;
            m->f[0] = f;
            m->i[1] = 1;
        }
        if (hi != PQ_NONE) {
            if (!pq_canon_scalar(g, hi, PQ_MAX_RANK, &f)) return false;
            m->f[1] = f;
            m->i[2] = 1;
        }
        break;
    }
    default:
        return false;
    }
    m->node[0] = host;
    return true;
}

static enum pq_status pq_fuse_unary_rewrite(pq_rewrite_ctx *rc, uint32_t nid, const pq_match *m,
                                            pq_error *err) {
    return pq_fuse_apply(rc, m->node[0], rc->g->nodes[nid].outputs[0], m, err);
}

/* x * Sigmoid(x) (any operand order) with x a host output used only here: Swish. */
static bool pq_fuse_swish_match(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m) {
    const pq_graph *g = rc->g;
    pq_canon_product p;
    if (!pq_canon_flatten_product(rc, g->nodes[nid].outputs[0], &p) || p.n != 2 || p.k != 1.0)
        return false;
    for (int a = 0; a < 2; a++) {
        uint32_t x = p.factor[a], s = p.factor[1 - a];
        uint32_t sid = pq_value_producer(g, s);
        if (sid == PQ_NONE || g->nodes[sid].op != PQ_OP_SIGMOID || g->nodes[sid].inputs[0] != x)
            continue;
        if (!pq_uses_single(&rc->uses, s)) continue;
        if (pq_canon_rank(g, x) != pq_canon_rank(g, g->nodes[nid].outputs[0])) continue;
        uint32_t host = pq_fuse_host_of(rc, x, 2);
        if (host == PQ_NONE) continue;
        m->node[0] = host;
        m->i[0] = PQ_ACT_SWISH;
        return true;
    }
    return false;
}

/* 0.5 * x * (1 + erf(x / sqrt 2)) in any operand order, x / 1.41421 or x * 0.70711: Gelu. */
static bool pq_fuse_gelu_match(pq_rewrite_ctx *rc, uint32_t nid, pq_match *m) {
    const pq_graph *g = rc->g;
    pq_canon_product p;
    uint32_t out = g->nodes[nid].outputs[0];
    if (!pq_canon_flatten_product(rc, out, &p) || p.n != 2 ||
        !pq_canon_near((float)p.k, 0.5f, 1e-6f))
        return false;
    int rank = pq_canon_rank(g, out);
    for (int a = 0; a < 2; a++) {
        uint32_t x = p.factor[a], e = p.factor[1 - a];
        if (pq_canon_rank(g, x) != rank || !pq_uses_single(&rc->uses, e)) continue;
        uint32_t add = pq_value_producer(g, e);
        if (add == PQ_NONE || g->nodes[add].op != PQ_OP_ADD) continue;
        const pq_node *an = &g->nodes[add];
        uint32_t erf_v = PQ_NONE;
        for (int k = 0; k < 2; k++)
            if (pq_canon_scalar_is(g, an->inputs[1 - k], rank, 1.0f, 0.0f)) erf_v = an->inputs[k];
        if (erf_v == PQ_NONE || !pq_uses_single(&rc->uses, erf_v)) continue;
        uint32_t erf = pq_value_producer(g, erf_v);
        if (erf == PQ_NONE || g->nodes[erf].op != PQ_OP_ERF) continue;
        uint32_t z = g->nodes[erf].inputs[0];
        uint32_t zid = pq_value_producer(g, z);
        if (zid == PQ_NONE || !pq_uses_single(&rc->uses, z)) continue;
        const pq_node *zn = &g->nodes[zid];
        bool ok = false;
        if (zn->op == PQ_OP_DIV && zn->inputs[0] == x)
            ok = pq_canon_scalar_is(g, zn->inputs[1], rank, 1.41421356f, 1e-5f);
        else if (zn->op == PQ_OP_MUL)
            for (int k = 0; k < 2 && !ok; k++)
                ok = zn->inputs[k] == x &&
                     pq_canon_scalar_is(g, zn->inputs[1 - k], rank, 0.70710678f, 1e-5f);
        if (!ok) continue;
        uint32_t host = pq_fuse_host_of(rc, x, 2);
        if (host == PQ_NONE) continue;
        m->node[0] = host;
        m->i[0] = PQ_ACT_GELU;
        return true;
    }
    return false;
}

static const pq_rewrite_rule pq_fuse_rules[] = {
    {"fuse-relu", PQ_OP_RELU, pq_fuse_unary_match, pq_fuse_unary_rewrite},
    {"fuse-clip", PQ_OP_CLIP, pq_fuse_unary_match, pq_fuse_unary_rewrite},
    {"fuse-leaky-relu", PQ_OP_LEAKY_RELU, pq_fuse_unary_match, pq_fuse_unary_rewrite},
    {"fuse-sigmoid", PQ_OP_SIGMOID, pq_fuse_unary_match, pq_fuse_unary_rewrite},
    {"fuse-hard-sigmoid", PQ_OP_HARD_SIGMOID, pq_fuse_unary_match, pq_fuse_unary_rewrite},
    {"fuse-hard-swish", PQ_OP_HARD_SWISH, pq_fuse_unary_match, pq_fuse_unary_rewrite},
    {"fuse-tanh", PQ_OP_TANH, pq_fuse_unary_match, pq_fuse_unary_rewrite},
    {"fuse-swish", PQ_OP_MUL, pq_fuse_swish_match, pq_fuse_unary_rewrite},
    {"fuse-gelu", PQ_OP_MUL, pq_fuse_gelu_match, pq_fuse_unary_rewrite},
};

static enum pq_status pq_fuse_activations_run(pq_graph *g, const pq_pass_opts *opts,
                                              pq_pass_ctx *ctx, pq_error *err) {
    (void)opts;
    return pq_canon_run(g, pq_fuse_rules, sizeof pq_fuse_rules / sizeof pq_fuse_rules[0], NULL, ctx,
                        NULL, err);
}

const pq_pass pq_pass_fuse_activations = {
    .name = "fuse-activations",
    .summary =
        "move Relu/Clip/LeakyRelu/Sigmoid/HardSigmoid/HardSwish/Tanh/Swish/Gelu into the preceding "
        "Conv/Gemm/MatMul/Add as its fused activation",
    .options = NULL,
    .n_options = 0,
    .run = pq_fuse_activations_run,
};
