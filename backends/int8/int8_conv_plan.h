/* The per-call set-up of a QLinearConv (decoded geometry, fused activation, requantization
 * multipliers) cached per session node and reused while the input shape and the scales match. */
#ifndef PQ_INT8_CONV_PLAN_H
#define PQ_INT8_CONV_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/int8/int8_gemm.h"
#include "backends/int8/int8_internal.h"
#include "backends/ref/ref.h"

/* What a QLinearConv call computes before any arithmetic, and the inputs it was computed from. */
typedef struct pq_i8_conv_plan {
    bool valid;
    int64_t xd[4], wd[4];  /* input and weight dims */
    unsigned char *scales; /* x_scale, w_scale and y_scale bytes, one after another */
    size_t nsx, nsw, nsy;  /* their byte counts */
    int dsx, dsw, dsy;     /* their dtypes */
    pq_i8_conv g;
    pq_i8_act act; /* with inv_sy set */
    bool has_act, finite;
    float *m; /* g.M multipliers */
    /* the small-convolution gather pattern (int8_conv_small.h), kept across calls, or NULL */
    struct pq_i8_small *small;
} pq_i8_conv_plan;

/* The plan slot of a->node in the session cache bound to this thread (created empty, not valid),
 * or NULL when no cache is bound or on NOMEM (then the caller computes everything per call). */
pq_i8_conv_plan *pq_i8_conv_plan_of(const pq_kernel_args *a);

/* Whether p is valid for input X, weight W and the scales sx / sw / sy (same dims, same dtypes,
 * same scale bytes). */
bool pq_i8_conv_plan_matches(const pq_i8_conv_plan *p, const pq_tensor *X, const pq_tensor *W,
                             const pq_tensor *sx, const pq_tensor *sw, const pq_tensor *sy);

/* Makes p hold the set-up computed for these inputs (m: g->M multipliers). False on NOMEM (p is
 * left invalid). */
bool pq_i8_conv_plan_store(pq_i8_conv_plan *p, const pq_tensor *X, const pq_tensor *W,
                           const pq_tensor *sx, const pq_tensor *sw, const pq_tensor *sy,
                           const pq_i8_conv *g, const pq_i8_act *act, bool has_act, const float *m,
                           bool finite);

#endif
