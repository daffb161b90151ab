/* Implementation of the piqc allocator: libc underneath, plus an atomic countdown used by
 * tests to inject allocation failures at chosen points. */
#include "alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static atomic_long pq_fail_countdown = -1;

static int pq_alloc_should_fail(void) {
    long c = atomic_load(&pq_fail_countdown);
    while (c >= 0) {
        if (c == 0) return 1;
        if (atomic_compare_exchange_weak(&pq_fail_countdown, &c, c - 1)) return 0;
    }
    return 0;
}

void pq_alloc_fail_after(long n) {
    atomic_store(&pq_fail_countdown, n);
}

void *pq_malloc(size_t n) {
    if (pq_alloc_should_fail()) return NULL;
    return malloc(n ? n : 1);
}

void *pq_calloc(size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) return NULL;
    if (pq_alloc_should_fail()) return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *pq_realloc(void *p, size_t n) {
    if (pq_alloc_should_fail()) return NULL;
    return realloc(p, n ? n : 1);
}

void *pq_malloc_aligned(size_t n) {
    if (pq_alloc_should_fail()) return NULL;
    void *p = NULL;
    size_t rounded = (n + 63) & ~(size_t)63;
    if (rounded < n) return NULL;
    if (posix_memalign(&p, 64, rounded ? rounded : 64) != 0) return NULL;
    return p;
}

void pq_free(void *p) {
    free(p);
}

char *pq_strdup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = pq_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}
