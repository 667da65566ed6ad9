"""Entry point of the ``coredumpd`` command: argument parsing and verb dispatch.

Each verb lives in its own module under :mod:`coredumpd.cli` with a ``register(subparsers)``
that adds its parser and sets ``func``; modules are discovered here, so adding a verb touches
no other file. ``HELP_ORDER`` (optional, default 50) orders them in ``--help``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from coredumpd import __version__

NOT_VERBS = {"main", "render"}


def verb_modules() -> list:  # type: ignore[type-arg]
    import coredumpd.cli as package

    modules = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name in NOT_VERBS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"coredumpd.cli.{info.name}")
        if hasattr(module, "register"):
            modules.append(module)
    return sorted(modules, key=lambda m: (getattr(m, "HELP_ORDER", 50), m.__name__))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coredumpd",
        description="Catch, store, explain and find crashes on Linux.",
    )
    parser.add_argument("--version", action="version", version=f"coredumpd {__version__}")
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB")
    for module in verb_modules():
        module.register(subparsers)
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
