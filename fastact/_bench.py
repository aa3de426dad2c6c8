"""`python -m fastact bench`: fastact against memory ceilings, numpy and PyTorch
(and, where a GPU is usable, the GPU rows of fastact._bench_cuda).

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
import random
import statistics
import sys
import time

import numpy as np

from . import _api, _bench_cuda, _cpu, _dtypes
from ._api import get_num_threads, prelu, prelu_backward, set_num_threads

SHAPES = [(1, 16, 8, 8), (1, 64, 56, 56), (32, 64, 56, 56), (32, 64, 112, 112)]
QUICK_SHAPES = [(1, 16, 8, 8), (2, 16, 32, 32)]
# the family, NHWC and half-precision rows: 25.7 MB of float32 (the targets
# are stated for arrays of 16 MB or more)
FAMILY_SHAPE = (32, 64, 56, 56)
QUICK_FAMILY_SHAPE = (2, 16, 32, 32)

# (name, forward, backward, keyword parameters); torch's name for its own
# out-of-place version, where it has one
FAMILY = [
    ("leaky_relu", "leaky_relu", "leaky_relu_backward", {"negative_slope": 0.01}),
    ("relu", "relu", "relu_backward", {}),
    ("relu6", "relu6", "relu6_backward", {}),
    ("relu (Keras: 0.1, 6, 0.5)", "relu", "relu_backward",
     {"negative_slope": 0.1, "max_value": 6.0, "threshold": 0.5}),
    ("thresholded_relu", "thresholded_relu", "thresholded_relu_backward", {"theta": 1.0}),
    ("elu", "elu", "elu_backward", {"alpha": 1.0}),
    ("square", "square", "square_backward", {}),
]
TORCH_FAMILY = {"leaky_relu": "leaky_relu", "relu": "relu", "relu6": "relu6", "elu": "elu"}


def _calls_per_batch(fn, args, kwargs, seconds):
    """How many calls of fn take about `seconds`."""
    fn(*args, **kwargs)
    calls = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn(*args, **kwargs)
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds / 4 or calls >= 1 << 20:
            return max(1, int(calls * seconds / max(elapsed, 1e-9)))
        calls *= 4


class _Cases:
    """Cases timed round-robin: each round times one batch of every case, so
    that every case sees the same drifts of the machine's speed, and each
    case's time is the median over the rounds.  Each round takes the cases
    in another order (shuffled with a fixed seed): in a fixed order, the case
    timed right after the ceilings ran 5-20% slower than the same kernel
    timed elsewhere in the list, and the median now leaves that out."""

    def __init__(self, out):
        self.out = out
        self.cases = []       # (name, fn, args, kwargs, nbytes)
        self.seconds = {}

    def add(self, name, nbytes, fn, *args, **kwargs):
        self.cases.append((name, fn, args, kwargs, nbytes))

    def run(self, rounds, batch_seconds):
        calls = [_calls_per_batch(fn, a, kw, batch_seconds) for _, fn, a, kw, _ in self.cases]
        samples = [[] for _ in self.cases]
        order = list(range(len(self.cases)))
        shuffle = random.Random(12345).shuffle
        for _ in range(rounds):
            shuffle(order)
            for k in order:
                _, fn, args, kwargs, _ = self.cases[k]
                t0 = time.perf_counter()
                for _ in range(calls[k]):
                    fn(*args, **kwargs)
                samples[k].append((time.perf_counter() - t0) / calls[k])
        for (name, _, _, _, nbytes), s in zip(self.cases, samples):
            self.seconds[name] = statistics.median(s)
            gbs = nbytes / self.seconds[name] / 1e9
            print(f"  {name:36s} {self.seconds[name] * 1e6:11.2f} us {gbs:8.2f} GB/s",
                  file=self.out)

    def gbs(self, name):
        nbytes = next(c[4] for c in self.cases if c[0] == name)
        return nbytes / self.seconds[name] / 1e9

    def time(self, name):
        return self.seconds[name]


def _load_torch():
    try:
        import torch
        import torch.nn.functional as F
    except Exception:  # not installed, or broken
        return None, None
    return torch, F


def _bench_shape(shape, threads, torch, F, rng, out, rounds, batch_seconds):
    x = rng.standard_normal(shape, dtype=np.float32)
    n = x.size
    channels = shape[1]
    slopes = rng.uniform(0.05, 0.5, channels).astype(np.float32)
    ones = np.ones(channels, dtype=np.float32)
    g = rng.standard_normal(shape, dtype=np.float32)
    b8, b12 = 8 * n, 12 * n
    print(f"\nshape {shape} float32, {x.nbytes / 1e6:.1f} MB per array, {threads} threads",
          file=out)
    print(f"  {'case':36s} {'time/call':>14s} {'speed':>13s}", file=out)
    t = _Cases(out)

    # memory ceilings, into preallocated, already-touched outputs
    dst, z = np.ones_like(x), np.ones_like(x)
    rmw = x.copy()
    t.add("ceiling copy (ordinary stores)", b8, _cpu.ceiling_copy, x, dst, False)
    t.add("ceiling copy (streaming stores)", b8, _cpu.ceiling_copy, x, dst, True)
    t.add("ceiling rmw (x *= 1)", b8, _cpu.ceiling_scale_inplace, rmw, 1.0)
    t.add("ceiling r2w1 (ordinary stores)", b12, _cpu.ceiling_add, x, g, z, False)
    t.add("ceiling r2w1 (streaming stores)", b12, _cpu.ceiling_add, x, g, z, True)

    # fastact; slope 1 keeps values and signs over repeated in-place calls
    y, gi, xi = np.ones_like(x), np.ones_like(x), x.copy()
    t.add("fastact forward out=", b8, prelu, x, slopes, out=y)
    t.add("fastact forward (new output)", b8, prelu, x, slopes)
    t.add("fastact forward in place", b8, prelu, xi, ones, inplace=True)
    t.add("fastact backward out=", b12, prelu_backward, g, x, slopes, out=gi)
    t.add("fastact backward (new output)", b12, prelu_backward, g, x, slopes)

    # numpy's best formulations
    a = slopes.reshape((1, channels) + (1,) * (x.ndim - 2))
    pos, ynp = np.empty_like(x), np.empty_like(x)

    def numpy_max_min(x, a, y, pos):
        np.maximum(x, 0, out=pos)
        np.minimum(x, 0, out=y)
        y *= a
        y += pos
        return y

    def numpy_where(x, a):
        return np.where(x > 0, x, a * x)

    t.add("numpy max/min into out", b8, numpy_max_min, x, a, ynp, pos)
    t.add("numpy where", b8, numpy_where, x, a)

    if torch is not None:
        xt, wt, gt = torch.from_numpy(x), torch.from_numpy(slopes), torch.from_numpy(g)
        xit = torch.from_numpy(x.copy())
        xr = xt.clone().requires_grad_(True)
        wr = wt.clone().requires_grad_(True)
        yr = F.prelu(xr, wr)
        t.add("torch F.prelu", b8, F.prelu, xt, wt)
        t.add("torch F.leaky_relu_ (shared slope)", b8, F.leaky_relu_, xit, 1.0)
        t.add("torch backward (autograd)", b12, torch.autograd.grad, (yr,), (xr, wr), (gt,),
              retain_graph=True)

    t.run(rounds, batch_seconds)
    copy = max(t.gbs("ceiling copy (ordinary stores)"), t.gbs("ceiling copy (streaming stores)"))
    r2w1 = max(t.gbs("ceiling r2w1 (ordinary stores)"), t.gbs("ceiling r2w1 (streaming stores)"))
    ratios = {
        "shape": shape,
        "fwd_out/copy": t.gbs("fastact forward out=") / copy,
        "fwd_new/copy": t.gbs("fastact forward (new output)") / copy,
        "inplace/rmw": t.gbs("fastact forward in place") / t.gbs("ceiling rmw (x *= 1)"),
        "bwd_out/r2w1": t.gbs("fastact backward out=") / r2w1,
        "bwd_new/r2w1": t.gbs("fastact backward (new output)") / r2w1,
        "fwd_out/numpy": t.gbs("fastact forward out=") / max(t.gbs("numpy max/min into out"),
                                                             t.gbs("numpy where")),
    }
    if torch is not None:
        ratios["fwd_new/torch"] = t.time("torch F.prelu") / t.time("fastact forward (new output)")
        ratios["inplace/torch_leaky_"] = t.time("fastact forward in place") / t.time(
            "torch F.leaky_relu_ (shared slope)")
        ratios["bwd_new/torch"] = t.time("torch backward (autograd)") / t.time(
            "fastact backward (new output)")
    return ratios


def _bench_family(shape, threads, torch, F, rng, out, rounds, batch_seconds):
    """Every op of the family forward (out=, new output) and backward (out=)
    against the same run's ceilings; PReLU NHWC against NCHW; float16 and
    bfloat16 rows."""
    x = rng.standard_normal(shape, dtype=np.float32) * 2
    g = rng.standard_normal(shape, dtype=np.float32)
    n = x.size
    b8, b12 = 8 * n, 12 * n
    print(f"\nthe family: shape {shape} float32, {x.nbytes / 1e6:.1f} MB per array, "
          f"{threads} threads", file=out)
    print(f"  {'case':36s} {'time/call':>14s} {'speed':>13s}", file=out)
    t = _Cases(out)
    dst, z = np.ones_like(x), np.ones_like(x)
    t.add("ceiling copy (ordinary stores)", b8, _cpu.ceiling_copy, x, dst, False)
    t.add("ceiling copy (streaming stores)", b8, _cpu.ceiling_copy, x, dst, True)
    t.add("ceiling r2w1 (ordinary stores)", b12, _cpu.ceiling_add, x, g, z, False)
    t.add("ceiling r2w1 (streaming stores)", b12, _cpu.ceiling_add, x, g, z, True)
    # an output of its own for each case, as the ceilings have: a case
    # writing the array the previous case just wrote would find it in cache,
    # which flatters every case but the first
    for name, fwd, bwd, kw in FAMILY:
        t.add(f"{name} out=", b8, getattr(_api, fwd), x, out=np.ones_like(x), **kw)
        t.add(f"{name} backward out=", b12, getattr(_api, bwd), g, x, out=np.ones_like(x),
              **kw)
    t.add("elu (new output)", b8, _api.elu, x)
    if torch is not None:
        xt = torch.from_numpy(x)
        for name, tname in TORCH_FAMILY.items():
            t.add(f"torch F.{tname}", b8, getattr(F, tname), xt)
        t.add("fastact leaky_relu (new output)", b8, _api.leaky_relu, x)

    # PReLU channels-last against channels-first, same data, each layout with
    # arrays of its own (arrays shared with the other rows would stay in cache
    # and flatter their layout)
    slopes = rng.uniform(0.05, 0.5, shape[1]).astype(np.float32)
    nchw, gnchw = x.copy(), g.copy()
    nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    gnhwc = np.ascontiguousarray(g.transpose(0, 2, 3, 1))
    t.add("prelu NCHW out=", b8, prelu, nchw, slopes, out=np.ones_like(nchw))
    t.add("prelu NHWC out=", b8, prelu, nhwc, slopes, out=np.ones_like(nhwc), channel_axis=-1)
    t.add("prelu_backward NCHW out=", b12, prelu_backward, gnchw, nchw, slopes,
          out=np.ones_like(nchw))
    t.add("prelu_backward NHWC out=", b12, prelu_backward, gnhwc, nhwc, slopes,
          out=np.ones_like(nhwc), channel_axis=-1)

    # half precision: the same bytes per second mean half the elements
    halves = [("float16", np.float16)] + (
        [("bfloat16", _dtypes.bfloat16())] if _dtypes.bfloat16_status()[0] else [])
    for label, dt in halves:
        xh, gh = x.astype(dt), g.astype(dt)
        yh = np.ones_like(xh)
        h4, h6 = 4 * n, 6 * n
        t.add(f"prelu {label} out=", h4, prelu, xh, slopes, out=yh)
        t.add(f"prelu_backward {label} out=", h6, prelu_backward, gh, xh, slopes, out=yh)
        t.add(f"leaky_relu {label} out=", h4, _api.leaky_relu, xh, out=yh)
        t.add(f"elu {label} out=", h4, _api.elu, xh, out=yh)

    t.run(rounds, batch_seconds)
    copy = max(t.gbs("ceiling copy (ordinary stores)"), t.gbs("ceiling copy (streaming stores)"))
    r2w1 = max(t.gbs("ceiling r2w1 (ordinary stores)"), t.gbs("ceiling r2w1 (streaming stores)"))
    rows = [(name, t.gbs(f"{name} out=") / copy, t.gbs(f"{name} backward out=") / r2w1)
            for name, *_ in FAMILY]
    print("\nfamily ratios (same run): forward out= / copy, backward out= / r2w1", file=out)
    for name, f, b in rows:
        print(f"  {name:36s} {f:6.2f} {b:8.2f}", file=out)
    nhwc_f = t.time("prelu NCHW out=") / t.time("prelu NHWC out=")
    nhwc_b = t.time("prelu_backward NCHW out=") / t.time("prelu_backward NHWC out=")
    print(f"  {'prelu NHWC speed / NCHW speed':36s} {nhwc_f:6.2f} {nhwc_b:8.2f}", file=out)
    for label, _ in halves:
        print(f"  {'prelu ' + label:36s} {t.gbs(f'prelu {label} out=') / copy:6.2f} "
              f"{t.gbs(f'prelu_backward {label} out=') / r2w1:8.2f}", file=out)
        for op in ("leaky_relu", "elu"):
            print(f"  {op + ' ' + label:36s} {t.gbs(f'{op} {label} out=') / copy:6.2f}", file=out)
    if torch is not None:
        print("  torch time / fastact time, new outputs: "
              f"elu {t.time('torch F.elu') / t.time('elu (new output)'):.1f}x, "
              f"leaky_relu {t.time('torch F.leaky_relu') / t.time('fastact leaky_relu (new output)'):.1f}x",
              file=out)
    return {"rows": rows, "nhwc/nchw": (nhwc_f, nhwc_b)}


def import_seconds(repeats=5):
    """Median wall time of ``import fastact`` in fresh interpreters (the
    interpreter's own start-up excluded), and whether it imported ml_dtypes."""
    import subprocess

    code = ("import sys, time; t = time.perf_counter(); import fastact; "
            "print(time.perf_counter() - t, 'ml_dtypes' in sys.modules)")
    times, eager = [], False
    for _ in range(repeats):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, timeout=120)
        seconds, loaded = r.stdout.split()
        times.append(float(seconds))
        eager |= loaded == "True"
    return statistics.median(times), eager


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
    seconds, eager = import_seconds(3 if quick else 5)
    print(f"import fastact: {seconds * 1e3:.0f} ms (median of {3 if quick else 5} fresh "
          f"interpreters; ml_dtypes {'imported' if eager else 'not imported'})", file=out)
    rng = np.random.default_rng(12345)
    rounds, batch_seconds = (3, 0.005) if quick else (9, 0.04)
    summary = [_bench_shape(shape, threads, torch, F, rng, out, rounds, batch_seconds)
               for shape in (QUICK_SHAPES if quick else SHAPES)]
    # more rounds for the family: its rows are compared with each other (NHWC
    # against NCHW), and with 9 rounds a busy neighbour moved single medians
    # by up to 30%
    _bench_family(QUICK_FAMILY_SHAPE if quick else FAMILY_SHAPE, threads, torch, F, rng, out,
                  rounds if quick else 2 * rounds + 1, batch_seconds)

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
    print(file=out)
    _bench_cuda.run(out, quick)       # prints why it is skipped without a usable GPU
    return summary
