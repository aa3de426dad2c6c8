"""fastact.jax: fastact's kernels as XLA FFI targets, under jit, grad and vmap,
against the numpy API (bitwise), the float64 oracles and JAX's own checks."""
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

jax = pytest.importorskip("jax")
fj = pytest.importorskip("fastact.jax")
jnp = jax.numpy

import fastact  # noqa: E402
from fastact import _reference  # noqa: E402

DTYPES = ["float32", "float64", "float16", "bfloat16"]
SPECIAL = [0.0, -0.0, 1.0, -1.0, 6.0, np.inf, -np.inf, np.nan]


@pytest.fixture(params=DTYPES)
def dtype(request):
    """Each dtype, float64 under jax_enable_x64 (JAX's own setting, restored)."""
    if request.param == "bfloat16":
        import ml_dtypes
        yield np.dtype(ml_dtypes.bfloat16)
        return
    if request.param == "float64":
        with jax.enable_x64(True):
            yield np.dtype(np.float64)
        return
    yield np.dtype(request.param)


def _data(rng, shape, dtype, special=True):
    x = rng.uniform(-8, 8, shape)
    if special and x.size >= len(SPECIAL):
        flat = x.reshape(-1)
        flat[rng.choice(flat.size, len(SPECIAL), replace=False)] = SPECIAL
    return x.astype(dtype)


def _same(a, b):
    """Bitwise equal (NaNs with NaNs), the dtypes too."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
    view = {8: np.int64, 4: np.int32, 2: np.int16}[a.dtype.itemsize]
    np.testing.assert_array_equal(a.view(view), b.view(view))


# (x shape, slopes shape or None for a number, channel_axis)
PRELU_CASES = [
    ((2, 5, 6, 7), (5,), 1),          # NCHW per channel
    ((2, 6, 7, 5), (5,), -1),         # NHWC per channel
    ((3, 4, 9), None, 1),             # a shared number
    ((3, 4, 9), (1,), 1),             # a shared array
    ((2, 3, 4, 5), (3, 4, 5), 1),     # Keras's PReLU alpha: x.shape[1:]
    ((2, 4, 5, 3), (1, 1, 3), 1),     # Keras's shared_axes=[1, 2]: reduced over H, W
    ((2, 3, 4, 5), (3, 1, 5), 1),     # broadcast in the middle
    ((7, 300), (300,), 1),            # (N, C)
]


@pytest.mark.parametrize("shape,sshape,axis", PRELU_CASES)
def test_prelu_jit_grad_bitwise(rng, dtype, shape, sshape, axis):
    x = _data(rng, shape, dtype)
    g = _data(rng, shape, dtype, special=False)
    compute = np.float64 if dtype == np.float64 else np.float32
    slopes = 0.3 if sshape is None else rng.uniform(-1, 2, sshape).astype(compute)

    y = jax.jit(fj.prelu, static_argnums=2)(x, slopes, axis)
    _same(y, fastact.prelu(x, slopes, channel_axis=axis))

    ref_gx, ref_gs = fastact.prelu_backward(g, x, slopes, channel_axis=axis)
    if sshape is None:
        # a number: only x has a gradient
        _, vjp = jax.vjp(jax.jit(lambda x: fj.prelu(x, slopes, axis)), x)
        _same(vjp(jnp.asarray(g))[0], ref_gx)
        return
    y, vjp = jax.vjp(jax.jit(lambda x, a: fj.prelu(x, a, axis)), x, slopes)
    gx, gs = vjp(jnp.asarray(g))
    _same(gx, ref_gx)
    _same(gs, ref_gs)
    # jax.value_and_grad of sum(prelu(x, a) * g): the cotangent is g exactly
    # where the product's derivative is g (float32 and float64)
    if dtype in (np.float32, np.float64):
        loss = jax.jit(jax.value_and_grad(
            lambda x, a: jnp.sum(fj.prelu(x, a, axis) * g), argnums=(0, 1)))
        _, (gx, gs) = loss(x, slopes)
        _same(gx, ref_gx)
        _same(gs, ref_gs)


def test_prelu_slope_gradient_in_slopes_dtype(rng):
    # float16 x with float16 slopes: the kernels read float32 slopes, the
    # gradient comes back in the slopes' dtype
    x = _data(rng, (2, 3, 8), np.float16)
    a = rng.uniform(0, 1, 3).astype(np.float16)
    g = _data(rng, x.shape, np.float16, special=False)
    _, vjp = jax.vjp(fj.prelu, x, a)
    gx, ga = vjp(jnp.asarray(g))
    ref_gx, ref_ga = fastact.prelu_backward(g, x, a)
    _same(gx, ref_gx)
    _same(ga, ref_ga.astype(np.float16))


def test_prelu_against_oracle(rng):
    with jax.enable_x64(True):
        x = _data(rng, (3, 4, 5, 6), np.float64)
        a = rng.uniform(-1, 2, (4, 1, 6))
        g = rng.standard_normal(x.shape)
        y, vjp = jax.vjp(fj.prelu, x, a)
        gx, ga = vjp(jnp.asarray(g))
        np.testing.assert_array_equal(np.asarray(y), _reference.prelu(x, a))
        ref_gx, ref_ga = _reference.prelu_backward(g, x, a)
        np.testing.assert_array_equal(np.asarray(gx), ref_gx)
        np.testing.assert_allclose(np.asarray(ga), ref_ga, rtol=1e-12, atol=1e-12)
    x32 = _data(rng, (3, 4, 50), np.float32, special=False)
    a32 = rng.uniform(0, 1, 4).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(fj.prelu(x32, a32)),
                                  _reference.prelu(x32, a32).astype(np.float32))


def test_check_grads_float64(rng):
    from jax.test_util import check_grads
    with jax.enable_x64(True):
        # away from the kink, where finite differences hold
        x = rng.uniform(0.1, 2, (2, 3, 4)) * rng.choice([-1, 1], (2, 3, 4))
        a = rng.uniform(0, 1, 3)
        check_grads(fj.prelu, (jnp.asarray(x), jnp.asarray(a)), order=1, modes=["rev"])
        check_grads(lambda x: fj.elu(x, 0.7), (jnp.asarray(x),), order=1, modes=["rev"])
        check_grads(lambda x: fj.leaky_relu(x, 0.2), (jnp.asarray(x),), order=1,
                    modes=["rev"])


@pytest.mark.parametrize("mapped", ["x", "both", "slopes"])
def test_prelu_vmap(rng, dtype, mapped):
    B = 3
    compute = np.float64 if dtype == np.float64 else np.float32
    xs = _data(rng, (B, 2, 4, 5), dtype)
    gs = _data(rng, xs.shape, dtype, special=False)
    a_all = rng.uniform(-1, 2, (B, 4)).astype(compute)
    x_axis = None if mapped == "slopes" else 0
    a_axis = None if mapped == "x" else 0
    x_in = xs if x_axis == 0 else xs[0]
    a_in = a_all if a_axis == 0 else a_all[0]

    def per(x, a, g):
        y, vjp = jax.vjp(fj.prelu, x, a)
        return (y,) + vjp(g)

    f = jax.jit(jax.vmap(per, in_axes=(x_axis, a_axis, 0)))
    y, gx, ga = f(x_in, a_in, gs)
    for b in range(B):
        xb = xs[b] if x_axis == 0 else xs[0]
        ab = a_all[b] if a_axis == 0 else a_all[0]
        _same(y[b], fastact.prelu(xb, ab))
        ref_gx, ref_ga = fastact.prelu_backward(gs[b], xb, ab)
        _same(gx[b], ref_gx)
        _same(ga[b], ref_ga)


def test_prelu_nested_vmap(rng):
    x = _data(rng, (2, 3, 1, 4, 6), np.float32)     # vmapped (2, 3), x of (1, 4, 6)
    a = rng.uniform(0, 1, (3, 4)).astype(np.float32)
    f = jax.vmap(jax.vmap(fj.prelu, in_axes=(0, 0)), in_axes=(0, None))
    y = jax.jit(f)(x, a)
    for i in range(2):
        for j in range(3):
            _same(y[i, j], fastact.prelu(x[i, j], a[j]))


ELEMENTWISE = [
    ("leaky_relu", ()), ("leaky_relu", (0.2,)), ("relu", ()),
    ("relu", (0.1, 6.0, 0.5)), ("relu6", ()), ("elu", ()), ("elu", (0.7,)),
    ("thresholded_relu", ()), ("thresholded_relu", (0.5,)), ("hardtanh", (-2.0, 3.0)),
]


@pytest.mark.parametrize("name,params", ELEMENTWISE)
def test_elementwise_bitwise(rng, dtype, name, params):
    x = _data(rng, (3, 5, 7), dtype)
    g = _data(rng, x.shape, dtype, special=False)
    f = getattr(fj, name)
    y, vjp = jax.vjp(jax.jit(lambda x: f(x, *params)), x)
    _same(y, getattr(fastact, name)(x, *params))
    _same(vjp(jnp.asarray(g))[0], getattr(fastact, name + "_backward")(g, x, *params))
    # vmap (broadcast_all): the mapped batch is one call, the same values
    yv = jax.jit(jax.vmap(lambda x: f(x, *params)))(x)
    _same(yv, getattr(fastact, name)(x, *params))
    gv = jax.vmap(lambda x, g: jax.vjp(lambda x: f(x, *params), x)[1](g)[0])(x, g)
    _same(gv, getattr(fastact, name + "_backward")(g, x, *params))


def test_elementwise_against_oracle(rng):
    with jax.enable_x64(True):
        x = _data(rng, (4, 33), np.float64)
        np.testing.assert_array_equal(np.asarray(fj.relu(x, 0.1, 6.0, 0.5)),
                                      _reference.relu(x, 0.1, 6.0, 0.5))
        np.testing.assert_array_equal(np.asarray(fj.hardtanh(x)), _reference.hardtanh(x))
        np.testing.assert_allclose(np.asarray(fj.elu(x)), _reference.elu(x), rtol=1e-15)


def test_empty_and_scalar_inputs(rng):
    _same(fj.prelu(np.zeros((0, 3, 4), np.float32), np.ones(3, np.float32)),
          np.zeros((0, 3, 4), np.float32))
    _same(fj.leaky_relu(np.float32(-2.0)), np.float32(-0.02))


# --- errors --------------------------------------------------------------------------

def test_errors():
    x = jnp.ones((2, 3, 4), jnp.float32)
    with pytest.raises(TypeError, match="x has dtype int32"):
        fj.prelu(jnp.ones((2, 3), jnp.int32), 0.1)
    with pytest.raises(TypeError, match="x has dtype int32"):
        fj.relu(jnp.ones(3, jnp.int32))
    with pytest.raises(ValueError, match="slopes has 4 values but x has 3 channels"):
        fj.prelu(x, jnp.ones(4))
    with pytest.raises(ValueError, match="channel_axis must be 1"):
        fj.prelu(x, 0.1, channel_axis=2)
    with pytest.raises(ValueError, match="slopes is NaN"):
        fj.prelu(x, float("nan"))
    with pytest.raises(ValueError, match="slopes must be finite"):
        fj.prelu(x, np.array([1.0, np.inf, 1.0]))
    with pytest.raises(TypeError, match="slopes has dtype int"):
        fj.prelu(x, jnp.ones(3, jnp.int32))
    with pytest.raises(ValueError, match="does not broadcast"):
        fj.prelu(x, jnp.ones((5, 4)))
    with pytest.raises(ValueError, match="negative_slope"):
        fj.relu(x, negative_slope=-1.0)
    with pytest.raises(ValueError, match="alpha must be finite"):
        fj.elu(x, alpha=float("inf"))
    with pytest.raises(TypeError, match="negative_slope must be a real number"):
        fj.leaky_relu(x, "0.1")


def test_handler_refuses_bad_calls():
    # the handler's own checks: an XLA error naming fastact and what is wrong
    x = jnp.ones((2, 3), jnp.float32)
    call = jax.ffi.ffi_call("fastact_prelu_forward", jax.ShapeDtypeStruct(x.shape, x.dtype))
    with pytest.raises(Exception, match="fastact XLA FFI .fastact_prelu_forward.: "
                                        "attribute inner must be an int64 scalar"):
        call(x, jnp.ones(3, jnp.float32), channels=np.int64(3), x_rank=np.int64(2))
    with pytest.raises(Exception, match="slopes must be float32"):
        call(x, jnp.ones(3, jnp.int32), channels=np.int64(3), inner=np.int64(1),
             x_rank=np.int64(2))
    unary = jax.ffi.ffi_call("fastact_unary_forward", jax.ShapeDtypeStruct(x.shape, x.dtype))
    with pytest.raises(Exception, match="no op 99"):
        unary(x, op=np.int64(99), p0=0.0, p1=0.0, p2=0.0)


# --- the C ABI -----------------------------------------------------------------------

ABI_CHECK = r"""
#include <stdio.h>
#include "xla/ffi/api/c_api.h"
#include "xla_ffi.h"
#define SAME(a, b) do { if ((size_t)(a) != (size_t)(b)) { \
    printf("MISMATCH %s = %zu, %s = %zu\n", #a, (size_t)(a), #b, (size_t)(b)); bad = 1; } \
    } while (0)
#define FIELD(T, f, U, g) SAME(offsetof(T, f), offsetof(U, g))
int main(void) {
    int bad = 0;
    SAME(sizeof(XLA_FFI_Extension_Base), sizeof(fa_ffi_extension));
    FIELD(XLA_FFI_Extension_Base, type, fa_ffi_extension, type);
    FIELD(XLA_FFI_Extension_Base, next, fa_ffi_extension, next);
    SAME(XLA_FFI_Api_Version_STRUCT_SIZE, FA_FFI_STRUCT_SIZE(fa_ffi_api_version, minor_version));
    FIELD(XLA_FFI_Api_Version, major_version, fa_ffi_api_version, major_version);
    FIELD(XLA_FFI_Api_Version, minor_version, fa_ffi_api_version, minor_version);
    SAME(XLA_FFI_Error_Create_Args_STRUCT_SIZE, FA_FFI_STRUCT_SIZE(fa_ffi_error_create_args, errc));
    FIELD(XLA_FFI_Error_Create_Args, message, fa_ffi_error_create_args, message);
    FIELD(XLA_FFI_Error_Create_Args, errc, fa_ffi_error_create_args, errc);
    SAME(XLA_FFI_Buffer_STRUCT_SIZE, FA_FFI_STRUCT_SIZE(fa_ffi_buffer, dims));
    FIELD(XLA_FFI_Buffer, dtype, fa_ffi_buffer, dtype);
    FIELD(XLA_FFI_Buffer, data, fa_ffi_buffer, data);
    FIELD(XLA_FFI_Buffer, rank, fa_ffi_buffer, rank);
    FIELD(XLA_FFI_Buffer, dims, fa_ffi_buffer, dims);
    SAME(sizeof(XLA_FFI_ByteSpan), sizeof(fa_ffi_bytespan));
    SAME(sizeof(XLA_FFI_Scalar), sizeof(fa_ffi_scalar));
    FIELD(XLA_FFI_Scalar, value, fa_ffi_scalar, value);
    SAME(sizeof(XLA_FFI_Array), sizeof(fa_ffi_array));
    FIELD(XLA_FFI_Array, size, fa_ffi_array, size);
    FIELD(XLA_FFI_Array, data, fa_ffi_array, data);
    SAME(XLA_FFI_Args_STRUCT_SIZE, FA_FFI_STRUCT_SIZE(fa_ffi_args, args));
    FIELD(XLA_FFI_Args, types, fa_ffi_args, types);
    FIELD(XLA_FFI_Args, args, fa_ffi_args, args);
    SAME(XLA_FFI_Rets_STRUCT_SIZE, FA_FFI_STRUCT_SIZE(fa_ffi_rets, rets));
    FIELD(XLA_FFI_Rets, rets, fa_ffi_rets, rets);
    SAME(XLA_FFI_Attrs_STRUCT_SIZE, FA_FFI_STRUCT_SIZE(fa_ffi_attrs, attrs));
    FIELD(XLA_FFI_Attrs, names, fa_ffi_attrs, names);
    FIELD(XLA_FFI_Attrs, attrs, fa_ffi_attrs, attrs);
    SAME(XLA_FFI_CallFrame_STRUCT_SIZE, FA_FFI_CALL_FRAME_SIZE);
    FIELD(XLA_FFI_CallFrame, api, fa_ffi_call_frame, api);
    FIELD(XLA_FFI_CallFrame, ctx, fa_ffi_call_frame, ctx);
    FIELD(XLA_FFI_CallFrame, stage, fa_ffi_call_frame, stage);
    FIELD(XLA_FFI_CallFrame, args, fa_ffi_call_frame, args);
    FIELD(XLA_FFI_CallFrame, rets, fa_ffi_call_frame, rets);
    FIELD(XLA_FFI_CallFrame, attrs, fa_ffi_call_frame, attrs);
    SAME(XLA_FFI_Metadata_STRUCT_SIZE, FA_FFI_METADATA_SIZE);
    FIELD(XLA_FFI_Metadata, api_version, fa_ffi_metadata, api_version);
    FIELD(XLA_FFI_Metadata, traits, fa_ffi_metadata, traits);
    SAME(XLA_FFI_Metadata_Extension_STRUCT_SIZE,
         FA_FFI_STRUCT_SIZE(fa_ffi_metadata_extension, metadata));
    FIELD(XLA_FFI_Metadata_Extension, metadata, fa_ffi_metadata_extension, metadata);
    SAME(XLA_FFI_Stream_Get_Args_STRUCT_SIZE, FA_FFI_STRUCT_SIZE(fa_ffi_stream_get_args, stream));
    FIELD(XLA_FFI_Stream_Get_Args, stream, fa_ffi_stream_get_args, stream);
    SAME(XLA_FFI_DeviceOrdinal_Get_Args_STRUCT_SIZE,
         FA_FFI_STRUCT_SIZE(fa_ffi_device_ordinal_get_args, device_ordinal));
    FIELD(XLA_FFI_DeviceOrdinal_Get_Args, device_ordinal, fa_ffi_device_ordinal_get_args,
          device_ordinal);
    FIELD(XLA_FFI_Api, api_version, struct fa_ffi_api, api_version);
    FIELD(XLA_FFI_Api, XLA_FFI_Error_Create, struct fa_ffi_api, error_create);
    FIELD(XLA_FFI_Api, XLA_FFI_Stream_Get, struct fa_ffi_api, stream_get);
    FIELD(XLA_FFI_Api, XLA_FFI_DeviceOrdinal_Get, struct fa_ffi_api, device_ordinal_get);
    SAME(XLA_FFI_DataType_F32, FA_FFI_F32);
    SAME(XLA_FFI_DataType_F64, FA_FFI_F64);
    SAME(XLA_FFI_DataType_F16, FA_FFI_F16);
    SAME(XLA_FFI_DataType_BF16, FA_FFI_BF16);
    SAME(XLA_FFI_DataType_S64, FA_FFI_S64);
    SAME(XLA_FFI_AttrType_ARRAY, FA_FFI_ATTR_ARRAY);
    SAME(XLA_FFI_AttrType_SCALAR, FA_FFI_ATTR_SCALAR);
    SAME(XLA_FFI_ArgType_BUFFER, FA_FFI_BUFFER);
    SAME(XLA_FFI_Extension_Metadata, FA_FFI_EXTENSION_METADATA);
    SAME(XLA_FFI_Error_Code_INVALID_ARGUMENT, FA_FFI_INVALID_ARGUMENT);
    SAME(XLA_FFI_Error_Code_FAILED_PRECONDITION, FA_FFI_FAILED_PRECONDITION);
    SAME(XLA_FFI_API_MAJOR, FA_FFI_API_MAJOR);
    if (FA_FFI_API_MINOR > XLA_FFI_API_MINOR) { printf("MISMATCH minor\n"); bad = 1; }
    if (!bad) printf("OK\n");
    return bad;
}
"""


def test_abi_matches_jaxlib_header(tmp_path):
    include = jax.ffi.include_dir()
    if not os.path.isfile(os.path.join(include, "xla", "ffi", "api", "c_api.h")):
        pytest.skip("this jaxlib ships no xla/ffi/api/c_api.h")
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    src_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    if not os.path.isfile(os.path.join(src_dir, "xla_ffi.h")):
        pytest.skip("fastact's source tree (src/xla_ffi.h) is not beside the tests")
    (tmp_path / "abi.c").write_text(ABI_CHECK)
    exe = tmp_path / "abi"
    subprocess.run([cc, "-std=c11", "-I", include, "-I", src_dir, str(tmp_path / "abi.c"),
                    "-o", str(exe)], check=True, capture_output=True, text=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "OK", out.stdout


# --- imports -------------------------------------------------------------------------

def test_import_fastact_does_not_import_jax():
    code = "import sys, fastact; assert 'jax' not in sys.modules, 'jax imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_jax_is_a_clear_import_error():
    code = textwrap.dedent("""
        import sys
        sys.modules["jax"] = None          # as if not installed
        try:
            import fastact.jax
        except ImportError as exc:
            assert 'pip install "fastact[jax]"' in str(exc), exc
        else:
            raise AssertionError("no ImportError")
    """)
    subprocess.run([sys.executable, "-c", code], check=True)


def test_readme_example_and_docstrings():
    import doctest
    import pathlib
    import re
    readme = pathlib.Path(__file__).resolve().parent.parent / "README.md"
    if not readme.exists():
        pytest.skip("README.md not found beside the tests")
    block = re.search(r"<!-- jax-example -->\n```py\n(.*?)```", readme.read_text(), re.S)
    assert block, "the README has no JAX example"
    scope = {}
    exec(compile(block.group(1), "README JAX example", "exec"), scope)
    assert scope["ga"].shape == (16,) and scope["per_example"].shape == (8, 16)
    result = doctest.testmod(fj, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted and not result.failed
