"""``coredumpd backtrace CORE`` or ``coredumpd backtrace [MATCH…]``: every thread's backtrace.

A single argument naming an existing file is a core file (uncompressed), unwound now.
Otherwise the arguments are matches, as for ``list``: the newest matching crash's stored
backtrace is printed; without one, its core is unpacked to a temporary file and unwound;
for systemd-coredump's crashes whose core is gone, the stack trace in its journal MESSAGE is
printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from coredumpd.cli.options import JSON_MODES, add_selection_arguments
from coredumpd.cli.render import error, report_one

HELP_ORDER = 30


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("backtrace", help="print the backtrace of every thread of a "
                                                     "core file or of the newest matching crash")
    parser.add_argument("matches", nargs="*", metavar="CORE|MATCH",
                        help="a core file (uncompressed), or matches as for list")
    add_selection_arguments(parser, positional=False)
    parser.add_argument("--pid", type=int, metavar="PID",
                        help="a running process instead: freeze every thread, unwind, let it go on")
    parser.add_argument("--exe", type=Path, help="the executable, if it moved since the crash")
    parser.add_argument("--json", nargs="?", const="pretty", default="off", metavar="MODE",
                        help="print JSON (short or pretty; pretty when no MODE is given)")
    parser.add_argument("--format", choices=("rich", "systemd"), default="rich",
                        help="rich: inline frames, file:line, how each frame was found; "
                             "systemd: systemd-coredump's exact layout")
    parser.add_argument("--max-frames", type=int, default=256)
    parser.add_argument("--scan", action="store_true", help="allow stack scanning (low trust)")
    parser.add_argument("--cache-dir", type=Path, metavar="DIR",
                        help="keep symbol tables and line tables by build-id in DIR (created on "
                             "demand; default: $XDG_CACHE_HOME/coredumpd/symbols, or "
                             "~/.cache/coredumpd/symbols)")
    parser.add_argument("--no-cache", action="store_true",
                        help="read every table from the files, keep nothing")
    parser.set_defaults(func=run)


def _fix_json_mode(args: argparse.Namespace) -> None:
    # "--json CORE": argparse took the positional as the mode
    if args.json not in JSON_MODES:
        args.matches = [args.json, *args.matches]
        args.json = "pretty"


def unwind_core_file(core: Path, args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from unwinder.analyze import UnwindOptions, backtrace_from_core
    from unwinder.core import CoreReader
    from unwinder.symbols.cache import SymbolCache, user_cache_dir

    options = UnwindOptions(max_frames=args.max_frames, scan=args.scan)
    cache = None if args.no_cache else SymbolCache(args.cache_dir or user_cache_dir("symbols"))
    with CoreReader(core, zero_fill=False) as reader:
        return backtrace_from_core(reader, exe=args.exe, cache=cache, options=options)


def _print(backtrace, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    """Print as ``args.json`` (a JSON mode, or "off") and ``args.format`` ask."""
    from unwinder.format import format_rich, format_systemd, to_json

    if args.json != "off":
        sys.stdout.write(to_json(backtrace, indent=2 if args.json == "pretty" else None) + "\n")
    elif args.format == "systemd":
        sys.stdout.write(format_systemd(backtrace))
    else:
        sys.stdout.write(format_rich(backtrace))
    return 0 if backtrace.threads else 1


def run_file(core: Path, args: argparse.Namespace) -> int:
    from unwinder.errors import UnwindError

    try:
        backtrace = unwind_core_file(core, args)
    except OSError as err:
        error(f"cannot read {core}: {err.strerror}")
        return 1
    except UnwindError as err:
        error(f"{core}: {err}")
        return 1
    return _print(backtrace, args)


def run(args: argparse.Namespace) -> int:
    _fix_json_mode(args)
    if args.pid is not None:
        return run_pid(args)
    if len(args.matches) == 1 and os.path.isfile(args.matches[0]):
        return run_file(Path(args.matches[0]), args)
    return run_crash(args)


def run_pid(args: argparse.Namespace) -> int:
    """The live stacks of a running process (``coredumpd stack PID`` comes here too)."""
    from coredumpd.cli.pid_backtrace import live_stack
    from procfs.errors import ProcfsError
    from unwinder.analyze import UnwindOptions
    from unwinder.errors import UnwindError

    if getattr(args, "matches", None):
        error("--pid takes no core file or matches")
        return 2
    try:
        backtrace = live_stack(args.pid, UnwindOptions(max_frames=args.max_frames, scan=args.scan))
    except (ProcfsError, UnwindError) as err:
        error(f"stack of pid {args.pid}: {err}")
        return 1
    return _print(backtrace, args)


def run_crash(args: argparse.Namespace) -> int:
    import tempfile

    from coredumpd.cli.corefile import copy_core, open_crash_core
    from coredumpd.cli.details import load_backtrace
    from coredumpd.cli.options import select_one
    from coredumpd.cli.render import clean
    from coredumpd.errors import CoredumpError
    from unwinder.errors import UnwindError

    picked = select_one(args, details=True)
    crash = report_one(picked)
    if crash is None:
        return 1
    backtrace = load_backtrace(crash)
    if backtrace is not None:
        return _print(backtrace, args)
    if crash.storage in ("present", "truncated", "journal"):
        fd, name = tempfile.mkstemp(prefix="coredump-", dir="/var/tmp")
        try:
            with open_crash_core(crash, journal_directory=args.directory) as src:
                copy_core(src, fd, sparse=True)
            if args.exe is None and crash.exe and os.path.isabs(os.fsdecode(crash.exe)):
                exe = Path(os.fsdecode(crash.exe))
                args.exe = exe if exe.exists() else None
            return _print(unwind_core_file(Path(name), args), args)
        except (CoredumpError, UnwindError) as err:
            error(str(err))
            return 1
        finally:
            os.close(fd)
            os.unlink(name)
    message = crash.message
    if message and b"Stack trace of thread" in message and args.json == "off":
        text = message.decode("utf-8", "backslashreplace").split("\n\n", 1)[-1]
        sys.stdout.write("".join(clean(line) + "\n" for line in text.splitlines()))
        return 0
    error(f"no backtrace for pid {crash.pid}: none was recorded and the core is {crash.storage}")
    return 1
