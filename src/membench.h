/*
 * Memory ceilings for the benchmark (the module fastact._membench): a copy,
 * an in-place read-modify-write and a read-two-write-one over n contiguous
 * floats.  They run on rt, _cpu's runtime (runtime.h): its active ISA, work
 * items, thread policy and streaming stores as the kernels', so that the
 * kernels' speed over these ceilings compares like with like.
 */
#ifndef FASTACT_MEMBENCH_H
#define FASTACT_MEMBENCH_H

#include <stdint.h>

#include "runtime.h"

/* dst = src (streaming == 1: non-temporal stores) */
void membench_copy_f32(const fa_runtime *rt, const float *src, float *dst, int64_t n,
                       int streaming);
/* x = x * factor, in place */
void membench_scale_inplace_f32(const fa_runtime *rt, float *x, float factor, int64_t n);
/* z = a + b (streaming == 1: non-temporal stores) */
void membench_add_f32(const fa_runtime *rt, const float *a, const float *b, float *z,
                      int64_t n, int streaming);

#endif
