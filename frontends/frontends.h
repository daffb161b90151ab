/* Public face of frontends/: ONNX import, .npy tensors, text IR files (.pir), the GGUF
 * artifact and the shared atomic file helpers. */
#ifndef PQ_FRONTENDS_H
#define PQ_FRONTENDS_H

#include "fileio.h"
#include "npy.h"
#include "onnx.h"
#if __has_include("pir.h")
#include "pir.h"
#define PQ_HAVE_PIR 1
#endif

#endif
