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
#define FA_IDENTITY(v) (v)

#define FA_T float
#define FA_C float
#define FA_C_IS_DOUBLE 0
#define FA_LOAD FA_IDENTITY
#define FA_STORE FA_IDENTITY
#define FA_NAME(name) FA_CAT(name##_f32_, FA_ISA)
#include "kernels_impl.h"
#undef FA_NAME
#undef FA_STORE
#undef FA_LOAD
#undef FA_C_IS_DOUBLE
#undef FA_C
#undef FA_T

#define FA_T double
#define FA_C double
#define FA_C_IS_DOUBLE 1
#define FA_LOAD FA_IDENTITY
#define FA_STORE FA_IDENTITY
#define FA_NAME(name) FA_CAT(name##_f64_, FA_ISA)
#include "kernels_impl.h"
#undef FA_NAME
#undef FA_STORE
#undef FA_LOAD
#undef FA_C_IS_DOUBLE
#undef FA_C
#undef FA_T

#define FA_T uint16_t
#define FA_C float
#define FA_C_IS_DOUBLE 0
#define FA_LOAD fa_f16_to_f32
#define FA_STORE fa_f32_to_f16
#define FA_NAME(name) FA_CAT(name##_f16_, FA_ISA)
#include "kernels_impl.h"
#undef FA_NAME
#undef FA_STORE
#undef FA_LOAD

#define FA_LOAD fa_bf16_to_f32
#define FA_STORE fa_f32_to_bf16
#define FA_NAME(name) FA_CAT(name##_bf16_, FA_ISA)
#include "kernels_impl.h"
#undef FA_NAME
#undef FA_STORE
#undef FA_LOAD
#undef FA_C_IS_DOUBLE
#undef FA_C
#undef FA_T

static const fa_kernels FA_CAT(fa_tables_, FA_ISA)[FA_DT_COUNT] = {
    FA_CAT(table_f32_, FA_ISA),
    FA_CAT(table_f64_, FA_ISA),
    FA_CAT(table_f16_, FA_ISA),
    FA_CAT(table_bf16_, FA_ISA),
};
const fa_kernels *const FA_CAT(fa_kernels_, FA_ISA) = FA_CAT(fa_tables_, FA_ISA);
