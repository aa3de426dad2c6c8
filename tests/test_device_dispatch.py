"""Device dispatch without a GPU: CPU DLPack producers (torch CPU tensors),
the parsing of __cuda_array_interface__ and its error paths (fake arrays, and
a stand-in for the CUDA module that records what would be launched), and the
"why no GPU" report."""
import numpy as np
import pytest

import fastact
from fastact import _device, _reference

from helpers import random_slopes, random_x

try:
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


# --- the report -----------------------------------------------------------------------

def test_status_says_why():
    status = _device.cuda_status()
    assert isinstance(status, str) and status
    assert fastact.cuda_available() == status.startswith("available")
    if not fastact.cuda_available():
        assert status.startswith(("not built", "no CUDA driver", "driver too old",
                                  "no CUDA device", "CUDA unavailable"))


def test_import_does_not_load_the_cuda_module():
    import subprocess
    import sys
    code = "import sys, fastact; print('fastact._cuda' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_is_foreign():
    assert not _device.is_foreign(np.zeros(3))
    assert not _device.is_foreign([1.0, 2.0])
    assert _device.is_foreign(FakeCudaArray(np.zeros(3, np.float32)))


# --- torch CPU tensors: numpy views, the CPU kernels, torch back ------------------------------

@needs_torch
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_torch_cpu_prelu(rng, dtype):
    tdt = getattr(torch, dtype)
    x = torch.from_numpy(random_x(rng, (2, 3, 4, 5), np.float32)).to(tdt)
    s = random_slopes(rng, 3, np.float32)
    y = fastact.prelu(x, s)
    assert isinstance(y, torch.Tensor) and y.dtype == tdt and y.shape == x.shape
    want = _reference.prelu(x.float().numpy(), s.astype(np.float32))
    np.testing.assert_allclose(y.float().numpy(), torch.tensor(want).to(tdt).float().numpy(),
                               rtol=0, atol=0)
    g = torch.from_numpy(random_x(rng, (2, 3, 4, 5), np.float32)).to(tdt)
    gi, gs = fastact.prelu_backward(g, x, s)
    assert isinstance(gi, torch.Tensor) and gi.dtype == tdt
    assert isinstance(gs, torch.Tensor) and gs.shape == (3,)
    want_gi, want_gs = _reference.prelu_backward(g.float().numpy(), x.float().numpy(),
                                                 s.astype(np.float32))
    np.testing.assert_allclose(gi.float().numpy(), torch.tensor(want_gi).to(tdt).float().numpy())
    np.testing.assert_allclose(gs.double().numpy(), want_gs, rtol=1e-6)


@needs_torch
def test_torch_cpu_in_place_and_out_are_the_callers_tensors(rng):
    x = torch.from_numpy(random_x(rng, (2, 3, 8), np.float32))
    before = x.clone()
    r = fastact.prelu(x, 0.25, inplace=True)
    assert r is x
    np.testing.assert_array_equal(x.numpy(), _reference.prelu(before.numpy(), np.float32(0.25))
                                  .astype(np.float32))
    out = torch.full_like(x, 7.0)
    r = fastact.leaky_relu(before, 0.1, out=out)
    assert r is out
    np.testing.assert_array_equal(out.numpy(), _reference.leaky_relu(
        before.numpy(), float(np.float32(0.1))).astype(np.float32))


@needs_torch
def test_torch_cpu_channels_last_and_family(rng):
    x = torch.from_numpy(random_x(rng, (2, 4, 5, 3), np.float64))
    s = random_slopes(rng, 3, np.float64)
    y = fastact.prelu(x, s, channel_axis=-1)
    np.testing.assert_array_equal(y.numpy(), _reference.prelu(x.numpy(), s, channel_axis=-1))
    for fn, ref in ((fastact.relu6, _reference.relu6), (fastact.square, _reference.square),
                    (fastact.elu, _reference.elu)):
        r = fn(x)
        assert isinstance(r, torch.Tensor)
        np.testing.assert_allclose(r.numpy(), ref(x.numpy()), rtol=1e-15)


@needs_torch
def test_torch_cpu_refusals():
    x = torch.ones(2, 3, requires_grad=True)
    with pytest.raises(TypeError, match="requires grad"):
        fastact.prelu(x, 0.25)
    with pytest.raises(ValueError, match="stream"):
        fastact.relu(torch.ones(3), stream=1)
    with pytest.raises(TypeError, match="int64|dtype"):
        fastact.relu(torch.ones(3, dtype=torch.int64))


def _odd_tensors():
    """torch tensors whose memory is not their values as they are: name -> maker."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # beta and prototype layouts
        return {
            "sparse_coo": lambda: torch.ones(2, 3, dtype=torch.bfloat16).to_sparse(),
            "sparse float32": lambda: torch.ones(2, 3).to_sparse(),
            "sparse_csr": lambda: torch.ones(2, 3).to_sparse_csr(),
            "mkldnn": lambda: torch.ones(2, 3).to_mkldnn(),
            "nested": lambda: torch.nested.nested_tensor([torch.ones(3), torch.ones(3)]),
            "dtype torch.complex64": lambda: torch.ones(2, 3, dtype=torch.complex64).conj(),
            "negative bit": lambda: torch.ones(2, 3, dtype=torch.complex64).conj().imag,
            "dtype torch.quint8": lambda: torch.quantize_per_tensor(
                torch.ones(2, 3), 0.1, 0, torch.quint8),
        }


@needs_torch
@pytest.mark.parametrize("kind", ["sparse_coo", "sparse float32", "sparse_csr", "mkldnn",
                                  "nested", "dtype torch.complex64", "negative bit",
                                  "dtype torch.quint8"])
def test_torch_tensors_fastact_cannot_read_are_type_errors(kind):
    """Sparse, nested, mkldnn, quantized, complex (conjugate bit set or not)
    and lazily negated tensors: a TypeError naming the argument, in every
    role, and nothing written (torch's own NotImplementedError and
    RuntimeError never reach the caller)."""
    import warnings
    make = _odd_tensors()[kind]
    x = torch.ones(2, 3)
    word = kind.split()[0] if kind != "negative bit" else "negative bit"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calls = {
            "x": lambda t: fastact.relu(t),
            "grad_output": lambda t: fastact.elu_backward(t, x),
            "out": lambda t: fastact.leaky_relu(x, out=t),
            "slopes": lambda t: fastact.prelu(x, t, inplace=True),
        }
        for name, call in calls.items():
            t = make()
            with pytest.raises(TypeError, match=f"{name} (is a |has ).*{word}"):
                call(t)
            np.testing.assert_array_equal(x.numpy(), np.ones((2, 3), np.float32))


@needs_torch
@pytest.mark.parametrize("kind", ["sparse_coo", "sparse float32", "sparse_csr", "mkldnn",
                                  "nested", "dtype torch.complex64", "negative bit",
                                  "dtype torch.quint8", "int64", "requires grad",
                                  "requires grad, no_grad", "float32", "float16",
                                  "bfloat16", "float64", "strided view", "0-size"])
def test_torch_parse_fast_lane_is_check_tensors_rule(kind, monkeypatch):
    """fastact._device parses a plain torch tensor without check_tensor, and
    sends anything else to it: the same tensors are taken (with the same
    dtype entry) and the same errors raised."""
    import contextlib
    import warnings

    from fastact._foreign import check_tensor
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)   # CPU tensors here
    makers = dict(_odd_tensors())
    makers.update({
        "int64": lambda: torch.ones(2, 3, dtype=torch.int64),
        "requires grad": lambda: torch.ones(2, 3, requires_grad=True),
        "requires grad, no_grad": lambda: torch.ones(2, 3, requires_grad=True),
        "strided view": lambda: torch.ones(4, 6)[:, ::2],
        "0-size": lambda: torch.ones(0, 3),
        **{name: (lambda name=name: torch.ones(2, 3, dtype=getattr(torch, name)))
           for name in ("float32", "float16", "bfloat16", "float64")},
    })
    context = torch.no_grad() if kind.endswith("no_grad") else contextlib.nullcontext()
    with warnings.catch_warnings(), context:
        warnings.simplefilter("ignore")
        t = makers[kind]()
        try:
            want = check_tensor(t, "x")
        except TypeError as exc:
            with pytest.raises(TypeError) as got:
                _device._parse_torch(t, "x")
            assert str(got.value) == str(exc)
            return
        a = _device._parse_torch(t, "x")
    assert a.dt is want and a.lib == "torch" and a.obj is t
    assert a.shape == tuple(t.shape) and a.size == t.numel() and a.ptr == t.data_ptr()
    assert a.contiguous == t.is_contiguous() and a.device == 0
    assert _device.is_torch_cuda(t) is False


@needs_torch
def test_torch_cpu_view_is_not_copied(rng):
    x = torch.from_numpy(random_x(rng, (4, 6), np.float32))
    v = x[:, ::2]                                   # a strided view, in place
    before = v.clone()
    fastact.relu(v, inplace=True)
    np.testing.assert_array_equal(x[:, ::2].numpy(), np.maximum(before.numpy(), 0))


# --- CUDA arrays without a GPU: parsing, checks, what would be launched ------------------------

class FakeCudaArray:
    """An object with __cuda_array_interface__ over host memory (never read)."""

    def __init__(self, a, version=3, stream=None, strides=None, readonly=False,
                 typestr=None):
        self.a = a
        self._cai = {"shape": a.shape, "typestr": typestr or a.dtype.str,
                     "data": (a.ctypes.data, readonly), "version": version,
                     "strides": strides}
        if version >= 3:
            self._cai["stream"] = stream

    @property
    def __cuda_array_interface__(self):
        return self._cai


class RecordingCuda:
    """Stands in for fastact._cuda: records launches, launches nothing."""

    def __init__(self):
        self.calls = []
        self.waits = []

    def pointer_device(self, ptr):
        return 0, True

    def stream_wait(self, device, waiting, producer):
        self.waits.append((waiting, producer))

    def __getattr__(self, name):
        def launch(*args):
            self.calls.append((name, args))
        return launch


@pytest.fixture
def fake_gpu(monkeypatch):
    rec = RecordingCuda()
    monkeypatch.setattr(_device, "_cuda_or_raise", lambda: rec)
    return rec


def test_without_a_gpu_cuda_arrays_are_refused_clearly():
    if fastact.cuda_available():
        pytest.skip("a GPU is available here")
    x = FakeCudaArray(np.zeros((2, 3), np.float32))
    with pytest.raises(RuntimeError, match="cannot use the GPU"):
        fastact.prelu(x, 0.25, out=FakeCudaArray(np.zeros((2, 3), np.float32)))


def test_cai_dispatch_records_the_launch(fake_gpu):
    x = FakeCudaArray(np.zeros((2, 3, 4), np.float32), stream=12345)
    out = FakeCudaArray(np.zeros((2, 3, 4), np.float32))
    r = fastact.prelu(x, np.array([0.5, 0.25, 2.0]), out=out)
    assert r is out
    name, args = fake_gpu.calls[-1]
    assert name == "prelu_forward"
    device, dt, xp, sp, on_host, shared, yp, outer, channels, inner, stream = args
    assert (device, dt, xp, yp) == (0, 0, x.a.ctypes.data, out.a.ctypes.data)
    assert on_host and (outer, channels, inner) == (2, 3, 4)
    assert stream == 12345                       # the producer's stream (CAI v3)


def test_cai_stream_argument_wins_and_orders_operands(fake_gpu):
    x = FakeCudaArray(np.zeros(8, np.float64), stream=11)
    out = FakeCudaArray(np.zeros(8, np.float64), stream=22)
    fastact.relu(x, out=out, stream=99)
    name, args = fake_gpu.calls[-1]
    assert name == "unary_forward" and args[-1] == 99
    assert (99, 11) in fake_gpu.waits and (99, 22) in fake_gpu.waits


def test_cai_shared_slope_is_passed_by_value(fake_gpu):
    x = FakeCudaArray(np.zeros((5, 7), np.float32), version=2)
    fastact.prelu(x, 0.3, out=FakeCudaArray(np.zeros((5, 7), np.float32)))
    args = fake_gpu.calls[-1][1]
    assert args[3] == 0 and args[5] == pytest.approx(0.3) and args[7:10] == (1, 1, 35)
    assert args[-1] == 0                         # no stream exported: the default stream


@pytest.mark.parametrize("typestr,err", [("<i4", TypeError), ("<c8", TypeError),
                                         (">f4", TypeError)])
def test_cai_bad_dtype(fake_gpu, typestr, err):
    x = FakeCudaArray(np.zeros(4, np.float32), typestr=typestr)
    with pytest.raises(err, match="x has dtype"):
        fastact.relu(x, out=FakeCudaArray(np.zeros(4, np.float32)))
    assert not fake_gpu.calls


def test_cai_checks_before_writing(fake_gpu):
    x = FakeCudaArray(np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match="out="):
        fastact.relu(x)                           # unknown library: cannot allocate
    with pytest.raises(ValueError, match="shape"):
        fastact.relu(x, out=FakeCudaArray(np.zeros((3, 2), np.float32)))
    with pytest.raises(ValueError, match="dtype"):
        fastact.relu(x, out=FakeCudaArray(np.zeros((2, 3), np.float64)))
    with pytest.raises(ValueError, match="read-only"):
        fastact.relu(x, out=FakeCudaArray(np.zeros((2, 3), np.float32), readonly=True))
    with pytest.raises(ValueError, match="different devices|on the CPU"):
        fastact.relu(x, out=np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        fastact.relu(FakeCudaArray(np.zeros((2, 3), np.float32), strides=(4, 8)),
                     inplace=True)
    with pytest.raises(ValueError, match="slopes has 4 values"):
        fastact.prelu(x, [1.0, 2.0, 3.0, 4.0], out=FakeCudaArray(np.zeros((2, 3), np.float32)))
    with pytest.raises(ValueError, match="on the CPU"):
        fastact.relu_backward(np.zeros((2, 3), np.float32), x,
                              out=FakeCudaArray(np.zeros((2, 3), np.float32)))
    with pytest.raises(ValueError, match="partially"):
        buf = np.zeros(12, np.float32)
        fastact.relu(FakeCudaArray(buf[:6].reshape(2, 3)),
                     out=FakeCudaArray(buf[2:8].reshape(2, 3)))
    assert not fake_gpu.calls


def test_cai_in_place_is_allowed(fake_gpu):
    a = np.zeros((2, 3), np.float32)
    x = FakeCudaArray(a)
    assert fastact.relu(x, inplace=True) is x
    args = fake_gpu.calls[-1][1]
    assert args[6] == args[7] == a.ctypes.data


@needs_torch
def test_torch_slopes_on_the_cpu_with_cuda_x_are_copied(fake_gpu):
    x = FakeCudaArray(np.zeros((2, 3, 4), np.float64))
    fastact.prelu(x, torch.tensor([1.0, 2.0, 3.0]), out=FakeCudaArray(np.zeros((2, 3, 4))))
    args = fake_gpu.calls[-1][1]
    assert args[4] is True or args[4] == 1        # slopes from host memory


def test_cai_slopes_and_channel_axis_checked_before_launch(fake_gpu):
    """The GPU path checks slopes and channel_axis by the CPU's rules (one
    place): finite numbers and host arrays, integer channel_axis; an array of
    one value of any shape is shared."""
    x = FakeCudaArray(np.zeros((2, 3), np.float32))
    out = FakeCudaArray(np.zeros((2, 3), np.float32))
    for bad, exc, match in [(float("nan"), ValueError, "slopes is NaN"),
                            (np.inf, ValueError, "slopes must be finite"),
                            (10 ** 400, ValueError, "slopes must be finite, got an int"),
                            (np.array([0.5, np.inf, 1.0]), ValueError,
                             "slopes must be finite, got inf at index 1"),
                            (np.array([1, 2, 3]), TypeError, "slopes has dtype int64"),
                            (True, TypeError, "slopes must be a real number")]:
        with pytest.raises(exc, match=match):
            fastact.prelu(x, bad, out=out)
        with pytest.raises(exc, match=match):
            fastact.prelu_backward(FakeCudaArray(np.zeros((2, 3), np.float32)), x, bad, out=out)
    for bad in (True, 1.0, "1"):
        with pytest.raises(TypeError, match="channel_axis must be an int"):
            fastact.prelu(x, 0.5, out=out, channel_axis=bad)
    assert not fake_gpu.calls
    fastact.prelu(x, np.full((1, 1, 1), 0.75, np.float32), out=out, channel_axis=np.int64(-1))
    args = fake_gpu.calls[-1][1]
    assert args[5] == 0.75 and args[7:10] == (1, 1, 6)        # shared, by value


def test_cai_affine_prelu_records_the_launch(fake_gpu):
    x = FakeCudaArray(np.zeros((2, 3, 4), np.float32), stream=777)
    out = FakeCudaArray(np.zeros((2, 3, 4), np.float32))
    r = fastact.affine_prelu(x, np.array([1.0, 2.0, 3.0]), 0.5, [0.25, 0.5, 2.0], out=out)
    assert r is out
    name, args = fake_gpu.calls[-1]
    assert name == "affine_prelu_forward"
    device, dt, xp, scp, shp, slp, on_host, yp, outer, channels, inner, stream = args
    assert (device, dt, xp, yp) == (0, 0, x.a.ctypes.data, out.a.ctypes.data)
    assert on_host and scp and shp and slp and (outer, channels, inner) == (2, 3, 4)
    assert stream == 777
    xl = FakeCudaArray(np.zeros((2, 4, 3), np.float32))
    fastact.affine_prelu(xl, 1.0, 0.0, [0.25, 0.5, 2.0], channel_axis=-1, inplace=True)
    assert fake_gpu.calls[-1][1][8:11] == (8, 3, 1)


def test_cai_affine_prelu_checks_before_launch(fake_gpu):
    x = FakeCudaArray(np.zeros((2, 3, 4), np.float32))
    out = FakeCudaArray(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="shift has 2 values"):
        fastact.affine_prelu(x, 1.0, [1.0, 2.0], 0.25, out=out)
    with pytest.raises(ValueError, match="scale must be finite"):
        fastact.affine_prelu(x, np.inf, 0.0, 0.25, out=out)
    with pytest.raises(TypeError, match="slopes is on a CUDA device"):
        fastact.affine_prelu(x, 1.0, 0.0, FakeCudaArray(np.ones(3, np.float32)), out=out)
    with pytest.raises(ValueError, match="shape"):
        fastact.affine_prelu(x, 1.0, 0.0, 0.25, out=FakeCudaArray(np.zeros((3, 2, 4),
                                                                           np.float32)))
    with pytest.raises(ValueError, match="stream="):
        fastact.affine_prelu(np.zeros((2, 3)), 1.0, 0.0, 0.25, stream=5)
    assert not fake_gpu.calls
