/*
 * The ISAs fastact's kernels are compiled for: one row each, the only list.
 *
 *   X(name, target, cpu_test)
 *   name      what FASTACT_ISA and fastact.config() call it, and the suffix of
 *             its kernel tables fa_kernels_<name> (kernels_<name>.c)
 *   target    the GCC/Clang target its code is compiled for; for baseline
 *             the x86-64 default (SSE2), which kernels_baseline.c gets from
 *             the build without asking for it
 *   cpu_test  true when this CPU and OS run it: FA_CPU("feature") is
 *             __builtin_cpu_supports, which also checks that the OS saves
 *             the wide registers (XGETBV), not only the CPUID bits
 *
 * Rows go from the lowest ISA to the highest: the highest this CPU runs is
 * the default, and baseline comes first (index 0, always there).  Adding an
 * ISA is a row here, its name in FA_ISA_LIST, and a kernels_<name>.c of two
 * lines like kernels_avx2.c.  Only the baseline is compiled where targets are
 * not available (FA_ISA_TARGETS: x86-64 with GCC or Clang); elsewhere the
 * other rows' tables are NULL and they are never chosen.
 */
#ifndef FASTACT_ISA_H
#define FASTACT_ISA_H

#define FA_ISA_ROW_baseline(X) X(baseline, "sse2", 1)
#define FA_ISA_ROW_avx2(X) \
    X(avx2, "avx2,fma,f16c", FA_CPU("avx2") && FA_CPU("fma") && FA_CPU("f16c"))
#define FA_ISA_ROW_avx512f(X) X(avx512f, "avx512f,fma", FA_CPU("avx512f") && FA_CPU("fma"))

#define FA_ISA_LIST(X) FA_ISA_ROW_baseline(X) FA_ISA_ROW_avx2(X) FA_ISA_ROW_avx512f(X)

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FA_ISA_TARGETS 1
#else
#define FA_ISA_TARGETS 0
#endif

/* Compiles one function for a target (one row's): for code that has all its
 * ISAs in one unit (membench.c).  Where targets are not available every ISA's
 * function is the default one; only the baseline is ever chosen there. */
#if FA_ISA_TARGETS
#define FA_TARGET_ATTRIBUTE(spec) __attribute__((target(spec)))
#else
#define FA_TARGET_ATTRIBUTE(spec)
#endif

/* FA_ISA_<name>: an ISA's index, its row's place in FA_ISA_LIST */
#define FA_ISA_ENUM_(name, target, cpu_test) FA_ISA_##name,
enum { FA_ISA_LIST(FA_ISA_ENUM_) FA_ISA_COUNT };
#undef FA_ISA_ENUM_

/* the target of the ISA `name` (a bare token), as a string */
#define FA_ISA_TARGET_OF_(name, target, cpu_test) target
#define FA_ISA_TARGET(name) FA_ISA_ROW_##name(FA_ISA_TARGET_OF_)

#endif
