"""Figures that hold across machines: fastact's speed as a fraction of the
memory ceiling measured in the same process, and allocations of in-place
calls.  Absolute times move with the machine; these should not."""
import statistics
import time
import tracemalloc

import numpy as np

import fastact

try:
    from fastact import _membench
except ImportError:     # fastact before the ceilings left _cpu: asv runs old commits too
    from fastact import _cpu as _membench

from .common import LARGE, THREADS, make, use_threads


def _interleaved_ratio(kernel, ceiling, rounds=7):
    """median over rounds of (ceiling time / kernel time), each round timing
    both back to back so that they see the same machine."""
    kernel()
    ceiling()
    ratios = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        kernel()
        t1 = time.perf_counter()
        ceiling()
        t2 = time.perf_counter()
        ratios.append((t2 - t1) / (t1 - t0))
    return statistics.median(ratios)


class RatioToMemoryCeiling:
    """On a 103 MB float32 array: 1.0 means as fast as the ceiling."""
    params = [THREADS]
    param_names = ["threads"]
    unit = "fraction of the ceiling"
    timeout = 300

    def setup(self, threads):
        use_threads(threads)
        self.x, self.g, self.slopes = make(LARGE, "float32", "per_channel")
        self.y = np.ones_like(self.x)
        self.z = np.ones_like(self.x)
        self.xi = self.x.copy()
        self.rmw = self.x.copy()
        self.ones = np.ones(LARGE[1], np.float32)

    def teardown(self, *params):
        fastact.set_num_threads(None)

    def track_forward_out_vs_copy(self, threads):
        # the faster of ordinary and streaming stores, as `fastact bench` does
        ceiling = _faster(lambda: _membench.ceiling_copy(self.x, self.z, False),
                          lambda: _membench.ceiling_copy(self.x, self.z, True))
        return _interleaved_ratio(lambda: fastact.prelu(self.x, self.slopes, out=self.y),
                                  ceiling)

    def track_inplace_vs_read_modify_write(self, threads):
        return _interleaved_ratio(lambda: fastact.prelu(self.xi, self.ones, inplace=True),
                                  lambda: _membench.ceiling_scale_inplace(self.rmw, 1.0))

    def track_backward_out_vs_read2_write1(self, threads):
        ceiling = _faster(lambda: _membench.ceiling_add(self.x, self.g, self.z, False),
                          lambda: _membench.ceiling_add(self.x, self.g, self.z, True))
        return _interleaved_ratio(
            lambda: fastact.prelu_backward(self.g, self.x, self.slopes, out=self.y), ceiling)


def _faster(*fns, repeat=3):
    """The function with the shortest best-of-`repeat` time."""
    def best(fn):
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)
    return min(fns, key=best)


class InPlaceAllocations:
    """Bytes allocated by an in-place call, by tracemalloc (numpy reports its
    allocations to it): 0 for the forward."""
    unit = "bytes"

    def setup(self):
        self.x, self.g, self.slopes = make((8, 64, 56, 56), "float32", "per_channel")
        fastact.prelu(self.x, self.slopes, inplace=True)     # warm up

    def track_forward_inplace_allocated_bytes(self):
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            fastact.prelu(self.x, self.slopes, inplace=True)
            return tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()

    def track_backward_inplace_allocated_bytes(self):
        """The slope gradient and its float64 sums: a few hundred bytes, not
        an array of the input's size."""
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            fastact.prelu_backward(self.g, self.x, self.slopes, inplace=True)
            return tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
