/* CPU feature detection (GCC's __builtin_cpu_supports, which also checks that the OS saves the
 * wide registers) and the PIQC_ISA environment override, both read once. */
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include "cpu.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t pq_cpu_once = PTHREAD_ONCE_INIT;
static bool pq_cpu_avx2, pq_cpu_avx512, pq_cpu_vnni, pq_cpu_vbmi, pq_cpu_avxvnni, pq_cpu_amx = true;
static const char *pq_cpu_cap; /* the PIQC_CPU_MAX level in force, or NULL */
static char pq_cpu_isa_env[32];
static bool pq_cpu_isa_set;

static void pq_cpu_detect(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    /* clang 14's __builtin_cpu_supports does not know "f16c": read CPUID.1:ECX bit 29 */
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29));
    pq_cpu_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
    pq_cpu_avx512 = pq_cpu_avx2 && __builtin_cpu_supports("avx512f") &&
                    __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                    __builtin_cpu_supports("avx512dq");
    pq_cpu_vnni = pq_cpu_avx512 && __builtin_cpu_supports("avx512vnni");
    pq_cpu_vbmi = pq_cpu_avx512 && __builtin_cpu_supports("avx512vbmi");
    pq_cpu_avxvnni = pq_cpu_avx2 && __get_cpuid_max(0, NULL) >= 7;
    if (pq_cpu_avxvnni) {
        __cpuid_count(7, 1, eax, ebx, ecx, edx);
        pq_cpu_avxvnni = (eax >> 4) & 1u;
    }
#endif
    /* PIQC_CPU_MAX: hide what lies above the named level (an unknown name: a warning, nothing
     * hidden) */
    const char *cap = getenv("PIQC_CPU_MAX");
    if (cap && cap[0]) {
        static const char *const levels[] = {"scalar", "avx2", "avxvnni", "avx512"};
        int level = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(cap, levels[i]) == 0) level = i;
        if (level < 0)
            fprintf(stderr,
                    "piqc: warning: PIQC_CPU_MAX=%s is not one of scalar, avx2, avxvnni, avx512; "
                    "ignored\n",
                    cap);
        if (level >= 0) {
            pq_cpu_cap = levels[level];
            pq_cpu_amx = false;
            if (level < 3) pq_cpu_avx512 = pq_cpu_vnni = pq_cpu_vbmi = false;
            if (level < 2) pq_cpu_avxvnni = false;
            if (level < 1) pq_cpu_avx2 = false;
        }
    }
    const char *env = getenv("PIQC_ISA");
    if (env && env[0]) {
        size_t len = strlen(env);
        if (len >= sizeof pq_cpu_isa_env) len = sizeof pq_cpu_isa_env - 1;
        memcpy(pq_cpu_isa_env, env, len);
        pq_cpu_isa_env[len] = '\0';
        pq_cpu_isa_set = true;
    }
}

bool pq_cpu_has_avx2(void) {
    pthread_once(&pq_cpu_once, pq_cpu_detect);
    return pq_cpu_avx2;
}

bool pq_cpu_has_avx512(void) {
    pthread_once(&pq_cpu_once, pq_cpu_detect);
    return pq_cpu_avx512;
}

bool pq_cpu_has_avx512_vnni(void) {
    pthread_once(&pq_cpu_once, pq_cpu_detect);
    return pq_cpu_vnni;
}

bool pq_cpu_has_avx512_vbmi(void) {
    pthread_once(&pq_cpu_once, pq_cpu_detect);
    return pq_cpu_vbmi;
}

bool pq_cpu_has_avxvnni(void) {
    pthread_once(&pq_cpu_once, pq_cpu_detect);
    return pq_cpu_avxvnni;
}

const char *pq_cpu_max_level(void) {
    pthread_once(&pq_cpu_once, pq_cpu_detect);
    return pq_cpu_cap;
}

bool pq_cpu_amx_allowed(void) {
    pthread_once(&pq_cpu_once, pq_cpu_detect);
    return pq_cpu_amx;
}

bool pq_cpu_has_neon(void) {
#if defined(__aarch64__)
    return true;
#else
    return false;
#endif
}

bool pq_cpu_supports_isa(const char *isa) {
    if (!isa) return false;
    if (strcmp(isa, "scalar") == 0) return true;
    if (strcmp(isa, "avx2") == 0) return pq_cpu_has_avx2();
    if (strcmp(isa, "avx512") == 0) return pq_cpu_has_avx512();
    if (strcmp(isa, "neon") == 0) return pq_cpu_has_neon();
    return false;
}

const char *pq_isa_forced_exact(void) {
    pthread_once(&pq_cpu_once, pq_cpu_detect);
    return pq_cpu_isa_set ? pq_cpu_isa_env : NULL;
}

const char *pq_isa_forced(void) {
    const char *f = pq_isa_forced_exact();
    return f && strcmp(f, "amx") == 0 ? "avx512" : f;
}
