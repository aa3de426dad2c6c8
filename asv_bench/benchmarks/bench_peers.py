"""fastact against its peers (the peers section of `python -m fastact bench`,
fastact._bench_peers): fastact time / peer time, each round timing both back
to back, median over the rounds (below 1: fastact is faster), float32 with a
per-channel slope, at the tiny shape and at 103 MB, with fastact's default
threads (the peers get the same count).

  torch.compile   F.prelu forward (new outputs on both sides), and the
                  backward AOTAutograd compiles with it (grad_input and the
                  summed grad_weight; fastact's fused backward, new output)
  OpenVINO        the CPU plugin on a one-operator PRelu model (into a
                  preallocated output on both sides)
  ONNX Runtime    a one-node PRelu model with IO binding (likewise)

Each benchmark is skipped (NotImplementedError in setup) where its package is
missing: asv's own environments do not install them, so these run with
`--python=same` in an environment with `pip install ".[peers]"`; and on
commits older than fastact._bench_peers."""
import statistics
import time

import numpy as np

import fastact

from .common import LARGE, make

SHAPES = {"1x16x8x8": (1, 16, 8, 8), "32x64x112x112": LARGE}
ROUNDS = 7


def _bench_peers():
    try:
        from fastact import _bench_peers
    except ImportError as exc:     # a commit before the peers section
        raise NotImplementedError(f"no fastact._bench_peers: {exc}") from exc
    return _bench_peers


def _peer(name):
    found = _bench_peers().load_peers()[name]
    if isinstance(found, str):
        raise NotImplementedError(found)
    return found[0]


def _fastact_over_peer(mine, peer, rounds=ROUNDS, seconds=0.02):
    """Median over rounds of (fastact time / peer time), each round one batch
    of each back to back (a batch of at least `seconds`, so that the tiny
    shape is not one timer tick)."""
    def per_call(fn, calls):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - t0) / calls

    counts = []
    for fn in (mine, peer):
        once = per_call(fn, 1)
        counts.append(max(1, min(10000, int(seconds / max(once, 1e-9)))))
    ratios = [per_call(mine, counts[0]) / per_call(peer, counts[1]) for _ in range(rounds)]
    return statistics.median(ratios)


class _Peers:
    params = [list(SHAPES)]
    param_names = ["shape"]
    unit = "fastact time / peer time"
    timeout = 600          # torch.compile's first compile can take a minute

    def _data(self, shape):
        fastact.set_num_threads(None)
        self.threads = fastact.get_num_threads()
        self.x, self.g, self.slopes = make(SHAPES[shape], "float32", "per_channel")
        self.y = np.ones_like(self.x)

    def teardown(self, *params):
        fastact.set_num_threads(None)


class TorchCompileRatio(_Peers):
    def setup(self, shape):
        torch = _peer("torch")
        self._data(shape)
        torch.set_num_threads(self.threads)
        try:
            peers = _bench_peers()
            self.fwd, _ = peers.torch_compile_forward(torch, self.x, self.slopes)
            self.bwd, _ = peers.torch_compile_backward(torch, self.g, self.x, self.slopes)
        except Exception as exc:      # no C++ compiler for Inductor, ...
            raise NotImplementedError(f"torch.compile failed: {exc}") from exc

    def track_fastact_over_torch_compile_forward(self, shape):
        return _fastact_over_peer(lambda: fastact.prelu(self.x, self.slopes), self.fwd)

    def track_fastact_over_torch_compile_backward(self, shape):
        return _fastact_over_peer(lambda: fastact.prelu_backward(self.g, self.x, self.slopes),
                                  self.bwd)


class OpenVINORatio(_Peers):
    def setup(self, shape):
        ov = _peer("openvino")
        self._data(shape)
        self.infer, _ = _bench_peers().openvino_forward(ov, self.x, self.slopes, self.threads)

    def track_fastact_over_openvino_forward(self, shape):
        return _fastact_over_peer(lambda: fastact.prelu(self.x, self.slopes, out=self.y),
                                  self.infer)


class ONNXRuntimeRatio(_Peers):
    def setup(self, shape):
        ort, onnx = _peer("onnxruntime")
        self._data(shape)
        self.run, _ = _bench_peers().onnxruntime_forward(ort, onnx, self.x, self.slopes,
                                                         self.threads)

    def track_fastact_over_onnxruntime_forward(self, shape):
        return _fastact_over_peer(lambda: fastact.prelu(self.x, self.slopes, out=self.y),
                                  self.run)
