/* Helpers shared by the local rewrite passes: constant queries, product flattening for the
 * activation patterns (HardSwish, Gelu, Swish) and running a rule table with a log line. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "canon.h"

int pq_canon_rank(const pq_graph *g, uint32_t v) {
    if (v == PQ_NONE || v >= g->n_values) return -1;
    return g->values[v].shape.rank;
}

const pq_tensor *pq_canon_constant(const pq_graph *g, uint32_t v) {
    if (v == PQ_NONE || v >= g->n_values || (g->values[v].flags & PQ_VALUE_INPUT)) return NULL;
    return g->values[v].constant;
}

const pq_tensor *pq_canon_const_f32(const pq_graph *g, uint32_t v) {
    const pq_tensor *t = pq_canon_constant(g, v);
    return t && t->dtype == PQ_DTYPE_F32 ? t : NULL;
}

bool pq_canon_scalar(const pq_graph *g, uint32_t v, int max_rank, float *out) {
    const pq_tensor *t = pq_canon_constant(g, v);
    if (!t || max_rank < 0 || t->rank > max_rank) return false;
    return pq_value_const_scalar_f32(g, v, out);
}

bool pq_canon_near(float a, float b, float rtol) {
    float m = fabsf(a) > fabsf(b) ? fabsf(a) : fabsf(b);
    return fabsf(a - b) <= rtol * m;
}

bool pq_canon_scalar_is(const pq_graph *g, uint32_t v, int max_rank, float want, float rtol) {
    float f;
    return pq_canon_scalar(g, v, max_rank, &f) && pq_canon_near(f, want, rtol);
}

bool pq_canon_const_ints(const pq_graph *g, uint32_t v, int64_t *out, int max, int *n) {
    const pq_tensor *t = pq_canon_constant(g, v);
    if (!t || !pq_dtype_is_integer(t->dtype) || t->rank > 1) return false;
    int64_t numel = pq_tensor_numel(t);
    if (numel > max) return false;
    for (int64_t i = 0; i < numel; i++)
        out[i] = pq_dtype_load_i64(t->dtype, t->data, (size_t)i);
    *n = (int)numel;
    return true;
}

bool pq_canon_escapes(const pq_rewrite_ctx *rc, uint32_t v, uint32_t uses) {
    if (rc->uses.n_graph_outputs[v] > 0) return true;
    return pq_uses_count(&rc->uses, v) > uses;
}

bool pq_canon_has_activation(const pq_node *n) {
    return pq_node_attr(n, "activation") != NULL;
}

static bool pq_canon_flatten_rec(const pq_rewrite_ctx *rc, uint32_t v, int rank, bool root,
                                 int depth, pq_canon_product *p) {
    const pq_graph *g = rc->g;
    float c;
    if (pq_canon_scalar(g, v, rank, &c)) {
        p->k *= c;
        return true;
    }
    uint32_t nid = pq_value_producer(g, v);
    bool inner = nid != PQ_NONE && depth < 6 && (root || pq_uses_single(&rc->uses, v));
    if (inner) {
        const pq_node *n = &g->nodes[nid];
        if (n->op == PQ_OP_MUL)
            return pq_canon_flatten_rec(rc, n->inputs[0], rank, false, depth + 1, p) &&
                   pq_canon_flatten_rec(rc, n->inputs[1], rank, false, depth + 1, p);
        if (n->op == PQ_OP_DIV && pq_canon_scalar(g, n->inputs[1], rank, &c) && c != 0.0f) {
            p->k /= c;
            return pq_canon_flatten_rec(rc, n->inputs[0], rank, false, depth + 1, p);
        }
    }
    if (p->n >= PQ_CANON_MAX_FACTORS) return false;
    p->factor[p->n++] = v;
    return true;
}

bool pq_canon_flatten_product(const pq_rewrite_ctx *rc, uint32_t v, pq_canon_product *p) {
    memset(p, 0, sizeof *p);
    p->k = 1.0;
    int rank = pq_canon_rank(rc->g, v);
    if (rank < 0) return false;
    return pq_canon_flatten_rec(rc, v, rank, true, 0, p);
}

enum pq_status pq_canon_build(pq_graph *g, enum pq_op op, const char *hint, const uint32_t *inputs,
                              uint32_t n_inputs, uint32_t *out_value, uint32_t *out_node,
                              pq_error *err) {
    uint32_t v, nid;
    PQ_TRY(pq_build(g, op, hint, inputs, n_inputs, &v, &nid, err));
    if (out_value) *out_value = v;
    if (out_node) *out_node = nid;
    return PQ_OK;
}

enum pq_status pq_canon_const(pq_graph *g, const char *hint, int rank, const int64_t *dims,
                              const float *data, uint32_t *out_value, pq_error *err) {
    return pq_build_const_f32(g, hint, rank, dims, data, out_value, err);
}

enum pq_status pq_canon_run(pq_graph *g, const pq_rewrite_rule *rules, uint32_t n_rules, void *user,
                            pq_pass_ctx *ctx, uint32_t *total, pq_error *err) {
    enum pq_status st = PQ_OK;
    uint32_t n = 0;
    uint32_t *hits = pq_calloc(n_rules ? n_rules : 1, sizeof *hits);
    if (!hits) return pq_error_nomem(err, "rewrite counters");
    pq_rewrite_opts o = {0};
    o.hits = hits;
    PQ_TRY_GOTO(st, pq_rewrite_run_opts(g, rules, n_rules, user, &o, &n, err), cleanup);
    if (ctx && ctx->verbose >= 1) {
        char line[1024];
        int len = snprintf(line, sizeof line, "%u rewrite%s", n, n == 1 ? "" : "s");
        for (uint32_t r = 0; r < n_rules && len > 0 && (size_t)len < sizeof line; r++)
            if (hits[r])
                len += snprintf(line + len, sizeof line - (size_t)len, "%s %s %u",
                                len && strchr(line, ':') ? "," : ":", rules[r].name, hits[r]);
        pq_pass_log(ctx, 1, "%s", line);
    }
    if (total) *total = n;
cleanup:
    pq_free(hits);
    return st;
}
