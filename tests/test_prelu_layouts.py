"""PReLU in every dtype, channels-last (channel_axis=-1) and with slopes that
broadcast to x.shape[1:] (Keras's PReLU), against the float64 oracle."""
import numpy as np
import pytest

import fastact
from fastact import _cpu, _reference

from helpers import (
    ALL_DTYPES,
    as_bits,
    assert_grad_slopes_close,
    compute_dtype,
    poisoned_like,
    random_x,
)


def _same(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    nan = np.isnan(want.astype(np.float64))
    assert (np.isnan(got.astype(np.float64)) == nan).all()
    assert (as_bits(got)[~nan] == as_bits(want)[~nan]).all()


def _slopes(rng, shape, dtype):
    s = np.where(rng.random(shape) < 0.5, rng.choice([0.0, -0.5, 1.0, 1.205321, 3.5], shape),
                 rng.uniform(-3, 3, shape))
    return s.astype(compute_dtype(dtype))


def _expected(x, slopes, channel_axis):
    """The oracle on x and slopes as the kernels hold them, rounded to the
    compute type and then to x's dtype."""
    y = _reference.prelu(x.astype(np.float64), slopes, channel_axis)
    return y.astype(compute_dtype(x.dtype)).astype(x.dtype)


# (x shape, slopes shape, channel_axis)
LAYOUTS = [
    ((2, 3, 5, 7), (3,), 1),                # NCHW per channel (tiles)
    ((2, 3, 9, 10), (3,), 1),               # NCHW, planes
    ((1, 2, 40000), (2,), 1),               # planes of several segments
    ((2, 5, 7, 3), (3,), -1),               # NHWC per channel
    ((64, 10, 10, 3), (3,), -1),            # many short rows: the repeated-slope tiles
    ((4, 9, 9, 64), (64,), -1),
    ((3, 7, 2000), (2000,), -1),            # rows wider than a tile
    ((2, 3, 5, 7), (), 1),                  # shared
    ((2, 3, 5, 7), (1,), -1),
    ((2, 3, 5, 7), (3, 5, 7), 1),           # one slope per element (Keras's default)
    ((2, 5, 7, 3), (1, 1, 3), 1),           # Keras NHWC, shared_axes=[1, 2]
    ((2, 3, 5, 7), (3, 1, 1), 1),           # Keras NCHW, shared_axes=[2, 3]
    ((2, 3, 5, 7), (5, 1), 1),              # broadcast from the right
    ((2, 3, 5, 7), (3, 1, 7), 1),           # varying dims not adjacent
    ((2, 3, 5, 7), (1, 1, 1), 1),           # size one with dims: shared
    ((4, 6), (6,), -1),
    ((2, 0, 5), (5,), -1),                  # empty
]
IDS = [f"{x}-{s}-{a}" for x, s, a in LAYOUTS]


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("xshape,sshape,axis", LAYOUTS, ids=IDS)
def test_forward(rng, xshape, sshape, axis, dtype):
    x = random_x(rng, xshape, np.float32).astype(dtype)
    s = _slopes(rng, sshape, dtype)
    want = _expected(x, s, axis)
    _same(fastact.prelu(x, s, channel_axis=axis), want)
    out = poisoned_like(x)
    assert fastact.prelu(x, s, out=out, channel_axis=axis) is out
    _same(out, want)
    xc = x.copy()
    assert fastact.prelu(xc, s, inplace=True, channel_axis=axis) is xc
    _same(xc, want)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("xshape,sshape,axis", LAYOUTS, ids=IDS)
def test_backward(rng, xshape, sshape, axis, dtype):
    x = random_x(rng, xshape, np.float32).astype(dtype)
    g = random_x(rng, xshape, np.float32).astype(dtype)
    s = _slopes(rng, sshape, dtype)
    gi_ref, gs_ref = _reference.prelu_backward(g.astype(np.float64), x.astype(np.float64),
                                               s, axis)
    want = gi_ref.astype(compute_dtype(dtype)).astype(dtype)
    for mode in ("new", "out", "inplace"):
        if mode == "new":
            gi, gs = fastact.prelu_backward(g, x, s, channel_axis=axis)
        elif mode == "out":
            out = poisoned_like(g)
            gi, gs = fastact.prelu_backward(g, x, s, out=out, channel_axis=axis)
            assert gi is out
        else:
            gc = g.copy()
            gi, gs = fastact.prelu_backward(gc, x, s, inplace=True, channel_axis=axis)
            assert gi is gc
        _same(gi, want)
        assert gs.shape == s.shape
        assert gs.dtype == compute_dtype(dtype)     # float32 for float16 and bfloat16
        assert_grad_slopes_close(gs, gs_ref, g.astype(np.float64), x.astype(np.float64),
                                 compute_dtype(dtype))


def test_nhwc_is_nchw_transposed(rng):
    x = random_x(rng, (3, 8, 9, 10), np.float32)           # NCHW
    g = random_x(rng, x.shape, np.float32)
    s = _slopes(rng, (8,), np.float32)
    nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    gnhwc = np.ascontiguousarray(g.transpose(0, 2, 3, 1))
    _same(fastact.prelu(nhwc, s, channel_axis=-1), fastact.prelu(x, s).transpose(0, 2, 3, 1))
    _same(fastact.prelu(x, s), _expected(x, s, 1))      # and both are right
    gi1, gs1 = fastact.prelu_backward(gnhwc, nhwc, s, channel_axis=-1)
    gi2, gs2 = fastact.prelu_backward(g, x, s)
    _same(gi1, np.ascontiguousarray(gi2.transpose(0, 2, 3, 1)))
    np.testing.assert_allclose(gs1, gs2, rtol=1e-6)


@pytest.mark.parametrize("shape,sshape,axis", [((64, 30, 30, 3), (3,), -1),
                                              ((16, 28, 28, 64), (64,), -1),
                                              ((8, 16, 30, 30), (16, 30, 30), 1)])
def test_grad_slopes_bitwise_for_any_thread_count(rng, shape, sshape, axis):
    if not fastact.config()["openmp"]:
        pytest.skip("serial build")
    x = random_x(rng, shape, np.float32)
    g = random_x(rng, shape, np.float32)
    s = _slopes(rng, sshape, np.float32)
    results = []
    try:
        for n in (1, 2, 3):
            fastact.set_num_threads(n)
            results.append(fastact.prelu_backward(g, x, s, channel_axis=axis))
    finally:
        fastact.set_num_threads(None)
    for gi, gs in results[1:]:
        _same(gi, results[0][0])
        _same(gs, results[0][1])


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_every_isa_gives_bitwise_the_same(rng, dtype):
    x = random_x(rng, (4, 12, 12, 5), np.float32).astype(dtype)
    g = random_x(rng, x.shape, np.float32).astype(dtype)
    s = _slopes(rng, (5,), dtype)
    before = _cpu.get_isa()
    res = []
    try:
        for isa in _cpu.supported_isas():
            _cpu.set_isa(isa)
            res.append((fastact.prelu(x, s, channel_axis=-1),
                        *fastact.prelu_backward(g, x, s, channel_axis=-1)))
    finally:
        _cpu.set_isa(before)
    for r in res[1:]:
        for a, b in zip(r, res[0]):
            _same(a, b)


@pytest.mark.parametrize("sshape,axis,match", [
    ((4,), -1, "slopes has 4 values but x has 5 channels"),
    ((3,), 1, "slopes has 3 values but x has 2 channels"),
    ((2, 3, 4, 5), 1, "does not broadcast"),
    ((4, 1), 1, "does not broadcast"),
    ((2,), 0, "channel_axis must be 1"),
    ((2,), 2, "channel_axis must be 1"),
])
def test_slopes_that_do_not_fit_write_nothing(rng, sshape, axis, match):
    x = random_x(rng, (2, 2, 3, 5), np.float32)
    before = x.copy()
    s = np.full(sshape, 0.5, np.float32)
    with pytest.raises(ValueError, match=match):
        fastact.prelu(x, s, inplace=True, channel_axis=axis)
    with pytest.raises(ValueError, match=match):
        fastact.prelu_backward(x, x.copy(), s, inplace=True, channel_axis=axis)
    assert (as_bits(x) == as_bits(before)).all()


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("xshape,axis", [((2, 3, 20001), 1), ((7000, 5), -1)])
def test_streaming_stores_give_the_same_results(rng, dtype, xshape, axis):
    x = random_x(rng, xshape, np.float32).astype(dtype)
    g = random_x(rng, xshape, np.float32).astype(dtype)
    s = _slopes(rng, (xshape[axis],), dtype)
    y = fastact.prelu(x, s, channel_axis=axis)
    gi, gs = fastact.prelu_backward(g, x, s, channel_axis=axis)
    try:
        _cpu.set_streaming_threshold(0)
        for offset in range(3):                      # misaligned outputs too
            xo, go = x[offset:], g[offset:]
            out = poisoned_like(xo)
            _same(fastact.prelu(xo, s, out=out, channel_axis=axis), y[offset:])
            out = poisoned_like(xo)
            gio, gso = fastact.prelu_backward(go, xo, s, out=out, channel_axis=axis)
            _same(gio, gi[offset:])
        out = poisoned_like(x)
        _same(fastact.prelu_backward(g, x, s, out=out, channel_axis=axis)[1], gs)
    finally:
        _cpu.set_streaming_threshold(None)
