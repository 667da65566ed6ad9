"""``coredumpd backtrace CORE``: the symbolised backtrace of every thread of a stored core."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from coredumpd.cli.render import error
from unwinder.analyze import UnwindOptions, backtrace_from_core
from unwinder.core import CoreReader
from unwinder.errors import UnwindError
from unwinder.format import format_rich, format_systemd, to_json
from unwinder.symbols.cache import SymbolCache


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("backtrace", help="print the backtrace of every thread of a core")
    parser.add_argument("core", type=Path, help="a core file (uncompressed)")
    parser.add_argument("--exe", type=Path, help="the executable, if it moved since the crash")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--format", choices=("rich", "systemd"), default="rich",
                        help="rich: inline frames, file:line, how each frame was found; "
                             "systemd: systemd-coredump's exact layout")
    parser.add_argument("--max-frames", type=int, default=256)
    parser.add_argument("--scan", action="store_true", help="allow stack scanning (low trust)")
    parser.add_argument("--cache-dir", type=Path, metavar="DIR",
                        help="keep symbol tables and line tables by build-id in DIR "
                             "(created on demand); no cache when omitted")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options = UnwindOptions(max_frames=args.max_frames, scan=args.scan)
    cache = SymbolCache(args.cache_dir) if args.cache_dir is not None else None
    try:
        with CoreReader(args.core, zero_fill=False) as reader:
            backtrace = backtrace_from_core(reader, exe=args.exe, cache=cache, options=options)
    except OSError as err:
        error(f"cannot read {args.core}: {err.strerror}")
        return 1
    except UnwindError as err:
        error(f"{args.core}: {err}")
        return 1
    if args.json:
        sys.stdout.write(to_json(backtrace) + "\n")
    elif args.format == "systemd":
        sys.stdout.write(format_systemd(backtrace))
    else:
        sys.stdout.write(format_rich(backtrace))
    return 0 if backtrace.threads else 1
