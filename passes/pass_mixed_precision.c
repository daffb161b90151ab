/* The mixed-precision pass: measures how far the model's outputs drift when each selected layer
 * alone is quantized to each candidate format, then gives every layer a format (the `quant_format`
 * attribute fake-quant honours) so that the weights fit a bits-per-weight budget. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"
#include "mixed_plan.h"
#include "pass.h"
#include "select.h"

/* Options: the common selection (targets/include/exclude/min-elements/skip; keep them equal to the
 * following fake-quant entry's so both passes see the same layers), then
 * - budget-bpw:  required, 1..32: total stored bits (codes + scale words) over all selected weights
 *                <= budget-bpw * their count (pq_mp_budget_bits);
 * - formats:     candidate formats, default [piq2, piq3, int8];
 * - metric:      what is minimised: cosine (sum of 1 - cosine, default), kl (mean KL of softmax
 *                outputs; needs an output that looks like logits), max-abs;
 * - group:       weights per scale word for piq/q formats, default 256: the bit accounting and the
 *                probes use it, so it MUST match the group of the fake-quant entry that follows;
 * - max-samples: calibration samples per drift measurement, default 64 (0 = all).
 * Probes use fake-quant's default calibration for each format (mse for piq, absmax for q): a
 * gptq fake-quant later usually does better than predicted, but ranks layers the same way. */
static const char *const pq_mp_formats[] = {"piq3", "piq2", "q3", "q2", "int8", "f16", NULL};
static const char *const pq_mp_metrics[] = {"cosine", "kl", "max-abs", NULL};

static const pq_pass_option pq_mixed_precision_options[] = {
    PQ_SELECT_OPTION_ENTRIES,
    {"budget-bpw", PQ_OPT_FLOAT, "bits per weight over the selected weights (required)", NULL, 1,
     32, NULL},
    {"formats", PQ_OPT_ENUM_LIST, "candidate formats", "[piq2, piq3, int8]", 0, 0, pq_mp_formats},
    {"metric", PQ_OPT_ENUM, "drift to minimise", "cosine", 0, 0, pq_mp_metrics},
    {"group", PQ_OPT_INT, "weights per scale word; must match the fake-quant entry's", "256", 8,
     65536, NULL},
    {"max-samples", PQ_OPT_INT, "calibration samples per drift measurement (0 = all)", "64", 0,
     2147483647.0, NULL},
};

/* Everything measured for one run, freed at once. */
typedef struct pq_mp_state {
    pq_mp_layer *layers;
    uint32_t n_layers;
    const char *const *formats;
    uint32_t n_formats;
    double *drift;  /* n_layers x n_formats, metric values */
    uint64_t *bits; /* n_layers x n_formats */
    uint32_t *choice;
} pq_mp_state;

static void pq_mp_state_free(pq_mp_state *s) {
    pq_mp_layers_free(s->layers, s->n_layers);
    pq_free(s->drift);
    pq_free(s->bits);
    pq_free(s->choice);
    memset(s, 0, sizeof *s);
}

/* Measures every (layer, format) pair. */
static enum pq_status pq_mp_measure(const pq_graph *g, pq_mp_state *s, enum pq_mp_metric metric,
                                    int64_t group, int64_t max_samples, pq_pass_ctx *ctx,
                                    pq_error *err) {
    uint32_t nl = s->n_layers, nf = s->n_formats;
    for (uint32_t l = 0; l < nl; l++) {
        const pq_mp_layer *ly = &s->layers[l];
        if (ctx->progress)
            fprintf(stderr, "mixed-precision: layer %u/%u %s (%s, %lldx%lld)\n", l + 1, nl,
                    ly->node_name, pq_op_name(ly->op), (long long)ly->rows, (long long)ly->cols);
        for (uint32_t f = 0; f < nf; f++) {
            size_t k = (size_t)l * nf + f;
            s->bits[k] = 8u * pq_mp_format_bytes(s->formats[f], ly->rows, ly->cols, group);
            if (!s->bits[k])
                return pq_error_set(err, PQ_ERR_INVALID,
                                    "layer '%s': weight '%s' cannot be stored as %s (bad size)",
                                    ly->node_name, ly->value_name, s->formats[f]);
            pq_drift d;
            PQ_TRY(
                pq_mp_probe(g, ly, NULL, s->formats[f], group, ctx->calib, max_samples, &d, err));
            if (metric == PQ_MP_KL && !d.has_kl)
                return pq_error_set(err, PQ_ERR_INVALID,
                                    "metric 'kl' needs a graph output that looks like logits or "
                                    "probabilities (float, rank >= 2, last dim >= 2); use "
                                    "metric: cosine");
            s->drift[k] = pq_mp_metric_value(metric, &d);
        }
    }
    return PQ_OK;
}

/* Logs the plan table and the totals. */
static void pq_mp_log_plan(const pq_pass_ctx *ctx, const pq_mp_state *s, const char *metric,
                           uint64_t bits, int64_t weights, double budget) {
    pq_pass_log(ctx, 1, "plan (%s drift of each layer quantized alone):", metric);
    pq_pass_log(ctx, 1, "  %-40s %-8s %-6s %12s %10s", "layer", "op", "format", "drift", "bits");
    double total = 0;
    for (uint32_t l = 0; l < s->n_layers; l++) {
        size_t k = (size_t)l * s->n_formats + s->choice[l];
        total += s->drift[k];
        pq_pass_log(ctx, 1, "  %-40s %-8s %-6s %12.4e %10llu", s->layers[l].node_name,
                    pq_op_name(s->layers[l].op), s->formats[s->choice[l]], s->drift[k],
                    (unsigned long long)s->bits[k]);
    }
    pq_pass_log(ctx, 1,
                "%u layers, %lld weights: %llu bits = %.4f bits/weight (budget %.4f), predicted "
                "drift sum %.4e",
                s->n_layers, (long long)weights, (unsigned long long)bits,
                weights ? (double)bits / (double)weights : 0.0, budget, total);
}

/* Option checks that need no graph, shared by check() (when a pipeline is read, so the error has
 * file:line:col) and run() (pipelines built in code). */
static enum pq_status pq_mp_check_options(const pq_pass_opts *opts, pq_error *err) {
    if (!pq_opts_is_set(opts, "budget-bpw"))
        return pq_error_set(err, PQ_ERR_INVALID,
                            "option 'budget-bpw' is required (bits per weight, 1..32)");
    int64_t group = pq_opts_int(opts, "group");
    if (group < 8 || group > 65536 || group % 8 != 0)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "option 'group' = %lld must be a multiple of 8 in 8..65536",
                            (long long)group);
    uint32_t nf = 0;
    (void)pq_opts_list(opts, "formats", &nf);
    if (!nf)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "option 'formats' is empty; give at least one of piq3, piq2, q3, q2, "
                            "int8, f16");
    return PQ_OK;
}

static enum pq_status pq_mixed_precision_check(const pq_pass_opts *opts, pq_error *err) {
    PQ_TRY(pq_select_check(opts, err));
    return pq_mp_check_options(opts, err);
}

static enum pq_status pq_mixed_precision_run(pq_graph *g, const pq_pass_opts *opts,
                                             pq_pass_ctx *ctx, pq_error *err) {
    PQ_TRY(pq_mp_check_options(opts, err));
    if (!ctx->calib || !ctx->calib->drift || !ctx->calib->samples)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "mixed-precision needs calibration data (--calib-data)");
    double budget = pq_opts_float(opts, "budget-bpw");
    int64_t group = pq_opts_int(opts, "group");
    int64_t max_samples = pq_opts_int(opts, "max-samples");
    const char *metric_name = pq_opts_string(opts, "metric");
    enum pq_mp_metric metric = PQ_MP_COSINE;
    if (!pq_mp_metric_from_name(metric_name, &metric))
        return pq_error_set(err, PQ_ERR_INVALID,
                            "option 'metric' = '%s' must be one of cosine, kl, max-abs",
                            metric_name ? metric_name : "");
    pq_mp_state s;
    memset(&s, 0, sizeof s);
    s.formats = pq_opts_list(opts, "formats", &s.n_formats);
    enum pq_status st = PQ_OK;
    PQ_TRY(pq_mp_layers(g, opts, &s.layers, &s.n_layers, err));
    if (!s.n_layers) {
        pq_pass_log(ctx, 1, "no layer selected: nothing to plan");
        goto cleanup;
    }
    int64_t weights = 0;
    for (uint32_t l = 0; l < s.n_layers; l++)
        weights += s.layers[l].rows * s.layers[l].cols;
    size_t cells = (size_t)s.n_layers * s.n_formats;
    s.drift = pq_calloc(cells, sizeof *s.drift);
    s.bits = pq_calloc(cells, sizeof *s.bits);
    s.choice = pq_calloc(s.n_layers, sizeof *s.choice);
    if (!s.drift || !s.bits || !s.choice) {
        st = pq_error_nomem(err, "mixed-precision tables");
        goto cleanup;
    }
    /* the cheapest assignment needs no measurement: fail early when it cannot fit */
    for (uint32_t l = 0; l < s.n_layers; l++)
        for (uint32_t f = 0; f < s.n_formats; f++)
            s.bits[(size_t)l * s.n_formats + f] =
                8u * pq_mp_format_bytes(s.formats[f], s.layers[l].rows, s.layers[l].cols, group);
    uint64_t bits = 0;
    PQ_TRY_GOTO(st,
                pq_mp_choose(s.n_layers, s.n_formats, s.drift, s.bits, weights, budget, s.choice,
                             &bits, err),
                cleanup);
    PQ_TRY_GOTO(st, pq_mp_measure(g, &s, metric, group, max_samples, ctx, err), cleanup);
    PQ_TRY_GOTO(st,
                pq_mp_choose(s.n_layers, s.n_formats, s.drift, s.bits, weights, budget, s.choice,
                             &bits, err),
                cleanup);
    for (uint32_t l = 0; l < s.n_layers; l++) {
        size_t k = (size_t)l * s.n_formats + s.choice[l];
        for (uint32_t i = 0; i < s.layers[l].n_nodes; i++) {
            uint32_t nid = s.layers[l].nodes[i];
            PQ_TRY_GOTO(st, pq_node_set_string(g, nid, "quant_format", s.formats[s.choice[l]], err),
                        cleanup);
            float d = isfinite(s.drift[k]) ? (float)s.drift[k] : -1.0f;
            PQ_TRY_GOTO(st, pq_node_set_float(g, nid, "quant_drift", d, err), cleanup);
        }
    }
    pq_mp_log_plan(ctx, &s, metric_name, bits, weights, budget);
cleanup:
    pq_mp_state_free(&s);
    return st;
}

const pq_pass pq_pass_mixed_precision = {
    .name = "mixed-precision",
    .summary = "choose each layer's weight format (quant_format) from its measured output drift "
               "under a bits-per-weight budget (needs calibration data)",
    .options = pq_mixed_precision_options,
    .n_options = sizeof pq_mixed_precision_options / sizeof pq_mixed_precision_options[0],
    .run = pq_mixed_precision_run,
    .check = pq_mixed_precision_check,
};
