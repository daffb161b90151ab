/* Public face of frontends/: ONNX import, .npy tensors, text IR files (.pir), the GGUF
 * artifact and the shared atomic file helpers. */
#ifndef PQ_FRONTENDS_H
#define PQ_FRONTENDS_H

#include "artifact.h"
#include "fileio.h"
#include "gguf.h"
#include "npy.h"
#include "onnx.h"
#include "pir.h"

#endif
