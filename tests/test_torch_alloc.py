"""Where autograd records, fastact.torch's large outputs (the forward's and
the input gradient) ask Linux for transparent huge pages (fewer page faults
on fresh memory); inference outputs do not.  The results are unchanged."""
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ft = pytest.importorskip("fastact.torch")
F = torch.nn.functional

from fastact import _cpu, _reference  # noqa: E402

HUGE = 2 << 20
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="madvise(MADV_HUGEPAGE) is Linux's")


def _interior(ptr, nbytes):
    """The 2 MiB-aligned part of [ptr, ptr + nbytes): (start, end)."""
    return -(-ptr // HUGE) * HUGE, (ptr + nbytes) // HUGE * HUGE


def _vm_flags(addr):
    """The VmFlags of the mapping that holds addr (/proc/self/smaps)."""
    inside = False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()[0]
            if "-" in head and ":" not in head:
                lo, hi = (int(v, 16) for v in head.split("-"))
                inside = lo <= addr < hi
            elif inside and head == "VmFlags:":
                return line.split()[1:]
    raise AssertionError(f"no mapping holds {addr:#x}")


@linux_only
@pytest.mark.parametrize("nbytes", [HUGE - 4096, 3 * HUGE + 12345, 5 * HUGE])
def test_advice_covers_the_aligned_interior(nbytes):
    t = torch.empty(nbytes // 4, dtype=torch.float32)
    ptr, size = t.data_ptr(), t.nbytes
    lo, hi = _interior(ptr, size)
    advised = _cpu.raw_advise_huge_pages(ptr, size)
    assert advised == max(hi - lo, 0)
    if advised:
        # "hg": the mapping asked for huge pages, whatever the kernel then had
        assert "hg" in _vm_flags(lo) and "hg" in _vm_flags(hi - 1)


@linux_only
def test_large_outputs_of_training_are_advised_others_not():
    # past glibc's largest mmap threshold (32 MiB): fresh mappings, whose
    # flags no earlier advice has set
    big = torch.empty(4, 16, 384, 384)
    plain = torch.empty_like(big)
    assert "hg" not in _vm_flags(_interior(plain.data_ptr(), plain.nbytes)[0])
    out = ft._new_like(big, huge_pages=True)
    assert out.shape == big.shape and out.stride() == big.stride()
    assert "hg" in _vm_flags(_interior(out.data_ptr(), out.nbytes)[0])
    cl = big.contiguous(memory_format=torch.channels_last)
    assert ft._new_like(cl, huge_pages=True).is_contiguous(memory_format=torch.channels_last)
    small = torch.randn(2, 16, 64, 64)                  # 0.5 MB: left alone
    assert ft._new_like(small, huge_pages=True).shape == small.shape
    # through the public calls: inference's output is torch's plain
    # allocation; with autograd the forward's output and the input gradient
    # are advised, for prelu and the family alike
    x = torch.randn(4, 16, 384, 384, requires_grad=True)
    w = torch.rand(16, requires_grad=True)

    def advised(t):
        return "hg" in _vm_flags(_interior(t.data_ptr(), t.nbytes)[0])
    for f in (lambda t: ft.prelu(t, w), ft.elu):
        with torch.no_grad():
            y = f(x)
        assert not advised(y)
        del y
        y = f(x)
        assert advised(y)
        y.backward(torch.ones(4, 16, 384, 384))
        del y
        assert advised(x.grad)
        x.grad = None


def test_large_results_are_torchs():
    """Forward, input and weight gradients on a 4.7 MB tensor (its input
    gradient advised), per channel and shared, against torch's own."""
    for channels in (16, 1):
        x = torch.randn(2, 16, 192, 192, requires_grad=True)
        w = torch.rand(channels, requires_grad=True)
        g = torch.randn(2, 16, 192, 192)
        y = ft.prelu(x, w)
        y.backward(g)
        xt, wt = x.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
        yt = F.prelu(xt, wt)
        yt.backward(g)
        assert torch.equal(y, yt) and torch.equal(x.grad, xt.grad)
        # the weight gradient: fastact's float64 sum rounded once, against
        # the float64 oracle (torch's float32 sum is further off)
        _, want = _reference.prelu_backward(g.numpy(), x.detach().numpy(), w.detach().numpy())
        np.testing.assert_allclose(w.grad.numpy(), want, rtol=1e-7, atol=0)
        for f, ours in ((F.leaky_relu, ft.leaky_relu), (F.hardtanh, ft.hardtanh)):
            xe = x.detach().clone().requires_grad_()
            xt = x.detach().clone().requires_grad_()
            ours(xe).backward(g)
            want = f(xt)
            want.backward(g)
            assert torch.equal(ours(x.detach()), want.detach()) and torch.equal(xe.grad, xt.grad)
