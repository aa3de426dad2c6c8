"""The busy-machine section of `python -m fastact bench --busy`.

Other processes keep every CPU busy (LOAD_PER_CPU CPU-bound processes per
CPU this process may use, each stopping by itself after a fixed time), and
each call is timed with fastact's default threads and on one thread, in
batches interleaved round by round, so that both see the same machine.  The
figure is the busy ratio: default time / one-thread time, median over the
rounds (with the range).  The target is at most BUSY_TARGET: threads must
never cost much more than they can save.  A third column shows what a team
that always runs costs (fastact before it backed off: _cpu.set_thread_backoff).

The same comparison on the machine as it is (no load of ours) shows what the
threads gain when they can run.
"""
import random
import statistics
import subprocess
import sys
import time
from functools import partial

import numpy as np

from . import _cpu
from ._api import get_num_threads, prelu, prelu_backward, set_num_threads

SHAPES = [("tiny", (1, 16, 8, 8)), ("in cache", (8, 64, 28, 28)),
          ("past the cache", (8, 64, 56, 56))]
QUICK_SHAPES = [("tiny", (1, 16, 8, 8)), ("in cache", (8, 64, 28, 28))]
LOAD_PER_CPU = 2
BUSY_TARGET = 1.3

_SPIN = """\
import sys, time
end = time.monotonic() + {seconds}
sys.stdout.write("r")
sys.stdout.flush()
while time.monotonic() < end:
    pass
"""


class CpuLoad:
    """`with CpuLoad(n, seconds):` n CPU-bound processes (a Python spin
    loop), each leaving by itself after `seconds`; those still running at
    the end of the block are killed."""

    def __init__(self, nprocs, seconds):
        self.nprocs, self.seconds = nprocs, seconds
        self.procs = []

    def __enter__(self):
        try:
            for _ in range(self.nprocs):
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-c", _SPIN.format(seconds=float(self.seconds))],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE))
            for p in self.procs:          # each one is spinning now
                p.stdout.read(1)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            p.wait()
            p.stdout.close()
        self.procs = []


def runnable_tasks():
    """Tasks running or ready to run on the whole machine now (Linux's
    /proc/loadavg, counting the reader), or None."""
    try:
        with open("/proc/loadavg") as f:
            return int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None


def _modes(threads):
    """(label, function that sets the mode) for each way of running."""
    def default():
        _cpu.set_thread_backoff(True)
        set_num_threads(threads)

    def one():
        _cpu.set_thread_backoff(True)
        set_num_threads(1)

    def always_team():
        _cpu.set_thread_backoff(False)
        set_num_threads(threads)

    return [("default", default), ("1 thread", one), ("team always", always_team)]


def _batch(fn, seconds):
    """Per-call seconds of fn called over and over for `seconds` (whole calls):
    on a busy machine a batch must span many scheduler time slices, or its
    time says more about when it was preempted than about fn."""
    calls = 0
    t0 = now = time.perf_counter()
    while now - t0 < seconds:
        fn()
        calls += 1
        now = time.perf_counter()
    return (now - t0) / calls


def compare(fn, modes, rounds, batch_seconds, seed=0):
    """Per-call seconds of fn in each mode, one batch of each mode per round
    (in an order shuffled each round); {label: [seconds per round]}."""
    for _, enter in modes:
        enter()
        fn()
    times = {label: [] for label, _ in modes}
    order = list(modes)
    shuffle = random.Random(seed).shuffle
    for _ in range(rounds):
        shuffle(order)
        for label, enter in order:
            enter()
            times[label].append(_batch(fn, batch_seconds))
    return times


def _ratio(times, label, ref="1 thread"):
    r = [a / b for a, b in zip(times[label], times[ref])]
    return statistics.median(r), min(r), max(r)


def measure(shapes, threads, rounds, batch_seconds, out, title):
    """The table for one condition of the machine; returns
    {(shape name, direction): {label: (median, min, max) of ratio to one thread}}."""
    rng = np.random.default_rng(12345)
    modes = _modes(threads)
    before = _cpu.thread_stats()
    tasks = []
    print(f"\n{title}", file=out)
    print(f"  {'shape':28s} {'':4s} {'1 thread':>10s}  {'default / 1 thread':>22s}"
          f"  {'team always / 1 thread':>24s}", file=out)
    results = {}
    try:
        for name, shape in shapes:
            x = rng.standard_normal(shape, dtype=np.float32)
            g = rng.standard_normal(shape, dtype=np.float32)
            a = rng.uniform(0.05, 0.5, shape[1]).astype(np.float32)
            y, gi = np.empty_like(x), np.empty_like(x)
            for direction, fn in (("fwd", partial(prelu, x, a, out=y)),
                                  ("bwd", partial(prelu_backward, g, x, a, out=gi))):
                tasks.append(runnable_tasks())
                times = compare(fn, modes, rounds, batch_seconds)
                tasks.append(runnable_tasks())
                row = {label: _ratio(times, label) for label, _ in modes}
                results[(name, direction)] = row
                d, t = row["default"], row["team always"]
                print(f"  {name + ' ' + str(shape):28s} {direction:4s} "
                      f"{statistics.median(times['1 thread']) * 1e3:7.3f} ms"
                      f"  {d[0]:6.2f} [{d[1]:5.2f}, {d[2]:5.2f}]"
                      f"      {t[0]:8.2f} [{t[1]:6.2f}, {t[2]:6.2f}]", file=out)
    finally:
        _cpu.set_thread_backoff(True)
        set_num_threads(None)
    after = _cpu.thread_stats()
    seen = [n for n in tasks if n is not None]
    print(f"  fastact's team calls {after['team_calls'] - before['team_calls']} "
          "(of which cost more than one thread: "
          f"{after['bad_team_calls'] - before['bad_team_calls']}), "
          f"calls its back-off ran on one thread: "
          f"{after['backoff_serial_calls'] - before['backoff_serial_calls']}"
          + (f"; runnable tasks on the machine: {min(seen)}-{max(seen)}" if seen else ""),
          file=out)
    return results


def run(threads=None, quick=False, out=sys.stdout):
    """Idle, then busy: the ratios of default threads to one thread."""
    cpus = _cpu.config()["cpu_limit"]
    if threads is not None:
        set_num_threads(threads)
    n = get_num_threads()
    set_num_threads(None)
    shapes = QUICK_SHAPES if quick else SHAPES
    rounds, batch_seconds = (5, 0.03) if quick else (15, 0.1)
    print(f"\nbusy machine: fastact with {n} threads against one thread (float32, PReLU "
          f"out=; ratio = time / one-thread time, median [min, max] over {rounds} rounds)",
          file=out)
    if n == 1:
        print("  one thread is the default here: nothing to compare", file=out)
        return {}
    idle = measure(shapes, threads, rounds, batch_seconds, out,
                   "the machine as it is (no load of ours)")
    nprocs = LOAD_PER_CPU * cpus
    # the whole section runs in well under this; the rest are killed at once
    seconds = 60 + 40 * len(shapes)
    with CpuLoad(nprocs, seconds):
        busy = measure(shapes, threads, rounds, batch_seconds, out,
                       f"busy: {nprocs} CPU-bound processes ({LOAD_PER_CPU} per CPU)")
    worst = max(busy.values(), key=lambda row: row["default"][0])["default"][0]
    verdict = "meets" if worst <= BUSY_TARGET else "MISSES"
    print(f"  worst busy median: {worst:.2f} ({verdict} the target of {BUSY_TARGET})", file=out)
    return {"idle": idle, "busy": busy}
