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

#endif
