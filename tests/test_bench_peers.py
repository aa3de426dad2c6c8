"""The bench's peers section (fastact._bench_peers): torch.compile, OpenVINO
and ONNX Runtime against fastact, each checked against fastact's result
before it is timed, and skipped with its reason where its package is
missing.  No timing is asserted."""
import os
import re
import subprocess
import sys

import pytest

PEERS = ("torch", "openvino", "onnxruntime", "onnx")


def _quick_section(hide=()):
    """The peers section of `python -m fastact bench --quick`, 2 threads, in a
    fresh interpreter (the peers start thread pools of their own); `hide`
    makes those packages unimportable, as where they are not installed."""
    code = ("import sys\n"
            + "".join(f"sys.modules[{name!r}] = None\n" for name in hide)
            + "from fastact import _bench, _bench_peers, set_num_threads\n"
              "set_num_threads(2)\n"
              "_bench_peers.run(2, True, sys.stdout, _bench._Cases)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=600, env=dict(os.environ))
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def _table(out, shape):
    """{peer row: (fastact row, ratio, lo, hi)} of one shape's ratio table."""
    part = out.split(f"peers at {shape}:")[1].split("\npeers: shape")[0]
    rows = {}
    for name in ("torch.compile F.prelu", "torch.compile backward (autograd)",
                 "OpenVINO PRelu (CPU plugin)", "ONNX Runtime PRelu"):
        num = r"([0-9.]+(?:e[+-][0-9]+)?)"
        m = re.search(re.escape(name) + r"\s+(fastact [a-z=() ]+?)\s+" + num + r"\s+\["
                      + num + "-" + num + r"\]", part)
        if m:
            rows[name] = (m.group(1), *map(float, m.group(2, 3, 4)))
    return rows


def test_peers_run_checked_against_fastact():
    for name in PEERS:
        pytest.importorskip(name)
    out = _quick_section()
    assert out.count("check fastact forward: bitwise against the float64 oracle") == 2
    assert out.count("check fastact backward: grad_input bitwise against the float64 "
                     "oracle") == 2
    assert "torch.compile F.prelu: bitwise against fastact" in out
    assert "OpenVINO PRelu (CPU plugin): bitwise against fastact" in out
    assert "ONNX Runtime PRelu: bitwise against fastact" in out
    # the backward: grad_input bit for bit, the slope gradient near the oracle
    errors = re.findall(r"torch.compile backward \(autograd\): grad_input bitwise against "
                        r"fastact; grad_weight relative error to the float64 oracle "
                        r"([0-9.e+-]+) \(fastact's ([0-9.e+-]+)\)", out)
    assert len(errors) == 2, out
    for theirs, ours in errors:
        assert float(theirs) < 1e-3 and float(ours) < 1e-6
    assert "skipped" not in out
    for shape in ("(1, 16, 8, 8)", "(2, 16, 32, 32)"):
        rows = _table(out, shape)
        assert rows["torch.compile F.prelu"][0] == "fastact forward (new output)"
        assert rows["torch.compile backward (autograd)"][0] == "fastact backward (new output)"
        assert rows["OpenVINO PRelu (CPU plugin)"][0] == "fastact forward out="
        assert rows["ONNX Runtime PRelu"][0] == "fastact forward out="
        for _, ratio, lo, hi in rows.values():
            assert 0 < lo <= ratio <= hi


def test_missing_peers_are_skipped_with_the_reason():
    out = _quick_section(hide=PEERS)
    assert "torch: not installed" in out and "openvino: not installed" in out
    for row, package in (("torch.compile F.prelu", "torch"),
                         ("torch.compile backward (autograd)", "torch"),
                         ("OpenVINO PRelu (CPU plugin)", "openvino"),
                         ("ONNX Runtime PRelu", "onnxruntime or onnx")):
        assert f"{row}: skipped, {package} not available" in out, row
    # fastact's own rows and the ceilings still run
    assert "fastact forward out=" in out and "ceiling r2w1 (streaming stores)" in out
