"""`python -m fastact bench`: fastact against memory ceilings, numpy and PyTorch.

Everything is measured in one run on one machine, and the figures that count
are ratios between rows of the same run: absolute speeds on a shared machine
drift by tens of percent from run to run.

GB/s counts the bytes a call must move: 8 per element forward (read x, write
y; in place: read and write x) and 12 backward (read g and x, write
grad_input).  The memory ceilings are measured on arrays of the same size,
written into preallocated, already-touched outputs, with the same threads:
  copy   the faster of ordinary and non-temporal stores (forward's ceiling)
  rmw    x *= c in place (the in-place ceiling)
  r2w1   z = a + b, the faster of ordinary and non-temporal stores
         (backward's ceiling)
"""
import statistics
import sys
import time

import numpy as np

from . import _cpu
from ._api import get_num_threads, prelu, prelu_backward, set_num_threads

SHAPES = [(1, 16, 8, 8), (1, 64, 56, 56), (32, 64, 56, 56), (32, 64, 112, 112)]
QUICK_SHAPES = [(1, 16, 8, 8), (2, 16, 32, 32)]


def _timeit(fn, args=(), kwargs=None, budget=0.25, batches=7):
    """Median seconds per call of fn(*args, **kwargs) over batches of calls
    sized to fill about `budget` seconds in all."""
    kwargs = kwargs or {}
    fn(*args, **kwargs)
    calls = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn(*args, **kwargs)
        elapsed = time.perf_counter() - t0
        if elapsed * batches >= budget or calls >= 1 << 20:
            break
        calls *= 2 if elapsed * batches * 4 > budget else 8
    calls = max(1, int(calls * budget / batches / max(elapsed, 1e-9)))
    samples = []
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn(*args, **kwargs)
        samples.append((time.perf_counter() - t0) / calls)
    return statistics.median(samples)


def _load_torch():
    try:
        import torch
        import torch.nn.functional as F
    except Exception:  # not installed, or broken
        return None, None
    return torch, F


class _Table:
    def __init__(self, out):
        self.out = out
        self.rows = {}

    def add(self, name, seconds, nbytes, note=""):
        self.rows[name] = (seconds, nbytes)
        gbs = nbytes / seconds / 1e9
        print(f"  {name:34s} {seconds * 1e6:11.2f} us {gbs:8.2f} GB/s  {note}",
              file=self.out)

    def gbs(self, name):
        seconds, nbytes = self.rows[name]
        return nbytes / seconds / 1e9

    def time(self, name):
        return self.rows[name][0]


def _bench_shape(shape, threads, torch, F, rng, out, budget):
    x = rng.standard_normal(shape, dtype=np.float32)
    n = x.size
    channels = shape[1]
    slopes = rng.uniform(0.05, 0.5, channels).astype(np.float32)
    ones = np.ones(channels, dtype=np.float32)
    g = rng.standard_normal(shape, dtype=np.float32)
    y = np.empty_like(x)
    gi = np.empty_like(x)
    t = _Table(out)
    b8, b12 = 8 * n, 12 * n
    mb = x.nbytes / 1e6
    print(f"\nshape {shape} float32, {mb:.1f} MB per array, {threads} threads", file=out)
    print(f"  {'case':34s} {'time/call':>14s} {'speed':>13s}", file=out)

    # memory ceilings, into preallocated, touched outputs
    dst = np.ones_like(x)
    _cpu.ceiling_copy(x, dst, False)
    t.add("ceiling copy (ordinary stores)", _timeit(_cpu.ceiling_copy, (x, dst, False), budget=budget), b8)
    t.add("ceiling copy (streaming stores)", _timeit(_cpu.ceiling_copy, (x, dst, True), budget=budget), b8)
    rmw = x.copy()
    t.add("ceiling rmw (x *= c)", _timeit(_cpu.ceiling_scale_inplace, (rmw, 1.0), budget=budget), b8)
    t.add("ceiling r2w1 (ordinary stores)", _timeit(_cpu.ceiling_add, (x, g, dst, False), budget=budget), b12)
    t.add("ceiling r2w1 (streaming stores)", _timeit(_cpu.ceiling_add, (x, g, dst, True), budget=budget), b12)
    del dst, rmw
    copy = max(t.gbs("ceiling copy (ordinary stores)"), t.gbs("ceiling copy (streaming stores)"))
    r2w1 = max(t.gbs("ceiling r2w1 (ordinary stores)"), t.gbs("ceiling r2w1 (streaming stores)"))
    rmw = t.gbs("ceiling rmw (x *= c)")

    # fastact
    prelu(x, slopes, out=y)
    t.add("fastact forward out=", _timeit(prelu, (x, slopes), {"out": y}, budget=budget), b8)
    t.add("fastact forward (new output)", _timeit(prelu, (x, slopes), budget=budget), b8)
    xi = x.copy()   # slope 1 keeps values and signs over repeated in-place calls
    t.add("fastact forward in place", _timeit(prelu, (xi, ones), {"inplace": True}, budget=budget), b8)
    t.add("fastact backward out=", _timeit(prelu_backward, (g, x, slopes), {"out": gi}, budget=budget), b12)
    t.add("fastact backward (new output)", _timeit(prelu_backward, (g, x, slopes), budget=budget), b12)

    # numpy's best formulations
    a = slopes.reshape((1, channels) + (1,) * (x.ndim - 2))
    pos = np.empty_like(x)

    def numpy_max_min(x, a, y, pos):
        np.maximum(x, 0, out=pos)
        np.minimum(x, 0, out=y)
        y *= a
        y += pos
        return y

    def numpy_where(x, a, y):
        return np.where(x > 0, x, a * x)

    t.add("numpy max/min into out", _timeit(numpy_max_min, (x, a, y, pos), budget=budget), b8)
    t.add("numpy where", _timeit(numpy_where, (x, a, y), budget=budget), b8)
    numpy_best = max(t.gbs("numpy max/min into out"), t.gbs("numpy where"))
    del pos

    result = {"copy": copy, "rmw": rmw, "r2w1": r2w1, "table": t, "numpy_best": numpy_best}
    if torch is not None:
        xt = torch.from_numpy(x)
        wt = torch.from_numpy(slopes)
        t.add("torch F.prelu", _timeit(F.prelu, (xt, wt), budget=budget), b8)
        xit = torch.from_numpy(x.copy())
        t.add("torch F.leaky_relu_ (shared slope)", _timeit(F.leaky_relu_, (xit, 1.0), budget=budget), b8)
        xr = xt.clone().requires_grad_(True)
        wr = wt.clone().requires_grad_(True)
        yr = F.prelu(xr, wr)
        gt = torch.from_numpy(g)
        t.add("torch backward (autograd)", _timeit(
            torch.autograd.grad, ((yr,), (xr, wr), (gt,)), {"retain_graph": True},
            budget=budget), b12)
        del xr, wr, yr
    return result


def run(threads=None, quick=False, out=sys.stdout):
    """Run the benchmark and print its tables and the ratios (threads: use
    that many threads, for fastact and torch alike)."""
    torch, F = _load_torch()
    if threads is not None:
        set_num_threads(threads)
    threads = get_num_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    cfg = _cpu.config()
    print(f"fastact bench: SIMD {cfg['isa']}, {threads} threads, numpy {np.__version__}, "
          f"torch {torch.__version__ if torch is not None else 'not installed (its rows are skipped)'}",
          file=out)
    rng = np.random.default_rng(12345)
    budget = 0.05 if quick else 0.25
    summary = []
    for shape in QUICK_SHAPES if quick else SHAPES:
        r = _bench_shape(shape, threads, torch, F, rng, out, budget)
        t = r["table"]
        line = {
            "shape": shape,
            "fwd_out/copy": t.gbs("fastact forward out=") / r["copy"],
            "fwd_new/copy": t.gbs("fastact forward (new output)") / r["copy"],
            "inplace/rmw": t.gbs("fastact forward in place") / r["rmw"],
            "bwd_out/r2w1": t.gbs("fastact backward out=") / r["r2w1"],
            "bwd_new/r2w1": t.gbs("fastact backward (new output)") / r["r2w1"],
            "fwd_out/numpy": t.gbs("fastact forward out=") / r["numpy_best"],
        }
        if torch is not None:
            line["fwd_new/torch"] = t.time("torch F.prelu") / t.time("fastact forward (new output)")
            line["inplace/torch_leaky_"] = t.time("fastact forward in place") / t.time(
                "torch F.leaky_relu_ (shared slope)")
            line["bwd_new/torch"] = t.time("torch backward (autograd)") / t.time(
                "fastact backward (new output)")
        summary.append(line)

    print("\nratios (same run; ceilings: copy, rmw, r2w1 as above; "
          "'x torch' = torch time / fastact time)", file=out)
    header = (f"  {'shape':20s} {'fwd out=':>9s} {'fwd new':>8s} {'in place':>9s} "
              f"{'bwd out=':>9s} {'bwd new':>8s} {'x numpy':>8s}")
    if torch is not None:
        header += f" {'fwd x torch':>11s} {'in place / torch leaky_':>24s} {'bwd x torch':>11s}"
    print(header, file=out)
    print(f"  {'':20s} {'/ copy':>9s} {'/ copy':>8s} {'/ rmw':>9s} {'/ r2w1':>9s} {'/ r2w1':>8s}",
          file=out)
    for line in summary:
        row = (f"  {str(line['shape']):20s} {line['fwd_out/copy']:9.2f} {line['fwd_new/copy']:8.2f} "
               f"{line['inplace/rmw']:9.2f} {line['bwd_out/r2w1']:9.2f} {line['bwd_new/r2w1']:8.2f} "
               f"{line['fwd_out/numpy']:8.1f}")
        if torch is not None:
            row += (f" {line['fwd_new/torch']:11.1f} {line['inplace/torch_leaky_']:24.2f} "
                    f"{line['bwd_new/torch']:11.1f}")
        print(row, file=out)
    return summary
