/* .pir files: the piqc text IR on disk (X.pir) with large constants' bytes in a sidecar
 * (X.pir.bin, written only when some constant is summarised). Grammar in docs/ir.md. */
#ifndef PQ_PIR_H
#define PQ_PIR_H

#include "ir/graph.h"
#include "ir/status.h"

/* Largest .pir text and .pir.bin sidecar pq_pir_load reads. */
#define PQ_PIR_MAX_TEXT ((size_t)1 << 30)
#define PQ_PIR_MAX_BIN ((size_t)1 << 40)

/* Writes g to path and, when it has summarised constants, their bytes to path + ".bin". Both
 * files are written atomically (temporary file in the same directory, fsync, rename); a stale
 * sidecar from an earlier save is removed when none is needed. Returns IO naming the path (no
 * temporary file left behind), INVALID when g cannot be printed, NOMEM. */
enum pq_status pq_pir_save(const pq_graph *g, const char *path, pq_error *err);

/* Reads path (and path + ".bin" when present) and parses it into *out (pq_graph_destroy it),
 * then checks it with pq_graph_verify_structure. IO when a file cannot be read; INVALID with
 * "PATH: line L, column C: ..." for syntax or reference errors, a sidecar range outside the
 * file, a checksum mismatch or a structurally invalid graph; UNSUPPORTED for another text IR
 * version; NOMEM. Files larger than PQ_PIR_MAX_TEXT / PQ_PIR_MAX_BIN are INVALID. */
enum pq_status pq_pir_load(const char *path, pq_graph **out, pq_error *err);

#endif
