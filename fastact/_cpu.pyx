# cython: language_level=3
"""CPU glue for fastact: checks arguments, picks the kernel, calls it.

Everything is validated before any kernel runs, so a call that raises has
written nothing.  The kernels see C-contiguous, aligned, native-endian blocks;
anything else is copied first (inputs) or computed into a temporary and
copied back (outputs).  The argument rules and their messages are
fastact._checks's, the dtype facts fastact._dtypes's: what is here tests
arrays through numpy's C API, where a tiny call cannot afford Python.
"""
import operator
import os
import sys
import warnings

import numpy as np

cimport numpy as cnp
from cpython.pycapsule cimport PyCapsule_New
from libc.math cimport isfinite
from libc.stdlib cimport free, malloc
from libc.stdint cimport int64_t

cnp.import_array()

cdef extern from "ops.h" nogil:
    int FA_DT_F32, FA_DT_F64, FA_DT_F16, FA_DT_BF16
    int FA_OP_COUNT, FA_OP_FORWARD_COUNT

cdef extern from "parallel.h" nogil:
    int64_t FA_PARALLEL_MIN_BYTES

cdef extern from "runtime.h" nogil:
    ctypedef struct fa_runtime:
        pass
    const fa_runtime fa_runtime_api
    const char *FA_RUNTIME_CAPSULE

cdef extern from "fastact.h" nogil:
    int fa_prelu_forward(int dtype, const void *x, const void *slopes, void *y,
                         int64_t outer, int64_t channels, int64_t inner)
    int fa_prelu_backward(int dtype, const void *grad_output, const void *x,
                          const void *slopes, void *grad_input, double *grad_slopes,
                          int64_t outer, int64_t channels, int64_t inner)
    int fa_unary_forward(int dtype, int op, const double *params, const void *x,
                         void *y, int64_t n)
    int fa_unary_backward(int dtype, int op, const double *params,
                          const void *grad_output, const void *x, void *grad_input,
                          int64_t n)
    const char *fa_op_name(int op)
    int fa_affine_prelu_forward(int dtype, const void *x, const void *scale,
                                const void *shift, const void *slopes, void *y,
                                int64_t outer, int64_t channels, int64_t inner)

    void fa_init()
    int fa_have_openmp()
    void fa_set_num_threads(int n)
    int fa_get_num_threads()
    int fa_cpu_limit()
    int fa_forked_serial()
    int64_t fa_forked_serial_calls()
    int fa_wanted_threads()
    int64_t fa_streaming_threshold_bytes()
    void fa_set_streaming_threshold_bytes(int64_t nbytes)
    void fa_set_thread_backoff(int on)
    int fa_get_thread_backoff()
    void fa_force_thread_backoff(int64_t budget_ns)
    void fa_thread_stats(int64_t *stats)

    int FA_ISA_COUNT
    int fa_isa_supported(int isa)
    int fa_isa_best()
    int fa_set_isa(int isa)
    int fa_get_isa()
    const char *fa_isa_name(int isa)
    int FA_ISA_ENV_UNKNOWN, FA_ISA_ENV_UNSUPPORTED
    int fa_isa_environment(const char **value)

    size_t fa_advise_huge_pages(void *ptr, size_t nbytes)

# Releasing and retaking the GIL costs about 0.1 us: more than a small call's
# whole kernel.  Smaller calls keep it (numpy draws the same line).
cdef int64_t GIL_RELEASE_MIN = 8192

from . import _checks, _dtypes
from ._checks import finite as _finite, is_number as _is_number
from ._checks import slopes_array as _check_slopes_array
from ._dtypes import loaded_bfloat16
from ._layout import channel_plan, expand_slopes, prelu_plan, reduce_grad

# bfloat16 is ml_dtypes's, a numpy type number known only once ml_dtypes is
# imported (fastact never imports it just to recognise an array: an array of
# it implies the import).  -1 until then.
cdef int _BF16_NUM = -1


cdef int _bf16_num():
    global _BF16_NUM
    if _BF16_NUM < 0:
        d = loaded_bfloat16()
        if d is not None:
            _BF16_NUM = d.num
    return _BF16_NUM


# fastact._dtypes's table holds the kernels' dtype codes: it must agree with src/ops.h
if (tuple(d.code for d in _dtypes.TABLE) != (FA_DT_F32, FA_DT_F64, FA_DT_F16, FA_DT_BF16)
        or _dtypes.TABLE != tuple(sorted(_dtypes.TABLE, key=lambda d: d.code))):
    raise ImportError("fastact._dtypes.TABLE disagrees with the dtype codes of src/ops.h")
# per dtype code (FA_DT_*), from the table: the compute dtype that holds
# slopes and grad_slopes, and its numpy type number
_COMPUTE = tuple(_dtypes.compute_dtype(d) for d in _dtypes.TABLE)
cdef int[4] _COMPUTE_NUM = [c.num for c in _COMPUTE]

# the kernels' op codes, by name, read off src/ops.h's op list: OPS["elu"],
# and as constants OP_ELU, ... (ops with a forward first, then those with a
# backward only)
OPS = {fa_op_name(op).decode(): op for op in range(FA_OP_COUNT)}
FORWARD_OPS = frozenset(name for name, op in OPS.items() if op < FA_OP_FORWARD_COUNT)
globals().update({"OP_" + name.upper(): op for name, op in OPS.items()})
# the kernels' dtype codes (src/ops.h), shared with the GPU glue
DT_F32 = FA_DT_F32
DT_F64 = FA_DT_F64
DT_F16 = FA_DT_F16
DT_BF16 = FA_DT_BF16


# --- argument checks ------------------------------------------------------------
# The checks that read numpy's C API (dtype numbers, flags, byte bounds); the
# rules and their messages are fastact._checks's.

cdef inline tuple _shape(cnp.ndarray a):
    return (<object>a).shape


cdef inline bint _kernel_ready(cnp.ndarray a):
    """True when the kernels can read a as it is."""
    return (cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISALIGNED(a)
            and cnp.PyArray_ISNOTSWAPPED(a))


cdef int _dtype_code(cnp.ndarray a, str name) except -1:
    """The kernels' dtype code (FA_DT_*) of a; TypeError when unsupported."""
    cdef int t = cnp.PyArray_TYPE(a)
    if t == cnp.NPY_FLOAT32:
        return FA_DT_F32
    if t == cnp.NPY_FLOAT64:
        return FA_DT_F64
    if t == cnp.NPY_FLOAT16:
        return FA_DT_F16
    if t == _bf16_num():
        return FA_DT_BF16
    raise _dtypes.unsupported(name, a.dtype)


cdef inline object _native_dtype(cnp.ndarray a):
    return _dtypes.numpy_dtype(_dtypes.TABLE[_dtype_code(a, "array")])


cdef cnp.ndarray _fresh_copy(cnp.ndarray a):
    """A new C-contiguous, aligned, native-endian copy of a."""
    return np.array(a, dtype=_native_dtype(a), order="C", copy=True)


cdef (char *, char *) _byte_bounds(cnp.ndarray a):
    cdef char *lo = <char *>cnp.PyArray_DATA(a)
    cdef char *hi = lo
    cdef int d
    cdef cnp.npy_intp extent
    for d in range(cnp.PyArray_NDIM(a)):
        if cnp.PyArray_DIMS(a)[d] == 0:
            return lo, lo
        extent = (cnp.PyArray_DIMS(a)[d] - 1) * cnp.PyArray_STRIDES(a)[d]
        if extent < 0:
            lo += extent
        else:
            hi += extent
    return lo, hi + cnp.PyArray_ITEMSIZE(a)


cdef bint _same_view(cnp.ndarray a, cnp.ndarray b):
    """The same elements in the same places: writing b while reading a is in place."""
    cdef int d
    if cnp.PyArray_DATA(a) != cnp.PyArray_DATA(b) or cnp.PyArray_NDIM(a) != cnp.PyArray_NDIM(b):
        return False
    for d in range(cnp.PyArray_NDIM(a)):
        if cnp.PyArray_DIMS(a)[d] != cnp.PyArray_DIMS(b)[d]:
            return False
        if cnp.PyArray_DIMS(a)[d] > 1 and cnp.PyArray_STRIDES(a)[d] != cnp.PyArray_STRIDES(b)[d]:
            return False
    return True


cdef bint _overlaps(cnp.ndarray a, cnp.ndarray b):
    """True when a and b share any byte of memory."""
    cdef char *alo
    cdef char *ahi
    cdef char *blo
    cdef char *bhi
    alo, ahi = _byte_bounds(a)
    blo, bhi = _byte_bounds(b)
    if alo >= ahi or blo >= bhi or ahi <= blo or bhi <= alo:
        return False
    if cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_IS_C_CONTIGUOUS(b):
        return True
    return np.shares_memory(a, b)


cdef int _check_output(object out, cnp.ndarray like, str name, str like_name) except -1:
    """out must be a writeable array with like's shape and dtype."""
    if not isinstance(out, cnp.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    cdef cnp.ndarray o = out
    _check_like(o, like, name, like_name)
    if not cnp.PyArray_ISWRITEABLE(o):
        raise _checks.read_only(name, False)
    return 0


cdef inline bint _same_shape(cnp.ndarray a, cnp.ndarray b):
    """a.shape == b.shape, without making the tuples."""
    cdef int d, ndim = cnp.PyArray_NDIM(a)
    if ndim != cnp.PyArray_NDIM(b):
        return False
    for d in range(ndim):
        if cnp.PyArray_DIMS(a)[d] != cnp.PyArray_DIMS(b)[d]:
            return False
    return True


cdef inline int _check_like(cnp.ndarray a, cnp.ndarray like, str name,
                            str like_name) except -1:
    """a has like's dtype (in any byte order) and shape."""
    if cnp.PyArray_TYPE(a) != cnp.PyArray_TYPE(like):
        raise _checks.mismatch(name, "dtype", a.dtype, like.dtype, like_name)
    if not _same_shape(a, like):
        raise _checks.mismatch(name, "shape", _shape(a), _shape(like), like_name)
    return 0


cdef int _check_no_partial_overlap(cnp.ndarray written, cnp.ndarray read,
                                   str wname, str rname) except -1:
    if _overlaps(written, read) and not _same_view(written, read):
        raise _checks.partial_overlap(wname, rname)
    return 0


cdef cnp.ndarray _destination(object out, bint inplace, cnp.ndarray target,
                              str target_name, cnp.ndarray x):
    """Where the result goes, checked: `target` itself when in place, `out`,
    or None for a new array.  `out` must match x and not overlap it partially."""
    if inplace:
        if out is not None:
            raise _checks.both_out_and_inplace()
        if not cnp.PyArray_ISWRITEABLE(target):
            raise _checks.read_only(target_name, True)
        _check_distinct_elements(target, target_name, True)
        return target
    if out is None:
        return None
    _check_output(out, x, "out", "x")
    _check_distinct_elements(out, "out", False)
    _check_no_partial_overlap(out, x, "out", "x")
    return out


cdef inline int _check_distinct_elements(cnp.ndarray a, str name, bint inplace) except -1:
    """A destination's elements each have memory of their own (contiguous
    arrays do: the test is for other layouts only)."""
    if cnp.PyArray_IS_C_CONTIGUOUS(a) or cnp.PyArray_IS_F_CONTIGUOUS(a):
        return 0
    cdef object view = a
    if _checks.overlaps_itself(view.shape, view.strides, view.itemsize):
        raise _checks.self_overlap(name, inplace)
    return 0


cdef cnp.ndarray _slopes_values(object slopes, cnp.ndarray x, int code,
                                int channel_axis, int64_t *layout, bint *simple,
                                double *number_slot):
    """slopes checked against x, as a contiguous vector of the compute dtype
    (native byte order) with one value per channel of x's (outer, channels,
    inner) layout, which it writes to layout[0..2] (see fastact._layout).
    simple: the vector is the slopes themselves (shared or 1-D per channel),
    so grad_slopes needs no reduction over broadcast dims.  For a number,
    returns None and writes its value, in the compute dtype, to number_slot
    (see _slopes_pointer): no array is made."""
    cdef cnp.ndarray arr
    cdef cnp.npy_intp n
    cdef int axis, ndim = cnp.PyArray_NDIM(x)
    cdef int ct = _COMPUTE_NUM[code]
    cdef double v
    cdef bint number = False
    simple[0] = True
    # fast path, the common case: a 1-D array of the compute dtype, ready
    # for the kernels, shared or one value per channel
    if type(slopes) is cnp.ndarray:
        arr = _kernel_vector(slopes, ct)
        if arr is not None and (channel_axis == 1 or channel_axis == -1):
            n = cnp.PyArray_DIMS(arr)[0]
            axis = 1 if channel_axis == 1 else ndim - 1
            if n == 1 or (ndim >= 2 and n == cnp.PyArray_DIMS(x)[axis]):
                _simple_layout(x, n != 1, axis, layout)
                return arr
    elif type(slopes) is float and isfinite(<double>slopes):    # the common case, quickly
        v = <double>slopes
        number = True
    elif _is_number(slopes):
        v = _finite(slopes, "slopes")
        number = True
    if number:
        if ct == cnp.NPY_FLOAT32:
            (<float *>number_slot)[0] = <float>v
        else:
            number_slot[0] = v
        _simple_layout(x, False, 1, layout)
        return None
    arr = slopes if isinstance(slopes, cnp.ndarray) else np.asarray(slopes)
    _check_slopes_array(arr)
    plan = prelu_plan(_shape(x), _shape(arr), channel_axis)
    layout[0], layout[1], layout[2] = plan.outer, plan.channels, plan.inner
    simple[0] = len(plan.span) <= 1 and plan.span_slopes == plan.span
    return expand_slopes(np.asarray(arr, dtype=_COMPUTE[code]), plan)


cdef inline object _kernel_vector(object v, int ct):
    """v itself where the kernels can read it as it is (the common case): a
    1-D, kernel-ready numpy array of the compute dtype ct with finite
    values; None otherwise (its length is the caller's to check)."""
    cdef cnp.ndarray arr
    if type(v) is cnp.ndarray:
        arr = <cnp.ndarray>v
        if (cnp.PyArray_TYPE(arr) == ct and cnp.PyArray_NDIM(arr) == 1 and _kernel_ready(arr)
                and _all_finite(arr)):
            return arr
    return None


cdef inline void *_slopes_pointer(cnp.ndarray values, double *number_slot):
    """Where the kernels read _slopes_values's result."""
    return <void *>number_slot if values is None else cnp.PyArray_DATA(values)


cdef bint _all_finite(cnp.ndarray v):
    """v: a contiguous float32 or float64 vector (the fast path's slopes)."""
    cdef cnp.npy_intp i, n = cnp.PyArray_SIZE(v)
    cdef const float *f = <const float *>cnp.PyArray_DATA(v)
    cdef const double *d = <const double *>cnp.PyArray_DATA(v)
    if cnp.PyArray_TYPE(v) == cnp.NPY_FLOAT32:
        for i in range(n):
            if not isfinite(f[i]):
                return False
    else:
        for i in range(n):
            if not isfinite(d[i]):
                return False
    return True


cdef inline void _simple_layout(cnp.ndarray x, bint per_channel, int axis,
                                int64_t *layout):
    """x as (outer, channels, inner): one slope for all, or one per index of
    axis."""
    cdef int d
    if not per_channel:
        layout[0] = 1
        layout[1] = 1
        layout[2] = cnp.PyArray_SIZE(x)
        return
    layout[0] = 1
    layout[2] = 1
    for d in range(axis):
        layout[0] *= cnp.PyArray_DIMS(x)[d]
    layout[1] = cnp.PyArray_DIMS(x)[axis]
    for d in range(axis + 1, cnp.PyArray_NDIM(x)):
        layout[2] *= cnp.PyArray_DIMS(x)[d]


cdef inline int _check_channel_axis(int channel_axis) except -1:
    """fastact._api checks channel_axis; callers that bypass it still get its rule."""
    if channel_axis != 1 and channel_axis != -1:
        _checks.channel_axis(channel_axis)
    return 0


cdef cnp.ndarray _new_grad_slopes(object slopes, int code):
    """A new array for grad_slopes: the shape of slopes (0-d for a number),
    the compute dtype."""
    cdef cnp.ndarray arr
    if isinstance(slopes, cnp.ndarray):
        arr = <cnp.ndarray>slopes
        return cnp.PyArray_EMPTY(cnp.PyArray_NDIM(arr), cnp.PyArray_DIMS(arr),
                                 _COMPUTE_NUM[code], 0)
    if _is_number(slopes):
        return cnp.PyArray_EMPTY(0, NULL, _COMPUTE_NUM[code], 0)
    return np.empty(np.shape(slopes), dtype=_COMPUTE[code])


# --- shared by every op --------------------------------------------------------

cdef cnp.ndarray _forward_target(cnp.ndarray x, cnp.ndarray dest, bint *in_copy):
    """The array the kernel writes for a forward into dest (None: a new
    array).  Inputs unfit for the kernels are copied, and the result is
    computed in place in the copy (in_copy: the kernel reads the target,
    not x); unfit outputs get such a copy too."""
    in_copy[0] = False
    if _kernel_ready(x):
        if dest is None:
            return cnp.PyArray_EMPTY(cnp.PyArray_NDIM(x), cnp.PyArray_DIMS(x),
                                     cnp.PyArray_TYPE(x), 0)
        if _kernel_ready(dest):
            return dest
    in_copy[0] = True
    return _fresh_copy(x)


cdef int _check_grad_output(cnp.ndarray grad_output, cnp.ndarray x) except -1:
    _dtype_code(grad_output, "grad_output")
    return _check_like(grad_output, x, "grad_output", "x")


cdef inline cnp.ndarray _backward_x(cnp.ndarray x):
    """x as the backward kernels read it (a copy when unfit for them)."""
    return x if _kernel_ready(x) else _fresh_copy(x)


cdef cnp.ndarray _backward_target(cnp.ndarray grad_output, cnp.ndarray xsrc,
                                  cnp.ndarray dest, bint *in_copy):
    """The array the kernel writes for a backward into dest (None: a new
    array; it may be grad_output itself), reading xsrc (_backward_x).
    in_copy: the target is a copy of grad_output, which the kernel reads in
    its place."""
    in_copy[0] = False
    if _kernel_ready(grad_output):
        if dest is None:
            return cnp.PyArray_EMPTY(cnp.PyArray_NDIM(xsrc), cnp.PyArray_DIMS(xsrc),
                                     cnp.PyArray_TYPE(xsrc), 0)
        if _kernel_ready(dest) and not _overlaps(dest, xsrc):
            return dest
    # grad_output unfit for the kernels (compute in place in its copy), or
    # dest is x itself or unfit for them: go through a copy
    in_copy[0] = True
    return _fresh_copy(grad_output)


cdef int _raise_for_status(int status, str kernel) except -1:
    """A kernel's non-zero return code (src/fastact.h) as its exception.
    The kernels write nothing when they fail."""
    if status == -1:
        raise MemoryError(f"fastact: {kernel} cannot allocate its workspace")
    if status == -2:
        # the checks above let through only the dtypes and ops of src/ops.h:
        # the extension was built against another op or dtype list
        raise RuntimeError(f"fastact: {kernel} does not know this dtype or op; "
                           f"fastact._cpu and its kernels were built apart")
    raise RuntimeError(f"fastact: {kernel} failed with code {status}")


cdef inline object _finish(cnp.ndarray dest, cnp.ndarray target):
    if target is not dest and dest is not None:
        np.copyto(dest, target)
    _check_forked_serial()
    return target if dest is None else dest


# --- PReLU --------------------------------------------------------------------

def prelu_forward(cnp.ndarray x, object slopes, object out, bint inplace,
                  int channel_axis=1):
    """See fastact.prelu (channel_axis checked there)."""
    cdef int code = _dtype_code(x, "x")
    _check_channel_axis(channel_axis)
    cdef int64_t[3] layout
    cdef bint simple, in_copy
    cdef double number_slot
    cdef cnp.ndarray values = _slopes_values(slopes, x, code, channel_axis, layout, &simple,
                                             &number_slot)
    cdef cnp.ndarray dest = _destination(out, inplace, x, "x", x)

    # checks done: from here on, memory is written
    cdef cnp.ndarray target = _forward_target(x, dest, &in_copy)
    if values is not None and dest is not None and _overlaps(values, target):
        values = values.copy()            # slopes inside the output: read them first
    cdef void *xp = cnp.PyArray_DATA(target if in_copy else x)
    cdef void *sp = _slopes_pointer(values, &number_slot)
    cdef void *yp = cnp.PyArray_DATA(target)
    cdef int status
    if cnp.PyArray_SIZE(x) < GIL_RELEASE_MIN:
        status = fa_prelu_forward(code, xp, sp, yp, layout[0], layout[1], layout[2])
    else:
        with nogil:
            status = fa_prelu_forward(code, xp, sp, yp, layout[0], layout[1], layout[2])
    if status != 0:
        _raise_for_status(status, "prelu_forward")
    return _finish(dest, target)


cdef void _round_sums(const double *sums, const void *slopes, void *grad, int code,
                      int64_t n, bint divide_by_slopes) noexcept:
    """grad = sums (or sums / slopes, in float64) rounded once to the dtype
    of grad_slopes (float32, or float64 for float64 x)."""
    cdef int64_t c
    cdef double v
    cdef bint f64 = code == FA_DT_F64
    for c in range(n):
        v = sums[c]
        if divide_by_slopes:
            v = v / (<const double *>slopes)[c] if f64 else v / (<const float *>slopes)[c]
        if f64:
            (<double *>grad)[c] = v
        else:
            (<float *>grad)[c] = <float>v


def prelu_backward(cnp.ndarray grad_output, cnp.ndarray x, object slopes,
                   object out, bint inplace, bint divide_by_slopes=False,
                   int channel_axis=1):
    """See fastact.prelu_backward (channel_axis checked there).  divide_by_slopes:
    x is the output of an in-place forward with slopes > 0; the slope gradient
    is divided by them."""
    return _prelu_backward(grad_output, x, slopes, out, inplace, divide_by_slopes,
                           channel_axis)


cdef tuple _prelu_backward(cnp.ndarray grad_output, cnp.ndarray x, object slopes,
                           object out, bint inplace, bint divide_by_slopes,
                           int channel_axis):
    cdef int code = _dtype_code(x, "x")
    _check_grad_output(grad_output, x)
    _check_channel_axis(channel_axis)
    cdef int64_t[3] layout
    cdef bint simple, in_copy
    cdef double number_slot
    cdef cnp.ndarray values = _slopes_values(slopes, x, code, channel_axis, layout, &simple,
                                             &number_slot)
    cdef cnp.ndarray dest = _destination(out, inplace, grad_output, "grad_output", x)
    if out is not None:
        _check_no_partial_overlap(dest, grad_output, "out", "grad_output")

    # checks done: from here on, memory is written
    cdef cnp.ndarray xsrc = _backward_x(x)
    cdef cnp.ndarray target = _backward_target(grad_output, xsrc, dest, &in_copy)
    if values is not None and dest is not None and _overlaps(values, target):
        values = values.copy()            # slopes inside the output: read them first
    cdef cnp.ndarray grad_slopes = None
    cdef cnp.ndarray sums = None
    cdef double[64] stack_sums
    cdef double *sums_p = stack_sums
    cdef cnp.npy_intp nsums = layout[1]
    if simple:
        # sums rounded straight into grad_slopes: no array for them
        grad_slopes = _new_grad_slopes(slopes, code)
        if nsums > 64:
            sums_p = <double *>malloc(<size_t>nsums * sizeof(double))
            if sums_p == NULL:
                raise MemoryError("fastact: prelu_backward cannot allocate its sums")
    else:
        sums = cnp.PyArray_EMPTY(1, &nsums, cnp.NPY_FLOAT64, 0)
        sums_p = <double *>cnp.PyArray_DATA(sums)
    cdef void *gp = cnp.PyArray_DATA(target if in_copy else grad_output)
    cdef void *xp = cnp.PyArray_DATA(xsrc)
    cdef void *sp = _slopes_pointer(values, &number_slot)
    cdef void *gip = cnp.PyArray_DATA(target)
    cdef int status
    try:
        if cnp.PyArray_SIZE(x) < GIL_RELEASE_MIN:
            status = fa_prelu_backward(code, gp, xp, sp, gip, sums_p,
                                       layout[0], layout[1], layout[2])
        else:
            with nogil:
                status = fa_prelu_backward(code, gp, xp, sp, gip, sums_p,
                                           layout[0], layout[1], layout[2])
        if status != 0:
            _raise_for_status(status, "prelu_backward")
        if simple:
            _round_sums(sums_p, sp, cnp.PyArray_DATA(grad_slopes), code, nsums,
                        divide_by_slopes)
    finally:
        if simple and sums_p != stack_sums:
            free(sums_p)
    if not simple:
        if divide_by_slopes:
            sums = sums / values
        grad_slopes = reduce_grad(sums, prelu_plan(_shape(x), np.shape(slopes),
                                                   channel_axis)).astype(_COMPUTE[code])
    return _finish(dest, target), grad_slopes


# --- fastact.prelu_backward itself -----------------------------------------------
# fastact._api documents prelu_backward and handles what it is given in general
# (other libraries' arrays, array-likes, a stream, a channel_axis to check).
# The function users call is public_prelu_backward, which takes the common
# case, numpy arrays and no stream, here: on a (1, 16, 8, 8) array the Python
# function's frame (its keyword defaults, its lookups) was a fifth of the call.

cdef object _prelu_backward_general = None


def public_prelu_backward(grad_output, x, slopes, *, channel_axis=1, out=None,
                          inplace=False, stream=None):
    if (type(x) is cnp.ndarray and type(grad_output) is cnp.ndarray and stream is None
            and type(channel_axis) is int and (channel_axis == 1 or channel_axis == -1)):
        return _prelu_backward(grad_output, x, slopes, out, inplace, False, channel_axis)
    return _prelu_backward_general(grad_output, x, slopes, channel_axis, out, inplace,
                                   stream)


def adopt_prelu_backward(documented, general):
    """public_prelu_backward as fastact._api's `documented` prelu_backward
    (its name, module and docstring), with `general` for what it leaves."""
    global _prelu_backward_general
    _prelu_backward_general = general
    for attribute in ("__name__", "__qualname__", "__module__", "__doc__"):
        setattr(public_prelu_backward, attribute, getattr(documented, attribute))
    return public_prelu_backward


# --- affine_prelu: prelu(x * scale + shift, slopes) per channel ----------------------

cdef inline object _channel_vector(object v, int ct, cnp.npy_intp channels):
    """_kernel_vector with `channels` values."""
    arr = _kernel_vector(v, ct)
    if arr is not None and cnp.PyArray_DIMS(<cnp.ndarray>arr)[0] == channels:
        return arr
    return None


def affine_prelu_forward(cnp.ndarray x, object scale, object shift, object slopes,
                         object out, bint inplace, int channel_axis=1):
    """See fastact.affine_prelu (channel_axis checked there)."""
    cdef int code = _dtype_code(x, "x")
    _check_channel_axis(channel_axis)
    cdef int ndim = cnp.PyArray_NDIM(x)
    cdef int axis = 1 if channel_axis == 1 else ndim - 1
    cdef int64_t[3] layout
    cdef int64_t outer, channels, inner
    cdef list vecs = None
    cdef int k
    if ndim >= 2:
        # fast path: three per-channel vectors the kernels read as they are
        vecs = [_channel_vector(v, _COMPUTE_NUM[code], cnp.PyArray_DIMS(x)[axis])
                for v in (scale, shift, slopes)]
        if vecs[0] is None or vecs[1] is None or vecs[2] is None:
            vecs = None
        else:
            _simple_layout(x, True, axis, layout)
            outer, channels, inner = layout[0], layout[1], layout[2]
    if vecs is None:
        given = [(_checks.channel_values(v, name), name)
                 for v, name in ((scale, "scale"), (shift, "shift"), (slopes, "slopes"))]
        outer, channels, inner = channel_plan(
            _shape(x), [(name, v.size) for v, name in given], channel_axis)
    cdef cnp.ndarray dest = _destination(out, inplace, x, "x", x)

    # checks done: from here on, memory is written
    cdef bint fresh = vecs is None
    if fresh:
        # new vectors of `channels` values in the compute dtype: none
        # overlaps the output
        compute = _COMPUTE[code]
        vecs = [np.array(np.broadcast_to(v.astype(compute), (channels,)), order="C")
                for v, _ in given]
    cdef bint in_copy
    cdef cnp.ndarray target = _forward_target(x, dest, &in_copy)
    if not fresh and dest is not None:
        for k in range(3):
            if _overlaps(vecs[k], target):
                vecs[k] = vecs[k].copy()  # inside the output: read them first
    cdef void *xp = cnp.PyArray_DATA(target if in_copy else x)
    cdef void *scp = cnp.PyArray_DATA(<cnp.ndarray>vecs[0])
    cdef void *shp = cnp.PyArray_DATA(<cnp.ndarray>vecs[1])
    cdef void *slp = cnp.PyArray_DATA(<cnp.ndarray>vecs[2])
    cdef void *yp = cnp.PyArray_DATA(<cnp.ndarray>target)
    cdef int status
    if cnp.PyArray_SIZE(x) < GIL_RELEASE_MIN:
        status = fa_affine_prelu_forward(code, xp, scp, shp, slp, yp, outer, channels, inner)
    else:
        with nogil:
            status = fa_affine_prelu_forward(code, xp, scp, shp, slp, yp, outer, channels,
                                             inner)
    if status != 0:
        _raise_for_status(status, "affine_prelu_forward")
    return _finish(dest, target)


# --- the family: elementwise ops ---------------------------------------------------

cdef int _check_op(int op, tuple params, double *p, bint backward) except -1:
    if op < 0 or op >= FA_OP_COUNT or (op >= FA_OP_FORWARD_COUNT and not backward):
        raise ValueError(f"unknown op code {op}")
    if len(params) != 3:
        raise ValueError(f"params must hold 3 values, got {len(params)}")
    p[0], p[1], p[2] = params
    return 0


def unary_forward(int op, tuple params, cnp.ndarray x, object out, bint inplace):
    """y = op(x; params) (see src/ops.h); into out, x itself or a new array."""
    cdef double[3] p
    _check_op(op, params, p, False)
    cdef int code = _dtype_code(x, "x")
    cdef cnp.ndarray dest = _destination(out, inplace, x, "x", x)

    # checks done: from here on, memory is written
    cdef bint in_copy
    cdef cnp.ndarray target = _forward_target(x, dest, &in_copy)
    cdef void *xp = cnp.PyArray_DATA(target if in_copy else x)
    cdef void *yp = cnp.PyArray_DATA(target)
    cdef int64_t n = cnp.PyArray_SIZE(x)
    cdef int status
    if n < GIL_RELEASE_MIN:
        status = fa_unary_forward(code, op, p, xp, yp, n)
    else:
        with nogil:
            status = fa_unary_forward(code, op, p, xp, yp, n)
    if status != 0:
        _raise_for_status(status, "unary_forward")
    return _finish(dest, target)


def unary_backward(int op, tuple params, cnp.ndarray grad_output, cnp.ndarray x,
                   object out, bint inplace):
    """grad_input = grad_output * op'(x; params) (see src/ops.h); into out,
    grad_output itself or a new array."""
    cdef double[3] p
    _check_op(op, params, p, True)
    cdef int code = _dtype_code(x, "x")
    _check_grad_output(grad_output, x)
    cdef cnp.ndarray dest = _destination(out, inplace, grad_output, "grad_output", x)
    if out is not None:
        _check_no_partial_overlap(dest, grad_output, "out", "grad_output")

    # checks done: from here on, memory is written
    cdef bint in_copy
    cdef cnp.ndarray xsrc = _backward_x(x)
    cdef cnp.ndarray target = _backward_target(grad_output, xsrc, dest, &in_copy)
    cdef void *gp = cnp.PyArray_DATA(target if in_copy else grad_output)
    cdef void *xp = cnp.PyArray_DATA(xsrc)
    cdef void *gip = cnp.PyArray_DATA(target)
    cdef int64_t n = cnp.PyArray_SIZE(x)
    cdef int status
    if n < GIL_RELEASE_MIN:
        status = fa_unary_backward(code, op, p, gp, xp, gip, n)
    else:
        with nogil:
            status = fa_unary_backward(code, op, p, gp, xp, gip, n)
    if status != 0:
        _raise_for_status(status, "unary_backward")
    return _finish(dest, target)


# --- raw memory: for fastact.torch ------------------------------------------------
# The kernels on memory another library owns (torch tensors), given as
# addresses.  The caller has checked everything: dtype codes, that every block
# is C-contiguous, aligned, of the sizes given, and that outputs overlap no
# input other than in place.  No numpy object is made: a small call costs a
# few hundred nanoseconds here.

def raw_prelu_forward(int code, size_t x, size_t slopes, size_t y, int64_t outer,
                      int64_t channels, int64_t inner):
    """prelu's forward over (outer, channels, inner) blocks; slopes: `channels`
    values of the compute dtype (float64 for float64, else float32)."""
    cdef int status
    if outer * channels * inner < GIL_RELEASE_MIN:
        status = fa_prelu_forward(code, <const void *>x, <const void *>slopes, <void *>y,
                                  outer, channels, inner)
    else:
        with nogil:
            status = fa_prelu_forward(code, <const void *>x, <const void *>slopes,
                                      <void *>y, outer, channels, inner)
    if status != 0:
        _raise_for_status(status, "prelu_forward")
    _check_forked_serial()


def raw_prelu_backward(int code, size_t grad_output, size_t x, size_t slopes,
                       size_t grad_input, size_t grad_slopes, bint grad_slopes_f64,
                       int64_t outer, int64_t channels, int64_t inner):
    """prelu's fused backward; grad_slopes receives the `channels` float64 sums
    rounded once to float64 (grad_slopes_f64) or float32 (0: not wanted)."""
    cdef double[64] stack_sums
    cdef double *sums = stack_sums
    cdef int64_t c
    cdef int status
    if channels > 64:
        sums = <double *>malloc(<size_t>channels * sizeof(double))
        if sums == NULL:
            raise MemoryError("fastact: prelu_backward cannot allocate its sums")
    try:
        if outer * channels * inner < GIL_RELEASE_MIN:
            status = fa_prelu_backward(code, <const void *>grad_output, <const void *>x,
                                       <const void *>slopes, <void *>grad_input, sums,
                                       outer, channels, inner)
        else:
            with nogil:
                status = fa_prelu_backward(code, <const void *>grad_output,
                                           <const void *>x, <const void *>slopes,
                                           <void *>grad_input, sums, outer, channels, inner)
        if status != 0:
            _raise_for_status(status, "prelu_backward")
        if grad_slopes == 0:
            pass                          # only grad_input wanted
        elif grad_slopes_f64:
            for c in range(channels):
                (<double *>grad_slopes)[c] = sums[c]
        else:
            for c in range(channels):
                (<float *>grad_slopes)[c] = <float>sums[c]
    finally:
        if sums != stack_sums:
            free(sums)
    _check_forked_serial()


def raw_affine_prelu_forward(int code, size_t x, size_t scale, size_t shift,
                             size_t slopes, size_t y, int64_t outer, int64_t channels,
                             int64_t inner):
    """affine_prelu's forward over (outer, channels, inner) blocks; scale,
    shift and slopes: `channels` values each, of the compute dtype."""
    cdef int status
    if outer * channels * inner < GIL_RELEASE_MIN:
        status = fa_affine_prelu_forward(code, <const void *>x, <const void *>scale,
                                         <const void *>shift, <const void *>slopes,
                                         <void *>y, outer, channels, inner)
    else:
        with nogil:
            status = fa_affine_prelu_forward(code, <const void *>x, <const void *>scale,
                                             <const void *>shift, <const void *>slopes,
                                             <void *>y, outer, channels, inner)
    if status != 0:
        _raise_for_status(status, "affine_prelu_forward")
    _check_forked_serial()


def raw_unary_forward(int code, int op, double p0, double p1, double p2, size_t x,
                      size_t y, int64_t n):
    """y = op(x; p0, p1, p2) over n contiguous elements (y may be x)."""
    cdef double[3] p = [p0, p1, p2]
    cdef int status
    if n < GIL_RELEASE_MIN:
        status = fa_unary_forward(code, op, p, <const void *>x, <void *>y, n)
    else:
        with nogil:
            status = fa_unary_forward(code, op, p, <const void *>x, <void *>y, n)
    if status != 0:
        _raise_for_status(status, "unary_forward")
    _check_forked_serial()


def raw_unary_backward(int code, int op, double p0, double p1, double p2,
                       size_t grad_output, size_t x, size_t grad_input, int64_t n):
    """grad_input = grad_output * op'(x; p0, p1, p2) over n contiguous elements
    (grad_input may be grad_output)."""
    cdef double[3] p = [p0, p1, p2]
    cdef int status
    if n < GIL_RELEASE_MIN:
        status = fa_unary_backward(code, op, p, <const void *>grad_output,
                                   <const void *>x, <void *>grad_input, n)
    else:
        with nogil:
            status = fa_unary_backward(code, op, p, <const void *>grad_output,
                                       <const void *>x, <void *>grad_input, n)
    if status != 0:
        _raise_for_status(status, "unary_backward")
    _check_forked_serial()


def raw_advise_huge_pages(size_t ptr, size_t nbytes):
    """Ask for transparent huge pages on the 2 MiB-aligned part of a fresh
    block (Linux; a hint): returns the bytes advised, 0 where none were."""
    return fa_advise_huge_pages(<void *>ptr, nbytes)


# --- threads and ISA ------------------------------------------------------------

class ForkedSerialWarning(RuntimeWarning):
    """Issued once per process, at the first call that would have run a
    thread team in a process forked after its parent ran one (gunicorn
    --preload with a warm-up call in the master, a fork-method process pool
    started after a large call): fastact runs serially there."""


cdef bint _forked_warned = False


def _reset_forked_warned():
    global _forked_warned
    _forked_warned = False


cdef inline int _check_forked_serial() except -1:
    if not _forked_warned and fa_forked_serial_calls() != 0:
        _warn_forked_serial()
    return 0


cdef int _warn_forked_serial() except -1:
    global _forked_warned
    _forked_warned = True
    # point at the first caller outside fastact
    cdef int level = 1
    f = sys._getframe(0)
    while f is not None and f.f_globals.get("__name__", "").startswith("fastact"):
        f = f.f_back
        level += 1
    warnings.warn(
        f"fastact runs serially in this process (pid {os.getpid()}): it was forked after "
        f"its parent ran a fastact thread team (gunicorn --preload with a warm-up call in "
        f"the master, a fork-method pool started after a large call), and OpenMP cannot "
        f"start threads in such a child. Large calls would use {_wanted_threads()} threads "
        f"here otherwise. To keep threads in forked workers, make no multi-threaded fastact call "
        f"in the parent before forking (warm up under fastact.set_num_threads(1), or in "
        f"the workers), or start them with 'spawn'. Issued once per process.",
        ForkedSerialWarning, stacklevel=level)
    return 0


def _wanted_threads():
    """The threads a large call would use here without the fork's switch."""
    cdef int n = fa_wanted_threads()
    return n


os.register_at_fork(after_in_child=_reset_forked_warned)


def set_num_threads(n):
    """See fastact.set_num_threads."""
    global _forked_warned
    if n is None:
        fa_set_num_threads(0)
        return
    if isinstance(n, (bool, np.bool_)) or not hasattr(n, "__index__"):
        raise TypeError(f"n must be a positive int or None, got {type(n).__name__}")
    n = operator.index(n)
    if n < 1:
        raise ValueError(f"n must be a positive int or None, got {n}")
    fa_set_num_threads(min(n, 1 << 16))
    if n > 1 and not fa_have_openmp():
        warnings.warn(f"set_num_threads({n}) has no effect: this fastact was built without "
                      f"OpenMP, so every call runs on one thread", RuntimeWarning, stacklevel=3)
    elif n > 1 and fa_forked_serial():
        _forked_warned = True             # said here: no second warning at the next call
        warnings.warn(
            f"set_num_threads({n}) has no effect in this process: it was forked after its "
            f"parent ran a fastact thread team, and OpenMP cannot start threads in such a "
            f"child, so fastact runs serially here. To keep threads in forked workers, make "
            f"no multi-threaded fastact call in the parent before forking (or start workers "
            f"with the 'spawn' or 'forkserver' method)", RuntimeWarning, stacklevel=3)


def get_num_threads():
    """See fastact.get_num_threads."""
    return fa_get_num_threads()


ISA_NAMES = tuple(fa_isa_name(i).decode() for i in range(FA_ISA_COUNT))


def _isa_problem(name):
    """Why ISA `name` cannot be used here, or None when it can."""
    if name not in ISA_NAMES:
        return _unknown_isa()
    if not fa_isa_supported(ISA_NAMES.index(name)):
        return _unsupported_isa()
    return None


def _unknown_isa():
    return f"unknown (expected one of {', '.join(ISA_NAMES)})"


def _unsupported_isa():
    return f"not supported by this CPU or build (supported: {', '.join(supported_isas())})"


def set_isa(name):
    """Use the kernels compiled for ISA `name` (one of ISA_NAMES) from now on.
    ValueError when this CPU or build does not support it."""
    problem = _isa_problem(name)
    if problem is not None or fa_set_isa(ISA_NAMES.index(name)) != 0:
        raise ValueError(f"ISA {name!r} is {problem or 'not supported here'}")


def set_streaming_threshold(nbytes):
    """Outputs of at least nbytes bytes get streaming stores (None: the
    default set at import, see fa_init).  For tests and benchmarks."""
    fa_set_streaming_threshold_bytes(_DEFAULT_STREAMING if nbytes is None else nbytes)


# calls moving fewer bytes run on the calling thread, whatever the thread count
PARALLEL_MIN_BYTES = FA_PARALLEL_MIN_BYTES


def set_thread_backoff(bint on):
    """On (the default): while a thread team costs more than it saves (a busy
    machine), large calls run serially for a while, then try the team again.
    Off: every large call runs its full team (the back-off's state is kept
    for when it is on again).  For tests and benchmarks."""
    fa_set_thread_backoff(on)


def get_thread_backoff():
    return bool(fa_get_thread_backoff())


def force_thread_backoff(double seconds):
    """Run the next calls that would take a team serially, for `seconds` of
    their time, as after a team call that cost more than it saved (0: try
    the team at the next call).  For tests."""
    fa_force_thread_backoff(<int64_t>(seconds * 1e9))


def thread_stats():
    """Counts since import: team calls, team calls that cost more than they
    saved, calls the back-off ran serially; and the back-off's state: serial
    time left before the next team try (seconds), times its wait doubled."""
    cdef int64_t s[5]
    fa_thread_stats(s)
    return {"team_calls": s[0], "bad_team_calls": s[1], "backoff_serial_calls": s[2],
            "backoff_left_s": max(s[3], 0) / 1e9, "backoff_doublings": s[4]}


def get_isa():
    return ISA_NAMES[fa_get_isa()]


def supported_isas():
    return tuple(n for i, n in enumerate(ISA_NAMES) if fa_isa_supported(i))


def config():
    """The facts show_config prints, as a dict."""
    return {
        "openmp": bool(fa_have_openmp()),
        "num_threads": fa_get_num_threads(),
        "cpu_limit": fa_cpu_limit(),
        "forked_serial": bool(fa_forked_serial()),
        "thread_backoff": bool(fa_get_thread_backoff()),
        "isa": get_isa(),
        "isa_best": ISA_NAMES[fa_isa_best()],
        "isa_supported": supported_isas(),
        "streaming_threshold_bytes": fa_streaming_threshold_bytes(),
    }


def _isa_from_environment():
    """Warns when the C runtime ignored FASTACT_ISA (it reads the variable
    once, at its first use: here, at import), saying why."""
    cdef const char *value = NULL
    cdef int status = fa_isa_environment(&value)
    if status != FA_ISA_ENV_UNKNOWN and status != FA_ISA_ENV_UNSUPPORTED:
        return
    requested = os.fsdecode(<bytes>value).strip().lower() if value != NULL else ""
    problem = _unknown_isa() if status == FA_ISA_ENV_UNKNOWN else _unsupported_isa()
    warnings.warn(f"FASTACT_ISA={requested!r} ignored: the ISA is {problem}; using "
                  f"{get_isa()}", RuntimeWarning, stacklevel=2)


fa_init()
_DEFAULT_STREAMING = fa_streaming_threshold_bytes()
_isa_from_environment()
# the thread policy and ISA choice above, for fastact's other C modules
# (_membench): through this capsule they share this module's state
_runtime = PyCapsule_New(<void *>&fa_runtime_api, FA_RUNTIME_CAPSULE, NULL)


# --- XLA FFI handlers (src/xla_ffi.h), for fastact.jax ------------------------------

include "_xla_targets.pxi"


def xla_ffi_targets():
    """{target name: PyCapsule of its XLA FFI handler} for the CPU (plain C
    functions)."""
    return _target_capsules(fa_xla_cpu_targets)
