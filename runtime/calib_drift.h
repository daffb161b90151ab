/* Output drift over a calibration set (SPEC 5, model level): runs a graph over the first samples of
 * a calibration set and compares its outputs with a reference model's (cosine, max abs, mean KL).
 */
#ifndef PQ_CALIB_DRIFT_H
#define PQ_CALIB_DRIFT_H

#include "calib.h"

/* How the last axis of a graph output is read for the KL term. */
enum pq_drift_kind {
    PQ_DRIFT_PLAIN,    /* no KL: not float, rank < 2 or last dim < 2 */
    PQ_DRIFT_LOGITS,   /* KL of softmax over the last axis */
    PQ_DRIFT_PROBS,    /* produced by Softmax over the last axis: values are probabilities */
    PQ_DRIFT_LOGPROBS, /* produced by LogSoftmax over the last axis: values are log-probabilities */
};

/* The kind of graph output i of g (g inferred): PLAIN unless the output is f32/f64/f16/bf16 with
 * rank >= 2 and a last dim that is unknown or >= 2; PROBS / LOGPROBS when its producer is a
 * Softmax / LogSoftmax over the last axis (opset < 13 default axis 1 counts only for rank 2),
 * else LOGITS. (A last dim that turns out to be 1 at run time gives no KL.) */
enum pq_drift_kind pq_drift_output_kind(const pq_graph *g, uint32_t i);

/* Checks that every floating-point calibration tensor of cs (f32/f64/f16/bf16; graph input i of g
 * names tensor i) holds only finite values: NaN or +-Inf in calibration data would silently skew
 * drift measurements, scales and GPTQ Hessians. INVALID naming the input, the sample and the
 * element index (e.g. "calibration input 'x': non-finite value nan at [3, 0, 2, 2] (sample 3); NaN
 * and Inf are not accepted"), or PQ_OK. Integer inputs are not checked. */
enum pq_status pq_calib_set_check_finite(const pq_graph *g, const pq_calib_set *cs, pq_error *err);

/* Samples of cs a drift run over g uses for max_samples (0 = all): min(max_samples, cs->samples),
 * rounded down to a multiple of a fixed batch dim of g's inputs (at least one batch). INVALID (the
 * message names the input) when a fixed batch exceeds the samples available. */
enum pq_status pq_drift_samples(const pq_graph *g, const pq_calib_set *cs, int64_t max_samples,
                                int64_t *out, pq_error *err);

/* Runs the prepared graph g over the first pq_drift_samples(...) samples of cs, in chunks of the
 * fixed batch (or up to 32 samples), and returns every output of every chunk flattened: (*out)[i]
 * is a new f32 tensor [positions, last] (graph output i of rank >= 2: chunks appended position by
 * position) or [n] (rank < 2), values converted from f64/f16/bf16; NULL for outputs of other
 * dtypes. *n_out = g->n_outputs, *samples = samples used. Free with pq_drift_outputs_free.
 * Returns what session creation and runs return, INVALID when an output's last dim changes
 * between chunks (names the output), NOMEM. */
enum pq_status pq_drift_outputs(pq_graph *g, const pq_calib_set *cs, int64_t max_samples,
                                pq_tensor ***out, uint32_t *n_out, int64_t *samples, pq_error *err);
void pq_drift_outputs_free(pq_tensor **t, uint32_t n);

/* Compares outputs y with reference outputs ref (both from pq_drift_outputs over the same samples;
 * n of each; ref_graph is the graph that produced ref, for the output kinds and names):
 *   cosine  = <ref, y> / (|ref| |y|) over the concatenation of every float output (double sums;
 *             both norms 0 -> 1, one 0 -> 0, a non-finite y -> 0);
 *   max_abs = max |y - ref| (+inf when y has a non-finite value where ref is finite);
 *   kl      = mean over all positions of the outputs whose kind is not PLAIN (and last dim >= 2)
 *             of KL(p_ref || p_y), p = softmax(values) (LOGITS), values (PROBS, y clamped to
 *             >= 1e-12 inside the log), exp(values) (LOGPROBS); has_kl says whether any was.
 * INVALID (names the output) when the counts, element counts or dtypes disagree. */
enum pq_status pq_drift_compare(const pq_graph *ref_graph, pq_tensor *const *ref,
                                pq_tensor *const *y, uint32_t n, pq_drift *out, pq_error *err);

/* The drift of g against reference over cs, reusing cached reference outputs (INVALID, from
 * pq_calib_set_check_finite, for non-finite calibration data; INVALID naming the output when the
 * reference's own outputs are not finite over the data, since drift against them means nothing):
 * when *ref_outputs is NULL or covers another sample count than this call uses, the reference
 * (prepared; run, not changed) is run and the cache (*ref_outputs, *n_ref, *ref_samples:
 * caller-owned, freed with pq_drift_outputs_free) is replaced. g is cloned and prepared (it is not
 * changed). Returns what pq_runtime_prepare, pq_drift_outputs and pq_drift_compare return. */
enum pq_status pq_calib_drift(const pq_graph *g, pq_graph *reference, const pq_calib_set *cs,
                              int64_t max_samples, pq_tensor ***ref_outputs, uint32_t *n_ref,
                              int64_t *ref_samples, pq_drift *out, pq_error *err);

#endif
