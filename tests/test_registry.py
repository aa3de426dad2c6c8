"""Activations by name (fastact.get, available) and custom activations
(fastact.register): spellings, did-you-mean, parameter errors, and registered
numpy callables used through the modules, out= and in place, with every
failure leaving the arrays untouched."""
import doctest
import uuid

import numpy as np
import pytest

import fastact
from fastact import _reference, _registry

from helpers import assert_module_out, poisoned_like, random_x

BUILTINS = ["elu", "hardtanh", "leaky_relu", "prelu", "relu", "relu6", "square",
            "thresholded_relu"]


@pytest.fixture
def fresh_name():
    """A name nobody registered, unregistered again after the test."""
    names = []

    def make(prefix="act"):
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        names.append(name)
        return name

    yield make
    for name in names:
        try:
            _registry._unregister(name)
        except ValueError:
            pass


def test_docstring_examples():
    result = doctest.testmod(_registry, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_available_lists_the_names_sorted(fresh_name):
    before = fastact.available()
    assert [n for n in before if n in BUILTINS] == BUILTINS       # (others may be registered)
    assert before == sorted(before)
    name = fresh_name("Zeta")
    fastact.register(name, np.negative, lambda g, x: -g)
    assert name in fastact.available()
    assert fastact.available() == sorted(before + [name])
    _registry._unregister(name)
    assert fastact.available() == before


@pytest.mark.parametrize("spelling, cls", [
    ("leaky_relu", fastact.LeakyReLU), ("LeakyReLU", fastact.LeakyReLU),
    ("leaky-relu", fastact.LeakyReLU), ("Leaky ReLU", fastact.LeakyReLU),
    ("lrelu", fastact.LeakyReLU), ("LRELU", fastact.LeakyReLU),
    ("relu", fastact.ReLU), ("ReLU", fastact.ReLU),
    ("relu6", fastact.ReLU6), ("ReLU6", fastact.ReLU6),
    ("elu", fastact.ELU), ("ELU", fastact.ELU),
    ("thresholded_relu", fastact.ThresholdedReLU), ("ThresholdedReLU", fastact.ThresholdedReLU),
    ("prelu", fastact.PReLU), ("PReLU", fastact.PReLU), ("PRelu", fastact.PReLU),
    ("square", fastact.Square), ("Square", fastact.Square),
    ("hardtanh", fastact.Hardtanh), ("Hardtanh", fastact.Hardtanh),
    ("hard_tanh", fastact.Hardtanh),
])
def test_spellings(spelling, cls):
    m = fastact.get(spelling)
    assert type(m) is cls
    assert m.name in BUILTINS
    assert fastact.get(m.name).__class__ is cls


def test_get_passes_parameters(rng):
    m = fastact.get("LeakyReLU", negative_slope=0.2, inplace=True)
    assert m.negative_slope == 0.2 and m.inplace
    m = fastact.get("relu", negative_slope=0.1, max_value=6.0, threshold=0.5)
    assert (m.negative_slope, m.max_value, m.threshold) == (0.1, 6.0, 0.5)
    x = random_x(rng, (3, 50), np.float64) * 4
    np.testing.assert_array_equal(m(x), _reference.relu(x, 0.1, 6.0, 0.5))
    m = fastact.get("prelu", channels=3, init=0.1, dtype=np.float64, channel_axis=-1)
    assert m.slopes.shape == (3,) and m.slopes.dtype == np.float64 and m.channel_axis == -1
    assert fastact.get("elu", alpha=0.5).alpha == 0.5
    assert fastact.get("thresholded_relu", theta=2.0).theta == 2.0
    assert fastact.get("relu6", inplace=True).inplace
    # each call gives a new module
    assert fastact.get("relu") is not fastact.get("relu")


@pytest.mark.parametrize("name, param, takes", [
    ("relu", "slope", "negative_slope, max_value, threshold and inplace"),
    ("LeakyReLU", "alpha", "negative_slope and inplace"),
    ("elu", "negative_slope", "alpha and inplace"),
    ("square", "alpha", "takes only inplace"),
    ("relu6", "max_value", "takes only inplace"),
    ("prelu", "num_parameters", "channels, shared, init"),
])
def test_unknown_parameter(name, param, takes):
    with pytest.raises(TypeError, match=f"has no parameter '{param}'.*{takes}"):
        fastact.get(name, **{param: 1.0})


def test_parameter_values_are_checked():
    with pytest.raises(ValueError, match="negative_slope must be >= 0"):
        fastact.get("relu", negative_slope=-1)
    with pytest.raises(TypeError, match="alpha must be a real number"):
        fastact.get("elu", alpha="1")


@pytest.mark.parametrize("name, suggestion", [
    ("lreul", "'lrelu' (leaky_relu)"), ("leaky_rlu", "'leaky_relu'"), ("rleu", "'relu'"),
    ("gelu", "'elu'"), ("relu7", "'relu'"), ("Thresholded_Relu_", None), ("PRelU", None),
    ("squre", "'square'"), ("threshold_relu", "'thresholded_relu'"),
])
def test_unknown_name_suggests_the_closest(name, suggestion):
    if suggestion is None:          # these are known spellings after all
        fastact.get(name)
        return
    with pytest.raises(ValueError) as info:
        fastact.get(name)
    message = str(info.value)
    assert message.startswith(f"unknown activation {name!r}; did you mean {suggestion}?")
    for known in BUILTINS:
        assert known in message.split("Known activations: ")[1]


def test_unknown_name_without_a_close_match():
    with pytest.raises(ValueError) as info:
        fastact.get("softmax")
    message = str(info.value)
    assert "did you mean" not in message
    assert message.startswith("unknown activation 'softmax'. Known activations: ")
    for name in BUILTINS:
        assert name in message


def test_name_must_be_a_string():
    for bad in (None, 3, fastact.relu, b"relu"):
        with pytest.raises(TypeError, match="name must be a str"):
            fastact.get(bad)
        with pytest.raises(TypeError, match="name must be a str"):
            fastact.register(bad, np.square, np.square)


# --- register ---------------------------------------------------------------------

def _swish(x, beta=1.0):
    return x / (1 + np.exp(-beta * x))


def _swish_backward(g, x, beta=1.0):
    s = 1 / (1 + np.exp(-beta * x))
    return g * (s + beta * x * s * (1 - s))


def test_builtin_names_cannot_be_taken():
    for name in ("relu", "ReLU", "leaky-relu", "lrelu", "Square", "PRelu"):
        with pytest.raises(ValueError, match="built-in activation .* cannot be replaced"):
            fastact.register(name, np.square, np.square)
        with pytest.raises(ValueError, match="cannot be replaced"):
            fastact.register(name, np.square, np.square, replace=True)


def test_register_checks_its_arguments(fresh_name):
    name = fresh_name()
    with pytest.raises(TypeError, match="forward must be callable, got int"):
        fastact.register(name, 1, np.square)
    with pytest.raises(TypeError, match="backward must be callable, got NoneType"):
        fastact.register(name, np.square, None)
    for bad in ("", "_-_", "  "):
        with pytest.raises(ValueError, match="name must have a letter or a digit"):
            fastact.register(bad, np.square, np.square)
    assert name not in fastact.available()


def test_duplicate_names_need_replace(fresh_name, rng):
    name = fresh_name("My_Act")
    fastact.register(name, lambda x: x + 1, lambda g, x: g)
    other = name.replace("_", "-").upper()                 # the same name, spelled otherwise
    with pytest.raises(ValueError, match=f"an activation named '{name}' is already registered; "
                                         "pass replace=True"):
        fastact.register(other, lambda x: x + 2, lambda g, x: g)
    x = np.array([1.0, 2.0])
    np.testing.assert_array_equal(fastact.get(other)(x), [2.0, 3.0])
    fastact.register(other, lambda x: x + 2, lambda g, x: 2 * g, replace=True)
    np.testing.assert_array_equal(fastact.get(name)(x), [3.0, 4.0])
    np.testing.assert_array_equal(fastact.get(name).gradient(x, x), [2.0, 4.0])
    assert other in fastact.available() and name not in fastact.available()
    _registry._unregister(other)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_custom_round_trip(fresh_name, rng, dtype):
    name = fresh_name("swish")
    fastact.register(name, _swish, _swish_backward)
    x = random_x(rng, (4, 5, 6), dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    x0, g0 = x.copy(), g.copy()
    want_y = _swish(x.astype(np.float64), 1.5).astype(dtype)
    want_gi = _swish_backward(g.astype(np.float64), x.astype(np.float64), 1.5).astype(dtype)
    rtol = 4 * np.finfo(dtype).eps

    m = fastact.get(name, beta=1.5)
    assert m.name == name and m.params == {"beta": 1.5} and name in repr(m)
    y = m(x)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_allclose(y, want_y, rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(x, x0)
    gi = m.backward(g)
    np.testing.assert_allclose(gi, want_gi, rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(g, g0)

    # out=, the stateless forms, in place
    assert_module_out(m, x, g, y, gi)
    np.testing.assert_array_equal(m.gradient(g, x), gi)
    g2 = g.copy()
    assert m.gradient(g2, x, inplace=True) is g2
    np.testing.assert_array_equal(g2, gi)
    x2 = x.copy()
    assert m.function(x2, inplace=True) is x2
    np.testing.assert_array_equal(x2, y)

    # an in-place module runs forward, and refuses backward (x is gone)
    mi = fastact.get(name, beta=1.5, inplace=True)
    x3 = x.copy()
    assert mi(x3) is x3
    np.testing.assert_array_equal(x3, y)
    out = poisoned_like(x)
    with pytest.raises(ValueError, match=f"in-place forward.*backward of '{name}' needs x"):
        mi.backward(g, out=out)
    assert out.tobytes() == poisoned_like(x).tobytes()
    # so does a module whose out= was its input
    m.forward(x3, out=x3)
    with pytest.raises(ValueError, match="needs x"):
        m.backward(g)


def test_custom_parameters(fresh_name):
    name = fresh_name("swish")
    fastact.register(name, _swish, _swish_backward)
    with pytest.raises(TypeError, match=f"'{name}' has no parameter 'gamma'; it takes beta "
                                        "and inplace"):
        fastact.get(name, gamma=2.0)
    open_name = fresh_name("scaled")
    fastact.register(open_name, lambda x, **k: x * k.get("c", 1.0),
                     lambda g, x, **k: g * k.get("c", 1.0))
    np.testing.assert_array_equal(fastact.get(open_name, c=3.0)(np.array([1.0, 2.0])), [3.0, 6.0])
    plain = fresh_name("neg")
    fastact.register(plain, lambda x: -x, lambda g, x: -g)
    with pytest.raises(TypeError, match="takes only inplace"):
        fastact.get(plain, beta=1.0)


def test_builtin_square_and_custom_square_agree(fresh_name, rng):
    """The seeds' example of a custom activation, also a built-in."""
    name = fresh_name("sq")
    fastact.register(name, lambda x: x * x, lambda g, x: 2 * x * g)
    x = random_x(rng, (7, 9), np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    custom, builtin = fastact.get(name), fastact.get("square")
    np.testing.assert_array_equal(custom(x), builtin(x))
    np.testing.assert_array_equal(custom.backward(g), builtin.backward(g))
    np.testing.assert_array_equal(builtin(x), _reference.square(x).astype(np.float32))


def test_custom_zero_d_and_numpy_functions(fresh_name):
    name = fresh_name("tanh")
    fastact.register(name, np.tanh, lambda g, x: g * (1 - np.tanh(x) ** 2))
    m = fastact.get(name)
    y = m(np.array(0.5))                  # np.tanh returns a numpy scalar for 0-d input
    assert isinstance(y, np.ndarray) and y.shape == () and y == np.tanh(0.5)
    assert m.backward(np.array(1.0)) == 1 - np.tanh(0.5) ** 2
    assert m([0.0, 1.0]).tolist() == [0.0, np.tanh(1.0)]     # array-likes are converted


def test_custom_result_never_aliases_the_input(fresh_name):
    name = fresh_name("ident")
    fastact.register(name, lambda x: x, lambda g, x: g)
    x = np.array([1.0, -2.0])
    y = fastact.get(name)(x)
    assert not np.shares_memory(x, y)
    g = np.ones(2)
    gi = fastact.get(name).gradient(g, x)
    assert not np.shares_memory(g, gi)


# --- callables that return the wrong thing: clear errors, nothing written ---------

_BAD_RESULTS = [
    (lambda x: x.astype(np.float64), TypeError, r"returned dtype float64; expected float32"),
    (lambda x: x[:, :2], ValueError, r"returned shape \(3, 2\); expected \(3, 4\)"),
    (lambda x: x.reshape(-1), ValueError, r"returned shape \(12,\); expected \(3, 4\)"),
    (lambda x: x.tolist(), TypeError, r"returned list; expected a numpy.ndarray of shape \(3, 4\)"),
    (lambda x: None, TypeError, "returned NoneType"),
    (lambda x: float(x.sum()), TypeError, "returned float"),
]


@pytest.mark.parametrize("bad, exc, message", _BAD_RESULTS)
@pytest.mark.parametrize("which", ["forward", "backward"])
@pytest.mark.parametrize("mode", ["new", "out", "inplace"])
def test_wrong_results_are_refused(fresh_name, rng, bad, exc, message, which, mode):
    name = fresh_name("bad")

    def bad_forward(x):
        return bad(x)

    def bad_backward(g, x):
        return bad(g)

    if which == "forward":
        fastact.register(name, bad_forward, lambda g, x: g)
    else:
        fastact.register(name, np.negative, bad_backward)
    m = fastact.get(name)
    x = random_x(rng, (3, 4), np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    x0, g0 = x.copy(), g.copy()
    out = poisoned_like(x)
    kwargs = {"out": out} if mode == "out" else {"inplace": mode == "inplace"}
    fn = f"bad_{which}"
    with pytest.raises(exc, match=rf"custom activation '{name}': {which} \(.*{fn}\) {message}"):
        if which == "forward":
            m.function(x, **kwargs)
        else:
            m.gradient(g, x, **kwargs)
    assert x.tobytes() == x0.tobytes() and g.tobytes() == g0.tobytes()
    assert out.tobytes() == poisoned_like(x).tobytes()
    if which == "forward":
        with pytest.raises(exc, match=message):
            m(x)
        assert m._saved is None           # a failed forward keeps nothing
    else:
        m(x)
        with pytest.raises(exc, match=message):
            m.backward(g, out=out)
        assert out.tobytes() == poisoned_like(x).tobytes()


def test_custom_input_checks(fresh_name, rng):
    name = fresh_name("neg")
    fastact.register(name, np.negative, lambda g, x: -g)
    m = fastact.get(name)
    x = random_x(rng, (3, 4), np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    x0, g0 = x.copy(), g.copy()
    checks = [
        (lambda: m.function(x.astype(np.int64)), TypeError, "x has dtype int64; fastact supports"),
        (lambda: m.function(x, out=np.empty((3, 4), np.float64)), ValueError,
         "out has dtype float64; expected float32"),
        (lambda: m.function(x, out=np.empty((4, 3), np.float32)), ValueError,
         r"out has shape \(4, 3\); expected \(3, 4\)"),
        (lambda: m.function(x, out=[[0.0]]), TypeError, "out must be a numpy.ndarray, got list"),
        (lambda: m.function(x, out=poisoned_like(x), inplace=True), ValueError,
         "either out= or inplace=True"),
        (lambda: m.function(x, stream=1), ValueError, "is for GPU arrays"),
        (lambda: m.function(x.tolist(), inplace=True), TypeError,
         "inplace=True needs x to be a numpy.ndarray"),
        (lambda: m.gradient(g.astype(np.float64), x), ValueError,
         "grad_output has dtype float64; expected float32"),
        (lambda: m.gradient(g[:2], x), ValueError,
         r"grad_output has shape \(2, 4\); expected \(3, 4\)"),
        (lambda: m.gradient(g, x, out=np.empty(3, np.float32)), ValueError, "out has shape"),
    ]
    for call, exc, message in checks:
        with pytest.raises(exc, match=message):
            call()
    ro = x.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="inplace=True but x is read-only"):
        m.function(ro, inplace=True)
    out = poisoned_like(x)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        m.function(x, out=out)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(g, g0)


def test_custom_half_precision(fresh_name):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    name = fresh_name("neg")
    fastact.register(name, np.negative, lambda g, x: -g)
    for dtype in (np.float16, ml_dtypes.bfloat16):
        x = np.array([1.0, -2.0], dtype)
        y = fastact.get(name)(x)
        assert y.dtype == dtype and y.astype(np.float64).tolist() == [-1.0, 2.0]
