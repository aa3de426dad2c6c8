"""python -m fastact bench | info"""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastact", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    bench = sub.add_parser(
        "bench", help="time fastact against memory ceilings, numpy and PyTorch")
    bench.add_argument("--threads", type=int, default=None,
                       help="threads for fastact and torch (default: fastact's current count)")
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
    else:
        from ._bench import run
        if args.threads is not None and args.threads < 1:
            parser.error("--threads must be >= 1")
        run(threads=args.threads, quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
