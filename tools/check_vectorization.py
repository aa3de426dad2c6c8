"""Check that gcc vectorises every innermost loop of the kernels, for every ISA.

Compiles src/kernels_<isa>.c with the build's flags and -fopt-info-vec-all,
and fails when an innermost `for` loop of src/kernels_impl.h is not reported
as vectorised, or is reported as not vectorised in any of its instantiations
(one per dtype).  Loops marked `not hot` or `scalar:` (with the reason) on
their line are exempt; `scalar on baseline:` exempts a loop for the baseline
ISA only.  Run from the repository root:

    python tools/check_vectorization.py
"""
import ast
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")
IMPL = os.path.join(SRC, "kernels_impl.h")
ISAS = ["baseline", "avx2", "avx512f"]



def build_flags():
    """EXACTNESS_FLAGS and SPEED_FLAGS from setup.py: the flags the real build
    uses."""
    with open(os.path.join(ROOT, "setup.py")) as f:
        tree = ast.parse(f.read())
    flags = {}
    for node in tree.body:
        name = getattr(node.targets[0], "id", "") if isinstance(node, ast.Assign) else ""
        if name in ("EXACTNESS_FLAGS", "SPEED_FLAGS"):
            flags[name] = ast.literal_eval(node.value)
    if len(flags) != 2:
        raise RuntimeError("EXACTNESS_FLAGS or SPEED_FLAGS not found in setup.py")
    return flags["EXACTNESS_FLAGS"] + flags["SPEED_FLAGS"]


def innermost_loops(text):
    """{line: enclosing loop's line or None} for the `for` loops whose bodies
    hold no other loop, except those marked `not hot` (a comment on the
    loop's line says why)."""
    lines = text.splitlines()
    spans = []                      # (first line, last line) of each loop
    for i, line in enumerate(lines):
        if not re.match(r"\s*for \(", line):
            continue
        depth, j = 0, i
        for j in range(i, len(lines)):
            depth += lines[j].count("{") - lines[j].count("}")
            if depth <= 0 and "{" in "".join(lines[i:j + 1]):
                break
        spans.append((i + 1, j + 1))
    loops = {}
    for first, last in spans:
        if "not hot" in lines[first - 1] or "scalar:" in lines[first - 1]:
            continue
        if any(first < f <= last for f, _ in spans):
            continue                # has an inner loop
        parents = [f for f, end in spans if f < first and last <= end]
        exempt = {"baseline"} if "scalar on baseline:" in lines[first - 1] else set()
        loops[first] = (max(parents) if parents else None, exempt)
    return loops


def vectorised_lines(isa):
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["gcc", *build_flags(), "-fopenmp", "-I", SRC, "-c",
               os.path.join(SRC, f"kernels_{isa}.c"), "-o", os.path.join(tmp, "k.o"),
               "-fopt-info-vec-all"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
    found, missed = {}, set()
    vectorized = r"kernels_impl\.h:(\d+):\d+: optimized: loop vectorized using (\d+) byte"
    for m in re.finditer(vectorized, out):
        found.setdefault(int(m.group(1)), []).append(int(m.group(2)))
    for m in re.finditer(r"kernels_impl\.h:(\d+):\d+: missed: couldn't vectorize loop", out):
        missed.add(int(m.group(1)))
    return found, missed


def main():
    with open(IMPL) as f:
        loops = innermost_loops(f.read())
    failed = False
    for isa in ISAS:
        found, missed = vectorised_lines(isa)

        def ok(line, found=found, missed=missed):
            return line is not None and line in found and line not in missed

        # vectorised in every instantiation, itself or as part of its
        # enclosing loop (outer-loop vectorisation)
        checked = {n: parent for n, (parent, exempt) in loops.items() if isa not in exempt}
        missing = [n for n, parent in checked.items() if not ok(n) and not ok(parent)]
        widths = sorted({w for n, parent in checked.items()
                         for w in found.get(n, []) + found.get(parent, [])})
        print(f"{isa:9s} {len(checked) - len(missing)}/{len(checked)} innermost loops vectorised "
              f"(vector widths {widths} bytes)")
        if missing:
            failed = True
            print(f"  NOT vectorised at kernels_impl.h lines {missing}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
