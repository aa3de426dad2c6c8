"""Keras 3 on the JAX backend: one training step (train_on_batch) of a small
channels-last conv net (Conv2D + PReLU, Conv2D + LeakyReLU, Conv2D + ELU,
Dense) with Keras's activation layers / the same step after
fastact.keras.convert, measured by fastact's Keras benchmark
(fastact/_bench_keras.py, run in a fresh interpreter with KERAS_BACKEND=jax:
interleaved rounds, the median of the per-round ratios).  Above 1: fastact is
faster.  Skipped where keras or jax (or this fastact's Keras benchmark) is
missing."""
import io
import statistics


class KerasJaxTraining:
    timeout = 600

    def setup_cache(self):
        try:
            from fastact import _bench_keras
        except Exception as exc:          # an older fastact
            return f"{type(exc).__name__}: {exc}"
        result = _bench_keras.run(out=io.StringIO(), quick=False)
        if result is None:
            return "keras or jax not installed, or the benchmark failed"
        return result

    def setup(self, result):
        if isinstance(result, str):
            raise NotImplementedError(f"Keras benchmark not available: {result}")  # skipped
        self.result = result

    def track_train_step_ratio(self, result):
        return statistics.median(self.result["ratios"])
    track_train_step_ratio.unit = "keras time / fastact time"

    def track_train_step_fastact_ms(self, result):
        return statistics.median(self.result["times"]["fastact"]) * 1e3
    track_train_step_fastact_ms.unit = "ms"
