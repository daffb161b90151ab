/* Helpers for pass tests: run one pass with options written as YAML (defaults for the rest), the
 * way the manager would, load example models imported and prepared, run graphs, and build small
 * f32 graphs by hand. */
#ifndef PQ_PASS_TEST_UTIL_H
#define PQ_PASS_TEST_UTIL_H

#include "passes/pass.h"
#include "passes/pipeline.h"

/* Runs pass on g with the options of the YAML flow mapping opts_yaml ("{format: q3, group: 64}";
 * NULL or "" = all defaults), parsed against the pass's own schema with pq_pipeline_parse_with
 * (so the pass need not be registered). ctx->current_pass is set to the pass name. When prepare
 * is true, pq_runtime_prepare re-sorts, re-infers and verifies g afterwards, as the manager does.
 * Returns the first failing status (message in err). */
enum pq_status pq_test_run_pass(pq_graph *g, const pq_pass *pass, const char *opts_yaml,
                                pq_pass_ctx *ctx, bool prepare, pq_error *err);

/* Clones g and runs pass on the clone as pq_test_run_pass(..., prepare = true) does; asserts
 * (naming what in the message) that both succeed. Returns the clone (caller destroys it). */
pq_graph *pq_test_clone_run_pass(const pq_graph *g, const pq_pass *pass, const char *opts_yaml,
                                 pq_pass_ctx *ctx, const char *what);

/* g written as piqc's ONNX QDQ export (pq_onnx_export_buffer, qdq = true), imported again and
 * prepared to run; asserts on failure. Caller destroys it. */
pq_graph *pq_test_qdq_round_trip(const pq_graph *g);

/* Imports PQ_SOURCE_DIR/rel (an ONNX file) and prepares it; asserts (Criterion) on failure. */
pq_graph *pq_test_load_onnx(const char *rel);

/* Reads PQ_SOURCE_DIR/rel (.npy); asserts on failure. Caller destroys the tensor. */
pq_tensor *pq_test_read_npy(const char *rel);

/* Runs prepared graph g on ins (one tensor per graph input, g->n_inputs of them); returns its
 * g->n_outputs outputs (caller destroys each and pq_frees the array, pq_test_free_outputs);
 * asserts on failure. */
pq_tensor **pq_test_run_inputs(pq_graph *g, const pq_tensor *const *ins);
/* Same for a graph with exactly one input (asserted). */
pq_tensor **pq_test_run(pq_graph *g, const pq_tensor *in);
/* Same with the input read from PQ_SOURCE_DIR/rel (.npy). */
pq_tensor **pq_test_run_npy(pq_graph *g, const char *rel);
/* Destroys the n outputs of pq_test_run and the array. */
void pq_test_free_outputs(pq_tensor **outs, uint32_t n);

/* Number of nodes of op in g. */
uint32_t pq_test_count_op(const pq_graph *g, enum pq_op op);

/* Largest |a[o] - b[o]| over the f32 ones of n outputs (into *max_diff; a NaN difference makes
 * it NaN) and the largest |a[o]| (into *max_ref); asserts that a[o] and b[o] have as many
 * elements. */
void pq_test_max_diff(pq_tensor *const *a, pq_tensor *const *b, uint32_t n, double *max_diff,
                      double *max_ref);

/* ---- small hand-built graphs ---- */

/* Element i of a generated f32 tensor or constant. */
typedef float (*pq_test_fill_fn)(int64_t i);

/* A new empty graph importing the default domain at opset 17; asserts on failure. */
pq_graph *pq_test_graph(void);
/* Adds graph input `name`, f32 of static shape dims[0..rank); returns its value id. */
uint32_t pq_test_add_input(pq_graph *g, const char *name, int rank, const int64_t *dims);
/* Adds f32 constant `name` of shape dims[0..rank), element i = fill(i) in order; returns its
 * value id. */
uint32_t pq_test_add_const(pq_graph *g, const char *name, int rank, const int64_t *dims,
                           pq_test_fill_fn fill);
/* A new f32 tensor of shape dims[0..rank), element i = fill(i) in order (caller destroys). */
pq_tensor *pq_test_tensor(int rank, const int64_t *dims, pq_test_fill_fn fill);

#endif
