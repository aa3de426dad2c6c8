"""How PReLU's slopes lie over x: device-independent layout planning.

The kernels see x as contiguous (outer, channels, inner) blocks with one slope
per channel.  Every slope shape fastact accepts maps onto that:

- one value (a number, or an array of size 1 of any shape): shared,
  (1, 1, x.size);
- a 1-D array of C > 1 values: one per channel on ``channel_axis`` (1 for
  NCHW, -1 for NHWC), (prod(x.shape[:axis]), C, prod(x.shape[axis + 1:]));
- an array of 2 or more dims: broadcast against x.shape[1:] (numpy's rules,
  right-aligned), as Keras's PReLU holds its alpha.  The channels are the run
  of x's dims from the first to the last along which the slopes vary (the
  "span"); the slopes are broadcast over that run and flattened, which costs
  a vector of prod(span) values, never a copy of x.
"""
from collections import namedtuple
from math import prod

Plan = namedtuple("Plan", "outer channels inner span span_slopes slopes_shape")
Plan.__doc__ = """x as (outer, channels, inner) blocks.

span: the dims of x the slope vector covers (prod(span) == channels);
span_slopes: the slopes' own shape over those dims (1 where they broadcast);
slopes_shape: the shape of the slopes as given (and of grad_slopes).
"""


def prelu_plan(x_shape, slopes_shape, channel_axis=1):
    """The Plan for slopes of shape ``slopes_shape`` on x of shape ``x_shape``.

    channel_axis is 1 or -1 (fastact._checks.channel_axis, applied by the
    callers).  Raises ValueError (naming the shapes) when the slopes do not
    fit x.
    """
    x_shape = tuple(x_shape)
    slopes_shape = tuple(slopes_shape)
    ndim = len(x_shape)
    if prod(slopes_shape) == 1:
        return Plan(1, 1, prod(x_shape), (), (), slopes_shape)
    if len(slopes_shape) == 1:
        n = slopes_shape[0]
        if ndim < 2:
            raise ValueError(
                f"slopes has {n} values but x has shape {x_shape}: per-channel "
                f"slopes need x of shape (N, C, ...) (channel_axis=1) or (N, ..., C) "
                f"(channel_axis=-1); pass one value to share it")
        axis = 1 if channel_axis == 1 else ndim - 1
        if x_shape[axis] != n:
            raise ValueError(
                f"slopes has {n} values but x has {x_shape[axis]} channels "
                f"(axis {channel_axis})")
        return Plan(prod(x_shape[:axis]), n, prod(x_shape[axis + 1:]), (n,), (n,),
                    slopes_shape)

    feature = x_shape[1:]
    if ndim < 2 or len(slopes_shape) > len(feature):
        raise ValueError(
            f"slopes has shape {slopes_shape}, which does not broadcast to x.shape[1:] "
            f"= {feature}: pass one value, one per channel, or slopes of a shape that "
            f"does")
    padded = (1,) * (len(feature) - len(slopes_shape)) + slopes_shape
    for s, d in zip(padded, feature):
        if s != 1 and s != d:
            raise ValueError(
                f"slopes has shape {slopes_shape}, which does not broadcast to "
                f"x.shape[1:] = {feature}")
    varying = [k for k, (s, d) in enumerate(zip(padded, feature)) if s == d and d != 1]
    # not empty: slopes of size 1 were shared above, and a dim of size > 1
    # (or 0) that broadcasts must equal x's
    first, last = varying[0] + 1, varying[-1] + 1        # dims of x
    return Plan(prod(x_shape[:first]), prod(x_shape[first:last + 1]),
                prod(x_shape[last + 1:]), x_shape[first:last + 1],
                padded[first - 1:last], slopes_shape)


def expand_slopes(slopes, plan, xp=None):
    """The plan's slope vector: ``plan.channels`` values, C-contiguous.

    slopes: an array of plan.slopes_shape; xp: its array module (numpy when
    None; CuPy or torch-like modules with reshape/broadcast_to/ascontiguousarray
    work too)."""
    if xp is None:
        import numpy as xp
    flat = slopes.reshape(plan.span_slopes if plan.span else (1,))
    if plan.span and plan.span_slopes != plan.span:
        flat = xp.broadcast_to(flat, plan.span)
    return xp.ascontiguousarray(flat).reshape(-1)


def reduce_grad(grad_vec, plan):
    """grad_slopes of plan.slopes_shape from the gradient of each of the
    plan.channels values of the slope vector (sums over broadcast dims)."""
    if not plan.span:
        return grad_vec.reshape(plan.slopes_shape)
    g = grad_vec.reshape(plan.span)
    axes = tuple(k for k, (s, d) in enumerate(zip(plan.span_slopes, plan.span))
                 if s == 1 and d != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(plan.slopes_shape)


def channel_plan(x_shape, sizes, channel_axis=1):
    """x as (outer, channels, inner) for affine_prelu's per-channel vectors.

    sizes: (name, number of values) of each vector; 1 is shared by every
    element, more is one per channel on ``channel_axis`` (1 or -1).  With
    every vector shared, (1, 1, x.size).  Raises ValueError naming the
    vector that does not fit x.
    """
    x_shape = tuple(x_shape)
    ndim = len(x_shape)
    per_channel = [(name, n) for name, n in sizes if n != 1]
    if not per_channel:
        return 1, 1, prod(x_shape)
    axis = 1 if channel_axis == 1 else ndim - 1
    for name, n in per_channel:
        if ndim < 2:
            raise ValueError(
                f"{name} has {n} values but x has shape {x_shape}: per-channel values "
                f"need x of shape (N, C, ...) (channel_axis=1) or (N, ..., C) "
                f"(channel_axis=-1); pass one value to share it")
        if x_shape[axis] != n:
            raise ValueError(f"{name} has {n} values but x has {x_shape[axis]} channels "
                             f"(axis {channel_axis})")
    return prod(x_shape[:axis]), x_shape[axis], prod(x_shape[axis + 1:])
