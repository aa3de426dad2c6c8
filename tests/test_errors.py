"""Bad input: a clear error naming the argument, and nothing written."""
import numpy as np
import pytest

import fastact

from helpers import poisoned_like, random_slopes, random_x


@pytest.fixture
def arrays(rng):
    x = random_x(rng, (2, 3, 4, 5), np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    slopes = random_slopes(rng, 3, np.float32)
    return x, g, slopes


class Unchanged:
    """Snapshots arrays and checks afterwards that not a byte changed."""

    def __init__(self, *arrays):
        self.arrays = arrays
        self.before = [a.copy() for a in arrays]

    def check(self):
        for a, b in zip(self.arrays, self.before):
            if a.dtype.hasobject:
                np.testing.assert_array_equal(a, b)
            else:
                assert a.tobytes() == b.tobytes(), "an array was written to"


def _expect(exc, match, fn, *arrays):
    guard = Unchanged(*arrays)
    with pytest.raises(exc, match=match):
        fn()
    guard.check()


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_, np.complex64,
                                   np.complex128, np.longdouble, object])
def test_unsupported_x_dtype(dtype):
    x = np.ones((2, 3, 4), dtype=dtype)
    name = np.dtype(dtype).name
    _expect(TypeError, f"x has dtype {name}.*float32, float64, float16 and bfloat16",
            lambda: fastact.prelu(x, [0.5, 0.5, 0.5]), x)
    _expect(TypeError, f"x has dtype {name}.*float32, float64, float16 and bfloat16",
            lambda: fastact.prelu(x, 0.5, inplace=True), x)
    g = np.ones((2, 3, 4), np.float32)
    _expect(TypeError, f"x has dtype {name}",
            lambda: fastact.prelu_backward(g, x, 0.5, inplace=True), x, g)


@pytest.mark.parametrize("dtype", [np.int64, np.bool_, np.complex128, object])
def test_unsupported_grad_output_dtype(arrays, dtype):
    x, _, slopes = arrays
    g = np.ones(x.shape, dtype=dtype)
    _expect(TypeError, "grad_output has dtype", lambda: fastact.prelu_backward(g, x, slopes), x, g)


def test_grad_output_dtype_or_shape_mismatch(arrays):
    x, g, slopes = arrays
    g64 = g.astype(np.float64)
    _expect(ValueError, "grad_output has dtype float64; expected float32",
            lambda: fastact.prelu_backward(g64, x, slopes, inplace=True), x, g64)
    gs = g[:, :, :2]
    _expect(ValueError, r"grad_output has shape \(2, 3, 2, 5\); expected \(2, 3, 4, 5\)",
            lambda: fastact.prelu_backward(gs, x, slopes, inplace=True), x, g)


@pytest.mark.parametrize("slopes", [np.array([1, 2, 3]), np.array([True, False, True]),
                                    np.array([1 + 2j, 1, 1]), np.array(["a", "b", "c"]),
                                    True, "0.5", None, np.array([0.5, 0.5, 0.5], dtype=object)])
def test_unsupported_slopes(arrays, slopes):
    x, g, _ = arrays
    _expect(TypeError, "slopes", lambda: fastact.prelu(x, slopes, inplace=True), x)
    _expect(TypeError, "slopes", lambda: fastact.prelu_backward(g, x, slopes, inplace=True), x, g)


def test_wrong_number_of_slopes(arrays):
    x, g, _ = arrays
    for n in (2, 4, 12):
        s = np.full(n, 0.5, np.float32)
        _expect(ValueError, rf"slopes has {n} values but x has 3 channels \(axis 1\)",
                lambda: fastact.prelu(x, s, inplace=True), x)
        _expect(ValueError, rf"slopes has {n} values but x has 3 channels",
                lambda: fastact.prelu_backward(g, x, s, inplace=True), x, g)
    s0 = np.empty(0, np.float32)
    _expect(ValueError, "slopes has 0 values but x has 3 channels",
            lambda: fastact.prelu(x, s0, inplace=True), x)


def test_slopes_of_two_or_more_dims(arrays):
    x, _, _ = arrays
    s = np.full((3, 1), 0.5, np.float32)
    _expect(ValueError, r"slopes has shape \(3, 1\)", lambda: fastact.prelu(x, s, inplace=True), x)


@pytest.mark.parametrize("shape", [(), (7,)])
def test_per_channel_slopes_need_two_dims(shape):
    x = np.linspace(-1, 1, int(np.prod(shape))).astype(np.float32).reshape(shape)
    s = np.array([0.1, 0.2], np.float32)
    _expect(ValueError, "per-channel slopes need x of shape",
            lambda: fastact.prelu(x, s, inplace=True), x)
    # a shared slope is fine
    np.testing.assert_array_equal(fastact.prelu(x, 0.5), np.where(x > 0, x, np.float32(0.5) * x))


@pytest.mark.parametrize("bad_out, message, exc", [
    (lambda x: np.empty((2, 3, 4, 6), np.float32),
     r"out has shape \(2, 3, 4, 6\); expected \(2, 3, 4, 5\)", ValueError),
    (lambda x: np.empty((2, 3, 20), np.float32), "out has shape", ValueError),
    (lambda x: np.empty(x.shape, np.float64), "out has dtype float64; expected float32",
     ValueError),
    (lambda x: np.empty(x.shape, np.int32), "out has dtype int32", ValueError),
    (lambda x: [[0.0]], "out must be a numpy.ndarray, got list", TypeError),
], ids=["shape", "ndim", "dtype", "int-dtype", "list"])
def test_bad_out(arrays, bad_out, message, exc):
    x, g, slopes = arrays
    out = bad_out(x)
    arrays_to_watch = [x, g] + ([out] if isinstance(out, np.ndarray) else [])
    _expect(exc, message, lambda: fastact.prelu(x, slopes, out=out), *arrays_to_watch)
    _expect(exc, message, lambda: fastact.prelu_backward(g, x, slopes, out=out), *arrays_to_watch)


def test_read_only_out_and_inplace(arrays):
    x, g, slopes = arrays
    out = poisoned_like(x)
    out.flags.writeable = False
    _expect(ValueError, "out is read-only", lambda: fastact.prelu(x, slopes, out=out), x, out)
    _expect(ValueError, "out is read-only",
            lambda: fastact.prelu_backward(g, x, slopes, out=out), x, g, out)
    x.flags.writeable = False
    _expect(ValueError, "inplace=True but x is read-only",
            lambda: fastact.prelu(x, slopes, inplace=True), x)
    g.flags.writeable = False
    _expect(ValueError, "inplace=True but grad_output is read-only",
            lambda: fastact.prelu_backward(g, x, slopes, inplace=True), x, g)


def test_out_and_inplace_together(arrays):
    x, g, slopes = arrays
    out = poisoned_like(x)
    _expect(ValueError, "either out= or inplace=True",
            lambda: fastact.prelu(x, slopes, out=out, inplace=True), x, out)
    _expect(ValueError, "either out= or inplace=True",
            lambda: fastact.prelu_backward(g, x, slopes, out=out, inplace=True), x, g, out)


def test_inplace_needs_an_ndarray():
    x = [[-1.0, 2.0]]
    with pytest.raises(TypeError, match="inplace=True needs x to be a numpy.ndarray, got list"):
        fastact.prelu(x, 0.5, inplace=True)


def test_out_partially_overlapping(rng):
    buf = random_x(rng, (2 * 3 * 4 * 5 + 7,), np.float32)
    x = buf[:120].reshape(2, 3, 4, 5)
    g = rng.standard_normal(x.shape).astype(np.float32)
    slopes = random_slopes(rng, 3, np.float32)
    for shift in (1, 7):
        out = buf[shift:shift + 120].reshape(2, 3, 4, 5)
        _expect(ValueError, "out overlaps x partially",
                lambda: fastact.prelu(x, slopes, out=out), buf, g)
        _expect(ValueError, "out overlaps x partially",
                lambda: fastact.prelu_backward(g, x, slopes, out=out), buf, g)
    # overlapping grad_output partially
    gbuf = rng.standard_normal(130).astype(np.float32)
    g = gbuf[:120].reshape(x.shape)
    out = gbuf[3:123].reshape(x.shape)
    _expect(ValueError, "out overlaps grad_output partially",
            lambda: fastact.prelu_backward(g, x, slopes, out=out), buf, gbuf)
    # a strided view interleaved with x shares no memory: allowed
    big = random_x(rng, (2, 3, 4, 10), np.float32)
    x2, out2 = big[..., ::2], big[..., 1::2]
    expected = np.where(x2 > 0, x2, slopes.reshape(1, 3, 1, 1) * x2)
    fastact.prelu(x2, slopes, out=out2)
    np.testing.assert_array_equal(out2, expected)


def _sharing_elements(shape, dtype):
    """A writeable view whose elements share memory: stride 0 on axis 0
    (found by fuzzing: every such result kept only the last row written)."""
    base = np.zeros(shape[1:], dtype)
    return np.lib.stride_tricks.as_strided(base, shape, (0,) + base.strides,
                                           writeable=True), base


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_destination_whose_elements_share_memory(rng, dtype):
    x = random_x(rng, (4, 3, 5), dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    slopes = random_slopes(rng, 3, dtype)
    out, base = _sharing_elements(x.shape, dtype)
    msg = "out has elements that share memory"
    for call in (lambda: fastact.prelu(x, slopes, out=out),
                 lambda: fastact.prelu_backward(g, x, slopes, out=out),
                 lambda: fastact.affine_prelu(x, 2.0, 0.5, slopes, out=out),
                 lambda: fastact.leaky_relu(x, 0.1, out=out),
                 lambda: fastact.relu6_backward(g, x, out=out),
                 lambda: fastact.Square().forward(x, out=out)):
        _expect(ValueError, msg, call, x, g, base)
    # the same for an in-place target
    shared, base = _sharing_elements(x.shape, dtype)
    base[...] = x[0]
    msg = "inplace=True but x has elements that share memory"
    for call in (lambda: fastact.prelu(shared, slopes, inplace=True),
                 lambda: fastact.elu(shared, inplace=True),
                 lambda: fastact.affine_prelu(shared, 2.0, 0.5, slopes, inplace=True)):
        _expect(ValueError, msg, call, base)
    _expect(ValueError, "inplace=True but grad_output has elements that share memory",
            lambda: fastact.hardtanh_backward(shared, x, inplace=True), base, x)
    # a custom activation's destination follows the same rule
    from fastact import _registry
    fastact.register("sharing_twice", lambda v: v * 2, lambda gr, v: gr * 2)
    try:
        f = fastact.get("sharing_twice")
        _expect(ValueError, msg, lambda: f.function(shared, inplace=True), base)
    finally:
        _registry._unregister("sharing_twice")


def test_views_with_distinct_elements_are_destinations(rng):
    """Not contiguous, but no two elements share memory: allowed."""
    from fastact import _checks
    x = random_x(rng, (4, 3, 6), np.float32)
    big = np.zeros((8, 3, 12), np.float32)
    for out in (big[::2, :, ::2], big[::-2, :, 1::2], big.transpose(0, 2, 1)[:4, :6, :]
                .transpose(0, 2, 1)):
        fastact.leaky_relu(x, 0.5, out=out)
        np.testing.assert_array_equal(out, np.where(x > 0, x, np.float32(0.5) * x))
    # interleaved axes (strides 3 and 2 bytes: offsets 0, 2, 3, 5) share nothing
    assert not _checks.overlaps_itself((2, 2), (3, 2), 1)
    assert _checks.overlaps_itself((2, 2), (3, 1), 2)
    assert _checks.overlaps_itself((3,), (0,), 4)
    assert not _checks.overlaps_itself((1, 5), (0, 4), 4)


def test_out_may_be_x_or_grad_output(rng):
    x = random_x(rng, (2, 3, 4, 5), np.float64)
    slopes = random_slopes(rng, 3, np.float64)
    g = rng.standard_normal(x.shape)
    expected_gi = np.where(x > 0, g, slopes.reshape(1, 3, 1, 1) * g)
    x_before = x.copy()
    gi, _ = fastact.prelu_backward(g, x, slopes, out=x)   # grad_input over x itself
    assert gi is x
    np.testing.assert_array_equal(x, expected_gi)
    g2 = rng.standard_normal(x.shape)
    expected_gi2 = np.where(x_before > 0, g2, slopes.reshape(1, 3, 1, 1) * g2)
    gi, _ = fastact.prelu_backward(g2, x_before, slopes, out=g2)
    assert gi is g2
    np.testing.assert_array_equal(g2, expected_gi2)


# --- slopes: one rule for numbers and arrays, whatever the path --------------------

def _nonfinite_slopes(ml_dtypes):
    """Slopes with a NaN or an infinity, as numbers and as arrays of every
    form the kernels' fast and general paths take (x is (2, 3, 4, 5) float32)."""
    out = [np.nan, np.inf, -np.inf, np.float32("nan"), np.array(np.inf),
           np.array([np.nan], np.float32),                     # shared
           np.array([0.5, np.inf, 0.25], np.float32),          # per channel: fast path
           np.array([0.5, 0.5, -np.inf], np.float64),          # cast to float32
           np.array([0.5, np.nan, 0.5], np.float32)[::-1],     # a view: copied
           np.full((3, 1, 1), np.nan, np.float16),             # broadcast
           [0.5, 0.5, float("inf")]]                           # a list
    if ml_dtypes is not None:
        out += [ml_dtypes.bfloat16("inf"), np.array([0.5, 0.5, np.nan], ml_dtypes.bfloat16)]
    return out


def test_slopes_must_be_finite(arrays):
    """As leaky_relu's negative_slope and PReLU(init=): a NaN or infinite
    slope is a ValueError, and nothing is written."""
    try:
        import ml_dtypes
    except ImportError:
        ml_dtypes = None
    x, g, _ = arrays
    for bad in _nonfinite_slopes(ml_dtypes):
        message = "slopes is NaN" if np.ndim(bad) == 0 and np.isnan(float(bad)) \
            else "slopes must be finite, got -?(nan|inf)"
        out = poisoned_like(x)
        _expect(ValueError, message, lambda: fastact.prelu(x, bad, inplace=True), x)
        _expect(ValueError, message, lambda: fastact.prelu(x, bad, out=out), x, out)
        _expect(ValueError, message, lambda: fastact.prelu_backward(g, x, bad, inplace=True),
                x, g)
        _expect(ValueError, message, lambda: fastact.prelu_backward(g, x, bad, out=out),
                x, g, out)
    _expect(ValueError, r"slopes must be finite, got inf at index \(0, 2\)",
            lambda: fastact.prelu(x, np.array([[0.5, 1.0, np.inf]]), inplace=True), x)
    _expect(ValueError, "slopes must be finite, got an int of 1329 bits, past float64's range",
            lambda: fastact.prelu(x, 10 ** 400, inplace=True), x)


@pytest.mark.parametrize("xshape", [(6,), (2, 5), (2, 3, 4), (1, 2, 3, 4, 5)])
@pytest.mark.parametrize("sshape", [(), (1,), (1, 1), (1, 1, 1, 1, 1, 1)])
def test_any_array_of_one_value_is_shared(rng, xshape, sshape):
    """An array of one value, of any shape (more dims than x's included), is
    one slope for every element; grad_slopes has its shape."""
    x = random_x(rng, xshape, np.float32)
    g = rng.standard_normal(xshape).astype(np.float32)
    s = np.float32(rng.uniform(-2, 2))
    slopes = np.full(sshape, s, np.float32)
    want = np.where(x > 0, x, s * x)                    # float32: one rounding
    np.testing.assert_array_equal(fastact.prelu(x, slopes), want)
    gi, gs = fastact.prelu_backward(g, x, slopes)
    np.testing.assert_array_equal(gi, np.where(x > 0, g, s * g))
    assert gs.shape == sshape and gs.dtype == np.float32
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    ref = np.sum(np.where(x64 > 0, 0.0, x64 * g64))
    np.testing.assert_allclose(gs, np.full(sshape, ref), rtol=2e-7, atol=1e-12)
    m = fastact.PReLU(slopes_shape=sshape or (1,), init=float(s))
    np.testing.assert_array_equal(m(x), want)
    m.backward(g)
    assert m.grad_slopes.shape == (sshape or (1,))


def test_number_slopes_of_any_type(arrays):
    """Numbers of every kind are one shared slope, as the Python float of their
    value (grad_slopes 0-d); bools and complex numbers are not slopes."""
    x, g, _ = arrays
    numbers = [2, np.int64(-3), np.float16(0.375), np.float64(1.25), np.longdouble(0.5)]
    try:
        import ml_dtypes
        numbers.append(ml_dtypes.bfloat16(0.375))
    except ImportError:
        pass
    for v in numbers:
        s = np.float32(float(v))
        np.testing.assert_array_equal(fastact.prelu(x, v), np.where(x > 0, x, s * x))
        gi, gs = fastact.prelu_backward(g, x, v)
        np.testing.assert_array_equal(gi, np.where(x > 0, g, s * g))
        assert gs.shape == ()
    for bad in (True, np.bool_(False), 1 + 2j, np.complex64(1)):
        _expect(TypeError, "slopes must be a real number",
                lambda: fastact.prelu(x, bad, inplace=True), x)


@pytest.mark.parametrize("bad", [np.array([0.18, 0.18]), "yes", None, 2, 1.0])
def test_module_inplace_must_be_a_bool(bad):
    """Found by fuzzing: get("square", inplace=<an array>) raised numpy's
    "truth value of an array is ambiguous", naming no argument."""
    with pytest.raises(TypeError, match="inplace must be True or False"):
        fastact.get("square", inplace=bad)
    with pytest.raises(TypeError, match="inplace must be True or False"):
        fastact.LeakyReLU(0.1, inplace=bad)
    with pytest.raises(TypeError, match="inplace must be True or False"):
        fastact.PReLU(3, inplace=bad)
    for ok in (True, False, np.bool_(True), 0, 1):
        assert fastact.ReLU(inplace=ok).inplace is bool(ok)
