"""The peers section of `python -m fastact bench`: fastact's PReLU against
the strongest alternatives a user has on the CPU, in the same run, on the
same data, float32 with a per-channel slope:

  torch.compile   Inductor's code for F.prelu's forward, and for its autograd
                  backward (grad_input and grad_weight: the backward graph
                  that AOTAutograd compiles with the forward, run by
                  torch.autograd.grad on the compiled forward's output)
  OpenVINO        its CPU plugin running a one-operator PRelu model, with
                  INFERENCE_NUM_THREADS and the LATENCY performance hint
  ONNX Runtime    a one-node PRelu model, intra_op_num_threads, IO binding

Each peer is an optional package (`pip install "fastact[peers]"`); a row
whose package is missing or fails to set up is skipped with the reason.
Compilation, model building and warm-up happen before anything is timed, and
every peer's result is checked against fastact's first: the forward is
expected bit for bit (both compute x > 0 ? x : slope * x in float32), the
backward's grad_input too, and the slope gradient (a sum over N*H*W
elements, in another order) against the float64 oracle, with both relative
errors printed.

Copies: none in the timed calls.  OpenVINO's input and output ov.Tensor wrap
the numpy arrays (shared_memory=True) and infer(share_outputs=True) returns
views (a plain infer() copies every output into a new array: one more
output-sized copy per call).  ONNX Runtime's IO binding binds the numpy
buffers by address.  torch.compile's forward and backward return new
tensors, so they are compared with fastact's new-output rows (and, in a
second column, with fastact into a preallocated output); OpenVINO and ONNX
Runtime write into preallocated outputs and are compared with fastact's
out= rows.

The figures are ratios measured in the same rounds: fastact time / peer
time (below 1: fastact is faster), median with the range over the rounds,
and each row's speed as a fraction of the same run's memory ceiling (copy
for the forward, read-two-write-one for the backward; GB/s counts 8 bytes
per element forward and 12 backward, as the rest of the bench does).
"""
import statistics

import numpy as np

from . import _cpu, _reference
from ._api import prelu, prelu_backward

# the tiny shape (a call's fixed cost) and 103 MB of float32 (past the cache)
SHAPES = [(1, 16, 8, 8), (32, 64, 112, 112)]
QUICK_SHAPES = [(1, 16, 8, 8), (2, 16, 32, 32)]

FASTACT_FWD_OUT = "fastact forward out="
FASTACT_FWD_NEW = "fastact forward (new output)"
FASTACT_BWD_OUT = "fastact backward out="
FASTACT_BWD_NEW = "fastact backward (new output)"
TC_FWD = "torch.compile F.prelu"
TC_BWD = "torch.compile backward (autograd)"
OV_FWD = "OpenVINO PRelu (CPU plugin)"
ORT_FWD = "ONNX Runtime PRelu"

# peer row -> (fastact row it is compared with, fastact's other row, kind)
PAIRS = [
    (TC_FWD, FASTACT_FWD_NEW, FASTACT_FWD_OUT, "fwd"),
    (TC_BWD, FASTACT_BWD_NEW, FASTACT_BWD_OUT, "bwd"),
    (OV_FWD, FASTACT_FWD_OUT, FASTACT_FWD_NEW, "fwd"),
    (ORT_FWD, FASTACT_FWD_OUT, FASTACT_FWD_NEW, "fwd"),
]


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:160]


def load_peers():
    """{name: (module, version) or reason string}: what this environment has."""
    found = {}
    try:
        import torch
        found["torch"] = (torch, torch.__version__)
    except Exception as exc:  # not installed, or broken
        found["torch"] = f"torch not available ({_first_line(exc)})"
    try:
        import openvino
        found["openvino"] = (openvino, openvino.__version__.split("-")[0])
    except Exception as exc:
        found["openvino"] = f"openvino not available ({_first_line(exc)})"
    try:
        import onnx
        import onnxruntime
        found["onnxruntime"] = ((onnxruntime, onnx),
                                f"{onnxruntime.__version__} (onnx {onnx.__version__})")
    except Exception as exc:
        found["onnxruntime"] = f"onnxruntime or onnx not available ({_first_line(exc)})"
    return found


# --- the peers: each returns the function to time and its result(s) ---------

def torch_compile_forward(torch, x, slopes):
    """Inductor's F.prelu (a new output per call), compiled and warmed up."""
    import torch.nn.functional as F
    xt, wt = torch.from_numpy(x), torch.from_numpy(slopes)
    fn = torch.compile(F.prelu, dynamic=False)
    y = fn(xt, wt)
    fn(xt, wt)
    return (lambda: fn(xt, wt)), y.numpy()


def torch_compile_backward(torch, g, x, slopes):
    """The backward AOTAutograd compiles with F.prelu's forward (Inductor's
    code for grad_input and the summed grad_weight), run on the compiled
    forward's graph by torch.autograd.grad, as loss.backward() runs it."""
    import torch.nn.functional as F

    def forward(x, w):
        return F.prelu(x, w)

    fn = torch.compile(forward, dynamic=False)
    xr = torch.from_numpy(x.copy()).requires_grad_(True)
    wr = torch.from_numpy(slopes.copy()).requires_grad_(True)
    gt = torch.from_numpy(g)
    yr = fn(xr, wr)

    def backward():
        return torch.autograd.grad(yr, (xr, wr), gt, retain_graph=True)

    gi, gw = backward()
    backward()
    return backward, (gi.numpy(), gw.numpy())


def openvino_forward(ov, x, slopes, threads):
    """A one-operator PRelu model on the CPU plugin: its input and output
    tensors share the numpy arrays' memory."""
    import openvino.opset13 as ops
    param = ops.parameter(list(x.shape), ov.Type.f32, name="x")
    model = ov.Model([ops.prelu(param, ops.constant(slopes))], [param], "prelu")
    compiled = ov.Core().compile_model(model, "CPU", {
        "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
        # f32 is the default on CPUs without bfloat16 units; on those with
        # them the plugin would otherwise run in bfloat16
        "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    y = np.ones_like(x)
    request.set_input_tensor(ov.Tensor(x, shared_memory=True))
    request.set_output_tensor(ov.Tensor(y, shared_memory=True))

    def infer(buffers=(x, y)):    # the tensors may not own the arrays: keep them alive
        return request.infer(share_outputs=True)

    infer()
    infer()
    return infer, y


def onnxruntime_forward(ort, onnx, x, slopes, threads):
    """A one-node PRelu model (the slope as a (C, 1, ...) initializer, ONNX's
    broadcasting), IO binding to the numpy buffers."""
    from onnx import TensorProto, helper, numpy_helper
    shape = list(x.shape)
    slope = slopes.reshape((slopes.size,) + (1,) * (x.ndim - 2))
    graph = helper.make_graph(
        [helper.make_node("PRelu", ["x", "slope"], ["y"])], "prelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        [numpy_helper.from_array(slope, "slope")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9          # within what every onnxruntime since 1.15 reads
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # its threads would otherwise spin after each call and take the CPUs
    # from the row timed next
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    y = np.ones_like(x)
    binding = session.io_binding()
    binding.bind_input("x", "cpu", 0, np.float32, shape, x.ctypes.data)
    binding.bind_output("y", "cpu", 0, np.float32, shape, y.ctypes.data)

    def run(buffers=(x, y)):      # the binding holds raw pointers: keep the arrays alive
        session.run_with_iobinding(binding)

    run()
    run()
    return run, y


# --- checks -----------------------------------------------------------------

def _bitwise(a, b):
    """'bitwise' or how many values differ and by how much."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if a.shape != b.shape:
        return f"shape {a.shape} != {b.shape}"
    diff = a.view(np.uint32) != b.view(np.uint32)
    if not diff.any():
        return "bitwise"
    ulps = np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64))
    return f"NOT bitwise: {int(diff.sum())} of {a.size} differ, up to {int(ulps.max())} ulp"


def _rel_error(got, exact):
    exact = np.asarray(exact, np.float64)
    return float(np.max(np.abs(np.asarray(got, np.float64) - exact)
                        / np.maximum(np.abs(exact), 1e-30)))


# --- the section ------------------------------------------------------------

def _bench_shape(shape, threads, peers, rng, out, rounds, batch_seconds, cases_class):
    x = rng.standard_normal(shape, dtype=np.float32)
    g = rng.standard_normal(shape, dtype=np.float32)
    channels = shape[1]
    slopes = rng.uniform(0.05, 0.5, channels).astype(np.float32)
    b8, b12 = 8 * x.size, 12 * x.size
    print(f"\npeers: shape {shape} float32, {x.nbytes / 1e6:.1f} MB per array, "
          f"{threads} threads, per-channel slope", file=out)

    want_y = prelu(x, slopes)
    want_gi, want_gs = prelu_backward(g, x, slopes)
    exact_gi, exact_gs = _reference.prelu_backward(g, x, slopes)
    # fastact itself against the float64 oracle rounded to float32 (exact for
    # one product), so that "bitwise against fastact" means correct too
    checks = [("fastact forward", f"{_bitwise(want_y, _reference.prelu(x, slopes))} against "
                                  "the float64 oracle"),
              ("fastact backward", f"grad_input {_bitwise(want_gi, exact_gi)} against the "
                                   "float64 oracle")]
    del exact_gi

    t = cases_class(out)
    t.add_ceilings(x, g)
    t.add(FASTACT_FWD_OUT, b8, prelu, x, slopes, out=np.ones_like(x))
    t.add(FASTACT_FWD_NEW, b8, prelu, x, slopes)
    t.add(FASTACT_BWD_OUT, b12, prelu_backward, g, x, slopes, out=np.ones_like(x))
    t.add(FASTACT_BWD_NEW, b12, prelu_backward, g, x, slopes)

    skipped = []

    def setup(row, need, make):
        """Set a peer up, check its result, and add its row; or say why not."""
        if isinstance(peers.get(need), str):
            skipped.append((row, peers[need]))
            return
        try:
            fn, result = make(peers[need][0])
        except Exception as exc:  # a peer that cannot run here is skipped, with why
            skipped.append((row, f"setup failed: {_first_line(exc)}"))
            return
        if isinstance(result, tuple):
            gi, gs = result
            checks.append((row, f"grad_input {_bitwise(gi, want_gi)} against fastact; "
                                f"grad_weight relative error to the float64 oracle "
                                f"{_rel_error(gs, exact_gs):.1e} (fastact's "
                                f"{_rel_error(want_gs, exact_gs):.1e})"))
        else:
            checks.append((row, f"{_bitwise(result, want_y)} against fastact"))
        t.add(row, b12 if row == TC_BWD else b8, fn)

    setup(TC_FWD, "torch", lambda torch: torch_compile_forward(torch, x, slopes))
    setup(TC_BWD, "torch", lambda torch: torch_compile_backward(torch, g, x, slopes))
    setup(OV_FWD, "openvino", lambda ov: openvino_forward(ov, x, slopes, threads))
    setup(ORT_FWD, "onnxruntime",
          lambda mods: onnxruntime_forward(mods[0], mods[1], x, slopes, threads))
    for row, what in checks:
        print(f"  check {row}: {what}", file=out)

    print(f"  {'case':44s} {'time/call':>14s} {'speed':>13s}", file=out)
    t.run(rounds, batch_seconds)
    ceilings = {"fwd": t.ceiling("copy"), "bwd": t.ceiling("r2w1")}
    rows = []
    for peer, mine, other, kind in PAIRS:
        if not t.has(peer):
            continue
        ratios = [a / b for a, b in zip(t.samples[mine], t.samples[peer])]
        others = [a / b for a, b in zip(t.samples[other], t.samples[peer])]
        rows.append({
            "peer": peer, "fastact": mine, "kind": kind,
            "ratio": statistics.median(ratios), "range": (min(ratios), max(ratios)),
            "other": other, "other_ratio": statistics.median(others),
            "peer/ceiling": t.gbs(peer) / ceilings[kind],
            "fastact/ceiling": t.gbs(mine) / ceilings[kind],
        })
    print(f"\n  peers at {shape}: fastact time / peer time (below 1: fastact faster), "
          f"median [min-max] over {rounds} rounds; speed / ceiling (copy forward, r2w1 "
          f"backward)", file=out)
    print(f"  {'peer':36s} {'against fastact':30s} {'ratio':>7s} {'[min-max]':>17s} "
          f"{'peer/ceil':>9s} {'fastact/ceil':>12s}  against fastact's other row", file=out)
    for r in rows:
        lo, hi = r["range"]
        print(f"  {r['peer']:36s} {r['fastact']:30s} {r['ratio']:7.3g} "
              f"{f'[{lo:.3g}-{hi:.3g}]':>17s} {r['peer/ceiling']:9.3g} "
              f"{r['fastact/ceiling']:12.2f}  {r['other'].replace('fastact ', '')} "
              f"{r['other_ratio']:.3g}", file=out)
    for row, why in skipped:
        print(f"  {row}: skipped, {why}", file=out)
    if b8 >= _cpu.PARALLEL_MIN_BYTES:
        # a busy machine shows here: fastact runs calls on one thread when its
        # teams cost more than one thread would (the peers' teams just wait)
        print(f"  fastact's team calls {t.stats['team_calls']}, of which cost more than one "
              f"thread: {t.stats['bad_team_calls']}, run on one thread by its back-off: "
              f"{t.stats['backoff_serial_calls']}", file=out)
    return {"shape": shape, "rows": rows, "skipped": skipped, "checks": checks,
            "team_stats": t.stats}


def run(threads, quick, out, cases_class, rounds=None, batch_seconds=None):
    """The peers section; `cases_class` is the bench's interleaved timer
    (fastact._bench._Cases).  Returns one summary per shape."""
    peers = load_peers()
    versions = ", ".join(f"{name} {p[1]}" if not isinstance(p, str) else f"{name}: not installed"
                         for name, p in peers.items())
    print(f"\npeers (optional: pip install \"fastact[peers]\"): {versions}", file=out)
    torch = peers["torch"][0] if not isinstance(peers["torch"], str) else None
    if torch is not None:
        torch.set_num_threads(threads)
    if rounds is None:
        rounds, batch_seconds = (3, 0.005) if quick else (41, 0.04)
    rng = np.random.default_rng(2026)
    return [_bench_shape(shape, threads, peers, rng, out, rounds, batch_seconds, cases_class)
            for shape in (QUICK_SHAPES if quick else SHAPES)]
