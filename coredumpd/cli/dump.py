"""``coredumpd dump [MATCH…] [-o FILE]``: write the newest matching core, decompressed.

As coredumpctl: to stdout (never a terminal) or ``-o FILE``; "More than one entry matches,
ignoring rest." when it picks one of several. A file gets holes where the core has all-zero
blocks; a big core shows a progress bar on a terminal's stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from coredumpd.cli.options import add_selection_arguments

HELP_ORDER = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dump", help="write the core of the newest matching crash")
    add_selection_arguments(parser)
    parser.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="write the core to FILE (default: stdout, if it is not a terminal)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from coredumpd.cli.corefile import copy_core, core_size_hint, open_crash_core
    from coredumpd.cli.options import select_one
    from coredumpd.cli.render import error, progress, report_one
    from coredumpd.errors import CoredumpError

    if args.output is None and sys.stdout.isatty():
        error("refusing to dump a core to a terminal (use shell redirection or -o FILE)")
        return 1
    picked = select_one(args)
    crash = report_one(picked)
    if crash is None:
        return 1
    fd = None
    try:
        with open_crash_core(crash, journal_directory=args.directory) as src:
            if args.output is not None:
                fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            out = fd if fd is not None else sys.stdout.fileno()
            with progress(f"core of pid {crash.pid}", core_size_hint(crash)) as bar:
                copy_core(src, out, sparse=fd is not None, advance=bar.advance)
    except CoredumpError as err:
        error(str(err))
        return 1
    except OSError as err:
        error(f"cannot write {args.output or 'stdout'}: {err.strerror or err}")
        return 1
    finally:
        if fd is not None:
            os.close(fd)
    return 0
