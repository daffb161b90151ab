/* File helpers shared by the frontends: bounded whole-file reads and atomic writes (temporary
 * file in the same directory, fsync, rename) so a failed save never leaves a truncated file. */
#ifndef PQ_FILEIO_H
#define PQ_FILEIO_H

#include <stddef.h>
#include <stdio.h>

#include "ir/status.h"

/* Reads the whole regular file at path into a new buffer (*out, pq_free it; one extra NUL byte
 * is appended and not counted in *len). IO when the file cannot be opened or read; INVALID when it
 * is not a regular file or is larger than max_bytes; NOMEM. Messages name the path. */
enum pq_status pq_file_read_all(const char *path, size_t max_bytes, unsigned char **out,
                                size_t *len, pq_error *err);

/* An atomic file being written: data goes to a temporary file next to path until commit. */
typedef struct pq_atomic_file {
    char *path;     /* final path (owned) */
    char *tmp_path; /* temporary path (owned) */
    FILE *f;        /* open stream on the temporary file */
} pq_atomic_file;

/* Creates the temporary file "<path>.tmpXXXXXX". IO naming the path on failure. */
enum pq_status pq_atomic_open(pq_atomic_file *af, const char *path, pq_error *err);
/* Writes n bytes (IO naming the final path on failure). */
enum pq_status pq_atomic_write(pq_atomic_file *af, const void *data, size_t n, pq_error *err);
/* Flushes, fsyncs, closes and renames the temporary file over path, then releases af. On failure
 * the temporary file is removed, af released, and IO naming the path returned. */
enum pq_status pq_atomic_commit(pq_atomic_file *af, pq_error *err);
/* Closes and removes the temporary file and releases af (safe after a failed open or commit). */
void pq_atomic_abort(pq_atomic_file *af);

#endif
