/*
 * The kernels compiled for AVX512F, chosen at run time when the CPU has it
 * (dispatch.c).  Only on x86-64 with GCC or Clang; elsewhere the table is
 * absent and the baseline serves.
 */
#include <stddef.h>
#include "kernels.h"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,fma"))), apply_to = function)
#else
#pragma GCC target("avx512f,fma")
#endif

#define FA_ISA avx512f
#include "kernels_isa.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
const fa_kernels *const fa_kernels_avx512f = NULL;
#endif
