/* Helpers for the rewrite-pass tests (fold-constants, cse, canonicalize, fold-batchnorm,
 * fuse-activations): passes on vs off over every test model, and tiny graphs from text IR. */
#ifndef PQ_TEST_MODEL_UTIL_H
#define PQ_TEST_MODEL_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/ir.h"

/* One test model: ONNX file and its input .npy, relative to PQ_SOURCE_DIR. */
typedef struct pq_mu_model {
    const char *name;
    const char *onnx;
    const char *input;
} pq_mu_model;

/* tests/models/<name> (mlp, cnn_bn, transformer13, transformer17, lstm, bilstm, gru) and
 * examples/digits. */
extern const pq_mu_model pq_mu_models[];
extern const uint32_t pq_mu_n_models;
/* Model by name (asserts when unknown). */
const pq_mu_model *pq_mu_model_get(const char *name);

/* The tolerance every on/off comparison states: |on - off| <= PQ_MU_RTOL * max(1, max|off|) over
 * all elements of all outputs. */
#define PQ_MU_RTOL 1e-5

typedef struct pq_mu_result {
    double max_diff;       /* largest |on - off| over every output element */
    double max_ref;        /* largest |off| */
    uint32_t nodes_before; /* top-level nodes of the prepared import */
    uint32_t nodes_after;  /* after the passes */
} pq_mu_result;

/* Imports and prepares model m, runs it, runs passes[0..n) (registered names, default options,
 * graph re-prepared after each, as the manager does) on a clone, runs the clone on the same input
 * and asserts the outputs agree within PQ_MU_RTOL. Prints one line "on/off <model> [passes]: max
 * diff .., nodes a -> b" to stderr. Returns the rewritten graph (caller destroys it). */
pq_graph *pq_mu_on_off(const pq_mu_model *m, const char *const *passes, uint32_t n,
                       pq_mu_result *r);

/* Runs registered pass `name` with default options on g and re-prepares g; asserts success. */
void pq_mu_run_pass(pq_graph *g, const char *name);

/* Parses a text-IR graph and prepares it; asserts on failure. */
pq_graph *pq_mu_parse(const char *text);

/* Runs a and b (same inputs: every input f32 with a static shape, filled with a deterministic
 * pattern in [-4, 4]) and asserts their outputs agree within PQ_MU_RTOL; returns the max diff. */
double pq_mu_same_function(pq_graph *a, pq_graph *b);

/* Runs pass `name` on a clone of g, asserts the clone computes the same function as g and returns
 * the clone (caller destroys). */
pq_graph *pq_mu_pass_clone(pq_graph *g, const char *name);

/* Printed text IR of g (pq_free it). */
char *pq_mu_print(const pq_graph *g);

#endif
