/* Status codes and the error context every fallible piqc function reports through.
 * Status values double as the command line's exit codes (NOMEM maps to 4). */
#ifndef PQ_STATUS_H
#define PQ_STATUS_H

#include <stdarg.h>

enum pq_status {
    PQ_OK = 0,
    PQ_ERR_USAGE = 1,       /* bad flag or argument */
    PQ_ERR_INVALID = 2,     /* malformed or inconsistent input (file, shape, value) */
    PQ_ERR_UNSUPPORTED = 3, /* valid input that piqc does not handle (op, dtype, opset) */
    PQ_ERR_INTERNAL = 4,    /* a bug in piqc */
    PQ_ERR_IO = 5,          /* cannot read/write a file, disk full */
    PQ_ERR_NOMEM = 6        /* allocation failed (exit code 4) */
};

#define PQ_ERROR_MSG_MAX 4096

/* Error context: the first failure's status and a human-readable message. */
typedef struct pq_error {
    enum pq_status status;
    char msg[PQ_ERROR_MSG_MAX];
} pq_error;

/* Resets err to PQ_OK with an empty message. err may be NULL. */
void pq_error_clear(pq_error *err);

/* Records status st and a printf-style message in err (NULL allowed); returns st. */
enum pq_status pq_error_set(pq_error *err, enum pq_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends printf-style context to err->msg ("onnx: node 'x': " + msg); returns err->status
 * (PQ_ERR_INTERNAL when err is NULL). */
enum pq_status pq_error_prefix(pq_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Shorthand for an allocation failure message; returns PQ_ERR_NOMEM. */
enum pq_status pq_error_nomem(pq_error *err, const char *what);

/* Exit code of a status for the command line: 0 ok, 1 usage, 2 invalid, 3 unsupported,
 * 4 internal (and out of memory), 5 I/O. */
int pq_status_exit_code(enum pq_status st);

/* Short name of a status ("invalid input", ...). */
const char *pq_status_name(enum pq_status st);

/* Propagate a failing status. */
#define PQ_TRY(expr)                                                                               \
    do {                                                                                           \
        enum pq_status pq_try_s_ = (expr);                                                         \
        if (pq_try_s_ != PQ_OK) return pq_try_s_;                                                  \
    } while (0)

/* Store a failing status in st and jump to label (for cleanup paths). */
#define PQ_TRY_GOTO(st, expr, label)                                                               \
    do {                                                                                           \
        (st) = (expr);                                                                             \
        if ((st) != PQ_OK) goto label;                                                             \
    } while (0)

#endif
