/* Metrics of `piqc eval`, accumulated batch by batch: top-1 accuracy and cross-entropy against
 * integer labels, cosine similarity and max abs difference against a reference model's outputs. */
#ifndef PQ_EVAL_METRICS_H
#define PQ_EVAL_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/ir.h"

/* How output 0 holds the class scores for cross-entropy. */
enum pq_eval_logp {
    PQ_EVAL_LOGITS,      /* unnormalised: log-softmax over the last axis */
    PQ_EVAL_SOFTMAX,     /* probabilities: log(max(p, PQ_EVAL_PROB_MIN)) */
    PQ_EVAL_LOG_SOFTMAX, /* log-probabilities: used as they are */
};

/* Probabilities are clamped to at least this before their log is taken. */
#define PQ_EVAL_PROB_MIN 1e-12

/* Running sums of every metric (zero-initialise). All sums are in double. */
typedef struct pq_eval_stats {
    int64_t hits, positions; /* accuracy / cross-entropy: label positions seen */
    double ce_sum;           /* sum of -log p(label) */
    int64_t rows;            /* cosine: rows of output 0 compared */
    double cos_sum, cos_min; /* cos_min is meaningful once rows > 0 */
    double max_abs;          /* over every element of every output */
} pq_eval_stats;

/* Finds how graph output 0 holds its scores: walks back through Identity nodes to its producer;
 * Softmax or LogSoftmax normalising over the last axis (rank is output 0's rank at run time) gives
 * SOFTMAX / LOG_SOFTMAX, anything else LOGITS. UNSUPPORTED when a Softmax/LogSoftmax normalises
 * over another axis (its values are not per-position distributions over the last axis). */
enum pq_status pq_eval_logp_kind(const pq_graph *g, int rank, enum pq_eval_logp *out,
                                 pq_error *err);
/* "logits", "softmax" or "log_softmax". */
const char *pq_eval_logp_name(enum pq_eval_logp k);

/* Checks a batch: out (output 0, float, [n, T..., C], C >= 1) against labels (i64, [n, T...])
 * and every label in [0, C). first is the sample index of row 0 of the batch, used in messages:
 * INVALID naming the first bad label ("labels.npy: sample S[, position P]: label L outside
 * [0, C)"), the shapes, or the dtypes. */
enum pq_status pq_eval_check_labels(const pq_tensor *out, const pq_tensor *labels, int64_t first,
                                    pq_error *err);

/* Adds top-1 hits of a checked batch (argmax over the last axis, the first maximum on ties;
 * NaN scores never win). */
void pq_eval_accuracy_add(pq_eval_stats *s, const pq_tensor *out, const pq_tensor *labels);

/* Adds -log p(label) of every position of a checked batch (double accumulation; LOGITS uses the
 * max-shifted log-sum-exp). */
void pq_eval_ce_add(pq_eval_stats *s, const pq_tensor *out, const pq_tensor *labels,
                    enum pq_eval_logp kind);

/* Compares one batch of outputs with the reference's: every output pair must have equal shapes
 * (INVALID naming output k and both shapes; names[k] names output k in messages); rows of output 0
 * over its last axis (at least one element) add to the cosine sums (two zero rows count as 1, one
 * zero row as 0, clamped to [-1, 1]); every element of every output updates max_abs (a NaN on one
 * side only makes it +inf; NaN on both sides counts as equal). */
enum pq_status pq_eval_compare_add(pq_eval_stats *s, pq_tensor *const *outs, pq_tensor *const *refs,
                                   uint32_t n_outputs, const char *const *names, pq_error *err);

#endif
