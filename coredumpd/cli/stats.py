"""``coredumpd stats [MATCH…]``: how many crashes, of what, from where, taking how much disk."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from coredumpd.cli.options import add_json_argument, add_selection_arguments
from coredumpd.cli.records import STORED, Crash

HELP_ORDER = 35
TOP = 10


@dataclass(frozen=True)
class CrashStats:
    """Counts are ``(key, count)`` pairs, most frequent first (``by_exe``: the top 10)."""

    total: int
    first: int | None
    last: int | None
    stored: int
    disk_bytes: int
    signatures: int
    by_signal: tuple[tuple[str, int], ...]
    by_storage: tuple[tuple[str, int], ...]
    by_exe: tuple[tuple[str, int], ...]
    by_uid: tuple[tuple[str, int], ...]
    by_source: tuple[tuple[str, int], ...]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("stats", help="crash counts by signal, executable, user, storage")
    add_selection_arguments(parser)
    add_json_argument(parser)
    parser.set_defaults(func=run)


def crash_stats(crashes: Sequence[Crash]) -> CrashStats:
    from coredumpd.signals import signal_name

    def top(counter: Counter[str], n: int | None = None) -> tuple[tuple[str, int], ...]:
        return tuple(counter.most_common(n))

    stored = [c for c in crashes if c.storage in STORED]
    return CrashStats(
        total=len(crashes),
        first=min((c.time for c in crashes), default=None),
        last=max((c.time for c in crashes), default=None),
        stored=len(stored),
        disk_bytes=sum(c.size or 0 for c in stored),
        signatures=len({c.signature for c in crashes if c.signature}),
        by_signal=top(Counter(signal_name(c.signal) if c.signal else "-" for c in crashes)),
        by_storage=top(Counter(c.storage for c in crashes)),
        by_exe=top(Counter(c.label.decode("utf-8", "backslashreplace") for c in crashes), TOP),
        by_uid=top(Counter(str(c.uid) for c in crashes)),
        by_source=top(Counter(" + ".join(c.sources) + f" ({c.writer})" for c in crashes)),
    )


def run(args: argparse.Namespace) -> int:
    from coredumpd.cli.options import select_many
    from coredumpd.cli.render import (
        emit_json,
        make_console,
        render_stats,
        report_many,
    )

    picked = select_many(args)
    crashes = report_many(picked)
    if crashes is None:
        return 1
    stats = crash_stats(crashes)
    if args.json != "off":
        emit_json(asdict(stats), args.json)
    else:
        render_stats(make_console(), stats)
    return 0
