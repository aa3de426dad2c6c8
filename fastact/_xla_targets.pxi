# XLA FFI handlers (src/xla_ffi.h), for fastact.jax: included by _cpu.pyx
# (the CPU handlers) and _cuda.pyx (the CUDA ones), each of which exports
# xla_ffi_targets() over its own table.

cdef extern from "xla_ffi.h":
    ctypedef struct fa_ffi_target:
        const char *name
        void *handler
    const fa_ffi_target fa_xla_cpu_targets[]
    const fa_ffi_target fa_xla_cuda_targets[]


cdef dict _target_capsules(const fa_ffi_target *targets):
    """{target name: PyCapsule of its handler} for a table ended by a NULL
    name (registering them is fastact.jax's business)."""
    cdef int i = 0
    capsules = {}
    while targets[i].name != NULL:
        capsules[targets[i].name.decode()] = PyCapsule_New(targets[i].handler, NULL, NULL)
        i += 1
    return capsules
