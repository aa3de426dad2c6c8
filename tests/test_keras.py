"""fastact.keras on each Keras backend (tests/keras_cases.py, one fresh
interpreter per backend: Keras fixes its backend at import).  Skipped where
Keras, or a backend's library, is not installed."""
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

# keras is not imported here: it would fix its backend for this process (by
# default TensorFlow, which need not be installed)
if importlib.util.find_spec("keras") is None:
    pytest.skip("keras is not installed", allow_module_level=True)

HERE = pathlib.Path(__file__).resolve().parent
# the backend's library, and what its interpreter also needs
NEEDS = {"jax": ("jax",), "torch": ("torch",), "numpy": ()}
CASES = {
    "jax": ["outputs_match_numpy_api", "forward_matches_keras", "fit_matches_keras",
            "save_load_round_trip", "activations_by_name", "convert_swaps_layers",
            "convert_swaps_activations", "config_round_trip", "semantics_where_keras_differs",
            "tensorflow_fallback", "readme_example", "check_grads_float64"],
    "torch": ["outputs_match_numpy_api", "forward_matches_keras", "fit_matches_keras",
              "save_load_round_trip", "activations_by_name", "convert_swaps_layers",
              "convert_swaps_activations", "config_round_trip", "semantics_where_keras_differs",
              "gradcheck_float64"],
    "numpy": ["outputs_match_numpy_api", "forward_matches_keras", "save_load_round_trip",
              "activations_by_name", "convert_swaps_layers", "convert_swaps_activations",
              "config_round_trip"],
}
_runs = {}


def _run(backend):
    """Every case of one backend, in one interpreter (cached per session)."""
    if backend not in _runs:
        for module in NEEDS[backend]:
            if importlib.util.find_spec(module) is None:
                _runs[backend] = f"{module} is not installed"
                return _runs[backend]
        env = dict(os.environ, KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="")
        env.pop("JAX_ENABLE_X64", None)
        proc = subprocess.run([sys.executable, str(HERE / "keras_cases.py")], env=env,
                              capture_output=True, text=True, timeout=900)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULTS ")]
        if proc.returncode or not lines:
            pytest.fail(f"tests/keras_cases.py on {backend} exited with {proc.returncode}:\n"
                        f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
        _runs[backend] = json.loads(lines[-1][len("RESULTS "):])
    return _runs[backend]


@pytest.mark.parametrize("backend,name", [(b, c) for b, cs in CASES.items() for c in cs])
def test_keras_backend(backend, name):
    results = _run(backend)
    if isinstance(results, str):
        pytest.skip(f"the {backend} backend: {results}")
    assert name in results, f"keras_cases.py did not run {name} on {backend}"
    outcome = results[name]
    if isinstance(outcome, str) and outcome.startswith("skip: "):
        pytest.skip(outcome[len("skip: "):])
    assert outcome is None, f"{name} on {backend}:\n{outcome}"


def test_import_fastact_does_not_import_keras():
    code = "import sys, fastact; assert 'keras' not in sys.modules and 'jax' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
