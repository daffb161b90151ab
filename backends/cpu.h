/* Run-time CPU feature detection shared by every backend (decided once, thread-safe), the
 * PIQC_ISA override that forces a kernel path (scalar|avx2|avx512|neon) so tests cover each, and
 * PIQC_CPU_MAX (scalar|avx2|avxvnni|avx512), which hides the features above that level, so that
 * this CPU runs the suite as an older one would (an AVX2-only AMD EPYC: PIQC_CPU_MAX=avx2, with
 * ONEDNN_MAX_CPU_ISA=AVX2 for oneDNN). */
#ifndef PQ_CPU_H
#define PQ_CPU_H

#include <stdbool.h>

/* AVX2 + FMA + F16C usable (CPU and OS). Always false off x86. */
bool pq_cpu_has_avx2(void);
/* AVX-512 F + BW + VL + DQ usable (CPU and OS). Always false off x86. */
bool pq_cpu_has_avx512(void);
/* pq_cpu_has_avx512() plus AVX512-VNNI (int8 dot products). */
bool pq_cpu_has_avx512_vnni(void);
/* pq_cpu_has_avx512() plus AVX512-VBMI (byte permutes across the register: vpermb, vpermi2b). */
bool pq_cpu_has_avx512_vbmi(void);
/* AVX-VNNI (VEX int8 dot products on ymm, CPUID.(7,1):EAX bit 4) on top of pq_cpu_has_avx2(). */
bool pq_cpu_has_avxvnni(void);
/* Whether the INT8 kernels may use AMX tiles: false when PIQC_CPU_MAX caps the CPU below it (the
 * AMX CPUID bits and the OS permission are the AMX kernels' own checks). */
bool pq_cpu_amx_allowed(void);
/* The PIQC_CPU_MAX level in force ("scalar", "avx2", "avxvnni", "avx512"), or NULL when it is
 * unset or not one of those (then a warning was printed once and nothing is hidden). */
const char *pq_cpu_max_level(void);
/* Advanced SIMD: true on aarch64, false elsewhere. */
bool pq_cpu_has_neon(void);

/* Whether the CPU can run a named ISA: "scalar" (always), "avx2", "avx512", "neon".
 * False for unknown names. */
bool pq_cpu_supports_isa(const char *isa);

/* The value of the PIQC_ISA environment variable read at the first call (NULL when unset or
 * empty), except that "amx" (AVX-512 plus the INT8 GEMM's AMX tiles) reads as "avx512" for every
 * other kernel family. The string is static; later changes of the environment are not seen. */
const char *pq_isa_forced(void);
/* PIQC_ISA exactly as set (NULL when unset or empty), for the INT8 GEMM selection. */
const char *pq_isa_forced_exact(void);

#endif
