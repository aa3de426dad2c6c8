"""gunicorn settings for the fastact example server.

From the repository root:

    gunicorn -c examples/server/gunicorn.conf.py

Command-line flags override these (`-w 4`, `-b 127.0.0.1:9000`), and so do
the environment variables below.  --preload loads the app (the model, and
its warm-up: see app.py) once in the master; the workers are forked from it.
"""
import os

import fastact

pythonpath = os.path.dirname(os.path.abspath(__file__))
wsgi_app = "app:application"
bind = os.environ.get("FASTACT_SERVER_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("FASTACT_SERVER_WORKERS", "2"))
# gthread: a slow client holds one of a worker's threads, not the worker,
# and the worker's main thread keeps answering the master's heartbeat
worker_class = "gthread"
threads = int(os.environ.get("FASTACT_SERVER_WORKER_THREADS", "4"))
preload_app = True
timeout = 30
graceful_timeout = 10
keepalive = 5
# request line and headers; bodies are limited by the app (FASTACT_SERVER_MAX_BODY)
limit_request_line = 4094
limit_request_fields = 50
# FASTACT_SERVER_THREADS=n: fastact.set_num_threads(n) in each worker
# (unset: fastact's default, OpenMP's setting capped by the CPUs)
_threads = os.environ.get("FASTACT_SERVER_THREADS")


def post_fork(server, worker):
    if _threads:
        fastact.set_num_threads(int(_threads))


def post_worker_init(worker):
    """Say once, in each worker, what fastact will use there."""
    cfg = fastact.config()
    log = worker.log
    log.info("worker %d: fastact threads %d (CPUs %d), forked serial: %s",
             os.getpid(), cfg["num_threads"], cfg["cpu_limit"],
             "yes" if cfg["forked_serial"] else "no")
    if cfg["forked_serial"]:
        log.warning("worker %d: fastact runs serially here: the master ran a fastact "
                    "thread team before forking; warm up serially "
                    "(FASTACT_SERVER_WARMUP=serial) to keep the workers' threads",
                    os.getpid())
