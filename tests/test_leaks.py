"""No leaks: every public entry point, on every kind of valid call and of bad
input, holds no more memory after many calls than after a warm-up.

A short version of tools/leak_check.py (which runs the same cases 10**5
times each and prints the table): each case is called WARMUP times, then
twice CALLS times, measured each time.  A leak grows the memory tracemalloc
traces (Python objects and numpy array data) in both runs (a leaked object
per call, 16 bytes at the very least, by CALLS * 16 bytes), where a one-off
allocation (a cache filling up) grows it in one: a case fails when both runs
grow by more than BOUND bytes, or an argument's reference count grows in
both.
"""
import importlib.util
import pathlib
import tracemalloc

import pytest

from fastact import _registry

CALLS = 300
WARMUP = 200
BOUND = 2048

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
            runs = [tool.measure(case, CALLS, warmup) for warmup in (WARMUP, 0)]
            traced = [run[1] for run in runs]
            refs = [run[3] for run in runs]
            if min(traced) > BOUND or min(refs) > 0:
                failures.append(f"{case.name}: tracemalloc +{traced[0]} B then +{traced[1]} B, "
                                f"refs +{refs[0]} then +{refs[1]}")
    finally:
        tracemalloc.stop()
        for name in tool.REGISTERED:
            _registry._unregister(name)
    assert len(cases) > 200
    assert not failures, (f"{len(failures)} of {len(cases)} cases grew in two runs of {CALLS} "
                          f"calls: "
                          + "; ".join(failures))
