/* Training ops (domain "piqc", internal): the straight-through estimator kinds of SPEC 7, decoded
 * once for the shape rule and the kernels, and the shape rule of FakeQuantGrad (ir/infer_train.c).
 */
#ifndef PQ_INFER_TRAIN_H
#define PQ_INFER_TRAIN_H

#include <stdbool.h>

#include "infer.h"

/* Straight-through estimators (node attribute ste of FakeQuant / FakeQuantGrad, SPEC 7). */
enum pq_ste {
    PQ_STE_STANDARD = 0, /* dL/dw = g */
    PQ_STE_CLIPPED,      /* dL/dw = g * inside */
    PQ_STE_LSQ,          /* dL/dw = g * inside, and the scale gradient (Esser et al. 2020) */
    PQ_STE_EWGS,         /* dL/dw = g * (1 + delta sign(g) (v - rne(v))) inside, 0 outside */
    PQ_STE_COUNT
};

/* Default of the attribute ewgs_delta. */
#define PQ_EWGS_DELTA_DEFAULT 0.1f

/* "standard", "clipped", "lsq", "ewgs". */
const char *pq_ste_name(enum pq_ste s);
/* Parses a name above; false for anything else (NULL included). */
bool pq_ste_from_name(const char *name, enum pq_ste *out);

/* FakeQuantGrad(w, scales, g) -> (dw, dscales?). Attributes: those of FakeQuant (format piq3 | piq2
 * | q3 | q2 | int8, qgroup, transposed), ste (default "standard") and ewgs_delta (float, default
 * 0.1, finite). w, scales: as FakeQuant's inputs (the same view and scale layout); g: f32, the
 * shape of w. Outputs: dw f32 with the shape of w; dscales (optional, only with ste = lsq) f32 with
 * the shape of scales (the gradient w.r.t. the signed f32 value of each scale word a, or w.r.t. the
 * f32 row scale s for int8). INVALID (message naming the problem) for anything else, including
 * format f16 (its straight-through gradient is g itself: the gradient rule passes g through). */
enum pq_status pq_infer_train_fake_quant_grad(pq_infer_ctx *c);

/* ---- TrainLoss / TrainLossGrad (SPEC 9) ----
 * TrainLoss(logits, labels?, teacher?, s_1, t_1, s_2, t_2, ...) -> (total, terms?)
 *   logits: f32 [..., C], rank >= 1. labels (optional): i64 with logits' shape minus the last axis
 *   (task cross_entropy) or f32 with logits' shape (task mse). teacher (optional): f32, logits'
 *   shape (the KD term is computed when it is present). Then n >= 0 pairs of f32 values of equal
 *   shape [..., D] (student, teacher) for the cosine feature loss.
 *   Attributes: task ("none" | "cross_entropy" | "mse", default cross_entropy; labels required
 *   unless none), w_task / w_kd / w_feat (floats, finite; defaults 1, 0.5, 0.2), temperature
 *   (finite > 0, default 1), kd_direction ("forward" | "reverse", default forward), cos_eps
 *   (finite >= 0, default 1e-8).
 *   Outputs: total f32 [] = w_task task + w_kd KD + w_feat feature; terms (optional) f32 [3]: the
 *   unweighted task, KD and feature terms (absent terms are 0).
 * TrainLossGrad(dtotal, logits, labels?, teacher?, s_1, t_1, ...) -> (dlogits, ds_1, ...): the
 *   same attributes; dtotal f32 [] (or any one-element f32); outputs dtotal * dL/dlogits (logits'
 *   shape) and dtotal * dL/ds_i (the student features' shapes); one output per student feature is
 *   required after dlogits (n_outputs = 1 + pairs). */
enum pq_train_task { PQ_TRAIN_TASK_NONE = 0, PQ_TRAIN_TASK_CROSS_ENTROPY, PQ_TRAIN_TASK_MSE };

/* Decodes the task attribute of a TrainLoss / TrainLossGrad node (absent: cross_entropy); false
 * for an unknown name. */
bool pq_train_loss_task(const pq_node *n, enum pq_train_task *out);
/* Decodes kd_direction (absent: forward); *reverse is true for "reverse"; false for another name. */
bool pq_train_loss_kd_reverse(const pq_node *n, bool *reverse);

enum pq_status pq_infer_train_loss(pq_infer_ctx *c);
enum pq_status pq_infer_train_loss_grad(pq_infer_ctx *c);

#endif
