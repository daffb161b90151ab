/* A self-contained GGUF (v2/v3) layer: an in-memory description of metadata key/values and tensor
 * infos, a bounded strict reader with SHA-256 verification, and an atomic writer (SPEC section 10).
 * The piqc artifact (frontends/artifact.h) is built on top of it. Layout notes: docs/artifact.md.
 */
#ifndef PQ_GGUF_H
#define PQ_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ir/dtype.h"
#include "ir/packed.h"
#include "ir/status.h"

/* Value types of GGUF metadata (the ids stored in the file). */
enum pq_gguf_type {
    PQ_GGUF_U8 = 0,
    PQ_GGUF_I8 = 1,
    PQ_GGUF_U16 = 2,
    PQ_GGUF_I16 = 3,
    PQ_GGUF_U32 = 4,
    PQ_GGUF_I32 = 5,
    PQ_GGUF_F32 = 6,
    PQ_GGUF_BOOL = 7,
    PQ_GGUF_STRING = 8,
    PQ_GGUF_ARRAY = 9,
    PQ_GGUF_U64 = 10,
    PQ_GGUF_I64 = 11,
    PQ_GGUF_F64 = 12,
    PQ_GGUF_TYPE_COUNT
};

/* Tensor type ids piqc reads and writes. 40/41 are piqc's own ids (upstream ggml uses them for
 * other types): they are accepted only in files whose general.architecture is "piqc". A packed
 * tensor's format is told by the type id together with the u32 key piqc.k.<name>:
 *   type 40 + k 4 = PiQ3, type 41 + k 3 = PiQ2,
 *   type 40 + k 0 = uniform Q3 baseline, type 41 + k 0 = uniform Q2 baseline (piqc extension:
 *   same codes and row layout, step = a instead of a*pi/k).
 * Its group size G is the u32 key piqc.group.<name>. */
enum pq_gguf_ttype {
    PQ_GGUF_T_F32 = 0,
    PQ_GGUF_T_F16 = 1,
    PQ_GGUF_T_I8 = 24,
    PQ_GGUF_T_I16 = 25,
    PQ_GGUF_T_I32 = 26,
    PQ_GGUF_T_I64 = 27,
    PQ_GGUF_T_F64 = 28,
    PQ_GGUF_T_BF16 = 30,
    PQ_GGUF_T_PIQ3 = 40,
    PQ_GGUF_T_PIQ2 = 41,
};

#define PQ_GGUF_MAX_DIMS 8
#define PQ_GGUF_MAX_NAME 63        /* longest tensor name in bytes */
#define PQ_GGUF_MAX_COUNT 1000000u /* most tensors / key-values a file may declare */
#define PQ_GGUF_DEFAULT_ALIGNMENT 32u
#define PQ_GGUF_MAX_FILE ((size_t)1 << 40) /* largest file the reader maps */

/* A string: bytes plus length; s is always NUL-terminated (s[len] == 0) and holds no NUL byte
 * for keys and tensor names (a string value may contain NUL bytes). */
typedef struct pq_gguf_str {
    char *s;
    uint64_t len;
} pq_gguf_str;

/* One metadata value. Arrays hold scalars or strings (arrays of arrays are not supported):
 * arr.data is a C array of the element type (uint8_t, int8_t, ..., bool for BOOL, float for F32,
 * double for F64, pq_gguf_str for STRING). Everything is owned by the enclosing pq_gguf. */
typedef struct pq_gguf_value {
    enum pq_gguf_type type;
    union {
        uint64_t u; /* U8 U16 U32 U64 */
        int64_t i;  /* I8 I16 I32 I64 */
        double f;   /* F32 (exactly representable) F64 */
        bool b;     /* BOOL */
        pq_gguf_str str;
        struct {
            enum pq_gguf_type type;
            uint64_t n;
            void *data;
        } arr;
    } u;
} pq_gguf_value;

typedef struct pq_gguf_kv {
    char *key; /* owned */
    pq_gguf_value v;
} pq_gguf_kv;

/* A tensor info. dims are in GGUF order (dims[0] innermost). data is NOT owned: for a written
 * file it is the caller's buffer (must outlive pq_gguf_write); for a read file it points into the
 * file image owned by the pq_gguf (aligned to the file's alignment relative to a 64-byte aligned
 * or page-aligned base). offset is relative to the data section (set by the reader, and by the
 * writer in its own copy only). */
typedef struct pq_gguf_tensor {
    char *name; /* owned */
    uint32_t n_dims;
    int64_t dims[PQ_GGUF_MAX_DIMS];
    uint32_t type; /* enum pq_gguf_ttype */
    uint64_t offset;
    const void *data;
    size_t size;
} pq_gguf_tensor;

typedef struct pq_gguf_map pq_gguf_map;

/* A GGUF file in memory. Fields are readable; change it only through the functions below. */
typedef struct pq_gguf {
    uint32_t version; /* 3 for a created file; 2 or 3 when read */
    pq_gguf_kv *kvs;
    uint64_t n_kvs, cap_kvs;
    pq_gguf_tensor *tensors;
    uint64_t n_tensors, cap_tensors;
    size_t alignment;   /* of a read file (general.alignment or 32) */
    size_t data_offset; /* of a read file: start of the data section */
    /* file image of a read file (owned): mapped (mapped = true) or allocated */
    unsigned char *image;
    size_t image_len;
    bool mapped;
    pq_gguf_map *kv_index, *tensor_index; /* name lookup (internal) */
} pq_gguf;

/* ---- building ---- */

/* Creates an empty GGUF description (version 3, no keys, no tensors). NULL + NOMEM on failure. */
pq_gguf *pq_gguf_create(pq_error *err);
/* Frees g, its keys, values, tensor infos and (for a read file) its file image. NULL allowed. */
void pq_gguf_destroy(pq_gguf *g);

/* Sets key to a copy of v (strings and arrays deep-copied), replacing an existing key of that
 * name in place (keeping its position). INVALID when key is empty or longer than 65535 bytes, or v
 * is malformed (unknown type, array of arrays); NOMEM. */
enum pq_status pq_gguf_set(pq_gguf *g, const char *key, const pq_gguf_value *v, pq_error *err);
/* Typed shorthands for pq_gguf_set (same statuses). */
enum pq_status pq_gguf_set_u8(pq_gguf *g, const char *key, uint8_t v, pq_error *err);
enum pq_status pq_gguf_set_i8(pq_gguf *g, const char *key, int8_t v, pq_error *err);
enum pq_status pq_gguf_set_u16(pq_gguf *g, const char *key, uint16_t v, pq_error *err);
enum pq_status pq_gguf_set_i16(pq_gguf *g, const char *key, int16_t v, pq_error *err);
enum pq_status pq_gguf_set_u32(pq_gguf *g, const char *key, uint32_t v, pq_error *err);
enum pq_status pq_gguf_set_i32(pq_gguf *g, const char *key, int32_t v, pq_error *err);
enum pq_status pq_gguf_set_u64(pq_gguf *g, const char *key, uint64_t v, pq_error *err);
enum pq_status pq_gguf_set_i64(pq_gguf *g, const char *key, int64_t v, pq_error *err);
enum pq_status pq_gguf_set_f32(pq_gguf *g, const char *key, float v, pq_error *err);
enum pq_status pq_gguf_set_f64(pq_gguf *g, const char *key, double v, pq_error *err);
enum pq_status pq_gguf_set_bool(pq_gguf *g, const char *key, bool v, pq_error *err);
/* NUL-terminated string value. */
enum pq_status pq_gguf_set_string(pq_gguf *g, const char *key, const char *v, pq_error *err);
/* String value of len bytes (may contain NUL bytes). */
enum pq_status pq_gguf_set_string_n(pq_gguf *g, const char *key, const char *v, uint64_t len,
                                    pq_error *err);
/* Array of n elements of type elem (not ARRAY). elems is a C array of the element type as in
 * pq_gguf_value, except for STRING where it is `const char *const *` (NUL-terminated strings). */
enum pq_status pq_gguf_set_array(pq_gguf *g, const char *key, enum pq_gguf_type elem,
                                 const void *elems, uint64_t n, pq_error *err);
/* Removes key if present. */
void pq_gguf_remove(pq_gguf *g, const char *key);

/* Adds a tensor info. dims in GGUF order (innermost first), 1 <= n_dims <= 8, each >= 0.
 * data/size are not copied (the buffer must outlive the write). The size is checked against
 * type and shape when writing (packed types need their piqc.group/k keys, which may be set later).
 * INVALID: name empty, longer than 63 bytes (see pq_gguf_short_name) or "config" (reserved by
 * piqc.sha256.config), duplicate name, bad n_dims or dims, unknown type; NOMEM. */
enum pq_status pq_gguf_add_tensor(pq_gguf *g, const char *name, uint32_t n_dims,
                                  const int64_t *dims, uint32_t type, const void *data, size_t size,
                                  pq_error *err);

/* Writes into out (64 bytes) a tensor name of at most 63 bytes for name: name itself when it is
 * short enough, else its first 46 bytes (cut at a UTF-8 boundary), '~' and the first 16 hex digits
 * of SHA-256(name). Deterministic; distinct long names get distinct short names unless their
 * hashes collide in 64 bits. */
void pq_gguf_short_name(const char *name, char out[64]);

/* ---- writing ---- */

/* Writes g to path atomically (temporary file in the same directory, fsync, rename): header
 * (magic "GGUF", version 3, counts), key/values, tensor infos, padding, tensor data each aligned to
 * general.alignment (u32, default 32). Adds to the written file (g itself is not changed):
 * general.alignment when absent, piqc.sha256.<tensor name> for every tensor (lowercase hex SHA-256
 * of its data bytes, padding excluded; replaces a stale value), piqc.sha256.config (hash of the
 * piqc.pipeline string) when piqc.pipeline is present, and piqc.sha256.header: the SHA-256 of all
 * bytes before the data section (fixed header, key/values, tensor infos) except the record of
 * this key itself, so that any change of the metadata is detected too.
 * The writer recomputes (never copies) the piqc.sha256.* values listed here.
 * INVALID when a tensor's size does not match its type and shape (message names the tensor),
 * general.alignment is not a u32 power of two in 8..2^20, or a packed tensor lacks valid
 * piqc.group/piqc.k keys or the architecture is not "piqc"; IO (disk full, missing directory;
 * no file is left under path); NOMEM. Messages start with "gguf '<path>': ". */
enum pq_status pq_gguf_write(const pq_gguf *g, const char *path, pq_error *err);
/* Same format written to an open stream (not atomic; for tests and pipes). IO on a write error. */
enum pq_status pq_gguf_write_stream(const pq_gguf *g, FILE *f, pq_error *err);

/* Test hook: pq_gguf_write and pq_gguf_write_stream fail with IO ("no space left on device")
 * once more than n bytes have been written by one call; n < 0 (the default) disables it. */
void pq_gguf_test_fail_write_after(long long n);

/* ---- reading ---- */

enum {
    PQ_GGUF_VERIFY = 1u /* verify piqc.sha256.header and every piqc.sha256.<tensor> (a missing
                           one is an error), and piqc.sha256.config when present */
};

/* Reads the GGUF file at path (memory-mapped, read-only, at most PQ_GGUF_MAX_FILE bytes) into a
 * new pq_gguf (*out, free with pq_gguf_destroy; tensor data points into its image). Parsing is
 * strict and bounded: magic, version 2..3, counts <= 1e6, keys and names valid, n_dims 1..8, no
 * dimension-product overflow, every string/array/tensor range inside the file, known value and
 * tensor types only (40/41 only when general.architecture == "piqc"), tensor sizes consistent with
 * type and shape, offsets aligned to general.alignment, no duplicate keys or tensor names, no
 * overlapping tensors. With PQ_GGUF_VERIFY the SHA-256 hashes are checked.
 * IO (cannot open/map), INVALID (any violation; the message names the file and the key or tensor,
 * e.g. "gguf 'm.gguf': tensor 'w': SHA-256 mismatch"), UNSUPPORTED (array of arrays), NOMEM. */
enum pq_status pq_gguf_read(const char *path, pq_gguf **out, unsigned flags, pq_error *err);
/* Same from a memory buffer (copied; the caller keeps ownership of data). Messages name the file
 * as "<buffer>". */
enum pq_status pq_gguf_read_buffer(const void *data, size_t len, unsigned flags, pq_gguf **out,
                                   pq_error *err);

/* ---- lookup ---- */

/* Key/value by key, NULL when absent. */
const pq_gguf_kv *pq_gguf_find(const pq_gguf *g, const char *key);
/* Tensor info by name, NULL when absent. */
const pq_gguf_tensor *pq_gguf_find_tensor(const pq_gguf *g, const char *name);
/* Iteration: i in [0, g->n_kvs) / [0, g->n_tensors), in file order. NULL when out of range. */
const pq_gguf_kv *pq_gguf_kv_at(const pq_gguf *g, uint64_t i);
const pq_gguf_tensor *pq_gguf_tensor_at(const pq_gguf *g, uint64_t i);

/* Typed getters: PQ_OK and *out when key exists with exactly that type; INVALID naming the key
 * when it is absent or of another type (err may be NULL to probe silently). */
enum pq_status pq_gguf_get_u8(const pq_gguf *g, const char *key, uint8_t *out, pq_error *err);
enum pq_status pq_gguf_get_i8(const pq_gguf *g, const char *key, int8_t *out, pq_error *err);
enum pq_status pq_gguf_get_u16(const pq_gguf *g, const char *key, uint16_t *out, pq_error *err);
enum pq_status pq_gguf_get_i16(const pq_gguf *g, const char *key, int16_t *out, pq_error *err);
enum pq_status pq_gguf_get_u32(const pq_gguf *g, const char *key, uint32_t *out, pq_error *err);
enum pq_status pq_gguf_get_i32(const pq_gguf *g, const char *key, int32_t *out, pq_error *err);
enum pq_status pq_gguf_get_u64(const pq_gguf *g, const char *key, uint64_t *out, pq_error *err);
enum pq_status pq_gguf_get_i64(const pq_gguf *g, const char *key, int64_t *out, pq_error *err);
enum pq_status pq_gguf_get_f32(const pq_gguf *g, const char *key, float *out, pq_error *err);
enum pq_status pq_gguf_get_f64(const pq_gguf *g, const char *key, double *out, pq_error *err);
enum pq_status pq_gguf_get_bool(const pq_gguf *g, const char *key, bool *out, pq_error *err);
/* *out points at the NUL-terminated string owned by g; *len (may be NULL) its length. */
enum pq_status pq_gguf_get_string(const pq_gguf *g, const char *key, const char **out,
                                  uint64_t *len, pq_error *err);
/* Array value: element type, count and data (owned by g, layout as in pq_gguf_value). */
enum pq_status pq_gguf_get_array(const pq_gguf *g, const char *key, enum pq_gguf_type *elem,
                                 uint64_t *n, const void **data, pq_error *err);

/* ---- types ---- */

/* "u8", "i8", ..., "string", "array" ("?" when unknown). */
const char *pq_gguf_type_name(enum pq_gguf_type t);
/* "F32", "F16", ..., "PIQ3", "PIQ2" ("?" when unknown). */
const char *pq_gguf_ttype_name(uint32_t type);
/* True for the tensor type ids listed in enum pq_gguf_ttype. */
bool pq_gguf_ttype_known(uint32_t type);
/* Element type of a dense tensor type (UNDEFINED for 40/41 and unknown ids). */
enum pq_dtype pq_gguf_ttype_dtype(uint32_t type);
/* Tensor type that stores a dtype: F32 F16 BF16 F64 I8 I16 I32 I64 map directly; U8 and BOOL are
 * stored as I8, U16 as I16, U32 as I32, U64 as I64 (piqc records the real dtype in the key
 * piqc.dtype.<name>). false for UNDEFINED. */
bool pq_gguf_ttype_for_dtype(enum pq_dtype dt, uint32_t *out);

/* Packed layout of tensor t of g: format (from its type and piqc.k.<name>), rows (product of
 * dims[1..]), cols (dims[0]), group (piqc.group.<name>). INVALID naming the tensor when t is not of
 * a packed type, a key is missing or wrong (k must be the format's k or 0, G a positive multiple
 * of 8 that fits u32), or the architecture is not "piqc". */
enum pq_status pq_gguf_packed_info(const pq_gguf *g, const pq_gguf_tensor *t, enum pq_qformat *fmt,
                                   int64_t *rows, int64_t *cols, int64_t *group, pq_error *err);
/* Bytes a tensor of g must have, from its type and shape (and the packed keys). INVALID as above
 * or on size overflow. */
enum pq_status pq_gguf_tensor_nbytes(const pq_gguf *g, const pq_gguf_tensor *t, size_t *out,
                                     pq_error *err);

/* Lowercase hex SHA-256 of n bytes into hex (65 bytes incl. NUL). INTERNAL if libcrypto fails. */
enum pq_status pq_gguf_sha256_hex(const void *data, size_t n, char hex[65], pq_error *err);

#endif
