/* Per-layer sensitivity probes and mixed-precision bit allocation, shared by the mixed-precision
 * pass and `piqc sensitivity`: quantize one layer alone, measure the output drift, and choose each
 * layer's format under a bits-per-weight budget. */
#ifndef PQ_MIXED_PLAN_H
#define PQ_MIXED_PLAN_H

#include <stdint.h>

#include "pass.h"
#include "pipeline.h"

/* One layer of a plan: a distinct weight with every selected consumer node of it (a weight shared
 * by several nodes is one layer; all its consumers get the same format). */
typedef struct pq_mp_layer {
    uint32_t value;         /* weight value id */
    const char *value_name; /* graph arena */
    const char *node_name;  /* first selected consumer (graph arena) */
    enum pq_op op;          /* its op */
    uint32_t *nodes;        /* every selected consumer node id, graph order (pq_malloc'ed) */
    uint32_t n_nodes;
    int rank; /* stored (ONNX) shape */
    int64_t dims[PQ_MAX_RANK];
    int64_t rows, cols; /* weight view, batch folded into rows */
} pq_mp_layer;

/* The layers pq_select_weights(g, sel) selects, grouped by weight value, in graph order of their
 * first consumer. sel: an instance of a schema starting with PQ_SELECT_OPTION_ENTRIES. *out is
 * pq_malloc'ed (pq_mp_layers_free). Returns what pq_select_weights returns, NOMEM. */
enum pq_status pq_mp_layers(const pq_graph *g, const pq_pass_opts *sel, pq_mp_layer **out,
                            uint32_t *n, pq_error *err);
void pq_mp_layers_free(pq_mp_layer *layers, uint32_t n);

/* Stored bytes of a rows x cols weight in format (SPEC 2-3): packed codes + f16 scale words via
 * pq_packed_bytes for piq3/piq2/q3/q2 at group; int8 rows*cols + 4*rows (f32 scales); f16 2 bytes
 * per weight. 0 for an unknown format or bad sizes. */
uint64_t pq_mp_format_bytes(const char *format, int64_t rows, int64_t cols, int64_t group);

/* A one-entry pipeline of the registered fake-quant pass that quantizes only `layer` of g: options
 * copied from base (a fake-quant instance, e.g. a pipeline's entry; NULL = defaults) except format
 * and group (given; format NULL / group <= 0 keep base's), targets (all), include (the layer's
 * consumer node names, regex-escaped and anchored; or the weight's name when that isolates it
 * better), exclude (none), skip (none) and min-elements (0). It is checked with pq_select_weights
 * on g to select exactly the layer's nodes. INTERNAL when no regex isolates the layer (names
 * it), INVALID for a bad base option, NOMEM. *out: pq_pipeline_destroy it. */
enum pq_status pq_mp_probe_pipeline(const pq_graph *g, const pq_mp_layer *layer,
                                    const pq_pass_opts *base, const char *format, int64_t group,
                                    pq_pipeline **out, pq_error *err);

/* Drift of quantizing `layer` alone: on a clone of g (quant_format attributes removed, so a
 * per-layer format set earlier cannot override `format`), runs pq_mp_probe_pipeline's fake-quant
 * with a scratch pass context (calib = the given provider, quiet) and asks calib->drift over at
 * most max_samples samples (0 = all). INVALID "... needs calibration data (--calib-data)" when
 * calib or its drift callback is missing; otherwise what the pipeline run and the callback return
 * (the message names the layer). g is not changed. */
enum pq_status pq_mp_probe(const pq_graph *g, const pq_mp_layer *layer, const pq_pass_opts *base,
                           const char *format, int64_t group, const pq_calib_provider *calib,
                           int64_t max_samples, pq_drift *out, pq_error *err);

/* What a plan minimises (the `metric` option). */
enum pq_mp_metric { PQ_MP_COSINE, PQ_MP_KL, PQ_MP_MAX_ABS };
/* "cosine", "kl", "max-abs" -> metric; false when unknown. */
bool pq_mp_metric_from_name(const char *name, enum pq_mp_metric *out);
/* The predicted drift of d under metric m: 1 - cosine, kl (NaN when !has_kl), max_abs. */
double pq_mp_metric_value(enum pq_mp_metric m, const pq_drift *d);

/* Bits available for `budget_bpw` bits per weight over `weights` weights: floor(budget * weights
 * + 1e-6) (so a budget written as the exact decimal of an achievable bpw admits it). */
uint64_t pq_mp_budget_bits(double budget_bpw, int64_t weights);

/* Chooses one format per layer (greedy): every layer starts at its cheapest format (fewest bits;
 * ties: lower drift, then earlier format); then, while something fits, the single upgrade (layer
 * l to a format with more bits, or equal bits and lower drift) with the largest drift reduction
 * per extra bit that keeps the total <= pq_mp_budget_bits(budget_bpw, weights) is applied; only
 * upgrades that reduce the layer's drift count. Ties: earlier layer, then earlier format. drift
 * and bits are n_layers x n_formats (row = layer); a non-finite drift counts as 1e300. choice
 * receives n_layers format indices; *bits_out the total bits. INVALID when even the cheapest
 * assignment exceeds the budget: the message names the minimum achievable bpw (rounded up to 4
 * decimals). */
enum pq_status pq_mp_choose(uint32_t n_layers, uint32_t n_formats, const double *drift,
                            const uint64_t *bits, int64_t weights, double budget_bpw,
                            uint32_t *choice, uint64_t *bits_out, pq_error *err);

#endif
