/*
 * The one place that decides how many threads a kernel uses.  Every kernel
 * splits its work into items whose boundaries do not depend on the thread
 * count, and hands them to fa_parallel_for.
 */
#ifndef FASTACT_PARALLEL_H
#define FASTACT_PARALLEL_H

#include <stdint.h>

/* Below this many bytes of memory traffic a call runs on the calling thread:
 * waking a team costs a few microseconds, more than such a call takes. */
#define FA_PARALLEL_MIN_BYTES ((int64_t)1 << 18)

/* Processes items [begin, end) of a kernel's work, serially. */
typedef void (*fa_body)(void *ctx, int64_t begin, int64_t end);

/*
 * Runs body over items [0, nitems): serially, or on a thread team whose
 * threads claim items one at a time (body sees [j, j + 1)), in any order.
 * traffic_bytes (bytes read + written by the whole call) decides whether a
 * team is worth starting and how many threads it gets; while teams cost
 * more than they save (a busy machine), calls run serially (parallel.c).
 */
void fa_parallel_for(int64_t nitems, int64_t traffic_bytes, fa_body body,
                     void *ctx);

#endif
