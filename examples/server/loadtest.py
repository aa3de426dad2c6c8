"""A bounded load generator for the example server, with faults and bad
payloads, that checks every response against fastact's float64 oracle.

    python examples/server/loadtest.py --url http://127.0.0.1:8000 \\
        --clients 8 --duration 120 --faults --bad

N clients send requests for a fixed time (each loop stops by itself: at
the deadline, after --max-requests, and every request has a timeout).  The
HTTP client is asyncio's streams (standard library); numpy and fastact's
oracle (fastact._reference, not its kernels) check the answers:

- /embed: the client runs model.embed with the oracle's prelu, rounded once
  to float32, after each numpy matmul, exactly as the server runs it with
  fastact's prelu: the response must be bitwise equal.
- /act prelu and leaky_relu: bitwise equal to the float64 oracle rounded
  once to x's dtype, NaN positions and the sign of zeros included (inputs
  carry NaN, +-inf and +-0 at random places); elu: the same NaN positions
  and infinities, other values within 1 ulp (fastact's documented bound).
- Bad payloads (--bad): each must get its expected 4xx.

Faults (--faults): kill -9 of a worker of the server (only a process whose
parent is the server's master, found through /info) while requests are in
flight; a client that disconnects mid-upload; a slow client that sends its
body in pieces over about 2 s.  Requests that fail with a connection error
while a kill happened are counted as `killed`, not as failures.

A warm-up (--warmup s of the clients alone) comes first.  Reports
throughput and p50/p99/max latency of the checked requests after it, the
server's memory (master and workers from /proc: RSS and PSS sums), idle
after the warm-up and after the run, and sampled during it, and what each
worker reported; exits 1 when a
response was wrong, a request failed unexpectedly or no worker is alive at
the end.  --json FILE writes the figures.
"""
import argparse
import asyncio
import io
import json
import os
import random
import signal
import sys
import time
from urllib.parse import urlsplit

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model  # noqa: E402  (its oracle_* use fastact._reference, not fastact's kernels)

PARAMS = model.build()
NPY = "application/x-npy"

# the bad payloads and the status each must get
BAD_KINDS = {
    "truncated": 400, "int32": 415, "complex64": 415, "object": 415, "float16": 415,
    "wrong_shape": 422, "empty": 422, "huge_header": 413, "bad_json": 400,
    "oversize_body": 413, "wrong_content_type": 415, "wrong_op": 422,
}


class ConnectionFailed(Exception):
    pass


# --- HTTP over asyncio streams ------------------------------------------------------

async def http(host, port, method, path, body=b"", ctype=NPY, *, timeout=30.0,
               pieces=1, piece_delay=0.0, send_only=None, content_length=None):
    """One request on a new connection: (status, headers, body).  pieces /
    piece_delay send the body slowly; send_only=k sends k bytes of it and
    closes (a client that goes away mid-upload)."""
    async def run():
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as e:
            raise ConnectionFailed(f"connect: {e}") from None
        try:
            n = len(body) if content_length is None else content_length
            head = (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {ctype}\r\n"
                    f"Content-Length: {n}\r\nConnection: close\r\n\r\n")
            writer.write(head.encode())
            if send_only is not None:
                writer.write(body[:send_only])
                await writer.drain()
                return None
            step = max(1, -(-len(body) // pieces))
            for i in range(0, len(body), step):
                writer.write(body[i:i + step])
                await writer.drain()
                if piece_delay:
                    await asyncio.sleep(piece_delay)
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionFailed("connection closed before a response")
            status = int(status_line.split()[1])
            headers = {}
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                k, _, v = line.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0"))
            data = await reader.readexactly(length)
            return status, headers, data
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as e:
            raise ConnectionFailed(f"{type(e).__name__}: {e}") from None
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
    try:
        return await asyncio.wait_for(run(), timeout)
    except asyncio.TimeoutError:
        raise ConnectionFailed(f"no response in {timeout} s") from None


def npy_bytes(a, allow_pickle=False):
    f = io.BytesIO()
    np.save(f, a, allow_pickle=allow_pickle)
    return f.getvalue()


# --- payloads and their checks -----------------------------------------------------

def with_specials(x, rng):
    """x with NaN, +-inf and +-0 at random places (about 1% of elements)."""
    flat = x.reshape(-1)
    k = max(1, flat.size // 100)
    idx = rng.choice(flat.size, size=k, replace=False)
    flat[idx] = rng.choice(np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], x.dtype), size=k)
    return x


def good_request(rng):
    """(path, body, ctype, check): a valid request and the check of its answer."""
    r = rng.random()
    if r < 0.45:
        x = rng.standard_normal((int(rng.integers(16, 257)), model.FEATURES), dtype=np.float32)
        return "/embed", npy_bytes(x), NPY, ("embed", x)
    if r < 0.5:
        x = rng.standard_normal((2, model.FEATURES), dtype=np.float32)
        body = json.dumps({"x": x.tolist()}).encode()
        return "/embed", body, "application/json", ("embed_json", x)
    dtype = np.float32 if rng.random() < 0.75 else np.float64
    hw = int(rng.choice([8, 28, 56]))
    x = rng.standard_normal((int(rng.integers(1, 5)), model.CHANNELS, hw, hw)).astype(dtype)
    if rng.random() < 0.5:
        x = with_specials(x, rng)
    op = str(rng.choice(model.ACT_OPS))
    return f"/act?op={op}", npy_bytes(x), NPY, ("act", x, op)


def bits_equal(y, ref):
    """Bitwise equal, NaN positions equal (any NaN payload)."""
    if y.shape != ref.shape or y.dtype != ref.dtype:
        return False
    ny, nr = np.isnan(y), np.isnan(ref)
    if not np.array_equal(ny, nr):
        return False
    u = np.uint32 if y.dtype == np.float32 else np.uint64
    return bool(np.array_equal(y.view(u)[~ny], ref.view(u)[~nr]))


def within_ulp(y, ref, ulps=1):
    if y.shape != ref.shape or y.dtype != ref.dtype:
        return False
    ny, nr = np.isnan(y), np.isnan(ref)
    if not np.array_equal(ny, nr):
        return False
    a, b = y[~ny], ref[~nr]
    if not np.array_equal(np.isinf(a), np.isinf(b)) or not np.array_equal(a[np.isinf(a)],
                                                                           b[np.isinf(b)]):
        return False
    fin = np.isfinite(b)
    diff = np.abs(a[fin].astype(np.float64) - b[fin].astype(np.float64))
    return bool((diff <= ulps * np.spacing(np.abs(b[fin])).astype(np.float64)).all())


def check(spec, status, headers, data):
    """None when the answer is right, else what is wrong."""
    if status != 200:
        return f"status {status}: {data[:200]!r}"
    kind = spec[0]
    if kind == "embed_json":
        y = np.asarray(json.loads(data)["y"], dtype=np.float32)
    else:
        y = np.load(io.BytesIO(data), allow_pickle=False)
    if kind in ("embed", "embed_json"):
        ok = bits_equal(y, model.embed(spec[1], PARAMS, model.oracle_prelu))
    else:
        x, op = spec[1], spec[2]
        ref = model.activate_oracle(x, op, PARAMS)
        ok = within_ulp(y, ref) if op == "elu" else bits_equal(y, ref)
    return None if ok else f"{kind} {spec[2] if kind == 'act' else ''}: wrong values"


def bad_request(kind, rng, max_body):
    """(path, body, ctype, extra http() arguments) of a bad payload."""
    x = rng.standard_normal((8, model.FEATURES), dtype=np.float32)
    good = npy_bytes(x)
    if kind == "truncated":
        return "/embed", good[:int(rng.integers(10, len(good) - 1))], NPY, {}
    if kind == "int32":
        return "/embed", npy_bytes(x.astype(np.int32)), NPY, {}
    if kind == "complex64":
        return "/embed", npy_bytes(x.astype(np.complex64)), NPY, {}
    if kind == "object":
        return "/embed", npy_bytes(x.astype(object), allow_pickle=True), NPY, {}
    if kind == "float16":
        return "/embed", npy_bytes(x.astype(np.float16)), NPY, {}
    if kind == "wrong_shape":
        return "/embed", npy_bytes(x[:, :511].copy()), NPY, {}
    if kind == "empty":
        return "/embed", npy_bytes(np.empty((0, model.FEATURES), np.float32)), NPY, {}
    if kind == "huge_header":
        # a header declaring 2**40 x 512 float32 (2 PiB), followed by 64 bytes
        f = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f4", "fortran_order": False, "shape": (1 << 40, model.FEATURES)})
        return "/embed", f.getvalue() + bytes(64), NPY, {}
    if kind == "bad_json":
        return "/embed", b'{"x": [[1.0, 2.0], ', "application/json", {}
    if kind == "oversize_body":
        # declares a body over the limit, sends 1 KiB of it: 413 before reading
        return "/embed", good[:1024], NPY, {"content_length": max_body + 1}
    if kind == "wrong_content_type":
        return "/embed", good, "text/plain", {}
    if kind == "wrong_op":
        fm = rng.standard_normal((1, model.CHANNELS, 8, 8), dtype=np.float32)
        return "/act?op=softmax", npy_bytes(fm), NPY, {}
    raise ValueError(kind)


# --- the server's processes ----------------------------------------------------------

def ppid_of(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def children_of(master):
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit() and ppid_of(int(name)) == master:
            out.append(int(name))
    return sorted(out)


def memory_of(pids):
    """(RSS, PSS, {pid: RSS}) in MiB summed over pids (PSS counts shared
    pages once)."""
    rss = pss = 0
    each = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        each[pid] = int(line.split()[1]) / 1024
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss / 1024, pss / 1024, each


def is_gunicorn(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"gunicorn" in f.read()
    except OSError:
        return False


# --- the run ------------------------------------------------------------------------

class Run:
    def __init__(self, args):
        self.args = args
        u = urlsplit(args.url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.deadline = 0.0
        self.kills = []                   # (time, pid)
        self.c = {"served": 0, "wrong": 0, "failed": 0, "killed": 0, "bad_sent": 0,
                  "bad_ok": 0, "slow_ok": 0, "disconnects": 0, "nan_inputs": 0}
        self.latencies = []
        self.errors = []
        self.bad_seen = {}
        self.workers = {}                 # pid -> {"requests", "threads", "compute_us"}

    def note_error(self, what):
        if len(self.errors) < 20:
            self.errors.append(what)

    def killed_during(self, t0, t1):
        return any(t0 - 0.05 <= t <= t1 + 0.05 for t, _ in self.kills)

    async def one(self, rng, path, body, ctype, spec, **kw):
        t0 = time.monotonic()
        try:
            status, headers, data = await http(self.host, self.port, "POST", path, body, ctype,
                                               timeout=self.args.timeout, **kw)
        except ConnectionFailed as e:
            t1 = time.monotonic()
            if self.killed_during(t0, t1):
                self.c["killed"] += 1
            else:
                self.c["failed"] += 1
                self.note_error(f"{path}: {e}")
            return None
        t1 = time.monotonic()
        return t0, t1, status, headers, data

    async def client(self, k):
        rng = np.random.default_rng([self.args.seed, k])
        n = 0
        while time.monotonic() < self.deadline and n < self.args.max_requests:
            n += 1
            if self.args.bad and rng.random() < self.args.bad_fraction:
                kind = list(BAD_KINDS)[int(rng.integers(len(BAD_KINDS)))]
                path, body, ctype, kw = bad_request(kind, rng, self.args.max_body)
                r = await self.one(rng, path, body, ctype, None, **kw)
                self.c["bad_sent"] += 1
                if r is not None:
                    status = r[2]
                    self.bad_seen.setdefault(kind, {}).setdefault(status, 0)
                    self.bad_seen[kind][status] += 1
                    if status == BAD_KINDS[kind]:
                        self.c["bad_ok"] += 1
                    else:
                        self.c["wrong"] += 1
                        self.note_error(f"bad payload {kind}: status {status}, want "
                                        f"{BAD_KINDS[kind]}: {r[4][:200]!r}")
                continue
            path, body, ctype, spec = good_request(rng)
            if spec[0] == "act" and np.isnan(spec[1]).any():
                self.c["nan_inputs"] += 1
            r = await self.one(rng, path, body, ctype, spec)
            if r is None:
                continue
            t0, t1, status, headers, data = r
            problem = check(spec, status, headers, data)
            if problem is None:
                self.c["served"] += 1
                self.latencies.append(t1 - t0)
                pid = int(headers.get("x-worker-pid", "0"))
                w = self.workers.setdefault(pid, {"requests": 0, "threads": set(),
                                                  "compute_us": []})
                w["requests"] += 1
                w["threads"].add(int(headers.get("x-fastact-threads", "0")))
                if spec[0] == "embed" and len(w["compute_us"]) < 20000:
                    w["compute_us"].append(int(headers.get("x-compute-us", "0")))
            elif status in (500, 502, 503) and self.killed_during(t0, t1):
                self.c["killed"] += 1
            else:
                self.c["wrong"] += 1
                self.note_error(f"{path}: {problem}")

    async def killer(self, master):
        """kill -9 a worker every --kill-every seconds while requests run."""
        rng = random.Random(self.args.seed)
        await asyncio.sleep(min(self.args.kill_every, self.args.duration / 3))
        while time.monotonic() < self.deadline - 2.0 and len(self.kills) < 100:
            workers = [p for p in children_of(master) if is_gunicorn(p)]
            if workers:
                pid = rng.choice(workers)
                if ppid_of(pid) == master:          # still the server's worker
                    self.kills.append((time.monotonic(), pid))
                    os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(self.args.kill_every)

    async def disconnector(self, rng):
        """Clients that go away mid-upload, once a second."""
        while time.monotonic() < self.deadline - 1.0 and self.c["disconnects"] < 1000:
            x = rng.standard_normal((256, model.FEATURES), dtype=np.float32)
            body = npy_bytes(x)
            try:
                await http(self.host, self.port, "POST", "/embed", body, timeout=5,
                           send_only=len(body) // 3)
            except ConnectionFailed:
                pass
            self.c["disconnects"] += 1
            await asyncio.sleep(1.0)

    async def slow_client(self, rng):
        """A client that sends a valid body in 20 pieces over about 2 s."""
        while time.monotonic() < self.deadline - 3.0 and self.c["slow_ok"] < 1000:
            path, body, ctype, spec = good_request(rng)
            r = await self.one(rng, path, body, ctype, spec, pieces=20, piece_delay=0.1)
            if r is not None:
                problem = check(spec, r[2], r[3], r[4])
                if problem is None:
                    self.c["slow_ok"] += 1
                else:
                    self.c["wrong"] += 1
                    self.note_error(f"slow client: {problem}")
            await asyncio.sleep(0.5)

    async def sampler(self, master, start, timeline):
        """The server's memory every --sample-every seconds."""
        while time.monotonic() < self.deadline and len(timeline) < 10000:
            rss, pss, _ = memory_of([master] + children_of(master))
            timeline.append([round(time.monotonic() - start, 1), round(rss, 1), round(pss, 1)])
            await asyncio.sleep(self.args.sample_every)

    async def info(self):
        status, _, data = await http(self.host, self.port, "GET", "/info", timeout=10)
        return json.loads(data)

    async def main(self):
        a = self.args
        first = await self.info()
        master = first["ppid"]
        if not is_gunicorn(master):
            master = None                  # not under gunicorn: no kills, no /proc figures
        warm = None
        if a.warmup > 0:
            # warm-up: the clients alone for --warmup s, then the server's
            # memory once idle (every answer is checked here too)
            self.deadline = time.monotonic() + a.warmup
            await asyncio.gather(*(self.client(k + a.clients) for k in range(a.clients)))
            await asyncio.sleep(1.0)
            if master is not None:
                warm = memory_of([master] + children_of(master))
            self.latencies.clear()
        warm_served = self.c["served"]
        start = time.monotonic()
        self.deadline = start + a.duration
        tasks = [asyncio.ensure_future(self.client(k)) for k in range(a.clients)]
        if a.faults:
            rng = np.random.default_rng([a.seed, 10**6])
            tasks += [asyncio.ensure_future(self.disconnector(rng)),
                      asyncio.ensure_future(self.slow_client(rng))]
            if master is not None and a.kill_every > 0:
                tasks.append(asyncio.ensure_future(self.killer(master)))
        timeline = []
        if master is not None:
            tasks.append(asyncio.ensure_future(self.sampler(master, start, timeline)))
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - start
        await asyncio.sleep(1.0)
        end = alive = None
        if master is not None:
            procs = children_of(master)
            alive = len([p for p in procs if is_gunicorn(p)])
            end = memory_of([master] + procs)
        final = None
        try:
            final = await self.info()      # a worker answers after all that
        except ConnectionFailed as e:
            self.note_error(f"final /info: {e}")
        lat = sorted(self.latencies)

        def pct(q):
            return round(1e3 * lat[min(len(lat) - 1, int(q * len(lat)))], 2) if lat else None
        report = {
            "duration_s": round(elapsed, 1), "clients": a.clients, **self.c,
            "warmup_served": warm_served,
            "throughput_per_s": round((self.c["served"] - warm_served) / elapsed, 1),
            "latency_ms": {"p50": pct(0.50), "p99": pct(0.99),
                           "max": round(1e3 * lat[-1], 2) if lat else None},
            "kills": len(self.kills),
            "bad_statuses": {k: {str(s): n for s, n in v.items()}
                             for k, v in sorted(self.bad_seen.items())},
            # idle, after the warm-up and after the run
            "server_mib": None if warm is None or end is None else {
                "rss_warm": round(warm[0], 1), "rss_end": round(end[0], 1),
                "pss_warm": round(warm[1], 1), "pss_end": round(end[1], 1),
                # per process: a worker killed and replaced starts afresh
                "rss_by_pid_warm": {str(k): round(v, 1) for k, v in warm[2].items()},
                "rss_by_pid_end": {str(k): round(v, 1) for k, v in end[2].items()},
                "timeline_s_rss_pss": timeline},
            "workers_alive": alive,
            "final_info": final,
            "workers": {str(p): {"requests": w["requests"], "threads": sorted(w["threads"]),
                                 "embed_compute_ms_median": round(
                                     float(np.median(w["compute_us"])) / 1e3, 2)
                                 if w["compute_us"] else None}
                        for p, w in sorted(self.workers.items())},
            "errors": self.errors,
        }
        return report


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    p.add_argument("--max-requests", type=int, default=10**6, help="per client")
    p.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    p.add_argument("--warmup", type=float, default=5.0,
                   help="seconds of load (no faults) before the run; then the server's "
                        "memory, idle, is the warm figure")
    p.add_argument("--faults", action="store_true",
                   help="kill -9 workers, disconnect mid-upload, a slow client")
    p.add_argument("--kill-every", type=float, default=20.0,
                   help="seconds between kills (0: no kills)")
    p.add_argument("--sample-every", type=float, default=5.0,
                   help="seconds between samples of the server's memory")
    p.add_argument("--bad", action="store_true", help="mix in bad payloads")
    p.add_argument("--bad-fraction", type=float, default=0.1)
    p.add_argument("--max-body", type=int,
                   default=int(os.environ.get("FASTACT_SERVER_MAX_BODY", 32 << 20)))
    p.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4), "little"))
    p.add_argument("--json", help="write the report here too")
    a = p.parse_args(argv)
    report = asyncio.run(Run(a).main())
    text = json.dumps(report, indent=1)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text)
    ok = report["wrong"] == 0 and report["failed"] == 0 and report["final_info"] is not None \
        and report["workers_alive"] != 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
