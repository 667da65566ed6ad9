"""Entry point of the ``coredumpd`` command: argument parsing and verb dispatch.

Each verb lives in its own module under :mod:`coredumpd.cli` with a ``register(subparsers)``
that adds its parser and sets ``func``; modules are discovered here. ``HELP_ORDER`` (optional,
default 50) orders them in ``--help``. A command line that names a verb of ``VERBS`` imports
that verb's module alone (listing the package and importing every verb costs more than the
verb's own work); ``tests/unit/cli/test_main.py`` checks the table against discovery.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

from coredumpd import __version__

NOT_VERBS = {"main", "render"}

#: verb (and alias) -> the module under coredumpd.cli that registers it
VERBS = {
    "backtrace": "backtrace", "catch": "catch", "debug": "debug", "gdb": "debug",
    "demo": "demo", "dump": "dump", "info": "info", "install": "install",
    "uninstall": "install", "list": "list", "serve": "serve", "snapshot": "snapshot",
    "stack": "pid_backtrace", "stats": "stats",
}


def discover_verb_modules() -> list[ModuleType]:
    """Every module of :mod:`coredumpd.cli` with a ``register``, in ``--help`` order."""
    import pkgutil

    import coredumpd.cli as package

    modules = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name in NOT_VERBS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if hasattr(module, "register"):
            modules.append(module)
    return sorted(modules, key=lambda m: (getattr(m, "HELP_ORDER", 50), m.__name__))


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The parser with every verb, or with ``verb``'s alone when ``VERBS`` knows it."""
    parser = argparse.ArgumentParser(
        prog="coredumpd",
        description="Catch, store, explain and find crashes on Linux.",
    )
    parser.add_argument("--version", action="version", version=f"coredumpd {__version__}")
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB")
    if verb in VERBS:
        modules = [importlib.import_module(f"coredumpd.cli.{VERBS[verb]}")]
    else:
        modules = discover_verb_modules()
    for module in modules:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "list")  # like coredumpctl: no verb means list
    parser = build_parser(argv[0])
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
