"""`python -m fastact bench`: fastact against memory ceilings, numpy and PyTorch,
then against its peers where they are installed (torch.compile, OpenVINO,
ONNX Runtime: fastact._bench_peers), a Keras 3 training step on JAX with
fastact.keras's layers (fastact._bench_keras), and, where a GPU is usable, the GPU rows
of fastact._bench_cuda.

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

Small calls: each family op in place on a (1, 16, 8, 8) array against torch's
in-place op, each call on a fresh copy of the same random data, and
prelu_backward's time per call there.

Threads: --threads N times everything with N threads; --threads 1,N times
every ceiling and fastact row with each count (torch's too), in the same
rounds, and prints one-thread time / N-thread time.  With N > 1 the ceilings
also run on one thread, to check that the threads could run: when other
processes keep the CPUs busy, a team waits for threads the scheduler has not
run, and fastact then runs its calls on one thread for a while (its
back-off; the ceilings go through the same thread policy).  The ratios would
still look healthy, as fastact and its ceilings slow down alike, so the run
says CONTENTION, and why, instead: fastact found teams that cost more than
one thread, or the N-thread ceilings ran slower than one thread.  --busy
measures what the threads cost on a busy machine (fastact._bench_busy).
"""
import functools
import random
import statistics
import sys
import time

import numpy as np

from . import (
    _api,
    _bench_busy,
    _bench_cuda,
    _bench_jax,
    _bench_keras,
    _bench_peers,
    _cpu,
    _dtypes,
    _membench,
)
from ._api import get_num_threads, prelu, prelu_backward, set_num_threads

SHAPES = [(1, 16, 8, 8), (1, 64, 56, 56), (32, 64, 56, 56), (32, 64, 112, 112)]
QUICK_SHAPES = [(1, 16, 8, 8), (2, 16, 32, 32)]
# the family and NHWC rows: 25.7 MB of float32 (the targets are stated for
# arrays of 16 MB or more)
FAMILY_SHAPE = (32, 64, 56, 56)
QUICK_FAMILY_SHAPE = (2, 16, 32, 32)
# float16 and bfloat16: the element count of the largest float32 shape (51 MB
# per half array)
HALF_SHAPE = SHAPES[-1]
QUICK_HALF_SHAPE = QUICK_FAMILY_SHAPE

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
    ("hardtanh", "hardtanh", "hardtanh_backward", {}),
    ("square", "square", "square_backward", {}),
]
TORCH_FAMILY = {"leaky_relu": "leaky_relu", "relu": "relu", "relu6": "relu6", "elu": "elu",
                "hardtanh": "hardtanh"}


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

    def __init__(self, out, threads=None, set_threads=None):
        self.out = out
        self.cases = []       # (name, fn, args, kwargs, nbytes, threads)
        self.seconds = {}
        self.samples = {}     # name -> per-round seconds per call, in round order
        self.threads = threads            # for cases added without a count
        self.set_threads = set_threads    # set_threads(n) before a case's batch
        self.stats = None                 # fastact's team counts during run()

    def add(self, name, nbytes, fn, *args, **kwargs):
        self.add_at(self.threads, name, nbytes, fn, *args, **kwargs)

    def add_at(self, threads, name, nbytes, fn, *args, **kwargs):
        """A case timed with `threads` threads (fastact's and torch's)."""
        self.cases.append((name, fn, args, kwargs, nbytes, threads))

    def _enter(self, k):
        if self.set_threads is not None and self.cases[k][5] is not None:
            self.set_threads(self.cases[k][5])

    def run(self, rounds, batch_seconds):
        before = _cpu.thread_stats()
        calls = []
        for k, (_, fn, a, kw, _, _) in enumerate(self.cases):
            self._enter(k)
            calls.append(_calls_per_batch(fn, a, kw, batch_seconds))
        samples = [[] for _ in self.cases]
        order = list(range(len(self.cases)))
        shuffle = random.Random(12345).shuffle
        for _ in range(rounds):
            shuffle(order)
            for k in order:
                _, fn, args, kwargs, _, _ = self.cases[k]
                self._enter(k)
                t0 = time.perf_counter()
                for _ in range(calls[k]):
                    fn(*args, **kwargs)
                samples[k].append((time.perf_counter() - t0) / calls[k])
        if self.set_threads is not None and self.threads is not None:
            self.set_threads(self.threads)
        after = _cpu.thread_stats()
        self.stats = {key: after[key] - before[key]
                      for key in ("team_calls", "bad_team_calls", "backoff_serial_calls")}
        for (name, _, _, _, nbytes, _), s in zip(self.cases, samples):
            self.samples[name] = s
            self.seconds[name] = statistics.median(s)
            gbs = nbytes / self.seconds[name] / 1e9
            print(f"  {name:44s} {self.seconds[name] * 1e6:11.2f} us {gbs:8.2f} GB/s",
                  file=self.out)

    def has(self, name):
        return name in self.seconds

    def gbs(self, name):
        nbytes = next(c[4] for c in self.cases if c[0] == name)
        return nbytes / self.seconds[name] / 1e9

    @staticmethod
    def _ceiling_name(kind, streaming, fresh):
        """The case name of a ceiling, as add_ceilings adds it."""
        return (f"{'fresh ceiling' if fresh else 'ceiling'} {kind} "
                f"({'streaming' if streaming else 'ordinary'} stores)")

    def add_ceilings(self, x, g, fresh=False):
        """The copy and read-two-write-one ceilings over x (and g), each with
        ordinary and with streaming stores: into outputs of their own,
        preallocated and already touched, or with fresh=True into an output
        allocated by each call (the ceiling of a function that returns a new
        array: its first touch costs page faults)."""
        dst, z = (None, None) if fresh else (np.ones_like(x), np.ones_like(x))
        kinds = (("copy", 2 * x.nbytes, _membench.ceiling_copy, (x,), dst),
                 ("r2w1", 3 * x.nbytes, _membench.ceiling_add, (x, g), z))
        for kind, nbytes, kernel, inputs, out in kinds:
            for streaming in (False, True):
                name = self._ceiling_name(kind, streaming, fresh)
                if fresh:
                    self.add(name, nbytes, lambda k=kernel, a=inputs, nt=streaming:
                             k(*a, np.empty_like(x), nt))
                else:
                    self.add(name, nbytes, kernel, *inputs, out, streaming)

    def ceiling(self, kind, fresh=False):
        """The faster of a ceiling's two forms ("copy" or "r2w1"), in GB/s."""
        return max(self.gbs(self._ceiling_name(kind, streaming, fresh))
                   for streaming in (False, True))

    def time(self, name):
        return self.seconds[name]


def _load_torch():
    try:
        import torch
        import torch.nn.functional as F
    except Exception:  # not installed, or broken
        return None, None
    return torch, F


def _thread_tag(counts, c):
    """The suffix of a row timed with c threads: none when the run has one
    count and this is it."""
    return "" if counts == [c] else f" [{c} thr]"


def _bench_shape(shape, counts, set_threads, torch, F, rng, out, rounds, batch_seconds):
    """The table of one shape: ceilings and fastact rows at each thread count
    in `counts` (the ceilings also on one thread, to tell whether the
    threads could run), numpy, torch; returns one dict of ratios per count,
    and what the threads did (see _contention)."""
    x = rng.standard_normal(shape, dtype=np.float32)
    n = x.size
    channels = shape[1]
    slopes = rng.uniform(0.05, 0.5, channels).astype(np.float32)
    ones = np.ones(channels, dtype=np.float32)
    g = rng.standard_normal(shape, dtype=np.float32)
    b8, b12 = 8 * n, 12 * n
    print(f"\nshape {shape} float32, {x.nbytes / 1e6:.1f} MB per array, "
          f"{', '.join(map(str, counts))} threads", file=out)
    print(f"  {'case':44s} {'time/call':>14s} {'speed':>13s}", file=out)
    t = _Cases(out, counts[-1], set_threads)

    # memory ceilings, into preallocated, already-touched outputs
    dst, z = np.ones_like(x), np.ones_like(x)
    rmw = x.copy()
    ceiling_counts = sorted(set(counts) | ({1} if max(counts) > 1 else set()))
    for c in ceiling_counts:
        tag = _thread_tag(counts, c)
        for kind, nbytes, kernel, inputs, dest in (
                ("copy", b8, _membench.ceiling_copy, (x,), dst),
                ("r2w1", b12, _membench.ceiling_add, (x, g), z)):
            for streaming in (False, True):
                t.add_at(c, _Cases._ceiling_name(kind, streaming, False) + tag, nbytes, kernel,
                         *inputs, dest, streaming)
        if c in counts:
            t.add_at(c, "ceiling rmw (x *= 1)" + tag, b8, _membench.ceiling_scale_inplace, rmw, 1.0)

    # fastact; slope 1 keeps values and signs over repeated in-place calls
    y, gi, xi = np.ones_like(x), np.ones_like(x), x.copy()
    for c in counts:
        tag = _thread_tag(counts, c)
        t.add_at(c, "fastact forward out=" + tag, b8, prelu, x, slopes, out=y)
        t.add_at(c, "fastact forward (new output)" + tag, b8, prelu, x, slopes)
        t.add_at(c, "fastact forward in place" + tag, b8, prelu, xi, ones, inplace=True)
        t.add_at(c, "fastact backward out=" + tag, b12, prelu_backward, g, x, slopes, out=gi)
        t.add_at(c, "fastact backward (new output)" + tag, b12, prelu_backward, g, x, slopes)

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
        for c in counts:
            tag = _thread_tag(counts, c)
            t.add_at(c, "torch F.prelu" + tag, b8, F.prelu, xt, wt)
            t.add_at(c, "torch F.leaky_relu_ (shared slope)" + tag, b8, F.leaky_relu_, xit, 1.0)
            t.add_at(c, "torch backward (autograd)" + tag, b12, torch.autograd.grad, (yr,),
                     (xr, wr), (gt,), retain_graph=True)

    t.run(rounds, batch_seconds)

    def ceiling(kind, c):
        tag = _thread_tag(counts, c)
        return max(t.gbs(_Cases._ceiling_name(kind, streaming, False) + tag)
                   for streaming in (False, True))

    summary = []
    for c in counts:
        tag = _thread_tag(counts, c)
        copy, r2w1 = ceiling("copy", c), ceiling("r2w1", c)
        ratios = {
            "shape": shape,
            "threads": c,
            "fwd_out/copy": t.gbs("fastact forward out=" + tag) / copy,
            "fwd_new/copy": t.gbs("fastact forward (new output)" + tag) / copy,
            "inplace/rmw": t.gbs("fastact forward in place" + tag)
            / t.gbs("ceiling rmw (x *= 1)" + tag),
            "bwd_out/r2w1": t.gbs("fastact backward out=" + tag) / r2w1,
            "bwd_new/r2w1": t.gbs("fastact backward (new output)" + tag) / r2w1,
            "fwd_out/numpy": t.gbs("fastact forward out=" + tag) / max(
                t.gbs("numpy max/min into out"), t.gbs("numpy where")),
            # the ceilings on c threads against one thread (1.0 for c = 1)
            "copy_c/copy_1": copy / ceiling("copy", 1) if 1 in ceiling_counts else 1.0,
            "r2w1_c/r2w1_1": r2w1 / ceiling("r2w1", 1) if 1 in ceiling_counts else 1.0,
        }
        if 1 in counts and c != 1:
            one = _thread_tag(counts, 1)
            ratios["fwd_1/fwd_c"] = t.time("fastact forward out=" + one) / t.time(
                "fastact forward out=" + tag)
            ratios["bwd_1/bwd_c"] = t.time("fastact backward out=" + one) / t.time(
                "fastact backward out=" + tag)
        if torch is not None:
            ratios["fwd_new/torch"] = t.time("torch F.prelu" + tag) / t.time(
                "fastact forward (new output)" + tag)
            ratios["inplace/torch_leaky_"] = t.time("fastact forward in place" + tag) / t.time(
                "torch F.leaky_relu_ (shared slope)" + tag)
            ratios["bwd_new/torch"] = t.time("torch backward (autograd)" + tag) / t.time(
                "fastact backward (new output)" + tag)
        summary.append(ratios)
    # below the serial threshold every call runs on one thread: nothing to tell
    busy = _contention(summary, t.stats) if b8 >= _cpu.PARALLEL_MIN_BYTES else None
    if max(counts) > 1 and b8 < _cpu.PARALLEL_MIN_BYTES:
        print("  (calls this small run on one thread whatever the thread count)", file=out)
    elif max(counts) > 1:
        scaling = ", ".join(f"{r['threads']} threads {r['copy_c/copy_1']:.2f}x (copy), "
                            f"{r['r2w1_c/r2w1_1']:.2f}x (r2w1)"
                            for r in summary if r["threads"] > 1)
        print(f"  ceilings against one thread: {scaling}; fastact's team calls "
              f"{t.stats['team_calls']}, of which cost more than one thread: "
              f"{t.stats['bad_team_calls']}, run on one thread by its back-off: "
              f"{t.stats['backoff_serial_calls']}", file=out)
    for r in summary:
        r["busy"] = busy
    return summary


# Below this, the ceilings on N threads ran slower than on one: their threads
# did not all run.
SCALING_FLOOR = 0.9
# A larger share of the calls that would take a team ran on one thread: teams
# cost more than they saved, again and again (on an idle machine a rare
# hiccup sends a few calls to one thread)
BACKOFF_SHARE = 0.05


def _backed_off(stats):
    """What fastact's back-off did, when it ran more than BACKOFF_SHARE of the
    large calls on one thread (teams cost more than they saved); else None."""
    large_calls = stats["team_calls"] + stats["backoff_serial_calls"]
    if stats["backoff_serial_calls"] > BACKOFF_SHARE * large_calls:
        return (f"{stats['bad_team_calls']} team calls cost more than one thread and "
                f"{stats['backoff_serial_calls']} calls ran on one thread instead")
    return None


def _contention(summary, stats):
    """Why this shape's multi-thread figures are not an idle machine's, or
    None: fastact found teams that cost more than one thread (and ran calls
    serially), or the ceilings on N threads ran slower than on one."""
    backed_off = _backed_off(stats)
    reasons = [backed_off] if backed_off else []
    for r in summary:
        worst = min(r["copy_c/copy_1"], r["r2w1_c/r2w1_1"])
        if r["threads"] > 1 and worst < SCALING_FLOOR:
            reasons.append(f"the {r['threads']}-thread ceilings ran at {worst:.2f}x one thread")
    return "; ".join(reasons) or None


def _bench_family(shape, threads, torch, F, rng, out, rounds, batch_seconds):
    """Every op of the family forward (out=, new output) and backward (out=)
    against the same run's ceilings; PReLU NHWC against NCHW."""
    x = rng.standard_normal(shape, dtype=np.float32) * 2
    g = rng.standard_normal(shape, dtype=np.float32)
    n = x.size
    b8, b12 = 8 * n, 12 * n
    print(f"\nthe family: shape {shape} float32, {x.nbytes / 1e6:.1f} MB per array, "
          f"{threads} threads", file=out)
    print(f"  {'case':44s} {'time/call':>14s} {'speed':>13s}", file=out)
    t = _Cases(out)
    t.add_ceilings(x, g)
    # an output of its own for each case, as the ceilings have: a case
    # writing the array the previous case just wrote would find it in cache,
    # which flatters every case but the first
    for name, fwd, bwd, kw in FAMILY:
        t.add(f"{name} out=", b8, getattr(_api, fwd), x, out=np.ones_like(x), **kw)
        t.add(f"{name} backward out=", b12, getattr(_api, bwd), g, x, out=np.ones_like(x),
              **kw)
    t.add("elu (new output)", b8, _api.elu, x)
    # ELU's gradient read off the forward's output, as fastact's modules
    # compute it after an in-place forward (no exp)
    y_elu = _api.elu(x)
    t.add("elu backward from the output out=", b12, _api.elu_backward_from_output, g, y_elu,
          1.0, np.ones_like(x), None)
    if torch is not None:
        xt = torch.from_numpy(x)
        for tname in TORCH_FAMILY.values():
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
    # BatchNorm + PReLU fused: one read and one write, like prelu
    scale = rng.uniform(0.5, 2.0, shape[1]).astype(np.float32)
    shift = rng.standard_normal(shape[1], dtype=np.float32)
    t.add("affine_prelu NCHW out=", b8, _api.affine_prelu, x.copy(), scale, shift, slopes,
          out=np.ones_like(x))
    t.add("prelu_backward NHWC out=", b12, prelu_backward, gnhwc, nhwc, slopes,
          out=np.ones_like(nhwc), channel_axis=-1)

    t.run(rounds, batch_seconds)
    copy, r2w1 = t.ceiling("copy"), t.ceiling("r2w1")
    rows = [(name, t.gbs(f"{name} out=") / copy, t.gbs(f"{name} backward out=") / r2w1)
            for name, *_ in FAMILY]
    print("\nfamily ratios (same run): forward out= / copy, backward out= / r2w1", file=out)
    for name, f, b in rows:
        print(f"  {name:36s} {f:6.2f} {b:8.2f}", file=out)
    nhwc_f = t.time("prelu NCHW out=") / t.time("prelu NHWC out=")
    nhwc_b = t.time("prelu_backward NCHW out=") / t.time("prelu_backward NHWC out=")
    print(f"  {'prelu NHWC speed / NCHW speed':36s} {nhwc_f:6.2f} {nhwc_b:8.2f}", file=out)
    affine = t.gbs("affine_prelu NCHW out=") / copy
    print(f"  {'affine_prelu (BatchNorm + PReLU) NCHW':36s} {affine:6.2f}", file=out)
    elu_from_y = t.gbs("elu backward from the output out=") / r2w1
    print(f"  {'elu backward from the output':36s} {'':6s} {elu_from_y:8.2f}", file=out)
    backed_off = _backed_off(t.stats) if threads > 1 else None
    if backed_off:
        print(f"  * CONTENTION: {backed_off}: other processes were using the CPUs", file=out)
    if torch is not None:
        leaky = t.time("torch F.leaky_relu") / t.time("fastact leaky_relu (new output)")
        print("  torch time / fastact time, new outputs: "
              f"elu {t.time('torch F.elu') / t.time('elu (new output)'):.1f}x, "
              f"leaky_relu {leaky:.1f}x", file=out)
    return {"rows": rows, "nhwc/nchw": (nhwc_f, nhwc_b), "affine_prelu/copy": affine,
            "elu_from_output/r2w1": elu_from_y}


# small calls: every family op torch has in place, on a tiny array, and
# torch's in-place form of it (same parameters)
SMALL_SHAPE = SHAPES[0]
SMALL_INPLACE = [
    ("leaky_relu", {"negative_slope": 0.01}, lambda F, t: F.leaky_relu_(t, 0.01)),
    ("relu", {}, lambda F, t: F.relu_(t)),
    ("relu6", {}, lambda F, t: F.relu6(t, inplace=True)),
    ("elu", {"alpha": 1.0}, lambda F, t: F.elu_(t, 1.0)),
    ("hardtanh", {}, lambda F, t: F.hardtanh_(t)),
]
# arrays per timed batch of a small in-place case, each a fresh copy of the
# same random data (512 KB at the small shape: in L2 cache)
SMALL_POOL = 128


def _bench_small_calls(torch, F, rng, out, rounds):
    """Per-call time of each family op in place on a (1, 16, 8, 8) array
    against torch's in-place op, and of prelu_backward.

    An op applied in place again and again changes its own data: ELU's
    negatives shrink to -0.0 within a few thousand calls and leaky_relu's
    become subnormal, and a kernel's time on such data is not its time on
    real inputs.  So each call here gets a fresh copy of the same random
    array: a batch refills a pool of copies (untimed), then times one call
    on each.  Rounds interleave fastact's and torch's batches; each round
    keeps the best of three batches per case, and the ratio is per round."""
    print(f"\nsmall calls: {SMALL_SHAPE} float32, in place, each call on a fresh copy of the "
          "same random data", file=out)
    x = rng.standard_normal(SMALL_SHAPE, dtype=np.float32)
    g = rng.standard_normal(SMALL_SHAPE, dtype=np.float32)
    slopes = rng.uniform(0.05, 0.5, SMALL_SHAPE[1]).astype(np.float32)
    gi = np.ones_like(x)
    # prelu_backward reads without writing its inputs: plain repeated calls
    fixed = {"prelu_backward (new output)": lambda: prelu_backward(g, x, slopes),
             "prelu_backward out=": lambda: prelu_backward(g, x, slopes, out=gi)}
    pool = [x.copy() for _ in range(SMALL_POOL)]
    cases = {}
    for name, kw, _ in SMALL_INPLACE:
        cases[f"fastact {name} in place"] = (pool, x, np.copyto, functools.partial(
            getattr(_api, name), inplace=True, **kw))
    if torch is not None:
        tpool = [torch.from_numpy(a.copy()) for a in pool]
        xt = torch.from_numpy(x)
        for name, _, torch_inplace in SMALL_INPLACE:
            cases[f"torch {name} in place"] = (tpool, xt, torch.Tensor.copy_,
                                               functools.partial(torch_inplace, F))
    else:
        print("  (torch is not installed: its rows are skipped)", file=out)
    samples = {name: [] for name in list(cases) + list(fixed)}
    order = list(samples)
    shuffle = random.Random(12345).shuffle
    for _ in range(rounds):
        shuffle(order)
        for name in order:
            best = float("inf")
            for _ in range(3):
                if name in fixed:
                    fn = fixed[name]
                    t0 = time.perf_counter()
                    for _ in range(SMALL_POOL):
                        fn()
                else:
                    arrays, source, refill, fn = cases[name]
                    for a in arrays:
                        refill(a, source)
                    t0 = time.perf_counter()
                    for a in arrays:
                        fn(a)
                best = min(best, (time.perf_counter() - t0) / SMALL_POOL)
            samples[name].append(best)
    for name, s in samples.items():
        print(f"  {name:44s} {statistics.median(s) * 1e6:11.3f} us "
              f"[{min(s) * 1e6:.3f}-{max(s) * 1e6:.3f}]", file=out)
    ratios = {}
    if torch is not None:
        print(f"  fastact time / torch time, in place (per round, median [min-max] of {rounds})",
              file=out)
        for name, _, _ in SMALL_INPLACE:
            r = [a / b for a, b in zip(samples[f"fastact {name} in place"],
                                       samples[f"torch {name} in place"])]
            ratios[name] = statistics.median(r)
            print(f"    {name:42s} {ratios[name]:6.2f} [{min(r):.2f}-{max(r):.2f}]", file=out)
    return {"seconds": {k: statistics.median(v) for k, v in samples.items()},
            "fastact/torch": ratios}


# the family ops of the half-precision section: (name, forward, backward, kw)
HALF_OPS = [op for op in FAMILY if op[0] in ("leaky_relu", "relu", "elu", "hardtanh")]


def _bench_half(shape, threads, rng, out, rounds, batch_seconds):
    """float16 and bfloat16 (with ml_dtypes): prelu forward and backward and
    a few family ops, into out=, against ceilings measured on float32 arrays
    of the same bytes (GB/s: 4 bytes per element forward, 6 backward)."""
    n = int(np.prod(shape))
    halves = [("float16", np.float16)] + (
        [("bfloat16", _dtypes.bfloat16())] if _dtypes.bfloat16_status()[0] else [])
    print(f"\nhalf precision: shape {shape}, {2 * n / 1e6:.1f} MB per array, {threads} threads",
          file=out)
    print(f"  {'case':44s} {'time/call':>14s} {'speed':>13s}", file=out)
    t = _Cases(out)
    t.add_ceilings(rng.standard_normal(n // 2, dtype=np.float32),
                   rng.standard_normal(n // 2, dtype=np.float32))
    x = rng.standard_normal(shape, dtype=np.float32) * 2
    g = rng.standard_normal(shape, dtype=np.float32)
    slopes = rng.uniform(0.05, 0.5, shape[1]).astype(np.float32)
    h4, h6 = 4 * n, 6 * n
    for label, dt in halves:
        xh, gh = x.astype(dt), g.astype(dt)
        t.add(f"prelu {label} out=", h4, prelu, xh, slopes, out=np.ones_like(xh))
        t.add(f"prelu {label} backward out=", h6, prelu_backward, gh, xh, slopes,
              out=np.ones_like(xh))
        for name, fwd, bwd, kw in HALF_OPS:
            t.add(f"{name} {label} out=", h4, getattr(_api, fwd), xh, out=np.ones_like(xh),
                  **kw)
            t.add(f"{name} {label} backward out=", h6, getattr(_api, bwd), gh, xh,
                  out=np.ones_like(xh), **kw)
    t.run(rounds, batch_seconds)
    copy, r2w1 = t.ceiling("copy"), t.ceiling("r2w1")
    print("\nhalf-precision ratios (same run): forward out= / copy, backward out= / r2w1",
          file=out)
    rows = []
    for label, _ in halves:
        for name in ["prelu"] + [op[0] for op in HALF_OPS]:
            f = t.gbs(f"{name} {label} out=") / copy
            b = t.gbs(f"{name} {label} backward out=") / r2w1
            rows.append((f"{name} {label}", f, b))
            print(f"  {name + ' ' + label:36s} {f:6.2f} {b:8.2f}", file=out)
    backed_off = _backed_off(t.stats) if threads > 1 else None
    if backed_off:
        print(f"  * CONTENTION: {backed_off}: other processes were using the CPUs", file=out)
    return rows


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


def run(threads=None, quick=False, out=sys.stdout, busy=False):
    """Run the benchmark and print its tables and the ratios.  threads: a
    count for fastact and torch alike, or a list of counts to compare (e.g.
    [1, 2]: every ceiling and fastact row on each); busy: only the
    busy-machine section (fastact._bench_busy)."""
    torch, F = _load_torch()
    if busy:
        count = threads[-1] if isinstance(threads, (list, tuple)) else threads
        return _bench_busy.run(count, quick, out)
    if threads is None:
        counts = [get_num_threads()]
    elif isinstance(threads, (list, tuple)):
        counts = list(threads)
    else:
        counts = [threads]

    def set_threads(c):
        set_num_threads(c)
        if torch is not None:
            torch.set_num_threads(c)

    set_threads(counts[-1])
    # start the thread team before anything is timed (a process's first team
    # call also creates its threads), and forget what that call taught the
    # back-off
    warm = np.ones(1 << 20, dtype=np.float32)
    _membench.ceiling_copy(warm, np.empty_like(warm), False)
    _cpu.force_thread_backoff(0)
    cfg = _cpu.config()
    torch_version = (torch.__version__ if torch is not None
                     else "not installed (its rows are skipped)")
    print(f"fastact bench: SIMD {cfg['isa']}, {', '.join(map(str, counts))} threads "
          f"(CPUs available: {cfg['cpu_limit']}), numpy {np.__version__}, "
          f"torch {torch_version}",
          file=out)
    seconds, eager = import_seconds(3 if quick else 5)
    print(f"import fastact: {seconds * 1e3:.0f} ms (median of {3 if quick else 5} fresh "
          f"interpreters; ml_dtypes {'imported' if eager else 'not imported'})", file=out)
    rng = np.random.default_rng(12345)
    rounds, batch_seconds = (3, 0.005) if quick else (9, 0.04)
    summary = [line for shape in (QUICK_SHAPES if quick else SHAPES)
               for line in _bench_shape(shape, counts, set_threads, torch, F, rng, out, rounds,
                                        batch_seconds)]
    set_threads(counts[-1])
    # more rounds for the family: its rows are compared with each other (NHWC
    # against NCHW), and with 9 rounds a busy neighbour moved single medians
    # by up to 30%
    _bench_family(QUICK_FAMILY_SHAPE if quick else FAMILY_SHAPE, counts[-1], torch, F, rng, out,
                  rounds if quick else 2 * rounds + 1, batch_seconds)
    _bench_half(QUICK_HALF_SHAPE if quick else HALF_SHAPE, counts[-1], rng, out, rounds,
                batch_seconds)
    _bench_small_calls(torch, F, rng, out, rounds if quick else 2 * rounds + 1)

    print("\nratios (same run; ceilings: copy, rmw, r2w1 as above; "
          "'x torch' = torch time / fastact time)", file=out)
    header = (f"  {'shape':20s} {'thr':>3s} {'fwd out=':>9s} {'fwd new':>8s} {'in place':>9s} "
              f"{'bwd out=':>9s} {'bwd new':>8s} {'x numpy':>8s}")
    if torch is not None:
        header += f" {'fwd x torch':>11s} {'in place / torch leaky_':>24s} {'bwd x torch':>11s}"
    print(header, file=out)
    print(f"  {'':20s} {'':3s} {'/ copy':>9s} {'/ copy':>8s} {'/ rmw':>9s} {'/ r2w1':>9s} "
          f"{'/ r2w1':>8s}", file=out)
    for line in summary:
        mark = "*" if line["busy"] and line["threads"] > 1 else " "
        row = (f"  {str(line['shape']):20s} {line['threads']:3d} {line['fwd_out/copy']:9.2f} "
               f"{line['fwd_new/copy']:8.2f} {line['inplace/rmw']:9.2f} "
               f"{line['bwd_out/r2w1']:9.2f} "
               f"{line['bwd_new/r2w1']:8.2f} {line['fwd_out/numpy']:8.1f}")
        if torch is not None:
            row += (f" {line['fwd_new/torch']:11.1f} {line['inplace/torch_leaky_']:24.2f} "
                    f"{line['bwd_new/torch']:11.1f}")
        print(row + mark, file=out)
    if 1 in counts and max(counts) > 1:
        print("\nthreads (same run): one-thread time / N-thread time", file=out)
        print(f"  {'shape':20s} {'thr':>3s} {'fwd out=':>9s} {'bwd out=':>9s} {'copy':>9s} "
              f"{'r2w1':>9s}", file=out)
        for line in summary:
            if line["threads"] > 1:
                print(f"  {str(line['shape']):20s} {line['threads']:3d} {line['fwd_1/fwd_c']:9.2f} "
                      f"{line['bwd_1/bwd_c']:9.2f} {line['copy_c/copy_1']:9.2f} "
                      f"{line['r2w1_c/r2w1_1']:9.2f}", file=out)
    busy_lines = [line for line in summary if line["busy"] and line["threads"] > 1]
    if busy_lines:
        print("\n* CONTENTION: other processes were using the CPUs during this run, so the "
              "multi-thread figures marked * are not an idle machine's:", file=out)
        seen = set()
        for line in busy_lines:
            if line["shape"] not in seen:
                seen.add(line["shape"])
                print(f"  {line['shape']}: {line['busy']}", file=out)
        print("  Rerun on an idle machine; `--busy` measures what the threads cost on a busy one.",
              file=out)

    # --- peers: torch.compile, OpenVINO, ONNX Runtime (fastact._bench_peers) ---
    _bench_peers.run(counts[-1], quick, out, _Cases)
    set_threads(counts[-1])
    # --- jax: fastact.jax against XLA's own code (fastact._bench_jax) ---
    _bench_jax.run(counts[-1], quick, out, _Cases)
    set_threads(counts[-1])

    # --- Keras 3 on JAX (fastact._bench_keras; skipped without keras and jax) ---
    _bench_keras.run(out, quick)

    print(file=out)
    _bench_cuda.run(out, quick)       # prints why it is skipped without a usable GPU
    return summary
