"""Crashes being handled, on disk: one the daemon was killed in the middle of is still counted.

:class:`~coredumpd.pipeline.Pipeline` writes ``<state>/inflight/<pid>-<start>-<token>.json``
(the crash's context as known before its stream is read; ``pid`` and ``start`` name the
process handling it) and removes it once the catalog has the row, or the crash's handling
ended otherwise. ``coredumpd serve`` calls :func:`recover` when it starts: every marker whose
owner is gone becomes a record without a core, with a note saying why, and is removed.

No fsync: the markers answer a killed process, not a lost machine (after a reboot the store
is checked by the catalog's own means).
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from coredumpd.catalog import Catalog
from coredumpd.context import ContextError, CrashContext
from procfs.errors import ParseError
from procfs.parse.stat import parse_stat

log = logging.getLogger(__name__)

DIRECTORY = "inflight"
INTERRUPTED = "interrupted: the process handling this crash ended before recording it; the core is lost"


def _start_time(pid: int) -> str | None:
    """``starttime`` of /proc/<pid>/stat (clock ticks since boot): with the pid, a process's
    identity. None when the process is gone or its stat unreadable."""
    try:
        return str(parse_stat(Path(f"/proc/{pid}/stat").read_bytes()).starttime)
    except (OSError, ParseError):
        return None


_OWN_START = _start_time(os.getpid())


def mark(state_dir: Path, context: CrashContext) -> Path | None:
    """Write the marker of ``context``'s crash; None when it cannot be written (the crash is
    handled all the same, only not recoverable)."""
    directory = state_dir / DIRECTORY
    path = directory / f"{os.getpid()}-{_OWN_START or 0}-{secrets.token_hex(6)}.json"
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, context.to_json().encode())
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as err:
        log.warning("cannot write the in-flight marker of pid %s: %s", context.pid, err)
        return None
    return path


def clear(path: Path | None) -> None:
    if path is not None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def recover(state_dir: Path, catalog: Catalog) -> int:
    """Record the crashes whose handler died (markers of processes that are gone); returns
    how many. A marker that does not parse is removed with a warning."""
    directory = state_dir / DIRECTORY
    try:
        entries = sorted(directory.iterdir())
    except FileNotFoundError:
        return 0
    recovered = 0
    for path in entries:
        owner = _owner(path.name)
        if owner is None or _start_time(owner[0]) == owner[1]:
            continue  # not ours, or its handler is still at work
        if path.suffix != ".json":  # a marker its dead owner never finished writing
            clear(path)
            continue
        try:
            context = CrashContext.from_json(path.read_text())
        except (OSError, ValueError, ContextError) as err:
            log.warning("in-flight marker %s unreadable, removed: %s", path.name, err)
            clear(path)
            continue
        context.notes.append(INTERRUPTED)
        catalog.add(context, None, backtrace_json=None, signature=None)
        clear(path)
        recovered += 1
        log.warning("pid %s was being handled when its handler ended: recorded without its core",
                    context.pid)
    return recovered


def _owner(name: str) -> tuple[int, str] | None:
    """(pid, start time) of the process that wrote marker ``name`` (``.json``, or ``.tmp``
    while being written); None for a name we did not write."""
    stem, dot, suffix = name.rpartition(".")
    parts = stem.split("-")
    if not dot or suffix not in ("json", "tmp") or len(parts) != 3 or not parts[0].isdigit():
        return None
    return int(parts[0]), parts[1]
