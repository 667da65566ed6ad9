"""Entry point of the ``coredumpd`` command: argument parsing and verb dispatch."""

from __future__ import annotations

import argparse
import sys

from coredumpd import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coredumpd",
        description="Catch, store, explain and find crashes on Linux.",
    )
    parser.add_argument("--version", action="version", version=f"coredumpd {__version__}")
    parser.add_subparsers(dest="verb", metavar="VERB")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
