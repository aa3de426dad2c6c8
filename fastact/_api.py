"""fastact's functional API: device-independent argument handling and dispatch.

Every function takes numpy arrays (run by the CPU kernels) or, when fastact's
CUDA part is built, GPU arrays (CuPy arrays, torch CUDA tensors: anything with
``__cuda_array_interface__`` or ``__dlpack__``), returned as the same type.
Parameters are checked here, the same way for every device, by the rules of
fastact._checks: they must be real numbers (Python or numpy scalars, bfloat16
included; TypeError naming the parameter otherwise) and not NaN, and all but
max_value finite; relu rejects negative max_value, negative_slope and
threshold with ValueError, as Keras does.

The family, forward ``y = f(x)`` and backward ``grad_input = grad_output *
f'(x)``, where f' is the derivative of the branch f takes at x (the lower
branch at a kink, 0 at and above max_value):

=====================  ==========================================  ==============================
op                     f(x)                                        f'(x)
=====================  ==========================================  ==============================
prelu(s)               x if x > 0 else s * x  (s per channel)      1 if x > 0 else s
leaky_relu(a)          x if x > 0 else a * x                       1 if x > 0 else a
relu(ns, m, t)         m if x >= m; x if t < x < m;                0; 1; ns
                       else ns * (x - t)  (exactly 0 when ns == 0)
relu6                  relu(0, 6, 0)
thresholded_relu(th)   relu(0, None, th): x if x > th else 0
elu(alpha)             x if x > 0 else alpha * expm1(x)            1 if x > 0 else alpha * exp(x)
square                 x * x                                       2 * x
=====================  ==========================================  ==============================

NaN propagates: f(NaN) is NaN, and the comparisons above are false for it, so
its gradient is that of the branch their ``else`` names where ``x > 0`` is
tested (the slope for prelu and leaky_relu) and 1 for relu and elu (which test
``x <= t``).  The README's "Semantics" section tabulates PReLU at 0, -0.0,
+-inf and NaN; its "Activation family" section gives every op's formula and
its PyTorch and Keras counterparts.

This is right for every slope, including slopes > 1, 0 and negative ones; the
shortcut max(x, slope * x) is not, and fastact never uses it.
"""
import numpy as np

from . import _checks, _cpu, _device, _foreign
from ._checks import channel_axis as _channel_axis
from ._checks import finite as _finite
from ._checks import no_stream as _no_stream
from ._checks import numpy_input as _as_array

__all__ = [
    "prelu", "prelu_backward",
    "leaky_relu", "leaky_relu_backward",
    "relu", "relu_backward", "relu6", "relu6_backward",
    "thresholded_relu", "thresholded_relu_backward",
    "elu", "elu_backward",
    "square", "square_backward",
    "set_num_threads", "get_num_threads", "show_config", "config",
]

# Bound once: a (1, 16, 8, 8) call takes well under a microsecond, and module
# attribute lookups on every call are a visible share of it.
_ndarray = np.ndarray
_inf = float("inf")
_prelu_forward = _cpu.prelu_forward
_prelu_backward = _cpu.prelu_backward
_unary_forward = _cpu.unary_forward
_unary_backward = _cpu.unary_backward
_is_foreign = _foreign.is_foreign

_OP_LEAKY_RELU = _cpu.OP_LEAKY_RELU
_OP_RELU = _cpu.OP_RELU
_OP_RELU_PLAIN = _cpu.OP_RELU_PLAIN
_OP_ELU = _cpu.OP_ELU
_OP_SQUARE = _cpu.OP_SQUARE
_OP_ELU_OUTPUT = _cpu.OP_ELU_OUTPUT
_NO_PARAMS = (0.0, 0.0, 0.0)
# channel_axis's valid values: CPython keeps one object for each small int, so
# an identity test passes them (True, 1.0 and numpy integers go to the check)
_ONE, _MINUS_ONE = 1, -1
_RELU6_PARAMS = (0.0, 6.0, 0.0)


# --- argument handling ---------------------------------------------------------

def _relu_op(negative_slope, max_value, threshold):
    """(op, params) for relu: the plain kernel for the default parameters."""
    if (max_value is None and type(negative_slope) in (float, int)
            and type(threshold) in (float, int) and negative_slope == 0 and threshold == 0):
        return _OP_RELU_PLAIN, _NO_PARAMS
    return _OP_RELU, _checks.relu(negative_slope, max_value, threshold)


def _theta_params(theta):
    return (0.0, _inf, _checks.theta(theta))


# --- dispatch ------------------------------------------------------------------
# The fast path (a numpy array and no stream) is inlined in each function; what
# is left (foreign arrays, array-likes, a stream) goes through these.

def _path(x):
    """The module that runs a call on another library's array x (or with
    another library's grad_output): fastact._device for CUDA arrays,
    fastact._foreign for CPU ones."""
    return _device if _foreign.on_cuda(x) else _foreign


def _forward_other(op, params, x, out, inplace, stream):
    if _is_foreign(x):
        return _path(x).unary_forward(op, params, x, out, inplace, stream)
    _no_stream(stream)
    return _unary_forward(op, params, _as_array(x, "x", inplace), out, inplace)


def _backward_other(op, params, grad_output, x, out, inplace, stream):
    if _is_foreign(x) or _is_foreign(grad_output):
        return _path(x).unary_backward(op, params, grad_output, x, out, inplace, stream)
    _no_stream(stream)
    return _unary_backward(op, params, _as_array(grad_output, "grad_output", inplace),
                           _as_array(x, "x", False), out, inplace)


def _backward(op, params, grad_output, x, out, inplace, stream):
    if type(x) is _ndarray and type(grad_output) is _ndarray and stream is None:
        return _unary_backward(op, params, grad_output, x, out, inplace)
    return _backward_other(op, params, grad_output, x, out, inplace, stream)


def elu_backward_from_output(grad_output, y, alpha, out, stream):
    """elu's gradient read off its output y (after an in-place forward): exact in
    the branch taken, needs alpha > 0 (the caller checks).  For fastact's
    modules; not public."""
    return _backward(_OP_ELU_OUTPUT, (alpha, 0.0, 0.0), grad_output, y, out, False, stream)


def prelu_backward_from_output(grad_output, y, slopes, channel_axis, out, stream):
    """prelu's gradients read off its output y (every slope > 0; the caller
    checks).  For fastact's modules; not public."""
    if _is_foreign(y) or _is_foreign(grad_output):
        return _path(y).prelu_backward(grad_output, y, slopes, out, False, True,
                                      channel_axis, stream)
    _no_stream(stream)
    grad_output = _as_array(grad_output, "grad_output", False)
    if channel_axis != 1:
        return _prelu_backward(grad_output, y, slopes, out, False, True, channel_axis)
    return _prelu_backward(grad_output, y, slopes, out, False, True)


# --- prelu -----------------------------------------------------------------------

def prelu(x, slopes, *, channel_axis=1, out=None, inplace=False, stream=None):
    """Parametric ReLU: ``y = x if x > 0 else slope * x``, elementwise.

    Parameters
    ----------
    x : ndarray of float32, float64, float16 or bfloat16
        Shape (N, C, *spatial) with channels on axis 1 (NC, NCL, NCHW, NCDHW),
        or (N, *spatial, C) with ``channel_axis=-1`` (NHWC).  With a shared
        slope, any shape.
    slopes : float or array_like
        A number (Python, numpy or bfloat16) or an array of one value (of any
        shape): shared by every element.  A 1-D array of C values: one per
        channel (on ``channel_axis``).  An array of 2 or more dims:
        broadcast against ``x.shape[1:]`` (numpy's rules, aligned on the
        right), e.g. (C, 1, 1) for NCHW, (H, W, C) for a slope per position
        and channel.  Arrays must have a float dtype; other float dtypes are
        cast to x's dtype.  Every slope must be finite (ValueError; slopes
        already on a GPU are not scanned, which would wait for the device).
    channel_axis : {1, -1}, default 1
        Where 1-D per-channel slopes apply: axis 1 (channels first) or the
        last axis (channels last).
    out : ndarray, optional
        Array of x's shape and dtype to write the result into.  It may be x
        itself (in place); any other overlap with x is an error.
    inplace : bool, default False
        Write the result into x and return x.
    stream : optional
        For GPU arrays: the CUDA stream to order the work on.  Must be None
        for numpy arrays.

    Returns
    -------
    y : ndarray
        The result, of x's shape and type (``out`` or ``x`` when given).

    Notes
    -----
    Computed as ``x > 0 ? x : slope * x`` in x's dtype (float16 and bfloat16
    in float32, rounded once): NaN propagates, -0.0 becomes ``slope * -0.0``,
    and x == 0 takes the slope's branch.  Right for every slope, including
    slopes > 1, 0 and negative ones.  Nothing is written when an argument is
    rejected.

    Examples
    --------
    >>> import numpy as np, fastact
    >>> x = np.array([[-0.9, -0.9, -0.9], [1.1, 1.1, 1.1]], dtype=np.float32)
    >>> fastact.prelu(x, 1.205321)
    array([[-1.0847888, -1.0847888, -1.0847888],
           [ 1.1      ,  1.1      ,  1.1      ]], dtype=float32)
    >>> x = np.array([[[-2.0, 3.0]], [[4.0, -1.0]]])   # (N=2, C=1, L=2)
    >>> fastact.prelu(x, [0.5])
    array([[[-1. ,  3. ]],
    <BLANKLINE>
           [[ 4. , -0.5]]])
    >>> x = np.array([[[-2.0, -2.0], [4.0, -4.0]]])     # (N=1, L=2, C=2): NLC
    >>> fastact.prelu(x, [0.5, 0.25], channel_axis=-1)
    array([[[-1. , -0.5],
            [ 4. , -1. ]]])
    """
    if channel_axis is not _ONE and channel_axis is not _MINUS_ONE:
        channel_axis = _channel_axis(channel_axis)
    if type(x) is _ndarray and stream is None:
        if channel_axis != 1:
            return _prelu_forward(x, slopes, out, inplace, channel_axis)
        return _prelu_forward(x, slopes, out, inplace)
    if _is_foreign(x):
        return _path(x).prelu_forward(x, slopes, out, inplace, channel_axis, stream)
    _no_stream(stream)
    return _prelu_forward(_as_array(x, "x", inplace), slopes, out, inplace, channel_axis)


def prelu_backward(grad_output, x, slopes, *, channel_axis=1, out=None, inplace=False,
                   stream=None):
    """Gradients of :func:`prelu`, in one pass over memory.

    Parameters
    ----------
    grad_output : ndarray
        Gradient of the loss with respect to prelu's output; x's shape and dtype.
    x : ndarray of float32, float64, float16 or bfloat16
        prelu's input, as for :func:`prelu`.
    slopes : float or array_like
        As for :func:`prelu`.
    channel_axis : {1, -1}, default 1
        As for :func:`prelu`.
    out : ndarray, optional
        Receives grad_input (x's shape and dtype).  It may be grad_output or
        x itself; any other overlap with either is an error.
    inplace : bool, default False
        Write grad_input into grad_output.
    stream : optional
        For GPU arrays: the CUDA stream to order the work on.  Must be None
        for numpy arrays.

    Returns
    -------
    grad_input : ndarray
        ``grad_output where x > 0, else slope * grad_output``.
    grad_slopes : ndarray
        A new array with the shape of ``slopes`` (0-d for a number):
        ``sum of x * grad_output where not (x > 0)`` over the elements each
        slope applies to.  A NaN in x makes its slope's gradient NaN.  Of x's
        dtype for float32 and float64, float32 for float16 and bfloat16.

    Notes
    -----
    At x == 0 the gradient takes the slope (the branch the forward takes
    there), as in PyTorch.  grad_slopes is accumulated in float64 in a fixed
    order, so it is bitwise the same whatever the number of threads.

    Examples
    --------
    >>> import numpy as np, fastact
    >>> x = np.array([[-2.0, 0.0, 3.0]])   # a shared slope takes any shape
    >>> g = np.array([[1.0, 1.0, 1.0]])
    >>> gi, gs = fastact.prelu_backward(g, x, 0.25)
    >>> gi
    array([[0.25, 0.25, 1.  ]])
    >>> gs
    array(-2.)
    """
    if channel_axis is not _ONE and channel_axis is not _MINUS_ONE:
        channel_axis = _channel_axis(channel_axis)
    if type(x) is _ndarray and type(grad_output) is _ndarray and stream is None:
        if channel_axis != 1:
            return _prelu_backward(grad_output, x, slopes, out, inplace, False, channel_axis)
        return _prelu_backward(grad_output, x, slopes, out, inplace)
    if _is_foreign(x) or _is_foreign(grad_output):
        return _path(x).prelu_backward(grad_output, x, slopes, out, inplace, False,
                                      channel_axis, stream)
    _no_stream(stream)
    return _prelu_backward(_as_array(grad_output, "grad_output", inplace),
                           _as_array(x, "x", False), slopes, out, inplace, False,
                           channel_axis)


# --- leaky_relu ------------------------------------------------------------------

def leaky_relu(x, negative_slope=0.01, *, out=None, inplace=False, stream=None):
    """Leaky ReLU: ``y = x if x > 0 else negative_slope * x``, elementwise.

    Parameters
    ----------
    x : ndarray of float32, float64, float16 or bfloat16
        Any shape.
    negative_slope : float, default 0.01
        Any finite slope, including 0, negative ones and ones > 1.  The
        default is PyTorch's; tf.nn.leaky_relu and keras.activations use 0.2,
        Keras's LeakyReLU layer 0.3.
    out : ndarray, optional
        Array of x's shape and dtype for the result; it may be x itself.
    inplace : bool, default False
        Write the result into x and return x.
    stream : optional
        For GPU arrays: the CUDA stream to order the work on.  Must be None
        for numpy arrays.

    Returns
    -------
    y : ndarray
        Of x's shape and dtype (``out`` or ``x`` when given).

    Notes
    -----
    ``x > 0 ? x : negative_slope * x`` in x's dtype (the slope rounded to
    it): NaN stays NaN, x == 0 and -0.0 give ``negative_slope * x`` (a zero
    with the product's sign).  Never ``max(x, negative_slope * x)``, which is
    wrong for slopes > 1 and negative ones.

    Examples
    --------
    >>> import numpy as np, fastact
    >>> x = np.array([[-0.9, -0.9, -0.9], [1.1, 1.1, 1.1]], dtype=np.float32)
    >>> fastact.leaky_relu(x, 1.205321)
    array([[-1.0847888, -1.0847888, -1.0847888],
           [ 1.1      ,  1.1      ,  1.1      ]], dtype=float32)
    >>> fastact.leaky_relu(np.array([-2.0, 0.0, 3.0]))
    array([-0.02,  0.  ,  3.  ])
    """
    params = (_finite(negative_slope, "negative_slope"), 0.0, 0.0)
    if type(x) is _ndarray and stream is None:
        return _unary_forward(_OP_LEAKY_RELU, params, x, out, inplace)
    return _forward_other(_OP_LEAKY_RELU, params, x, out, inplace, stream)


def leaky_relu_backward(grad_output, x, negative_slope=0.01, *, out=None, inplace=False,
                        stream=None):
    """Gradient of :func:`leaky_relu`: ``grad_output if x > 0 else negative_slope * grad_output``.

    Parameters
    ----------
    grad_output : ndarray
        Gradient of the loss with respect to leaky_relu's output; x's shape
        and dtype.
    x : ndarray
        leaky_relu's input.
    negative_slope : float, default 0.01
        As for :func:`leaky_relu`.
    out : ndarray, optional
        Receives grad_input; it may be grad_output or x itself (any other
        overlap with either is an error).
    inplace : bool, default False
        Write grad_input into grad_output.
    stream : optional
        For GPU arrays; must be None for numpy arrays.

    Returns
    -------
    grad_input : ndarray
        Of x's shape and dtype.

    Notes
    -----
    At x == 0 (and for NaN) the gradient is the slope: the branch the forward
    takes there, as in PyTorch.

    Examples
    --------
    >>> import numpy as np, fastact
    >>> x = np.array([-2.0, 0.0, 3.0])
    >>> fastact.leaky_relu_backward(np.ones(3), x, 0.1)
    array([0.1, 0.1, 1. ])
    """
    return _backward(_OP_LEAKY_RELU, (_finite(negative_slope, "negative_slope"), 0.0, 0.0),
                     grad_output, x, out, inplace, stream)


# --- relu, relu6, thresholded_relu ---------------------------------------------------

def relu(x, negative_slope=0.0, max_value=None, threshold=0.0, *, out=None, inplace=False,
         stream=None):
    """Rectified linear unit, with Keras's optional slope, cap and threshold.

    ::

        y = max_value                          where x >= max_value
        y = x                                  where threshold < x < max_value
        y = negative_slope * (x - threshold)   elsewhere (exactly 0 when negative_slope == 0)

    Parameters
    ----------
    x : ndarray of float32, float64, float16 or bfloat16
        Any shape.
    negative_slope : float, default 0.0
        Slope below the threshold; >= 0.
    max_value : float or None, default None
        The cap; >= 0, None for none.
    threshold : float, default 0.0
        Where the identity starts; >= 0.
    out : ndarray, optional
        Array of x's shape and dtype for the result; it may be x itself.
    inplace : bool, default False
        Write the result into x and return x.
    stream : optional
        For GPU arrays; must be None for numpy arrays.

    Returns
    -------
    y : ndarray
        Of x's shape and dtype (``out`` or ``x`` when given).

    Raises
    ------
    ValueError
        For a negative ``negative_slope``, ``max_value`` or ``threshold``
        (Keras's rules), NaN, or an infinite slope or threshold.
    TypeError
        For a parameter that is not a real number.

    Notes
    -----
    The comparison with the threshold is strict (``x == threshold`` takes the
    lower branch), as Keras and PyTorch compute it although Keras's docstring
    says ``threshold <= x``.  With ``negative_slope == 0`` the lower branch is
    exactly 0, so ``relu(-inf)`` is 0 (not ``0 * -inf``, NaN); -0.0 gives
    +0.0.  NaN stays NaN (as in PyTorch; Keras turns it into 0 when
    threshold > 0).  The defaults run a dedicated kernel for ``max(x, 0)``.

    Examples
    --------
    >>> import numpy as np, fastact
    >>> x = np.array([-3.0, -1.0, 0.0, 2.0])
    >>> fastact.relu(x)
    array([0., 0., 0., 2.])
    >>> fastact.relu(x, max_value=1.0)
    array([0., 0., 0., 1.])
    >>> fastact.relu(x, negative_slope=1.0)
    array([-3., -1.,  0.,  2.])
    >>> fastact.relu(x, threshold=1.5)
    array([0., 0., 0., 2.])
    >>> x = np.array([-3.0, -1.0, 0.0, 1.0, 2.0, 5.0, 8.0])
    >>> fastact.relu(x, negative_slope=0.5, max_value=6.0, threshold=1.0)
    array([-2. , -1. , -0.5,  0. ,  2. ,  5. ,  6. ])
    """
    if (max_value is None and type(negative_slope) is float and type(threshold) is float
            and negative_slope == 0.0 and threshold == 0.0):
        op, params = _OP_RELU_PLAIN, _NO_PARAMS         # the defaults, without a call
    else:
        op, params = _relu_op(negative_slope, max_value, threshold)
    if type(x) is _ndarray and stream is None:
        return _unary_forward(op, params, x, out, inplace)
    return _forward_other(op, params, x, out, inplace, stream)


def relu_backward(grad_output, x, negative_slope=0.0, max_value=None, threshold=0.0, *,
                  out=None, inplace=False, stream=None):
    """Gradient of :func:`relu`.

    ::

        grad_input = 0                               where x >= max_value
        grad_input = grad_output                     where threshold < x < max_value
        grad_input = negative_slope * grad_output    elsewhere (0 when negative_slope == 0)

    Parameters
    ----------
    grad_output : ndarray
        Gradient of the loss with respect to relu's output; x's shape and dtype.
    x : ndarray
        relu's input.
    negative_slope, max_value, threshold
        As for :func:`relu`.
    out : ndarray, optional
        Receives grad_input; it may be grad_output or x itself (any other
        overlap with either is an error).
    inplace : bool, default False
        Write grad_input into grad_output.
    stream : optional
        For GPU arrays; must be None for numpy arrays.

    Returns
    -------
    grad_input : ndarray
        Of x's shape and dtype.

    Notes
    -----
    At the kinks the gradient is that of the branch the forward takes: the
    lower side at ``x == threshold``, 0 at ``x == max_value`` (as PyTorch's
    relu6 and hardtanh).  NaN passes grad_output through.

    Examples
    --------
    >>> import numpy as np, fastact
    >>> x = np.array([-1.0, 0.0, 0.5, 6.0, 7.0])
    >>> fastact.relu_backward(np.ones(5), x, negative_slope=0.25, max_value=6.0)
    array([0.25, 0.25, 1.  , 0.  , 0.  ])
    """
    op, params = _relu_op(negative_slope, max_value, threshold)
    return _backward(op, params, grad_output, x, out, inplace, stream)


def relu6(x, *, out=None, inplace=False, stream=None):
    """``min(max(x, 0), 6)``: :func:`relu` with ``max_value=6``, as torch.nn.ReLU6.

    Parameters
    ----------
    x : ndarray of float32, float64, float16 or bfloat16
        Any shape.
    out, inplace, stream
        As for :func:`relu`.

    Returns
    -------
    y : ndarray
        Of x's shape and dtype.  -0.0 and -inf give +0.0; NaN stays NaN.

    Examples
    --------
    >>> import numpy as np, fastact
    >>> fastact.relu6(np.array([-1.0, 3.0, 6.0, 9.0]))
    array([0., 3., 6., 6.])
    """
    if type(x) is _ndarray and stream is None:
        return _unary_forward(_OP_RELU, _RELU6_PARAMS, x, out, inplace)
    return _forward_other(_OP_RELU, _RELU6_PARAMS, x, out, inplace, stream)


def relu6_backward(grad_output, x, *, out=None, inplace=False, stream=None):
    """Gradient of :func:`relu6`: grad_output where 0 < x < 6, else 0.

    Parameters are as for :func:`relu_backward`.  At x == 0 and x == 6 the
    gradient is 0, as in PyTorch; NaN passes grad_output through.

    Examples
    --------
    >>> import numpy as np, fastact
    >>> fastact.relu6_backward(np.ones(4), np.array([0.0, 3.0, 6.0, 9.0]))
    array([0., 1., 0., 0.])
    """
    return _backward(_OP_RELU, _RELU6_PARAMS, grad_output, x, out, inplace, stream)


def thresholded_relu(x, theta=1.0, *, out=None, inplace=False, stream=None):
    """``y = x if x > theta else 0``, as Keras 2's ThresholdedReLU.

    The same as ``relu(x, threshold=theta)`` (Keras 3 dropped the layer for
    that).

    Parameters
    ----------
    x : ndarray of float32, float64, float16 or bfloat16
        Any shape.
    theta : float, default 1.0
        The threshold, >= 0 (ValueError otherwise, as Keras).
    out, inplace, stream
        As for :func:`relu`.

    Returns
    -------
    y : ndarray
        Of x's shape and dtype; x == theta gives 0, NaN stays NaN.

    Examples
    --------
    >>> import numpy as np, fastact
    >>> fastact.thresholded_relu(np.array([-1.0, 0.5, 1.0, 1.5]))
    array([0. , 0. , 0. , 1.5])
    """
    params = _theta_params(theta)
    if type(x) is _ndarray and stream is None:
        return _unary_forward(_OP_RELU, params, x, out, inplace)
    return _forward_other(_OP_RELU, params, x, out, inplace, stream)


def thresholded_relu_backward(grad_output, x, theta=1.0, *, out=None, inplace=False,
                              stream=None):
    """Gradient of :func:`thresholded_relu`: grad_output where x > theta, else 0.

    Parameters are as for :func:`relu_backward`; at x == theta the gradient
    is 0 (the branch the forward takes there).

    Examples
    --------
    >>> import numpy as np, fastact
    >>> fastact.thresholded_relu_backward(np.ones(3), np.array([0.5, 1.0, 1.5]))
    array([0., 0., 1.])
    """
    return _backward(_OP_RELU, _theta_params(theta), grad_output, x, out, inplace, stream)


# --- elu ---------------------------------------------------------------------------

def elu(x, alpha=1.0, *, out=None, inplace=False, stream=None):
    """Exponential linear unit: ``y = x if x > 0 else alpha * expm1(x)``.

    Parameters
    ----------
    x : ndarray of float32, float64, float16 or bfloat16
        Any shape.
    alpha : float, default 1.0
        Any finite value (the default of PyTorch and Keras).
    out : ndarray, optional
        Array of x's shape and dtype for the result; it may be x itself.
    inplace : bool, default False
        Write the result into x and return x.
    stream : optional
        For GPU arrays; must be None for numpy arrays.

    Returns
    -------
    y : ndarray
        Of x's shape and dtype.

    Notes
    -----
    ``expm1`` keeps full relative accuracy near 0 (``elu(-1e-7)`` is
    ``-9.9999995e-08``, as PyTorch; ``exp(x) - 1`` would lose half the
    digits).  x == 0 takes the exponential branch (``alpha * 0``), -inf gives
    ``-alpha``, NaN stays NaN.

    Examples
    --------
    >>> import numpy as np, fastact
    >>> fastact.elu(np.array([-1.0, -1e-7, 0.0, 2.0]))
    array([-6.32120559e-01, -9.99999950e-08,  0.00000000e+00,  2.00000000e+00])
    """
    params = (_finite(alpha, "alpha"), 0.0, 0.0)
    if type(x) is _ndarray and stream is None:
        return _unary_forward(_OP_ELU, params, x, out, inplace)
    return _forward_other(_OP_ELU, params, x, out, inplace, stream)


def elu_backward(grad_output, x, alpha=1.0, *, out=None, inplace=False, stream=None):
    """Gradient of :func:`elu`: ``grad_output if x > 0 else grad_output * alpha * exp(x)``.

    Parameters
    ----------
    grad_output : ndarray
        Gradient of the loss with respect to elu's output; x's shape and dtype.
    x : ndarray
        elu's input.
    alpha : float, default 1.0
        As for :func:`elu`.
    out, inplace, stream
        As for :func:`relu_backward`.

    Returns
    -------
    grad_input : ndarray
        Of x's shape and dtype.  At x == 0 the gradient is alpha (the branch
        the forward takes); at -inf 0; NaN passes grad_output through.

    Examples
    --------
    >>> import numpy as np, fastact
    >>> fastact.elu_backward(np.ones(3), np.array([-1.0, 0.0, 2.0]), alpha=2.0)
    array([0.73575888, 2.        , 1.        ])
    """
    return _backward(_OP_ELU, (_finite(alpha, "alpha"), 0.0, 0.0), grad_output, x, out,
                     inplace, stream)


# --- square ------------------------------------------------------------------------

def square(x, *, out=None, inplace=False, stream=None):
    """``y = x * x``, elementwise (the classic example of a custom activation).

    Parameters
    ----------
    x : ndarray of float32, float64, float16 or bfloat16
        Any shape.
    out, inplace, stream
        As for :func:`relu`.

    Returns
    -------
    y : ndarray
        Of x's shape and dtype.

    Examples
    --------
    >>> import numpy as np, fastact
    >>> fastact.square(np.array([-3.0, 0.5, 2.0]))
    array([9.  , 0.25, 4.  ])
    """
    if type(x) is _ndarray and stream is None:
        return _unary_forward(_OP_SQUARE, _NO_PARAMS, x, out, inplace)
    return _forward_other(_OP_SQUARE, _NO_PARAMS, x, out, inplace, stream)


def square_backward(grad_output, x, *, out=None, inplace=False, stream=None):
    """Gradient of :func:`square`: ``grad_output * 2 * x`` (computed as ``g * (x + x)``).

    Parameters are as for :func:`relu_backward`.

    Examples
    --------
    >>> import numpy as np, fastact
    >>> fastact.square_backward(np.ones(3), np.array([-3.0, 0.5, 2.0]))
    array([-6.,  1.,  4.])
    """
    return _backward(_OP_SQUARE, _NO_PARAMS, grad_output, x, out, inplace, stream)


# --- configuration -------------------------------------------------------------------

def set_num_threads(n):
    """Use n threads for large calls from now on (None: follow OpenMP again).

    Until this is called, the thread count follows OpenMP's setting at each
    call (OMP_NUM_THREADS, or threadpoolctl's ``threadpool_limits``), capped
    by the CPUs this process may use (affinity mask, cgroup quota).  Small
    calls always run on the calling thread; a process forked after fastact
    ran a thread team runs serially whatever is set (see show_config).
    """
    _cpu.set_num_threads(n)


def get_num_threads():
    """The number of threads a large call would use now."""
    return _cpu.get_num_threads()


def show_config(file=None):
    """Print fastact's build and run-time configuration.

    Version, OpenMP, thread count and CPU limit, the SIMD level chosen at run
    time, whether a fork switched this process to serial, and whether the
    CUDA part was built and can use a GPU (which starts the CUDA driver: see
    `fastact.cuda_available`).  ``fastact.config()`` returns the same as a
    dict.
    """
    from ._version import __version__

    info = config()
    bf16 = "yes" if info["bfloat16"] else "no"
    cuda_usable = "yes" if info["cuda_usable"] else "no"
    cuda_why = info["cuda"]
    if cuda_why == "not built":
        cuda_why = ("the CUDA part was not built: reinstall with nvcc on PATH or CUDA_HOME "
                    "set, and FASTACT_CUDA=1 to make a failed CUDA build an error")
    lines = [
        f"fastact {__version__}",
        f"  imported from:      {info['location']}",
        f"  Python:             {info['python']}",
        f"  numpy:              {info['numpy']}",
        f"  bfloat16 usable:    {bf16} ({info['bfloat16_detail']})",
        f"  OpenMP:             {'yes' if info['openmp'] else 'no (serial build)'}",
        f"  threads:            {info['num_threads']} (CPUs available: {info['cpu_limit']})",
        f"  forked, now serial: {'yes' if info['forked_serial'] else 'no'}",
        f"  thread back-off:    {'on' if info['thread_backoff'] else 'off'} (large calls run on "
        f"one thread while a team costs more than it saves)",
        f"  SIMD level:         {info['isa']} (best here: {info['isa_best']}; "
        f"supported: {', '.join(info['isa_supported'])})",
        f"  streaming stores:   for outputs of {info['streaming_threshold_bytes'] >> 20} MiB or more",
        f"  CUDA usable:        {cuda_usable} ({cuda_why})",
    ]
    print("\n".join(lines), file=file)


def config():
    """fastact's configuration as a dict (what show_config prints).

    Finding out whether bfloat16 is usable imports ml_dtypes, and whether a
    GPU is usable starts the CUDA driver (where the CUDA part is built)."""
    import os
    import platform

    from . import _dtypes

    info = _cpu.config()
    info["location"] = os.path.dirname(os.path.abspath(__file__))
    info["python"] = f"{platform.python_version()} ({platform.python_implementation()})"
    info["numpy"] = np.__version__
    info["bfloat16"], info["bfloat16_detail"] = _dtypes.bfloat16_status()
    status = _device.cuda_status()
    info["cuda"] = status
    info["cuda_built"] = not status.startswith("not built")
    info["cuda_usable"] = _device.cuda_available()
    return info
