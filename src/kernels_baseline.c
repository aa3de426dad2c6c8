/* The kernels for the build's baseline ISA (SSE2 on x86-64). */
#define FA_ISA baseline
#include "kernels_isa.h"
