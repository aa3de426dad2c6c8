"""Property tests: fastact against the float64 oracle on drawn shapes, dtypes,
values (NaN, +-inf, +-0.0, subnormals), slopes and memory layouts.

Results are compared bit for bit (a NaN only has to be a NaN), so -0.0 and
+0.0 are told apart; the slope gradient is compared with
helpers.assert_grad_slopes_close where that applies.
"""
import contextlib
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import fastact
from fastact import _cpu

from helpers import assert_grad_slopes_close, poisoned_like
from helpers import expected_backward as _expected_backward
from helpers import expected_forward as _expected_forward
from strategies import (
    any_shapes,
    arrays,
    dtypes,
    isas,
    layouts,
    shapes,
    shared_slopes,
    slopes_for,
    views,
)

_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def expected_forward(x, slopes):
    with np.errstate(all="ignore"):     # 0 * inf and friends are expected here
        return _expected_forward(x, slopes)


def expected_backward(g, x, slopes):
    with np.errstate(all="ignore"):
        return _expected_backward(g, x, slopes)


# --- comparisons ------------------------------------------------------------------

def assert_bitwise_equal(got, expected, what="result"):
    """Same shape and dtype, NaN where expected has NaN, and every other
    element bit for bit (so the sign of a zero counts)."""
    got = np.asarray(got)
    expected = np.asarray(expected)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    assert got.dtype == expected.dtype, f"{what}: dtype {got.dtype} != {expected.dtype}"
    got_nan, exp_nan = np.isnan(got), np.isnan(expected)
    uint = _UINT[got.dtype.itemsize]
    gbits = np.ascontiguousarray(got).view(uint)
    ebits = np.ascontiguousarray(expected).view(uint)
    bad = (got_nan != exp_nan) | (~exp_nan & (gbits != ebits))
    if bad.any():
        idx = np.argwhere(bad)[:5]
        detail = ", ".join(f"{tuple(int(i) for i in ix)}: got {got[tuple(ix)]!r} "
                           f"expected {expected[tuple(ix)]!r}" for ix in idx)
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.size} elements differ: {detail}")


def assert_unchanged(after, before, what):
    assert_bitwise_equal(after, before, what)


def check_grad_slopes(gs, ref, g, x, slopes, dtype):
    """grad_slopes against the float64 oracle, slot by slot (one per channel,
    or one for a shared slope), each with its own inputs:

    - a non-finite oracle value (a NaN, or an inf with no NaN and no inf of
      the other sign) comes out whatever the summation order: exact match;
    - a finite one is replaced by math.fsum of the oracle's float64 terms
      (the correctly rounded sum): numpy's own sum is not exact, and over
      axes that are not contiguous it adds sequentially, which on drawn data
      (one large term, then hundreds of tiny ones) strays by more than the
      tolerance by itself;
    - float32 sums that fall outside float32's normal range (they underflow
      to a subnormal or overflow to inf when rounded) may be any rounding to
      float32 of a value within assert_grad_slopes_close's summation-order
      tolerance;
    - everything else goes through helpers.assert_grad_slopes_close.
    """
    assert isinstance(gs, np.ndarray)
    assert gs.dtype == dtype, f"grad_slopes dtype {gs.dtype} != {np.dtype(dtype)}"
    assert gs.shape == np.shape(slopes), f"grad_slopes shape {gs.shape} != {np.shape(slopes)}"
    ref = np.asarray(ref, dtype=np.float64)
    assert ref.shape == gs.shape
    x64 = np.asarray(x, dtype=np.float64)
    g64 = np.asarray(g, dtype=np.float64)
    if np.size(slopes) == 1:
        slots = [(x64, g64)]
    else:
        slots = [(x64[:, c], g64[:, c]) for c in range(x64.shape[1])]
    got_flat, ref_flat = gs.reshape(-1), ref.reshape(-1)
    fi = np.finfo(dtype)
    for c, (xs, gsub) in enumerate(slots):
        got, r = got_flat[c], ref_flat[c]
        if np.isfinite(r):
            with np.errstate(all="ignore"):
                r = np.float64(math.fsum(np.where(xs > 0, 0.0, xs * gsub).ravel().tolist()))
        if not np.isfinite(r):
            if np.isnan(r):
                assert np.isnan(got), f"grad_slopes[{c}] = {got!r}, expected NaN"
            else:
                assert got == r, f"grad_slopes[{c}] = {got!r}, expected {r!r}"
        elif dtype == np.float32 and not (fi.tiny <= abs(r) <= fi.max):
            with np.errstate(all="ignore"):
                terms = np.abs(np.where(xs > 0, 0.0, xs * gsub))
            tol = 64 * np.finfo(np.float64).eps * (np.nansum(terms) + 1e-300)
            with np.errstate(over="ignore"):
                lo, hi = np.float32(r - tol), np.float32(r + tol)
            assert lo <= got <= hi, (f"grad_slopes[{c}] = {got!r}, expected the float32 "
                                     f"rounding of {r!r} +- {tol!r}")
        else:
            with np.errstate(all="ignore"):
                assert_grad_slopes_close(got, r, gsub, xs, dtype)


def _copy_slopes(slopes):
    return slopes.copy() if isinstance(slopes, np.ndarray) else slopes


def _assert_slopes_unchanged(slopes, before):
    if isinstance(slopes, np.ndarray):
        assert_unchanged(slopes, before, "slopes")


@contextlib.contextmanager
def kernel_config(isa, streaming):
    """Run with the given ISA's kernels and, if streaming, streaming stores for
    every output size (they peel a head to a cache line: other code paths)."""
    active = _cpu.get_isa()
    try:
        _cpu.set_isa(isa)
        if streaming:
            _cpu.set_streaming_threshold(0)
        yield
    finally:
        _cpu.set_streaming_threshold(None)
        _cpu.set_isa(active)


def _poisoned_out(data, shape, dtype):
    """out=: a view (drawn layout) of a base filled with poison; returns
    (out, its base, a mask of out's elements in the base)."""
    layout = data.draw(layouts(shape), label="out layout")
    base = layout.empty_base(shape, dtype)
    return layout.apply(base), base, layout.mask(shape)


# --- forward ----------------------------------------------------------------------

@settings(max_examples=400)
@given(data=st.data(), dtype=dtypes(), isa=isas(), streaming=st.booleans(),
       mode=st.sampled_from(["new", "out", "out_is_x", "inplace"]))
def test_forward_matches_oracle(data, dtype, isa, streaming, mode):
    """prelu, per-channel or shared slopes, on any layout, new / out= / in place:
    bitwise the oracle; only the result's elements are written."""
    shape = data.draw(shapes(), label="shape")
    xv = data.draw(views(dtype, shape), label="x")
    slopes = data.draw(slopes_for(shape, dtype), label="slopes")
    x = xv.array
    expected = expected_forward(x, slopes)
    x_base_before = xv.base.copy()
    slopes_before = _copy_slopes(slopes)

    with kernel_config(isa, streaming):
        if mode == "new":
            y = fastact.prelu(x, slopes)
        elif mode == "out":
            out, out_base, out_mask = _poisoned_out(data, shape, dtype)
            poison = out_base.copy()
            y = fastact.prelu(x, slopes, out=out)
            assert y is out
        elif mode == "out_is_x":
            y = fastact.prelu(x, slopes, out=x)
            assert y is x
        else:
            y = fastact.prelu(x, slopes, inplace=True)
            assert y is x

    assert_bitwise_equal(y, expected, "prelu")
    _assert_slopes_unchanged(slopes, slopes_before)
    _assert_base_untouched(xv, x_base_before, shape, mode in ("new", "out"), "x")
    if mode == "new":
        assert isinstance(y, np.ndarray) and not np.shares_memory(y, xv.base)
    if mode == "out":
        assert_unchanged(out_base[~out_mask], poison[~out_mask], "base of out outside the view")


def _assert_base_untouched(view, base_before, shape, whole, name):
    """Nothing of the view's base changed (whole=True: not in place), or
    nothing outside the view itself (in place)."""
    if whole:
        assert_unchanged(view.base, base_before, f"{name} (not in place)")
    else:
        outside = ~view.layout.mask(shape)
        assert_unchanged(view.base[outside], base_before[outside],
                         f"base of {name} outside the view")


# --- backward ---------------------------------------------------------------------

@settings(max_examples=400)
@given(data=st.data(), dtype=dtypes(), isa=isas(), streaming=st.booleans(),
       mode=st.sampled_from(["new", "out", "out_is_g", "inplace"]))
def test_backward_matches_oracle(data, dtype, isa, streaming, mode):
    """prelu_backward on any layouts of g and x, new / out= / in place:
    grad_input bitwise the oracle, grad_slopes close to it; x is never
    written, g only in place and only in its view."""
    shape = data.draw(shapes(), label="shape")
    xv = data.draw(views(dtype, shape, bounded=True), label="x")
    gv = data.draw(views(dtype, shape, bounded=True), label="g")
    slopes = data.draw(slopes_for(shape, dtype), label="slopes")
    x, g = xv.array, gv.array
    gi_ref, gs_ref = expected_backward(g, x, slopes)
    x_base_before, g_base_before = xv.base.copy(), gv.base.copy()
    g_before, x_before = g.copy(), x.copy()
    slopes_before = _copy_slopes(slopes)

    with kernel_config(isa, streaming):
        if mode == "new":
            gi, gs = fastact.prelu_backward(g, x, slopes)
        elif mode == "out":
            out, out_base, out_mask = _poisoned_out(data, shape, dtype)
            poison = out_base.copy()
            gi, gs = fastact.prelu_backward(g, x, slopes, out=out)
            assert gi is out
        elif mode == "out_is_g":
            gi, gs = fastact.prelu_backward(g, x, slopes, out=g)
            assert gi is g
        else:
            gi, gs = fastact.prelu_backward(g, x, slopes, inplace=True)
            assert gi is g

    assert_bitwise_equal(gi, gi_ref, "grad_input")
    check_grad_slopes(gs, gs_ref, g_before, x_before, slopes, dtype)
    assert_unchanged(xv.base, x_base_before, "x")
    _assert_slopes_unchanged(slopes, slopes_before)
    _assert_base_untouched(gv, g_base_before, shape, mode in ("new", "out"), "g")
    if mode == "out":
        assert_unchanged(out_base[~out_mask], poison[~out_mask], "base of out outside the view")


# --- in place on views ------------------------------------------------------------

@settings(max_examples=150)
@given(data=st.data(), dtype=dtypes())
def test_inplace_on_view_touches_only_the_view(data, dtype):
    """In place on a strided / reversed / transposed / Fortran-ordered view
    writes exactly the view's elements (forward into x, backward into g)."""
    shape = data.draw(shapes(min_dims=2), label="shape")
    xv = data.draw(views(dtype, shape, bounded=True), label="x")
    gv = data.draw(views(dtype, shape, bounded=True), label="g")
    slopes = data.draw(slopes_for(shape, dtype), label="slopes")
    x, g = xv.array, gv.array

    gi_ref, gs_ref = expected_backward(g, x, slopes)
    g_in = g.copy()
    g_before = gv.base.copy()
    x_before = xv.base.copy()
    gi, gs = fastact.prelu_backward(g, x, slopes, inplace=True)
    assert gi is g
    assert_bitwise_equal(g, gi_ref, "grad_input in place")
    check_grad_slopes(gs, gs_ref, g_in, x, slopes, dtype)
    g_out = ~gv.layout.mask(shape)
    assert_unchanged(gv.base[g_out], g_before[g_out], "base of g outside the view")
    assert_unchanged(xv.base, x_before, "x")

    expected = expected_forward(x, slopes)
    y = fastact.prelu(x, slopes, inplace=True)
    assert y is x
    assert_bitwise_equal(x, expected, "prelu in place")
    x_out = ~xv.layout.mask(shape)
    assert_unchanged(xv.base[x_out], x_before[x_out], "base of x outside the view")


# --- shared slopes on any shape ---------------------------------------------------

@settings(max_examples=300)
@given(data=st.data(), dtype=dtypes(), isa=isas())
def test_shared_slope_any_shape(data, dtype, isa):
    """A shared slope in every form (float, int, numpy scalar, 0-d, 1-element
    array or list) on any shape, 0-d and 1-d included, any layout: forward
    new / out= / in place bitwise; backward grad_input bitwise, grad_slopes
    of the slope's shape and close; in place writes only the view."""
    shape = data.draw(any_shapes(), label="shape")
    xv = data.draw(views(dtype, shape, bounded=True), label="x")
    gv = data.draw(views(dtype, shape, bounded=True), label="g")
    slopes = data.draw(shared_slopes(dtype), label="slopes")
    x, g = xv.array, gv.array
    expected = expected_forward(x, slopes)
    gi_ref, gs_ref = expected_backward(g, x, slopes)
    x_base_before, g_base_before = xv.base.copy(), gv.base.copy()
    x_before, g_before = x.copy(), g.copy()
    # fresh copies of the bases (same memory order) for the in-place calls
    x_in_base, g_in_base = xv.base.copy(order="K"), gv.base.copy(order="K")
    x_in, g_in = xv.layout.apply(x_in_base), gv.layout.apply(g_in_base)
    out, out_base, out_mask = _poisoned_out(data, shape, dtype)
    poison = out_base.copy()

    with kernel_config(isa, False):
        y = fastact.prelu(x, slopes)
        y_out = fastact.prelu(x, slopes, out=out)
        assert_unchanged(out_base[~out_mask], poison[~out_mask], "base of out outside the view")
        gi, gs = fastact.prelu_backward(g, x, slopes)
        out_b = poisoned_like(x)
        gi_out, gs_out = fastact.prelu_backward(g, x, slopes, out=out_b)
        assert_unchanged(xv.base, x_base_before, "x (not in place)")
        assert_unchanged(gv.base, g_base_before, "g (not in place)")
        y_in = fastact.prelu(x_in, slopes, inplace=True)
        gi_in, gs_in = fastact.prelu_backward(g_in, x, slopes, inplace=True)

    assert y.shape == shape and y.dtype == dtype
    assert_bitwise_equal(y, expected, "prelu")
    assert y_out is out
    assert_bitwise_equal(y_out, expected, "prelu out=")
    assert y_in is x_in
    assert_bitwise_equal(y_in, expected, "prelu in place")
    assert gi_out is out_b and gi_in is g_in
    for what, got_gi, got_gs in [("new", gi, gs), ("out=", gi_out, gs_out),
                                 ("in place", gi_in, gs_in)]:
        assert_bitwise_equal(got_gi, gi_ref, f"grad_input {what}")
        check_grad_slopes(got_gs, gs_ref, g_before, x_before, slopes, dtype)
    x_outside, g_outside = ~xv.layout.mask(shape), ~gv.layout.mask(shape)
    assert_unchanged(x_in_base[x_outside], x_base_before[x_outside], "base of x outside the view")
    assert_unchanged(g_in_base[g_outside], g_base_before[g_outside], "base of g outside the view")


# --- out= interleaved with the inputs in one base ---------------------------------

@settings(max_examples=150)
@given(data=st.data(), dtype=dtypes())
def test_out_interleaved_with_inputs(data, dtype):
    """out= may share a base with x (and g) as long as no element is shared:
    x, g and out take every third element of one base's last axis."""
    shape = data.draw(shapes(), label="shape")
    xs = data.draw(arrays(dtype, shape, bounded=True), label="x")
    gs_ = data.draw(arrays(dtype, shape, bounded=True), label="g")
    slopes = data.draw(slopes_for(shape, dtype), label="slopes")
    base = poisoned_like(np.empty(shape[:-1] + (3 * shape[-1],), dtype))
    x, g, out = base[..., 0::3], base[..., 1::3], base[..., 2::3]
    x[...] = xs
    g[...] = gs_
    expected = expected_forward(xs, slopes)
    gi_ref, gs_ref = expected_backward(gs_, xs, slopes)

    y = fastact.prelu(x, slopes, out=out)
    assert y is out
    assert_bitwise_equal(out, expected, "prelu out=")
    assert_unchanged(x, xs, "x")
    assert_unchanged(g, gs_, "g")
    gi, gsl = fastact.prelu_backward(g, x, slopes, out=out)
    assert gi is out
    assert_bitwise_equal(out, gi_ref, "grad_input out=")
    check_grad_slopes(gsl, gs_ref, gs_, xs, slopes, dtype)
    assert_unchanged(x, xs, "x")
    assert_unchanged(g, gs_, "g")


# --- inputs are never modified ----------------------------------------------------

@settings(max_examples=150)
@given(data=st.data(), dtype=dtypes())
def test_inputs_never_modified_when_not_in_place(data, dtype):
    """Neither x, g, their bases nor the slopes change when the result goes to
    a new array or out=, forward and backward."""
    shape = data.draw(shapes(), label="shape")
    xv = data.draw(views(dtype, shape, bounded=True), label="x")
    gv = data.draw(views(dtype, shape, bounded=True), label="g")
    slopes = data.draw(slopes_for(shape, dtype), label="slopes")
    x, g = xv.array, gv.array
    before = [xv.base.copy(), gv.base.copy()]
    slopes_before = _copy_slopes(slopes)

    fastact.prelu(x, slopes)
    out, _, _ = _poisoned_out(data, shape, dtype)
    fastact.prelu(x, slopes, out=out)
    fastact.prelu_backward(g, x, slopes)
    fastact.prelu_backward(g, x, slopes, out=out)

    assert_unchanged(xv.base, before[0], "x")
    assert_unchanged(gv.base, before[1], "g")
    _assert_slopes_unchanged(slopes, slopes_before)
