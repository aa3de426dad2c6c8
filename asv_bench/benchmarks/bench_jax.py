"""fastact.jax against XLA's own code (the jax section of `python -m fastact
bench`, fastact._bench_jax): jitted, float32, a per-channel slope, at 103 MB,
fastact time / XLA time, each round timing both back to back, median over
the rounds (below 1: fastact is faster).

  forward    fastact.jax.prelu vs jnp.where(x > 0, x, a * x)
  backward   the jitted vjp of each (grad_input and the slope gradient)

Skipped (NotImplementedError in setup) where JAX is not installed (asv's own
environments do not install it: run with `--python=same` in an environment
with `pip install ".[jax]"`), and on commits older than fastact.jax."""
import statistics
import time

import numpy as np

from .common import LARGE

ROUNDS = 7


def _load():
    try:
        import jax

        import fastact.jax as fj
    except ImportError as exc:
        raise NotImplementedError(f"no jax or no fastact.jax: {exc}") from exc
    return jax, fj


def _ready(result):
    for leaf in (result if isinstance(result, tuple) else (result,)):
        leaf.block_until_ready()


class JaxPrelu:
    params = [["forward", "backward"]]
    param_names = ["pass"]
    timeout = 600

    def setup(self, which):
        jax, fj = _load()
        jnp = jax.numpy
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.standard_normal(LARGE, dtype=np.float32))
        g = jnp.asarray(rng.standard_normal(LARGE, dtype=np.float32))
        a = jnp.asarray(rng.uniform(0.05, 0.5, LARGE[1]).astype(np.float32))

        def xla_prelu(x, a):
            return jnp.where(x > 0, x, a.reshape(1, -1, 1, 1) * x)

        if which == "forward":
            mine, theirs = jax.jit(fj.prelu), jax.jit(xla_prelu)
            self.calls = (lambda: _ready(mine(x, a)), lambda: _ready(theirs(x, a)))
        else:
            mine = jax.jit(lambda x, a, g: jax.vjp(fj.prelu, x, a)[1](g))
            theirs = jax.jit(lambda x, a, g: jax.vjp(xla_prelu, x, a)[1](g))
            self.calls = (lambda: _ready(mine(x, a, g)), lambda: _ready(theirs(x, a, g)))
        for call in self.calls:
            call()                      # compile and warm up

    def track_fastact_over_xla(self, which):
        ratios = []
        for _ in range(ROUNDS):
            times = []
            for call in self.calls:
                t0 = time.perf_counter()
                call()
                times.append(time.perf_counter() - t0)
            ratios.append(times[0] / times[1])
        return statistics.median(ratios)

    track_fastact_over_xla.unit = "fastact time / XLA time"

    def time_fastact(self, which):
        self.calls[0]()
