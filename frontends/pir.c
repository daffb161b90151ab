/* .pir text IR files with their .pir.bin sidecar: atomic save, bounded load (parse + structural
 * verification), messages naming the file. */
#include "pir.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "ir/alloc.h"
#include "ir/text.h"
#include "ir/verify.h"

static char *pq_bin_path(const char *path) {
    size_t l = strlen(path);
    char *b = pq_malloc(l + 5);
    if (b) {
        memcpy(b, path, l);
        memcpy(b + l, ".bin", 5);
    }
    return b;
}

static enum pq_status pq_write_file(const char *path, const void *data, size_t n, pq_error *err) {
    pq_atomic_file af;
    PQ_TRY(pq_atomic_open(&af, path, err));
    enum pq_status st = pq_atomic_write(&af, data, n, err);
    if (st != PQ_OK) {
        pq_atomic_abort(&af);
        return st;
    }
    return pq_atomic_commit(&af, err);
}

enum pq_status pq_pir_save(const pq_graph *g, const char *path, pq_error *err) {
    pq_text_bin bin = {0};
    char *text = NULL;
    char *bpath = pq_bin_path(path);
    enum pq_status st;
    if (!bpath) return pq_error_nomem(err, path);
    st = pq_text_print_string(g, &bin, &text, err);
    if (st != PQ_OK) {
        pq_error_prefix(err, "pir: '%s': ", path);
        goto done;
    }
    /* sidecar first, so the text never names bytes that are not on disk yet */
    if (bin.size) {
        PQ_TRY_GOTO(st, pq_write_file(bpath, bin.data, bin.size, err), prefixed);
    }
    PQ_TRY_GOTO(st, pq_write_file(path, text, strlen(text), err), prefixed);
    if (!bin.size && unlink(bpath) != 0 && errno != ENOENT) {
        st = pq_error_set(err, PQ_ERR_IO, "cannot remove the stale sidecar '%s': %s", bpath,
                          strerror(errno));
        goto prefixed;
    }
    goto done;
prefixed:
    pq_error_prefix(err, "pir: ");
done:
    pq_free(text);
    pq_text_bin_free(&bin);
    pq_free(bpath);
    return st;
}

enum pq_status pq_pir_load(const char *path, pq_graph **out, pq_error *err) {
    *out = NULL;
    unsigned char *text = NULL, *bin = NULL;
    size_t tlen = 0, blen = 0;
    pq_graph *g = NULL;
    char *bpath = pq_bin_path(path);
    enum pq_status st;
    if (!bpath) return pq_error_nomem(err, path);
    st = pq_file_read_all(path, PQ_PIR_MAX_TEXT, &text, &tlen, err);
    if (st != PQ_OK) {
        pq_error_prefix(err, "pir: ");
        goto done;
    }
    if (access(bpath, F_OK) == 0) {
        st = pq_file_read_all(bpath, PQ_PIR_MAX_BIN, &bin, &blen, err);
        if (st != PQ_OK) {
            pq_error_prefix(err, "pir: ");
            goto done;
        }
    }
    st = pq_text_parse((const char *)text, tlen, bin, blen, &g, err);
    if (st == PQ_OK) st = pq_graph_verify_structure(g, err);
    if (st != PQ_OK) {
        if (st != PQ_ERR_NOMEM) pq_error_prefix(err, "pir: '%s': ", path);
        pq_graph_destroy(g);
        goto done;
    }
    *out = g;
done:
    pq_free(text);
    pq_free(bin);
    pq_free(bpath);
    return st;
}
