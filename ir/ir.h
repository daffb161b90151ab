/* Public face of ir/: tensors, dtypes, ops, graphs, shape inference, verifier and the text IR.
 * Other folders include only this header from ir/. */
#ifndef PQ_IR_H
#define PQ_IR_H

#include "alloc.h"
#include "attrs.h"
#include "build.h"
#include "dtype.h"
#include "edit.h"
#include "graph.h"
#include "infer.h"
#include "op.h"
#include "packed.h"
#include "rewrite.h"
#include "status.h"
#include "tensor.h"
#include "text.h"
#include "verify.h"

#endif
