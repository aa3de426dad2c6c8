"""The JAX section of `python -m fastact bench`: fastact.jax's PReLU, jitted,
against XLA's own compiled code for it, on the same data (float32, one slope
per channel):

  forward    fastact.jax.prelu  vs  jnp.where(x > 0, x, a * x)
  backward   the vjp of each (grad_input and the slope gradient), jitted:
             fastact's fused backward vs what XLA's autodiff makes of where

XLA allocates every result (fastact's kernels write into XLA's buffer), so
both sides pay for fresh outputs alike.  The rows are timed in the bench's
interleaved rounds, with the memory ceilings of the same run (copy forward,
read-two-write-one backward; GB/s counts 8 bytes per element forward, 12
backward), each twice: into a preallocated, already-touched output, and
into an output just allocated (numpy's, as large as XLA's: its first touch
costs page faults, the kernel zeroing every page, as XLA's fresh results
do unless the allocator keeps freed memory), the ceiling of a function
that returns a new array.  Then the thread policy inside a jitted step: a step of three
fastact calls and XLA's elementwise ops and reductions between them, with
fastact's kernels on 1 and on N threads (XLA keeps its own thread pool).

Skipped, with the reason, where JAX is not installed (`pip install
"fastact[jax]"`).
"""
import statistics

import numpy as np

from ._api import prelu, prelu_backward, set_num_threads

SHAPES = [(32, 64, 112, 112)]
QUICK_SHAPES = [(4, 16, 56, 56)]

FA_FWD = "fastact.jax prelu (jit)"
XLA_FWD = "XLA where(x > 0, x, a * x) (jit)"
FA_BWD = "fastact.jax prelu vjp (jit)"
XLA_BWD = "XLA autodiff of where, vjp (jit)"
PAIRS = [(FA_FWD, XLA_FWD, "fwd"), (FA_BWD, XLA_BWD, "bwd")]


def _load():
    """(jax, fastact.jax), or the reason they cannot be used."""
    try:
        import jax

        from . import jax as fj
    except ImportError as exc:
        return None, f"not installed ({exc})"
    return (jax, fj), None


def _ready(result):
    for leaf in (result if isinstance(result, tuple) else (result,)):
        leaf.block_until_ready()


def _bench_shape(shape, threads, jax, fj, rng, out, rounds, batch_seconds, cases_class):
    jnp = jax.numpy
    x = rng.standard_normal(shape, dtype=np.float32)
    g = rng.standard_normal(shape, dtype=np.float32)
    a = rng.uniform(0.05, 0.5, shape[1]).astype(np.float32)
    b8, b12 = 8 * x.size, 12 * x.size
    print(f"\njax: shape {shape} float32, {x.nbytes / 1e6:.1f} MB per array, fastact on "
          f"{threads} threads, jax {jax.__version__}", file=out)
    xj, gj, aj = jnp.asarray(x), jnp.asarray(g), jnp.asarray(a)
    bshape = (1, -1) + (1,) * (len(shape) - 2)

    def xla_prelu(x, a):
        return jnp.where(x > 0, x, a.reshape(bshape) * x)

    fa_fwd = jax.jit(fj.prelu)
    xla_fwd = jax.jit(xla_prelu)
    fa_bwd = jax.jit(lambda x, a, g: jax.vjp(fj.prelu, x, a)[1](g))
    xla_bwd = jax.jit(lambda x, a, g: jax.vjp(xla_prelu, x, a)[1](g))

    # checks before timing: fastact.jax is the numpy API's result; XLA's too
    # for the forward and grad_input (one product each), its slope sums in
    # float32 against fastact's float64 ones
    want_gi, want_gs = prelu_backward(g, x, a)
    same_y = np.array_equal(np.asarray(fa_fwd(xj, aj)), prelu(x, a))
    gi, gs = fa_bwd(xj, aj, gj)
    same_g = np.array_equal(np.asarray(gi), want_gi) and np.array_equal(np.asarray(gs), want_gs)
    xgi, xgs = xla_bwd(xj, aj, gj)
    rel = float(np.max(np.abs(np.asarray(xgs, np.float64) - want_gs) / np.abs(want_gs)))
    print(f"  check: fastact.jax forward {'bitwise' if same_y else 'DIFFERS from'} fastact's, "
          f"backward {'bitwise' if same_g else 'DIFFERS from'} fastact's; XLA's grad_input "
          f"{'bitwise' if np.array_equal(np.asarray(xgi), want_gi) else 'differs'}, its "
          f"slope gradient within {rel:.1e} of fastact's (float32 sums)", file=out)
    del want_gi, gi, xgi

    t = cases_class(out)
    t.add_ceilings(x, g)
    t.add_ceilings(x, g, fresh=True)
    t.add(FA_FWD, b8, lambda: _ready(fa_fwd(xj, aj)))
    t.add(XLA_FWD, b8, lambda: _ready(xla_fwd(xj, aj)))
    t.add(FA_BWD, b12, lambda: _ready(fa_bwd(xj, aj, gj)))
    t.add(XLA_BWD, b12, lambda: _ready(xla_bwd(xj, aj, gj)))
    print(f"  {'case':44s} {'time/call':>14s} {'speed':>13s}", file=out)
    t.run(rounds, batch_seconds)
    ceilings = {"fwd": t.ceiling("copy"), "bwd": t.ceiling("r2w1")}
    fresh = {"fwd": t.ceiling("copy", fresh=True), "bwd": t.ceiling("r2w1", fresh=True)}
    rows = []
    print(f"\n  jax at {shape}: fastact time / XLA time (below 1: fastact faster), median "
          f"[min-max] over {rounds} rounds; speed / ceiling (copy forward, r2w1 backward), "
          "into a preallocated output and into a fresh one", file=out)
    for mine, xla, kind in PAIRS:
        ratios = [m / p for m, p in zip(t.samples[mine], t.samples[xla])]
        row = {"fastact": mine, "xla": xla, "ratio": statistics.median(ratios),
               "range": (min(ratios), max(ratios)),
               "fastact/ceiling": t.gbs(mine) / ceilings[kind],
               "xla/ceiling": t.gbs(xla) / ceilings[kind],
               "fastact/fresh ceiling": t.gbs(mine) / fresh[kind],
               "xla/fresh ceiling": t.gbs(xla) / fresh[kind]}
        rows.append(row)
        lo, hi = row["range"]
        print(f"  {mine:32s} / {xla:34s} {row['ratio']:6.3f} [{lo:.3f}-{hi:.3f}]  "
              f"fastact/ceil {row['fastact/ceiling']:.2f} "
              f"(fresh {row['fastact/fresh ceiling']:.2f})  XLA/ceil {row['xla/ceiling']:.2f} "
              f"(fresh {row['xla/fresh ceiling']:.2f})", file=out)
    return {"shape": shape, "rows": rows, "checks": (same_y, same_g)}


def _bench_step(threads, jax, fj, rng, out, rounds, batch_seconds, cases_class, shape):
    """A jitted training-like step (three fastact calls, XLA ops between them,
    the gradient of a sum), with fastact's kernels on 1 and on `threads`
    threads, interleaved: does fastact's team inside XLA's step oversubscribe
    the CPUs?"""
    jnp = jax.numpy
    x = jnp.asarray(rng.standard_normal(shape, dtype=np.float32))
    a1 = jnp.asarray(rng.uniform(0.05, 0.5, shape[1]).astype(np.float32))
    a2 = jnp.asarray(rng.uniform(0.05, 0.5, shape[1]).astype(np.float32))
    bshape = (1, -1) + (1,) * (len(shape) - 2)

    def loss(x, a1, a2):
        h = fj.prelu(x, a1)
        h = h * 1.5 + jnp.mean(h, axis=(0,) + tuple(range(2, len(shape))), keepdims=True)
        h = fj.elu(fj.prelu(h, a2))
        return jnp.sum(h * h) + jnp.sum(a1.reshape(bshape) * h)

    step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))

    t = cases_class(out, threads=threads, set_threads=set_num_threads)
    for c in sorted({1, threads}):
        t.add_at(c, f"jitted step, fastact on {c} thread(s)", x.size * 4,
                 lambda: _ready(step(x, a1, a2)[1]))
    print(f"\njax: a jitted step (prelu, XLA ops, prelu, elu, their gradients) at {shape}, "
          f"fastact on 1 vs {threads} threads, interleaved", file=out)
    t.run(rounds, batch_seconds)
    if threads > 1:
        one, many = (t.samples[f"jitted step, fastact on {c} thread(s)"] for c in (1, threads))
        ratios = [o / m for o, m in zip(one, many)]
        print(f"  step time on 1 thread / on {threads}: {statistics.median(ratios):.3f} "
              f"[{min(ratios):.3f}-{max(ratios):.3f}] (above 1: fastact's team helps inside "
              f"XLA's step)", file=out)
        return ratios
    return None


def run(threads, quick, out, cases_class, rounds=None, batch_seconds=None):
    """The JAX section; `cases_class` is the bench's interleaved timer
    (fastact._bench._Cases).  Returns one summary per shape, or None when
    skipped."""
    loaded, why = _load()
    if loaded is None:
        print(f"\njax (optional: pip install \"fastact[jax]\"): skipped, {why}", file=out)
        return None
    jax, fj = loaded
    set_num_threads(threads)
    if rounds is None:
        rounds, batch_seconds = (3, 0.005) if quick else (21, 0.04)
    rng = np.random.default_rng(2027)
    summaries = [_bench_shape(shape, threads, jax, fj, rng, out, rounds, batch_seconds,
                              cases_class)
                 for shape in (QUICK_SHAPES if quick else SHAPES)]
    step_shape = (4, 16, 56, 56) if quick else (16, 64, 56, 56)
    _bench_step(threads, jax, fj, rng, out, rounds, batch_seconds, cases_class, step_shape)
    set_num_threads(threads)
    return summaries
