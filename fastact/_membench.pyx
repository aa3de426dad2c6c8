# cython: language_level=3
"""Memory ceilings for the benchmark (fastact._bench, asv_bench): a copy, an
in-place read-modify-write and a read-two-write-one over float32 arrays.

They run on fastact._cpu's runtime (its thread team, thread count, back-off
and active ISA), reached through the capsule _cpu._runtime (src/runtime.h),
so that they follow fastact.set_num_threads and FASTACT_ISA as the kernels
do.  Not part of the library's API.
"""
import numpy as np

cimport numpy as cnp
from cpython.pycapsule cimport PyCapsule_Import
from libc.stdint cimport int64_t

cnp.import_array()

cdef extern from "runtime.h" nogil:
    const char *FA_RUNTIME_CAPSULE
    int FA_RUNTIME_VERSION
    ctypedef struct fa_runtime:
        int version
        int isa_count

cdef extern from "isa.h" nogil:
    int FA_ISA_COUNT

cdef extern from "membench.h" nogil:
    void membench_copy_f32(const fa_runtime *rt, const float *src, float *dst, int64_t n,
                           int streaming)
    void membench_scale_inplace_f32(const fa_runtime *rt, float *x, float factor, int64_t n)
    void membench_add_f32(const fa_runtime *rt, const float *a, const float *b, float *z,
                          int64_t n, int streaming)


# PyCapsule_Import imports fastact._cpu, the runtime's module, and raises
# (rather than returning NULL) when the capsule is missing
cdef const fa_runtime *_runtime = <const fa_runtime *>PyCapsule_Import(FA_RUNTIME_CAPSULE, 0)
if _runtime.version != FA_RUNTIME_VERSION or _runtime.isa_count != FA_ISA_COUNT:
    raise ImportError("fastact._membench and fastact._cpu come from different builds; "
                      "rebuild fastact")


cdef cnp.ndarray _f32_block(object a, str name):
    if (not isinstance(a, np.ndarray) or a.dtype != np.float32
            or not cnp.PyArray_IS_C_CONTIGUOUS(a) or not cnp.PyArray_ISALIGNED(a)
            or not cnp.PyArray_ISNOTSWAPPED(a)):
        raise ValueError(f"{name} must be a C-contiguous float32 numpy array")
    return a


cdef bint _overlaps(cnp.ndarray a, cnp.ndarray b):
    """True when the C-contiguous a and b share any byte of memory."""
    cdef char *alo = <char *>cnp.PyArray_DATA(a)
    cdef char *blo = <char *>cnp.PyArray_DATA(b)
    cdef char *ahi = alo + cnp.PyArray_NBYTES(a)
    cdef char *bhi = blo + cnp.PyArray_NBYTES(b)
    return alo < ahi and blo < bhi and alo < bhi and blo < ahi


def ceiling_copy(src, dst, bint streaming):
    """dst[...] = src with ordinary or non-temporal stores."""
    cdef cnp.ndarray s = _f32_block(src, "src")
    cdef cnp.ndarray d = _f32_block(dst, "dst")
    if s.size != d.size or not cnp.PyArray_ISWRITEABLE(d) or _overlaps(s, d):
        raise ValueError("dst must be writeable, as large as src, and separate")
    with nogil:
        membench_copy_f32(_runtime, <float *>cnp.PyArray_DATA(s),
                          <float *>cnp.PyArray_DATA(d), cnp.PyArray_SIZE(s), streaming)


def ceiling_scale_inplace(x, float factor):
    """x *= factor: an in-place read-modify-write."""
    cdef cnp.ndarray a = _f32_block(x, "x")
    if not cnp.PyArray_ISWRITEABLE(a):
        raise ValueError("x is read-only")
    with nogil:
        membench_scale_inplace_f32(_runtime, <float *>cnp.PyArray_DATA(a), factor,
                                   cnp.PyArray_SIZE(a))


def ceiling_add(a, b, z, bint streaming):
    """z[...] = a + b: read two arrays, write one."""
    cdef cnp.ndarray aa = _f32_block(a, "a")
    cdef cnp.ndarray bb = _f32_block(b, "b")
    cdef cnp.ndarray zz = _f32_block(z, "z")
    if (aa.size != bb.size or aa.size != zz.size or not cnp.PyArray_ISWRITEABLE(zz)
            or _overlaps(aa, zz) or _overlaps(bb, zz)):
        raise ValueError("z must be writeable, as large as a and b, and separate")
    with nogil:
        membench_add_f32(_runtime, <float *>cnp.PyArray_DATA(aa), <float *>cnp.PyArray_DATA(bb),
                         <float *>cnp.PyArray_DATA(zz), cnp.PyArray_SIZE(aa), streaming)
