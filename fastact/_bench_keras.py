"""The Keras section of `python -m fastact bench`: one training step
(``train_on_batch``) of a small channels-last conv net on Keras's JAX backend,
with Keras's activation layers against fastact.keras's (the same model after
``fastact.keras.convert``), timed in interleaved rounds.

Keras fixes its backend at import, so the section runs in a fresh
interpreter with ``KERAS_BACKEND=jax`` (``python -m fastact._bench_keras``);
it is skipped, with the reason, where keras or jax is missing.
"""
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time

SHAPE = (32, 32, 32, 3)          # batch, height, width, channels
QUICK_SHAPE = (8, 16, 16, 3)


def build_net(layers, input_shape, width=16):
    """Conv2D + PReLU(shared_axes=[1, 2]) + Conv2D + LeakyReLU + Conv2D + ELU
    + Dense, with the activation layers of module ``layers``."""
    import keras
    inputs = keras.Input(input_shape)
    h = keras.layers.Conv2D(width, 3, padding="same")(inputs)
    h = layers.PReLU(shared_axes=[1, 2],
                     alpha_initializer=keras.initializers.Constant(0.25))(h)
    h = keras.layers.Conv2D(width, 3, padding="same")(h)
    h = layers.LeakyReLU()(h)
    h = keras.layers.Conv2D(width, 3, padding="same")(h)
    h = layers.ELU()(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    outputs = keras.layers.Dense(10)(h)
    return keras.Model(inputs, outputs)


def measure(shape, rounds, steps):
    """{row: [seconds per step, per round]} and the per-round ratios
    keras / fastact (above 1: fastact faster)."""
    import keras
    import numpy as np

    import fastact.keras as fk
    keras.utils.set_random_seed(0)
    theirs = build_net(keras.layers, shape[1:])
    ours = fk.convert(theirs)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.integers(0, 10, shape[0])
    models = {"keras": theirs, "fastact": ours}
    for model in models.values():
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        for _ in range(3):              # compile the step, warm the caches
            model.train_on_batch(x, y)
    times = {name: [] for name in models}
    for r in range(rounds):
        order = list(models) if r % 2 == 0 else list(models)[::-1]
        for name in order:
            model = models[name]
            t0 = time.perf_counter()
            for _ in range(steps):
                loss = model.train_on_batch(x, y)
            float(np.asarray(loss))     # wait for the last step
            times[name].append((time.perf_counter() - t0) / steps)
    ratios = [k / f for k, f in zip(times["keras"], times["fastact"])]
    return times, ratios


def _fmt(values, scale=1e3):
    return (f"{statistics.median(values) * scale:8.2f} "
            f"({min(values) * scale:.2f}-{max(values) * scale:.2f})")


def run(out=sys.stdout, quick=False):
    """Print the section (or why it is skipped)."""
    print("\nKeras 3 on JAX: one train_on_batch step, Keras's activation layers "
          "against fastact.keras's", file=out)
    missing = [m for m in ("keras", "jax") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"  skipped: {' and '.join(missing)} not installed "
              f'(pip install "fastact[keras]")', file=out)
        return None
    env = dict(os.environ, KERAS_BACKEND="jax")
    cmd = [sys.executable, "-m", "fastact._bench_keras"] + (["--quick"] if quick else [])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        print(f"  failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}", file=out)
        return None
    result = json.loads(lines[-1][len("RESULT "):])
    print(f"  {result['net']}, batch {result['shape'][0]}, input {result['shape'][1:]}; "
          f"{result['rounds']} interleaved rounds of {result['steps']} steps; "
          f"ms per step, median (min-max)", file=out)
    for name in ("keras", "fastact"):
        print(f"  {name:8s} {_fmt(result['times'][name])}", file=out)
    print(f"  keras / fastact {_fmt(result['ratios'], 1)}  (above 1: fastact faster)", file=out)
    return result


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    quick = "--quick" in argv
    shape = QUICK_SHAPE if quick else SHAPE
    rounds, steps = (3, 2) if quick else (15, 10)
    times, ratios = measure(shape, rounds, steps)
    print("RESULT " + json.dumps({
        "net": "Conv2D+PReLU, Conv2D+LeakyReLU, Conv2D+ELU, Dense (16 channels)",
        "shape": list(shape), "rounds": rounds, "steps": steps, "times": times,
        "ratios": ratios}))


if __name__ == "__main__":
    main()
