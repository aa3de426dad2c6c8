"""`python -m fastact bench --torch`: real PyTorch networks with torch's
activations against fastact's (``fastact.torch.convert``), eager and under
``torch.compile``, inference and training, timed in one process.

Networks (fastact._torch_nets, random parameters from a fixed seed, float32):
ArcFace's iResNet-50 and MobileFaceNet (112x112 images), each PReLU fed by a
BatchNorm, and ConvTasNet (1 s of 8 kHz audio), 49 shared-slope PReLUs fed
by 1-D convolutions.  For each network:

- a check first: the converted model's outputs equal torch's bit for bit
  (eval, forward) and its training loss and gradients match torch's (every
  gradient bitwise except PReLU's weight gradients, which fastact sums in
  float64: within 1e-4 of their largest value); the fused model
  (``convert(model, fuse=True)``: an eval-mode BatchNorm folded into the
  PReLU that follows it; a row left out where no BatchNorm feeds a PReLU)
  within 1e-4 relative to the output's largest value;
- PReLU's share of eager torch's operator time (torch.profiler; forward:
  aten::prelu and what it calls; backward: the autograd engine's work on its
  node, the weight gradient's reduction (aten::sum) included), inference
  and one training step;
- inference under ``torch.inference_mode()`` at batch 1 and 16: eager torch,
  a copy of it (the control: what noise and the order of the rows make of a
  ratio that is 1), converted, converted + fused, ``torch.compile`` of each
  of torch's and the converted model (fullgraph=True, static shapes;
  compiled and warmed up before timing; a failure is a row saying why);
- a training step (train mode, forward, loss = mean of the output's
  squares, backward, SGD step) at batch 16 and 64 (ConvTasNet: 4 and 16):
  eager torch and converted, compiled torch and compiled converted.

Each table's rows are timed in rounds (every row once per round, in a
shuffled order, no row twice in a row across rounds); a row's figure is its
median over the rounds
with the min-max, and each ratio (torch's time / the row's) is taken per
round, then summarised the same way.  torch and fastact run with torch's
thread count.  Beside each row, its minor page faults per call (median over
the rounds): with glibc's default malloc settings a process can fault
thousands of times per forward at batch 1 (freed memory given back to the
system and faulted in again), by amounts that differ from model to model and
with the order they run in, and that cost more than the activations do.
"""
import copy
import os
import random
import statistics
import sys
import time

try:
    import resource
except ImportError:      # not on Windows: no page-fault counts there
    resource = None

NETWORKS = ("mobilefacenet", "iresnet50", "convtasnet")

# the (kind, batch) tables of each network
_DEFAULT_SECTIONS = [("inference", 1), ("inference", 16), ("training", 16), ("training", 64)]
# ConvTasNet's training step at batch 16 (1 s of audio each) already takes
# seconds here: batch 4 and 16 instead of 16 and 64
_SECTIONS = {"convtasnet": [("inference", 1), ("inference", 16), ("training", 4),
                            ("training", 16)]}
_QUICK_SECTIONS = [("inference", 1), ("inference", 2), ("training", 2)]
# seconds of timing per table (the rounds fit in it, between the bounds)
_FULL = {"budget": 20.0, "min_rounds": 3, "max_rounds": 41, "sample": 0.25}
_QUICK = {"budget": 1.0, "min_rounds": 2, "max_rounds": 3, "sample": 0.02}

FUSED_TOLERANCE = 1e-4       # max |fused - torch| / max |torch|
GRAD_TOLERANCE = 1e-4        # PReLU weight gradients: max |diff| / max |torch|


class _Row:
    """One row of a table: a callable timed per round, or a reason it is not."""

    def __init__(self, name, fn=None, skip=None):
        self.name, self.fn, self.skip = name, fn, skip
        self.calls = 1
        self.samples = []
        self.faults = []      # minor page faults per call, per round


def _minor_faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else 0


def _short(exc):
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > 160:
        first = first[:157] + "..."
    return f"{type(exc).__name__}: {first}"


def _orders(rows, rounds, seed=12345):
    """The order of the rows in each round: shuffled (a fixed seed), no row
    first in a round that was last in the one before.  (Reversed every
    other round, the first and the last row each ran twice in a row at
    every turn, and a network that has just run is faster: torch's row, the
    first, came out 8% faster than a copy of itself timed beside it.)"""
    rng = random.Random(seed)
    orders, last = [], None
    for _ in range(rounds):
        order = list(rows)
        rng.shuffle(order)
        if order[0] is last and len(order) > 1:
            order[0], order[-1] = order[-1], order[0]
        orders.append(order)
        last = order[-1]
    return orders


def _time_rows(rows, settings, out):
    """Interleaved rounds over the rows that run; fills each row's samples
    (seconds per call) and returns the number of rounds."""
    live = [r for r in rows if r.skip is None]
    if not live:
        return 0
    # one call each to size the samples (the rows were warmed up already)
    round_seconds = 0.0
    for r in live:
        t0 = time.perf_counter()
        r.fn()
        t = time.perf_counter() - t0
        r.calls = max(1, int(settings["sample"] / max(t, 1e-6)))
        round_seconds += t * r.calls
    rounds = int(settings["budget"] / max(round_seconds, 1e-6))
    rounds = min(max(rounds, settings["min_rounds"]), settings["max_rounds"])
    print(f"    ({rounds} rounds of {round_seconds:.2f} s)", file=out, flush=True)
    for order in _orders(live, rounds):
        for r in order:
            f0 = _minor_faults()
            t0 = time.perf_counter()
            for _ in range(r.calls):
                r.fn()
            r.samples.append((time.perf_counter() - t0) / r.calls)
            r.faults.append((_minor_faults() - f0) / r.calls)
    return rounds


def _summary(values):
    return statistics.median(values), min(values), max(values)


def _ratio(base, row):
    """Per-round ratio base time / row time: (median, min, max), or None."""
    if base is None or row.skip is not None or base.skip is not None or not row.samples:
        return None
    return _summary([b / t for b, t in zip(base.samples, row.samples)])


def _print_table(title, rows, pairs, out):
    """rows: their times and ratio to rows[0]; pairs: (label, base, row) extra ratios."""
    print(f"  {title}", file=out)
    print(f"    {'':34s} {'ms, median (min-max)':>26s}   {'torch / row, median (min-max)':>30s}"
          f"   {'page faults per call':>20s}", file=out)
    ratios = {}
    base = rows[0]
    for r in rows:
        if r.skip is not None:
            print(f"    {r.name:34s} skipped: {r.skip}", file=out)
            continue
        med, lo, hi = _summary(r.samples)
        text = f"{med * 1e3:9.2f} ({lo * 1e3:.2f}-{hi * 1e3:.2f})"
        line = f"    {r.name:34s} {text:>26s}"
        if r is not base:
            q = _ratio(base, r)
            ratios[r.name] = q
            line += f"   {q[0]:10.3f}x ({q[1]:.3f}-{q[2]:.3f})"
        else:
            line += f"   {'':30s}"
        if resource is not None:
            line += f"   {statistics.median(r.faults):20.0f}"
        print(line, file=out)
    for label, b, r in pairs:
        q = _ratio(b, r)
        if q is not None:
            ratios[label] = q
            print(f"    {label:61s}   {q[0]:10.3f}x ({q[1]:.3f}-{q[2]:.3f})", file=out)
    out.flush()
    return ratios


def _rel_diff(torch, a, b):
    """max |a - b| / max |b| (0 when b is all zeros and a equals it)."""
    scale = b.abs().max().item()
    diff = (a - b).abs().max().item()
    return diff / scale if scale else diff


# --- building the variants -----------------------------------------------------------

def _compiled(torch, model, skip):
    """(torch.compile(model), None), or (None, why not) when skip is true."""
    if skip:
        return None, "not in this run (compiling takes minutes)"
    # torch's and the converted model share their classes' forward code, and
    # each (model, batch, mode) is one more compiled entry of it: more than
    # the default limit of 8, past which torch would run the rest eagerly
    config = torch._dynamo.config
    for limit in ("recompile_limit", "cache_size_limit"):
        if getattr(config, limit, 64) < 64:
            setattr(config, limit, 64)
    return torch.compile(model, fullgraph=True, dynamic=False), None


def _compiled_row(torch, name, compiled, make_fn, x):
    """A row of make_fn(compiled model); compiled: _compiled's pair."""
    model, why = compiled
    return _Row(name, make_fn(torch, model, x) if model is not None else None, why)


def _fused(ft, model):
    """convert(deepcopy, fuse=True), or (None, reason)."""
    try:
        fused = ft.convert(copy.deepcopy(model), fuse=True)
    except TypeError as exc:
        return None, f"convert(model, fuse=True) is not available here ({_short(exc)})"
    if not any(isinstance(m, ft.BatchNormPReLU) for m in fused.modules()):
        return None, "no BatchNorm feeds a PReLU in this network: nothing to fuse"
    return fused, None


def _infer_fn(torch, model, x):
    def fn():
        with torch.inference_mode():
            return model(x)
    return fn


def _train_fn(torch, model, x):
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-5)

    def fn():
        opt.zero_grad(set_to_none=True)
        loss = model(x).square().mean()
        loss.backward()
        opt.step()
        return loss
    return fn


def _warm(row, out, what):
    """Run a row once (compiling it where it is compiled); a failure makes it
    a skipped row with the reason.  Returns its result or None."""
    if row.skip is not None:
        return None
    t0 = time.perf_counter()
    try:
        result = row.fn()
        if what:
            result = row.fn()     # a second call: recompiles show here, not in the timing
    except Exception as exc:  # a compile failure is reported, not raised
        row.skip = f"failed: {_short(exc)}"
        print(f"    {row.name}: {row.skip}", file=out, flush=True)
        return None
    if what:
        print(f"    {what} {row.name}: {time.perf_counter() - t0:.1f} s", file=out, flush=True)
    return result


# --- the checks ----------------------------------------------------------------------

def _check_inference(torch, rows, outputs, out):
    """outputs: row name -> output of the same input.  Returns problems."""
    problems = []
    ref = outputs.get("torch eager")
    conv = outputs.get("converted")
    if ref is None or conv is None:
        return ["no output to compare"]
    if not torch.equal(conv, ref):
        problems.append(f"converted != torch (max relative difference "
                        f"{_rel_diff(torch, conv, ref):.2e}; expected bitwise equal)")
    notes = []
    for name, expect in (("converted + fused", FUSED_TOLERANCE),
                         ("torch.compile(torch)", None),
                         ("torch.compile(converted)", None)):
        y = outputs.get(name)
        if y is None:
            continue
        d = _rel_diff(torch, y, ref)
        notes.append(f"{name} {d:.1e}")
        if expect is not None and not d <= expect:
            problems.append(f"{name} differs from torch by {d:.2e} of the output's "
                            f"largest value (tolerance {expect:.0e})")
    if notes:
        print(f"    relative difference to torch eager: {', '.join(notes)}", file=out)
    return problems


def _check_training(torch, ft, model, x):
    """One forward and backward of torch's train-mode model and of its
    converted copy from the same parameters; returns problems."""
    a = copy.deepcopy(model).train()
    b = ft.convert(copy.deepcopy(model).train())
    loss_a = a(x).square().mean()
    loss_a.backward()
    loss_b = b(x).square().mean()
    loss_b.backward()
    problems = []
    if not torch.equal(loss_a, loss_b):
        problems.append(f"training loss: converted {loss_b.item()!r} != torch {loss_a.item()!r}")
    prelu_weights = {name + ".weight" for name, m in a.named_modules()
                     if isinstance(m, torch.nn.PReLU)}
    worst = 0.0
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        if pa.grad is None and pb.grad is None:
            continue
        if pa.grad is None or pb.grad is None:
            problems.append(f"gradient of {name}: present in one model only")
        elif name in prelu_weights:
            worst = max(worst, _rel_diff(torch, pb.grad, pa.grad))
        elif not torch.equal(pa.grad, pb.grad):
            problems.append(f"gradient of {name} differs (relative "
                            f"{_rel_diff(torch, pb.grad, pa.grad):.2e}; expected bitwise)")
    if not worst <= GRAD_TOLERANCE:
        problems.append(f"PReLU weight gradients differ by {worst:.2e} of their largest "
                        f"value (tolerance {GRAD_TOLERANCE:.0e})")
    return problems, worst


# --- PReLU's share (profiler) --------------------------------------------------------

_FORWARD_OPS = ("aten::prelu",)
# the engine's event around the node holds the node (aten::_prelu_kernel_backward,
# which writes a full-size weight gradient) and the aten::sum that reduces
# that gradient to the weight's shape
_BACKWARD_NODES = ("autograd::engine::evaluate_function: PreluKernelBackward0",
                   "PreluKernelBackward0")


def _top_level(events, names):
    """Inclusive CPU time (us) of events with these names, not counting one
    nested in another of them."""
    total = 0.0
    for e in events:
        if e.name not in names:
            continue
        parent = e.cpu_parent
        while parent is not None and parent.name not in names:
            parent = parent.cpu_parent
        if parent is None:
            total += e.cpu_time_total
    return total


def _prelu_share(torch, fn):
    """(share of forward PReLU, share of backward PReLU) in the total self
    CPU time of every operator the profiler saw while fn ran."""
    from torch.profiler import ProfilerActivity, profile
    fn()                                  # warm: first calls set up their kernels
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = prof.events()
    total = sum(e.self_cpu_time_total for e in events)
    if not total:
        return 0.0, 0.0
    return (_top_level(events, _FORWARD_OPS) / total,
            _top_level(events, _BACKWARD_NODES) / total)


def _shares(torch, model, shape, sb, rng, out):
    """PReLU's share in eager torch, inference and one training step."""
    xs = torch.randn((sb, *shape), generator=rng)
    tmodel = copy.deepcopy(model).train()
    share_fwd, _ = _prelu_share(torch, _infer_fn(torch, model, xs))
    step = _train_fn(torch, tmodel, xs)
    step()
    tr_fwd, tr_bwd = _prelu_share(torch, step)
    print(f"  PReLU's share of eager torch's operator time (profiler), batch {sb}: "
          f"inference {share_fwd:.1%}; training step {tr_fwd + tr_bwd:.1%} (forward "
          f"{tr_fwd:.1%}, backward {tr_bwd:.1%})", file=out, flush=True)
    return {"inference": share_fwd, "training": tr_fwd + tr_bwd,
            "training forward": tr_fwd, "training backward": tr_bwd}


# --- one network ---------------------------------------------------------------------

def _bench_inference(torch, ft, model, convd, shape, batch, settings, rng, out, no_compile):
    x = torch.randn((batch, *shape), generator=rng)
    fused, why = _fused(ft, model)
    rows = [_Row("torch eager", _infer_fn(torch, model, x)),
            # torch's model again (a copy): what the noise and the order of
            # the rows alone make of a ratio that is 1
            _Row("torch eager (a copy: control)", _infer_fn(torch, copy.deepcopy(model), x)),
            _Row("converted", _infer_fn(torch, convd, x)),
            _Row("converted + fused", _infer_fn(torch, fused, x) if fused else None, why),
            _compiled_row(torch, "torch.compile(torch)", _compiled(torch, model, no_compile),
                          _infer_fn, x),
            _compiled_row(torch, "torch.compile(converted)",
                          _compiled(torch, convd, no_compile), _infer_fn, x)]
    print(f"  inference, batch {batch}: warming up", file=out, flush=True)
    outputs = {}
    for r in rows:
        y = _warm(r, out, "compiled" if r.name.startswith("torch.compile") else None)
        if y is not None:
            outputs[r.name] = y
    problems = _check_inference(torch, rows, outputs, out)
    _time_rows(rows, settings, out)
    ratios = _print_table(f"inference, batch {batch}", rows,
                          [("torch.compile(torch) / torch.compile(converted)", rows[4],
                            rows[5])], out)
    return ratios, problems


def _bench_training(torch, ft, train_models, shape, batch, settings, rng, out):
    x = torch.randn((batch, *shape), generator=rng)
    tm, cm, ctm, ccm = train_models
    rows = [_Row("torch eager", _train_fn(torch, tm, x)),
            _Row("converted", _train_fn(torch, cm, x)),
            _compiled_row(torch, "torch.compile(torch)", ctm, _train_fn, x),
            _compiled_row(torch, "torch.compile(converted)", ccm, _train_fn, x)]
    print(f"  training step, batch {batch}: warming up", file=out, flush=True)
    for r in rows:
        _warm(r, out, "compiled" if r.name.startswith("torch.compile") else None)
    _time_rows(rows, settings, out)
    return _print_table(f"training step, batch {batch}", rows,
                        [("torch.compile(torch) / torch.compile(converted)", rows[2],
                          rows[3])], out)


def bench_network(name, *, quick=False, sections=None, settings=None, compile=None,
                  share=True, out=sys.stdout):
    """Benchmark one network; returns {section: {row: (median, min, max)
    ratio}} with sections ("inference", batch) and ("training", batch), plus
    "share" (when share is true) and "problems".  sections limits what is
    timed (e.g. [("inference", 1)]); settings overrides the timing budget;
    compile=False leaves out the torch.compile rows (default: only in a
    quick run)."""
    import torch

    import fastact.torch as ft

    from . import _torch_nets
    settings = dict(settings or (_QUICK if quick else _FULL))
    no_compile = quick if compile is None else not compile
    if sections is None:
        sections = _QUICK_SECTIONS if quick else _SECTIONS.get(name, _DEFAULT_SECTIONS)
    rng = torch.Generator().manual_seed(1)
    model, shape = _torch_nets.build(name)
    count = _torch_nets.prelu_count(model)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"\n{name}: {count} PReLU, {params:.1f} M parameters, input (N, "
          f"{', '.join(map(str, shape))}) float32", file=out, flush=True)
    convd = ft.convert(copy.deepcopy(model))
    result = {"problems": []}

    # the checks that need no timing
    batch = 2
    x = torch.randn((batch, *shape), generator=rng)
    problems, worst = _check_training(torch, ft, model, x)
    print(f"  check, training batch {batch}: loss and gradients "
          f"{'as expected' if not problems else 'WRONG'} (PReLU weight gradients within "
          f"{worst:.1e} of torch's)", file=out, flush=True)
    result["problems"] += [f"training: {p}" for p in problems]

    if share:
        result["share"] = _shares(torch, model, shape, 2 if quick else 16, rng, out)
    train_models = None
    for kind, b in sections:
        if kind == "inference":
            ratios, problems = _bench_inference(torch, ft, model, convd, shape, b, settings,
                                                rng, out, no_compile)
            result["problems"] += [f"inference batch {b}: {p}" for p in problems]
        else:
            if train_models is None:
                tm = copy.deepcopy(model).train()
                train_models = (tm, ft.convert(copy.deepcopy(tm)),
                                _compiled(torch, copy.deepcopy(tm), no_compile),
                                _compiled(torch, ft.convert(copy.deepcopy(tm)), no_compile))
            ratios = _bench_training(torch, ft, train_models, shape, b, settings, rng, out)
        result[(kind, b)] = ratios
    for p in result["problems"]:
        print(f"  CHECK FAILED: {p}", file=out)
    return result


def run(quick=False, out=sys.stdout, networks=None):
    """The whole benchmark (quick: MobileFaceNet alone, small batches, no
    torch.compile); returns {network: bench_network's result}, or None
    without torch."""
    try:
        import torch
    except Exception as exc:  # not installed, or broken
        print(f"the torch benchmark needs PyTorch: {_short(exc)}", file=out)
        return None
    import fastact
    threads = torch.get_num_threads()
    fastact.set_num_threads(threads)
    print(f"fastact {fastact.__version__}, torch {torch.__version__}; threads: torch "
          f"{torch.get_num_threads()}, fastact {fastact.get_num_threads()}"
          f"{' (quick: small batches, short timings)' if quick else ''}", file=out, flush=True)
    try:
        load = os.getloadavg()[0]
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        load, cpus = None, os.cpu_count() or 1
    if load is not None:
        busy = load > cpus * 0.5
        print(f"load average {load:.1f} on {cpus} CPUs" +
              (": BUSY, timings unreliable (torch's and fastact's teams wait for "
               "threads the scheduler has not run)" if busy else ""), file=out, flush=True)
    if networks is None:
        networks = ("mobilefacenet",) if quick else NETWORKS
    t0 = time.perf_counter()
    results = {}
    try:
        for name in networks:
            results[name] = bench_network(name, quick=quick, out=out)
    finally:
        fastact.set_num_threads(None)
    failed = [f"{n}: {p}" for n, r in results.items() for p in r["problems"]]
    print(f"\n{'CHECKS FAILED: ' + str(len(failed)) if failed else 'all checks passed'}; "
          f"{time.perf_counter() - t0:.0f} s", file=out, flush=True)
    return results
