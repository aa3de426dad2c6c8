"""Data, thread settings and baselines shared by the benchmarks."""
import numpy as np

import fastact

# tiny (a call's fixed cost), in cache, and past the cache (memory-bound)
SHAPES = [(1, 16, 8, 8), (8, 64, 56, 56), (32, 64, 56, 56)]
SHAPE_NAMES = ["1x16x8x8", "8x64x56x56", "32x64x56x56"]
LARGE = (32, 64, 112, 112)          # 103 MB of float32: the ratio benchmarks
DTYPES = ["float32", "float64"]
SLOPES = ["per_channel", "shared"]
THREADS = [1, "all"]


class Timing:
    """asv timing settings for these kernels: a call takes 0.3 us to 10 ms, so
    a few short samples per parameter combination suffice (asv's default
    allows 20 s for each, hours for the whole grid)."""
    warmup_time = 0.05
    sample_time = 0.01
    repeat = (3, 7, 0.5)


def use_threads(threads):
    """1, or 'all': fastact's default (OpenMP's setting, capped by the CPUs)."""
    fastact.set_num_threads(None if threads == "all" else threads)


def make(shape, dtype, slopes_kind, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    if slopes_kind == "shared":
        slopes = 0.25
    else:
        slopes = rng.uniform(0.05, 0.5, shape[1]).astype(dtype)
    return x, g, slopes


def torch_or_skip():
    """torch and torch.nn.functional, or NotImplementedError (asv: skipped)."""
    try:
        import torch
        import torch.nn.functional as F
    except Exception as exc:          # not installed, or broken
        raise NotImplementedError(f"torch not available: {exc}") from exc
    return torch, F
