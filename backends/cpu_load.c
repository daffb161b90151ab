/* pq_threads_usable (threadpool.h): how many threads a parallel region should use now, from the
 * CPU time other processes took over the last window (/proc/stat minus this process's own time). */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backends/threadpool.h"

int pq_threads_usable_for(int n_threads, int n_cpus, double others) {
    if (n_threads <= 1) return n_threads;
    if (!(others > 0)) others = 0; /* NaN and negatives: nobody else */
    if (others > n_cpus) others = n_cpus;
    int busy = (int)(others + 0.5);
    int t = n_cpus - busy;
    if (t > n_threads) t = n_threads;
    return t > 1 ? t : 1;
}

static int64_t pq_load_now_ns(clockid_t clk) {
    struct timespec ts;
    if (clock_gettime(clk, &ts) != 0) return -1;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Reads a whole small /proc file into buf (NUL-terminated); false when it cannot. */
static bool pq_load_read(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n <= 0) return false;
    buf[n] = '\0';
    return true;
}

/* Busy time of all CPUs in seconds (user, nice, system, irq, softirq, steal: the "cpu" line of
 * /proc/stat without idle and iowait), or -1. */
static double pq_load_busy_seconds(void) {
    char buf[512];
    if (!pq_load_read("/proc/stat", buf, sizeof buf) || strncmp(buf, "cpu ", 4) != 0) return -1;
    unsigned long long v[8] = {0};
    if (sscanf(buf + 4, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7]) != 8)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0) return -1;
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)hz;
}

/* Tasks running or runnable right now besides the caller (the "running/total" field of
 * /proc/loadavg minus one): the prior for the first window, before this process has started any
 * thread of its own. 0 when unknown. */
static double pq_load_running_others(void) {
    char buf[128];
    double l1, l5, l15;
    int running = 0, total = 0;
    if (!pq_load_read("/proc/loadavg", buf, sizeof buf) ||
        sscanf(buf, "%lf %lf %lf %d/%d", &l1, &l5, &l15, &running, &total) != 5 || running < 1)
        return 0;
    return running - 1;
}

static struct {
    atomic_flag sampling;     /* one caller samples at a time; the others use the last result */
    _Atomic int state;        /* 0: not started, 1: running, -1: off (env or no /proc/stat) */
    _Atomic int usable_cpus;  /* CPUs left to this process by the last decision */
    _Atomic int64_t next_ns;  /* CLOCK_MONOTONIC time of the next sample */
    _Atomic int quiet_streak; /* samples in a row that would allow more CPUs than usable_cpus */
    bool sampled;             /* a window has been measured (the prior is not held to hysteresis) */
    int n_cpus;
    int64_t wall_ns, own_ns; /* at the previous sample */
    double busy_s;
} pq_load = {.sampling = ATOMIC_FLAG_INIT};

static int pq_load_cpus(double others) {
    return pq_threads_usable_for(pq_load.n_cpus, pq_load.n_cpus, others);
}

/* First call: reads the switch and the baseline, takes the prior from the load average. */
static void pq_load_start(int64_t now) {
    const char *e = getenv("PIQC_THREADS_ADAPT");
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    double busy = pq_load_busy_seconds();
    int64_t own = pq_load_now_ns(CLOCK_PROCESS_CPUTIME_ID);
    if ((e && !strcmp(e, "0")) || n < 1 || busy < 0 || own < 0) {
        atomic_store(&pq_load.state, -1);
        return;
    }
    pq_load.n_cpus = n > 1024 ? 1024 : (int)n;
    pq_load.wall_ns = now;
    pq_load.own_ns = own;
    pq_load.busy_s = busy;
    atomic_store(&pq_load.usable_cpus, pq_load_cpus(pq_load_running_others()));
    atomic_store(&pq_load.next_ns, now + (int64_t)PQ_LOAD_SAMPLE_MS * 1000000);
    atomic_store(&pq_load.state, 1);
}

/* A window ended: others = (busy time of all CPUs - this process's CPU time) / wall time. */
static void pq_load_sample(int64_t now) {
    double busy = pq_load_busy_seconds();
    int64_t own = pq_load_now_ns(CLOCK_PROCESS_CPUTIME_ID);
    if (busy < 0 || own < 0 || now <= pq_load.wall_ns) return;
    double wall_s = (double)(now - pq_load.wall_ns) * 1e-9;
    double others = (busy - pq_load.busy_s - (double)(own - pq_load.own_ns) * 1e-9) / wall_s;
    pq_load.wall_ns = now;
    pq_load.own_ns = own;
    pq_load.busy_s = busy;
    int want = pq_load_cpus(others), have = atomic_load(&pq_load.usable_cpus);
    if (want < have) {
        atomic_store(&pq_load.usable_cpus, want);
        atomic_store(&pq_load.quiet_streak, 0);
    } else if (want > have) {
        if (!pq_load.sampled || atomic_fetch_add(&pq_load.quiet_streak, 1) + 1 >= 2) {
            atomic_store(&pq_load.usable_cpus, want);
            atomic_store(&pq_load.quiet_streak, 0);
        }
    } else {
        atomic_store(&pq_load.quiet_streak, 0);
    }
    pq_load.sampled = true;
}

int pq_threads_usable(int n_threads) {
    if (n_threads <= 1) return n_threads;
    int st = atomic_load_explicit(&pq_load.state, memory_order_acquire);
    if (st < 0) return n_threads;
    int64_t now = pq_load_now_ns(CLOCK_MONOTONIC_COARSE);
    if (now < 0) return n_threads;
    if ((st == 0 || now >= atomic_load_explicit(&pq_load.next_ns, memory_order_relaxed)) &&
        !atomic_flag_test_and_set_explicit(&pq_load.sampling, memory_order_acquire)) {
        if (atomic_load(&pq_load.state) == 0) {
            pq_load_start(now);
        } else if (now >= atomic_load(&pq_load.next_ns)) {
            pq_load_sample(now);
            atomic_store(&pq_load.next_ns, now + (int64_t)PQ_LOAD_SAMPLE_MS * 1000000);
        }
        atomic_flag_clear_explicit(&pq_load.sampling, memory_order_release);
        st = atomic_load_explicit(&pq_load.state, memory_order_acquire);
        if (st < 0) return n_threads;
    }
    if (st == 0) return n_threads; /* another thread is starting the sampler */
    int u = atomic_load_explicit(&pq_load.usable_cpus, memory_order_relaxed);
    return u < n_threads ? (u > 1 ? u : 1) : n_threads;
}
