"""The float64 oracles (fastact/_reference.py) pinned by something other than
the kernels they check: they import nothing from fastact, and small cases
worked out by hand give their values, signed zeros, NaN and PReLU's slope
shapes included."""
import ast
import os
import subprocess
import sys

import numpy as np
import pytest

from fastact import _reference as ref

from helpers import assert_same

ORACLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "fastact", "_reference.py")
NAN, INF = np.nan, np.inf


def a(*values):
    return np.array(values, dtype=np.float64)


# -- independence -------------------------------------------------------------

def test_imports_only_numpy_and_the_standard_library():
    tree = ast.parse(open(ORACLE).read())
    stdlib = getattr(sys, "stdlib_module_names", {"math", "operator"})
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"line {node.lineno}: a relative import"
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            assert top == "numpy" or top in stdlib, f"line {node.lineno}: imports {name}"


RUN_WITHOUT_FASTACT = """
import importlib.abc, importlib.util, sys

class NoFastact(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "fastact":
            raise ImportError("the oracle imported " + name)

sys.meta_path.insert(0, NoFastact())
spec = importlib.util.spec_from_file_location("standalone_oracle", sys.argv[1])
oracle = importlib.util.module_from_spec(spec)
spec.loader.exec_module(oracle)
import numpy as np
x = np.array([[[-1.0, 2.0], [3.0, -4.0]]])
# every function once, so that an import inside a function is caught too
for name in ("leaky_relu", "relu", "relu6", "thresholded_relu", "elu", "hardtanh", "square"):
    getattr(oracle, name)(x)
    getattr(oracle, name + "_backward")(x, x)
oracle.elu_backward_from_output(x, x)
for slopes in (0.25, np.array([0.5, 2.0]), np.ones((2, 1))):
    oracle.prelu(x, slopes)
    oracle.prelu_backward(x, x, slopes)
print(sorted(m for m in sys.modules if m.split(".")[0] == "fastact"))
"""


def test_runs_where_fastact_cannot_be_imported():
    result = subprocess.run([sys.executable, "-c", RUN_WITHOUT_FASTACT, ORACLE],
                            capture_output=True, text=True, cwd=os.path.dirname(ORACLE))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# -- the activation family, by hand -------------------------------------------

def test_leaky_relu():
    x = a(-2.0, -0.0, 0.0, 3.0, -INF, INF, NAN)
    assert_same(ref.leaky_relu(x, 0.5), a(-1.0, -0.0, 0.0, 3.0, -INF, INF, NAN))
    # a negative slope turns -0.0 into +0.0 and negatives positive
    assert_same(ref.leaky_relu(x, -1.0), a(2.0, 0.0, -0.0, 3.0, INF, INF, NAN))
    assert_same(ref.leaky_relu(a(-100.0)), a(-1.0))        # the default slope, 0.01
    # 1 above 0, the slope at 0 and below, and for NaN
    assert_same(ref.leaky_relu_backward(np.full(7, 2.0), x, 0.5),
                a(1.0, 1.0, 1.0, 2.0, 1.0, 2.0, 1.0))


def test_relu_defaults():
    x = a(-1.0, -0.0, 0.0, 2.0, -INF, INF, NAN)
    # exactly +0.0 at and below 0 (not 0 * x: no -0.0, no NaN from -inf)
    assert_same(ref.relu(x), a(0.0, 0.0, 0.0, 2.0, 0.0, INF, NAN))
    assert_same(ref.relu_backward(np.full(7, 3.0), x), a(0.0, 0.0, 0.0, 3.0, 0.0, 3.0, 3.0))


def test_relu_with_every_parameter():
    x = a(-1.0, 1.0, 1.5, 4.0, 5.0, NAN, -INF, INF)
    # slope * (x - threshold) at and below 1, the cap from 4 on, x between
    assert_same(ref.relu(x, 0.5, 4.0, 1.0), a(-1.0, 0.0, 1.5, 4.0, 4.0, NAN, -INF, 4.0))
    assert_same(ref.relu_backward(np.full(8, 2.0), x, 0.5, 4.0, 1.0),
                a(1.0, 1.0, 2.0, 0.0, 0.0, 2.0, 1.0, 0.0))


@pytest.mark.parametrize("max_value", [None, INF])
def test_relu_without_a_cap_keeps_inf_on_the_identity(max_value):
    x = a(-INF, 0.5, INF)
    assert_same(ref.relu(x, 0.0, max_value, 0.0), a(0.0, 0.5, INF))
    assert_same(ref.relu_backward(a(2.0, 2.0, 2.0), x, 0.0, max_value, 0.0), a(0.0, 2.0, 2.0))


def test_relu6():
    x = a(-1.0, 0.0, 3.0, 6.0, 7.0, NAN)
    assert_same(ref.relu6(x), a(0.0, 0.0, 3.0, 6.0, 6.0, NAN))
    assert_same(ref.relu6_backward(np.ones(6), x), a(0.0, 0.0, 1.0, 0.0, 0.0, 1.0))


def test_thresholded_relu():
    x = a(-3.0, 0.5, 1.0, 1.5, NAN)
    # strict: x == theta gives 0
    assert_same(ref.thresholded_relu(x), a(0.0, 0.0, 0.0, 1.5, NAN))
    assert_same(ref.thresholded_relu(x, 0.25), a(0.0, 0.5, 1.0, 1.5, NAN))
    assert_same(ref.thresholded_relu_backward(np.ones(5), x), a(0.0, 0.0, 0.0, 1.0, 1.0))


def test_elu():
    x = a(-0.0, 0.0, 1.0, -INF, NAN)
    # alpha * expm1(+-0) is a zero of the sign of x; -inf gives -alpha
    assert_same(ref.elu(x, 2.0), a(-0.0, 0.0, 1.0, -2.0, NAN))
    assert_same(ref.elu_backward(np.full(5, 3.0), x, 2.0), a(6.0, 6.0, 3.0, 0.0, 3.0))
    # exp(-ln 2) = 1/2: y = 2 * (1/2 - 1) = -1, the gradient 2 * 1/2 = 1
    np.testing.assert_allclose(ref.elu(a(-np.log(2.0)), 2.0), [-1.0], rtol=1e-15)
    np.testing.assert_allclose(ref.elu_backward(a(1.0), a(-np.log(2.0)), 2.0), [1.0],
                               rtol=1e-15)
    # expm1, not exp(x) - 1: the digits near 0 are kept
    np.testing.assert_allclose(ref.elu(a(-1e-10)), [-1e-10 + 5e-21], rtol=1e-15)


def test_elu_backward_from_output():
    # y + alpha at and below 0, 1 above
    assert_same(ref.elu_backward_from_output(a(1.0, 1.0, 2.0), a(-1.0, 0.0, 3.0), 2.0),
                a(1.0, 2.0, 2.0))


def test_hardtanh():
    x = a(-2.0, -1.0, -0.0, 0.0, 0.5, 1.0, 2.0, NAN, INF, -INF)
    assert_same(ref.hardtanh(x), a(-1.0, -1.0, -0.0, 0.0, 0.5, 1.0, 1.0, NAN, 1.0, -1.0))
    # the gradient is 0 at both kinks and passes through NaN
    assert_same(ref.hardtanh_backward(np.full(10, 3.0), x),
                a(0.0, 0.0, 3.0, 3.0, 3.0, 0.0, 0.0, 3.0, 0.0, 0.0))
    # a range that holds 0 at its lower end keeps -0.0; min_val == max_val is a constant
    assert_same(ref.hardtanh(a(-0.0, 0.0, -1.0, 7.0), 0.0, 6.0), a(-0.0, 0.0, 0.0, 6.0))
    assert_same(ref.hardtanh(a(-3.0, 0.5, 3.0), 0.5, 0.5), a(0.5, 0.5, 0.5))
    assert_same(ref.hardtanh_backward(a(1.0, 1.0, 1.0), a(-3.0, 0.5, 3.0), 0.5, 0.5),
                a(0.0, 0.0, 0.0))


def test_square():
    x = a(-3.0, -0.0, INF, NAN)
    assert_same(ref.square(x), a(9.0, 0.0, INF, NAN))
    assert_same(ref.square_backward(np.full(4, 0.5), x), a(-3.0, -0.0, INF, NAN))


def test_any_input_dtype_is_computed_in_float64():
    x = np.array([-2.0, 3.0], np.float32)
    assert ref.leaky_relu(x, 0.1).dtype == np.float64
    assert ref.prelu(x, np.float32(0.5)).dtype == np.float64


# -- PReLU's slopes, by hand --------------------------------------------------

def check_prelu(x, slopes, g, y, grad_input, grad_slopes, channel_axis=1):
    x, g = np.asarray(x, np.float64), np.asarray(g, np.float64)
    assert_same(ref.prelu(x, slopes, channel_axis), np.asarray(y, np.float64))
    gi, gs = ref.prelu_backward(g, x, slopes, channel_axis)
    assert_same(gi, np.asarray(grad_input, np.float64))
    assert isinstance(gs, np.ndarray)
    assert_same(gs, np.asarray(grad_slopes, np.float64))


def test_prelu_one_slope_per_channel():
    # (N=2, C=2, L=2)
    check_prelu(x=[[[-2, 4], [-2, -1]], [[1, -4], [-3, 5]]],
                slopes=np.array([0.5, -1.0]),
                g=[[[1, 2], [3, 4]], [[5, 6], [7, 8]]],
                y=[[[-1, 4], [2, 1]], [[1, -2], [3, 5]]],
                grad_input=[[[0.5, 2], [-3, -4]], [[5, 3], [-7, 8]]],
                # channel 0: -2*1 + -4*6; channel 1: -2*3 + -1*4 + -3*7
                grad_slopes=[-26, -31])


def test_prelu_channels_last():
    # (N=1, L=2, C=3): the slopes run along the last axis
    x = [[[-2, -2, -2], [4, -1, -3]]]
    for axis in (-1, 2):
        check_prelu(x=x, slopes=np.array([0.5, 2.0, -1.0]), channel_axis=axis,
                    g=[[[1, 2, 3], [4, 5, 6]]],
                    y=[[[-1, -4, 2], [4, -2, 3]]],
                    grad_input=[[[0.5, 4, -3], [4, 10, -6]]],
                    grad_slopes=[-2, -2 * 2 + -1 * 5, -2 * 3 + -3 * 6])
    with pytest.raises(ValueError):         # 3 slopes, 2 channels on axis 1
        ref.prelu(np.array(x, np.float64), np.array([0.5, 2.0, -1.0]), 1)


def test_prelu_shared_slope():
    x = [[-4, 8], [-0.0, -2]]
    want = dict(g=[[1, 1], [1, 3]], y=[[-1, 8], [-0.0, -0.5]],
                grad_input=[[0.25, 1], [0.25, 0.75]])
    # -4*1 + -0.0*1 + -2*3, in the slopes' own shape: 0-d for a number
    check_prelu(x=x, slopes=0.25, grad_slopes=np.array(-10.0), **want)
    check_prelu(x=x, slopes=np.full((1, 1, 1), 0.25), grad_slopes=np.full((1, 1, 1), -10.0),
                **want)
    check_prelu(x=x, slopes=np.array([0.25]), grad_slopes=[-10.0], **want)


def test_prelu_slopes_broadcast_over_leading_feature_axes():
    # x (N=2, H=2, C=2), slopes (1, C): shared over H, one per C
    check_prelu(x=[[[-1, -2], [-3, 4]], [[-5, -6], [7, -8]]],
                slopes=np.array([[0.5, 2.0]]),
                g=np.ones((2, 2, 2)),
                y=[[[-0.5, -4], [-1.5, 4]], [[-2.5, -12], [7, -16]]],
                grad_input=[[[0.5, 2], [0.5, 1]], [[0.5, 2], [1, 2]]],
                grad_slopes=[[-1 - 3 - 5, -2 - 6 - 8]])


def test_prelu_slopes_broadcast_over_trailing_axes():
    # x (N=2, C=2, L=3), slopes (C, 1): one per channel, shared along L
    check_prelu(x=[[[-1, 2, -3], [-4, -5, 6]], [[1, -1, -1], [-2, 0, -2]]],
                slopes=np.array([[0.5], [3.0]]),
                g=np.ones((2, 2, 3)),
                y=[[[-0.5, 2, -1.5], [-12, -15, 6]], [[1, -0.5, -0.5], [-6, 0, -6]]],
                grad_input=[[[0.5, 1, 0.5], [3, 3, 1]], [[1, 0.5, 0.5], [3, 3, 3]]],
                grad_slopes=[[-1 - 3 - 1 - 1], [-4 - 5 - 2 + 0 - 2]])


def test_prelu_slopes_of_the_full_feature_shape():
    # x (N=2, C=1, L=2), slopes (1, 2): one per position, summed over N only
    check_prelu(x=[[[-1, -2]], [[-3, 4]]], slopes=np.array([[0.5, 2.0]]),
                g=[[[1, 2]], [[3, 4]]],
                y=[[[-0.5, -4]], [[-1.5, 4]]],
                grad_input=[[[0.5, 4]], [[1.5, 4]]],
                grad_slopes=[[-1 * 1 + -3 * 3, -2 * 2]])


def test_prelu_nan_inf_and_zero():
    # NaN takes the slope's branch and makes its channel's gradient NaN;
    # 0 * -inf is NaN; a zero slope keeps the sign of a zero x
    with np.errstate(invalid="ignore"):
        check_prelu(x=[[[NAN, -1], [-2, 3]], [[-INF, INF], [-0.0, 0.0]]],
                    slopes=np.array([0.5, 0.0]),
                    g=np.ones((2, 2, 2)),
                    y=[[[NAN, -0.5], [-0.0, 3]], [[-INF, INF], [-0.0, 0.0]]],
                    grad_input=[[[0.5, 0.5], [0, 1]], [[0.5, 1], [0, 0]]],
                    grad_slopes=[NAN, -2.0])
        y = ref.prelu(np.array([[-INF, 1.0]]), 0.0)
    assert np.isnan(y[0, 0]) and y[0, 1] == 1.0


@pytest.mark.parametrize("x_shape, slopes_shape", [
    ((2, 3, 4), (5,)),              # 5 slopes, 3 channels
    ((4,), (4,)),                   # per channel needs (N, C, ...)
    ((2, 3, 4), (1, 3, 4)),         # more dims than x.shape[1:]
    ((2, 3, 4), (2, 1)),            # does not broadcast to (3, 4)
    ((2, 1, 4), (3, 4)),            # would broadcast with x, not to it
])
def test_prelu_slopes_that_do_not_fit(x_shape, slopes_shape):
    with pytest.raises(ValueError):
        ref.prelu(np.zeros(x_shape), np.ones(slopes_shape))
    with pytest.raises(ValueError):
        ref.prelu_backward(np.zeros(x_shape), np.zeros(x_shape), np.ones(slopes_shape))
