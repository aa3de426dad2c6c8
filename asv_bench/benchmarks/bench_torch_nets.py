"""Real PyTorch networks (ArcFace iResNet-50, MobileFaceNet, ConvTasNet; random weights):
torch's time / the time of the same model after fastact.torch.convert, eager,
inference at batch 1 and 16 and a training step at batch 16, measured by
fastact's torch benchmark (fastact/_bench_torch.py: interleaved rounds, the
median of the per-round ratios) with torch's thread count.  Above 1: fastact
is faster.  Skipped where torch (or this fastact's torch benchmark) is
missing; torch.compile is left out (compiling takes minutes)."""
import io

NETWORKS = ["mobilefacenet", "iresnet50", "convtasnet"]
SECTIONS = [("inference", 1), ("inference", 16), ("training", 16)]
# a short budget: at least 3 rounds, about 5 s of timing per table (the
# iResNet-50 training step takes seconds, so its table takes longer)
SETTINGS = {"budget": 5.0, "min_rounds": 3, "max_rounds": 15, "sample": 0.1}


class TorchNetworks:
    params = [NETWORKS]
    param_names = ["network"]
    timeout = 900

    def setup_cache(self):
        try:
            import torch

            from fastact import _bench_torch
        except Exception as exc:          # not installed, or broken; an older fastact
            return f"{type(exc).__name__}: {exc}"
        import fastact
        fastact.set_num_threads(torch.get_num_threads())
        results = {}
        for name in NETWORKS:
            r = _bench_torch.bench_network(name, sections=SECTIONS, settings=SETTINGS,
                                           compile=False, share=False, out=io.StringIO())
            if r["problems"]:
                raise AssertionError(f"{name}: {r['problems']}")
            results[name] = {f"{kind}_{batch}": r[(kind, batch)]["converted"][0]
                             for kind, batch in SECTIONS}
        fastact.set_num_threads(None)
        return results

    def setup(self, results, network):
        if isinstance(results, str):
            raise NotImplementedError(f"torch benchmark not available: {results}")  # skipped
        self.ratios = results[network]

    def track_inference_batch1(self, results, network):
        return self.ratios["inference_1"]
    track_inference_batch1.unit = "torch time / converted time"

    def track_inference_batch16(self, results, network):
        return self.ratios["inference_16"]
    track_inference_batch16.unit = "torch time / converted time"

    def track_training_batch16(self, results, network):
        return self.ratios["training_16"]
    track_training_batch16.unit = "torch time / converted time"
