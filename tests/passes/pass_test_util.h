/* Helpers for pass tests: run one pass with options written as YAML (defaults for the rest), the
 * way the manager would, and load example models imported and prepared. */
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

/* Imports PQ_SOURCE_DIR/rel (an ONNX file) and prepares it; asserts (Criterion) on failure. */
pq_graph *pq_test_load_onnx(const char *rel);

/* Runs prepared graph g (one input) on the tensor in; returns its g->n_outputs outputs (caller
 * destroys each and pq_frees the array); asserts on failure. */
pq_tensor **pq_test_run(pq_graph *g, const pq_tensor *in);
/* Same with the input read from PQ_SOURCE_DIR/rel (.npy). */
pq_tensor **pq_test_run_npy(pq_graph *g, const char *rel);
/* Destroys the n outputs of pq_test_run and the array. */
void pq_test_free_outputs(pq_tensor **outs, uint32_t n);

/* Number of nodes of op in g. */
uint32_t pq_test_count_op(const pq_graph *g, enum pq_op op);

#endif
