"""fastact's functional API: device-independent argument handling and dispatch.

Semantics (as in PyTorch, the reference where frameworks disagree):

=================  ==============================  ===============================
x                  prelu(x)                        d prelu / d x (grad_input / g)
=================  ==============================  ===============================
x > 0              x                               1
x == 0 (+0, -0)    slope * x (a signed zero)       slope
x < 0              slope * x                       slope
NaN                NaN                             slope (grad_slopes[c] is NaN)
+inf / -inf        +inf / slope * -inf             1 / slope
=================  ==============================  ===============================

The slope gradient is sum(x * g) over the elements where not (x > 0).  This is
right for every slope, including slopes > 1, 0 and negative ones; the shortcut
max(x, slope * x) is not, and fastact never uses it.
"""
import numpy as np

from . import _cpu

__all__ = ["prelu", "prelu_backward", "set_num_threads", "get_num_threads",
           "show_config"]

# Bound once: a (1, 16, 8, 8) call takes well under a microsecond, and module
# attribute lookups on every call are a visible share of it.
_ndarray = np.ndarray
_prelu_forward = _cpu.prelu_forward
_prelu_backward = _cpu.prelu_backward


def _as_array(a, name, writable):
    """a as a numpy array (array-likes are converted; in-place targets cannot be)."""
    if isinstance(a, np.ndarray):
        return a
    if writable:
        raise TypeError(f"inplace=True needs {name} to be a numpy.ndarray, "
                        f"got {type(a).__name__}")
    return np.asarray(a)


def prelu(x, slopes, *, out=None, inplace=False):
    """Parametric ReLU: ``y = x if x > 0 else slope * x``, elementwise.

    Parameters
    ----------
    x : ndarray of float32 or float64
        Shape (N, C, *spatial) with any number of spatial dims (NC, NCL, NCHW,
        NCDHW); channels are axis 1.  With a shared slope, any shape.
    slopes : float or array_like
        A Python number or one value (shared by every element), or a 1-D
        array of C values (one per channel).  Other float dtypes are cast to
        x's dtype.
    out : ndarray, optional
        Array of x's shape and dtype to write the result into.  It may be x
        itself (in place); any other overlap with x is an error.
    inplace : bool, default False
        Write the result into x and return x.

    Returns
    -------
    y : ndarray
        The result, of x's shape and dtype (``out`` or ``x`` when given).

    Notes
    -----
    Computed as ``x > 0 ? x : slope * x`` in x's dtype: NaN propagates, -0.0
    becomes ``slope * -0.0``, and x == 0 takes the slope's branch.  Right for
    every slope, including slopes > 1, 0 and negative ones.  Nothing is
    written when an argument is rejected.

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
    """
    if type(x) is not _ndarray:
        x = _as_array(x, "x", inplace)
    return _prelu_forward(x, slopes, out, inplace)


def prelu_backward(grad_output, x, slopes, *, out=None, inplace=False):
    """Gradients of :func:`prelu`, in one pass over memory.

    Parameters
    ----------
    grad_output : ndarray
        Gradient of the loss with respect to prelu's output; x's shape and dtype.
    x : ndarray of float32 or float64
        prelu's input, shape (N, C, *spatial) (any shape with a shared slope).
    slopes : float or array_like
        As for :func:`prelu`.
    out : ndarray, optional
        Receives grad_input (x's shape and dtype).  It may be grad_output
        itself; any other overlap with grad_output or x is an error.
    inplace : bool, default False
        Write grad_input into grad_output.

    Returns
    -------
    grad_input : ndarray
        ``grad_output where x > 0, else slope * grad_output``.
    grad_slopes : ndarray
        A new array of x's dtype with the shape of ``slopes`` (0-d for a Python
        number): ``sum over channel c of x * grad_output where not (x > 0)``,
        or over every element for a shared slope.  A NaN in x makes its
        channel's gradient NaN.

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
    if type(grad_output) is not _ndarray:
        grad_output = _as_array(grad_output, "grad_output", inplace)
    if type(x) is not _ndarray:
        x = _as_array(x, "x", False)
    return _prelu_backward(grad_output, x, slopes, out, inplace)


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
    CUDA part was built.  ``fastact.config()`` returns the same as a dict.
    """
    from ._version import __version__

    info = config()
    lines = [
        f"fastact {__version__}",
        f"  OpenMP:             {'yes' if info['openmp'] else 'no (serial build)'}",
        f"  threads:            {info['num_threads']} (CPUs available: {info['cpu_limit']})",
        f"  forked, now serial: {'yes' if info['forked_serial'] else 'no'}",
        f"  SIMD level:         {info['isa']} (best here: {info['isa_best']}; "
        f"supported: {', '.join(info['isa_supported'])})",
        f"  streaming stores:   for outputs of {info['streaming_threshold_bytes'] >> 20} MiB or more",
        f"  CUDA:               {'built' if info['cuda_built'] else 'not built'}",
    ]
    print("\n".join(lines), file=file)


def config():
    """fastact's configuration as a dict (what show_config prints)."""
    info = _cpu.config()
    info["cuda_built"] = False
    return info
