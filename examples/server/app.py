"""A small HTTP inference service on fastact: a WSGI app for gunicorn.

Endpoints (request and response bodies are .npy bytes, Content-Type
application/x-npy; or JSON, application/json, for small inputs:
{"x": [[...], ...]} in, {"y": [[...], ...]} out):

  POST /embed          x (B, 512) float32 -> embeddings (B, 128) float32:
                       three matmul + per-channel PReLU layers (model.py)
  POST /act?op=NAME    x (N, 64, *spatial) float32 or float64 through prelu
                       (per-channel slopes), leaky_relu or elu
  GET  /info           this worker: pid, fastact's threads, whether a fork
                       made it serial, requests served, time per request

Limits (environment variables, read at start):

  FASTACT_SERVER_MAX_BODY           bytes in a request body (32 MiB)
  FASTACT_SERVER_MAX_ELEMENTS       elements in an array (4194304)
  FASTACT_SERVER_MAX_JSON_ELEMENTS  elements in a JSON array (65536)
  FASTACT_SERVER_MAX_BATCH          rows B of /embed (2048)

A body larger than the limit gets 413 before it is read; a .npy header
that declares more elements than the limit gets 413 before anything is
allocated for the data.  Errors are 4xx with a JSON body {"error": "..."}:
400 malformed (truncated .npy, bad JSON), 404, 405, 411 no Content-Length,
413 too large, 415 wrong content type or dtype (int, complex, object),
422 wrong shape or an empty array.  NaN and inf are valid input and come
back as fastact computes them.

Warm-up: FASTACT_SERVER_WARMUP=serial (the default) runs every path once
on one thread when the app is loaded, which with gunicorn --preload is in
the master before it forks: the workers inherit the warm pages and keep
their OpenMP threads.  `parallel` warms up with fastact's threads: workers
forked after that run serially (fastact warns once in each); `none` skips
it.
"""
import io
import json
import os
import time
from collections import deque
from urllib.parse import parse_qs

import model
import numpy as np

import fastact


def _env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value else default


MAX_BODY = _env_int("FASTACT_SERVER_MAX_BODY", 32 << 20)
MAX_ELEMENTS = _env_int("FASTACT_SERVER_MAX_ELEMENTS", 1 << 22)
MAX_JSON_ELEMENTS = _env_int("FASTACT_SERVER_MAX_JSON_ELEMENTS", 1 << 16)
MAX_BATCH = _env_int("FASTACT_SERVER_MAX_BATCH", 2048)
WARMUP = os.environ.get("FASTACT_SERVER_WARMUP", "serial")

NPY = "application/x-npy"
PARAMS = model.build()


class HTTPError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


# --- requests ---------------------------------------------------------------------

def read_body(environ):
    """The request body, at most MAX_BODY bytes (413 before reading more)."""
    length = environ.get("CONTENT_LENGTH") or ""
    if not length:
        raise HTTPError("411 Length Required", "a Content-Length header is required")
    try:
        n = int(length)
    except ValueError:
        raise HTTPError("400 Bad Request", f"bad Content-Length {length[:40]!r}") from None
    if n < 0:
        raise HTTPError("400 Bad Request", f"bad Content-Length {n}")
    if n > MAX_BODY:
        raise HTTPError("413 Content Too Large",
                        f"the body has {n} bytes; the limit is {MAX_BODY}")
    try:
        body = environ["wsgi.input"].read(n)
    except Exception as e:  # the client went away mid-upload
        raise HTTPError("400 Bad Request", f"incomplete body: {type(e).__name__}") from None
    if len(body) != n:
        raise HTTPError("400 Bad Request", f"incomplete body: {len(body)} of {n} bytes")
    return body


def check_dtype(dtype):
    if dtype.hasobject:
        raise HTTPError("415 Unsupported Media Type", "object arrays are not accepted")
    if dtype.kind != "f" or dtype.itemsize not in (4, 8):
        raise HTTPError("415 Unsupported Media Type",
                        f"x must be float32 or float64, got {dtype}")


def check_size(shape, limit):
    count = 1
    for d in shape:
        count *= d                      # Python ints: no overflow
    if count > limit:
        raise HTTPError("413 Content Too Large",
                        f"x of shape {tuple(shape)} has {count} elements; the limit is {limit}")
    if count == 0:
        raise HTTPError("422 Unprocessable Content", f"x is empty (shape {tuple(shape)})")
    return count


def parse_npy(body):
    """A .npy body as an array: the header is read and checked (dtype,
    element count against the limit, the data's length) before np.load
    allocates anything, and np.load never unpickles."""
    f = io.BytesIO(body)
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = fmt.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = fmt.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except Exception as e:
        raise HTTPError("400 Bad Request", f"not a valid .npy body: {e}") from None
    check_dtype(dtype)
    count = check_size(shape, MAX_ELEMENTS)
    if len(body) - f.tell() != count * dtype.itemsize:
        raise HTTPError("400 Bad Request",
                        f".npy data has {len(body) - f.tell()} bytes; its header "
                        f"({dtype}, shape {tuple(shape)}) needs {count * dtype.itemsize}")
    return np.load(io.BytesIO(body), allow_pickle=False)


def parse_json(body):
    try:
        doc = json.loads(body)
        x, dtype = doc["x"], np.dtype(doc.get("dtype", "float32"))
    except Exception as e:
        raise HTTPError("400 Bad Request", f"expected JSON {{\"x\": [...]}}: {e}") from None
    check_dtype(dtype)
    try:
        x = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise HTTPError("422 Unprocessable Content", f"x is not a numeric array: {e}") from None
    check_size(x.shape, MAX_JSON_ELEMENTS)
    return x


def parse(environ):
    kind = (environ.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()
    if kind not in (NPY, "application/octet-stream", "application/json"):
        raise HTTPError("415 Unsupported Media Type",
                        f"Content-Type must be {NPY} or application/json, got {kind!r}")
    body = read_body(environ)
    return (parse_json(body), "json") if kind == "application/json" else (parse_npy(body), "npy")


# --- the endpoints ----------------------------------------------------------------

def run_embed(x, query):
    if x.ndim != 2 or x.shape[1] != model.FEATURES:
        raise HTTPError("422 Unprocessable Content",
                        f"x must have shape (B, {model.FEATURES}), got {x.shape}")
    if x.shape[0] > MAX_BATCH:
        raise HTTPError("413 Content Too Large",
                        f"x has {x.shape[0]} rows; the limit is {MAX_BATCH}")
    if x.dtype != np.float32:
        raise HTTPError("415 Unsupported Media Type", f"x must be float32, got {x.dtype}")
    return model.embed(np.ascontiguousarray(x), PARAMS, model.fastact_prelu)


def run_act(x, query):
    op = query.get("op", ["prelu"])[0]
    if op not in model.ACT_OPS:
        raise HTTPError("422 Unprocessable Content",
                        f"op must be one of {', '.join(model.ACT_OPS)}, got {op[:40]!r}")
    if x.ndim < 2 or x.shape[1] != model.CHANNELS:
        raise HTTPError("422 Unprocessable Content",
                        f"x must have shape (N, {model.CHANNELS}, ...), got {x.shape}")
    return model.activate(x, op, PARAMS)


ROUTES = {"/embed": run_embed, "/act": run_act}


class Stats:
    """This worker's requests and compute times (the last 1000)."""

    def __init__(self):
        self.pid = os.getpid()
        self.requests = 0
        self.times = deque(maxlen=1000)

    def add(self, seconds):
        if self.pid != os.getpid():     # forked: start afresh
            self.__init__()
        self.requests += 1
        self.times.append(seconds)

    def info(self):
        t = sorted(self.times) if self.pid == os.getpid() else []
        return {
            "pid": os.getpid(), "ppid": os.getppid(),
            "num_threads": fastact.get_num_threads(),
            "forked_serial": fastact.config()["forked_serial"],
            "requests": self.requests if self.pid == os.getpid() else 0,
            "compute_ms_median": 1e3 * t[len(t) // 2] if t else None,
        }


STATS = Stats()


def _respond(start_response, status, body, content_type, extra=()):
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body))),
               ("X-Worker-Pid", str(os.getpid())), *extra]
    start_response(status, headers)
    return [body]


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    method = environ.get("REQUEST_METHOD", "")
    try:
        if path == "/info":
            return _respond(start_response, "200 OK", json.dumps(STATS.info()).encode(),
                            "application/json")
        if path not in ROUTES:
            raise HTTPError("404 Not Found", f"no endpoint {path[:80]!r}")
        if method != "POST":
            raise HTTPError("405 Method Not Allowed", f"{path} takes POST, got {method}")
        x, kind = parse(environ)
        t0 = time.perf_counter()
        y = ROUTES[path](x, parse_qs(environ.get("QUERY_STRING", "")))
        dt = time.perf_counter() - t0
        STATS.add(dt)
        extra = [("X-Compute-Us", str(int(dt * 1e6))),
                 ("X-Fastact-Threads", str(fastact.get_num_threads()))]
        if kind == "json":
            return _respond(start_response, "200 OK", json.dumps({"y": y.tolist()}).encode(),
                            "application/json", extra)
        out = io.BytesIO()
        np.save(out, y, allow_pickle=False)
        return _respond(start_response, "200 OK", out.getvalue(), NPY, extra)
    except HTTPError as e:
        # the body may be unread: close the connection rather than parse it as a request
        return _respond(start_response, e.status, json.dumps({"error": str(e)}).encode(),
                        "application/json", [("Connection", "close")])


# --- warm-up, where the app is loaded (with gunicorn --preload: in the master) ----

def warm_up():
    rng = np.random.default_rng(1)
    model.embed(rng.standard_normal((256, model.FEATURES), dtype=np.float32), PARAMS,
                model.fastact_prelu)
    fm = rng.standard_normal((8, model.CHANNELS, 28, 28), dtype=np.float32)
    for op in model.ACT_OPS:
        model.activate(fm, op, PARAMS)


if WARMUP == "serial":
    # one thread: no OpenMP team in the master, so forked workers keep theirs
    fastact.set_num_threads(1)
    try:
        warm_up()
    finally:
        fastact.set_num_threads(None)
elif WARMUP == "parallel":
    warm_up()                           # workers forked after this run serially
elif WARMUP != "none":
    raise SystemExit(f"FASTACT_SERVER_WARMUP must be serial, parallel or none, got {WARMUP!r}")
