"""fastact.torch: the torch.library operators, their autograd, the modules and
convert(), against torch's own results and float64 oracles."""
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional
ft = pytest.importorskip("fastact.torch")

from fastact import _reference  # noqa: E402

SPECIAL = [0.0, -0.0, 1.0, -1.0, 6.0, np.inf, -np.inf, 1e-30, -1e-30]
DTYPES = [torch.float32, torch.float64]
LAYOUTS = ["contiguous", "channels_last", "transposed"]


def _data(dtype, shape=(2, 5, 6, 7), nan=True, seed=None):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-8, 8, shape)
    flat = x.reshape(-1)
    special = SPECIAL + ([np.nan] if nan else [])
    flat[rng.choice(flat.size, len(special), replace=False)] = special
    return torch.from_numpy(x).to(dtype)


def _layout(t, layout):
    if layout == "channels_last":
        return t.contiguous(memory_format=torch.channels_last)
    if layout == "transposed":       # dense, but neither contiguous nor channels_last
        return t.transpose(2, 3).contiguous().transpose(2, 3)
    return t.contiguous()


def _bits(t):
    return t.contiguous().view(torch.int64 if t.dtype == torch.float64 else torch.int32)


def assert_bitwise(got, want, mask=None):
    """Equal bit for bit (the sign of zero included); NaN equals any NaN."""
    assert got.shape == want.shape and got.dtype == want.dtype
    same = (_bits(got) == _bits(want)) | (torch.isnan(got) & torch.isnan(want))
    if mask is not None:
        same |= ~mask
    assert bool(same.all()), (got[~same], want[~same])


# --- import rules -------------------------------------------------------------------

def test_import_fastact_does_not_import_torch():
    code = "import sys, fastact; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_import_without_torch_names_the_extra():
    code = ("import sys; sys.modules['torch'] = None\n"
            "try:\n    import fastact.torch\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert 'pip install "fastact[torch]"' in out


# --- forward and backward against torch ---------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shared", [False, True])
def test_prelu_matches_torch(dtype, layout, shared):
    x0 = _layout(_data(dtype), layout)
    w0 = torch.tensor([0.3], dtype=dtype) if shared else torch.linspace(-1.5, 2.0, 5,
                                                                        dtype=dtype)
    x, w = x0.clone().requires_grad_(), w0.clone().requires_grad_()
    xr, wr = x0.clone().requires_grad_(), w0.clone().requires_grad_()
    y, yr = ft.prelu(x, w), F.prelu(xr, wr)
    assert_bitwise(y, yr)
    if layout == "channels_last":
        assert y.is_contiguous(memory_format=torch.channels_last)
    g = _data(dtype, seed=1)
    y.backward(g)
    yr.backward(g)
    assert_bitwise(x.grad, xr.grad)
    # the weight gradient: fastact's fixed-order float64 sum, against the oracle
    with np.errstate(invalid="ignore"):
        _, want = _reference.prelu_backward(g.double().numpy(), x0.double().numpy(),
                                            w0.double().numpy())
    np.testing.assert_allclose(w.grad.numpy(), np.reshape(want, w.shape),
                               rtol=1e-6 if dtype == torch.float32 else 1e-13)


def test_prelu_weight_without_grad_skips_its_gradient():
    for w in (torch.tensor([0.25]), torch.rand(5)):
        x = _data(torch.float32, nan=False).requires_grad_()
        xr = x.detach().clone().requires_grad_()
        ft.prelu(x, w).sum().backward()
        F.prelu(xr, w).sum().backward()
        assert_bitwise(x.grad, xr.grad)
        assert w.grad is None


FAMILY = [
    ("leaky_relu", (0.1,), lambda x: F.leaky_relu(x, 0.1)),
    ("leaky_relu", (-1.7,), lambda x: F.leaky_relu(x, -1.7)),
    ("hardtanh", (-1.0, 6.0), lambda x: F.hardtanh(x, -1.0, 6.0)),
    ("hardtanh", (0.0, 6.0), lambda x: F.hardtanh(x, 0.0, 6.0)),
    ("relu6", (), F.relu6),
    ("relu", (), F.relu),
    ("relu", (0.3,), lambda x: F.leaky_relu(x, 0.3)),     # Keras's slope, no threshold or cap
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name, params, reference", FAMILY)
def test_family_matches_torch(dtype, layout, name, params, reference):
    x0 = _layout(_data(dtype), layout)
    x, xr = x0.clone().requires_grad_(), x0.clone().requires_grad_()
    y, yr = getattr(ft, name)(x, *params), reference(xr)
    assert_bitwise(y, yr)
    if layout == "channels_last":
        assert y.is_contiguous(memory_format=torch.channels_last)
    g = _data(dtype, seed=2)
    y.backward(g)
    yr.backward(g)
    # torch's hardtanh gradient at NaN depends on where the NaN lies in
    # memory; fastact passes grad_output through (see test_family_api)
    assert_bitwise(x.grad, xr.grad, mask=~torch.isnan(x0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_elu_against_oracle_and_torch(dtype, layout):
    x0 = _layout(_data(dtype, nan=False), layout)
    x = x0.clone().requires_grad_()
    y = ft.elu(x, 0.7)
    want = _reference.elu(x0.double().numpy(), 0.7)
    tol = 1.5e-7 if dtype == torch.float32 else 1e-15
    np.testing.assert_allclose(y.detach().double().numpy(), want, rtol=tol, atol=1e-30)
    np.testing.assert_allclose(y.detach().numpy(), F.elu(x0, 0.7).numpy(), rtol=tol * 3)
    g = _data(dtype, seed=3, nan=False)
    y.backward(g)
    want = _reference.elu_backward(g.double().numpy(), x0.double().numpy(), 0.7)
    np.testing.assert_allclose(x.grad.double().numpy(), want, rtol=tol * 2, atol=1e-30)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision(dtype):
    x0 = _data(dtype, nan=False)
    w0 = torch.rand(5, dtype=dtype)
    x, w = x0.clone().requires_grad_(), w0.clone().requires_grad_()
    y = ft.prelu(x, w)
    assert y.dtype == dtype
    assert_bitwise(y.view(torch.int16).view(dtype).float(), F.prelu(x0, w0).float())
    y.backward(torch.ones_like(y))
    assert w.grad.dtype == dtype and x.grad.dtype == dtype
    xs = x0.double().numpy()
    want = np.where(xs > 0, 0.0, xs).sum(axis=(0, 2, 3))
    np.testing.assert_allclose(w.grad.double().numpy(), want, rtol=1e-2)
    assert torch.equal(ft.leaky_relu(x0, 0.1), F.leaky_relu(x0, 0.1))


def test_empty_and_small_shapes():
    for shape, w in (((0, 3, 4), torch.rand(3)), ((5,), torch.rand(1)), ((), torch.rand(1)),
                     ((4, 3), torch.rand(3))):
        x = torch.randn(shape, requires_grad=True)
        wg = w.clone().requires_grad_()
        y = ft.prelu(x, wg)
        assert torch.equal(y, F.prelu(x.detach(), w))
        y.sum().backward()
        assert x.grad.shape == x.shape and wg.grad.shape == w.shape


# --- opcheck, gradcheck, double backward ----------------------------------------------

def _samples():
    """(layout, dtype, x) samples: contiguous, channels_last, non-contiguous."""
    for dtype in (torch.float32, torch.float64, torch.bfloat16, torch.float16):
        base = torch.randn(2, 3, 4, 5).to(dtype)
        yield "contiguous", dtype, base
        yield "channels_last", dtype, base.contiguous(memory_format=torch.channels_last)
        yield "strided", dtype, torch.randn(2, 3, 4, 10).to(dtype)[..., ::2]


@pytest.mark.parametrize("layout, dtype, x", list(_samples()),
                         ids=lambda v: str(v).replace("torch.", ""))
def test_opcheck(layout, dtype, x):
    ops = torch.ops.fastact
    g = torch.randn(x.shape).to(dtype)
    for w in (torch.rand(3).to(dtype), torch.rand(1).to(dtype)):
        for rg in (False, True):
            args = (x.clone().requires_grad_(rg), w.clone().requires_grad_(rg))
            torch.library.opcheck(ops.prelu.default, args)
        torch.library.opcheck(ops.prelu_backward.default, (g, x, w))
        torch.library.opcheck(ops.prelu_backward_input.default, (g, x, w))
    for name, params in (("leaky_relu", (0.2,)), ("elu", (0.5,)), ("hardtanh", (-0.5, 2.0)),
                         ("relu6", ()), ("relu", ()), ("relu", (0.1, 1.5, 0.25)),
                         ("thresholded_relu", (0.5,))):
        for rg in (False, True):
            torch.library.opcheck(getattr(ops, name).default,
                                  (x.clone().requires_grad_(rg), *params))
        torch.library.opcheck(getattr(ops, name + "_").default, (x.clone(), *params))
        torch.library.opcheck(getattr(ops, name + "_backward").default, (g, x, *params))


def _fastact_cuda():
    if not torch.cuda.is_available():
        return False
    from fastact import _device
    return _device._load_cuda() is not None and _device.cuda_available()


@pytest.mark.skipif(not _fastact_cuda(), reason="needs a GPU and fastact's CUDA build")
@pytest.mark.parametrize("layout, dtype, x", list(_samples()),
                         ids=lambda v: str(v).replace("torch.", ""))
def test_cuda_operators_match_cpu(layout, dtype, x):
    ops = torch.ops.fastact
    g = torch.randn(x.shape).to(dtype)
    xc, gc = x.cuda(), g.cuda()
    for w in (torch.rand(3).to(dtype), torch.rand(1).to(dtype)):
        wc = w.cuda()
        torch.library.opcheck(ops.prelu.default, (xc, wc))
        torch.library.opcheck(ops.prelu_backward.default, (gc, xc, wc))
        assert torch.equal(ops.prelu(xc, wc).cpu(), ops.prelu(x, w))
        gi, gw = ops.prelu_backward(gc, xc, wc)
        gi_cpu, gw_cpu = ops.prelu_backward(g, x, w)
        assert torch.equal(gi.cpu(), gi_cpu)
        torch.testing.assert_close(gw.cpu(), gw_cpu, rtol=1e-6, atol=0)
        assert torch.equal(ops.prelu_backward_input(gc, xc, wc).cpu(), gi_cpu)
    for name, params in (("leaky_relu", (0.2,)), ("hardtanh", (-0.5, 2.0)), ("relu6", ()),
                         ("relu", ()), ("thresholded_relu", (0.5,))):
        op = getattr(ops, name)
        torch.library.opcheck(op.default, (xc, *params))
        assert torch.equal(op(xc, *params).cpu(), op(x, *params))
        back = getattr(ops, name + "_backward")
        assert torch.equal(back(gc, xc, *params).cpu(), back(g, x, *params))
        y = xc.clone()
        getattr(ops, name + "_")(y, *params)
        assert torch.equal(y.cpu(), op(x, *params))
    scale, shift, w = (torch.randn(3).to(dtype) for _ in range(3))
    args = (xc, scale.cuda(), shift.cuda(), w.cuda())
    torch.library.opcheck(ops.affine_prelu.default, args)
    assert torch.equal(ops.affine_prelu(*args).cpu(), ops.affine_prelu(x, scale, shift, w))


def test_gradcheck():
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    x = torch.where(x.abs() < 1e-3, 0.5, x).requires_grad_()  # away from the kinks
    for w in (torch.rand(3, dtype=torch.float64), torch.rand(1, dtype=torch.float64)):
        w.requires_grad_()
        assert torch.autograd.gradcheck(ft.prelu, (x, w))
        assert torch.autograd.gradcheck(torch.ops.fastact.prelu, (x, w))
    xc = x.detach().clamp(-0.9, 0.9)
    xc = torch.where((xc.abs() - 0.9).abs() < 1e-3, 0.1, xc).requires_grad_()
    for fn in (lambda a: ft.leaky_relu(a, 0.3), lambda a: ft.elu(a, 1.3),
               lambda a: ft.hardtanh(a, -0.95, 0.95), lambda a: ft.relu6(a * 8),
               lambda a: torch.ops.fastact.elu(a, 0.4)):
        assert torch.autograd.gradcheck(fn, (xc,))


@pytest.mark.parametrize("call", [
    lambda x, w: ft.prelu(x, w), lambda x, w: torch.ops.fastact.prelu(x, w),
    lambda x, w: ft.elu(x) * w[:, None]])
def test_double_backward_raises(call):
    x = torch.randn(2, 3, 4, requires_grad=True)
    w = torch.rand(3, requires_grad=True)
    (gx,) = torch.autograd.grad(call(x, w).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match=r"fastact::\w+_backward\w* has no derivative"):
        gx.sum().backward()


# --- bad input ------------------------------------------------------------------------

def test_bad_input_names_the_argument():
    x = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match="weight has 4 values but x has 3 channels"):
        ft.prelu(x, torch.rand(4))
    with pytest.raises(ValueError, match="weight has dtype"):
        ft.prelu(x, torch.rand(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="weight must be a scalar or a 1-D"):
        ft.prelu(x, torch.rand(3, 1))
    with pytest.raises(TypeError, match="x has dtype torch.int64"):
        ft.prelu(torch.ones(2, 3, dtype=torch.int64), torch.ones(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="negative_slope must be finite"):
        ft.leaky_relu(x, float("inf"))
    with pytest.raises(ValueError, match="min_val must not be greater than max_val"):
        ft.hardtanh(x, 2.0, 1.0)
    with pytest.raises(ValueError, match="grad_output has shape"):
        torch.ops.fastact.prelu_backward(torch.ones(2, 3), x, torch.rand(3))
    before = x.clone()
    with pytest.raises(ValueError, match="alpha is NaN"):
        ft.elu(x, float("nan"), inplace=True)
    assert torch.equal(x, before)          # nothing written


def test_inplace():
    for layout in LAYOUTS:
        x = _layout(_data(torch.float32), layout)
        want = F.leaky_relu(x, 0.2)
        ptr = x.data_ptr()
        assert ft.leaky_relu(x, 0.2, inplace=True) is x
        assert x.data_ptr() == ptr
        assert_bitwise(x, want)


INPLACE = [
    ("leaky_relu", (0.2,), lambda x: F.leaky_relu(x, 0.2, inplace=True)),
    ("leaky_relu", (0.0,), lambda x: F.leaky_relu(x, 0.0, inplace=True)),
    ("hardtanh", (-1.0, 6.0), lambda x: F.hardtanh(x, -1.0, 6.0, inplace=True)),
    ("relu6", (), lambda x: F.relu6(x, inplace=True)),
    ("relu", (), lambda x: F.relu(x, inplace=True)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, params, reference", INPLACE)
def test_inplace_under_autograd_matches_torch(dtype, name, params, reference):
    x0 = _data(dtype)
    leaf, leaf_r = x0.clone().requires_grad_(), x0.clone().requires_grad_()
    h, hr = leaf * 1, leaf_r * 1                 # non-leaf: in place is allowed
    y = getattr(ft, name)(h, *params, inplace=True)
    yr = reference(hr)
    assert y is h and y.grad_fn is not None
    assert_bitwise(h, hr)
    g = _data(dtype, seed=4)
    y.backward(g)
    yr.backward(g)
    assert_bitwise(leaf.grad, leaf_r.grad, mask=~torch.isnan(x0))


@pytest.mark.parametrize("dtype", DTYPES)
def test_elu_inplace_under_autograd(dtype):
    # the gradient from the output, as torch's in-place ELU: g * (y + alpha)
    # for y <= 0, here in float64 and rounded once (the forward is checked
    # against its oracle in test_elu_against_oracle_and_torch)
    x0 = _data(dtype, nan=False)
    leaf, leaf_r = x0.clone().requires_grad_(), x0.clone().requires_grad_()
    h, hr = leaf * 1, leaf_r * 1
    y = ft.elu(h, 0.7, inplace=True)
    yr = F.elu(hr, 0.7, inplace=True)
    assert y is h
    y64 = y.detach().double().numpy()
    g = _data(dtype, seed=5, nan=False)
    y.backward(g)
    yr.backward(g)
    alpha = float(torch.tensor(0.7, dtype=dtype))      # the kernel's alpha, in x's dtype
    want = _reference.elu_backward_from_output(g.double().numpy(), y64, alpha)
    tol = 1.5e-7 if dtype == torch.float32 else 1e-15
    np.testing.assert_allclose(leaf.grad.double().numpy(), want, rtol=tol, atol=1e-30)
    # torch's float32 rounds y + alpha first: near y = -alpha it loses digits
    # (and subnormal products keep few of them)
    ours, theirs = leaf.grad.double().numpy(), leaf_r.grad.double().numpy()
    tiny = torch.finfo(dtype).tiny
    np.testing.assert_allclose(ours, theirs, rtol=1e-3 if dtype == torch.float32 else 1e-12,
                               atol=tiny)


def test_inplace_under_autograd_refusals():
    # as torch: a leaf that requires grad is refused before anything is written
    x = torch.randn(3, 4, requires_grad=True)
    before = x.detach().clone()
    for call in (lambda: ft.relu6(x, inplace=True), lambda: ft.elu(x[1:], inplace=True)):
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            call()
        assert torch.equal(x.detach(), before)
    # and a negative slope cannot give the gradient from the output
    for call, ref in ((lambda h: ft.leaky_relu(h, -0.5, inplace=True),
                       lambda h: F.leaky_relu(h, -0.5, inplace=True)),
                      (lambda h: ft.elu(h, -0.5, inplace=True),
                       lambda h: F.elu(h, -0.5, inplace=True))):
        with pytest.raises(RuntimeError, match="negative"):
            ref(x * 1).sum().backward()
        y = call(x * 1)
        # (ELU: fastact's expm1 is exactly rounded, torch's within 2 ulp)
        torch.testing.assert_close(y, ref(x.detach().clone()), rtol=3e-7, atol=0,
                                   check_dtype=True)
        with pytest.raises(RuntimeError, match="negative slope or alpha"):
            y.sum().backward()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_prelu_autocast_matches_torch(dtype):
    conv = torch.nn.Conv2d(3, 5, 1)
    x = torch.randn(2, 3, 6, 7)
    w = torch.rand(5, requires_grad=True)
    for fn in (ft.prelu, torch.ops.fastact.prelu):
        with torch.autocast("cpu", dtype=dtype):
            h = conv(x)
            y, yr = fn(h, w), F.prelu(h, w)
            y32, y32r = fn(x[:, :1].float(), w[:1]), F.prelu(x[:, :1].float(), w[:1])
            y64 = fn(x.double(), w.detach().double()[:3])
        assert y.dtype == yr.dtype == dtype and y32.dtype == y32r.dtype == dtype
        assert y64.dtype == torch.float64           # float64 is not cast, as in torch
        assert torch.equal(y, yr) and torch.equal(y32, y32r)
        y.float().sum().backward()
        assert w.grad is not None and w.grad.dtype == torch.float32
        w.grad = None


# --- the numpy-level API under no_grad ------------------------------------------------

def test_numpy_api_takes_grad_tensors_under_no_grad():
    import fastact
    x = torch.randn(2, 3, 4, requires_grad=True)
    w = torch.nn.Parameter(torch.rand(3))
    with pytest.raises(TypeError, match="requires grad"):
        fastact.prelu(x, w)
    for mode in (torch.no_grad, torch.inference_mode):
        with mode():
            y = fastact.prelu(x, w)
            z = fastact.leaky_relu(x, 0.1)
        assert isinstance(y, torch.Tensor) and not y.requires_grad
        assert torch.equal(y, F.prelu(x, w).detach())
        assert torch.equal(z, F.leaky_relu(x, 0.1).detach())


def test_inference_forward_below_the_threshold_is_torchs_kernel(monkeypatch):
    """Without autograd, prelu below ft._TORCH_FORWARD_BELOW elements runs
    torch's own forward (the same bits); from there, and wherever autograd
    records, fastact's kernel; what torch refuses still gets fastact's
    error."""
    calls = []
    kernel = ft._raw_prelu_forward
    monkeypatch.setattr(ft, "_raw_prelu_forward", lambda *a: calls.append(1) or kernel(*a))
    w = torch.nn.Parameter(torch.empty(4).uniform_(-2, 2))
    below = ft._TORCH_FORWARD_BELOW
    small = _data(torch.float32, (3, 4, 5, 7))
    large = _data(torch.float32, (1, 4, below // 4))
    edge = _data(torch.float32, (1, 4, below // 4 - 1))
    for mode in (torch.no_grad, torch.inference_mode):
        with mode():
            for x, fastact_kernel in ((small, False), (edge, False), (large, True)):
                calls.clear()
                assert_bitwise(ft.prelu(x, w), F.prelu(x, w))
                assert bool(calls) is fastact_kernel
    calls.clear()
    y = ft.prelu(small, w)                    # recorded: fastact's kernel and backward
    assert calls and y.grad_fn is not None
    assert_bitwise(y.detach(), F.prelu(small, w).detach())
    with torch.no_grad(), pytest.raises(ValueError, match="weight has dtype"):
        ft.prelu(small, w.double())


# --- modules and convert -------------------------------------------------------------

def test_prelu_module_state_dict_both_ways():
    theirs = torch.nn.PReLU(4, init=0.1)
    ours = ft.PReLU(4, init=0.25, dtype=torch.float64)
    assert ours.weight.dtype == torch.float64 and list(ours.state_dict()) == ["weight"]
    ours = ft.PReLU(4)
    with torch.no_grad():
        theirs.weight.copy_(torch.rand(4))
    ours.load_state_dict(theirs.state_dict())
    assert torch.equal(ours.weight, theirs.weight)
    with torch.no_grad():
        ours.weight.copy_(torch.rand(4))
    theirs.load_state_dict(ours.state_dict())
    assert torch.equal(ours.weight, theirs.weight)
    x = torch.randn(2, 4, 3)
    assert torch.equal(ours(x), theirs(x))


def _model():
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.PReLU(8),
        torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.LeakyReLU(0.1),
        torch.nn.Sequential(torch.nn.Conv2d(8, 4, 1), torch.nn.ELU(0.5)),
        torch.nn.Hardtanh(-2.0, 2.0), torch.nn.ReLU6(inplace=True))


def test_convert_keeps_parameters():
    torch.manual_seed(0)
    model = _model()
    params = list(model.parameters())
    prelu_weight = model[2].weight
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(2, 3, 8, 8)
    want = model(x)
    assert ft.convert(model) is model
    assert [type(m).__name__ for m in model.modules()].count("PReLU") == 1
    assert type(model[2]) is ft.PReLU and type(model[4]) is ft.LeakyReLU
    assert type(model[5][1]) is ft.ELU and type(model[6]) is ft.Hardtanh
    assert type(model[7]) is ft.ReLU6 and model[7].inplace
    assert model[2].weight is prelu_weight
    assert all(a is b for a, b in zip(model.parameters(), params))
    got = model(x)
    assert torch.equal(got, want)
    got.square().sum().backward()
    before = prelu_weight.detach().clone()
    opt.step()
    assert not torch.equal(prelu_weight, before)     # the old optimizer updates it


def test_compile_fullgraph_matches_eager():
    torch.manual_seed(0)
    model = ft.convert(_model()).eval()
    x = torch.randn(2, 3, 8, 8)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    with torch.no_grad():
        assert torch.equal(compiled(x), model(x))
    # training: the operators' autograd through aot_autograd
    model.train()
    xg = x.clone().requires_grad_()
    compiled(xg).sum().backward()
    xe = x.clone().requires_grad_()
    model(xe).sum().backward()
    assert torch.equal(xg.grad, xe.grad)


def _ops_in(graph):
    return {str(n.target) for n in graph.nodes if str(n.target).startswith("fastact.")}


def test_compile_leaves_prelu_to_inductor():
    # under torch.compile prelu is torch.where (Inductor fuses it, forward
    # and backward); the family's operators stay opaque
    from torch._dynamo.backends.common import aot_autograd
    graphs = {}

    def keep(name):
        def compiler(gm, example_inputs):
            graphs[name] = gm.graph
            return gm
        return compiler

    torch.manual_seed(0)
    model = ft.convert(_model()).train()
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True,
                             backend=aot_autograd(fw_compiler=keep("fw"), bw_compiler=keep("bw")))
    x = torch.randn(2, 3, 8, 8)
    compiled(x).sum().backward()
    assert not any(op.startswith("fastact.prelu") for op in _ops_in(graphs["fw"]))
    assert not any(op.startswith("fastact.prelu") for op in _ops_in(graphs["bw"]))
    assert "fastact.leaky_relu.default" in _ops_in(graphs["fw"])
    assert "fastact.leaky_relu_backward.default" in _ops_in(graphs["bw"])


def test_compile_inductor_matches_eager():
    torch.manual_seed(0)
    # (no bias before the BatchNorm: its true gradient is 0, leaving only rounding)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, bias=False),
                                torch.nn.BatchNorm2d(8), torch.nn.PReLU(8),
                                torch.nn.Conv2d(8, 4, 1), torch.nn.PReLU())
    for m in model.modules():
        if isinstance(m, torch.nn.PReLU):
            torch.nn.init.uniform_(m.weight, -0.5, 1.5)
    ft.convert(model)
    x = torch.randn(2, 3, 8, 8)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-6, atol=1e-6)
    model.train()
    xg, xe = x.clone().requires_grad_(), x.clone().requires_grad_()
    compiled(xg).square().sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model(xe).square().sum().backward()
    torch.testing.assert_close(xg.grad, xe.grad, rtol=1e-5, atol=1e-6)
    # Inductor reorders float32 sums
    for got, p in zip(grads, model.parameters()):
        torch.testing.assert_close(got, p.grad, rtol=1e-5, atol=1e-5)


def test_readme_pytorch_example_runs():
    import pathlib
    import re
    readme = pathlib.Path(__file__).resolve().parent.parent / "README.md"
    if not readme.exists():
        pytest.skip("README.md not found beside the tests")
    # the PyTorch section's blocks (those of JAX and Keras have their own
    # tests, where those frameworks are installed); the distributed example's
    # is run by test_torch_ddp
    blocks = [b for b in re.findall(r"```py\n(.*?)```", readme.read_text(), re.S)
              if "fastact.torch" in b and "torch.distributed" not in b]
    assert blocks
    for block in blocks:
        exec(compile(block, "README PyTorch block", "exec"), {})
