"""Arrays of other libraries on the CPU: what a foreign array is, and the
CPU kernels run on it.

A foreign array is one fastact reaches through another library's protocol
(``__cuda_array_interface__`` or DLPack): a torch tensor, a CuPy array, any
DLPack producer.  Those on the CPU are viewed as numpy arrays without a
copy, computed by fastact._cpu, and returned as the producer's type (an
output the caller gave comes back as the caller's object).  Those on a CUDA
device are fastact._device's.

Tensors that require grad are refused while torch records gradients
(fastact's functions are not autograd operations; fastact.torch has the
operators that are), and taken under ``torch.no_grad()`` and
``torch.inference_mode()``, where nothing is recorded.  Torch tensors whose
memory does not hold their values as they are (sparse, nested, mkldnn,
quantized, lazily negated) are refused: TypeError.
"""
import numpy as np

from . import _checks, _cpu, _dtypes

# --- what an object is ------------------------------------------------------------

def is_foreign(obj):
    """True for an array fastact reaches through another library's protocol
    (__cuda_array_interface__ or DLPack), numpy arrays excepted."""
    if isinstance(obj, np.ndarray):
        return False
    t = type(obj)
    return hasattr(t, "__cuda_array_interface__") or hasattr(t, "__dlpack__")


def library(obj):
    root = type(obj).__module__.partition(".")[0]
    return root if root in ("torch", "cupy", "numba") else None


def is_torch(obj):
    return type(obj).__module__.partition(".")[0] == "torch"


def _grad_recorded(obj):
    """True for a tensor that requires grad while its library records
    gradients (torch outside no_grad and inference_mode)."""
    if not getattr(obj, "requires_grad", False):
        return False
    if is_torch(obj):
        import torch
        return torch.is_grad_enabled()
    return True


def _refuse_grad(obj, name):
    if _grad_recorded(obj):
        raise TypeError(
            f"{name} is a tensor that requires grad; fastact's functions are not "
            f"autograd operations: call them under torch.no_grad(), pass "
            f"{name}.detach() (and compute the gradients with fastact's backward "
            f"functions), or use fastact.torch's operators, which are")


def check_tensor(obj, name):
    """What fastact needs of another library's array besides its place: no
    autograd and, for a torch tensor (on any device), a dense one of a
    supported dtype without torch's lazy negation bit, whose memory holds its
    values as they are.  Returns a torch tensor's entry of fastact._dtypes.TABLE."""
    _refuse_grad(obj, name)
    if not is_torch(obj):
        return None
    import torch
    if obj.is_nested or obj.layout != torch.strided:
        kind = "nested" if obj.is_nested else str(obj.layout).replace("torch.", "").lstrip("_")
        raise TypeError(f"{name} is a {kind} torch tensor; fastact needs dense (strided) "
                        f"tensors" + ("" if obj.is_nested else f": pass {name}.to_dense()"))
    dt = _dtypes.from_torch(obj.dtype)
    if dt is None:      # complex (conjugate bit or not), integer, quantized, ...
        raise _dtypes.unsupported(name, obj.dtype, on_cpu=False)
    if obj.is_neg():
        raise TypeError(f"{name} has torch's negative bit set (its memory holds "
                        f"-{name}); pass {name}.resolve_neg()")
    return dt


def on_cuda(obj, name="x"):
    """True for a CUDA array, False for a CPU one; TypeError otherwise."""
    if is_torch(obj):
        kind = obj.device.type
        if kind in ("cuda", "cpu"):
            return kind == "cuda"
        raise TypeError(f"{name} is a torch tensor on device {obj.device}; fastact takes "
                        f"CPU and CUDA tensors")
    t = type(obj)
    if hasattr(t, "__cuda_array_interface__"):
        try:
            obj.__cuda_array_interface__  # noqa: B018 - raises where x is not on a GPU
            return True
        except (AttributeError, TypeError, RuntimeError):
            pass
    if hasattr(t, "__dlpack_device__"):
        kind, _ = obj.__dlpack_device__()
        if kind in (2, 13):                         # kDLCUDA, kDLCUDAManaged
            return True
        if kind in (1, 3):                          # kDLCPU, kDLCUDAHost
            return False
        raise TypeError(f"{name} is a {type(obj).__name__} on DLPack device type "
                        f"{kind}; fastact takes CPU and CUDA arrays")
    if hasattr(t, "__dlpack__"):
        return False
    raise TypeError(f"{name} is a {type(obj).__name__}; fastact takes numpy arrays, "
                    f"CUDA arrays and DLPack producers")


# --- numpy views, the CPU kernels, the producer's type back ------------------------

def cpu_view(obj, name):
    """obj as a numpy array sharing its memory."""
    if isinstance(obj, np.ndarray):
        return obj
    dt = check_tensor(obj, name)
    if is_torch(obj):
        if obj.requires_grad:       # under no_grad (check_tensor refuses it otherwise)
            obj = obj.detach()
        if dt is _dtypes.BF16:
            import torch
            bf16 = _dtypes.bfloat16(f"{name} is a torch.bfloat16 tensor")
            return obj.view(torch.int16).numpy().view(bf16)
        return obj.numpy()
    try:
        return np.from_dlpack(obj)
    except (TypeError, BufferError, RuntimeError) as exc:
        raise TypeError(f"{name}: cannot view {type(obj).__name__} as a numpy array "
                        f"through DLPack ({exc})") from None


def _cpu_operand(obj, name):
    """A CPU operand as numpy; a CUDA array here is an error (x is on the CPU)."""
    if obj is None or isinstance(obj, np.ndarray):
        return obj
    if is_foreign(obj):
        if on_cuda(obj, name):
            raise ValueError(f"{name} is on a CUDA device but x is on the CPU: pass "
                             f"arrays on one device")
        return cpu_view(obj, name)
    return obj


def _wrap_like(like, arr):
    """A new numpy result as the type of `like` (no copy)."""
    if is_torch(like):
        import torch
        if arr.dtype.name == _dtypes.BF16.name:
            return torch.from_numpy(arr.view(np.int16)).view(torch.bfloat16)
        return torch.from_numpy(arr)
    namespace = getattr(like, "__array_namespace__", None)
    if namespace is not None:
        try:
            return namespace().from_dlpack(arr)
        except Exception:  # noqa: BLE001 - a producer that cannot take it back
            return arr
    return arr


def _cpu_call(fn, like, outputs, args):
    """Run a _cpu function on numpy views; map its results back: an array that
    is one of the caller's (in place, out=) becomes the caller's object."""
    result = fn(*args)
    single = not isinstance(result, tuple)
    results = (result,) if single else result
    mapped = []
    for r in results:
        for view, original in outputs:
            if r is view:
                mapped.append(original)
                break
        else:
            mapped.append(_wrap_like(like, r) if isinstance(r, np.ndarray) else r)
    return mapped[0] if single else tuple(mapped)


# --- the entry points, for x on the CPU -------------------------------------------

def unary_forward(op, params, x, out, inplace, stream):
    """fastact._cpu.unary_forward on another library's CPU array."""
    _checks.no_stream(stream)
    xv = cpu_view(x, "x")
    outv = _cpu_operand(out, "out")
    return _cpu_call(_cpu.unary_forward, x, [(xv, x), (outv, out)],
                     (op, params, xv, outv, inplace))


def unary_backward(op, params, grad_output, x, out, inplace, stream):
    """fastact._cpu.unary_backward where x or grad_output is another library's
    CPU array."""
    _checks.no_stream(stream)
    xv = cpu_view(x, "x")
    gv = _cpu_operand(grad_output, "grad_output")
    outv = _cpu_operand(out, "out")
    return _cpu_call(_cpu.unary_backward, x,
                     [(gv, grad_output), (outv, out), (xv, x)],
                     (op, params, gv, xv, outv, inplace))


def prelu_forward(x, slopes, out, inplace, channel_axis, stream):
    """fastact._cpu.prelu_forward on another library's CPU array."""
    _checks.no_stream(stream)
    xv = cpu_view(x, "x")
    outv = _cpu_operand(out, "out")
    sv = _cpu_operand(slopes, "slopes")
    return _cpu_call(_cpu.prelu_forward, x, [(xv, x), (outv, out)],
                     (xv, sv, outv, inplace, channel_axis))


def prelu_backward(grad_output, x, slopes, out, inplace, divide_by_slopes, channel_axis,
                   stream):
    """fastact._cpu.prelu_backward where x or grad_output is another library's
    CPU array."""
    _checks.no_stream(stream)
    xv = cpu_view(x, "x")
    gv = _cpu_operand(grad_output, "grad_output")
    outv = _cpu_operand(out, "out")
    sv = _cpu_operand(slopes, "slopes")
    return _cpu_call(_cpu.prelu_backward, x,
                     [(gv, grad_output), (outv, out), (xv, x)],
                     (gv, xv, sv, outv, inplace, divide_by_slopes, channel_axis))


def affine_prelu_forward(x, scale, shift, slopes, out, inplace, channel_axis):
    """fastact._cpu.affine_prelu_forward on another library's CPU array."""
    xv = cpu_view(x, "x")
    outv = _cpu_operand(out, "out")
    values = [_cpu_operand(v, name)
              for v, name in ((scale, "scale"), (shift, "shift"), (slopes, "slopes"))]
    return _cpu_call(_cpu.affine_prelu_forward, x, [(xv, x), (outv, out)],
                     (xv, *values, outv, inplace, channel_axis))
