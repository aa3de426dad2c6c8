"""The GPU (CUDA) PReLU: throughput and ratios to the device's own ceilings
and to torch, measured with CUDA events by fastact's GPU benchmark
(fastact/_bench_cuda.py) in each benchmark's process.  Skipped where fastact's CUDA part
is not built, no GPU is usable, or torch (which times the rows) is missing."""
import io


class CudaPReLU:
    """float32 (64, 64, 128, 128): 256 MiB per tensor."""
    timeout = 300

    def setup(self):
        from fastact import _bench_cuda, _device
        if not _device.cuda_available():
            raise NotImplementedError(f"no usable GPU: {_device.cuda_status()}")
        self.rows = _bench_cuda.run(io.StringIO())
        if not self.rows:
            raise NotImplementedError("the GPU rows need torch with CUDA")

    def track_forward_vs_copy(self):
        return self.rows["forward / copy"]
    track_forward_vs_copy.unit = "fraction of the copy"

    def track_backward_vs_read2_write1(self):
        return self.rows["backward / r2w1"]
    track_backward_vs_read2_write1.unit = "fraction of a + b"

    def track_backward_speedup_over_torch(self):
        return self.rows["backward speed-up over torch"]
    track_backward_speedup_over_torch.unit = "times torch's speed"

    def track_forward_gbs(self):
        return self.rows["fastact prelu forward out="]
    track_forward_gbs.unit = "GB/s"

    def track_backward_gbs(self):
        return self.rows["fastact prelu backward out="]
    track_backward_gbs.unit = "GB/s"
