/* Calibration runs: loading a calibration set (one .npy batch per graph input), running the model
 * over it in bounded chunks, and collecting per-column input importance E[x_j^2] (SPEC section 4,
 * `weighted`) and per-layer Hessians X^T X (`gptq`) for the weights. Part of runtime/'s public
 * face. */
#ifndef PQ_CALIB_H
#define PQ_CALIB_H

#include "passes/passes.h"
#include "runtime.h"

/* A calibration set: one tensor per graph input (same order), axis 0 = samples. Borrowed. */
typedef struct pq_calib_set {
    pq_tensor **inputs;
    uint32_t n;
    int64_t samples;
} pq_calib_set;

/* Runs the prepared graph g over the whole set in chunks along axis 0 (the declared size when
 * axis 0 is static, else up to 32 samples), calling observe before every node. Progress on stderr
 * when there are more than 4 chunks. INVALID (naming the input) when a fixed batch does not divide
 * the samples; what session creation and runs return; NOMEM. */
enum pq_status pq_calib_run(pq_graph *g, const pq_calib_set *cs, pq_observe_fn observe, void *ctx,
                            pq_error *err);

/* The chunk pq_calib_run uses: the fixed axis-0 size of g's inputs, else min(samples, 32).
 * INVALID naming the input when a fixed batch does not divide cs->samples. */
enum pq_status pq_calib_chunk(const pq_graph *g, const pq_calib_set *cs, int64_t *chunk,
                              pq_error *err);

/* Called after every chunk with the graph's n outputs for it (borrowed: destroyed after the call).
 * A status other than PQ_OK stops the run and is returned. */
typedef enum pq_status (*pq_calib_outputs_fn)(void *ctx, pq_tensor *const *outs, uint32_t n,
                                              pq_error *err);

/* The chunked loop under every calibration run: samples [0, n) of cs (n <= cs->samples) through g
 * in chunks of `chunk` rows along axis 0 (the last one shorter; views of cs->inputs, no copies),
 * one thread, observe (NULL: none) before every node, outputs (NULL: discarded) after every
 * chunk. When label is not NULL, more than 4 chunks and stderr a terminal: "\r<label>: a/b
 * samples" progress on stderr. Nothing runs when n or chunk is <= 0. What session creation, runs
 * and the callbacks return; NOMEM. */
enum pq_status pq_calib_run_chunks(pq_graph *g, const pq_calib_set *cs, int64_t n, int64_t chunk,
                                   pq_observe_fn observe, void *observe_ctx,
                                   pq_calib_outputs_fn outputs, void *outputs_ctx,
                                   const char *label, pq_error *err);

/* Importance h_j = E[x_j^2] of each weight column over the set: MatMul/Gemm use the activation's
 * feature axis; Conv uses the input channel of the column (mean over batch and positions, and over
 * groups for grouped convolutions; padding and kernel offsets are not modelled); ConvTranspose gets
 * NULL (no per-column importance). out->per_tensor[i] has views[i].cols floats or NULL. */
enum pq_status pq_calib_importance(pq_graph *g, const pq_calib_set *cs, const pq_weight_view *views,
                                   uint32_t n, pq_importance *out, pq_error *err);
void pq_importance_free(pq_importance *imp);

/* GPTQ Hessian (SPEC 4 "gptq", runtime/calib_hessian.c) of node `node` of the prepared graph g:
 * H = X^T X over the whole set, where X holds the inputs the node multiplies with its weight, in
 * the weight view's column order, accumulated with pq_gptq_hessian_add per chunk and per tile (no
 * activation is kept beyond the chunk being run):
 * - MatMul (weight B an f32 constant [K, N], or a FakeQuant of one): x [..., K] gives
 *   prod(leading dims) rows of K;
 * - Gemm: the rows of op(A) (transA handled), K = the weight view's cols;
 * - Conv with group 1 (1-3 spatial dims): im2col patches, one row per batch item and output
 *   position, columns (cin, k...) as W [Cout, Cin, k...] flattens; pads read as zeros, strides
 *   and dilations from pq_conv_geom_decode.
 * The graph runs AS IT IS (FakeQuant nodes and rotations in effect). On PQ_OK *h is a
 * pq_malloc'ed cols x cols row-major matrix (both triangles; the caller pq_frees it), *cols the
 * weight view's cols and *nsamples the rows of X accumulated (0 when the node never ran: *h is
 * then all zeros). Returns PQ_ERR_UNSUPPORTED (nothing allocated) for another op, a weight that is
 * not an f32 constant, a batched MatMul weight, a grouped/depthwise Conv or more than 65536
 * columns; PQ_ERR_INVALID for a bad node id, Conv attributes or an input that does not match the
 * weight (the message names the node); the errors of pq_calib_run; PQ_ERR_NOMEM. */
enum pq_status pq_calib_hessian(pq_graph *g, const pq_calib_set *cs, uint32_t node, double **h,
                                int64_t *cols, int64_t *nsamples, pq_error *err);

#endif
