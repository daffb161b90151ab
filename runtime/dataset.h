/* Training/evaluation data folders: one <graph input>.npy per graph input (axis 0 = samples) and
 * an optional labels.npy, checked against the graph, gathered into batches, hashed. */
#ifndef PQ_DATASET_H
#define PQ_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"

/* File name (without directory) of the labels in a data folder. */
#define PQ_DATASET_LABELS_FILE "labels.npy"

typedef struct pq_dataset pq_dataset;

/* Writes the file name (without ".npy") under which a data folder stores the graph input (or
 * output) called name: characters outside [A-Za-z0-9._-] become '_', and "", "." and ".." become
 * "output" -- the same names `piqc run --output-dir` writes and `--calib-data` reads. out holds
 * size bytes (> 0) and is always NUL-terminated (longer names are cut). */
void pq_dataset_file_name(const char *name, char *out, size_t size);

/* Opens DIR for graph g (borrowed; only read during the call): reads DIR/<input>.npy for every
 * graph input of g (in g->inputs order; file names as pq_dataset_file_name gives them) and
 * DIR/labels.npy when present. need_labels makes the absence of labels.npy an INVALID error naming
 * the file. Checks, each failure naming the file:
 *   - every file exists and is readable (IO) and parses as .npy (INVALID / UNSUPPORTED as
 *     pq_npy_read_buffer reports them; a file larger than 16 GiB is INVALID);
 *   - an input's dtype equals the input's declared dtype (any dtype when g declares none), its rank
 *     equals the declared rank (when known) and every known dim except dim 0 (the batch) matches;
 *   - every file has rank >= 1 and all share dim 0, the sample count, which is >= 1 (labels too);
 *   - labels are i64 (class ids) or f32 (regression targets); other dtypes are INVALID.
 * INVALID also when g has no inputs and DIR has no labels (nothing gives a sample count). A graph
 * input whose file name is "labels" reads labels.npy as that input; the folder then has no labels
 * (need_labels: INVALID explaining the clash). Two inputs whose names sanitise to the same file
 * read the same file. NOMEM. On success *out owns the tensors (pq_dataset_destroy); on failure *out
 * is NULL. Never crashes on hostile files. */
enum pq_status pq_dataset_open(const char *dir, const pq_graph *g, bool need_labels,
                               pq_dataset **out, pq_error *err);

/* Number of samples (dim 0 shared by every file, >= 1). */
int64_t pq_dataset_count(const pq_dataset *d);
/* Number of graph inputs the folder provides (g->n_inputs at open). */
uint32_t pq_dataset_n_inputs(const pq_dataset *d);
/* The whole labels tensor ([count, ...], i64 or f32), NULL when the folder has none. Owned by d. */
const pq_tensor *pq_dataset_labels(const pq_dataset *d);
/* The whole tensor of graph input i ([count, ...]); NULL when i >= n_inputs. Owned by d. */
const pq_tensor *pq_dataset_input(const pq_dataset *d, uint32_t i);
/* Path of the file graph input i was read from ("DIR/<name>.npy"); NULL when i >= n_inputs. */
const char *pq_dataset_input_path(const pq_dataset *d, uint32_t i);

/* Allocates zeroed batch tensors for n samples (n >= 1): inputs[i] (an array of n_inputs pointers
 * the caller provides) gets dtype of input i and dims [n, rest of the file's dims...]; when labels
 * is non-NULL, *labels gets the labels' dtype and [n, rest...], or NULL when the folder has no
 * labels. The caller destroys them with pq_tensor_destroy. INVALID for n < 1; NOMEM (then every
 * pointer written is NULL). */
enum pq_status pq_dataset_batch_alloc(const pq_dataset *d, int64_t n, pq_tensor **inputs,
                                      pq_tensor **labels, pq_error *err);

/* Copies samples idx[0..n) (each in [0, count), repeats allowed) into row k = 0..n-1 of the
 * caller's tensors: inputs[i] must have the dtype of input i and dims [n, rest...] (as
 * pq_dataset_batch_alloc makes them); labels likewise, or NULL to skip labels (also when the
 * folder has none). INVALID, before anything is written, for an index out of range (naming its
 * position), n < 1, a NULL or mis-shaped tensor (naming it), or labels requested from a folder
 * without labels. */
enum pq_status pq_dataset_gather(const pq_dataset *d, const int64_t *idx, int64_t n,
                                 pq_tensor *const *inputs, pq_tensor *labels, pq_error *err);

/* Lowercase hex SHA-256 (64 characters) of the bytes of the folder's files, concatenated in
 * graph-input order and then labels.npy when present (for provenance). Owned by d. */
const char *pq_dataset_sha256(const pq_dataset *d);

/* Frees d and its tensors. NULL allowed. */
void pq_dataset_destroy(pq_dataset *d);

#endif
