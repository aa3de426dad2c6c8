"""fastact.torch under DistributedDataParallel: two gloo processes on the CPU
train a small network with torch's activations and with fastact's (convert),
from the same weights; both reach the same parameters, and the ranks agree.

The two differ by rounding alone only as long as no activation crosses
PReLU's kink: fastact sums PReLU's weight gradient in float64 and rounds
once where torch sums in float32, and their ELUs differ in the last bit, so
from the second step on the weights differ in their last bits, and an input
that sits within that difference of 0 takes the other side of the kink in
one model, changing its gradients by a first-order amount (seen in one
float32 run of four steps: 1.6e-5 of a weight's scale, where twelve other
seeds gave at most 2.3e-7).  So the run checks float32 over one step, from
the same weights, and several steps in float64, where a crossing would need
an input within about 1e-16 of the kink.
"""
import datetime
import os
import pathlib
import re
import socket
import time

import pytest

torch = pytest.importorskip("torch")
ft = pytest.importorskip("fastact.torch")
dist = torch.distributed

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available")

WORLD = 2
STEPS = 4             # of the float64 run; the float32 run takes one
TIMEOUT_S = 300       # the whole run (a loaded machine takes minutes); a hang fails the test
README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _network():
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.PReLU(8),             # per channel
        nn.Conv2d(8, 8, 3, padding=1), nn.PReLU(),              # shared
        nn.Conv2d(8, 6, 3, padding=1), nn.LeakyReLU(0.1),
        nn.Conv2d(6, 6, 3, padding=1), nn.ELU(0.7),
        nn.Conv2d(6, 4, 3, padding=1), nn.PReLU(4, init=0.1),
        nn.Flatten(), nn.Linear(4 * 12 * 12, 5))


def _train(model, rank, seed, steps):
    """steps of SGD under DDP on this rank's own data; the final parameters."""
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    gen = torch.Generator().manual_seed(seed + 1 + rank)     # each rank its own batches
    dtype = next(model.parameters()).dtype
    for _ in range(steps):
        x = torch.randn(4, 3, 12, 12, generator=gen).to(dtype)
        target = torch.randn(4, 5, generator=gen).to(dtype)
        opt.zero_grad()
        torch.nn.functional.mse_loss(ddp(x), target).backward()   # gradients averaged
        opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _worker(rank, port, readme_port, seed, outdir, readme_block):
    torch.set_num_threads(1)            # two processes on the CPUs
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD, timeout=datetime.timedelta(seconds=TIMEOUT_S // 2))
    try:
        result = {}
        for dtype, steps in ((torch.float32, 1), (torch.float64, STEPS)):
            torch.manual_seed(seed)
            plain = _network().to(dtype)
            converted = ft.convert(_network().to(dtype))
            converted.load_state_dict(plain.state_dict())       # the same initial weights
            assert type(converted[1]) is ft.PReLU and type(converted[7]) is ft.ELU
            result[dtype] = {"torch": _train(plain, rank, seed, steps),
                             "fastact": _train(converted, rank, seed, steps)}
    finally:
        dist.destroy_process_group()
    if readme_block is not None:
        # the README's example, as torchrun would run it: one process per rank
        # with RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set
        os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(readme_port))
        exec(compile(readme_block, "README DistributedDataParallel block", "exec"), {})
        result["readme_ran"] = True
    torch.save(result, os.path.join(outdir, f"rank{rank}.pt"))


def _readme_block():
    if not README.exists():
        return None
    blocks = [b for b in re.findall(r"```py\n(.*?)```", README.read_text(), re.S)
              if "DistributedDataParallel" in b]
    assert len(blocks) == 1, "the README should have one DistributedDataParallel example"
    return blocks[0]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """One run of WORLD processes (spawned, as DDP's own launchers do),
    bounded by TIMEOUT_S: each rank's final parameters, and whether the
    README's example ran there."""
    import torch.multiprocessing as mp

    outdir = tmp_path_factory.mktemp("ddp")
    seed = int.from_bytes(os.urandom(4), "little")
    readme = _readme_block()
    ctx = mp.start_processes(_worker, args=(_free_port(), _free_port(), seed, str(outdir), readme),
                             nprocs=WORLD, join=False, start_method="spawn")
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not ctx.join(timeout=max(deadline - time.monotonic(), 0.1)):
            if time.monotonic() >= deadline:
                pytest.fail(f"the distributed run did not finish in {TIMEOUT_S} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
            p.join()
    return seed, readme, [torch.load(outdir / f"rank{r}.pt") for r in range(WORLD)]


def test_ddp_training_matches_torch(ddp_run):
    seed, _, ranks = ddp_run
    # float32, one step: the parameters differ by the rounding of one step's
    # gradients (PReLU's weight sums, ELU's last bit and what they reach):
    # measured at most 1.1e-7 of a parameter's scale over 16 seeds, 1e-5
    # allowed.  float64, STEPS steps: at most 1.0e-15 over the same seeds,
    # 1e-11 allowed.  A wrong or unreduced gradient moves parameters by 1e-2
    # or more.
    for dtype, tol in ((torch.float32, 1e-5), (torch.float64, 1e-11)):
        run = ranks[0][dtype]
        for name, want in run["torch"].items():
            got = run["fastact"][name]
            assert got.dtype == want.dtype == dtype, (name, got.dtype, want.dtype)
            scale = want.abs().max().item()
            torch.testing.assert_close(got, want, rtol=tol, atol=tol * scale,
                                       msg=lambda m, n=name, d=dtype: f"{d} {n}: {m} (seed {seed})")
        for kind in ("torch", "fastact"):       # DDP keeps the ranks identical
            for name, value in run[kind].items():
                assert torch.equal(ranks[1][dtype][kind][name], value), (dtype, kind, name)


def test_readme_ddp_example_runs_on_two_ranks(ddp_run):
    _, readme, ranks = ddp_run
    if readme is None:
        pytest.skip("README.md not found beside the tests")
    assert all(r.get("readme_ran") for r in ranks)
