"""The family's public API: functions, parameter checks, defaults, published
values, and the modules (forward, backward, out=, in place) against the float64
oracles in fastact._reference, plus finite differences away from the kinks.

The kernels themselves (every dtype, layout, size and special value) are
tests/test_family.py's business; these tests check what the Python layer adds.
"""
import numpy as np
import pytest

import fastact
from fastact import _reference

from helpers import assert_same, poisoned_like, random_x

FLOATS = [np.float32, np.float64]

# name -> (function, backward, parameter names, a valid value for each)
OPS = {
    "leaky_relu": (fastact.leaky_relu, fastact.leaky_relu_backward, {"negative_slope": 0.3}),
    "relu": (fastact.relu, fastact.relu_backward,
             {"negative_slope": 0.2, "max_value": 4.0, "threshold": 0.5}),
    "relu6": (fastact.relu6, fastact.relu6_backward, {}),
    "thresholded_relu": (fastact.thresholded_relu, fastact.thresholded_relu_backward,
                         {"theta": 0.75}),
    "elu": (fastact.elu, fastact.elu_backward, {"alpha": 1.5}),
    "hardtanh": (fastact.hardtanh, fastact.hardtanh_backward,
                 {"min_val": -0.5, "max_val": 2.0}),
    "square": (fastact.square, fastact.square_backward, {}),
}

# how far (in ulps of the dtype) a kernel may be from the float64 oracle rounded
# once: products of two floats are exact in float64, so most ops match bitwise;
# relu with a threshold rounds x - threshold first; elu calls expm1/exp.
ULPS = {"relu": 1, "elu": 4}


def _rounded(params, dtype):
    """Parameters as the kernels use them: rounded to float32 unless float64."""
    if np.dtype(dtype) == np.float64:
        return dict(params)
    return {k: (None if v is None else float(np.float32(v))) for k, v in params.items()}


def expected(name, x, params, g=None):
    """The oracle's answer for x (and grad_output g), rounded to x's dtype."""
    p = _rounded(params, x.dtype)
    with np.errstate(all="ignore"):
        if g is None:
            r = getattr(_reference, name)(x, **p)
        else:
            r = getattr(_reference, name + "_backward")(g, x, **p)
    return r.astype(x.dtype)


def assert_matches(got, want, ulps=0):
    """Same shape and dtype, NaN where want has NaN, equal elsewhere (within
    `ulps` units in the last place of the dtype)."""
    assert isinstance(got, np.ndarray)
    assert got.shape == want.shape and got.dtype == want.dtype
    g64, w64 = got.astype(np.float64), want.astype(np.float64)
    nan = np.isnan(w64)
    assert np.array_equal(np.isnan(g64), nan), "NaN in the wrong places"
    if ulps == 0:
        np.testing.assert_array_equal(g64[~nan], w64[~nan])
        return
    fin = np.finfo(got.dtype)
    tol = ulps * float(fin.eps) * np.abs(w64) + ulps * float(fin.smallest_subnormal)
    with np.errstate(invalid="ignore"):
        same = (g64 == w64) | (np.abs(g64 - w64) <= tol)
    assert same[~nan].all(), f"{g64[~same & ~nan]} != {w64[~same & ~nan]}"


def special_x(rng, dtype, params, shape=(5, 7, 9), name=None):
    """Random data with the kinks, zeros, +-inf and NaN sprinkled in."""
    x = random_x(rng, shape, dtype) * dtype(3)
    specials = [0.0, -0.0, np.inf, -np.inf, np.nan, 6.0]
    specials += [v for v in params.values() if v is not None]
    flat = x.reshape(-1)
    picks = rng.choice(flat.size, size=3 * len(specials), replace=False)
    for i, p in enumerate(picks):
        flat[p] = specials[i % len(specials)]
    return x


# --- the issue's and the frameworks' published values ------------------------------

def test_leaky_relu_slope_above_one_is_exact():
    x = np.array([[-0.9] * 3, [1.1] * 3], dtype=np.float32)
    y = fastact.leaky_relu(x, 1.205321)
    np.testing.assert_array_equal(
        y, np.array([[-1.0847888] * 3, [1.1] * 3], dtype=np.float32))
    assert not np.any(y == np.float32(1.3258531))          # max(a*x, x) would give this
    np.testing.assert_array_equal(fastact.leaky_relu_backward(np.ones_like(x), x, 1.205321),
                                  np.array([[1.205321] * 3, [1] * 3], np.float32))


def test_leaky_relu_negative_slope():
    x = np.array([-2.0, -0.5, 0.0, 3.0])
    np.testing.assert_array_equal(fastact.leaky_relu(x, -0.5), [1.0, 0.25, -0.0, 3.0])
    np.testing.assert_array_equal(fastact.leaky_relu_backward(np.ones(4), x, -0.5),
                                  [-0.5, -0.5, -0.5, 1.0])


def test_keras_relu_examples():
    # keras.activations.relu's docstring (TF 2.x), float32
    foo = np.array([-10, -5, 0.0, 5, 10], dtype=np.float32)
    np.testing.assert_array_equal(fastact.relu(foo), [0, 0, 0, 5, 10])
    np.testing.assert_array_equal(fastact.relu(foo, negative_slope=0.5), [-5, -2.5, 0, 5, 10])
    np.testing.assert_array_equal(fastact.relu(foo, max_value=5.0), [0, 0, 0, 5, 5])
    np.testing.assert_array_equal(fastact.relu(foo, threshold=5.0), [0, 0, 0, 0, 10])
    # keras.layers.ReLU's docstring
    x = np.array([-3.0, -1.0, 0.0, 2.0], dtype=np.float32)
    np.testing.assert_array_equal(fastact.ReLU()(x), [0, 0, 0, 2])
    np.testing.assert_array_equal(fastact.ReLU(max_value=1.0)(x), [0, 0, 0, 1])
    np.testing.assert_array_equal(fastact.ReLU(negative_slope=1.0)(x), [-3, -1, 0, 2])
    np.testing.assert_array_equal(fastact.ReLU(threshold=1.5)(x), [0, 0, 0, 2])


def test_relu_strict_threshold_and_exact_zero_side():
    x = np.array([-np.inf, -1.0, 1.0, 1.5, 2.0, np.nan])
    y = fastact.relu(x, threshold=1.0)
    np.testing.assert_array_equal(y[:5], [0, 0, 0, 1.5, 2.0])   # x == threshold gives 0
    assert np.isnan(y[5])                                        # NaN stays (torch), not 0
    assert not np.signbit(y[:3]).any()
    # the plain kernel: -inf -> 0 (not 0 * -inf = NaN), -0.0 -> +0.0, NaN stays
    y = fastact.relu(np.array([-np.inf, -0.0, np.nan, np.inf]))
    np.testing.assert_array_equal(y[[0, 1, 3]], [0.0, 0.0, np.inf])
    assert not np.signbit(y[1]) and np.isnan(y[2])


def test_uncapped_relu_gradient_at_inf():
    """Without a cap, +inf is on the identity branch: gradient 1, as torch's
    relu and threshold give, and as the plain relu kernel gives."""
    x = np.array([np.inf, 2.0])
    g = np.ones(2)
    np.testing.assert_array_equal(fastact.relu_backward(g, x), [1.0, 1.0])
    np.testing.assert_array_equal(fastact.relu_backward(g, x, threshold=0.5), [1.0, 1.0])
    np.testing.assert_array_equal(fastact.relu_backward(g, x, negative_slope=0.1), [1.0, 1.0])
    np.testing.assert_array_equal(fastact.thresholded_relu_backward(g, x), [1.0, 1.0])
    np.testing.assert_array_equal(_reference.relu_backward(g, x), [1.0, 1.0])


def test_relu6_and_kink_gradients():
    x = np.array([-1.0, 0.0, 3.0, 6.0, 9.0], dtype=np.float32)
    np.testing.assert_array_equal(fastact.relu6(x), [0, 0, 3, 6, 6])
    # torch's relu6/hardtanh: 0 at both kinks
    np.testing.assert_array_equal(fastact.relu6_backward(np.ones_like(x), x), [0, 0, 1, 0, 0])
    # relu's threshold takes the lower side; max_value gives 0
    x = np.array([0.5, 1.0, 2.0, 4.0])
    np.testing.assert_array_equal(
        fastact.relu_backward(np.ones(4), x, negative_slope=0.25, max_value=4.0, threshold=1.0),
        [0.25, 0.25, 1.0, 0.0])


def test_thresholded_relu_keras_semantics():
    x = np.array([-1.0, 0.5, 1.0, 1.5], dtype=np.float32)
    np.testing.assert_array_equal(fastact.thresholded_relu(x), [0, 0, 0, 1.5])
    np.testing.assert_array_equal(fastact.thresholded_relu(x, theta=0.0), [0, 0.5, 1, 1.5])
    np.testing.assert_array_equal(fastact.thresholded_relu_backward(np.ones_like(x), x),
                                  [0, 0, 0, 1])
    np.testing.assert_array_equal(fastact.thresholded_relu(x, 0.75),
                                  fastact.relu(x, threshold=0.75))


@pytest.mark.parametrize("dtype", FLOATS)
def test_elu_is_accurate_near_zero(dtype):
    x = np.array([-1e-7, -1e-30, -3e-5], dtype=dtype)
    y = fastact.elu(x)
    want = np.expm1(x.astype(np.float64))
    np.testing.assert_allclose(y, want, rtol=2 * np.finfo(dtype).eps)
    if dtype is np.float32:       # what exp(x) - 1 would give, half the digits lost
        assert y[0] != np.exp(np.float32(-1e-7)) - np.float32(1)
    np.testing.assert_array_equal(fastact.elu(np.array([-np.inf, 0.0, np.inf]), alpha=2.0),
                                  [-2.0, 0.0, np.inf])


def test_square():
    x = np.array([-3.0, -0.0, 0.5, np.inf])
    np.testing.assert_array_equal(fastact.square(x), [9.0, 0.0, 0.25, np.inf])
    np.testing.assert_array_equal(fastact.square_backward(np.ones(4), x),
                                  [-6.0, -0.0, 1.0, np.inf])


# --- defaults -------------------------------------------------------------------

def test_defaults(rng):
    x = random_x(rng, (4, 33), np.float64)
    g = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(fastact.leaky_relu(x), fastact.leaky_relu(x, 0.01))
    np.testing.assert_array_equal(fastact.leaky_relu_backward(g, x),
                                  fastact.leaky_relu_backward(g, x, 0.01))
    np.testing.assert_array_equal(fastact.relu(x), np.where(x > 0, x, 0.0))
    np.testing.assert_array_equal(fastact.relu(x), fastact.relu(x, 0.0, None, 0.0))
    np.testing.assert_array_equal(fastact.relu6(x), fastact.relu(x, max_value=6.0))
    np.testing.assert_array_equal(fastact.elu(x), fastact.elu(x, 1.0))
    np.testing.assert_array_equal(fastact.thresholded_relu(x), fastact.thresholded_relu(x, 1.0))
    assert fastact.LeakyReLU().negative_slope == 0.01
    assert fastact.ELU().alpha == 1.0
    assert fastact.ThresholdedReLU().theta == 1.0
    m = fastact.ReLU()
    assert (m.negative_slope, m.max_value, m.threshold) == (0.0, None, 0.0)
    np.testing.assert_array_equal(fastact.PReLU(3).slopes, np.full(3, 0.25, np.float32))


# --- every function against the oracle, in every output mode ------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("mode", ["new", "out", "inplace", "out_is_input"])
def test_functions_against_oracle(rng, name, dtype, mode):
    fn, bwd, params = OPS[name]
    x = special_x(rng, dtype, params, name=name)
    g = rng.standard_normal(x.shape).astype(dtype)
    y_want = expected(name, x, params)
    gi_want = expected(name, x, params, g)
    x0, g0 = x.copy(), g.copy()
    ulps = ULPS.get(name, 0) if params else 0

    def run(f, *args, target):
        if mode == "new":
            return f(*args, **params)
        if mode == "out":
            out = poisoned_like(target)
            r = f(*args, **params, out=out)
            assert r is out
            return r
        if mode == "inplace":
            r = f(*args, **params, inplace=True)
        else:
            r = f(*args, **params, out=target)
        assert r is target
        return r

    assert_matches(run(fn, x, target=x), y_want, ulps)
    if mode in ("new", "out"):
        np.testing.assert_array_equal(x, x0)
    x = x0.copy()
    assert_matches(run(bwd, g, x, target=g), gi_want, ulps)
    np.testing.assert_array_equal(x, x0)
    if mode in ("new", "out"):
        np.testing.assert_array_equal(g, g0)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(OPS))
def test_backward_out_may_be_x(rng, name, dtype):
    """out=x in a backward: grad_input replaces x (read first), as out may be
    grad_output; an out that overlaps x only partially is refused."""
    _, bwd, params = OPS[name]
    x = special_x(rng, dtype, params, name=name)
    g = rng.standard_normal(x.shape).astype(dtype)
    want = expected(name, x, params, g)
    g0, ulps = g.copy(), ULPS.get(name, 0) if params else 0
    xs = x.copy()
    assert bwd(g, xs, **params, out=xs) is xs
    assert_matches(xs, want, ulps)
    xs = x.copy()
    view = xs[...]                                   # the same memory, another object
    assert bwd(g, xs, **params, out=view) is view
    assert_matches(xs, want, ulps)
    np.testing.assert_array_equal(g, g0)
    buf = np.concatenate([x.ravel(), x.ravel()[:1]])
    shifted_x, shifted_out = buf[:-1].reshape(x.shape), buf[1:].reshape(x.shape)
    _check_untouched(lambda: bwd(g, shifted_x, **params, out=shifted_out), ValueError,
                     "out overlaps x partially", buf, g)


@pytest.mark.parametrize("name", list(OPS))
def test_array_likes_and_scalars(name):
    fn, bwd, params = OPS[name]
    x = [[-2.0, 0.5], [3.0, 7.0]]
    y = fn(x, **params)
    assert type(y) is np.ndarray and y.dtype == np.float64
    assert_matches(y, expected(name, np.array(x), params), ULPS.get(name, 0))
    gi = bwd([[1.0, 1.0], [1.0, 1.0]], x, **params)
    assert_matches(gi, expected(name, np.array(x), params, np.ones((2, 2))), ULPS.get(name, 0))
    y0 = fn(np.float64(-2.0), **params)                  # a 0-d input
    assert_matches(y0, expected(name, np.array([-2.0]), params).reshape(()), ULPS.get(name, 0))
    with pytest.raises(TypeError, match="inplace=True needs x to be a numpy.ndarray, got list"):
        fn(x, **params, inplace=True)
    with pytest.raises(TypeError, match="inplace=True needs grad_output to be a numpy.ndarray"):
        bwd([[1.0, 1.0], [1.0, 1.0]], np.array(x), **params, inplace=True)


@pytest.mark.parametrize("name", list(OPS))
def test_stream_is_for_gpu_arrays(rng, name):
    fn, bwd, params = OPS[name]
    x = random_x(rng, (3, 4), np.float32)
    g = np.ones_like(x)
    assert_matches(fn(x, **params, stream=None), expected(name, x, params), ULPS.get(name, 0))
    x0, g0 = x.copy(), g.copy()
    for call in (lambda: fn(x, **params, inplace=True, stream=1),
                 lambda: bwd(g, x, **params, inplace=True, stream="s"),
                 lambda: fn(x.tolist(), **params, stream=0)):
        with pytest.raises(ValueError, match="stream=.* is for GPU arrays"):
            call()
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(g, g0)


def test_prelu_takes_stream_and_channel_axis(rng):
    x = random_x(rng, (2, 5, 4, 3), np.float32)               # NHWC, C = 3
    slopes = np.array([0.5, -1.0, 2.0], np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    y = fastact.prelu(x, slopes, channel_axis=-1, stream=None)
    want = _reference.prelu(x, slopes, channel_axis=-1).astype(np.float32)
    np.testing.assert_array_equal(y, want)
    # the same as NCHW on the transposed array
    np.testing.assert_array_equal(
        y,
        fastact.prelu(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), slopes).transpose(0, 2, 3, 1))
    gi, gs = fastact.prelu_backward(g, x, slopes, channel_axis=-1)
    gi_want, gs_want = _reference.prelu_backward(g, x, slopes, channel_axis=-1)
    np.testing.assert_array_equal(gi, gi_want.astype(np.float32))
    np.testing.assert_allclose(gs, gs_want, rtol=1e-5, atol=1e-5)
    assert gs.shape == slopes.shape
    # slopes broadcast against x.shape[1:] (here one per (W, C) position)
    s2 = rng.uniform(-1, 2, (4, 3)).astype(np.float32)
    np.testing.assert_array_equal(fastact.prelu(x, s2), _reference.prelu(x, s2).astype(np.float32))
    gi, gs = fastact.prelu_backward(g, x, s2)
    assert gs.shape == (4, 3)
    np.testing.assert_allclose(gs, _reference.prelu_backward(g, x, s2)[1], rtol=1e-5, atol=1e-5)
    x0 = x.copy()
    for bad in (0, 2, -2, 3, np.int64(2), np.array(0)):
        with pytest.raises(ValueError, match="channel_axis must be 1 .* or -1"):
            fastact.prelu(x, slopes, channel_axis=bad, inplace=True)
        with pytest.raises(ValueError, match="channel_axis must be 1 .* or -1"):
            fastact.prelu_backward(g, x, slopes, channel_axis=bad, inplace=True)
    # integers only (operator.index's rule), and not bools: True is not 1
    for bad in ("1", 1.5, None, True, False, np.True_, 1.0, -1.0, np.array([1]),
                np.array(1.0)):
        with pytest.raises(TypeError, match=r"channel_axis must be an int \(1 or -1\), got "):
            fastact.prelu(x, slopes, channel_axis=bad, inplace=True)
        with pytest.raises(TypeError, match=r"channel_axis must be an int \(1 or -1\), got "):
            fastact.prelu_backward(g, x, slopes, channel_axis=bad, inplace=True)
    np.testing.assert_array_equal(x, x0)
    want = _reference.prelu(x, slopes, channel_axis=-1).astype(np.float32)
    for axis in (np.int64(-1), np.int8(-1), np.array(-1)):
        np.testing.assert_array_equal(fastact.prelu(x, slopes, channel_axis=axis), want)
    with pytest.raises(ValueError, match="stream=.* is for GPU arrays"):
        fastact.prelu(x, slopes, channel_axis=-1, inplace=True, stream=7)
    np.testing.assert_array_equal(x, x0)


# --- parameter checks: errors name the parameter, nothing is written ------------------

_PARAM_CALLS = {
    "negative_slope": [
        lambda x, g, v: fastact.relu(x, negative_slope=v, inplace=True),
        lambda x, g, v: fastact.relu_backward(g, x, negative_slope=v, inplace=True),
        lambda x, g, v: fastact.leaky_relu(x, v, inplace=True),
        lambda x, g, v: fastact.leaky_relu_backward(g, x, negative_slope=v, inplace=True),
    ],
    "max_value": [
        lambda x, g, v: fastact.relu(x, max_value=v, inplace=True),
        lambda x, g, v: fastact.relu_backward(g, x, max_value=v, inplace=True),
    ],
    "threshold": [
        lambda x, g, v: fastact.relu(x, threshold=v, inplace=True),
        lambda x, g, v: fastact.relu_backward(g, x, threshold=v, inplace=True),
    ],
    "theta": [
        lambda x, g, v: fastact.thresholded_relu(x, v, inplace=True),
        lambda x, g, v: fastact.thresholded_relu_backward(g, x, theta=v, inplace=True),
    ],
    "alpha": [
        lambda x, g, v: fastact.elu(x, v, inplace=True),
        lambda x, g, v: fastact.elu_backward(g, x, alpha=v, inplace=True),
    ],
}
_NOT_REAL = ["0.1", b"1", [0.1], (0.1,), 1 + 2j, True, np.bool_(False), object(),
             np.array([0.1, 0.2]), np.array("x")]


@pytest.fixture
def xg(rng):
    x = random_x(rng, (3, 5), np.float32)
    return x, rng.standard_normal(x.shape).astype(np.float32)


def _check_untouched(call, exc, match, x, g):
    x0, g0 = x.copy(), g.copy()
    with pytest.raises(exc, match=match):
        call()
    assert x.tobytes() == x0.tobytes() and g.tobytes() == g0.tobytes()


@pytest.mark.parametrize("param", list(_PARAM_CALLS))
def test_parameters_must_be_real_numbers(xg, param):
    x, g = xg
    for call in _PARAM_CALLS[param]:
        for bad in _NOT_REAL:
            _check_untouched(lambda: call(x, g, bad), TypeError, f"{param} must be a real number",
                             x, g)
        for nan in (float("nan"), np.float32("nan"), np.array(np.nan)):
            _check_untouched(lambda: call(x, g, nan), ValueError, f"{param} is NaN", x, g)
        if param == "max_value":
            continue
        for inf in (float("inf"), -np.inf):
            _check_untouched(lambda: call(x, g, inf), ValueError, f"{param} must be", x, g)


def test_None_max_value_and_inf_mean_no_cap(xg):
    x, _ = xg
    x[0, :3] = [np.inf, 1e30, -np.inf]
    for m in (None, float("inf"), np.float64("inf")):
        np.testing.assert_array_equal(fastact.relu(x, 0.1, m),
                                      expected("relu", x, {"negative_slope": 0.1}))


@pytest.mark.parametrize("param, op", [("negative_slope", "relu"), ("max_value", "relu"),
                                       ("threshold", "relu"), ("theta", "thresholded_relu")])
def test_keras_rejects_negative_values(xg, param, op):
    x, g = xg
    calls = _PARAM_CALLS[param][:2]          # relu's (leaky_relu takes any slope)
    for call in calls:
        for bad in (-1, -0.5, np.float32(-1e-30), -np.inf):
            _check_untouched(lambda: call(x, g, bad), ValueError, f"{param} must be", x, g)
    for zero in (0, -0.0):       # zero is fine (-0.0 too)
        for call in calls:
            call(x.copy(), g.copy(), zero)


def test_any_finite_slope_and_alpha(xg):
    x, _ = xg
    for v in (-3, -0.5, 0, 1, 2.5, np.float32(0.2), np.int64(2), np.array(0.3), 1e300):
        p = float(np.asarray(v))
        with np.errstate(over="ignore"):
            assert_matches(fastact.leaky_relu(x, v),
                           expected("leaky_relu", x, {"negative_slope": p}))
            assert_matches(fastact.elu(x, v), expected("elu", x, {"alpha": p}), ULPS["elu"])


def test_parameters_past_float64s_range(xg):
    """An int (or Fraction) past float64's range is a real number that IEEE
    rounding makes +-inf: a ValueError naming the parameter where it must be
    finite (not Python's OverflowError), and no cap as max_value."""
    from fractions import Fraction
    x, g = xg
    huge = 10 ** 400
    for param, calls in _PARAM_CALLS.items():
        if param == "max_value":
            continue
        for call in calls:
            for v in (huge, -huge, Fraction(huge, 3), 10 ** 5000):
                _check_untouched(lambda: call(x, g, v), ValueError,
                                 f"{param} must be finite, got .*past float64's range", x, g)
    np.testing.assert_array_equal(fastact.relu(x, 0.1, huge),
                                  expected("relu", x, {"negative_slope": 0.1}))
    for call in _PARAM_CALLS["max_value"]:
        _check_untouched(lambda: call(x, g, -huge), ValueError, "max_value must be >= 0", x, g)
    # the modules and lookup by name check the same way
    for make, name in [(lambda: fastact.ELU(huge), "alpha"),
                       (lambda: fastact.get("elu", alpha=huge), "alpha"),
                       (lambda: fastact.LeakyReLU(-huge), "negative_slope"),
                       (lambda: fastact.get("leaky_relu", negative_slope=huge), "negative_slope"),
                       (lambda: fastact.ReLU(threshold=huge), "threshold"),
                       (lambda: fastact.ThresholdedReLU(huge), "theta"),
                       (lambda: fastact.PReLU(init=huge), "init"),
                       (lambda: fastact.get("prelu", init=-huge), "init")]:
        with pytest.raises(ValueError, match=f"{name} must be finite, got an int of 1329 bits"):
            make()
    assert fastact.ReLU(max_value=huge)(np.array([1e300])) == 1e300
    m = fastact.ReLU(max_value=huge, inplace=True)      # in place, then backward off y
    m(np.ones(3, np.float16))
    np.testing.assert_array_equal(m.backward(np.ones(3, np.float16)), np.ones(3, np.float16))


def test_parameters_as_numpy_and_ml_dtypes_scalars(xg):
    """Every numpy and ml_dtypes float scalar is a parameter, as the Python
    float of its value; bools are not numbers here."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x, g = xg
    for v in (ml_dtypes.bfloat16(0.375), np.float16(0.375), np.array(0.375, ml_dtypes.bfloat16),
              np.longdouble(0.375), np.int8(2)):
        p = float(v)
        assert_matches(fastact.leaky_relu(x, v), expected("leaky_relu", x, {"negative_slope": p}))
        assert_matches(fastact.elu_backward(g, x, v), expected("elu", x, {"alpha": p}, g),
                       ULPS["elu"])
        assert_matches(fastact.relu(x, v, 2 * v, v),
                       expected("relu", x, {"negative_slope": p, "max_value": 2 * p,
                                            "threshold": p}), ULPS["relu"])
        assert fastact.ELU(v).alpha == p and fastact.PReLU(init=v).slopes[0] == np.float32(p)
    for bad in (np.float16("inf"), ml_dtypes.bfloat16("-inf")):
        _check_untouched(lambda: fastact.leaky_relu(x, bad, inplace=True), ValueError,
                         "negative_slope must be finite, got -?inf", x, g)
    _check_untouched(lambda: fastact.elu(x, ml_dtypes.bfloat16("nan"), inplace=True),
                     ValueError, "alpha is NaN", x, g)


def test_parameters_as_numpy_scalars_and_ints(xg):
    x, _ = xg
    np.testing.assert_array_equal(fastact.relu(x, np.float32(0.5), np.int32(2), np.float16(0.25)),
                                  fastact.relu(x, 0.5, 2.0, 0.25))
    np.testing.assert_array_equal(fastact.relu(x, 0, None, 0), fastact.relu(x))


# --- modules ------------------------------------------------------------------------

# module factory, the oracle's name, its parameters
MODULES = [
    (lambda **k: fastact.LeakyReLU(0.3, **k), "leaky_relu", {"negative_slope": 0.3}),
    (lambda **k: fastact.LeakyReLU(**k), "leaky_relu", {"negative_slope": 0.01}),
    (lambda **k: fastact.ReLU(**k), "relu", {}),
    (lambda **k: fastact.ReLU(0.2, 4.0, 0.5, **k), "relu",
     {"negative_slope": 0.2, "max_value": 4.0, "threshold": 0.5}),
    (lambda **k: fastact.ReLU(max_value=1.0, **k), "relu", {"max_value": 1.0}),
    (lambda **k: fastact.ReLU6(**k), "relu6", {}),
    (lambda **k: fastact.ThresholdedReLU(0.75, **k), "thresholded_relu", {"theta": 0.75}),
    (lambda **k: fastact.ELU(1.5, **k), "elu", {"alpha": 1.5}),
    (lambda **k: fastact.Hardtanh(**k), "hardtanh", {"min_val": -1.0, "max_val": 1.0}),
    (lambda **k: fastact.Hardtanh(-0.3, 2.7, **k), "hardtanh", {"min_val": -0.3, "max_val": 2.7}),
    (lambda **k: fastact.Square(**k), "square", {}),
]
MODULE_IDS = ["leaky", "leaky-default", "relu", "relu-keras", "relu-cap", "relu6",
              "thresholded", "elu", "hardtanh", "hardtanh-inexact", "square"]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("make, name, params", MODULES, ids=MODULE_IDS)
def test_module_forward_backward(rng, make, name, params, dtype):
    m = make()
    ulps = ULPS.get(name, 0)
    x = special_x(rng, dtype, params, name=name)
    g = rng.standard_normal(x.shape).astype(dtype)
    x0, g0 = x.copy(), g.copy()
    y = m(x)
    assert_matches(y, expected(name, x, params), ulps)
    np.testing.assert_array_equal(x, x0)
    gi = m.backward(g)
    assert_matches(gi, expected(name, x, params, g), ulps)
    np.testing.assert_array_equal(g, g0)
    # out= for both, and the stateless function / gradient
    out = poisoned_like(x)
    assert m.forward(x, out=out) is out
    assert_matches(out, expected(name, x, params), ulps)
    out = poisoned_like(x)
    assert m.backward(g, out=out) is out
    assert_matches(out, expected(name, x, params, g), ulps)
    assert_matches(m.function(x), expected(name, x, params), ulps)
    assert_matches(m.gradient(g, x), expected(name, x, params, g), ulps)
    g2 = g.copy()
    assert m.gradient(g2, x, inplace=True) is g2
    assert_matches(g2, expected(name, x, params, g), ulps)
    for p, v in params.items():
        assert getattr(m, p) == v
    assert type(m).__name__ in repr(m)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("make, name, params",
                         [m for m in MODULES if m[1] not in ("square",)],
                         ids=[i for i, m in zip(MODULE_IDS, MODULES) if m[1] != "square"])
@pytest.mark.parametrize("how", ["inplace", "out_is_x"])
def test_module_in_place_backward_from_output(rng, make, name, params, dtype, how):
    m = make(inplace=(how == "inplace"))
    x = special_x(rng, dtype, params, name=name)
    g = rng.standard_normal(x.shape).astype(dtype)
    x0, g0 = x.copy(), g.copy()
    y = m(x) if how == "inplace" else m(x, out=x)
    assert y is x
    assert_matches(y, expected(name, x0, params), ULPS.get(name, 0))
    gi = m.backward(g)
    np.testing.assert_array_equal(g, g0)
    if name == "elu":
        # read off y as torch does: g * (y + alpha) where y <= 0
        want = _reference.elu_backward_from_output(g, y, **_rounded(params, dtype)).astype(dtype)
        assert_matches(gi, want, 2)
        # and off the exact g * alpha * exp(x) by about a rounding of y (an
        # absolute error of alpha * eps where y + alpha cancels)
        exact = expected(name, x0, params, g).astype(np.float64)
        err = np.abs(gi.astype(np.float64) - exact)
        tol = 8 * np.finfo(dtype).eps * (np.abs(exact) + params["alpha"] * np.abs(g))
        ok = (err <= tol) | (np.isnan(exact) & np.isnan(gi))
        assert ok.all()
    else:
        # exact: the branch read off y is the branch x took
        assert_matches(gi, expected(name, x0, params, g), 0)


@pytest.mark.parametrize("dtype", FLOATS)
def test_relu_gradient_from_output_is_exact(rng, dtype):
    """relu_backward at y = relu(x) equals relu_backward at x for every valid
    (Keras) parameter set but max_value == 0 with negative_slope > 0, which the
    in-place module refuses."""
    for _ in range(30):
        ns = float(rng.choice([0.0, 0.01, 0.3, 1.0, 2.5]))
        m = rng.choice([None, 0.0, 0.5, 1.0, 6.0, 100.0])
        t = float(rng.choice([0.0, 0.25, 0.5, 1.0, 3.0]))
        if m == 0.0 and ns > 0:
            continue
        params = {"negative_slope": ns, "max_value": None if m is None else float(m),
                  "threshold": t}
        x = special_x(rng, dtype, params, shape=(400,), name="relu")
        g = rng.standard_normal(x.shape).astype(dtype)
        y = fastact.relu(x, **params)
        assert_matches(fastact.relu_backward(g, y, **params), expected("relu", x, params, g))


def test_module_gradient_uses_the_parameters_of_its_forward(rng):
    x = random_x(rng, (6, 7), np.float64)
    g = rng.standard_normal(x.shape)
    m = fastact.LeakyReLU(0.5)
    m(x)
    m.negative_slope = 2.0
    assert_matches(m.backward(g), expected("leaky_relu", x, {"negative_slope": 0.5}, g))
    assert_matches(m(x), expected("leaky_relu", x, {"negative_slope": 2.0}))


@pytest.mark.parametrize("make, problem", [
    (lambda: fastact.Square(inplace=True), "needs the sign of x"),
    (lambda: fastact.LeakyReLU(0.0, inplace=True), "negative_slope = 0.0"),
    (lambda: fastact.LeakyReLU(-0.5, inplace=True), "negative_slope = -0.5"),
    (lambda: fastact.ELU(0.0, inplace=True), "alpha = 0.0"),
    (lambda: fastact.ELU(-1.0, inplace=True), "alpha = -1.0"),
    (lambda: fastact.ReLU(0.5, 0.0, inplace=True), "max_value = 0"),
], ids=["square", "leaky-0", "leaky-neg", "elu-0", "elu-neg", "relu-cap0-slope"])
def test_in_place_backward_refused_where_inexact(rng, make, problem):
    m = make()
    x = random_x(rng, (4, 5), np.float32)
    x0 = x.copy()
    name = {"Square": "square", "LeakyReLU": "leaky_relu", "ELU": "elu", "ReLU": "relu"}[
        type(m).__name__]
    params = {p: getattr(m, p) for p in m._param_names}
    assert m(x) is x                                   # the forward itself is fine
    assert_matches(x, expected(name, x0, params), ULPS.get(name, 0))
    g = rng.standard_normal(x.shape).astype(np.float32)
    g0 = g.copy()
    out = poisoned_like(g)
    with pytest.raises(ValueError, match=f"after an in-place forward.*{problem}.*inplace=False"):
        m.backward(g, out=out)
    assert g.tobytes() == g0.tobytes() and out.tobytes() == poisoned_like(g).tobytes()


def test_relu_in_place_half_precision_cap_that_rounds_down():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    for dtype in (np.float16, ml_dtypes.bfloat16):
        m = fastact.ReLU(max_value=6.0001, inplace=True)      # not a float16/bfloat16 value
        x = np.array([1.0, 7.0], dtype=dtype)
        m(x)
        with pytest.raises(ValueError, match="max_value = 6.0001 rounds down"):
            m.backward(np.ones(2, dtype))
        m = fastact.ReLU(max_value=6.0, inplace=True)         # exact: fine
        x = np.array([1.0, 7.0, 6.0, -1.0], dtype=dtype)
        m(x)
        np.testing.assert_array_equal(m.backward(np.ones(4, dtype)).astype(np.float64),
                                      [1, 0, 0, 0])


@pytest.mark.parametrize("make, name, params", MODULES, ids=MODULE_IDS)
def test_module_gradient_by_finite_differences(rng, make, name, params):
    m = make()
    kinks = [0.0] + [v for v in params.values() if v is not None]
    if name == "relu6":
        kinks.append(6.0)
    x = rng.uniform(-5, 8, 2000)
    x = x[np.min(np.abs(x[:, None] - np.array(kinks)[None, :]), axis=1) > 1e-3]
    g = rng.standard_normal(x.shape)
    m(x)
    gi = m.backward(g)
    h = 1e-6
    fd = (m.function(x + h) - m.function(x - h)) / (2 * h) * g
    np.testing.assert_allclose(gi, fd, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cls", [fastact.LeakyReLU, fastact.ReLU, fastact.ReLU6,
                                 fastact.ThresholdedReLU, fastact.ELU, fastact.Square])
def test_module_backward_before_forward(cls):
    with pytest.raises(RuntimeError, match=f"{cls.__name__}.backward called before forward"):
        cls().backward(np.ones(3))


def test_module_constructor_validation():
    with pytest.raises(ValueError, match="negative_slope must be >= 0"):
        fastact.ReLU(negative_slope=-0.1)
    with pytest.raises(ValueError, match="max_value must be >= 0"):
        fastact.ReLU(max_value=-1)
    with pytest.raises(ValueError, match="threshold must be >= 0"):
        fastact.ReLU(threshold=-1)
    with pytest.raises(ValueError, match="theta must be >= 0"):
        fastact.ThresholdedReLU(-1.0)
    with pytest.raises(TypeError, match="alpha must be a real number"):
        fastact.ELU("1")
    with pytest.raises(ValueError, match="negative_slope is NaN"):
        fastact.LeakyReLU(float("nan"))
    with pytest.raises(TypeError):
        fastact.ReLU6(6.0)                 # relu6 has no parameters


def test_module_dtypes(rng):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    for dtype in (np.float16, ml_dtypes.bfloat16):
        x = random_x(rng, (3, 8), np.float32).astype(dtype)
        g = rng.standard_normal(x.shape).astype(dtype)
        for make, name, params in MODULES:
            m = make()
            y = m(x)
            gi = m.backward(g)
            assert y.dtype == dtype and gi.dtype == dtype
            eps = float(ml_dtypes.finfo(dtype).eps)
            np.testing.assert_allclose(y.astype(np.float64),
                                       getattr(_reference, name)(x, **_rounded(params, dtype)),
                                       rtol=eps, atol=eps)
        m = fastact.PReLU(8, channel_axis=-1, dtype=dtype)
        assert m.slopes.dtype == dtype
        m(x)
        m.backward(g)
        assert m.grad_slopes.dtype == dtype and m.grad_slopes.shape == (8,)
    assert fastact.PReLU(dtype="bfloat16").slopes.dtype == np.dtype(ml_dtypes.bfloat16)
    assert fastact.PReLU(dtype="float16").slopes.dtype == np.float16


# --- exports ----------------------------------------------------------------------

def test_exports():
    names = ["leaky_relu", "leaky_relu_backward", "relu", "relu_backward", "relu6",
             "relu6_backward", "elu", "elu_backward", "thresholded_relu",
             "thresholded_relu_backward", "hardtanh", "hardtanh_backward", "square",
             "square_backward", "get", "available", "register", "cuda_available", "LeakyReLU",
             "ReLU", "ReLU6", "ELU", "ThresholdedReLU", "Hardtanh", "Square", "PReLU", "prelu",
             "prelu_backward", "set_num_threads", "get_num_threads", "show_config", "config"]
    for n in names:
        assert n in fastact.__all__ and hasattr(fastact, n), n
    assert all(hasattr(fastact, n) for n in fastact.__all__)
    assert isinstance(fastact.cuda_available(), bool)


# --- the README's table of special values -------------------------------------------

_INF, _NAN = float("inf"), float("nan")


def _table():
    """The README's special-value table, for concrete parameters: (op label,
    forward, backward, oracle name, oracle parameters, [(x, y, f'(x)), ...])."""
    rows = []
    for a in (0.5, -0.5, 0.0):
        p = {"negative_slope": a}
        rows.append((f"leaky_relu({a})", p, "leaky_relu", [
            (0.0, a * 0.0, a), (-0.0, a * -0.0, a), (_INF, _INF, 1.0),
            (-_INF, _NAN if a == 0 else a * -_INF, a), (_NAN, _NAN, a)]))
    rows.append(("relu()", {}, "relu", [
        (0.0, 0.0, 0.0), (-0.0, 0.0, 0.0), (_INF, _INF, 1.0), (-_INF, 0.0, 0.0),
        (_NAN, _NAN, 1.0)]))
    for ns, m, t in ((0.5, 4.0, 1.0), (0.5, 4.0, 0.0), (0.0, 4.0, 1.0), (0.5, None, 1.0),
                     (0.5, 1.0, 2.0)):
        p = {"negative_slope": ns, "max_value": m, "threshold": t}
        cells = [(-_INF, -_INF if ns else 0.0, ns), (_NAN, _NAN, 1.0)]
        if m is None:
            cells.append((_INF, _INF, 1.0))
        else:
            cells += [(m, m, 0.0), (_INF, m, 0.0)]
        if m is None or m > t:
            cells += [(0.0, ns * (0.0 - t) if ns else 0.0, ns),
                      (-0.0, ns * (-0.0 - t) if ns else 0.0, ns), (t, 0.0, ns)]
        else:       # the cap first
            cells += [(t, m, 0.0)]
        rows.append((f"relu({ns}, {m}, {t})", p, "relu", cells))
    rows.append(("relu6()", {}, "relu6", [
        (0.0, 0.0, 0.0), (-0.0, 0.0, 0.0), (6.0, 6.0, 0.0), (_INF, 6.0, 0.0),
        (-_INF, 0.0, 0.0), (_NAN, _NAN, 1.0)]))
    rows.append(("thresholded_relu(1.0)", {"theta": 1.0}, "thresholded_relu", [
        (0.0, 0.0, 0.0), (-0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (_INF, _INF, 1.0),
        (-_INF, 0.0, 0.0), (_NAN, _NAN, 1.0)]))
    for alpha in (1.5, -1.5, 0.0):
        rows.append((f"elu({alpha})", {"alpha": alpha}, "elu", [
            (0.0, alpha * 0.0, alpha), (-0.0, alpha * -0.0, alpha), (_INF, _INF, 1.0),
            (-_INF, -alpha, alpha * 0.0), (_NAN, _NAN, 1.0)]))
    rows.append(("hardtanh()", {}, "hardtanh", [
        (0.0, 0.0, 1.0), (-0.0, -0.0, 1.0), (1.0, 1.0, 0.0), (-1.0, -1.0, 0.0),
        (_INF, 1.0, 0.0), (-_INF, -1.0, 0.0), (_NAN, _NAN, 1.0)]))
    rows.append(("hardtanh(0, 6)", {"min_val": 0.0, "max_val": 6.0}, "hardtanh", [
        (0.0, 0.0, 0.0), (-0.0, -0.0, 0.0), (-1.0, 0.0, 0.0), (6.0, 6.0, 0.0),
        (_INF, 6.0, 0.0), (_NAN, _NAN, 1.0)]))
    rows.append(("square()", {}, "square", [
        (0.0, 0.0, 0.0), (-0.0, 0.0, -0.0), (_INF, _INF, _INF), (-_INF, _INF, -_INF),
        (_NAN, _NAN, _NAN)]))
    return rows


def _table_mismatches(dtype):
    """Cells where the oracle or fastact (in dtype) differs from the table,
    the sign of zero included, as (op, x, who, 'value'/'gradient')."""
    def same(got, want):
        return (np.isnan(got) and np.isnan(want)) or (
            got == want and np.signbit(got) == np.signbit(want))

    bad = set()
    for label, params, name, cells in _table():
        fn, bwd = getattr(fastact, name), getattr(fastact, name + "_backward")
        x = np.array([c[0] for c in cells], dtype=dtype)
        g = np.ones_like(x)
        with np.errstate(all="ignore"):
            got = {"fastact": (fn(x, **params), bwd(g, x, **params)),
                   "oracle": (getattr(_reference, name)(x, **params),
                              getattr(_reference, name + "_backward")(g, x, **params))}
        for who, (y, gi) in got.items():
            for i, (xv, yv, dv) in enumerate(cells):
                if not same(float(y[i]), yv):
                    bad.add((label, repr(xv), who, "value"))
                if not same(float(gi[i]), dv):
                    bad.add((label, repr(xv), who, "gradient"))
    return bad


@pytest.mark.parametrize("dtype", FLOATS)
def test_special_values_table(dtype):
    """The README's table, against the oracle and the kernels, signs of zeros
    included."""
    assert _table_mismatches(dtype) == set()


# --- hardtanh: PyTorch's semantics ---------------------------------------------------

HARDTANH_BOUNDS = [(-1.0, 1.0), (0.0, 6.0), (-0.3, 2.7), (0.5, 0.5), (-np.inf, 2.0),
                   (-2.0, np.inf)]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("lo, hi", HARDTANH_BOUNDS)
def test_hardtanh_is_torchs(rng, dtype, lo, hi):
    """Forward and gradient bitwise torch's F.hardtanh (signs of zeros, both
    kinks and infinities included; NaN in the forward)."""
    torch = pytest.importorskip("torch")
    special = [0.0, -0.0, lo, hi, np.inf, -np.inf, np.nan, 1e-30, -1e-30]
    x = np.concatenate([rng.uniform(-8, 8, 200), np.array(special)]).astype(dtype)
    x = x[np.isfinite(x) | ~np.isin(x, [lo, hi])]
    rng.shuffle(x)
    g = rng.standard_normal(x.shape).astype(dtype)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    yt = torch.nn.functional.hardtanh(xt, lo, hi)
    yt.backward(torch.from_numpy(g.copy()))
    assert_same(fastact.hardtanh(x, lo, hi), yt.detach().numpy())
    # The gradient at NaN is torch's own coin toss: its CPU kernel gives 0 in
    # its vector loop and grad_output in its scalar tail (and on one element).
    # fastact passes grad_output (NaN takes the identity branch, as in relu).
    gi = fastact.hardtanh_backward(g, x, lo, hi)
    nan = np.isnan(x)
    assert_same(gi[~nan], xt.grad.numpy()[~nan])
    assert_same(gi[nan], g[nan])
    one = torch.tensor([np.nan], dtype=xt.dtype, requires_grad=True)
    torch.nn.functional.hardtanh(one, lo, hi).backward(torch.ones(1, dtype=xt.dtype))
    assert one.grad.item() == 1.0


@pytest.mark.parametrize("bad, error, message", [
    ((1.0, -1.0), ValueError, "min_val must not be greater than max_val"),
    ((np.nan, 1.0), ValueError, "min_val is NaN"),
    ((-1.0, np.nan), ValueError, "max_val is NaN"),
    (("0", 1.0), TypeError, "min_val must be a real number"),
    ((-1.0, None), TypeError, "max_val must be a real number"),
])
def test_hardtanh_rejects_bad_bounds_and_writes_nothing(rng, bad, error, message):
    x = rng.standard_normal(16)
    x0, out = x.copy(), poisoned_like(x)
    for call in (lambda: fastact.hardtanh(x, *bad, out=out),
                 lambda: fastact.hardtanh(x, *bad, inplace=True),
                 lambda: fastact.hardtanh_backward(x, x, *bad, out=out),
                 lambda: fastact.Hardtanh(*bad)):
        with pytest.raises(error, match=message):
            call()
        assert x.tobytes() == x0.tobytes()
        assert out.tobytes() == poisoned_like(x).tobytes()


def test_hardtanh_in_place_half_precision_bound_that_rounds_inwards():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    for dtype in (np.float16, ml_dtypes.bfloat16):
        # 6.0001 rounds down to 6 in both: clipped outputs would lie inside
        m = fastact.Hardtanh(0.0, 6.0001, inplace=True)
        x = np.array([1.0, 7.0], dtype=dtype)
        m(x)
        with pytest.raises(ValueError, match="max_val = 6.0001 rounds towards the inside"):
            m.backward(np.ones(2, dtype))
        # -0.3 is inexact too, but rounds outwards in float32 and stays clipped
        for lo, hi in ((0.0, 6.0), (-1.0, 1.0)):
            m = fastact.Hardtanh(lo, hi, inplace=True)
            x = np.array([lo + 0.5, hi + 1.0, hi, lo - 1.0], dtype=dtype)
            m(x)
            np.testing.assert_array_equal(m.backward(np.ones(4, dtype)).astype(np.float64),
                                          [1, 0, 0, 0])
