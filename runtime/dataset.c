/* Data folders for training and evaluation: loads and checks one .npy per graph input plus optional
 * labels.npy, gathers samples into batch tensors, and hashes the files' bytes (OpenSSL SHA-256). */
#include "dataset.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "frontends/fileio.h"
#include "frontends/npy.h"

/* Largest data file read (bytes). */
#define PQ_DATASET_MAX_FILE ((size_t)1 << 34)

struct pq_dataset {
    uint32_t n_inputs;
    int64_t count;
    pq_tensor **inputs; /* n_inputs, owned */
    char **paths;       /* n_inputs, owned */
    pq_tensor *labels;  /* owned, may be NULL */
    char sha256[65];
};

void pq_dataset_file_name(const char *name, char *out, size_t size) {
    size_t i = 0;
    for (; name && name[i] && i + 1 < size; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        out[i] = ok ? c : '_';
    }
    out[i] = '\0';
    if (!i || !strcmp(out, ".") || !strcmp(out, "..")) snprintf(out, size, "output");
}

void pq_dataset_destroy(pq_dataset *d) {
    if (!d) return;
    for (uint32_t i = 0; i < d->n_inputs; i++) {
        if (d->inputs) pq_tensor_destroy(d->inputs[i]);
        if (d->paths) pq_free(d->paths[i]);
    }
    pq_free(d->inputs);
    pq_free(d->paths);
    pq_tensor_destroy(d->labels);
    pq_free(d);
}

/* Reads path, feeds its bytes to md and parses it as .npy into *out. */
static enum pq_status pq_dataset_read(const char *path, EVP_MD_CTX *md, pq_tensor **out,
                                      pq_error *err) {
    unsigned char *bytes = NULL;
    size_t len = 0;
    enum pq_status st = pq_file_read_all(path, PQ_DATASET_MAX_FILE, &bytes, &len, err);
    if (st != PQ_OK) return st;
    if (!EVP_DigestUpdate(md, bytes, len)) {
        pq_free(bytes);
        return pq_error_set(err, PQ_ERR_INTERNAL, "SHA-256 of '%s' failed", path);
    }
    st = pq_npy_read_buffer(bytes, len, path, out, err);
    pq_free(bytes);
    return st;
}

/* Checks the sample axis of t (file path) against the count so far (*count 0 = none yet). */
static enum pq_status pq_dataset_check_count(const pq_tensor *t, const char *path, const char *what,
                                             int64_t *count, pq_error *err) {
    if (t->rank < 1 || t->dims[0] < 1)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "data folder: '%s': needs a sample axis 0 with at least one sample "
                            "(shape has rank %d%s)",
                            path, t->rank, t->rank >= 1 ? " and 0 samples" : "");
    if (*count && t->dims[0] != *count)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "data folder: '%s': %lld samples, but '%s' has %lld", path,
                            (long long)t->dims[0], what, (long long)*count);
    *count = t->dims[0];
    return PQ_OK;
}

/* Checks file t against graph input v (dtype, rank, known dims except dim 0). */
static enum pq_status pq_dataset_check_input(const pq_graph *g, const pq_value *v,
                                             const pq_tensor *t, const char *path, pq_error *err) {
    if (v->dtype != PQ_DTYPE_UNDEFINED && t->dtype != v->dtype)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "data folder: '%s': dtype %s, but graph input '%s' is %s", path,
                            pq_dtype_name(t->dtype), v->name, pq_dtype_name(v->dtype));
    if (v->shape.rank < 0) return PQ_OK;
    if (t->rank != v->shape.rank)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "data folder: '%s': rank %d, but graph input '%s' has rank %d "
                            "(axis 0 is the sample axis)",
                            path, t->rank, v->name, v->shape.rank);
    for (int k = 1; k < t->rank; k++) {
        pq_dim dim = v->shape.dims[k];
        if (pq_dim_known(dim) && dim.size != t->dims[k]) {
            char shape[160];
            pq_shape_format(t->rank, t->dims, shape, sizeof shape);
            return pq_error_set(err, PQ_ERR_INVALID,
                                "data folder: '%s': shape %s, but graph input '%s' has %lld at "
                                "axis %d",
                                path, shape, v->name, (long long)dim.size, k);
        }
    }
    (void)g;
    return PQ_OK;
}

static char *pq_dataset_path(const char *dir, const char *file) {
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = pq_malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, file);
    return p;
}

enum pq_status pq_dataset_open(const char *dir, const pq_graph *g, bool need_labels,
                               pq_dataset **out, pq_error *err) {
    *out = NULL;
    struct stat sb;
    if (!dir || !g) return pq_error_set(err, PQ_ERR_INTERNAL, "pq_dataset_open: NULL argument");
    if (stat(dir, &sb) != 0)
        return pq_error_set(err, PQ_ERR_IO, "data folder '%s': %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return pq_error_set(err, PQ_ERR_INVALID, "data folder '%s': not a directory", dir);
    pq_dataset *d = pq_calloc(1, sizeof *d);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    char *labels_path = pq_dataset_path(dir, PQ_DATASET_LABELS_FILE);
    enum pq_status st = PQ_OK;
    if (!d || !md || !labels_path || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        st = pq_error_nomem(err, "data folder");
        goto done;
    }
    d->n_inputs = g->n_inputs;
    d->inputs = pq_calloc(g->n_inputs + 1, sizeof *d->inputs);
    d->paths = pq_calloc(g->n_inputs + 1, sizeof *d->paths);
    if (!d->inputs || !d->paths) {
        st = pq_error_nomem(err, "data folder");
        goto done;
    }
    const char *first = NULL; /* file that set the sample count */
    bool label_clash = false;
    for (uint32_t i = 0; i < g->n_inputs; i++) {
        const pq_value *v = &g->values[g->inputs[i]];
        char base[256], file[300];
        pq_dataset_file_name(v->name, base, sizeof base);
        snprintf(file, sizeof file, "%s.npy", base);
        label_clash |= !strcmp(file, PQ_DATASET_LABELS_FILE);
        d->paths[i] = pq_dataset_path(dir, file);
        if (!d->paths[i]) {
            st = pq_error_nomem(err, "data folder");
            goto done;
        }
        st = pq_dataset_read(d->paths[i], md, &d->inputs[i], err);
        if (st == PQ_ERR_IO)
            pq_error_prefix(err,
                            "graph input '%s' (one <input name>.npy per graph input): ", v->name);
        if (st != PQ_OK) {
            pq_error_prefix(err, "data folder: ");
            goto done;
        }
        PQ_TRY_GOTO(st, pq_dataset_check_input(g, v, d->inputs[i], d->paths[i], err), done);
        PQ_TRY_GOTO(st, pq_dataset_check_count(d->inputs[i], d->paths[i], first, &d->count, err),
                    done);
        if (!first) first = d->paths[i];
    }
    errno = 0;
    bool have_labels = !label_clash && stat(labels_path, &sb) == 0;
    if (!label_clash && !have_labels && errno != ENOENT) {
        st = pq_error_set(err, PQ_ERR_IO, "data folder: '%s': %s", labels_path, strerror(errno));
        goto done;
    }
    if (need_labels && !have_labels) {
        st = label_clash ? pq_error_set(err, PQ_ERR_INVALID,
                                        "data folder: '%s' is read as a graph input (an input "
                                        "is named 'labels'), so the folder cannot hold labels",
                                        labels_path)
                         : pq_error_set(err, PQ_ERR_INVALID,
                                        "data folder: missing '%s' (labels, first axis = samples)",
                                        labels_path);
        goto done;
    }
    if (have_labels) {
        st = pq_dataset_read(labels_path, md, &d->labels, err);
        if (st != PQ_OK) {
            pq_error_prefix(err, "data folder: ");
            goto done;
        }
        if (d->labels->dtype != PQ_DTYPE_I64 && d->labels->dtype != PQ_DTYPE_F32) {
            st = pq_error_set(err, PQ_ERR_INVALID,
                              "data folder: '%s': labels of dtype %s; expected int64 (class ids) "
                              "or float32 (regression targets)",
                              labels_path, pq_dtype_name(d->labels->dtype));
            goto done;
        }
        PQ_TRY_GOTO(st, pq_dataset_check_count(d->labels, labels_path, first, &d->count, err),
                    done);
    }
    if (!d->count) {
        st = pq_error_set(err, PQ_ERR_INVALID,
                          "data folder '%s': the graph has no inputs and there is no %s: no "
                          "samples",
                          dir, PQ_DATASET_LABELS_FILE);
        goto done;
    }
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned int hl = 0;
    if (!EVP_DigestFinal_ex(md, h, &hl) || hl != 32) {
        st = pq_error_set(err, PQ_ERR_INTERNAL, "data folder: SHA-256 failed");
        goto done;
    }
    for (int k = 0; k < 32; k++)
        snprintf(d->sha256 + 2 * k, 3, "%02x", h[k]);
done:
    EVP_MD_CTX_free(md);
    pq_free(labels_path);
    if (st != PQ_OK) {
        pq_dataset_destroy(d);
        return st;
    }
    *out = d;
    return PQ_OK;
}

int64_t pq_dataset_count(const pq_dataset *d) {
    return d->count;
}

uint32_t pq_dataset_n_inputs(const pq_dataset *d) {
    return d->n_inputs;
}

const pq_tensor *pq_dataset_labels(const pq_dataset *d) {
    return d->labels;
}

const pq_tensor *pq_dataset_input(const pq_dataset *d, uint32_t i) {
    return i < d->n_inputs ? d->inputs[i] : NULL;
}

const char *pq_dataset_input_path(const pq_dataset *d, uint32_t i) {
    return i < d->n_inputs ? d->paths[i] : NULL;
}

const char *pq_dataset_sha256(const pq_dataset *d) {
    return d->sha256;
}

/* A batch tensor shaped like src with dim 0 = n. */
static pq_tensor *pq_dataset_like(const pq_tensor *src, int64_t n, pq_error *err) {
    int64_t dims[PQ_MAX_RANK];
    memcpy(dims, src->dims, sizeof dims);
    dims[0] = n;
    return pq_tensor_create(src->dtype, src->rank, dims, err);
}

enum pq_status pq_dataset_batch_alloc(const pq_dataset *d, int64_t n, pq_tensor **inputs,
                                      pq_tensor **labels, pq_error *err) {
    for (uint32_t i = 0; i < d->n_inputs; i++)
        inputs[i] = NULL;
    if (labels) *labels = NULL;
    if (n < 1)
        return pq_error_set(err, PQ_ERR_INVALID, "dataset batch of %lld samples (needs >= 1)",
                            (long long)n);
    enum pq_status st = PQ_OK;
    for (uint32_t i = 0; i < d->n_inputs && st == PQ_OK; i++) {
        inputs[i] = pq_dataset_like(d->inputs[i], n, err);
        if (!inputs[i]) st = err ? err->status : PQ_ERR_NOMEM;
    }
    if (st == PQ_OK && labels && d->labels) {
        *labels = pq_dataset_like(d->labels, n, err);
        if (!*labels) st = err ? err->status : PQ_ERR_NOMEM;
    }
    if (st != PQ_OK) {
        for (uint32_t i = 0; i < d->n_inputs; i++) {
            pq_tensor_destroy(inputs[i]);
            inputs[i] = NULL;
        }
        if (labels) {
            pq_tensor_destroy(*labels);
            *labels = NULL;
        }
    }
    return st;
}

/* INVALID unless dst has src's dtype and dims with dim 0 = n. */
static enum pq_status pq_dataset_check_batch(const pq_tensor *src, const pq_tensor *dst, int64_t n,
                                             const char *what, pq_error *err) {
    char want[160], got[160];
    if (!dst) return pq_error_set(err, PQ_ERR_INVALID, "dataset gather: %s: NULL tensor", what);
    bool ok = dst->dtype == src->dtype && dst->rank == src->rank && dst->dims[0] == n && dst->data;
    for (int k = 1; ok && k < src->rank; k++)
        ok = dst->dims[k] == src->dims[k];
    if (ok) return PQ_OK;
    int64_t dims[PQ_MAX_RANK];
    memcpy(dims, src->dims, sizeof dims);
    dims[0] = n;
    pq_shape_format(src->rank, dims, want, sizeof want);
    pq_shape_format(dst->rank, dst->dims, got, sizeof got);
    return pq_error_set(err, PQ_ERR_INVALID, "dataset gather: %s: expected %s%s, got %s%s", what,
                        pq_dtype_name(src->dtype), want, pq_dtype_name(dst->dtype), got);
}

/* Copies rows idx[0..n) of src into dst (checked shapes). */
static void pq_dataset_copy_rows(const pq_tensor *src, const int64_t *idx, int64_t n,
                                 pq_tensor *dst) {
    size_t row = src->nbytes / (size_t)src->dims[0];
    for (int64_t k = 0; k < n; k++)
        memcpy((unsigned char *)dst->data + (size_t)k * row,
               (const unsigned char *)src->data + (size_t)idx[k] * row, row);
}

enum pq_status pq_dataset_gather(const pq_dataset *d, const int64_t *idx, int64_t n,
                                 pq_tensor *const *inputs, pq_tensor *labels, pq_error *err) {
    if (n < 1 || !idx)
        return pq_error_set(err, PQ_ERR_INVALID, "dataset gather: %lld samples (needs >= 1)",
                            (long long)n);
    for (int64_t k = 0; k < n; k++)
        if (idx[k] < 0 || idx[k] >= d->count)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "dataset gather: index %lld at position %lld is outside [0, %lld)",
                                (long long)idx[k], (long long)k, (long long)d->count);
    if (d->n_inputs && !inputs)
        return pq_error_set(err, PQ_ERR_INVALID, "dataset gather: NULL input array");
    for (uint32_t i = 0; i < d->n_inputs; i++) {
        char what[64];
        snprintf(what, sizeof what, "input %u", i);
        PQ_TRY(pq_dataset_check_batch(d->inputs[i], inputs[i], n, what, err));
    }
    if (labels) {
        if (!d->labels)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "dataset gather: labels requested, but the folder has no %s",
                                PQ_DATASET_LABELS_FILE);
        PQ_TRY(pq_dataset_check_batch(d->labels, labels, n, "labels", err));
    }
    for (uint32_t i = 0; i < d->n_inputs; i++)
        pq_dataset_copy_rows(d->inputs[i], idx, n, inputs[i]);
    if (labels) pq_dataset_copy_rows(d->labels, idx, n, labels);
    return PQ_OK;
}
