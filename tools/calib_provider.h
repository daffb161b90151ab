/* The command line's calibration provider for passes (passes/pass.h pq_calib_provider): loads
 * --calib-data, and answers importance / Hessian / output-drift requests by running graphs. */
#ifndef PQ_CALIB_PROVIDER_H
#define PQ_CALIB_PROVIDER_H

#include "calib_data.h"

/* Owns the calibration files, a copy of the reference (pre-pipeline) graph for drift, and the
 * reference outputs once computed. */
typedef struct pq_cli_calib {
    pq_calib_files files;
    pq_graph *reference;     /* prepared clone of the model before the pipeline (owned) */
    pq_tensor **ref_outputs; /* lazily computed outputs of reference (owned), or NULL */
    uint32_t n_ref_outputs;
    int64_t ref_samples; /* samples the reference outputs cover */
    pq_calib_provider provider;
} pq_cli_calib;

/* Loads DIR's calibration files for the inputs of g, keeps a prepared clone of g as the drift
 * reference, checks every sample is finite and fills c->provider (importance, hessian, drift,
 * ranges, samples, data_sha256). IO/INVALID name the file; INVALID "calibration data 'DIR': ..."
 * naming the input, sample and element of a NaN or infinity; NOMEM. On failure nothing needs
 * freeing (c is zeroed). */
enum pq_status pq_cli_calib_init(pq_cli_calib *c, const pq_graph *g, const char *dir,
                                 pq_error *err);
void pq_cli_calib_free(pq_cli_calib *c);

#endif
