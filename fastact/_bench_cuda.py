"""GPU rows of `python -m fastact bench`: fastact's CUDA PReLU against the
device's own ceilings and torch, all measured in one run with CUDA events.

GB/s counts the bytes a call must move: 8 per element forward (read x, write
y) and 12 backward (read g and x, write grad_input).  Ceilings, on arrays of
the same size:
  copy   y.copy_(x), device to device (forward's ceiling)
  r2w1   torch.add(a, b, out=c) (backward's ceiling: read two, write one)
torch's backward is autograd through F.prelu with a per-channel weight: it
writes a full-size weight gradient and reduces it in a second pass.
"""
import statistics


def _time(fn, stream, repeats, warmup=3, batch=10):
    """Median milliseconds per call, timed with CUDA events on `stream` around
    `batch` calls queued back to back, as in a training loop: the host's
    per-call work (argument checks, launch) overlaps the GPU's, so the figure
    is the kernels' throughput.  Every implementation is timed the same way."""
    import torch
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record(stream)
        for _ in range(batch):
            fn()
        end.record(stream)
        end.synchronize()
        times.append(start.elapsed_time(end) / batch)
    return statistics.median(times)


def run(out, quick=False):
    """Print the GPU rows to `out` (a file); returns a dict of GB/s and ratios."""
    from . import _device
    from ._api import prelu, prelu_backward

    if not _device.cuda_available():
        print(f"GPU: skipped ({_device.cuda_status()})", file=out)
        return {}
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print("GPU: skipped (the GPU rows are timed through torch, which is not "
              "installed)", file=out)
        return {}
    if not torch.cuda.is_available():
        print("GPU: skipped (torch sees no CUDA device)", file=out)
        return {}

    name = torch.cuda.get_device_name()
    # float32 (N, C, H, W): 256 MiB per tensor (64 Mi elements), or 16 MiB quick
    shape = (16, 64, 64, 64) if quick else (64, 64, 128, 128)
    repeats = 5 if quick else 30
    n = 1
    for d in shape:
        n *= d
    stream = torch.cuda.current_stream()
    x = torch.randn(shape, device="cuda")
    g = torch.randn(shape, device="cuda")
    y = torch.empty_like(x)
    gi = torch.empty_like(x)
    w = torch.rand(shape[1], device="cuda") * 0.5
    slopes = w.clone()

    rows = {}

    def row(label, ms, nbytes):
        gbs = nbytes / (ms * 1e-3) / 1e9
        rows[label] = gbs
        print(f"  {label:40s} {ms * 1e3:11.1f} us {gbs:9.1f} GB/s", file=out)

    print(f"GPU: {name}, float32 {shape} ({n * 4 >> 20} MiB per tensor), "
          f"median of {repeats} batches of 10 calls (CUDA events)", file=out)
    row("ceiling copy (device to device)", _time(lambda: y.copy_(x), stream, repeats), 8 * n)
    row("ceiling r2w1 (a + b into c)",
        _time(lambda: torch.add(x, g, out=gi), stream, repeats), 12 * n)
    row("fastact prelu forward out=",
        _time(lambda: prelu(x, slopes, out=y), stream, repeats), 8 * n)
    row("fastact prelu backward out=",
        _time(lambda: prelu_backward(g, x, slopes, out=gi), stream, repeats), 12 * n)
    row("torch F.prelu forward", _time(lambda: F.prelu(x, w), stream, repeats), 8 * n)

    xr = x.detach().requires_grad_(True)
    wr = w.detach().requires_grad_(True)

    def torch_backward():
        yr = F.prelu(xr, wr)
        torch.autograd.grad(yr, (xr, wr), g)

    t_fwd_bwd = _time(torch_backward, stream, repeats)
    t_fwd = _time(lambda: F.prelu(xr, wr), stream, repeats)
    row("torch F.prelu autograd backward", max(t_fwd_bwd - t_fwd, 1e-6), 12 * n)

    ratios = {
        "forward / copy": rows["fastact prelu forward out="]
        / rows["ceiling copy (device to device)"],
        "backward / r2w1": rows["fastact prelu backward out="]
        / rows["ceiling r2w1 (a + b into c)"],
        "backward speed-up over torch": rows["fastact prelu backward out="]
        / rows["torch F.prelu autograd backward"],
        "forward speed-up over torch": rows["fastact prelu forward out="]
        / rows["torch F.prelu forward"],
    }
    print("  ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()), file=out)
    rows.update(ratios)
    return rows


if __name__ == "__main__":
    import sys
    run(sys.stdout, quick="--quick" in sys.argv)
