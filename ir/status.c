/* Error context helpers: formatting messages, prefixing context, mapping status to exit code.
 * Messages are truncated at PQ_ERROR_MSG_MAX bytes, never overflowed. */
#include "status.h"

#include <stdio.h>
#include <string.h>

void pq_error_clear(pq_error *err) {
    if (!err) return;
    err->status = PQ_OK;
    err->msg[0] = '\0';
}

enum pq_status pq_error_set(pq_error *err, enum pq_status st, const char *fmt, ...) {
    if (!err) return st;
    err->status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return st;
}

enum pq_status pq_error_prefix(pq_error *err, const char *fmt, ...) {
    if (!err) return PQ_ERR_INTERNAL;
    char head[PQ_ERROR_MSG_MAX];
    char old[PQ_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t hl = strnlen(head, sizeof head - 1);
    memcpy(err->msg, head, hl);
    size_t room = sizeof err->msg - 1 - hl;
    size_t ol = strnlen(old, room);
    memcpy(err->msg + hl, old, ol);
    err->msg[hl + ol] = '\0';
    if (err->status == PQ_OK) err->status = PQ_ERR_INTERNAL;
    return err->status;
}

enum pq_status pq_error_nomem(pq_error *err, const char *what) {
    return pq_error_set(err, PQ_ERR_NOMEM, "out of memory (%s)", what ? what : "allocation");
}

int pq_status_exit_code(enum pq_status st) {
    switch (st) {
    case PQ_OK:
        return 0;
    case PQ_ERR_USAGE:
        return 1;
    case PQ_ERR_INVALID:
        return 2;
    case PQ_ERR_UNSUPPORTED:
        return 3;
    case PQ_ERR_IO:
        return 5;
    case PQ_ERR_INTERNAL:
    case PQ_ERR_NOMEM:
    default:
        return 4;
    }
}

const char *pq_status_name(enum pq_status st) {
    switch (st) {
    case PQ_OK:
        return "ok";
    case PQ_ERR_USAGE:
        return "usage error";
    case PQ_ERR_INVALID:
        return "invalid input";
    case PQ_ERR_UNSUPPORTED:
        return "unsupported";
    case PQ_ERR_INTERNAL:
        return "internal error";
    case PQ_ERR_IO:
        return "I/O error";
    case PQ_ERR_NOMEM:
        return "out of memory";
    }
    return "unknown status";
}
