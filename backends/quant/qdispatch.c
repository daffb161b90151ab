/* Run-time choice of the quantized-kernel table (scalar, AVX2, AVX-512, NEON), made once from
 * the CPU features and the PIQC_ISA override (backends/cpu.h). */
#include "backends/quant/qdispatch.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "backends/cpu.h"

#if defined(__aarch64__)
#include "backends/arm/qkernels_neon.h"
#define PQ_HAVE_NEON_TABLE 1
#endif

#if !(defined(__x86_64__) || defined(__i386__))
/* Not compiled in on this architecture: NULL-filled tables (see qkernels.h). */
const pq_qkernels pq_qkernels_avx2 = {0};
const pq_qkernels pq_qkernels_avx512 = {0};
#endif

static const pq_qkernels *pq_qkernels_table(const char *isa) {
    if (strcmp(isa, "scalar") == 0) return &pq_qkernels_scalar;
#if defined(__x86_64__) || defined(__i386__)
    if (strcmp(isa, "avx2") == 0) return &pq_qkernels_avx2;
    if (strcmp(isa, "avx512") == 0) return &pq_qkernels_avx512;
#endif
#ifdef PQ_HAVE_NEON_TABLE
    if (strcmp(isa, "neon") == 0) return &pq_qkernels_neon;
#endif
    return NULL;
}

const pq_qkernels *pq_qkernels_for(const char *isa) {
    if (!isa || !pq_cpu_supports_isa(isa)) return NULL;
    const pq_qkernels *k = pq_qkernels_table(isa);
    return (k && k->gemv) ? k : NULL;
}

const pq_qkernels *pq_qkernels_select(const char *forced, int warn) {
    if (forced) {
        const pq_qkernels *k = pq_qkernels_for(forced);
        if (k) return k;
        if (warn) {
            fprintf(stderr,
                    "piqc: warning: PIQC_ISA=%s is not available on this CPU/build; using "
                    "scalar kernels\n",
                    forced);
        }
        return &pq_qkernels_scalar;
    }
    static const char *const order[] = {"avx512", "avx2", "neon"};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const pq_qkernels *k = pq_qkernels_for(order[i]);
        if (k) return k;
    }
    return &pq_qkernels_scalar;
}

static pthread_once_t pq_qkernels_once = PTHREAD_ONCE_INIT;
static const pq_qkernels *pq_qkernels_chosen;

static void pq_qkernels_init(void) {
    pq_qkernels_chosen = pq_qkernels_select(pq_isa_forced(), 1);
}

const pq_qkernels *pq_qkernels_get(void) {
    pthread_once(&pq_qkernels_once, pq_qkernels_init);
    return pq_qkernels_chosen;
}
