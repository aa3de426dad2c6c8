"""The CUDA kernels' own source, compiled for the host with a small emulation
of CUDA (tools/cuda_emulation.h: each block's threads are real threads that
meet at __syncthreads), checked against the float64 oracles.

This runs without a GPU: it checks the indexing, the vector and scalar paths,
the channel tracking of every layout, the two-stage reduction and its fixed
order, and the launch arithmetic.  Speed, the memory model and the real
float16/bfloat16 intrinsics are tests/test_cuda.py's, on a GPU.
"""
import ctypes
import os
import shutil
import subprocess

import numpy as np
import pytest

import fastact
from fastact import _cpu, _layout, _reference

from helpers import (
    assert_grad_slopes_close,
    assert_same,
    assert_within_ulp,
    random_slopes,
    random_x,
    rounded_like_kernels,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CXX = shutil.which("g++") or shutil.which("c++")
pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler to build the emulation")

try:
    import ml_dtypes
    BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:
    BF16 = None

DT = {np.dtype(np.float32): _cpu.DT_F32, np.dtype(np.float64): _cpu.DT_F64,
      np.dtype(np.float16): _cpu.DT_F16}
if BF16 is not None:
    DT[BF16] = _cpu.DT_BF16
DTYPES = list(DT)
OP_LEAKY_RELU, OP_RELU, OP_RELU_PLAIN = _cpu.OP_LEAKY_RELU, _cpu.OP_RELU, _cpu.OP_RELU_PLAIN
OP_ELU, OP_SQUARE, OP_ELU_OUTPUT = _cpu.OP_ELU, _cpu.OP_SQUARE, _cpu.OP_ELU_OUTPUT
OP_HARDTANH = _cpu.OP_HARDTANH
ELU_ULPS = 2


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("emu") / "libfastact_cuda_emu.so")
    cmd = [CXX, "-std=c++20", "-O1", "-shared", "-fPIC", "-ffp-contract=off",
           "-DFASTACT_CUDA_EMULATE", "-include", os.path.join(ROOT, "tools", "cuda_emulation.h"),
           "-x", "c++", os.path.join(ROOT, "src", "cuda", "fastact_cuda.cu"), "-o", out,
           "-pthread"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 and "_Float16" in result.stderr:
        pytest.skip("this C++ compiler has no _Float16")
    assert result.returncode == 0, result.stderr
    so = ctypes.CDLL(out)
    i64, ptr, dbl, i = ctypes.c_int64, ctypes.c_void_p, ctypes.c_double, ctypes.c_int
    so.fa_cuda_unary_forward.argtypes = [i, i, i, ptr, ptr, ptr, i64, ctypes.c_size_t]
    so.fa_cuda_unary_backward.argtypes = [i, i, i, ptr, ptr, ptr, ptr, i64, ctypes.c_size_t]
    so.fa_cuda_prelu_forward.argtypes = [i, i, ptr, ptr, i, dbl, ptr, i64, i64, i64,
                                         ctypes.c_size_t]
    so.fa_cuda_prelu_backward.argtypes = [i, i, ptr, ptr, ptr, i, dbl, ptr, ptr, i, i,
                                          i64, i64, i64, ctypes.c_size_t]
    so.fa_cuda_affine_prelu_forward.argtypes = [i, i, ptr, ptr, ptr, ptr, i, ptr, i64, i64,
                                                i64, ctypes.c_size_t]
    return so


def _p(a):
    return ctypes.c_void_p(a.ctypes.data if a is not None and a.size else 0)


def _poison(shape, dtype, misalign):
    """An output buffer filled with 0x7F bytes, 16-byte aligned or misaligned
    by one element (to reach the scalar paths)."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    raw = np.full((n + 32) * dtype.itemsize, 0x7F, dtype=np.uint8)
    start = (-raw.ctypes.data) % 16 + (dtype.itemsize if misalign else 0)
    return raw[start:start + n * dtype.itemsize].view(dtype).reshape(shape)


def _placed(a, misalign):
    b = _poison(a.shape, a.dtype, misalign)
    b[...] = a
    return b


def _data(rng, shape, dtype, misalign=False):
    x = random_x(rng, shape, np.float32)
    return _placed(x.astype(dtype), misalign)


def _compute_params(dtype, params):
    """Parameters as the kernels hold them: float32 except for float64."""
    return tuple(params) if dtype == np.float64 else tuple(float(np.float32(p)) for p in params)


def _eps(dtype):
    if BF16 is not None and np.dtype(dtype) == BF16:
        return 2.0 ** -7
    return float(np.finfo(dtype).eps)


def _close(got, want64, dtype, ulps=0):
    """got (a kernel's output) against the float64 oracle rounded as the
    kernels round (to the compute type, then to dtype): bitwise for ulps=0,
    else within `ulps` units in the last place, NaN where NaN; and every
    element written (no 0x7F poison left).  Counted in ulps, not relative
    error, so that subnormal float16 results (steps of 2**-24) are held to
    the same bound as normal ones."""
    want = rounded_like_kernels(want64, dtype)
    poison = np.frombuffer(b"\x7f" * np.dtype(dtype).itemsize, dtype)[0]
    assert not (np.asarray(got).view(np.uint8).reshape(-1, np.dtype(dtype).itemsize)
                == np.uint8(0x7F)).all(axis=1).any() or poison in want, \
        "an element was not written"
    if ulps:
        assert_within_ulp(got, want, ulps)
    else:
        assert_same(got, want)


# (op, params, oracle forward, oracle backward, ulps forward, ulps backward).
# One select and one rounded operation: bitwise.  relu with a threshold and a
# slope, slope * (x - threshold), rounds twice: 2 ulp.  ELU: within an ulp of
# the compute type before the final rounding (fa_math.h's functions for
# float, the C library's for float64; test_elu_is_the_cpu_kernels_bit_for_bit
# holds them to the CPU kernels exactly).
FAMILY = [
    (OP_LEAKY_RELU, (0.2, 0, 0), lambda x, p: _reference.leaky_relu(x, p[0]),
     lambda g, x, p: _reference.leaky_relu_backward(g, x, p[0]), 0, 0),
    (OP_RELU, (0.1, 1.5, -0.25), lambda x, p: _reference.relu(x, *p),
     lambda g, x, p: _reference.relu_backward(g, x, *p), 2, 0),
    (OP_RELU, (0.0, float("inf"), 0.5), lambda x, p: _reference.relu(x, *p),
     lambda g, x, p: _reference.relu_backward(g, x, *p), 0, 0),
    (OP_RELU_PLAIN, (0, 0, 0), lambda x, p: _reference.relu(x),
     lambda g, x, p: _reference.relu_backward(g, x), 0, 0),
    (OP_ELU, (1.3, 0, 0), lambda x, p: _reference.elu(x, p[0]),
     lambda g, x, p: _reference.elu_backward(g, x, p[0]), ELU_ULPS, ELU_ULPS),
    (OP_HARDTANH, (-0.3, 2.7, 0), lambda x, p: _reference.hardtanh(x, p[0], p[1]),
     lambda g, x, p: _reference.hardtanh_backward(g, x, p[0], p[1]), 0, 0),
    (OP_SQUARE, (0, 0, 0), lambda x, p: _reference.square(x),
     lambda g, x, p: _reference.square_backward(g, x), 0, 0),
    (OP_ELU_OUTPUT, (0.7, 0, 0), None,
     lambda g, y, p: _reference.elu_backward_from_output(g, y, p[0]), None, ELU_ULPS),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("misalign", [False, True])
@pytest.mark.parametrize("n", [0, 1, 7, 1000, 4099])
def test_family(lib, rng, dtype, misalign, n):
    dt = DT[np.dtype(dtype)]
    for op, params, fwd, bwd, ulps_fwd, ulps_bwd in FAMILY:
        cp = _compute_params(dtype, params)
        x = _data(rng, (n,), dtype, misalign)
        g = _data(rng, (n,), dtype)
        pv = (ctypes.c_double * 3)(*params)
        if fwd is not None:
            y = _poison((n,), dtype, False)
            assert lib.fa_cuda_unary_forward(0, op, dt, pv, _p(x), _p(y), n, 0) == 0
            _close(y, fwd(x, cp), dtype, ulps_fwd)
        gi = _poison((n,), dtype, misalign)
        assert lib.fa_cuda_unary_backward(0, op, dt, pv, _p(g), _p(x), _p(gi), n, 0) == 0
        _close(gi, bwd(g, x, cp), dtype, ulps_bwd)
        # in place
        xi = x.copy() if not misalign else _placed(x, True)
        if fwd is not None:
            assert lib.fa_cuda_unary_forward(0, op, dt, pv, _p(xi), _p(xi), n, 0) == 0
            _close(xi, fwd(x, cp), dtype, ulps_fwd)


LAYOUTS = [
    # (x shape, slopes shape or "number", channel_axis)
    ((3, 4, 5, 6), (4,), 1),          # NCHW, short rows: column strategy
    ((2, 3, 33, 31), (3,), 1),        # NCHW, rows >= 512 elements, odd length
    ((1, 2, 130, 130), (2,), 1),      # rows longer than one 16384-element chunk
    ((4, 5, 6, 7), (7,), -1),         # NHWC: inner == 1
    ((8, 9, 3, 8), (8,), -1),         # NHWC with a vector-friendly channel count
    ((5, 120), (120,), 1),            # (N, C)
    ((2, 3, 4, 5), (3, 1, 1), 1),     # Keras-style slopes, broadcast
    ((2, 3, 4, 5), (1, 4, 5), 1),     # shared over channels, per position
    ((2, 3, 4, 5), (3, 4, 1), 1),
    ((7, 3000), "number", 1),         # shared
    ((0, 3, 4), (3,), 1),             # empty
    ((2, 3, 0), (3,), 1),
]


def _slopes(rng, spec, dtype):
    if spec == "number":
        return 0.37
    return random_slopes(rng, int(np.prod(spec)), np.float64).reshape(spec)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("misalign", [False, True])
@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda case: f"{case[0]}-{case[1]}-{case[2]}")
def test_prelu(lib, rng, dtype, misalign, layout):
    shape, spec, axis = layout
    dt = DT[np.dtype(dtype)]
    compute = np.float64 if dtype == np.float64 else np.float32
    slopes = _slopes(rng, spec, dtype)
    s_arr = np.asarray(slopes, compute)                 # rounded as the kernels hold them
    plan = _layout.prelu_plan(shape, s_arr.shape, axis)
    vec = np.ascontiguousarray(_layout.expand_slopes(s_arr, plan), dtype=compute)
    shared = plan.channels == 1
    sp = ctypes.c_void_p(0) if shared else _p(vec)
    shared_value = float(vec[0]) if shared else 0.0
    x = _data(rng, shape, dtype, misalign)
    g = _data(rng, shape, dtype, misalign)

    y = _poison(shape, dtype, misalign)
    assert lib.fa_cuda_prelu_forward(0, dt, _p(x), sp, 1, shared_value, _p(y), plan.outer,
                                     plan.channels, plan.inner, 0) == 0
    _close(y, _reference.prelu(x, s_arr, axis), dtype)

    gdt = np.float64 if dtype == np.float64 else np.float32
    want_gi, want_gs = _reference.prelu_backward(g, x, s_arr, axis)
    results = []
    for _ in range(2):
        gi = _poison(shape, dtype, misalign)
        gvec = np.full(plan.channels, np.nan, gdt)
        assert lib.fa_cuda_prelu_backward(0, dt, _p(g), _p(x), sp, 1, shared_value, _p(gi),
                                          _p(gvec), 0 if gdt == np.float32 else 1, 0,
                                          plan.outer, plan.channels, plan.inner, 0) == 0
        _close(gi, want_gi, dtype)
        gs = _layout.reduce_grad(gvec.astype(np.float64), plan)
        assert_grad_slopes_close(gs, want_gs, g, x, gdt)
        results.append(gvec)
    # fixed summation order: bitwise the same
    assert results[0].tobytes() == results[1].tobytes()

    # in place (grad_input into grad_output), divided by the slopes
    gi = g.copy() if not misalign else _placed(g, True)
    gvec = np.full(plan.channels, np.nan, gdt)
    assert lib.fa_cuda_prelu_backward(0, dt, _p(gi), _p(x), sp, 1, shared_value, _p(gi),
                                      _p(gvec), 0 if gdt == np.float32 else 1, 1,
                                      plan.outer, plan.channels, plan.inner, 0) == 0
    _close(gi, want_gi, dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = results[0].astype(np.float64) / vec.astype(np.float64)
    np.testing.assert_allclose(gvec.astype(np.float64), direct,
                               rtol=4 * _eps(gdt), equal_nan=True)


AFFINE_LAYOUTS = [(shape, spec[0], axis) for shape, spec, axis in LAYOUTS
                  if spec != "number" and len(spec) == 1] + [((7, 3000), 1, 1)]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("misalign", [False, True])
@pytest.mark.parametrize("layout", AFFINE_LAYOUTS, ids=lambda case: f"{case[0]}-{case[2]}")
def test_affine_prelu(lib, rng, dtype, misalign, layout):
    """prelu(x * scale + shift) per channel: the oracle rounded step by step
    in the compute type, and the CPU kernels' result, bit for bit; in place
    too."""
    shape, channels, axis = layout
    dt = DT[np.dtype(dtype)]
    compute = np.float64 if dtype == np.float64 else np.float32
    scale = rng.uniform(-3, 3, channels).astype(compute)
    shift = rng.standard_normal(channels).astype(compute)
    slopes = random_slopes(rng, channels, compute)
    x = _data(rng, shape, dtype, misalign)
    outer, c, inner = _layout.channel_plan(shape, [("scale", channels)], axis)
    want = _reference.affine_prelu(x, scale, shift, slopes, axis,
                                   rounding=None if compute == np.float64 else compute)
    args = (_p(scale), _p(shift), _p(slopes), 1)
    y = _poison(shape, dtype, misalign)
    assert lib.fa_cuda_affine_prelu_forward(0, dt, _p(x), *args, _p(y), outer, c, inner,
                                            0) == 0
    _close(y, want, dtype)
    if x.size:
        assert_same(y, fastact.affine_prelu(x, scale, shift, slopes, channel_axis=axis))
    xi = x.copy() if not misalign else _placed(x, True)
    assert lib.fa_cuda_affine_prelu_forward(0, dt, _p(xi), *args, _p(xi), outer, c, inner,
                                            0) == 0
    _close(xi, want, dtype)


def test_nan_makes_its_channel_nan(lib):
    x = np.array([[[1.0, -2.0], [np.nan, -1.0]]], np.float32)      # (1, 2, 2)
    g = np.ones_like(x)
    s = np.array([0.5, 0.25], np.float32)
    gi = np.empty_like(x)
    gs = np.empty(2, np.float32)
    assert lib.fa_cuda_prelu_backward(0, 0, _p(g), _p(x), _p(s), 1, 0.0, _p(gi), _p(gs), 0, 0,
                                      1, 2, 2, 0) == 0
    assert gs[0] == -2.0 and np.isnan(gs[1])
    np.testing.assert_array_equal(gi, [[[1.0, 0.5], [0.25, 0.25]]])


def test_half_results_round_through_float32_in_the_subnormal_range(lib):
    """The case behind a once-flaky comparison: relu's gradient below the
    threshold, 0.1 * g, for g = 5.87e-05 in float16.  The exact product is
    98.500001 float16 subnormal steps (2**-24), the float32 product exactly
    98.5, which rounds to even: 98 steps.  Rounding the float64 product once
    would give 99.  The kernels compute in float32 and round once more, as
    documented, so 98 is right, one ulp from the single rounding: a
    relative-only tolerance (1% apart here) cannot hold that."""
    g = np.full(16, 5.87e-05, np.float16)
    x = np.full(16, -1.0, np.float16)
    gi = _poison((16,), np.float16, False)
    pv = (ctypes.c_double * 3)(0.1, 1.5, -0.25)
    assert lib.fa_cuda_unary_backward(0, OP_RELU, DT[np.dtype(np.float16)], pv, _p(g), _p(x),
                                      _p(gi), 16, 0) == 0
    want = np.full(16, 98 * 2.0 ** -24)
    np.testing.assert_array_equal(gi.astype(np.float64), want)
    # the same as the CPU kernels
    cpu = _cpu.unary_backward(OP_RELU, (0.1, 1.5, -0.25), g, x, None, False)
    assert_same(cpu, gi)
    # and the comparison model the tests use gives the same
    assert_same(rounded_like_kernels(_reference.relu_backward(
        g.astype(np.float64), x.astype(np.float64), float(np.float32(0.1)), 1.5, -0.25),
        np.float16), gi)


def _elu_inputs(rng, dtype):
    """ELU's hard cases: the deep negative tail (where alpha * expm1 rounds to
    -alpha and exp underflows through the subnormals to 0), zeros of both
    signs, subnormals, infinities and NaN, around random values."""
    x = random_x(rng, (4099,), np.float64) * 4
    special = np.array([-np.inf, -1e4, -800.0, -745.2, -745.1, -708.5, -104.0, -103.0,
                        -87.4, -17.5, -17.3, -1.0, -1e-7, -1e-30, -1e-40, -0.0, 0.0, 1e-40,
                        1e-7, 1.0, np.inf, np.nan])
    x[:special.size] = special
    x[special.size:special.size + 500] = -rng.uniform(0, 800, 500)
    g = random_x(rng, (4099,), np.float64)
    g[:6] = [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-40]
    with np.errstate(over="ignore"):
        return x.astype(dtype), g.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("alpha", [1.0, 1.3, 0.25, 0.0, 1e300])
def test_elu_is_the_cpu_kernels_bit_for_bit(lib, rng, dtype, alpha):
    """The GPU kernels compute ELU with the CPU kernels' own definitions
    (src/ops.h, fa_math.h, the gradient in double): the same bits for every
    dtype, forward, backward and backward from the output.  (In the emulation
    float64's expm1 and exp are the C library's, as on the CPU; a real GPU's
    may differ by an ulp there: tests/test_cuda.py.)"""
    x, g = _elu_inputs(rng, dtype)
    n, dt, pv = x.size, DT[np.dtype(dtype)], (ctypes.c_double * 3)(alpha, 0, 0)
    with np.errstate(all="ignore"):
        y = _poison((n,), dtype, False)
        assert lib.fa_cuda_unary_forward(0, OP_ELU, dt, pv, _p(x), _p(y), n, 0) == 0
        assert_same(y, _cpu.unary_forward(OP_ELU, (alpha, 0, 0), x, None, False))
        gi = _poison((n,), dtype, True)
        assert lib.fa_cuda_unary_backward(0, OP_ELU, dt, pv, _p(g), _p(x), _p(gi), n, 0) == 0
        assert_same(gi, _cpu.unary_backward(OP_ELU, (alpha, 0, 0), g, x, None, False))
        if alpha > 0:
            assert lib.fa_cuda_unary_backward(0, OP_ELU_OUTPUT, dt, pv, _p(g), _p(y), _p(gi),
                                              n, 0) == 0
            assert_same(gi, _cpu.unary_backward(OP_ELU_OUTPUT, (alpha, 0, 0), g, y, None, False))
