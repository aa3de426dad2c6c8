"""The model the example server serves: a PReLU-heavy embedding head and a
feature-map activation, both in numpy with fastact's kernels.

`embed(x, params, act)` is written once and run twice: by the server with
fastact's kernels (`act=fastact_prelu`) and by the load generator with
fastact's float64 oracle rounded once to the input's dtype
(`act=oracle_prelu`), so that every response can be checked bitwise.
"""
import numpy as np

FEATURES = 512              # input features of the embedding head
LAYERS = (512, 512, 128)    # each: a matmul to this width, then per-channel PReLU
CHANNELS = 64               # channels of the feature maps /act takes (N, C, H, W)
LEAKY_SLOPE = 0.125         # leaky_relu's slope (exact in float32 and float64)
ELU_ALPHA = 1.0
ACT_OPS = ("prelu", "leaky_relu", "elu")


def build(seed=0):
    """The weights: fixed by `seed`, so the server and the load generator
    build the same ones."""
    rng = np.random.default_rng(seed)
    layers, fan_in = [], FEATURES
    for width in LAYERS:
        w = (rng.standard_normal((fan_in, width)) / np.sqrt(fan_in)).astype(np.float32)
        slopes = rng.uniform(0.05, 0.35, width).astype(np.float32)
        layers.append((w, slopes))
        fan_in = width
    fm_slopes = rng.uniform(-0.5, 1.5, CHANNELS).astype(np.float32)
    return {"layers": layers, "fm_slopes": fm_slopes}


def embed(x, params, act):
    """x (B, FEATURES) float32 -> (B, LAYERS[-1]) float32: for each layer,
    h = act(h @ W, slopes) (NC layout: one slope per channel on axis 1)."""
    h = x
    for w, slopes in params["layers"]:
        h = act(h @ w, slopes)
    return h


def fastact_prelu(z, slopes):
    import fastact
    return fastact.prelu(z, slopes, inplace=True)   # z is a fresh matmul result


def oracle_prelu(z, slopes):
    from fastact import _reference
    return _reference.prelu(z, slopes).astype(z.dtype)


def activate(x, op, params):
    """/act: x (N, CHANNELS, ...) float32 or float64 through one activation."""
    import fastact
    if op == "prelu":
        return fastact.prelu(x, params["fm_slopes"])
    if op == "leaky_relu":
        return fastact.leaky_relu(x, LEAKY_SLOPE)
    return fastact.elu(x, ELU_ALPHA)


def activate_oracle(x, op, params):
    """The float64 oracle of `activate`, rounded once to x's dtype (bitwise
    fastact's for prelu and leaky_relu; elu is within 1 ulp of it)."""
    from fastact import _reference
    if op == "prelu":
        y = _reference.prelu(x, params["fm_slopes"])
    elif op == "leaky_relu":
        y = _reference.leaky_relu(x, LEAKY_SLOPE)
    else:
        y = _reference.elu(x, ELU_ALPHA)
    return y.astype(x.dtype)
