/* Public face of passes/: the pass contract (pass.h), YAML pipelines and presets (pipeline.h), the
 * pass manager (manager.h), weight selection and the weight views shared by the rewrite passes. */
#ifndef PQ_PASSES_H
#define PQ_PASSES_H

#include "manager.h"
#include "pass.h"
#include "pipeline.h"
#include "select.h"
#include "weight_quant.h"
#include "weights.h"

#endif
