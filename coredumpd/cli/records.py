"""Crashes from every source, as one list: our catalog and the journal, merged.

- The catalog (``<state>/catalog.sqlite``) holds our crashes; our own journal entries
  (``SYSLOG_IDENTIFIER=coredumpd``) repeat them, so a journal entry whose
  ``(boot id, pid, COREDUMP_TIMESTAMP)`` is in the catalog is folded into that row.
- The journal adds the crashes systemd-coredump handled (see
  :mod:`coredumpd.journal_reader` for which writers are trusted). A malformed entry is
  skipped with a warning.
- Access: root sees everything. Anyone else sees only crashes with their own uid, and never
  those of processes that were not dumpable (``dumpable=2``: setuid, capabilities); their
  cores are readable by root only. The catalog file itself is world-readable (0644, in a
  0755 state directory) so that users can list their own crashes without a setuid helper;
  the filter here is a convenience, the file modes of the cores (0640 root, with a read ACL
  for the crashing user only when safe) are the access control on core bytes.

Times are µs since the epoch; :attr:`Crash.time` is the crash's ``COREDUMP_TIMESTAMP`` for
every source, so that the sources sort together.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from coredumpd.catalog import Catalog, CatalogRow
from coredumpd.context import FIELDS, CrashContext
from coredumpd.errors import CatalogError
from coredumpd.journal_reader import (
    JournalCrash,
    JournalReadError,
    MalformedEntry,
    iter_crash_entries,
)

#: journal field → (catalog column, type) for matches the catalog answers in SQL
CATALOG_COLUMNS: dict[str, tuple[str, Callable[[bytes], Any]]] = {
    "COREDUMP_PID": ("pid", int), "COREDUMP_TID": ("tid", int), "COREDUMP_UID": ("uid", int),
    "COREDUMP_GID": ("gid", int), "COREDUMP_SIGNAL": ("signal", int),
    "COREDUMP_COMM": ("comm", bytes), "COREDUMP_EXE": ("exe", bytes),
    "COREDUMP_FILENAME": ("filename", os.fsdecode), "COREDUMPD_SIGNATURE": ("signature", bytes.decode),
    "COREDUMPD_DOOR": ("door", bytes.decode), "COREDUMPD_ID": ("id", int),
}
#: coredumpctl's COREFILE states that mean "the core can be read back"
STORED = frozenset({"present", "truncated", "journal"})
_BY_JOURNAL = {f.journal: f for f in FIELDS if f.journal}


def normalize_boot_id(boot_id: str | None) -> str | None:
    return boot_id.replace("-", "").lower() if boot_id else None


@lru_cache(maxsize=4096)
def file_state(filename: str | None, truncated: bool = False) -> tuple[str, int | None]:
    """coredumpctl's COREFILE for a stored file, and its size in bytes on disk (cached
    within one listing: :func:`read_catalog` clears it)."""
    if not filename:
        return "none", None
    try:
        st = os.stat(filename)
    except OSError as err:
        if err.errno == errno.ENOENT:
            return "missing", None
        return ("inaccessible" if err.errno == errno.EACCES else "error"), None
    if not os.access(filename, os.R_OK):
        return "inaccessible", st.st_blocks * 512
    return ("truncated" if truncated else "present"), st.st_blocks * 512


@dataclass(frozen=True)
class Crash:
    """One crash, whichever source(s) it came from.

    :ivar time: ``COREDUMP_TIMESTAMP``, µs since the epoch.
    :ivar storage: coredumpctl's COREFILE: ``present``, ``truncated``, ``missing``,
        ``inaccessible``, ``error``, ``journal`` (the core is in the entry) or ``none``.
    :ivar size: bytes the stored core occupies on disk, when known.
    :ivar sources: ``("catalog",)``, ``("journal",)`` or both.
    :ivar writer: who recorded it: ``coredumpd`` or ``systemd-coredump``.
    """

    time: int
    pid: int | None
    uid: int | None
    gid: int | None
    signal: int | None
    comm: bytes | None
    exe: bytes | None
    boot_id: str | None
    storage: str
    filename: str | None
    size: int | None
    signature: str | None
    writer: str
    sources: tuple[str, ...]
    catalog_id: int | None = None
    row: CatalogRow | None = field(default=None, repr=False, compare=False)
    entry: JournalCrash | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> tuple[str | None, int | None, int]:
        return (self.boot_id, self.pid, self.time)

    @property
    def cursor(self) -> str | None:
        return self.entry.cursor if self.entry is not None else None

    @property
    def label(self) -> bytes:
        """What coredumpctl's EXE column shows: the executable, else the comm."""
        return self.exe if self.exe is not None else (self.comm or b"")

    @cached_property
    def context(self) -> CrashContext:
        """Everything known (the catalog's context, else one built from the entry)."""
        if self.row is not None and self.row.context_json is not None:
            return self.row.context
        if self.entry is not None:
            return context_from_fields(self.entry.fields)
        return CrashContext(pid=self.pid, uid=self.uid, gid=self.gid, signal=self.signal,
                            comm=self.comm, exe=self.exe, timestamp=self.time)

    @property
    def dumpable(self) -> int | None:
        return self.context.dumpable

    @property
    def message(self) -> bytes | None:
        return self.entry.get("MESSAGE") if self.entry is not None else None

    @property
    def backtrace_json(self) -> str | None:
        return self.row.backtrace_json if self.row is not None else None

    @property
    def notes(self) -> tuple[str, ...]:
        if self.row is not None:
            return self.row.notes
        raw = self.entry.get("COREDUMPD_NOTES") if self.entry is not None else None
        return tuple(raw.decode(errors="replace").splitlines()) if raw else ()

    def field(self, name: str) -> bytes | None:
        """The value of journal field ``name`` for this crash, as bytes (``-F``, matches)."""
        if self.entry is not None and name in self.entry.fields:
            return self.entry.fields[name]
        ours = {"COREDUMPD_SIGNATURE": self.signature, "COREDUMPD_ID": self.catalog_id,
                "_BOOT_ID": self.boot_id, "COREDUMP_FILENAME": self.filename,
                "COREDUMP_TIMESTAMP": self.time}
        if name in ours:
            value = ours[name]
            return None if value is None else str(value).encode()
        spec = _BY_JOURNAL.get(name)
        if spec is None:
            return None
        value = getattr(self.context, spec.attr)
        if value is None:
            return None
        return value if isinstance(value, bytes) else str(value).encode()


def context_from_fields(fields: Mapping[str, bytes]) -> CrashContext:
    """A :class:`CrashContext` from a journal entry's fields (through :data:`FIELDS`)."""
    context = CrashContext(door="journal")
    for name, value in fields.items():
        spec = _BY_JOURNAL.get(name)
        if spec is None:
            continue
        try:
            converted: Any = (int(value) if spec.kind is int
                              else value.decode(errors="replace") if spec.kind is str else value)
        except ValueError:
            continue
        setattr(context, spec.attr, converted)
    context.boot_id = normalize_boot_id((fields.get("_BOOT_ID") or b"").decode() or None)
    machine = fields.get("_MACHINE_ID")
    context.machine_id = machine.decode(errors="replace") if machine else None
    return context


def crash_from_row(row: CatalogRow, *, check_files: bool = True) -> Crash:
    storage, size = row.storage_state, row.disk_size
    if check_files and storage in ("present", "truncated"):
        state, _ = file_state(row.filename, storage == "truncated")
        storage = state
    return Crash(time=row.timestamp, pid=row.pid, uid=row.uid, gid=row.gid, signal=row.signal,
                 comm=row.comm, exe=row.exe, boot_id=normalize_boot_id(row.boot_id),
                 storage=storage, filename=row.filename, size=size, signature=row.signature,
                 writer="coredumpd", sources=("catalog",), catalog_id=row.id, row=row)


def crash_from_entry(entry: JournalCrash) -> Crash:
    filename = entry.get("COREDUMP_FILENAME")
    if filename:
        storage, size = file_state(os.fsdecode(filename), entry.get("COREDUMP_TRUNCATED") == b"1")
    elif entry.has_journal_core:
        storage, size = "journal", None
    else:
        storage, size = "none", None
    signature = entry.get("COREDUMPD_SIGNATURE")
    return Crash(time=entry.timestamp, pid=entry.pid, uid=entry.uid, gid=entry.gid,
                 signal=entry.signal, comm=entry.get("COREDUMP_COMM"), exe=entry.get("COREDUMP_EXE"),
                 boot_id=entry.boot_id, storage=storage,
                 filename=os.fsdecode(filename) if filename else None, size=size,
                 signature=signature.decode(errors="replace") if signature else None,
                 writer=entry.writer, sources=("journal",), entry=entry)


@dataclass(frozen=True)
class Selection:
    """What to look for. ``matches`` maps journal field names to the values any of which
    must be equal (fields ANDed); times in µs, ``until_us`` excluded."""

    matches: Mapping[str, tuple[bytes, ...]] = field(default_factory=dict)
    since_us: int | None = None
    until_us: int | None = None
    present: bool = False
    source: str = "all"


@dataclass(frozen=True)
class Found:
    """Crashes found, oldest first, and what the caller should know about the search.

    :ivar hidden_privileged: the caller's own crashes left out because they were not
        dumpable (non-root callers only).
    :ivar restricted: the caller is not root and saw only their own crashes.
    """

    crashes: tuple[Crash, ...]
    warnings: tuple[str, ...] = ()
    hidden_privileged: int = 0
    restricted: bool = False


def _catalog_query(selection: Selection, uid: int | None) -> tuple[dict[str, Any], list[str]]:
    sql: dict[str, Any] = {}
    python: list[str] = []
    for name, values in selection.matches.items():
        column = CATALOG_COLUMNS.get(name)
        if column is None:
            python.append(name)
            continue
        converted = []
        for value in values:
            try:
                converted.append(column[1](value))
            except (ValueError, UnicodeDecodeError):
                pass  # a value of the wrong type matches nothing
        sql[column[0]] = converted
    if uid is not None:
        sql["uid"] = [uid] if "uid" not in sql else [u for u in sql["uid"] if u == uid]
    return sql, python


def _matches_python(crash: Crash, selection: Selection, names: Iterable[str]) -> bool:
    for name in names:
        values = selection.matches[name]
        value = crash.field(name)
        if name == "_BOOT_ID" and value is not None:
            value = value.replace(b"-", b"").lower()
            values = tuple(v.replace(b"-", b"").lower() for v in values)
        if value not in values:
            return False
    return True


def read_catalog(path: Path, selection: Selection, *, uid: int | None, details: bool,
                 check_files: bool = True) -> list[Crash]:
    """Catalog crashes matching ``selection`` (``uid``: only that user's). Missing catalog:
    none. :raises CatalogError: unreadable or unusable."""
    if not path.exists():
        return []
    sql, python = _catalog_query(selection, uid)
    with Catalog.open_readonly(path) as catalog:
        rows = catalog.query(since_us=selection.since_us, until_us=selection.until_us,
                             match=sql, newest_first=False,
                             details=details or bool(python) or uid is not None)
    crashes = [crash_from_row(r, check_files=check_files) for r in rows]
    file_state.cache_clear()
    if python:
        crashes = [c for c in crashes if _matches_python(c, selection, python)]
    return crashes


def _fold(catalog: list[Crash], entries: list[JournalCrash]) -> list[Crash]:
    by_key = {c.key: i for i, c in enumerate(catalog)}
    merged = list(catalog)
    seen: set[tuple[str | None, int | None, int]] = set()
    for entry in entries:
        crash = crash_from_entry(entry)
        index = by_key.get(crash.key)
        if index is not None:
            mine = merged[index]
            if mine.entry is None:
                merged[index] = Crash(**{**_shallow(mine), "sources": ("catalog", "journal"),
                                         "entry": entry})
            continue
        if crash.key in seen:
            continue
        seen.add(crash.key)
        merged.append(crash)
    return merged


def _shallow(crash: Crash) -> dict[str, Any]:
    return {f: getattr(crash, f) for f in crash.__dataclass_fields__}


def find_crashes(selection: Selection, *, catalog_path: Path | None,
                 journal_directory: Path | None = None, details: bool = False,
                 uid: int | None = None, check_files: bool = True) -> Found:
    """Every crash matching ``selection``, oldest first, merged from the sources.

    :param uid: None: everything (root); else only that user's crashes, never the
        non-dumpable ones.
    :raises CatalogError: the catalog exists but cannot be read, and it was the only source.
    """
    warnings: list[str] = []
    catalog: list[Crash] = []
    file_state.cache_clear()
    if selection.source in ("all", "catalog") and catalog_path is not None:
        try:
            catalog = read_catalog(catalog_path, selection, uid=uid, details=details,
                                   check_files=check_files)
        except CatalogError as err:
            if selection.source == "catalog":
                raise
            warnings.append(f"{err}; showing the journal's crashes only")
    entries: list[JournalCrash] = []
    if selection.source in ("all", "journal"):
        matches = dict(selection.matches)
        if uid is not None:
            matches["COREDUMP_UID"] = (str(uid).encode(),)
        try:
            for entry in iter_crash_entries(matches, since_us=selection.since_us,
                                            directory=journal_directory):
                if isinstance(entry, MalformedEntry):
                    warnings.append(f"ignoring a malformed crash entry in the journal "
                                    f"(cursor {entry.cursor}): {entry.reason}")
                    continue
                t = entry.timestamp
                if selection.since_us is not None and t < selection.since_us:
                    continue
                if selection.until_us is not None and t >= selection.until_us:
                    continue
                entries.append(entry)
        except JournalReadError as err:
            warnings.append(f"{err}; showing the catalog's crashes only")
    crashes = _fold(catalog, entries)
    hidden = 0
    if uid is not None:
        visible = [c for c in crashes if c.uid == uid and c.dumpable != 2]
        hidden = sum(1 for c in crashes if c.uid == uid and c.dumpable == 2)
        crashes = visible
    if selection.present:
        crashes = [c for c in crashes if c.storage in STORED]
    crashes.sort(key=lambda c: (c.time, c.pid or 0))
    return Found(tuple(crashes), tuple(warnings), hidden, uid is not None)

