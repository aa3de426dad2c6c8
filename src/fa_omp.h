/*
 * OpenMP, or a serial stand-in when the compiler has none (e.g. Apple clang)
 * or the build was asked to be serial (FASTACT_NO_OPENMP=1).  Code includes
 * this header instead of <omp.h> so it compiles the same way in both cases.
 */
#ifndef FASTACT_FA_OMP_H
#define FASTACT_FA_OMP_H

#ifdef _OPENMP
#include <omp.h>
#define FA_HAVE_OPENMP 1
#else
#define FA_HAVE_OPENMP 0
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_threads(void) { return 1; }
#endif

#endif
