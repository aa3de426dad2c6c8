"""CUDA arrays: the CUDA path, and whether there is a GPU to take it.

CUDA arrays are anything exporting ``__cuda_array_interface__`` (CuPy,
Numba, PyTorch) or DLPack on a CUDA device (see fastact._foreign for what an
array of another library is, and for those on the CPU).  They go to the CUDA
kernels of the optional module ``fastact._cuda``, imported here lazily
(``import fastact`` never depends on it).  New outputs are allocated with
the input's own library (torch, CuPy or Numba), so a torch tensor gives a
torch tensor.

Streams, for CUDA arrays: the ``stream=`` argument (an int handle, a
``torch.cuda.Stream``, a CuPy or Numba stream) when given; else the stream
in x's ``__cuda_array_interface__`` (version 3, CuPy: its current stream);
else torch's current stream for torch tensors; else the default stream.  The
kernels are queued on that stream and nothing waits on the host.  When that
stream is not the current stream of the library whose arrays fastact
allocates or copies, the two are ordered with events on the device.

Arrays are checked as fastact._foreign.check_tensor says (no autograd recording,
dense torch tensors), with the rules of fastact._checks.
"""
import importlib.util
import sys

import numpy as np

from . import _checks, _dtypes
from ._checks import finite as _finite
from ._checks import is_number as _is_number
from ._checks import slopes_array as _check_slopes_array
from ._foreign import check_tensor, cpu_view, is_foreign, is_torch, library, on_cuda
from ._layout import channel_plan, expand_slopes, prelu_plan, reduce_grad

_LEGACY_STREAM = 0      # the default stream of a runtime built without per-thread streams

_cuda = None
_cuda_import_error = None
_status = None

# torch, bound at the first torch tensor (import fastact never imports it): a
# small call's host work is a few microseconds, and an import statement, a
# torch.device or a torch.cuda.Stream made on every call are a visible share
_torch = None
_torch_strided = None
_torch_dtypes = {}          # torch dtype -> fastact._dtypes.TABLE entry
_torch_dtype_of = {}        # TABLE entry's code -> torch dtype
_torch_devices = {}         # CUDA device index -> torch.device
_torch_raw_stream = None    # device index -> torch's current stream handle there


def _torch_module():
    global _torch, _torch_strided, _torch_raw_stream
    if _torch is None:
        import torch
        _torch_strided = torch.strided
        _torch_dtypes.update((getattr(torch, d.torch), d) for d in _dtypes.TABLE)
        _torch_dtype_of.update((d.code, getattr(torch, d.torch)) for d in _dtypes.TABLE)
        # what Inductor's generated code calls: the handle without making a
        # torch.cuda.Stream (CUDA builds of torch have it)
        raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
        _torch_raw_stream = raw if raw is not None else _torch_stream_object
        _torch = torch
    return _torch


def _torch_stream_object(device):
    return _torch.cuda.current_stream(device).cuda_stream


def _torch_current_stream(device):
    """torch's current stream on CUDA device `device`, as an int handle."""
    _torch_module()
    return _torch_raw_stream(device)


_tensor_types = {}          # type -> whether it is torch.Tensor or a subclass


def _is_tensor(obj):
    """True for a torch.Tensor (torch imported: an object of its type exists)."""
    t = type(obj)
    known = _tensor_types.get(t)
    if known is None:
        torch = sys.modules.get("torch")
        known = _tensor_types[t] = torch is not None and issubclass(t, torch.Tensor)
    return known


def is_torch_cuda(obj):
    """True for a torch CUDA tensor: the common case, told quickly (anything
    else goes through fastact._foreign's tests)."""
    return _is_tensor(obj) and obj.is_cuda


def _torch_device(index):
    d = _torch_devices.get(index)
    if d is None:
        d = _torch_devices[index] = _torch_module().device("cuda", index)
    return d


# --- the optional CUDA module ----------------------------------------------------

def _load_cuda():
    """fastact._cuda, imported on first use; None when it was not built."""
    global _cuda, _cuda_import_error
    if _cuda is None and _cuda_import_error is None:
        try:
            from . import _cuda as module
            _cuda = module
        except ImportError as exc:
            _cuda_import_error = exc
    return _cuda


def _cuda_or_raise():
    if _load_cuda() is None or not cuda_available():
        raise RuntimeError(f"fastact got a CUDA array but cannot use the GPU: {cuda_status()}")
    return _cuda


def cuda_status():
    """Why the GPU can or cannot be used, in words.

    "not built" (fastact was installed without its CUDA part; "not built
    (...)" when the module is there but fails to load), "no CUDA driver", "driver too old
    for the CUDA runtime (...)", "no CUDA device", or "available: <GPU>".

    Where the CUDA part is built, the first call starts the CUDA driver (as
    ``torch.cuda.is_available()`` does), and a child forked after that cannot
    use CUDA: a process that forks GPU workers should ask in the workers.
    """
    global _status
    if _status is None:
        _status = _compute_status()
    return _status


def _compute_status():
    cuda = _load_cuda()
    if cuda is None:
        exc = _cuda_import_error
        if importlib.util.find_spec(__package__ + "._cuda") is None:
            return "not built"
        return f"not built (fastact._cuda failed to load: {exc})"
    rc, count, message = cuda.device_count()
    runtime = cuda.runtime_version()
    if rc == 35:      # cudaErrorInsufficientDriver
        driver = cuda.driver_version()
        if driver == 0:
            return "no CUDA driver"
        return (f"driver too old for the CUDA runtime (the driver supports CUDA "
                f"{_version(driver)}, fastact was built with CUDA {_version(runtime)})")
    if rc == 100 or (rc == 0 and count == 0):     # cudaErrorNoDevice
        return "no CUDA device"
    if rc != 0:
        return f"CUDA unavailable: {message}"
    names = []
    for d in range(count):
        name, major, minor = cuda.device_name(d)
        names.append(f"{name} (compute capability {major}.{minor})")
    more = f" and {count - 1} more" if count > 1 else ""
    return f"available: {names[0]}{more}; CUDA runtime {_version(runtime)}"


def _version(v):
    return f"{v // 1000}.{(v % 1000) // 10}"


def cuda_available():
    """True when fastact's CUDA module is built and sees a usable GPU (see
    `cuda_status` about forking after asking)."""
    return cuda_status().startswith("available")


# --- CUDA arrays ---------------------------------------------------------------------

class _Gpu:
    """A CUDA array, parsed: data pointer, shape, dtype (its entry of
    fastact._dtypes.TABLE), library."""
    __slots__ = ("obj", "ptr", "shape", "dt", "size", "lib", "device", "stream",
                 "readonly", "contiguous", "keep")

    @property
    def nbytes(self):
        return self.size * self.dt.itemsize


def _c_contiguous(shape, strides, itemsize):
    """strides in bytes; dims of size 1 have any stride."""
    expected = itemsize
    for n, s in zip(reversed(shape), reversed(strides)):
        if n != 1 and s != expected:
            return False
        expected *= n
    return True


def _parse_torch(t, name):
    torch = _torch_module()
    dt = _torch_dtypes.get(t.dtype)
    if (dt is None or t.requires_grad or t.layout is not _torch_strided or t.is_nested
            or t.is_neg()):
        # anything but a plain tensor of a supported dtype: the rule, and its
        # messages, are check_tensor's (it takes some of these, e.g. a tensor
        # that requires grad under torch.no_grad)
        dt = check_tensor(t, name)
    a = _Gpu()
    a.obj, a.lib, a.dt = t, "torch", dt
    a.ptr, a.shape, a.size = t.data_ptr(), tuple(t.shape), t.numel()
    a.device = t.get_device()
    if a.device < 0:
        a.device = t.device.index if t.device.index is not None else torch.cuda.current_device()
    a.stream, a.readonly, a.keep = None, False, None
    a.contiguous = t.is_contiguous()
    return a


def _new_torch(t, dt, shape, device):
    """A tensor fastact has just allocated (torch.empty): dense, contiguous, of
    TABLE entry dt; nothing to check."""
    a = _Gpu()
    a.obj, a.lib, a.dt, a.ptr, a.shape, a.device = t, "torch", dt, t.data_ptr(), shape, device
    a.size = t.numel()
    a.stream, a.readonly, a.keep, a.contiguous = None, False, None, True
    return a


def _parse_cai(obj, name):
    cai = obj.__cuda_array_interface__
    typestr = cai["typestr"]
    if typestr[0] not in "<=|" or typestr[1:] not in _dtypes.BY_TYPESTR:
        shown = np.dtype(typestr) if typestr[0] in "<>=|" else typestr
        raise _dtypes.unsupported(name, shown, on_cpu=False)
    if cai.get("mask") is not None:
        raise ValueError(f"{name} is a masked array; fastact needs plain arrays")
    a = _Gpu()
    a.obj, a.lib, a.dt = obj, library(obj), _dtypes.BY_TYPESTR[typestr[1:]]
    a.ptr, a.readonly = int(cai["data"][0]), bool(cai["data"][1])
    a.shape = tuple(int(n) for n in cai["shape"])
    a.size = int(np.prod(a.shape, dtype=np.int64))
    strides = cai.get("strides")
    a.contiguous = strides is None or _c_contiguous(a.shape, strides, a.dt.itemsize)
    stream = cai.get("stream") if int(cai.get("version", 0)) >= 3 else None
    a.stream = None if stream is None else int(stream)
    a.keep = None
    if a.lib == "cupy":
        a.device = obj.device.id
    elif a.size and a.ptr:
        a.device, _ = _cuda_or_raise().pointer_device(a.ptr)
    else:
        a.device = -1          # empty: no device memory to ask about
    return a


def _parse_dlpack(obj, name, stream):
    cuda = _cuda_or_raise()
    # the producer orders its pending work before `stream` (DLPack's contract)
    # (1 is the legacy default stream in DLPack's numbering, where 0 is not allowed)
    view = cuda.consume_dlpack(obj.__dlpack__(stream=1 if not stream else stream))
    a = _Gpu()
    a.dt = _dtypes.BY_DLPACK.get((view.type_code, view.bits)) if view.lanes == 1 else None
    if a.dt is None:
        raise TypeError(f"{name} has DLPack dtype (code {view.type_code}, {view.bits} bits, "
                        f"{view.lanes} lanes); fastact supports {_dtypes.SUPPORTED_NAMES}")
    a.obj, a.lib, a.keep = obj, library(obj), view
    a.ptr, a.shape = view.ptr, view.shape
    a.size = int(np.prod(a.shape, dtype=np.int64))
    a.contiguous = view.strides is None or _c_contiguous(
        a.shape, [s * a.dt.itemsize for s in view.strides], a.dt.itemsize)
    a.device, a.stream, a.readonly = view.device_id, None, False
    return a


def _parse_gpu(obj, name, stream_hint=None):
    if _is_tensor(obj) or is_torch(obj):
        return _parse_torch(obj, name)
    t = type(obj)
    if hasattr(t, "__cuda_array_interface__"):
        try:
            return _parse_cai(obj, name)
        except (AttributeError, KeyError):
            if not hasattr(t, "__dlpack__"):
                raise
    return _parse_dlpack(obj, name, stream_hint)


def _stream_handle(stream):
    """An int cudaStream_t from what callers pass as stream=."""
    if isinstance(stream, bool):
        raise TypeError("stream must be an int handle or a stream object, got bool")
    if isinstance(stream, int):
        return stream
    for attr in ("cuda_stream", "ptr"):          # torch.cuda.Stream; CuPy
        value = getattr(stream, attr, None)
        if isinstance(value, int):
            return value
    handle = getattr(stream, "handle", None)      # Numba: a ctypes c_void_p
    if handle is not None:
        return int(getattr(handle, "value", handle) or 0)
    raise TypeError(f"stream must be an int handle, a torch.cuda.Stream, or a CuPy or "
                    f"Numba stream; got {type(stream).__name__}")


class _Call:
    """One CUDA call: the device, the launch stream, and the library streams
    that fastact's own allocations and copies ran on (ordered on the device)."""

    __slots__ = ("cuda", "device", "stream", "lib_streams", "torch_stream")

    def __init__(self, x, stream):
        self.cuda = _cuda_or_raise()
        self.device = x.device if x.device >= 0 else 0
        # torch's current stream on the device, looked up once per call
        self.torch_stream = None
        if stream is not None:
            self.stream = _stream_handle(stream)
        elif x.lib == "torch":
            self.stream = self.torch_stream = _torch_current_stream(self.device)
        elif x.stream is not None:
            self.stream = x.stream
        else:
            self.stream = _LEGACY_STREAM
        self.lib_streams = set()

    def lib_stream(self, lib):
        """The current stream of `lib` on this device (it runs our copies)."""
        if lib == "torch":
            if self.torch_stream is None:
                self.torch_stream = _torch_current_stream(self.device)
            return self.torch_stream
        if lib == "cupy":
            import cupy
            with cupy.cuda.Device(self.device):
                return cupy.cuda.get_current_stream().ptr
        return None

    def used(self, lib):
        s = self.lib_stream(lib)
        if s is not None and s != self.stream:
            self.lib_streams.add(s)

    def order_operand(self, a):
        """A CAI v3 operand produced on another stream: wait for it."""
        if a.stream is not None and a.stream != self.stream:
            self.cuda.stream_wait(self.device, self.stream, a.stream)

    def before_launch(self):
        for s in self.lib_streams:
            self.cuda.stream_wait(self.device, self.stream, s)

    def after_launch(self):
        # later work of those libraries (and reuse of the memory they lent us)
        # comes after our kernels
        for s in self.lib_streams:
            self.cuda.stream_wait(self.device, s, self.stream)


def _same_device(call, a, name):
    if a.device >= 0 and a.device != call.device:
        raise ValueError(f"{name} is on CUDA device {a.device} but x is on device "
                         f"{call.device}: pass arrays on one device")


def _contiguous(call, a, name):
    """a itself when C-contiguous, else a contiguous copy by its library."""
    if a.contiguous:
        return a
    if a.lib == "torch":
        call.used("torch")
        return _parse_torch(a.obj.contiguous(), name)
    if a.lib == "cupy":
        import cupy
        call.used("cupy")
        with cupy.cuda.Device(call.device):
            c = _parse_cai(cupy.ascontiguousarray(a.obj), name)
        c.stream = None
        return c
    raise ValueError(f"{name} is not C-contiguous; pass a contiguous array (fastact "
                     f"copies non-contiguous torch and CuPy arrays itself)")


def _gpu_operand(call, obj, name, x):
    """A second input (grad_output): a CUDA array on x's device, x's dtype and shape."""
    if not is_torch_cuda(obj) and (not is_foreign(obj) or not on_cuda(obj, name)):
        raise ValueError(f"{name} is on the CPU but x is on a CUDA device: pass arrays "
                         f"on one device")
    a = _parse_gpu(obj, name, call.stream)
    _same_device(call, a, name)
    _checks.matches(name, a.dt.name, a.shape, x.dt.name, x.shape)
    return a


def _overlap(a, b):
    """Byte ranges of two contiguous arrays: 'same', 'partial' or None."""
    if not a.size or not b.size:
        return None
    if a.ptr == b.ptr and a.nbytes == b.nbytes:
        return "same"
    if a.ptr < b.ptr + b.nbytes and b.ptr < a.ptr + a.nbytes:
        return "partial"
    return None


def _empty_like(call, like, shape, dt):
    """A new CUDA array allocated with like's library on call's device."""
    lib = like.lib
    if lib == "torch":
        torch = _torch_module()
        t = torch.empty(shape, dtype=_torch_dtype_of[dt.code], device=_torch_device(call.device))
        call.used("torch")      # after torch.empty, which initialises torch's CUDA state
        return _new_torch(t, dt, tuple(shape), call.device)
    if lib == "cupy":
        import cupy
        call.used("cupy")
        with cupy.cuda.Device(call.device):
            a = _parse_cai(cupy.empty(shape, dtype=_np_dtype(dt)), "out")
        a.stream = None
        return a
    if lib == "numba" and dt is not _dtypes.BF16:
        from numba import cuda as numba_cuda
        with numba_cuda.gpus[call.device]:
            a = _parse_cai(numba_cuda.device_array(shape, dtype=_np_dtype(dt)), "out")
        a.stream = None
        return a
    raise TypeError(f"fastact cannot allocate the result for a {type(like.obj).__name__} "
                    f"(it allocates with torch, CuPy and Numba): pass out=")


def _np_dtype(dt):
    return _dtypes.numpy_dtype(dt, "a bfloat16 result")


def _destination(call, out, inplace, target, target_name, x, reads):
    """Where the result goes: target itself (in place), out (checked), or a new
    array of x's library.  `reads`: (array, name) the kernel reads."""
    if inplace:
        if out is not None:
            raise _checks.both_out_and_inplace()
        if target.readonly:
            raise _checks.read_only(target_name, True)
        if not target.contiguous:
            raise ValueError(f"inplace=True needs a C-contiguous {target_name} on the GPU")
        return target
    if out is None:
        return None
    if isinstance(out, np.ndarray) or not is_foreign(out) or not on_cuda(out, "out"):
        raise ValueError(f"out ({type(out).__name__}) is on the CPU but x is on a CUDA "
                         f"device: pass out on x's device")
    o = _parse_gpu(out, "out", call.stream)
    _same_device(call, o, "out")
    _checks.matches("out", o.dt.name, o.shape, x.dt.name, x.shape)
    if o.readonly:
        raise _checks.read_only("out", False)
    if not o.contiguous:
        raise ValueError("out must be C-contiguous on the GPU")
    for a, name in reads:
        if _overlap(o, a) == "partial":
            raise _checks.partial_overlap("out", name)
    return o


def _result(dest, made):
    return dest.obj if dest is not None else made.obj


# --- the family ------------------------------------------------------------------------

def _gpu_x(x, stream):
    a = _parse_gpu(x, "x", None if stream is None else _stream_handle(stream))
    call = _Call(a, stream)
    call.order_operand(a)
    return call, a


def unary_forward(op, params, x, out, inplace, stream):
    """y = f(x) for op (src/ops.h) on a CUDA array; see fastact._api for the semantics."""
    call, a = _gpu_x(x, stream)
    dest = _destination(call, out, inplace, a, "x", a, [(a, "x")])
    if dest is not None:
        call.order_operand(dest)
    src = _contiguous(call, a, "x")
    target = dest if dest is not None else _empty_like(call, a, a.shape, a.dt)
    p0, p1, p2 = (float(v) for v in params)
    call.before_launch()
    call.cuda.unary_forward(call.device, op, a.dt.code, p0, p1, p2, src.ptr, target.ptr,
                            a.size, call.stream)
    call.after_launch()
    return _result(dest, target)


def unary_backward(op, params, grad_output, x, out, inplace, stream):
    """grad_input = grad_output * f'(x) for op (ELU_OUTPUT: x is the output), x
    a CUDA array."""
    call, a = _gpu_x(x, stream)
    g = _gpu_operand(call, grad_output, "grad_output", a)
    call.order_operand(g)
    dest = _destination(call, out, inplace, g, "grad_output", a,
                        [(g, "grad_output"), (a, "x")])
    if dest is not None:
        call.order_operand(dest)
    xs, gs = _contiguous(call, a, "x"), _contiguous(call, g, "grad_output")
    target = dest if dest is not None else _empty_like(call, a, a.shape, a.dt)
    p0, p1, p2 = (float(v) for v in params)
    call.before_launch()
    call.cuda.unary_backward(call.device, op, a.dt.code, p0, p1, p2, gs.ptr, xs.ptr,
                             target.ptr, a.size, call.stream)
    call.after_launch()
    return _result(dest, target)


# --- PReLU ------------------------------------------------------------------------------

class _TorchNamespace:
    """What _layout.expand_slopes needs of an array module, for torch."""

    @staticmethod
    def broadcast_to(a, shape):
        import torch
        return torch.broadcast_to(a, shape)

    @staticmethod
    def ascontiguousarray(a):
        return a.contiguous()


class _SlopeArgs:
    """The slopes as the launcher takes them: a device pointer, a host buffer
    (copied to the device in stream order), or one shared value."""
    __slots__ = ("ptr", "on_host", "shared", "plan", "keep", "lib", "device_array")


def _gpu_slopes(call, slopes, x, channel_axis):
    """The slope vector for x (a CUDA array), without reading device memory on
    the host."""
    s = _SlopeArgs()
    s.ptr, s.on_host, s.shared, s.keep, s.lib, s.device_array = 0, False, 0.0, None, None, None
    cuda_tensor = is_torch_cuda(slopes)
    if not cuda_tensor and _is_number(slopes):
        s.shared = _finite(slopes, "slopes")
        s.plan = prelu_plan(x.shape, (), channel_axis)
        return s
    if cuda_tensor or (is_foreign(slopes) and on_cuda(slopes, "slopes")):
        d = _parse_gpu(slopes, "slopes", call.stream)
        _same_device(call, d, "slopes")
        call.order_operand(d)
        s.plan = plan = prelu_plan(x.shape, d.shape, channel_axis)
        s.lib = d.lib
        want = _dtypes.BY_NAME[x.dt.compute]
        if d.dt is want and d.contiguous and (not plan.span or plan.span == plan.span_slopes):
            s.ptr, s.keep = d.ptr, d
            return s
        if d.lib == "torch":
            call.used("torch")
            t = d.obj.to(dtype=_dtypes.torch_dtype(want))
            vec = expand_slopes(t, plan, _TorchNamespace) if plan.span else t.reshape(-1)
            s.keep = _parse_torch(vec.contiguous(), "slopes")
        elif d.lib == "cupy":
            import cupy
            call.used("cupy")
            with cupy.cuda.Device(call.device):
                t = cupy.asarray(d.obj).astype(_dtypes.compute_dtype(x.dt))
                vec = expand_slopes(t, plan, cupy) if plan.span else t.reshape(-1)
                s.keep = _parse_cai(cupy.ascontiguousarray(vec), "slopes")
            s.keep.stream = None
        else:
            raise TypeError(
                f"slopes: fastact converts CUDA slopes with torch or CuPy only; pass "
                f"C-contiguous {want.name} slopes of one value per channel")
        s.ptr = s.keep.ptr
        return s
    # host slopes (numpy, a list, a CPU tensor): copied to the device with the call
    if is_foreign(slopes):
        slopes = cpu_view(slopes, "slopes")
    arr = np.asarray(slopes)
    _check_slopes_array(arr)
    s.plan = plan = prelu_plan(x.shape, arr.shape, channel_axis)
    compute = _dtypes.compute_dtype(x.dt)
    vec = np.ascontiguousarray(expand_slopes(arr.astype(compute), plan, np), dtype=compute)
    if plan.channels == 1:
        s.shared = float(vec[0])
        return s
    s.ptr, s.on_host, s.keep = vec.ctypes.data, True, vec
    return s


def _slopes_apart(sl, dest):
    """The kernels read the slopes while writing dest: they must not overlap."""
    if isinstance(sl.keep, _Gpu) and _overlap(sl.keep, dest) is not None:
        raise ValueError("slopes lie inside the output; pass slopes that share no "
                         "memory with it")


def prelu_forward(x, slopes, out, inplace, channel_axis, stream):
    """y = x > 0 ? x : slope * x on a CUDA array; see fastact.prelu."""
    call, a = _gpu_x(x, stream)
    sl = _gpu_slopes(call, slopes, a, channel_axis)
    dest = _destination(call, out, inplace, a, "x", a, [(a, "x")])
    if dest is not None:
        call.order_operand(dest)
        _slopes_apart(sl, dest)
    src = _contiguous(call, a, "x")
    target = dest if dest is not None else _empty_like(call, a, a.shape, a.dt)
    p = sl.plan
    call.before_launch()
    call.cuda.prelu_forward(call.device, a.dt.code, src.ptr, sl.ptr, sl.on_host, sl.shared,
                            target.ptr, p.outer, p.channels, p.inner, call.stream)
    call.after_launch()
    return _result(dest, target)


def prelu_backward(grad_output, x, slopes, out, inplace, divide_by_slopes, channel_axis,
                   stream):
    """(grad_input, grad_slopes) for a CUDA array x; see fastact.prelu_backward."""
    call, a = _gpu_x(x, stream)
    g = _gpu_operand(call, grad_output, "grad_output", a)
    call.order_operand(g)
    sl = _gpu_slopes(call, slopes, a, channel_axis)
    reads = [(g, "grad_output"), (a, "x")]
    dest = _destination(call, out, inplace, g, "grad_output", a, reads)
    if dest is not None:
        call.order_operand(dest)
        _slopes_apart(sl, dest)
    xs, gs = _contiguous(call, a, "x"), _contiguous(call, g, "grad_output")
    target = dest if dest is not None else _empty_like(call, a, a.shape, a.dt)
    p = sl.plan
    # grad_slopes: x's dtype, float32 for float16/bfloat16 (summed in float64)
    grad_dt = _dtypes.BY_NAME[a.dt.compute]
    broadcast = bool(p.span) and p.span != p.span_slopes
    lib_holder = a if a.lib in ("torch", "cupy", "numba") else _any_gpu_library(a)
    if broadcast:
        if lib_holder.lib not in ("torch", "cupy"):
            raise TypeError("slopes that broadcast over part of x need torch or CuPy "
                            "arrays on the GPU")
        vec = _empty_like(call, lib_holder, (p.channels,), _dtypes.F64)
    else:
        vec = _empty_like(call, lib_holder, p.slopes_shape, grad_dt)
    call.before_launch()
    call.cuda.prelu_backward(call.device, a.dt.code, gs.ptr, xs.ptr, sl.ptr, sl.on_host,
                             sl.shared, target.ptr, vec.ptr,
                             (_dtypes.F64 if broadcast else grad_dt).code,
                             bool(divide_by_slopes),
                             p.outer, p.channels, p.inner, call.stream)
    if broadcast:
        # sum over the broadcast dims with the library, on its stream, after us
        lib_stream = call.lib_stream(vec.lib)
        call.cuda.stream_wait(call.device, lib_stream, call.stream)
        grad = reduce_grad(vec.obj, p)
        if vec.lib == "torch":
            grad = grad.to(_dtypes.torch_dtype(grad_dt))
        else:
            grad = grad.astype(_np_dtype(grad_dt))
        call.lib_streams.discard(lib_stream)
        call.cuda.stream_wait(call.device, call.stream, lib_stream)
    else:
        grad = vec.obj
    call.after_launch()
    return _result(dest, target), grad


def _any_gpu_library(a):
    """For arrays of a library fastact cannot allocate with: the first of
    torch, CuPy and Numba that is installed (grad_slopes needs a home)."""
    for lib in ("torch", "cupy", "numba"):
        try:
            __import__(lib)
        except ImportError:
            continue
        holder = _Gpu()
        holder.obj, holder.lib = a.obj, lib
        return holder
    raise TypeError(f"fastact cannot allocate grad_slopes for a {type(a.obj).__name__}: "
                    f"it needs torch, CuPy or Numba installed")


# --- affine_prelu ------------------------------------------------------------------------

def affine_prelu_forward(x, scale, shift, slopes, out, inplace, channel_axis, stream):
    """prelu(x * scale + shift, slopes) per channel on a CUDA array; see
    fastact.affine_prelu.  scale, shift and slopes are host values (numbers,
    numpy arrays, CPU tensors), copied to the device with the call."""
    call, a = _gpu_x(x, stream)
    given = []
    for v, name in ((scale, "scale"), (shift, "shift"), (slopes, "slopes")):
        if is_foreign(v):
            if on_cuda(v, name):
                raise TypeError(f"{name} is on a CUDA device: affine_prelu takes its "
                                f"per-channel values on the host (numbers, numpy arrays, "
                                f"CPU tensors) and copies them with the call")
            v = cpu_view(v, name)
        given.append((_checks.channel_values(v, name), name))
    outer, channels, inner = channel_plan(a.shape, [(name, v.size) for v, name in given],
                                          channel_axis)
    dest = _destination(call, out, inplace, a, "x", a, [(a, "x")])
    if dest is not None:
        call.order_operand(dest)
    src = _contiguous(call, a, "x")
    target = dest if dest is not None else _empty_like(call, a, a.shape, a.dt)
    compute = _dtypes.compute_dtype(a.dt)
    vecs = [np.array(np.broadcast_to(v.astype(compute), (channels,)), order="C")
            for v, _ in given]
    call.before_launch()
    call.cuda.affine_prelu_forward(call.device, a.dt.code, src.ptr, *(v.ctypes.data for v in vecs),
                                   True, target.ptr, outer, channels, inner, call.stream)
    call.after_launch()
    return _result(dest, target)
