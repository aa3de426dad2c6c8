"""Arrays past 2**31 elements: 64-bit indexing everywhere.

Needs about 18 GB of memory and a few minutes, so it is left out of the
default run; run it with `pytest -m large tests/test_large.py`.
"""
import numpy as np
import pytest

import fastact

pytestmark = pytest.mark.large

N = 2**31 + 4099          # elements: past the int32 range, not a multiple of any vector width


def test_forward_and_backward_past_2_to_the_31():
    channels = 3
    inner = -(-N // channels)
    x = np.empty((1, channels, inner), dtype=np.float32)
    # a pattern cheap to fill and to check: sign alternates along the plane
    x[:, :, 0::2] = -2.0
    x[:, :, 1::2] = 3.0
    slopes = np.array([0.5, -1.5, 2.0], dtype=np.float32)
    fastact.prelu(x, slopes, inplace=True)
    for c, a in enumerate(slopes):
        tail = x[0, c, -6:]
        expect = np.where(np.arange(inner - 6, inner) % 2 == 0, np.float32(a) * np.float32(-2.0),
                          np.float32(3.0))
        np.testing.assert_array_equal(tail, expect)
        head = x[0, c, :4]
        np.testing.assert_array_equal(head, np.array([a * -2.0, 3.0, a * -2.0, 3.0], np.float32))
    # backward in place on g; x is restored to the input pattern
    x[:, :, 0::2] = -2.0
    x[:, :, 1::2] = 3.0
    g = np.ones_like(x)
    gi, gs = fastact.prelu_backward(g, x, slopes, inplace=True)
    assert gi is g
    last = np.arange(inner - 4, inner)
    for c, a in enumerate(slopes):
        np.testing.assert_array_equal(g[0, c, -4:], np.where(last % 2 == 0, a, np.float32(1.0)))
    n_negative = (inner + 1) // 2
    np.testing.assert_allclose(gs, np.full(3, -2.0 * n_negative), rtol=1e-6)
