/* The kernels compiled for AVX2 (isa.h), chosen when the CPU has it. */
#define FA_ISA avx2
#include "kernels_target.h"
