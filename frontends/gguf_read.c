/* GGUF v2/v3 reader: maps the file and parses it with strict bounds (every count, string, array
 * and tensor range checked against the file), then verifies the piqc.sha256.* hashes. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf_internal.h"
#include "ir/alloc.h"

void pq_gguf_release_image(pq_gguf *g);

void pq_gguf_release_image(pq_gguf *g) {
    if (g->image) {
        if (g->mapped)
            munmap(g->image, g->image_len);
        else
            pq_free(g->image);
    }
    g->image = NULL;
    g->image_len = 0;
    g->mapped = false;
}

/* Parse cursor over the file image. */
typedef struct pq_cur {
    const unsigned char *p;
    size_t len, pos;
    pq_error *err;
    size_t hh_start, hh_end; /* byte range of the piqc.sha256.header record (0, 0 if none) */
    size_t infos_end;        /* end of the tensor infos */
} pq_cur;

static uint64_t pq_le(const unsigned char *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static size_t pq_cur_left(const pq_cur *c) {
    return c->len - c->pos;
}

/* Takes n bytes; `what` names the field for the truncation message. */
static enum pq_status pq_cur_take(pq_cur *c, uint64_t n, const unsigned char **out,
                                  const char *what) {
    if (n > pq_cur_left(c))
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "%s: %llu bytes needed at offset %zu, past the end of the file (%zu "
                            "bytes)",
                            what, (unsigned long long)n, c->pos, c->len);
    *out = c->p + c->pos;
    c->pos += (size_t)n;
    return PQ_OK;
}

static enum pq_status pq_cur_u32(pq_cur *c, uint32_t *v, const char *what) {
    const unsigned char *p = NULL;
    PQ_TRY(pq_cur_take(c, 4, &p, what));
    *v = (uint32_t)pq_le(p, 4);
    return PQ_OK;
}

static enum pq_status pq_cur_u64(pq_cur *c, uint64_t *v, const char *what) {
    const unsigned char *p = NULL;
    PQ_TRY(pq_cur_take(c, 8, &p, what));
    *v = pq_le(p, 8);
    return PQ_OK;
}

/* A string field: u64 length then bytes; *s points into the image (not NUL-terminated). */
static enum pq_status pq_cur_str(pq_cur *c, const unsigned char **s, uint64_t *len,
                                 const char *what) {
    PQ_TRY(pq_cur_u64(c, len, what));
    return pq_cur_take(c, *len, s, what);
}

/* Owned NUL-terminated copy of n bytes. */
static char *pq_dup_bytes(const unsigned char *s, uint64_t n) {
    char *d = pq_malloc((size_t)n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, s, (size_t)n);
    d[n] = '\0';
    return d;
}

/* Decodes one scalar of type t (file bytes at p) into memory at out (array layout). */
static enum pq_status pq_decode_scalar(pq_cur *c, enum pq_gguf_type t, const unsigned char *p,
                                       void *out, const char *key) {
    uint64_t b = pq_le(p, pq_gguf_type_file_size(t));
    switch (t) {
    case PQ_GGUF_U8:
        *(uint8_t *)out = (uint8_t)b;
        break;
    case PQ_GGUF_I8:
        *(int8_t *)out = (int8_t)(uint8_t)b;
        break;
    case PQ_GGUF_U16:
        *(uint16_t *)out = (uint16_t)b;
        break;
    case PQ_GGUF_I16:
        *(int16_t *)out = (int16_t)(uint16_t)b;
        break;
    case PQ_GGUF_U32:
        *(uint32_t *)out = (uint32_t)b;
        break;
    case PQ_GGUF_I32:
        *(int32_t *)out = (int32_t)(uint32_t)b;
        break;
    case PQ_GGUF_U64:
        *(uint64_t *)out = b;
        break;
    case PQ_GGUF_I64:
        *(int64_t *)out = (int64_t)b;
        break;
    case PQ_GGUF_F32: {
        uint32_t u = (uint32_t)b;
        memcpy(out, &u, 4);
        break;
    }
    case PQ_GGUF_F64:
        memcpy(out, &b, 8);
        break;
    case PQ_GGUF_BOOL:
        if (b > 1)
            return pq_error_set(c->err, PQ_ERR_INVALID, "key '%s': bool value %u is not 0 or 1",
                                key, (unsigned)b);
        *(bool *)out = b != 0;
        break;
    default:
        return pq_error_set(c->err, PQ_ERR_INTERNAL, "key '%s': not a scalar", key);
    }
    return PQ_OK;
}

static bool pq_scalar_type(uint32_t t) {
    return t < PQ_GGUF_TYPE_COUNT && t != PQ_GGUF_STRING && t != PQ_GGUF_ARRAY;
}

/* Parses a value of type t into *v (zeroed on failure; v owns what it allocated otherwise). */
static enum pq_status pq_read_value(pq_cur *c, uint32_t t, pq_gguf_value *v, const char *key) {
    memset(v, 0, sizeof *v);
    char what[160];
    snprintf(what, sizeof what, "key '%.100s'", key);
    if (t >= PQ_GGUF_TYPE_COUNT)
        return pq_error_set(c->err, PQ_ERR_INVALID, "key '%s': unknown value type %u", key, t);
    v->type = (enum pq_gguf_type)t;
    if (pq_scalar_type(t)) {
        const unsigned char *p = NULL;
        PQ_TRY(pq_cur_take(c, pq_gguf_type_file_size(v->type), &p, what));
        union {
            uint8_t u8;
            int8_t i8;
            uint16_t u16;
            int16_t i16;
            uint32_t u32;
            int32_t i32;
            uint64_t u64;
            int64_t i64;
            float f32;
            double f64;
            bool b;
        } x;
        PQ_TRY(pq_decode_scalar(c, v->type, p, &x, key));
        switch (v->type) {
        case PQ_GGUF_U8:
            v->u.u = x.u8;
            break;
        case PQ_GGUF_I8:
            v->u.i = x.i8;
            break;
        case PQ_GGUF_U16:
            v->u.u = x.u16;
            break;
        case PQ_GGUF_I16:
            v->u.i = x.i16;
            break;
        case PQ_GGUF_U32:
            v->u.u = x.u32;
            break;
        case PQ_GGUF_I32:
            v->u.i = x.i32;
            break;
        case PQ_GGUF_U64:
            v->u.u = x.u64;
            break;
        case PQ_GGUF_I64:
            v->u.i = x.i64;
            break;
        case PQ_GGUF_F32:
            v->u.f = x.f32;
            break;
        case PQ_GGUF_F64:
            v->u.f = x.f64;
            break;
        default:
            v->u.b = x.b;
            break;
        }
        return PQ_OK;
    }
    if (t == PQ_GGUF_STRING) {
        const unsigned char *s = NULL;
        uint64_t n;
        PQ_TRY(pq_cur_str(c, &s, &n, what));
        v->u.str.s = pq_dup_bytes(s, n);
        if (!v->u.str.s) {
            memset(v, 0, sizeof *v);
            return pq_error_nomem(c->err, "gguf string");
        }
        v->u.str.len = n;
        return PQ_OK;
    }
    /* array */
    uint32_t et;
    uint64_t n;
    memset(v, 0, sizeof *v);
    PQ_TRY(pq_cur_u32(c, &et, what));
    if (et == PQ_GGUF_ARRAY)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "key '%s': arrays of arrays", key);
    if (et >= PQ_GGUF_TYPE_COUNT)
        return pq_error_set(c->err, PQ_ERR_INVALID, "key '%s': unknown array element type %u", key,
                            et);
    PQ_TRY(pq_cur_u64(c, &n, what));
    size_t fs = et == PQ_GGUF_STRING ? 8 : pq_gguf_type_file_size((enum pq_gguf_type)et);
    if (n > pq_cur_left(c) / fs)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "key '%s': array of %llu %s elements runs past the end of the file",
                            key, (unsigned long long)n, pq_gguf_type_name((enum pq_gguf_type)et));
    size_t ms = pq_gguf_type_mem_size((enum pq_gguf_type)et);
    void *data = pq_calloc(n ? (size_t)n : 1, ms);
    if (!data) return pq_error_nomem(c->err, "gguf array");
    v->type = PQ_GGUF_ARRAY;
    v->u.arr.type = (enum pq_gguf_type)et;
    v->u.arr.data = data;
    v->u.arr.n = 0; /* counts the elements filled so far (freed correctly on failure) */
    enum pq_status st = PQ_OK;
    if (et == PQ_GGUF_STRING) {
        pq_gguf_str *out = data;
        for (uint64_t i = 0; i < n && st == PQ_OK; i++) {
            const unsigned char *s = NULL;
            uint64_t sl;
            st = pq_cur_str(c, &s, &sl, what);
            if (st != PQ_OK) break;
            out[i].s = pq_dup_bytes(s, sl);
            if (!out[i].s) {
                st = pq_error_nomem(c->err, "gguf string array");
                break;
            }
            out[i].len = sl;
            v->u.arr.n = i + 1;
        }
    } else {
        const unsigned char *p = NULL;
        st = pq_cur_take(c, n * fs, &p, what);
        for (uint64_t i = 0; i < n && st == PQ_OK; i++)
            st = pq_decode_scalar(c, (enum pq_gguf_type)et, p + i * fs, (char *)data + i * ms, key);
        if (st == PQ_OK) v->u.arr.n = n;
    }
    if (st != PQ_OK) pq_gguf_value_free(v);
    return st;
}

static enum pq_status pq_read_kvs(pq_cur *c, pq_gguf *g, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        const unsigned char *ks = NULL;
        uint64_t kl;
        char what[64];
        size_t start = c->pos;
        snprintf(what, sizeof what, "key/value %llu", (unsigned long long)i);
        PQ_TRY(pq_cur_str(c, &ks, &kl, what));
        if (kl == 0 || kl > 65535)
            return pq_error_set(c->err, PQ_ERR_INVALID, "%s: key length %llu out of range 1..65535",
                                what, (unsigned long long)kl);
        if (memchr(ks, '\0', (size_t)kl))
            return pq_error_set(c->err, PQ_ERR_INVALID, "%s: key contains a NUL byte", what);
        pq_gguf_kv kv;
        kv.key = pq_dup_bytes(ks, kl);
        if (!kv.key) return pq_error_nomem(c->err, "gguf key");
        enum pq_status st = PQ_OK;
        if (pq_gguf_find(g, kv.key))
            st = pq_error_set(c->err, PQ_ERR_INVALID, "key '%s': duplicate key", kv.key);
        uint32_t t = 0;
        if (st == PQ_OK) st = pq_cur_u32(c, &t, kv.key);
        if (st == PQ_OK) st = pq_read_value(c, t, &kv.v, kv.key);
        if (st == PQ_OK && strcmp(kv.key, "piqc.sha256.header") == 0) {
            c->hh_start = start;
            c->hh_end = c->pos;
        }
        if (st == PQ_OK) {
            st = pq_gguf_push_kv(g, &kv, c->err);
            if (st != PQ_OK) pq_gguf_value_free(&kv.v);
        }
        if (st != PQ_OK) {
            pq_free(kv.key);
            return st;
        }
    }
    return PQ_OK;
}

static enum pq_status pq_read_tensor_infos(pq_cur *c, pq_gguf *g, uint64_t n) {
    bool piqc = pq_gguf_is_piqc(g);
    for (uint64_t i = 0; i < n; i++) {
        const unsigned char *ns = NULL;
        uint64_t nl;
        char what[64];
        snprintf(what, sizeof what, "tensor info %llu", (unsigned long long)i);
        PQ_TRY(pq_cur_str(c, &ns, &nl, what));
        if (nl == 0 || nl > PQ_GGUF_MAX_NAME)
            return pq_error_set(c->err, PQ_ERR_INVALID, "%s: name length %llu out of range 1..%d",
                                what, (unsigned long long)nl, PQ_GGUF_MAX_NAME);
        if (memchr(ns, '\0', (size_t)nl))
            return pq_error_set(c->err, PQ_ERR_INVALID, "%s: name contains a NUL byte", what);
        pq_gguf_tensor t;
        memset(&t, 0, sizeof t);
        char name[PQ_GGUF_MAX_NAME + 1];
        memcpy(name, ns, (size_t)nl);
        name[nl] = '\0';
        if (pq_gguf_find_tensor(g, name))
            return pq_error_set(c->err, PQ_ERR_INVALID, "tensor '%s': duplicate name", name);
        char tw[96];
        snprintf(tw, sizeof tw, "tensor '%s'", name);
        PQ_TRY(pq_cur_u32(c, &t.n_dims, tw));
        if (t.n_dims < 1 || t.n_dims > PQ_GGUF_MAX_DIMS)
            return pq_error_set(c->err, PQ_ERR_INVALID, "tensor '%s': n_dims %u out of range 1..%d",
                                name, t.n_dims, PQ_GGUF_MAX_DIMS);
        for (uint32_t d = 0; d < t.n_dims; d++) {
            uint64_t v;
            PQ_TRY(pq_cur_u64(c, &v, tw));
            if (v > (uint64_t)INT64_MAX)
                return pq_error_set(c->err, PQ_ERR_INVALID, "tensor '%s': dimension %u is %llu",
                                    name, d, (unsigned long long)v);
            t.dims[d] = (int64_t)v;
        }
        PQ_TRY(pq_gguf_check_dims(name, t.n_dims, t.dims, c->err));
        PQ_TRY(pq_cur_u32(c, &t.type, tw));
        if (!pq_gguf_ttype_known(t.type))
            return pq_error_set(c->err, PQ_ERR_INVALID, "tensor '%s': unknown tensor type %u", name,
                                t.type);
        if ((t.type == PQ_GGUF_T_PIQ3 || t.type == PQ_GGUF_T_PIQ2) && !piqc)
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "tensor '%s': type %u is piqc's %s and only valid when "
                                "general.architecture is \"piqc\"",
                                name, t.type, pq_gguf_ttype_name(t.type));
        PQ_TRY(pq_cur_u64(c, &t.offset, tw));
        if (t.offset % g->alignment != 0)
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "tensor '%s': offset %llu is not a multiple of the alignment %zu",
                                name, (unsigned long long)t.offset, g->alignment);
        t.name = name;
        PQ_TRY(pq_gguf_tensor_nbytes(g, &t, &t.size, c->err));
        t.name = pq_strdup(name);
        if (!t.name) return pq_error_nomem(c->err, "gguf tensor name");
        enum pq_status st = pq_gguf_push_tensor(g, &t, c->err);
        if (st != PQ_OK) {
            pq_free(t.name);
            return st;
        }
    }
    return PQ_OK;
}

static int pq_cmp_offset(const void *a, const void *b) {
    const pq_gguf_tensor *x = *(const pq_gguf_tensor *const *)a;
    const pq_gguf_tensor *y = *(const pq_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Places every tensor inside the data section and rejects overlaps. */
static enum pq_status pq_place_tensors(pq_cur *c, pq_gguf *g) {
    uint64_t al = g->alignment;
    uint64_t start = ((uint64_t)c->pos + al - 1) / al * al;
    if (g->n_tensors == 0) {
        g->data_offset = start < c->len ? (size_t)start : c->len;
        return PQ_OK;
    }
    if (start > c->len)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "data section starts at offset %llu, past the end of the file (%zu "
                            "bytes)",
                            (unsigned long long)start, c->len);
    g->data_offset = (size_t)start;
    uint64_t room = c->len - start;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        pq_gguf_tensor *t = &g->tensors[i];
        if (t->offset > room || t->size > room - t->offset)
            return pq_error_set(
                c->err, PQ_ERR_INVALID,
                "tensor '%s': data [%llu, +%zu) lies outside the data section (%llu "
                "bytes)",
                t->name, (unsigned long long)t->offset, t->size, (unsigned long long)room);
        t->data = c->p + start + t->offset;
    }
    pq_gguf_tensor **order = pq_calloc((size_t)g->n_tensors, sizeof *order);
    if (!order) return pq_error_nomem(c->err, "gguf tensor order");
    for (uint64_t i = 0; i < g->n_tensors; i++)
        order[i] = &g->tensors[i];
    qsort(order, (size_t)g->n_tensors, sizeof *order, pq_cmp_offset);
    enum pq_status st = PQ_OK;
    const pq_gguf_tensor *prev = NULL;
    for (uint64_t i = 0; i < g->n_tensors && st == PQ_OK; i++) {
        const pq_gguf_tensor *t = order[i];
        if (t->size == 0) continue;
        if (prev && prev->offset + prev->size > t->offset)
            st = pq_error_set(c->err, PQ_ERR_INVALID, "tensors '%s' and '%s' overlap", prev->name,
                              t->name);
        prev = t;
    }
    pq_free(order);
    return st;
}

static bool pq_is_hex64(const pq_gguf_value *v) {
    if (v->type != PQ_GGUF_STRING || v->u.str.len != 64) return false;
    for (int i = 0; i < 64; i++) {
        char ch = v->u.str.s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return false;
    }
    return true;
}

static enum pq_status pq_check_hash(pq_cur *c, const pq_gguf *g, const char *key, const char *what,
                                    const void *data, size_t n) {
    const pq_gguf_kv *kv = pq_gguf_find(g, key);
    if (!kv)
        return pq_error_set(c->err, PQ_ERR_INVALID, "%s: no SHA-256 (key '%s' is missing)", what,
                            key);
    if (!pq_is_hex64(&kv->v))
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "%s: key '%s' is not a 64-digit lowercase hex string", what, key);
    char hex[65];
    PQ_TRY(pq_gguf_sha256_hex(data, n, hex, c->err));
    if (memcmp(hex, kv->v.u.str.s, 64) != 0)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "%s: SHA-256 mismatch (stored %.12s..., computed %.12s...): the file "
                            "is corrupted or was modified",
                            what, kv->v.u.str.s, hex);
    return PQ_OK;
}

static enum pq_status pq_verify(pq_cur *c, const pq_gguf *g) {
    /* header: everything before the data section except the piqc.sha256.header record */
    const pq_gguf_kv *hh = pq_gguf_find(g, "piqc.sha256.header");
    if (!hh)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "header: no SHA-256 (key 'piqc.sha256.header' is missing)");
    if (!pq_is_hex64(&hh->v))
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "header: key 'piqc.sha256.header' is not a 64-digit lowercase hex "
                            "string");
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(ctx, c->p, c->hh_start) == 1 &&
              EVP_DigestUpdate(ctx, c->p + c->hh_end, c->infos_end - c->hh_end) == 1 &&
              EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok) return pq_error_set(c->err, PQ_ERR_INTERNAL, "SHA-256 failed (libcrypto)");
    char hex[65];
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    if (memcmp(hex, hh->v.u.str.s, 64) != 0)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "header: SHA-256 mismatch (stored %.12s..., computed %.12s...): the "
                            "metadata or tensor infos were modified",
                            hh->v.u.str.s, hex);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const pq_gguf_tensor *t = &g->tensors[i];
        char key[96], what[96];
        if (strcmp(t->name, "config") == 0)
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "tensor 'config': name reserved (piqc.sha256.config)");
        snprintf(key, sizeof key, "piqc.sha256.%s", t->name);
        snprintf(what, sizeof what, "tensor '%s'", t->name);
        PQ_TRY(pq_check_hash(c, g, key, what, t->data, t->size));
    }
    if (pq_gguf_find(g, "piqc.sha256.config")) {
        const pq_gguf_kv *pipe = pq_gguf_find(g, "piqc.pipeline");
        if (!pipe || pipe->v.type != PQ_GGUF_STRING)
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "key 'piqc.sha256.config' present but 'piqc.pipeline' is missing "
                                "or not a string");
        PQ_TRY(pq_check_hash(c, g, "piqc.sha256.config", "pipeline config (piqc.pipeline)",
                             pipe->v.u.str.s, (size_t)pipe->v.u.str.len));
    }
    return PQ_OK;
}

/* Parses the image already attached to g. */
static enum pq_status pq_gguf_parse(pq_gguf *g, unsigned flags, pq_error *err) {
    pq_cur c = {.p = g->image, .len = g->image_len, .err = err};
    if (c.len < 4 || memcmp(c.p, "GGUF", 4) != 0)
        return pq_error_set(err, PQ_ERR_INVALID, "not a GGUF file (bad magic)");
    c.pos = 4;
    PQ_TRY(pq_cur_u32(&c, &g->version, "header version"));
    if (g->version < 2 || g->version > 3)
        return pq_error_set(err, PQ_ERR_INVALID, "unsupported GGUF version %u (expected 2 or 3%s)",
                            g->version,
                            (g->version >> 24) >= 2 && (g->version >> 24) <= 3
                                ? "; this looks like a big-endian file"
                                : "");
    uint64_t nt, nkv;
    PQ_TRY(pq_cur_u64(&c, &nt, "header tensor count"));
    PQ_TRY(pq_cur_u64(&c, &nkv, "header key/value count"));
    if (nt > PQ_GGUF_MAX_COUNT || nkv > PQ_GGUF_MAX_COUNT)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "header declares %llu tensors and %llu key/values (limit %u each)",
                            (unsigned long long)nt, (unsigned long long)nkv, PQ_GGUF_MAX_COUNT);
    /* smallest encodings: kv 8+1+4+1 bytes, tensor info 8+1+4+8+4+8 bytes */
    if (nkv * 14 + nt * 33 > pq_cur_left(&c))
        return pq_error_set(err, PQ_ERR_INVALID,
                            "header declares %llu tensors and %llu key/values, more than the %zu "
                            "remaining bytes can hold",
                            (unsigned long long)nt, (unsigned long long)nkv, pq_cur_left(&c));
    pq_gguf_map *ki = pq_gguf_map_create(nkv), *ti = pq_gguf_map_create(nt);
    if (!ki || !ti) {
        pq_gguf_map_destroy(ki);
        pq_gguf_map_destroy(ti);
        return pq_error_nomem(err, "gguf index");
    }
    pq_gguf_map_destroy(g->kv_index);
    pq_gguf_map_destroy(g->tensor_index);
    g->kv_index = ki;
    g->tensor_index = ti;
    g->kvs = pq_calloc(nkv ? (size_t)nkv : 1, sizeof *g->kvs);
    g->tensors = pq_calloc(nt ? (size_t)nt : 1, sizeof *g->tensors);
    if (!g->kvs || !g->tensors) return pq_error_nomem(err, "gguf tables");
    g->cap_kvs = nkv ? nkv : 1;
    g->cap_tensors = nt ? nt : 1;
    PQ_TRY(pq_read_kvs(&c, g, nkv));
    g->alignment = PQ_GGUF_DEFAULT_ALIGNMENT;
    const pq_gguf_kv *al = pq_gguf_find(g, "general.alignment");
    if (al) {
        if (al->v.type != PQ_GGUF_U32 || al->v.u.u < 8 || al->v.u.u > (1u << 20) ||
            (al->v.u.u & (al->v.u.u - 1)) != 0)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "key 'general.alignment' must be a u32 power of two in 8..2^20");
        g->alignment = (size_t)al->v.u.u;
    }
    PQ_TRY(pq_read_tensor_infos(&c, g, nt));
    c.infos_end = c.pos;
    PQ_TRY(pq_place_tensors(&c, g));
    if (flags & PQ_GGUF_VERIFY) PQ_TRY(pq_verify(&c, g));
    return PQ_OK;
}

static enum pq_status pq_gguf_finish(pq_gguf *g, unsigned flags, const char *label, pq_gguf **out,
                                     pq_error *err) {
    enum pq_status st = pq_gguf_parse(g, flags, err);
    if (st != PQ_OK) {
        pq_error_prefix(err, "gguf '%s': ", label);
        pq_gguf_destroy(g);
        return st;
    }
    *out = g;
    return PQ_OK;
}

enum pq_status pq_gguf_read_buffer(const void *data, size_t len, unsigned flags, pq_gguf **out,
                                   pq_error *err) {
    *out = NULL;
    if (len > PQ_GGUF_MAX_FILE)
        return pq_error_set(err, PQ_ERR_INVALID, "gguf '<buffer>': %zu bytes is too large", len);
    pq_gguf *g = pq_gguf_create(err);
    if (!g) return PQ_ERR_NOMEM;
    g->image = pq_malloc_aligned(len ? len : 1);
    if (!g->image) {
        pq_gguf_destroy(g);
        return pq_error_nomem(err, "gguf '<buffer>'");
    }
    if (len) memcpy(g->image, data, len);
    g->image_len = len;
    return pq_gguf_finish(g, flags, "<buffer>", out, err);
}

enum pq_status pq_gguf_read(const char *path, pq_gguf **out, unsigned flags, pq_error *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return pq_error_set(err, PQ_ERR_IO, "gguf '%s': cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return pq_error_set(err, PQ_ERR_IO, "gguf '%s': cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return pq_error_set(err, PQ_ERR_INVALID, "gguf '%s': not a regular file", path);
    }
    if (st.st_size < 0 || (unsigned long long)st.st_size > (unsigned long long)PQ_GGUF_MAX_FILE) {
        close(fd);
        return pq_error_set(err, PQ_ERR_INVALID, "gguf '%s': file too large (%lld bytes)", path,
                            (long long)st.st_size);
    }
    pq_gguf *g = pq_gguf_create(err);
    if (!g) {
        close(fd);
        return PQ_ERR_NOMEM;
    }
    size_t len = (size_t)st.st_size;
    if (len) {
        void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            pq_gguf_destroy(g);
            return pq_error_set(err, PQ_ERR_IO, "gguf '%s': cannot map: %s", path, strerror(e));
        }
        g->image = m;
        g->image_len = len;
        g->mapped = true;
    }
    close(fd);
    return pq_gguf_finish(g, flags, path, out, err);
}
