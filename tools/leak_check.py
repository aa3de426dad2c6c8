"""Memory-leak check of fastact's public entry points, error paths included.

Every callable in ``fastact.__all__`` (functions, modules' constructors,
forward, backward, function and gradient, get/register, the configuration
calls) is called many times with small arrays, once per case: each kind of
valid call (out of place, ``out=``, in place, shared and broadcast slopes,
other dtypes, non-contiguous input, a call large enough to run a thread
team) and each kind of bad input (the call raises, and the case checks that
it raised the expected exception).  After a warm-up, for ``--calls`` calls,
it measures:

- tracemalloc: the growth of the memory Python's and numpy's allocators hold
  (objects, array data);
- RSS: the growth of the resident set (catches C-level leaks tracemalloc
  does not see), from /proc/self/statm (Linux; "n/a" elsewhere);
- refs: the growth of the reference counts of the case's arguments (a
  leaked reference to an input, which no memory figure shows when the same
  input is passed every time).

Both memory growths are given in bytes per 10**5 calls.  A case is flagged
LEAK when tracemalloc grows by more than ``--max-traced`` bytes per 10**5
calls, RSS by more than ``--max-rss``, or a reference count grows at all;
the exit status is 1 if any case is flagged.

    python tools/leak_check.py                 # 10**5 calls per case
    python tools/leak_check.py --calls 2000    # quick
    python tools/leak_check.py --only prelu    # cases whose name contains 'prelu'

tests/test_leaks.py runs a short version of the same cases.
"""
import argparse
import gc
import io
import os
import sys
import time
import tracemalloc

import numpy as np

import fastact

#: the custom activations cases() registers (tests remove them afterwards)
REGISTERED = ("leak_check_cube", "leak_check_bad")
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes():
    """The resident set size, or None where /proc is not there."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except OSError:
        return None


class Case:
    """One entry point called one way: ``fn(*args, **kwargs)``, expected to
    return, or to raise ``raises`` (an exception type)."""

    def __init__(self, name, fn, *args, raises=None, **kwargs):
        self.name, self.fn, self.args, self.kwargs, self.raises = name, fn, args, kwargs, raises

    def call(self):
        fn, args, kwargs = self.fn, self.args, self.kwargs
        if self.raises is None:
            fn(*args, **kwargs)
            return
        try:
            fn(*args, **kwargs)
        except self.raises:
            return
        raise AssertionError(f"{self.name}: expected {self.raises.__name__}, nothing raised")

    def watched(self):
        """The objects whose reference counts must not grow: the arguments
        that are not shared immortal constants (None, small ints, ...)."""
        objs = [self.fn] + list(self.args) + list(self.kwargs.values())
        return [o for o in objs if not isinstance(o, (bool, int, float, str, type(None)))]


def _bf16():
    try:
        import ml_dtypes
    except ImportError:
        return None
    return np.dtype(ml_dtypes.bfloat16)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def cases(seed=0):
    """Every case: (valid calls, then bad input) per entry point."""
    rng = np.random.default_rng(seed)
    f32, f64, f16, bf16 = np.float32, np.float64, np.float16, _bf16()
    shape = (2, 3, 4, 5)

    def arr(shape=shape, dtype=f32):
        return rng.standard_normal(shape).astype(dtype)

    x, g = arr(), arr()
    s = rng.uniform(0.1, 2.0, 3).astype(f32)
    out = np.empty_like(x)
    xin, gin = arr(), arr()                      # overwritten by in-place cases
    ro = arr()
    ro.flags.writeable = False
    xnhwc = arr((2, 4, 5, 3))
    s_bcast = rng.uniform(0.1, 2.0, (1, 1, 3)).astype(f32)   # NHWC, shared over H, W
    x64, g64 = arr(dtype=f64), arr(dtype=f64)
    s64 = s.astype(f64)
    x16, g16 = arr(dtype=f16), arr(dtype=f16)
    xt = arr((5, 4, 3, 2)).transpose(3, 2, 1, 0)            # non-contiguous (2, 3, 4, 5)
    big = arr((4, 16, 64, 64))                              # 1 MiB: a thread team
    gbig = arr(big.shape)
    sbig = rng.uniform(0.1, 2.0, 16).astype(f32)
    xint = np.ones(shape, np.int32)
    buf = arr((130,))
    xo, outo = buf[:120].reshape(shape), buf[3:123].reshape(shape)  # partial overlap
    devnull = open(os.devnull, "w")  # noqa: SIM115 - kept open for the process's life

    c = []
    add = c.append

    # --- prelu and prelu_backward ---
    P, PB = fastact.prelu, fastact.prelu_backward
    add(Case("prelu", P, x, s))
    add(Case("prelu shared number", P, x, 0.3))
    add(Case("prelu out=", P, x, s, out=out))
    add(Case("prelu inplace", P, xin, s, inplace=True))
    add(Case("prelu NHWC broadcast slopes", P, xnhwc, s_bcast, channel_axis=-1))
    add(Case("prelu float64", P, x64, s64))
    add(Case("prelu float16", P, x16, s))
    if bf16 is not None:
        add(Case("prelu bfloat16", P, arr(dtype=bf16), s))
    add(Case("prelu non-contiguous", P, xt, s))
    add(Case("prelu list input", P, [[-1.0, 2.0], [3.0, -4.0]], [0.5, 0.25]))
    add(Case("prelu large (thread team)", P, big, sbig))
    add(Case("prelu ERR int dtype", P, xint, s, raises=TypeError))
    add(Case("prelu ERR slope count", P, x, s[:2], raises=ValueError))
    add(Case("prelu ERR slopes NaN", P, x, np.array([0.5, np.nan, 0.5], f32), raises=ValueError))
    add(Case("prelu ERR slopes str", P, x, "0.5", raises=TypeError))
    add(Case("prelu ERR out shape", P, x, s, out=np.empty((2, 3, 4, 6), f32), raises=ValueError))
    add(Case("prelu ERR out dtype", P, x, s, out=np.empty(shape, f64), raises=ValueError))
    add(Case("prelu ERR out list", P, x, s, out=[[0.0]], raises=TypeError))
    add(Case("prelu ERR out read-only", P, x, s, out=ro, raises=ValueError))
    add(Case("prelu ERR inplace read-only", P, ro, s, inplace=True, raises=ValueError))
    add(Case("prelu ERR out and inplace", P, xin, s, out=out, inplace=True, raises=ValueError))
    add(Case("prelu ERR partial overlap", P, xo, s, out=outo, raises=ValueError))
    add(Case("prelu ERR stream", P, x, s, stream=1, raises=ValueError))
    add(Case("prelu ERR channel_axis", P, x, s, channel_axis=2, raises=ValueError))
    add(Case("prelu ERR per-channel on 1-D", P, x.ravel()[:7], s[:2], raises=ValueError))
    add(Case("prelu ERR inplace list", P, [[1.0]], 0.5, inplace=True, raises=TypeError))

    add(Case("prelu_backward", PB, g, x, s))
    add(Case("prelu_backward shared number", PB, g, x, 0.3))
    add(Case("prelu_backward out=", PB, g, x, s, out=out))
    add(Case("prelu_backward inplace", PB, gin, x, s, inplace=True))
    add(Case("prelu_backward NHWC broadcast", PB, arr(xnhwc.shape), xnhwc, s_bcast,
             channel_axis=-1))
    add(Case("prelu_backward float64", PB, g64, x64, s64))
    add(Case("prelu_backward float16", PB, g16, x16, s))
    add(Case("prelu_backward non-contiguous", PB, g, xt, s))
    add(Case("prelu_backward large (thread team)", PB, gbig, big, sbig))
    add(Case("prelu_backward ERR grad dtype", PB, g64, x, s, raises=ValueError))
    add(Case("prelu_backward ERR grad shape", PB, g[:, :, :2], x, s, raises=ValueError))
    add(Case("prelu_backward ERR grad int", PB, xint, x, s, raises=TypeError))
    add(Case("prelu_backward ERR slope count", PB, g, x, s[:2], raises=ValueError))
    add(Case("prelu_backward ERR out read-only", PB, g, x, s, out=ro, raises=ValueError))
    add(Case("prelu_backward ERR inplace read-only", PB, ro, x, s, inplace=True,
             raises=ValueError))

    # --- affine_prelu, batchnorm_scale_shift ---
    A, BN = fastact.affine_prelu, fastact.batchnorm_scale_shift
    sc, sh = rng.uniform(0.5, 2, 3).astype(f32), rng.uniform(-1, 1, 3).astype(f32)
    add(Case("affine_prelu", A, x, sc, sh, s))
    add(Case("affine_prelu out=", A, x, sc, sh, s, out=out))
    add(Case("affine_prelu inplace", A, xin, sc, sh, s, inplace=True))
    add(Case("affine_prelu float16", A, x16, sc, sh, s))
    add(Case("affine_prelu ERR scale count", A, x, sc[:2], sh, s, raises=ValueError))
    add(Case("affine_prelu ERR shift inf", A, x, sc, np.array([0, np.inf, 0], f32), s,
             raises=ValueError))
    add(Case("affine_prelu ERR int dtype", A, xint, sc, sh, s, raises=TypeError))
    mean, var = rng.standard_normal(3).astype(f32), rng.uniform(0.5, 2, 3).astype(f32)
    add(Case("batchnorm_scale_shift", BN, mean, var, 1e-5, sc, sh))
    add(Case("batchnorm_scale_shift float64", BN, mean.astype(f64), var.astype(f64)))
    add(Case("batchnorm_scale_shift ERR length", BN, mean[:2], var, raises=ValueError))
    add(Case("batchnorm_scale_shift ERR eps NaN", BN, mean, var, float("nan"),
             raises=ValueError))

    # --- the family ---
    params = {"leaky_relu": (0.2,), "relu": (0.1, 4.0, 0.5), "relu6": (),
              "thresholded_relu": (0.75,), "elu": (1.5,), "hardtanh": (-0.5, 2.0),
              "square": ()}
    bad = {"leaky_relu": (float("nan"),), "relu": (-1.0,), "thresholded_relu": (-1.0,),
           "elu": (float("inf"),), "hardtanh": (2.0, -2.0)}
    for name, p in params.items():
        F, FB = getattr(fastact, name), getattr(fastact, name + "_backward")
        add(Case(name, F, x, *p))
        add(Case(f"{name} out=", F, x, *p, out=out))
        add(Case(f"{name} inplace", F, xin, *p, inplace=True))
        add(Case(f"{name}_backward", FB, g, x, *p))
        add(Case(f"{name}_backward out=", FB, g, x, *p, out=out))
        add(Case(f"{name}_backward inplace", FB, gin, x, *p, inplace=True))
        if name in bad:
            add(Case(f"{name} ERR parameter", F, x, *bad[name], raises=ValueError))
            add(Case(f"{name}_backward ERR parameter", FB, g, x, *bad[name],
                     raises=ValueError))
        add(Case(f"{name} ERR int dtype", F, xint, *p, raises=TypeError))
        add(Case(f"{name} ERR out shape", F, x, *p, out=np.empty((3,), f32), raises=ValueError))
        add(Case(f"{name} ERR inplace read-only", F, ro, *p, inplace=True, raises=ValueError))
        add(Case(f"{name}_backward ERR grad shape", FB, g[:1], x, *p, raises=ValueError))
        add(Case(f"{name} ERR unknown keyword", F, x, bogus=1, raises=TypeError))
    add(Case("leaky_relu float16", fastact.leaky_relu, x16, 0.2))
    add(Case("elu_backward float64", fastact.elu_backward, g64, x64, 1.5))
    if bf16 is not None:
        add(Case("relu bfloat16", fastact.relu, arr(dtype=bf16)))
    add(Case("relu large (thread team)", fastact.relu, big))
    add(Case("hardtanh non-contiguous", fastact.hardtanh, xt))

    torch = _torch()
    if torch is not None:
        tx, ts = torch.from_numpy(arr()), torch.from_numpy(s.copy())
        add(Case("prelu torch tensor", P, tx, ts))
        add(Case("prelu_backward torch tensor", PB, torch.from_numpy(arr()), tx, ts))
        add(Case("leaky_relu torch tensor", fastact.leaky_relu, tx, 0.2))

    # --- modules ---
    modules = {"LeakyReLU": (0.2,), "ReLU": (0.1, 4.0, 0.5), "ReLU6": (),
               "ThresholdedReLU": (0.75,), "ELU": (1.5,), "Hardtanh": (-0.5, 2.0),
               "Square": (), "PReLU": (3,)}

    def forward_backward(m, x, g):
        m.forward(x)
        return m.backward(g)

    def forward_backward_inplace(m, x, g):
        np.copyto(x, g)        # fresh input each time (the forward overwrites it)
        m.forward(x)
        return m.backward(g)

    for name, p in modules.items():
        cls = getattr(fastact, name)
        m = cls(*p)
        add(Case(f"{name}()", cls, *p))
        add(Case(f"{name}.forward", m.forward, x))
        add(Case(f"{name}.forward out=", m.forward, x, out=out))
        add(Case(f"{name}.forward+backward", forward_backward, cls(*p), x, g))
        add(Case(f"{name}.function", m.function, x))
        add(Case(f"{name}.gradient", m.gradient, g, x))
        if name != "Square":
            add(Case(f"{name}(inplace) forward+backward", forward_backward_inplace,
                     cls(*p, inplace=True), arr(), np.abs(arr()) + 0.5))
        else:
            mi = cls(inplace=True)
            mi.forward(arr())
            add(Case("Square(inplace).backward ERR", mi.backward, g, raises=ValueError))
        add(Case(f"{name}.backward ERR before forward", cls(*p).backward, g,
                 raises=RuntimeError))
        add(Case(f"{name}.forward ERR int dtype", m.forward, xint, raises=TypeError))
    add(Case("PReLU ERR channels", fastact.PReLU, 0, raises=ValueError))
    add(Case("PReLU ERR slopes_shape and channels", fastact.PReLU, 3, slopes_shape=(1, 3),
             raises=ValueError))
    add(Case("LeakyReLU ERR NaN", fastact.LeakyReLU, float("nan"), raises=ValueError))
    add(Case("PReLU.forward ERR channels", fastact.PReLU(4).forward, x, raises=ValueError))

    # --- registry: get, available, register, custom activations ---
    def cube(x):
        return x * x * x

    def cube_grad(g, x):
        return g * 3 * x * x

    def wrong_dtype(x):
        return x.astype(np.float64)

    fastact.register("leak_check_cube", cube, cube_grad, replace=True)
    fastact.register("leak_check_bad", wrong_dtype, cube_grad, replace=True)
    cm = fastact.get("leak_check_cube")
    add(Case("get", fastact.get, "leaky_relu", negative_slope=0.3))
    add(Case("get spelling", fastact.get, "PReLU"))
    add(Case("get custom", fastact.get, "leak_check_cube"))
    add(Case("available", fastact.available))
    add(Case("register replace", fastact.register, "leak_check_cube", cube, cube_grad,
             replace=True))
    add(Case("Custom.forward", cm.forward, x))
    add(Case("Custom.forward+backward", forward_backward, fastact.get("leak_check_cube"), x, g))
    add(Case("Custom.forward out=", cm.forward, x, out=out))
    add(Case("Custom.gradient", cm.gradient, g, x))
    add(Case("get ERR unknown name", fastact.get, "lreul", raises=ValueError))
    add(Case("get ERR parameter", fastact.get, "elu", bogus=1, raises=TypeError))
    add(Case("get ERR not a str", fastact.get, 3, raises=TypeError))
    add(Case("register ERR built-in name", fastact.register, "ReLU", cube, cube_grad,
             raises=ValueError))
    add(Case("register ERR taken", fastact.register, "leak_check_cube", cube, cube_grad,
             raises=ValueError))
    add(Case("register ERR not callable", fastact.register, "leak_check_x", 3, cube_grad,
             raises=TypeError))
    add(Case("Custom.forward ERR result dtype", fastact.get("leak_check_bad").forward, x,
             raises=TypeError))
    add(Case("Custom.forward ERR int dtype", cm.forward, xint, raises=TypeError))

    # --- configuration ---
    def threads_cycle():
        fastact.set_num_threads(1)
        fastact.set_num_threads(2)
        fastact.set_num_threads(None)

    add(Case("set_num_threads 1, 2, None", threads_cycle))
    add(Case("get_num_threads", fastact.get_num_threads))
    add(Case("config", fastact.config))
    add(Case("show_config", fastact.show_config, file=devnull))
    add(Case("cuda_available", fastact.cuda_available))
    add(Case("set_num_threads ERR 0", fastact.set_num_threads, 0, raises=ValueError))
    add(Case("set_num_threads ERR str", fastact.set_num_threads, "2", raises=TypeError))
    add(Case("show_config into StringIO", lambda: fastact.show_config(file=io.StringIO())))
    return c


def _refcounts(objs):
    return [sys.getrefcount(o) for o in objs]


def freeze_heap():
    """Leave the objects alive now (the imported modules, torch's among
    them, and the cases' arrays) out of every later garbage collection
    (gc.freeze): the collections measure() makes then cost what the calls
    allocated, not what the process holds."""
    gc.collect()
    gc.freeze()


def measure(case, calls, warmup, max_seconds=None):
    """(calls made, traced growth, RSS growth or None, largest refcount
    growth, seconds): the growths over `calls` calls (fewer when
    `max_seconds` ran out first) after `warmup` calls; tracemalloc must be
    tracing."""
    call = case.call
    for _ in range(warmup):
        call()
    watched = case.watched()
    gc.collect()
    refs0 = _refcounts(watched)
    traced0, rss0 = tracemalloc.get_traced_memory()[0], rss_bytes()
    t0 = time.perf_counter()
    deadline = None if max_seconds is None else t0 + max_seconds
    done = 0
    while done < calls:
        for _ in range(min(1000, calls - done)):
            call()
        done += min(1000, calls - done)
        if deadline is not None and time.perf_counter() > deadline:
            break
    seconds = time.perf_counter() - t0
    gc.collect()
    traced1, rss1 = tracemalloc.get_traced_memory()[0], rss_bytes()
    refs = max((a - b for a, b in zip(_refcounts(watched), refs0)), default=0)
    rss = None if rss0 is None else rss1 - rss0
    return done, traced1 - traced0, rss, refs, seconds


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=100_000, help="calls per case (10**5)")
    ap.add_argument("--warmup", type=int, default=None,
                    help="calls before measuring (default: calls / 10, at least 200)")
    ap.add_argument("--only", default=None, help="only the cases whose name contains this")
    ap.add_argument("--max-traced", type=float, default=16384,
                    help="LEAK above this tracemalloc growth, bytes per 10**5 calls")
    ap.add_argument("--max-rss", type=float, default=1 << 20,
                    help="LEAK above this RSS growth, bytes per 10**5 calls")
    ap.add_argument("--case-seconds", type=float, default=None,
                    help="stop a case's measured calls after this many seconds (the "
                         "calls column says how many were made)")
    ap.add_argument("--time-limit", type=float, default=3600,
                    help="stop (exit status 2) after this many seconds in all")
    args = ap.parse_args(argv)
    warmup = args.warmup if args.warmup is not None else max(200, min(2000, args.calls // 10))
    selected = [c for c in cases() if args.only is None or args.only in c.name]
    print(f"fastact {fastact.__version__}: {len(selected)} cases, {args.calls} calls each "
          f"after {warmup} warm-up calls; growth in bytes per 10**5 calls")
    print(f"{'case':44s} {'calls':>7s} {'tracemalloc':>11s} {'RSS':>9s} {'refs':>4s} "
          f"{'us/call':>8s}")
    freeze_heap()
    tracemalloc.start()
    flagged, start = [], time.perf_counter()
    total_traced = total_rss = 0.0
    try:
        for case in selected:
            if time.perf_counter() - start > args.time_limit:
                print(f"time limit of {args.time_limit:.0f} s reached: the remaining cases "
                      f"were not run")
                return 2
            done, traced, rss, refs, seconds = measure(case, args.calls, warmup,
                                                       args.case_seconds)
            scale = 1e5 / done
            traced_n = traced * scale
            rss_n = None if rss is None else rss * scale
            leak = traced_n > args.max_traced or refs > 0 or (
                rss_n is not None and rss_n > args.max_rss)
            if leak:
                flagged.append(case.name)
            total_traced += traced_n
            total_rss += rss_n or 0
            rss_text = "n/a" if rss_n is None else f"{rss_n:.0f}"
            print(f"{case.name:44s} {done:7d} {traced_n:11.0f} {rss_text:>9s} {refs:4d} "
                  f"{1e6 * seconds / done:8.1f}{'  LEAK' if leak else ''}", flush=True)
    finally:
        tracemalloc.stop()
    print(f"{len(selected)} cases in {time.perf_counter() - start:.0f} s; summed growth per "
          f"10**5 calls of each: tracemalloc {total_traced:.0f} B, RSS {total_rss:.0f} B")
    if flagged:
        print(f"LEAK in {len(flagged)} case(s): {', '.join(flagged)}")
        return 1
    print("no leak found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
