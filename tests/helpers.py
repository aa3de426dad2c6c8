"""Data generators and comparisons shared by the tests."""
import numpy as np

from fastact import _reference

DTYPES = [np.float32, np.float64]
# every dtype the kernels take; bfloat16 when ml_dtypes is installed
try:
    import ml_dtypes
    BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:
    BFLOAT16 = None
ALL_DTYPES = [np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16)] + (
    [BFLOAT16] if BFLOAT16 is not None else [])


def compute_dtype(dtype):
    """The type the kernels compute in: float64 for float64, else float32."""
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def as_bits(a):
    """The bit patterns of a float array, as unsigned integers."""
    a = np.asarray(a)
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def ulp_distance(a, b):
    """Units in the last place between same-dtype float arrays (signed zeros
    are 0 apart), via the integers that order IEEE values."""
    a, b = np.asarray(a), np.asarray(b)
    signed = {2: np.int16, 4: np.int32, 8: np.int64}[a.dtype.itemsize]

    def ordered(v):
        i = v.view(signed).astype(np.int64)
        return np.where(i < 0, np.iinfo(signed).min - i, i)

    return np.abs(ordered(a) - ordered(b))


def rounded_like_kernels(value64, dtype):
    """A float64 oracle's values as the kernels round them: to the compute
    type (float32 for float16/bfloat16), then to dtype.  Rounding twice is
    the documented contract, and it is not the same as rounding once: a
    float32 product that lands exactly halfway between two float16 values
    rounds to even, where the exact product was just past the halfway point
    (g = 5.87e-05 times 0.1f: 98.500001 float16 subnormal steps, 98.5 in
    float32, then 98 steps; rounded once from float64, 99)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(value64).astype(compute_dtype(dtype)).astype(dtype)


def assert_same(got, want):
    """Bitwise equal (signed zeros included), NaN where NaN."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    gn = np.isnan(got.astype(np.float64))
    wn = np.isnan(want.astype(np.float64))
    bad = (gn != wn) | (~gn & (as_bits(got) != as_bits(want)))
    assert not bad.any(), (f"{bad.sum()} elements differ, e.g. got "
                           f"{got[bad][:5]} want {want[bad][:5]}")


def assert_within_ulp(got, want, ulps):
    """At most `ulps` units in the last place of the dtype apart, NaN where
    NaN.  Counting in ulps (not relative error) holds the same bound for
    subnormal results, where one step is a large relative change."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    gn = np.isnan(got.astype(np.float64))
    wn = np.isnan(want.astype(np.float64))
    assert (gn == wn).all(), (f"NaN in {int((gn != wn).sum())} places where the oracle has "
                              f"none (or the reverse)")
    d = ulp_distance(got[~gn], want[~gn])
    if d.size and d.max() > ulps:
        i = int(np.argmax(d))
        raise AssertionError(f"{d.max()} ulp apart (at most {ulps} allowed): got "
                             f"{got[~gn][i]!r}, want {want[~gn][i]!r}")
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
    assert ok.all(), (f"grad_slopes {got[~ok]} != oracle {ref[~ok]} "
                      f"(tol {np.broadcast_to(tol, ok.shape)[~ok]})")


def assert_prelu_forward(y, x, slopes):
    """y is prelu(x, slopes): x's dtype and shape, bitwise the oracle's."""
    assert y.dtype == x.dtype and y.shape == x.shape
    np.testing.assert_array_equal(y, expected_forward(x, slopes))


def assert_prelu_backward(gi, gs, g, x, slopes, dtype):
    """(gi, gs) is prelu_backward(g, x, slopes): grad_input bitwise the
    oracle's, grad_slopes of slopes' shape and within its tolerance."""
    gi_ref, gs_ref = expected_backward(g, x, slopes)
    assert gi.dtype == dtype and gi.shape == x.shape
    np.testing.assert_array_equal(gi, gi_ref)
    assert gs.dtype == dtype and gs.shape == np.shape(slopes)
    assert_grad_slopes_close(gs, gs_ref, g, x, dtype)


def poisoned_like(a):
    """An output array of a's shape and dtype filled with bytes 0x7F (a huge
    finite value no kernel produces from the test data), so that any element
    a kernel failed to write stands out."""
    dtype = np.dtype(a.dtype)
    poison = np.frombuffer(b"\x7f" * dtype.itemsize, dtype=dtype)[0]
    return np.full(a.shape, poison, dtype=dtype)


def assert_module_out(m, x, g, y, gi):
    """A module's forward and backward into out= arrays return those arrays
    holding y and grad_input gi, and its stateless function gives y (all
    bitwise)."""
    out = poisoned_like(x)
    assert m.forward(x, out=out) is out
    np.testing.assert_array_equal(out, y)
    out = poisoned_like(x)
    assert m.backward(g, out=out) is out
    np.testing.assert_array_equal(out, gi)
    np.testing.assert_array_equal(m.function(x), y)


def _float_facts(dtype):
    """(eps, smallest subnormal) of a float dtype given as a dtype or a name."""
    name = str(np.dtype(dtype) if not isinstance(dtype, str) else dtype)
    if name == "bfloat16":
        return 2.0 ** -7, 2.0 ** -133
    fin = np.finfo(np.dtype(name))
    return float(fin.eps), float(fin.smallest_subnormal)


def assert_close_in_ulps(got, want, dtype, ulps):
    """got and want hold values of `dtype` (as any float arrays): at most
    `ulps` units in the last place of dtype apart, measured at want's
    magnitude (the ulp of a subnormal is the smallest subnormal), NaN where
    NaN, infinities equal.  For results on devices whose arrays numpy cannot
    view in their own dtype."""
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape
    eps, tiny = _float_facts(dtype)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        magnitude = np.where(np.isfinite(want) & (want != 0),
                             2.0 ** np.floor(np.log2(np.abs(want))), 0.0)
        ulp = np.maximum(eps * magnitude, tiny)
        gn, wn = np.isnan(got), np.isnan(want)
        ok = (gn & wn) | (got == want) | (np.abs(got - want) <= ulps * ulp)
    assert ok.all(), (f"{int((~ok).sum())} elements more than {ulps} ulp apart, e.g. got "
                      f"{got[~ok][:5]} want {want[~ok][:5]}")
