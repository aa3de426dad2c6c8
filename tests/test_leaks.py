"""No leaks: every public entry point, on every kind of valid call and of bad
input, holds no more memory after many calls than after a warm-up.

A short version of tools/leak_check.py (which runs the same cases 10**5
times each and prints the table): each case is called CALLS times after
WARMUP calls; the memory tracemalloc traces (Python objects and numpy array
data) may not grow by more than BOUND bytes (a leaked object per call, 16
bytes at the very least, would grow it by CALLS * 16), and no argument's
reference count may grow.
"""
import importlib.util
import pathlib
import tracemalloc

import pytest

from fastact import _registry

CALLS = 1000
WARMUP = 300
BOUND = 12 * 1024

TOOL = pathlib.Path(__file__).resolve().parent.parent / "tools" / "leak_check.py"


def _leak_check():
    spec = importlib.util.spec_from_file_location("fastact_leak_check", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_no_entry_point_leaks():
    tool = _leak_check()
    cases = tool.cases(seed=1)       # registers the custom activations it calls
    failures = []
    try:
        tracemalloc.start()
        for case in cases:
            done, traced, _rss, refs, _seconds = tool.measure(case, CALLS, WARMUP)
            assert done == CALLS
            if traced > BOUND or refs > 0:
                failures.append(f"{case.name}: tracemalloc +{traced} B, refs +{refs}")
    finally:
        tracemalloc.stop()
        for name in tool.REGISTERED:
            _registry._unregister(name)
    assert len(cases) > 200
    assert not failures, (f"{len(failures)} of {len(cases)} cases grew over {CALLS} calls: "
                          + "; ".join(failures))
