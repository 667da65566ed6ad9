"""``coredumpd info [MATCH…]``: everything known about the matching crashes (the newest one
when no match is given, as coredumpctl)."""

from __future__ import annotations

import argparse

from coredumpd.cli.options import add_json_argument, add_selection_arguments

HELP_ORDER = 15


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="show crashes in full, with every thread's backtrace")
    add_selection_arguments(parser)
    add_json_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from coredumpd.cli.details import build_info
    from coredumpd.cli.options import select_many
    from coredumpd.cli.render import (
        emit_json,
        make_console,
        render_info,
        report_many,
    )

    if not args.matches and args.nth is None and args.lines is None:
        args.newest = True
    picked = select_many(args, details=True)
    crashes = report_many(picked)
    if crashes is None:
        return 1
    infos = [build_info(c) for c in crashes]
    if args.json != "off":
        data = [i.data for i in infos]
        emit_json(data[0] if len(data) == 1 else data, args.json)
        return 0
    console = make_console()
    for index, info in enumerate(infos):
        if index:
            console.print()
        render_info(console, info)
    return 0
