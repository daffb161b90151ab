/* GGUF v3 writer: validates sizes against types and shapes, adds general.alignment and the
 * piqc.sha256.* integrity keys, and writes atomically (temporary file, fsync, rename). */
#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "fileio.h"
#include "gguf_internal.h"
#include "ir/alloc.h"

static long long pq_gguf_fail_after = -1;

void pq_gguf_test_fail_write_after(long long n) {
    pq_gguf_fail_after = n;
}

/* Byte sink: an atomic file, a plain stream, or a growable memory buffer (mem mode, used for the
 * header so that its SHA-256 can be stored in it), counting bytes. */
typedef struct pq_gguf_sink {
    pq_atomic_file *af;
    FILE *f;
    bool mem;
    unsigned char *buf;
    size_t cap;
    uint64_t written;
    uint64_t n_kvs; /* key/values emitted (header building) */
    pq_error *err;
} pq_gguf_sink;

static enum pq_status pq_sink_write(pq_gguf_sink *s, const void *p, size_t n) {
    if (n == 0) return PQ_OK;
    if (s->mem) {
        if (s->written + n > s->cap) {
            size_t nc = s->cap ? s->cap : 4096;
            while (nc < s->written + n) {
                if (nc > SIZE_MAX / 2) return pq_error_nomem(s->err, "gguf header");
                nc *= 2;
            }
            unsigned char *nb = pq_realloc(s->buf, nc);
            if (!nb) return pq_error_nomem(s->err, "gguf header");
            s->buf = nb;
            s->cap = nc;
        }
        memcpy(s->buf + s->written, p, n);
        s->written += n;
        return PQ_OK;
    }
    if (pq_gguf_fail_after >= 0 && s->written + n > (uint64_t)pq_gguf_fail_after)
        return pq_error_set(s->err, PQ_ERR_IO, "write failed after %llu bytes: %s",
                            (unsigned long long)pq_gguf_fail_after, strerror(ENOSPC));
    if (s->af) {
        PQ_TRY(pq_atomic_write(s->af, p, n, s->err));
    } else if (fwrite(p, 1, n, s->f) != n) {
        return pq_error_set(s->err, PQ_ERR_IO, "write failed: %s", strerror(errno));
    }
    s->written += n;
    return PQ_OK;
}

static enum pq_status pq_sink_u32(pq_gguf_sink *s, uint32_t v) {
    unsigned char b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    return pq_sink_write(s, b, 4);
}

static enum pq_status pq_sink_u64(pq_gguf_sink *s, uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    return pq_sink_write(s, b, 8);
}

static enum pq_status pq_sink_str(pq_gguf_sink *s, const char *p, uint64_t len) {
    PQ_TRY(pq_sink_u64(s, len));
    return pq_sink_write(s, p, (size_t)len);
}

static enum pq_status pq_sink_pad(pq_gguf_sink *s, uint64_t align) {
    static const unsigned char zeros[64];
    uint64_t pad = (align - s->written % align) % align;
    while (pad) {
        size_t n = pad > sizeof zeros ? sizeof zeros : (size_t)pad;
        PQ_TRY(pq_sink_write(s, zeros, n));
        pad -= n;
    }
    return PQ_OK;
}

/* One scalar element of type t from memory at p, in file byte order. */
static enum pq_status pq_sink_scalar(pq_gguf_sink *s, enum pq_gguf_type t, const void *p) {
    unsigned char b[8];
    size_t n = pq_gguf_type_file_size(t);
    uint64_t bits = 0;
    switch (t) {
    case PQ_GGUF_U8:
        bits = *(const uint8_t *)p;
        break;
    case PQ_GGUF_I8:
        bits = (uint8_t) * (const int8_t *)p;
        break;
    case PQ_GGUF_U16:
        bits = *(const uint16_t *)p;
        break;
    case PQ_GGUF_I16:
        bits = (uint16_t) * (const int16_t *)p;
        break;
    case PQ_GGUF_U32:
        bits = *(const uint32_t *)p;
        break;
    case PQ_GGUF_I32:
        bits = (uint32_t) * (const int32_t *)p;
        break;
    case PQ_GGUF_U64:
        bits = *(const uint64_t *)p;
        break;
    case PQ_GGUF_I64:
        bits = (uint64_t) * (const int64_t *)p;
        break;
    case PQ_GGUF_BOOL:
        bits = *(const bool *)p ? 1 : 0;
        break;
    case PQ_GGUF_F32: {
        uint32_t u;
        memcpy(&u, p, 4);
        bits = u;
        break;
    }
    case PQ_GGUF_F64:
        memcpy(&bits, p, 8);
        break;
    default:
        return pq_error_set(s->err, PQ_ERR_INTERNAL, "not a scalar gguf type");
    }
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(bits >> (8 * i));
    return pq_sink_write(s, b, n);
}

static enum pq_status pq_sink_value(pq_gguf_sink *s, const char *key, const pq_gguf_value *v) {
    PQ_TRY(pq_sink_u32(s, (uint32_t)v->type));
    switch (v->type) {
    case PQ_GGUF_U8: {
        uint8_t x = (uint8_t)v->u.u;
        return pq_sink_scalar(s, v->type, &x);
    }
    case PQ_GGUF_I8: {
        int8_t x = (int8_t)v->u.i;
        return pq_sink_scalar(s, v->type, &x);
    }
    case PQ_GGUF_U16: {
        uint16_t x = (uint16_t)v->u.u;
        return pq_sink_scalar(s, v->type, &x);
    }
    case PQ_GGUF_I16: {
        int16_t x = (int16_t)v->u.i;
        return pq_sink_scalar(s, v->type, &x);
    }
    case PQ_GGUF_U32: {
        uint32_t x = (uint32_t)v->u.u;
        return pq_sink_scalar(s, v->type, &x);
    }
    case PQ_GGUF_I32: {
        int32_t x = (int32_t)v->u.i;
        return pq_sink_scalar(s, v->type, &x);
    }
    case PQ_GGUF_U64:
        return pq_sink_scalar(s, v->type, &v->u.u);
    case PQ_GGUF_I64:
        return pq_sink_scalar(s, v->type, &v->u.i);
    case PQ_GGUF_F32: {
        float x = (float)v->u.f;
        return pq_sink_scalar(s, v->type, &x);
    }
    case PQ_GGUF_F64:
        return pq_sink_scalar(s, v->type, &v->u.f);
    case PQ_GGUF_BOOL:
        return pq_sink_scalar(s, v->type, &v->u.b);
    case PQ_GGUF_STRING:
        return pq_sink_str(s, v->u.str.s, v->u.str.len);
    case PQ_GGUF_ARRAY: {
        enum pq_gguf_type et = v->u.arr.type;
        if ((unsigned)et >= PQ_GGUF_TYPE_COUNT || et == PQ_GGUF_ARRAY)
            return pq_error_set(s->err, PQ_ERR_INVALID, "key '%s': array of %s not supported", key,
                                pq_gguf_type_name(et));
        PQ_TRY(pq_sink_u32(s, (uint32_t)et));
        PQ_TRY(pq_sink_u64(s, v->u.arr.n));
        size_t es = pq_gguf_type_mem_size(et);
        const unsigned char *p = v->u.arr.data;
        for (uint64_t i = 0; i < v->u.arr.n; i++, p += es) {
            if (et == PQ_GGUF_STRING) {
                const pq_gguf_str *str = (const pq_gguf_str *)p;
                PQ_TRY(pq_sink_str(s, str->s, str->len));
            } else {
                PQ_TRY(pq_sink_scalar(s, et, p));
            }
        }
        return PQ_OK;
    }
    default:
        return pq_error_set(s->err, PQ_ERR_INVALID, "key '%s': unknown value type %d", key,
                            (int)v->type);
    }
}

static enum pq_status pq_sink_kv(pq_gguf_sink *s, const char *key, const pq_gguf_value *v) {
    s->n_kvs++;
    PQ_TRY(pq_sink_str(s, key, strlen(key)));
    return pq_sink_value(s, key, v);
}

/* Everything the writer derives from g before writing: alignment, sizes and hashes. */
typedef struct pq_gguf_plan {
    uint64_t alignment;
    bool add_alignment;
    char (*hash)[65]; /* per tensor */
    uint64_t *offset; /* per tensor, relative to the data section */
    char config_hash[65];
    bool has_config;
} pq_gguf_plan;

static void pq_gguf_plan_free(pq_gguf_plan *p) {
    pq_free(p->hash);
    pq_free(p->offset);
}

static enum pq_status pq_gguf_plan_make(const pq_gguf *g, pq_gguf_plan *p, pq_error *err) {
    memset(p, 0, sizeof *p);
    p->alignment = PQ_GGUF_DEFAULT_ALIGNMENT;
    const pq_gguf_kv *al = pq_gguf_find(g, "general.alignment");
    if (!al) {
        p->add_alignment = true;
    } else {
        if (al->v.type != PQ_GGUF_U32 || al->v.u.u < 8 || al->v.u.u > (1u << 20) ||
            (al->v.u.u & (al->v.u.u - 1)) != 0)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "general.alignment must be a u32 power of two in 8..2^20");
        p->alignment = al->v.u.u;
    }
    uint64_t nt = g->n_tensors;
    p->hash = pq_calloc(nt ? (size_t)nt : 1, sizeof *p->hash);
    p->offset = pq_calloc(nt ? (size_t)nt : 1, sizeof *p->offset);
    if (!p->hash || !p->offset) {
        pq_gguf_plan_free(p);
        return pq_error_nomem(err, "gguf write plan");
    }
    uint64_t off = 0;
    for (uint64_t i = 0; i < nt; i++) {
        const pq_gguf_tensor *t = &g->tensors[i];
        enum pq_status st;
        size_t want = 0;
        if (strcmp(t->name, "config") == 0)
            st = pq_error_set(err, PQ_ERR_INVALID,
                              "tensor 'config': name reserved (piqc.sha256.config)");
        else
            st = pq_gguf_tensor_nbytes(g, t, &want, err);
        if (st == PQ_OK && want != t->size)
            st = pq_error_set(err, PQ_ERR_INVALID,
                              "tensor '%s': %zu data bytes, but type %s with this shape needs %zu",
                              t->name, t->size, pq_gguf_ttype_name(t->type), want);
        if (st == PQ_OK && t->size && !t->data)
            st = pq_error_set(err, PQ_ERR_INVALID, "tensor '%s': no data", t->name);
        if (st == PQ_OK) st = pq_gguf_sha256_hex(t->data, t->size, p->hash[i], err);
        if (st != PQ_OK) {
            pq_gguf_plan_free(p);
            return st;
        }
        off = (off + p->alignment - 1) / p->alignment * p->alignment;
        p->offset[i] = off;
        off += t->size;
    }
    const pq_gguf_kv *pipe = pq_gguf_find(g, "piqc.pipeline");
    if (pipe) {
        if (pipe->v.type != PQ_GGUF_STRING) {
            pq_gguf_plan_free(p);
            return pq_error_set(err, PQ_ERR_INVALID, "key 'piqc.pipeline' must be a string");
        }
        enum pq_status st =
            pq_gguf_sha256_hex(pipe->v.u.str.s, (size_t)pipe->v.u.str.len, p->config_hash, err);
        if (st != PQ_OK) {
            pq_gguf_plan_free(p);
            return st;
        }
        p->has_config = true;
    } else if (pq_gguf_find(g, "piqc.sha256.config")) {
        pq_gguf_plan_free(p);
        return pq_error_set(err, PQ_ERR_INVALID,
                            "key 'piqc.sha256.config' without 'piqc.pipeline'");
    }
    return PQ_OK;
}

static pq_gguf_value pq_gguf_hash_value(const char *hex) {
    pq_gguf_value v;
    memset(&v, 0, sizeof v);
    v.type = PQ_GGUF_STRING;
    v.u.str.s = (char *)hex;
    v.u.str.len = 64;
    return v;
}

/* Key/values of the header (all but piqc.sha256.header) into the memory sink a. */
static enum pq_status pq_gguf_emit_kvs(const pq_gguf *g, const pq_gguf_plan *p, pq_gguf_sink *a) {
    /* key/values of g, with the integrity keys replaced by fresh values */
    for (uint64_t i = 0; i < g->n_kvs; i++) {
        const pq_gguf_kv *kv = &g->kvs[i];
        const pq_gguf_value *v = &kv->v;
        pq_gguf_value hv;
        if (strcmp(kv->key, "piqc.sha256.header") == 0) continue; /* recomputed below */
        if (strncmp(kv->key, "piqc.sha256.", 12) == 0) {
            const char *tn = kv->key + 12;
            uint64_t ti = pq_gguf_map_get(g->tensor_index, tn);
            if (ti != UINT64_MAX) {
                hv = pq_gguf_hash_value(p->hash[ti]);
                v = &hv;
            } else if (p->has_config && strcmp(tn, "config") == 0) {
                hv = pq_gguf_hash_value(p->config_hash);
                v = &hv;
            }
        }
        PQ_TRY(pq_sink_kv(a, kv->key, v));
    }
    if (p->add_alignment) {
        pq_gguf_value v;
        memset(&v, 0, sizeof v);
        v.type = PQ_GGUF_U32;
        v.u.u = p->alignment;
        PQ_TRY(pq_sink_kv(a, "general.alignment", &v));
    }
    if (p->has_config && !pq_gguf_find(g, "piqc.sha256.config")) {
        pq_gguf_value v = pq_gguf_hash_value(p->config_hash);
        PQ_TRY(pq_sink_kv(a, "piqc.sha256.config", &v));
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        char key[96];
        snprintf(key, sizeof key, "piqc.sha256.%s", g->tensors[i].name);
        if (pq_gguf_find(g, key)) continue;
        pq_gguf_value v = pq_gguf_hash_value(p->hash[i]);
        PQ_TRY(pq_sink_kv(a, key, &v));
    }
    return PQ_OK;
}

static enum pq_status pq_gguf_emit(const pq_gguf *g, const pq_gguf_plan *p, pq_gguf_sink *s) {
    pq_error *err = s->err;
    pq_gguf_sink fx = {.mem = true, .err = err}, a = {.mem = true, .err = err},
                 b = {.mem = true, .err = err}, h = {.mem = true, .err = err};
    enum pq_status st = pq_gguf_emit_kvs(g, p, &a);
    /* tensor infos */
    for (uint64_t i = 0; i < g->n_tensors && st == PQ_OK; i++) {
        const pq_gguf_tensor *t = &g->tensors[i];
        st = pq_sink_str(&b, t->name, strlen(t->name));
        if (st == PQ_OK) st = pq_sink_u32(&b, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims && st == PQ_OK; d++)
            st = pq_sink_u64(&b, (uint64_t)t->dims[d]);
        if (st == PQ_OK) st = pq_sink_u32(&b, t->type);
        if (st == PQ_OK) st = pq_sink_u64(&b, p->offset[i]);
    }
    if (st == PQ_OK) st = pq_sink_write(&fx, "GGUF", 4);
    if (st == PQ_OK) st = pq_sink_u32(&fx, 3);
    if (st == PQ_OK) st = pq_sink_u64(&fx, g->n_tensors);
    if (st == PQ_OK) st = pq_sink_u64(&fx, a.n_kvs + 1);
    /* piqc.sha256.header = SHA-256 of everything before the data section except this record */
    if (st == PQ_OK) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
            EVP_DigestUpdate(ctx, fx.buf, (size_t)fx.written) != 1 ||
            (a.written && EVP_DigestUpdate(ctx, a.buf, (size_t)a.written) != 1) ||
            (b.written && EVP_DigestUpdate(ctx, b.buf, (size_t)b.written) != 1) ||
            EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
            st = pq_error_set(err, PQ_ERR_INTERNAL, "SHA-256 failed (libcrypto)");
        } else {
            char hex[65];
            for (unsigned i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
            pq_gguf_value v = pq_gguf_hash_value(hex);
            st = pq_sink_kv(&h, "piqc.sha256.header", &v);
        }
        EVP_MD_CTX_free(ctx);
    }
    if (st == PQ_OK) st = pq_sink_write(s, fx.buf, (size_t)fx.written);
    if (st == PQ_OK) st = pq_sink_write(s, a.buf, (size_t)a.written);
    if (st == PQ_OK) st = pq_sink_write(s, h.buf, (size_t)h.written);
    if (st == PQ_OK) st = pq_sink_write(s, b.buf, (size_t)b.written);
    pq_free(fx.buf);
    pq_free(a.buf);
    pq_free(b.buf);
    pq_free(h.buf);
    PQ_TRY(st);
    /* data section: each tensor at its offset, then padding to the alignment */
    if (g->n_tensors == 0) return PQ_OK;
    PQ_TRY(pq_sink_pad(s, p->alignment));
    uint64_t base = s->written;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        if (s->written - base != p->offset[i])
            return pq_error_set(err, PQ_ERR_INTERNAL, "tensor '%s': offset drift",
                                g->tensors[i].name);
        PQ_TRY(pq_sink_write(s, g->tensors[i].data, g->tensors[i].size));
        PQ_TRY(pq_sink_pad(s, p->alignment));
    }
    return PQ_OK;
}

enum pq_status pq_gguf_write_stream(const pq_gguf *g, FILE *f, pq_error *err) {
    pq_gguf_plan p;
    enum pq_status st = pq_gguf_plan_make(g, &p, err);
    if (st == PQ_OK) {
        pq_gguf_sink s = {.f = f, .err = err};
        st = pq_gguf_emit(g, &p, &s);
        if (st == PQ_OK && fflush(f) != 0)
            st = pq_error_set(err, PQ_ERR_IO, "write failed: %s", strerror(errno));
        pq_gguf_plan_free(&p);
    }
    if (st != PQ_OK) pq_error_prefix(err, "gguf: ");
    return st;
}

enum pq_status pq_gguf_write(const pq_gguf *g, const char *path, pq_error *err) {
    pq_gguf_plan p;
    enum pq_status st = pq_gguf_plan_make(g, &p, err);
    if (st != PQ_OK) {
        pq_error_prefix(err, "gguf '%s': ", path);
        return st;
    }
    pq_atomic_file af;
    st = pq_atomic_open(&af, path, err);
    if (st == PQ_OK) {
        pq_gguf_sink s = {.af = &af, .err = err};
        st = pq_gguf_emit(g, &p, &s);
        if (st == PQ_OK)
            st = pq_atomic_commit(&af, err); /* releases af on failure too */
        else
            pq_atomic_abort(&af);
        if (st != PQ_OK) pq_error_prefix(err, "gguf '%s': ", path);
    }
    pq_gguf_plan_free(&p);
    return st;
}
