/* Private declarations of the reference kernels, one section per kernel file, gathered into
 * pq_ref_kernels by ref_table.c. */
#ifndef PQ_REF_KERNELS_H
#define PQ_REF_KERNELS_H

#include "ref.h"

/* ---- elementwise ---- */
/* ---- end elementwise ---- */

/* ---- nn ---- */
/* ---- end nn ---- */

/* ---- movement ---- */
/* ---- end movement ---- */

#endif
