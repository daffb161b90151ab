/* Public face of passes/: graph rewrites and the analyses they share (weight views today; the
 * pass manager and rewrite passes of the roadmap come next). */
#ifndef PQ_PASSES_H
#define PQ_PASSES_H

#include "weight_quant.h"
#include "weights.h"

#endif
