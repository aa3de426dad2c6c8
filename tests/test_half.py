"""float16 and bfloat16 conversions, on every ISA this CPU runs: every 16-bit
pattern widened, and float32 values (random bit patterns and the edges of
rounding, overflow and underflow) narrowed, against numpy's float16 and
ml_dtypes's bfloat16 conversions.  The kernels compute in float32 and round
once, to nearest even; NaN comes out as the quiet NaN of its sign (float16
0x7E00, bfloat16 0x7FC0, ml_dtypes's), whatever its payload."""
import numpy as np
import pytest

import fastact
from fastact import _cpu

ml_dtypes = pytest.importorskip("ml_dtypes")

HALVES = [np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16)]


def _quiet(dtype):
    return 0x7E00 if dtype == np.float16 else 0x7FC0


def _bits(a):
    return np.ascontiguousarray(a).view(np.uint16)


def _expected_bits(v32, dtype):
    """v32 (float32) narrowed by numpy / ml_dtypes, NaN as the quiet NaN of
    its sign."""
    with np.errstate(over="ignore", invalid="ignore"):
        want = _bits(v32.astype(dtype)).copy()
    nan = np.isnan(v32)
    sign = (v32.view(np.uint32) >> 16).astype(np.uint16) & np.uint16(0x8000)
    want[nan] = sign[nan] | np.uint16(_quiet(dtype))
    return want


@pytest.fixture(params=_cpu.supported_isas())
def isa(request):
    before = _cpu.get_isa()
    _cpu.set_isa(request.param)
    yield request.param
    _cpu.set_isa(before)


@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_every_pattern_widened(isa, dtype):
    """leaky_relu with slope 1 gives x back (1 * x is exact), and square
    gives x * x rounded once: both widen every pattern exactly, and NaNs of
    every payload come out as the quiet NaN of their sign."""
    x = np.arange(1 << 16, dtype=np.uint16).view(dtype).reshape(4, -1)
    with np.errstate(invalid="ignore"):
        x32 = x.astype(np.float32)
    got = _bits(fastact.leaky_relu(x, 1.0))
    assert np.array_equal(got, _expected_bits(x32, dtype)), isa
    with np.errstate(over="ignore", invalid="ignore"):
        square = x32 * x32
    assert np.array_equal(_bits(fastact.square(x)), _expected_bits(square, dtype)), isa


def _narrowing_cases(rng, dtype):
    """float32 values: random bit patterns, and for dtype the values around
    every rounding edge of its exponents (ties, one ulp of float32 either
    side), overflow, the subnormals and zero."""
    random = rng.integers(0, 1 << 32, 200_000, dtype=np.uint64).astype(np.uint32)
    with np.errstate(invalid="ignore"):               # dtype's patterns as float32
        every = np.arange(1 << 16, dtype=np.uint16).view(dtype).astype(
            np.float32).view(np.uint32)
    # half an ulp of dtype's normal numbers, in float32 bits
    half_ulp = (1 << 12) if dtype == np.float16 else (1 << 15)
    every = every.astype(np.int64)
    edges = np.concatenate([every + d for d in (0, half_ulp - 1, half_ulp, half_ulp + 1,
                                                -half_ulp - 1, -half_ulp, -half_ulp + 1)])
    edges = (edges & 0xFFFFFFFF).astype(np.uint32)
    specials = np.array([0x00000001, 0x80000001, 0x007FFFFF, 0x477FEFFF, 0x477FF000,
                         0x477FF001, 0x33000000, 0x33000001, 0xB3000000, 0x7F7FFFFF,
                         0x7F7F8000, 0x7F7F7FFF],
                        dtype=np.uint32)
    v = np.concatenate([random, edges, specials]).view(np.float32)
    return v[np.isfinite(v)]        # slopes are finite (inf and NaN: the widening test)


@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_narrowing_against_numpy_and_ml_dtypes(isa, rng, dtype):
    """prelu(-1, slope -v) is v in float32 (exactly): narrowed by the kernels
    (per-channel runs, and channels last) as numpy / ml_dtypes narrow it."""
    v = _narrowing_cases(rng, dtype)
    w = -v
    want = _expected_bits(v, dtype)
    x = -np.ones((1, v.size, 3), dtype=dtype)
    got = _bits(fastact.prelu(x, w))
    assert np.array_equal(got, np.repeat(want, 3).reshape(got.shape)), isa
    xl = -np.ones((3, v.size), dtype=dtype)
    got = _bits(fastact.prelu(xl, w, channel_axis=-1))
    assert np.array_equal(got, np.tile(want, 3).reshape(got.shape)), isa
