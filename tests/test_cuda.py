"""GPU tests: every op on CUDA arrays (torch and CuPy) against the CPU kernels
and the float64 oracles, streams, in place, and bad input.  Skipped, with the
reason, where fastact's CUDA part is not built or no GPU is usable."""
import numpy as np
import pytest

import fastact
from fastact import _device, _reference

from helpers import assert_close_in_ulps, assert_grad_slopes_close, random_slopes, random_x

if not _device.cuda_available():
    pytest.skip(f"no usable GPU: {_device.cuda_status()}", allow_module_level=True)

try:
    import torch
    HAVE_TORCH = torch.cuda.is_available()
except ImportError:
    torch, HAVE_TORCH = None, False
try:
    import cupy
    HAVE_CUPY = cupy.cuda.runtime.getDeviceCount() > 0
except Exception:  # noqa: BLE001 - no CuPy, or no device for it
    cupy, HAVE_CUPY = None, False

needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="torch with CUDA is not installed")
needs_cupy = pytest.mark.skipif(not HAVE_CUPY, reason="CuPy is not installed")
DTYPES = ["float32", "float64", "float16", "bfloat16"]


def _t(a, dtype):
    return torch.from_numpy(np.asarray(a, np.float64)).to(getattr(torch, dtype)).cuda()


def _np(t):
    return t.double().cpu().numpy() if torch is not None and isinstance(t, torch.Tensor) \
        else cupy.asnumpy(t).astype(np.float64)


def _oracle_rounded(a, dtype):
    """The float64 oracle rounded as the kernels round: to the compute type
    (float32 for the half types), then to dtype."""
    compute = np.float64 if dtype == "float64" else np.float32
    with np.errstate(over="ignore"):
        a = torch.from_numpy(np.asarray(a, np.float64).astype(compute))
    return a.to(getattr(torch, dtype)).double().numpy()


def _close(got, want, dtype):
    """Within 4 ulp of dtype (counted in ulps, so that subnormal half results
    are held to the same bound as normal ones), NaN where NaN."""
    assert_close_in_ulps(got, want, dtype, 4)


FAMILY = [
    ("leaky_relu", (0.2,), lambda x: _reference.leaky_relu(x, float(np.float32(0.2)))),
    ("relu", (0.1, 1.5, 0.25), None),
    ("relu6", (), _reference.relu6),
    ("thresholded_relu", (0.5,), lambda x: _reference.thresholded_relu(x, 0.5)),
    ("elu", (1.3,), None),
    ("hardtanh", (-0.3, 2.7), None),
    ("square", (), _reference.square),
]


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,args,_", FAMILY)
def test_family_torch_against_cpu_and_oracle(rng, dtype, name, args, _):
    x64 = random_x(rng, (3, 5, 67), np.float64) * 3
    g64 = random_x(rng, (3, 5, 67), np.float64)
    x, g = _t(x64, dtype), _t(g64, dtype)
    fwd, bwd = getattr(fastact, name), getattr(fastact, name + "_backward")
    y = fwd(x, *args)
    assert isinstance(y, torch.Tensor) and y.is_cuda and y.dtype == x.dtype
    cp = tuple(float(np.float32(a)) for a in args) if dtype != "float64" else args
    ref = getattr(_reference, name)(_np(x), *cp)
    _close(_np(y), _oracle_rounded(ref, dtype), dtype)
    # the CPU kernels on the same data: the same definitions, so the same bits
    # (float64 ELU aside: CUDA's expm1 and exp against the C library's, each
    # within an ulp)
    cpu = fwd(x.cpu(), *args)
    gi = bwd(g, x, *args)
    cpu_gi = bwd(g.cpu(), x.cpu(), *args)
    if name == "elu" and dtype == "float64":
        assert_close_in_ulps(_np(y), _np(cpu.cuda()), dtype, 2)
        assert_close_in_ulps(_np(gi), _np(cpu_gi.cuda()), dtype, 2)
    else:
        torch.testing.assert_close(y.cpu(), cpu, rtol=0, atol=0, equal_nan=True)
        torch.testing.assert_close(gi.cpu(), cpu_gi, rtol=0, atol=0, equal_nan=True)
    refg = getattr(_reference, name + "_backward")(_np(g), _np(x), *cp)
    _close(_np(gi), _oracle_rounded(refg, dtype), dtype)


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,slopes_shape,axis", [
    ((4, 8, 16, 16), (8,), 1), ((2, 3, 130, 130), (3,), 1), ((4, 9, 9, 24), (24,), -1),
    ((3, 5, 7), None, 1), ((2, 3, 4, 5), (3, 1, 1), 1), ((2, 3, 4, 5), (1, 4, 5), 1),
    ((0, 3, 4), (3,), 1)])
def test_prelu_torch(rng, dtype, shape, slopes_shape, axis):
    x64, g64 = random_x(rng, shape, np.float64), random_x(rng, shape, np.float64)
    x, g = _t(x64, dtype), _t(g64, dtype)
    if slopes_shape is None:
        slopes, s = 0.3, np.float64(np.float32(0.3)) if dtype != "float64" else 0.3
    else:
        s = random_slopes(rng, int(np.prod(slopes_shape)), np.float64).reshape(slopes_shape)
        if dtype != "float64":
            s = s.astype(np.float32).astype(np.float64)
        slopes = s
    y = fastact.prelu(x, slopes, channel_axis=axis)
    _close(_np(y), _oracle_rounded(_reference.prelu(_np(x), s, axis), dtype), dtype)
    gi, gs = fastact.prelu_backward(g, x, slopes, channel_axis=axis)
    want_gi, want_gs = _reference.prelu_backward(_np(g), _np(x), s, axis)
    _close(_np(gi), _oracle_rounded(want_gi, dtype), dtype)
    gdt = np.float64 if dtype == "float64" else np.float32
    assert gs.dtype == (torch.float64 if dtype == "float64" else torch.float32)
    assert_grad_slopes_close(_np(gs), want_gs, _np(g), _np(x), gdt)
    # bitwise reproducible
    gi2, gs2 = fastact.prelu_backward(g, x, slopes, channel_axis=axis)
    assert torch.equal(gs, gs2) or (torch.isnan(gs).any() and torch.equal(
        torch.nan_to_num(gs), torch.nan_to_num(gs2)))
    # slopes already on the GPU
    if slopes_shape is not None:
        st = torch.from_numpy(np.asarray(s)).to(torch.float64 if dtype == "float64"
                                                else torch.float32).cuda()
        y2 = fastact.prelu(x, st, channel_axis=axis)
        assert torch.equal(y, y2)
        gi3, gs3 = fastact.prelu_backward(g, x, st, channel_axis=axis)
        assert torch.equal(gi, gi3) and gs3.shape == st.shape and gs3.is_cuda


@needs_torch
def test_in_place_out_and_non_contiguous(rng):
    x = _t(random_x(rng, (4, 6, 32), np.float64), "float32")
    want = fastact.prelu(x, 0.25)
    xi = x.clone()
    assert fastact.prelu(xi, 0.25, inplace=True) is xi and torch.equal(xi, want)
    out = torch.full_like(x, 7.0)
    assert fastact.prelu(x, 0.25, out=out) is out and torch.equal(out, want)
    xt = x.transpose(1, 2)                       # non-contiguous input: copied
    assert torch.equal(fastact.relu(xt), torch.relu(xt))
    with pytest.raises(ValueError, match="C-contiguous"):
        fastact.relu(xt, inplace=True)


@needs_torch
def test_non_default_stream_without_extra_synchronisation(rng):
    n = 1 << 22
    x = _t(random_x(rng, (n,), np.float64), "float32")
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        x2 = x * 1.0                                  # produced on s
        y = fastact.leaky_relu(x2, 0.1)               # torch's current stream: s
        gi, gs = fastact.prelu_backward(x2, x2, 0.1)
    s.synchronize()
    torch.testing.assert_close(y, torch.nn.functional.leaky_relu(x, float(np.float32(0.1))),
                               rtol=0, atol=0)
    # an explicit stream= argument
    other = torch.cuda.Stream()
    other.wait_stream(torch.cuda.current_stream())
    y2 = fastact.leaky_relu(x, 0.1, stream=other)
    other.synchronize()
    assert torch.equal(y, y2)


@needs_torch
def test_bad_inputs_torch():
    x = torch.ones(2, 3, device="cuda")
    with pytest.raises(TypeError, match="requires grad"):
        fastact.relu(torch.ones(3, device="cuda", requires_grad=True))
    with pytest.raises(TypeError, match="dtype"):
        fastact.relu(torch.ones(3, device="cuda", dtype=torch.int32))
    with pytest.raises(ValueError, match="CPU|device"):
        fastact.relu(x, out=torch.ones(2, 3))
    with pytest.raises(ValueError, match="shape"):
        fastact.relu(x, out=torch.ones(3, 2, device="cuda"))
    with pytest.raises(ValueError, match="slopes has 4 values"):
        fastact.prelu(x, [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="CPU|device"):
        fastact.relu_backward(torch.ones(2, 3), x)


@needs_cupy
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_cupy(rng, dtype):
    x64 = random_x(rng, (3, 4, 50), np.float64)
    x = cupy.asarray(x64.astype(dtype))
    s = random_slopes(rng, 4, np.float32)
    y = fastact.prelu(x, s)
    assert isinstance(y, cupy.ndarray) and y.dtype == x.dtype
    cs = s.astype(np.float64)
    want = _reference.prelu(cupy.asnumpy(x), cs).astype(dtype).astype(np.float64)
    _close(cupy.asnumpy(y).astype(np.float64), want, dtype)
    g = cupy.asarray(random_x(rng, (3, 4, 50), np.float64).astype(dtype))
    gi, gs = fastact.prelu_backward(g, x, cupy.asarray(s))
    assert isinstance(gi, cupy.ndarray) and isinstance(gs, cupy.ndarray)
    want_gi, want_gs = _reference.prelu_backward(cupy.asnumpy(g), cupy.asnumpy(x), cs)
    assert_grad_slopes_close(cupy.asnumpy(gs), want_gs, cupy.asnumpy(g), cupy.asnumpy(x),
                             np.float64 if dtype == "float64" else np.float32)
    with cupy.cuda.Stream(non_blocking=True) as st:
        y2 = fastact.prelu(x, s)
    st.synchronize()
    assert bool((y2 == y).all())
