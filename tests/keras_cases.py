"""fastact.keras's checks on one Keras backend, run by tests/test_keras.py in a
fresh interpreter (Keras fixes its backend at import):

    KERAS_BACKEND=jax python tests/keras_cases.py

prints one line ``RESULTS <json>``: for each case, null (passed), "skip: why"
or the failure's traceback.
"""
import json
import os
import pathlib
import re
import sys
import tempfile
import traceback
import warnings

import numpy as np

BACKEND = os.environ["KERAS_BACKEND"]
import keras  # noqa: E402 - after reading the backend it was told to use

import fastact  # noqa: E402
import fastact.keras as fk  # noqa: E402
from fastact import _reference  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
CASES = {}


def case(*backends):
    def add(fn):
        if BACKEND in backends:
            CASES[fn.__name__] = fn
        return fn
    return add


def rng():
    return np.random.default_rng()


def to_np(t):
    return keras.ops.convert_to_numpy(t)


def bits(a):
    """a's bit patterns, +0.0 for -0.0 where zero_sign is False."""
    a = np.ascontiguousarray(a)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def assert_bitwise(got, want, what, zero_sign=True):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (what, got.dtype, got.shape,
                                                                  want.dtype, want.shape)
    if not zero_sign:
        got, want = got + 0.0, want + 0.0
    same = bits(got) == bits(want)
    assert same.all(), f"{what}: {np.count_nonzero(~same)} of {got.size} differ"


def sample(shape, rng, dtype=np.float32):
    """Normal values with exact zeros, negative zeros and some large ones."""
    x = rng.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    idx = rng.choice(flat.size, size=max(2, flat.size // 20), replace=False)
    flat[idx[: len(idx) // 2]] = 0.0
    flat[idx[len(idx) // 2:]] = -0.0
    return x


def built(layer, shape, dtype="float32"):
    layer.build((None,) + tuple(shape[1:]))
    return layer


# --- the numpy API's result for each layer ---------------------------------------

def numpy_result(layer, x):
    if isinstance(layer, fk.PReLU):
        return fastact.prelu(x, to_np(layer.alpha))
    if isinstance(layer, fk.LeakyReLU):
        return fastact.leaky_relu(x, layer.negative_slope)
    if isinstance(layer, fk.ReLU):
        return fastact.relu(x, negative_slope=layer.negative_slope,
                            max_value=layer.max_value, threshold=layer.threshold)
    if isinstance(layer, fk.ELU):
        return fastact.elu(x, layer.alpha)
    raise TypeError(layer)


PRELU_SHAPES = [  # (x shape, shared_axes)
    ((4, 5, 6, 7), [1, 2]),       # channels last, one slope per channel
    ((4, 5, 6, 7), None),         # alpha of x's shape
    ((4, 5, 6, 7), [1]),          # alpha varies over (W, C)
    ((4, 5, 6, 7), [2]),          # alpha (H, 1, C): broadcast inside its run
    ((4, 5, 6, 7), [1, 2, 3]),    # one shared slope
    ((4, 5, 6, 7), [2, 3]),       # one slope per H row
    ((3, 9), None),               # Dense output, one slope per feature
    ((2, 5, 3), [1]),             # 1-D conv, channels last
]


def layers_under_test(rng):
    out = []
    for shape, shared in PRELU_SHAPES:
        layer = built(fk.PReLU(shared_axes=shared), shape)
        a = rng.uniform(-0.5, 1.5, layer.alpha.shape).astype(np.float32)
        layer.set_weights([a])
        out.append((f"PReLU{shape} shared_axes={shared}", layer, shape))
    shape = (4, 5, 6, 7)
    for layer in (fk.LeakyReLU(), fk.LeakyReLU(negative_slope=0.7), fk.ReLU(),
                  fk.ReLU(max_value=6.0), fk.ReLU(negative_slope=0.1, max_value=2.5,
                                                  threshold=0.5), fk.ELU(), fk.ELU(alpha=0.7)):
        out.append((f"{type(layer).__name__}{layer.get_config()}", layer, shape))
    return out


@case("jax", "torch", "numpy")
def outputs_match_numpy_api():
    """Each layer's output is the numpy API's, bit for bit (the sign of zero
    too, but for relu on torch, whose relu keeps -0.0 as torch's does)."""
    r = rng()
    for what, layer, shape in layers_under_test(r):
        x = sample(shape, r)
        x[0, 0] = np.nan
        got = to_np(layer(keras.ops.convert_to_tensor(x)))
        zero_sign = not (BACKEND == "torch" and isinstance(layer, fk.ReLU))
        assert_bitwise(got, numpy_result(layer, x), what, zero_sign)
    x = sample((4, 5, 6, 7), r)
    for fn, ref in ((fk.leaky_relu, lambda v: fastact.leaky_relu(v, 0.2)),
                    (fk.relu, fastact.relu), (fk.relu6, fastact.relu6),
                    (fk.elu, fastact.elu)):
        got = to_np(fn(keras.ops.convert_to_tensor(x)))
        assert_bitwise(got, ref(x), fn.__name__, zero_sign=BACKEND != "torch"
                       or fn is fk.leaky_relu or fn is fk.elu)


@case("jax", "torch", "numpy")
def forward_matches_keras():
    """Keras's own layers give the same values (signed zeros aside); ELU: fastact
    within 1 ulp of the float64 oracle, and NaN where Keras's is."""
    r = rng()
    for what, layer, shape in layers_under_test(r):
        x = sample(shape, r)
        cls = type(layer).__mro__[1]
        theirs = cls.from_config(layer.get_config())
        theirs.build((None,) + shape[1:])
        theirs.set_weights(layer.get_weights())
        xt = keras.ops.convert_to_tensor(x)
        got, want = to_np(layer(xt)), to_np(theirs(xt))
        if isinstance(layer, fk.ELU):
            exact = _reference.elu(x.astype(np.float64), layer.alpha)
            np.testing.assert_array_max_ulp(got, exact.astype(np.float32), 1)
            # Keras's own ELU (jax.nn.elu, torch's elu) has no documented
            # error bound to hold it to (5 ulp from fastact's seen on JAX):
            # the oracle above is the check; Keras must agree on NaN
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        else:
            assert_bitwise(got, want, what, zero_sign=False)


def conv_net(L, prelu_alpha=0.25):
    """A small channels-last conv net built with the layers of module L."""
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    h = L.PReLU(shared_axes=[1, 2],
                alpha_initializer=keras.initializers.Constant(prelu_alpha))(h)
    h = keras.layers.Conv2D(8, 3)(h)
    h = L.LeakyReLU()(h)
    h = keras.layers.Conv2D(6, 3)(h)
    h = L.PReLU(alpha_initializer=keras.initializers.Constant(0.1))(h)   # alpha (4, 4, 6)
    h = L.ELU()(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(16)(h)
    h = L.ReLU()(h)
    outputs = keras.layers.Dense(10)(h)
    return keras.Model(inputs, outputs)


def counting():
    """Counts the calls into fastact's backend functions (made while tracing
    under jax.jit)."""
    calls = {}
    impl = fk._IMPLS[BACKEND]
    for name in ("prelu", "leaky_relu", "relu", "elu"):
        orig = getattr(impl, name)

        def wrapped(self, *args, _orig=orig, _name=name):
            calls[_name] = calls.get(_name, 0) + 1
            return _orig(self, *args)
        setattr(impl, name, wrapped)
    return calls


# fit: the weights after 4 SGD steps, fastact's against Keras's.  Forward
# values are bitwise Keras's except ELU (within 1 ulp) and the sign of zeros;
# gradients differ in rounding (PReLU's alpha gradient is summed in float64
# by fastact, in float32 in another order by XLA / torch; ELU's last bit).
# Measured on PyTorch over 3 seeds: at most 3e-8 apart (1-2 float32 ulps of
# weights of magnitude 0.2-0.3; 2e-5 relative on the smallest weights).
# The bound: 1e-7 absolute (3-4 ulps at the weights' largest magnitudes)
# plus 1e-5 relative.
FIT_RTOL, FIT_ATOL = 1e-5, 1e-7


@case("jax", "torch")
def fit_matches_keras():
    r = rng()
    keras.utils.set_random_seed(int(r.integers(1 << 30)))
    theirs = conv_net(keras.layers)
    ours = fk.convert(theirs)
    calls = counting()
    x = r.standard_normal((64, 8, 8, 3)).astype(np.float32)
    y = r.integers(0, 10, 64)
    start = [w.copy() for w in theirs.get_weights()]
    for model in (theirs, ours):
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    assert all(calls.get(k) for k in ("prelu", "leaky_relu", "relu", "elu")), calls
    got, want = ours.get_weights(), theirs.get_weights()
    moved = [np.abs(w - s).max() for w, s in zip(want, start)]
    assert min(moved) > 1e-4, moved          # every weight trained, alphas included
    for k, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, rtol=FIT_RTOL, atol=FIT_ATOL, err_msg=f"weight {k}")


def small_model(L, act):
    inputs = keras.Input((6, 6, 4))
    h = L.PReLU(shared_axes=[1, 2])(inputs)
    h = L.LeakyReLU(negative_slope=0.1)(h)
    h = L.ReLU(max_value=6.0, threshold=0.1)(h)
    h = L.ELU(alpha=0.5)(h)
    h = keras.layers.Flatten()(h)
    outputs = keras.layers.Dense(3, activation=act)(h)
    return keras.Model(inputs, outputs)


@case("jax", "torch", "numpy")
def convert_swaps_activations():
    """Keras's relu, leaky_relu, relu6 and elu, named as strings or passed as
    Keras's functions in any layer, nested models included, become fastact's;
    other activations stay; the copy computes what the original does and
    saves and loads with fastact's functions."""
    r = rng()
    keras.utils.set_random_seed(int(r.integers(1 << 30)))
    inner = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="elu"),
                              keras.layers.PReLU()], name="inner")
    inputs = keras.Input((4, 4, 2))
    h = keras.layers.Conv2D(3, 2, activation="relu6")(inputs)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(6, activation=keras.activations.leaky_relu)(h)
    h = inner(h)
    h = keras.layers.Activation("relu")(h)
    outputs = keras.layers.Dense(2, activation="tanh")(h)
    theirs = keras.Model(inputs, outputs)
    ours = fk.convert(theirs)
    applied = {layer.name: getattr(layer, "activation", None) for layer in ours.layers}
    want = {theirs.layers[1].name: fk.relu6, theirs.layers[3].name: fk.leaky_relu,
            theirs.layers[5].name: fk.relu, theirs.layers[6].name: keras.activations.tanh}
    for name, fn in want.items():
        assert applied[name] is fn, (name, applied[name], fn)
    nested = ours.get_layer("inner")
    assert nested.layers[0].activation is fk.elu, nested.layers[0].activation
    assert type(nested.layers[1]) is fk.PReLU, type(nested.layers[1])
    # the originals are untouched
    assert theirs.layers[1].activation is keras.activations.relu6
    assert theirs.get_layer("inner").layers[0].activation is keras.activations.elu
    for a, b in zip(theirs.get_weights(), ours.get_weights()):
        assert_bitwise(a, b, "weights")
    x = r.standard_normal((3, 4, 4, 2)).astype(np.float32)
    want_y = to_np(theirs.predict(x, verbose=0))
    np.testing.assert_allclose(to_np(ours.predict(x, verbose=0)), want_y, rtol=1e-6, atol=1e-6)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.keras")
        ours.save(path)
        loaded = keras.saving.load_model(path)
    assert loaded.layers[1].activation is fk.relu6
    assert loaded.get_layer("inner").layers[0].activation is fk.elu
    np.testing.assert_allclose(to_np(loaded.predict(x, verbose=0)), want_y, rtol=1e-6, atol=1e-6)


@case("jax", "torch", "numpy")
def save_load_round_trip():
    r = rng()
    model = small_model(fk, fk.leaky_relu)
    weights = model.get_weights()
    weights[0] = r.uniform(0.1, 0.5, weights[0].shape).astype(np.float32)
    model.set_weights(weights)
    x = r.standard_normal((2, 6, 6, 4)).astype(np.float32)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    kinds = [type(layer) for layer in loaded.layers]
    for cls in (fk.PReLU, fk.LeakyReLU, fk.ReLU, fk.ELU):
        assert cls in kinds, kinds
    assert loaded.layers[-1].activation is fk.leaky_relu, loaded.layers[-1].activation
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        assert_bitwise(a, b, "weights")
    assert_bitwise(to_np(loaded.predict(x, verbose=0)), to_np(model.predict(x, verbose=0)),
                   "predictions")


@case("jax", "torch", "numpy")
def activations_by_name():
    """The activations serialise under their registered names and come back."""
    for fn in (fk.leaky_relu, fk.relu, fk.relu6, fk.elu):
        config = keras.activations.serialize(fn)
        assert config["config"] == f"fastact>{fn.__name__}", config
        assert keras.activations.deserialize(config) is fn
        assert keras.activations.get(config) is fn
        dense = keras.layers.Dense(3, activation=fn)
        assert keras.layers.Dense.from_config(dense.get_config()).activation is fn


@case("jax", "torch", "numpy")
def convert_swaps_layers():
    r = rng()
    keras.utils.set_random_seed(int(r.integers(1 << 30)))
    theirs = small_model(keras.layers, "relu")
    weights = theirs.get_weights()
    weights[0] = r.uniform(0.1, 0.5, weights[0].shape).astype(np.float32)
    theirs.set_weights(weights)
    ours = fk.convert(theirs)
    assert ours is not theirs
    pairs = list(zip(theirs.layers, ours.layers))
    assert len(pairs) == len(theirs.layers) == len(ours.layers)
    for a, b in pairs:
        want = fk._SWAPS.get(type(a), type(a))
        assert type(b) is want, (type(a), type(b))
        if not isinstance(a, keras.layers.InputLayer):   # clone_model makes new inputs
            assert a.name == b.name, (a.name, b.name)
    for a, b in zip(theirs.get_weights(), ours.get_weights()):
        assert_bitwise(a, b, "weights")
    # the originals are untouched
    assert all(type(layer).__module__.startswith("keras") for layer in theirs.layers)
    x = r.standard_normal((2, 6, 6, 4)).astype(np.float32)
    np.testing.assert_allclose(to_np(ours.predict(x, verbose=0)),
                               to_np(theirs.predict(x, verbose=0)), rtol=1e-6, atol=1e-6)
    # convert of a Sequential model, and of something that is not a model
    seq = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4), keras.layers.PReLU()])
    assert type(fk.convert(seq).layers[-1]) is fk.PReLU
    try:
        fk.convert(keras.layers.PReLU())
    except TypeError as exc:
        assert "model must be a keras.Model" in str(exc)
    else:
        raise AssertionError("convert(layer) did not raise")


@case("jax", "torch", "numpy")
def config_round_trip():
    for cls, kwargs in (
            (fk.PReLU, {}),
            (fk.PReLU, {"shared_axes": [1, 2], "alpha_initializer": "ones",
                        "alpha_regularizer": "l2", "alpha_constraint": "non_neg"}),
            (fk.LeakyReLU, {}), (fk.LeakyReLU, {"negative_slope": 0.1}),
            (fk.ReLU, {}), (fk.ReLU, {"max_value": 6.0, "negative_slope": 0.1,
                                      "threshold": 0.5}),
            (fk.ELU, {}), (fk.ELU, {"alpha": 0.5})):
        layer = cls(**kwargs, name="a")
        config = layer.get_config()
        assert cls.from_config(config).get_config() == config
        keras_config = cls.__mro__[1](**kwargs, name="a").get_config()
        assert config == keras_config, (config, keras_config)
        ser = keras.saving.serialize_keras_object(layer)
        assert ser["registered_name"] == f"fastact>{cls.__name__}", ser
        assert type(keras.saving.deserialize_keras_object(ser)) is cls
    # Keras's defaults
    assert fk.LeakyReLU().negative_slope == 0.3 and fk.ELU().alpha == 1.0
    layer = built(fk.PReLU(shared_axes=[1, 2]), (2, 5, 6, 7))
    assert tuple(layer.alpha.shape) == (1, 1, 7)
    assert not to_np(layer.alpha).any()              # alpha_initializer="zeros"
    # Keras's own argument checks
    for bad in ({"max_value": -1.0}, {"negative_slope": -0.1}, {"threshold": -1.0}):
        try:
            fk.ReLU(**bad)
        except ValueError:
            pass
        else:
            raise AssertionError(f"ReLU({bad}) did not raise")


# --- gradients ----------------------------------------------------------------------

def grad_x(fn, x):
    """d sum(fn(x)) / dx on this backend, as numpy."""
    if BACKEND == "jax":
        import jax
        return np.asarray(jax.grad(lambda v: fn(v).sum())(x))
    import torch
    t = torch.tensor(x, requires_grad=True)
    fn(t).sum().backward()
    return t.grad.numpy()


@case("jax", "torch")
def semantics_where_keras_differs():
    """The README's Keras semantics rows: fastact's value, and Keras's."""
    x = np.array([[-1.0, -0.0, 0.0, 2.0]], np.float32)
    ours, theirs = fk.PReLU(), keras.layers.PReLU()
    for layer in (ours, theirs):
        layer.build((None, 4))
        layer.set_weights([np.full((4,), 0.25, np.float32)])
    assert grad_x(ours, x).tolist() == [[0.25, 0.25, 0.25, 1.0]]
    assert grad_x(theirs, x).tolist() == [[0.25, 0.0, 0.0, 1.0]]
    # ReLU with threshold > 0: NaN stays NaN (Keras: 0)
    x = np.array([[np.nan, 0.2, 1.0]], np.float32)
    assert np.isnan(to_np(fk.ReLU(threshold=0.5)(x))[0, 0])
    assert to_np(keras.layers.ReLU(threshold=0.5)(x))[0, 0] == 0.0
    # LeakyReLU's gradient at 0: the slope (Keras: the slope on torch, 1 on jax)
    x = np.array([[-0.0, 0.0]], np.float32)
    assert (grad_x(fk.LeakyReLU(), x) == np.float32(0.3)).all()
    keras_leaky = {"torch": np.float32(0.3), "jax": 1.0}[BACKEND]
    assert (grad_x(keras.layers.LeakyReLU(), x) == keras_leaky).all()
    # the gradient at x == max_value: 0 for every cap (Keras: 0 at 6 and 1 at
    # other caps on torch; 0 at 6 and 0.5 at other caps on jax)
    x = np.array([[5.0, 6.0, 7.0]], np.float32)
    assert grad_x(fk.ReLU(max_value=6.0), x).tolist() == [[1.0, 0.0, 0.0]]
    assert grad_x(fk.ReLU(max_value=5.0), x).tolist() == [[0.0, 0.0, 0.0]]
    at_6, at_cap = {"torch": (0.0, 1.0), "jax": (0.0, 0.5)}[BACKEND]
    assert grad_x(keras.layers.ReLU(max_value=6.0), x).tolist() == [[1.0, at_6, 0.0]]
    assert grad_x(keras.layers.ReLU(max_value=5.0), x).tolist() == [[at_cap, 0.0, 0.0]]


def away_from_kinks(shape, rng, kinks=(0.0,)):
    x = rng.standard_normal(shape)
    for k in kinks:
        close = np.abs(x - k) < 0.05
        x[close] += 0.1
    return x


@case("jax")
def check_grads_float64():
    """jax.test_util.check_grads (first order, reverse mode: custom_vjp) on
    each layer's call in float64."""
    import jax
    from jax.test_util import check_grads
    jax.config.update("jax_enable_x64", True)
    try:
        r = rng()
        for shape, shared in PRELU_SHAPES[:4]:
            layer = built(fk.PReLU(shared_axes=shared, dtype="float64"), shape)
            alpha = r.uniform(-0.5, 1.5, layer.alpha.shape)

            def f(x, a, layer=layer):
                return layer.stateless_call([a], [], x)[0]
            check_grads(f, (away_from_kinks(shape, r), alpha), order=1, modes=["rev"])
        for layer, kinks in ((fk.LeakyReLU(dtype="float64"), (0.0,)),
                             (fk.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.5,
                                      dtype="float64"), (0.5, 2.0)),
                             (fk.ELU(alpha=0.7, dtype="float64"), (0.0,))):
            x = away_from_kinks((3, 4, 5), r, kinks)
            assert layer(x).dtype == np.float64
            check_grads(layer, (x,), order=1, modes=["rev"])
    finally:
        jax.config.update("jax_enable_x64", False)


@case("torch")
def gradcheck_float64():
    import torch
    r = rng()
    for shape, shared in PRELU_SHAPES[:4]:
        layer = built(fk.PReLU(shared_axes=shared, dtype="float64"), shape)
        alpha = torch.tensor(r.uniform(-0.5, 1.5, layer.alpha.shape), requires_grad=True)
        x = torch.tensor(away_from_kinks(shape, r), requires_grad=True)
        assert torch.autograd.gradcheck(
            lambda x, a, layer=layer: layer.stateless_call([a], [], x)[0], (x, alpha))
    for layer in (fk.LeakyReLU(dtype="float64"), fk.ELU(alpha=0.7, dtype="float64")):
        x = torch.tensor(away_from_kinks((3, 4, 5), r), requires_grad=True)
        assert torch.autograd.gradcheck(layer, (x,))


@case("jax")
def tensorflow_fallback():
    """On a backend fastact has no kernels for (TensorFlow; simulated here by
    the backend's name), the layers run Keras's ops and warn once."""
    r = rng()
    x = keras.ops.convert_to_tensor(sample((2, 3, 4), r))
    saved_backend, saved_warned = fk._backend, list(fk._warned)
    fk._backend = lambda: "tensorflow"
    fk._warned.clear()
    try:
        assert not fk.uses_fastact()
        ours, theirs = fk.PReLU(), keras.layers.PReLU()
        alpha = r.uniform(0, 1, (3, 4)).astype(np.float32)
        for layer in (ours, theirs):
            layer.build((None, 3, 4))
            layer.set_weights([alpha])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = to_np(ours(x))
            to_np(fk.LeakyReLU()(x))
            leaky = to_np(fk.leaky_relu(x))
        assert_bitwise(got, to_np(theirs(x)), "PReLU fallback")
        assert_bitwise(leaky, to_np(keras.activations.leaky_relu(x)), "leaky_relu fallback")
        texts = [str(w.message) for w in caught if w.category is RuntimeWarning]
        assert len(texts) == 1 and "'tensorflow'" in texts[0], texts
    finally:
        fk._backend = saved_backend
        fk._warned[:] = saved_warned
    assert fk.uses_fastact()


@case("jax")
def readme_example():
    """The README's Keras example runs."""
    text = (ROOT / "README.md").read_text()
    blocks = [b for b in re.findall(r"```py\n(.*?)```", text, re.S) if "fastact.keras" in b]
    if not blocks:
        return "skip: README.md has no fastact.keras example (not beside the tests)"
    for block in blocks:
        exec(compile(block, "README fastact.keras example", "exec"), {})


def main():
    results = {}
    only = sys.argv[1:]
    for name, fn in CASES.items():
        if only and name not in only:
            continue
        try:
            outcome = fn()
            results[name] = outcome if isinstance(outcome, str) else None
        except Exception:
            results[name] = traceback.format_exc()
    print("RESULTS " + json.dumps(results))


if __name__ == "__main__":
    main()
