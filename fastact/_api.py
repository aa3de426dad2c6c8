"""fastact's functional API: device-independent argument handling and dispatch.

Every function takes numpy arrays (run by the CPU kernels) or, when fastact's
CUDA part is built, GPU arrays (CuPy arrays, torch CUDA tensors: anything with
``__cuda_array_interface__`` or ``__dlpack__``), returned as the same type.
The elementwise ops are made from their specs in fastact._ops.  Parameters
are checked here, the same way for every device, by the rules of
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

from . import _cpu, _device, _foreign, _ops
from ._checks import channel_axis as _channel_axis
from ._checks import finite as _finite
from ._checks import no_stream as _no_stream
from ._checks import numpy_input as _as_array
from ._checks import slopes_array as _slopes_array

__all__ = [
    "prelu", "prelu_backward", "affine_prelu", "batchnorm_scale_shift",
    *(name for spec in _ops.OPS for name in (spec.name, spec.name + "_backward")),
    "set_num_threads", "get_num_threads", "show_config", "config",
]

# issued once per forked-serial process (fastact._cpu); public in fastact
ForkedSerialWarning = _cpu.ForkedSerialWarning

# Bound once: a (1, 16, 8, 8) call takes well under a microsecond, and module
# attribute lookups on every call are a visible share of it.
_ndarray = np.ndarray
_prelu_forward = _cpu.prelu_forward
_prelu_backward = _cpu.prelu_backward
_affine_prelu_forward = _cpu.affine_prelu_forward
_unary_forward = _cpu.unary_forward
_unary_backward = _cpu.unary_backward
_is_foreign = _foreign.is_foreign

_OP_ELU_OUTPUT = _cpu.OP_ELU_OUTPUT
# channel_axis's valid values: CPython keeps one object for each small int, so
# an identity test passes them (True, 1.0 and numpy integers go to the check)
_ONE, _MINUS_ONE = 1, -1


# --- dispatch ------------------------------------------------------------------
# The fast path (a numpy array and no stream) is inlined in each function; what
# is left (foreign arrays, array-likes, a stream) goes through these.

def _path(x):
    """The module that runs a call on another library's array x (or with
    another library's grad_output): fastact._device for CUDA arrays,
    fastact._foreign for CPU ones."""
    return _device if _device.is_torch_cuda(x) or _foreign.on_cuda(x) else _foreign


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
    return _prelu_backward_general(grad_output, x, slopes, channel_axis, out, inplace,
                                   stream)


def _prelu_backward_general(grad_output, x, slopes, channel_axis, out, inplace, stream):
    """prelu_backward for any input (numpy arrays without a stream included)."""
    channel_axis = _channel_axis(channel_axis)
    if _is_foreign(x) or _is_foreign(grad_output):
        return _path(x).prelu_backward(grad_output, x, slopes, out, inplace, False,
                                      channel_axis, stream)
    _no_stream(stream)
    return _prelu_backward(_as_array(grad_output, "grad_output", inplace),
                           _as_array(x, "x", False), slopes, out, inplace, False,
                           channel_axis)


# The function users call: fastact._cpu's entry with prelu_backward's signature
# and docstring, which runs numpy arrays without a stream itself (a Python
# frame was a fifth of a (1, 16, 8, 8) call) and the rest as above.
prelu_backward = _cpu.adopt_prelu_backward(prelu_backward, _prelu_backward_general)


# --- affine_prelu: a BatchNorm folded into PReLU --------------------------------------

def affine_prelu(x, scale, shift, slopes, *, channel_axis=1, out=None, inplace=False,
                 stream=None):
    """PReLU of a per-channel affine map: ``prelu(x * scale + shift, slopes)``, in one pass.

    An inference BatchNorm followed by PReLU (see
    :func:`batchnorm_scale_shift` for the scale and shift of a BatchNorm),
    read and written once.

    Parameters
    ----------
    x : ndarray of float32, float64, float16 or bfloat16
        Shape (N, C, *spatial) with channels on axis 1 (NC, NCL, NCHW, NCDHW),
        or (N, *spatial, C) with ``channel_axis=-1`` (NHWC).  When scale,
        shift and slopes are each one value, any shape.
    scale, shift, slopes : float or array_like
        Each a number or an array of one value (shared by every element), or
        a 1-D array of C values (one per channel on ``channel_axis``).  A
        float dtype, cast to the compute dtype (float32, float64 for float64
        x); every value finite (ValueError naming the argument).
    channel_axis : {1, -1}, default 1
        Where per-channel values apply: axis 1 (channels first) or the last
        axis (channels last).
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
    Per element of channel c, in the compute dtype (float32 for float32,
    float16 and bfloat16; float64 for float64)::

        t = x * scale[c] + shift[c]      # rounded after * and after +: no FMA
        y = t if t > 0 else slopes[c] * t

    rounded once to x's dtype.  For float32 this is bitwise
    ``prelu(x * scale + shift, slopes)`` computed in two numpy float32
    steps.  NaN propagates; ``t == 0`` takes the slope's branch; -0.0 as in
    :func:`prelu`.  Forward only (no backward).  For GPU arrays, scale, shift
    and slopes are host values (numbers, numpy arrays, CPU tensors), copied
    to the device with the call.  Nothing is written when an argument is
    rejected.

    Examples
    --------
    >>> import numpy as np, fastact
    >>> x = np.array([[[-1.0, 2.0], [3.0, -4.0]]])     # (N=1, C=2, L=2)
    >>> fastact.affine_prelu(x, [2.0, 0.5], [1.0, -1.0], [0.25, 0.5])
    array([[[-0.25,  5.  ],
            [ 0.5 , -1.5 ]]])
    """
    if channel_axis is not _ONE and channel_axis is not _MINUS_ONE:
        channel_axis = _channel_axis(channel_axis)
    if type(x) is _ndarray and stream is None:
        return _affine_prelu_forward(x, scale, shift, slopes, out, inplace, channel_axis)
    if _is_foreign(x):
        if _foreign.on_cuda(x):
            return _device.affine_prelu_forward(x, scale, shift, slopes, out, inplace,
                                                channel_axis, stream)
        _no_stream(stream)
        return _foreign.affine_prelu_forward(x, scale, shift, slopes, out, inplace,
                                             channel_axis)
    _no_stream(stream)
    return _affine_prelu_forward(_as_array(x, "x", inplace), scale, shift, slopes, out,
                                 inplace, channel_axis)


def _bn_vector(value, name, channels=None):
    """A BatchNorm parameter or statistic as a 1-D numpy array, checked."""
    if hasattr(value, "detach") and not isinstance(value, _ndarray):   # a torch tensor
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    _slopes_array(arr, name)
    if arr.ndim != 1 or (channels is not None and arr.shape[0] != channels):
        want = "a 1-D array" if channels is None else f"{channels} values (1-D)"
        raise ValueError(f"{name} has shape {arr.shape}; expected {want}")
    return arr


def batchnorm_scale_shift(running_mean, running_var, eps=1e-5, weight=None, bias=None):
    """The (scale, shift) of an inference BatchNorm, for :func:`affine_prelu`.

    Parameters
    ----------
    running_mean, running_var : array_like
        1-D, C values each (a float dtype, finite): the BatchNorm's running
        statistics.  torch tensors are taken too (detached, copied to the
        CPU).
    eps : float, default 1e-5
        Added to the variance (finite).
    weight, bias : array_like, optional
        The affine parameters (C values each); None: 1 and 0.

    Returns
    -------
    scale, shift : ndarray
        1-D arrays of C values: float64 when running_var is float64, else
        float32.

    Notes
    -----
    As PyTorch's CPU BatchNorm in eval mode computes its per-channel terms,
    in the same precision (float32 for float32, float16 and bfloat16
    statistics; float64 for float64)::

        invstd = 1 / sqrt(running_var + eps)
        scale  = invstd * weight
        shift  = bias - running_mean * scale

    each operation rounded on its own.  ``x * scale + shift`` is then
    BatchNorm's output, up to how the two products and sums round.

    Examples
    --------
    >>> import numpy as np, fastact
    >>> scale, shift = fastact.batchnorm_scale_shift(
    ...     np.array([1.0, -2.0]), np.array([4.0, 0.25]), eps=0.0,
    ...     weight=np.array([2.0, 1.0]), bias=np.array([0.5, 0.0]))
    >>> scale, shift
    (array([1., 2.]), array([-0.5,  4. ]))
    """
    var = _bn_vector(running_var, "running_var")
    channels = var.shape[0]
    mean = _bn_vector(running_mean, "running_mean", channels)
    e = _finite(eps, "eps")
    dt = np.float64 if var.dtype == np.float64 else np.float32
    invstd = dt(1) / np.sqrt(var.astype(dt) + dt(e))
    scale = invstd if weight is None else invstd * _bn_vector(weight, "weight",
                                                              channels).astype(dt)
    b = np.zeros(channels, dt) if bias is None else _bn_vector(bias, "bias",
                                                                channels).astype(dt)
    return scale, b - mean.astype(dt) * scale


# --- the elementwise ops, made from their specs (fastact._ops) -------------------
# Each op's forward and backward are compiled from one template, so that they
# are plain functions with the op's own signature (what inspect.signature,
# help() and argument errors show) and the fast path inlined: a call with the
# default parameters uses the kernel parameters computed here once, and any
# other checks them with the op's rules.  _api.pyi declares them for type
# checkers.

_TEMPLATE = """\
def _define(_op, _default_op, _default_params, _prepare, {closure}):
    def {name}(x{signature}, *, out=None, inplace=False, stream=None):
{choose}
        if type(x) is _ndarray and stream is None:
            return _unary_forward(op, params, x, out, inplace)
        return _forward_other(op, params, x, out, inplace, stream)

    def {name}_backward(grad_output, x{signature}, *, out=None, inplace=False,
                        stream=None):
{choose}
        return _backward(op, params, grad_output, x, out, inplace, stream)

    return {name}, {name}_backward
"""


def _define_op(spec):
    """(forward, backward) of the op `spec` (an _ops.OpSpec)."""
    names = [p.name for p in spec.params]
    defaults = [p.default for p in spec.params]
    closure = {f"_d{i}": p.default for i, p in enumerate(spec.params)}
    closure.update({f"_check{i}": p.check for i, p in enumerate(spec.params)})
    default_op, default_params = _ops.kernel_args(spec, *defaults)
    if spec.prepare is not None:
        general = f"op, params = _prepare({', '.join(names)})"
    else:
        # _ops.kernel_args written out for this op: checks and slots inlined
        slots = []
        for k, slot in enumerate(spec.kernel_params):
            if isinstance(slot, str):
                slots.append(f"_check{names.index(slot)}({slot}, {slot!r})")
            else:
                closure[f"_k{k}"] = float(slot)
                slots.append(f"_k{k}")
        general = f"op, params = _op, ({', '.join(slots)})"
    default = "op, params = _default_op, _default_params"
    if names:
        test = " and ".join(f"{n} is _d{i}" for i, n in enumerate(names))
        choose = (f"        if {test}:\n            {default}\n"
                  f"        else:\n            {general}")
    else:
        choose = f"        {default}"
    source = _TEMPLATE.format(
        name=spec.name, closure=", ".join(closure) or "_unused=None",
        signature="".join(f", {n}=_d{i}" for i, n in enumerate(names)), choose=choose)
    namespace = {}
    exec(compile(source, f"<fastact op {spec.name}>", "exec"), globals(), namespace)
    forward, backward = namespace["_define"](spec.op, default_op, default_params,
                                             spec.prepare, **closure)
    for f, doc in ((forward, _ops.forward_doc(spec)), (backward, _ops.backward_doc(spec))):
        f.__qualname__ = f.__name__
        f.__doc__ = doc
    return forward, backward


for _spec in _ops.OPS:
    globals()[_spec.name], globals()[_spec.name + "_backward"] = _define_op(_spec)
del _spec


# --- configuration -------------------------------------------------------------------

def set_num_threads(n):
    """Use n threads for large calls from now on (None: follow OpenMP again).

    Until this is called, the thread count follows OpenMP's setting at each
    call (OMP_NUM_THREADS, or threadpoolctl's ``threadpool_limits``), capped
    by the CPUs this process may use (affinity mask, cgroup quota).  Small
    calls always run on the calling thread; a process forked after fastact
    ran a thread team runs serially whatever is set (see show_config), and
    says so once, with a `ForkedSerialWarning` at its first call that would
    have used threads.
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
        f"  streaming stores:   for outputs of {info['streaming_threshold_bytes'] >> 20} MiB "
        f"or more",
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
