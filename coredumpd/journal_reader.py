"""Reading crash entries back from journald: systemd-coredump's own, and ours.

coredumpctl lists every entry carrying ``MESSAGE_ID=fc2e…`` (or ``1f4e…`` for
``--backtrace`` entries), whoever wrote it. Any process may send that id, so an entry is
taken only from a writer it can be pinned to by journald's *trusted* fields (``_UID``,
``_EXE``, which the sender cannot set):

- systemd-coredump: ``SYSLOG_IDENTIFIER=systemd-coredump`` and ``_EXE`` is
  ``…/systemd/systemd-coredump``, or ``_UID`` is root or the ``systemd-coredump`` user
  (journald cannot always read ``_EXE``: the helper may have exited), or ``_UID`` equals
  ``COREDUMP_UID`` (systemd-coredump drops to the crashed user before it sends; an entry
  of that kind can only tell lies about its sender's own crashes);
- coredumpd: ``SYSLOG_IDENTIFIER=coredumpd`` and ``_UID=0``.

An entry from a trusted writer that lacks PID, UID, GID, SIGNAL or COMM, or carries a
non-number in one of them, is yielded as :class:`MalformedEntry` (coredumpctl 252 aborts on
it). Values stay bytes; the stored ``COREDUMP`` blob is read only to :data:`LIST_THRESHOLD`
bytes while listing (``sd_journal_set_data_threshold``), and in full by
:func:`read_journal_core`.
"""

from __future__ import annotations

import pwd
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

MESSAGE_ID_COREDUMP = "fc2e22bc6ee647b6b90729ab34a250b1"
MESSAGE_ID_BACKTRACE = "1f4e0a44a88649939aaea34fc6da8c95"
MESSAGE_IDS = (MESSAGE_ID_COREDUMP, MESSAGE_ID_BACKTRACE)
#: Fields larger than this are cut while listing (the ``COREDUMP`` blob of Storage=journal).
LIST_THRESHOLD = 256 << 10
#: What an entry must carry to be listed (coredumpctl v262 skips entries without them).
REQUIRED = ("COREDUMP_PID", "COREDUMP_UID", "COREDUMP_GID", "COREDUMP_SIGNAL", "COREDUMP_COMM")
_NUMERIC = ("COREDUMP_PID", "COREDUMP_UID", "COREDUMP_GID", "COREDUMP_SIGNAL")
_LOCAL_ONLY = 1  # SD_JOURNAL_LOCAL_ONLY


class JournalReadError(Exception):
    """The journal could not be opened or read (python-systemd missing, bad directory)."""


@dataclass(frozen=True)
class JournalCrash:
    """One crash entry. ``realtime`` is the entry's ``__REALTIME_TIMESTAMP`` (µs);
    ``fields`` maps field names to their (first) value, bytes as journald has them;
    ``writer`` is ``systemd-coredump`` or ``coredumpd``."""

    cursor: str
    realtime: int
    writer: str
    fields: Mapping[str, bytes]

    def get(self, name: str) -> bytes | None:
        return self.fields.get(name)

    def number(self, name: str) -> int | None:
        value = self.fields.get(name)
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

    @property
    def pid(self) -> int:
        return int(self.fields["COREDUMP_PID"])

    @property
    def uid(self) -> int:
        return int(self.fields["COREDUMP_UID"])

    @property
    def gid(self) -> int:
        return int(self.fields["COREDUMP_GID"])

    @property
    def signal(self) -> int:
        return int(self.fields["COREDUMP_SIGNAL"])

    @property
    def timestamp(self) -> int:
        """``COREDUMP_TIMESTAMP`` (µs; whole seconds from the kernel), else the realtime."""
        return self.number("COREDUMP_TIMESTAMP") or self.realtime

    @property
    def boot_id(self) -> str | None:
        raw = self.fields.get("_BOOT_ID")
        return raw.decode("ascii", "replace").replace("-", "").lower() if raw else None

    @property
    def has_journal_core(self) -> bool:
        return "COREDUMP" in self.fields


@dataclass(frozen=True)
class MalformedEntry:
    """A trusted writer's entry that cannot be listed, and why."""

    cursor: str
    realtime: int
    reason: str


def _coredump_uid() -> int | None:
    try:
        return pwd.getpwnam("systemd-coredump").pw_uid
    except KeyError:
        return None


def entry_writer(fields: Mapping[str, bytes], coredump_uid: int | None = None) -> str | None:
    """``systemd-coredump`` or ``coredumpd`` when the trusted fields pin the entry to that
    writer, else None (see the module docstring)."""
    ident = fields.get("SYSLOG_IDENTIFIER")
    sender = fields.get("_UID")
    if ident == b"coredumpd":
        return "coredumpd" if sender == b"0" else None
    if ident != b"systemd-coredump":
        return None
    exe = fields.get("_EXE") or b""
    if exe.endswith(b"/systemd/systemd-coredump"):
        return "systemd-coredump"
    trusted = {b"0"} | ({str(coredump_uid).encode()} if coredump_uid is not None else set())
    if sender in trusted or (sender is not None and sender == fields.get("COREDUMP_UID")):
        return "systemd-coredump"
    return None


def check_entry(fields: Mapping[str, bytes]) -> str | None:
    """Why the entry cannot be listed, or None."""
    missing = [name for name in REQUIRED if not fields.get(name)]
    if missing:
        return "missing " + ", ".join(missing)
    for name in _NUMERIC:
        try:
            int(fields[name])
        except ValueError:
            return f"{name} is not a number: {fields[name][:32]!r}"
    return None


def _first_values(data: Mapping[str, object]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for key, value in data.items():
        if isinstance(value, list):  # a field sent more than once: keep the first, as sd-journal
            value = value[0] if value else b""
        if isinstance(value, bytes):
            out[key] = value
    return out


def _open(directory: Path | None, threshold: int):  # type: ignore[no-untyped-def]
    try:
        from systemd import _reader
    except ImportError as err:
        raise JournalReadError(f"python-systemd is missing: {err}") from err
    try:
        if directory is not None:
            reader = _reader._Reader(0, str(directory), None, None)
        else:
            reader = _reader._Reader(_LOCAL_ONLY, None, None, None)
    except OSError as err:
        where = directory or "the local journal"
        raise JournalReadError(f"cannot open {where}: {err.strerror or err}") from err
    reader.data_threshold = threshold
    return reader


def iter_crash_entries(matches: Mapping[str, Sequence[bytes]] | None = None, *,
                       since_us: int | None = None, directory: Path | None = None,
                       threshold: int = LIST_THRESHOLD) -> Iterator[JournalCrash | MalformedEntry]:
    """Crash entries from trusted writers, oldest first, whose fields equal ``matches``
    (journal semantics: values of one field ORed, fields ANDed), from ``since_us`` on
    (by realtime). Entries from other writers are passed over silently.

    :raises JournalReadError: the journal cannot be opened.
    """
    reader = _open(directory, threshold)
    coredump_uid = _coredump_uid()
    try:
        for message_id in MESSAGE_IDS:
            reader.add_match(f"MESSAGE_ID={message_id}".encode())
        for name, values in (matches or {}).items():
            reader.add_conjunction()
            for value in values:
                reader.add_match(name.encode() + b"=" + value)
        if since_us is not None:
            reader.seek_realtime(since_us)
        while reader._next():
            fields = _first_values(reader._get_all())
            writer = entry_writer(fields, coredump_uid)
            if writer is None:
                continue
            cursor = reader._get_cursor()
            realtime = reader._get_realtime()
            realtime_us = realtime if isinstance(realtime, int) else int(realtime.timestamp() * 1e6)
            reason = check_entry(fields)
            if reason is not None:
                yield MalformedEntry(cursor, realtime_us, reason)
            else:
                yield JournalCrash(cursor, realtime_us, writer, fields)
    except OSError as err:
        raise JournalReadError(f"failed to read the journal: {err.strerror or err}") from err
    finally:
        reader.close()


def read_journal_core(cursor: str, *, directory: Path | None = None) -> bytes | None:
    """The whole ``COREDUMP`` field (Storage=journal) of the entry at ``cursor``, or None."""
    reader = _open(directory, 0)
    try:
        reader.seek_cursor(cursor)
        if not reader._next() or not reader.test_cursor(cursor):
            return None
        value = reader._get_all().get("COREDUMP")
        if isinstance(value, list):
            value = value[0] if value else None
        return value if isinstance(value, bytes) else None
    except OSError as err:
        raise JournalReadError(f"failed to read the journal: {err.strerror or err}") from err
    finally:
        reader.close()

