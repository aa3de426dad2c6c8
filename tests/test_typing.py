"""What fastact ships for type checkers: the py.typed marker, stubs for the
compiled modules that name what their .pyx files define, and the example of
user code that .ci/run type-checks, which must also run."""
import ast
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASTACT = os.path.join(ROOT, "fastact")


def test_py_typed_marker():
    assert os.path.isfile(os.path.join(FASTACT, "py.typed"))


def _pyx_names(path):
    """The Python-visible names a .pyx defines at module level: def functions,
    classes, cdef classes and assignments (cdef functions and structs are not)."""
    text = open(path).read()
    return (set(re.findall(r"^def (\w+)\(", text, re.M))
            | set(re.findall(r"^(?:cdef )?class (\w+)", text, re.M))
            | set(re.findall(r"^([A-Za-z]\w*) = ", text, re.M)))


def _stub_names(path):
    names = set()
    for node in ast.parse(open(path).read()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


COMPILED = ["_cpu", "_cuda", "_membench"]


@pytest.mark.parametrize("module", COMPILED)
def test_stub_names_what_the_pyx_defines(module):
    want = _pyx_names(os.path.join(FASTACT, module + ".pyx"))
    got = {n for n in _stub_names(os.path.join(FASTACT, module + ".pyi"))
           if not (n.startswith("__") and n.endswith("__"))}
    assert want and got == want


@pytest.mark.parametrize("module", COMPILED)
def test_stub_signatures_are_the_pyx(module):
    """Each def's parameter names, in order, as the .pyx declares them (a bare
    * before keyword-only ones)."""
    text = open(os.path.join(FASTACT, module + ".pyx")).read()
    pyx = {}
    for name, params in re.findall(r"^def (\w+)\(([^)]*)\)", text, re.M):
        pyx[name] = [p.split("=")[0].split()[-1]
                     for p in params.replace("\n", " ").split(",") if p.strip()]
    stub = {node.name: ([a.arg for a in node.args.args]
                        + ["*"] * bool(node.args.kwonlyargs)
                        + [a.arg for a in node.args.kwonlyargs])
            for node in ast.parse(open(os.path.join(FASTACT, module + ".pyi")).read()).body
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("__")}
    assert stub == pyx


def test_cpu_stub_op_constants():
    """The OP_<NAME> constants the stub's __getattr__ stands for exist."""
    from fastact import _cpu
    assert {f"OP_{n.upper()}" for n in _cpu.OPS} <= set(dir(_cpu))
    assert _cpu.FORWARD_OPS < set(_cpu.OPS)


def test_typing_example_runs():
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "typing_example.py")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
