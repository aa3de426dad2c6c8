/*
 * fastact's C runtime, the thread policy (parallel.c) and the ISA choice
 * (dispatch.c), as the module fastact._cpu holds it, for fastact's other
 * extension modules.  Such a module must call through this table instead of
 * linking its own parallel.c and dispatch.c: their state (the thread count
 * set_num_threads sets, the back-off, the fork switch, the active ISA) would
 * then be a second copy, deaf to fastact.set_num_threads and set_isa.
 *
 * _cpu exports the table as the capsule FA_RUNTIME_CAPSULE (the attribute
 * _runtime), as numpy exports its C API; a module gets it once, at import:
 *     const fa_runtime *rt = PyCapsule_Import(FA_RUNTIME_CAPSULE, 0);
 * and checks version and isa_count against its own build's.
 */
#ifndef FASTACT_RUNTIME_H
#define FASTACT_RUNTIME_H

#include <stdint.h>

#include "parallel.h"

#define FA_RUNTIME_CAPSULE "fastact._cpu._runtime"
#define FA_RUNTIME_VERSION 1     /* bumped at any change of fa_runtime */

typedef struct {
    int version;                /* FA_RUNTIME_VERSION */
    int isa_count;              /* FA_ISA_COUNT: ISA indices mean the same */
    /* fa_parallel_for: the same team, thread count and back-off as the
     * kernels */
    void (*parallel_for)(int64_t nitems, int64_t traffic_bytes, fa_body body,
                         void *ctx);
    int (*get_isa)(void);       /* fa_get_isa: the active ISA */
} fa_runtime;

/* _cpu's table (runtime.c) */
extern const fa_runtime fa_runtime_api;

#endif
