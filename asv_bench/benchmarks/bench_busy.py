"""The busy-machine ratio: a call with fastact's default threads against the
same call on one thread, while other processes keep every CPU busy (two
CPU-bound processes per CPU, each stopping by itself after a fixed time).
The target is at most 1.3: threads must not cost much more than they save.
Older commits ran a full team whatever the machine did, and show 10-100x.

Self-contained (only fastact's public API), so that it runs on every commit
of the history."""
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import fastact

from .common import make

SHAPES = {"1x16x8x8": (1, 16, 8, 8), "8x64x28x28": (8, 64, 28, 28),
          "8x64x56x56": (8, 64, 56, 56)}
LOAD_PER_CPU = 2
LOAD_SECONDS = 120          # each load process leaves by itself after this

_SPIN = """\
import sys, time
end = time.monotonic() + {seconds}
sys.stdout.write("r")
sys.stdout.flush()
while time.monotonic() < end:
    pass
"""


def _cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _batch(fn, seconds):
    """Per-call seconds of fn called for `seconds`: a batch spans many
    scheduler time slices, so that it measures fn, not one preemption."""
    calls = 0
    t0 = now = time.perf_counter()
    while now - t0 < seconds:
        fn()
        calls += 1
        now = time.perf_counter()
    return (now - t0) / calls


class BusyMachineRatio:
    """Default threads / one thread, time per call, on a busy machine: the
    median over rounds of adjacent batches (1.0: the threads cost nothing)."""
    params = [list(SHAPES), ["forward", "backward"]]
    param_names = ["shape", "direction"]
    unit = "default time / one-thread time"
    timeout = 300
    rounds = 7
    batch_seconds = 0.1

    def setup(self, shape, direction):
        x, g, slopes = make(SHAPES[shape], "float32", "per_channel")
        y = np.empty_like(x)
        if direction == "forward":
            self.fn = lambda: fastact.prelu(x, slopes, out=y)
        else:
            self.fn = lambda: fastact.prelu_backward(g, x, slopes, out=y)
        self.procs = []
        try:
            for _ in range(LOAD_PER_CPU * _cpus()):
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-c", _SPIN.format(seconds=LOAD_SECONDS)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE))
            for p in self.procs:
                p.stdout.read(1)      # spinning
        except BaseException:
            self.teardown(shape, direction)
            raise

    def teardown(self, *params):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            p.wait()
            p.stdout.close()
        self.procs = []
        fastact.set_num_threads(None)

    def track_default_vs_one_thread(self, shape, direction):
        ratios = []
        for r in range(self.rounds):
            times = {}
            for threads in ((None, 1) if r % 2 == 0 else (1, None)):
                fastact.set_num_threads(threads)
                self.fn()
                times[threads] = _batch(self.fn, self.batch_seconds)
            ratios.append(times[None] / times[1])
        fastact.set_num_threads(None)
        return statistics.median(ratios)
