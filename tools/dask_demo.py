"""fastact on a Dask distributed cluster: prelu and prelu_backward mapped over
the chunks of an array larger than a worker's memory limit, each chunk
checked against the float64 oracle on the worker that computed it.

A LocalCluster of worker processes (loopback only) generates x and
grad_output chunk by chunk from a seed (dask.array.random), so the whole
array never exists anywhere: each task holds one chunk of each, runs
``fastact.prelu`` and ``fastact.prelu_backward`` on it, compares the results
with ``fastact._reference`` (in slices, to bound the memory the float64
oracle takes) and returns a small verdict: elements that differ, the
chunk's grad_slopes and the oracle's, and the seconds fastact took.  The
client adds the per-chunk slope gradients up and compares the sum with the
oracle's.

    python tools/dask_demo.py                    # 2 GiB of x (and 2 GiB of grad_output)
    python tools/dask_demo.py --gib 0.0625 --chunk-mib 4     # quick

Needs ``pip install "dask[distributed]"`` (or fastact's ``dask`` extra).
"""
import argparse
import time

import numpy as np

import fastact

C, H, W = 64, 128, 128          # (N, C, H, W) float32; N from the size asked for
VERDICT = 4 + 2 * C             # y wrong, grad_input wrong, bytes, seconds, gs, gs oracle


def check_block(x, g, slopes):
    """One chunk: fastact's forward and backward, and the oracle's, compared
    on the worker.  Returns a (1, 1, 1, VERDICT) float64 verdict."""
    from fastact import _reference

    t0 = time.perf_counter()
    y = fastact.prelu(x, slopes)
    gi, gs = fastact.prelu_backward(g, x, slopes)
    seconds = time.perf_counter() - t0
    y_wrong = gi_wrong = 0
    gs_ref = np.zeros(slopes.shape, np.float64)
    step = max(1, x.shape[0] // 8)             # the oracle in slices of the chunk
    for i in range(0, x.shape[0], step):
        xs, gsl = x[i:i + step], g[i:i + step]
        y_ref = _reference.prelu(xs, slopes).astype(np.float32)
        y_wrong += int(np.count_nonzero(y[i:i + step] != y_ref))
        gi_ref, gs_part = _reference.prelu_backward(gsl, xs, slopes)
        gi_wrong += int(np.count_nonzero(gi[i:i + step] != gi_ref.astype(np.float32)))
        gs_ref += gs_part
    out = np.zeros((1, 1, 1, VERDICT))
    out[0, 0, 0, :4] = y_wrong, gi_wrong, x.nbytes, seconds
    out[0, 0, 0, 4:4 + C] = gs
    out[0, 0, 0, 4 + C:] = gs_ref
    return out


def run(client, gib, chunk_mib, seed=0, timeout=None):
    """The check over an array of `gib` GiB of float32 in chunks of
    `chunk_mib` MiB; returns a dict of figures (raises AssertionError when a
    result differs from the oracle)."""
    import dask.array as da

    per_sample = C * H * W * 4
    n_chunk = max(1, (chunk_mib << 20) // per_sample)
    n = max(n_chunk, int(round(gib * (1 << 30) / per_sample / n_chunk)) * n_chunk)
    shape, chunks = (n, C, H, W), (n_chunk, C, H, W)
    rng = np.random.default_rng(seed)
    slopes = rng.uniform(-1.5, 1.5, C).astype(np.float32)
    gen = da.random.default_rng(seed + 1)
    x = gen.standard_normal(shape, chunks=chunks, dtype=np.float32)
    g = gen.standard_normal(shape, chunks=chunks, dtype=np.float32)
    verdicts = da.map_blocks(check_block, x, g, slopes, dtype=np.float64,
                             chunks=(1, 1, 1, VERDICT))
    t0 = time.perf_counter()
    v = client.compute(verdicts).result(timeout=timeout).reshape(-1, VERDICT)
    wall = time.perf_counter() - t0
    y_wrong, gi_wrong = int(v[:, 0].sum()), int(v[:, 1].sum())
    gs, gs_ref = v[:, 4:4 + C].sum(axis=0), v[:, 4 + C:].sum(axis=0)
    # float32 per-chunk sums (each rounded once) added in float64: within a
    # float32 rounding of each chunk's sum of |terms|
    gs_err = float(np.max(np.abs(gs - gs_ref) / (np.abs(v[:, 4 + C:]).sum(axis=0) + 1e-30)))
    figures = {
        "gib": x.nbytes / (1 << 30), "chunks": v.shape[0],
        "chunk_mib": n_chunk * per_sample / (1 << 20),
        "shape": shape, "wall_s": wall, "fastact_s": float(v[:, 3].sum()),
        "y_wrong": y_wrong, "gi_wrong": gi_wrong, "grad_slopes_rel_err": gs_err,
    }
    assert y_wrong == 0 and gi_wrong == 0, figures
    assert gs_err < 1e-6, figures
    return figures


def cluster(memory_limit, env=None):
    """A loopback LocalCluster of 2 single-threaded worker processes (with
    the environment variables `env`), and its client; fastact in each
    worker runs on 1 thread (the workers share the CPUs)."""
    from distributed import Client, LocalCluster

    c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                     memory_limit=memory_limit, host="127.0.0.1", dashboard_address=None,
                     env=env or {})
    client = Client(c)
    client.run(fastact.set_num_threads, 1)
    return c, client


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gib", type=float, default=2.0, help="size of x in GiB (2)")
    ap.add_argument("--chunk-mib", type=int, default=64, help="chunk size in MiB (64)")
    ap.add_argument("--memory-limit", default="1GiB", help="per worker (1GiB)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    c, client = cluster(args.memory_limit)
    start = time.perf_counter() - t0
    try:
        f = run(client, args.gib, args.chunk_mib)
    finally:
        client.close()
        c.close()
    print(f"cluster: 2 worker processes x 1 thread, memory limit {args.memory_limit} each, "
          f"started in {start:.1f} s")
    print(f"x: {f['shape']} float32, {f['gib']:.2f} GiB (grad_output as much), "
          f"{f['chunks']} chunks of {f['chunk_mib']:.0f} MiB, generated on the workers")
    print(f"checked in {f['wall_s']:.1f} s ({2048 * f['gib'] / f['wall_s']:.0f} MiB/s of input); "
          f"fastact's own calls {f['fastact_s']:.1f} s of it (summed over tasks)")
    print(f"elements differing from the oracle: y {f['y_wrong']}, grad_input {f['gi_wrong']}; "
          f"grad_slopes summed over chunks within {f['grad_slopes_rel_err']:.1e} of the oracle's "
          f"(relative to the sum of |terms|)")


if __name__ == "__main__":
    main()
