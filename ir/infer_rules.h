/* Private declarations of the shape-inference rules, one section per rules file, gathered
 * into pq_infer_table by infer_table.c. */
#ifndef PQ_INFER_RULES_H
#define PQ_INFER_RULES_H

#include "infer.h"

/* ---- infer_elementwise.c / infer_reduce.c (elementwise, activations, reductions, quant ops) ---- */
/* ---- end elementwise ---- */

/* ---- infer_nn.c (matmul, gemm, conv, pooling, normalisation, recurrent) ---- */
/* ---- end nn ---- */

/* ---- infer_movement.c / infer_control.c (shape, data movement, constants, control flow) ---- */
/* ---- end movement ---- */

#endif
