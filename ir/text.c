/* Text IR (under construction). */
#include "text.h"
