"""fastact: fast, exact activation kernels for numpy (and GPU) arrays.

PReLU forward and fused backward on (N, C, *spatial) or channels-last arrays,
per-channel, shared or broadcast slopes; the rectifier family (leaky_relu,
relu with Keras's slope, cap and threshold, relu6, thresholded_relu, elu,
hardtanh, square), each with its backward; modules with forward/backward;
lookup by name and custom activations.  Out of place, into ``out=`` or in place;
OpenMP-parallel SIMD kernels chosen at run time for the CPU.

>>> import numpy as np, fastact
>>> fastact.prelu(np.array([-2.0, 3.0]), 0.25)
array([-0.5,  3. ])
>>> fastact.get("lrelu", negative_slope=0.5)(np.array([-2.0, 3.0]))
array([-1.,  3.])
"""
from ._source_tree import check_built as _check_built
from ._version import __version__

_check_built()
del _check_built

from ._api import (  # noqa: E402 - after the check that explains a missing build
    ForkedSerialWarning,
    affine_prelu,
    batchnorm_scale_shift,
    config,
    elu,
    elu_backward,
    get_num_threads,
    hardtanh,
    hardtanh_backward,
    leaky_relu,
    leaky_relu_backward,
    prelu,
    prelu_backward,
    relu,
    relu6,
    relu6_backward,
    relu_backward,
    set_num_threads,
    show_config,
    square,
    square_backward,
    thresholded_relu,
    thresholded_relu_backward,
)
from ._device import cuda_available  # noqa: E402 - after the check, as above
from ._modules import (  # noqa: E402
    ELU,
    Hardtanh,
    LeakyReLU,
    PReLU,
    ReLU,
    ReLU6,
    Square,
    ThresholdedReLU,
)
from ._registry import available, get, register  # noqa: E402

__all__ = [
    "__version__",
    "ELU",
    "ForkedSerialWarning",
    "Hardtanh",
    "LeakyReLU",
    "PReLU",
    "ReLU",
    "ReLU6",
    "Square",
    "ThresholdedReLU",
    "affine_prelu",
    "available",
    "batchnorm_scale_shift",
    "config",
    "cuda_available",
    "elu",
    "elu_backward",
    "get",
    "get_num_threads",
    "hardtanh",
    "hardtanh_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "prelu",
    "prelu_backward",
    "register",
    "relu",
    "relu6",
    "relu6_backward",
    "relu_backward",
    "set_num_threads",
    "show_config",
    "square",
    "square_backward",
    "thresholded_relu",
    "thresholded_relu_backward",
]
