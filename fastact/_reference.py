"""Slow float64 numpy oracles: the single source of truth for tests and benches.

Each function states the semantics fastact implements, element by element, in
the plainest numpy there is, computing in float64 whatever the input dtype.
Parameters are used as given: to predict a float32 (or float16, bfloat16)
kernel, round them to float32 first, as the kernels do.

Branches are selects (np.where), so an inf or NaN in the branch not taken
never reaches the result; the gradient at a kink is the derivative of the
branch the forward takes there.

This module imports nothing from fastact (only numpy and the standard
library): PReLU's slopes are laid over x by numpy's own broadcasting, not by
the layout plan the kernels' glue uses, so that a bug there cannot be copied
into the expected values.
"""
import math
import operator

import numpy as np


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _slopes_over(x_shape, s, channel_axis):
    """s (float64) reshaped to broadcast against x by numpy's own rules.

    - one value (any shape): shared by every element;
    - a 1-D array of C > 1 values: one per channel on channel_axis (1 or
      -1, counted as numpy counts axes);
    - 2 or more dims: broadcast against x.shape[1:], right-aligned (Keras).

    Raises ValueError when the slopes do not fit x.
    """
    ndim = len(x_shape)
    if s.size == 1:
        return s.reshape((1,) * ndim)
    if s.ndim == 1:
        axis = operator.index(channel_axis)
        if ndim < 2 or not -ndim <= axis < ndim:
            raise ValueError(f"{s.size} slopes for x of shape {x_shape}")
        axis %= ndim
        if x_shape[axis] != s.size:
            raise ValueError(f"{s.size} slopes for {x_shape[axis]} channels")
        shape = [1] * ndim
        shape[axis] = s.size
        return s.reshape(shape)
    feature = tuple(x_shape[1:])
    if s.ndim > len(feature):
        raise ValueError(f"slopes of shape {s.shape} for x of shape {x_shape}")
    np.broadcast_to(s, feature)         # raises when they do not broadcast to x
    return s.reshape((1,) * (ndim - s.ndim) + s.shape)


def prelu(x, slopes, channel_axis=1):
    """y = x where x > 0, else slope * x (NaN propagates; x == 0 takes the slope)."""
    x = _f64(x)
    s = _slopes_over(x.shape, _f64(slopes), channel_axis)
    return np.where(x > 0, x, s * x)


def prelu_backward(grad_output, x, slopes, channel_axis=1):
    """(grad_input, grad_slopes) of prelu.

    grad_input = g where x > 0, else slope * g.
    grad_slopes = for each slope, the sum in float64 of x * g over the
    elements it applies to where not (x > 0): a NaN in x makes its sum NaN.
    The shape is that of slopes (a 0-d array for a Python number).
    """
    g = _f64(grad_output)
    x = _f64(x)
    s_given = _f64(slopes)
    s = _slopes_over(x.shape, s_given, channel_axis)
    positive = x > 0
    grad_input = np.where(positive, g, s * g)
    terms = np.where(positive, 0.0, x * g)
    # every axis along which one slope covers several elements of x
    summed = tuple(k for k in range(x.ndim) if s.shape[k] == 1)
    grad_slopes = terms.sum(axis=summed, keepdims=True)
    return grad_input, np.asarray(grad_slopes).reshape(s_given.shape)


def leaky_relu(x, negative_slope=0.01):
    """x where x > 0, else negative_slope * x (NaN takes the slope's branch)."""
    x = _f64(x)
    return np.where(x > 0, x, negative_slope * x)


def leaky_relu_backward(grad_output, x, negative_slope=0.01):
    g, x = _f64(grad_output), _f64(x)
    return np.where(x > 0, g, negative_slope * g)


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """max_value where x >= max_value; negative_slope * (x - threshold) where
    x <= threshold (exactly 0 when negative_slope is 0); x otherwise, NaN
    included."""
    x = _f64(x)
    m = np.inf if max_value is None else max_value
    with np.errstate(invalid="ignore"):
        neg = np.zeros_like(x) if negative_slope == 0 else negative_slope * (x - threshold)
    return np.where(x >= m, m, np.where(x <= threshold, neg, x))


def relu_backward(grad_output, x, negative_slope=0.0, max_value=None, threshold=0.0):
    """0 where x >= max_value; negative_slope * g where x <= threshold (0 when
    negative_slope is 0); g otherwise, NaN included.  max_value None (or
    +inf) is no maximum: x = +inf has gradient 1."""
    g, x = _f64(grad_output), _f64(x)
    neg = np.zeros_like(g) if negative_slope == 0 else negative_slope * g
    identity = np.where(x <= threshold, neg, g)
    if max_value is None or np.isinf(max_value):    # no max: +inf is on the identity
        return identity
    return np.where(x >= max_value, 0.0, identity)


def relu6(x):
    return relu(x, 0.0, 6.0, 0.0)


def relu6_backward(grad_output, x):
    return relu_backward(grad_output, x, 0.0, 6.0, 0.0)


def thresholded_relu(x, theta=1.0):
    """x where x > theta, else 0 (NaN stays NaN)."""
    return relu(x, 0.0, None, theta)


def thresholded_relu_backward(grad_output, x, theta=1.0):
    return relu_backward(grad_output, x, 0.0, None, theta)


# the C library's expm1 and exp, element by element: glibc's are within an
# ulp, while numpy's own SIMD versions may trade accuracy for speed
_expm1 = np.frompyfunc(math.expm1, 1, 1)
_exp = np.frompyfunc(math.exp, 1, 1)


def elu(x, alpha=1.0):
    """alpha * expm1(x) where x <= 0, else x."""
    x = _f64(x)
    neg = np.asarray(_expm1(np.where(x <= 0, x, 0.0)), dtype=np.float64)
    return np.where(x <= 0, alpha * neg, x)


def elu_backward(grad_output, x, alpha=1.0):
    """g * (alpha * exp(x)) where x <= 0, else g."""
    g, x = _f64(grad_output), _f64(x)
    e = np.asarray(_exp(np.where(x <= 0, x, 0.0)), dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(x <= 0, g * (alpha * e), g)


def elu_backward_from_output(grad_output, y, alpha=1.0):
    """elu's gradient read off its output (alpha > 0): g * (y + alpha) where
    y <= 0, else g."""
    g, y = _f64(grad_output), _f64(y)
    return np.where(y <= 0, g * (y + alpha), g)


def hardtanh(x, min_val=-1.0, max_val=1.0):
    """min_val where x < min_val, max_val where x > max_val, else x (NaN
    and the sign of a zero x kept), as torch's F.hardtanh."""
    x = _f64(x)
    return np.where(x < min_val, min_val, np.where(x > max_val, max_val, x))


def hardtanh_backward(grad_output, x, min_val=-1.0, max_val=1.0):
    """g where min_val < x < max_val or x is NaN, else 0 (0 at both kinks,
    as torch's hardtanh_backward)."""
    g, x = _f64(grad_output), _f64(x)
    return np.where((x <= min_val) | (x >= max_val), 0.0, g)


def square(x):
    x = _f64(x)
    return x * x


def square_backward(grad_output, x):
    """g * 2x (for float64 x so large that 2x overflows, 2 * (g * x))."""
    g, x = _f64(grad_output), _f64(x)
    with np.errstate(over="ignore", invalid="ignore"):
        twice = x + x
        return np.where(np.isinf(twice) & np.isfinite(x), 2 * (g * x), g * twice)


def affine_prelu(x, scale, shift, slopes, channel_axis=1, rounding=None):
    """prelu of a per-channel affine map: with t = x * scale + shift,
    y = t where t > 0, else slope * t (NaN propagates; t == 0 takes the
    slope).

    scale, shift and slopes are each one value (shared) or a 1-D array of
    one per channel on channel_axis.  rounding: None computes in float64; a
    float dtype narrower than float64 (float32) rounds the product, the sum
    and the slope's product to it one by one, as a kernel computing in that
    dtype without fused multiply-adds: a float64 product of two float32
    values is exact, and a float64 sum of two rounded once to float32 is
    their float32 sum (53 >= 2 * 24 + 2 bits), so each step is that dtype's
    correctly rounded operation.
    """
    x = _f64(x)

    def over(v):
        return _slopes_over(x.shape, _f64(v).reshape(-1), channel_axis)

    def r(v):
        if rounding is None:
            return v
        with np.errstate(over="ignore", invalid="ignore"):
            return v.astype(rounding).astype(np.float64)

    with np.errstate(invalid="ignore", over="ignore"):
        t = r(r(x * over(scale)) + over(shift))
        return np.where(t > 0, t, r(over(slopes) * t))


def batchnorm_scale_shift(running_mean, running_var, eps=1e-5, weight=None, bias=None):
    """(scale, shift) of an inference BatchNorm, exactly in float64:
    scale = weight / sqrt(running_var + eps), shift = bias - running_mean * scale."""
    var = _f64(running_var)
    w = np.ones_like(var) if weight is None else _f64(weight)
    b = np.zeros_like(var) if bias is None else _f64(bias)
    scale = w / np.sqrt(var + float(eps))
    return scale, b - _f64(running_mean) * scale
