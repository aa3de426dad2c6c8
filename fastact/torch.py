"""PyTorch operators, autograd and modules over fastact's kernels.

``import fastact.torch`` registers operators under the ``fastact`` namespace
of ``torch.library`` (``torch.ops.fastact.prelu`` ...), each with its CPU
kernel (fastact's C kernels run on the tensors' own memory), its CUDA
kernel (fastact's CUDA build on torch's current stream; a RuntimeError
saying why when this fastact has none), a fake implementation (tracing,
``torch.compile``) and autograd:

=========================================================  ================================
operator                                                   backward operator
=========================================================  ================================
``prelu(x, weight)``                                       ``prelu_backward(g, x, weight)``
                                                           -> (grad_input, grad_weight);
                                                           ``prelu_backward_input`` when
                                                           weight needs no gradient
``leaky_relu(x, negative_slope=0.01)``                     ``leaky_relu_backward(g, x, ...)``
``elu(x, alpha=1.0)``                                      ``elu_backward(g, x, ...)``
``hardtanh(x, min_val=-1.0, max_val=1.0)``                 ``hardtanh_backward(g, x, ...)``
``relu6(x)``                                               ``relu6_backward(g, x)``
``relu(x, negative_slope=0.0, max_value=None,              ``relu_backward(g, x, ...)``
threshold=0.0)`` (Keras's parameters)
``thresholded_relu(x, theta=1.0)``                         ``thresholded_relu_backward``
``affine_prelu(x, scale, shift, weight)``: BatchNorm's     (forward only: inference)
inference affine and PReLU in one pass
=========================================================  ================================

and in-place forms ``leaky_relu_``, ``elu_``, ``hardtanh_``, ``relu6_``,
``relu_``, ``thresholded_relu_`` (they declare that they mutate x; no
autograd).  ``prelu`` has a CPU autocast rule, torch's for its prelu (float
inputs other than float64 are cast to the autocast dtype).  The functions
of this module call the same kernels; in eager mode, for plain CPU tensors,
without the dispatcher.  Their ``inplace=True`` works under autograd as
torch's does (the gradient from the output).  The modules ``PReLU``,
``LeakyReLU``, ``ELU``, ``Hardtanh`` and ``ReLU6`` are torch.nn's own
classes with these functions in ``forward``, and ``convert(model)`` swaps
them in.

Results are torch's, bitwise for the forward and the input gradient in
float32 and float64 (the sign of zero included), except ELU, which fastact
computes with an exactly rounded ``expm1`` where torch's float32 kernel can
be 2 ulp off.  PReLU's weight gradient is summed in float64 in a fixed order
(torch sums in the tensor's dtype): the more accurate value, the same
whatever the thread count.

Tensors are float32, float64, float16 or bfloat16.  Contiguous
and channels_last (``channels_last``, ``channels_last_3d``) tensors are read
where they are, and results keep the input's memory format; other layouts
are copied first.  PReLU's weight has one value or one per channel (axis 1),
of x's dtype, as for ``torch.nn.functional.prelu``.  Double backward is not
implemented: it raises a RuntimeError naming the operator.
"""
try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised without torch
    raise ImportError(
        'fastact.torch needs PyTorch, which is not installed: pip install "fastact[torch]"'
    ) from exc

import math

from . import _checks, _cpu, _dtypes, _ops

__all__ = ["prelu", "leaky_relu", "elu", "hardtanh", "relu6", "relu", "thresholded_relu",
           "PReLU", "LeakyReLU", "ELU", "Hardtanh", "ReLU6", "convert"]

# from fastact._dtypes's table: the kernels' code of each torch dtype, and per
# code the dtype the kernels hold slopes and grad_slopes in (float32 for
# float16 and bfloat16)
_CODES = {_dtypes.torch_dtype(d): d.code for d in _dtypes.TABLE}
_COMPUTE = tuple(getattr(torch, d.compute) for d in _dtypes.TABLE)
_F64 = _cpu.DT_F64
_CONTIG = torch.contiguous_format
_CHANNELS_LAST = {4: torch.channels_last, 5: torch.channels_last_3d}
_OP_LEAKY_RELU = _cpu.OPS["leaky_relu"]
_raw_prelu_forward = _cpu.raw_prelu_forward
_empty_like = torch.empty_like
_torch_prelu = torch.nn.functional.prelu
_advise_huge_pages = _cpu.raw_advise_huge_pages
# torch applies its thread count (torch.set_num_threads) to a thread's OpenMP
# setting, which fastact's kernels follow, the first time torch works in that
# thread: this call does it in a thread where torch has run nothing yet
_follow_torch_threads = torch.get_num_threads
_HUGE_PAGES_MIN_BYTES = 1 << 22


class _CPU:
    """How the kernels run on the CPU: fastact's C kernels on addresses (the
    CUDA launcher below takes the same arguments)."""
    prelu_forward = staticmethod(_cpu.raw_prelu_forward)
    prelu_backward = staticmethod(_cpu.raw_prelu_backward)
    unary_forward = staticmethod(_cpu.raw_unary_forward)
    unary_backward = staticmethod(_cpu.raw_unary_backward)
    affine_prelu_forward = staticmethod(_cpu.raw_affine_prelu_forward)


class _CUDA:
    """fastact's CUDA kernels on torch's current stream of t's device, with
    the CPU kernels' arguments (a RuntimeError saying why when this fastact
    has no usable CUDA build)."""

    def __init__(self, t):
        from . import _device
        self.cuda = _device._cuda_or_raise()
        self.device = t.device.index
        self.stream = torch.cuda.current_stream(t.device).cuda_stream
        self.torch_device = t.device

    def prelu_forward(self, code, x, slopes, y, outer, channels, inner):
        self.cuda.prelu_forward(self.device, code, x, slopes, False, 0.0, y, outer, channels,
                                inner, self.stream)

    def prelu_backward(self, code, g, x, slopes, gi, grad_slopes, grad_slopes_f64, outer,
                       channels, inner):
        scratch = None
        if grad_slopes == 0:          # the CUDA kernel always writes the slope sums
            scratch = torch.empty(channels, dtype=torch.float32, device=self.torch_device)
            grad_slopes, grad_slopes_f64 = scratch.data_ptr(), False
        self.cuda.prelu_backward(self.device, code, g, x, slopes, False, 0.0, gi, grad_slopes,
                                 _F64 if grad_slopes_f64 else _cpu.DT_F32, False, outer,
                                 channels, inner, self.stream)
        del scratch                   # the caching allocator orders its reuse on the stream

    def unary_forward(self, code, op, p0, p1, p2, x, y, n):
        self.cuda.unary_forward(self.device, op, code, p0, p1, p2, x, y, n, self.stream)

    def unary_backward(self, code, op, p0, p1, p2, g, x, gi, n):
        self.cuda.unary_backward(self.device, op, code, p0, p1, p2, g, x, gi, n, self.stream)

    def affine_prelu_forward(self, code, x, scale, shift, slopes, y, outer, channels, inner):
        self.cuda.affine_prelu_forward(self.device, code, x, scale, shift, slopes, False, y,
                                       outer, channels, inner, self.stream)


# --- checks and layouts --------------------------------------------------------------

def _code(t, name):
    """The kernels' dtype code of tensor t (TypeError naming it otherwise)."""
    code = _CODES.get(t.dtype)
    if code is None:
        raise _dtypes.unsupported(name, t.dtype, on_cpu=False)
    return code


def _check_grad_output(grad_output, x):
    _checks.matches("grad_output", grad_output.dtype, tuple(grad_output.shape), x.dtype,
                    tuple(x.shape))


def _channels(x, weight):
    """PReLU's weight checked against x, as torch.nn.functional.prelu takes it:
    returns its number of values (1: shared, else one per channel on axis 1)."""
    if weight.dim() > 1:
        raise ValueError(f"weight must be a scalar or a 1-D tensor (as for torch's prelu), "
                         f"got {weight.dim()} dims")
    if weight.dtype != x.dtype:
        raise _checks.mismatch("weight", "dtype", weight.dtype, x.dtype)
    if weight.device != x.device:
        raise ValueError(f"weight is on {weight.device} but x is on {x.device}: pass "
                         f"tensors on one device")
    n = weight.numel()
    channels = x.shape[1] if x.dim() >= 2 else 1
    if n != 1 and n != channels:
        raise ValueError(f"weight has {n} values but x has {channels} channels (axis 1)")
    return n


def _layout(t):
    """The memory format t is dense in (contiguous first), None for others."""
    if t.is_contiguous():
        return _CONTIG
    fmt = _CHANNELS_LAST.get(t.dim())
    if fmt is not None and t.is_contiguous(memory_format=fmt):
        return fmt
    return None


def _operands(x, out):
    """(x dense in a format, that format, the tensor the kernel writes): out
    itself when it is dense in that format, else a temporary copied to out."""
    fmt = _layout(x)
    if fmt is None:
        fmt = _layout(out) or _CONTIG
        x = x.contiguous(memory_format=fmt)
    if fmt is _CONTIG:
        target = out if out.is_contiguous() else _empty_like(x)
    else:
        target = out if out.is_contiguous(memory_format=fmt) else _empty_like(x)
    return x, fmt, target


def _like(t, fmt):
    """t dense in format fmt (t itself when it is)."""
    if fmt is _CONTIG:
        return t if t.is_contiguous() else t.contiguous()
    return t if t.is_contiguous(memory_format=fmt) else t.contiguous(memory_format=fmt)


def _geometry(x, fmt, n):
    """x's (outer, channels, inner) for n slopes (1: shared; else one per
    channel, axis 1 of NC*, the last of channels_last memory)."""
    size = x.numel()
    if n == 1:
        return 1, 1, size
    if fmt is _CONTIG:
        outer = x.shape[0]
        return outer, n, size // (outer * n)
    return size // n, n, 1


def _slopes(weight, code):
    """weight as the kernels read it: contiguous, in the compute dtype."""
    compute = _COMPUTE[code]
    return (weight if weight.dtype is compute else weight.to(compute)).contiguous()


# --- CPU kernels ---------------------------------------------------------------------

def _new_like(x, size=None, huge_pages=False):
    """torch.empty_like(x) for a kernel's output.  With huge_pages (where
    autograd records: the forward's output, kept for the backward, and the
    input gradient), one of 4 MiB or more on the CPU asks for transparent
    huge pages first (as numpy's allocator does), so that fresh memory
    faults in 2 MiB pages, not 4 KiB ones.  Outputs of inference do not
    ask: inside networks that made batch-16 inference slower, while
    training steps were level with it or faster (docs/performance.md,
    "Allocation in fastact.torch").  Every kernel call
    that writes a new output passes here, so it also makes the thread
    follow torch's thread count."""
    _follow_torch_threads()
    out = _empty_like(x)
    # (size: x's element count where the caller has it; no output of fewer
    # than _HUGE_PAGES_MIN_BYTES / 8 elements can reach the threshold)
    if huge_pages and (size is None or size >= _HUGE_PAGES_MIN_BYTES // 8):
        nbytes = out.nbytes
        if nbytes >= _HUGE_PAGES_MIN_BYTES and out.is_cpu:
            _advise_huge_pages(out.data_ptr(), nbytes)
    return out


def _prelu_cpu(x, weight, huge_pages=False):
    # the common case first, its checks inlined (a small call costs about as
    # much as they do): contiguous float32/float64 x of 2 or more dims, a
    # contiguous 1-D weight of its dtype, shared or one value per channel
    dtype = x.dtype
    code = _CODES.get(dtype)
    if (code is not None and _COMPUTE[code] is dtype and weight.dtype is dtype
            and x.is_contiguous() and weight.dim() == 1 and weight.is_contiguous()):
        shape = x.shape
        size = x.numel()
        n = weight.numel()
        if len(shape) >= 2 and size and (n == shape[1] or n == 1):
            out = _new_like(x, size, huge_pages)
            if n == 1:
                outer, inner = 1, size
            else:
                outer = shape[0]
                inner = size // (outer * n)
            _raw_prelu_forward(code, x.data_ptr(), weight.data_ptr(), out.data_ptr(),
                               outer, n, inner)
            return out
    return _prelu_general(x, weight, huge_pages=huge_pages)


def _prelu_general(x, weight, run=_CPU, huge_pages=False):
    code = _code(x, "x")
    n = _channels(x, weight)
    out = _new_like(x, huge_pages=huge_pages)
    if x.numel() == 0:
        return out
    xk, fmt, target = _operands(x, out)
    w = _slopes(weight, code)
    outer, channels, inner = _geometry(xk, fmt, n)
    run.prelu_forward(code, xk.data_ptr(), w.data_ptr(), target.data_ptr(),
                      outer, channels, inner)
    if target is not out:
        out.copy_(target)
    return out


def _prelu_backward_kernel(grad_output, x, weight, weight_grad, run=_CPU):
    code = _code(x, "x")
    n = _channels(x, weight)
    _check_grad_output(grad_output, x)
    grad_input = _new_like(x, huge_pages=True)
    grad_weight = None
    if weight_grad:
        grad_weight = torch.empty(weight.shape, dtype=_COMPUTE[code], device=x.device)
    if x.numel() == 0:
        if weight_grad:
            grad_weight.zero_()
    else:
        xk, fmt, target = _operands(x, grad_input)
        g = _like(grad_output, fmt)
        if weight_grad or n != 1 or run is not _CPU:
            w = _slopes(weight, code)
            outer, channels, inner = _geometry(xk, fmt, n)
            run.prelu_backward(code, g.data_ptr(), xk.data_ptr(), w.data_ptr(),
                               target.data_ptr(),
                               grad_weight.data_ptr() if weight_grad else 0, code == _F64,
                               outer, channels, inner)
        else:       # one slope and no weight gradient: leaky_relu's, no reduction
            run.unary_backward(code, _OP_LEAKY_RELU, float(weight), 0.0, 0.0,
                               g.data_ptr(), xk.data_ptr(), target.data_ptr(), x.numel())
        if target is not grad_input:
            grad_input.copy_(target)
    if not weight_grad:
        return grad_input
    if grad_weight.dtype is not weight.dtype:
        grad_weight = grad_weight.to(weight.dtype)
    return grad_input, grad_weight


def _unary_kernel(op, params, x, run=_CPU, huge_pages=False):
    code = _code(x, "x")
    out = _new_like(x, huge_pages=huge_pages)
    size = x.numel()
    if size == 0:
        return out
    xk, _, target = _operands(x, out)
    run.unary_forward(code, op, *params, xk.data_ptr(), target.data_ptr(), size)
    if target is not out:
        out.copy_(target)
    return out


def _unary_inplace_kernel(op, params, x, run=_CPU):
    _follow_torch_threads()
    code = _code(x, "x")
    size = x.numel()
    if size == 0:
        return
    if _layout(x) is not None:
        ptr = x.data_ptr()
        run.unary_forward(code, op, *params, ptr, ptr, size)
    else:
        x.copy_(_unary_kernel(op, params, x, run))


def _unary_backward_kernel(op, params, grad_output, x, run=_CPU):
    code = _code(x, "x")
    _check_grad_output(grad_output, x)
    grad_input = _new_like(x, huge_pages=True)
    size = x.numel()
    if size == 0:
        return grad_input
    xk, fmt, target = _operands(x, grad_input)
    g = _like(grad_output, fmt)
    run.unary_backward(code, op, *params, g.data_ptr(), xk.data_ptr(), target.data_ptr(),
                       size)
    if target is not grad_input:
        grad_input.copy_(target)
    return grad_input


# --- the operators -----------------------------------------------------------------

_lib = torch.library.Library("fastact", "DEF")  # noqa: TOR901 - the ops below are CPU-only


def _define(schema, kernel, fake, cpu=None):
    """Define an operator: kernel(*args, run=...) serves the CPU (or cpu
    does) and CUDA devices (fastact's CUDA build, on the first tensor's
    device)."""
    name = schema.partition("(")[0]
    _lib.define(schema)
    _lib.impl(name, cpu or kernel, "CPU")
    _lib.impl(name, lambda *args: kernel(*args, run=_CUDA(args[0])), "CUDA")
    torch.library.register_fake("fastact::" + name, fake, lib=_lib)
    return getattr(torch.ops.fastact, name).default


def _prelu_fake(x, weight):
    _code(x, "x")
    _channels(x, weight)
    return _empty_like(x)


def _prelu_backward_fake(grad_output, x, weight):
    _code(x, "x")
    _channels(x, weight)
    _check_grad_output(grad_output, x)
    return _empty_like(x), _empty_like(weight)


def _prelu_backward_input_fake(grad_output, x, weight):
    return _prelu_backward_fake(grad_output, x, weight)[0]


_prelu_op = _define("prelu(Tensor x, Tensor weight) -> Tensor", _prelu_general, _prelu_fake,
                    cpu=_prelu_cpu)
_prelu_backward_op = _define(
    "prelu_backward(Tensor grad_output, Tensor x, Tensor weight) -> (Tensor, Tensor)",
    lambda g, x, w, run=_CPU: _prelu_backward_kernel(g, x, w, True, run),
    _prelu_backward_fake)
_prelu_backward_input_op = _define(
    "prelu_backward_input(Tensor grad_output, Tensor x, Tensor weight) -> Tensor",
    lambda g, x, w, run=_CPU: _prelu_backward_kernel(g, x, w, False, run),
    _prelu_backward_input_fake)


_SPECS = {spec.name: spec for spec in _ops.OPS}
_OP_ELU_OUTPUT = _cpu.OP_ELU_OUTPUT
_OP_RELU_PLAIN = _cpu.OPS["relu_plain"]


def _schema(params):
    """Parameters as an operator schema spells them (None: an optional float)."""
    return ", ".join(f"float{'?' if p.default is None else ''} {p.name}={p.default}"
                     for p in params)


class _Member:
    """One op of the family: its schema's parameters, and ``kernels(*values)``
    -> the (op, kernel parameters) of its forward, of its backward from x,
    and of its backward from the forward's output (None where the output
    does not determine the gradient: in place, torch then raises too)."""

    def __init__(self, params, kernels):
        self.params = params
        self._kernels = kernels
        self._cache = {}

    def kernels(self, *values):
        # checking the parameters costs more than a small call's kernel: the
        # answers are kept per values (their types and reprs, so that 1 and
        # True, 0.0 and -0.0 stay apart; invalid values are never kept)
        key = (tuple(map(type, values)), repr(values))
        found = self._cache.get(key)
        if found is None:
            found = self._kernels(*values)
            if len(self._cache) >= 256:
                self._cache.clear()
            self._cache[key] = found
        return found


def _from_spec(name, result_backward=None):
    """A member whose three kernels are fastact._ops's for `name` (the same
    kernel works from the output, unless result_backward says otherwise)."""
    spec = _SPECS[name]

    def kernels(*values):
        k = _ops.kernel_args(spec, *values)
        return k, k, (k if result_backward is None else result_backward(k))
    return _Member(spec.params, kernels)


def _leaky_from_output(kernel):
    # y > 0 exactly where x > 0 for a slope >= 0 (torch's rule for the in-place op)
    return kernel if kernel[1][0] >= 0 else None


def _elu_from_output(kernel):
    # for x <= 0 the gradient is y + alpha: ELU's output form, alpha >= 0 (as torch)
    alpha = kernel[1][0]
    return (_OP_ELU_OUTPUT, (alpha, 0.0, 0.0)) if alpha >= 0 else None


# torch's relu and relu6 keep -0.0 (hardtanh's forward does; fastact.relu and
# fastact.relu6 give +0.0); the gradient is relu's (hardtanh's is 0 at +inf).
# Keras's parameters run fastact's relu kernel, as fastact.relu does.
_TORCH_RELU = ((_SPECS["hardtanh"].op, (0.0, math.inf, 0.0)), (_OP_RELU_PLAIN, (0.0, 0.0, 0.0)),
               (_OP_RELU_PLAIN, (0.0, 0.0, 0.0)))
_TORCH_RELU6 = (_ops.kernel_args(_SPECS["hardtanh"], 0.0, 6.0),) * 3


def _relu_kernels(*values):
    kernel = _ops.kernel_args(_SPECS["relu"], *values)
    return _TORCH_RELU if kernel[0] == _OP_RELU_PLAIN else (kernel,) * 3


_FAMILY = {
    "leaky_relu": _from_spec("leaky_relu", _leaky_from_output),
    "elu": _from_spec("elu", _elu_from_output),
    "hardtanh": _from_spec("hardtanh"),
    "relu": _Member(_SPECS["relu"].params, _relu_kernels),
    "relu6": _Member((), lambda: _TORCH_RELU6),
    "thresholded_relu": _from_spec("thresholded_relu"),
}


def _family_ops(name, member):
    """Define name, name_ (in place) and name_backward; returns them."""
    params_schema = _schema(member.params)
    sep = ", " if params_schema else ""
    kernels = member.kernels

    def forward(x, *params, run=_CPU):
        return _unary_kernel(*kernels(*params)[0], x, run)

    def forward_inplace(x, *params, run=_CPU):
        _unary_inplace_kernel(*kernels(*params)[0], x, run)

    def backward(grad_output, x, *params, run=_CPU):
        return _unary_backward_kernel(*kernels(*params)[1], grad_output, x, run)

    def fake(x, *params):
        kernels(*params)
        _code(x, "x")
        return _empty_like(x)

    def fake_inplace(x, *params):
        kernels(*params)
        _code(x, "x")

    def fake_backward(grad_output, x, *params):
        kernels(*params)
        _code(x, "x")
        _check_grad_output(grad_output, x)
        return _empty_like(x)

    fwd = _define(f"{name}(Tensor x{sep}{params_schema}) -> Tensor", forward, fake)
    inp = _define(f"{name}_(Tensor(a!) x{sep}{params_schema}) -> ()", forward_inplace,
                  fake_inplace)
    bwd = _define(f"{name}_backward(Tensor grad_output, Tensor x{sep}{params_schema}) -> Tensor",
                  backward, fake_backward)
    return fwd, inp, bwd


_OPS = {name: _family_ops(name, member) for name, member in _FAMILY.items()}


# --- autograd and autocast -----------------------------------------------------------

def _prelu_setup(ctx, inputs, output):
    x, weight = inputs
    ctx.save_for_backward(x, weight)


def _prelu_grad(ctx, grad_output):
    x, weight = ctx.saved_tensors
    if ctx.needs_input_grad[1]:
        return _prelu_backward_op(grad_output, x, weight)
    return _prelu_backward_input_op(grad_output, x, weight), None


torch.library.register_autograd("fastact::prelu", _prelu_grad, setup_context=_prelu_setup,
                                lib=_lib)


def _family_autograd(name, backward_op):
    def setup(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])
        ctx.params = inputs[1:]

    def grad(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return (backward_op(grad_output, x, *ctx.params),) + (None,) * len(ctx.params)

    torch.library.register_autograd("fastact::" + name, grad, setup_context=setup,
                                    lib=_lib)


for _name, (_fwd, _inp, _bwd) in _OPS.items():
    _family_autograd(_name, _bwd)


def _double_backward_error(name):
    forward = name.partition("_backward")[0]
    return RuntimeError(f"fastact::{name} has no derivative: double backward through "
                        f"fastact's {forward} is not implemented")


def _no_double_backward(name):
    def setup(ctx, inputs, output):
        pass

    def grad(ctx, *grads):
        raise _double_backward_error(name)

    torch.library.register_autograd("fastact::" + name, grad, setup_context=setup, lib=_lib)


for _name in ("prelu_backward", "prelu_backward_input",
              *(n + "_backward" for n in _FAMILY)):
    _no_double_backward(_name)


_AUTOCAST_CPU = torch._C.DispatchKeySet(torch._C.DispatchKey.AutocastCPU)


def _prelu_autocast(keyset, x, weight):
    # as torch's prelu under CPU autocast (a lower_precision_fp op): float
    # tensors other than float64 are cast to the autocast dtype
    dtype = torch.get_autocast_dtype("cpu")
    x, weight = (t.to(dtype) if t.is_floating_point() and t.dtype not in (dtype, torch.float64)
                 else t for t in (x, weight))
    with torch._C._ExcludeDispatchKeyGuard(_AUTOCAST_CPU):
        return _prelu_op(x, weight)


_lib.impl("prelu", _prelu_autocast, "AutocastCPU", with_keyset=True)


# --- the functions -------------------------------------------------------------------
# The operators (above) are what the dispatcher, torch.compile and
# torch.export see.  In eager mode, for plain CPU tensors with no mode
# active, these functions call the same CPU kernels without the dispatcher:
# directly without autograd, through an autograd.Function with it.

_PLAIN = (torch.Tensor, torch.nn.Parameter)
_included = torch._C._dispatch_tls_is_dispatch_key_included
_PYTHON_KEY = torch._C.DispatchKey.Python          # a dispatch mode: fake, proxy, user
_FUNCTORCH_KEY = torch._C.DispatchKey.FuncTorchDynamicLayerFrontMode   # vmap, grad
_function_modes = torch._C._is_torch_function_mode_enabled
_excluded = torch._C._dispatch_tls_is_dispatch_key_excluded
_AUTOCAST_CPU_KEY = torch._C.DispatchKey.AutocastCPU    # excluded while autocast is off
_is_compiling = torch.compiler.is_compiling
_is_exporting = torch.compiler.is_exporting
_is_grad_enabled = torch.is_grad_enabled


def _plain(t):
    """A plain tensor or Parameter: no subclass that wants to see the op."""
    return type(t) in _PLAIN


def _no_modes():
    """No torch function or dispatch mode is active (none would see the op
    if the kernel ran directly)."""
    return not (_included(_PYTHON_KEY) or _included(_FUNCTORCH_KEY) or _function_modes())


def _direct(x, weight):
    """prelu's plain case: plain CPU tensors, no mode, no CPU autocast (the
    operator would see nothing the kernel does not)."""
    return (type(x) in _PLAIN and type(weight) in _PLAIN and x.is_cpu and weight.is_cpu
            and not (_included(_PYTHON_KEY) or _included(_FUNCTORCH_KEY)
                     or _function_modes()) and _excluded(_AUTOCAST_CPU_KEY))


class _PReLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight):
        ctx.save_for_backward(x, weight)
        return _prelu_cpu(x, weight, True)

    @staticmethod
    def backward(ctx, grad_output):
        if _is_grad_enabled():       # create_graph: the operators raise on double backward
            return _prelu_grad(ctx, grad_output)
        x, weight = ctx.saved_tensors
        if ctx.needs_input_grad[1]:
            return _prelu_backward_kernel(grad_output, x, weight, True)
        return _prelu_backward_kernel(grad_output, x, weight, False), None


class _UnaryFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, kernels, name, params):
        ctx.save_for_backward(x)
        ctx.kernel = kernels[1]
        ctx.name = name
        ctx.params = params
        return _unary_kernel(*kernels[0], x, huge_pages=True)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        if _is_grad_enabled():       # create_graph: the operators raise on double backward
            grad_input = _OPS[ctx.name][2](grad_output, x, *ctx.params)
        else:
            grad_input = _unary_backward_kernel(*ctx.kernel, grad_output, x)
        return grad_input, None, None, None


class _UnaryInplaceFunction(torch.autograd.Function):
    """In place with autograd, as torch's in-place activations: x is
    overwritten and the gradient is computed from the output."""

    @staticmethod
    def forward(ctx, x, kernels, name):
        _unary_inplace_kernel(*kernels[0], x)
        ctx.mark_dirty(x)
        ctx.save_for_backward(x)
        ctx.kernel = kernels[2]
        ctx.name = name
        return x

    @staticmethod
    def backward(ctx, grad_output):
        if ctx.kernel is None:
            raise RuntimeError(
                f"fastact.torch.{ctx.name}(inplace=True) cannot give the gradient from its "
                f"output with a negative slope or alpha (as in PyTorch): call it with "
                f"inplace=False")
        if _is_grad_enabled():
            raise _double_backward_error(ctx.name + "_backward")
        (y,) = ctx.saved_tensors
        return _unary_backward_kernel(*ctx.kernel, grad_output, y), None, None


def _check_inplace_leaf(x):
    # torch's own check, before anything is written
    if x.is_leaf:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place "
                           "operation.")
    if x._is_view() and x._base.is_leaf and x._base.requires_grad:
        raise RuntimeError("a view of a leaf Variable that requires grad is being used in an "
                           "in-place operation.")


def _prelu_for_inductor(x, weight):
    """prelu under torch.compile: torch's own ``F.prelu`` (after fastact's
    checks), so that a compiled converted model is the graph compiled torch
    makes: Inductor decomposes it into a fused ``where`` with its neighbours
    (the BatchNorm before, the residual add after), forward and backward.
    Measured on MobileFaceNet and iResNet-50, fastact's operators there
    (opaque to Inductor) made compiled inference up to 1.5x slower, keeping
    only the backward as fastact's kernel made the compiled training step
    about 10% slower than Inductor's own fused backward, and spelling the
    forward as ``torch.where(x > 0, x, weight * x)`` left compiled iResNet-50
    training about 2% behind compiled torch's."""
    _channels(x, weight)
    return _torch_prelu(x, weight)


# Without autograd, a CPU call below this many elements runs torch's own
# forward kernel, whose result is the same bits as fastact's: there fastact's
# kernel was no faster than torch's, and its entry from Python (the checks,
# each a call into torch's bindings) cost more than torch's one call inside
# a network (batch-1 inference of MobileFaceNet and iResNet-50, README).
# From here on the two kernels ran level inside those networks (batch-16
# inference, docs/performance.md "Allocation in fastact.torch"), and
# fastact's, with its thread policy, is kept.
_TORCH_FORWARD_BELOW = _HUGE_PAGES_MIN_BYTES // 4


def prelu(x, weight):
    """``x if x > 0 else weight * x``, as ``torch.nn.functional.prelu``, with autograd.

    weight: a scalar or 1-D tensor of x's dtype with one value, or one per
    channel (axis 1 of x).  The backward gives both gradients in one pass,
    and skips the weight's when it does not require grad.  Where autograd
    records nothing, CPU calls below 2^20 elements run torch's own forward,
    the same bits (see ``_TORCH_FORWARD_BELOW``).  Under torch.compile it is
    left to Inductor (see :func:`_prelu_for_inductor`); torch.export records
    the operator ``fastact::prelu``.
    """
    if _is_compiling():
        if _is_exporting():
            return _prelu_op(x, weight)
        return _prelu_for_inductor(x, weight)
    if (type(x) in _PLAIN and type(weight) in _PLAIN and x.numel() < _TORCH_FORWARD_BELOW
            and x.is_cpu
            and not (_is_grad_enabled() and (x.requires_grad or weight.requires_grad))):
        try:
            return _torch_prelu(x, weight)
        except RuntimeError:
            pass     # refused: fastact's checks below say why, naming the argument
    if _direct(x, weight):
        if (x.requires_grad or weight.requires_grad) and _is_grad_enabled():
            return _PReLUFunction.apply(x, weight)
        return _prelu_cpu(x, weight)
    return _prelu_op(x, weight)


def _unary(name, x, inplace, *params):
    fwd_op, inplace_op, _ = _OPS[name]
    grad = _is_grad_enabled() and x.requires_grad
    if not _is_compiling() and _plain(x) and x.is_cpu and _no_modes():
        kernels = _FAMILY[name].kernels(*params)
        if grad and inplace:
            _check_inplace_leaf(x)
            return _UnaryInplaceFunction.apply(x, kernels, name)
        if grad:
            return _UnaryFunction.apply(x, kernels, name, params)
        if inplace:
            _unary_inplace_kernel(*kernels[0], x)
            return x
        return _unary_kernel(*kernels[0], x)
    # the dispatcher: its in-place operators record no gradient, so under
    # autograd the result is a new tensor (x keeps its values)
    if inplace and not grad:
        inplace_op(x, *params)
        return x
    return fwd_op(x, *params)


def leaky_relu(x, negative_slope=0.01, inplace=False):
    """``x if x > 0 else negative_slope * x``, as ``torch.nn.functional.leaky_relu``.

    inplace=True writes into x and returns it, as torch does (under
    autograd the gradient then comes from the output, which needs
    negative_slope >= 0).
    """
    return _unary("leaky_relu", x, inplace, negative_slope)


def elu(x, alpha=1.0, inplace=False):
    """``x if x > 0 else alpha * expm1(x)``, as ``torch.nn.functional.elu``
    (inplace: as for :func:`leaky_relu`, alpha >= 0 under autograd)."""
    return _unary("elu", x, inplace, alpha)


def hardtanh(x, min_val=-1.0, max_val=1.0, inplace=False):
    """x clipped to ``[min_val, max_val]``, as ``torch.nn.functional.hardtanh``
    (inplace: as for :func:`leaky_relu`)."""
    return _unary("hardtanh", x, inplace, min_val, max_val)


def relu6(x, inplace=False):
    """``hardtanh(x, 0, 6)``, as ``torch.nn.functional.relu6`` (-0.0 stays
    -0.0; inplace: as for :func:`leaky_relu`)."""
    return _unary("relu6", x, inplace)


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0, inplace=False):
    """Keras's relu (``keras.activations.relu``'s parameters, fastact.relu's
    rules); with the defaults ``torch.nn.functional.relu`` (-0.0 stays -0.0).
    inplace: as for :func:`leaky_relu`."""
    return _unary("relu", x, inplace, negative_slope, max_value, threshold)


def thresholded_relu(x, theta=1.0, inplace=False):
    """``x if x > theta else 0``, as fastact.thresholded_relu (Keras 2's
    ThresholdedReLU); inplace: as for :func:`leaky_relu`."""
    return _unary("thresholded_relu", x, inplace, theta)


# --- fused BatchNorm + PReLU (inference) -------------------------------------------
# The operator fastact::affine_prelu(x, scale, shift, weight): prelu(x * scale +
# shift, weight) per channel (axis 1) in one pass over memory, forward only (for
# inference: it has no autograd, and BatchNormPReLU below never calls it where
# autograd would record it).  BatchNormPReLU: a BatchNorm2d and the PReLU after
# it as one module; convert(model, fuse=True) swaps such pairs in
# (_fuse_batchnorm_prelu).  One section, apart from the rest of this module.

__all__ += ["affine_prelu", "BatchNormPReLU", "FusedPReLU"]


def _affine_count(v, name, x, channels):
    """How many values scale, shift or weight holds (1 or x's channels),
    checked as the operator takes them."""
    if v.dim() > 1:
        raise ValueError(f"{name} must be a scalar or a 1-D tensor, got {v.dim()} dims")
    if not v.dtype.is_floating_point:
        raise TypeError(f"{name} has dtype {v.dtype}; expected a float dtype")
    if v.device != x.device:
        raise ValueError(f"{name} is on {v.device} but x is on {x.device}: pass tensors "
                         f"on one device")
    n = v.numel()
    if n != 1 and n != channels:
        raise ValueError(f"{name} has {n} values but x has {channels} channels (axis 1)")
    return n


def _affine_check(x, scale, shift, weight):
    """(x's dtype code, 1 when every value is shared, else x's channels)."""
    code = _code(x, "x")
    channels = x.shape[1] if x.dim() >= 2 else 1
    counts = [_affine_count(v, name, x, channels)
              for v, name in ((scale, "scale"), (shift, "shift"), (weight, "weight"))]
    return code, channels if any(n != 1 for n in counts) else 1


def _affine_prelu_kernel(x, scale, shift, weight, run=_CPU):
    code, n = _affine_check(x, scale, shift, weight)
    out = _new_like(x)
    if x.numel() == 0:
        return out
    xk, fmt, target = _operands(x, out)
    compute = _COMPUTE[code]
    sc, sh, sl = (v if v.dtype is compute and v.numel() == n and v.is_contiguous()
                  else v.to(compute).reshape(-1).expand(n).contiguous()
                  for v in (scale, shift, weight))
    run.affine_prelu_forward(code, xk.data_ptr(), sc.data_ptr(), sh.data_ptr(),
                             sl.data_ptr(), target.data_ptr(), *_geometry(xk, fmt, n))
    if target is not out:
        out.copy_(target)
    return out


def _affine_prelu_fake(x, scale, shift, weight):
    _affine_check(x, scale, shift, weight)
    return _empty_like(x)


_affine_prelu_op = _define(
    "affine_prelu(Tensor x, Tensor scale, Tensor shift, Tensor weight) -> Tensor",
    _affine_prelu_kernel, _affine_prelu_fake)


def affine_prelu(x, scale, shift, weight):
    """``prelu(x * scale + shift, weight)`` per channel (axis 1), in one pass.

    scale, shift, weight: scalars or 1-D tensors of one value or one per
    channel, of any float dtype (cast to float32, or float64 for float64 x).
    Computed as :func:`fastact.affine_prelu`: ``t = x * scale + shift`` with
    two roundings (no FMA), then ``t if t > 0 else weight * t``.  Forward
    only: no autograd (a RuntimeError at backward when a gradient was
    wanted).  Contiguous and channels_last tensors are read where they are.
    """
    return _affine_prelu_op(x, scale, shift, weight)


def _batchnorm_terms(mean, var, eps, weight, bias):
    """(scale, shift) of an inference BatchNorm, as torch's CPU kernel
    computes them (fastact.batchnorm_scale_shift): in float32, or float64 for
    float64 statistics."""
    compute = torch.float64 if var.dtype == torch.float64 else torch.float32
    if compute is torch.float32:
        # sqrt and 1 / s correctly rounded, as C's sqrtf and division (torch's
        # float32 sqrt is not, in some places): each in float64, rounded once
        # to float32, which gives float32's correctly rounded result
        root = torch.sqrt((var.to(compute) + eps).double()).float()
        scale = torch.reciprocal(root.double()).float()
    else:
        scale = torch.reciprocal(torch.sqrt(var + eps))
    if weight is not None:
        scale = scale * weight.to(compute)
    shift = -(mean.to(compute) * scale) if bias is None else bias.to(compute) - mean.to(
        compute) * scale
    return scale, shift


# a key entry for a BatchNorm without affine parameters: a tensor no
# module's state holds
_NO_STATE = torch.empty(0)


class FusedPReLU(torch.nn.Identity):
    """Where a PReLU was before ``convert(model, fuse=True)`` moved it into the
    :class:`BatchNormPReLU` before it: the identity, holding the PReLU's
    ``weight`` (the same Parameter), so that the model's parameters,
    state_dict keys and optimizers are unchanged."""

    def __init__(self, prelu):
        super().__init__()
        self.weight = prelu.weight
        self.num_parameters = prelu.num_parameters
        self.train(prelu.training)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}, fused into the BatchNorm before it"


class BatchNormPReLU(torch.nn.BatchNorm2d):
    """A torch.nn.BatchNorm2d and the PReLU after it, as one module.

    Made by ``convert(model, fuse=True)`` (or ``BatchNormPReLU.fuse(bn,
    holder)``): it shares the BatchNorm's state (the same Parameter and
    buffer objects, hooks and flags; state_dict keys unchanged) and reads
    the PReLU's weight from ``holder``, the :class:`FusedPReLU` left where the
    PReLU was.

    In eval mode, with running statistics, and where autograd records
    nothing (under ``torch.no_grad()`` or ``torch.inference_mode()``, or
    with every parameter frozen), forward is one pass of
    ``fastact::affine_prelu`` with BatchNorm's scale and shift.  The running
    statistics and affine parameters are read at call time: scale and shift
    are recomputed whenever one of them has changed (torch's tensor version
    counters tell; under torch.compile, on every call, in the graph).
    Otherwise (training mode, no running statistics, or a gradient wanted)
    forward is torch's batch_norm then fastact's prelu, with autograd.
    """

    @classmethod
    def fuse(cls, bn, holder):
        """bn (exactly a torch.nn.BatchNorm2d) fused with the PReLU whose
        weight holder (a FusedPReLU) holds."""
        fused = cls.__new__(cls)
        state = dict(bn.__dict__)
        for key in ("_parameters", "_buffers", "_modules"):
            state[key] = dict(state[key])
        fused.__dict__.update(state)
        # not a submodule: the holder stays registered where the PReLU was
        fused.__dict__["_prelu"] = holder
        fused.__dict__["_terms"] = (None, None, None)
        return fused

    def extra_repr(self):
        return f"{super().extra_repr()}, prelu_parameters={self._prelu.num_parameters}"

    def _cached_terms(self):
        """(scale, shift, direct) for the module's state as it is now:
        BatchNorm's scale and shift, and direct = the arguments of
        :meth:`_direct_forward`'s kernel call (the statistics' dtype, the
        channels, the three per-channel vectors as the kernel reads them and
        their addresses), or None where the kernel cannot read them directly
        (state on another device or of a subclass, no running statistics or
        no affine parameters).  Recomputed when any of the state may hold
        other values, which the key tells: each tensor object, its version
        counter (in-place writes, load_state_dict) and its storage address
        (``.data =`` and module.to() keep a Parameter object but move its
        memory)."""
        buffers, params = self._buffers, self._parameters
        state = (buffers["running_mean"], buffers["running_var"], params["weight"],
                 params["bias"], self._prelu._parameters["weight"])
        if state[0] is None or state[1] is None:
            return None, None, None
        mean, var, weight, bias, slopes = (_NO_STATE if t is None else t for t in state)
        key = (self.eps, id(mean), mean._version, mean.data_ptr(), id(var), var._version,
               var.data_ptr(), id(weight), weight._version, weight.data_ptr(), id(bias),
               bias._version, bias.data_ptr(), id(slopes), slopes._version, slopes.data_ptr())
        cached = self._terms
        if cached[0] == key:
            return cached[1]
        with torch.no_grad():
            scale, shift = _batchnorm_terms(*state[:2], self.eps, *state[2:4])
            direct = None
            channels = scale.numel()
            if (all(type(t) in _PLAIN and t.is_cpu for t in state if t is not None)
                    and slopes.dim() <= 1
                    and slopes.numel() in (1, channels)):
                slopes_c = slopes.to(scale.dtype).reshape(-1).expand(channels).contiguous()
                direct = (scale.dtype, channels, scale, shift, slopes_c, scale.data_ptr(),
                          shift.data_ptr(), slopes_c.data_ptr())
        # the state stays referenced beside its key, so that no id in the key
        # can be reused by another tensor while the key is held
        self.__dict__["_terms"] = (key, (scale, shift, direct), state)
        return scale, shift, direct

    def _scale_shift(self):
        if _is_compiling():
            return _batchnorm_terms(self.running_mean, self.running_var, self.eps, self.weight,
                                    self.bias)
        return self._cached_terms()[:2]

    def _direct_forward(self, input):
        """Inference without autograd on a plain contiguous CPU tensor of
        the statistics' dtype: the fused kernel called directly, with
        cached terms and as few checks as that needs (batch-1 inference
        calls this in a loop of small arrays, where each torch call in
        Python costs about what the kernel does).  None where the general
        path must run."""
        terms = self._cached_terms()[2]
        if (terms is None or type(input) not in _PLAIN or not input.is_cpu
                or input.dtype is not terms[0] or not input.is_contiguous() or not _no_modes()
                or not _excluded(_AUTOCAST_CPU_KEY)):
            return None
        shape = input.shape
        if len(shape) != 4 or shape[1] != terms[1]:
            return None
        size = input.numel()
        out = _new_like(input, size)
        if size:
            outer = shape[0]
            _CPU.affine_prelu_forward(_CODES[terms[0]], input.data_ptr(), terms[5], terms[6],
                                      terms[7], out.data_ptr(), outer, terms[1],
                                      size // (outer * terms[1]))
        return out

    def forward(self, input):
        if not self.training and not _is_grad_enabled() and not _is_compiling():
            out = self._direct_forward(input)
            if out is not None:
                return out
        self._check_input_dim(input)
        slopes = self._prelu.weight
        if (self.training or self.running_mean is None
                or (_is_grad_enabled()
                    and (input.requires_grad or slopes.requires_grad
                         or (self.weight is not None and self.weight.requires_grad)
                         or (self.bias is not None and self.bias.requires_grad)))):
            return prelu(super().forward(input), slopes)
        scale, shift = self._scale_shift()
        if not _is_compiling() and _direct(input, slopes):
            return _affine_prelu_kernel(input, scale, shift, slopes)   # no dispatcher
        return _affine_prelu_op(input, scale, shift, slopes)


def _fusable(bn, act, counts):
    """bn then act can be fused: exactly a BatchNorm2d in eval mode with
    running statistics, then a PReLU (torch's or fastact's) of one weight or
    one per channel, each reachable by one path only."""
    return (type(bn) is torch.nn.BatchNorm2d and not bn.training
            and bn.running_mean is not None
            and type(act) in (torch.nn.PReLU, _TWINS[torch.nn.PReLU])
            and act.weight.numel() in (1, bn.num_features)
            and counts[id(bn)] == 1 and counts[id(act)] == 1)


class _Tracer(torch.fx.Tracer):
    """fx's tracer with fastact's modules as leaves, like torch.nn's."""

    def is_leaf_module(self, m, module_qualified_name):
        return type(m) in _TWINS.values() or super().is_leaf_module(m, module_qualified_name)


def _batchnorm_prelu_pairs(model):
    """(qualified name of the BatchNorm, of the PReLU) of every pair to fuse:
    from torch.fx's trace of model, a BatchNorm2d called once, whose output
    goes only to a PReLU called once on it alone; where model cannot be
    traced, adjacent pairs in torch.nn.Sequential containers."""
    counts = {}
    for _, m in model.named_modules(remove_duplicate=False):
        counts[id(m)] = counts.get(id(m), 0) + 1
    try:
        graph = _Tracer().trace(model)
    except Exception:  # noqa: BLE001 - any failure to trace: the Sequential rule
        graph = None
    pairs = []
    if graph is not None:
        calls = {}
        for node in graph.nodes:
            if node.op == "call_module":
                calls[node.target] = calls.get(node.target, 0) + 1
        for node in graph.nodes:
            if node.op != "call_module" or calls[node.target] != 1 or len(node.users) != 1:
                continue
            (user,) = node.users
            if (user.op == "call_module" and calls[user.target] == 1
                    and user.args == (node,) and not user.kwargs
                    and _fusable(model.get_submodule(node.target),
                                 model.get_submodule(user.target), counts)):
                pairs.append((node.target, user.target))
        return pairs
    for name, seq in model.named_modules():
        if type(seq) is not torch.nn.Sequential:
            continue
        items = list(seq._modules.items())
        prefix = name + "." if name else ""
        for (n1, m1), (n2, m2) in zip(items, items[1:]):
            if _fusable(m1, m2, counts):
                pairs.append((prefix + n1, prefix + n2))
    return pairs


def _replace(model, qualified_name, module):
    parent_name, _, child = qualified_name.rpartition(".")
    model.get_submodule(parent_name)._modules[child] = module


def _fuse_batchnorm_prelu(model):
    """convert's fuse=True: every BatchNorm2d whose output feeds only a PReLU
    becomes a BatchNormPReLU, and the PReLU a FusedPReLU, in place."""
    if model.training:
        raise ValueError("convert(model, fuse=True) fuses BatchNorm with the PReLU after it "
                         "for inference, but model is in training mode: call model.eval() "
                         "first, or pass fuse=False")
    for bn_name, act_name in _batchnorm_prelu_pairs(model):
        holder = FusedPReLU(model.get_submodule(act_name))
        _replace(model, act_name, holder)
        _replace(model, bn_name, BatchNormPReLU.fuse(model.get_submodule(bn_name), holder))


# --- modules -------------------------------------------------------------------------
# torch.nn's own classes (constructors, parameters, state_dict, repr) with
# fastact's operators in forward.

class PReLU(torch.nn.PReLU):
    """torch.nn.PReLU on fastact's kernels: the same constructor
    ``(num_parameters=1, init=0.25, device=None, dtype=None)``, parameter
    ``weight`` and state_dict (checkpoints load both ways)."""

    def forward(self, input):
        return prelu(input, self.weight)


class LeakyReLU(torch.nn.LeakyReLU):
    """torch.nn.LeakyReLU ``(negative_slope=0.01, inplace=False)`` on fastact's kernels."""

    def forward(self, input):
        return leaky_relu(input, self.negative_slope, self.inplace)


class ELU(torch.nn.ELU):
    """torch.nn.ELU ``(alpha=1.0, inplace=False)`` on fastact's kernels."""

    def forward(self, input):
        return elu(input, self.alpha, self.inplace)


class Hardtanh(torch.nn.Hardtanh):
    """torch.nn.Hardtanh ``(min_val=-1.0, max_val=1.0, inplace=False)`` on fastact's kernels."""

    def forward(self, input):
        return hardtanh(input, self.min_val, self.max_val, self.inplace)


class ReLU6(torch.nn.ReLU6):
    """torch.nn.ReLU6 ``(inplace=False)`` on fastact's kernels."""

    def forward(self, input):
        return relu6(input, self.inplace)


_TWINS = {torch.nn.PReLU: PReLU, torch.nn.LeakyReLU: LeakyReLU, torch.nn.ELU: ELU,
          torch.nn.Hardtanh: Hardtanh, torch.nn.ReLU6: ReLU6}


def _twin(module):
    """module's fastact twin sharing its state: the same Parameter objects,
    buffers, hooks and training flag."""
    twin = _TWINS[type(module)].__new__(_TWINS[type(module)])
    state = dict(module.__dict__)
    for key in ("_parameters", "_buffers", "_modules"):
        state[key] = dict(state[key])
    twin.__dict__.update(state)
    return twin


def convert(model, fuse=False):
    """Swap every torch.nn.PReLU, LeakyReLU, ELU, Hardtanh and ReLU6 in model
    (exactly those classes, not subclasses) for fastact's twin, in place, and
    return model.

    The twins keep the same Parameter objects (an optimizer built before
    still updates them), devices, hooks and training mode.  A model that is
    itself such a module is returned as its twin.

    fuse=True (a model in eval mode; ValueError otherwise) first fuses every
    BatchNorm2d whose output feeds only a PReLU (found by torch.fx tracing,
    or adjacent in nn.Sequential where tracing fails) into a BatchNormPReLU,
    the PReLU becoming a FusedPReLU (an nn.Identity holding its weight).
    """
    if fuse:
        _fuse_batchnorm_prelu(model)
    if type(model) in _TWINS:
        return _twin(model)
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            if child is not None and type(child) in _TWINS:
                parent._modules[name] = _twin(child)
    return model
