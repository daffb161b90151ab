/* AVX-512 kernels for packed PiQ/Q rows and the Walsh-Hadamard butterfly (work in progress:
 * the table is NULL-filled until the kernels land, so dispatch never selects it). */
#include "backends/quant/qkernels.h"

const pq_qkernels pq_qkernels_avx512 = {0};
