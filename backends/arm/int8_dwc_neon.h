/* NEON depthwise convolution with 16 channels in the lanes (pq_i8_dwc_fn of int8_gemm.h) for the
 * NEON INT8 tables (backends/arm/int8_gemm_neon.c); aarch64 builds only. */
#ifndef PQ_INT8_DWC_NEON_H
#define PQ_INT8_DWC_NEON_H

#include "backends/int8/int8_gemm.h"

/* Lanes (channels per call) of pq_i8_dwc__neon: the table's dwc_lanes. */
#define PQ_I8_DWC_NEON_LANES 16

/* pq_i8_dwc_fn: channels [0, a->nc) (nc <= 16) of one image, output rows [a->oh_begin,
 * a->oh_end), scratch of pq_i8_dwc_scratch(a, 16) bytes (any alignment), KH * KW <= 256.
 * Bit-exact with the reference depthwise and with pq_i8_requant__scalar for any multiplier
 * (non-finite ones give the scalar epilogue's bytes too). Writes only the output planes of the
 * nc channels, rows in range; cannot fail. */
void pq_i8_dwc__neon(const pq_i8_dwc *a);

#endif
