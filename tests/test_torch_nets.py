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
# 12 residual DepthWise x 2 + conv_sep 1
PRELUS = {"iresnet50": 25, "mobilefacenet": 33}


@pytest.mark.parametrize("name", sorted(PRELUS))
def test_network_builds_runs_and_converts(name):
    model, shape = _torch_nets.build(name)
    assert shape == (3, 112, 112)
    assert _torch_nets.prelu_count(model) == PRELUS[name] == _torch_nets.NETWORKS[name][2]
    prelus = [m for m in model.modules() if isinstance(m, torch.nn.PReLU)]
    for m in prelus:                     # per channel, and randomised around 0.25
        assert m.weight.numel() > 1
        assert 0.15 <= m.weight.min().item() < m.weight.max().item() <= 0.35
    # every PReLU is fed by a BatchNorm2d with non-trivial running statistics
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(not torch.all(b.running_var == 1) for b in bns)
    x = torch.randn(2, *shape)
    converted = ft.convert(copy.deepcopy(model))
    assert sum(type(m) is ft.PReLU for m in converted.modules()) == PRELUS[name]
    with torch.inference_mode():
        y = model(x)
        yc = converted(x)
    assert y.shape == (2, 512) and torch.isfinite(y).all()
    assert torch.equal(yc, y)                               # torch's result, bit for bit
    # the same parameters give the same model: the seed fixes them
    again, _ = _torch_nets.build(name)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 again.state_dict().values()))


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
