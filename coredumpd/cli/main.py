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


def verb_modules(only: str | None = None) -> list:  # type: ignore[type-arg]
    """The verb modules; with ``only``, just the module of that name when there is one (a
    command line names its verb first: importing every verb costs more than listing)."""
    import coredumpd.cli as package

    names = [info.name for info in pkgutil.iter_modules(package.__path__)
             if info.name not in NOT_VERBS and not info.name.startswith("_")]
    if only in names:
        names = [only]
    modules = []
    for name in names:
        module = importlib.import_module(f"coredumpd.cli.{name}")
        if hasattr(module, "register"):
            modules.append(module)
    return sorted(modules, key=lambda m: (getattr(m, "HELP_ORDER", 50), m.__name__))


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coredumpd",
        description="Catch, store, explain and find crashes on Linux.",
    )
    parser.add_argument("--version", action="version", version=f"coredumpd {__version__}")
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB")
    for module in verb_modules(only):
        module.register(subparsers)
    if only is not None and only not in subparsers.choices:
        return build_parser()
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "list")  # like coredumpctl: no verb means list
    parser = build_parser(argv[0] if not argv[0].startswith("-") else None)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
