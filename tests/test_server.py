"""fastact in a pre-forking server: the once-per-process ForkedSerialWarning,
and the example server (examples/server/) under load with faults and bad
payloads, every response checked against fastact's float64 oracle.

The fork tests run in a subprocess of their own (a child stuck in libgomp
fails the test instead of hanging pytest).  The server tests need gunicorn
(`pip install ".[server]"`) and are skipped without it.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest

import fastact

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "server")
TIMEOUT = 90

needs_team = pytest.mark.skipif(
    not fastact.config()["openmp"] or fastact.config()["cpu_limit"] < 2,
    reason="needs an OpenMP build and 2 or more CPUs (a thread team)")


def _env(**extra):
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "FASTACT_ISA", "PYTHONWARNINGS"):
        env.pop(name, None)
    env["OPENBLAS_NUM_THREADS"] = "1"
    env.update(extra)
    return env


# --- the warning --------------------------------------------------------------------

FORK_PRELUDE = '''
import os, sys, warnings
import numpy as np
import fastact
from fastact import _reference

BIG = (8, 64, 32, 32)          # 2 MiB of float32: a team call where threads are allowed
SMALL = (1, 16, 8, 8)

def call(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape, dtype=np.float32)
    s = rng.uniform(-1, 1, shape[1]).astype(np.float32)
    y = fastact.prelu(x, s)
    assert np.array_equal(y, _reference.prelu(x, s).astype(np.float32))

def forked(fn):
    """fn() in a forked child; its warnings' categories and messages."""
    r, w = os.pipe()
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 1
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                fn()
            os.write(w, repr([(c.category.__name__, str(c.message), c.filename)
                              for c in caught]).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 1 << 16)
        if not chunk:
            break
        data += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "child failed"
    return eval(data.decode())

def forked_serial_warnings(caught):
    return [c for c in caught if c[0] == "ForkedSerialWarning"]
'''


def run_python(body, timeout=TIMEOUT):
    """FORK_PRELUDE + body in a fresh interpreter, which must print OK."""
    code = FORK_PRELUDE + textwrap.dedent(body)
    proc = subprocess.Popen([sys.executable, "-c", code], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"subprocess hung\n--- stdout\n{out}\n--- stderr\n{err}")
    assert proc.returncode == 0 and "OK" in out.split("\n"), \
        f"exit {proc.returncode}\n--- stdout\n{out}\n--- stderr\n{err}"
    return out



@needs_team
def test_forked_serial_warning_once_at_the_first_call_that_would_use_threads():
    run_python('''
    # a child forked before any team: threads kept, no warning
    caught = forked(lambda: (call(BIG, 1), call(BIG, 2)))
    assert forked_serial_warnings(caught) == [], caught

    call(BIG, 3)                                 # the parent runs a team

    def child():
        assert fastact.config()["forked_serial"]
        call(SMALL, 4)                           # small: one thread anyway, no warning
        call(BIG, 5)                             # the first that would have used threads
        call(BIG, 6)
        fastact.leaky_relu(np.ones(BIG, np.float32), 0.1)
    caught = forked(child)
    got = forked_serial_warnings(caught)
    assert len(got) == 1, caught
    message = got[0][1]
    assert "forked" in message and "serially" in message and "set_num_threads(1)" in message
    assert "Issued once per process" in message
    assert got[0][2] == "<string>", got            # points at the caller, not at fastact
    assert issubclass(fastact.ForkedSerialWarning, RuntimeWarning)

    # each forked process warns once: a grandchild too
    def child_with_grandchild():
        call(BIG, 7)
        inner = forked(lambda: call(BIG, 8))
        assert len(forked_serial_warnings(inner)) == 1, inner
    caught = forked(child_with_grandchild)
    assert len(forked_serial_warnings(caught)) == 1, caught

    # a worker set to one thread loses nothing: no warning
    def one_thread():
        fastact.set_num_threads(1)
        call(BIG, 9)
    assert forked_serial_warnings(forked(one_thread)) == []

    # set_num_threads(2) already says it (a RuntimeWarning): no second warning
    def asks_for_two():
        fastact.set_num_threads(2)
        call(BIG, 10)
    caught = forked(asks_for_two)
    assert forked_serial_warnings(caught) == [], caught
    assert any("has no effect" in c[1] for c in caught), caught
    print("OK")
    ''')


@needs_team
def test_forked_serial_warning_from_a_fork_pool():
    """multiprocessing's fork start method after a team call: each worker
    process warns once, and computes right."""
    run_python('''
    import multiprocessing as mp

    def work(seed):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call(BIG, seed)
        return os.getpid(), [str(c.category.__name__) for c in caught]

    call(BIG, 1)
    with mp.get_context("fork").Pool(2) as pool:
        results = pool.map(work, range(2, 10), chunksize=1)
    per_pid = {}
    for pid, names in results:
        per_pid.setdefault(pid, []).extend(names)
    for pid, names in per_pid.items():
        assert names.count("ForkedSerialWarning") == 1, (pid, names)
    print("OK")
    ''')


# --- the example server -------------------------------------------------------------

gunicorn_needed = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import gunicorn"], capture_output=True).returncode,
    reason="needs gunicorn (pip install '.[server]')")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn with the example's config on a free port, in its own session."""

    def __init__(self, tmp_path, workers=2, **env):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(tmp_path / f"gunicorn-{self.port}.log", "w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", os.path.join(EXAMPLE, "gunicorn.conf.py"),
             "-b", f"127.0.0.1:{self.port}", "-w", str(workers)],
            cwd=ROOT, env=_env(**env), stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.info()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"gunicorn did not start\n{self.text()}")
                time.sleep(0.2)

    def info(self):
        with urllib.request.urlopen(self.url + "/info", timeout=10) as r:
            return json.loads(r.read())

    def text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)    # gunicorn's graceful stop
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        log = self.text()
        self.log.close()
        return log

    @staticmethod
    def worker_lines(log):
        """The example's post_worker_init line of each worker: (threads, serial)."""
        found = re.findall(r"worker (\d+): fastact threads (\d+) \(CPUs \d+\), "
                           r"forked serial: (yes|no)", log)
        return {int(pid): (int(n), serial == "yes") for pid, n, serial in found}


def loadtest(url, *args, timeout=120):
    proc = subprocess.run(
        [sys.executable, os.path.join(EXAMPLE, "loadtest.py"), "--url", url, *args],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"loadtest printed no report (exit {proc.returncode})\n"
                    f"{proc.stdout}\n{proc.stderr}")
    return proc.returncode, report


@gunicorn_needed
def test_server_under_load_with_faults_and_bad_payloads(tmp_path):
    """About 12 s of load on 2 workers (2 s of warm-up, then 10 s): kill -9
    of workers, clients that go away mid-upload, a slow client and bad
    payloads; every answer checked."""
    server = Server(tmp_path, workers=2)
    try:
        code, report = loadtest(server.url, "--clients", "4", "--duration", "10",
                                "--warmup", "2", "--faults", "--kill-every", "4", "--bad",
                                "--bad-fraction", "0.25")
        final = server.info()               # still serving after the load
    finally:
        log = server.stop()
    summary = json.dumps(report, indent=1)
    print(summary)
    assert report["wrong"] == 0, summary
    assert report["failed"] == 0, summary
    assert code == 0, summary
    assert report["served"] > 20 and report["slow_ok"] >= 1 and report["disconnects"] >= 1
    assert report["nan_inputs"] >= 1, summary          # NaN/inf inputs were answered right
    assert report["kills"] >= 1 and report["workers_alive"] == 2, summary
    # every bad payload answered got its 4xx (a wrong one counts in "wrong")
    assert report["bad_ok"] >= 5 and len(report["bad_statuses"]) >= 5, summary
    assert final["requests"] >= 0 and not final["forked_serial"], final
    assert "Traceback" not in log, log


@gunicorn_needed
@needs_team
@pytest.mark.parametrize("warmup, serial", [("serial", False), ("parallel", True)])
def test_server_warmup_keeps_or_loses_threads(tmp_path, warmup, serial):
    """A serial warm-up in the master (the example's default) leaves the
    workers their threads; a parallel one makes them serial, and each worker
    then says so once (fastact's ForkedSerialWarning, the example's log line)."""
    server = Server(tmp_path, workers=2, FASTACT_SERVER_WARMUP=warmup)
    try:
        code, report = loadtest(server.url, "--clients", "2", "--duration", "4",
                                "--warmup", "1")
        info = server.info()
    finally:
        log = server.stop()
    assert code == 0 and report["wrong"] == 0, json.dumps(report, indent=1)
    cpus = fastact.config()["cpu_limit"]
    assert info["forked_serial"] is serial, (info, log)
    workers = Server.worker_lines(log)
    assert len(workers) == 2, log
    assert all(w == (1 if serial else cpus, serial) for w in workers.values()), log
    warned = [line for line in log.split("\n") if "ForkedSerialWarning" in line]
    if serial:
        # one per worker that served a large call, never more than one each
        assert 1 <= len(warned) <= len(report["workers"]), log
        assert log.count("fastact runs serially here") == 2, log
    else:
        assert warned == [], log
