/* Reference kernels of the training ops (domain "piqc", internal), entries of pq_ref_kernels:
 * FakeQuantGrad, the straight-through backward of FakeQuant (SPEC 7). */
#ifndef PQ_REF_TRAIN_H
#define PQ_REF_TRAIN_H

#include "ref.h"

/* FakeQuantGrad(w, scales, g) -> (dw, dscales?) (shape rule and attributes in ir/infer_train.h).
 * Per group of the FakeQuant weight view (ir/infer_piqc.h; groups of qgroup weights along a row,
 * the last one partial; int8: one group per row) with step s (piq/q: pq_qstep of the f16 scale word
 * a, i.e. f32(a) * PI_OVER_K[k] or * 1; int8: the f32 row scale), for each weight:
 * v = w / s (f32 division), r = nearbyintf(v), inside = -Qn <= r <= Qp with the forward's bounds
 * (piq3/q3: Qn 4, Qp 3; piq2/q2: Qn 2, Qp 1; int8: Qn = Qp = 127); NaN v is outside (c = 0).
 *   standard: dw = g;  clipped and lsq: dw = g * inside (a float product: -0 and NaN propagate);
 *   ewgs: dw = inside ? g * (1 + delta sign(g) (v - r)) : g * 0, evaluated in double, stored f32;
 *   lsq: dscales = sum over the group of g * c (c = r - v inside, -Qn below, Qp above) summed in
 *        double, times 1 / sqrt(N Qp) with N the weights actually in the group (a partial last
 *        group counts its real weights), times dstep/da = PI_OVER_K[k] as f32 (1 for q3/q2 and
 *        int8), stored f32.
 * Sign of a: the step is signed (s = a pi/k, a negative a mirrors the grid) and the formulas are
 * used as written with the signed s: below/above are in code space (r < -Qn / r > Qp), so dscales
 * is dL/da for the signed a. The gradient w.r.t. alpha = |a| is sign(a) * dL/da; an optimizer that
 * steps a by dL/da and then clamps |a| keeping the sign (SPEC 7) is the same update.
 * Returns PQ_OK, or PQ_ERR_INVALID (format f16 or unknown, bad ste, scales or g that contradict w,
 * dscales without ste = lsq). Single-threaded; no workspace. */
enum pq_status pq_ref_train_fake_quant_grad(const pq_kernel_args *a);

/* TrainLoss(logits, labels?, teacher?, pairs...) -> (total, terms?) (ir/infer_train.h): the
 * weighted total of backends/ref/loss.h (pq_loss_total) with the node's attributes as its config.
 * INVALID (message from the loss) for a label out of range, mismatched shapes. */
enum pq_status pq_ref_train_loss(const pq_kernel_args *a);
/* TrainLossGrad(dtotal, logits, labels?, teacher?, pairs...) -> (dlogits, ds_1, ...): the
 * gradients of pq_loss_total times dtotal (each element rounded to f32 once by the loss, then
 * multiplied by dtotal in f32; dtotal = 1 leaves them unchanged). */
enum pq_status pq_ref_train_loss_grad(const pq_kernel_args *a);

#endif
