/* LoRA adapters after training: folding each adapter branch of the lora pass back into its base
 * weight ("merge"), so the exported model has no branch and the weight is re-quantized. */
#ifndef PQ_LORA_H
#define PQ_LORA_H

#include <stdint.h>

#include "pass.h"

/* Folds every adapter branch y = y_1 + s * ((x A) B) made by the lora pass into the base weight
 * (W += s * (A B) in W's layout: MatMul/Gemm with or without transB, 1x1 Conv), makes the
 * readers of y read y_1 (graph output names are kept) and removes the branch. A FakeQuant between
 * the weight and the layer stays, so the merged weight is re-quantized with the FakeQuant's
 * (trained) scales. *merged (may be NULL) receives the number of adapters folded; *max_delta
 * (may be NULL) the largest |change| of a weight element. The graph must be sorted and inferred.
 * INVALID naming the adapter when its base weight is not an f32 constant or the shapes do not
 * fit; NOMEM. */
enum pq_status pq_lora_merge(pq_graph *g, pq_pass_ctx *ctx, uint32_t *merged, double *max_delta,
                             pq_error *err);

#endif
