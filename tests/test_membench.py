"""The benchmark's memory ceilings (fastact._membench): their results, their
checks, and that they run on _cpu's runtime (thread policy and ISA), not on a
copy of it."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastact
from fastact import _cpu, _membench

# 2 MiB of float32: a team call whenever more than one thread is allowed
BIG = 1 << 19


@pytest.mark.parametrize("n", [0, 1, 17, 1000, 3 * 16384 + 5, BIG])
@pytest.mark.parametrize("streaming", [False, True])
def test_ceilings_compute_what_they_say(rng, n, streaming):
    # a 4-byte offset: the streamed stores start mid-line
    a = np.empty(n + 1, np.float32)[1:]
    a[...] = rng.standard_normal(n)
    b = rng.standard_normal(n).astype(np.float32)
    z = np.empty(n + 1, np.float32)[1:]
    _membench.ceiling_copy(a, z, streaming)
    np.testing.assert_array_equal(z, a)
    _membench.ceiling_add(a, b, z, streaming)
    np.testing.assert_array_equal(z, a + b)
    expected = a * np.float32(0.5)
    _membench.ceiling_scale_inplace(a, 0.5)
    np.testing.assert_array_equal(a, expected)


def test_ceilings_check_their_arguments():
    x = np.ones(8, np.float32)
    with pytest.raises(ValueError, match="src must be a C-contiguous float32"):
        _membench.ceiling_copy(x.astype(np.float64), x, False)
    with pytest.raises(ValueError, match="dst must be writeable, as large as src, and separate"):
        _membench.ceiling_copy(x, x, False)
    with pytest.raises(ValueError, match="z must be writeable"):
        _membench.ceiling_add(x, x[::-1].copy(), x[:4], False)
    x.flags.writeable = False
    with pytest.raises(ValueError, match="x is read-only"):
        _membench.ceiling_scale_inplace(x, 1.0)


def test_ceilings_follow_the_thread_settings_of_cpu():
    if not _cpu.config()["openmp"] or _cpu.config()["cpu_limit"] < 2:
        pytest.skip("needs an OpenMP build and 2 CPUs")
    x, z = np.ones(BIG, np.float32), np.empty(BIG, np.float32)
    backoff = _cpu.get_thread_backoff()
    _cpu.set_thread_backoff(False)
    try:
        for threads, team_calls in ((2, 1), (1, 0)):
            fastact.set_num_threads(threads)
            before = _cpu.thread_stats()["team_calls"]
            _membench.ceiling_copy(x, z, False)
            assert _cpu.thread_stats()["team_calls"] - before == team_calls
    finally:
        fastact.set_num_threads(None)
        _cpu.set_thread_backoff(backoff)


def test_the_runtime_capsule_is_cpus():
    assert type(_cpu._runtime).__name__ == "PyCapsule"
    assert "fastact._cpu._runtime" in repr(_cpu._runtime)


def test_fastact_isa_is_read_by_the_c_runtime():
    """The C runtime reads FASTACT_ISA (blanks and case aside) at its first
    use, here the import of _cpu that _membench's import makes; Python
    reports that choice."""
    code = ("from fastact import _membench; import numpy as np;"
            "x = np.ones(100, np.float32); _membench.ceiling_copy(x, np.empty_like(x), True);"
            "import fastact; print(fastact.config()['isa'])")
    env = dict(os.environ, FASTACT_ISA=" Baseline ")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "baseline", r.stderr
