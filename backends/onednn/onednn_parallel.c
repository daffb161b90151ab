/* pq_parallel_for jobs on oneDNN's OpenMP team (a pq_parallel_runner): with libgomp's workers
 * spinning between regions and the CPUs idle, piqc's kernels reuse those threads. */
#define _GNU_SOURCE /* sched_getcpu, CPU_* */
#include "onednn.h"

#include <pthread.h>
#include <sched.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "backends/threadpool.h"

#if defined(_OPENMP)
#include <omp.h>

/* -1: decide (spinning libgomp and idle CPUs), 0: never, 1: always (tests). */
static int pq_omp_forced = -1;

void pq_onednn_parallel_force(int mode) {
    pq_omp_forced = mode < 0 ? -1 : mode != 0;
}

/* Chunks claimed from one counter by the team (the caller is thread 0 and takes part). */
static bool pq_omp_run(int n_threads, int64_t n_tasks, int64_t chunks, pq_parallel_fn fn,
                       void *ctx) {
    if (pq_omp_forced == 0) return false;
    if (pq_omp_forced < 0) {
        /* a passive libgomp makes every region a thread wake-up, and on CPUs other processes
         * keep busy the region's closing barrier can wait a time slice for a worker: the pool
         * (whose caller takes every chunk no worker has claimed) is better in both cases */
        if (pq_onednn_macs_per_thread() >= PQ_ONEDNN_MACS_PER_THREAD_PASSIVE) return false;
        if (pq_threads_usable(n_threads) < n_threads) return false;
    }
    if (omp_in_parallel()) return false;
    _Atomic int64_t next = 0;
#pragma omp parallel num_threads(n_threads)
    {
        pq_parallel_mark(true);
        for (;;) {
            int64_t i = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed);
            if (i >= chunks) break;
            int64_t b, e;
            pq_parallel_range(n_tasks, chunks, i, &b, &e);
            fn(ctx, b, e);
        }
        pq_parallel_mark(false);
    }
    return true;
}

/* Pins OpenMP worker t (t >= 1) of an n-thread team to the t-th allowed CPU after the one the
 * caller runs on; the caller stays free. */
static void pq_omp_pin_workers(int n_threads) {
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
    int ncpu = CPU_COUNT(&allowed), here = sched_getcpu();
    if (ncpu < n_threads || here < 0) return;
    int cpus[CPU_SETSIZE], nc = 0, at = 0;
    for (int c = 0; c < CPU_SETSIZE && nc < ncpu; c++)
        if (CPU_ISSET(c, &allowed)) {
            if (c == here) at = nc;
            cpus[nc++] = c;
        }
#pragma omp parallel num_threads(n_threads)
    {
        int t = omp_get_thread_num();
        if (t > 0) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpus[(at + t) % nc], &one);
            pthread_setaffinity_np(pthread_self(), sizeof one, &one);
        }
    }
}

/* Largest team whose workers were pinned in this process (0: none yet). */
static int pq_omp_pinned;

void pq_onednn_parallel_install(int n_threads) {
    pq_parallel_set_runner(pq_omp_run);
    /* libgomp spinning, idle cores: pin the workers once (a woken worker that the scheduler puts
     * on the caller's core spins there against it until a time slice ends: digits at 2 threads
     * took 0.47 ms instead of 0.03 in 6 processes of 10; pinned, in none). PIQC_PIN_THREADS=0:
     * never. */
    const char *env = getenv("PIQC_PIN_THREADS");
    if (n_threads <= 1 || n_threads <= pq_omp_pinned || (env && !strcmp(env, "0"))) return;
    if (pq_onednn_macs_per_thread() >= PQ_ONEDNN_MACS_PER_THREAD_PASSIVE) return;
    if (pq_threads_usable(n_threads) < n_threads || omp_in_parallel()) return;
    pq_omp_pin_workers(n_threads);
    pq_omp_pinned = n_threads;
}
#else
void pq_onednn_parallel_force(int mode) {
    (void)mode;
}

void pq_onednn_parallel_install(int n_threads) {
    (void)n_threads;
}
#endif
