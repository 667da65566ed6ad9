"""Arguments shared by the crash verbs (``list``, ``info``, ``dump``, ``debug``,
``backtrace``, ``stats``), as coredumpctl spells them, and turning them into a search.

Matches, as coredumpctl (``coredumpctl-journal.c``): ``FIELD=VALUE`` is a field match; an
argument with a ``/`` is an executable path (``COREDUMP_EXE``, made absolute); a number is a
PID; anything else is a COMM. Values of one field are ORed, different fields ANDed.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from coredumpd.errors import CoredumpError

if TYPE_CHECKING:
    # the search (catalog, journal reader) is imported when a verb searches, not when its
    # parser is built: ``backtrace CORE`` never searches
    from coredumpd.cli.records import Crash, Found, Selection

JSON_MODES = ("short", "pretty", "off")
#: ``--source``: our catalog, the journal, or both
SOURCES = ("all", "catalog", "journal")


class UsageError(Exception):
    """Bad arguments; the message is shown as one line."""


def add_selection_arguments(parser: argparse.ArgumentParser, *, positional: bool = True) -> None:
    if positional:
        parser.add_argument("matches", nargs="*", metavar="MATCH",
                            help="PID, COMM, executable path or FIELD=VALUE (journal field)")
    parser.add_argument("-1", dest="newest", action="store_true",
                        help="only the newest crash (same as -r -n 1)")
    parser.add_argument("-n", dest="lines", type=int, metavar="N", help="at most N crashes (the newest)")
    parser.add_argument("-r", "--reverse", action="store_true", help="newest first")
    parser.add_argument("-S", "--since", metavar="TIME", help="crashes at or after TIME")
    parser.add_argument("-U", "--until", metavar="TIME", help="crashes before TIME")
    parser.add_argument("--nth", type=int, metavar="N",
                        help="only the Nth newest matching crash (1 = the newest)")
    parser.add_argument("--present", action="store_true",
                        help="only crashes whose core is stored and readable back")
    parser.add_argument("--source", choices=SOURCES, default="all",
                        help="where to look: our catalog, the journal (systemd-coredump's "
                             "entries and ours), or both (default)")
    parser.add_argument("-D", "--directory", type=Path, metavar="DIR",
                        help="read journal files from DIR instead of the local journal")
    parser.add_argument("--state-dir", type=Path, help="coredumpd's state directory")
    parser.add_argument("--config", type=Path, help="configuration file")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no warnings, no 'no coredumps found'")
    parser.add_argument("--no-pager", action="store_true", help="accepted; output is never paged")
    parser.add_argument("--no-legend", action="store_true", help="no column headers, no hints")


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", choices=JSON_MODES, default="off",
                        help="JSON output: short (one line) or pretty")


def parse_matches(args: Sequence[str], cwd: str | None = None) -> dict[str, tuple[bytes, ...]]:
    """Match arguments → ``{journal field: values}``."""
    out: dict[str, list[bytes]] = {}
    for arg in args:
        if "=" in arg:
            name, value = arg.split("=", 1)
            if not name or not all(c.isupper() or c.isdigit() or c == "_" for c in name):
                raise UsageError(f"bad match {arg!r}: field names are upper-case, like COREDUMP_UNIT")
        elif "/" in arg:
            name, value = "COREDUMP_EXE", os.path.abspath(os.path.join(cwd or os.getcwd(), arg))
        elif arg.isdigit():
            name, value = "COREDUMP_PID", arg
        else:
            name, value = "COREDUMP_COMM", arg
        out.setdefault(name, []).append(os.fsencode(value))
    return {name: tuple(values) for name, values in out.items()}


def selection_from_args(args: argparse.Namespace) -> Selection:
    from coredumpd.cli.records import Selection
    from coredumpd.cli.timespec import TimeSpecError, parse_timestamp

    try:
        since = parse_timestamp(args.since) if args.since else None
        until = parse_timestamp(args.until) if args.until else None
    except TimeSpecError as err:
        raise UsageError(str(err)) from err
    if args.lines is not None and args.lines < 1:
        raise UsageError("-n needs a positive number")
    if args.nth is not None and args.nth < 1:
        raise UsageError("--nth needs a positive number (1 = the newest)")
    return Selection(matches=parse_matches(getattr(args, "matches", ()) or ()),
                     since_us=since, until_us=until, present=args.present, source=args.source)


class Paths(NamedTuple):
    catalog: Path | None
    journal_directory: Path | None


def paths_from_args(args: argparse.Namespace) -> Paths:
    from coredumpd.config import CATALOG, load_config  # not runtime: it imports the pipeline

    if args.state_dir is not None:
        return Paths(Path(args.state_dir) / CATALOG, args.directory)
    return Paths(load_config(args.config).catalog_path, args.directory)


def viewer_uid() -> int | None:
    """None for root (sees everything), else the caller's uid."""
    uid = os.geteuid()
    return None if uid == 0 else uid


def search(args: argparse.Namespace, *, details: bool = False) -> Found:
    """Run the search the arguments describe. :raises UsageError, CoredumpError:"""
    from coredumpd.cli.records import find_crashes

    selection = selection_from_args(args)
    paths = paths_from_args(args)
    return find_crashes(selection, catalog_path=paths.catalog,
                        journal_directory=paths.journal_directory, details=details,
                        uid=viewer_uid())


def pick_many(crashes: Sequence[Crash], args: argparse.Namespace) -> list[Crash]:
    """Apply ``--nth``, ``-1``, ``-n`` and ``-r`` to crashes sorted oldest first."""
    rows = list(crashes)
    if args.nth is not None:
        rows = [rows[-args.nth]] if args.nth <= len(rows) else []
    elif args.newest:
        rows = rows[-1:]
    if args.lines is not None:
        rows = rows[-args.lines:]
    if args.reverse or args.newest:
        rows.reverse()
    return rows


def pick_one(crashes: Sequence[Crash], args: argparse.Namespace) -> tuple[Crash | None, bool]:
    """The crash a single-crash verb works on (the newest match, or ``--nth``), and whether
    other matches were left out."""
    if args.nth is not None:
        return (crashes[-args.nth] if args.nth <= len(crashes) else None), False
    if not crashes:
        return None, False
    return crashes[-1], len(crashes) > 1


class Selected(NamedTuple):
    """The crash a single-crash verb works on, or why there is none; lines to show."""

    crash: Crash | None
    warnings: tuple[str, ...]
    error: str | None


def select_one(args: argparse.Namespace, *, details: bool = False) -> Selected:
    """Search, pick the newest match (or ``--nth``), and say what a person should be told."""
    try:
        found = search(args, details=details)
    except (UsageError, CoredumpError) as err:
        return Selected(None, (), str(err))
    warnings = [] if args.quiet else list(found.warnings)
    crash, more = pick_one(found.crashes, args)
    if crash is None:
        return Selected(None, tuple(warnings), nothing_found(found, args))
    if more and not args.quiet:
        warnings.append("more than one entry matches, ignoring rest (use --nth N to pick another)")
    return Selected(crash, tuple(warnings), None)


class SelectedMany(NamedTuple):
    """The crashes a listing verb shows (oldest first), or why there are none (``error`` is
    None when there is nothing to say: an empty result under ``-q``); lines to show."""

    crashes: tuple[Crash, ...]
    warnings: tuple[str, ...]
    error: str | None
    #: the viewer sees only their own crashes (not root)
    restricted: bool = False


def select_many(args: argparse.Namespace, *, details: bool = False) -> SelectedMany:
    """Search and apply ``--nth``/``-1``/``-n``/``-r`` (:func:`pick_many`)."""
    try:
        found = search(args, details=details)
    except (UsageError, CoredumpError) as err:
        return SelectedMany((), (), str(err))
    warnings = () if args.quiet else tuple(found.warnings)
    crashes = tuple(pick_many(found.crashes, args))
    if not crashes:
        return SelectedMany((), warnings, None if args.quiet else nothing_found(found, args),
                            found.restricted)
    return SelectedMany(crashes, warnings, None, found.restricted)


def nothing_found(found: Found, args: argparse.Namespace) -> str:
    """The one line explaining an empty result."""
    if args.nth is not None and found.crashes:
        return f"only {len(found.crashes)} matching coredump(s), no {args.nth}th newest"
    if found.hidden_privileged:
        return (f"no coredumps found ({found.hidden_privileged} of your crashes ran privileged "
                f"(setuid or with capabilities, dumpable=2): visible to root only)")
    return "no coredumps found"
