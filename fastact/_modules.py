"""Stateful modules built on the functional API (in the manner of torch.nn)."""
import numpy as np

from . import _cpu
from ._api import prelu, prelu_backward

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class PReLU:
    """Parametric ReLU with learnable slopes, like torch.nn.PReLU and
    PuzzleLib's PRelu.

    ``y = x if x > 0 else slopes[c] * x`` for channel c (axis 1), or with one
    slope shared by every element.

    Parameters
    ----------
    channels : int, default 1
        Number of channels C (axis 1 of the input); ignored when shared.
    shared : bool, default False
        One slope for every element instead of one per channel.
    init : float, default 0.25
        Initial slope (0.25 as in PyTorch and PuzzleLib; Keras uses 0).
    inplace : bool, default False
        Write the forward result into its input.  backward then works from
        the output, which needs every slope > 0 (the sign of x is read off y,
        and ``grad_slopes[c] = sum(y * g where not y > 0) / slopes[c]``).
    dtype : float32 or float64, default float32
        dtype of ``slopes``.

    Attributes
    ----------
    slopes : ndarray, shape (C,) or (1,) when shared
        The slopes; writeable, used by every later call.
    grad_slopes : ndarray or None
        Gradient of the loss with respect to ``slopes`` from the last
        ``backward``, of the same shape.

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
    """

    def __init__(self, channels=1, *, shared=False, init=0.25, inplace=False,
                 dtype=np.float32):
        dtype = np.dtype(dtype)
        if dtype not in _DTYPES:
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) \
                or channels < 1:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        self.shared = bool(shared)
        self.inplace = bool(inplace)
        self.slopes = np.full(1 if self.shared else int(channels), init, dtype=dtype)
        self.grad_slopes = None
        self._saved = None          # x, or y after an in-place forward
        self._saved_is_output = False

    def forward(self, x):
        """prelu(x, slopes); keeps x (or, in place, the output) for backward."""
        y = prelu(x, self.slopes, inplace=self.inplace)
        self._saved = y if self.inplace else x
        self._saved_is_output = self.inplace
        return y

    __call__ = forward

    def backward(self, grad_output):
        """grad_input for the last forward; stores grad_slopes."""
        if self._saved is None:
            raise RuntimeError("PReLU.backward called before forward")
        if self._saved_is_output:
            if not np.all(self.slopes > 0):
                raise ValueError(
                    "PReLU.backward after an in-place forward needs every slope "
                    "> 0 (the input is overwritten, and with a slope <= 0 its sign "
                    "cannot be read off the output); use inplace=False")
            grad_output = np.asarray(grad_output)
            grad_input, grad_slopes = _cpu.prelu_backward(
                grad_output, self._saved, self.slopes, None, False, True)
        else:
            grad_input, grad_slopes = prelu_backward(grad_output, self._saved, self.slopes)
        self.grad_slopes = grad_slopes.astype(self.slopes.dtype).reshape(self.slopes.shape)
        return grad_input

    def __repr__(self):
        n = "shared" if self.shared else f"channels={self.slopes.size}"
        return f"PReLU({n}, inplace={self.inplace}, dtype={self.slopes.dtype})"
