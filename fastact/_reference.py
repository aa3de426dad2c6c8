"""Slow float64 numpy oracles: the single source of truth for tests and benches.

Each function states the semantics fastact implements, element by element, in
the plainest numpy there is, computing in float64 whatever the input dtype.
"""
import numpy as np


def _slopes_for(x, slopes):
    """slopes broadcast against x: shared (one value) or per channel (axis 1)."""
    s = np.asarray(slopes, dtype=np.float64)
    if s.size == 1:
        return s.reshape(())
    return s.reshape((1, -1) + (1,) * (x.ndim - 2))


def prelu(x, slopes):
    """y = x where x > 0, else slope * x (NaN propagates; x == 0 takes the slope)."""
    x = np.asarray(x, dtype=np.float64)
    s = _slopes_for(x, slopes)
    return np.where(x > 0, x, s * x)


def prelu_backward(grad_output, x, slopes):
    """(grad_input, grad_slopes) of prelu.

    grad_input = g where x > 0, else slope * g.
    grad_slopes[c] = sum over channel c of x * g where not (x > 0): a NaN in x
    makes its channel's sum NaN.  The shape is that of slopes (a 0-d array for
    a Python number).
    """
    g = np.asarray(grad_output, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    s = _slopes_for(x, slopes)
    positive = x > 0
    grad_input = np.where(positive, g, s * g)
    terms = np.where(positive, 0.0, x * g)
    shape = np.shape(slopes)
    if np.size(slopes) == 1:
        return grad_input, np.full(shape, terms.sum())
    axes = (0,) + tuple(range(2, x.ndim))
    return grad_input, terms.sum(axis=axes).reshape(shape)
