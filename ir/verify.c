/* Verifier (under construction). */
#include "verify.h"
