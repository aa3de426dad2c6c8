"""PReLU forward and backward: fastact, numpy and torch (when installed)."""
import numpy as np

import fastact

from .common import (
    DTYPES,
    SHAPE_NAMES,
    SHAPES,
    SLOPES,
    THREADS,
    Timing,
    make,
    torch_or_skip,
    use_threads,
)


class Forward(Timing):
    params = [SHAPE_NAMES, DTYPES, SLOPES, THREADS]
    param_names = ["shape", "dtype", "slopes", "threads"]

    def setup(self, shape, dtype, slopes, threads):
        use_threads(threads)
        self.x, _, self.slopes = make(SHAPES[SHAPE_NAMES.index(shape)], dtype, slopes)
        self.y = np.ones_like(self.x)
        # slope 1 keeps values and signs over repeated in-place calls
        self.xi = self.x.copy()
        self.ones = 1.0 if slopes == "shared" else np.ones(self.x.shape[1], dtype)

    def teardown(self, *params):
        fastact.set_num_threads(None)

    def time_out(self, *params):
        fastact.prelu(self.x, self.slopes, out=self.y)

    def time_new_output(self, *params):
        fastact.prelu(self.x, self.slopes)

    def time_inplace(self, *params):
        fastact.prelu(self.xi, self.ones, inplace=True)


class Backward(Timing):
    params = [SHAPE_NAMES, DTYPES, SLOPES, THREADS]
    param_names = ["shape", "dtype", "slopes", "threads"]

    def setup(self, shape, dtype, slopes, threads):
        use_threads(threads)
        self.x, self.g, self.slopes = make(SHAPES[SHAPE_NAMES.index(shape)], dtype, slopes)
        self.gi = np.ones_like(self.x)
        self.gg = self.g.copy()

    def teardown(self, *params):
        fastact.set_num_threads(None)

    def time_out(self, *params):
        fastact.prelu_backward(self.g, self.x, self.slopes, out=self.gi)

    def time_new_output(self, *params):
        fastact.prelu_backward(self.g, self.x, self.slopes)

    def time_inplace(self, *params):
        # grad_output is overwritten each call; the work does not depend on it
        fastact.prelu_backward(self.gg, self.x, self.slopes, inplace=True)


class NumpyBaseline(Timing):
    """numpy's best formulation of the forward, into preallocated arrays."""
    params = [SHAPE_NAMES]
    param_names = ["shape"]

    def setup(self, shape):
        self.x, _, slopes = make(SHAPES[SHAPE_NAMES.index(shape)], "float32", "per_channel")
        self.a = slopes.reshape(1, -1, 1, 1)
        self.pos = np.empty_like(self.x)
        self.y = np.empty_like(self.x)

    def time_forward_max_min(self, shape):
        np.maximum(self.x, 0, out=self.pos)
        np.minimum(self.x, 0, out=self.y)
        self.y *= self.a
        self.y += self.pos


class TorchBaseline(Timing):
    """torch's F.prelu, in-place F.leaky_relu_ and autograd backward (CPU)."""
    params = [SHAPE_NAMES, THREADS]
    param_names = ["shape", "threads"]

    def setup(self, shape, threads):
        torch, F = torch_or_skip()
        use_threads(threads)
        torch.set_num_threads(fastact.get_num_threads())
        self.F, self.torch = F, torch
        x, g, slopes = make(SHAPES[SHAPE_NAMES.index(shape)], "float32", "per_channel")
        self.xt, self.wt = torch.from_numpy(x), torch.from_numpy(slopes)
        self.gt = torch.from_numpy(g)
        self.xi = self.xt.clone()
        self.xr = self.xt.clone().requires_grad_(True)
        self.wr = self.wt.clone().requires_grad_(True)
        self.yr = F.prelu(self.xr, self.wr)

    def teardown(self, *params):
        fastact.set_num_threads(None)

    def time_forward(self, *params):
        self.F.prelu(self.xt, self.wt)

    def time_leaky_relu_inplace(self, *params):
        self.F.leaky_relu_(self.xi, 1.0)

    def time_backward(self, *params):
        self.torch.autograd.grad((self.yr,), (self.xr, self.wr), (self.gt,), retain_graph=True)
