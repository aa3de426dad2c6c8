"""fastact as user code calls it, for a type checker: .ci/run runs mypy on
this file, which must pass, and tests/test_typing.py runs it.

The reveal_type lines (seen by the type checker only) print what it infers
for fastact's API: with fastact's functions unannotated, that is Any; once
they carry types (inline or in .pyi stubs), the same lines show them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

import fastact

if TYPE_CHECKING:
    from typing_extensions import reveal_type

Array = npt.NDArray[np.float32]


def prelu_step(x: Array, slopes: Array) -> tuple[Array, Array, Array]:
    y = fastact.prelu(x, slopes)
    grad_input, grad_slopes = fastact.prelu_backward(np.ones_like(x), x, slopes)
    if TYPE_CHECKING:
        reveal_type(fastact.prelu)
        reveal_type(y)
        reveal_type(grad_slopes)
    return y, grad_input, grad_slopes


def leaky(x: Array) -> Array:
    out = np.empty_like(x)
    fastact.leaky_relu(x, 0.2, out=out)
    return fastact.leaky_relu_backward(np.ones_like(x), x, negative_slope=0.2)


def module(x: Array) -> Array:
    m = fastact.PReLU(x.shape[1], init=0.25)
    if TYPE_CHECKING:
        reveal_type(m)
        reveal_type(m.forward)
    y = m(x)
    m.backward(np.ones_like(y))
    return m.grad_slopes


def cube(x: Array) -> Array:
    return x * x * x


def cube_backward(grad_output: Array, x: Array) -> Array:
    return grad_output * 3 * x * x


def by_name(x: Array) -> Array:
    fastact.register("typing-example-cube", cube, cube_backward, replace=True)
    m = fastact.get("typing-example-cube")
    relu = fastact.get("relu", max_value=6.0)
    if TYPE_CHECKING:
        reveal_type(fastact.get)
        reveal_type(m)
    return relu(m(x))


if __name__ == "__main__":
    x = np.linspace(-2, 2, 2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    slopes = np.full(3, 0.25, np.float32)
    y, grad_input, grad_slopes = prelu_step(x, slopes)
    assert y.shape == x.shape and grad_slopes.shape == (3,)
    assert leaky(x).shape == x.shape
    assert module(x).shape == (3,)
    assert by_name(x).max() == 6.0
    print("ok")
