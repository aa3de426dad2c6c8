"""The argument rules every entry point and every device shares, each in one
place: parameters, PReLU's slopes, channel_axis and its module's shape
arguments, dtypes given by name, where results go, and the messages that
reject them.  Rules that need raw pointers (overlap, alignment) live in
fastact._cpu, and raise the messages built here.

- A parameter (negative_slope, max_value, threshold, theta, alpha, init, a
  shared slope) is a real number: a Python int or float, a numpy or
  ml_dtypes scalar of an integer or float type (bfloat16 included) or a 0-d
  array of one; not a bool (TypeError naming it otherwise), and not NaN.  It
  is converted to a Python float as IEEE rounding does: an int past
  float64's range becomes +-inf.  The slopes, alpha, threshold, theta and
  init must be finite as well (ValueError).
- Array slopes have a float dtype (bfloat16 included; TypeError otherwise)
  and finite values (ValueError naming the first that is not); so do
  affine_prelu's scale and shift, which are one value or a 1-D array of one
  per channel.
- stream is None for arrays on the CPU.
- channel_axis is an integer (a Python int, a numpy integer, anything
  ``operator.index`` takes; not a bool: TypeError) equal to 1 or -1
  (ValueError).
- relu's negative_slope, max_value and threshold are >= 0, and
  thresholded_relu's theta too (ValueError: Keras's rules).
- A result goes to a new array, to ``out`` (an array of x's shape and dtype,
  writeable, not partially overlapping an input) or, with ``inplace=True``,
  into its target (writeable); never both out= and inplace=True.  Each
  element of the destination has memory of its own: a view whose elements
  share memory (a writeable stride-0 view, as_strided) would keep one of
  several results, so it is refused (ValueError; PyTorch refuses it too).
"""
import math
import numbers
import operator

import numpy as np

from . import _dtypes

_INF = math.inf


def is_float_dtype(dtype):
    """The float dtypes fastact takes for slopes: numpy's and bfloat16."""
    return dtype.kind == "f" or dtype.name == "bfloat16"


def _is_real(value):
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, numbers.Real):
        return True
    return (isinstance(value, (np.generic, np.ndarray)) and value.ndim == 0
            and (value.dtype.kind in "iu" or is_float_dtype(value.dtype)))


def is_number(value):
    """True for a scalar (a PReLU slope given as one value rather than an
    array): Python and numpy numbers, bools included (real() refuses them)."""
    return isinstance(value, (numbers.Number, np.generic))


def real(value, name):
    """value as a Python float: a real number that is not NaN."""
    if type(value) is float:
        v = value
    elif type(value) is int or _is_real(value):      # int first: the ABC test is slow
        try:
            v = float(value)
        except OverflowError:       # an int (or Fraction) past float64's range
            v = _INF if value > 0 else -_INF
    else:
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} "
                        f"{value!r}")
    if v != v:
        raise ValueError(f"{name} is NaN; expected a real number")
    return v


def finite(value, name):
    """value as a finite Python float (TypeError / ValueError naming it)."""
    if type(value) is float and value - value == 0.0:    # the common case, quickly
        return value
    v = real(value, name)
    if v - v != 0.0:
        if value != v:              # finite, but it overflowed float64
            raise ValueError(f"{name} must be finite, got {_shown(value)}, past "
                             f"float64's range")
        raise ValueError(f"{name} must be finite, got {v}")
    return v


def slopes_array(arr, name="slopes"):
    """Array slopes (a numpy array of any shape) checked: a float dtype and
    finite values."""
    if not is_float_dtype(arr.dtype):
        raise TypeError(f"{name} has dtype {arr.dtype}; expected a number or an array "
                        f"of floats")
    finite_ = np.isfinite(arr)
    if not finite_.all():
        where = tuple(int(i) for i in np.argwhere(~finite_)[0])
        at = f" at index {where if len(where) > 1 else where[0]}" if where else ""
        raise ValueError(f"{name} must be finite, got {arr[where]}{at}")


def channel_values(value, name):
    """affine_prelu's scale, shift or slopes as a 1-D numpy array: a number,
    or an array of one value (of any shape), shared by every element; or a
    1-D array, one value per channel.  A float dtype and finite values, as
    array slopes."""
    if is_number(value):
        return np.array([finite(value, name)])
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    slopes_array(arr, name)
    if arr.size == 1:
        return arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} has shape {arr.shape}; expected one value, or a 1-D "
                         f"array of one value per channel")
    return arr


def relu(negative_slope, max_value, threshold):
    """relu's parameters as Python floats (max_value None: +inf), by Keras's
    rules (its ReLU layer and keras.activations.relu)."""
    ns = finite(negative_slope, "negative_slope")
    t = finite(threshold, "threshold")
    m = _INF if max_value is None else real(max_value, "max_value")
    if ns < 0:
        raise ValueError(f"negative_slope must be >= 0 for relu (as in Keras), got "
                         f"{ns}; use leaky_relu for a negative slope")
    if m < 0:
        raise ValueError(f"max_value must be >= 0 or None (as in Keras), got {m}")
    if t < 0:
        raise ValueError(f"threshold must be >= 0 (as in Keras), got {t}")
    return ns, m, t


def hardtanh(min_val, max_val):
    """hardtanh's bounds as Python floats, min_val <= max_val (PyTorch's rule)."""
    lo = real(min_val, "min_val")
    hi = real(max_val, "max_val")
    if lo > hi:
        raise ValueError(f"min_val must not be greater than max_val (as in PyTorch), "
                         f"got min_val={lo}, max_val={hi}")
    return lo, hi


def theta(value, name="theta"):
    """thresholded_relu's theta as a Python float >= 0 (Keras's rule)."""
    th = finite(value, name)
    if th < 0:
        raise ValueError(f"{name} must be >= 0 (as in Keras's ThresholdedReLU), got {th}")
    return th


def flag(value, name):
    """A module's on/off option (inplace) as a bool: True, False, a numpy
    bool or the ints 0 and 1; TypeError otherwise (an array's truth value
    is ambiguous, a string's is not what was meant)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if type(value) is int and value in (0, 1):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")


def no_stream(stream):
    """stream= orders work on a GPU: for arrays on the CPU it must be None."""
    if stream is not None:
        raise ValueError(f"stream={stream!r} is for GPU arrays (CuPy arrays, torch CUDA "
                         f"tensors); x is on the CPU, so pass stream=None")


def channel_axis(value):
    """value as the int 1 or -1."""
    try:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError
        axis = operator.index(value)
    except TypeError:
        raise TypeError(f"channel_axis must be an int (1 or -1), got "
                        f"{type(value).__name__} {value!r}") from None
    if axis != 1 and axis != -1:
        raise ValueError(f"channel_axis must be 1 (channels first, NCHW) or -1 (channels "
                         f"last, NHWC), got {_shown(axis)}")
    return axis


def channels(value):
    """PReLU's channel count: a positive int (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"channels must be a positive int, got {value!r}")
    return int(value)


def slopes_shape(value):
    """A shape for PReLU's slopes: an int or a tuple of positive ints."""
    shape = (value,) if isinstance(value, (int, np.integer)) else value
    try:
        shape = tuple(_size(n) for n in shape)
    except TypeError:
        shape = None
    if shape is None or any(n < 1 for n in shape):
        raise ValueError(f"slopes_shape must be a tuple of positive ints, got {value!r}")
    return shape


def _size(n):
    """n as an int when it is one (ints, numpy integers; not bools or floats)."""
    if isinstance(n, (bool, np.bool_)):
        raise TypeError("a bool is not a size")
    return operator.index(n)


def dtype(value, name="dtype"):
    """A dtype fastact computes in, from a numpy dtype, a type or a name
    ('bfloat16', which imports ml_dtypes)."""
    if isinstance(value, str) and value == "bfloat16":
        return _dtypes.bfloat16(f"{name}={value!r}")
    try:
        d = np.dtype(value)
    except TypeError:
        d = None
    if d is None or not _dtypes.is_supported(d):
        raise TypeError(f"{name} must be {_dtypes.ONE_OF_NAMES}, got {value!r}")
    return d


def numpy_input(a, name, writable):
    """a as a numpy array: array-likes are converted, but an in-place target
    (writable) cannot be."""
    if isinstance(a, np.ndarray):
        return a
    if writable:
        raise TypeError(f"inplace=True needs {name} to be a numpy.ndarray, "
                        f"got {type(a).__name__}")
    return np.asarray(a)


def supported_array(a, name):
    """a numpy array a of a dtype fastact takes (TypeError otherwise)."""
    if not _dtypes.is_supported(a.dtype):
        raise _dtypes.unsupported(name, a.dtype)
    return a


# --- where results go ---------------------------------------------------------
# Each device tests its arrays its own way (fastact._cpu with numpy's C API,
# fastact._device on parsed CUDA arrays); the rules and their messages are
# these.

def both_out_and_inplace():
    return ValueError("pass either out= or inplace=True, not both")


def read_only(name, inplace):
    """For an in-place target, or for out= (inplace False)."""
    return ValueError(f"inplace=True but {name} is read-only" if inplace
                      else f"{name} is read-only")


def mismatch(name, what, got, expected, like_name="x"):
    """name's dtype or shape (what) differs from like_name's."""
    return ValueError(f"{name} has {what} {got}; expected {expected}, the {what} of "
                      f"{like_name}")


def overlaps_itself(shape, strides, itemsize):
    """True when two elements of an array (shape, strides in bytes) share
    memory.  Exact; quick for the layouts views make (each axis's stride at
    least the span of the axes inside it), a sort of the offsets otherwise."""
    span = itemsize
    for stride, n in sorted((abs(s), n) for s, n in zip(strides, shape) if n > 1):
        if stride < span:
            break
        span = stride * (n - 1) + span
    else:
        return False
    if 0 in shape:
        return False
    offsets = np.zeros(1, np.int64)
    for stride, n in zip(strides, shape):
        offsets = (offsets[:, None] + np.arange(n, dtype=np.int64) * stride).reshape(-1)
    offsets.sort()
    return bool((np.diff(offsets) < itemsize).any())


def self_overlap(name, inplace):
    """For a destination whose elements share memory."""
    what = f"inplace=True but {name}" if inplace else name
    return ValueError(f"{what} has elements that share memory (a broadcast or "
                      f"as_strided view), so it cannot hold one result per element; "
                      f"pass an array whose elements are distinct")


def partial_overlap(written, read):
    return ValueError(
        f"{written} overlaps {read} partially; pass the same array for an in-place "
        f"result, or an array that shares no memory with {read}")


def matches(name, dtype, shape, like_dtype, like_shape, like_name="x"):
    """An array's dtype and shape (as the device spells them) equal like_name's."""
    if dtype != like_dtype:
        raise mismatch(name, "dtype", dtype, like_dtype, like_name)
    if shape != like_shape:
        raise mismatch(name, "shape", shape, like_shape, like_name)


def numpy_destination(out, inplace, target, target_name):
    """Where a result computed apart (a custom activation's) goes: target
    when in place, out (a writeable numpy array of target's shape and dtype),
    or None for a new array."""
    if inplace:
        if out is not None:
            raise both_out_and_inplace()
        if not target.flags.writeable:
            raise read_only(target_name, True)
        _distinct_elements(target, target_name, True)
        return target
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    matches("out", out.dtype, out.shape, target.dtype, target.shape)
    if not out.flags.writeable:
        raise read_only("out", False)
    _distinct_elements(out, "out", False)
    return out


def _distinct_elements(a, name, inplace):
    if not (a.flags.c_contiguous or a.flags.f_contiguous) and overlaps_itself(
            a.shape, a.strides, a.itemsize):
        raise self_overlap(name, inplace)


def _shown(value):
    """A number for a message, without printing hundreds of digits."""
    if isinstance(value, numbers.Integral):
        n = int(value)
        return str(n) if abs(n) < 10 ** 20 else f"an int of {n.bit_length()} bits"
    return f"a {type(value).__name__}"
