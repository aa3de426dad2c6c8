/*
 * The kernels (kernels_isa.h) compiled for the ISA FA_ISA, under the target
 * its row in isa.h gives; included by kernels_<isa>.c for each ISA but the
 * baseline.  One translation unit per ISA, because a target applies to the
 * functions of a whole unit, the header-defined helpers (fa_math.h, half.h)
 * included, and so that the ISAs compile in parallel.  Where targets are not
 * available the ISA's table is NULL, and dispatch.c never chooses it.
 */
#include <stddef.h>

#include "isa.h"
#include "kernels.h"

#define FA_TARGET_CAT_(a, b) a##b
#define FA_TARGET_CAT(a, b) FA_TARGET_CAT_(a, b)
#define FA_TARGET_EXPAND_(macro, arg) macro(arg)

#if FA_ISA_TARGETS
#define FA_PRAGMA_(text) _Pragma(#text)
#define FA_PRAGMA(text) FA_PRAGMA_(text)
#define FA_THIS_TARGET FA_TARGET_EXPAND_(FA_ISA_TARGET, FA_ISA)

#if defined(__clang__)
FA_PRAGMA(clang attribute push(__attribute__((target(FA_THIS_TARGET))), apply_to = function))
#else
FA_PRAGMA(GCC target(FA_THIS_TARGET))
#endif

#include "kernels_isa.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
const fa_kernels *const FA_TARGET_CAT(fa_kernels_, FA_ISA) = NULL;
#endif
