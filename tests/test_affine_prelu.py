"""affine_prelu (prelu of x * scale + shift per channel) against the float64
oracle (fastact._reference.affine_prelu, rounding each step as the kernels
do), and batchnorm_scale_shift."""
import numpy as np
import pytest

import fastact
from fastact import _cpu, _reference

from helpers import (
    ALL_DTYPES,
    BFLOAT16,
    SPECIAL_SLOPES,
    assert_same,
    compute_dtype,
    poisoned_like,
    random_slopes,
    random_x,
)

# planes (inner >= 64), tiles (small inner), several segments per plane,
# several column tiles and row blocks, channels-last shapes (last axis C),
# groups of small planes
SHAPES = [
    (2, 3), (7, 5), (1, 1), (3, 2, 5), (2, 3, 7, 9), (1, 16, 8, 8), (2, 3, 4, 5, 6),
    (3, 5, 17, 13), (2, 3, 20001), (5000, 3), (3, 2000, 1), (4, 700, 3), (9, 31, 65),
    (2, 256, 14, 14), (4, 300, 7, 7),
]
MODES = ["new", "out", "inplace", "out_is_x"]


def _params(rng, channels, dtype):
    """scale (some negative, some 0), shift and slopes (the special ones:
    > 1, 0, negative) of the given dtype."""
    scale = rng.uniform(-3, 3, channels)
    scale[rng.random(channels) < 0.1] = 0.0
    shift = rng.standard_normal(channels)
    shift[rng.random(channels) < 0.2] = 0.0
    return (scale.astype(dtype), shift.astype(dtype), random_slopes(rng, channels, dtype))


def expected(x, scale, shift, slopes, channel_axis=1):
    """The oracle as the kernels round: parameters and every step in the
    compute dtype, the result rounded once to x's dtype."""
    c = compute_dtype(x.dtype)
    ps = [np.asarray(p, dtype=np.float64).astype(c) for p in (scale, shift, slopes)]
    y = _reference.affine_prelu(x, *ps, channel_axis=channel_axis,
                                rounding=None if c == np.float64 else c)
    with np.errstate(over="ignore", invalid="ignore"):
        return y.astype(c).astype(x.dtype)


def _run(x, params, mode, **kw):
    if mode == "new":
        return fastact.affine_prelu(x, *params, **kw)
    if mode == "out":
        out = poisoned_like(x)
        y = fastact.affine_prelu(x, *params, out=out, **kw)
        assert y is out
        return y
    if mode == "inplace":
        y = fastact.affine_prelu(x, *params, inplace=True, **kw)
        assert y is x
        return y
    y = fastact.affine_prelu(x, *params, out=x, **kw)
    assert y is x
    return y


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("channel_axis", [1, -1])
@pytest.mark.parametrize("mode", MODES)
def test_per_channel_matches_the_oracle(rng, shape, dtype, channel_axis, mode):
    x = random_x(rng, shape, dtype)
    params = _params(rng, shape[channel_axis], dtype)
    want = expected(x, *params, channel_axis=channel_axis)
    before = x.copy()
    y = _run(x, params, mode, channel_axis=channel_axis)
    assert y.dtype == x.dtype and y.shape == shape
    assert_same(y, want)
    if mode in ("new", "out"):
        assert_same(x, before)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("slope", SPECIAL_SLOPES)
@pytest.mark.parametrize("shape", [(3, 5, 9, 11), (4, 6, 2)])
def test_shared_slope_per_channel_scale(rng, dtype, slope, shape):
    x = random_x(rng, shape, dtype)
    scale, shift, _ = _params(rng, shape[1], dtype)
    for form in (slope, np.array([slope]), np.array(slope, dtype=dtype)):
        # the value each form holds, cast to the compute dtype by the kernel
        value = np.asarray(form, dtype=np.float64).reshape(())
        assert_same(fastact.affine_prelu(x, scale, shift, form),
                    expected(x, scale, shift, np.full(shape[1], value)))


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(), (1,), (17,), (3, 5), (2, 3, 7, 9), (3, 20001)])
def test_all_shared_takes_any_shape(rng, dtype, shape):
    x = random_x(rng, shape, dtype)
    y = fastact.affine_prelu(x, 1.5, -0.25, -0.5)
    assert_same(y, expected(x, 1.5, -0.25, -0.5))
    assert_same(fastact.affine_prelu(x, [1.5], np.array([[-0.25]]), -0.5), y)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_special_values(dtype):
    """NaN, +-inf, +-0.0, overflow of the affine map, inf * 0 (NaN), and
    zero shifts of either sign, in every channel's combination."""
    f = np.finfo(np.float32).max if dtype != np.float64 else np.finfo(np.float64).max
    vals = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 3.0, -2.5], np.float64)
    if dtype == np.float64 or dtype == np.float32:
        vals = np.concatenate([vals, [float(f) / 2, -float(f) / 2]])
    scale = np.array([1.0, -1.0, 0.0, 2.0, 3.0, -0.5])
    shift = np.array([0.0, -0.0, 0.0, 1.0, -0.0, -3.0])
    slopes = np.array([0.25, -2.0, 3.5, 0.0, 1.0, -0.5])
    x = np.broadcast_to(vals, (2, 6, vals.size)).astype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        ps = [p.astype(dtype) for p in (scale, shift, slopes)]
    want = expected(x, *ps)
    for mode in MODES:
        assert_same(_run(x.copy(), ps, mode), want)


def test_float32_equals_two_numpy_float32_steps(rng):
    """With no fused multiply-add, the kernel is prelu(x * scale + shift)
    computed as numpy computes it in float32, bitwise, on every ISA."""
    x = random_x(rng, (4, 24, 19, 23), np.float32)
    x.reshape(-1)[::97] = np.nan
    x.reshape(-1)[1::89] = np.inf
    scale, shift, slopes = _params(rng, 24, np.float32)
    sc, sh, sl = (p[:, None, None] for p in (scale, shift, slopes))
    with np.errstate(invalid="ignore", over="ignore"):
        t = x * sc + sh                       # two float32 roundings
        want = np.where(t > 0, t, sl * t)
    assert t.dtype == np.float32 and want.dtype == np.float32
    before = _cpu.get_isa()
    try:
        for isa in _cpu.supported_isas():
            _cpu.set_isa(isa)
            assert_same(fastact.affine_prelu(x, scale, shift, slopes), want)
            xl = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
            assert_same(fastact.affine_prelu(xl, scale, shift, slopes, channel_axis=-1),
                        np.ascontiguousarray(want.transpose(0, 2, 3, 1)))
    finally:
        _cpu.set_isa(before)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_every_isa_gives_the_same_bits(rng, dtype):
    """Each ISA's kernels, on both work layouts, streaming stores or not, in
    and out of place: bitwise one result."""
    shapes = [(3, 7, 67, 5), (64, 5, 3), (2, 3, 40000)]
    before = _cpu.get_isa()
    try:
        for shape in shapes:
            for axis in (1, -1):
                x = random_x(rng, shape, dtype)
                params = _params(rng, shape[axis], dtype)
                results = []
                for isa in _cpu.supported_isas():
                    _cpu.set_isa(isa)
                    for threshold in (None, 0):
                        _cpu.set_streaming_threshold(threshold)
                        results.append(fastact.affine_prelu(x, *params, channel_axis=axis))
                        results.append(fastact.affine_prelu(x.copy(), *params,
                                                            channel_axis=axis, inplace=True))
                want = expected(x, *params, channel_axis=axis)
                for r in results:
                    assert_same(r, want)
    finally:
        _cpu.set_isa(before)
        _cpu.set_streaming_threshold(None)


def test_threads_give_the_same_bits(rng):
    x = random_x(rng, (8, 16, 96, 96), np.float32)
    params = _params(rng, 16, np.float32)
    try:
        fastact.set_num_threads(1)
        one = fastact.affine_prelu(x, *params)
        fastact.set_num_threads(2)
        two = fastact.affine_prelu(x, *params)
    finally:
        fastact.set_num_threads(None)
    assert_same(one, two)
    assert_same(one, expected(x, *params))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_contiguous_inputs_and_outputs(rng, dtype):
    base = random_x(rng, (4, 6, 10, 14), dtype)
    scale, shift, slopes = _params(rng, 12, dtype)
    views = [base[:, :, ::2], base.transpose(0, 3, 2, 1)[:, :, :, :], base[::2, :, 1:, :]]
    for x in views:
        params = _params(rng, x.shape[1], dtype)
        want = expected(np.ascontiguousarray(x), *params)
        assert_same(fastact.affine_prelu(x, *params), want)
        big = poisoned_like(np.empty((x.shape[0], x.shape[1], x.shape[2], 2 * x.shape[3]),
                                     dtype))
        out = big[:, :, :, ::2]
        assert fastact.affine_prelu(x, *params, out=out) is out
        assert_same(out, want)
        xc = x.copy()
        xi = base.copy()[:, :, ::2] if x.shape == views[0].shape else None
        if xi is not None:
            assert fastact.affine_prelu(xi, *params, inplace=True) is xi
            assert_same(xi, expected(xc, *params))
    # parameters as non-contiguous arrays, other float dtypes and lists
    x = random_x(rng, (2, 6, 5, 5), dtype)
    s2 = np.repeat(scale[:6], 2)[::2]
    want = expected(x, s2, shift[:6].astype(np.float16), list(map(float, slopes[:6])))
    assert_same(fastact.affine_prelu(x, s2, shift[:6].astype(np.float16),
                                     list(map(float, slopes[:6]))), want)


def test_byte_swapped_x(rng):
    x = random_x(rng, (2, 3, 9, 9), np.float32)
    params = _params(rng, 3, np.float32)
    swapped = x.astype(x.dtype.newbyteorder())
    assert_same(fastact.affine_prelu(swapped, *params).astype(np.float32),
                expected(x, *params))


# --- errors: a clear message naming the argument, and nothing written ------------

def _bad_calls(x, out):
    c = x.shape[1]
    good = (np.ones(c, np.float32), np.zeros(c, np.float32), np.full(c, 0.25, np.float32))
    ro = x.copy()
    ro.flags.writeable = False
    return [
        (lambda: fastact.affine_prelu(x.astype(np.int32), *good), TypeError, "x"),
        (lambda: fastact.affine_prelu(x, np.ones(c + 1), *good[1:], out=out), ValueError,
         "scale has 4 values but x has 3 channels"),
        (lambda: fastact.affine_prelu(x, good[0], np.ones(2), good[2], out=out), ValueError,
         "shift has 2 values"),
        (lambda: fastact.affine_prelu(x, *good[:2], np.ones((3, 1)), out=out), ValueError,
         "slopes has shape (3, 1)"),
        (lambda: fastact.affine_prelu(x, np.array([1.0, np.nan, 1.0]), *good[1:], out=out),
         ValueError, "scale must be finite, got nan at index 1"),
        (lambda: fastact.affine_prelu(x, good[0], np.inf, good[2], out=out), ValueError,
         "shift must be finite"),
        (lambda: fastact.affine_prelu(x, *good[:2], [1, 2, 3], out=out), TypeError,
         "slopes has dtype int"),
        (lambda: fastact.affine_prelu(x, True, *good[1:], out=out), TypeError, "scale"),
        (lambda: fastact.affine_prelu(x, *good, out=np.zeros((2, 3), np.float32)),
         ValueError, "out has shape"),
        (lambda: fastact.affine_prelu(x, *good, out=out.astype(np.float64)), ValueError,
         "out has dtype"),
        (lambda: fastact.affine_prelu(x, *good, out=out, inplace=True), ValueError,
         "either out= or inplace=True"),
        (lambda: fastact.affine_prelu(ro, *good, inplace=True), ValueError, "read-only"),
        (lambda: fastact.affine_prelu(x, *good, channel_axis=2, out=out), ValueError,
         "channel_axis"),
        (lambda: fastact.affine_prelu(x, *good, channel_axis=True, out=out), TypeError,
         "channel_axis"),
        (lambda: fastact.affine_prelu(x.reshape(-1), *good), ValueError,
         "per-channel values need x of shape"),
        (lambda: fastact.affine_prelu([[1.0, 2.0]], *good, inplace=True), TypeError,
         "inplace=True needs x"),
    ]


def test_errors_name_the_argument_and_write_nothing(rng):
    x = random_x(rng, (2, 3, 4, 5), np.float32)
    out = poisoned_like(x)
    x_before, out_before = x.copy(), out.copy()
    for call, exc, words in _bad_calls(x, out):
        with pytest.raises(exc, match=None) as info:
            call()
        assert words in str(info.value), (words, str(info.value))
        assert_same(x, x_before)
        assert_same(out, out_before)


def test_partial_overlap_is_refused(rng):
    buf = random_x(rng, (2 * 3 * 4 * 5 + 1,), np.float32)
    x = buf[:-1].reshape(2, 3, 4, 5)
    out = buf[1:].reshape(2, 3, 4, 5)
    before = buf.copy()
    with pytest.raises(ValueError, match="out overlaps x partially"):
        fastact.affine_prelu(x, 1.0, 0.0, 0.25, out=out)
    assert_same(buf, before)


@pytest.mark.parametrize("inner", [6, 100])
@pytest.mark.parametrize("which", [0, 1, 2])
@pytest.mark.parametrize("mode", ["out", "inplace"])
def test_parameters_inside_the_output_are_read_first(rng, inner, which, mode):
    """scale, shift or slopes a view of the array the result goes to (the
    per-channel vectors the kernels read as they are): the values they had
    before the call are the ones used."""
    c = 4
    shape = (2, c, inner)
    buf = random_x(rng, (2 * c * inner,), np.float32)
    x = buf.reshape(shape) if mode == "inplace" else random_x(rng, shape, np.float32)
    params = list(_params(rng, c, np.float32))
    buf[:c] = params[which]
    params[which] = buf[:c]
    want = expected(x.copy(), *[p.copy() for p in params])
    if mode == "out":
        y = fastact.affine_prelu(x, *params, out=buf.reshape(shape))
    else:
        y = fastact.affine_prelu(x, *params, inplace=True)
    assert_same(y, want)


def test_bfloat16_needs_no_special_call(rng):
    if BFLOAT16 is None:
        pytest.skip("ml_dtypes is not installed")
    x = random_x(rng, (2, 4, 9, 9), BFLOAT16)
    params = _params(rng, 4, np.float32)
    assert_same(fastact.affine_prelu(x, *params), expected(x, *params))


# --- batchnorm_scale_shift ------------------------------------------------------------

def test_batchnorm_scale_shift_worked_example():
    scale, shift = fastact.batchnorm_scale_shift(
        np.array([1.0, -2.0]), np.array([4.0, 0.25]), eps=0.0,
        weight=np.array([2.0, 1.0]), bias=np.array([0.5, 0.0]))
    assert scale.dtype == np.float64
    np.testing.assert_array_equal(scale, [1.0, 2.0])
    np.testing.assert_array_equal(shift, [-0.5, 4.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_scale_shift_against_float64(rng, dtype, affine):
    c = 37
    mean = rng.standard_normal(c).astype(dtype)
    var = rng.uniform(0.01, 4.0, c).astype(dtype)
    w = rng.standard_normal(c).astype(dtype) if affine else None
    b = rng.standard_normal(c).astype(dtype) if affine else None
    scale, shift = fastact.batchnorm_scale_shift(mean, var, 1e-3, w, b)
    cdt = compute_dtype(dtype)
    assert scale.dtype == cdt and shift.dtype == cdt and scale.shape == (c,)
    rs, rb = _reference.batchnorm_scale_shift(mean, var, 1e-3, w, b)
    eps = np.finfo(cdt).eps
    # a few roundings of the compute dtype: sqrt, 1/, *, and shift's * and -
    np.testing.assert_allclose(scale, rs, rtol=4 * eps, atol=0)
    np.testing.assert_allclose(shift, rb, rtol=0,
                               atol=8 * eps * (np.abs(rb) + np.abs(mean * rs)).max())


def test_batchnorm_scale_shift_errors():
    with pytest.raises(ValueError, match="running_mean has shape"):
        fastact.batchnorm_scale_shift(np.zeros(3), np.ones(4))
    with pytest.raises(ValueError, match="running_var must be finite"):
        fastact.batchnorm_scale_shift(np.zeros(2), np.array([1.0, np.inf]))
    with pytest.raises(ValueError, match="weight has shape"):
        fastact.batchnorm_scale_shift(np.zeros(2), np.ones(2), weight=np.ones(3))
    with pytest.raises(TypeError, match="eps"):
        fastact.batchnorm_scale_shift(np.zeros(2), np.ones(2), eps="1")
    with pytest.raises(TypeError, match="bias has dtype"):
        fastact.batchnorm_scale_shift(np.zeros(2), np.ones(2), bias=np.ones(2, np.int64))


def test_batchnorm_then_affine_prelu_is_the_unfused_pair(rng):
    """The helper's terms through the fused kernel equal BatchNorm's formula
    (float64 oracle) then PReLU, within float32 rounding."""
    c = 8
    x = random_x(rng, (3, c, 11, 13), np.float32)
    mean = rng.standard_normal(c).astype(np.float32)
    var = rng.uniform(0.1, 3.0, c).astype(np.float32)
    w = rng.standard_normal(c).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    slopes = random_slopes(rng, c, np.float32)
    y = fastact.affine_prelu(x, *fastact.batchnorm_scale_shift(mean, var, 1e-5, w, b), slopes)
    bn = ((x.astype(np.float64) - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
          * w[:, None, None] + b[:, None, None])
    want = _reference.prelu(bn, slopes.astype(np.float64))
    # float32 rounds x * scale, the sum, and shift = bias - mean * scale
    # itself: its error scales with |mean * scale| + |bias|, which can be far
    # above |shift| (they cancel) and above x's terms
    scale = (w / np.sqrt(var + 1e-5)).astype(np.float64)
    mag = (np.abs(x.astype(np.float64) * scale[:, None, None]) + np.abs(bn)
           + (np.abs(mean * scale) + np.abs(b))[:, None, None])
    tol = 8 * np.finfo(np.float32).eps * mag * np.maximum(1, np.abs(slopes)).max()
    assert (np.abs(y - want) <= tol).all()
