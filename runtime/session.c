/* Placeholder translation unit until the executor lands. */
#include "runtime.h"
