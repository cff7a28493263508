"""The `isp` console script: one argparse tree whose subcommands each package contributes.

Arrows point down (benchmarks -> tflite_export -> isp -> data), so the composer lives here, at
the top. Each package's `cli.add_commands(subparsers)` registers its subcommands with
`set_defaults(func=handler)`; a handler takes the parsed args and returns an exit status.
"""
import argparse
import importlib
import sys

from benchmarks import quiet

PACKAGE_CLIS = ("data.cli", "isp.cli", "tflite_export.cli", "benchmarks.commands")
USER_ERRORS = ("data.errors:DataError", "isp.errors:ISPError",
               "tflite_export.errors:ExportError", "benchmarks.errors:BenchError")


def build_parser():
    """The full `isp` argument parser."""
    parser = argparse.ArgumentParser(
        prog="isp",
        description="Mobile learned-ISP toolkit: data, training, TFLite export, GPU-delegate check, "
                    "latency benchmarks. Every subcommand has its own --help.")
    parser.add_argument("--verbose", action="store_true",
                        help=f"keep TensorFlow's start-up and C++ log lines (or set {quiet.VERBOSE_ENV}=1)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in PACKAGE_CLIS:
        importlib.import_module(module).add_commands(subparsers)
    return parser


def user_error_types():
    """Tuple of the exception classes that mean 'the user gave bad input'."""
    types = []
    for spec in USER_ERRORS:
        module, name = spec.split(":")
        types.append(getattr(importlib.import_module(module), name))
    return tuple(types)


def run_guarded(fn, *args, verbose=False):
    """Exit status of `fn(*args)` for a front door (the `isp` command, a `python -m benchmarks.X` script).

    Quiets TensorFlow's start-up unless `verbose` (or ISP_VERBOSE); a user error prints one line and
    gives 2, Ctrl-C gives 130; an int result is the status, anything else (a script's numbers) 0.
    """
    if not quiet.verbose_requested(verbose):
        quiet.quiet()
    try:
        status = fn(*args)
    except user_error_types() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return status if isinstance(status, int) else 0


def main(argv=None):
    """Entry point: parse, run the handler, print user errors on one line and exit 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # what a handler needs to run the same command again in a child process
    return run_guarded(args.func, args, verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
