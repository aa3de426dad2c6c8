"""The family's elementwise kernels against the float64 oracles.

Every op, every dtype (float16 and bfloat16 computed in float32), forward and
backward, out of place, into out=, in place, streamed, on every ISA, on
boundary grids (exactly at threshold and max_value, their neighbours, 0,
-0.0, +-inf, NaN) mixed into random data.  Kernels are reached through
fastact._cpu, the layer under the public functions (tested in
test_family_api.py).

Exactness: every op but ELU is one select and at most one rounding of a
float32 (float64) operation, and must equal the oracle rounded to the compute
type and then to the dtype, bitwise (signed zeros included).  The exception
is relu with both a threshold and a negative slope, negative_slope * (x -
threshold): two roundings, which must equal numpy's evaluation of the same
formula in the compute type bitwise, and the oracle within 2 ulp.  ELU must
be within 1 ulp of the oracle rounded to the dtype.
"""
import numpy as np
import pytest

from fastact import _cpu, _reference

from helpers import (
    ALL_DTYPES,
    assert_same,
    assert_within_ulp,
    compute_dtype,
    poisoned_like,
    rounded_like_kernels,
)

F = _cpu
INF = float("inf")

# (name, op, params, oracle forward, oracle backward, kinks)
CASES = [
    ("leaky_relu", F.OP_LEAKY_RELU, (0.01, 0.0, 0.0),
     lambda x, p: _reference.leaky_relu(x, p[0]),
     lambda g, x, p: _reference.leaky_relu_backward(g, x, p[0]), [0.0]),
    ("leaky_relu_1.205321", F.OP_LEAKY_RELU, (1.205321, 0.0, 0.0),
     lambda x, p: _reference.leaky_relu(x, p[0]),
     lambda g, x, p: _reference.leaky_relu_backward(g, x, p[0]), [0.0]),
    ("leaky_relu_negative", F.OP_LEAKY_RELU, (-0.75, 0.0, 0.0),
     lambda x, p: _reference.leaky_relu(x, p[0]),
     lambda g, x, p: _reference.leaky_relu_backward(g, x, p[0]), [0.0]),
    ("relu", F.OP_RELU_PLAIN, (0.0, 0.0, 0.0),
     lambda x, p: _reference.relu(x),
     lambda g, x, p: _reference.relu_backward(g, x), [0.0]),
    ("relu6", F.OP_RELU, (0.0, 6.0, 0.0),
     lambda x, p: _reference.relu6(x),
     lambda g, x, p: _reference.relu6_backward(g, x), [0.0, 6.0]),
    ("relu_keras", F.OP_RELU, (0.1, 4.5, 0.5),
     lambda x, p: _reference.relu(x, p[0], p[1], p[2]),
     lambda g, x, p: _reference.relu_backward(g, x, p[0], p[1], p[2]), [0.5, 4.5]),
    ("relu_max_below_threshold", F.OP_RELU, (0.3, 1.0, 2.0),
     lambda x, p: _reference.relu(x, p[0], p[1], p[2]),
     lambda g, x, p: _reference.relu_backward(g, x, p[0], p[1], p[2]), [1.0, 2.0]),
    ("relu_slope_no_max", F.OP_RELU, (0.2, INF, 0.0),
     lambda x, p: _reference.relu(x, p[0], None, p[2]),
     lambda g, x, p: _reference.relu_backward(g, x, p[0], None, p[2]), [0.0]),
    ("thresholded_relu", F.OP_RELU, (0.0, INF, 1.0),
     lambda x, p: _reference.thresholded_relu(x, p[2]),
     lambda g, x, p: _reference.thresholded_relu_backward(g, x, p[2]), [1.0]),
    ("elu", F.OP_ELU, (1.0, 0.0, 0.0),
     lambda x, p: _reference.elu(x, p[0]),
     lambda g, x, p: _reference.elu_backward(g, x, p[0]), [0.0]),
    ("elu_alpha", F.OP_ELU, (0.3, 0.0, 0.0),
     lambda x, p: _reference.elu(x, p[0]),
     lambda g, x, p: _reference.elu_backward(g, x, p[0]), [0.0]),
    ("hardtanh", F.OP_HARDTANH, (-1.0, 1.0, 0.0),
     lambda x, p: _reference.hardtanh(x, p[0], p[1]),
     lambda g, x, p: _reference.hardtanh_backward(g, x, p[0], p[1]), [-1.0, 1.0]),
    ("hardtanh_0_6", F.OP_HARDTANH, (0.0, 6.0, 0.0),
     lambda x, p: _reference.hardtanh(x, p[0], p[1]),
     lambda g, x, p: _reference.hardtanh_backward(g, x, p[0], p[1]), [0.0, 6.0]),
    ("hardtanh_inexact_bounds", F.OP_HARDTANH, (-0.3, 2.7, 0.0),
     lambda x, p: _reference.hardtanh(x, p[0], p[1]),
     lambda g, x, p: _reference.hardtanh_backward(g, x, p[0], p[1]), [-0.3, 2.7]),
    ("hardtanh_point", F.OP_HARDTANH, (0.5, 0.5, 0.0),
     lambda x, p: _reference.hardtanh(x, p[0], p[1]),
     lambda g, x, p: _reference.hardtanh_backward(g, x, p[0], p[1]), [0.5]),
    ("hardtanh_unbounded_below", F.OP_HARDTANH, (-INF, 2.0, 0.0),
     lambda x, p: _reference.hardtanh(x, p[0], p[1]),
     lambda g, x, p: _reference.hardtanh_backward(g, x, p[0], p[1]), [2.0]),
    ("square", F.OP_SQUARE, (0.0, 0.0, 0.0),
     lambda x, p: _reference.square(x),
     lambda g, x, p: _reference.square_backward(g, x), []),
]
IDS = [c[0] for c in CASES]
IS_ELU = {F.OP_ELU, F.OP_ELU_OUTPUT}


def _params_in(params, dtype):
    """The parameters as the kernels hold them: rounded to the compute type."""
    c = compute_dtype(dtype)
    return tuple(float(c.type(v)) for v in params)


def _boundary_values(kinks, dtype):
    """Exact kinks, their neighbours in dtype, and the special values."""
    vals = [0.0, -0.0, INF, -INF, np.nan, 1.0, -1.0, 1e-30, -1e-30, -1e-7, 30.0, -30.0,
            -100.0, -800.0]
    for k in kinks:
        kd = np.array(k, dtype=dtype)
        vals += [float(kd), float(np.nextafter(kd, np.array(INF, dtype))),
                 float(np.nextafter(kd, np.array(-INF, dtype)))]
    return np.array(vals, dtype=np.float64).astype(dtype)


def _data(rng, n, dtype, kinks):
    """Random data with every boundary value sprinkled in at random places."""
    x = (rng.standard_normal(n) * 4).astype(dtype)
    b = _boundary_values(kinks, dtype)
    picks = rng.choice(n, size=min(n, 4 * b.size), replace=False)
    x[picks] = np.resize(b, picks.size)
    return x


def _expected(value64, dtype):
    """The oracle rounded to the compute type, then to the dtype."""
    return rounded_like_kernels(value64, dtype)


def _two_roundings(op, params):
    return op == F.OP_RELU and params[0] != 0 and params[2] != 0


def _relu_in_compute_type(x, p, dtype, g=None):
    """Keras's relu evaluated by numpy in the compute type, as the kernel does."""
    c = compute_dtype(dtype)
    xc = x.astype(c)
    ns, m, t = (c.type(v) for v in p)
    with np.errstate(invalid="ignore", over="ignore"):
        if g is None:
            r = np.where(xc >= m, m, np.where(xc <= t, ns * (xc - t), xc))
        else:
            gc = g.astype(c)
            r = np.where(xc >= m, c.type(0), np.where(xc <= t, ns * gc, gc))
    return r.astype(dtype)


def _check(op, got, want, params=None, x=None, g=None):
    if op in IS_ELU:
        assert_within_ulp(got, want, 1)
    elif params is not None and _two_roundings(op, params) and g is None:
        assert_within_ulp(got, want, 2)
        assert_same(got, _relu_in_compute_type(x, params, got.dtype))
    else:
        assert_same(got, want)


def _check_every_destination(run, written, check):
    """check() the result of run(a, out, inplace) as a new array, into a
    poisoned out= and in place, where `written` is the array an in-place call
    overwrites (a copy of it is)."""
    check(run(written, None, False))
    out = poisoned_like(written)
    assert run(written, out, False) is out
    check(out)
    copy = written.copy()
    assert run(copy, None, True) is copy
    check(copy)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("n", [1, 37, 100_003])
def test_forward(rng, case, dtype, n):
    _, op, params, fwd, _, kinks = case
    p = _params_in(params, dtype)
    x = _data(rng, n, dtype, kinks)
    want = _expected(fwd(x.astype(np.float64), p), dtype)
    _check_every_destination(lambda a, out, inplace: F.unary_forward(op, params, a, out, inplace),
                             x, lambda got: _check(op, got, want, params, x))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("alpha", [0.0, -0.0, 1e300, -1e300, 1e-300])
def test_elu_alpha_zero_or_past_the_compute_type(rng, dtype, alpha):
    """alpha 0, or one that the float32 compute type makes infinite or 0: the
    kernels take a path of their own there, which must still give the
    product alpha * expm1(x) with IEEE's signs, infinities and NaNs."""
    with np.errstate(over="ignore", invalid="ignore"):      # inf * 0, as intended
        p = _params_in((alpha, 0.0, 0.0), dtype)
        x = _data(rng, 4099, dtype, [0.0])
        want = _expected(_reference.elu(x.astype(np.float64), p[0]), dtype)
    ordinary = p[0] != 0 and np.isfinite(p[0])
    for got in (F.unary_forward(F.OP_ELU, (alpha, 0.0, 0.0), x, None, False),
                F.unary_forward(F.OP_ELU, (alpha, 0.0, 0.0), x.copy(), None, True)):
        if ordinary:            # float64 keeps 1e300 and 1e-300
            assert_within_ulp(got, want, 1)
        else:
            assert_same(got, want)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("n", [1, 37, 100_003])
def test_backward(rng, case, dtype, n):
    _, op, params, _, bwd, kinks = case
    p = _params_in(params, dtype)
    x = _data(rng, n, dtype, kinks)
    g = _data(rng, n, dtype, [])
    with np.errstate(invalid="ignore", over="ignore"):
        want = _expected(bwd(g.astype(np.float64), x.astype(np.float64), p), dtype)
    _check_every_destination(
        lambda a, out, inplace: F.unary_backward(op, params, a, x, out, inplace),
        g, lambda got: _check(op, got, want))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_elu_backward_from_output(rng, dtype):
    alpha = 0.7
    p = _params_in((alpha, 0, 0), dtype)
    x = _data(rng, 5000, dtype, [0.0])
    g = _data(rng, 5000, dtype, [])
    y = F.unary_forward(F.OP_ELU, (alpha, 0.0, 0.0), x, None, False)
    want = _expected(_reference.elu_backward_from_output(
        g.astype(np.float64), y.astype(np.float64), p[0]), dtype)
    got = F.unary_backward(F.OP_ELU_OUTPUT, (alpha, 0.0, 0.0), g, y, None, False)
    assert_within_ulp(got, want, 1)


def _elu_grad_limit(alpha):
    """fa_elu_grad_xmin_f (src/fa_math.h): below it the float compute types'
    ELU gradient takes its float64 formula."""
    e = int(np.frexp(np.float32(alpha))[1]) - 1
    return max(-86.0, float(np.float32(-(99 + e)) * np.float32(0.6931)))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("alpha", [1.0, 0.3, -2.5, 1e-20, 3e25])
def test_elu_backward_near_its_float_limit_and_extreme_gradients(rng, dtype, alpha):
    """The float gradient (float32, float16, bfloat16) and the float64 one it
    hands over to below its limit: x on both sides of the limit, with
    grad_output from subnormal to huge, infinite, NaN and signed zeros,
    within 1 ulp of the oracle; and each element's result depends on its own
    operands only (one x below the limit in a block changes no other
    element)."""
    p = _params_in((alpha, 0.0, 0.0), dtype)
    lim = _elu_grad_limit(np.float32(alpha))
    c = compute_dtype(dtype).type
    near = np.array([lim, np.nextafter(c(lim), c(0)), np.nextafter(c(lim), c(-INF)),
                     lim - 1, lim + 1, -86.0, -87.0, -103.0, -150.0, -0.0, 0.0, -1e-30,
                     -INF, np.nan, 2.0], dtype=np.float64)
    gs = np.array([1.0, -0.7, 1e30, -3e38, 1e-40, 1e-45, 0.0, -0.0, INF, -INF, np.nan],
                  dtype=np.float64)
    # (in float16 the largest gradients overflow to inf on purpose)
    with np.errstate(over="ignore"):
        x = np.repeat(near, gs.size).astype(dtype)
        g = np.tile(gs, near.size).astype(dtype)
        x = np.concatenate([x, (rng.standard_normal(5000) * 30).astype(dtype)])
        g = np.concatenate([g, (rng.standard_normal(5000) * 10.0 ** rng.integers(-30, 30, 5000))
                            .astype(dtype)])
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        want = _expected(_reference.elu_backward(g.astype(np.float64), x.astype(np.float64),
                                                 p[0]), dtype)
    got = F.unary_backward(F.OP_ELU, (alpha, 0.0, 0.0), g, x, None, False)
    assert_within_ulp(got, want, 1)
    # ordinary data, then one x far below the limit in its block
    x = (rng.standard_normal(3000) * 3).astype(dtype)
    g = rng.standard_normal(3000).astype(dtype)
    before = F.unary_backward(F.OP_ELU, (alpha, 0.0, 0.0), g, x, None, False)
    x[1500] = -200.0
    after = F.unary_backward(F.OP_ELU, (alpha, 0.0, 0.0), g, x, None, False)
    keep = np.arange(x.size) != 1500
    assert_same(after[keep], before[keep])


def test_relu_with_threshold_and_slope_is_the_float32_computation(rng):
    """negative_slope * (x - threshold) is two float32 operations; the kernel
    computes exactly that."""
    ns, t = np.float32(0.3), np.float32(0.7)
    x = rng.standard_normal(10_000).astype(np.float32)
    y = F.unary_forward(F.OP_RELU, (float(ns), INF, float(t)), x, None, False)
    want = np.where(x <= t, ns * (x - t), x)
    assert_same(y, want)


@pytest.mark.parametrize("dtype", [np.float32, "bfloat16"])
def test_relu_with_threshold_and_slope_overflows_as_the_float32_computation(dtype):
    """Where x - threshold overflows float32 the result is -inf (Keras's on
    every backend), though slope * (x - threshold) can be finite: the README's
    one exception to the 2-ulp bound (float16 values are too small to reach
    it)."""
    if dtype == "bfloat16":
        dtype = pytest.importorskip("ml_dtypes").bfloat16
    ns, t = 0.174, 3e38
    x = np.array([-3.00406e38, -3e38, -1.0, 2.0, 3.1e38], np.float32).astype(dtype)
    y = F.unary_forward(F.OP_RELU, (ns, INF, t), x, None, False)
    x32 = x.astype(np.float32)
    with np.errstate(over="ignore"):
        want = np.where(x32 <= np.float32(t), np.float32(ns) * (x32 - np.float32(t)), x32)
    assert np.isneginf(want[0]) and np.isfinite(ns * (float(x32[0]) - t))
    assert_same(y, want.astype(dtype))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradients_match_finite_differences(rng, case):
    _, op, params, _, _, kinks = case
    x = rng.uniform(-8, 8, 2000)
    for k in kinks:                                  # away from kinks
        x = x[np.abs(x - k) > 1e-3]
    g = rng.standard_normal(x.size)
    h = 1e-6
    fp = F.unary_forward(op, params, x + h, None, False)
    fm = F.unary_forward(op, params, x - h, None, False)
    numeric = g * (fp - fm) / (2 * h)
    gi = F.unary_backward(op, params, g, x, None, False)
    np.testing.assert_allclose(gi, numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_streaming_stores_give_the_same_results(rng, dtype):
    x = _data(rng, 70_001, dtype, [0.0, 6.0])
    g = _data(rng, 70_001, dtype, [])
    ops = [(F.OP_RELU, (0.0, 6.0, 0.0)), (F.OP_ELU, (1.0, 0.0, 0.0)),
           (F.OP_LEAKY_RELU, (0.2, 0.0, 0.0))]
    plain = [(F.unary_forward(op, p, x, None, False),
              F.unary_backward(op, p, g, x, None, False)) for op, p in ops]
    try:
        _cpu.set_streaming_threshold(0)
        for (op, p), (y, gi) in zip(ops, plain):
            for offset in range(4):                  # every alignment of the output
                out = poisoned_like(x[offset:])
                assert_same(F.unary_forward(op, p, x[offset:], out, False), y[offset:])
                out = poisoned_like(x[offset:])
                assert_same(F.unary_backward(op, p, g[offset:], x[offset:], out, False),
                            gi[offset:])
    finally:
        _cpu.set_streaming_threshold(None)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_every_isa_gives_bitwise_the_same(rng, dtype):
    x = _data(rng, 50_000, dtype, [0.0, 6.0])
    g = _data(rng, 50_000, dtype, [])
    before = _cpu.get_isa()
    results = {}
    try:
        for isa in _cpu.supported_isas():
            _cpu.set_isa(isa)
            results[isa] = [F.unary_forward(op, p, x, None, False)
                            for _, op, p, *_ in CASES]
            results[isa] += [F.unary_backward(op, p, g, x, None, False)
                             for _, op, p, *_ in CASES]
    finally:
        _cpu.set_isa(before)
    first = results[_cpu.supported_isas()[0]]
    for res in results.values():
        for a, b in zip(res, first):
            assert_same(a, b)


def _tail_of_exp(rng, dtype):
    """Values of dtype in [-746, -700] (every one for float16 and bfloat16,
    every 7th for float32, 20000 at random for float64), and the neighbours
    of -1075 ln2 = -745.133..., below which exp(x) rounds to 0 in double."""
    lo, hi = np.array([-746.0, -700.0], dtype=dtype)
    if dtype.itemsize == 2:
        every = np.arange(1 << 16, dtype=np.uint16).view(dtype)
        with np.errstate(invalid="ignore"):
            v = every.astype(np.float64)
        return every[(v >= float(lo)) & (v <= float(hi))]
    if dtype == np.float32:
        x = np.arange(hi.view(np.int32), lo.view(np.int32) + 1, 7, dtype=np.int32).view(dtype)
    else:
        x = rng.uniform(float(lo), float(hi), 20_000)
    near = [np.array(-1075 * np.log(2), dtype=dtype)]
    for direction in (INF, -INF):
        v = near[0]
        for _ in range(3):
            v = np.nextafter(v, np.array(direction, dtype))
            near.append(v)
    return np.concatenate([x, np.array(near, dtype=dtype)])


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("alpha", [1.0, -2.5, 1e300, -1e300])
def test_elu_backward_deep_in_the_tail_of_exp(rng, dtype, alpha):
    """x in [-746, -700], where exp(x) in double is subnormal down to
    -745.13 and 0 below: g * alpha * exp(x) is +-inf for an infinite g, or
    for an alpha the float32 compute type makes infinite, NaN once exp(x) is
    0, and a zero of the product's sign for finite g and alpha in the float
    dtypes -- as the float64 oracle says, on every ISA, out of place, into
    out= and in place.  (The vectorised exp used to return 0 below -700.)"""
    dtype = np.dtype(dtype)
    x = _tail_of_exp(rng, dtype)
    x = x[rng.permutation(x.size)]
    specials = np.array([INF, -INF, 0.0, -0.0, np.nan, 3e38, -3e38, 1.0], dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):     # 3e38 in float16; inf * 0
        g = np.where(rng.random(x.size) < 0.5, rng.choice(specials, x.size),
                     rng.standard_normal(x.size) * 1e3).astype(dtype)
        # an infinite g of each sign where exp(x) > 0 whatever the draw: the
        # half types have only a dozen values in this range
        top = np.argsort(x.astype(np.float64))[-2:]
        g[top] = np.array([INF, -INF], dtype=dtype)
        p = _params_in((alpha, 0.0, 0.0), dtype)
        want = _expected(_reference.elu_backward(g.astype(np.float64), x.astype(np.float64),
                                                 p[0]), dtype)
    check = assert_same if dtype != np.float64 else (lambda a, b: assert_within_ulp(a, b, 1))
    assert np.isinf(want).any()                     # the data reach the cases
    before = _cpu.get_isa()
    try:
        for isa in _cpu.supported_isas():
            _cpu.set_isa(isa)
            params = (alpha, 0.0, 0.0)
            check(F.unary_backward(F.OP_ELU, params, g, x, None, False), want)
            out = poisoned_like(x)
            assert F.unary_backward(F.OP_ELU, params, g, x, out, False) is out
            check(out, want)
            gc = g.copy()
            F.unary_backward(F.OP_ELU, params, gc, x, None, True)
            check(gc, want)
    finally:
        _cpu.set_isa(before)


def test_elu_backward_of_an_infinite_gradient_below_minus_700():
    """The case that was found: inf, not NaN, as in float64."""
    for dtype in ALL_DTYPES:
        g = np.array([np.inf, -np.inf], dtype)
        got = F.unary_backward(F.OP_ELU, (1.0, 0.0, 0.0), g, np.array([-720.0, -720.0], dtype),
                               None, False)
        assert_same(got, np.array([np.inf, -np.inf], dtype))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_views_and_byte_order(rng, dtype):
    x = _data(rng, 6000, dtype, [0.0]).reshape(60, 100)
    want = F.unary_forward(F.OP_ELU, (1.0, 0.0, 0.0), np.ascontiguousarray(x.T), None, False)
    assert_within_ulp(want, _expected(_reference.elu(x.T.astype(np.float64)), dtype), 1)
    assert_same(F.unary_forward(F.OP_ELU, (1.0, 0.0, 0.0), x.T, None, False), want)
    out = poisoned_like(x).T                          # a non-contiguous out
    F.unary_forward(F.OP_ELU, (1.0, 0.0, 0.0), x.T, out, False)
    assert_same(out, want)
    if dtype in (np.float16, np.float32, np.float64):
        swapped = x.astype(x.dtype.newbyteorder())
        y = F.unary_forward(F.OP_ELU, (1.0, 0.0, 0.0), swapped, None, False)
        assert_same(y, F.unary_forward(F.OP_ELU, (1.0, 0.0, 0.0), x, None, False))


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_square_backward_where_twice_x_overflows(dtype):
    """g * 2x is rounded once also where x + x overflows the compute type
    (found by fuzzing: g * (x + x) gave inf for x = -3e38, g = 1e-40)."""
    c = compute_dtype(dtype)
    big = np.finfo(c).max
    with np.errstate(over="ignore"):       # float32's max is inf in float16
        x = np.array([big, -big, big / 2, -big / 3 * 2, 1.5, np.inf, -np.inf, np.nan, big],
                     np.float64).astype(c).astype(dtype)
    g = np.array([1e-40 if c == np.float32 else 1e-300, 0.3, -0.25, 2.0, 1e-3, 0.5, 0.0, 1.0,
                  0.0], np.float64).astype(dtype)
    want = _expected(_reference.square_backward(g.astype(np.float64), x.astype(np.float64)),
                     dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        got = F.unary_backward(F.OP_SQUARE, (0.0, 0.0, 0.0), g, x, None, False)
    assert_same(got, want)


def test_unknown_op_and_params():
    x = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="unknown op"):
        F.unary_forward(99, (0.0, 0.0, 0.0), x, None, False)
    with pytest.raises(ValueError, match="unknown op"):
        F.unary_forward(F.OP_ELU_OUTPUT, (1.0, 0.0, 0.0), x, None, False)
    with pytest.raises(ValueError, match="3 values"):
        F.unary_forward(F.OP_ELU, (1.0,), x, None, False)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_signed_zeros_and_specials(case, dtype):
    """Value and gradient at -0.0, +0.0, +-inf and NaN, sign of zero included."""
    _, op, params, fwd, bwd, _ = case
    p = _params_in(params, dtype)
    x = np.array([-0.0, 0.0, INF, -INF, np.nan], dtype=dtype)
    g = np.array([1.0, -1.0, 2.0, 0.5, 1.0], dtype=dtype)
    assert_same(F.unary_forward(op, params, x, None, False),
                _expected(fwd(x.astype(np.float64), p), dtype))
    with np.errstate(invalid="ignore"):
        want = _expected(bwd(g.astype(np.float64), x.astype(np.float64), p), dtype)
    assert_same(F.unary_backward(op, params, g, x, None, False), want)


@pytest.mark.parametrize("dtype", [d for d in ALL_DTYPES if d.itemsize == 2], ids=str)
@pytest.mark.parametrize("alpha", [1.0, 0.3, 2.5])
def test_elu_half_precision_every_value(dtype, alpha):
    """Every finite float16 / bfloat16 value: ELU and its gradient within 1
    ulp of the oracle rounded to the dtype (computed in float32, then rounded
    again: two roundings)."""
    x = np.arange(1 << 16, dtype=np.uint16).view(dtype)
    with np.errstate(invalid="ignore"):             # the NaN bit patterns
        x = x[np.isfinite(x.astype(np.float64))]
    g = np.ones_like(x)
    a = float(np.float32(alpha))
    y = F.unary_forward(F.OP_ELU, (alpha, 0.0, 0.0), x, None, False)
    assert_within_ulp(y, _reference.elu(x.astype(np.float64), a).astype(dtype), 1)
    gi = F.unary_backward(F.OP_ELU, (alpha, 0.0, 0.0), g, x, None, False)
    want = _reference.elu_backward(g.astype(np.float64), x.astype(np.float64), a)
    assert_within_ulp(gi, want.astype(dtype), 1)


@pytest.mark.parametrize("alpha", [1.0, 0.3, 2.5, 1e-3, 7.0])
def test_elu_float32_within_one_ulp_sampled(alpha):
    """Every 4099th negative float32 (520 thousand values, subnormals to
    -inf): ELU within 1 ulp of the oracle rounded to float32."""
    x = np.arange(0x80000001, 0xFF800001, 4099, dtype=np.uint64).astype(np.uint32).view(np.float32)
    a = float(np.float32(alpha))
    y = F.unary_forward(F.OP_ELU, (alpha, 0.0, 0.0), x, None, False)
    want = _reference.elu(x.astype(np.float64), a).astype(np.float32)
    assert_within_ulp(y, want, 1)


@pytest.mark.parametrize("alpha", [1.0, 0.3, 2.5, 1e-3, 7.0, -0.5])
def test_elu_backward_float32_within_one_ulp_sampled(rng, alpha):
    """The gradient on every 4099th negative float32 (subnormals to -inf:
    the float path above its limit, the float64 one below), with
    grad_output 1 and random ones of every magnitude: within 1 ulp of the
    oracle rounded to float32 (tools/elu_grad_accuracy.c checks every
    value)."""
    x = np.arange(0x80000001, 0xFF800001, 4099, dtype=np.uint64).astype(np.uint32).view(np.float32)
    a = float(np.float32(alpha))
    for g in (np.ones_like(x),
              (rng.standard_normal(x.size) * 10.0 ** rng.integers(-35, 35, x.size))
              .astype(np.float32)):
        gi = F.unary_backward(F.OP_ELU, (alpha, 0.0, 0.0), g, x, None, False)
        with np.errstate(over="ignore", under="ignore"):
            want = _reference.elu_backward(g.astype(np.float64), x.astype(np.float64), a)
            want = want.astype(np.float32)
        assert_within_ulp(gi, want, 1)
