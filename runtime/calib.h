/* Calibration runs: loading a calibration set (one .npy batch per graph input), running the model
 * over it in bounded chunks, and collecting per-column input importance E[x_j^2] for the weights
 * (SPEC section 4, `weighted`). Part of runtime/'s public face. */
#ifndef PQ_CALIB_H
#define PQ_CALIB_H

#include "passes/passes.h"
#include "runtime.h"

/* A calibration set: one tensor per graph input (same order), axis 0 = samples. Borrowed. */
typedef struct pq_calib_set {
    pq_tensor **inputs;
    uint32_t n;
    int64_t samples;
} pq_calib_set;

/* Runs the prepared graph g over the whole set in chunks along axis 0 (the declared size when
 * axis 0 is static, else up to 32 samples), calling observe before every node. Progress on stderr
 * when there are more than 4 chunks. */
enum pq_status pq_calib_run(pq_graph *g, const pq_calib_set *cs, pq_observe_fn observe, void *ctx,
                            pq_error *err);

/* Importance h_j = E[x_j^2] of each weight column over the set: MatMul/Gemm use the activation's
 * feature axis; Conv uses the input channel of the column (mean over batch and positions, and over
 * groups for grouped convolutions; padding and kernel offsets are not modelled); ConvTranspose gets
 * NULL (no per-column importance). out->per_tensor[i] has views[i].cols floats or NULL. */
enum pq_status pq_calib_importance(pq_graph *g, const pq_calib_set *cs, const pq_weight_view *views,
                                   uint32_t n, pq_importance *out, pq_error *err);
void pq_importance_free(pq_importance *imp);

#endif
