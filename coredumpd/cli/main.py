"""Entry point of the ``coredumpd`` command: argument parsing and verb dispatch.

Each verb lives in its own module with a ``register(subparsers)`` that sets ``func``.
"""

from __future__ import annotations

import argparse
import sys

from coredumpd import __version__
from coredumpd.cli import backtrace, crashes, demo, install, serve

VERBS = (crashes, backtrace, demo, install, serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coredumpd",
        description="Catch, store, explain and find crashes on Linux.",
    )
    parser.add_argument("--version", action="version", version=f"coredumpd {__version__}")
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb in VERBS:
        verb.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
