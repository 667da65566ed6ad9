"""``coredumpd list [MATCH…]``: crashes, one per line, oldest first (the default verb).

coredumpctl's columns and options, plus ``--group`` (one row per crash signature), ``-F``
over every source, ``--present``, ``--nth`` and ``--source``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from coredumpd.cli.options import add_json_argument, add_selection_arguments
from coredumpd.cli.records import Crash

HELP_ORDER = 10


@dataclass(frozen=True)
class CrashGroup:
    """Crashes sharing a signature (crashes without one are grouped by executable).
    ``first``/``last`` in µs; ``executables`` and ``versions`` in first-seen order."""

    signature: str | None
    count: int
    first: int
    last: int
    executables: tuple[bytes, ...]
    versions: tuple[bytes, ...]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("list", help="list crashes (the default verb)")
    add_selection_arguments(parser)
    add_json_argument(parser)
    parser.add_argument("-F", "--field", metavar="FIELD",
                        help="print every distinct value of journal field FIELD instead")
    parser.add_argument("--group", action="store_true",
                        help="one row per crash signature: count, first/last seen, executables")
    parser.set_defaults(func=run)


def group_crashes(crashes: Sequence[Crash]) -> list[CrashGroup]:
    """Groups, most recently seen last."""
    groups: dict[tuple[str, Any], list[Crash]] = {}
    for crash in crashes:
        key = ("sig", crash.signature) if crash.signature else ("exe", crash.label)
        groups.setdefault(key, []).append(crash)
    out = []
    for (_, _), members in groups.items():
        exes = tuple(dict.fromkeys(c.label for c in members))
        versions = tuple(dict.fromkeys(v for c in members
                                       if (v := c.field("COREDUMP_PACKAGE_VERSION")) is not None))
        out.append(CrashGroup(members[0].signature, len(members), min(c.time for c in members),
                              max(c.time for c in members), exes, versions))
    out.sort(key=lambda g: g.last)
    return out


def distinct_values(crashes: Sequence[Crash], name: str) -> list[bytes]:
    return list(dict.fromkeys(v for c in crashes if (v := c.field(name)) is not None))


def list_json(crashes: Sequence[Crash]) -> list[dict[str, Any]]:
    """coredumpctl's ``--json`` keys, then ours."""
    return [{"time": c.time, "pid": c.pid, "uid": c.uid, "gid": c.gid, "sig": c.signal,
             "corefile": c.storage, "exe": c.label.decode("utf-8", "backslashreplace"),
             "size": c.size, "id": c.catalog_id, "signature": c.signature,
             "sources": list(c.sources)} for c in crashes]


def groups_json(groups: Sequence[CrashGroup]) -> list[dict[str, Any]]:
    return [{"signature": g.signature, "count": g.count, "first": g.first, "last": g.last,
             "exe": [e.decode("utf-8", "backslashreplace") for e in g.executables],
             "versions": [v.decode("utf-8", "backslashreplace") for v in g.versions]}
            for g in groups]


def run(args: argparse.Namespace) -> int:
    from coredumpd.cli.options import select_many
    from coredumpd.cli.render import (
        emit_json,
        make_console,
        render_crashes,
        render_groups,
        render_values,
        report_many,
        warning,
    )

    needs_details = args.group or args.field is not None
    picked = select_many(args, details=needs_details)
    crashes = report_many(picked)
    if crashes is None:
        return 1
    console = make_console()
    if args.field is not None:
        values = distinct_values(crashes, args.field)
        if not values:
            return 1
        render_values(console, values)
        return 0
    if args.group:
        groups = group_crashes(sorted(crashes, key=lambda c: c.time))
        if args.reverse:
            groups.reverse()
        if args.json != "off":
            emit_json(groups_json(groups), args.json)
        else:
            render_groups(console, groups, legend=not args.no_legend)
        return 0
    if args.json != "off":
        emit_json(list_json(crashes), args.json)
        return 0
    render_crashes(console, crashes, legend=not args.no_legend)
    if picked.restricted and not args.quiet and not args.no_legend:
        warning("showing your own crashes only; crashes of other users and of privileged "
                "processes are visible to root")
    return 0
