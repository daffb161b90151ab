/* Implementation of the shared subcommand helpers: model loading by file extension, error and
 * usage reporting, integer parsing, type formatting and timing. */
#include "cli.h"
#include "runtime/dataset.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "artifact_load.h"
#include "frontends/frontends.h"
#include "runtime/runtime.h"

static bool pq_has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

enum pq_status pq_cli_load_model(const char *path, bool prepare, pq_graph **out, pq_error *err) {
    *out = NULL;
    enum pq_status st;
    if (pq_has_suffix(path, ".onnx"))
        st = pq_onnx_import_file(path, out, err);
    else if (pq_has_suffix(path, ".pir"))
        st = pq_pir_load(path, out, err);
    else if (pq_has_suffix(path, ".gguf")) {
        pq_artifact *a = NULL;
        st = pq_cli_load_artifact(path, &a, err);
        if (st == PQ_OK) { /* keep the graph, drop the file image */
            *out = a->graph;
            a->graph = NULL;
            pq_artifact_destroy(a);
        }
    } else
        return pq_error_set(err, PQ_ERR_USAGE,
                            "'%s': unknown model kind (expected a .onnx, .pir or .gguf file)",
                            path);
    if (st != PQ_OK) return st;
    if (prepare) {
        st = pq_runtime_prepare(*out, err);
        if (st != PQ_OK) {
            pq_graph_destroy(*out);
            *out = NULL;
            return st;
        }
    }
    return PQ_OK;
}

int pq_cli_fail(const char *cmd, const pq_error *err) {
    fprintf(stderr, "piqc %s: %s\n", cmd, err->msg[0] ? err->msg : pq_status_name(err->status));
    return pq_status_exit_code(err->status);
}

int pq_cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "piqc %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'piqc %s --help')\n", cmd);
    va_end(ap);
    return 1;
}

bool pq_cli_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

void pq_cli_format_type(const pq_graph *g, const pq_value *v, char *buf, int size) {
    int used = snprintf(buf, (size_t)size, "%s", pq_dtype_name(v->dtype));
    if (used >= size) return;
    if (v->shape.rank < 0) {
        snprintf(buf + used, (size_t)(size - used), "[*]");
        return;
    }
    used += snprintf(buf + used, (size_t)(size - used), "[");
    for (int d = 0; d < v->shape.rank && used < size; d++) {
        pq_dim dim = v->shape.dims[d];
        const char *sep = d ? "," : "";
        if (pq_dim_known(dim))
            used += snprintf(buf + used, (size_t)(size - used), "%s%lld", sep, (long long)dim.size);
        else if (dim.sym)
            used += snprintf(buf + used, (size_t)(size - used), "%s%s", sep,
                             pq_graph_symbol_name(g, dim.sym));
        else
            used += snprintf(buf + used, (size_t)(size - used), "%s?", sep);
    }
    if (used < size) snprintf(buf + used, (size_t)(size - used), "]");
}

void pq_cli_sanitize_name(const char *name, char *out, size_t size) {
    pq_dataset_file_name(name, out, size);
}

double pq_cli_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

enum pq_status pq_cli_check_output(const char *what, const char *path, pq_error *err) {
    struct stat sb;
    if (path && stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return pq_error_set(err, PQ_ERR_IO,
                            "%s '%s': not a regular file (outputs are replaced atomically; "
                            "devices and FIFOs are not supported)",
                            what, path);
    return PQ_OK;
}

void pq_cli_drop_output(const char *path) {
    struct stat sb;
    if (path && stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) remove(path);
}
