"""fastact and torch in one process: one OpenMP runtime, whichever is imported
first, and fastact's thread count follows torch.set_num_threads until
fastact.set_num_threads is called."""
import json
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("fastact.torch")

import fastact  # noqa: E402
from fastact import _cpu  # noqa: E402


def _teams():
    s = _cpu.thread_stats()
    return s["team_calls"] + s["backoff_serial_calls"]


pytestmark = pytest.mark.skipif(not fastact.config()["openmp"],
                                reason="this fastact was built without OpenMP")

# Run in a fresh process per import order: which OpenMP runtimes are mapped,
# and the thread counts and team calls fastact reports around torch's
# setting.  A team call is a call that ran on more than one thread (the
# back-off may run such a call serially instead: it is counted too).
_SCRIPT = r"""
import json, sys
first, second = sys.argv[1:3]
__import__(first)
__import__(second)
import numpy as np
import torch
import fastact
from fastact import _cpu
import fastact.torch as ft

def teams():
    s = _cpu.thread_stats()
    return s["team_calls"] + s["backoff_serial_calls"]

def big_calls():
    # well past the serial threshold: a team call when more than one thread is allowed
    x = torch.randn(4, 32, 64, 64, requires_grad=True)
    w = torch.full((32,), 0.25, requires_grad=True)
    before = teams()
    ft.prelu(x, w).sum().backward()                 # forward and backward through torch
    fastact.prelu(np.ones((4, 32, 64, 64), np.float32), 0.25)   # the numpy API
    return teams() - before

maps = open("/proc/self/maps").read().splitlines()
omp = sorted({line.split()[-1] for line in maps
              if "libgomp" in line or "libiomp" in line or "libomp" in line})
out = {"runtimes": omp}
torch.set_num_threads(2)
out["two"] = [fastact.get_num_threads(), big_calls()]
torch.set_num_threads(1)
out["one"] = [fastact.get_num_threads(), big_calls()]
fastact.set_num_threads(2)
out["fastact_two"] = [fastact.get_num_threads(), big_calls()]
fastact.set_num_threads(None)
out["follow_again"] = [fastact.get_num_threads(), big_calls()]
print(json.dumps(out))
"""


@pytest.mark.parametrize("order", [("torch", "fastact"), ("fastact", "torch")])
def test_one_openmp_runtime_and_torch_thread_count(order):
    run = subprocess.run([sys.executable, "-c", _SCRIPT, *order], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(got["runtimes"]) == 1, got["runtimes"]       # one libgomp, shared
    cpus = min(2, fastact.config()["cpu_limit"])
    # torch.set_num_threads(2): fastact may use 2 threads (capped by the CPUs)
    assert got["two"][0] == cpus
    if cpus > 1:
        assert got["two"][1] > 0
    # torch.set_num_threads(1): fastact runs every call on one thread
    assert got["one"] == [1, 0]
    # fastact.set_num_threads wins over OpenMP's setting ...
    assert got["fastact_two"][0] == 2 and got["fastact_two"][1] > 0
    # ... until it is given None: fastact follows torch's 1 again
    assert got["follow_again"] == [1, 0]


def test_a_new_thread_follows_torch_from_its_first_call():
    """OpenMP's thread count is a per-thread setting: torch applies its own to
    a thread the first time it works there.  fastact.torch's calls do that
    too, so a thread whose first call is fastact's still follows torch."""
    import threading

    import torch

    import fastact.torch as ft

    seen = {}
    x, w = torch.randn(4, 32, 64, 64), torch.full((32,), 0.25)     # made here: torch
    x2 = x.clone()                                                  # runs nothing there

    def first_calls():
        seen["default"] = fastact.get_num_threads()     # OpenMP's default there
        before = _teams()
        ft.leaky_relu(x2, 0.1, inplace=True)
        ft.prelu(x, w)
        seen["teams"] = _teams() - before
        seen["after"] = fastact.get_num_threads()

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t = threading.Thread(target=first_calls)
        t.start()
        t.join(60)
    finally:
        torch.set_num_threads(saved)
    if seen["default"] == 1:
        pytest.skip("OpenMP's default is one thread here: nothing to follow")
    assert seen["teams"] == 0 and seen["after"] == 1, seen
