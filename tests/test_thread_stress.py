"""Stress: 16 Python threads call random ops (op, dtype, shape, out of place,
``out=`` or in place) while another thread keeps changing
``fastact.set_num_threads`` (1, 2, 3, None): every result matches the float64
oracle, and nothing deadlocks.

The run lasts FASTACT_STRESS_SECONDS (default 8) seconds.  A hang fails the
test instead of blocking it: the threads are joined with timeouts, and a
faulthandler watchdog dumps every thread's stack and ends the process if
even that does not return (a deadlock holding the GIL).

    FASTACT_STRESS_SECONDS=120 pytest -s tests/test_thread_stress.py   # a longer run
"""
import collections
import faulthandler
import os
import sys
import threading
import time

import numpy as np

import fastact
from fastact import _reference

from helpers import (
    BFLOAT16,
    assert_close_in_ulps,
    assert_grad_slopes_close,
    random_slopes,
    random_x,
    rounded_like_kernels,
)

SECONDS = float(os.environ.get("FASTACT_STRESS_SECONDS", "8"))
CALLERS = 16
# small (serial) and large (a thread team: 256 KiB or more moved) shapes
SHAPES = [(3, 5, 7), (2, 16, 8, 8), (2, 3, 1000), (4, 32, 32, 32), (2, 3, 30000), (512, 40)]
DTYPES = [np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16)] + (
    [BFLOAT16] if BFLOAT16 is not None else [])
THREAD_SETTINGS = [1, 2, None, 3, 1, 2, None]

# the family: its parameters, and how far (ulps of the dtype) a kernel may be
# from the float64 oracle rounded once (tests/test_family_api.py's ULPS)
FAMILY = {
    "leaky_relu": ({"negative_slope": 0.3}, 0),
    "relu": ({"negative_slope": 0.2, "max_value": 4.0, "threshold": 0.5}, 1),
    "relu6": ({}, 0),
    "thresholded_relu": ({"theta": 0.75}, 0),
    "elu": ({"alpha": 1.5}, 4),
    "hardtanh": ({"min_val": -0.5, "max_val": 2.0}, 0),
    "square": ({}, 0),
}
OPS = ["prelu", "prelu_backward", "affine_prelu"] + [
    n + suffix for n in FAMILY for suffix in ("", "_backward")]


def _f32(params, dtype):
    """Parameters as the kernels use them: float32 unless x is float64."""
    if dtype == np.float64:
        return dict(params)
    return {k: float(np.float32(v)) for k, v in params.items()}


def _call(fn, mode, first, *rest, **kw):
    """fn called out of place, into out= or in place on `first` (a copy):
    returns the result, checked to be the right object."""
    if mode == "new":
        return fn(first, *rest, **kw)
    if mode == "out":
        out = np.full_like(first, 7)
        got = fn(first, *rest, out=out, **kw)
        assert (got[0] if isinstance(got, tuple) else got) is out
        return got
    target = first.copy()
    got = fn(target, *rest, inplace=True, **kw)
    assert (got[0] if isinstance(got, tuple) else got) is target
    return got


def _one_call(rng, counts):
    op = OPS[rng.integers(len(OPS))]
    dtype = DTYPES[rng.integers(len(DTYPES))]
    shape = SHAPES[rng.integers(len(SHAPES))]
    mode = ("new", "out", "inplace")[rng.integers(3)]
    counts[op, mode] += 1
    try:
        _check_call(rng, op, dtype, shape, mode)
    except AssertionError as exc:
        raise AssertionError(f"{op} {mode}, {dtype.name} {shape}: {exc}") from exc


def _close(got, want64, dtype, ulps):
    """got is the oracle's float64 answer as the kernels round it (to the
    compute type, then to dtype), within `ulps`."""
    assert_close_in_ulps(got, rounded_like_kernels(want64, dtype), dtype, ulps)


def _check_call(rng, op, dtype, shape, mode):
    x = random_x(rng, shape, dtype)
    g = rng.standard_normal(shape).astype(dtype)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    x_before = x.copy()
    if op in ("prelu", "prelu_backward", "affine_prelu"):
        sdt = np.float64 if dtype == np.float64 else np.float32
        s = random_slopes(rng, shape[1], sdt)
        if op == "prelu":
            got = _call(fastact.prelu, mode, x, s)
            _close(got, _reference.prelu(x64, s), dtype, 0)
        elif op == "prelu_backward":
            gi, gs = _call(fastact.prelu_backward, mode, g, x, s)
            gi_ref, gs_ref = _reference.prelu_backward(g64, x64, s)
            _close(gi, gi_ref, dtype, 0)
            assert_grad_slopes_close(gs, gs_ref, g64, x64, sdt)
        else:
            scale = rng.uniform(0.5, 2, shape[1]).astype(sdt)
            shift = rng.uniform(-1, 1, shape[1]).astype(sdt)
            got = _call(fastact.affine_prelu, mode, x, scale, shift, s)
            want = _reference.affine_prelu(x64, scale, shift, s,
                                           rounding=None if sdt == np.float64 else sdt)
            _close(got, want, dtype, 0)
    else:
        name = op.removesuffix("_backward")
        params, op_ulps = FAMILY[name]
        p = _f32(params, dtype)
        with np.errstate(all="ignore"):
            if op == name:
                got = _call(getattr(fastact, op), mode, x, **params)
                want = getattr(_reference, op)(x64, **p)
            else:
                got = _call(getattr(fastact, op), mode, g, x, **params)
                want = getattr(_reference, op)(g64, x64, **p)
        _close(got, want, dtype, op_ulps)
    assert x.tobytes() == x_before.tobytes(), f"{op} ({mode}) wrote into its input"


def run_stress(seconds, callers=CALLERS, seed=None):
    """The stress run; returns (calls per (op, mode), thread-count changes)."""
    seed = np.random.SeedSequence().entropy if seed is None else seed
    print(f"thread stress: seed {seed}, {callers} callers, {seconds} s")
    seeds = np.random.SeedSequence(seed).spawn(callers)
    stop = threading.Event()
    errors, counts = [], [collections.Counter() for _ in range(callers)]
    changes = [0]

    def caller(i):
        rng = np.random.default_rng(seeds[i])
        try:
            while not stop.is_set():
                _one_call(rng, counts[i])
        except BaseException as exc:             # reported by the main thread
            errors.append((i, exc))
            stop.set()

    def changer():
        k = 0
        while not stop.is_set():
            fastact.set_num_threads(THREAD_SETTINGS[k % len(THREAD_SETTINGS)])
            k += 1
            changes[0] = k
            time.sleep(0.001)

    threads = [threading.Thread(target=caller, args=(i,), daemon=True) for i in range(callers)]
    threads.append(threading.Thread(target=changer, daemon=True))
    try:
        for t in threads:
            t.start()
        stop.wait(seconds)
        stop.set()
        deadline = time.monotonic() + 60
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        hung = [t.name for t in threads if t.is_alive()]
        if hung:
            faulthandler.dump_traceback(all_threads=True)
            raise AssertionError(f"{len(hung)} thread(s) still running 60 s after the stop: "
                                 f"a deadlock ({', '.join(hung)})")
    finally:
        stop.set()
        fastact.set_num_threads(None)
    if errors:
        i, exc = errors[0]
        raise AssertionError(f"{len(errors)} caller(s) failed; first (caller {i}, seed "
                             f"{seed}): {exc!r}") from exc
    total = sum(counts, collections.Counter())
    return total, changes[0]


def test_threads_and_set_num_threads_stress():
    # the last resort: a deadlock that holds the GIL blocks the joins too
    faulthandler.dump_traceback_later(SECONDS + 180, exit=True, file=sys.stderr)
    try:
        total, changes = run_stress(SECONDS)
    finally:
        faulthandler.cancel_dump_traceback_later()
    calls = sum(total.values())
    print(f"{calls} calls checked against the oracle, {changes} set_num_threads changes")
    for op in OPS:
        print(f"  {op:28s}", {m: total[op, m] for m in ("new", "out", "inplace")})
    assert calls >= CALLERS, calls
    assert changes > 0


if __name__ == "__main__":      # python tests/test_thread_stress.py [seconds]
    sys.path.insert(0, os.path.dirname(__file__))
    SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else SECONDS
    test_threads_and_set_num_threads_stress()
