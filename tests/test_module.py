"""The PReLU module: forward, backward, in place, shared slopes, errors."""
import numpy as np
import pytest

import fastact
from helpers import DTYPES, assert_grad_slopes_close, expected_backward, expected_forward, random_x


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


@pytest.mark.parametrize("bad_slope", [0.0, -0.5, np.nan])
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
        m.grad_slopes, np.sum(np.where(x > 0, 0, x.astype(np.float64) * g), axis=(0, 2, 3)), rtol=1e-6)


def test_constructor_validation():
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        fastact.PReLU(3, dtype=np.int32)
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
