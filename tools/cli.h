/* Helpers shared by the piqc subcommands: loading a model of any supported kind and preparing
 * it, reporting errors with the right exit code, and small argument parsers. */
#ifndef PQ_CLI_H
#define PQ_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"

/* Loads MODEL by extension (.onnx, .pir; .gguf when the artifact reader is present) and, when
 * prepare is true, runs pq_runtime_prepare on it. */
enum pq_status pq_cli_load_model(const char *path, bool prepare, pq_graph **out, pq_error *err);
/* Prints "piqc <cmd>: <message>" to stderr and returns the exit code of err->status. */
int pq_cli_fail(const char *cmd, const pq_error *err);
/* Prints a usage error "piqc <cmd>: <message>" and a hint to use --help; returns 1. */
int pq_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses a decimal integer in [lo, hi]; false on garbage or range error. */
bool pq_cli_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out);
/* Formats a value's type as "f32[N,1,8,8]" (symbols by name, '?' unknown). */
void pq_cli_format_type(const pq_graph *g, const pq_value *v, char *buf, int size);
/* Copies name into out replacing characters outside [A-Za-z0-9._-] by '_' (file names of
 * outputs and calibration inputs); "", "." and ".." become "output". */
void pq_cli_sanitize_name(const char *name, char *out, size_t size);
/* Outputs are written atomically (temporary file + rename); an existing non-regular target
 * (/dev/null, /dev/full, a FIFO) would be replaced by the rename, and as root that replaces the
 * device node. Returns IO ("<what> '<path>': not a regular file ...") for such a path, PQ_OK for
 * NULL, a missing or a regular file; called before any work. */
enum pq_status pq_cli_check_output(const char *what, const char *path, pq_error *err);
/* Removes path when it is a regular file (an output this run wrote, after a later step failed);
 * NULL or anything else is left alone. */
void pq_cli_drop_output(const char *path);
/* Milliseconds from a monotonic clock. */
double pq_cli_now_ms(void);

#endif
