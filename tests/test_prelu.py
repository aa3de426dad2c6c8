"""PReLU forward and backward against the float64 oracle (fastact._reference)."""
import numpy as np
import pytest

import fastact
from fastact import _cpu, _reference

from helpers import (
    ALL_DTYPES,
    DTYPES,
    assert_grad_slopes_close,
    assert_prelu_backward,
    expected_backward,
    expected_forward,
    poisoned_like,
    random_slopes,
    random_x,
)

# (N, C, *spatial): NC, NCL, NCHW, NCDHW; odd sizes; shapes for both work
# layouts (planes when H*W >= 64, tiles below), several segments per plane,
# several column tiles (C * inner > 1024) and row blocks, the forward's
# groups of small planes (a partial last group; a call large enough for
# threads).
SHAPES = [
    (2, 3), (7, 5), (1, 1), (3, 2, 5), (2, 3, 7, 9), (1, 16, 8, 8),
    (2, 3, 4, 5, 6), (3, 5, 17, 13), (2, 3, 20001), (5000, 3),
    (3, 2000, 1), (4, 700, 3), (1, 64, 56, 56), (9, 31, 65), (2, 256, 14, 14), (4, 300, 7, 7),
]


def _modes():
    return ["new", "out", "inplace", "out_is_x"]


def _run_forward(x, slopes, mode):
    if mode == "new":
        return fastact.prelu(x, slopes)
    if mode == "out":
        out = poisoned_like(x)
        y = fastact.prelu(x, slopes, out=out)
        assert y is out
        return y
    if mode == "inplace":
        y = fastact.prelu(x, slopes, inplace=True)
        assert y is x
        return y
    y = fastact.prelu(x, slopes, out=x)
    assert y is x
    return y


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", _modes())
def test_forward_per_channel(rng, shape, dtype, mode):
    x = random_x(rng, shape, dtype)
    slopes = random_slopes(rng, shape[1], dtype)
    expected = expected_forward(x, slopes)
    x_before = x.copy()
    y = _run_forward(x, slopes, mode)
    assert y.dtype == dtype and y.shape == shape
    np.testing.assert_array_equal(y, expected)
    if mode in ("new", "out"):
        np.testing.assert_array_equal(x, x_before)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (1,), (17,), (3, 5), (2, 3, 7, 9), (3, 20001), (4, 1, 31)])
@pytest.mark.parametrize("slope", [0.0, -0.5, 1.205321, 3.0, 0.25])
@pytest.mark.parametrize("form", ["float", "one_value", "zero_d"])
def test_forward_shared(rng, shape, dtype, slope, form):
    x = random_x(rng, shape, dtype)
    slopes = {"float": slope, "one_value": np.array([slope]),
              "zero_d": np.array(slope, dtype=dtype)}[form]
    np.testing.assert_array_equal(fastact.prelu(x, slopes),
                                  expected_forward(x, np.asarray(slope, dtype)))
    out = poisoned_like(x)
    fastact.prelu(x, slopes, out=out)
    np.testing.assert_array_equal(out, expected_forward(x, np.asarray(slope, dtype)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", ["new", "out", "inplace"])
def test_backward_per_channel(rng, shape, dtype, mode):
    x = random_x(rng, shape, dtype)
    g = rng.standard_normal(shape).astype(dtype)
    slopes = random_slopes(rng, shape[1], dtype)
    gi_ref, gs_ref = expected_backward(g, x, slopes)
    g_before, x_before = g.copy(), x.copy()
    if mode == "new":
        gi, gs = fastact.prelu_backward(g, x, slopes)
    elif mode == "out":
        out = poisoned_like(x)
        gi, gs = fastact.prelu_backward(g, x, slopes, out=out)
        assert gi is out
    else:
        gi, gs = fastact.prelu_backward(g, x, slopes, inplace=True)
        assert gi is g
    np.testing.assert_array_equal(gi, gi_ref)
    assert gs.dtype == dtype and gs.shape == slopes.shape
    assert_grad_slopes_close(gs, gs_ref, g_before, x_before, dtype)
    np.testing.assert_array_equal(x, x_before)
    if mode != "inplace":
        np.testing.assert_array_equal(g, g_before)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (5,), (3, 5), (2, 3, 7, 9), (3, 20001)])
def test_backward_shared(rng, shape, dtype):
    x = random_x(rng, shape, dtype)
    g = rng.standard_normal(shape).astype(dtype)
    for slopes in (0.3, np.array([-1.5], dtype), np.array(2.0)):
        gi, gs = fastact.prelu_backward(g, x, slopes)
        assert_prelu_backward(gi, gs, g, x, slopes, dtype)


def test_seed_example():
    x = np.array([[-0.9] * 3, [1.1] * 3], dtype=np.float32)
    y = fastact.prelu(x, 1.205321)
    np.testing.assert_array_equal(
        y, np.array([[-1.0847888] * 3, [1.1] * 3], dtype=np.float32))
    # the max(a*x, x) shortcut would give 1.3258531 for 1.1
    assert not np.any(np.isclose(y, 1.3258531))


def test_puzzlelib_example():
    np.random.seed(1234)
    x = np.random.randint(-9, 9, (1, 3, 5, 5)).astype(np.float32)
    slopes = np.array([0.5, 0, 0.25], dtype=np.float32)
    expected = np.where(x > 0, x, slopes.reshape(1, 3, 1, 1) * x)  # PuzzleLib's host check
    np.testing.assert_array_equal(fastact.prelu(x, slopes), expected)
    g = np.random.randn(1, 3, 5, 5).astype(np.float32)
    gi, gs = fastact.prelu_backward(g, x, slopes)
    np.testing.assert_array_equal(gi, np.where(x > 0, g, slopes.reshape(1, 3, 1, 1) * g))
    ref = np.sum(np.where(x > 0, 0, x.astype(np.float64) * g), axis=(0, 2, 3))
    np.testing.assert_allclose(gs, ref, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values(dtype):
    x = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1.0, -1.0, 1e-30], dtype=dtype)
    for slope in (0.5, -0.5, 0.0, 2.0):
        y = fastact.prelu(x, slope)
        a = dtype(slope)
        assert np.isnan(y[0])
        assert y[1] == np.inf
        if slope == 0.0:
            assert np.isnan(y[2])            # 0 * -inf, as in torch's prelu
        else:
            assert y[2] == -np.inf * np.sign(slope)
        # -0.0 becomes slope * -0.0; +0.0 becomes slope * +0.0
        assert y[3] == 0 and np.signbit(y[3]) == np.signbit(a * dtype(-0.0))
        assert y[4] == 0 and np.signbit(y[4]) == np.signbit(a * dtype(0.0))
        assert y[5] == 1.0 and y[6] == -a and y[7] == dtype(1e-30)


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values_backward(dtype):
    # channel 0 holds a NaN: its slope gradient is NaN, the others are not
    x = np.array([[[np.nan, -1.0, 2.0], [0.0, -0.0, -3.0], [np.inf, -np.inf, 1.0]]], dtype=dtype)
    g = np.array([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]], dtype=dtype)
    slopes = np.array([0.5, -2.0, 0.25], dtype=dtype)
    gi, gs = fastact.prelu_backward(g, x, slopes)
    np.testing.assert_array_equal(
        gi, np.array([[[0.5, 1.0, 3.0], [-8.0, -10.0, -12.0], [7.0, 2.0, 9.0]]], dtype=dtype))
    assert np.isnan(gs[0])
    assert gs[1] == dtype(-18.0)         # 0*4 + -0*5 + -3*6; x == 0 adds 0
    assert gs[2] == -np.inf              # -inf * 8


@pytest.mark.parametrize("shape", [(3, 4, 5, 6), (6, 7), (2, 3, 100)])
def test_gradients_match_finite_differences(rng, shape):
    """d/dx and d/dslopes of L = sum(w * prelu(x, slopes)) by central differences."""
    x = rng.standard_normal(shape)
    x[np.abs(x) < 1e-3] = 0.5          # keep the kink out of every stencil
    w = rng.standard_normal(shape)
    slopes = rng.uniform(-2, 2, shape[1])
    gi, gs = fastact.prelu_backward(w, x, slopes)

    def loss(xx, ss):
        return np.sum(w * _reference.prelu(xx, ss))

    h = 1e-6
    for c in range(shape[1]):
        e = np.zeros_like(slopes)
        e[c] = h
        fd = (loss(x, slopes + e) - loss(x, slopes - e)) / (2 * h)
        np.testing.assert_allclose(gs[c], fd, rtol=1e-6, atol=1e-6)
    for idx in [tuple(rng.integers(0, n) for n in shape) for _ in range(20)]:
        e = np.zeros_like(x)
        e[idx] = h
        fd = (loss(x + e, slopes) - loss(x - e, slopes)) / (2 * h)
        np.testing.assert_allclose(gi[idx], fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("make_view", [
    lambda a: a[:, :, ::2],                         # strided
    lambda a: a[:, :, ::-1],                        # negative stride
    lambda a: a.transpose(0, 1, 3, 2),              # transposed spatial dims
    lambda a: np.asfortranarray(a),                 # Fortran order
    lambda a: a.astype(a.dtype.newbyteorder(">")),  # byte-swapped
], ids=["strided", "reversed", "transposed", "fortran", "byteswapped"])
def test_non_contiguous_inputs(rng, dtype, make_view):
    base = random_x(rng, (3, 4, 10, 9), dtype)
    x = make_view(base)
    slopes = random_slopes(rng, 4, dtype)
    g = make_view(rng.standard_normal(base.shape).astype(dtype))
    expected = expected_forward(np.ascontiguousarray(x), slopes)
    np.testing.assert_array_equal(fastact.prelu(x, slopes), expected)
    gi_ref, gs_ref = expected_backward(g, x, slopes)
    gi, gs = fastact.prelu_backward(g, x, slopes)
    np.testing.assert_array_equal(gi, gi_ref)
    assert_grad_slopes_close(gs, gs_ref, g, x, dtype)
    # in place on a view writes the right elements, and only those
    if x.dtype.isnative:
        before = base.copy()
        view = make_view(base)
        if np.shares_memory(view, base):
            fastact.prelu(view, slopes, inplace=True)
            np.testing.assert_array_equal(view, expected)
            untouched = np.ones(base.shape, bool)
            make_view(untouched)[...] = False
            np.testing.assert_array_equal(base[untouched], before[untouched])


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_out(rng, dtype):
    x = random_x(rng, (2, 3, 8, 6), dtype)
    slopes = random_slopes(rng, 3, dtype)
    big = poisoned_like(np.empty((2, 3, 8, 12), dtype))
    out = big[..., ::2]
    y = fastact.prelu(x, slopes, out=out)
    assert y is out
    np.testing.assert_array_equal(out, expected_forward(x, slopes))
    np.testing.assert_array_equal(big[..., 1::2], poisoned_like(out))
    g = rng.standard_normal(x.shape).astype(dtype)
    gi, _ = fastact.prelu_backward(g, x, slopes, out=out)
    np.testing.assert_array_equal(gi, expected_backward(g, x, slopes)[0])


def test_unaligned_arrays(rng):
    values = random_x(rng, (1, 3, 50), np.float32)
    slopes = random_slopes(rng, 3, np.float32)
    unaligned = np.ndarray((1, 3, 50), np.float32, buffer=bytearray(4 * 150 + 1), offset=1)
    assert not unaligned.flags.aligned
    unaligned[...] = values
    np.testing.assert_array_equal(fastact.prelu(unaligned, slopes),
                                  expected_forward(values, slopes))
    fastact.prelu(unaligned, slopes, inplace=True)
    np.testing.assert_array_equal(unaligned, expected_forward(values, slopes))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(0, 3, 4), (2, 0, 5), (2, 3, 0), (0,), (0, 0)])
def test_empty(shape, dtype):
    x = np.empty(shape, dtype=dtype)
    channels = shape[1] if len(shape) > 1 else 1
    slopes = np.full(channels, 0.5, dtype) if len(shape) > 1 else 0.5
    y = fastact.prelu(x, slopes)
    assert y.shape == shape and y.dtype == dtype
    gi, gs = fastact.prelu_backward(x, x.copy(), slopes)
    assert gi.shape == shape
    np.testing.assert_array_equal(gs, np.zeros(np.shape(slopes), dtype))
    assert fastact.prelu(x, slopes, inplace=True) is x


@pytest.mark.parametrize("dtype", DTYPES)
def test_slopes_of_another_float_dtype_are_cast(rng, dtype):
    x = random_x(rng, (2, 3, 5), dtype)
    for sdtype in (np.float16, np.float32, np.float64):
        slopes = np.array([0.5, -1.25, 3.0], dtype=sdtype)
        np.testing.assert_array_equal(fastact.prelu(x, slopes),
                                      expected_forward(x, slopes.astype(dtype)))
    np.testing.assert_array_equal(fastact.prelu(x, [0.5, -1.25, 3.0]),
                                  expected_forward(x, np.array([0.5, -1.25, 3.0], dtype)))
    np.testing.assert_array_equal(fastact.prelu(x, 2), expected_forward(x, np.array(2.0, dtype)))


def test_array_likes():
    y = fastact.prelu([[-1.0, 2.0], [3.0, -4.0]], [0.5, 0.25])
    np.testing.assert_array_equal(y, [[-0.5, 2.0], [3.0, -1.0]])
    gi, gs = fastact.prelu_backward([[1.0, 1.0]], [[-1.0, 2.0]], [0.5, 0.25])
    np.testing.assert_array_equal(gi, [[0.5, 1.0]])
    np.testing.assert_array_equal(gs, [-1.0, 0.0])


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_streaming_stores_give_the_same_results(rng, dtype):
    """Streaming stores peel a head to the next cache line and stream whole
    blocks: force them on small arrays at every alignment, and check the
    slope gradient is bitwise the one of ordinary stores."""
    shape = (2, 3, 5000)
    x = random_x(rng, shape, dtype)
    g = rng.standard_normal(shape).astype(dtype)
    slopes = random_slopes(rng, 3, dtype)
    plain_gi, plain_gs = fastact.prelu_backward(g, x, slopes)
    try:
        _cpu.set_streaming_threshold(0)
        for shift in range(0, 17):
            buf = poisoned_like(np.empty(x.size + 16, dtype))
            out = buf[shift:shift + x.size].reshape(shape)
            fastact.prelu(x, slopes, out=out)
            np.testing.assert_array_equal(out, expected_forward(x, slopes))
            gi, gs = fastact.prelu_backward(g, x, slopes, out=out)
            np.testing.assert_array_equal(gi, plain_gi)
            np.testing.assert_array_equal(gs, plain_gs)
            np.testing.assert_array_equal(buf[:shift], poisoned_like(buf[:shift]))
            np.testing.assert_array_equal(buf[shift + x.size:], poisoned_like(buf[shift + x.size:]))
    finally:
        _cpu.set_streaming_threshold(None)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_isa_gives_bitwise_the_same(rng, dtype):
    shape = (3, 5, 1000)
    x = random_x(rng, shape, dtype)
    g = rng.standard_normal(shape).astype(dtype)
    slopes = random_slopes(rng, 5, dtype)
    small = (7, 9, 3)     # the tile layout's vector kernels
    xs, gsm = random_x(rng, small, dtype), rng.standard_normal(small).astype(dtype)
    slopes_small = random_slopes(rng, 9, dtype)
    results = {}
    active = _cpu.get_isa()
    try:
        for isa in _cpu.supported_isas():
            _cpu.set_isa(isa)
            results[isa] = (fastact.prelu(x, slopes), *fastact.prelu_backward(g, x, slopes),
                            fastact.prelu(xs, slopes_small),
                            *fastact.prelu_backward(gsm, xs, slopes_small))
    finally:
        _cpu.set_isa(active)
    first = next(iter(results.values()))
    for isa, r in results.items():
        for a, b in zip(first, r):
            np.testing.assert_array_equal(a, b, err_msg=isa)


def test_isa_selection():
    assert "baseline" in _cpu.supported_isas()
    with pytest.raises(ValueError, match=r"ISA .sse9. is unknown \(expected one of baseline"):
        _cpu.set_isa("sse9")
    assert fastact.config()["isa"] in _cpu.supported_isas()


@pytest.mark.parametrize("dtype", DTYPES)
def test_slopes_inside_the_output(rng, dtype):
    """Slopes that are a (contiguous) view of the array being written are
    read before anything is written.  They sit in the first plane, which is
    written first, and are negative on negative elements, so writing that
    plane changes them before the other planes would read them."""
    shape = (2, 3, 64)
    where = (0, 0, slice(0, 3))
    x = random_x(rng, shape, dtype)
    x[where] = [-0.5, -1.5, -2.0]
    slopes = x[where].copy()
    expected = expected_forward(x, slopes)
    fastact.prelu(x, x[where], inplace=True)
    np.testing.assert_array_equal(x, expected)

    g = rng.standard_normal(shape).astype(dtype)
    g[where] = [-0.5, -1.5, -2.0]
    x2 = random_x(rng, shape, dtype)
    x2[where] = -1.0
    slopes = g[where].copy()
    gi_ref, _ = expected_backward(g, x2, slopes)
    fastact.prelu_backward(g, x2, g[where], inplace=True)
    np.testing.assert_array_equal(g, gi_ref)
