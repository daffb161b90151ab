/* Selection of the quantized-kernel table by ISA name, exposed so tests can check the
 * PIQC_ISA override and its fallback without changing the process environment. */
#ifndef PQ_QDISPATCH_H
#define PQ_QDISPATCH_H

#include "backends/quant/qkernels.h"

/* The table pq_qkernels_get() would return if PIQC_ISA were `forced` (NULL = unset): the named
 * ISA when the CPU supports it, else the scalar table, after printing a warning naming the ISA
 * on stderr when `warn` is true. Unknown names also fall back to scalar with a warning. With
 * forced NULL: the best of avx512 > avx2 > neon > scalar. Never returns NULL. */
const pq_qkernels *pq_qkernels_select(const char *forced, int warn);

#endif
