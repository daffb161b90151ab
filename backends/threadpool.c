/* The thread pool of piqc's own kernels (threadpool.h): one process-wide set of pthread workers,
 * started lazily, a job published as one atomic word that workers claim chunks from, and the
 * caller taking chunks too. No allocation: the pool's state is static. */
#include "backends/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

/* The job word: gen (26 bits) | active workers (6) | next chunk (16) | chunks (16). A worker
 * claims chunk i by a compare-exchange of (gen, active, i, n) -> (gen, active, i + 1, n), so a
 * worker that wakes up late for an old job can never claim a chunk of a newer one, and the job's
 * fn/ctx are read only after a successful claim (the caller cannot publish a new job until every
 * claimed chunk has finished). */
#define PQ_W_N_BITS 16
#define PQ_W_I_SHIFT 16
#define PQ_W_A_SHIFT 32
#define PQ_W_G_SHIFT 38
#define PQ_W_MASK16 ((uint64_t)0xFFFF)
#define PQ_MAX_CHUNKS 4096 /* < 2^16 */

/* Spins (with a pause) before a worker sleeps or the caller blocks: short, because the other
 * logical CPU may be running the caller's serial ops or oneDNN's OpenMP threads. A waiting
 * worker also yields its CPU every PQ_WORKER_YIELD pauses: when the next job is a oneDNN
 * primitive, oneDNN's OpenMP worker may be waiting for that very CPU (2 threads on 2 cores), and
 * a plain spin would hold it off until the spin ends (~50 us per switch between piqc's pool and
 * OpenMP); with nothing else runnable the yield returns at once. */
#define PQ_WORKER_SPIN 2000
#define PQ_WORKER_YIELD 64
#define PQ_CALLER_SPIN 4000

static inline void pq_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static struct {
    pthread_mutex_t mu;  /* guards sleeping on wake/done, n_workers changes, stop */
    pthread_cond_t wake; /* workers: a new job word (or stop) */
    pthread_cond_t done; /* caller: left reached 0 */
    _Atomic uint64_t word;
    _Atomic int64_t left; /* chunks of the current job not finished */
    _Atomic int stop;
    atomic_flag busy;  /* a pq_parallel_for (or shutdown) owns the pool */
    pq_parallel_fn fn; /* current job: written before the word is published */
    void *ctx;
    int64_t n_tasks, n_chunks;
    int n_workers;
    bool atexit_set;
    pthread_t th[PQ_POOL_MAX_WORKERS];
} pq_pool = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .done = PTHREAD_COND_INITIALIZER,
    .busy = ATOMIC_FLAG_INIT,
};

/* Set on pool workers, and on a caller while its pq_parallel_for runs: nested calls run inline. */
static _Thread_local bool pq_in_parallel;
static pq_parallel_runner pq_runner;

void pq_parallel_set_runner(pq_parallel_runner r) {
    pq_runner = r;
}

void pq_parallel_mark(bool inside) {
    pq_in_parallel = inside;
}

int64_t pq_parallel_chunks(int n_threads, int64_t n_tasks) {
    if (n_tasks <= 0) return 0;
    int64_t c = n_threads < 1 ? 1 : n_threads;
    if (c > PQ_MAX_CHUNKS) c = PQ_MAX_CHUNKS;
    return c < n_tasks ? c : n_tasks;
}

void pq_parallel_range(int64_t n, int64_t n_chunks, int64_t i, int64_t *begin, int64_t *end) {
    int64_t q = n / n_chunks, r = n % n_chunks;
    *begin = i * q + (i < r ? i : r);
    *end = *begin + q + (i < r ? 1 : 0);
}

static inline uint64_t pq_word(uint64_t gen, uint64_t active, uint64_t i, uint64_t n) {
    return gen << PQ_W_G_SHIFT | active << PQ_W_A_SHIFT | i << PQ_W_I_SHIFT | n;
}
static inline uint64_t pq_word_gen(uint64_t w) {
    return w >> PQ_W_G_SHIFT;
}

static void pq_run_chunk(int64_t i) {
    int64_t b, e;
    pq_parallel_range(pq_pool.n_tasks, pq_pool.n_chunks, i, &b, &e);
    pq_pool.fn(pq_pool.ctx, b, e);
}

/* Claims and runs chunks of the job of generation gen until none are left. */
static void pq_claim_chunks(uint64_t gen, bool caller) {
    uint64_t w = atomic_load_explicit(&pq_pool.word, memory_order_acquire);
    for (;;) {
        if (pq_word_gen(w) != gen) return;
        uint64_t i = (w >> PQ_W_I_SHIFT) & PQ_W_MASK16, n = w & PQ_W_MASK16;
        if (i >= n) return;
        if (!atomic_compare_exchange_weak_explicit(&pq_pool.word, &w,
                                                   w + ((uint64_t)1 << PQ_W_I_SHIFT),
                                                   memory_order_acq_rel, memory_order_acquire))
            continue; /* w reloaded */
        pq_run_chunk((int64_t)i);
        if (atomic_fetch_sub_explicit(&pq_pool.left, 1, memory_order_acq_rel) == 1 && !caller) {
            pthread_mutex_lock(&pq_pool.mu);
            pthread_cond_signal(&pq_pool.done);
            pthread_mutex_unlock(&pq_pool.mu);
        }
        w = atomic_load_explicit(&pq_pool.word, memory_order_acquire);
    }
}

static void *pq_worker_main(void *arg) {
    uint64_t index = (uint64_t)(uintptr_t)arg; /* takes part when index < active */
    pq_in_parallel = true;
    uint64_t seen = pq_word_gen(atomic_load_explicit(&pq_pool.word, memory_order_acquire));
    for (;;) {
        uint64_t w = 0;
        for (int s = 0; s < PQ_WORKER_SPIN; s++) {
            w = atomic_load_explicit(&pq_pool.word, memory_order_acquire);
            if (pq_word_gen(w) != seen || atomic_load_explicit(&pq_pool.stop, memory_order_relaxed))
                break;
            if (s % PQ_WORKER_YIELD == PQ_WORKER_YIELD - 1)
                sched_yield();
            else
                pq_cpu_relax();
        }
        if (pq_word_gen(w) == seen) {
            pthread_mutex_lock(&pq_pool.mu);
            while (pq_word_gen(w = atomic_load_explicit(&pq_pool.word, memory_order_acquire)) ==
                       seen &&
                   !atomic_load_explicit(&pq_pool.stop, memory_order_relaxed))
                pthread_cond_wait(&pq_pool.wake, &pq_pool.mu);
            pthread_mutex_unlock(&pq_pool.mu);
        }
        if (atomic_load_explicit(&pq_pool.stop, memory_order_relaxed)) return NULL;
        seen = pq_word_gen(w);
        if (index < ((w >> PQ_W_A_SHIFT) & 63)) pq_claim_chunks(seen, false);
    }
}

static void pq_threadpool_atexit(void) {
    pq_threadpool_shutdown();
}

/* Starts workers until there are want (capped); keeps the ones that could be created. Called with
 * the pool owned (busy). */
static void pq_pool_grow(int want) {
    if (want > PQ_POOL_MAX_WORKERS) want = PQ_POOL_MAX_WORKERS;
    pthread_mutex_lock(&pq_pool.mu);
    if (!pq_pool.atexit_set && pq_pool.n_workers < want) {
        pq_pool.atexit_set = atexit(pq_threadpool_atexit) == 0;
        if (!pq_pool.atexit_set) want = pq_pool.n_workers; /* could not promise a clean exit */
    }
    while (pq_pool.n_workers < want) {
        int i = pq_pool.n_workers;
        if (pthread_create(&pq_pool.th[i], NULL, pq_worker_main, (void *)(uintptr_t)i) != 0) break;
        pq_pool.n_workers++;
    }
    pthread_mutex_unlock(&pq_pool.mu);
}

static void pq_run_inline(int64_t n_tasks, int64_t chunks, pq_parallel_fn fn, void *ctx) {
    for (int64_t i = 0; i < chunks; i++) {
        int64_t b, e;
        pq_parallel_range(n_tasks, chunks, i, &b, &e);
        fn(ctx, b, e);
    }
}

void pq_parallel_for(int n_threads, int64_t n_tasks, pq_parallel_fn fn, void *ctx) {
    int64_t chunks = pq_parallel_chunks(n_threads, n_tasks);
    if (chunks == 0) return;
    if (chunks == 1 || pq_in_parallel) {
        pq_run_inline(n_tasks, chunks, fn, ctx);
        return;
    }
    if (pq_runner && pq_runner(n_threads, n_tasks, chunks, fn, ctx)) return;
    if (atomic_flag_test_and_set_explicit(&pq_pool.busy, memory_order_acquire)) {
        pq_run_inline(n_tasks, chunks, fn, ctx); /* another thread's job owns the pool */
        return;
    }
    int helpers = n_threads - 1 < PQ_POOL_MAX_WORKERS ? n_threads - 1 : PQ_POOL_MAX_WORKERS;
    if ((int64_t)helpers > chunks - 1) helpers = (int)(chunks - 1);
    if (pq_pool.n_workers < helpers) pq_pool_grow(helpers);
    if (helpers > pq_pool.n_workers) helpers = pq_pool.n_workers;
    if (helpers == 0) {
        atomic_flag_clear_explicit(&pq_pool.busy, memory_order_release);
        pq_run_inline(n_tasks, chunks, fn, ctx);
        return;
    }
    pq_in_parallel = true;
    pq_pool.fn = fn;
    pq_pool.ctx = ctx;
    pq_pool.n_tasks = n_tasks;
    pq_pool.n_chunks = chunks;
    atomic_store_explicit(&pq_pool.left, chunks, memory_order_relaxed);
    uint64_t gen = (pq_word_gen(atomic_load_explicit(&pq_pool.word, memory_order_relaxed)) + 1) &
                   (((uint64_t)1 << (64 - PQ_W_G_SHIFT)) - 1);
    pthread_mutex_lock(&pq_pool.mu);
    atomic_store_explicit(&pq_pool.word, pq_word(gen, (uint64_t)helpers, 0, (uint64_t)chunks),
                          memory_order_release);
    pthread_cond_broadcast(&pq_pool.wake);
    pthread_mutex_unlock(&pq_pool.mu);
    pq_claim_chunks(gen, true);
    for (int s = 0; s < PQ_CALLER_SPIN; s++) {
        if (atomic_load_explicit(&pq_pool.left, memory_order_acquire) == 0) break;
        pq_cpu_relax();
    }
    if (atomic_load_explicit(&pq_pool.left, memory_order_acquire) != 0) {
        pthread_mutex_lock(&pq_pool.mu);
        while (atomic_load_explicit(&pq_pool.left, memory_order_acquire) != 0)
            pthread_cond_wait(&pq_pool.done, &pq_pool.mu);
        pthread_mutex_unlock(&pq_pool.mu);
    }
    pq_in_parallel = false;
    atomic_flag_clear_explicit(&pq_pool.busy, memory_order_release);
}

void pq_threadpool_shutdown(void) {
    /* a job still running (exit from another thread): leave the workers, do not hang */
    if (atomic_flag_test_and_set_explicit(&pq_pool.busy, memory_order_acquire)) return;
    pthread_mutex_lock(&pq_pool.mu);
    atomic_store_explicit(&pq_pool.stop, 1, memory_order_relaxed);
    pthread_cond_broadcast(&pq_pool.wake);
    int n = pq_pool.n_workers;
    pthread_mutex_unlock(&pq_pool.mu);
    for (int i = 0; i < n; i++)
        pthread_join(pq_pool.th[i], NULL);
    pthread_mutex_lock(&pq_pool.mu);
    pq_pool.n_workers = 0;
    atomic_store_explicit(&pq_pool.stop, 0, memory_order_relaxed);
    pthread_mutex_unlock(&pq_pool.mu);
    atomic_flag_clear_explicit(&pq_pool.busy, memory_order_release);
}

int pq_threadpool_workers(void) {
    pthread_mutex_lock(&pq_pool.mu);
    int n = pq_pool.n_workers;
    pthread_mutex_unlock(&pq_pool.mu);
    return n;
}
