/* What `piqc compile` reports and stores about a compiled graph: the packed tensors of its
 * PackedMatMul/PackedConv nodes (for the artifact), per-format quality aggregates of the
 * fake-quant records, the printed summary and the JSON report. */
#ifndef PQ_COMPILE_REPORT_H
#define PQ_COMPILE_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "backends/quant/quant.h"
#include "frontends/artifact.h"
#include "json.h"
#include "passes/pass.h"
#include "passes/pipeline.h"

/* Bytes of every f32 constant of g, subgraphs included (the FP32 size of a model's weights). */
uint64_t pq_compile_f32_param_bytes(const pq_graph *g);

/* The packed tensors of a compiled graph: input 1 (a u8 1-D constant) of every PackedMatMul and
 * PackedConv node of a PiQ/Q format with the node's format/qgroup/rows/cols attributes, once per
 * constant (format int8/f16 nodes are skipped: their i8 codes, f32 scales and f16 weights are
 * ordinary constants, stored as I8/F32/F16 GGUF tensors). The ONNX
 * dims are those of the matching fake-quant record (record value_name + ".packed" == constant
 * name, same rows x cols), else rows x cols. ts[i].data is NULL (the constant holds the bytes);
 * names point into g, dims into dims_store. *out and *dims_store are pq_malloc'ed (pq_free
 * both). INVALID when a packed node's input 1 is not a u8 1-D constant or its attributes are
 * missing or inconsistent with the byte count (message names the node); NOMEM. */
enum pq_status pq_compile_packed_list(const pq_graph *g, const pq_pass_ctx *ctx,
                                      pq_artifact_tensor **out, uint32_t *n, int64_t **dims_store,
                                      pq_error *err);

/* Metrics of one record (from its raw sums). */
void pq_compile_record_metrics(const pq_quant_record *r, pq_metrics *out);

/* JSON fields of a record's geometry, "shape" (its ONNX dims), "rows", "cols", into the object
 * being written (shared by the compile and quantize reports). */
void pq_compile_json_record_dims(pq_json *j, const pq_quant_record *r);
/* JSON fields "bpw" (actual), "bpw_nominal" (*nominal, only when nominal is not NULL), "mse",
 * "sd_db", "cosine", "outlier_retention" of m, into the object being written. */
void pq_compile_json_metric_fields(pq_json *j, const pq_metrics *m, const double *nominal);

/* Adds the raw metric sums and stored bytes of record r to acc: adding records one after the other
 * gives the aggregate over the concatenation of their tensors (SPEC 5), bit-identical to
 * pq_metrics_acc_add on the tensors in the same order. */
void pq_compile_record_acc(const pq_quant_record *r, pq_metrics_acc *acc);

/* The calibration methods of ctx's records, comma-separated in first-seen order, into buf (size
 * bytes, truncated at a whole name): "mse", "weighted,mse"; "-" when there are no records. For
 * the artifact's provenance. */
void pq_compile_calib_methods(const pq_pass_ctx *ctx, char *buf, size_t size);

/* Aggregates of the records by format (in first-seen order) and over all records. */
typedef struct pq_compile_agg {
    const char *format; /* "all" for the total */
    uint32_t layers;
    pq_metrics_acc acc;
    double nominal_bits; /* sum over weights of the nominal bits of their format and group */
} pq_compile_agg;

/* Fills aggs[0..*n) (one per format) and *all. aggs must have room for ctx->n_records entries. */
void pq_compile_aggregate(const pq_pass_ctx *ctx, pq_compile_agg *aggs, uint32_t *n,
                          pq_compile_agg *all);

/* Per-pass timing and node counts for the report. */
typedef struct pq_compile_pass_row {
    const char *name;
    double ms;
    uint32_t nodes_before, nodes_after;
    bool skipped; /* disabled by --disable-pass */
} pq_compile_pass_row;

/* Everything the summary and the JSON report show. */
typedef struct pq_compile_summary {
    const char *model, *pipeline_source, *output;
    uint64_t fp32_bytes;     /* f32 parameter bytes of the input model */
    uint64_t artifact_bytes; /* size of the written artifact */
    uint64_t packed_bytes;   /* bytes of packed tensors in the graph */
    uint32_t n_packed;
    const pq_compile_pass_row *passes;
    uint32_t n_passes;
    double total_ms;
    bool time_passes; /* the caller prints the pass table: no total line */
} pq_compile_summary;

/* Prints the human summary (layers per format, actual and nominal bits per weight, artifact size
 * vs FP32, total pipeline time unless time_passes) to f. */
void pq_compile_print_summary(FILE *f, const pq_compile_summary *s, const pq_pass_ctx *ctx);

/* Writes the JSON report (atomically) to path: model, pipeline, output, `tensors` (one per
 * record: metrics against the original, un-rotated weights), `aggregate` keyed by format plus
 * `all`, `passes` (name, ms, nodes before/after), sizes. IO naming the path; NOMEM. */
enum pq_status pq_compile_write_json(const char *path, const pq_compile_summary *s,
                                     const pq_pass_ctx *ctx, pq_error *err);

/* The pipeline text stored in an artifact: the YAML as given (or as printed when built in code),
 * with a trailing comment naming the passes --disable-pass skipped (n_disabled may be 0). *out is
 * malloc'ed (free it). NOMEM, or IO from printing. */
enum pq_status pq_compile_pipeline_text(const pq_pipeline *p, const char *const *disabled,
                                        uint32_t n_disabled, char **out, pq_error *err);

#endif
