/* Scalar formulas of the activation ops, shared by their reference kernels (ref_unary.c) and the
 * fused-activation epilogue (backends/piqc_ops.c), so a fused activation is the same arithmetic. */
#ifndef PQ_REF_ACT_H
#define PQ_REF_ACT_H

#include <math.h>

/* Relu on f32: NaN and -0 pass through. */
static inline float pq_act_relu_f32(float x) {
    return x < 0.0f ? 0.0f : x;
}
/* LeakyRelu on f32. */
static inline float pq_act_leaky_relu_f32(float x, float alpha) {
    return x < 0.0f ? alpha * x : x;
}
/* Clip on f32 (NaN passes through). */
static inline float pq_act_clip_f32(float x, float lo, float hi) {
    x = x < lo ? lo : x;
    return x > hi ? hi : x;
}
/* Sigmoid in double (the f32 kernel rounds the result once). */
static inline double pq_act_sigmoid_f64(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}
/* HardSigmoid in double: max(0, min(1, alpha * x + beta)). */
/* max(0, min(1, v)) as glibc's x86-64 fmin(1, v) then fmax(0, .) compute it (a NaN v gives 1),
 * written as compares so loops over it vectorize. */
static inline double pq_act_clamp01(double v) {
    double c = v <= 1.0 ? v : 1.0;
    return 0.0 > c ? 0.0 : c;
}
static inline double pq_act_hard_sigmoid_f64(double x, double alpha, double beta) {
    return pq_act_clamp01(alpha * x + beta);
}
/* HardSwish in double: x * max(0, min(1, x / 6 + 0.5)). */
static inline double pq_act_hard_swish_f64(double x) {
    return x * pq_act_clamp01(x / 6.0 + 0.5);
}

#endif
