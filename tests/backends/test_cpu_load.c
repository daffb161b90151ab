/* Tests of the load-aware thread count (pq_threads_usable / pq_threads_usable_for in
 * backends/threadpool.h): the documented decision table, and the sampler's bounds. No timings. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "backends/threadpool.h"

Test(cpu_load, decision_table) {
    /* n_threads <= 1 passes through */
    cr_assert_eq(pq_threads_usable_for(1, 2, 0.0), 1);
    cr_assert_eq(pq_threads_usable_for(0, 2, 3.0), 0);
    cr_assert_eq(pq_threads_usable_for(-1, 2, 0.0), -1);
    /* 2 CPUs: a CPU busy half of the time or more is given up */
    cr_assert_eq(pq_threads_usable_for(2, 2, 0.0), 2);
    cr_assert_eq(pq_threads_usable_for(2, 2, 0.49), 2);
    cr_assert_eq(pq_threads_usable_for(2, 2, 0.5), 1);
    cr_assert_eq(pq_threads_usable_for(2, 2, 1.0), 1);
    cr_assert_eq(pq_threads_usable_for(2, 2, 2.0), 1);
    cr_assert_eq(pq_threads_usable_for(2, 2, 7.5), 1); /* never below 1 */
    /* more CPUs than threads: others take the spare ones first */
    cr_assert_eq(pq_threads_usable_for(2, 8, 5.0), 2);
    cr_assert_eq(pq_threads_usable_for(2, 8, 6.6), 1);
    cr_assert_eq(pq_threads_usable_for(4, 8, 5.2), 3);
    cr_assert_eq(pq_threads_usable_for(8, 8, 0.2), 8);
    /* more threads than CPUs: capped by the CPUs */
    cr_assert_eq(pq_threads_usable_for(4, 2, 0.0), 2);
    /* measurement noise: negative or NaN loads count as idle */
    cr_assert_eq(pq_threads_usable_for(2, 2, -0.3), 2);
    cr_assert_eq(pq_threads_usable_for(2, 2, (double)NAN), 2);
}

Test(cpu_load, usable_is_between_one_and_n) {
    cr_assert_eq(pq_threads_usable(1), 1);
    cr_assert_eq(pq_threads_usable(0), 0);
    for (int rep = 0; rep < 1000; rep++)
        for (int n = 2; n <= 8; n++) {
            int u = pq_threads_usable(n);
            cr_assert(u >= 1 && u <= n, "pq_threads_usable(%d) = %d", n, u);
        }
}

Test(cpu_load, switched_off_by_env) {
    /* read at first use: this test runs in its own process (criterion forks per test) */
    setenv("PIQC_THREADS_ADAPT", "0", 1);
    for (int n = 2; n <= 64; n++)
        cr_assert_eq(pq_threads_usable(n), n);
}
