"""Threads: determinism across thread counts, fork safety, concurrent callers,
the thread-count policy (set_num_threads, OMP_NUM_THREADS, threadpoolctl), and
the back-off to serial calls on a busy machine (results unchanged).

Every fork test runs in a subprocess of its own (in a new session, so that a
hung grandchild can be killed with the rest): a child stuck in libgomp fails
the test with a message instead of hanging pytest.
"""
import os
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import fastact
from fastact import _cpu
from fastact._bench_busy import LOAD_PER_CPU, CpuLoad

from helpers import (
    DTYPES,
    assert_grad_slopes_close,
    assert_prelu_backward,
    assert_prelu_forward,
    expected_backward,
    expected_forward,
    poisoned_like,
    random_slopes,
    random_x,
)

# 2 MiB of float32: far above the 2**18-byte serial threshold, so a call of
# this size runs on a thread team whenever more than one thread is allowed.
BIG = (8, 64, 32, 32)
SUBPROCESS_TIMEOUT = 60

# A serial build (no OpenMP, or FASTACT_NO_OPENMP=1) has one thread whatever
# is asked: the thread-count and team tests do not apply to it.
needs_openmp = pytest.mark.skipif(not fastact.config()["openmp"],
                                  reason="serial build: no OpenMP thread team")


@pytest.fixture
def default_threads():
    """Follow OpenMP's setting during the test and again after it."""
    fastact.set_num_threads(None)
    try:
        yield fastact.get_num_threads()
    finally:
        fastact.set_num_threads(None)


def _bits(a):
    a = np.ascontiguousarray(a)
    return a.dtype.str, a.shape, a.tobytes()


# --- 1. results do not depend on the thread count ------------------------------

# per-channel: planes (inner >= 64), tiles (inner 1), planes of several
# segments (inner > 16384); shared: one slope over a large array
DETERMINISM_CASES = {
    "per_channel_planes": (BIG, True),
    "per_channel_tiles": ((4096, 48), True),
    "per_channel_long_planes": ((3, 4, 70001), True),
    "shared_nchw": (BIG, False),
    "shared_flat": ((600001,), False),
}


@needs_openmp
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(DETERMINISM_CASES))
def test_results_bitwise_identical_across_thread_counts(rng, case, dtype):
    shape, per_channel = DETERMINISM_CASES[case]
    x = random_x(rng, shape, dtype)
    g = rng.standard_normal(shape).astype(dtype)
    slopes = random_slopes(rng, shape[1], dtype) if per_channel else float(rng.uniform(-3, 3))
    y_ref = expected_forward(x, slopes)
    gi_ref, gs_ref = expected_backward(g, x, slopes)

    results = {}
    try:
        for n in (1, 2, 3):
            fastact.set_num_threads(n)
            assert fastact.get_num_threads() == n
            y = fastact.prelu(x, slopes)
            gi, gs = fastact.prelu_backward(g, x, slopes)
            np.testing.assert_array_equal(y, y_ref)
            np.testing.assert_array_equal(gi, gi_ref)
            assert gs.shape == np.shape(slopes) and gs.dtype == dtype
            assert_grad_slopes_close(gs, gs_ref, g, x, dtype)
            results[n] = (_bits(y), _bits(gi), _bits(gs))
    finally:
        fastact.set_num_threads(None)

    for n in (2, 3):
        assert results[n][0] == results[1][0], f"forward differs with {n} threads vs 1"
        assert results[n][1] == results[1][1], f"grad_input differs with {n} threads vs 1"
        assert results[n][2] == results[1][2], (
            f"grad_slopes not bitwise identical with {n} threads vs 1: "
            f"{np.frombuffer(results[n][2][2], dtype)} vs {np.frombuffer(results[1][2][2], dtype)}")


# --- 2. fork ------------------------------------------------------------------

# Shared by every subprocess script: data, a plain-numpy oracle computed in the
# process itself, and helpers that turn a hang or a failure into an exit code.
PRELUDE = r'''
import os, sys, time, traceback
import numpy as np
import fastact

BIG = (8, 64, 32, 32)

def os_threads():
    """Threads of this process (None where /proc is missing)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None

def make(seed, shape=BIG, dtype=np.float32, shared=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    x.reshape(-1)[::97] = 0.0
    x.reshape(-1)[1::101] = -0.0
    g = rng.standard_normal(shape).astype(dtype)
    if shared:
        s = float(rng.uniform(-3, 3))
    else:
        s = rng.uniform(-3, 3, shape[1]).astype(dtype)
    return x, g, s

def _bcast(x, s):
    s = np.asarray(s, dtype=x.dtype)
    return s.reshape((1, -1) + (1,) * (x.ndim - 2)) if s.ndim == 1 else s

def ref_forward(x, s):
    # slope * x in x's dtype: one correctly rounded product, as fastact does
    return np.where(x > 0, x, _bcast(x, s) * x)

def ref_backward(g, x, s):
    gi = np.where(x > 0, g, _bcast(x, s) * g)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    terms = np.where(x64 > 0, 0.0, x64 * g64)
    if np.ndim(s) == 1:
        axes = (0,) + tuple(range(2, x.ndim))
        return gi, terms.sum(axis=axes), np.abs(terms).sum(axis=axes)
    return gi, terms.sum(), np.abs(terms).sum()

def check_big(seed, shape=BIG, dtype=np.float32, shared=False):
    """A large forward (new, out=, inplace) and backward, checked against numpy."""
    x, g, s = make(seed, shape, dtype, shared)
    want = ref_forward(x, s)
    y = fastact.prelu(x, s)
    assert y.dtype == x.dtype and np.array_equal(y, want), "forward differs from numpy"
    out = np.full_like(x, 7.0)
    assert fastact.prelu(x, s, out=out) is out and np.array_equal(out, want), "forward out= differs"
    gi, gs = fastact.prelu_backward(g, x, s)
    gi_want, gs_want, scale = ref_backward(g, x, s)
    assert np.array_equal(gi, gi_want), "grad_input differs from numpy"
    assert gs.shape == np.shape(s) and gs.dtype == x.dtype
    tol = 64 * np.finfo(np.float64).eps * scale + np.finfo(x.dtype).eps * np.abs(gs_want)
    err = np.abs(gs.astype(np.float64) - gs_want)
    assert np.all(err <= tol), f"grad_slopes off by {err.max()} (tol {np.min(tol)})"
    xc = x.copy()
    assert fastact.prelu(xc, s, inplace=True) is xc and np.array_equal(xc, want), "inplace differs"

def wait_child(pid, timeout=40):
    """The child's exit code; a child still running after timeout s is killed."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            print(f"HANG: forked child {pid} still running after {timeout} s "
                  f"(stuck in a parallel region?)", file=sys.stderr)
            sys.exit(3)
        time.sleep(0.005)

def fork_and_run(fn):
    """Fork; the child runs fn() and leaves with os._exit (0: fn returned)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        fn()
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
'''


def _env(omp_num_threads=None):
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    env.pop("FASTACT_ISA", None)
    # no OpenBLAS pool: the process's thread count is then fastact's alone
    env["OPENBLAS_NUM_THREADS"] = "1"
    if omp_num_threads is not None:
        env["OMP_NUM_THREADS"] = str(omp_num_threads)
    return env


def run_script(body, env=None, timeout=SUBPROCESS_TIMEOUT):
    """Runs PRELUDE + body in a fresh interpreter; returns its stdout lines.
    A non-zero exit or a timeout (a hang) fails the test with the output."""
    code = PRELUDE + textwrap.dedent(body)
    proc = subprocess.Popen([sys.executable, "-c", code], env=env or _env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)   # the script and any forked child
        out, err = proc.communicate()
        pytest.fail(f"subprocess hung: no exit after {timeout} s (a forked process "
                    f"stuck in an OpenMP parallel region?)\n--- stdout\n{out}\n--- stderr\n{err}")
    if proc.returncode != 0:
        pytest.fail(f"subprocess exited with {proc.returncode}\n--- stdout\n{out}\n"
                    f"--- stderr\n{err}")
    lines = out.split("\n")
    assert "OK" in lines, f"subprocess did not finish\n--- stdout\n{out}\n--- stderr\n{err}"
    return lines


def _parent_threads(lines):
    """The thread count the script's parent reported in a 'THREADS n' line."""
    n = int(next(line for line in lines if line.startswith("THREADS ")).split()[1])
    # the same machine and affinity as pytest's process, and no OMP_NUM_THREADS
    assert n == fastact.config()["cpu_limit"]
    return n


@needs_openmp
def test_fork_after_team_child_runs_serially_and_correctly():
    lines = run_script('''
        x, g, s = make(1)
        fastact.prelu(x, s)                      # starts a team when > 1 thread
        fastact.prelu_backward(g, x, s)
        n_parent = fastact.get_num_threads()
        team = n_parent > 1
        print("THREADS", n_parent)
        if team and os_threads() is not None:
            assert os_threads() >= n_parent, os_threads()
        assert fastact.config()["forked_serial"] is False

        def child():
            cfg = fastact.config()
            assert cfg["forked_serial"] is team, cfg
            if team:
                assert fastact.get_num_threads() == 1 and cfg["num_threads"] == 1, cfg
                import warnings
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    fastact.set_num_threads(2)       # serial whatever is set, and said so
                assert [str(w.message) for w in caught if w.category is RuntimeWarning
                        and "set_num_threads(2) has no effect" in str(w.message)
                        and "forked" in str(w.message)], [str(w.message) for w in caught]
                assert fastact.get_num_threads() == 1
                with warnings.catch_warnings():
                    warnings.simplefilter("error")
                    fastact.set_num_threads(1)       # takes effect: no warning
                    fastact.set_num_threads(None)
            for dtype in (np.float32, np.float64):
                check_big(10, dtype=dtype)
                check_big(11, dtype=dtype, shared=True)
                check_big(12, shape=(4096, 48), dtype=dtype)
            if team and os_threads() is not None:
                assert os_threads() == 1, f"child started threads: {os_threads()}"
            # a grandchild inherits the serial switch
            code = wait_child(fork_and_run(lambda: (
                check_big(13),
                fastact.config()["forked_serial"] is team or sys.exit(5))))
            assert code == 0, f"grandchild exited with {code}"

        code = wait_child(fork_and_run(child))
        assert code == 0, f"child exited with {code}"

        # the parent is untouched: still threaded, still correct
        cfg = fastact.config()
        assert cfg["forked_serial"] is False, cfg
        assert fastact.get_num_threads() == n_parent == cfg["num_threads"]
        for dtype in (np.float32, np.float64):
            check_big(20, dtype=dtype)
        if team and os_threads() is not None:
            assert os_threads() >= n_parent, os_threads()
        print("OK")
    ''')
    _parent_threads(lines)


@needs_openmp
def test_fork_after_a_family_team():
    """The family's kernels go through the same thread policy: a child forked
    after an ELU team ran runs them serially and correctly."""
    lines = run_script('''
        x, g, s = make(2)
        fastact.elu(x)                           # a team, started by the family
        team = fastact.get_num_threads() > 1
        print("THREADS", fastact.get_num_threads())

        def child():
            assert fastact.config()["forked_serial"] is team
            y = fastact.relu(x, max_value=6.0)
            assert np.array_equal(y, np.where(x >= 6, 6, np.where(x <= 0, 0, x)))
            gi = fastact.leaky_relu_backward(g, x, 0.2)
            assert np.array_equal(gi, np.where(x > 0, g, np.float32(0.2) * g))
            xc = x.copy()
            fastact.square(xc, inplace=True)
            assert np.array_equal(xc, x * x)

        code = wait_child(fork_and_run(child))
        assert code == 0, f"child exited with {code}"
        print("OK")
    ''')
    _parent_threads(lines)


@needs_openmp
def test_fork_multiprocessing_pool_after_team():
    lines = run_script('''
        import multiprocessing as mp

        def work(i):
            dtype = (np.float32, np.float64)[i % 2]
            check_big(100 + i, dtype=dtype, shared=(i % 3 == 0))
            return os.getpid(), fastact.config()["forked_serial"], fastact.get_num_threads()

        if __name__ == "__main__":
            x, g, s = make(1)
            fastact.prelu(x, s)
            fastact.prelu_backward(g, x, s)
            n_parent = fastact.get_num_threads()
            team = n_parent > 1
            print("THREADS", n_parent)
            with mp.get_context("fork").Pool(2) as pool:
                res = pool.map_async(work, range(8), chunksize=1).get(timeout=40)
            assert len(res) == 8
            for pid, serial, n in res:
                assert serial is team, (pid, serial, n)
                assert n == (1 if team else n_parent), (pid, serial, n)
            assert fastact.config()["forked_serial"] is False
            assert fastact.get_num_threads() == n_parent
            check_big(200)
            print("OK")
    ''')
    _parent_threads(lines)


@needs_openmp
def test_fork_preforking_server():
    """Like gunicorn --preload: the master warms up (a large call), forks
    workers that each serve several requests, and respawns one later."""
    lines = run_script('''
        import threading

        def serve(worker):
            cfg = fastact.config()
            assert cfg["forked_serial"] is team, cfg
            assert cfg["num_threads"] == (1 if team else n_parent), cfg
            # requests one after another ...
            for r in range(4):
                dtype = (np.float32, np.float64)[(worker + r) % 2]
                shape = (BIG, (2048, 48), (2, 3, 40000))[r % 3]
                check_big(1000 * worker + r, shape=shape, dtype=dtype, shared=(r == 3))
            # ... and from two request threads at once
            errors = []
            def handler(t):
                try:
                    for r in range(3):
                        check_big(1000 * worker + 100 * t + r, dtype=np.float32)
                except BaseException as exc:
                    errors.append(repr(exc))
            ts = [threading.Thread(target=handler, args=(t,)) for t in range(2)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(30)
                assert not t.is_alive(), "a request thread hung"
            assert not errors, errors

        x, g, s = make(1)
        fastact.prelu(x, s)                  # warm-up in the master
        fastact.prelu_backward(g, x, s)
        n_parent = fastact.get_num_threads()
        team = n_parent > 1
        print("THREADS", n_parent)

        pids = [fork_and_run(lambda w=w: serve(w)) for w in range(3)]
        codes = [wait_child(pid) for pid in pids]
        assert codes == [0, 0, 0], codes
        # the master respawns a worker after running more large calls itself
        check_big(5000)
        code = wait_child(fork_and_run(lambda: serve(7)))
        assert code == 0, code
        assert fastact.config()["forked_serial"] is False
        check_big(5001, dtype=np.float64)
        print("OK")
    ''')
    _parent_threads(lines)


@needs_openmp
@pytest.mark.parametrize("before_fork", ["nothing", "small_calls", "large_calls_one_thread"])
def test_fork_without_team_keeps_threads(before_fork):
    lines = run_script(f'''
        before_fork = {before_fork!r}
        n_default = fastact.get_num_threads()
        if before_fork == "small_calls":
            for seed in range(5):
                x, g, s = make(seed, shape=(2, 3, 4, 5))
                fastact.prelu(x, s)
                fastact.prelu_backward(g, x, s)
        elif before_fork == "large_calls_one_thread":
            fastact.set_num_threads(1)           # large calls, but no team
            check_big(1)
        n_parent = fastact.get_num_threads()
        print("THREADS", n_default)
        if os_threads() is not None:
            assert os_threads() == 1, f"a team ran before the fork: {{os_threads()}} threads"

        def child():
            cfg = fastact.config()
            assert cfg["forked_serial"] is False, cfg
            assert fastact.get_num_threads() == n_parent, (fastact.get_num_threads(), n_parent)
            fastact.set_num_threads(None)
            assert fastact.get_num_threads() == n_default
            for dtype in (np.float32, np.float64):
                check_big(10, dtype=dtype)       # runs a team in the child
                check_big(11, dtype=dtype, shared=True)
            if n_default > 1 and os_threads() is not None:
                assert os_threads() >= n_default, f"child ran serially: {{os_threads()}} threads"
            # this child has run a team: its own children must go serial
            code = wait_child(fork_and_run(lambda: (
                fastact.config()["forked_serial"] is (n_default > 1) or sys.exit(5),
                check_big(12))))
            assert code == 0, f"grandchild exited with {{code}}"

        code = wait_child(fork_and_run(child))
        assert code == 0, f"child exited with {{code}}"
        assert fastact.config()["forked_serial"] is False
        fastact.set_num_threads(None)
        check_big(20)
        print("OK")
    ''')
    _parent_threads(lines)


# --- 3. concurrent callers ------------------------------------------------------

CONCURRENT_SHAPES = [(2, 3), (3, 5, 7), (3, 16, 8, 8), (4, 32, 32, 32), (2048, 40), (2, 3, 30000)]


def _concurrent_worker(seed, iterations):
    rng = np.random.default_rng(seed)
    for i in range(iterations):
        shape = CONCURRENT_SHAPES[rng.integers(len(CONCURRENT_SHAPES))]
        dtype = DTYPES[rng.integers(2)]
        x = random_x(rng, shape, dtype)
        g = rng.standard_normal(shape).astype(dtype)
        slopes = random_slopes(rng, shape[1], dtype) if i % 4 else float(rng.uniform(-3, 3))
        x_before, g_before = x.copy(), g.copy()

        y_ref = expected_forward(x, slopes)
        np.testing.assert_array_equal(fastact.prelu(x, slopes), y_ref)
        out = poisoned_like(x)
        assert fastact.prelu(x, slopes, out=out) is out
        np.testing.assert_array_equal(out, y_ref)
        np.testing.assert_array_equal(x, x_before)
        xc = x.copy()
        assert fastact.prelu(xc, slopes, inplace=True) is xc
        np.testing.assert_array_equal(xc, y_ref)

        gi_ref, gs_ref = expected_backward(g, x, slopes)
        gi, gs = fastact.prelu_backward(g, x, slopes)
        np.testing.assert_array_equal(gi, gi_ref)
        assert_grad_slopes_close(gs, gs_ref, g, x, dtype)
        out = poisoned_like(x)
        gi, gs = fastact.prelu_backward(g, x, slopes, out=out)
        assert gi is out
        np.testing.assert_array_equal(gi, gi_ref)
        assert_grad_slopes_close(gs, gs_ref, g, x, dtype)
        gc = g.copy()
        gi, gs = fastact.prelu_backward(gc, x, slopes, inplace=True)
        assert gi is gc
        np.testing.assert_array_equal(gi, gi_ref)
        assert_grad_slopes_close(gs, gs_ref, g, x, dtype)
        np.testing.assert_array_equal(x, x_before)
        np.testing.assert_array_equal(g, g_before)


def test_concurrent_python_threads(rng, default_threads):
    nthreads, iterations = 8, 20
    seeds = rng.integers(0, 2**63, size=nthreads)
    errors = []

    def run(seed):
        try:
            _concurrent_worker(int(seed), iterations)
        except BaseException as exc:   # reported by the main thread
            errors.append((int(seed), exc))

    # daemon threads: a hung one fails the test instead of blocking pytest's exit
    threads = [threading.Thread(target=run, args=(s,), daemon=True) for s in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SUBPROCESS_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a calling thread hung"
    if errors:
        seed, exc = errors[0]
        raise AssertionError(f"{len(errors)} of {nthreads} threads failed; "
                             f"first (worker seed {seed}): {exc!r}") from exc


# --- 4. the thread count follows OpenMP's setting -------------------------------

@needs_openmp
@pytest.mark.parametrize("omp", ["1", "2", "64"])
def test_omp_num_threads_environment(omp):
    lines = run_script(f'''
        cfg = fastact.config()
        # config() asks the CUDA driver about GPUs where fastact's CUDA part is
        # built, and the driver may keep threads of its own: count from here
        before = os_threads()
        want = min({omp}, cfg["cpu_limit"])
        assert fastact.get_num_threads() == want == cfg["num_threads"], (cfg, want)
        for dtype in (np.float32, np.float64):
            check_big(3, dtype=dtype)
        if before is not None:
            started = os_threads() - before
            if want == 1:
                assert started == 0, f"a team ran under OMP_NUM_THREADS=1: {{started}} new threads"
            else:
                assert started >= want - 1, started
        fastact.set_num_threads(1)
        assert fastact.get_num_threads() == 1
        fastact.set_num_threads(None)
        assert fastact.get_num_threads() == want
        print("THREADS", fastact.get_num_threads())
        print("OK")
    ''', env=_env(omp))
    assert int(next(line for line in lines if line.startswith("THREADS ")).split()[1]) == \
        min(int(omp), fastact.config()["cpu_limit"])


@needs_openmp
def test_threadpoolctl_limits(rng, default_threads):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = default_threads
    x = random_x(rng, BIG, np.float32)
    slopes = random_slopes(rng, BIG[1], np.float32)
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert fastact.get_num_threads() == 1
        assert fastact.config()["num_threads"] == 1
        assert_prelu_forward(fastact.prelu(x, slopes), x, slopes)
    assert fastact.get_num_threads() == before
    with threadpoolctl.threadpool_limits(limits=64, user_api="openmp"):
        # capped by the CPUs the process may use
        assert fastact.get_num_threads() == fastact.config()["cpu_limit"]
        assert_prelu_forward(fastact.prelu(x, slopes), x, slopes)
    assert fastact.get_num_threads() == before
    # an explicit count wins over threadpoolctl's limit
    try:
        fastact.set_num_threads(2)
        with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
            assert fastact.get_num_threads() == 2
    finally:
        fastact.set_num_threads(None)
    assert fastact.get_num_threads() == before


@needs_openmp
def test_set_num_threads_and_restore(rng, default_threads):
    before = default_threads
    assert 1 <= before <= fastact.config()["cpu_limit"]
    assert fastact.config()["num_threads"] == before
    x = random_x(rng, BIG, np.float64)
    g = rng.standard_normal(BIG)
    slopes = random_slopes(rng, BIG[1], np.float64)
    try:
        for n in (1, 2, 3):
            fastact.set_num_threads(n)
            assert fastact.get_num_threads() == n
            assert fastact.config()["num_threads"] == n
            assert_prelu_forward(fastact.prelu(x, slopes), x, slopes)
            gi, gs = fastact.prelu_backward(g, x, slopes)
            assert_prelu_backward(gi, gs, g, x, slopes, np.float64)
        fastact.set_num_threads(1 << 40)       # huge: accepted (clamped)
        assert fastact.get_num_threads() >= 1
    finally:
        fastact.set_num_threads(None)
    assert fastact.get_num_threads() == before
    assert fastact.get_num_threads() <= fastact.config()["cpu_limit"]


# --- 5. bad input to set_num_threads -------------------------------------------

@pytest.mark.parametrize("n", [0, -1, -(1 << 40)])
def test_set_num_threads_rejects_non_positive(n, default_threads):
    with pytest.raises(ValueError):
        fastact.set_num_threads(n)
    assert fastact.get_num_threads() == default_threads


@pytest.mark.parametrize("n", [1.5, 2.0, "2", True, False, [2]])
def test_set_num_threads_rejects_non_int(n, default_threads):
    with pytest.raises(TypeError):
        fastact.set_num_threads(n)
    assert fastact.get_num_threads() == default_threads


# --- 6. a busy machine: the back-off to serial calls ------------------------------
#
# While thread teams cost more than they save (other processes keep the CPUs
# busy), large calls run serially for a while (parallel.c).  Nothing a call
# computes may depend on that: each case is computed on one thread, on a
# team that always runs, and under the back-off, and must be bitwise the same.


@pytest.fixture
def backoff_restored():
    """Back-off on, no serial time owed, default threads after the test."""
    try:
        yield
    finally:
        _cpu.set_thread_backoff(True)
        _cpu.force_thread_backoff(0)
        fastact.set_num_threads(None)


def _all_results(rng, shape, per_channel, dtype):
    """(inputs, a function computing every result of the case as bits)."""
    x = random_x(rng, shape, dtype)
    g = rng.standard_normal(shape).astype(dtype)
    slopes = random_slopes(rng, shape[1], dtype) if per_channel else float(rng.uniform(-3, 3))

    def compute():
        y = fastact.prelu(x, slopes)
        out = poisoned_like(x)
        fastact.prelu(x, slopes, out=out)
        xi = x.copy()
        fastact.prelu(xi, slopes, inplace=True)
        gi, gs = fastact.prelu_backward(g, x, slopes)
        gc = g.copy()
        gci, gcs = fastact.prelu_backward(gc, x, slopes, inplace=True)
        fam = [fastact.elu(x), fastact.relu(x, max_value=6.0),
               fastact.leaky_relu_backward(g, x, 0.2), fastact.elu_backward(g, x)]
        return [_bits(a) for a in [y, out, xi, gi, gs, gci, gcs] + fam]

    return (x, g, slopes), compute


def _modes():
    """Each way a large call can run: (label, function that sets it up)."""
    def one():
        fastact.set_num_threads(1)

    def team_always():
        fastact.set_num_threads(None)
        _cpu.set_thread_backoff(False)

    def backed_off():
        fastact.set_num_threads(None)
        _cpu.set_thread_backoff(True)
        _cpu.force_thread_backoff(60.0)

    def three_threads_default():
        fastact.set_num_threads(3)
        _cpu.set_thread_backoff(True)
        _cpu.force_thread_backoff(0)

    return [("1 thread", one), ("team always", team_always),
            ("back-off serial", backed_off), ("3 threads, back-off on", three_threads_default)]


def _defaults():
    """fastact's defaults, the back-off in whatever state the calls left it."""
    fastact.set_num_threads(None)
    _cpu.set_thread_backoff(True)


@needs_openmp
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(DETERMINISM_CASES))
def test_backoff_gives_bitwise_the_same(rng, case, dtype, backoff_restored):
    shape, per_channel = DETERMINISM_CASES[case]
    (x, g, slopes), compute = _all_results(rng, shape, per_channel, dtype)
    results = {}
    for label, enter in _modes():
        enter()
        before = _cpu.thread_stats()
        results[label] = compute()
        after = _cpu.thread_stats()
        if label == "back-off serial":
            assert after["team_calls"] == before["team_calls"], "a team ran during the back-off"
            assert after["backoff_serial_calls"] > before["backoff_serial_calls"]
        if label == "team always":
            assert after["team_calls"] > before["team_calls"]
            assert after["backoff_serial_calls"] == before["backoff_serial_calls"]
    ref = results["1 thread"]
    for label, bits in results.items():
        assert bits == ref, f"{label} differs from one thread"
    np.testing.assert_array_equal(fastact.prelu(x, slopes), expected_forward(x, slopes))


@needs_openmp
def test_backoff_mechanics(rng, backoff_restored):
    """Serial calls spend the back-off's time, then a call tries the team;
    off, every large call runs its team and the owed time is kept."""
    x = random_x(rng, BIG, np.float32)
    slopes = random_slopes(rng, BIG[1], np.float32)
    fastact.set_num_threads(2)
    assert fastact.config()["thread_backoff"] is True

    _cpu.force_thread_backoff(3600.0)
    s0 = _cpu.thread_stats()
    assert 3599 < s0["backoff_left_s"] <= 3600
    for _ in range(3):
        assert_prelu_forward(fastact.prelu(x, slopes), x, slopes)
    s1 = _cpu.thread_stats()
    assert s1["team_calls"] == s0["team_calls"]
    assert s1["backoff_serial_calls"] == s0["backoff_serial_calls"] + 3
    assert s1["backoff_left_s"] < s0["backoff_left_s"]

    _cpu.set_thread_backoff(False)
    assert fastact.config()["thread_backoff"] is False
    assert_prelu_forward(fastact.prelu(x, slopes), x, slopes)
    s2 = _cpu.thread_stats()
    assert s2["team_calls"] == s1["team_calls"] + 1
    assert s2["backoff_left_s"] == s1["backoff_left_s"], "switching off lost the owed time"
    _cpu.set_thread_backoff(True)

    # a tiny amount owed: one serial call spends it, the next tries the team
    _cpu.force_thread_backoff(1e-9)
    assert_prelu_forward(fastact.prelu(x, slopes), x, slopes)
    s3 = _cpu.thread_stats()
    assert s3["backoff_serial_calls"] == s2["backoff_serial_calls"] + 1
    assert s3["backoff_left_s"] == 0
    assert_prelu_forward(fastact.prelu(x, slopes), x, slopes)
    assert _cpu.thread_stats()["team_calls"] == s3["team_calls"] + 1

    # small calls never take a team, and never spend the back-off's time
    _cpu.force_thread_backoff(1.0)
    small = random_x(rng, (2, 3, 8, 8), np.float32)
    fastact.prelu(small, slopes[:3])
    s4 = _cpu.thread_stats()
    assert s4["backoff_serial_calls"] == s3["backoff_serial_calls"]
    assert s4["backoff_left_s"] == 1.0

    # one thread asked for: no team, no back-off bookkeeping
    fastact.set_num_threads(1)
    fastact.prelu(x, slopes)
    assert _cpu.thread_stats()["backoff_serial_calls"] == s4["backoff_serial_calls"]


@needs_openmp
def test_busy_machine_results_unchanged(rng, backoff_restored):
    """With other processes keeping every CPU busy (where teams go bad and
    the back-off takes over), every result is bitwise what an idle machine
    computes on one thread, in each way of running."""
    cases = [(BIG, True, np.float32), ((4096, 48), True, np.float64),
             ((3, 4, 70001), True, np.float32), ((600001,), False, np.float32)]
    computes = []
    for shape, per_channel, dtype in cases:
        _, compute = _all_results(rng, shape, per_channel, dtype)
        fastact.set_num_threads(1)
        computes.append((compute, compute()))
    nprocs = LOAD_PER_CPU * fastact.config()["cpu_limit"]
    with CpuLoad(nprocs, seconds=SUBPROCESS_TIMEOUT):
        for label, enter in _modes() + [("default", _defaults)]:
            enter()
            for k, (compute, ref) in enumerate(computes):
                for _ in range(2):
                    assert compute() == ref, f"case {k}: {label} under load differs"


def test_cpu_load_stops_its_processes():
    """The benchmark's load: its processes spin, and are gone after the block
    (or after their own time limit)."""
    with CpuLoad(2, seconds=30) as load:
        procs = list(load.procs)
        assert all(p.poll() is None for p in procs)
    assert all(p.poll() is not None for p in procs)
    with CpuLoad(1, seconds=0.2) as load:
        p = load.procs[0]
        p.wait(timeout=20)                # leaves by itself
        assert p.returncode == 0
