/* piqc's one thread pool for its own kernels (packed PiQ/int8/f16 ops): a persistent pthread pool
 * created lazily on first use, grown when a call asks for more threads, reused by every kernel,
 * and joined at exit; or, while libgomp's workers spin and the CPUs are idle, oneDNN's OpenMP team
 * (a runner a session installs: pq_onednn_parallel_install), so that the two do not compete for
 * the cores. `--threads N` sets both. */
#ifndef PQ_THREADPOOL_H
#define PQ_THREADPOOL_H

#include <stdbool.h>
#include <stdint.h>

/* Work of one contiguous chunk [begin, end) of a parallel range. */
typedef void (*pq_parallel_fn)(void *ctx, int64_t begin, int64_t end);

/* Runs fn over [0, n_tasks) split into pq_parallel_chunks(n_threads, n_tasks) contiguous chunks;
 * chunk i is [b, e) from pq_parallel_range(n_tasks, chunks, i, &b, &e), and fn is called exactly
 * once per chunk (never with an empty range), so every index is covered once. The split depends
 * only on n_threads and n_tasks, never on scheduling: a kernel that computes each output in one
 * chunk with the same operations as its 1-thread path gives bit-identical results at any thread
 * count. Chunks run on the calling thread (which always participates) and up to n_threads - 1
 * pool workers, in any order and concurrently; returns when all are done (the caller sees every
 * write of fn). Never fails and never allocates per call: if worker threads cannot be created the
 * remaining chunks run on the caller.
 *
 * Runs every chunk on the caller, in chunk order, when n_threads <= 1 or n_tasks <= 1 (one call
 * fn(ctx, 0, n_tasks); nothing when n_tasks <= 0), when called from inside fn of another
 * pq_parallel_for (nested: same chunks, run inline), or when another thread's pq_parallel_for is
 * using the pool at that moment (the pool runs one parallel_for at a time; a concurrent caller is
 * not blocked but gets no help). fn must not block on other chunks (no barriers inside fn).
 * The pool has at most PQ_POOL_MAX_WORKERS workers; larger n_threads still gives that many
 * chunks, shared by the workers that exist. */
void pq_parallel_for(int n_threads, int64_t n_tasks, pq_parallel_fn fn, void *ctx);

#define PQ_POOL_MAX_WORKERS 63

/* Another way to run a pq_parallel_for job, tried first for every job that would use the pool:
 * returns true when it ran every chunk of [0, n_tasks) (split as pq_parallel_for splits it, each
 * chunk once, fn's writes visible on return), false to decline (the pool runs the job). oneDNN's
 * OpenMP team uses it (backends/onednn/onednn_parallel.c), so that piqc's own kernels and
 * oneDNN's share one set of spinning threads instead of two that compete for the cores. */
typedef bool (*pq_parallel_runner)(int n_threads, int64_t n_tasks, int64_t chunks,
                                   pq_parallel_fn fn, void *ctx);
/* Installs r (NULL: none). Not thread-safe against running jobs; set before running kernels. */
void pq_parallel_set_runner(pq_parallel_runner r);
/* For a runner: marks the calling thread as inside a job (true) or not (false), so that a
 * pq_parallel_for from fn runs inline as a nested call does. */
void pq_parallel_mark(bool inside);

/* Number of chunks pq_parallel_for(n_threads, n_tasks, ...) makes: min(max(n_threads, 1),
 * n_tasks), 0 when n_tasks <= 0. */
int64_t pq_parallel_chunks(int n_threads, int64_t n_tasks);

/* Chunk i (0 <= i < n_chunks) of [0, n) split into n_chunks contiguous parts whose sizes differ
 * by at most one, the larger ones first: [i * q + min(i, r), ...) with q = n / n_chunks,
 * r = n % n_chunks. Needs n >= 0, n_chunks >= 1. */
void pq_parallel_range(int64_t n, int64_t n_chunks, int64_t i, int64_t *begin, int64_t *end);

/* Joins and forgets the pool's workers (registered with atexit when the first worker starts, so
 * the process ends with no threads or leaks; tests call it to check restart). A later
 * pq_parallel_for creates workers again. Must not race with a running pq_parallel_for. */
void pq_threadpool_shutdown(void);

/* Workers alive in the pool now (0 before first use and after shutdown); for tests. */
int pq_threadpool_workers(void);

/* CPUs other processes leave to this one, as a thread count: n_threads capped by the idle CPUs,
 * at least 1. Below n_threads (other processes busy) a parallel region can wait a time slice for
 * a thread, and a worker spinning for the next region spends this process's share of a CPU:
 * oneDNN calls with spinning OpenMP workers are capped to this count (onednn.h), and the
 * elementwise kernels split only big work (eltwise_fast.c); pq_parallel_for itself does not
 * look (its caller claims every chunk no worker has taken, so it never waits for a wake-up).
 * The load of other processes is the busy time of all CPUs (/proc/stat, steal included) minus this
 * process's CPU time, averaged over PQ_LOAD_SAMPLE_MS windows (re-sampled by whichever call
 * comes after a window ends; before the first one, the tasks running at the first call), and
 * pq_threads_usable_for turns it into a thread count. Lowering takes effect at the next sample,
 * raising again only after two quiet samples in a row (a thread-count change rebuilds the oneDNN
 * primitives of a session). Returns n_threads unchanged when n_threads <= 1, when /proc/stat
 * cannot be read, or when the environment variable PIQC_THREADS_ADAPT=0 (read once) turns this
 * off. Thread-safe, lock-free; costs a clock read per call and ~20 us per window. */
int pq_threads_usable(int n_threads);
#define PQ_LOAD_SAMPLE_MS 100

/* The decision of pq_threads_usable: others = average number of CPUs busy with other processes
 * over the last window, n_cpus = CPUs online. Every CPU that others occupy at least half of the
 * time is not used: min(n_threads, n_cpus - floor(others + 0.5)), at least 1 (n_threads when
 * n_threads <= 1). */
int pq_threads_usable_for(int n_threads, int n_cpus, double others);

#endif
