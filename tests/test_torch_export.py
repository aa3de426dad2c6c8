"""torch.export of converted models: the graph holds fastact's operators, and
the exported program computes the eager result bit for bit."""
import io

import pytest

torch = pytest.importorskip("torch")
ft = pytest.importorskip("fastact.torch")
nn = torch.nn

pytestmark = [
    pytest.mark.skipif(not hasattr(torch, "export"), reason="no torch.export"),
    # torch's own pytree code, in torch.export.save and run_decompositions
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")]

FORWARD_OPS = {torch.ops.fastact.prelu.default, torch.ops.fastact.leaky_relu.default,
               torch.ops.fastact.elu.default, torch.ops.fastact.hardtanh.default,
               torch.ops.fastact.relu6.default}
INPLACE_OPS = {torch.ops.fastact.leaky_relu_.default, torch.ops.fastact.elu_.default,
               torch.ops.fastact.hardtanh_.default, torch.ops.fastact.relu6_.default}


def _model(inplace=False):
    return ft.convert(nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.PReLU(8), nn.PReLU(),
        nn.LeakyReLU(0.1, inplace=inplace), nn.ELU(0.5, inplace=inplace),
        nn.Hardtanh(-2.0, 2.0, inplace=inplace), nn.ReLU6(inplace=inplace)))


def _targets(ep):
    return {n.target for n in ep.graph.nodes if n.op == "call_function"}


def _bits(t):
    return t.contiguous().view(torch.int32)


def _assert_bitwise(got, want):
    assert got.shape == want.shape and torch.equal(_bits(got), _bits(want))


def test_export_holds_fastact_operators_and_matches_eager():
    model = _model()
    x = torch.randn(2, 3, 10, 10)
    ep = torch.export.export(model, (x,))
    assert FORWARD_OPS <= _targets(ep)
    x2 = torch.randn(2, 3, 10, 10)      # other values, the exported shape
    with torch.no_grad():
        want = model(x2)
    _assert_bitwise(ep.module()(x2), want)
    # fastact's operators have no decomposition: they stay in the inference IR
    assert FORWARD_OPS <= _targets(ep.run_decompositions())
    # a saved program loads and runs where fastact.torch is imported
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    buf.seek(0)
    _assert_bitwise(torch.export.load(buf).module()(x2), want)


def test_export_with_a_dynamic_batch_dimension():
    model = _model()
    batch = torch.export.Dim("batch")
    ep = torch.export.export(model, (torch.randn(2, 3, 10, 10),),
                             dynamic_shapes={"input": {0: batch}})
    assert FORWARD_OPS <= _targets(ep)
    for n in (3, 7):
        x = torch.randn(n, 3, 10, 10)
        with torch.no_grad():
            want = model(x)
        _assert_bitwise(ep.module()(x), want)


def test_export_of_inplace_modules():
    """Where autograd records nothing, inplace modules export the in-place
    operators (which declare what they mutate); the program's result is the
    eager one."""
    model = _model(inplace=True).eval()
    x = torch.randn(2, 3, 10, 10)
    with torch.no_grad():
        ep = torch.export.export(model, (x,))
        assert INPLACE_OPS <= _targets(ep)
        want = model(x)
    _assert_bitwise(ep.module()(x), want)
    _assert_bitwise(ep.run_decompositions().module()(x), want)
