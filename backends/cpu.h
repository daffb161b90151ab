/* Run-time CPU feature detection shared by every backend (decided once, thread-safe) and the
 * PIQC_ISA override that forces a kernel path (scalar|avx2|avx512|neon) so tests cover each. */
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
