/* The kernels compiled for AVX512F (isa.h), chosen when the CPU has it. */
#define FA_ISA avx512f
#include "kernels_target.h"
