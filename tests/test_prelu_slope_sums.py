"""prelu_backward's float64 slope sums, before their rounding to the dtype,
bitwise against an oracle that adds the same terms in the order the README
defines: each (n, c) plane cut into segments of 16384 elements, a segment's
element i added to lane i % 16 (each lane in order, from 0.0), the 16 lanes
added pairwise (lane k + lane k + 8, then k + 4, k + 2, k + 1), and the
segments' sums added to the channel's, planes in n order.  Arrays of short
planes (inner < 64: channels-last arrays, as (N*H*W, C, 1)) are cut into
tiles of rows instead, whose order oracle_tile_sums spells out.  Every ISA,
one and two threads, ordinary and streaming stores, in place and not.

bfloat16's terms x * g are taken in float scaled by 2^117 (exact unless the
product overflows, when the kernels take them again in float64): the data
here sit at both ends of bfloat16's range, where an unscaled float product
would underflow or overflow."""
import math

import numpy as np
import pytest

import fastact
from fastact import _cpu, _dtypes

from helpers import ALL_DTYPES, poisoned_like

SEGMENT = 16384
LANES = 16
PLANE_MIN = 64      # shorter planes are cut into tiles of rows
TILE_W = 1024       # a tile's elements along a row, at most
BWD_W = 64          # the fewest elements a tile's group of rows spans


def oracle_sums(g, x):
    """float64 slope sums of (N, C, inner) arrays in the kernels' order,
    from the exact float64 products of the elements (no kernel code)."""
    x64 = np.asarray(x, np.float64)
    g64 = np.asarray(g, np.float64)
    terms = np.where(x64 > 0, 0.0, x64 * g64)     # NaN in x stays NaN
    outer, channels, inner = terms.shape
    sums = np.zeros(channels)
    for n in range(outer):
        for c in range(channels):
            for start in range(0, inner, SEGMENT):
                seg = terms[n, c, start:start + SEGMENT]
                lanes = np.zeros(LANES)
                for k in range(LANES):
                    column = seg[k::LANES]
                    if column.size:
                        lanes[k] = np.add.accumulate(np.concatenate([[0.0], column]))[-1]
                width = LANES // 2
                while width:
                    lanes[:width] = lanes[:width] + lanes[width:2 * width]
                    width //= 2
                sums[c] = sums[c] + lanes[0]
    return sums


def oracle_tile_sums(g, x):
    """float64 slope sums of (N, C, inner) arrays with inner < PLANE_MIN, in
    the kernels' order for such arrays: rows (n) cut into blocks of
    SEGMENT // w rows and channels into runs of TILE_W // inner, w being a
    run's elements per row.  In each tile, position k of a row adds its
    terms in row order into a sum of its own; where the run is every
    channel, rows go by groups of BWD_W // w (each group one wider row), the
    rows left over after the last whole group adding into the first
    positions.  A channel's sum in a tile adds its positions in order; the
    tiles' sums are added to the channel's in block order."""
    x64 = np.asarray(x, np.float64)
    g64 = np.asarray(g, np.float64)
    terms = np.where(x64 > 0, 0.0, x64 * g64)
    outer, channels, inner = terms.shape
    assert inner < PLANE_MIN
    cpt = min(TILE_W // inner, channels)
    rpt = max(1, SEGMENT // (cpt * inner))

    def in_order(rows):         # sequential sums down the columns, from 0.0
        return np.add.accumulate(np.vstack([np.zeros(rows.shape[1]), rows]))[-1]

    sums = np.zeros(channels)
    for r0 in range(0, outer, rpt):
        block_sums = np.zeros(channels)
        for c0 in range(0, channels, cpt):
            nch = min(cpt, channels - c0)
            w = nch * inner
            tile = terms[r0:r0 + rpt, c0:c0 + nch].reshape(-1, w)
            reps = BWD_W // w if nch == channels and BWD_W > w else 1
            groups = tile.shape[0] // reps
            acc = in_order(tile[:groups * reps].reshape(groups, reps * w))
            left = tile[groups * reps:].ravel()
            acc[:left.size] += left
            for ch in range(nch):
                positions = acc.reshape(reps, nch, inner)[:, ch].ravel()
                block_sums[c0 + ch] = in_order(positions[:, None])[0]
        sums = sums + block_sums
    return sums


def kernel_sums(g, x, slopes, inplace=False):
    """(grad_input, the kernels' float64 sums), through the entry point the
    torch adapter uses (the public API rounds the sums to the dtype)."""
    d = _dtypes.from_numpy(x.dtype)
    s = np.ascontiguousarray(slopes, dtype=d.compute)
    gi = np.array(g) if inplace else poisoned_like(x)     # in place: a copy of g
    sums = np.full(x.shape[1], np.nan)
    outer, channels, inner = x.shape
    _cpu.raw_prelu_backward(d.code, gi.ctypes.data if inplace else g.ctypes.data,
                            x.ctypes.data, s.ctypes.data, gi.ctypes.data, sums.ctypes.data,
                            True, outer, channels, inner)
    return gi, sums


def run_everywhere(g, x, slopes):
    """{(isa, threads, streaming, inplace): (grad_input, float64 sums)}."""
    results = {}
    active, threads = _cpu.get_isa(), fastact.get_num_threads()
    try:
        for isa in _cpu.supported_isas():
            _cpu.set_isa(isa)
            for n in (1, 2):
                fastact.set_num_threads(n)
                for streaming in (False, True):
                    _cpu.set_streaming_threshold(0 if streaming else None)
                    for inplace in (False, True):
                        results[isa, n, streaming, inplace] = kernel_sums(g, x, slopes, inplace)
    finally:
        _cpu.set_isa(active)
        fastact.set_num_threads(threads)
        _cpu.set_streaming_threshold(None)
    return results


def assert_everywhere(g, x, slopes, want):
    """grad_input bitwise numpy's, and the sums bitwise want (NaN where want
    is NaN), in every configuration."""
    a = np.asarray(slopes, np.float64).reshape(1, -1, 1)
    x64, g64 = np.asarray(x, np.float64), np.asarray(g, np.float64)
    want_gi = np.where(x64 > 0, g64, a * g64).astype(x.dtype)
    for where, (gi, sums) in run_everywhere(g, x, slopes).items():
        np.testing.assert_array_equal(gi, want_gi, err_msg=str(where))
        np.testing.assert_array_equal(sums, want, err_msg=str(where))


def _bf16():
    if not _dtypes.bfloat16_status()[0]:
        pytest.skip("bfloat16 needs ml_dtypes")
    return _dtypes.bfloat16()


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("shape", [(1, 3, 5003), (2, 2, 40000), (3, 4, 64)])
def test_random_sums_in_the_defined_order(rng, dtype, shape):
    """Rounding-sensitive data (normal values of mixed signs and scales): the
    sums depend on the order, and must be the oracle's bit for bit."""
    x = (rng.standard_normal(shape) * np.exp2(rng.integers(-8, 8, shape))).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    slopes = rng.uniform(-1, 1, shape[1])
    assert_everywhere(g, x, slopes.astype(dtype), oracle_sums(g, x))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("shape", [(700, 64, 1), (5000, 4, 1), (40, 1000, 1), (3, 2000, 1),
                                   (300, 12, 5)])
def test_random_tile_sums_in_their_order(rng, dtype, shape):
    """The same for arrays cut into tiles of rows: channels-last arrays with
    one group per row (64 channels), 16 rows per group (4 channels), 16 rows
    per tile (1000), a tile narrower than a row (2000), and inner 5."""
    x = (rng.standard_normal(shape) * np.exp2(rng.integers(-8, 8, shape))).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    slopes = rng.uniform(-1, 1, shape[1])
    assert_everywhere(g, x, slopes.astype(dtype), oracle_tile_sums(g, x))


def _exact_sum_case(rng, shape, make):
    """x and g from make(rng, shape), and the sums exactly (math.fsum), checked
    to be what any order of float64 additions gives (each channel's terms and
    partial sums exact in float64)."""
    x, g = make(rng, shape)
    terms = np.where(np.asarray(x, np.float64) > 0, 0.0,
                     np.asarray(x, np.float64) * np.asarray(g, np.float64))
    exact = np.array([math.fsum(terms[:, c].ravel()) for c in range(shape[1])])
    np.testing.assert_array_equal(oracle_sums(g, x), exact)
    return x, g, exact


def _bf16_values(rng, shape, low, high):
    """bfloat16 values of random sign, 8 random significant bits and
    exponents in [low, high)."""
    bf16 = _bf16()
    significand = rng.integers(128, 256, shape) / 128.0
    v = significand * np.exp2(rng.integers(low, high, shape)) * rng.choice([-1.0, 1.0], shape)
    out = v.astype(bf16)
    np.testing.assert_array_equal(out.astype(np.float64), v)     # exact in bfloat16
    return out


# a small call's planes (run on the calling thread, one kernel call for all)
# and planes past one work item (the threaded path)
INNERS = [9000, 20000]
# the range cases' arrays as they are made, (1, C, inner), and as rows,
# (inner, C, 1): the same channels' values, channels-last (the tiles' kernels)
LAYOUTS = ["planes", "rows"]


def _laid_out(layout, *arrays):
    return tuple(a if layout == "planes" else np.ascontiguousarray(a.transpose(2, 1, 0))
                 for a in arrays)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("inner", INNERS)
def test_bfloat16_products_below_floats_range(rng, inner, layout):
    """Products from 2^-266 (subnormal times subnormal) to 2^-146, where an
    unscaled float product rounds to 0 or to float's 2^-149 grid: channel 0
    normal values, channel 1 subnormals squared, channel 2 subnormals times
    normal values."""
    bf16 = _bf16()

    def make(rng, shape):
        x = _bf16_values(rng, shape, -80, -74)
        g = _bf16_values(rng, shape, -80, -74)
        sub = rng.integers(1, 128, (2, shape[2])) * rng.choice([-1.0, 1.0], (2, shape[2]))
        x[0, 1:] = (sub * 2.0 ** -133).astype(bf16)
        g[0, 1] = x[0, 1]
        return x, g

    x, g, exact = _exact_sum_case(rng, (1, 3, inner), make)
    assert (exact != 0).all()
    assert_everywhere(*_laid_out(layout, g, x), np.array([0.25, -0.5, 2.0], bf16), exact)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("inner", INNERS)
def test_bfloat16_products_past_floats_range(rng, inner, layout):
    """|x g| from 2^12 (past 2^11, where the scaled product overflows float)
    to 2^232 (where the unscaled one overflows too): the kernels take these
    pieces' terms again in float64.  Channel 0 all large, channel 1 one large
    term among ordinary ones, channel 2 ordinary, channel 3 past float's
    range: a piece's fallback leaves the other pieces' sums alone."""
    bf16 = _bf16()

    def make(rng, shape):
        x = _bf16_values(rng, shape, -6, 2)
        g = _bf16_values(rng, shape, -6, 2)
        x[0, 0] = _bf16_values(rng, shape[2], 6, 14)
        g[0, 0] = _bf16_values(rng, shape[2], 6, 14)
        x[0, 1, 777], g[0, 1, 777] = -(2.0 ** 11), 2.0
        x[0, 3] = _bf16_values(rng, shape[2], 120, 121)
        g[0, 3] = _bf16_values(rng, shape[2], 110, 111)
        return x, g

    x, g, exact = _exact_sum_case(rng, (1, 4, inner), make)
    assert np.isfinite(exact).all() and abs(exact[3]) > 2.0 ** 128
    assert_everywhere(*_laid_out(layout, g, x), np.array([0.25, 1.5, -0.5, 0.75], bf16),
                      exact)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("inner", INNERS)
def test_bfloat16_specials_and_large_positive_x(inner, layout):
    """inf and NaN inputs give what float64 gives (the fallback), and x > 0
    contributes 0 whatever g is, x >= 2^11 (whose scaled value is inf)
    included."""
    bf16 = _bf16()
    x = np.full((1, 4, inner), -0.5)
    g = np.full((1, 4, inner), 0.25)
    x[0, 0, 3], g[0, 0, 3] = 4096.0, np.inf          # x > 0: term 0
    x[0, 0, 4], g[0, 0, 4] = 2.0 ** 100, np.nan      # x > 0: term 0
    x[0, 1, 5] = -np.inf                             # -inf * 0.25
    x[0, 2, 6], g[0, 2, 6] = -np.inf, 0.0            # -inf * 0: NaN
    x[0, 3, 7] = np.nan
    x, g = x.astype(bf16), g.astype(bf16)
    want = np.array([(inner - 2) * -0.125, -np.inf, np.nan, np.nan])
    assert_everywhere(*_laid_out(layout, g, x), np.array([0.25, 0.25, 0.25, 0.25], bf16),
                      want)
