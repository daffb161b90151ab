/* Private helpers shared by gguf_common.c, gguf_read.c and gguf_write.c: name index maps, value
 * copying/freeing and the file-order element sizes. Not part of the public frontends API. */
#ifndef PQ_GGUF_INTERNAL_H
#define PQ_GGUF_INTERNAL_H

#include "gguf.h"

/* Open-addressing index from a NUL-terminated name to an entry index. Keys are borrowed from
 * the entries (stable: they are separately allocated). */
struct pq_gguf_map {
    uint64_t cap, n; /* cap is a power of two, n <= cap / 2 */
    const char **keys;
    uint64_t *idx;
};

pq_gguf_map *pq_gguf_map_create(uint64_t expected);
void pq_gguf_map_destroy(pq_gguf_map *m);
/* Index of key, UINT64_MAX when absent. */
uint64_t pq_gguf_map_get(const pq_gguf_map *m, const char *key);
/* Inserts key -> i (key must be absent). false on allocation failure. */
bool pq_gguf_map_put(pq_gguf_map *m, const char *key, uint64_t i);

/* Bytes of one element of a scalar type in the file (0 for STRING, ARRAY and unknown). */
size_t pq_gguf_type_file_size(enum pq_gguf_type t);
/* Bytes of one element of type t in memory (pq_gguf_value array layout). */
size_t pq_gguf_type_mem_size(enum pq_gguf_type t);
/* Frees what v owns (strings, array data, string elements). */
void pq_gguf_value_free(pq_gguf_value *v);

/* Appends an already-owned kv / tensor (ownership moves on success; on failure the caller still
 * owns it). No duplicate check. */
enum pq_status pq_gguf_push_kv(pq_gguf *g, pq_gguf_kv *kv, pq_error *err);
enum pq_status pq_gguf_push_tensor(pq_gguf *g, pq_gguf_tensor *t, pq_error *err);

/* Validates a tensor name (1..63 bytes, no NUL). The message names the tensor. */
enum pq_status pq_gguf_check_tensor_name(const char *name, uint64_t len, pq_error *err);
/* Validates n_dims and dims (>= 0, product <= PQ_MAX_NUMEL). */
enum pq_status pq_gguf_check_dims(const char *name, uint32_t n_dims, const int64_t *dims,
                                  pq_error *err);
/* Whether general.architecture is the string "piqc". */
bool pq_gguf_is_piqc(const pq_gguf *g);

#endif
