"""The real networks of `python -m fastact bench --torch` (fastact._torch_nets):
they build, run, hold the PReLUs their architectures have, and convert()
leaves their outputs torch's bit for bit; the benchmark's smoke run."""
import copy
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
ft = pytest.importorskip("fastact.torch")

from fastact import _torch_nets  # noqa: E402

# iResNet-50: 1 in the stem + one per block (3 + 4 + 14 + 3);
# MobileFaceNet: stem 1 + grouped ConvBlock 1 + 3 strided DepthWise x 2 +
# 12 residual DepthWise x 2 + conv_sep 1; ConvTasNet: 2 per block (3 x 8)
# + 1 before the masks' conv
PRELUS = {"iresnet50": 25, "mobilefacenet": 33, "convtasnet": 49}
# name -> (input shape of one sample, output shape of one sample, PReLU
# weights per channel (else one shared), PReLUs fed by a BatchNorm2d)
SHAPES = {"iresnet50": ((3, 112, 112), (512,), True, True),
          "mobilefacenet": ((3, 112, 112), (512,), True, True),
          "convtasnet": ((1, 8000), (2, 8000), False, False)}


@pytest.mark.parametrize("name", sorted(PRELUS))
def test_network_builds_runs_and_converts(name):
    model, shape = _torch_nets.build(name)
    in_shape, out_shape, per_channel, batchnorm = SHAPES[name]
    assert shape == in_shape
    assert _torch_nets.prelu_count(model) == PRELUS[name] == _torch_nets.NETWORKS[name][2]
    prelus = [m for m in model.modules() if isinstance(m, torch.nn.PReLU)]
    for m in prelus:                     # randomised around 0.25, per channel or shared
        assert (m.weight.numel() > 1) == per_channel
        assert 0.15 <= m.weight.min().item() <= m.weight.max().item() <= 0.35
    assert len({m.weight.sum().item() for m in prelus}) == len(prelus)
    # the normalisation layers have non-trivial statistics and parameters
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bool(bns) == batchnorm
    assert all(not torch.all(b.running_var == 1) for b in bns)
    assert all(not torch.all(m.weight == 1) for m in model.modules()
               if isinstance(m, torch.nn.GroupNorm))
    x = torch.randn(2, *shape)
    converted = ft.convert(copy.deepcopy(model))
    assert sum(type(m) is ft.PReLU for m in converted.modules()) == PRELUS[name]
    with torch.inference_mode():
        y = model(x)
        yc = converted(x)
    assert y.shape == (2, *out_shape) and torch.isfinite(y).all()
    assert torch.equal(yc, y)                               # torch's result, bit for bit
    # fusion folds exactly the BatchNorms that feed a PReLU
    fused = ft.convert(copy.deepcopy(model), fuse=True)
    assert any(isinstance(m, ft.BatchNormPReLU) for m in fused.modules()) == batchnorm
    # the same parameters give the same model: the seed fixes them
    again, _ = _torch_nets.build(name)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 again.state_dict().values()))


def test_convtasnet_training_gradients_match_torch():
    """A training step's loss and gradients: torch's bit for bit except the
    49 shared slopes' gradients (fastact sums them in float64), which the
    float64 oracle, not torch's float32 sum, decides."""
    model, shape = _torch_nets.build("convtasnet")
    a = copy.deepcopy(model).train()
    b = ft.convert(copy.deepcopy(model).train())
    x = torch.randn(2, *shape)
    la = a(x).square().mean()
    la.backward()
    lb = b(x).square().mean()
    lb.backward()
    assert torch.equal(la, lb)
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        if not isinstance(a.get_submodule(name.rsplit(".", 1)[0]), torch.nn.PReLU):
            assert torch.equal(pa.grad, pb.grad), name
    # each slope's gradient from the float64 oracle: sum over x <= 0 of
    # g * x, with the PReLU's own input and output gradient captured
    inputs, grads = {}, {}
    oracle = copy.deepcopy(model).train()
    for mname, m in oracle.named_modules():
        if isinstance(m, torch.nn.PReLU):
            m.register_forward_hook(lambda m, i, o, k=mname: inputs.__setitem__(k, i[0]))
            m.register_full_backward_hook(
                lambda m, gi, go, k=mname: grads.__setitem__(k, go[0]))
    oracle(x).square().mean().backward()
    for mname, m in b.named_modules():
        if isinstance(m, torch.nn.PReLU):
            xi, gi = inputs[mname].double(), grads[mname].double()
            want = torch.where(xi > 0, 0.0, xi * gi).sum()
            # fastact's float64 sum, rounded once to the weight's float32
            # (half an ulp); the two float64 sums' orders differ by far less
            assert torch.allclose(m.weight.grad.double(), want.reshape(1), rtol=2.0 ** -24,
                                  atol=1e-12 * (xi * gi).abs().sum().item()), mname


@pytest.mark.slow
def test_bench_torch_quick_runs_end_to_end():
    r = subprocess.run([sys.executable, "-m", "fastact", "bench", "--torch", "--quick"],
                       capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    for text in ("mobilefacenet: 33 PReLU", "threads: torch", "PReLU's share",
                 "inference, batch 1", "inference, batch 2", "training step, batch 2",
                 "torch eager", "converted", "torch.compile(converted)",
                 "all checks passed"):
        assert text in out, text
    assert "CHECK FAILED" not in out
