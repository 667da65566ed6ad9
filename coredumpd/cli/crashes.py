"""``coredumpd list`` and ``coredumpd info``: crashes recorded in the catalog.

(The full coredumpctl-compatible matching and options arrive with the CLI issue.)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP_ORDER = 10


def register(subparsers: argparse._SubParsersAction) -> None:
    for name, helptext, func in (("list", "list recorded crashes", run_list),
                                 ("info", "show one crash with its backtrace", run_info)):
        parser = subparsers.add_parser(name, help=helptext)
        parser.add_argument("--state-dir", type=Path)
        parser.add_argument("--config", type=Path)
        parser.add_argument("-n", type=int, default=None, dest="limit", help="at most N crashes")
        parser.add_argument("--json", action="store_true")
        if name == "info":
            parser.add_argument("id", nargs="?", type=int, help="catalog id (default: the newest)")
        parser.set_defaults(func=func)


def _rows(args: argparse.Namespace, limit: int | None):  # type: ignore[no-untyped-def]
    from coredumpd.catalog import Catalog
    from coredumpd.runtime import CATALOG, load

    state = load(args.config, args.state_dir).state_directory
    path = state / CATALOG
    if not path.exists():
        return []
    with Catalog.open(path) as catalog:
        return catalog.query(limit=limit)


def run_list(args: argparse.Namespace) -> int:
    from coredumpd.cli.render import error, make_console, render_crash_list
    from coredumpd.errors import CoredumpError

    try:
        rows = _rows(args, args.limit)
    except CoredumpError as err:
        error(str(err))
        return 1
    if not rows:
        error("no coredumps found")
        return 1
    rows = list(reversed(rows))  # oldest first, as coredumpctl lists
    if args.json:
        print(json.dumps([{"id": r.id, "time": r.timestamp, "pid": r.pid, "uid": r.uid,
                           "gid": r.gid, "sig": r.signal, "corefile": r.storage_state,
                           "exe": (r.exe or b"").decode(errors="backslashreplace"),
                           "size": r.disk_size} for r in rows]))
        return 0
    render_crash_list(make_console(), rows)
    return 0


def run_info(args: argparse.Namespace) -> int:
    from coredumpd.cli.render import error, make_console, render_crash_info
    from coredumpd.errors import CoredumpError
    from unwinder.backtrace import backtrace_from_dict
    from unwinder.format import format_rich

    try:
        rows = _rows(args, None)
    except CoredumpError as err:
        error(str(err))
        return 1
    rows = [r for r in rows if args.id is None or r.id == args.id]
    if not rows:
        error("no coredump found" if args.id is None else f"no coredump with id {args.id}")
        return 1
    row = rows[0]
    backtrace = backtrace_from_dict(json.loads(row.backtrace_json)) if row.backtrace_json else None
    if args.json:
        print(json.dumps({"id": row.id, "context": json.loads(row.context_json or "{}"),
                          "backtrace": backtrace.to_dict() if backtrace else None}))
        return 0
    render_crash_info(make_console(), row, format_rich(backtrace) if backtrace else None)
    return 0
