/* Per-layer probes (quantize one layer alone with the fake-quant pass on a clone, measure drift
 * through the calibration provider) and the greedy bit allocation of mixed precision. */
#include "mixed_plan.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"
#include "manager.h"
#include "select.h"

void pq_mp_layers_free(pq_mp_layer *layers, uint32_t n) {
    if (!layers) return;
    for (uint32_t i = 0; i < n; i++)
        pq_free(layers[i].nodes);
    pq_free(layers);
}

enum pq_status pq_mp_layers(const pq_graph *g, const pq_pass_opts *sel, pq_mp_layer **out,
                            uint32_t *n, pq_error *err) {
    *out = NULL;
    *n = 0;
    pq_weight_target *tg = NULL;
    uint32_t nt = 0, nl = 0;
    enum pq_status st = PQ_OK;
    PQ_TRY(pq_select_weights(g, sel, &tg, &nt, err));
    pq_mp_layer *l = pq_calloc(nt ? nt : 1, sizeof *l);
    if (!l) {
        st = pq_error_nomem(err, "layer list");
        goto cleanup;
    }
    for (uint32_t t = 0; t < nt; t++) {
        uint32_t k = 0;
        while (k < nl && l[k].value != tg[t].view.value)
            k++;
        if (k == nl) {
            const pq_weight_view *wv = &tg[t].view;
            l[k].value = wv->value;
            l[k].value_name = wv->name;
            l[k].node_name = g->nodes[tg[t].node].name;
            l[k].op = wv->op;
            l[k].rank = wv->rank;
            memcpy(l[k].dims, wv->dims, sizeof wv->dims);
            l[k].rows = wv->batch * wv->rows;
            l[k].cols = wv->cols;
            l[k].nodes = pq_calloc(nt, sizeof *l[k].nodes);
            nl++;
            if (!l[k].nodes) {
                st = pq_error_nomem(err, "layer list");
                goto cleanup;
            }
        }
        l[k].nodes[l[k].n_nodes++] = tg[t].node;
    }
    *out = l;
    *n = nl;
    l = NULL;
cleanup:
    pq_mp_layers_free(l, nl);
    pq_free(tg);
    return st;
}

uint64_t pq_mp_format_bytes(const char *format, int64_t rows, int64_t cols, int64_t group) {
    enum pq_qformat qf;
    if (!format || rows < 0 || cols < 0) return 0;
    if (!strcmp(format, "int8")) return (uint64_t)(rows * cols) + 4u * (uint64_t)rows;
    if (!strcmp(format, "f16")) return 2u * (uint64_t)(rows * cols);
    if (pq_qformat_from_name(format, &qf)) return (uint64_t)pq_packed_bytes(qf, rows, cols, group);
    return 0;
}

/* ---- probe pipelines ---------------------------------------------------------------------- */

/* A growable text buffer. */
typedef struct pq_mp_text {
    char *s;
    size_t n, cap;
    bool nomem;
} pq_mp_text;

static void pq_mp_putc(pq_mp_text *t, char c) {
    if (t->nomem) return;
    if (t->n + 2 > t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 256;
        char *ns = pq_realloc(t->s, cap);
        if (!ns) {
            t->nomem = true;
            return;
        }
        t->s = ns;
        t->cap = cap;
    }
    t->s[t->n++] = c;
    t->s[t->n] = '\0';
}

static void pq_mp_puts(pq_mp_text *t, const char *s) {
    for (; *s; s++)
        pq_mp_putc(t, *s);
}

/* s as a YAML double-quoted scalar. */
static void pq_mp_put_quoted(pq_mp_text *t, const char *s) {
    pq_mp_putc(t, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            pq_mp_putc(t, '\\');
            pq_mp_putc(t, (char)c);
        } else if (c < 0x20 || c == 0x7f) {
            char hex[8];
            snprintf(hex, sizeof hex, "\\x%02x", c);
            pq_mp_puts(t, hex);
        } else {
            pq_mp_putc(t, (char)c);
        }
    }
    pq_mp_putc(t, '"');
}

/* s with the POSIX ERE metacharacters escaped. */
static void pq_mp_put_regex_literal(pq_mp_text *t, const char *s) {
    for (; *s; s++) {
        if (strchr(".[]{}()\\*+?^$|", *s)) pq_mp_putc(t, '\\');
        pq_mp_putc(t, *s);
    }
}

/* An option value as YAML value text (for pq_pipeline_set_option). */
static void pq_mp_put_value(pq_mp_text *t, const pq_opt_value *v) {
    char num[64];
    switch (v->schema->type) {
    case PQ_OPT_BOOL:
        pq_mp_puts(t, v->b ? "true" : "false");
        break;
    case PQ_OPT_INT:
        snprintf(num, sizeof num, "%lld", (long long)v->i);
        pq_mp_puts(t, num);
        break;
    case PQ_OPT_FLOAT:
        snprintf(num, sizeof num, "%.17g", v->f);
        pq_mp_puts(t, num);
        break;
    case PQ_OPT_STRING:
    case PQ_OPT_ENUM:
        pq_mp_put_quoted(t, v->s ? v->s : "");
        break;
    default:
        pq_mp_putc(t, '[');
        for (uint32_t i = 0; i < v->n_list; i++) {
            if (i) pq_mp_puts(t, ", ");
            pq_mp_put_quoted(t, v->list[i] ? v->list[i] : "");
        }
        pq_mp_putc(t, ']');
        break;
    }
}

static enum pq_status pq_mp_set(pq_pipeline *p, const char *name, pq_mp_text *t, pq_error *err) {
    if (t->nomem) return pq_error_nomem(err, "probe options");
    return pq_pipeline_set_option(p, 0, name, t->s ? t->s : "", err);
}

/* Include regex for the layer: its consumer node names (by_weight false) or its weight name. */
static void pq_mp_include(pq_mp_text *t, const pq_graph *g, const pq_mp_layer *layer,
                          bool by_weight) {
    t->n = 0;
    if (t->s) t->s[0] = '\0';
    pq_mp_puts(t, "^(");
    if (by_weight) {
        pq_mp_put_regex_literal(t, layer->value_name);
    } else {
        for (uint32_t i = 0; i < layer->n_nodes; i++) {
            if (i) pq_mp_putc(t, '|');
            pq_mp_put_regex_literal(t, g->nodes[layer->nodes[i]].name);
        }
    }
    pq_mp_puts(t, ")$");
}

/* True when the options of p select exactly the layer's nodes on g. */
static enum pq_status pq_mp_isolates(const pq_graph *g, const pq_pipeline *p,
                                     const pq_mp_layer *layer, bool *ok, pq_error *err) {
    pq_weight_target *tg = NULL;
    uint32_t nt = 0;
    PQ_TRY(pq_select_weights(g, &p->entries[0].opts, &tg, &nt, err));
    *ok = nt == layer->n_nodes;
    for (uint32_t i = 0; i < nt && *ok; i++)
        *ok = tg[i].node == layer->nodes[i] && tg[i].view.value == layer->value;
    pq_free(tg);
    return PQ_OK;
}

enum pq_status pq_mp_probe_pipeline(const pq_graph *g, const pq_mp_layer *layer,
                                    const pq_pass_opts *base, const char *format, int64_t group,
                                    pq_pipeline **out, pq_error *err) {
    *out = NULL;
    static const char *const fq[] = {"fake-quant"};
    pq_pipeline *p = NULL;
    pq_mp_text t = {0};
    enum pq_status st = PQ_OK;
    PQ_TRY(pq_pipeline_from_passes(fq, 1, &p, err));
    if (base) {
        for (uint32_t i = 0; i < base->n; i++) {
            const pq_opt_value *v = &base->v[i];
            const char *name = v->schema->name;
            if (!v->set || !strcmp(name, "include") || !strcmp(name, "exclude") ||
                !strcmp(name, "skip") || !strcmp(name, "targets") || !strcmp(name, "min-elements"))
                continue;
            t.n = 0;
            if (t.s) t.s[0] = '\0';
            pq_mp_put_value(&t, v);
            PQ_TRY_GOTO(st, pq_mp_set(p, name, &t, err), cleanup);
        }
    }
    if (format) PQ_TRY_GOTO(st, pq_pipeline_set_option(p, 0, "format", format, err), cleanup);
    if (group > 0) {
        char num[32];
        snprintf(num, sizeof num, "%lld", (long long)group);
        PQ_TRY_GOTO(st, pq_pipeline_set_option(p, 0, "group", num, err), cleanup);
    }
    PQ_TRY_GOTO(st, pq_pipeline_set_option(p, 0, "targets", "[MatMul, Gemm, Conv]", err), cleanup);
    PQ_TRY_GOTO(st, pq_pipeline_set_option(p, 0, "min-elements", "0", err), cleanup);
    PQ_TRY_GOTO(st, pq_pipeline_set_option(p, 0, "skip", "[]", err), cleanup);
    bool ok = false;
    for (int attempt = 0; attempt < 2 && !ok; attempt++) {
        pq_mp_text re = {0};
        pq_mp_include(&re, g, layer, attempt == 1);
        t.n = 0;
        if (t.s) t.s[0] = '\0';
        if (!re.nomem) pq_mp_put_quoted(&t, re.s);
        pq_free(re.s);
        if (re.nomem) t.nomem = true;
        PQ_TRY_GOTO(st, pq_mp_set(p, "include", &t, err), cleanup);
        PQ_TRY_GOTO(st, pq_mp_isolates(g, p, layer, &ok, err), cleanup);
    }
    if (!ok) {
        st = pq_error_set(err, PQ_ERR_INTERNAL,
                          "layer '%s' (weight '%s'): no include pattern selects exactly its "
                          "nodes",
                          layer->node_name, layer->value_name);
        goto cleanup;
    }
    *out = p;
    p = NULL;
cleanup:
    pq_free(t.s);
    pq_pipeline_destroy(p);
    return st;
}

enum pq_status pq_mp_probe(const pq_graph *g, const pq_mp_layer *layer, const pq_pass_opts *base,
                           const char *format, int64_t group, const pq_calib_provider *calib,
                           int64_t max_samples, pq_drift *out, pq_error *err) {
    memset(out, 0, sizeof *out);
    if (!calib || !calib->drift || !calib->samples)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "measuring the drift of layer '%s' needs calibration data "
                            "(--calib-data)",
                            layer->node_name);
    enum pq_status st = PQ_OK;
    pq_pipeline *p = NULL;
    pq_graph *c = NULL;
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    ctx.progress = false;
    ctx.calib = calib;
    PQ_TRY_GOTO(st, pq_mp_probe_pipeline(g, layer, base, format, group, &p, err), cleanup);
    PQ_TRY_GOTO(st, pq_graph_clone(g, &c, err), cleanup);
    for (uint32_t i = 0; i < c->n_nodes; i++)
        if (pq_node_attr(&c->nodes[i], "quant_format")) pq_node_remove_attr(c, i, "quant_format");
    PQ_TRY_GOTO(st, pq_pipeline_run(c, p, NULL, &ctx, NULL, err), cleanup);
    st = calib->drift(calib->ctx, c, max_samples, out, err);
cleanup:
    if (st != PQ_OK)
        pq_error_prefix(err, "layer '%s' as %s: ", layer->node_name,
                        format ? format : "configured format");
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(c);
    pq_pipeline_destroy(p);
    return st;
}

/* ---- bit allocation ----------------------------------------------------------------------- */

bool pq_mp_metric_from_name(const char *name, enum pq_mp_metric *out) {
    if (!name) return false;
    if (!strcmp(name, "cosine"))
        *out = PQ_MP_COSINE;
    else if (!strcmp(name, "kl"))
        *out = PQ_MP_KL;
    else if (!strcmp(name, "max-abs"))
        *out = PQ_MP_MAX_ABS;
    else
        return false;
    return true;
}

double pq_mp_metric_value(enum pq_mp_metric m, const pq_drift *d) {
    switch (m) {
    case PQ_MP_KL:
        return d->has_kl ? d->kl : NAN;
    case PQ_MP_MAX_ABS:
        return d->max_abs;
    default:
        return 1.0 - d->cosine;
    }
}

uint64_t pq_mp_budget_bits(double budget_bpw, int64_t weights) {
    double b = floor(budget_bpw * (double)weights + 1e-6);
    return b <= 0 ? 0 : (uint64_t)b;
}

static double pq_mp_finite(double d) {
    return isfinite(d) ? d : 1e300;
}

enum pq_status pq_mp_choose(uint32_t n_layers, uint32_t n_formats, const double *drift,
                            const uint64_t *bits, int64_t weights, double budget_bpw,
                            uint32_t *choice, uint64_t *bits_out, pq_error *err) {
    uint64_t used = 0, budget = pq_mp_budget_bits(budget_bpw, weights);
    if (n_formats == 0 && n_layers)
        return pq_error_set(err, PQ_ERR_INVALID, "no candidate formats");
    for (uint32_t l = 0; l < n_layers; l++) {
        const double *d = drift + (size_t)l * n_formats;
        const uint64_t *b = bits + (size_t)l * n_formats;
        uint32_t c = 0;
        for (uint32_t f = 1; f < n_formats; f++)
            if (b[f] < b[c] || (b[f] == b[c] && pq_mp_finite(d[f]) < pq_mp_finite(d[c]))) c = f;
        choice[l] = c;
        used += b[c];
    }
    if (used > budget) {
        double min_bpw = weights ? (double)used / (double)weights : 0.0;
        return pq_error_set(err, PQ_ERR_INVALID,
                            "budget-bpw %g is below the minimum achievable %.4f bits per weight "
                            "(every layer in its cheapest format: %llu bits for %lld weights)",
                            budget_bpw, ceil(min_bpw * 1e4) / 1e4, (unsigned long long)used,
                            (long long)weights);
    }
    for (;;) {
        uint32_t bl = UINT32_MAX, bf = 0;
        double best = 0;
        for (uint32_t l = 0; l < n_layers; l++) {
            const double *d = drift + (size_t)l * n_formats;
            const uint64_t *b = bits + (size_t)l * n_formats;
            uint32_t c = choice[l];
            for (uint32_t f = 0; f < n_formats; f++) {
                if (f == c || b[f] < b[c]) continue;
                double gain = pq_mp_finite(d[c]) - pq_mp_finite(d[f]);
                uint64_t extra = b[f] - b[c];
                if (!(gain > 0) || used + extra > budget) continue;
                double ratio = extra ? gain / (double)extra : INFINITY;
                if (bl == UINT32_MAX || ratio > best) {
                    bl = l;
                    bf = f;
                    best = ratio;
                }
            }
        }
        if (bl == UINT32_MAX) break;
        used += bits[(size_t)bl * n_formats + bf] - bits[(size_t)bl * n_formats + choice[bl]];
        choice[bl] = bf;
    }
    *bits_out = used;
    return PQ_OK;
}
