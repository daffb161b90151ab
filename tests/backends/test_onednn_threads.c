/* Tests of the oneDNN thread-count decision (backends/onednn/onednn.h, pq_dnnl_threads_for):
 * the per-thread minimum for each libgomp wait policy / spin count, and the resulting counts. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "backends/onednn/onednn.h"
#include "backends/onednn/onednn_impl.h"

#define SPIN PQ_ONEDNN_MACS_PER_THREAD
#define PASSIVE PQ_ONEDNN_MACS_PER_THREAD_PASSIVE

Test(onednn_threads, macs_per_thread_for_wait_policies) {
    cr_assert_eq(pq_onednn_macs_per_thread_for(NULL, NULL), SPIN); /* libgomp's default spin */
    cr_assert_eq(pq_onednn_macs_per_thread_for("passive", NULL), PASSIVE);
    cr_assert_eq(pq_onednn_macs_per_thread_for("PASSIVE", NULL), PASSIVE);
    cr_assert_eq(pq_onednn_macs_per_thread_for("active", NULL), SPIN);
    cr_assert_eq(pq_onednn_macs_per_thread_for("bogus", NULL), SPIN);
    /* GOMP_SPINCOUNT overrides the policy */
    cr_assert_eq(pq_onednn_macs_per_thread_for("passive", "10000"), SPIN);
    cr_assert_eq(pq_onednn_macs_per_thread_for(NULL, "10k"), SPIN);
    cr_assert_eq(pq_onednn_macs_per_thread_for(NULL, "1k"), SPIN);
    cr_assert_eq(pq_onednn_macs_per_thread_for(NULL, "999"), PASSIVE);
    cr_assert_eq(pq_onednn_macs_per_thread_for("active", "0"), PASSIVE);
    cr_assert_eq(pq_onednn_macs_per_thread_for("passive", "infinite"), SPIN);
    cr_assert_eq(pq_onednn_macs_per_thread_for(NULL, "2M"), SPIN);
    /* unparsable counts are ignored, as libgomp ignores them */
    cr_assert_eq(pq_onednn_macs_per_thread_for("passive", "lots"), PASSIVE);
    cr_assert_eq(pq_onednn_macs_per_thread_for(NULL, "-5"), SPIN);
    cr_assert_eq(pq_onednn_macs_per_thread_for(NULL, ""), SPIN);
    cr_assert(SPIN < PASSIVE);
}

Test(onednn_threads, counts_with_spinning_workers) {
    /* read once, at first use: criterion runs each test in a fresh process */
    setenv("PIQC_THREADS_ADAPT", "0", 1);
    unsetenv("OMP_WAIT_POLICY");
    setenv("GOMP_SPINCOUNT", "10000", 1);
    cr_assert_eq(pq_onednn_macs_per_thread(), SPIN);
    cr_assert_eq(pq_dnnl_threads_for(1, (int64_t)1 << 40), 1);
    cr_assert_eq(pq_dnnl_threads_for(0, (int64_t)1 << 40), 1);
    cr_assert_eq(pq_dnnl_threads_for(2, 0), 1);
    cr_assert_eq(pq_dnnl_threads_for(2, 2 * SPIN - 1), 1);
    cr_assert_eq(pq_dnnl_threads_for(2, 2 * SPIN), 2);
    cr_assert_eq(pq_dnnl_threads_for(4, 3 * SPIN), 3);
    cr_assert_eq(pq_dnnl_threads_for(4, (int64_t)1 << 40), 4);
}

Test(onednn_threads, counts_with_passive_workers) {
    setenv("PIQC_THREADS_ADAPT", "0", 1);
    setenv("OMP_WAIT_POLICY", "passive", 1);
    unsetenv("GOMP_SPINCOUNT");
    cr_assert_eq(pq_onednn_macs_per_thread(), PASSIVE);
    cr_assert_eq(pq_dnnl_threads_for(2, 2 * SPIN), 1);
    cr_assert_eq(pq_dnnl_threads_for(2, 2 * PASSIVE - 1), 1);
    cr_assert_eq(pq_dnnl_threads_for(2, 2 * PASSIVE), 2);
}

Test(onednn_threads, load_aware_count_stays_in_range) {
    unsetenv("PIQC_THREADS_ADAPT");
    for (int rep = 0; rep < 200; rep++) {
        int t = pq_dnnl_threads_for(2, (int64_t)1 << 40);
        cr_assert(t == 1 || t == 2, "%d threads", t);
    }
}
