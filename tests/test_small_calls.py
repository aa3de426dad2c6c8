"""The common case and everything else: the same results and the same errors.

fastact._cpu takes the common case (C-contiguous arrays fit for the kernels,
slopes of the compute dtype with one value per channel, a number) without
making any object it does not return, and sends everything else the general
way (copies, casts, fastact._layout's plans).  These tests put inputs on
both sides of each of those conditions: the results must be bitwise the
same (and the oracle's), the errors the same messages, and nothing written
when a call is refused.
"""
import numpy as np
import pytest

import fastact
from fastact import _reference

from helpers import (
    ALL_DTYPES,
    assert_grad_slopes_close,
    compute_dtype,
    expected_backward,
    expected_forward,
    random_slopes,
    random_x,
)

SHAPE = (2, 3, 4, 5)


def _strided(a):
    """A view of a's values that is not C-contiguous."""
    big = np.empty(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    view = big[..., ::2]
    view[...] = a
    return view


def _unaligned(a):
    buf = np.empty(a.nbytes + 1, np.uint8)
    view = buf[1:].view(a.dtype).reshape(a.shape)
    view[...] = a
    return view


def _read_only(a):
    a = a.copy()
    a.setflags(write=False)
    return a


X_FORMS = {
    "contiguous": lambda a: a.copy(),
    "strided": _strided,
    "fortran": np.asfortranarray,
    "unaligned": _unaligned,
    "byteswapped": lambda a: a.astype(a.dtype.newbyteorder()),
    "matrix": None,                     # 2-D only: see the subclass tests
}


def _slope_forms(s, ct):
    """The same per-channel slopes in every form fastact takes: name -> value."""
    return {
        "compute dtype": s.astype(ct),
        "other float dtype": s.astype(np.float64 if ct == np.float32 else np.float32),
        "float16": s.astype(np.float16),
        "list": [float(v) for v in s.astype(ct)],
        "(C, 1, 1)": s.astype(ct).reshape(3, 1, 1),
        "strided": np.repeat(s.astype(ct), 2)[::2],
        "byteswapped": s.astype(np.dtype(ct).newbyteorder()),
        "masked": np.ma.masked_array(s.astype(ct)),
    }


def _exact_slopes(rng, dtype):
    """Per-channel slopes that every float dtype holds exactly (so every form
    of them, float16 included, holds the same values)."""
    return (rng.integers(-24, 25, 3) / 8).astype(compute_dtype(dtype))


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("x_form", [k for k, v in X_FORMS.items() if v is not None])
def test_prelu_every_form_gives_the_same_bits(rng, dtype, x_form):
    if x_form == "byteswapped" and dtype.name == "bfloat16":
        pytest.skip("bfloat16 has no byte-swapped dtype")
    x0 = random_x(rng, SHAPE, np.float32).astype(dtype)
    g0 = rng.standard_normal(SHAPE).astype(np.float32).astype(dtype)
    ct = compute_dtype(dtype)
    s = _exact_slopes(rng, dtype)
    want_y = expected_forward(x0, s.astype(ct))
    want_gi, want_gs = expected_backward(g0, x0, s.astype(ct))
    first = None
    for name, slopes in _slope_forms(s, ct).items():
        x, g = X_FORMS[x_form](x0), X_FORMS[x_form](g0)
        y = fastact.prelu(x, slopes)
        assert type(y) is np.ndarray and y.dtype == x.dtype.newbyteorder("=")
        np.testing.assert_array_equal(y, want_y, err_msg=name)
        gi, gs = fastact.prelu_backward(g, x, slopes)
        np.testing.assert_array_equal(gi, want_gi, err_msg=name)
        assert gs.shape == np.shape(slopes) and gs.dtype == ct, name
        assert_grad_slopes_close(gs, want_gs.reshape(gs.shape), g0, x0, ct)
        if first is None:
            first = gs.reshape(-1)
        else:       # one sum in one order, whatever the form
            np.testing.assert_array_equal(gs.reshape(-1), first, err_msg=name)
        # in place and out=, from the same forms
        x, g = X_FORMS[x_form](x0), X_FORMS[x_form](g0)
        assert fastact.prelu(x, slopes, inplace=True) is x
        np.testing.assert_array_equal(x, want_y, err_msg=name)
        x = X_FORMS[x_form](x0)
        gi, gs2 = fastact.prelu_backward(g, x, slopes, inplace=True)
        assert gi is g
        np.testing.assert_array_equal(g, want_gi, err_msg=name)
        np.testing.assert_array_equal(gs2, gs, err_msg=name)
        out = X_FORMS[x_form](np.full(SHAPE, 7, dtype))
        assert fastact.prelu(x, slopes, out=out) is out
        np.testing.assert_array_equal(out, want_y, err_msg=name)


SHARED = {
    "float": lambda v: float(v),
    "int": None,
    "numpy float32": np.float32,
    "numpy float64": np.float64,
    "numpy float16": np.float16,
    "0-d array": lambda v: np.array(v, np.float32),
    "array of one": lambda v: np.array([v], np.float64),
    "(1, 1, 1) array": lambda v: np.full((1, 1, 1), v, np.float32),
    "list of one": lambda v: [v],
}


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("value", [0.25, -2.0, 0.0, 1.5])
def test_prelu_shared_slope_every_form(rng, dtype, value):
    x = random_x(rng, SHAPE, np.float32).astype(dtype)
    g = rng.standard_normal(SHAPE).astype(np.float32).astype(dtype)
    ct = compute_dtype(dtype)
    want_y = expected_forward(x, np.asarray(value, ct))
    want_gi, want_gs = expected_backward(g, x, np.asarray(value, ct))
    forms = dict(SHARED)
    forms["int"] = (lambda v: int(v)) if value == int(value) else None
    grads = []
    for name, make in forms.items():
        if make is None:
            continue
        slopes = make(value)
        np.testing.assert_array_equal(fastact.prelu(x, slopes), want_y, err_msg=name)
        gi, gs = fastact.prelu_backward(g, x, slopes)
        np.testing.assert_array_equal(gi, want_gi, err_msg=name)
        assert gs.shape == np.shape(slopes) and gs.dtype == ct, name
        assert_grad_slopes_close(gs.reshape(()), want_gs.reshape(()), g, x, ct)
        grads.append(gs.reshape(()))
    assert len({g.tobytes() for g in grads}) == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prelu_backward_many_channels(rng, dtype):
    """More channels than prelu_backward keeps its sums for on the stack."""
    for channels in (63, 64, 65, 300):
        x = random_x(rng, (3, channels, 7), dtype)
        g = rng.standard_normal(x.shape).astype(dtype)
        s = random_slopes(rng, channels, dtype)
        gi, gs = fastact.prelu_backward(g, x, s)
        want_gi, want_gs = expected_backward(g, x, s)
        np.testing.assert_array_equal(gi, want_gi)
        assert_grad_slopes_close(gs, want_gs, g, x, dtype)
        # channels last, with the slopes of (C,) as one per position too
        gi, gs = fastact.prelu_backward(g.transpose(0, 2, 1).copy(), x.transpose(0, 2, 1).copy(),
                                        s, channel_axis=-1)
        np.testing.assert_array_equal(gi, want_gi.transpose(0, 2, 1))
        assert_grad_slopes_close(gs, want_gs, g, x, dtype)


@pytest.mark.parametrize("shape", [(0, 3, 4), (2, 3, 0), (0, 3)])
def test_zero_size(shape):
    for slopes in (np.ones(3, np.float32), 0.5, [0.1, 0.2, 0.3]):
        x = np.ones(shape, np.float32)
        y = fastact.prelu(x, slopes)
        assert y.shape == shape and y.dtype == np.float32
        assert fastact.prelu(x, slopes, inplace=True) is x
        gi, gs = fastact.prelu_backward(x.copy(), x, slopes)
        assert gi.shape == shape
        assert gs.shape == np.shape(slopes) and not gs.any()
    for op in (fastact.relu, fastact.elu, fastact.leaky_relu, fastact.square):
        x = np.ones(shape, np.float64)
        assert op(x).shape == shape and op(x, inplace=True) is x


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_subclass_arrays():
    """np.matrix and masked arrays: taken as their data (as before), the
    results plain arrays (out= and in place: the caller's object)."""
    rng = np.random.default_rng(7)
    x = random_x(rng, (4, 3), np.float64)
    g = rng.standard_normal((4, 3))
    s = random_slopes(rng, 3, np.float64)
    for make in (np.asmatrix, np.ma.masked_array):
        xm, gm = make(x.copy()), make(g.copy())
        y = fastact.prelu(xm, s)
        assert type(y) is np.ndarray
        np.testing.assert_array_equal(y, expected_forward(x, s))
        gi, gs = fastact.prelu_backward(gm, xm, np.ma.masked_array(s))
        np.testing.assert_array_equal(gi, expected_backward(g, x, s)[0])
        assert type(gs) is np.ndarray and gs.shape == (3,)
        np.testing.assert_array_equal(fastact.leaky_relu(xm, 0.5),
                                      _reference.leaky_relu(x, 0.5))
        assert fastact.prelu(xm, 0.5, inplace=True) is xm
        np.testing.assert_array_equal(np.asarray(xm), expected_forward(x, np.float64(0.5)))
        out = make(np.zeros((4, 3)))
        assert fastact.relu(x, out=out) is out
    # a matrix of slopes is 2-D, as an array of its shape is
    assert _same_error(ValueError, {
        "matrix": lambda: fastact.prelu(x, np.asmatrix(s)),
        "array": lambda: fastact.prelu(x, s.reshape(1, 3)),
        "backward": lambda: fastact.prelu_backward(g, x, np.asmatrix(s))}, x, g).startswith(
            "slopes has shape (1, 3), which does not broadcast")


# --- errors: the same message on both sides, and nothing written ----------------------

class _Unchanged:
    def __init__(self, *arrays):
        self.arrays = [a for a in arrays if isinstance(a, np.ndarray)]
        self.before = [a.copy() for a in self.arrays]

    def check(self):
        for a, b in zip(self.arrays, self.before):
            assert a.tobytes() == b.tobytes(), "an array was written to"


def _message(exc_type, call, *arrays):
    guard = _Unchanged(*arrays)
    with pytest.raises(exc_type) as info:
        call()
    guard.check()
    return str(info.value)


def _same_error(exc_type, calls, *arrays):
    """Every call raises exc_type with one message, writing nothing."""
    messages = {name: _message(exc_type, call, *arrays) for name, call in calls.items()}
    assert len(set(messages.values())) == 1, messages
    return next(iter(messages.values()))


def _arrays(rng, dtype=np.float32):
    x = random_x(rng, SHAPE, dtype)
    return x, rng.standard_normal(SHAPE).astype(dtype), random_slopes(rng, 3, dtype)


@pytest.mark.parametrize("backward", [False, True])
def test_slopes_of_the_wrong_length(rng, backward):
    x, g, _ = _arrays(rng)
    for n in (2, 4):
        forms = {"compute dtype": np.ones(n, np.float32), "float64": np.ones(n),
                 "list": [1.0] * n, "strided": np.ones(2 * n, np.float32)[::2]}
        calls = {k: ((lambda s=s: fastact.prelu_backward(g, x, s)) if backward
                     else (lambda s=s: fastact.prelu(x, s, inplace=True)))
                 for k, s in forms.items()}
        msg = _same_error(ValueError, calls, x, g)
        assert msg == f"slopes has {n} values but x has 3 channels (axis 1)"


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_slopes_not_finite(rng, bad):
    x, g, _ = _arrays(rng)
    s = np.array([0.5, bad, 0.25], np.float32)
    forms = {"compute dtype": s, "float64": s.astype(np.float64), "list": list(map(float, s)),
             "strided": np.repeat(s, 2)[::2]}
    calls = {k: (lambda s=s: fastact.prelu(x, s, inplace=True)) for k, s in forms.items()}
    calls.update({"backward " + k: (lambda s=s: fastact.prelu_backward(g, x, s, inplace=True))
                  for k, s in forms.items()})
    msg = _same_error(ValueError, calls, x, g)
    assert msg.startswith("slopes must be finite, got ") and msg.endswith(" at index 1")
    # and as a number
    calls = {"float": lambda: fastact.prelu(x, float(bad), inplace=True),
             "numpy float32": lambda: fastact.prelu(x, np.float32(bad), inplace=True),
             "backward": lambda: fastact.prelu_backward(g, x, float(bad), inplace=True)}
    want = ("slopes is NaN; expected a real number" if np.isnan(bad)
            else f"slopes must be finite, got {float(bad)}")
    assert _same_error(ValueError, calls, x, g) == want


def test_slopes_of_a_type_fastact_does_not_take(rng):
    x, g, _ = _arrays(rng)
    for bad, exc in ((np.ones(3, np.int32), TypeError), (np.ones(3, bool), TypeError),
                     (True, TypeError), ("0.5", TypeError), (None, TypeError),
                     (np.ones((2, 3)), ValueError)):
        calls = {"forward": lambda b=bad: fastact.prelu(x, b, inplace=True),
                 "backward": lambda b=bad: fastact.prelu_backward(g, x, b, inplace=True),
                 "backward, out": lambda b=bad: fastact.prelu_backward(g, x, b,
                                                                       out=np.empty_like(x))}
        msg = _same_error(exc, calls, x, g)
        assert "slopes" in msg


@pytest.mark.parametrize("x_form", ["contiguous", "strided"])
def test_x_of_a_dtype_fastact_does_not_take(rng, x_form):
    for dtype in (np.int32, np.complex64, np.longdouble):
        x = X_FORMS[x_form](np.ones(SHAPE, dtype))
        g = np.ones(SHAPE, np.float32)
        calls = {"per channel": lambda x=x: fastact.prelu(x, np.ones(3, np.float32)),
                 "number": lambda x=x: fastact.prelu(x, 0.5, inplace=True),
                 "backward": lambda x=x, g=g: fastact.prelu_backward(g, x, 0.5),
                 "leaky_relu": lambda x=x: fastact.leaky_relu(x, 0.5, inplace=True)}
        msg = _same_error(TypeError, calls, x, g)
        assert msg.startswith(f"x has dtype {np.dtype(dtype).name}")


def test_grad_output_that_does_not_match(rng):
    x, g, s = _arrays(rng)
    for bad, what in ((g.astype(np.float64), "dtype"), (g[:, :, :, :4], "shape"),
                      (g.reshape(2, 3, 20), "shape")):
        for form in ("contiguous", "strided"):
            b = X_FORMS[form](bad)
            calls = {"slopes array": lambda b=b: fastact.prelu_backward(b, x, s),
                     "slopes list": lambda b=b: fastact.prelu_backward(b, x, list(s)),
                     "number": lambda b=b: fastact.prelu_backward(b, x, 0.5, inplace=True)}
            msg = _same_error(ValueError, calls, x, b)
            assert msg.startswith(f"grad_output has {what} ")


@pytest.mark.parametrize("slopes_form", ["compute dtype", "list", "float"])
def test_bad_outputs(rng, slopes_form):
    x, g, s = _arrays(rng)
    slopes = {"compute dtype": s, "list": list(s), "float": 0.5}[slopes_form]
    buf = np.empty(2 * x.size + 8, np.float32)
    cases = {
        "read-only out": (ValueError, _read_only(x), "out is read-only"),
        "out of the wrong shape": (ValueError, np.empty((2, 3, 20), np.float32), "out has shape"),
        "out of the wrong dtype": (ValueError, np.empty(SHAPE), "out has dtype"),
        "out not an array": (TypeError, [0.0], "out must be a numpy.ndarray"),
        "out overlapping x": (ValueError, None, "out overlaps x partially"),
    }
    for name, (exc, out, start) in cases.items():
        xx, gg = x, g.copy()
        if out is None:         # x and out in one buffer, 3 elements apart
            xx = buf[:x.size].reshape(SHAPE)
            xx[...] = x
            out = buf[3:3 + x.size].reshape(SHAPE)
        for form in ("contiguous", "strided"):
            o = X_FORMS[form](out) if isinstance(out, np.ndarray) and name not in (
                "read-only out", "out overlapping x") else out
            calls = {"prelu": lambda o=o, x=xx: fastact.prelu(x, slopes, out=o),
                     "leaky_relu": lambda o=o, x=xx: fastact.leaky_relu(x, 0.5, out=o)}
            msg = _same_error(exc, calls, xx, gg, *(a for a in (o,) if isinstance(a, np.ndarray)))
            assert msg.startswith(start), (name, msg)
            if name != "out overlapping x":
                calls = {"prelu_backward":
                             lambda o=o, x=xx, g=gg: fastact.prelu_backward(g, x, slopes, out=o),
                         "leaky_relu_backward":
                             lambda o=o, x=xx, g=gg: fastact.leaky_relu_backward(g, x, 0.5, out=o)}
                msg = _same_error(exc, calls, xx, gg,
                                  *(a for a in (o,) if isinstance(a, np.ndarray)))
                assert msg.startswith(start), (name, msg)


def test_read_only_in_place_targets(rng):
    x, g, s = _arrays(rng)
    ro = _read_only(x)
    for slopes in (s, list(s), 0.5, np.float32(0.5)):
        msg = _same_error(ValueError, {
            "prelu": lambda sl=slopes: fastact.prelu(ro, sl, inplace=True),
            "prelu strided": lambda sl=slopes: fastact.prelu(_read_only(_strided(x)), sl,
                                                             inplace=True),
            "leaky_relu": lambda: fastact.leaky_relu(ro, 0.5, inplace=True),
            "relu": lambda: fastact.relu(ro, inplace=True)}, ro)
        assert msg == "inplace=True but x is read-only"
        rg = _read_only(g)
        msg = _same_error(ValueError, {
            "prelu_backward": lambda sl=slopes, rg=rg: fastact.prelu_backward(rg, x, sl,
                                                                              inplace=True),
            "elu_backward": lambda rg=rg: fastact.elu_backward(rg, x, inplace=True)}, rg, x)
        assert msg == "inplace=True but grad_output is read-only"
        msg = _same_error(ValueError, {
            "prelu": lambda sl=slopes: fastact.prelu(x, sl, out=np.empty_like(x), inplace=True),
            "prelu_backward": lambda sl=slopes: fastact.prelu_backward(
                g, x, sl, out=np.empty_like(x), inplace=True)}, x, g)
        assert msg == "pass either out= or inplace=True, not both"


def test_outputs_that_alias_inputs(rng):
    """out= may be x or grad_output themselves (in place), whatever form they
    take; slopes inside the output are read before it is written."""
    for form in ("contiguous", "strided"):
        x, g, s = _arrays(rng)
        want_y = expected_forward(x, s)
        want_gi, want_gs = expected_backward(g, x, s)
        xx, gg = X_FORMS[form](x), X_FORMS[form](g)
        assert fastact.prelu(xx, s, out=xx) is xx
        np.testing.assert_array_equal(xx, want_y)
        xx = X_FORMS[form](x)
        gi, gs = fastact.prelu_backward(gg, xx, s, out=gg)
        assert gi is gg
        np.testing.assert_array_equal(gg, want_gi)
        gg = X_FORMS[form](g)
        gi, _ = fastact.prelu_backward(gg, xx, s, out=xx)
        assert gi is xx
        np.testing.assert_array_equal(xx, want_gi)
    # slopes that are the output's first elements
    x, _, s = _arrays(rng)
    out = np.empty_like(x)
    view = out.reshape(-1)[:3]
    view[...] = s
    assert fastact.prelu(x, view, out=out) is out
    np.testing.assert_array_equal(out, expected_forward(x, s))
