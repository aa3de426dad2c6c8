"""Build of fastact's C extension and of its optional CUDA module.

Environment:
  FASTACT_NO_OPENMP=1   build serial even where the compiler has OpenMP.
  FASTACT_CUDA=1        also build the CUDA module fastact._cuda; fail when nvcc
                        is missing or the CUDA build breaks.
  FASTACT_CUDA=0        never build it.
  (unset)               build it when nvcc is found (CUDA_HOME, CUDA_PATH,
                        PATH or /usr/local/cuda), whether or not this machine
                        has a GPU, and only warn if that breaks.
  FASTACT_WERROR=1      fastact's own C (src/*.c) is compiled with -Wall
                        -Wextra; this makes a warning an error (CI sets it).
  FASTACT_BUILD_JOBS=N  at most N C compilers at once and nvcc --threads N
                        (default: the CPUs this process may use); 1 builds
                        one thing at a time, as a plain setuptools build does.
  FASTACT_SANITIZE=address,undefined
                        a sanitizer build of the C kernels and the Cython
                        modules (SANITIZE_FLAGS; any of address, undefined,
                        and fuzzer-no-link with Clang): every undefined
                        behaviour aborts.  Switching it on or off rebuilds
                        everything; Python must preload the sanitizer
                        runtime (README, "Hardening").

Why "unset" builds the CUDA module where nvcc is found but no GPU is: that
is often where fastact is built for a GPU machine elsewhere (`docker build`
sees no GPU, nor do most wheel builders and CI runners).  Skipping the module
there would leave an install that says "not built" on the GPU machine, which
shows only at run time and only a rebuild cures; building it costs about 45
CPU-seconds once.  So it is built, and the build says what it builds, why,
and how to skip it (FASTACT_CUDA=0); pip shows these lines with -v.

Build speed: nvcc starts first and runs while Cython and the C compiler
work; the C sources are compiled in parallel (the three kernels_<isa>.c and
Cython's _cpu.c take nearly all the C time); nvcc runs its front end once per
distinct PTX (see CUDA_GENCODE).

Compiler flags (GCC or Clang; fastact's C is POSIX and GNU C):
  EXACTNESS_FLAGS  results depend on them: a compiler that rejects one stops
                   the build, naming the flag and why
  SPEED_FLAGS      speed only: one the compiler rejects is dropped, with a note
  WARNING_FLAGS    -Wall -Wextra on src/*.c (not on Cython's generated C), and
                   -Werror with FASTACT_WERROR=1
  -fopenmp         (or -Xpreprocessor -fopenmp and -lomp, Apple clang with
                   libomp) where an OpenMP program builds and links; none with
                   FASTACT_NO_OPENMP=1
  NPY_NO_DEPRECATED_API  Cython's glue uses no numpy API deprecated since 1.7
  NVCC_FLAGS, CUDA_GENCODE  the CUDA module's (see there)
The kernels are compiled for several ISAs (src/isa.h) and one is chosen at
run time, so no -march flag is used: a built wheel runs on any x86-64 CPU.
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SOURCES = [
    "fastact/_cpu.pyx",
    "src/parallel.c",
    "src/dispatch.c",
    "src/runtime.c",
    "src/prelu.c",
    "src/elementwise.c",
    "src/memory.c",
    "src/xla_ffi.c",
    "src/kernels_baseline.c",
    "src/kernels_avx2.c",
    "src/kernels_avx512f.c",
]
# the benchmark's memory ceilings: a module of their own, which runs on
# _cpu's thread policy and ISA choice (src/runtime.h)
MEMBENCH_SOURCES = ["fastact/_membench.pyx", "src/membench.c"]

# The flags every C compiler run gets (GCC or Clang: fastact's C is POSIX and
# GNU C, see src/parallel.c), one row each: why it is there.
#
# Results depend on these, so the build stops when the compiler rejects one:
EXACTNESS_FLAGS = [
    # a * b + c is rounded twice, as written: a fused multiply-add rounds once,
    # so contracting it (GCC does so across statements by default, Clang within
    # them) would make results differ between ISAs (only avx2 and avx512f have
    # FMA), from the CUDA kernels (-fmad=false) and from the float64 oracle.
    # The kernels call fmaf where they want a fused operation.
    "-ffp-contract=off",
]
# Speed only (src/kernels_impl.h says how each one lets a loop vectorise);
# one the compiler rejects is dropped, and the build says so:
SPEED_FLAGS = [
    "-O3",                          # vectorisation, unrolling
    "-fno-trapping-math",           # x > 0 ? x : a * x computes a * x on every lane
    "-fno-thread-jumps",            # keeps the in-place loops' stores unconditional
    "-fno-tree-loop-distribute-patterns",  # no loop turned into a memcpy/memset call
    "-fno-math-errno",              # fmaf becomes an instruction, not a libm call
]
# Build time only: line tables, not full debug info.  Python's CFLAGS carry
# -g, which made the kernels (many inlined instances of few loops) take over
# half again as long to compile; line tables are what profilers and the
# sanitizers' reports use.  Dropped like SPEED_FLAGS where rejected.
BUILD_TIME_FLAGS = ["-g1"]
# Diagnostics, for fastact's own C (src/*.c) only, not for the C that Cython
# generates; they change no code.  FASTACT_WERROR=1 adds -Werror (CI sets it).
WARNING_FLAGS = ["-Wall", "-Wextra"]
WERROR = os.environ.get("FASTACT_WERROR", "").strip()
if WERROR not in ("", "0", "1"):
    sys.exit(f"fastact build: FASTACT_WERROR must be 0, 1 or unset, got {WERROR!r}")

# FASTACT_SANITIZE: the sanitizers, e.g. "address,undefined".  Every
# object, the Cython modules' included, is compiled and linked with
# -fsanitize=<them>, and:
SANITIZE_FLAGS = [
    "-fno-omit-frame-pointer",          # whole stacks in the reports
    "-fno-sanitize-recover=undefined",  # undefined behaviour aborts, as a bad access does
    "-g",                               # file and line in the reports
]
SANITIZERS = ("address", "undefined", "fuzzer-no-link")
SANITIZE = [s.strip() for s in os.environ.get("FASTACT_SANITIZE", "").split(",") if s.strip()]
if [s for s in SANITIZE if s not in SANITIZERS]:
    sys.exit(f"fastact build: FASTACT_SANITIZE must be a comma-separated list of "
             f"{', '.join(SANITIZERS)}, got {os.environ['FASTACT_SANITIZE']!r}")

CYTHON_DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "embedsignature": True,
}

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
    #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 && omp_get_max_threads() > 0 ? 0 : 1;
    }
    """
)


def _say(message):
    print(f"fastact build: {message}", flush=True)


def _warn(message):
    print(f"fastact build: WARNING: {message}", file=sys.stderr, flush=True)


def _build_jobs(parallel=None):
    """How many compilers may run at once: FASTACT_BUILD_JOBS, else
    `build_ext --parallel N`, else the CPUs this process may use."""
    value = os.environ.get("FASTACT_BUILD_JOBS", "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            sys.exit(f"fastact build: FASTACT_BUILD_JOBS must be a positive integer, "
                     f"got {value!r}")
        return int(value)
    if isinstance(parallel, int) and not isinstance(parallel, bool) and parallel > 0:
        return parallel
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def _slow_first(sources):
    """The sources in the order to start them: the kernels, compiled once per
    ISA, and Cython's output take nearly all the time; the rest take little."""
    def slow(src):
        name = os.path.basename(src)
        return name.startswith("kernels_") or name.startswith("_")
    return sorted(sources, key=lambda src: not slow(src))


def _is_own_c(source):
    """True for fastact's own C (src/*.c), False for the C Cython generates."""
    return os.path.normpath(source).split(os.sep)[0] == "src"


def _with_flags_for_own_c(compile_any, own_flags):
    """compiler.compile that adds own_flags for fastact's own C sources."""
    def compile_sources(sources, *args, extra_postargs=None, **kwargs):
        objects = {}
        for own in (True, False):
            group = [src for src in sources if _is_own_c(src) == own]
            if group:
                postargs = list(extra_postargs or []) + (own_flags if own else [])
                objects.update(zip(group, compile_any(group, *args,
                                                       extra_postargs=postargs, **kwargs)))
        return [objects[src] for src in sources]
    return compile_sources


class BuildExt(build_ext):
    # what the last build in this tree was built with: a build with other
    # FASTACT_SANITIZE rebuilds everything (the modules' names are the same,
    # so they would otherwise be taken for up to date)
    SANITIZE_STAMP = os.path.join("build", "fastact-sanitize.txt")

    def finalize_options(self):
        super().finalize_options()
        try:
            with open(self.SANITIZE_STAMP) as f:
                last = f.read().strip()
        except OSError:
            last = ""
        if last != ",".join(SANITIZE):
            self.force = True

    def _stamp_sanitize(self):
        os.makedirs(os.path.dirname(self.SANITIZE_STAMP), exist_ok=True)
        with open(self.SANITIZE_STAMP, "w") as f:
            f.write(",".join(SANITIZE) + "\n")

    def _sanitize_flags(self):
        """(compile, link) flags of FASTACT_SANITIZE; the build stops when
        the compiler cannot build and link a program with them."""
        if not SANITIZE:
            return [], []
        compile_flags = [f"-fsanitize={','.join(SANITIZE)}"] + SANITIZE_FLAGS
        link_flags = [f"-fsanitize={','.join(s for s in SANITIZE if s != 'fuzzer-no-link')}"]
        if link_flags == ["-fsanitize="]:
            link_flags = []
        if not self._compiles("int main(void) { return 0; }\n", compile_flags, link_flags):
            sys.exit(f"fastact build: the C compiler ({self.compiler.compiler[0]}) cannot "
                     f"build with {' '.join(compile_flags)} (FASTACT_SANITIZE); gcc and "
                     f"clang take address and undefined, clang alone fuzzer-no-link")
        _say(f"FASTACT_SANITIZE: building with {' '.join(compile_flags)}; Python needs "
             f"the sanitizer runtime preloaded (README, Hardening)")
        return compile_flags, link_flags

    def _compiles(self, code, compile_args=(), link_args=None):
        """True when code compiles (and links, if link_args is not None)."""
        tmp = tempfile.mkdtemp(prefix="fastact-probe-")
        try:
            src = os.path.join(tmp, "probe.c")
            with open(src, "w") as f:
                f.write(code)
            objects = self.compiler.compile(
                [src], output_dir=tmp, extra_postargs=list(compile_args)
            )
            if link_args is not None:
                self.compiler.link_executable(
                    objects, "probe", output_dir=tmp, extra_postargs=list(link_args)
                )
            return True
        except Exception:
            return False
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _compile_flags(self):
        """EXACTNESS_FLAGS (all, or the build stops) and the SPEED_FLAGS and
        BUILD_TIME_FLAGS the compiler accepts."""
        probe = "int main(void) { return 0; }\n"
        optional = SPEED_FLAGS + BUILD_TIME_FLAGS
        if self._compiles(probe, EXACTNESS_FLAGS + optional + ["-Werror"]):
            return EXACTNESS_FLAGS + optional       # the usual case: one probe
        for flag in EXACTNESS_FLAGS:
            if not self._compiles(probe, [flag, "-Werror"]):
                sys.exit(
                    f"fastact build: the C compiler ({self.compiler.compiler[0]}) rejects "
                    f"{flag}, which fastact's results depend on: without it the compiler "
                    f"may fuse a * b + c into one fused multiply-add, which rounds "
                    f"differently, so results would no longer be bitwise the same on "
                    f"every ISA and as the reference says. Build with GCC or Clang "
                    f"(e.g. CC=gcc).")
        accepted = [f for f in optional if self._compiles(probe, [f, "-Werror"])]
        dropped = [f for f in optional if f not in accepted]
        _warn(f"the C compiler rejects {' '.join(dropped)}: building without "
              f"(results are the same; some kernels may be slower)")
        return EXACTNESS_FLAGS + accepted

    def _warning_flags(self):
        """Flags for fastact's own C sources: WARNING_FLAGS, and -Werror when
        FASTACT_WERROR=1."""
        accepted = [f for f in WARNING_FLAGS
                    if self._compiles("int main(void) { return 0; }\n", [f, "-Werror"])]
        return accepted + (["-Werror"] if WERROR == "1" else [])

    def _openmp_flags(self):
        if os.environ.get("FASTACT_NO_OPENMP", "") not in ("", "0"):
            _say("FASTACT_NO_OPENMP is set: building serial kernels")
            return [], []
        candidates = [(["-fopenmp"], ["-fopenmp"]),
                      (["-Xpreprocessor", "-fopenmp"], ["-lomp"])]
        for cflags, lflags in candidates:
            if self._compiles(OPENMP_PROBE, cflags, lflags):
                return cflags, lflags
        _warn(
            "this compiler cannot build and link an OpenMP program; fastact is "
            "built serial (every kernel runs on one thread). Install an OpenMP "
            "runtime (e.g. libomp) and rebuild for multi-threaded kernels."
        )
        return [], []

    def _cythonize(self):
        from Cython.Build import cythonize

        for ext in self.extensions:
            if any(src.endswith(".pyx") for src in ext.sources):
                ext.sources = cythonize(
                    [ext], compiler_directives=CYTHON_DIRECTIVES, force=self.force
                )[0].sources

    def build_extensions(self):
        start = time.monotonic()
        self._jobs = _build_jobs(self.parallel)
        _say_cuda_plan()
        flags = self._compile_flags()
        omp_compile, omp_link = self._openmp_flags()
        san_compile, san_link = self._sanitize_flags()
        omp_compile, omp_link = omp_compile + san_compile, omp_link + san_link
        self._cuda = _start_cuda(self, self._jobs)   # nvcc runs from here on
        self._cythonize()
        for ext in self.extensions:
            ext.extra_compile_args = flags + omp_compile + ext.extra_compile_args
            ext.extra_link_args = omp_link + ext.extra_link_args
        compile_any = self.compiler.compile
        self.compiler.compile = _with_flags_for_own_c(compile_any, self._warning_flags())
        try:
            if self._jobs == 1:
                super().build_extensions()
            else:
                self._build_extensions_concurrently()
        finally:
            self.compiler.compile = compile_any
        if self._cuda is not None:
            self._cuda.exception()  # wait; build_extension has handled a failure
        self._stamp_sanitize()
        failed = [e for e in self.extensions if getattr(e, "_fastact_failed", False)]
        for ext in failed:
            self.extensions.remove(ext)
        _say(f"built {', '.join(e.name for e in self.extensions)} in "
             f"{time.monotonic() - start:.0f} s, up to {self._jobs} compile jobs at once "
             f"(FASTACT_BUILD_JOBS)")

    def _build_extensions_concurrently(self):
        """The extensions side by side, each compiling its sources on a shared
        pool of self._jobs threads, one compiler process per source."""
        self.check_extensions_list(self.extensions)
        serial_compile = self.compiler.compile

        def compile_each(sources, *args, **kwargs):
            futures = {src: pool.submit(serial_compile, [src], *args, **kwargs)
                       for src in _slow_first(sources)}
            return [obj for src in sources for obj in futures[src].result()]

        # The objects nvcc is making are named in the CUDA module's
        # extra_objects already: its link waits for them, the compile of its
        # Cython glue need not.
        link = self.compiler.link_shared_object
        cuda = self._cuda
        nvcc_objects = {obj for e in self.extensions if e.name == CUDA_MODULE
                        for obj in e.extra_objects}

        def link_after_nvcc(objects, *args, **kwargs):
            if cuda is not None and nvcc_objects.intersection(objects):
                cuda.result()
            return link(objects, *args, **kwargs)

        with ThreadPoolExecutor(self._jobs) as pool, \
                ThreadPoolExecutor(len(self.extensions)) as per_extension:
            self.compiler.compile = compile_each
            self.compiler.link_shared_object = link_after_nvcc
            try:
                builds = [per_extension.submit(self._build_one, ext)
                          for ext in self.extensions]
                for build in builds:
                    build.result()
            finally:
                self.compiler.compile = serial_compile
                self.compiler.link_shared_object = link

    def _build_one(self, ext):
        started = time.monotonic()
        self.build_extension(ext)
        if not getattr(ext, "_fastact_failed", False):
            _say(f"{ext.name} built in {time.monotonic() - started:.0f} s")

    def build_extension(self, ext):
        if ext.name != CUDA_MODULE:
            return super().build_extension(ext)
        try:
            if self._cuda.done():
                self._cuda.result()     # nvcc has failed: say so, not the link
            super().build_extension(ext)
            self._cuda.result()         # also when the module was up to date
        except Exception as exc:  # noqa: BLE001 - optional part: say why, go on
            if CUDA_MODE == "1":
                raise SystemExit(f"fastact build: FASTACT_CUDA=1 but the CUDA part "
                                 f"cannot be built: {exc}") from None
            ext._fastact_failed = True
            _warn(f"the optional CUDA module failed to build, so fastact is "
                  f"installed without it (set FASTACT_CUDA=1 to make this an error, "
                  f"FASTACT_CUDA=0 to skip it): {exc}")


extensions = [
    Extension(
        name,
        sources,
        include_dirs=["src", numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        # the headers every source may include: a change to one rebuilds
        depends=sorted(glob.glob(os.path.join("src", "*.h"))),
    )
    for name, sources in (("fastact._cpu", SOURCES), ("fastact._membench", MEMBENCH_SOURCES))
]


# --- optional CUDA module (fastact._cuda) ------------------------------------
# nvcc compiles src/cuda/*.cu into objects that are linked, with the CUDA
# runtime linked statically, into the Cython module fastact._cuda.  Static
# linking means the module needs no libcudart at run time: on a machine
# without a driver or GPU it still imports and reports why no GPU can be used
# (fastact imports it lazily, so `import fastact` never depends on it).

CUDA_MODULE = "fastact._cuda"
CUDA_SOURCES = sorted(
    os.path.join("src", "cuda", f) for f in os.listdir(os.path.join("src", "cuda"))
    if f.endswith(".cu")) if os.path.isdir(os.path.join("src", "cuda")) else []
# Machine code for Turing (sm_75, nvcc 13's oldest target) up to Hopper
# (sm_90), plus compute_90 PTX that newer GPUs compile at load time.
# nvcc runs its front end (cicc, about half of each target's time) once per
# arch=compute_XX, so sm_86 and sm_89 are assembled from the compute_80 PTX:
# these kernels use nothing that compute_86/89 add, their compute_80/86/89
# PTX differ only in the .target line, and ptxas makes the same machine code
# from either (their cubins differ in one byte: the PTX target noted in them).
# Keeping sm_86/sm_89 SASS, rather than letting those GPUs run the sm_80 SASS,
# keeps ptxas's scheduling for them.
CUDA_GENCODE = [
    "-gencode=arch=compute_75,code=sm_75",
    "-gencode=arch=compute_80,code=[sm_80,sm_86,sm_89]",
    "-gencode=arch=compute_90,code=[sm_90,compute_90]",
]
CUDA_TARGETS = "sm_75, sm_80, sm_86, sm_89, sm_90 and compute_90 PTX"
# -fmad=false: the float64 slope-gradient sum must round x * g before adding,
# as the CPU kernels do (-ffp-contract=off).  --threads: nvcc's targets in
# parallel (set from FASTACT_BUILD_JOBS).
NVCC_FLAGS = ["-O3", "-std=c++17", "-fmad=false", "-cudart=static",
              "-Xcompiler", "-fPIC"]
CUDA_MODE = os.environ.get("FASTACT_CUDA", "").strip()
if CUDA_MODE not in ("", "0", "1"):
    sys.exit(f"fastact build: FASTACT_CUDA must be 0, 1 or unset, got {CUDA_MODE!r}")


def _find_cuda_home():
    """The CUDA toolkit's root (holding bin/nvcc and the static runtime), or
    None.  A root without libcudart_static.a is skipped in favour of the next."""
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    candidates.append("/usr/local/cuda")
    found = [r for r in candidates if r and os.path.isfile(os.path.join(r, "bin", "nvcc"))]
    for root in found:
        if _cuda_library_dir(root):
            return root
    return found[0] if found else None


def _cuda_library_dir(root):
    for sub in ("lib64", "lib", os.path.join("targets", "x86_64-linux", "lib"),
                os.path.join("targets", "sbsa-linux", "lib")):
        if os.path.isfile(os.path.join(root, sub, "libcudart_static.a")):
            return os.path.join(root, sub)
    return None


def _nvcc_version(nvcc):
    try:
        out = subprocess.run([nvcc, "--version"], capture_output=True, text=True,
                             timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return "version unknown"
    release = [line for line in out.splitlines() if "release" in line]
    return release[-1].split("release")[-1].strip(" ,").split(",")[0] if release else \
        "version unknown"


def _no_gpu_visible():
    """True where this machine visibly has no NVIDIA GPU (Linux without
    /dev/nvidia<N>, and not WSL, whose GPU is /dev/dxg); False when it may have
    one, or when there is no cheap way to tell."""
    return (sys.platform.startswith("linux") and not glob.glob("/dev/nvidia[0-9]*")
            and not os.path.exists("/dev/dxg"))


def _say_cuda_plan():
    """Say whether the CUDA module is built, and why."""
    root = CUDA_ROOT
    if CUDA_MODE == "0":
        _say("FASTACT_CUDA=0: not building the optional CUDA module")
        return
    if root is None:      # (FASTACT_CUDA=1 has stopped the build already)
        _say("nvcc not found (looked at CUDA_HOME, CUDA_PATH, PATH and "
             "/usr/local/cuda): building without the optional CUDA module")
        return
    nvcc = os.path.join(root, "bin", "nvcc")
    why = ("FASTACT_CUDA=1" if CUDA_MODE == "1"
           else "nvcc found and FASTACT_CUDA unset")
    _say(f"{why}: building the optional CUDA module fastact._cuda with {nvcc} "
         f"(CUDA {_nvcc_version(nvcc)}) for {CUDA_TARGETS}")
    if CUDA_MODE == "":
        if _no_gpu_visible():
            _say("no NVIDIA GPU is visible on this machine; the CUDA module is "
                 "built anyway, so that this install (or wheel, or image) can use "
                 "a GPU where there is one")
        _say("the CUDA module adds about 45 CPU-seconds to the build (about 25 s "
             "on 2 cores); set FASTACT_CUDA=0 to skip it")


def _run_nvcc(jobs_to_run):
    """Run the nvcc commands (in a background thread); raise on a failure."""
    started = time.monotonic()
    for src, command in jobs_to_run:
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"nvcc failed on {src}:\n{result.stdout}{result.stderr}")
        if (result.stdout + result.stderr).strip():
            print(result.stdout + result.stderr, end="", flush=True)
    if jobs_to_run:
        _say(f"nvcc done in {time.monotonic() - started:.0f} s")


def _start_cuda(cmd, jobs):
    """Start nvcc on the .cu files and attach its objects to fastact._cuda (or
    drop the module, warning or failing as FASTACT_CUDA says).  Returns a
    future for nvcc's work (None without the module); with jobs == 1, nvcc
    has run when this returns."""
    ext = next((e for e in cmd.extensions if e.name == CUDA_MODULE), None)
    if ext is None:
        return None
    root = CUDA_ROOT
    try:
        if root is None:
            raise RuntimeError("nvcc not found (looked at CUDA_HOME, CUDA_PATH, PATH "
                               "and /usr/local/cuda)")
        libdir = _cuda_library_dir(root)
        if libdir is None:
            raise RuntimeError(f"libcudart_static.a not found under {root}")
        nvcc = os.path.join(root, "bin", "nvcc")
        out_dir = os.path.join(cmd.build_temp, "cuda")
        os.makedirs(out_dir, exist_ok=True)
        objects, to_run = [], []
        for src in CUDA_SOURCES:
            obj = os.path.join(out_dir, os.path.basename(src) + ".o")
            objects.append(obj)
            inputs = [src, "src/ops.h"] + [os.path.join("src", "cuda", f) for f in
                                           os.listdir(os.path.join("src", "cuda"))]
            if os.path.isfile(obj) and os.path.getmtime(obj) >= max(
                    os.path.getmtime(f) for f in inputs):
                continue                  # up to date
            command = [nvcc, "-c", src, "-o", obj, "-Isrc", "-Isrc/cuda"] \
                + NVCC_FLAGS + ["--threads", str(jobs)] + CUDA_GENCODE
            _say(" ".join(command))
            to_run.append((src, command))
    except (RuntimeError, OSError) as exc:
        if CUDA_MODE == "1":
            raise SystemExit(f"fastact build: FASTACT_CUDA=1 but the CUDA part cannot "
                             f"be built: {exc}") from None
        _warn(f"building without the optional CUDA module: {exc}")
        cmd.extensions.remove(ext)
        return None
    ext.extra_objects = objects + ext.extra_objects
    ext.library_dirs = [libdir] + ext.library_dirs
    ext.include_dirs = [os.path.join(root, "include")] + ext.include_dirs
    # the static CUDA runtime needs these from the system (and the C++ runtime
    # for nvcc's host code)
    ext.libraries = ["cudart_static", "rt", "dl", "pthread", "stdc++"] + ext.libraries
    # optional: where a failure only warns, setuptools must not expect its file
    ext.optional = CUDA_MODE != "1"
    runner = ThreadPoolExecutor(1)
    future = runner.submit(_run_nvcc, to_run)
    runner.shutdown(wait=False)
    if jobs == 1:
        future.exception()      # wait: one thing at a time
    return future


# the CUDA toolkit this build uses, looked for once
CUDA_ROOT = _find_cuda_home() if CUDA_MODE != "0" else None
if CUDA_MODE == "1" and CUDA_ROOT is None:
    sys.exit("fastact build: FASTACT_CUDA=1 but nvcc was not found (set CUDA_HOME "
             "to the CUDA toolkit, or put nvcc on PATH)")
if CUDA_ROOT is not None:
    extensions.append(
        Extension(
            CUDA_MODULE,
            # with fastact.jax's XLA FFI handlers, built for CUDA launches
            ["fastact/_cuda.pyx", "src/xla_ffi_cuda.c"],
            include_dirs=["src", "src/cuda"],
            depends=CUDA_SOURCES + ["src/cuda/fastact_cuda.h", "src/ops.h", "src/xla_ffi.c",
                                    "src/xla_ffi.h"],
        )
    )

# Cython runs in build_ext (BuildExt._cythonize), after nvcc has started.
setup(ext_modules=extensions, cmdclass={"build_ext": BuildExt})
