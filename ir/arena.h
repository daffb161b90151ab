/* Bump allocator for IR metadata (names, attribute arrays, node id lists): one owner,
 * freed all at once with the graph. Private to ir/. */
#ifndef PQ_ARENA_H
#define PQ_ARENA_H

#include <stddef.h>
#include <stdint.h>

typedef struct pq_arena pq_arena;

pq_arena *pq_arena_create(void);
void pq_arena_destroy(pq_arena *a);
/* Zeroed, 16-byte aligned block; NULL on failure or overflow. */
void *pq_arena_alloc(pq_arena *a, size_t n);

/* String -> uint32_t hash map used for value names. */
typedef struct pq_name_map pq_name_map;
pq_name_map *pq_name_map_create(void);
void pq_name_map_destroy(pq_name_map *m);
/* Inserts or replaces (key must outlive the map). Returns 0 on success, -1 on failure. */
int pq_name_map_put(pq_name_map *m, const char *key, uint32_t value);
/* Value for key, or UINT32_MAX. */
uint32_t pq_name_map_get(const pq_name_map *m, const char *key);
/* Removes key if present. */
void pq_name_map_remove(pq_name_map *m, const char *key);

#endif
