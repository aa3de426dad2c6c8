"""Hypothesis strategies for fastact's property tests.

Arrays are (N, C, *spatial) with channels on axis 1 (any shape for a shared
slope), small enough to keep a run short, with an occasional long last axis
so that both kernel layouts run: planes when prod(shape[2:]) >= 64, tiles
below.  Values mix NaN, +-inf, +-0.0, subnormals and ordinary numbers.

A ``Layout`` says where an array of a given shape lives inside a larger base
array (memory order of the base, steps and reversals, a permutation of the
spatial axes); a ``View`` is values placed in a base through a layout.
"""
from dataclasses import dataclass
from math import prod

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fastact import _cpu

from helpers import SPECIAL_SLOPES, poisoned_like

# the C kernels switch from tiles to planes at prod(shape[2:]) >= 64
PLANE_MIN = 64
MAX_SIZE = 2048         # elements in an array (its base may be up to MAX_STEP times larger)
MAX_STEP = 8            # product of |step| over the axes of a layout
MAX_DIM = 9
MAX_LONG_DIM = 300


def dtypes():
    return st.sampled_from([np.float32, np.float64])


def isas():
    """The SIMD levels this CPU and build support (the kernels differ in how
    they vectorise, so each must give bitwise the same results)."""
    return st.sampled_from(_cpu.supported_isas())


# --- shapes ---------------------------------------------------------------------

def _fit(dims, max_size):
    """Shrink dims until their product is at most max_size: halve the largest
    small one (<= MAX_DIM), and a long one only when no small one is left."""
    dims = list(dims)
    while prod(dims) > max_size:
        small = [k for k, n in enumerate(dims) if 1 < n <= MAX_DIM]
        pool = small or range(len(dims))
        i = max(pool, key=lambda k: dims[k])
        dims[i] //= 2
    return tuple(dims)


@st.composite
def shapes(draw, min_dims=2, max_dims=5, max_size=MAX_SIZE):
    """Shapes of ndim min_dims..max_dims, dims 1..9 (0 now and then), and in
    about a third of them a last dim of 10..300 (so that prod(shape[2:])
    crosses PLANE_MIN; in a ninth, the channel axis is long instead, for
    several column tiles), at most max_size elements in all."""
    ndim = draw(st.integers(min_dims, max_dims))
    # k shrinks towards 0, dims towards 1; a dim is 0 now and then (k == 19)
    dims = [0 if k == 19 else 1 + k % MAX_DIM
            for k in (draw(st.integers(0, 19)) for _ in range(ndim))]
    long_axis = draw(st.integers(0, 8))     # 0-4: none, 5-7: the last, 8: channels
    if ndim >= 1 and long_axis >= 5:
        axis = 1 if long_axis == 8 and ndim >= 3 else -1
        dims[axis] = draw(st.integers(MAX_DIM + 1, MAX_LONG_DIM))
    return _fit(dims, max_size)


def any_shapes():
    """Any shape, 0-d and 1-d included (for shared slopes)."""
    return shapes(min_dims=0, max_dims=5)


# --- values -----------------------------------------------------------------------

def _width(dtype):
    return 8 * np.dtype(dtype).itemsize


def special_values(dtype):
    fi = np.finfo(dtype)
    sub = float(fi.smallest_subnormal)
    tiny = float(fi.tiny)
    return [0.0, -0.0, np.nan, np.inf, -np.inf, sub, -sub, tiny / 2, -tiny * 0.75,
            -tiny, 1.0, -1.0, 0.5, -2.5, float(fi.max), -float(fi.max)]


def values(dtype, bounded=False):
    """Elements of dtype: NaN, +-inf, +-0.0, subnormals and ordinary values.
    bounded: finite values of at most 1e150 in magnitude, so that sums of
    x * g (the slope gradient) cannot overflow float64 in any order."""
    width = _width(dtype)
    big = 1e150 if bounded and width == 64 else None
    specials = special_values(dtype)
    if big is not None:
        specials = [v for v in specials if not np.isfinite(v) or abs(v) <= big]
    return st.one_of(
        st.sampled_from(specials),
        st.floats(-10.0, 10.0, width=width),
        st.floats(min_value=None if big is None else -big, max_value=big,
                  allow_nan=big is None, allow_infinity=big is None, width=width),
    )


@st.composite
def _pooled_arrays(draw, dtype, shape, bounded):
    """Dense arrays: random normal values (scaled by a drawn power of two)
    mixed with values drawn from a small pool of any kind, so that every
    element differs and sign changes are everywhere."""
    pool = draw(st.lists(values(dtype, bounded), min_size=1, max_size=6))
    seed = draw(st.integers(0, 2**32 - 1))
    share = draw(st.sampled_from([0.0, 0.1, 0.5, 0.9]))
    scale = 2.0 ** draw(st.integers(-20, 20))
    rng = np.random.default_rng(seed)
    a = np.asarray(rng.standard_normal(shape) * scale).astype(dtype)
    picks = np.asarray(rng.random(shape) < share)
    a[picks] = rng.choice(np.array(pool, dtype=dtype), size=int(picks.sum()))
    return a


def arrays(dtype, shape, bounded=False):
    """Arrays of dtype and shape: hypothesis' (mostly a fill value with
    scattered elements, shrinks well) or dense pooled ones."""
    return st.one_of(
        hnp.arrays(dtype, shape, elements=values(dtype, bounded)),
        _pooled_arrays(dtype, shape, bounded),
    )


# --- slopes -----------------------------------------------------------------------

def slope_values():
    """0, negative, > 1 and ordinary slopes (finite: NaN and infinite slopes
    are refused, see test_errors.py)."""
    return st.one_of(st.sampled_from(SPECIAL_SLOPES), st.floats(-4.0, 4.0))


def _slope_dtype(dtype):
    """Mostly x's dtype; sometimes another float dtype (fastact casts)."""
    return st.sampled_from([dtype, dtype, np.float64, np.float32, np.float16])


@st.composite
def channel_slopes(draw, channels, dtype):
    """One slope per channel: an array (contiguous, strided or reversed) or a list."""
    vals = draw(st.lists(slope_values(), min_size=channels, max_size=channels))
    form = draw(st.sampled_from(["array", "strided", "reversed", "list"]))
    if form == "list":
        return vals
    sdtype = draw(_slope_dtype(dtype))
    a = np.array(vals, dtype=sdtype)
    if form == "strided":
        b = np.full(2 * channels, 77.0, dtype=sdtype)
        b[::2] = a
        return b[::2]
    if form == "reversed":
        return np.ascontiguousarray(a[::-1])[::-1]
    return a


@st.composite
def shared_slopes(draw, dtype):
    """One slope shared by every element, in each form fastact takes: a Python
    float or int, a numpy scalar, a 0-d array, a 1-element array, a 1-element list."""
    v = draw(slope_values())
    form = draw(st.sampled_from(
        ["float", "zero_d", "one_value", "int", "np_scalar", "list", "strided_one"]))
    if form == "float":
        return float(v)
    if form == "int":
        return int(v)
    if form == "list":
        return [v]
    sdtype = draw(_slope_dtype(dtype))
    if form == "np_scalar":
        return sdtype(v)
    if form == "zero_d":
        return np.array(v, dtype=sdtype)
    if form == "strided_one":
        return np.array([v, 55.0], dtype=sdtype)[::2]
    return np.array([v], dtype=sdtype)


def slopes_for(shape, dtype):
    """Per-channel slopes for shape (ndim >= 2) or a shared slope."""
    if len(shape) >= 2:
        return st.one_of(channel_slopes(shape[1], dtype), shared_slopes(dtype))
    return shared_slopes(dtype)


# --- layouts and views ------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """Where an array of a given shape lives in a base array.

    View axis i is base axis perm[i] (perm fixes axes 0 and 1, so channels
    stay on axis 1), taken with step steps[i] (negative: reversed) starting
    offsets[i] elements in from the start (or the end, reversed); the base is
    allocated in memory order `order`.  apply() gives a view, never a copy.
    """
    order: str
    perm: tuple
    steps: tuple
    offsets: tuple

    def base_shape(self, shape):
        bs = [0] * len(shape)
        for i, n in enumerate(shape):
            bs[self.perm[i]] = n * abs(self.steps[i])
        return tuple(bs)

    def apply(self, base):
        index = [slice(None)] * base.ndim
        for i, (k, o) in enumerate(zip(self.steps, self.offsets)):
            index[self.perm[i]] = slice(o, None, k) if k > 0 else slice(-1 - o, None, k)
        return base[tuple(index) + (Ellipsis,)].transpose(self.perm)

    def empty_base(self, shape, dtype):
        """A base for shape filled with helpers.poisoned_like's poison."""
        return poisoned_like(np.empty(self.base_shape(shape), dtype)).copy(order=self.order)

    def mask(self, shape):
        """Boolean array of the base's shape, True on the view's elements."""
        m = np.zeros(self.base_shape(shape), dtype=bool)
        self.apply(m)[...] = True
        return m

    @property
    def is_identity(self):
        return (self.order == "C" and self.perm == tuple(range(len(self.perm)))
                and all(k == 1 for k in self.steps))


@st.composite
def layouts(draw, shape):
    ndim = len(shape)
    order = draw(st.sampled_from("CF"))
    perm = tuple(range(min(ndim, 2)))
    if ndim > 2:
        perm += tuple(draw(st.permutations(range(2, ndim))))
    steps, total = [], 1
    for _ in range(ndim):
        k = draw(st.sampled_from([1, -1, 2, -2, 3]))
        if total * abs(k) > MAX_STEP:
            k = 1 if k > 0 else -1
        total *= abs(k)
        steps.append(k)
    offsets = tuple(draw(st.integers(0, abs(k) - 1)) for k in steps)
    return Layout(order, perm, tuple(steps), offsets)


class View:
    """values placed inside a base array (the rest filled with background)
    through layout; .array is the view of base that holds them."""

    def __init__(self, values, layout, background):
        self.values = values
        self.layout = layout
        self.background = background
        base = np.full(layout.base_shape(values.shape), background, dtype=values.dtype,
                       order=layout.order)
        layout.apply(base)[...] = values
        self.base = base
        self.array = layout.apply(base)
        assert self.array.shape == values.shape
        assert np.shares_memory(self.array, base) or values.size == 0

    def __repr__(self):
        return (f"View(values={self.values!r}, layout={self.layout!r}, "
                f"background={self.background!r})")


@st.composite
def views(draw, dtype, shape=None, bounded=False):
    """A base array and a view of it (strided, reversed, spatial axes
    transposed, Fortran-ordered base, or plain) holding drawn values; channels
    stay on axis 1."""
    if shape is None:
        shape = draw(shapes())
    vals = draw(arrays(dtype, shape, bounded))
    layout = draw(layouts(shape))
    background = draw(st.sampled_from([np.nan, 1234.5, -0.0, -7.0]))
    return View(vals, layout, background)
