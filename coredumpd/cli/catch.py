"""``coredumpd catch [--state-dir DIR | --daemon SOCKET] [--] CMD ARGS…``: run CMD and capture its
crashes (and those of everything it starts) without the kernel's ``core_pattern``.

For sandboxes (gVisor), containers and CI runners where nobody may set ``core_pattern``. CMD's
stdin, stdout, stderr and exit status are its own; a crash is recorded (daemon hand-off, else the
in-process pipeline) before the process is let die of its signal.
"""

from __future__ import annotations

import argparse
import logging

from coredumpd.catch import Supervisor, mirror_exit
from coredumpd.catch_sink import Sink
from coredumpd.cli.render import error
from coredumpd.errors import CoredumpError
from procfs.memory_base import MemoryMethod

HELP_ORDER = 60


def parse_methods(text: str) -> list[MemoryMethod]:
    """``mem,process_vm_readv,ptrace`` → the memory methods, in that order."""
    try:
        return [MemoryMethod(name.strip()) for name in text.split(",") if name.strip()]
    except ValueError as err:
        names = ", ".join(m.value for m in MemoryMethod)
        raise argparse.ArgumentTypeError(f"{err} (known: {names})") from err


def add_sink_options(parser: argparse.ArgumentParser) -> None:
    """``--state-dir`` / ``--daemon`` / ``--config``: where a core we write is recorded."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--state-dir", metavar="DIR",
                       help="record into this state directory, in-process (no daemon)")
    where.add_argument("--daemon", metavar="SOCKET",
                       help="hand crashes to the daemon listening here (default: the configured "
                            "hand-off socket); recorded in-process when it does not answer")
    parser.add_argument("--config", metavar="FILE", help="configuration file")
    parser.add_argument("--memory-methods", type=parse_methods, metavar="LIST",
                        help="memory methods to use, in order (default mem,process_vm_readv,"
                             "ptrace)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "catch", help="run a command and capture its crashes with ptrace (sandboxes, CI)",
        description="Run CMD under ptrace; when anything in its process tree dies of a "
                    "core-dumping signal, write its core and record it, then let it die. "
                    "The exit status is CMD's (a signal death is mirrored, without the core bit).")
    add_sink_options(parser)
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log what the catcher does (twice: with tracebacks)")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD ARGS",
                        help="the command to run")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    argv = list(args.command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        error("catch: no command given")
        return 2
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level,
                        format="coredumpd catch: %(message)s")
    try:
        sink = Sink(state_dir=args.state_dir, daemon=args.daemon, config_path=args.config)
    except CoredumpError as err:
        error(f"catch: {err}")
        return 2
    supervisor = Supervisor(sink, memory_methods=args.memory_methods)
    return mirror_exit(supervisor.run(argv))
