"""Stateful activation modules built on the functional API (in the manner of torch.nn).

Every module has ``forward(x, *, out=None)`` (also ``m(x)``), which keeps what
``backward(grad_output, *, out=None)`` needs, the stateless
``function(x, *, out=None, inplace=False)`` and
``gradient(grad_output, x, *, out=None, inplace=False)``, its parameters as
attributes, and an ``inplace`` flag: the forward then writes into its input
and backward works from the output where that is exact (a clear ValueError
where it is not).  ``fastact.get(name, **params)`` returns these modules.
"""
import numpy as np

from . import _checks, _dtypes
from ._api import (
    elu,
    elu_backward,
    elu_backward_from_output,
    hardtanh,
    hardtanh_backward,
    leaky_relu,
    leaky_relu_backward,
    prelu,
    prelu_backward,
    prelu_backward_from_output,
    relu,
    relu6,
    relu6_backward,
    relu_backward,
    square,
    square_backward,
    thresholded_relu,
    thresholded_relu_backward,
)
from ._foreign import is_foreign

__all__ = ["Activation", "LeakyReLU", "ReLU", "ReLU6", "ThresholdedReLU", "ELU",
           "Hardtanh", "Square", "PReLU", "Custom"]


def _aliases(out, x):
    """True when writing out overwrites x (out is x, or the same memory)."""
    if out is None:
        return False
    if out is x:
        return True
    return (isinstance(out, np.ndarray) and isinstance(x, np.ndarray)
            and np.may_share_memory(out, x) and np.shares_memory(out, x))


def _low_precision_type(a):
    """float16 or bfloat16 (as a numpy type) when a holds one, else None.  Works
    for numpy arrays and for GPU arrays whose dtype prints as 'float16' etc."""
    name = str(getattr(a, "dtype", ""))
    if name.endswith("bfloat16"):
        return _dtypes.bfloat16(f"a {name} array").type
    if name.endswith(_dtypes.F16.name):
        return np.float16
    return None


class Activation:
    """Base class of fastact's activation modules.

    Subclasses define ``_params()`` (the parameters as a tuple), ``_forward`` and
    ``_backward`` (the functional calls) and, where the gradient can be read off
    the output exactly, ``_backward_from_output``; ``_from_output_problem`` says
    why it cannot (None when it can).
    """

    #: the canonical name under which ``fastact.get`` finds the module
    name = None
    #: constructor parameters shown by repr and accepted by ``fastact.get``
    _param_names = ()

    def __init__(self, *, inplace=False):
        self.inplace = _checks.flag(inplace, "inplace")
        self._saved = None             # x, or y after an in-place forward
        self._saved_is_output = False
        self._saved_params = None      # the parameters the saved forward used

    # --- subclass hooks ---
    def _params(self):
        return tuple(getattr(self, n) for n in self._param_names)

    def _forward(self, x, params, out, inplace, stream):
        raise NotImplementedError

    def _backward(self, grad_output, x, params, out, inplace, stream):
        raise NotImplementedError

    def _from_output_problem(self, params, y):
        return "cannot read the gradient off the output"

    def _backward_from_output(self, grad_output, y, params, out, stream):
        raise NotImplementedError

    # --- public interface ---
    def function(self, x, *, out=None, inplace=False, stream=None):
        """The activation applied to x, keeping no state (as the functional API)."""
        return self._forward(x, self._params(), out, inplace, stream)

    def gradient(self, grad_output, x, *, out=None, inplace=False, stream=None):
        """grad_input for input x, keeping no state (as the functional API)."""
        return self._backward(grad_output, x, self._params(), out, inplace, stream)

    def forward(self, x, *, out=None, stream=None):
        """The activation of x (into ``out``, or into x when the module is in
        place); keeps x, or the output when it overwrote x, for backward."""
        params = self._params()
        y = self._forward(x, params, out, self.inplace, stream)
        self._saved_is_output = self.inplace or _aliases(out, x)
        self._saved = y if self._saved_is_output else x
        self._saved_params = params
        return y

    def __call__(self, x, *, out=None, stream=None):
        return self.forward(x, out=out, stream=stream)

    def backward(self, grad_output, *, out=None, stream=None):
        """grad_input for the last forward (with the parameters it used)."""
        if self._saved is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        params = self._saved_params
        if self._saved_is_output:
            problem = self._from_output_problem(params, self._saved)
            if problem is not None:
                raise ValueError(
                    f"{type(self).__name__}.backward after an in-place forward: the input "
                    f"was overwritten, and {problem}; use inplace=False")
            return self._backward_from_output(grad_output, self._saved, params, out, stream)
        return self._backward(grad_output, self._saved, params, out, False, stream)

    def __repr__(self):
        args = [f"{n}={getattr(self, n)!r}" for n in self._param_names]
        args.append(f"inplace={self.inplace}")
        return f"{type(self).__name__}({', '.join(args)})"


class LeakyReLU(Activation):
    """Leaky ReLU, like torch.nn.LeakyReLU: ``y = x if x > 0 else negative_slope * x``.

    Parameters
    ----------
    negative_slope : float, default 0.01
        Any finite slope (0.01 as in PyTorch; Keras's layer uses 0.3, tf.nn 0.2).
    inplace : bool, default False
        Write the forward result into its input.  backward then reads the sign
        of x off the output, exact for ``negative_slope > 0`` (ValueError
        otherwise).

    Examples
    --------
    >>> import numpy as np, fastact
    >>> m = fastact.LeakyReLU(0.1)
    >>> m(np.array([-2.0, 0.0, 3.0]))
    array([-0.2,  0. ,  3. ])
    >>> m.backward(np.ones(3))
    array([0.1, 0.1, 1. ])
    """

    name = "leaky_relu"
    _param_names = ("negative_slope",)

    def __init__(self, negative_slope=0.01, *, inplace=False):
        super().__init__(inplace=inplace)
        self.negative_slope = _checks.finite(negative_slope, "negative_slope")

    def _params(self):
        return (self.negative_slope,)

    def _forward(self, x, params, out, inplace, stream):
        return leaky_relu(x, params[0], out=out, inplace=inplace, stream=stream)

    def _backward(self, grad_output, x, params, out, inplace, stream):
        return leaky_relu_backward(grad_output, x, params[0], out=out, inplace=inplace,
                                   stream=stream)

    def _from_output_problem(self, params, y):
        if params[0] > 0:
            return None     # y has x's sign: y > 0 exactly where x > 0
        return (f"with negative_slope = {params[0]} (not > 0) the sign of x cannot be "
                f"read off the output")

    def _backward_from_output(self, grad_output, y, params, out, stream):
        return leaky_relu_backward(grad_output, y, params[0], out=out, stream=stream)


class ReLU(Activation):
    """ReLU with Keras's optional slope, cap and threshold (keras.layers.ReLU).

    ``y = max_value`` where ``x >= max_value``, ``x`` where
    ``threshold < x < max_value``, ``negative_slope * (x - threshold)`` elsewhere
    (exactly 0 when negative_slope is 0).  See :func:`fastact.relu`.

    Parameters
    ----------
    negative_slope : float, default 0.0
        >= 0.
    max_value : float or None, default None
        >= 0, or None for no cap.
    threshold : float, default 0.0
        >= 0.
    inplace : bool, default False
        Write the forward result into its input; backward then works from the
        output (exact: the output is <= threshold exactly where x is, and
        equals max_value exactly where x >= max_value).  Refused at backward
        for max_value == 0 with negative_slope > 0, and for float16/bfloat16
        input when max_value does not round to itself in that dtype.

    Examples
    --------
    >>> import numpy as np, fastact
    >>> m = fastact.ReLU(max_value=10.0, negative_slope=0.5)
    >>> m(np.array([-10.0, -5.0, 0.0, 5.0, 10.0]))
    array([-5. , -2.5,  0. ,  5. , 10. ])
    >>> m.backward(np.ones(5))
    array([0.5, 0.5, 0.5, 1. , 0. ])
    """

    name = "relu"
    _param_names = ("negative_slope", "max_value", "threshold")

    def __init__(self, negative_slope=0.0, max_value=None, threshold=0.0, *, inplace=False):
        super().__init__(inplace=inplace)
        # kept as the Python floats the functions use (max_value: None or one)
        ns, m, t = _checks.relu(negative_slope, max_value, threshold)
        self.negative_slope, self.threshold = ns, t
        self.max_value = None if max_value is None else m

    def _params(self):
        return (self.negative_slope, self.max_value, self.threshold)

    def _forward(self, x, params, out, inplace, stream):
        return relu(x, *params, out=out, inplace=inplace, stream=stream)

    def _backward(self, grad_output, x, params, out, inplace, stream):
        return relu_backward(grad_output, x, *params, out=out, inplace=inplace, stream=stream)

    def _from_output_problem(self, params, y):
        ns, m, _ = params
        if m is None:
            return None
        if m == 0 and ns > 0:
            # y = negative_slope * (x - threshold) < 0 where x < 0, but it can
            # underflow to 0 and look like the capped branch (gradient 0)
            return ("with max_value = 0 and negative_slope > 0 an output of 0 may come "
                    "from either branch")
        low = _low_precision_type(y)
        if low is not None and m != float("inf"):
            # the kernels compare with max_value in float32 and round y once:
            # a cap that rounds down in y's dtype would not be recognised
            m32 = np.float32(m)
            if np.float32(low(m32)) < m32:
                return (f"max_value = {m} rounds down in {np.dtype(low).name}, so the "
                        f"capped outputs cannot be told from the others")
        return None

    def _backward_from_output(self, grad_output, y, params, out, stream):
        # For valid parameters relu's gradient at y = relu(x) equals its
        # gradient at x: y >= max_value exactly where x >= max_value, y <= 0 <=
        # threshold where x <= threshold, and y = x in between.
        return relu_backward(grad_output, y, *params, out=out, stream=stream)


class ReLU6(Activation):
    """``min(max(x, 0), 6)``, like torch.nn.ReLU6 (gradient 0 at 0 and at 6).

    Parameters
    ----------
    inplace : bool, default False
        Write the forward result into its input (backward then works from
        the output, exactly).

    Examples
    --------
    >>> import numpy as np, fastact
    >>> m = fastact.ReLU6()
    >>> m(np.array([-1.0, 3.0, 6.0, 9.0]))
    array([0., 3., 6., 6.])
    >>> m.backward(np.ones(4))
    array([0., 1., 0., 0.])
    """

    name = "relu6"

    def _forward(self, x, params, out, inplace, stream):
        return relu6(x, out=out, inplace=inplace, stream=stream)

    def _backward(self, grad_output, x, params, out, inplace, stream):
        return relu6_backward(grad_output, x, out=out, inplace=inplace, stream=stream)

    def _from_output_problem(self, params, y):
        return None         # as ReLU's; 6 is exact in every dtype

    def _backward_from_output(self, grad_output, y, params, out, stream):
        return relu6_backward(grad_output, y, out=out, stream=stream)


class Hardtanh(Activation):
    """x clipped to ``[min_val, max_val]``, like torch.nn.Hardtanh.

    Parameters
    ----------
    min_val : float, default -1.0
    max_val : float, default 1.0
        The bounds, ``min_val <= max_val`` (either may be infinite).
    inplace : bool, default False
        Write the forward result into its input; backward then works from the
        output (exact: the output lies strictly between the bounds exactly
        where x does).  Refused at backward for float16/bfloat16 input when a
        bound does not round to itself in that dtype towards the outside.

    Examples
    --------
    >>> import numpy as np, fastact
    >>> m = fastact.Hardtanh(0.0, 6.0)
    >>> m(np.array([-1.0, 3.0, 6.0, 9.0]))
    array([0., 3., 6., 6.])
    >>> m.backward(np.ones(4))
    array([0., 1., 0., 0.])
    """

    name = "hardtanh"
    _param_names = ("min_val", "max_val")

    def __init__(self, min_val=-1.0, max_val=1.0, *, inplace=False):
        super().__init__(inplace=inplace)
        self.min_val, self.max_val = _checks.hardtanh(min_val, max_val)

    def _forward(self, x, params, out, inplace, stream):
        return hardtanh(x, *params, out=out, inplace=inplace, stream=stream)

    def _backward(self, grad_output, x, params, out, inplace, stream):
        return hardtanh_backward(grad_output, x, *params, out=out, inplace=inplace,
                                 stream=stream)

    def _from_output_problem(self, params, y):
        low = _low_precision_type(y)
        if low is None:
            return None
        # the kernels compare with the bounds in float32 and round y once: a
        # clipped output that rounds into the open range would look unclipped
        for name, bound, inward in (("min_val", params[0], 1), ("max_val", params[1], -1)):
            b32 = np.float32(bound)
            if inward * (np.float32(low(b32)) - b32) > 0:
                return (f"{name} = {bound} rounds towards the inside of the range in "
                        f"{np.dtype(low).name}, so the clipped outputs cannot be told from "
                        f"the others")
        return None

    def _backward_from_output(self, grad_output, y, params, out, stream):
        # y lies strictly between the bounds exactly where x does, and y = x there
        return hardtanh_backward(grad_output, y, *params, out=out, stream=stream)


class ThresholdedReLU(Activation):
    """``y = x if x > theta else 0``, like Keras 2's ThresholdedReLU.

    Parameters
    ----------
    theta : float, default 1.0
        >= 0.
    inplace : bool, default False
        Write the forward result into its input (backward then works from
        the output, exactly: y > theta exactly where x > theta).

    Examples
    --------
    >>> import numpy as np, fastact
    >>> m = fastact.ThresholdedReLU(theta=1.0)
    >>> m(np.array([-1.0, 0.5, 1.0, 1.5]))
    array([0. , 0. , 0. , 1.5])
    >>> m.backward(np.ones(4))
    array([0., 0., 0., 1.])
    """

    name = "thresholded_relu"
    _param_names = ("theta",)

    def __init__(self, theta=1.0, *, inplace=False):
        super().__init__(inplace=inplace)
        self.theta = _checks.theta(theta)

    def _params(self):
        return (self.theta,)

    def _forward(self, x, params, out, inplace, stream):
        return thresholded_relu(x, params[0], out=out, inplace=inplace, stream=stream)

    def _backward(self, grad_output, x, params, out, inplace, stream):
        return thresholded_relu_backward(grad_output, x, params[0], out=out, inplace=inplace,
                                         stream=stream)

    def _from_output_problem(self, params, y):
        return None         # the output is 0 <= theta or x > theta

    def _backward_from_output(self, grad_output, y, params, out, stream):
        return thresholded_relu_backward(grad_output, y, params[0], out=out, stream=stream)


class ELU(Activation):
    """Exponential linear unit, like torch.nn.ELU: ``x if x > 0 else alpha * expm1(x)``.

    Parameters
    ----------
    alpha : float, default 1.0
        Any finite value.
    inplace : bool, default False
        Write the forward result into its input.  backward then computes the
        gradient from the output as ``g * (y + alpha)`` where y <= 0 (as
        PyTorch does), which needs alpha > 0 (ValueError otherwise) and can
        differ from ``g * alpha * exp(x)`` by a rounding of y.

    Examples
    --------
    >>> import numpy as np, fastact
    >>> m = fastact.ELU(alpha=2.0)
    >>> m(np.array([-1.0, 0.0, 2.0]))
    array([-1.26424112,  0.        ,  2.        ])
    >>> m.backward(np.ones(3))
    array([0.73575888, 2.        , 1.        ])
    """

    name = "elu"
    _param_names = ("alpha",)

    def __init__(self, alpha=1.0, *, inplace=False):
        super().__init__(inplace=inplace)
        self.alpha = _checks.finite(alpha, "alpha")

    def _params(self):
        return (self.alpha,)

    def _forward(self, x, params, out, inplace, stream):
        return elu(x, params[0], out=out, inplace=inplace, stream=stream)

    def _backward(self, grad_output, x, params, out, inplace, stream):
        return elu_backward(grad_output, x, params[0], out=out, inplace=inplace, stream=stream)

    def _from_output_problem(self, params, y):
        if params[0] > 0:
            return None     # y <= 0 exactly where x <= 0
        return (f"with alpha = {params[0]} (not > 0) the branch x took cannot be read "
                f"off the output")

    def _backward_from_output(self, grad_output, y, params, out, stream):
        alpha = _checks.finite(params[0], "alpha")
        return elu_backward_from_output(grad_output, y, alpha, out, stream)


class Square(Activation):
    """``y = x * x`` (gradient ``2 * x``).

    Parameters
    ----------
    inplace : bool, default False
        Write the forward result into its input.  The gradient needs x's sign,
        which the output has lost: backward after an in-place forward raises
        ValueError.

    Examples
    --------
    >>> import numpy as np, fastact
    >>> m = fastact.Square()
    >>> m(np.array([-3.0, 0.5, 2.0]))
    array([9.  , 0.25, 4.  ])
    >>> m.backward(np.ones(3))
    array([-6.,  1.,  4.])
    """

    name = "square"

    def _forward(self, x, params, out, inplace, stream):
        return square(x, out=out, inplace=inplace, stream=stream)

    def _backward(self, grad_output, x, params, out, inplace, stream):
        return square_backward(grad_output, x, out=out, inplace=inplace, stream=stream)

    def _from_output_problem(self, params, y):
        return "the gradient 2 * x needs the sign of x, which x * x has lost"


class PReLU(Activation):
    """Parametric ReLU with learnable slopes, like torch.nn.PReLU, PuzzleLib's
    PRelu and keras.layers.PReLU.

    ``y = x if x > 0 else slope * x``, with one slope per channel, one shared
    by every element, or slopes of any shape broadcast against
    ``x.shape[1:]`` (Keras's ``shared_axes``: the axes where that shape is 1).

    Parameters
    ----------
    channels : int, default 1
        Number of channels C (on ``channel_axis``); ignored when shared.
    shared : bool, default False
        One slope for every element instead of one per channel.
    init : float, default 0.25
        Initial slope (0.25 as in PyTorch and PuzzleLib; Keras uses 0).
    inplace : bool, default False
        Write the forward result into its input.  backward then works from
        the output, which needs every slope > 0 (the sign of x is read off y,
        and ``grad_slopes = sum(y * g where not y > 0) / slope``).
    dtype : float32, float64, float16 or bfloat16, default float32
        dtype of ``slopes`` (bfloat16 needs ml_dtypes).
    channel_axis : {1, -1}, default 1
        Where the channels are: axis 1 (NCHW) or the last axis (NHWC).
    slopes_shape : tuple of int, optional
        The shape of ``slopes`` instead of ``channels``/``shared``: (C,) per
        channel, (1,) shared, or 2 or more dims broadcast against
        ``x.shape[1:]``, e.g. (1, 1, C) for NHWC with slopes shared over H
        and W (Keras's ``shared_axes=[1, 2]``) or (H, W, C) for none shared.

    Attributes
    ----------
    slopes : ndarray
        The slopes; writeable, used by every later call.
    grad_slopes : ndarray or None
        Gradient of the loss with respect to ``slopes`` from the last
        ``backward``, of the same shape and dtype.

    Examples
    --------
    >>> import numpy as np, fastact
    >>> m = fastact.PReLU(3, init=0.5)
    >>> x = np.array([[[-2.0], [1.0], [-4.0]]], dtype=np.float32)  # (1, 3, 1)
    >>> m(x).ravel()
    array([-1.,  1., -2.], dtype=float32)
    >>> m.backward(np.ones_like(x)).ravel()
    array([0.5, 1. , 0.5], dtype=float32)
    >>> m.grad_slopes
    array([-2.,  0., -4.], dtype=float32)
    >>> m = fastact.PReLU(2, channel_axis=-1, dtype=np.float64)        # NLC
    >>> m(np.array([[[-2.0, -4.0], [3.0, -8.0]]]))
    array([[[-0.5, -1. ],
            [ 3. , -2. ]]])
    """

    name = "prelu"

    def __init__(self, channels=1, *, shared=False, init=0.25, inplace=False,
                 dtype=np.float32, channel_axis=1, slopes_shape=None):
        super().__init__(inplace=inplace)
        dtype = _checks.dtype(dtype)
        channels = _checks.channels(channels)
        channel_axis = _checks.channel_axis(channel_axis)
        init = _checks.finite(init, "init")
        if slopes_shape is not None:
            if shared or channels != 1:
                raise ValueError("pass either slopes_shape or channels/shared, not both")
            shape = _checks.slopes_shape(slopes_shape)
        else:
            shape = (1 if shared else channels,)
        self.shared = bool(shared) or (slopes_shape is not None and int(np.prod(shape)) == 1)
        self.channel_axis = channel_axis
        self.slopes = np.full(shape, init, dtype=dtype)
        self.grad_slopes = None

    @property
    def dtype(self):
        return self.slopes.dtype

    def _params(self):
        return (self.slopes, self.channel_axis)

    def _forward(self, x, params, out, inplace, stream):
        return prelu(x, params[0], channel_axis=params[1], out=out, inplace=inplace,
                     stream=stream)

    def _backward(self, grad_output, x, params, out, inplace, stream):
        return prelu_backward(grad_output, x, params[0], channel_axis=params[1], out=out,
                              inplace=inplace, stream=stream)

    def gradient(self, grad_output, x, *, out=None, inplace=False, stream=None):
        """``(grad_input, grad_slopes)`` for input x, keeping no state (as
        :func:`fastact.prelu_backward`)."""
        return self._backward(grad_output, x, self._params(), out, inplace, stream)

    def backward(self, grad_output, *, out=None, stream=None):
        """grad_input for the last forward; stores ``grad_slopes``."""
        if self._saved is None:
            raise RuntimeError("PReLU.backward called before forward")
        slopes, channel_axis = self.slopes, self._saved_params[1]
        if self._saved_is_output:
            if not np.all(slopes > 0):
                raise ValueError(
                    "PReLU.backward after an in-place forward needs every slope "
                    "> 0 (the input is overwritten, and with a slope <= 0 its sign "
                    "cannot be read off the output); use inplace=False")
            grad_input, grad_slopes = prelu_backward_from_output(
                grad_output, self._saved, slopes, channel_axis, out, stream)
        else:
            grad_input, grad_slopes = prelu_backward(
                grad_output, self._saved, slopes, channel_axis=channel_axis, out=out,
                stream=stream)
        self.grad_slopes = _host(grad_slopes).astype(slopes.dtype).reshape(slopes.shape)
        return grad_input

    def __repr__(self):
        if self.slopes.ndim != 1:
            n = f"slopes_shape={self.slopes.shape}"
        else:
            n = "shared" if self.shared else f"channels={self.slopes.size}"
        axis = "" if self.channel_axis == 1 else f", channel_axis={self.channel_axis}"
        return f"PReLU({n}{axis}, inplace={self.inplace}, dtype={self.slopes.dtype})"


def _host(a):
    """a as a numpy array: grad_slopes comes back on the GPU for GPU input,
    while the module keeps its slopes (and their gradient) in numpy."""
    if isinstance(a, np.ndarray):
        return a
    if hasattr(a, "get"):                       # CuPy
        return a.get()
    if hasattr(a, "detach"):                    # torch
        return a.detach().cpu().numpy()
    return np.asarray(a)


class Custom(Activation):
    """An activation registered with :func:`fastact.register`.

    Made by ``fastact.get(name, **params)``: ``forward(x, **params)`` and
    ``backward(grad_output, x, **params)`` are the registered numpy callables.
    Each result is checked (a numpy array of x's shape and dtype) before
    anything is written to ``out`` or, in place, to x; then it is copied there.

    In place, the forward overwrites x, which the registered backward needs:
    backward after an in-place forward raises ValueError.
    """

    def __init__(self, name, forward, backward, params=None, *, inplace=False):
        super().__init__(inplace=inplace)
        self.name = name
        self.forward_function = forward
        self.backward_function = backward
        self.params = dict(params or {})

    def _params(self):
        return self.params

    def _forward(self, x, params, out, inplace, stream):
        x = self._input(x, "x", inplace, stream)
        dest = _checks.numpy_destination(out, inplace, x, "x")
        y = self._checked(self.forward_function(x, **params), "forward", x)
        return self._deliver(y, dest, (x,))

    def _backward(self, grad_output, x, params, out, inplace, stream):
        x = self._input(x, "x", False, stream)
        g = self._input(grad_output, "grad_output", inplace, stream)
        _checks.matches("grad_output", g.dtype, g.shape, x.dtype, x.shape)
        dest = _checks.numpy_destination(out, inplace, g, "grad_output")
        gi = self._checked(self.backward_function(g, x, **params), "backward", x)
        return self._deliver(gi, dest, (g, x))

    def _from_output_problem(self, params, y):
        return f"the registered backward of {self.name!r} needs x"

    # --- helpers ---
    def _input(self, a, name, inplace, stream):
        if type(a) is not np.ndarray and is_foreign(a):
            raise TypeError(f"custom activation {self.name!r} runs numpy callables: "
                            f"{name} must be a numpy array, got {type(a).__name__}")
        _checks.no_stream(stream)
        return _checks.supported_array(_checks.numpy_input(a, name, inplace), name)

    def _checked(self, result, which, x):
        """result, checked to be a numpy array of x's shape and dtype."""
        fn = self.forward_function if which == "forward" else self.backward_function
        what = f"custom activation {self.name!r}: {which} ({_callable_name(fn)})"
        if isinstance(result, np.generic):
            result = np.asarray(result)         # numpy functions return scalars for 0-d input
        if not isinstance(result, np.ndarray):
            raise TypeError(f"{what} returned {type(result).__name__}; expected a "
                            f"numpy.ndarray of shape {x.shape} and dtype {x.dtype}")
        if result.dtype != x.dtype:
            raise TypeError(f"{what} returned dtype {result.dtype}; expected {x.dtype}, "
                            f"the dtype of x (cast inside the callable if needed)")
        if result.shape != x.shape:
            raise ValueError(f"{what} returned shape {result.shape}; expected {x.shape}, "
                             f"the shape of x")
        return result

    @staticmethod
    def _deliver(result, dest, inputs):
        """result into dest; a new array never shares memory with the inputs."""
        if dest is None:
            if any(np.may_share_memory(result, a) for a in inputs):
                return result.copy()
            return result
        np.copyto(dest, result)
        return dest

    def __repr__(self):
        args = [repr(self.name)] + [f"{k}={v!r}" for k, v in self.params.items()]
        args.append(f"inplace={self.inplace}")
        return f"Custom({', '.join(args)})"


def _callable_name(fn):
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
