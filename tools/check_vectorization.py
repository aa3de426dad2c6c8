"""Check that gcc vectorises every innermost loop of the kernels, for every ISA.

Compiles src/kernels_<isa>.c with the build's flags and gcc's vectoriser
report (-fdump-tree-vect-details), and fails when an innermost `for` loop of
src/kernels_impl.h is not reported as vectorised, or is reported as not
vectorised in any of its instances.  A loop skeleton is instantiated per op,
dtype and in-place flag, inside the kernel functions that src/ops.h's op list
expands (fwd_<op>, bwd_<op>, fwd_<op>_inplace, ...; the report says which
function each loop was compiled in), so a failure names the kernel, dtype and
ISA, e.g. `bwd_elu (f32)`.

Loops marked `not hot` or `scalar:` (with the reason) on their line are
exempt.  Kernels that are scalar on purpose are listed in kernels_impl.h on
lines of the form

    scalar kernels: fwd_elu bwd_elu for f64 on all (libm's exp is a call)
    scalar kernels: fwd_elu for f32 f16 bf16 on baseline (...)

(their in-place twins included).  Run from the repository root:

    python tools/check_vectorization.py
"""
import ast
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")
IMPL = os.path.join(SRC, "kernels_impl.h")
ISAS = ["baseline", "avx2", "avx512f"]
DTYPES = ["f32", "f64", "f16", "bf16"]


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
    """The lines of the `for` loops whose bodies hold no other loop, except
    those marked `not hot` or `scalar:` (a comment on the loop's line says
    why), each with its enclosing loop's line or None."""
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
        loops[first] = max(parents) if parents else None
    return loops


def scalar_kernels(text):
    """{(kernel, dtype, isa)} declared scalar on purpose."""
    exempt = set()
    for m in re.finditer(r"scalar kernels: ([\w ]+?) for ([\w ]+?) on ([\w ]+?) \(", text):
        kernels, dtypes, isas = (g.split() for g in m.groups())
        isas = ISAS if isas == ["all"] else isas
        exempt |= {(k, d, i) for k in kernels for d in dtypes for i in isas}
    return exempt


def kernel_of(function, isa):
    """('fwd_elu', 'f32') for the function fwd_elu_inplace_f32_avx2.constprop.0."""
    base = function.split(".")[0]
    m = re.fullmatch(rf"(\w+?)_({'|'.join(DTYPES)})_{isa}", base)
    if not m:
        return base, None
    return re.sub(r"_inplace$", "", m.group(1)), m.group(2)


def vectoriser_report(isa):
    """{(line, kernel, dtype): set of 'vectorized'/'missed'} for the loops of
    kernels_impl.h, by the function gcc compiled them in."""
    with tempfile.TemporaryDirectory() as tmp:
        dump = os.path.join(tmp, "vect.txt")
        cmd = ["gcc", *build_flags(), "-fopenmp", "-I", SRC, "-c",
               os.path.join(SRC, f"kernels_{isa}.c"), "-o", os.path.join(tmp, "k.o"),
               f"-fdump-tree-vect-details={dump}"]
        subprocess.run(cmd, capture_output=True, text=True, check=True)
        with open(dump) as f:
            text = f.read()
    report, function = {}, None
    for line in text.splitlines():
        m = re.match(r";; Function (\S+)", line)
        if m:
            function = m.group(1)
            continue
        m = re.match(r"\S*kernels_impl\.h:(\d+):\d+: (optimized: loop vectorized|"
                     r"missed: couldn't vectorize loop)", line)
        if m:
            kernel, dtype = kernel_of(function, isa)
            what = "vectorized" if m.group(2).startswith("optimized") else "missed"
            report.setdefault((int(m.group(1)), kernel, dtype), set()).add(what)
    return report


def main():
    with open(IMPL) as f:
        text = f.read()
    loops = innermost_loops(text)
    exempt = scalar_kernels(text)
    failed = False
    # the ISAs' compiles side by side, as many at once as there are CPUs
    # (each takes tens of seconds)
    with ThreadPoolExecutor(max(1, min(len(ISAS), os.cpu_count() or 1))) as pool:
        reports = dict(zip(ISAS, pool.map(vectoriser_report, ISAS)))
    for isa in ISAS:
        report = reports[isa]
        instances = {(n, k, d) for (n, k, d) in report if n in loops or n in loops.values()}
        seen_lines = {n for n, _, _ in instances}

        def ok(line, kernel, dtype, report=report):
            return report.get((line, kernel, dtype)) == {"vectorized"}

        # each innermost loop, in each kernel it is compiled in, is vectorised
        # itself or as part of its enclosing loop (outer-loop vectorisation)
        bad = []
        for line, parent in loops.items():
            if line not in seen_lines and parent not in seen_lines:
                bad.append(f"line {line} (no report: not compiled, or not a loop any more)")
                continue
            kernels = {(k, d) for n, k, d in instances if n in (line, parent)}
            for kernel, dtype in sorted(kernels, key=str):
                if (kernel, dtype, isa) in exempt:
                    continue
                if not ok(line, kernel, dtype) and not ok(parent, kernel, dtype):
                    bad.append(f"{kernel} ({dtype}) at kernels_impl.h line {line}")
        checked = sum(1 for n, k, d in instances if n in loops and (k, d, isa) not in exempt)
        print(f"{isa:9s} {checked - len(bad)}/{checked} innermost loop instances vectorised "
              f"({len(loops)} loops in the source)")
        if bad:
            failed = True
            for b in bad:
                print(f"  NOT vectorised: {b}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
