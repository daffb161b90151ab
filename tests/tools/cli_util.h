/* Helpers shared by the command-line tests (tests/tools): run a shell command and capture its
 * output and exit code, make and remove the per-suite temporary directory, read a number out of
 * printed text. They assert with Criterion, so call them only from tests and their fixtures. */
#ifndef PQ_TEST_CLI_UTIL_H
#define PQ_TEST_CLI_UTIL_H

#include <stdarg.h>
#include <stddef.h>

/* Runs the printf-formatted shell command with stderr merged into stdout and captures the first
 * size - 1 bytes of that output into out (NUL-terminated; size > 0). Returns the exit code,
 * 128 + the signal number when a signal ended it, -1 otherwise; asserts that popen worked. */
int pq_cli_sh(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Same with a va_list; when cwd is not NULL the command runs there as a `{ ...; }` group whose
 * every command's stderr is captured (NULL: the command line as given, `2>&1` at its end). */
int pq_cli_vsh(char *out, size_t size, const char *cwd, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* Makes a fresh directory /tmp/piqc-<name>-XXXXXX and writes its path into dir (size bytes);
 * asserts on failure. */
void pq_cli_mkdtemp(char *dir, size_t size, const char *name);

/* Removes dir and everything below it (rm -rf); asserts on failure. */
void pq_cli_rmtree(const char *dir);

/* The number printed right after the first `key` in text; -1 when key is absent. */
double pq_cli_number_after(const char *text, const char *key);

#endif
