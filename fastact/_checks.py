"""The argument rules every entry point and every device shares, each in one
place: parameters, PReLU's slopes and channel_axis.

- A parameter (negative_slope, max_value, threshold, theta, alpha, init, a
  shared slope) is a real number: a Python int or float, a numpy or
  ml_dtypes scalar of an integer or float type (bfloat16 included) or a 0-d
  array of one; not a bool (TypeError naming it otherwise), and not NaN.  It
  is converted to a Python float as IEEE rounding does: an int past
  float64's range becomes +-inf.  The slopes, alpha, threshold, theta and
  init must be finite as well (ValueError).
- Array slopes have a float dtype (bfloat16 included; TypeError otherwise)
  and finite values (ValueError naming the first that is not).
- stream is None for arrays on the CPU.
- channel_axis is an integer (a Python int, a numpy integer, anything
  ``operator.index`` takes; not a bool: TypeError) equal to 1 or -1
  (ValueError).
"""
import math
import numbers
import operator

import numpy as np

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
    elif _is_real(value):
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


def slopes_array(arr):
    """Array slopes (a numpy array of any shape) checked: a float dtype and
    finite values."""
    if not is_float_dtype(arr.dtype):
        raise TypeError(f"slopes has dtype {arr.dtype}; expected a number or an array "
                        f"of floats")
    finite_ = np.isfinite(arr)
    if not finite_.all():
        where = tuple(int(i) for i in np.argwhere(~finite_)[0])
        at = f" at index {where if len(where) > 1 else where[0]}" if where else ""
        raise ValueError(f"slopes must be finite, got {arr[where]}{at}")


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


def _shown(value):
    """A number for a message, without printing hundreds of digits."""
    if isinstance(value, numbers.Integral):
        n = int(value)
        return str(n) if abs(n) < 10 ** 20 else f"an int of {n.bit_length()} bits"
    return f"a {type(value).__name__}"
