"""JAX functions over fastact's kernels, through XLA's foreign function interface.

``import fastact.jax`` registers fastact's XLA FFI handlers (plain C
functions of fastact's extension, src/xla_ffi.c) with ``jax.ffi`` for the
CPU, and for CUDA where this fastact has its CUDA build.  The functions

=======================================================  =====================
function                                                 parameters as
=======================================================  =====================
``prelu(x, slopes, channel_axis=1)``                     ``fastact.prelu``
``leaky_relu(x, negative_slope=0.01)``                   ``fastact.leaky_relu``
``relu(x, negative_slope=0.0, max_value=None,            ``fastact.relu``
threshold=0.0)`` (Keras's parameters)
``relu6(x)``, ``elu(x, alpha=1.0)``,                     the same names
``thresholded_relu(x, theta=1.0)``,
``hardtanh(x, min_val=-1.0, max_val=1.0)``
=======================================================  =====================

run fastact's kernels on the buffers XLA owns (XLA allocates each result,
the kernel writes it), under ``jax.jit``, ``jax.grad`` (``jax.custom_vjp``,
whose backward is fastact's: for ``prelu`` the fused backward, both
gradients in one pass, the slope gradient summed in float64 in a fixed order
and reduced to the slopes' shape, as ``fastact.prelu_backward``) and
``jax.vmap``.  Results are bitwise those of the numpy API on the same
values.

x is float32, float64 (with ``jax_enable_x64``), float16 or bfloat16.  The
slopes are a number, one value per channel (axis ``channel_axis``, 1 or -1)
or an array broadcasting to ``x.shape[1:]`` (Keras's PReLU alpha), in any
float dtype: the kernels read them in the compute dtype (float32 for
float16 and bfloat16) and their gradient comes back in the slopes' dtype.
Slopes that are numbers or numpy arrays are checked finite; JAX arrays,
which may be traced, are not.

vmap: ``prelu``'s targets use ``vmap_method="expand_dims"``: the handler
sees the mapped axes in front and folds them into the kernel's outer
dimension when only x is mapped (one kernel call); mapped slopes take one
call per index.  The elementwise ops use ``"broadcast_all"``: they do not
care about axes, so the mapped batch is one call.  Double backward is not
implemented (JAX says so, naming ``ffi_call``).
"""
try:
    import jax
    import jax.numpy as jnp
except ImportError as exc:  # pragma: no cover - exercised without jax
    raise ImportError(
        'fastact.jax needs JAX, which is not installed: pip install "fastact[jax]"'
    ) from exc

import functools
import numbers

import numpy as np

from . import _checks, _cpu, _dtypes, _layout, _ops

__all__ = ["prelu", "leaky_relu", "relu", "relu6", "elu", "thresholded_relu", "hardtanh"]

_PRELU_FORWARD = "fastact_prelu_forward"
_PRELU_BACKWARD = "fastact_prelu_backward"
_UNARY_FORWARD = "fastact_unary_forward"
_UNARY_BACKWARD = "fastact_unary_backward"


def _register():
    """Registers the CPU targets, and the CUDA ones where fastact has its
    CUDA build; returns True when the CUDA ones are registered."""
    for name, capsule in _cpu.xla_ffi_targets().items():
        jax.ffi.register_ffi_target(name, capsule, platform="cpu")
    try:
        from . import _cuda
    except ImportError:
        return False
    targets = getattr(_cuda, "xla_ffi_targets", None)
    if targets is None:
        return False
    for name, capsule in targets().items():
        jax.ffi.register_ffi_target(name, capsule, platform="CUDA")
    return True


_HAVE_CUDA = _register()
_SPECS = {spec.name: spec for spec in _ops.OPS}


# --- checks --------------------------------------------------------------------------

def _input(x, name="x"):
    """x as a JAX array (or tracer) of a dtype the kernels take, and its
    TABLE entry."""
    if not isinstance(x, jax.Array):
        if isinstance(x, (list, tuple, numbers.Number)) or not hasattr(x, "dtype"):
            x = np.asarray(x)
        x = jnp.asarray(x)
    d = _dtypes.from_numpy(np.dtype(x.dtype))
    if d is None:
        raise _dtypes.unsupported(name, x.dtype, on_cpu=False)
    return x, d


def _slopes(slopes, compute):
    """slopes as an array of the compute dtype (a 0-d one for a number), in
    the slopes' own dtype before that cast, for the gradient."""
    if isinstance(slopes, jax.Array) or isinstance(slopes, jax.core.Tracer):
        if not jnp.issubdtype(slopes.dtype, jnp.floating):
            raise TypeError(f"slopes has dtype {slopes.dtype}; expected a number or an "
                            f"array of floats")
        return slopes
    if _checks.is_number(slopes):
        return jnp.asarray(_checks.finite(slopes, "slopes"), dtype=compute)
    arr = np.asarray(slopes)
    _checks.slopes_array(arr)
    return jnp.asarray(arr)


# --- prelu ---------------------------------------------------------------------------

def _vector(slopes, plan):
    """The plan's slope vector (plan.channels values), as _layout.expand_slopes."""
    flat = slopes.reshape(plan.span_slopes if plan.span else (1,))
    if plan.span and plan.span_slopes != plan.span:
        flat = jnp.broadcast_to(flat, plan.span)
    return flat.reshape(-1)


def _layout_attrs(x, plan):
    return dict(channels=np.int64(plan.channels), inner=np.int64(plan.inner),
                x_rank=np.int64(x.ndim))


def _prelu_forward_call(x, slopes, plan):
    call = jax.ffi.ffi_call(_PRELU_FORWARD, jax.ShapeDtypeStruct(x.shape, x.dtype),
                            vmap_method="expand_dims")
    return call(x, _vector(slopes, plan), **_layout_attrs(x, plan))


def _prelu_backward_call(g, x, slopes, plan, reduce=True):
    """(grad_input, grad_slopes): grad_slopes of the slopes' shape, or with
    reduce=False, one value per channel of the plan (the GPU's)."""
    vec = _vector(slopes, plan)
    span = plan.span if plan.span else ()
    span_slopes = plan.span_slopes if reduce else span
    nout = int(np.prod(span_slopes)) if span else 1
    call = jax.ffi.ffi_call(
        _PRELU_BACKWARD,
        (jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct((nout,), vec.dtype)),
        vmap_method="expand_dims")
    gi, gs = call(g, x, vec, span=np.asarray(span, dtype=np.int64),
                  span_slopes=np.asarray(span_slopes, dtype=np.int64),
                  **_layout_attrs(x, plan))
    if not reduce:
        # the GPU's: per-channel sums rounded to the compute dtype, reduced here
        gs = gs.reshape(plan.span)
        axes = tuple(k for k, (s, d) in enumerate(zip(plan.span_slopes, plan.span))
                     if s == 1 and d != 1)
        gs = gs.sum(axis=axes, keepdims=True)
    return gi, gs.reshape(slopes.shape)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _prelu(x, slopes, plan):
    return _prelu_forward_call(x, slopes, plan)


def _prelu_fwd(x, slopes, plan):
    return _prelu_forward_call(x, slopes, plan), (x, slopes)


def _prelu_bwd(plan, residuals, g):
    x, slopes = residuals
    reduces = plan.span and plan.span_slopes != plan.span and len(plan.span) > 0
    if _HAVE_CUDA and reduces:
        # fastact's CUDA backward writes per-channel sums: the reduction over
        # broadcast dims is JAX's there
        return jax.lax.platform_dependent(
            g, x, slopes,
            cpu=lambda g, x, s: _prelu_backward_call(g, x, s, plan),
            default=lambda g, x, s: _prelu_backward_call(g, x, s, plan, reduce=False))
    return _prelu_backward_call(g, x, slopes, plan)


_prelu.defvjp(_prelu_fwd, _prelu_bwd)


def prelu(x, slopes, channel_axis=1):
    """Parametric ReLU, ``x > 0 ? x : slopes * x``, on JAX arrays.

    Parameters
    ----------
    x : jax.Array
        float32, float64, float16 or bfloat16, any shape.
    slopes : float or array_like
        One value, one per channel (axis ``channel_axis``), or an array
        broadcasting to ``x.shape[1:]``; differentiable.
    channel_axis : int, default 1
        1 (channels first, NCHW) or -1 (channels last, NHWC).

    Returns
    -------
    jax.Array
        Of x's shape and dtype; bitwise ``fastact.prelu`` on the same values.
        ``jax.grad`` runs fastact's fused backward (``fastact.prelu_backward``).

    Examples
    --------
    >>> import jax.numpy as jnp, fastact.jax
    >>> fastact.jax.prelu(jnp.array([[-2.0, 3.0]]), 0.25)
    Array([[-0.5,  3. ]], dtype=float32)
    """
    x, d = _input(x)
    axis = _checks.channel_axis(channel_axis)
    s = _slopes(slopes, _dtypes.compute_dtype(d))
    plan = _layout.prelu_plan(x.shape, s.shape, axis)
    compute = _dtypes.compute_dtype(d)
    return _prelu(x, s.astype(compute) if s.dtype != compute else s, plan)


# --- the family's elementwise ops ----------------------------------------------------

def _unary_attrs(op, params):
    return dict(op=np.int64(op), p0=np.float64(params[0]), p1=np.float64(params[1]),
                p2=np.float64(params[2]))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _unary(x, op, params):
    return _unary_fwd(x, op, params)[0]


def _unary_fwd(x, op, params):
    call = jax.ffi.ffi_call(_UNARY_FORWARD, jax.ShapeDtypeStruct(x.shape, x.dtype),
                            vmap_method="broadcast_all")
    return call(x, **_unary_attrs(op, params)), x


def _unary_bwd(op, params, x, g):
    call = jax.ffi.ffi_call(_UNARY_BACKWARD, jax.ShapeDtypeStruct(x.shape, x.dtype),
                            vmap_method="broadcast_all")
    return (call(g, x, **_unary_attrs(op, params)),)


_unary.defvjp(_unary_fwd, _unary_bwd)


def _elementwise(name, x, *values):
    x, _ = _input(x)
    op, params = _ops.kernel_args(_SPECS[name], *values)
    return _unary(x, op, tuple(float(p) for p in params))


def leaky_relu(x, negative_slope=0.01):
    """``x > 0 ? x : negative_slope * x`` (``fastact.leaky_relu``) on JAX arrays."""
    return _elementwise("leaky_relu", x, negative_slope)


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Keras's relu (``fastact.relu``) on JAX arrays."""
    return _elementwise("relu", x, negative_slope, max_value, threshold)


def relu6(x):
    """``min(max(x, 0), 6)`` (``fastact.relu6``) on JAX arrays."""
    return _elementwise("relu6", x)


def elu(x, alpha=1.0):
    """``x > 0 ? x : alpha * expm1(x)`` (``fastact.elu``) on JAX arrays."""
    return _elementwise("elu", x, alpha)


def thresholded_relu(x, theta=1.0):
    """``x > theta ? x : 0`` (``fastact.thresholded_relu``) on JAX arrays."""
    return _elementwise("thresholded_relu", x, theta)


def hardtanh(x, min_val=-1.0, max_val=1.0):
    """``clip(x, min_val, max_val)`` (``fastact.hardtanh``) on JAX arrays."""
    return _elementwise("hardtanh", x, min_val, max_val)
