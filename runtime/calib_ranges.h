/* Activation ranges over a calibration set (SPEC 3 "INT8", SPEC 4 "Activation ranges"): streams
 * the values of chosen graph values into min/max or percentile estimators in bounded memory. */
#ifndef PQ_CALIB_RANGES_H
#define PQ_CALIB_RANGES_H

#include "calib.h"

/* The range [lo[i], hi[i]] of every f32 value values[i] of the prepared graph g over the whole
 * calibration set cs, run in chunks along axis 0 exactly as pq_calib_run chunks (the declared
 * batch when axis 0 is static, else up to 32 samples). Nothing is kept between chunks except one
 * estimator per distinct value:
 * - method "minmax": pq_range_minmax (exact min and max of the finite elements);
 * - method "percentile": pq_range_percentile at pct (0 < pct <= 100), two-sided, with the bound
 *   documented in backends/quant/quant.h (exact while the rank lies among the kept extremes,
 *   else the outer edge of its histogram bin). Each estimator is ~140 KB (heap).
 * Where a value is seen: a graph input or an intermediate value when its first reader (in
 * execution order) runs, once per chunk however many nodes read it; a value that only a graph
 * output reads from the session's outputs; an f32 constant once, from its data. Non-finite
 * elements are skipped. A value no element of which was seen (a zero-sized batch) gets 0, 0.
 * values may repeat (each entry gets the shared result); n may be 0 (nothing runs). lo and hi
 * have n entries (caller-owned).
 * Returns PQ_OK; PQ_ERR_INVALID for an unknown method, pct outside (0, 100] with percentile, a
 * value id out of range, or a value that is neither read by a top-level node, nor a graph output,
 * nor a constant (the message names it); PQ_ERR_UNSUPPORTED for a value that is not f32 (named);
 * what session creation and runs return (a fixed batch that does not divide the samples is
 * INVALID naming the input); PQ_ERR_NOMEM. */
enum pq_status pq_calib_ranges(pq_graph *g, const pq_calib_set *cs, const uint32_t *values,
                               uint32_t n, const char *method, double pct, float *lo, float *hi,
                               pq_error *err);

#endif
