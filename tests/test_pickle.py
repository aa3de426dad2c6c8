"""Modules and registered activations pickle and unpickle (pickle, and
cloudpickle, which Dask and Ray use to ship tasks to worker processes):
the copy has the same parameters and state, computes the oracle's results,
and works in a fresh process where nothing was registered."""
import copy
import pickle
import subprocess
import sys

import numpy as np
import pytest

import fastact
from fastact import _reference, _registry

from helpers import BFLOAT16, assert_same, random_x, rounded_like_kernels

# class -> (constructor arguments, the oracle's name and parameters)
MODULES = [
    (fastact.LeakyReLU, (0.3,), {}, "leaky_relu", {"negative_slope": 0.3}),
    (fastact.ReLU, (0.25, 4.0, 0.5), {}, "relu",
     {"negative_slope": 0.25, "max_value": 4.0, "threshold": 0.5}),
    (fastact.ReLU6, (), {}, "relu6", {}),
    (fastact.ThresholdedReLU, (0.75,), {}, "thresholded_relu", {"theta": 0.75}),
    (fastact.ELU, (1.5,), {"inplace": True}, "elu", {"alpha": 1.5}),
    (fastact.Hardtanh, (-0.5, 2.0), {}, "hardtanh", {"min_val": -0.5, "max_val": 2.0}),
    (fastact.Square, (), {}, "square", {}),
]


def _dumps_loads(obj, how):
    if how == "cloudpickle":
        cloudpickle = pytest.importorskip("cloudpickle")
        return pickle.loads(cloudpickle.dumps(obj))
    if how == "deepcopy":
        return copy.deepcopy(obj)
    return pickle.loads(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


HOWS = ["pickle", "cloudpickle", "deepcopy"]


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("cls, args, kwargs, oracle, params", MODULES,
                         ids=[m[0].__name__ for m in MODULES])
def test_family_module_round_trip(rng, how, cls, args, kwargs, oracle, params):
    m = cls(*args, **kwargs)
    m2 = _dumps_loads(m, how)
    assert type(m2) is cls and m2 is not m
    assert repr(m2) == repr(m)
    assert m2.inplace == m.inplace
    x = random_x(rng, (2, 3, 4), np.float64) * 3
    g = rng.standard_normal(x.shape)
    want = getattr(_reference, oracle)(x, **params)
    np.testing.assert_array_equal(m2.function(x), want)
    if cls is not fastact.Square or not m.inplace:
        np.testing.assert_allclose(m2.gradient(g, x),
                                   getattr(_reference, oracle + "_backward")(g, x, **params),
                                   rtol=1e-15, atol=0)


@pytest.mark.parametrize("how", HOWS)
def test_module_state_after_forward_travels(rng, how):
    """A module pickled between forward and backward keeps what backward needs."""
    m = fastact.LeakyReLU(0.2)
    x = random_x(rng, (3, 5), np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    m(x)
    m2 = _dumps_loads(m, how)
    want = _reference.leaky_relu_backward(g, x, np.float32(0.2)).astype(np.float32)
    np.testing.assert_array_equal(m2.backward(g), want)


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("layout", ["channels", "last", "shared", "slopes_shape"])
def test_prelu_module_round_trip(rng, how, dtype, layout):
    if dtype == "bfloat16" and BFLOAT16 is None:
        pytest.skip("ml_dtypes is not installed")
    dt = BFLOAT16 if dtype == "bfloat16" else np.dtype(dtype)
    kw = {"channels": dict(channels=3), "last": dict(channels=3, channel_axis=-1),
          "shared": dict(shared=True), "slopes_shape": dict(slopes_shape=(1, 4, 1))}[layout]
    m = fastact.PReLU(init=0.25, dtype=dt, **kw)
    m.slopes[...] = rng.uniform(0.1, 2.0, m.slopes.shape).astype(dt)   # learned slopes
    shape = (2, 4, 3) if layout == "last" else (2, 3, 4, 5)
    x = random_x(rng, shape, dt)
    g = rng.standard_normal(shape).astype(dt)
    m(x)
    m.backward(g)                                  # grad_slopes is state too
    m2 = _dumps_loads(m, how)
    assert repr(m2) == repr(m)
    assert m2.slopes.dtype == dt and m2.slopes.shape == m.slopes.shape
    assert m2.slopes.tobytes() == m.slopes.tobytes()
    assert m2.slopes.flags.writeable and not np.shares_memory(m2.slopes, m.slopes)
    assert m2.grad_slopes.tobytes() == m.grad_slopes.tobytes()
    assert m2.channel_axis == m.channel_axis and m2.shared == m.shared
    ref = _reference.prelu(x, m.slopes, channel_axis=m.channel_axis)
    assert_same(m2(x), rounded_like_kernels(ref, dt))
    # the copy learns on its own: the original's slopes do not change
    m2.slopes *= 2
    assert not np.array_equal(m2.slopes, m.slopes)


def _cube(x):
    return x * x * x


def _cube_grad(g, x):
    return g * 3 * x * x


@pytest.fixture
def registered():
    names = []

    def register(name, fwd, bwd):
        fastact.register(name, fwd, bwd, replace=True)
        names.append(name)

    yield register
    for name in names:
        _registry._unregister(name)


@pytest.mark.parametrize("how", HOWS)
def test_get_builtin_round_trip(how):
    for name, params in [("lrelu", {"negative_slope": 0.5}), ("PReLU", {"channels": 2}),
                         ("relu", {"max_value": 6.0}), ("elu", {})]:
        m = fastact.get(name, **params)
        m2 = _dumps_loads(m, how)
        assert type(m2) is type(m) and repr(m2) == repr(m)


@pytest.mark.parametrize("how", HOWS)
def test_custom_round_trip(rng, registered, how):
    registered("pickle_cube", _cube, _cube_grad)     # module-level functions: by reference
    m = fastact.get("pickle_cube")
    m2 = _dumps_loads(m, how)
    assert repr(m2) == repr(m) and m2.name == "pickle_cube"
    x = random_x(rng, (4, 5), np.float64)
    g = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(m2(x), x * x * x)
    np.testing.assert_array_equal(m2.backward(g), g * 3 * x * x)


def test_custom_with_lambdas_needs_cloudpickle(rng, registered):
    """Lambdas and closures pickle by value with cloudpickle (as Dask sends
    them); plain pickle cannot pickle a lambda (a Python rule)."""
    registered("pickle_lambda", lambda x, k=2.0: k * x, lambda g, x, k=2.0: k * g)
    m = fastact.get("pickle_lambda", k=3.0)
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(m)
    cloudpickle = pytest.importorskip("cloudpickle")
    m2 = pickle.loads(cloudpickle.dumps(m))
    x = rng.standard_normal(6).astype(np.float32)
    np.testing.assert_array_equal(m2(x), np.float32(3.0) * x)
    assert m2.params == {"k": 3.0}


FRESH = """
import pickle, sys
import numpy as np
import fastact
m = pickle.loads(sys.stdin.buffer.read())
assert "pickle_fresh" not in fastact.available()   # a fresh process: nothing registered
x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(2, 3, 2)
y = m(x)
np.testing.assert_array_equal(y, {expect})
print("OK", repr(m))
"""


@pytest.mark.parametrize("how", ["pickle", "cloudpickle"])
@pytest.mark.parametrize("which", ["prelu", "custom"])
def test_unpickled_in_a_fresh_process(registered, how, which):
    if which == "prelu":
        m = fastact.PReLU(3, init=0.5)
        m.slopes[:] = [0.5, -1.0, 2.0]
        expect = "np.where(x > 0, x, np.float32([0.5, -1.0, 2.0])[:, None] * x)"
    else:
        # numpy's functions pickle by reference with plain pickle too
        registered("pickle_fresh", np.square, np.multiply)
        m = fastact.get("pickle_fresh")
        expect = "np.square(x)"
    if how == "cloudpickle":
        data = pytest.importorskip("cloudpickle").dumps(m)
    else:
        data = pickle.dumps(m)
    proc = subprocess.run([sys.executable, "-c", FRESH.format(expect=expect)],
                          input=data, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().startswith("OK")
