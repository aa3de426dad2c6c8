# cython: language_level=3
"""CUDA glue for fastact: device pointers and streams (as ints) to the
launchers of src/cuda, and a DLPack consumer.

Thin on purpose: the argument checks, layouts and output allocation are
fastact/_device.py's.  Every launcher's CUDA error becomes a RuntimeError
carrying the CUDA runtime's message.
"""
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid, PyCapsule_SetName
from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint64_t, uintptr_t

cdef extern from "fastact_cuda.h" nogil:
    const char *fa_cuda_error_message()
    int fa_cuda_device_count(int *count)
    int fa_cuda_driver_version(int *version)
    int fa_cuda_runtime_version(int *version)
    int fa_cuda_device_name(int device, char *name, int len, int *major, int *minor)
    int fa_cuda_pointer_device(const void *ptr, int *device, int *is_device)
    int fa_cuda_stream_wait(int device, uintptr_t waiting, uintptr_t producer)
    int fa_cuda_unary_forward(int device, int op, int dtype, const double *params,
                              const void *x, void *y, int64_t n, uintptr_t stream)
    int fa_cuda_unary_backward(int device, int op, int dtype, const double *params,
                               const void *grad_output, const void *x,
                               void *grad_input, int64_t n, uintptr_t stream)
    int fa_cuda_prelu_forward(int device, int dtype, const void *x,
                              const void *slopes, int slopes_on_host,
                              double shared_slope, void *y, int64_t outer,
                              int64_t channels, int64_t inner, uintptr_t stream)
    int fa_cuda_affine_prelu_forward(int device, int dtype, const void *x,
                                     const void *scale, const void *shift,
                                     const void *slopes, int on_host, void *y,
                                     int64_t outer, int64_t channels, int64_t inner,
                                     uintptr_t stream)
    int fa_cuda_prelu_backward(int device, int dtype, const void *grad_output,
                               const void *x, const void *slopes, int slopes_on_host,
                               double shared_slope, void *grad_input,
                               void *grad_slopes, int grad_dtype,
                               int divide_by_slopes, int64_t outer,
                               int64_t channels, int64_t inner, uintptr_t stream)


cdef int _check(int rc) except -1:
    if rc != 0:
        raise RuntimeError("fastact CUDA: " + fa_cuda_error_message().decode(errors="replace"))
    return 0


def last_error_message():
    return fa_cuda_error_message().decode(errors="replace")


# --- discovery -------------------------------------------------------------

def device_count():
    """(cudaGetDeviceCount's error code, the count, the message)."""
    cdef int count = 0
    cdef int rc = fa_cuda_device_count(&count)
    return rc, count, (last_error_message() if rc else "")


def driver_version():
    """The CUDA version the installed driver supports (e.g. 13000), 0 if none."""
    cdef int v = 0
    fa_cuda_driver_version(&v)
    return v


def runtime_version():
    """The CUDA runtime version fastact was built with (e.g. 13000)."""
    cdef int v = 0
    fa_cuda_runtime_version(&v)
    return v


def device_name(int device):
    """(name, major, minor) of a device."""
    cdef char name[256]
    cdef int major = 0, minor = 0
    _check(fa_cuda_device_name(device, name, 256, &major, &minor))
    return name.decode(errors="replace"), major, minor


def pointer_device(uintptr_t ptr):
    """(device, is_device_memory) for a pointer."""
    cdef int device = -1, is_device = 0
    _check(fa_cuda_pointer_device(<const void *>ptr, &device, &is_device))
    return device, bool(is_device)


def stream_wait(int device, uintptr_t waiting, uintptr_t producer):
    """Order `waiting` after the work queued on `producer` (no host wait)."""
    _check(fa_cuda_stream_wait(device, waiting, producer))


# --- launchers ---------------------------------------------------------------

def unary_forward(int device, int op, int dtype, double p0, double p1, double p2,
                  uintptr_t x, uintptr_t y, int64_t n, uintptr_t stream):
    cdef double[3] params = [p0, p1, p2]
    cdef int rc
    with nogil:
        rc = fa_cuda_unary_forward(device, op, dtype, params, <const void *>x,
                                   <void *>y, n, stream)
    _check(rc)


def unary_backward(int device, int op, int dtype, double p0, double p1, double p2,
                   uintptr_t g, uintptr_t x, uintptr_t gi, int64_t n, uintptr_t stream):
    cdef double[3] params = [p0, p1, p2]
    cdef int rc
    with nogil:
        rc = fa_cuda_unary_backward(device, op, dtype, params, <const void *>g,
                                    <const void *>x, <void *>gi, n, stream)
    _check(rc)


def prelu_forward(int device, int dtype, uintptr_t x, uintptr_t slopes,
                  bint slopes_on_host, double shared_slope, uintptr_t y,
                  int64_t outer, int64_t channels, int64_t inner, uintptr_t stream):
    cdef int rc
    with nogil:
        rc = fa_cuda_prelu_forward(device, dtype, <const void *>x, <const void *>slopes,
                                   slopes_on_host, shared_slope, <void *>y, outer,
                                   channels, inner, stream)
    _check(rc)


def affine_prelu_forward(int device, int dtype, uintptr_t x, uintptr_t scale,
                         uintptr_t shift, uintptr_t slopes, bint on_host, uintptr_t y,
                         int64_t outer, int64_t channels, int64_t inner, uintptr_t stream):
    cdef int rc
    with nogil:
        rc = fa_cuda_affine_prelu_forward(device, dtype, <const void *>x,
                                          <const void *>scale, <const void *>shift,
                                          <const void *>slopes, on_host, <void *>y, outer,
                                          channels, inner, stream)
    _check(rc)


def prelu_backward(int device, int dtype, uintptr_t g, uintptr_t x, uintptr_t slopes,
                   bint slopes_on_host, double shared_slope, uintptr_t gi,
                   uintptr_t grad_slopes, int grad_dtype, bint divide_by_slopes,
                   int64_t outer, int64_t channels, int64_t inner, uintptr_t stream):
    cdef int rc
    with nogil:
        rc = fa_cuda_prelu_backward(device, dtype, <const void *>g, <const void *>x,
                                    <const void *>slopes, slopes_on_host, shared_slope,
                                    <void *>gi, <void *>grad_slopes, grad_dtype,
                                    divide_by_slopes, outer, channels, inner, stream)
    _check(rc)


# --- DLPack (legacy, unversioned capsules: what __dlpack__() returns unless
# the consumer asks for a max_version) ----------------------------------------

cdef struct DLDevice:
    int32_t device_type
    int32_t device_id

cdef struct DLDataType:
    uint8_t code
    uint8_t bits
    uint16_t lanes

cdef struct DLTensor:
    void *data
    DLDevice device
    int32_t ndim
    DLDataType dtype
    int64_t *shape
    int64_t *strides
    uint64_t byte_offset

cdef struct DLManagedTensor:
    DLTensor dl_tensor
    void *manager_ctx
    void (*deleter)(DLManagedTensor *) noexcept

KDL_CPU = 1
KDL_CUDA = 2
KDL_CUDA_HOST = 3
KDL_CUDA_MANAGED = 13
KDL_FLOAT = 2
KDL_BFLOAT = 4


cdef class DLPackView:
    """A consumed DLPack tensor: its fields, and ownership of it.  The
    producer's memory stays valid while this object lives; when it goes, the
    producer's deleter is called (exactly once)."""
    cdef DLManagedTensor *managed
    cdef readonly uintptr_t ptr
    cdef readonly tuple shape
    cdef readonly object strides          # in elements; None: C-contiguous
    cdef readonly int device_type
    cdef readonly int device_id
    cdef readonly int type_code
    cdef readonly int bits
    cdef readonly int lanes

    def __dealloc__(self):
        if self.managed != NULL and self.managed.deleter != NULL:
            self.managed.deleter(self.managed)
        self.managed = NULL


def consume_dlpack(capsule):
    """Take a "dltensor" capsule (as __dlpack__ returns it) and return a
    DLPackView owning it; the capsule is renamed "used_dltensor", as the
    protocol asks, so that it does not free the tensor itself."""
    if not PyCapsule_IsValid(capsule, b"dltensor"):
        raise ValueError("not an unused DLPack capsule (expected a 'dltensor' capsule)")
    cdef DLManagedTensor *m = <DLManagedTensor *>PyCapsule_GetPointer(capsule, b"dltensor")
    cdef DLPackView view = DLPackView.__new__(DLPackView)
    view.managed = m
    PyCapsule_SetName(capsule, b"used_dltensor")
    cdef DLTensor *t = &m.dl_tensor
    cdef int d
    view.ptr = <uintptr_t>t.data + <uintptr_t>t.byte_offset
    view.shape = tuple(t.shape[d] for d in range(t.ndim))
    view.strides = None if t.strides == NULL else tuple(t.strides[d] for d in range(t.ndim))
    view.device_type = t.device.device_type
    view.device_id = t.device.device_id
    view.type_code = t.dtype.code
    view.bits = t.dtype.bits
    view.lanes = t.dtype.lanes
    return view


# --- XLA FFI handlers (src/xla_ffi.c built with FA_XLA_CUDA), for fastact.jax --------

include "_xla_targets.pxi"


def xla_ffi_targets():
    """{target name: PyCapsule of its XLA FFI handler} for CUDA: fastact's
    CUDA kernels launched on XLA's stream."""
    return _target_capsules(fa_xla_cuda_targets)
