/*
 * Instantiates kernels_impl.h for float32 and float64 under the ISA named by
 * FA_ISA (a bare token: baseline, avx2, avx512f) and exports the two tables
 * as fa_kernels_<dtype>_<isa>_ptr.  The including file sets the target.
 */
#define FA_CAT_(a, b) a##b
#define FA_CAT(a, b) FA_CAT_(a, b)

#define FA_T float
#define FA_NAME(name) FA_CAT(name##_f32_, FA_ISA)
#include "kernels_impl.h"
const fa_kernels *const FA_CAT(FA_CAT(fa_kernels_f32_, FA_ISA), _ptr) = &FA_NAME(table);
#undef FA_NAME
#undef FA_T

#define FA_T double
#define FA_NAME(name) FA_CAT(name##_f64_, FA_ISA)
#include "kernels_impl.h"
const fa_kernels *const FA_CAT(FA_CAT(fa_kernels_f64_, FA_ISA), _ptr) = &FA_NAME(table);
#undef FA_NAME
#undef FA_T
