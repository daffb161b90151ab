/* GGUF in-memory description: creation, key/value setters and typed getters, tensor infos, name
 * indexes, type tables, packed-tensor sizes, SHA-256 and short names (shared by reader and writer).
 */
#include <openssl/evp.h>
#include <string.h>

#include "gguf_internal.h"
#include "ir/alloc.h"
#include "ir/tensor.h"

/* ---- name index ---- */

static uint64_t pq_gguf_hash(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

pq_gguf_map *pq_gguf_map_create(uint64_t expected) {
    pq_gguf_map *m = pq_calloc(1, sizeof *m);
    if (!m) return NULL;
    uint64_t cap = 16;
    while (cap < expected * 2 + 2)
        cap *= 2;
    m->cap = cap;
    m->keys = pq_calloc(cap, sizeof *m->keys);
    m->idx = pq_calloc(cap, sizeof *m->idx);
    if (!m->keys || !m->idx) {
        pq_gguf_map_destroy(m);
        return NULL;
    }
    return m;
}

void pq_gguf_map_destroy(pq_gguf_map *m) {
    if (!m) return;
    pq_free(m->keys);
    pq_free(m->idx);
    pq_free(m);
}

uint64_t pq_gguf_map_get(const pq_gguf_map *m, const char *key) {
    if (!m) return UINT64_MAX;
    uint64_t mask = m->cap - 1;
    for (uint64_t p = pq_gguf_hash(key) & mask;; p = (p + 1) & mask) {
        if (!m->keys[p]) return UINT64_MAX;
        if (strcmp(m->keys[p], key) == 0) return m->idx[p];
    }
}

bool pq_gguf_map_put(pq_gguf_map *m, const char *key, uint64_t i) {
    if ((m->n + 1) * 2 > m->cap) {
        uint64_t ncap = m->cap * 2;
        const char **nk = pq_calloc(ncap, sizeof *nk);
        uint64_t *ni = pq_calloc(ncap, sizeof *ni);
        if (!nk || !ni) {
            pq_free(nk);
            pq_free(ni);
            return false;
        }
        for (uint64_t q = 0; q < m->cap; q++) {
            if (!m->keys[q]) continue;
            uint64_t p = pq_gguf_hash(m->keys[q]) & (ncap - 1);
            while (nk[p])
                p = (p + 1) & (ncap - 1);
            nk[p] = m->keys[q];
            ni[p] = m->idx[q];
        }
        pq_free(m->keys);
        pq_free(m->idx);
        m->keys = nk;
        m->idx = ni;
        m->cap = ncap;
    }
    uint64_t mask = m->cap - 1;
    uint64_t p = pq_gguf_hash(key) & mask;
    while (m->keys[p])
        p = (p + 1) & mask;
    m->keys[p] = key;
    m->idx[p] = i;
    m->n++;
    return true;
}

/* ---- types ---- */

static const struct {
    const char *name;
    size_t file_size, mem_size;
} pq_gguf_type_info[PQ_GGUF_TYPE_COUNT] = {
    [PQ_GGUF_U8] = {"u8", 1, 1},
    [PQ_GGUF_I8] = {"i8", 1, 1},
    [PQ_GGUF_U16] = {"u16", 2, 2},
    [PQ_GGUF_I16] = {"i16", 2, 2},
    [PQ_GGUF_U32] = {"u32", 4, 4},
    [PQ_GGUF_I32] = {"i32", 4, 4},
    [PQ_GGUF_F32] = {"f32", 4, 4},
    [PQ_GGUF_BOOL] = {"bool", 1, sizeof(bool)},
    [PQ_GGUF_STRING] = {"string", 0, sizeof(pq_gguf_str)},
    [PQ_GGUF_ARRAY] = {"array", 0, 0},
    [PQ_GGUF_U64] = {"u64", 8, 8},
    [PQ_GGUF_I64] = {"i64", 8, 8},
    [PQ_GGUF_F64] = {"f64", 8, 8},
};

const char *pq_gguf_type_name(enum pq_gguf_type t) {
    return (unsigned)t < PQ_GGUF_TYPE_COUNT ? pq_gguf_type_info[t].name : "?";
}

size_t pq_gguf_type_file_size(enum pq_gguf_type t) {
    return (unsigned)t < PQ_GGUF_TYPE_COUNT ? pq_gguf_type_info[t].file_size : 0;
}

size_t pq_gguf_type_mem_size(enum pq_gguf_type t) {
    return (unsigned)t < PQ_GGUF_TYPE_COUNT ? pq_gguf_type_info[t].mem_size : 0;
}

const char *pq_gguf_ttype_name(uint32_t type) {
    switch (type) {
    case PQ_GGUF_T_F32:
        return "F32";
    case PQ_GGUF_T_F16:
        return "F16";
    case PQ_GGUF_T_I8:
        return "I8";
    case PQ_GGUF_T_I16:
        return "I16";
    case PQ_GGUF_T_I32:
        return "I32";
    case PQ_GGUF_T_I64:
        return "I64";
    case PQ_GGUF_T_F64:
        return "F64";
    case PQ_GGUF_T_BF16:
        return "BF16";
    case PQ_GGUF_T_PIQ3:
        return "PIQ3";
    case PQ_GGUF_T_PIQ2:
        return "PIQ2";
    default:
        return "?";
    }
}

bool pq_gguf_ttype_known(uint32_t type) {
    return pq_gguf_ttype_name(type)[0] != '?';
}

enum pq_dtype pq_gguf_ttype_dtype(uint32_t type) {
    switch (type) {
    case PQ_GGUF_T_F32:
        return PQ_DTYPE_F32;
    case PQ_GGUF_T_F16:
        return PQ_DTYPE_F16;
    case PQ_GGUF_T_I8:
        return PQ_DTYPE_I8;
    case PQ_GGUF_T_I16:
        return PQ_DTYPE_I16;
    case PQ_GGUF_T_I32:
        return PQ_DTYPE_I32;
    case PQ_GGUF_T_I64:
        return PQ_DTYPE_I64;
    case PQ_GGUF_T_F64:
        return PQ_DTYPE_F64;
    case PQ_GGUF_T_BF16:
        return PQ_DTYPE_BF16;
    default:
        return PQ_DTYPE_UNDEFINED;
    }
}

bool pq_gguf_ttype_for_dtype(enum pq_dtype dt, uint32_t *out) {
    switch (dt) {
    case PQ_DTYPE_F32:
        *out = PQ_GGUF_T_F32;
        return true;
    case PQ_DTYPE_F16:
        *out = PQ_GGUF_T_F16;
        return true;
    case PQ_DTYPE_BF16:
        *out = PQ_GGUF_T_BF16;
        return true;
    case PQ_DTYPE_F64:
        *out = PQ_GGUF_T_F64;
        return true;
    case PQ_DTYPE_I8:
    case PQ_DTYPE_U8:
    case PQ_DTYPE_BOOL:
        *out = PQ_GGUF_T_I8;
        return true;
    case PQ_DTYPE_I16:
    case PQ_DTYPE_U16:
        *out = PQ_GGUF_T_I16;
        return true;
    case PQ_DTYPE_I32:
    case PQ_DTYPE_U32:
        *out = PQ_GGUF_T_I32;
        return true;
    case PQ_DTYPE_I64:
    case PQ_DTYPE_U64:
        *out = PQ_GGUF_T_I64;
        return true;
    default:
        return false;
    }
}

/* ---- lifetime ---- */

pq_gguf *pq_gguf_create(pq_error *err) {
    pq_gguf *g = pq_calloc(1, sizeof *g);
    if (!g) {
        pq_error_nomem(err, "gguf");
        return NULL;
    }
    g->version = 3;
    g->alignment = PQ_GGUF_DEFAULT_ALIGNMENT;
    g->kv_index = pq_gguf_map_create(16);
    g->tensor_index = pq_gguf_map_create(16);
    if (!g->kv_index || !g->tensor_index) {
        pq_gguf_destroy(g);
        pq_error_nomem(err, "gguf");
        return NULL;
    }
    return g;
}

void pq_gguf_value_free(pq_gguf_value *v) {
    if (v->type == PQ_GGUF_STRING) {
        pq_free(v->u.str.s);
    } else if (v->type == PQ_GGUF_ARRAY) {
        if (v->u.arr.type == PQ_GGUF_STRING && v->u.arr.data) {
            pq_gguf_str *s = v->u.arr.data;
            for (uint64_t i = 0; i < v->u.arr.n; i++)
                pq_free(s[i].s);
        }
        pq_free(v->u.arr.data);
    }
    memset(v, 0, sizeof *v);
}

/* Frees the file image of a read file (mapped or allocated); defined in gguf_read.c. */
void pq_gguf_release_image(pq_gguf *g);

void pq_gguf_destroy(pq_gguf *g) {
    if (!g) return;
    for (uint64_t i = 0; i < g->n_kvs; i++) {
        pq_free(g->kvs[i].key);
        pq_gguf_value_free(&g->kvs[i].v);
    }
    pq_free(g->kvs);
    for (uint64_t i = 0; i < g->n_tensors; i++)
        pq_free(g->tensors[i].name);
    pq_free(g->tensors);
    pq_gguf_map_destroy(g->kv_index);
    pq_gguf_map_destroy(g->tensor_index);
    pq_gguf_release_image(g);
    pq_free(g);
}

enum pq_status pq_gguf_push_kv(pq_gguf *g, pq_gguf_kv *kv, pq_error *err) {
    if (g->n_kvs == g->cap_kvs) {
        uint64_t nc = g->cap_kvs ? g->cap_kvs * 2 : 16;
        pq_gguf_kv *p = pq_realloc(g->kvs, nc * sizeof *p);
        if (!p) return pq_error_nomem(err, "gguf key/values");
        g->kvs = p;
        g->cap_kvs = nc;
    }
    if (!pq_gguf_map_put(g->kv_index, kv->key, g->n_kvs))
        return pq_error_nomem(err, "gguf key index");
    g->kvs[g->n_kvs++] = *kv;
    return PQ_OK;
}

enum pq_status pq_gguf_push_tensor(pq_gguf *g, pq_gguf_tensor *t, pq_error *err) {
    if (g->n_tensors == g->cap_tensors) {
        uint64_t nc = g->cap_tensors ? g->cap_tensors * 2 : 16;
        pq_gguf_tensor *p = pq_realloc(g->tensors, nc * sizeof *p);
        if (!p) return pq_error_nomem(err, "gguf tensor infos");
        g->tensors = p;
        g->cap_tensors = nc;
    }
    if (!pq_gguf_map_put(g->tensor_index, t->name, g->n_tensors))
        return pq_error_nomem(err, "gguf tensor index");
    g->tensors[g->n_tensors++] = *t;
    return PQ_OK;
}

/* ---- key/values ---- */

static enum pq_status pq_gguf_copy_str(pq_gguf_str *dst, const char *s, uint64_t len,
                                       pq_error *err) {
    if (len > (uint64_t)SIZE_MAX - 1) return pq_error_nomem(err, "gguf string");
    dst->s = pq_malloc((size_t)len + 1);
    if (!dst->s) return pq_error_nomem(err, "gguf string");
    if (len) memcpy(dst->s, s, (size_t)len);
    dst->s[len] = '\0';
    dst->len = len;
    return PQ_OK;
}

/* Deep copy of v into *dst (dst zeroed on failure). */
static enum pq_status pq_gguf_value_copy(pq_gguf_value *dst, const pq_gguf_value *v,
                                         const char *key, pq_error *err) {
    memset(dst, 0, sizeof *dst);
    if ((unsigned)v->type >= PQ_GGUF_TYPE_COUNT)
        return pq_error_set(err, PQ_ERR_INVALID, "gguf key '%s': unknown value type %d", key,
                            (int)v->type);
    *dst = *v;
    if (v->type == PQ_GGUF_STRING) {
        enum pq_status st = pq_gguf_copy_str(&dst->u.str, v->u.str.s ? v->u.str.s : "",
                                             v->u.str.s ? v->u.str.len : 0, err);
        if (st != PQ_OK) memset(dst, 0, sizeof *dst);
        return st;
    }
    if (v->type != PQ_GGUF_ARRAY) return PQ_OK;
    enum pq_gguf_type et = v->u.arr.type;
    if ((unsigned)et >= PQ_GGUF_TYPE_COUNT || et == PQ_GGUF_ARRAY) {
        memset(dst, 0, sizeof *dst);
        return pq_error_set(err, PQ_ERR_INVALID, "gguf key '%s': array of %s not supported", key,
                            pq_gguf_type_name(et));
    }
    size_t es = pq_gguf_type_mem_size(et);
    uint64_t n = v->u.arr.n;
    if (n > (uint64_t)(SIZE_MAX / 2) / es) {
        memset(dst, 0, sizeof *dst);
        return pq_error_nomem(err, "gguf array");
    }
    dst->u.arr.data = pq_calloc(n ? (size_t)n : 1, es);
    if (!dst->u.arr.data) {
        memset(dst, 0, sizeof *dst);
        return pq_error_nomem(err, "gguf array");
    }
    if (et != PQ_GGUF_STRING) {
        if (n) memcpy(dst->u.arr.data, v->u.arr.data, (size_t)n * es);
        return PQ_OK;
    }
    const pq_gguf_str *src = v->u.arr.data;
    pq_gguf_str *out = dst->u.arr.data;
    for (uint64_t i = 0; i < n; i++) {
        enum pq_status st =
            pq_gguf_copy_str(&out[i], src[i].s ? src[i].s : "", src[i].s ? src[i].len : 0, err);
        if (st != PQ_OK) {
            dst->u.arr.n = i;
            pq_gguf_value_free(dst);
            return st;
        }
    }
    return PQ_OK;
}

enum pq_status pq_gguf_set(pq_gguf *g, const char *key, const pq_gguf_value *v, pq_error *err) {
    size_t kl = key ? strlen(key) : 0;
    if (kl == 0 || kl > 65535)
        return pq_error_set(err, PQ_ERR_INVALID, "gguf: key length %zu out of range 1..65535", kl);
    pq_gguf_value copy;
    PQ_TRY(pq_gguf_value_copy(&copy, v, key, err));
    uint64_t i = pq_gguf_map_get(g->kv_index, key);
    if (i != UINT64_MAX) {
        pq_gguf_value_free(&g->kvs[i].v);
        g->kvs[i].v = copy;
        return PQ_OK;
    }
    pq_gguf_kv kv = {pq_strdup(key), copy};
    if (!kv.key) {
        pq_gguf_value_free(&copy);
        return pq_error_nomem(err, "gguf key");
    }
    enum pq_status st = pq_gguf_push_kv(g, &kv, err);
    if (st != PQ_OK) {
        pq_free(kv.key);
        pq_gguf_value_free(&copy);
    }
    return st;
}

#define PQ_GGUF_SETTER(fn, ctype, T, field)                                                        \
    enum pq_status fn(pq_gguf *g, const char *key, ctype v, pq_error *err) {                       \
        pq_gguf_value val;                                                                         \
        memset(&val, 0, sizeof val);                                                               \
        val.type = T;                                                                              \
        val.u.field = v;                                                                           \
        return pq_gguf_set(g, key, &val, err);                                                     \
    }
PQ_GGUF_SETTER(pq_gguf_set_u8, uint8_t, PQ_GGUF_U8, u)
PQ_GGUF_SETTER(pq_gguf_set_i8, int8_t, PQ_GGUF_I8, i)
PQ_GGUF_SETTER(pq_gguf_set_u16, uint16_t, PQ_GGUF_U16, u)
PQ_GGUF_SETTER(pq_gguf_set_i16, int16_t, PQ_GGUF_I16, i)
PQ_GGUF_SETTER(pq_gguf_set_u32, uint32_t, PQ_GGUF_U32, u)
PQ_GGUF_SETTER(pq_gguf_set_i32, int32_t, PQ_GGUF_I32, i)
PQ_GGUF_SETTER(pq_gguf_set_u64, uint64_t, PQ_GGUF_U64, u)
PQ_GGUF_SETTER(pq_gguf_set_i64, int64_t, PQ_GGUF_I64, i)
PQ_GGUF_SETTER(pq_gguf_set_f32, float, PQ_GGUF_F32, f)
PQ_GGUF_SETTER(pq_gguf_set_f64, double, PQ_GGUF_F64, f)
PQ_GGUF_SETTER(pq_gguf_set_bool, bool, PQ_GGUF_BOOL, b)

enum pq_status pq_gguf_set_string_n(pq_gguf *g, const char *key, const char *v, uint64_t len,
                                    pq_error *err) {
    pq_gguf_value val;
    memset(&val, 0, sizeof val);
    val.type = PQ_GGUF_STRING;
    val.u.str.s = (char *)v;
    val.u.str.len = len;
    return pq_gguf_set(g, key, &val, err);
}

enum pq_status pq_gguf_set_string(pq_gguf *g, const char *key, const char *v, pq_error *err) {
    return pq_gguf_set_string_n(g, key, v ? v : "", v ? strlen(v) : 0, err);
}

enum pq_status pq_gguf_set_array(pq_gguf *g, const char *key, enum pq_gguf_type elem,
                                 const void *elems, uint64_t n, pq_error *err) {
    pq_gguf_value val;
    memset(&val, 0, sizeof val);
    val.type = PQ_GGUF_ARRAY;
    val.u.arr.type = elem;
    val.u.arr.n = n;
    if (elem != PQ_GGUF_STRING) {
        val.u.arr.data = (void *)elems;
        return pq_gguf_set(g, key, &val, err);
    }
    /* strings: wrap the C strings (borrowed) as pq_gguf_str for the deep copy */
    if (n > (uint64_t)(SIZE_MAX / 2) / sizeof(pq_gguf_str)) return pq_error_nomem(err, key);
    pq_gguf_str *tmp = pq_calloc(n ? (size_t)n : 1, sizeof *tmp);
    if (!tmp) return pq_error_nomem(err, "gguf string array");
    const char *const *cs = elems;
    for (uint64_t i = 0; i < n; i++) {
        tmp[i].s = (char *)(cs[i] ? cs[i] : "");
        tmp[i].len = strlen(tmp[i].s);
    }
    val.u.arr.data = tmp;
    enum pq_status st = pq_gguf_set(g, key, &val, err);
    pq_free(tmp);
    return st;
}

static bool pq_gguf_rebuild_index(pq_gguf *g) {
    pq_gguf_map *m = pq_gguf_map_create(g->n_kvs);
    if (!m) return false;
    for (uint64_t i = 0; i < g->n_kvs; i++)
        (void)pq_gguf_map_put(m, g->kvs[i].key, i);
    pq_gguf_map_destroy(g->kv_index);
    g->kv_index = m;
    return true;
}

void pq_gguf_remove(pq_gguf *g, const char *key) {
    uint64_t i = pq_gguf_map_get(g->kv_index, key);
    if (i == UINT64_MAX) return;
    pq_gguf_kv old = g->kvs[i];
    memmove(&g->kvs[i], &g->kvs[i + 1], (size_t)(g->n_kvs - i - 1) * sizeof *g->kvs);
    g->n_kvs--;
    if (!pq_gguf_rebuild_index(g)) {
        /* keep the index consistent: put the entry back at the end instead of failing */
        g->kvs[g->n_kvs++] = old;
        (void)pq_gguf_rebuild_index(g);
        return;
    }
    pq_free(old.key);
    pq_gguf_value_free(&old.v);
}

/* ---- lookup ---- */

const pq_gguf_kv *pq_gguf_find(const pq_gguf *g, const char *key) {
    uint64_t i = pq_gguf_map_get(g->kv_index, key);
    return i == UINT64_MAX ? NULL : &g->kvs[i];
}

const pq_gguf_tensor *pq_gguf_find_tensor(const pq_gguf *g, const char *name) {
    uint64_t i = pq_gguf_map_get(g->tensor_index, name);
    return i == UINT64_MAX ? NULL : &g->tensors[i];
}

const pq_gguf_kv *pq_gguf_kv_at(const pq_gguf *g, uint64_t i) {
    return i < g->n_kvs ? &g->kvs[i] : NULL;
}

const pq_gguf_tensor *pq_gguf_tensor_at(const pq_gguf *g, uint64_t i) {
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

static const pq_gguf_value *pq_gguf_typed(const pq_gguf *g, const char *key, enum pq_gguf_type t,
                                          pq_error *err) {
    const pq_gguf_kv *kv = pq_gguf_find(g, key);
    if (!kv) {
        pq_error_set(err, PQ_ERR_INVALID, "gguf: key '%s' is missing", key);
        return NULL;
    }
    if (kv->v.type != t) {
        pq_error_set(err, PQ_ERR_INVALID, "gguf: key '%s' has type %s, expected %s", key,
                     pq_gguf_type_name(kv->v.type), pq_gguf_type_name(t));
        return NULL;
    }
    return &kv->v;
}

#define PQ_GGUF_GETTER(fn, ctype, T, field)                                                        \
    enum pq_status fn(const pq_gguf *g, const char *key, ctype *out, pq_error *err) {              \
        const pq_gguf_value *v = pq_gguf_typed(g, key, T, err);                                    \
        if (!v) return PQ_ERR_INVALID;                                                             \
        *out = (ctype)v->u.field;                                                                  \
        return PQ_OK;                                                                              \
    }
PQ_GGUF_GETTER(pq_gguf_get_u8, uint8_t, PQ_GGUF_U8, u)
PQ_GGUF_GETTER(pq_gguf_get_i8, int8_t, PQ_GGUF_I8, i)
PQ_GGUF_GETTER(pq_gguf_get_u16, uint16_t, PQ_GGUF_U16, u)
PQ_GGUF_GETTER(pq_gguf_get_i16, int16_t, PQ_GGUF_I16, i)
PQ_GGUF_GETTER(pq_gguf_get_u32, uint32_t, PQ_GGUF_U32, u)
PQ_GGUF_GETTER(pq_gguf_get_i32, int32_t, PQ_GGUF_I32, i)
PQ_GGUF_GETTER(pq_gguf_get_u64, uint64_t, PQ_GGUF_U64, u)
PQ_GGUF_GETTER(pq_gguf_get_i64, int64_t, PQ_GGUF_I64, i)
PQ_GGUF_GETTER(pq_gguf_get_f32, float, PQ_GGUF_F32, f)
PQ_GGUF_GETTER(pq_gguf_get_f64, double, PQ_GGUF_F64, f)
PQ_GGUF_GETTER(pq_gguf_get_bool, bool, PQ_GGUF_BOOL, b)

enum pq_status pq_gguf_get_string(const pq_gguf *g, const char *key, const char **out,
                                  uint64_t *len, pq_error *err) {
    const pq_gguf_value *v = pq_gguf_typed(g, key, PQ_GGUF_STRING, err);
    if (!v) return PQ_ERR_INVALID;
    *out = v->u.str.s;
    if (len) *len = v->u.str.len;
    return PQ_OK;
}

enum pq_status pq_gguf_get_array(const pq_gguf *g, const char *key, enum pq_gguf_type *elem,
                                 uint64_t *n, const void **data, pq_error *err) {
    const pq_gguf_value *v = pq_gguf_typed(g, key, PQ_GGUF_ARRAY, err);
    if (!v) return PQ_ERR_INVALID;
    *elem = v->u.arr.type;
    *n = v->u.arr.n;
    *data = v->u.arr.data;
    return PQ_OK;
}

bool pq_gguf_is_piqc(const pq_gguf *g) {
    const pq_gguf_kv *kv = pq_gguf_find(g, "general.architecture");
    return kv && kv->v.type == PQ_GGUF_STRING && kv->v.u.str.len == 4 &&
           memcmp(kv->v.u.str.s, "piqc", 4) == 0;
}

/* ---- tensors ---- */

enum pq_status pq_gguf_check_tensor_name(const char *name, uint64_t len, pq_error *err) {
    if (len == 0) return pq_error_set(err, PQ_ERR_INVALID, "tensor name is empty");
    if (memchr(name, '\0', (size_t)len))
        return pq_error_set(err, PQ_ERR_INVALID, "tensor name contains a NUL byte");
    if (len > PQ_GGUF_MAX_NAME)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "tensor '%.80s%s': name is %llu bytes, longer than %d", name,
                            len > 80 ? "..." : "", (unsigned long long)len, PQ_GGUF_MAX_NAME);
    return PQ_OK;
}

enum pq_status pq_gguf_check_dims(const char *name, uint32_t n_dims, const int64_t *dims,
                                  pq_error *err) {
    if (n_dims < 1 || n_dims > PQ_GGUF_MAX_DIMS)
        return pq_error_set(err, PQ_ERR_INVALID, "tensor '%s': n_dims %u out of range 1..%d", name,
                            n_dims, PQ_GGUF_MAX_DIMS);
    int64_t numel = 1;
    bool zero = false;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (dims[d] < 0 || dims[d] > PQ_MAX_NUMEL)
            return pq_error_set(err, PQ_ERR_INVALID, "tensor '%s': dimension %u is %lld", name, d,
                                (long long)dims[d]);
        if (dims[d] == 0)
            zero = true;
        else if (!zero) {
            if (numel > PQ_MAX_NUMEL / dims[d])
                return pq_error_set(err, PQ_ERR_INVALID,
                                    "tensor '%s': element count overflows (limit 2^40)", name);
            numel *= dims[d];
        }
    }
    return PQ_OK;
}

enum pq_status pq_gguf_add_tensor(pq_gguf *g, const char *name, uint32_t n_dims,
                                  const int64_t *dims, uint32_t type, const void *data, size_t size,
                                  pq_error *err) {
    if (!name) name = "";
    PQ_TRY(pq_gguf_check_tensor_name(name, strlen(name), err));
    if (strcmp(name, "config") == 0)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "tensor 'config': name reserved (piqc.sha256.config)");
    PQ_TRY(pq_gguf_check_dims(name, n_dims, dims, err));
    if (!pq_gguf_ttype_known(type))
        return pq_error_set(err, PQ_ERR_INVALID, "tensor '%s': unknown tensor type %u", name, type);
    if (pq_gguf_find_tensor(g, name))
        return pq_error_set(err, PQ_ERR_INVALID, "tensor '%s': duplicate name", name);
    if (size && !data)
        return pq_error_set(err, PQ_ERR_INVALID, "tensor '%s': no data for %zu bytes", name, size);
    pq_gguf_tensor t;
    memset(&t, 0, sizeof t);
    t.name = pq_strdup(name);
    if (!t.name) return pq_error_nomem(err, "gguf tensor name");
    t.n_dims = n_dims;
    memcpy(t.dims, dims, n_dims * sizeof *dims);
    t.type = type;
    t.data = data;
    t.size = size;
    enum pq_status st = pq_gguf_push_tensor(g, &t, err);
    if (st != PQ_OK) pq_free(t.name);
    return st;
}

enum pq_status pq_gguf_packed_info(const pq_gguf *g, const pq_gguf_tensor *t, enum pq_qformat *fmt,
                                   int64_t *rows, int64_t *cols, int64_t *group, pq_error *err) {
    if (t->type != PQ_GGUF_T_PIQ3 && t->type != PQ_GGUF_T_PIQ2)
        return pq_error_set(err, PQ_ERR_INVALID, "tensor '%s': type %s is not packed", t->name,
                            pq_gguf_ttype_name(t->type));
    if (!pq_gguf_is_piqc(g))
        return pq_error_set(err, PQ_ERR_INVALID,
                            "tensor '%s': type %u (%s) is only valid when general.architecture "
                            "is \"piqc\"",
                            t->name, t->type, pq_gguf_ttype_name(t->type));
    char key[96];
    uint32_t k = 0, gs = 0;
    snprintf(key, sizeof key, "piqc.k.%s", t->name);
    if (pq_gguf_get_u32(g, key, &k, NULL) != PQ_OK)
        return pq_error_set(err, PQ_ERR_INVALID, "tensor '%s': packed type needs u32 key '%s'",
                            t->name, key);
    snprintf(key, sizeof key, "piqc.group.%s", t->name);
    if (pq_gguf_get_u32(g, key, &gs, NULL) != PQ_OK)
        return pq_error_set(err, PQ_ERR_INVALID, "tensor '%s': packed type needs u32 key '%s'",
                            t->name, key);
    bool three = t->type == PQ_GGUF_T_PIQ3;
    enum pq_qformat f;
    if (k == 0)
        f = three ? PQ_QFORMAT_Q3 : PQ_QFORMAT_Q2;
    else if (three && k == 4)
        f = PQ_QFORMAT_PIQ3;
    else if (!three && k == 3)
        f = PQ_QFORMAT_PIQ2;
    else
        return pq_error_set(err, PQ_ERR_INVALID,
                            "tensor '%s': piqc.k is %u, expected %d (or 0 for uniform)", t->name, k,
                            three ? 4 : 3);
    if (gs == 0 || gs % 8 != 0)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "tensor '%s': piqc.group is %u, expected a positive multiple of 8",
                            t->name, gs);
    int64_t r = 1;
    for (uint32_t d = 1; d < t->n_dims; d++)
        r *= t->dims[d]; /* bounded by check_dims */
    *fmt = f;
    *rows = r;
    *cols = t->dims[0];
    *group = gs;
    return PQ_OK;
}

enum pq_status pq_gguf_tensor_nbytes(const pq_gguf *g, const pq_gguf_tensor *t, size_t *out,
                                     pq_error *err) {
    PQ_TRY(pq_gguf_check_dims(t->name, t->n_dims, t->dims, err));
    int64_t numel = 1;
    for (uint32_t d = 0; d < t->n_dims; d++)
        numel *= t->dims[d];
    if (t->type == PQ_GGUF_T_PIQ3 || t->type == PQ_GGUF_T_PIQ2) {
        enum pq_qformat f;
        int64_t rows, cols, group;
        PQ_TRY(pq_gguf_packed_info(g, t, &f, &rows, &cols, &group, err));
        if (numel == 0) {
            *out = 0;
            return PQ_OK;
        }
        size_t n = pq_packed_bytes(f, rows, cols, group);
        if (n == 0)
            return pq_error_set(err, PQ_ERR_INVALID, "tensor '%s': packed size overflows", t->name);
        *out = n;
        return PQ_OK;
    }
    enum pq_dtype dt = pq_gguf_ttype_dtype(t->type);
    if (dt == PQ_DTYPE_UNDEFINED)
        return pq_error_set(err, PQ_ERR_INVALID, "tensor '%s': unknown tensor type %u", t->name,
                            t->type);
    *out = (size_t)numel * pq_dtype_size(dt); /* numel <= 2^40, size <= 8 */
    return PQ_OK;
}

/* ---- hashes and names ---- */

enum pq_status pq_gguf_sha256_hex(const void *data, size_t n, char hex[65], pq_error *err) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(n ? data : "", n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return pq_error_set(err, PQ_ERR_INTERNAL, "SHA-256 failed (libcrypto)");
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
    return PQ_OK;
}

void pq_gguf_short_name(const char *name, char out[64]) {
    size_t len = strlen(name);
    if (len <= PQ_GGUF_MAX_NAME) {
        memcpy(out, name, len + 1);
        return;
    }
    char hex[65];
    if (pq_gguf_sha256_hex(name, len, hex, NULL) != PQ_OK) {
        /* libcrypto failure: fall back to FNV-1a (still deterministic) */
        uint64_t h = pq_gguf_hash(name);
        for (int i = 0; i < 16; i++)
            hex[i] = "0123456789abcdef"[(h >> (60 - 4 * i)) & 15];
    }
    size_t keep = 46;
    /* do not cut a UTF-8 sequence: back up over continuation bytes */
    while (keep > 0 && ((unsigned char)name[keep] & 0xC0) == 0x80)
        keep--;
    memcpy(out, name, keep);
    out[keep] = '~';
    memcpy(out + keep + 1, hex, 16);
    out[keep + 17] = '\0';
}
