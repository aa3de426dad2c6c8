# cython: language_level=3
"""CPU glue for fastact: checks arguments, picks the kernel, calls it.

Everything is validated before any kernel runs, so a call that raises has
written nothing.  The kernels see C-contiguous, aligned, native-endian blocks;
anything else is copied first (inputs) or computed into a temporary and
copied back (outputs).
"""
import operator
import os
import warnings

import numpy as np

cimport numpy as cnp
from libc.stdint cimport int64_t

cnp.import_array()

cdef extern from "fastact.h" nogil:
    void prelu_forward_f32(const float *x, const float *slopes, float *y,
                           int64_t outer, int64_t channels, int64_t inner)
    void prelu_forward_f64(const double *x, const double *slopes, double *y,
                           int64_t outer, int64_t channels, int64_t inner)
    int prelu_backward_f32(const float *grad_output, const float *x,
                           const float *slopes, float *grad_input,
                           double *grad_slopes,
                           int64_t outer, int64_t channels, int64_t inner)
    int prelu_backward_f64(const double *grad_output, const double *x,
                           const double *slopes, double *grad_input,
                           double *grad_slopes,
                           int64_t outer, int64_t channels, int64_t inner)
    void membench_copy_f32(const float *src, float *dst, int64_t n, int streaming)
    void membench_scale_inplace_f32(float *x, float factor, int64_t n)
    void membench_add_f32(const float *a, const float *b, float *z, int64_t n,
                          int streaming)

    void fa_init()
    int fa_have_openmp()
    void fa_set_num_threads(int n)
    int fa_get_num_threads()
    int fa_cpu_limit()
    int fa_forked_serial()
    int64_t fa_streaming_threshold_bytes()
    void fa_set_streaming_threshold_bytes(int64_t nbytes)

    int FA_ISA_BASELINE, FA_ISA_AVX2, FA_ISA_AVX512F, FA_ISA_COUNT
    int fa_isa_supported(int isa)
    int fa_isa_best()
    int fa_set_isa(int isa)
    int fa_get_isa()
    const char *fa_isa_name(int isa)

# Releasing and retaking the GIL costs about 0.1 us: more than a small call's
# whole kernel.  Smaller calls keep it (numpy draws the same line).
cdef int64_t GIL_RELEASE_MIN = 8192

_SUPPORTED = "float32 and float64"


# --- argument checks ---------------------------------------------------------

cdef inline tuple _shape(cnp.ndarray a):
    return (<object>a).shape


cdef inline bint _kernel_ready(cnp.ndarray a):
    """True when the kernels can read a as it is."""
    return (cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISALIGNED(a)
            and cnp.PyArray_ISNOTSWAPPED(a))


cdef int _float_type(cnp.ndarray a, str name) except -1:
    cdef int t = cnp.PyArray_TYPE(a)
    if t == cnp.NPY_FLOAT32 or t == cnp.NPY_FLOAT64:
        return t
    raise TypeError(f"{name} has dtype {a.dtype}; fastact supports {_SUPPORTED}")


cdef inline object _native_dtype(cnp.ndarray a):
    return np.float32 if cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT32 else np.float64


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
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    cdef cnp.ndarray o = out
    if cnp.PyArray_TYPE(o) != cnp.PyArray_TYPE(like):   # any byte order
        raise ValueError(f"{name} has dtype {o.dtype}; expected {like.dtype}, the dtype of {like_name}")
    if _shape(o) != _shape(like):
        raise ValueError(f"{name} has shape {_shape(o)}; expected {_shape(like)}, the shape of {like_name}")
    if not cnp.PyArray_ISWRITEABLE(o):
        raise ValueError(f"{name} is read-only")
    return 0


cdef int _check_no_partial_overlap(cnp.ndarray written, cnp.ndarray read,
                                   str wname, str rname) except -1:
    if _overlaps(written, read) and not _same_view(written, read):
        raise ValueError(
            f"{wname} overlaps {rname} partially; pass the same array for an "
            f"in-place result, or an array that shares no memory with {rname}")
    return 0


cdef cnp.ndarray _destination(object out, bint inplace, cnp.ndarray target,
                              str target_name, cnp.ndarray x):
    """Where the result goes, checked: `target` itself when in place, `out`,
    or None for a new array.  `out` must match x and not overlap it partially."""
    if inplace:
        if out is not None:
            raise ValueError("pass either out= or inplace=True, not both")
        if not cnp.PyArray_ISWRITEABLE(target):
            raise ValueError(f"inplace=True but {target_name} is read-only")
        return target
    if out is None:
        return None
    _check_output(out, x, "out", "x")
    _check_no_partial_overlap(out, x, "out", "x")
    return out


cdef cnp.ndarray _slopes_values(object slopes, cnp.ndarray x, int t, bint *per_channel):
    """slopes checked against x, as a contiguous array of x's dtype (native
    byte order) holding one value (shared) or one per channel (axis 1).
    Sets per_channel."""
    cdef cnp.ndarray arr
    cdef cnp.npy_intp n
    # fast path, the common case: a 1-D array of x's dtype, ready for the kernels
    if type(slopes) is np.ndarray:
        arr = <cnp.ndarray>slopes
        if (cnp.PyArray_TYPE(arr) == t and cnp.PyArray_NDIM(arr) == 1
                and _kernel_ready(arr)):
            n = cnp.PyArray_DIMS(arr)[0]
            per_channel[0] = n != 1
            if n == 1 or (cnp.PyArray_NDIM(x) >= 2 and n == cnp.PyArray_DIMS(x)[1]):
                return arr
    if isinstance(slopes, (float, int)) and not isinstance(slopes, bool):
        arr = cnp.PyArray_EMPTY(1, [1], t, 0)
        if t == cnp.NPY_FLOAT32:
            (<float *>cnp.PyArray_DATA(arr))[0] = <float><double>slopes
        else:
            (<double *>cnp.PyArray_DATA(arr))[0] = <double>slopes
        per_channel[0] = False
        return arr
    arr = slopes if isinstance(slopes, np.ndarray) else np.asarray(slopes)
    if arr.dtype.kind != "f":
        raise TypeError(
            f"slopes has dtype {arr.dtype}; expected a float or an array of "
            f"floats (cast to x's dtype, {x.dtype})")
    if arr.ndim > 1:
        raise ValueError(
            f"slopes has shape {_shape(arr)}; expected a float, one value, or a "
            f"1-D array of one value per channel")
    n = arr.size
    per_channel[0] = arr.ndim == 1 and n != 1
    if per_channel[0]:
        if x.ndim < 2:
            raise ValueError(
                f"slopes has {n} values but x has shape {_shape(x)}: per-channel "
                f"slopes need x of shape (N, C, ...) with channels on axis 1; "
                f"pass one value to share it")
        if n != x.shape[1]:
            raise ValueError(
                f"slopes has {n} values but x has {x.shape[1]} channels (axis 1)")
    return np.ascontiguousarray(arr, dtype=_native_dtype(x)).reshape(-1)


cdef tuple _grad_slopes_shape(object slopes):
    """grad_slopes has the shape of slopes; 0-d for a Python number."""
    if isinstance(slopes, (float, int)):
        return ()
    return np.shape(slopes)


cdef inline void _layout(cnp.ndarray x, bint per_channel, int64_t *outer,
                         int64_t *channels, int64_t *inner):
    """x as (outer, channels, inner) blocks: (N, C, prod(spatial)) per channel,
    (1, 1, size) shared."""
    cdef int d
    if not per_channel:
        outer[0] = 1
        channels[0] = 1
        inner[0] = cnp.PyArray_SIZE(x)
        return
    outer[0] = cnp.PyArray_DIMS(x)[0]
    channels[0] = cnp.PyArray_DIMS(x)[1]
    inner[0] = 1
    for d in range(2, cnp.PyArray_NDIM(x)):
        inner[0] *= cnp.PyArray_DIMS(x)[d]


# --- PReLU --------------------------------------------------------------------

cdef inline void _forward(int t, void *x, void *slopes, void *y, int64_t outer,
                          int64_t channels, int64_t inner) noexcept nogil:
    if t == cnp.NPY_FLOAT32:
        prelu_forward_f32(<float *>x, <float *>slopes, <float *>y, outer, channels, inner)
    else:
        prelu_forward_f64(<double *>x, <double *>slopes, <double *>y, outer, channels, inner)


cdef inline int _backward(int t, void *g, void *x, void *slopes, void *gi,
                          double *grad_slopes, int64_t outer, int64_t channels,
                          int64_t inner) noexcept nogil:
    if t == cnp.NPY_FLOAT32:
        return prelu_backward_f32(<float *>g, <float *>x, <float *>slopes,
                                  <float *>gi, grad_slopes, outer, channels, inner)
    return prelu_backward_f64(<double *>g, <double *>x, <double *>slopes,
                              <double *>gi, grad_slopes, outer, channels, inner)


def prelu_forward(cnp.ndarray x, object slopes, object out, bint inplace):
    """See fastact.prelu."""
    cdef int t = _float_type(x, "x")
    cdef bint per_channel
    cdef cnp.ndarray values = _slopes_values(slopes, x, t, &per_channel)
    cdef cnp.ndarray dest = _destination(out, inplace, x, "x", x)

    # checks done: from here on, memory is written
    cdef cnp.ndarray src = x
    cdef cnp.ndarray target
    if not _kernel_ready(x):
        src = _fresh_copy(x)
        target = src                      # compute in place in the copy
    elif dest is None:
        target = cnp.PyArray_EMPTY(x.ndim, cnp.PyArray_DIMS(x), t, 0)
    elif _kernel_ready(dest):
        target = dest
    else:
        target = _fresh_copy(x)
        src = target

    if _overlaps(values, target):
        values = values.copy()            # slopes inside the output: read them first
    cdef int64_t outer, channels, inner
    _layout(x, per_channel, &outer, &channels, &inner)
    cdef void *xp = cnp.PyArray_DATA(src)
    cdef void *sp = cnp.PyArray_DATA(values)
    cdef void *yp = cnp.PyArray_DATA(target)
    if cnp.PyArray_SIZE(x) < GIL_RELEASE_MIN:
        _forward(t, xp, sp, yp, outer, channels, inner)
    else:
        with nogil:
            _forward(t, xp, sp, yp, outer, channels, inner)

    if dest is None:
        return target
    if target is not dest:
        np.copyto(dest, target)
    return dest


cdef void _round_sums(const double *sums, const void *slopes, void *grad, int t,
                      int64_t n, bint divide_by_slopes) noexcept:
    """grad = sums (or sums / slopes, in float64) rounded once to x's dtype."""
    cdef int64_t c
    cdef double v
    for c in range(n):
        v = sums[c]
        if divide_by_slopes:
            v = v / (<const float *>slopes)[c] if t == cnp.NPY_FLOAT32 else v / (<const double *>slopes)[c]
        if t == cnp.NPY_FLOAT32:
            (<float *>grad)[c] = <float>v
        else:
            (<double *>grad)[c] = v


def prelu_backward(cnp.ndarray grad_output, cnp.ndarray x, object slopes,
                   object out, bint inplace, bint divide_by_slopes=False):
    """See fastact.prelu_backward.  divide_by_slopes: x is the output of an
    in-place forward with slopes > 0; the slope gradient is divided by them."""
    cdef int t = _float_type(x, "x")
    _float_type(grad_output, "grad_output")
    if cnp.PyArray_TYPE(grad_output) != t:
        raise ValueError(
            f"grad_output has dtype {grad_output.dtype}; expected {x.dtype}, the dtype of x")
    if _shape(grad_output) != _shape(x):
        raise ValueError(
            f"grad_output has shape {_shape(grad_output)}; expected {_shape(x)}, the shape of x")
    cdef bint per_channel
    cdef cnp.ndarray values = _slopes_values(slopes, x, t, &per_channel)
    cdef tuple grad_shape = _grad_slopes_shape(slopes)
    cdef cnp.ndarray dest = _destination(out, inplace, grad_output, "grad_output", x)
    if out is not None:
        _check_no_partial_overlap(dest, grad_output, "out", "grad_output")

    # checks done: from here on, memory is written
    cdef cnp.ndarray xsrc = x if _kernel_ready(x) else _fresh_copy(x)
    cdef cnp.ndarray gsrc = grad_output
    cdef cnp.ndarray target
    if not _kernel_ready(grad_output):
        gsrc = _fresh_copy(grad_output)
        target = gsrc                     # compute in place in the copy
    elif dest is None:
        target = cnp.PyArray_EMPTY(x.ndim, cnp.PyArray_DIMS(x), t, 0)
    elif _kernel_ready(dest) and not _overlaps(dest, xsrc):
        target = dest
    else:
        # dest is x itself, or unfit for the kernels: go through a copy
        target = _fresh_copy(grad_output)
        gsrc = target

    if _overlaps(values, target):
        values = values.copy()            # slopes inside the output: read them first
    cdef int64_t outer, channels, inner
    _layout(x, per_channel, &outer, &channels, &inner)
    cdef cnp.npy_intp nsums = channels
    cdef cnp.ndarray sums = cnp.PyArray_EMPTY(1, &nsums, cnp.NPY_FLOAT64, 0)
    cdef cnp.ndarray grad_slopes = np.empty(grad_shape, dtype=_native_dtype(x))
    cdef void *gp = cnp.PyArray_DATA(gsrc)
    cdef void *xp = cnp.PyArray_DATA(xsrc)
    cdef void *sp = cnp.PyArray_DATA(values)
    cdef void *gip = cnp.PyArray_DATA(target)
    cdef double *sums_p = <double *>cnp.PyArray_DATA(sums)
    cdef int rc
    if cnp.PyArray_SIZE(x) < GIL_RELEASE_MIN:
        rc = _backward(t, gp, xp, sp, gip, sums_p, outer, channels, inner)
    else:
        with nogil:
            rc = _backward(t, gp, xp, sp, gip, sums_p, outer, channels, inner)
    if rc != 0:
        raise MemoryError("fastact: cannot allocate the slope-gradient workspace")

    _round_sums(sums_p, cnp.PyArray_DATA(values), cnp.PyArray_DATA(grad_slopes), t,
                channels, divide_by_slopes)
    if dest is None:
        return target, grad_slopes
    if target is not dest:
        np.copyto(dest, target)
    return dest, grad_slopes


# --- memory ceilings (for the benchmark) -------------------------------------

cdef cnp.ndarray _f32_block(object a, str name):
    if not isinstance(a, np.ndarray) or a.dtype != np.float32 or not _kernel_ready(a):
        raise ValueError(f"{name} must be a C-contiguous float32 numpy array")
    return a


def ceiling_copy(src, dst, bint streaming):
    """dst[...] = src with ordinary or non-temporal stores."""
    cdef cnp.ndarray s = _f32_block(src, "src")
    cdef cnp.ndarray d = _f32_block(dst, "dst")
    if s.size != d.size or not cnp.PyArray_ISWRITEABLE(d) or _overlaps(s, d):
        raise ValueError("dst must be writeable, as large as src, and separate")
    with nogil:
        membench_copy_f32(<float *>cnp.PyArray_DATA(s), <float *>cnp.PyArray_DATA(d),
                          cnp.PyArray_SIZE(s), streaming)


def ceiling_scale_inplace(x, float factor):
    """x *= factor: an in-place read-modify-write."""
    cdef cnp.ndarray a = _f32_block(x, "x")
    if not cnp.PyArray_ISWRITEABLE(a):
        raise ValueError("x is read-only")
    with nogil:
        membench_scale_inplace_f32(<float *>cnp.PyArray_DATA(a), factor, cnp.PyArray_SIZE(a))


def ceiling_add(a, b, z, bint streaming):
    """z[...] = a + b: read two arrays, write one."""
    cdef cnp.ndarray aa = _f32_block(a, "a")
    cdef cnp.ndarray bb = _f32_block(b, "b")
    cdef cnp.ndarray zz = _f32_block(z, "z")
    if (aa.size != bb.size or aa.size != zz.size or not cnp.PyArray_ISWRITEABLE(zz)
            or _overlaps(aa, zz) or _overlaps(bb, zz)):
        raise ValueError("z must be writeable, as large as a and b, and separate")
    with nogil:
        membench_add_f32(<float *>cnp.PyArray_DATA(aa), <float *>cnp.PyArray_DATA(bb),
                         <float *>cnp.PyArray_DATA(zz), cnp.PyArray_SIZE(aa), streaming)


# --- threads and ISA ------------------------------------------------------------

def set_num_threads(n):
    """See fastact.set_num_threads."""
    if n is None:
        fa_set_num_threads(0)
        return
    if isinstance(n, (bool, np.bool_)) or not hasattr(n, "__index__"):
        raise TypeError(f"n must be a positive int or None, got {type(n).__name__}")
    n = operator.index(n)
    if n < 1:
        raise ValueError(f"n must be a positive int or None, got {n}")
    fa_set_num_threads(min(n, 1 << 16))


def get_num_threads():
    """See fastact.get_num_threads."""
    return fa_get_num_threads()


ISA_NAMES = tuple(fa_isa_name(i).decode() for i in range(FA_ISA_COUNT))


def set_isa(name):
    """Use the kernels compiled for ISA `name` (one of ISA_NAMES) from now on.
    ValueError when this CPU or build does not support it."""
    if name not in ISA_NAMES:
        raise ValueError(f"unknown ISA {name!r}; expected one of {', '.join(ISA_NAMES)}")
    if fa_set_isa(ISA_NAMES.index(name)) != 0:
        raise ValueError(f"ISA {name!r} is not supported by this CPU or build; "
                         f"supported: {', '.join(supported_isas())}")


def set_streaming_threshold(nbytes):
    """Outputs of at least nbytes bytes get streaming stores (None: the
    default set at import, see fa_init).  For tests and benchmarks."""
    fa_set_streaming_threshold_bytes(_DEFAULT_STREAMING if nbytes is None else nbytes)


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
        "isa": get_isa(),
        "isa_best": ISA_NAMES[fa_isa_best()],
        "isa_supported": supported_isas(),
        "streaming_threshold_bytes": fa_streaming_threshold_bytes(),
    }


def _isa_from_environment():
    requested = os.environ.get("FASTACT_ISA", "").strip().lower()
    if requested in ("", "auto", "best"):
        return
    try:
        set_isa(requested)
    except ValueError as exc:
        warnings.warn(f"FASTACT_ISA={requested!r} ignored: {exc}; using {get_isa()}",
                      RuntimeWarning, stacklevel=2)


fa_init()
_DEFAULT_STREAMING = fa_streaming_threshold_bytes()
_isa_from_environment()
