"""The dtypes fastact computes in: one table of their facts, and bfloat16's
optional provider.

Every layer (the CPU glue, the CUDA path, the modules, custom activations)
reads dtype facts from `TABLE`: the name, the kernels' dtype code (FA_DT_* of
src/ops.h; fastact._cpu checks at import that they agree), the item size, the
compute dtype (the one slopes are held in and grad_slopes is returned in),
and how other libraries spell the dtype (``__cuda_array_interface__``'s
typestr, DLPack's (type code, bits), torch's attribute name).

bfloat16 arrays are ml_dtypes's.  Importing ml_dtypes costs several times
the rest of ``import fastact``, so it is imported only when bfloat16 is asked
for by name (``PReLU(dtype="bfloat16")``, a torch bfloat16 tensor).  A numpy
bfloat16 array can only exist once ml_dtypes is imported, so recognising one
never needs the import: see `loaded_bfloat16`.
"""
import sys
from collections import namedtuple

import numpy as np

DType = namedtuple("DType", "name code itemsize compute typestr dlpack torch")
DType.__doc__ = """One dtype the kernels take.

name: numpy's name; code: the kernels' FA_DT_* code (the index in TABLE);
itemsize: bytes per element; compute: the name of the dtype the kernels
compute in (float16 and bfloat16 in float32; slopes and grad_slopes use it);
typestr: ``__cuda_array_interface__``'s type string without the byte order
(None where numpy has no letter for it); dlpack: DLPack's (type code, bits);
torch: the name of the torch dtype.
"""

TABLE = (
    DType("float32", 0, 4, "float32", "f4", (2, 32), "float32"),
    DType("float64", 1, 8, "float64", "f8", (2, 64), "float64"),
    DType("float16", 2, 2, "float32", "f2", (2, 16), "float16"),
    DType("bfloat16", 3, 2, "float32", None, (4, 16), "bfloat16"),
)
F32, F64, F16, BF16 = TABLE

BY_NAME = {d.name: d for d in TABLE}
BY_TYPESTR = {d.typestr: d for d in TABLE if d.typestr is not None}
BY_DLPACK = {d.dlpack: d for d in TABLE}

SUPPORTED_NAMES = ", ".join(d.name for d in TABLE[:-1]) + " and " + TABLE[-1].name
#: the same list as a choice ("float32, float64, float16 or bfloat16")
ONE_OF_NAMES = ", ".join(d.name for d in TABLE[:-1]) + " or " + TABLE[-1].name
BFLOAT16_HINT = ('bfloat16 needs the optional ml_dtypes package: '
                 'pip install "fastact[bfloat16]" (or pip install ml_dtypes)')

_NUMPY = {np.dtype(d.name): d for d in TABLE if d is not BF16}
_bfloat16 = None
_torch_dtypes = None


def unsupported(name, dtype, on_cpu=True):
    """The TypeError for an array `name` of a dtype fastact does not take.
    On the CPU, bfloat16 arrays need ml_dtypes, which the message says."""
    where = " (bfloat16 with ml_dtypes installed)" if on_cpu else ""
    return TypeError(f"{name} has dtype {dtype}; fastact supports {SUPPORTED_NAMES}{where}")


def from_numpy(dtype):
    """The TABLE entry of a numpy dtype of native byte order, None when
    fastact does not take it.  Never imports ml_dtypes."""
    d = _NUMPY.get(dtype)
    if d is not None:
        return d
    bf16 = loaded_bfloat16()          # None compares equal to float64: test it apart
    return BF16 if bf16 is not None and dtype == bf16 else None


def is_supported(dtype):
    """True for float32, float64, float16 and (ml_dtypes's) bfloat16."""
    return from_numpy(dtype) is not None


def numpy_dtype(d, what="bfloat16"):
    """The numpy dtype of TABLE entry d (bfloat16: see `bfloat16` for `what`)."""
    return bfloat16(what) if d is BF16 else np.dtype(d.name)


def compute_dtype(d):
    """The numpy dtype the kernels compute d in."""
    return np.dtype(d.compute)


def from_torch(torch_dtype):
    """The TABLE entry of a torch dtype, None when fastact does not take it."""
    global _torch_dtypes
    if _torch_dtypes is None:
        import torch
        _torch_dtypes = {getattr(torch, d.torch): d for d in TABLE}
    return _torch_dtypes.get(torch_dtype)


def torch_dtype(d):
    """The torch dtype of TABLE entry d."""
    import torch
    return getattr(torch, d.torch)


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
