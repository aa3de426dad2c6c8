"""A clear error when fastact is imported from a source tree that was never
built.

Running Python (or ``python -m pytest``) from the root of a checkout puts the
checkout first on sys.path, so its ``fastact/`` directory, which holds the
Cython and C sources but no compiled module unless it was built in place,
shadows an installed fastact.  Python's own error then reads as a circular
import.  This check runs before anything imports the compiled module.
"""
import importlib.machinery
import os

_HERE = os.path.dirname(os.path.abspath(__file__))


def _compiled(name):
    return any(os.path.isfile(os.path.join(_HERE, name + suffix))
               for suffix in importlib.machinery.EXTENSION_SUFFIXES)


def check_built():
    """Raise ImportError, saying what happened and the two ways out, when
    this fastact package is a source tree without its compiled module."""
    if _compiled("_cpu") or not os.path.isfile(os.path.join(_HERE, "_cpu.pyx")):
        return
    root = os.path.dirname(_HERE)
    raise ImportError(
        f"fastact was imported from its source tree ({_HERE}), where the compiled "
        f"module fastact._cpu has not been built. This happens when Python runs in "
        f"the root of a checkout (the current directory comes first on sys.path, "
        f"e.g. with `python -m pytest`) and shadows an installed fastact. Either "
        f"build it in place with `python -m pip install -e .` in {root}, or run "
        f"from another directory (or with `pytest tests` rather than "
        f"`python -m pytest`) so that the installed fastact is imported."
    )
