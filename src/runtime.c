/* The runtime table _cpu exports (runtime.h). */
#include "fastact.h"
#include "runtime.h"

const fa_runtime fa_runtime_api = {
    FA_RUNTIME_VERSION,
    FA_ISA_COUNT,
    fa_parallel_for,
    fa_get_isa,
};
