"""Keras 3 layers and activations over fastact's kernels, on every backend.

``PReLU``, ``LeakyReLU``, ``ReLU`` and ``ELU`` are subclasses of Keras's own
layers (``keras.layers.PReLU`` ...): the same constructors, defaults,
weights (PReLU's ``alpha`` of shape ``input_shape[1:]`` with the shared axes
set to 1), ``get_config()`` and output shapes; only ``call`` differs.  The
functions ``leaky_relu``, ``relu``, ``relu6`` and ``elu`` are activations for
``Dense(..., activation=...)``.  All are registered for serialisation under
the package ``fastact`` ("fastact>PReLU", "fastact>leaky_relu" ...), so a
``.keras`` file saved with them loads again once ``fastact.keras`` is
imported, and ``convert(model)`` returns a copy of a model with Keras's four
layers, and Keras's four activations wherever a layer applies them
(``Dense(64, activation="relu")``), swapped for these, weights included.

What runs, by Keras backend (``keras.backend.backend()``):

- ``jax``: ``fastact.jax``'s functions (custom_vjp: fastact's backward
  kernels; jit and vmap work);
- ``torch``: ``fastact.torch``'s functions (autograd: fastact's backward
  kernels; CPU and, with fastact's CUDA build, CUDA tensors);
- ``numpy`` (inference only): fastact's numpy functions;
- ``tensorflow``: Keras's own ops, with one warning per process that fastact
  is not used there.

PReLU's alpha is mapped onto fastact's (outer, channels, inner) kernels
without a transpose or a copy of x: alpha varying only along the last axis
(``shared_axes=[1, 2]`` on (N, H, W, C)) is the channels-last kernel with one
slope per channel; any other alpha covers a run of x's axes, which becomes
the kernel's channels (a reshape of x, a vector of slopes as long as that
run).

Semantics are fastact's (PyTorch's), which differ from Keras's in three
places, listed in the README's Keras section: the gradient wrt x at x == 0
of PReLU and LeakyReLU is the slope (Keras's PReLU gives 0), ReLU keeps NaN
where Keras's ReLU with a threshold > 0 gives 0, and ReLU's gradient at
x == max_value is 0 for every max_value (Keras gives 1 there for caps other
than 6).  Forward values are Keras's apart from the sign of zero results
and ELU's last bit (fastact's expm1 is within an ulp of the exact value).
"""
try:
    import keras
except ImportError as exc:  # pragma: no cover - exercised without keras
    raise ImportError(
        'fastact.keras needs Keras 3, which is not installed: pip install "fastact[keras]"'
    ) from exc

import warnings

from . import _api, _layout

__all__ = ["PReLU", "LeakyReLU", "ReLU", "ELU", "leaky_relu", "relu", "relu6", "elu",
           "convert", "uses_fastact"]

_PACKAGE = "fastact"
_register = keras.saving.register_keras_serializable


def _backend():
    return keras.backend.backend()


# --- the backends --------------------------------------------------------------------

def _slope_vector(alpha, plan, broadcast):
    """PReLU's alpha as the plan's vector of plan.channels slopes (broadcast:
    the backend's broadcast_to, used only where alpha repeats inside the run
    of axes it covers)."""
    if not plan.span:
        return alpha.reshape((1,))
    vec = alpha.reshape(plan.span_slopes)
    if plan.span_slopes != plan.span:
        vec = broadcast(vec, plan.span)
    return vec.reshape((plan.channels,))


def _channels_last(x_shape, plan):
    """True when the slopes vary along x's last axis alone: the channels-last
    kernel, one slope per channel."""
    return plan.inner == 1 and plan.span == tuple(x_shape[-1:])


class _Jax:
    name = "jax"

    def __init__(self):
        import jax.numpy as jnp

        from . import jax as fj
        self.fj = fj
        self.jnp = jnp

    def prelu(self, x, alpha):
        alpha = self.jnp.asarray(alpha, dtype=x.dtype)
        plan = _layout.prelu_plan(x.shape, alpha.shape)
        slopes = _slope_vector(alpha, plan, self.jnp.broadcast_to)
        if _channels_last(x.shape, plan):
            return self.fj.prelu(x, slopes, channel_axis=-1)
        y = self.fj.prelu(x.reshape((plan.outer, plan.channels, plan.inner)), slopes,
                          channel_axis=1)
        return y.reshape(x.shape)

    def leaky_relu(self, x, negative_slope):
        return self.fj.leaky_relu(x, negative_slope=negative_slope)

    def relu(self, x, negative_slope, max_value, threshold):
        return self.fj.relu(x, negative_slope=negative_slope, max_value=max_value,
                            threshold=threshold)

    def relu6(self, x):
        return self.fj.relu6(x)

    def elu(self, x, alpha):
        return self.fj.elu(x, alpha=alpha)


class _Torch:
    name = "torch"

    def __init__(self):
        from . import torch as ft
        self.ft = ft

    def prelu(self, x, alpha):
        if alpha.dtype != x.dtype:
            alpha = alpha.to(x.dtype)
        plan = _layout.prelu_plan(tuple(x.shape), tuple(alpha.shape))
        slopes = _slope_vector(alpha, plan, lambda v, shape: v.expand(shape))
        # fastact.torch takes one slope per channel on axis 1: x as
        # (outer, channels, inner), a view of contiguous x
        y = self.ft.prelu(x.reshape((plan.outer, plan.channels, plan.inner)), slopes)
        return y.reshape(x.shape)

    def leaky_relu(self, x, negative_slope):
        return self.ft.leaky_relu(x, negative_slope)

    def relu(self, x, negative_slope, max_value, threshold):
        return self.ft.relu(x, negative_slope, max_value, threshold)

    def relu6(self, x):
        return self.ft.relu6(x)

    def elu(self, x, alpha):
        return self.ft.elu(x, alpha)


class _Numpy:
    name = "numpy"

    def __init__(self):
        import numpy as np
        self.np = np

    def prelu(self, x, alpha):
        x = self.np.asarray(x)
        return _api.prelu(x, self.np.asarray(alpha, dtype=x.dtype))

    def leaky_relu(self, x, negative_slope):
        return _api.leaky_relu(self.np.asarray(x), negative_slope)

    def relu(self, x, negative_slope, max_value, threshold):
        return _api.relu(self.np.asarray(x), negative_slope=negative_slope,
                         max_value=max_value, threshold=threshold)

    def relu6(self, x):
        return _api.relu6(self.np.asarray(x))

    def elu(self, x, alpha):
        return _api.elu(self.np.asarray(x), alpha)


_IMPLS = {"jax": _Jax, "torch": _Torch, "numpy": _Numpy}
_made = {}
_warned = []


def _impl():
    """The current backend's fastact functions, or None (Keras's own ops;
    warned about once)."""
    name = _backend()
    impl = _made.get(name)
    if impl is None:
        cls = _IMPLS.get(name)
        if cls is None:
            if not _warned:
                _warned.append(name)
                warnings.warn(
                    f"fastact.keras: the Keras backend is {name!r}, for which fastact has no "
                    f"kernels; fastact's layers and activations run Keras's own ops there "
                    f"(fastact runs on the jax, torch and numpy backends)",
                    RuntimeWarning, stacklevel=3)
            return None
        impl = _made[name] = cls()
    return impl


def uses_fastact():
    """True when fastact's kernels run on Keras's current backend (jax, torch,
    numpy); False where the layers fall back to Keras's own ops."""
    return _backend() in _IMPLS


# --- layers --------------------------------------------------------------------------

@_register(package=_PACKAGE)
class PReLU(keras.layers.PReLU):
    """``keras.layers.PReLU`` computed by fastact: ``x if x > 0 else alpha * x``.

    The constructor, the ``alpha`` weight (shape ``input_shape[1:]`` with the
    ``shared_axes`` set to 1) and ``get_config()`` are Keras's.  The gradient
    wrt x at x == 0 is alpha (Keras's layer gives 0 there).
    """

    def call(self, inputs):
        impl = _impl()
        if impl is None:
            return super().call(inputs)
        return impl.prelu(inputs, self.alpha.value)


@_register(package=_PACKAGE)
class LeakyReLU(keras.layers.LeakyReLU):
    """``keras.layers.LeakyReLU`` (negative_slope=0.3) computed by fastact."""

    def call(self, inputs):
        impl = _impl()
        if impl is None:
            return super().call(inputs)
        return impl.leaky_relu(inputs, self.negative_slope)


@_register(package=_PACKAGE)
class ReLU(keras.layers.ReLU):
    """``keras.layers.ReLU(max_value=None, negative_slope=0.0, threshold=0.0)``
    computed by fastact.  NaN stays NaN (Keras's gives 0 with threshold > 0);
    the gradient at x == max_value is 0 for every max_value."""

    def call(self, inputs):
        impl = _impl()
        if impl is None:
            return super().call(inputs)
        return impl.relu(inputs, self.negative_slope, self.max_value, self.threshold)


@_register(package=_PACKAGE)
class ELU(keras.layers.ELU):
    """``keras.layers.ELU`` (alpha=1.0) computed by fastact (expm1, within an
    ulp of the exact value)."""

    def call(self, inputs):
        impl = _impl()
        if impl is None:
            return super().call(inputs)
        return impl.elu(inputs, self.alpha)


# --- activations (Dense(..., activation=fastact.keras.leaky_relu)) -------------------

@_register(package=_PACKAGE)
def leaky_relu(x, negative_slope=0.2):
    """``keras.activations.leaky_relu`` (negative_slope=0.2) computed by fastact."""
    impl = _impl()
    if impl is None:
        return keras.activations.leaky_relu(x, negative_slope=negative_slope)
    return impl.leaky_relu(x, negative_slope)


@_register(package=_PACKAGE)
def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """``keras.activations.relu`` computed by fastact (NaN stays NaN)."""
    impl = _impl()
    if impl is None:
        return keras.activations.relu(x, negative_slope=negative_slope,
                                      max_value=max_value, threshold=threshold)
    return impl.relu(x, negative_slope, max_value, threshold)


@_register(package=_PACKAGE)
def relu6(x):
    """``keras.activations.relu6`` computed by fastact."""
    impl = _impl()
    if impl is None:
        return keras.activations.relu6(x)
    return impl.relu6(x)


@_register(package=_PACKAGE)
def elu(x, alpha=1.0):
    """``keras.activations.elu`` computed by fastact (expm1)."""
    impl = _impl()
    if impl is None:
        return keras.activations.elu(x, alpha=alpha)
    return impl.elu(x, alpha)


# --- convert ----------------------------------------------------------------------

_SWAPS = {keras.layers.PReLU: PReLU, keras.layers.LeakyReLU: LeakyReLU,
          keras.layers.ReLU: ReLU, keras.layers.ELU: ELU}
# Keras's own activations (what "relu" ... name in any layer's config) and
# fastact's, with the same parameters and defaults
_ACTIVATION_SWAPS = ((keras.activations.leaky_relu, leaky_relu), (keras.activations.relu, relu),
                     (keras.activations.relu6, relu6), (keras.activations.elu, elu))


def _fastact_activation(layer):
    """fastact's function for the Keras activation ``layer`` applies (Dense,
    Conv2D, Activation ..., named as a string or passed as Keras's function),
    or None."""
    applied = getattr(layer, "activation", None)
    for theirs, ours in _ACTIVATION_SWAPS:
        if applied is theirs:
            return ours
    return None


def _clone(layer):
    cls = _SWAPS.get(type(layer), type(layer))
    config = layer.get_config()
    activation = _fastact_activation(layer)
    if activation is not None and "activation" in config:
        config["activation"] = activation
    return cls.from_config(config)


def convert(model):
    """A copy of a Sequential or functional model, nested models included,
    with ``keras.layers.PReLU``, ``LeakyReLU``, ``ReLU`` and ``ELU`` (those
    classes exactly, not subclasses) replaced by fastact's, Keras's
    ``relu``, ``leaky_relu``, ``relu6`` and ``elu`` activations of any layer
    (``Dense(64, activation="relu")``, ``Activation("elu")`` ...) replaced by
    fastact's functions, and the model's weights.

    Made with ``keras.models.clone_model``: the copy is not compiled (compile
    it as the original was), and layers keep their names and configs.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    new = keras.models.clone_model(model, clone_function=_clone, recursive=True)
    if model.built:
        new.set_weights(model.get_weights())
    return new
