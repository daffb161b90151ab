/* Pass descriptors, typed pass options and the context a pass runs in: the contract between the
 * pass manager (passes/manager.c), the YAML pipeline reader and every rewrite pass. */
#ifndef PQ_PASS_H
#define PQ_PASS_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/ir.h"

/* ---- Options ------------------------------------------------------------------------------ */

enum pq_opt_type {
    PQ_OPT_BOOL,        /* true/false */
    PQ_OPT_INT,         /* integer within [min, max] */
    PQ_OPT_FLOAT,       /* number within [min, max] */
    PQ_OPT_STRING,      /* free text (e.g. a regular expression) */
    PQ_OPT_ENUM,        /* one of choices */
    PQ_OPT_STRING_LIST, /* [a, b] of free text */
    PQ_OPT_ENUM_LIST,   /* [a, b] each one of choices */
};

/* One option of a pass: its schema. def is the default written as YAML would write it ("42",
 * "piq3", "true", "[MatMul, Gemm]", "[]"); NULL means "no default: absent unless given". For
 * INT/FLOAT, [min, max] is the accepted range (inclusive); min == max == 0 means unbounded (within
 * int64 for INT, finite for FLOAT). choices is NULL-terminated (ENUM, ENUM_LIST). */
typedef struct pq_pass_option {
    const char *name;
    enum pq_opt_type type;
    const char *summary;
    const char *def;
    double min, max;
    const char *const *choices;
} pq_pass_option;

/* The value of one option in one pass instance (defaults already applied). */
typedef struct pq_opt_value {
    const pq_pass_option *schema;
    bool set;          /* given in the pipeline or by a default */
    bool b;            /* BOOL */
    int64_t i;         /* INT */
    double f;          /* FLOAT (INT values are mirrored here too) */
    const char *s;     /* STRING, ENUM */
    const char **list; /* STRING_LIST, ENUM_LIST */
    uint32_t n_list;
} pq_opt_value;

struct pq_pass;

/* The options of one pass instance, one entry per schema option, in schema order. Strings and
 * lists are owned by the pipeline that holds the instance. */
typedef struct pq_pass_opts {
    const struct pq_pass *pass;
    pq_opt_value *v;
    uint32_t n;
} pq_pass_opts;

/* Typed getters. Asking for a name the schema lacks, or with the wrong type, is a bug in the
 * pass: it aborts in debug builds (assert) and returns the zero value otherwise. An option with no
 * default that was not given reads as false / 0 / NULL / empty list; pq_opts_is_set tells. */
bool pq_opts_is_set(const pq_pass_opts *o, const char *name);
bool pq_opts_bool(const pq_pass_opts *o, const char *name);
int64_t pq_opts_int(const pq_pass_opts *o, const char *name);
double pq_opts_float(const pq_pass_opts *o, const char *name);
const char *pq_opts_string(const pq_pass_opts *o, const char *name);
const char *const *pq_opts_list(const pq_pass_opts *o, const char *name, uint32_t *n);

/* ---- Pass context ------------------------------------------------------------------------- */

/* What a pass learns about the weights it rewrites, kept across passes of one pipeline run so that
 * later passes (fake-quant metrics, lower-quant) can relate a weight to its original. */
typedef struct pq_weight_note {
    const char *value_name; /* current name of the weight value in the graph (ctx-owned copy) */
    pq_tensor *original;    /* the weight before any pass changed it (owned), or NULL */
    /* Hadamard rotation applied offline to the weight's rows x cols view (SPEC 6); the metric of
     * the quantized weight is taken after undoing it. Conv: rotation over input channels at every
     * kernel position (cols = Cin * kh * kw, stride kh * kw). */
    bool rotated_in;
    uint64_t seed_in;
    bool rotated_out; /* side: both -- output features rotated too */
    uint64_t seed_out;
} pq_weight_note;

/* How far a graph's outputs moved from the reference model's (SPEC 5, model level): over every
 * output element of every graph output, concatenated; kl is the mean KL(ref || g) of softmax over
 * the last axis of outputs that are distributions or logits (has_kl false when not measured). */
typedef struct pq_drift {
    double cosine;  /* 1 = unchanged */
    double max_abs; /* largest |y - y_ref| */
    double kl;
    bool has_kl;
} pq_drift;

/* Calibration statistics a pass may ask the driver for (the driver owns the runtime; passes may
 * not run graphs themselves). importance: for each weight value id in values[0..n), a newly
 * pq_malloc'ed array of the weight view's cols entries h_j = E[x_j^2] of the layer input, measured
 * on the graph g as it is now (so after a rotation the statistics are in the rotated domain);
 * NULL entries mean "no data". */
typedef struct pq_calib_provider {
    void *ctx;
    enum pq_status (*importance)(void *ctx, const pq_graph *g, const uint32_t *values, uint32_t n,
                                 float **out, pq_error *err);
    /* gptq (SPEC 4): H = X^T X (cols x cols doubles, pq_malloc'ed into *h, both triangles) of the
     * inputs that node `node` multiplies with its weight, collected by running g AS IT IS NOW over
     * the calibration data (FakeQuant nodes of earlier layers are in effect: sequential GPTQ; a
     * rotation inserted by hadamard is in effect too). MatMul/Gemm: one row of X per position of
     * the activation's feature axis; Conv: im2col patches in the weight row's column order.
     * *cols = weight view cols, *nsamples = rows of X accumulated. NULL when unavailable. */
    enum pq_status (*hessian)(void *ctx, const pq_graph *g, uint32_t node, double **h,
                              int64_t *cols, int64_t *nsamples, pq_error *err);
    /* Output drift of g against the reference (the model as it was before the pipeline) over the
     * calibration data (at most max_samples samples; 0 = all). NULL when unavailable. */
    enum pq_status (*drift)(void *ctx, const pq_graph *g, int64_t max_samples, struct pq_drift *out,
                            pq_error *err);
    /* INT8 (SPEC 3, 4): the range [lo[i], hi[i]] of every value values[i] of g over the calibration
     * data, streamed in bounded memory: method "minmax" or "percentile" (two-sided, at percentile
     * pct, e.g. 99.99). lo and hi have n entries (caller-owned). NULL when unavailable. */
    enum pq_status (*ranges)(void *ctx, const pq_graph *g, const uint32_t *values, uint32_t n,
                             const char *method, double pct, float *lo, float *hi, pq_error *err);
    uint64_t samples;        /* calibration samples available (0: none) */
    const char *data_sha256; /* hex SHA-256 of the calibration files, or NULL */
} pq_calib_provider;

/* One quantized weight, recorded by fake-quant for reports (metrics against the original,
 * un-rotated weight; SPEC 5). */
typedef struct pq_quant_record {
    const char *value_name; /* weight value (ctx-owned copy) */
    const char *node_name;  /* consumer node */
    enum pq_op op;
    const char *format; /* "piq3", "piq2", "q3", "q2", "int8", "f16" */
    const char *calib;  /* "absmax", "mse", "weighted", "gptq", "-" */
    int64_t group;      /* 0 for int8 / f16 */
    int onnx_rank;
    int64_t onnx_dims[PQ_MAX_RANK];
    int64_t rows, cols;    /* weight view (batch folded into rows) */
    uint64_t stored_bytes; /* packed codes + scale words (int8: 1 byte/weight + f32 scales) */
    bool rotated;
    /* metric sums of this tensor, to be aggregated with pq_metrics_acc (backends/quant/quant.h);
     * kept as raw sums so aggregates over formats are exact */
    int64_t n;
    double sum_e2, sum_w2, sum_h2, dot;
    int64_t outliers, outliers_kept;
} pq_quant_record;

/* Everything a pass may use besides the graph and its options. Owned by the driver
 * (pq_pass_ctx_init / pq_pass_ctx_free). */
typedef struct pq_pass_ctx {
    const char *current_pass;       /* name of the running pass (set by the manager) */
    int verbose;                    /* 0 quiet, 1 normal (default), 2 chatty */
    bool progress;                  /* long work may print a progress line to stderr */
    const pq_calib_provider *calib; /* may be NULL: passes needing data fail with a clear error */
    pq_weight_note *notes;
    uint32_t n_notes, cap_notes;
    pq_quant_record *records;
    uint32_t n_records, cap_records;
} pq_pass_ctx;

void pq_pass_ctx_init(pq_pass_ctx *ctx);
void pq_pass_ctx_free(pq_pass_ctx *ctx);
/* Prints "<pass>: <message>\n" to stderr when ctx->verbose >= level (1 = normal). */
void pq_pass_log(const pq_pass_ctx *ctx, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The note of weight value name, created (zeroed, value_name copied) when absent; NULL on NOMEM. */
pq_weight_note *pq_pass_note(pq_pass_ctx *ctx, const char *value_name);
/* The note of weight value name, or NULL. */
const pq_weight_note *pq_pass_find_note(const pq_pass_ctx *ctx, const char *value_name);
/* Appends a record (strings copied); NOMEM on allocation failure. */
enum pq_status pq_pass_add_record(pq_pass_ctx *ctx, const pq_quant_record *r, pq_error *err);

/* ---- Pass descriptors --------------------------------------------------------------------- */

/* A pass: registered once in passes/passes.def, run by the manager. run() changes g in place and
 * must leave it valid for pq_runtime_prepare-style inference (the manager re-infers and verifies
 * after it). On failure it returns the status with a message naming node/value; the manager
 * prefixes the pass name. */
typedef struct pq_pass {
    const char *name;    /* "fold-constants", "hadamard", ... */
    const char *summary; /* one line for --list-passes */
    const pq_pass_option *options;
    uint32_t n_options;
    enum pq_status (*run)(pq_graph *g, const pq_pass_opts *opts, pq_pass_ctx *ctx, pq_error *err);
    /* Optional: checks what the option schema cannot express (a group that must be a multiple of
     * 8, a regular expression that must compile) when the pipeline is read, so the user gets the
     * error with file:line:col before any work. INVALID with a message naming the option. */
    enum pq_status (*check)(const pq_pass_opts *opts, pq_error *err);
} pq_pass;

/* All registered passes, in passes.def order. */
const pq_pass *const *pq_passes_all(uint32_t *n);
/* Pass by name, NULL if unknown. */
const pq_pass *pq_pass_find(const char *name);

#endif
