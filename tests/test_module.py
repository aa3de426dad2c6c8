"""The PReLU module: forward, backward, in place, shared slopes, channels
last, slopes of any shape, errors."""
import numpy as np
import pytest

import fastact
from fastact import _reference

from helpers import (
    DTYPES,
    assert_grad_slopes_close,
    assert_module_out,
    expected_backward,
    expected_forward,
    random_x,
)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shared", [False, True])
def test_forward_backward(rng, dtype, shared):
    shape = (4, 6, 9, 7)
    m = fastact.PReLU(6, shared=shared, dtype=dtype)
    assert m.slopes.shape == ((1,) if shared else (6,)) and m.slopes.dtype == dtype
    np.testing.assert_array_equal(m.slopes, np.full(m.slopes.shape, 0.25, dtype))
    m.slopes[...] = rng.uniform(-2, 3, m.slopes.shape)      # slopes are writeable
    x = random_x(rng, shape, dtype)
    x_before = x.copy()
    g = rng.standard_normal(shape).astype(dtype)
    y = m(x)
    np.testing.assert_array_equal(y, expected_forward(x, m.slopes))
    np.testing.assert_array_equal(x, x_before)
    gi = m.backward(g)
    gi_ref, gs_ref = expected_backward(g, x, m.slopes)
    np.testing.assert_array_equal(gi, gi_ref)
    assert m.grad_slopes.shape == m.slopes.shape and m.grad_slopes.dtype == dtype
    assert_grad_slopes_close(m.grad_slopes, np.reshape(gs_ref, m.slopes.shape), g, x, dtype)
    np.testing.assert_array_equal(m.forward(x), y)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shared", [False, True])
def test_inplace_forward_then_backward(rng, dtype, shared):
    shape = (3, 5, 8, 9)
    m = fastact.PReLU(5, shared=shared, inplace=True, dtype=dtype)
    m.slopes[...] = rng.uniform(0.05, 3.0, m.slopes.shape)   # every slope > 0
    x = random_x(rng, shape, dtype)
    x_before = x.copy()
    g = rng.standard_normal(shape).astype(dtype)
    y = m(x)
    assert y is x
    np.testing.assert_array_equal(y, expected_forward(x_before, m.slopes))
    gi = m.backward(g)
    gi_ref, gs_ref = expected_backward(g, x_before, m.slopes)
    np.testing.assert_array_equal(gi, gi_ref)
    # from the output: sum(y * g) / slope, where y = slope * x was rounded
    # once; each term is off by at most half an ulp of the dtype
    gs_ref = np.reshape(gs_ref, m.slopes.shape)
    terms = np.abs(np.where(x_before > 0, 0, x_before.astype(np.float64) * g))
    sums = terms.sum() if shared else terms.sum(axis=(0, 2, 3))
    tol = np.finfo(dtype).eps * (sums + np.abs(gs_ref))
    assert np.all(np.abs(m.grad_slopes.astype(np.float64) - gs_ref) <= tol)


@pytest.mark.parametrize("bad_slope", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("inplace", [False, True])
def test_slopes_that_are_not_finite_are_refused(rng, bad_slope, inplace):
    """As a shared slope, leaky_relu's negative_slope and PReLU(init=): the
    forward refuses them, writing nothing; so do gradient and the functions."""
    m = fastact.PReLU(3, inplace=inplace)
    m.slopes[1] = bad_slope
    x = random_x(rng, (2, 3, 4), np.float32)
    x_before = x.copy()
    with pytest.raises(ValueError, match=r"slopes must be finite, got -?(nan|inf) at index 1"):
        m(x)
    np.testing.assert_array_equal(x, x_before)
    g = rng.standard_normal(x.shape).astype(np.float32)
    g_before = g.copy()
    with pytest.raises(ValueError, match="slopes must be finite"):
        m.gradient(g, x, inplace=True)
    np.testing.assert_array_equal(g, g_before)
    with pytest.raises(ValueError, match="init must be finite|init is NaN"):
        fastact.PReLU(3, init=bad_slope)


@pytest.mark.parametrize("bad_slope", [0.0, -0.5])
def test_inplace_backward_refuses_slopes_that_hide_the_sign(rng, bad_slope):
    m = fastact.PReLU(3, inplace=True)
    m.slopes[1] = bad_slope
    x = random_x(rng, (2, 3, 4), np.float32)
    m(x)
    g = rng.standard_normal(x.shape).astype(np.float32)
    g_before = g.copy()
    with pytest.raises(ValueError, match="needs every slope > 0"):
        m.backward(g)
    np.testing.assert_array_equal(g, g_before)
    assert m.grad_slopes is None


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="backward called before forward"):
        fastact.PReLU(3).backward(np.ones((1, 3, 2), np.float32))


def test_puzzlelib_example_through_the_module():
    np.random.seed(1234)
    x = np.random.randint(-9, 9, (1, 3, 5, 5)).astype(np.float32)
    m = fastact.PReLU(3)
    m.slopes[...] = [0.5, 0, 0.25]
    y = m(x)
    np.testing.assert_array_equal(y, np.where(x > 0, x, m.slopes.reshape(1, 3, 1, 1) * x))
    g = np.random.randn(1, 3, 5, 5).astype(np.float32)
    gi = m.backward(g)
    np.testing.assert_array_equal(gi, np.where(x > 0, g, m.slopes.reshape(1, 3, 1, 1) * g))
    np.testing.assert_allclose(
        m.grad_slopes, np.sum(np.where(x > 0, 0, x.astype(np.float64) * g), axis=(0, 2, 3)),
        rtol=1e-6)


def test_constructor_validation():
    for bad in (np.int32, "int8", np.complex64, "bfloat32", object):
        with pytest.raises(TypeError, match="dtype must be float32, float64, float16"):
            fastact.PReLU(3, dtype=bad)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="channels must be a positive int"):
            fastact.PReLU(bad)
    m = fastact.PReLU(4, init=0.1, dtype=np.float64)
    np.testing.assert_array_equal(m.slopes, np.full(4, 0.1))
    assert "channels=4" in repr(m)


def test_wrong_channels_is_reported(rng):
    m = fastact.PReLU(4)
    x = random_x(rng, (2, 3, 5), np.float32)
    with pytest.raises(ValueError, match="slopes has 4 values but x has 3 channels"):
        m(x)


def _oracle(x, slopes, g=None, channel_axis=1):
    """The float64 oracle, slopes cast to x's dtype first, rounded to x's dtype."""
    s = np.asarray(slopes, dtype=x.dtype)
    if g is None:
        return _reference.prelu(x, s, channel_axis).astype(x.dtype)
    gi, gs = _reference.prelu_backward(g, x, s, channel_axis)
    return gi.astype(x.dtype), gs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("inplace", [False, True])
def test_channels_last(rng, dtype, inplace):
    shape = (3, 7, 5, 4)                                   # NHWC, C = 4
    m = fastact.PReLU(4, channel_axis=-1, inplace=inplace, dtype=dtype)
    m.slopes[...] = rng.uniform(0.05, 3.0, 4) if inplace else rng.uniform(-2, 3, 4)
    assert m.channel_axis == -1 and "channel_axis=-1" in repr(m)
    x = random_x(rng, shape, dtype)
    x0 = x.copy()
    g = rng.standard_normal(shape).astype(dtype)
    y = m(x)
    assert (y is x) == inplace
    np.testing.assert_array_equal(y, _oracle(x0, m.slopes, channel_axis=-1))
    gi = m.backward(g)
    gi_ref, gs_ref = _oracle(x0, m.slopes, g, channel_axis=-1)
    np.testing.assert_array_equal(gi, gi_ref)
    assert m.grad_slopes.shape == (4,) and m.grad_slopes.dtype == dtype
    if inplace:                  # sum(y * g) / slope: an ulp of the dtype per term
        terms = np.abs(np.where(x0 > 0, 0, x0.astype(np.float64) * g)).sum(axis=(0, 1, 2))
        tol = np.finfo(dtype).eps * (terms + np.abs(gs_ref))
        assert np.all(np.abs(m.grad_slopes.astype(np.float64) - gs_ref) <= tol)
    else:
        assert_grad_slopes_close(m.grad_slopes, gs_ref, g, x0, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, slopes_shape, channel_axis", [
    ((2, 3, 5, 4), (3, 1, 1), 1),          # NCHW, per channel, as Keras holds it
    ((2, 5, 4, 3), (1, 1, 3), -1),         # NHWC, shared over H and W (shared_axes=[1, 2])
    ((2, 5, 4, 3), (5, 4, 3), -1),         # nothing shared
    ((2, 5, 4, 3), (4, 1), 1),             # per W position, broadcast over H and C
    ((2, 6, 7), (1,), 1),                  # one shared slope
    ((2, 6, 7), (), 1),
])
def test_slopes_of_any_shape(rng, dtype, x_shape, slopes_shape, channel_axis):
    m = fastact.PReLU(slopes_shape=slopes_shape, channel_axis=channel_axis, dtype=dtype)
    assert m.slopes.shape == slopes_shape
    np.testing.assert_array_equal(m.slopes, np.full(slopes_shape, 0.25, dtype))
    m.slopes[...] = rng.uniform(-2, 3, slopes_shape)
    x = random_x(rng, x_shape, dtype)
    g = rng.standard_normal(x_shape).astype(dtype)
    np.testing.assert_array_equal(m(x), _oracle(x, m.slopes, channel_axis=channel_axis))
    gi = m.backward(g)
    gi_ref, gs_ref = _oracle(x, m.slopes, g, channel_axis=channel_axis)
    np.testing.assert_array_equal(gi, gi_ref)
    assert m.grad_slopes.shape == slopes_shape and m.grad_slopes.dtype == dtype
    terms = np.abs(np.where(x > 0, 0, x.astype(np.float64) * g)).sum()
    np.testing.assert_allclose(m.grad_slopes, gs_ref, rtol=2 * np.finfo(dtype).eps,
                               atol=64 * np.finfo(np.float64).eps * terms)


def test_slopes_shape_checks():
    for bad in ((0,), (3, -1), "3", (2.0,), (True,), [[3]]):
        with pytest.raises(ValueError, match="slopes_shape must be a tuple of positive ints"):
            fastact.PReLU(slopes_shape=bad)
    with pytest.raises(ValueError, match="either slopes_shape or channels/shared"):
        fastact.PReLU(3, slopes_shape=(3,))
    with pytest.raises(ValueError, match="either slopes_shape or channels/shared"):
        fastact.PReLU(shared=True, slopes_shape=(1,))
    for bad in (0, 2, np.int64(-2)):
        with pytest.raises(ValueError, match="channel_axis must be 1 .* or -1"):
            fastact.PReLU(3, channel_axis=bad)
    for bad in ("last", None, True, -1.0):
        with pytest.raises(TypeError, match=r"channel_axis must be an int \(1 or -1\)"):
            fastact.PReLU(3, channel_axis=bad)
    m = fastact.PReLU(3, channel_axis=np.int64(-1))
    assert m.channel_axis == -1 and type(m.channel_axis) is int
    assert fastact.PReLU(slopes_shape=4).slopes.shape == (4,)
    assert fastact.PReLU(slopes_shape=[2, 1, 1]).slopes.shape == (2, 1, 1)
    assert "slopes_shape=(2, 1, 1)" in repr(fastact.PReLU(slopes_shape=(2, 1, 1)))
    with pytest.raises(ValueError, match="slopes has shape"):
        fastact.PReLU(slopes_shape=(4, 1))(np.ones((2, 3, 5), np.float32))


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_stateless_and_out_is_x(rng, dtype):
    m = fastact.PReLU(3, dtype=dtype)
    m.slopes[...] = [0.5, 1.5, 2.0]
    x = random_x(rng, (2, 3, 6), dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    want = _oracle(x, m.slopes)
    gi_ref, gs_ref = _oracle(x, m.slopes, g)
    assert_module_out(m, x, g, want, gi_ref)
    gi, gs = m.gradient(g, x)                       # stateless: both gradients
    np.testing.assert_array_equal(gi, gi_ref)
    assert_grad_slopes_close(gs, gs_ref, g, x, dtype)
    # out= x overwrites the input: backward then works from the output
    x0 = x.copy()
    assert m.forward(x, out=x) is x
    np.testing.assert_array_equal(x, want)
    np.testing.assert_array_equal(m.backward(g), gi_ref)
    m.slopes[1] = -1.0
    m.forward(x0.copy(), out=None)
    m.backward(g)                                   # not in place: any slope
    x1 = x0.copy()
    m.forward(x1, out=x1)
    with pytest.raises(ValueError, match="needs every slope > 0"):
        m.backward(g)


def test_stream_must_be_none_for_numpy(rng):
    m = fastact.PReLU(3)
    x = random_x(rng, (2, 3, 4), np.float32)
    x0 = x.copy()
    assert m(x, stream=None).shape == x.shape
    with pytest.raises(ValueError, match="is for GPU arrays"):
        m.function(x, inplace=True, stream=1)
    np.testing.assert_array_equal(x, x0)
