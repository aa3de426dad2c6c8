"""fastact.torch's fused BatchNorm + PReLU: the operator fastact::affine_prelu
against the float64 oracle and against torch's own BatchNorm then PReLU,
BatchNormPReLU, and convert(model, fuse=True)."""
import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ft = pytest.importorskip("fastact.torch")

import fastact  # noqa: E402
from fastact import _reference  # noqa: E402

nn = torch.nn
F = torch.nn.functional
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def _np(t):
    """A tensor's values as float64 numpy."""
    return t.detach().to(torch.float64).numpy()


def _bits_equal(got, want):
    """Bitwise (signed zeros included), NaN where NaN."""
    g, w = _np(got), _np(want)
    same = (np.isnan(g) & np.isnan(w)) | ((g == w) & (np.signbit(g) == np.signbit(w)))
    assert same.all(), f"{(~same).sum()} differ, e.g. got {g[~same][:4]} want {w[~same][:4]}"


def _oracle(x, scale, shift, weight):
    """The float64 oracle, each step rounded to the compute dtype, then to x's."""
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    ps = [_np(v.to(compute)) for v in (scale, shift, weight)]
    y = _reference.affine_prelu(_np(x), *ps, rounding=None if compute == torch.float64
                                else np.float32)
    return torch.from_numpy(y).to(compute).to(x.dtype)


def _bn_params(c, gen=None):
    return (torch.randn(c, generator=gen), torch.rand(c, generator=gen) * 2 + 0.1,
            torch.randn(c, generator=gen), torch.randn(c, generator=gen))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("shared_weight", [False, True])
def test_operator_matches_the_oracle(dtype, layout, shared_weight):
    c = 6
    x = torch.randn(3, c, 9, 11).to(dtype)
    x.view(-1)[::37] = float("nan")
    x.view(-1)[1::41] = -0.0
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "strided":
        x = x[:, :, :, ::2]
    scale = torch.empty(c).uniform_(-3, 3).to(dtype)
    shift = torch.randn(c).to(dtype)
    weight = torch.tensor([-0.5]) if shared_weight else torch.tensor(
        [0.25, -2.0, 3.5, 0.0, 1.0, -0.5])
    weight = weight.to(dtype)
    y = ft.affine_prelu(x, scale, shift, weight)
    assert y.dtype == dtype and y.shape == x.shape
    if layout == "channels_last":
        assert y.is_contiguous(memory_format=torch.channels_last)
    _bits_equal(y, _oracle(x, scale, shift, weight))


def test_operator_checks_its_arguments():
    x = torch.randn(2, 3, 4, 4)
    ok = torch.ones(3)
    with pytest.raises(ValueError, match="scale has 4 values but x has 3 channels"):
        ft.affine_prelu(x, torch.ones(4), ok, ok)
    with pytest.raises(ValueError, match="shift must be a scalar or a 1-D tensor"):
        ft.affine_prelu(x, ok, torch.ones(3, 1), ok)
    with pytest.raises(TypeError, match="weight has dtype torch.int64"):
        ft.affine_prelu(x, ok, ok, torch.ones(3, dtype=torch.int64))
    with pytest.raises(TypeError, match="x"):
        ft.affine_prelu(x.to(torch.int32), ok, ok, ok)


def test_operator_opcheck():
    x = torch.randn(2, 5, 6, 7)
    args = (x, torch.randn(5), torch.randn(5), torch.rand(5))
    torch.library.opcheck(torch.ops.fastact.affine_prelu.default, args)
    cl = (x.contiguous(memory_format=torch.channels_last), *args[1:])
    torch.library.opcheck(torch.ops.fastact.affine_prelu.default, cl)


def test_numpy_api_takes_torch_cpu_tensors():
    x = torch.randn(2, 3, 5, 5)
    s, b, a = torch.randn(3), torch.randn(3), torch.rand(3)
    y = fastact.affine_prelu(x, s, b, a)
    assert isinstance(y, torch.Tensor)
    _bits_equal(y, _oracle(x, s, b, a))
    assert fastact.affine_prelu(x, s, b, a, inplace=True) is x
    _bits_equal(x, y)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_fused_equals_torch_batchnorm_then_prelu(memory_format):
    """Within float32 rounding of torch's eval BatchNorm + PReLU (measured:
    at most 2 eps of |x * scale| + |mean * scale| + |bias|, times the slope
    where above 1, e.g. 3.8e-6 on outputs up to 39): torch's kernel does not
    round as fastact's product then sum does; the scale and shift are the
    same bits as fastact.batchnorm_scale_shift's."""
    c = 16
    gen = torch.Generator().manual_seed(1234)
    mean, var, w, b = _bn_params(c, gen)
    slopes = torch.empty(c).uniform_(-2, 2, generator=gen)
    x = torch.randn(4, c, 20, 24, generator=gen).contiguous(memory_format=memory_format)
    want = F.prelu(F.batch_norm(x, mean, var, w, b, training=False, eps=1e-5), slopes)
    scale, shift = ft._batchnorm_terms(mean, var, 1e-5, w, b)
    got = ft.affine_prelu(x, scale, shift, slopes)
    np_scale, np_shift = fastact.batchnorm_scale_shift(mean, var, 1e-5, w, b)
    np.testing.assert_array_equal(scale.numpy(), np_scale)     # the same terms as torch's
    np.testing.assert_array_equal(shift.numpy(), np_shift)
    eps = np.finfo(np.float32).eps
    mag = (np.abs(_np(x) * _np(scale)[:, None, None])
           + (np.abs(_np(mean) * _np(scale)) + np.abs(_np(b)))[:, None, None])
    mag *= np.maximum(1.0, np.abs(_np(slopes)))[:, None, None]
    diff = np.abs(_np(got) - _np(want))
    assert (diff <= 4 * eps * mag).all(), diff.max()


class IBasicBlock(nn.Module):
    """insightface's iResNet block: bn1 -> conv1 -> bn2 -> prelu -> conv2 -> bn3, + x."""

    def __init__(self, c):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c, eps=1e-5)
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c, eps=1e-5)
        self.prelu = nn.PReLU(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(c, eps=1e-5)

    def forward(self, x):
        out = self.bn1(x)
        out = self.conv1(out)
        out = self.bn2(out)
        out = self.prelu(out)
        out = self.conv2(out)
        out = self.bn3(out)
        return out + x


class SharedOutput(nn.Module):
    """bn's output goes to the PReLU and to the sum: not fusable."""

    def __init__(self, c):
        super().__init__()
        self.bn = nn.BatchNorm2d(c)
        self.prelu = nn.PReLU(c)

    def forward(self, x):
        y = self.bn(x)
        return self.prelu(y) + y


class Net(nn.Module):
    def __init__(self, c=8):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c), nn.PReLU(c))
        self.block = IBasicBlock(c)
        self.shared = SharedOutput(c)
        self.tail = nn.Sequential(nn.BatchNorm2d(c), nn.PReLU())     # one shared slope
        self.head = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU())       # not a PReLU

    def forward(self, x):
        return self.head(self.tail(self.shared(self.block(self.stem(x)))))


def _randomise(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                mean, var, w, b = _bn_params(m.num_features, gen)
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.weight.copy_(w)
                m.bias.copy_(b)
            if isinstance(m, nn.PReLU):
                m.weight.uniform_(-1, 1, generator=gen)
    return model


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_convert_fuses_exactly_the_pairs_it_may():
    model = _randomise(Net()).eval()
    reference = copy.deepcopy(model)
    keys = set(model.state_dict())
    nparams = len(list(model.parameters()))
    assert ft.convert(model, fuse=True) is model
    assert type(model.stem[1]) is ft.BatchNormPReLU and type(model.stem[2]) is ft.FusedPReLU
    assert type(model.block.bn2) is ft.BatchNormPReLU
    assert type(model.block.prelu) is ft.FusedPReLU
    assert isinstance(model.block.prelu, nn.Identity)
    assert type(model.block.bn1) is nn.BatchNorm2d and type(model.block.bn3) is nn.BatchNorm2d
    assert type(model.shared.bn) is nn.BatchNorm2d          # its output is used twice
    assert type(model.shared.prelu) is ft.PReLU             # converted as convert() does
    assert type(model.tail[0]) is ft.BatchNormPReLU
    assert type(model.head[0]) is nn.BatchNorm2d
    # the same parameters and state_dict keys; the same Parameter objects
    assert set(model.state_dict()) == keys
    assert len(list(model.parameters())) == nparams
    x = torch.randn(2, 3, 12, 12)
    with torch.no_grad():
        _close(model(x), reference(x))
        xc = x.contiguous(memory_format=torch.channels_last)
        _close(model.to(memory_format=torch.channels_last)(xc), reference(xc))
    # a checkpoint of the unfused model loads into the fused one
    model.load_state_dict(reference.state_dict())


def test_fused_module_shares_the_batchnorm_state():
    model = _randomise(nn.Sequential(nn.BatchNorm2d(4), nn.PReLU(4))).eval()
    bn, act = model[0], model[1]
    ft.convert(model, fuse=True)
    assert model[0].weight is bn.weight and model[0].running_var is bn.running_var
    assert model[1].weight is act.weight


def test_running_statistics_are_read_at_call_time(monkeypatch):
    model = _randomise(nn.Sequential(nn.BatchNorm2d(4), nn.PReLU(4))).eval()
    fused = ft.convert(copy.deepcopy(model), fuse=True)
    x = torch.randn(2, 4, 8, 8)
    calls = []
    kernel = ft._CPU.affine_prelu_forward
    monkeypatch.setattr(ft._CPU, "affine_prelu_forward",
                        staticmethod(lambda *a: calls.append(1) or kernel(*a)))
    with torch.no_grad():
        _close(fused(x), model(x))
        assert calls, "the fused kernel did not run"
        for m in (model, fused):
            m[0].running_mean.add_(0.5)
            m[0].running_var.mul_(2.0)
            m[0].weight.mul_(-1.5)
            m[1].weight.add_(0.25)
        _close(fused(x), model(x))
        fused.load_state_dict(_randomise(copy.deepcopy(model), seed=7).state_dict())
        model.load_state_dict(fused.state_dict())
        _close(fused(x), model(x))


def _pair(channels, slopes, affine=True, seed=0):
    gen = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.BatchNorm2d(channels, affine=affine), nn.PReLU(slopes)).eval()
    mean, var, w, b = _bn_params(channels, gen)
    with torch.no_grad():
        model[0].running_mean.copy_(mean)
        model[0].running_var.copy_(var)
        if affine:
            model[0].weight.copy_(w)
            model[0].bias.copy_(b)
        model[1].weight.uniform_(-1, 1, generator=gen)
    return model


@pytest.mark.parametrize("slopes, affine", [(4, True), (1, True), (4, False)])
def test_fused_inference_follows_every_change_of_state(monkeypatch, slopes, affine):
    """Inference without autograd calls the kernel directly with cached
    terms: each way the state can change (in place, `.data =`, a dtype
    move, replaced buffers) must reach the next call."""
    model = _pair(4, slopes, affine)
    fused = ft.convert(copy.deepcopy(model), fuse=True)
    calls = []
    kernel = ft._CPU.affine_prelu_forward
    monkeypatch.setattr(ft._CPU, "affine_prelu_forward",
                        staticmethod(lambda *a: calls.append(1) or kernel(*a)))
    x = torch.randn(3, 4, 5, 7)
    gen = torch.Generator().manual_seed(5)
    with torch.inference_mode():
        _close(fused(x), model(x))
        assert len(calls) == 1, "the fused kernel did not run"
    with torch.no_grad():
        for m in (model, fused):       # the same new values in both
            m[1].weight.data = torch.linspace(-1.5, 2.0, slopes)
        _close(fused(x), model(x))
        if affine:
            for m in (model, fused):
                m[0].bias.data = torch.linspace(0.5, -2.0, 4)
            _close(fused(x), model(x))
        replacement = torch.rand(4, generator=gen) + 0.5
        for m in (model, fused):
            m[0].running_var = replacement.clone()
        _close(fused(x), model(x))
        for m in (model, fused):
            m[0].running_var.mul_(1.5)
        _close(fused(x), model(x))
        for m in (model, fused):
            m[0].running_var.data = replacement.flip(0)
        _close(fused(x), model(x))
        model.double()
        fused.double()
        _close(fused(x.double()), model(x.double()))
        for m in (model, fused):
            m[0].running_mean.add_(0.25)
        _close(fused(x.double()), model(x.double()))
        # layouts the direct call does not take: the general path, same values
        xl = x.double().contiguous(memory_format=torch.channels_last)
        _close(fused(xl), model(xl))
        _close(fused(x.double()[:, :, ::2]), model(x.double()[:, :, ::2]))
        with pytest.raises(ValueError, match="expected 4D input"):
            fused(x.double()[0])


def test_training_mode_and_gradients_fall_back_to_the_unfused_pair():
    model = _randomise(Net()).eval()
    fused = ft.convert(copy.deepcopy(model), fuse=True)
    x = torch.randn(2, 3, 10, 10)
    # eval with autograd recording (parameters require grad): unfused path, same values
    y = fused(x)
    assert y.grad_fn is not None
    _close(y, model(x))
    y.sum().backward()
    assert fused.block.prelu.weight.grad is not None
    # training mode: batch statistics, running stats updated as torch's
    model.train()
    fused.train()
    _close(fused(x), model(x))
    _close(fused.block.bn2.running_mean, model.block.bn2.running_mean)


def test_fuse_needs_eval_mode():
    model = Net()
    with pytest.raises(ValueError, match="fuse=True.*training mode.*model.eval"):
        ft.convert(model, fuse=True)
    assert type(model.stem[1]) is nn.BatchNorm2d          # nothing changed


class Untraceable(nn.Module):
    """Control flow on values: torch.fx cannot trace it."""

    def __init__(self, c=4):
        super().__init__()
        self.seq = nn.Sequential(nn.BatchNorm2d(c), nn.PReLU(c))
        self.bn = nn.BatchNorm2d(c)
        self.prelu = nn.PReLU(c)

    def forward(self, x):
        if x.sum() > 0:
            x = -x
        return self.prelu(self.bn(self.seq(x)))


def test_untraceable_models_fuse_adjacent_pairs_in_sequential_only():
    model = _randomise(Untraceable()).eval()
    reference = copy.deepcopy(model)
    ft.convert(model, fuse=True)
    assert type(model.seq[0]) is ft.BatchNormPReLU
    assert type(model.bn) is nn.BatchNorm2d
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        _close(model(x), reference(x))


def test_reused_modules_are_not_fused():
    bn, act = nn.BatchNorm2d(3), nn.PReLU(3)
    model = _randomise(nn.Sequential(bn, act, nn.Conv2d(3, 3, 1), bn, act)).eval()
    ft.convert(model, fuse=True)
    assert type(model[0]) is nn.BatchNorm2d


def test_compiled_fused_model_runs_fullgraph():
    model = _randomise(Net()).eval()
    reference = copy.deepcopy(model)
    ft.convert(model, fuse=True)
    compiled = torch.compile(model, fullgraph=True)
    x = torch.randn(2, 3, 12, 12)
    with torch.no_grad():
        _close(compiled(x), reference(x))
