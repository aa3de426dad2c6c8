"""Data generators and comparisons shared by the tests."""
import numpy as np

from fastact import _reference

DTYPES = [np.float32, np.float64]
# slopes that break the max(x, a * x) shortcut, plus the ordinary ones
SPECIAL_SLOPES = [0.0, -0.5, -2.0, 1.0, 1.205321, 3.5, 0.25, 0.01]


def random_x(rng, shape, dtype):
    """Random normal data with a sprinkle of exact zeros and -0.0."""
    x = rng.standard_normal(shape).astype(dtype)
    if x.size:
        flat = x.reshape(-1)
        picks = rng.integers(0, flat.size, size=max(1, flat.size // 50))
        flat[picks[::2]] = 0.0
        flat[picks[1::2]] = -0.0
    return x


def random_slopes(rng, channels, dtype):
    """Per-channel slopes drawn from the special values and from [-3, 3]."""
    special = np.array(SPECIAL_SLOPES)
    s = np.where(rng.random(channels) < 0.5, rng.choice(special, channels),
                 rng.uniform(-3, 3, channels))
    return s.astype(dtype)


def expected_forward(x, slopes):
    """The oracle rounded to x's dtype.  A product of two float32 values is
    exact in float64, so rounding it once gives the float32 product: the
    kernels must match this bitwise.  Slopes are first cast to x's dtype, as
    fastact does."""
    return _reference.prelu(x, np.asarray(slopes, dtype=x.dtype)).astype(x.dtype)


def expected_backward(g, x, slopes):
    x = np.asarray(x)
    gi, gs = _reference.prelu_backward(g, x, np.asarray(slopes, dtype=x.dtype))
    return gi.astype(x.dtype), gs


def assert_grad_slopes_close(got, ref, g, x, dtype):
    """grad_slopes is a float64 sum rounded to dtype: it may differ from the
    float64 oracle by the summation-order error (a few ulp of float64 on the
    sum of |terms|) plus one rounding to dtype."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape
    terms = np.abs(np.where(np.asarray(x, np.float64) > 0, 0.0,
                            np.asarray(x, np.float64) * np.asarray(g, np.float64)))
    scale = np.nansum(terms) + 1e-300
    tol = 64 * np.finfo(np.float64).eps * scale + np.finfo(dtype).eps * np.abs(ref)
    both_nan = np.isnan(got) & np.isnan(ref)
    ok = both_nan | (np.abs(got - ref) <= tol)
    assert ok.all(), f"grad_slopes {got[~ok]} != oracle {ref[~ok]} (tol {np.broadcast_to(tol, ok.shape)[~ok]})"


def poisoned_like(a):
    """An output array of a's shape and dtype filled with bytes 0x7F (a huge
    finite value no kernel produces from the test data), so that any element
    a kernel failed to write stands out."""
    dtype = np.dtype(a.dtype)
    poison = np.frombuffer(b"\x7f" * dtype.itemsize, dtype=dtype)[0]
    return np.full(a.shape, poison, dtype=dtype)
