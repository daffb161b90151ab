/* The one allocator every piqc allocation goes through, with a failure-injection hook so
 * tests can prove that running out of memory yields a clean error instead of a crash. */
#ifndef PQ_ALLOC_H
#define PQ_ALLOC_H

#include <stddef.h>

/* Like malloc/calloc/realloc but may be made to fail by pq_alloc_fail_after. Size 0 returns a
 * valid unique pointer. Free everything with pq_free. */
void *pq_malloc(size_t n);
void *pq_calloc(size_t count, size_t size); /* NULL on count*size overflow */
void *pq_realloc(void *p, size_t n);
/* 64-byte aligned block (SIMD loads); free with pq_free. */
void *pq_malloc_aligned(size_t n);
void pq_free(void *p);
/* Copy of s (NULL if s is NULL or allocation fails). */
char *pq_strdup(const char *s);

/* Test hook: after n more successful allocations every allocation fails; n < 0 disables. */
void pq_alloc_fail_after(long n);

#endif
