/*
 * Instantiates kernels_impl.h for every dtype under the ISA named by FA_ISA
 * (a bare token: baseline, avx2, avx512f) and exports the tables, indexed by
 * FA_DT_* (src/ops.h), as fa_kernels_<isa>.  The including file sets the
 * target.
 */
#include "fa_math.h"
#include "half.h"
#include "ops.h"

#define FA_CAT_(a, b) a##b
#define FA_CAT(a, b) FA_CAT_(a, b)

/* One instance per dtype, FA_DTYPE(X) being
 *   X(suffix, element type, compute type, compute type is double, tiled,
 *     product scale)
 * (kernels_impl.h reads its parameters off it, and undefines it; tiled
 * dtypes convert with half.h's fa_widen_<suffix> and fa_narrow_<suffix>;
 * the product scale is the k for which the product of two elements, one
 * scaled by 2^k, is exact in the compute type unless it overflows, -1 where
 * none is: float16's are exact as they are, bfloat16's can leave float's
 * exponent range, see kernels_impl.h's FA_SCALED_TERM). */
#define FA_DTYPE(X) X(f32, float, float, 0, 0, -1)
#include "kernels_impl.h"
#define FA_DTYPE(X) X(f64, double, double, 1, 0, -1)
#include "kernels_impl.h"
#define FA_DTYPE(X) X(f16, uint16_t, float, 0, 1, 0)
#include "kernels_impl.h"
#define FA_DTYPE(X) X(bf16, uint16_t, float, 0, 1, 117)
#include "kernels_impl.h"

static const fa_kernels FA_CAT(fa_tables_, FA_ISA)[FA_DT_COUNT] = {
    [FA_DT_F32] = FA_CAT(table_f32_, FA_ISA),
    [FA_DT_F64] = FA_CAT(table_f64_, FA_ISA),
    [FA_DT_F16] = FA_CAT(table_f16_, FA_ISA),
    [FA_DT_BF16] = FA_CAT(table_bf16_, FA_ISA),
};
const fa_kernels *const FA_CAT(fa_kernels_, FA_ISA) = FA_CAT(fa_tables_, FA_ISA);
