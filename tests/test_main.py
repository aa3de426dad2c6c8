"""`python -m fastact` runs: the benchmark's smoke run and the info command."""
import os
import subprocess
import sys

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
                "fastact backward out=", "numpy max/min into out", "ratios"):
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
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "baseline"
    env["FASTACT_ISA"] = "nonsense"
    r = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode != 0 and "FASTACT_ISA='nonsense' ignored" in r.stderr


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
