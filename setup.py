"""Build of fastact's C extension.

Environment:
  FASTACT_NO_OPENMP=1   build serial even where the compiler has OpenMP.

The kernels are compiled for several ISAs (see src/kernels_<isa>.c) and one is
chosen at run time, so no -march flag is used: a built wheel runs on any
x86-64 CPU.
"""
import os
import shutil
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
        for ext in self.extensions:
            ext.extra_compile_args = flags + omp_compile + ext.extra_compile_args
            ext.extra_link_args = omp_link + ext.extra_link_args
        super().build_extensions()


extensions = [
    Extension(
        "fastact._cpu",
        SOURCES,
        include_dirs=["src", numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
]

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
