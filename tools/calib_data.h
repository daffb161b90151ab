/* Loading a calibration-data directory for the command line: one .npy batch per model input,
 * plus the SHA-256 of the data for the artifact's provenance (SPEC section 4, INV-5). */
#ifndef PQ_CALIB_DATA_H
#define PQ_CALIB_DATA_H

#include "runtime/calib.h"

typedef struct pq_calib_files {
    pq_calib_set set;
    char sha256[65]; /* hex SHA-256 over the files' bytes, in graph-input order */
} pq_calib_files;

/* Loads DIR/<input name>.npy for every graph input of g (input names sanitised to
 * [A-Za-z0-9._-] as `piqc run --output-dir` does). All files must share their first dimension
 * (the sample count, >= 1). IO/INVALID name the file. */
enum pq_status pq_calib_files_load(const pq_graph *g, const char *dir, pq_calib_files *out,
                                   pq_error *err);
void pq_calib_files_free(pq_calib_files *cf);

#endif
