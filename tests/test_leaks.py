"""No leaks: every public entry point, on every kind of valid call and of bad
input, holds no more memory after many calls than after a warm-up.

A short version of tools/leak_check.py (which runs the same cases 10**5
times each and prints the table): each case is called WARMUP times, then
three times CALLS times, measured each time.  A leak grows the memory
tracemalloc traces (Python objects and numpy array data) in every run (a
leaked object per call, 16 bytes at the very least, by CALLS * 16 bytes),
where memory that settles grows it in the first runs only (a cache filling
up; an error path's strings, retained for up to a few thousand calls
before the count levels off): a case fails when all three runs grow by more
than BOUND bytes, or an argument's reference count grows in all three.
"""
import gc
import importlib.util
import pathlib
import tracemalloc

import pytest

from fastact import _registry

CALLS = 1000
WARMUP = 200
# half of the least a leak adds (a 16-byte object per call): above the
# settling memory's noise, which does not scale with the calls (Hardtanh's
# forward on an int array grew 2.4-2.9 KB in each of three runs of 300
# calls once, while still settling, and stays under 3 KB per 1000 calls
# after its first 1000)
BOUND = CALLS * 16 // 2

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
        tool.freeze_heap()
        tracemalloc.start()
        for case in cases:
            runs = [tool.measure(case, CALLS, warmup) for warmup in (WARMUP, 0, 0)]
            traced = [run[1] for run in runs]
            refs = [run[3] for run in runs]
            if min(traced) > BOUND or min(refs) > 0:
                failures.append(f"{case.name}: tracemalloc +{traced} B, refs +{refs}")
    finally:
        tracemalloc.stop()
        gc.unfreeze()
        for name in tool.REGISTERED:
            _registry._unregister(name)
    assert len(cases) > 200
    assert not failures, (f"{len(failures)} of {len(cases)} cases grew in three runs of {CALLS} "
                          f"calls: "
                          + "; ".join(failures))
