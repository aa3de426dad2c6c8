"""The activation family, PReLU channels-last and half precision."""
import numpy as np

import fastact

from .common import Timing, use_threads

SHAPE = (32, 64, 56, 56)             # 25.7 MB of float32, past the per-core caches
OPS = ["leaky_relu", "relu", "relu6", "relu_keras", "thresholded_relu", "elu", "hardtanh",
       "square"]
PARAMS = {"relu_keras": {"negative_slope": 0.1, "max_value": 6.0, "threshold": 0.5},
          "thresholded_relu": {"theta": 1.0}}
FUNCTION = {"relu_keras": "relu"}


def _data(dtype, shape=SHAPE):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    return x, g


class Family(Timing):
    """Each op forward into out= and backward into out=, float32."""
    params = [OPS, [1, "all"]]
    param_names = ["op", "threads"]

    def setup(self, op, threads):
        use_threads(threads)
        self.x, self.g = _data(np.float32)
        self.y = np.ones_like(self.x)
        name = FUNCTION.get(op, op)
        if not hasattr(fastact, name):
            raise NotImplementedError(f"this fastact has no {name}")    # asv: skipped
        self.forward = getattr(fastact, name)
        self.backward = getattr(fastact, name + "_backward")
        self.kw = PARAMS.get(op, {})

    def teardown(self, *params):
        fastact.set_num_threads(None)

    def time_forward(self, *params):
        self.forward(self.x, out=self.y, **self.kw)

    def time_backward(self, *params):
        self.backward(self.g, self.x, out=self.y, **self.kw)


class PReLULayout(Timing):
    """PReLU per channel, channels-first against channels-last."""
    params = [["NCHW", "NHWC"], ["float32", "float16"]]
    param_names = ["layout", "dtype"]

    def setup(self, layout, dtype):
        x, g = _data(dtype)
        self.axis = 1 if layout == "NCHW" else -1
        if layout == "NHWC":
            x, g = (np.ascontiguousarray(a.transpose(0, 2, 3, 1)) for a in (x, g))
        self.x, self.g, self.y = x, g, np.ones_like(x)
        self.slopes = np.random.default_rng(1).uniform(0.05, 0.5, SHAPE[1]).astype(np.float32)

    def time_forward(self, *params):
        fastact.prelu(self.x, self.slopes, out=self.y, channel_axis=self.axis)

    def time_backward(self, *params):
        fastact.prelu_backward(self.g, self.x, self.slopes, out=self.y, channel_axis=self.axis)


class PReLULayoutBfloat16(PReLULayout):
    """PReLULayout's cases in bfloat16 (a class of its own: a change to
    PReLULayout's code would start its recorded history anew)."""
    params = [["NCHW", "NHWC"]]
    param_names = ["layout"]

    def setup(self, layout):
        try:
            import ml_dtypes
        except ImportError:
            raise NotImplementedError("bfloat16 needs ml_dtypes") from None
        super().setup(layout, ml_dtypes.bfloat16)


class HalfPrecision(Timing):
    """leaky_relu and ELU forward in float16 and bfloat16 (computed in float32)."""
    params = [["float16", "bfloat16"], ["leaky_relu", "elu"]]
    param_names = ["dtype", "op"]

    def setup(self, dtype, op):
        if dtype == "bfloat16":
            try:
                import ml_dtypes
            except ImportError:
                raise NotImplementedError("bfloat16 needs ml_dtypes") from None
            dtype = ml_dtypes.bfloat16
        self.x, _ = _data(dtype)
        self.y = np.ones_like(self.x)
        self.fn = getattr(fastact, op)

    def time_forward(self, *params):
        self.fn(self.x, out=self.y)


class AffinePReLU(Timing):
    """BatchNorm + PReLU fused (affine_prelu) against prelu alone, per channel."""
    params = [["NCHW", "NHWC"], ["affine_prelu", "prelu"]]
    param_names = ["layout", "op"]

    def setup(self, layout, op):
        if not hasattr(fastact, "affine_prelu"):
            raise NotImplementedError("this fastact has no affine_prelu")    # asv: skipped
        x, _ = _data(np.float32)
        self.axis = 1 if layout == "NCHW" else -1
        if layout == "NHWC":
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        self.x, self.y = x, np.ones_like(x)
        rng = np.random.default_rng(1)
        c = SHAPE[1]
        self.scale = rng.uniform(0.5, 2.0, c).astype(np.float32)
        self.shift = rng.standard_normal(c).astype(np.float32)
        self.slopes = rng.uniform(0.05, 0.5, c).astype(np.float32)
        self.op = op

    def time_forward(self, *params):
        if self.op == "prelu":
            fastact.prelu(self.x, self.slopes, out=self.y, channel_axis=self.axis)
        else:
            fastact.affine_prelu(self.x, self.scale, self.shift, self.slopes, out=self.y,
                                 channel_axis=self.axis)
