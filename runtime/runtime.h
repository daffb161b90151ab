/* Public face of runtime/: plans and executes graphs with the reference kernels (later the
 * optimised backends), binding dynamic dims from the actual inputs. */
#ifndef PQ_RUNTIME_H
#define PQ_RUNTIME_H

#include "backends/ref/ref.h"
#include "ir/ir.h"

#endif
