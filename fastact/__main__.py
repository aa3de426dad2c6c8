"""fastact's command line: `bench` times fastact against memory ceilings, numpy
and PyTorch (`bench --torch`: real PyTorch networks); `info` prints its
configuration."""
import argparse
import sys


def _thread_counts(text):
    """'2' -> [2]; '1,2' -> [1, 2] (each count at least 1, no repeats)."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a count or counts like 1,2, got {text!r}") from None
    if not counts or min(counts) < 1 or len(set(counts)) != len(counts):
        raise argparse.ArgumentTypeError(
            f"thread counts must be distinct and at least 1, got {text!r}")
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastact", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    bench = sub.add_parser(
        "bench", help="time fastact against memory ceilings, numpy and PyTorch")
    bench.add_argument("--threads", type=_thread_counts, default=None, metavar="N[,M...]",
                       help="threads for fastact and torch (default: fastact's current "
                            "count); several, e.g. 1,2: every ceiling and fastact row on "
                            "each, in the same run, and their ratios")
    bench.add_argument("--busy", action="store_true",
                       help="only the busy-machine section: fastact's default threads "
                            "against one thread, idle and with 2 CPU-bound processes per "
                            "CPU running")
    bench.add_argument("--torch", action="store_true",
                       help="only real PyTorch networks (iResNet-50, MobileFaceNet): "
                            "torch's activations against fastact.torch's, eager and "
                            "compiled, inference and training (fastact._bench_torch)")
    bench.add_argument("--quick", action="store_true",
                       help="two small shapes and short timings (a smoke test)")
    sub.add_parser("info", help="print fastact's configuration: versions, where it was "
                   "imported from, threads, SIMD level, and whether bfloat16 and CUDA are "
                   "usable (and why not)")
    args = parser.parse_args(argv)

    if args.command is None:
        parser.print_help()
    elif args.command == "info":
        from ._api import show_config
        show_config()
    elif args.torch:
        if args.busy or args.threads is not None:
            parser.error("--torch runs with torch's thread count: it takes no --busy "
                         "or --threads")
        from ._bench_torch import run
        results = run(quick=args.quick)
        if results is None or any(r["problems"] for r in results.values()):
            return 1        # no torch, or a check failed
    else:
        from ._bench import run
        threads = args.threads
        if threads is not None and len(threads) == 1:
            threads = threads[0]
        run(threads=threads, quick=args.quick, busy=args.busy)
    return 0


if __name__ == "__main__":
    sys.exit(main())
