/* Placeholder until the first frontend lands. */
#include "ir/ir.h"
