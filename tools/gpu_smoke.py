"""A short pass over every GPU kernel through CuPy, on small odd shapes, aligned
and misaligned, for running under compute-sanitizer on a GPU machine:

    compute-sanitizer --tool memcheck python tools/gpu_smoke.py

Checks the results against the CPU kernels; exits non-zero on a mismatch.
"""
import sys

import cupy
import numpy as np

import fastact

FAMILY = [("leaky_relu", (0.2,)), ("relu", (0.1, 1.5, 0.25)), ("relu6", ()),
          ("thresholded_relu", (0.5,)), ("elu", (1.3,)), ("square", ())]


def on_gpu(a, offset):
    """A CuPy copy of `a`, shifted `offset` elements from its allocation's start."""
    buf = cupy.empty(a.size + offset, a.dtype)
    view = buf[offset:].reshape(a.shape)
    view[...] = cupy.asarray(a)
    return view


def check(label, got, want):
    got = cupy.asnumpy(got).astype(np.float64)
    want = np.asarray(want, np.float64)
    if not np.allclose(got, want, rtol=2e-2 if got.dtype != want.dtype else 1e-5,
                       equal_nan=True):
        print(f"MISMATCH {label}: max abs diff {np.nanmax(abs(got - want))}")
        return 1
    return 0


def main():
    rng = np.random.default_rng(7)
    bad = 0
    for dtype in (np.float32, np.float64, np.float16):
        for offset in (0, 1):
            x = rng.standard_normal((3, 5, 7, 11)).astype(dtype)
            g = rng.standard_normal(x.shape).astype(dtype)
            slopes = rng.uniform(-0.5, 1.5, 5).astype(np.float32 if dtype != np.float64
                                                       else dtype)
            xd, gd = on_gpu(x, offset), on_gpu(g, offset)
            tag = f"{np.dtype(dtype).name} offset {offset}"
            bad += check(f"prelu {tag}", fastact.prelu(xd, cupy.asarray(slopes)),
                         fastact.prelu(x, slopes))
            gi, gs = fastact.prelu_backward(gd, xd, cupy.asarray(slopes))
            gi_c, gs_c = fastact.prelu_backward(g, x, slopes)
            bad += check(f"prelu_backward gi {tag}", gi, gi_c)
            bad += check(f"prelu_backward gs {tag}", gs, gs_c)
            xl = np.ascontiguousarray(np.moveaxis(x, 1, -1))
            gl = np.ascontiguousarray(np.moveaxis(g, 1, -1))
            xld, gld = on_gpu(xl, offset), on_gpu(gl, offset)
            bad += check(f"prelu nhwc {tag}",
                         fastact.prelu(xld, slopes, channel_axis=-1),
                         fastact.prelu(xl, slopes, channel_axis=-1))
            gi, gs = fastact.prelu_backward(gld, xld, slopes, channel_axis=-1)
            gi_c, gs_c = fastact.prelu_backward(gl, xl, slopes, channel_axis=-1)
            bad += check(f"prelu_backward nhwc {tag}", gi, gi_c)
            bad += check(f"prelu_backward nhwc gs {tag}", gs, gs_c)
            ys = on_gpu(x, offset)
            fastact.prelu(ys, cupy.asarray(slopes), inplace=True)
            bad += check(f"prelu inplace {tag}", ys, fastact.prelu(x, slopes))
            for name, args in FAMILY:
                fwd = getattr(fastact, name)
                bwd = getattr(fastact, name + "_backward")
                bad += check(f"{name} {tag}", fwd(xd, *args), fwd(x, *args))
                bad += check(f"{name}_backward {tag}", bwd(gd, xd, *args), bwd(g, x, *args))
    cupy.cuda.Device().synchronize()
    print("gpu smoke:", "FAILED" if bad else "all results match the CPU kernels")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
