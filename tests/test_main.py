"""`python -m fastact` runs (the benchmark's smoke run, info, help) and what a new user
meets first: import time, bfloat16 without ml_dtypes, an unbuilt source tree."""
import os
import subprocess
import sys

import pytest

import fastact


def _run(*args):
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "fastact", *args], capture_output=True,
                          text=True, timeout=300, env=env)


def test_bench_quick_prints_the_ratio_table():
    r = _run("bench", "--quick", "--threads", "2")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for row in ("ceiling copy (ordinary stores)", "ceiling copy (streaming stores)",
                "ceiling rmw", "ceiling r2w1", "fastact forward out=", "fastact forward in place",
                "fastact backward out=", "numpy max/min into out", "ratios",
                "affine_prelu (BatchNorm + PReLU) NCHW", "small calls:",
                "fastact elu in place", "prelu_backward out="):
        assert row in out, row
    assert "2 threads" in out


def test_info_and_show_config(capsys):
    r = _run("info")
    assert r.returncode == 0, r.stderr
    assert f"fastact {fastact.__version__}" in r.stdout
    fastact.show_config()
    shown = capsys.readouterr().out
    for word in ("OpenMP", "threads", "forked", "SIMD level", "CUDA"):
        assert word in shown
    cfg = fastact.config()
    assert cfg["isa"] in cfg["isa_supported"]
    assert cfg["cuda_built"] is (not fastact._device.cuda_status().startswith("not built"))


def test_forced_isa_from_the_environment():
    code = "import fastact; print(fastact.config()['isa'])"
    env = dict(os.environ, FASTACT_ISA="baseline")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "baseline"
    env["FASTACT_ISA"] = "nonsense"
    r = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode != 0 and "FASTACT_ISA='nonsense' ignored" in r.stderr


def test_no_command_prints_the_help():
    r = _run()
    assert r.returncode == 0, r.stderr
    assert "usage: python -m fastact" in r.stdout
    for command in ("bench", "info"):
        assert command in r.stdout


def test_info_says_where_from_and_what_is_usable():
    r = _run("info")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    import platform

    import numpy as np
    assert f"Python:             {platform.python_version()}" in out
    assert f"numpy:              {np.__version__}" in out
    assert os.path.dirname(fastact.__file__) in out
    assert "bfloat16 usable:" in out and "CUDA usable:" in out
    cfg = fastact.config()
    assert cfg["location"] == os.path.dirname(fastact.__file__)
    if cfg["bfloat16"]:
        import ml_dtypes
        assert f"yes (ml_dtypes {ml_dtypes.__version__})" in out
    else:
        assert 'no (ml_dtypes is not installed (pip install "fastact[bfloat16]"))' in out
    assert cfg["cuda_usable"] is fastact.cuda_available()
    if not cfg["cuda_usable"]:
        assert "CUDA usable:        no (" in out


def _python(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, **env))


def test_import_does_not_import_ml_dtypes():
    r = _python("import sys, fastact, numpy as np\n"
                "fastact.prelu(np.ones((2, 3), np.float16), 0.5)\n"
                "fastact.PReLU(3, dtype='float16')\n"
                "assert 'ml_dtypes' not in sys.modules, 'ml_dtypes imported'\n"
                "print('ok')")
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_bfloat16_by_name_imports_ml_dtypes_on_demand():
    pytest.importorskip("ml_dtypes")
    r = _python("import sys, fastact, numpy as np\n"
                "m = fastact.PReLU(3, dtype='bfloat16')\n"
                "assert 'ml_dtypes' in sys.modules and m.slopes.dtype.name == 'bfloat16'\n"
                "x = np.array([[-2.0, 1.0, -4.0]]).astype(m.slopes.dtype)\n"
                "print(m(x).astype(np.float64).tolist())")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[[-0.5, 1.0, -1.0]]"


# ml_dtypes made unimportable (None in sys.modules), as where it is not installed
_WITHOUT_ML_DTYPES = "import sys; sys.modules['ml_dtypes'] = None\n"


def test_bfloat16_without_ml_dtypes_says_how_to_install_it():
    r = _python(_WITHOUT_ML_DTYPES + (
        "import fastact\n"
        "try:\n"
        "    fastact.PReLU(4, dtype='bfloat16')\n"
        "except TypeError as e:\n"
        "    print(e)\n"
        "print(fastact.config()['bfloat16'], fastact.config()['bfloat16_detail'])\n"))
    assert r.returncode == 0, r.stderr
    message, status = r.stdout.strip().splitlines()
    assert message.startswith("dtype='bfloat16': bfloat16 needs the optional ml_dtypes package")
    assert 'pip install "fastact[bfloat16]"' in message
    assert status.startswith("False ml_dtypes is not installed")


def test_torch_bfloat16_without_ml_dtypes_says_how_to_install_it():
    pytest.importorskip("torch")
    r = _python(_WITHOUT_ML_DTYPES + (
        "import torch, fastact\n"
        "x = torch.ones(2, 3, dtype=torch.bfloat16)\n"
        "try:\n"
        "    fastact.relu(x)\n"
        "except TypeError as e:\n"
        "    print(e)\n"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("x is a torch.bfloat16 tensor: bfloat16 needs the optional "
                               'ml_dtypes package: pip install "fastact[bfloat16]"'), r.stdout


def test_an_unbuilt_source_tree_says_so(tmp_path):
    """A checkout's fastact/ without its compiled module, first on sys.path
    (as with `python -m pytest` in the checkout's root), shadowing an
    installed fastact: a plain ImportError with the two ways out."""
    import shutil
    src = os.path.dirname(fastact.__file__)
    tree = tmp_path / "fastact"
    tree.mkdir()
    for name in os.listdir(src):
        if name.endswith((".py", ".pyx")):
            shutil.copy(os.path.join(src, name), tree / name)
    r = subprocess.run([sys.executable, "-c", "import fastact"], capture_output=True,
                       text=True, timeout=120, cwd=tmp_path)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: fastact was imported from its source tree"), r.stderr
    assert "python -m pip install -e ." in last and "run from another directory" in last
    assert "circular import" not in r.stderr


def test_bench_compares_thread_counts():
    r = _run("bench", "--quick", "--threads", "1,2")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for row in ("fastact forward out= [1 thr]", "fastact forward out= [2 thr]",
                "ceiling copy (streaming stores) [1 thr]", "ceiling r2w1 (ordinary stores) [2 thr]",
                "one-thread time / N-thread time", "ceilings against one thread"):
        assert row in out, row
    r = _run("bench", "--threads", "0,2")
    assert r.returncode != 0 and "at least 1" in r.stderr


def test_bench_busy_section():
    r = _run("bench", "--quick", "--busy", "--threads", "2")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for row in ("busy machine", "the machine as it is", "CPU-bound processes (2 per CPU)",
                "default / 1 thread", "worst busy median"):
        assert row in out, row


def test_bench_torch_without_torch_says_so():
    r = _python("import sys; sys.modules['torch'] = None\n"
                "from fastact.__main__ import main\n"
                "sys.exit(main(['bench', '--torch', '--quick']))")
    assert r.returncode == 1, r.stderr
    assert r.stdout.startswith("the torch benchmark needs PyTorch"), r.stdout


def test_bench_torch_takes_no_thread_options():
    r = _run("bench", "--torch", "--threads", "2")
    assert r.returncode == 2
    assert "--torch runs with torch's thread count" in r.stderr
