/* Training losses (SPEC section 9): cross-entropy, MSE, distillation KD, cosine feature loss and
 * their weighted total, each returning the value and the gradient w.r.t. the student tensors.
 * Plain C over f32 tensors with double accumulation; no allocation anywhere in this file. */
#ifndef PQ_LOSS_H
#define PQ_LOSS_H

#include <stdbool.h>
#include <stddef.h>

#include "ir/status.h"
#include "ir/tensor.h"

/* Shared conventions of every function below.
 * - Tensors are dense f32 (labels: i64), rank >= 1. "Positions" are all elements of every axis
 *   but the last; the last axis (classes C or features D, >= 1) is reduced. At least one position.
 * - Values are returned in *loss (double). Gradients are ACCUMULATED: grad += scale * dL/dx,
 *   so several terms can share one gradient buffer (zero it first; pq_loss_total does). grad may
 *   be NULL (value only); otherwise it is f32 with exactly the student's shape and may not alias
 *   an input. Arithmetic is in double; each gradient element is rounded to f32 once.
 * - Statuses: PQ_OK; PQ_ERR_INVALID (message names the loss, the argument and its shape or the
 *   bad value) for a NULL tensor, wrong dtype, rank 0, zero positions or classes, mismatched
 *   shapes, a label out of [0, C), a temperature that is not finite and > 0, or a negative eps.
 *   Nothing is written to grad or *loss on error. */

/* Cross-entropy: mean over positions of -log softmax(logits)[label]. logits [..., C] f32, labels
 * i64 with logits' shape minus the last axis (rank-1 logits [C] take a rank-0 label). Stable
 * log-softmax (max subtracted, exp-sum in double). dL/dlogits = (softmax - onehot) / positions.
 * No ignore_index: every label must lie in [0, C). */
enum pq_status pq_loss_cross_entropy(const pq_tensor *logits, const pq_tensor *labels, double *loss,
                                     pq_tensor *grad, double scale, pq_error *err);

/* Mean squared error over all elements: mean((pred - target)^2); pred and target f32 of the same
 * shape (any rank, including 0; at least one element). dL/dpred = 2 (pred - target) / numel. */
enum pq_status pq_loss_mse(const pq_tensor *pred, const pq_tensor *target, double *loss,
                           pq_tensor *grad, double scale, pq_error *err);

enum pq_kd_direction {
    PQ_KD_FORWARD = 0, /* KL(p_teacher || p_student): SPEC default */
    PQ_KD_REVERSE = 1  /* KL(p_student || p_teacher): the seed's `kd_direction: reverse` */
};

/* Distillation: T^2 * mean over positions of KL over the last axis between softmax(teacher/T)
 * and softmax(student/T), teacher first for FORWARD. teacher and student f32 [..., C], same
 * shape. The teacher gets no gradient. Gradient w.r.t. the student logits per position:
 * forward T * (p_s - p_t) / positions; reverse T * p_s * (log p_s - log p_t - KL) / positions. */
enum pq_status pq_loss_kd(const pq_tensor *teacher, const pq_tensor *student, double temperature,
                          enum pq_kd_direction direction, double *loss, pq_tensor *grad,
                          double scale, pq_error *err);

/* Default eps of the cosine: PyTorch's cosine_similarity default. */
#define PQ_LOSS_COS_EPS 1e-8

/* Cosine feature loss of one pair: mean over positions of 1 - cos(t_i, s_i) over the last axis,
 * with cos = (t.s) / (max(|t|, eps) * max(|s|, eps)) (eps guard as in torch.nn.functional.
 * cosine_similarity >= 1.12: each norm clamped separately, so a zero vector gives cos 0 and
 * loss 1, never NaN). teacher/student f32 [..., D], same shape. Gradient w.r.t. the student:
 * -(t / (nt ns) - cos * s / |s|^2) / positions when |s| > eps; when the student norm is clamped
 * the norm is treated as the constant eps: -t / (nt eps) / positions. */
enum pq_status pq_loss_cosine(const pq_tensor *teacher, const pq_tensor *student, double eps,
                              double *loss, pq_tensor *grad, double scale, pq_error *err);

/* One named intermediate value for the feature loss. grad (may be NULL) receives dL/dstudent
 * as described above; name (may be NULL) appears in error messages. */
typedef struct pq_feature_pair {
    const char *name;
    const pq_tensor *teacher;
    const pq_tensor *student;
    pq_tensor *grad;
} pq_feature_pair;

/* Feature loss over n >= 1 named pairs: the mean over pairs of each pair's pq_loss_cosine (every
 * named value weighs the same whatever its position count). Gradients accumulate into each
 * pair's grad with scale / n folded in. All pairs are validated before anything is written. */
enum pq_status pq_loss_feature(const pq_feature_pair *pairs, size_t n, double eps, double *loss,
                               double scale, pq_error *err);

enum pq_task_loss {
    PQ_TASK_NONE = 0,          /* no task term (label-free distillation) */
    PQ_TASK_CROSS_ENTROPY = 1, /* labels: i64 */
    PQ_TASK_MSE = 2            /* labels: f32 target with the logits' shape */
};

/* Weights and options of the total loss. */
typedef struct pq_loss_config {
    enum pq_task_loss task;
    double w_task, w_kd, w_feat; /* SPEC defaults 1.0 / 0.5 / 0.2 */
    double temperature;          /* T, default 1 */
    enum pq_kd_direction kd_direction;
    double cos_eps; /* default PQ_LOSS_COS_EPS */
} pq_loss_config;

/* SPEC defaults: cross-entropy task, 1.0 / 0.5 / 0.2, T = 1, forward KD, eps 1e-8. */
pq_loss_config pq_loss_config_default(void);

/* Inputs of one total-loss evaluation. A term is computed when its inputs are present: task when
 * cfg->task != NONE (labels required), KD when teacher_logits != NULL, feature when
 * n_features > 0. Absent terms are 0. */
typedef struct pq_loss_inputs {
    const pq_tensor *logits;         /* student [..., C] */
    const pq_tensor *labels;         /* i64 [...] (CE) or f32 [..., C] (MSE) */
    const pq_tensor *teacher_logits; /* [..., C] or NULL */
    const pq_feature_pair *features; /* grads inside receive w_feat * dfeature */
    size_t n_features;
} pq_loss_inputs;

typedef struct pq_loss_values {
    double task, kd, feature; /* unweighted terms */
    double total;             /* w_task*task + w_kd*kd + w_feat*feature */
} pq_loss_values;

/* Total = w_task*task + w_kd*KD + w_feat*feature. grad_logits (may be NULL) and every feature
 * pair's grad are OVERWRITTEN (zeroed, then the weighted terms accumulated). Everything is
 * validated before anything is written. INVALID as above, naming the term, or for a task loss
 * without labels, no logits, or a weight or temperature that is not finite (weights may be 0 or
 * negative). */
enum pq_status pq_loss_total(const pq_loss_config *cfg, const pq_loss_inputs *in,
                             pq_loss_values *out, pq_tensor *grad_logits, pq_error *err);

#endif
