"""Build of fastact's C extension.

Environment:
  FASTACT_NO_OPENMP=1   build serial even where the compiler has OpenMP.
  FASTACT_CUDA=1        also build the CUDA module fastact._cuda; fail when nvcc
                        is missing or the CUDA build breaks.
  FASTACT_CUDA=0        never build it.
  (unset)               build it when nvcc is found (CUDA_HOME, CUDA_PATH,
                        PATH or /usr/local/cuda), and only warn if that breaks.

The kernels are compiled for several ISAs (see src/kernels_<isa>.c) and one is
chosen at run time, so no -march flag is used: a built wheel runs on any
x86-64 CPU.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SOURCES = [
    "fastact/_cpu.pyx",
    "src/parallel.c",
    "src/dispatch.c",
    "src/prelu.c",
    "src/elementwise.c",
    "src/membench.c",
    "src/kernels_baseline.c",
    "src/kernels_avx2.c",
    "src/kernels_avx512f.c",
]

# Each keeps results exact (see src/kernels_impl.h for why each is needed);
# flags the compiler rejects are dropped.
GCC_LIKE_FLAGS = [
    "-O3",
    "-fno-trapping-math",
    "-ffp-contract=off",
    "-fno-thread-jumps",
    "-fno-tree-loop-distribute-patterns",
    "-fno-math-errno",
]

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


def _warn(message):
    print(f"fastact build: WARNING: {message}", file=sys.stderr)


class BuildExt(build_ext):
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

    def _openmp_flags(self):
        if os.environ.get("FASTACT_NO_OPENMP", "") not in ("", "0"):
            print("fastact build: FASTACT_NO_OPENMP is set: building serial kernels")
            return [], []
        if self.compiler.compiler_type == "msvc":
            candidates = [(["/openmp"], [])]
        else:
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

    def build_extensions(self):
        if self.compiler.compiler_type == "msvc":
            flags = ["/O2"]
        else:
            flags = [
                f for f in GCC_LIKE_FLAGS
                if self._compiles("int main(void) { return 0; }\n", [f, "-Werror"])
            ]
        omp_compile, omp_link = self._openmp_flags()
        _prepare_cuda(self)
        for ext in self.extensions:
            ext.extra_compile_args = flags + omp_compile + ext.extra_compile_args
            ext.extra_link_args = omp_link + ext.extra_link_args
        super().build_extensions()

    def build_extension(self, ext):
        if ext.name != CUDA_MODULE or CUDA_MODE == "1":
            return super().build_extension(ext)
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001 - optional part: say why, go on
            _warn(f"the optional CUDA module failed to build ({exc}); fastact is "
                  f"installed without it (set FASTACT_CUDA=1 to make this an error)")


extensions = [
    Extension(
        "fastact._cpu",
        SOURCES,
        include_dirs=["src", numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
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
# -fmad=false: the float64 slope-gradient sum must round x * g before adding,
# as the CPU kernels do (-ffp-contract=off).
NVCC_FLAGS = ["-O3", "-std=c++17", "-fmad=false", "-cudart=static",
              "-Xcompiler", "-fPIC", "--threads", "0"]
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


def _prepare_cuda(cmd):
    """Compile the .cu files with nvcc and attach the objects to fastact._cuda
    (or drop the module, warning or failing as FASTACT_CUDA says)."""
    ext = next((e for e in cmd.extensions if e.name == CUDA_MODULE), None)
    if ext is None:
        return
    root = _find_cuda_home()
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
        objects = []
        for src in CUDA_SOURCES:
            obj = os.path.join(out_dir, os.path.basename(src) + ".o")
            inputs = [src, "src/ops.h"] + [os.path.join("src", "cuda", f) for f in
                                           os.listdir(os.path.join("src", "cuda"))]
            if os.path.isfile(obj) and os.path.getmtime(obj) >= max(
                    os.path.getmtime(f) for f in inputs):
                objects.append(obj)       # up to date
                continue
            command = [nvcc, "-c", src, "-o", obj, "-Isrc", "-Isrc/cuda"] \
                + NVCC_FLAGS + CUDA_GENCODE
            print("fastact build: " + " ".join(command))
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"nvcc failed on {src}:\n{result.stdout}{result.stderr}")
            objects.append(obj)
    except (RuntimeError, OSError) as exc:
        if CUDA_MODE == "1":
            raise SystemExit(f"fastact build: FASTACT_CUDA=1 but the CUDA part cannot "
                             f"be built: {exc}") from None
        _warn(f"building without the optional CUDA module: {exc}")
        cmd.extensions.remove(ext)
        return
    ext.extra_objects = objects + ext.extra_objects
    ext.library_dirs = [libdir] + ext.library_dirs
    ext.include_dirs = [os.path.join(root, "include")] + ext.include_dirs
    # the static CUDA runtime needs these from the system (and the C++ runtime
    # for nvcc's host code)
    ext.libraries = ["cudart_static", "rt", "dl", "pthread", "stdc++"] + ext.libraries


if CUDA_MODE == "1" and _find_cuda_home() is None:
    sys.exit("fastact build: FASTACT_CUDA=1 but nvcc was not found (set CUDA_HOME "
             "to the CUDA toolkit, or put nvcc on PATH)")
if CUDA_MODE == "1" or (CUDA_MODE == "" and _find_cuda_home() is not None):
    extensions.append(
        Extension(
            CUDA_MODULE,
            ["fastact/_cuda.pyx"],
            include_dirs=["src", "src/cuda"],
            depends=CUDA_SOURCES + ["src/cuda/fastact_cuda.h", "src/ops.h"],
        )
    )
elif CUDA_MODE == "":
    print("fastact build: nvcc not found; building without the optional CUDA module")

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "embedsignature": True,
        },
    ),
    cmdclass={"build_ext": BuildExt},
)
