"""The elementwise ops of fastact's functional API, one spec each.

fastact._api makes each op's forward ``name(x, <params>, *, out=None,
inplace=False, stream=None)`` and backward ``name_backward(grad_output, x,
<params>, *, out=None, inplace=False, stream=None)`` from its `OpSpec`, with
the numpydoc docstring assembled from the spec's texts and the parts every op
shares.  Adding an elementwise op to the Python side is adding its spec here
(and its name to ``_api.pyi``), once src/ops.h has its FA_OP_* code and
fastact._reference its oracle.
"""
from collections import namedtuple
from math import inf

from . import _checks, _cpu

Param = namedtuple("Param", "name default check doc")
Param.__doc__ = """A parameter of an op.

check: the rule, ``check(value, name)`` -> the value as a Python float
(fastact._checks); doc: its description for the Parameters section.
"""

OpSpec = namedtuple("OpSpec", (
    "name op params kernel_params oracle summary examples backward_summary backward_examples "
    "prepare extended returns raises notes backward_extended backward_returns backward_notes"),
    defaults=(None, "", "", "", "", "", "", ""))
OpSpec.__doc__ = """One elementwise op.

name: the forward's name (the backward's is name + "_backward"); op: its
FA_OP_* code (src/ops.h); params: its Params, in signature order;
kernel_params: the kernel's three parameters p[0..2], each a constant or
the name of a Param (its checked value); prepare: None, or for ops whose
rules tie parameters together or whose kernel depends on them, a function
of the raw parameters returning ``(op, kernel_params)`` (kernel_params and
the checks are then unused); oracle: its float64 oracle in fastact._reference.

The rest are docstring texts, numpydoc sections without their headings:
summary (one line) and examples are required; extended, returns (what
follows "Of x's shape and dtype" for y), raises and notes default to ""
(no section).  The backward_* texts are the same for the gradient.
"""


def kernel_args(spec, *values):
    """(op, (p0, p1, p2)): the kernel op `spec` runs for its parameters' values
    (in signature order; trailing ones left out take their defaults), checked
    by their rules."""
    values += tuple(p.default for p in spec.params[len(values):])
    if spec.prepare is not None:
        return spec.prepare(*values)
    checked = {p.name: p.check(v, p.name) for p, v in zip(spec.params, values)}
    return spec.op, tuple(checked[k] if isinstance(k, str) else float(k)
                          for k in spec.kernel_params)


# the op codes the prepare functions below return, looked up once (they run
# on every call with non-default parameters)
_OP_RELU = _cpu.OPS["relu"]
_OP_RELU_PLAIN = _cpu.OPS["relu_plain"]
_OP_HARDTANH = _cpu.OPS["hardtanh"]
_PLAIN_PARAMS = (0.0, 0.0, 0.0)
_check_relu = _checks.relu
_check_hardtanh = _checks.hardtanh


def relu_kernel(negative_slope, max_value, threshold):
    """(op, kernel_params) for relu: the plain kernel ``max(x, 0)`` for zero
    slope and threshold and no cap (the defaults), else the general one."""
    if (max_value is None and type(negative_slope) in (float, int)
            and type(threshold) in (float, int) and negative_slope == 0 and threshold == 0):
        return _OP_RELU_PLAIN, _PLAIN_PARAMS
    return _OP_RELU, _check_relu(negative_slope, max_value, threshold)


def hardtanh_kernel(min_val, max_val):
    """(op, kernel_params) for hardtanh: its bounds, checked together."""
    return _OP_HARDTANH, _check_hardtanh(min_val, max_val) + (0.0,)


OPS = (
    OpSpec(
        name="leaky_relu", op=_cpu.OPS["leaky_relu"],
        params=(Param("negative_slope", 0.01, _checks.finite, """\
negative_slope : float, default 0.01
    Any finite slope, including 0, negative ones and ones > 1.  The
    default is PyTorch's; tf.nn.leaky_relu and keras.activations use 0.2,
    Keras's LeakyReLU layer 0.3."""),),
        kernel_params=("negative_slope", 0.0, 0.0), oracle="leaky_relu",
        summary="Leaky ReLU: ``y = x if x > 0 else negative_slope * x``, elementwise.",
        notes="""\
``x > 0 ? x : negative_slope * x`` in x's dtype (the slope rounded to
it): NaN stays NaN, x == 0 and -0.0 give ``negative_slope * x`` (a zero
with the product's sign).  Never ``max(x, negative_slope * x)``, which is
wrong for slopes > 1 and negative ones.""",
        examples="""\
>>> import numpy as np, fastact
>>> x = np.array([[-0.9, -0.9, -0.9], [1.1, 1.1, 1.1]], dtype=np.float32)
>>> fastact.leaky_relu(x, 1.205321)
array([[-1.0847888, -1.0847888, -1.0847888],
       [ 1.1      ,  1.1      ,  1.1      ]], dtype=float32)
>>> fastact.leaky_relu(np.array([-2.0, 0.0, 3.0]))
array([-0.02,  0.  ,  3.  ])""",
        backward_summary=("Gradient of :func:`leaky_relu`: ``grad_output if x > 0 else "
                          "negative_slope * grad_output``."),
        backward_notes="""\
At x == 0 (and for NaN) the gradient is the slope: the branch the forward
takes there, as in PyTorch.""",
        backward_examples="""\
>>> import numpy as np, fastact
>>> x = np.array([-2.0, 0.0, 3.0])
>>> fastact.leaky_relu_backward(np.ones(3), x, 0.1)
array([0.1, 0.1, 1. ])"""),

    OpSpec(
        name="relu", op=_cpu.OPS["relu"],
        params=(Param("negative_slope", 0.0, _checks.finite, """\
negative_slope : float, default 0.0
    Slope below the threshold; >= 0."""),
                Param("max_value", None, _checks.real, """\
max_value : float or None, default None
    The cap; >= 0, None for none."""),
                Param("threshold", 0.0, _checks.finite, """\
threshold : float, default 0.0
    Where the identity starts; >= 0.""")),
        kernel_params=None, prepare=relu_kernel, oracle="relu",
        summary="Rectified linear unit, with Keras's optional slope, cap and threshold.",
        extended="""\
::

    y = max_value                          where x >= max_value
    y = x                                  where threshold < x < max_value
    y = negative_slope * (x - threshold)   elsewhere (exactly 0 when negative_slope == 0)""",
        raises="""\
ValueError
    For a negative ``negative_slope``, ``max_value`` or ``threshold``
    (Keras's rules), NaN, or an infinite slope or threshold.
TypeError
    For a parameter that is not a real number.""",
        notes="""\
The comparison with the threshold is strict (``x == threshold`` takes the
lower branch), as Keras and PyTorch compute it although Keras's docstring
says ``threshold <= x``.  With ``negative_slope == 0`` the lower branch is
exactly 0, so ``relu(-inf)`` is 0 (not ``0 * -inf``, NaN); -0.0 gives
+0.0.  NaN stays NaN (as in PyTorch; Keras turns it into 0 when
threshold > 0).  The defaults run a dedicated kernel for ``max(x, 0)``.""",
        examples="""\
>>> import numpy as np, fastact
>>> x = np.array([-3.0, -1.0, 0.0, 2.0])
>>> fastact.relu(x)
array([0., 0., 0., 2.])
>>> fastact.relu(x, max_value=1.0)
array([0., 0., 0., 1.])
>>> fastact.relu(x, negative_slope=1.0)
array([-3., -1.,  0.,  2.])
>>> fastact.relu(x, threshold=1.5)
array([0., 0., 0., 2.])
>>> x = np.array([-3.0, -1.0, 0.0, 1.0, 2.0, 5.0, 8.0])
>>> fastact.relu(x, negative_slope=0.5, max_value=6.0, threshold=1.0)
array([-2. , -1. , -0.5,  0. ,  2. ,  5. ,  6. ])""",
        backward_summary="Gradient of :func:`relu`.",
        backward_extended="""\
::

    grad_input = 0                               where x >= max_value
    grad_input = grad_output                     where threshold < x < max_value
    grad_input = negative_slope * grad_output    elsewhere (0 when negative_slope == 0)""",
        backward_notes="""\
At the kinks the gradient is that of the branch the forward takes: the
lower side at ``x == threshold``, 0 at ``x == max_value`` (as PyTorch's
relu6 and hardtanh).  NaN passes grad_output through.""",
        backward_examples="""\
>>> import numpy as np, fastact
>>> x = np.array([-1.0, 0.0, 0.5, 6.0, 7.0])
>>> fastact.relu_backward(np.ones(5), x, negative_slope=0.25, max_value=6.0)
array([0.25, 0.25, 1.  , 0.  , 0.  ])"""),

    OpSpec(
        name="relu6", op=_cpu.OPS["relu"], params=(), kernel_params=(0.0, 6.0, 0.0),
        oracle="relu6",
        summary="``min(max(x, 0), 6)``: :func:`relu` with ``max_value=6``, as torch.nn.ReLU6.",
        returns="-0.0 and -inf give +0.0; NaN stays NaN.",
        examples="""\
>>> import numpy as np, fastact
>>> fastact.relu6(np.array([-1.0, 3.0, 6.0, 9.0]))
array([0., 3., 6., 6.])""",
        backward_summary="Gradient of :func:`relu6`: grad_output where 0 < x < 6, else 0.",
        backward_notes="""\
At x == 0 and x == 6 the gradient is 0, as in PyTorch; NaN passes
grad_output through.""",
        backward_examples="""\
>>> import numpy as np, fastact
>>> fastact.relu6_backward(np.ones(4), np.array([0.0, 3.0, 6.0, 9.0]))
array([0., 1., 0., 0.])"""),

    OpSpec(
        name="thresholded_relu", op=_cpu.OPS["relu"],
        params=(Param("theta", 1.0, _checks.theta, """\
theta : float, default 1.0
    The threshold, >= 0 (ValueError otherwise, as Keras)."""),),
        kernel_params=(0.0, inf, "theta"), oracle="thresholded_relu",
        summary="``y = x if x > theta else 0``, as Keras 2's ThresholdedReLU.",
        extended="""\
The same as ``relu(x, threshold=theta)`` (Keras 3 dropped the layer for
that).""",
        returns="x == theta gives 0, NaN stays NaN.",
        examples="""\
>>> import numpy as np, fastact
>>> fastact.thresholded_relu(np.array([-1.0, 0.5, 1.0, 1.5]))
array([0. , 0. , 0. , 1.5])""",
        backward_summary=("Gradient of :func:`thresholded_relu`: grad_output where "
                          "x > theta, else 0."),
        backward_notes="""\
At x == theta the gradient is 0 (the branch the forward takes there).""",
        backward_examples="""\
>>> import numpy as np, fastact
>>> fastact.thresholded_relu_backward(np.ones(3), np.array([0.5, 1.0, 1.5]))
array([0., 0., 1.])"""),

    OpSpec(
        name="elu", op=_cpu.OPS["elu"],
        params=(Param("alpha", 1.0, _checks.finite, """\
alpha : float, default 1.0
    Any finite value (the default of PyTorch and Keras)."""),),
        kernel_params=("alpha", 0.0, 0.0), oracle="elu",
        summary="Exponential linear unit: ``y = x if x > 0 else alpha * expm1(x)``.",
        notes="""\
``expm1`` keeps full relative accuracy near 0 (``elu(-1e-7)`` is
``-9.9999995e-08``, as PyTorch; ``exp(x) - 1`` would lose half the
digits).  x == 0 takes the exponential branch (``alpha * 0``), -inf gives
``-alpha``, NaN stays NaN.""",
        examples="""\
>>> import numpy as np, fastact
>>> fastact.elu(np.array([-1.0, -1e-7, 0.0, 2.0]))
array([-6.32120559e-01, -9.99999950e-08,  0.00000000e+00,  2.00000000e+00])""",
        backward_summary=("Gradient of :func:`elu`: ``grad_output if x > 0 else "
                          "grad_output * alpha * exp(x)``."),
        backward_returns="""\
At x == 0 the gradient is alpha (the branch the forward takes); at -inf
0; NaN passes grad_output through.""",
        backward_examples="""\
>>> import numpy as np, fastact
>>> fastact.elu_backward(np.ones(3), np.array([-1.0, 0.0, 2.0]), alpha=2.0)
array([0.73575888, 2.        , 1.        ])"""),

    OpSpec(
        name="hardtanh", op=_cpu.OPS["hardtanh"],
        params=(Param("min_val", -1.0, _checks.real, """\
min_val : float, default -1.0
    The lower bound (may be -inf)."""),
                Param("max_val", 1.0, _checks.real, """\
max_val : float, default 1.0
    The upper bound, >= min_val (may be inf).""")),
        kernel_params=None, prepare=hardtanh_kernel, oracle="hardtanh",
        summary="Hard tanh: x clipped to ``[min_val, max_val]``, as torch's F.hardtanh.",
        extended="""\
::

    y = min_val   where x < min_val
    y = max_val   where x > max_val
    y = x         elsewhere, NaN included""",
        raises="""\
ValueError
    For ``min_val > max_val`` (as PyTorch) or a NaN bound.
TypeError
    For a bound that is not a real number.""",
        notes="""\
A zero x inside the range keeps its sign (``hardtanh(-0.0)`` is -0.0, also
with ``min_val == 0``), as in PyTorch.  ``relu6`` is ``hardtanh(x, 0, 6)``
but for the sign of zero and NaN (relu6 gives +0.0 for -0.0, as Keras).""",
        examples="""\
>>> import numpy as np, fastact
>>> fastact.hardtanh(np.array([-3.0, -0.5, 0.0, 2.0]))
array([-1. , -0.5,  0. ,  1. ])
>>> fastact.hardtanh(np.array([-3.0, 2.0, 7.0]), 0.0, 6.0)
array([0., 2., 6.])""",
        backward_summary=("Gradient of :func:`hardtanh`: grad_output where "
                          "``min_val < x < max_val``, else 0."),
        backward_notes="""\
At both kinks (x == min_val, x == max_val) the gradient is 0, and NaN
passes grad_output through, as PyTorch's hardtanh_backward.""",
        backward_examples="""\
>>> import numpy as np, fastact
>>> fastact.hardtanh_backward(np.ones(4), np.array([-1.0, -0.5, 0.5, 1.0]))
array([0., 1., 1., 0.])"""),

    OpSpec(
        name="square", op=_cpu.OPS["square"], params=(), kernel_params=(0.0, 0.0, 0.0),
        oracle="square",
        summary="``y = x * x``, elementwise (the classic example of a custom activation).",
        examples="""\
>>> import numpy as np, fastact
>>> fastact.square(np.array([-3.0, 0.5, 2.0]))
array([9.  , 0.25, 4.  ])""",
        backward_summary=("Gradient of :func:`square`: ``grad_output * 2 * x`` "
                          "(rounded once, also where 2 * x overflows)."),
        backward_examples="""\
>>> import numpy as np, fastact
>>> fastact.square_backward(np.ones(3), np.array([-3.0, 0.5, 2.0]))
array([-6.,  1.,  4.])"""),
)


# --- the docstring parts every op shares -------------------------------------------

_X = """\
x : ndarray of float32, float64, float16 or bfloat16
    Any shape."""
_GRAD_OUTPUT = """\
grad_output : ndarray
    Gradient of the loss with respect to {name}'s output; x's shape and dtype.
x : ndarray
    {name}'s input."""
_OUT = """\
out : ndarray, optional
    Array of x's shape and dtype for the result; it may be x itself.
inplace : bool, default False
    Write the result into x and return x."""
_BACKWARD_OUT = """\
out : ndarray, optional
    Receives grad_input; it may be grad_output or x itself (any other
    overlap with either is an error).
inplace : bool, default False
    Write grad_input into grad_output."""
_STREAM = """\
stream : optional
    For GPU arrays: the CUDA stream to order the work on.  Must be None
    for numpy arrays."""


def _section(title, text):
    return f"\n\n{title}\n{'-' * len(title)}\n{text}" if text else ""


def forward_doc(spec):
    """The forward's docstring."""
    params = "\n".join([_X] + [p.doc for p in spec.params] + [_OUT, _STREAM])
    returns = "y : ndarray\n    Of x's shape and dtype (``out`` or ``x`` when given)."
    if spec.returns:
        returns += "\n    " + spec.returns.replace("\n", "\n    ")
    return (spec.summary + ("\n\n" + spec.extended if spec.extended else "")
            + _section("Parameters", params) + _section("Returns", returns)
            + _section("Raises", spec.raises) + _section("Notes", spec.notes)
            + _section("Examples", spec.examples) + "\n")


def backward_doc(spec):
    """The backward's docstring."""
    params = [_GRAD_OUTPUT.format(name=spec.name)]
    if spec.params:
        params.append(f"{', '.join(p.name for p in spec.params)}\n"
                      f"    As for :func:`{spec.name}`.")
    params = "\n".join(params + [_BACKWARD_OUT, _STREAM])
    returns = "grad_input : ndarray\n    Of x's shape and dtype."
    if spec.backward_returns:
        returns += "\n    " + spec.backward_returns.replace("\n", "\n    ")
    return (spec.backward_summary
            + ("\n\n" + spec.backward_extended if spec.backward_extended else "")
            + _section("Parameters", params) + _section("Returns", returns)
            + _section("Notes", spec.backward_notes)
            + _section("Examples", spec.backward_examples) + "\n")
