/* pq_parallel_for jobs on oneDNN's OpenMP team (a pq_parallel_runner): with libgomp's workers
 * spinning between regions and the CPUs idle, piqc's kernels reuse those threads. */
#include "onednn.h"

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

void pq_onednn_parallel_install(void) {
    pq_parallel_set_runner(pq_omp_run);
}
#else
void pq_onednn_parallel_force(int mode) {
    (void)mode;
}

void pq_onednn_parallel_install(void) {}
#endif
