/* The graph arena (chunked bump allocator) and the open-addressing name map.
 * Both allocate through pq_malloc so failure injection reaches them. */
#include "arena.h"

#include <stdint.h>
#include <string.h>

#include "alloc.h"

typedef struct pq_arena_chunk {
    struct pq_arena_chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
} pq_arena_chunk;

struct pq_arena {
    pq_arena_chunk *head;
};

pq_arena *pq_arena_create(void) {
    return pq_calloc(1, sizeof(pq_arena));
}

void pq_arena_destroy(pq_arena *a) {
    if (!a) return;
    pq_arena_chunk *c = a->head;
    while (c) {
        pq_arena_chunk *n = c->next;
        pq_free(c);
        c = n;
    }
    pq_free(a);
}

void *pq_arena_alloc(pq_arena *a, size_t n) {
    if (n > SIZE_MAX / 2) return NULL;
    size_t need = (n + 15) & ~(size_t)15;
    pq_arena_chunk *c = a->head;
    if (!c || c->size - c->used < need) {
        size_t size = need > 65536 ? need : 65536;
        c = pq_malloc(sizeof(pq_arena_chunk) + size);
        if (!c) return NULL;
        c->size = size;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += need;
    memset(p, 0, n);
    return p;
}

typedef struct {
    const char *key;
    uint32_t value;
    int state; /* 0 empty, 1 used, 2 deleted */
} pq_name_slot;

struct pq_name_map {
    pq_name_slot *slots;
    size_t cap, used, filled;
};

static uint64_t pq_hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 1099511628211ull;
    }
    return h;
}

pq_name_map *pq_name_map_create(void) {
    pq_name_map *m = pq_calloc(1, sizeof *m);
    if (!m) return NULL;
    m->cap = 64;
    m->slots = pq_calloc(m->cap, sizeof(pq_name_slot));
    if (!m->slots) {
        pq_free(m);
        return NULL;
    }
    return m;
}

void pq_name_map_destroy(pq_name_map *m) {
    if (!m) return;
    pq_free(m->slots);
    pq_free(m);
}

static int pq_name_map_grow(pq_name_map *m) {
    size_t ncap = m->cap * 2;
    pq_name_slot *ns = pq_calloc(ncap, sizeof *ns);
    if (!ns) return -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].state != 1) continue;
        size_t j = pq_hash_str(m->slots[i].key) & (ncap - 1);
        while (ns[j].state)
            j = (j + 1) & (ncap - 1);
        ns[j] = m->slots[i];
    }
    pq_free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    m->filled = m->used;
    return 0;
}

int pq_name_map_put(pq_name_map *m, const char *key, uint32_t value) {
    if ((m->filled + 1) * 4 >= m->cap * 3 && pq_name_map_grow(m) != 0) return -1;
    size_t j = pq_hash_str(key) & (m->cap - 1);
    size_t tomb = SIZE_MAX;
    while (m->slots[j].state) {
        if (m->slots[j].state == 1 && strcmp(m->slots[j].key, key) == 0) {
            m->slots[j].value = value;
            return 0;
        }
        if (m->slots[j].state == 2 && tomb == SIZE_MAX) tomb = j;
        j = (j + 1) & (m->cap - 1);
    }
    if (tomb != SIZE_MAX)
        j = tomb;
    else
        m->filled++;
    m->slots[j].key = key;
    m->slots[j].value = value;
    m->slots[j].state = 1;
    m->used++;
    return 0;
}

static pq_name_slot *pq_name_map_find(const pq_name_map *m, const char *key) {
    size_t j = pq_hash_str(key) & (m->cap - 1);
    while (m->slots[j].state) {
        if (m->slots[j].state == 1 && strcmp(m->slots[j].key, key) == 0) return &m->slots[j];
        j = (j + 1) & (m->cap - 1);
    }
    return NULL;
}

uint32_t pq_name_map_get(const pq_name_map *m, const char *key) {
    pq_name_slot *s = pq_name_map_find(m, key);
    return s ? s->value : UINT32_MAX;
}

void pq_name_map_remove(pq_name_map *m, const char *key) {
    pq_name_slot *s = pq_name_map_find(m, key);
    if (s) {
        s->state = 2;
        m->used--;
    }
}
