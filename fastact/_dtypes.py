"""The dtypes fastact computes in, and bfloat16's optional provider.

bfloat16 arrays are ml_dtypes's.  Importing ml_dtypes costs several times
the rest of ``import fastact``, so it is imported only when bfloat16 is asked
for by name (``PReLU(dtype="bfloat16")``, a torch bfloat16 tensor).  A numpy
bfloat16 array can only exist once ml_dtypes is imported, so recognising one
never needs the import: see `loaded_bfloat16`.
"""
import sys

import numpy as np

SUPPORTED_NAMES = "float32, float64, float16 and bfloat16"
BFLOAT16_HINT = ('bfloat16 needs the optional ml_dtypes package: '
                 'pip install "fastact[bfloat16]" (or pip install ml_dtypes)')

_NUMPY_FLOATS = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16))
_bfloat16 = None


def is_supported(dtype):
    """True for float32, float64, float16 and (ml_dtypes's) bfloat16."""
    if dtype in _NUMPY_FLOATS:
        return True
    bf16 = loaded_bfloat16()          # None compares equal to float64: test it apart
    return bf16 is not None and dtype == bf16


def loaded_bfloat16():
    """ml_dtypes's bfloat16 dtype if ml_dtypes has been imported, else None.
    Never imports it."""
    global _bfloat16
    if _bfloat16 is None:
        module = sys.modules.get("ml_dtypes")
        if module is not None:
            _bfloat16 = np.dtype(module.bfloat16)
    return _bfloat16


def bfloat16(what="bfloat16"):
    """ml_dtypes's bfloat16 dtype, importing ml_dtypes when needed.  Without
    it, a TypeError that says `what` needs the bfloat16 extra."""
    d = loaded_bfloat16()
    if d is not None:
        return d
    try:
        import ml_dtypes  # noqa: F401 - loaded_bfloat16 finds it in sys.modules
    except ImportError:
        raise TypeError(f"{what}: {BFLOAT16_HINT}") from None
    return loaded_bfloat16()


def bfloat16_status():
    """(usable, why): whether bfloat16 can be used here, importing ml_dtypes
    to find out."""
    try:
        bfloat16()
    except TypeError:
        return False, "ml_dtypes is not installed (pip install \"fastact[bfloat16]\")"
    return True, f"ml_dtypes {getattr(sys.modules['ml_dtypes'], '__version__', '?')}"
