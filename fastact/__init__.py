"""fastact: fast, exact activation kernels for numpy arrays.

PReLU forward and fused backward on (N, C, *spatial) arrays, per-channel or
shared slopes, out of place, into ``out=`` or in place; OpenMP-parallel,
SIMD kernels chosen at run time for the CPU.

>>> import numpy as np, fastact
>>> fastact.prelu(np.array([-2.0, 3.0]), 0.25)
array([-0.5,  3. ])
"""
from ._version import __version__
from ._api import (
    config,
    get_num_threads,
    prelu,
    prelu_backward,
    set_num_threads,
    show_config,
)
from ._modules import PReLU

__all__ = [
    "__version__",
    "PReLU",
    "config",
    "get_num_threads",
    "prelu",
    "prelu_backward",
    "set_num_threads",
    "show_config",
]
