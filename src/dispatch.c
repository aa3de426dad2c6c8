/*
 * Run-time ISA choice: the best ISA this CPU (and OS) supports among those
 * compiled in, unless fa_set_isa asks for another (FASTACT_ISA, read by the
 * Python layer, and the tests use it to exercise every version).
 */
#include <stddef.h>

#include "fastact.h"
#include "kernels.h"

static int active_isa = -1;

/* the ISA's tables, one per dtype; NULL when not compiled in */
static const fa_kernels *tables(int isa)
{
    switch (isa) {
    case FA_ISA_AVX2: return fa_kernels_avx2;
    case FA_ISA_AVX512F: return fa_kernels_avx512f;
    default: return fa_kernels_baseline;
    }
}

static int cpu_has(int isa)
{
    if (isa == FA_ISA_BASELINE) {
        return 1;
    }
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
    /* __builtin_cpu_supports also checks that the OS saves the wide
     * registers (XGETBV), not only the CPUID bits. */
    __builtin_cpu_init();
    if (isa == FA_ISA_AVX2) {
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    if (isa == FA_ISA_AVX512F) {
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
    }
#endif
    return 0;
}

int fa_isa_supported(int isa)
{
    if (isa < 0 || isa >= FA_ISA_COUNT) {
        return 0;
    }
    return tables(isa) != NULL && cpu_has(isa);
}

int fa_isa_best(void)
{
    for (int isa = FA_ISA_COUNT - 1; isa > 0; isa--) {
        if (fa_isa_supported(isa)) {
            return isa;
        }
    }
    return FA_ISA_BASELINE;
}

int fa_set_isa(int isa)
{
    if (!fa_isa_supported(isa)) {
        return -1;
    }
    active_isa = isa;
    return 0;
}

int fa_get_isa(void)
{
    if (active_isa < 0) {
        active_isa = fa_isa_best();
    }
    return active_isa;
}

const char *fa_isa_name(int isa)
{
    switch (isa) {
    case FA_ISA_BASELINE: return "baseline";
    case FA_ISA_AVX2: return "avx2";
    case FA_ISA_AVX512F: return "avx512f";
    default: return "unknown";
    }
}

const fa_kernels *fa_kernels_for(int dtype) { return &tables(fa_get_isa())[dtype]; }
