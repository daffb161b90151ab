/* Training checkpoints: serialisation of the run's position, parameters and optimizer state into
 * one checksummed file written atomically, and its fully validated reading for --resume. */
#include "train_ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontends/fileio.h"

static const unsigned char pq_ckpt_magic[8] = {'P', 'Q', 'C', 'K', 'P', 'T', 0, 1};

/* Largest checkpoint read back. */
#define PQ_CKPT_MAX_BYTES (UINT64_C(1) << 36)

/* A growing byte buffer. */
typedef struct pq_ckbuf {
    unsigned char *p;
    size_t n, cap;
    bool failed;
} pq_ckbuf;

static void pq_ck_put(pq_ckbuf *b, const void *data, size_t n) {
    if (b->failed) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n)
            cap *= 2;
        unsigned char *q = pq_realloc(b->p, cap);
        if (!q) {
            b->failed = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void pq_ck_u64(pq_ckbuf *b, uint64_t v) {
    unsigned char x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (unsigned char)(v >> (8 * i));
    pq_ck_put(b, x, 8);
}

static void pq_ck_u32(pq_ckbuf *b, uint32_t v) {
    unsigned char x[4];
    for (int i = 0; i < 4; i++)
        x[i] = (unsigned char)(v >> (8 * i));
    pq_ck_put(b, x, 4);
}

static void pq_ck_f64(pq_ckbuf *b, double d) {
    uint64_t v;
    memcpy(&v, &d, 8);
    pq_ck_u64(b, v);
}

/* Removes temporary files a killed save left behind ("checkpoint.pqck.tmp*"). */
static void pq_ckpt_remove_stale(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    const char *prefix = PQ_TRAIN_CKPT_FILE ".tmp";
    size_t pl = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, pl) != 0) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        (void)unlink(path);
    }
    closedir(d);
}

enum pq_status pq_train_ckpt_save(const char *dir, const pq_train_position *pos,
                                  const pq_train_graph *tg, const pq_optim *opt, pq_error *err) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return pq_error_set(err, PQ_ERR_IO, "checkpoint directory '%s': %s", dir, strerror(errno));
    pq_ckpt_remove_stale(dir);
    pq_ckbuf b = {0};
    pq_ck_put(&b, pq_ckpt_magic, 8);
    pq_ck_u64(&b, pos->fingerprint);
    pq_ck_u64(&b, (uint64_t)pos->step);
    pq_ck_u64(&b, (uint64_t)pos->epoch);
    pq_ck_u64(&b, (uint64_t)pos->step_in_epoch);
    for (int i = 0; i < 4; i++)
        pq_ck_f64(&b, pos->sums[i]);
    pq_ck_u32(&b, tg->n_params);
    for (uint32_t i = 0; i < tg->n_params; i++) {
        const pq_train_param *p = &tg->params[i];
        uint32_t len = (uint32_t)strlen(p->name);
        pq_ck_u32(&b, len);
        pq_ck_put(&b, p->name, len);
        uint64_t n = (uint64_t)pq_tensor_numel(p->master);
        pq_ck_u64(&b, n);
        pq_ck_put(&b, p->master->data, (size_t)n * 4); /* little-endian hosts only (x86, arm64) */
    }
    size_t slen = pq_optim_state_size(opt);
    pq_ck_u64(&b, slen);
    size_t at = b.n;
    unsigned char zero = 0;
    for (size_t i = 0; i < slen && !b.failed; i++)
        pq_ck_put(&b, &zero, 1);
    enum pq_status st = PQ_OK;
    if (b.failed) {
        pq_free(b.p);
        return pq_error_nomem(err, "checkpoint");
    }
    st = pq_optim_state_save(opt, b.p + at, slen, NULL, err);
    if (st == PQ_OK) pq_ck_u64(&b, pq_fnv1a64(PQ_FNV_OFFSET, b.p, b.n));
    if (st == PQ_OK && b.failed) st = pq_error_nomem(err, "checkpoint");
    if (st == PQ_OK) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, PQ_TRAIN_CKPT_FILE);
        pq_atomic_file af;
        st = pq_atomic_open(&af, path, err);
        if (st == PQ_OK) {
            st = pq_atomic_write(&af, b.p, b.n, err);
            if (st == PQ_OK)
                st = pq_atomic_commit(&af, err);
            else
                pq_atomic_abort(&af);
        }
    }
    pq_free(b.p);
    return st;
}

/* A bounded reader over the file's bytes. */
typedef struct pq_ckread {
    const unsigned char *p;
    size_t n, at;
    bool bad;
} pq_ckread;

static const unsigned char *pq_ck_take(pq_ckread *r, size_t n) {
    if (r->bad || n > r->n - r->at) {
        r->bad = true;
        return NULL;
    }
    const unsigned char *q = r->p + r->at;
    r->at += n;
    return q;
}

static uint64_t pq_ck_get_u64(pq_ckread *r) {
    const unsigned char *q = pq_ck_take(r, 8);
    uint64_t v = 0;
    for (int i = 0; q && i < 8; i++)
        v |= (uint64_t)q[i] << (8 * i);
    return v;
}

static uint32_t pq_ck_get_u32(pq_ckread *r) {
    const unsigned char *q = pq_ck_take(r, 4);
    uint32_t v = 0;
    for (int i = 0; q && i < 4; i++)
        v |= (uint32_t)q[i] << (8 * i);
    return v;
}

enum pq_status pq_train_ckpt_load(const char *dir, pq_train_position *pos, pq_train_graph *tg,
                                  pq_optim *opt, pq_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, PQ_TRAIN_CKPT_FILE);
    unsigned char *buf = NULL;
    size_t len = 0;
    PQ_TRY(pq_file_read_all(path, (size_t)PQ_CKPT_MAX_BYTES, &buf, &len, err));
    enum pq_status st = PQ_OK;
    pq_ckread r = {buf, len, 0, false};
    const unsigned char *magic = pq_ck_take(&r, 8);
    if (!magic || memcmp(magic, pq_ckpt_magic, 8) != 0) {
        st = pq_error_set(err, PQ_ERR_INVALID, "checkpoint '%s': not a piqc checkpoint", path);
        goto done;
    }
    uint64_t stored = 0;
    if (len >= 16) {
        r.at = len - 8;
        stored = pq_ck_get_u64(&r);
    }
    if (len < 16 || pq_fnv1a64(PQ_FNV_OFFSET, buf, len - 8) != stored) {
        st = pq_error_set(err, PQ_ERR_INVALID, "checkpoint '%s': checksum mismatch (truncated or "
                          "corrupted)", path);
        goto done;
    }
    r.at = 8;
    r.n = len - 8;
    pq_train_position p;
    memset(&p, 0, sizeof p);
    p.fingerprint = pq_ck_get_u64(&r);
    p.step = (int64_t)pq_ck_get_u64(&r);
    p.epoch = (int64_t)pq_ck_get_u64(&r);
    p.step_in_epoch = (int64_t)pq_ck_get_u64(&r);
    for (int i = 0; i < 4; i++) {
        uint64_t v = pq_ck_get_u64(&r);
        memcpy(&p.sums[i], &v, 8);
    }
    if (!r.bad && p.fingerprint != pos->fingerprint) {
        st = pq_error_set(err, PQ_ERR_INVALID,
                          "checkpoint '%s' belongs to another run (model, data or training "
                          "settings differ): remove it or train without --resume",
                          path);
        goto done;
    }
    uint32_t np = pq_ck_get_u32(&r);
    if (!r.bad && np != tg->n_params) {
        st = pq_error_set(err, PQ_ERR_INVALID, "checkpoint '%s' holds %u tensors, the run trains %u",
                          path, np, tg->n_params);
        goto done;
    }
    size_t *data_at = pq_calloc(np ? np : 1, sizeof *data_at);
    if (!data_at) {
        st = pq_error_nomem(err, "checkpoint");
        goto done;
    }
    for (uint32_t i = 0; i < np && !r.bad && st == PQ_OK; i++) {
        uint32_t nl = pq_ck_get_u32(&r);
        const unsigned char *name = pq_ck_take(&r, nl);
        uint64_t n = pq_ck_get_u64(&r);
        const pq_train_param *pp = &tg->params[i];
        if (r.bad) break;
        if (nl != strlen(pp->name) || memcmp(name, pp->name, nl) != 0 ||
            n != (uint64_t)pq_tensor_numel(pp->master))
            st = pq_error_set(err, PQ_ERR_INVALID,
                              "checkpoint '%s': tensor %u is not '%s' with %lld values", path, i,
                              pp->name, (long long)pq_tensor_numel(pp->master));
        data_at[i] = r.at;
        if (n > (r.n - r.at) / 4)
            r.bad = true;
        else
            (void)pq_ck_take(&r, (size_t)n * 4);
    }
    uint64_t slen = r.bad ? 0 : pq_ck_get_u64(&r);
    const unsigned char *state = r.bad || slen > r.n - r.at ? NULL : pq_ck_take(&r, (size_t)slen);
    if (st == PQ_OK && (r.bad || !state || r.at != r.n))
        st = pq_error_set(err, PQ_ERR_INVALID, "checkpoint '%s': malformed contents", path);
    if (st == PQ_OK) st = pq_optim_state_load(opt, state, (size_t)slen, err);
    if (st == PQ_OK) {
        for (uint32_t i = 0; i < np; i++)
            memcpy(tg->params[i].master->data, buf + data_at[i],
                   (size_t)pq_tensor_numel(tg->params[i].master) * 4);
        *pos = p;
    }
    pq_free(data_at);
done:
    pq_free(buf);
    return st;
}
