"""The journal entry for one crash, in systemd-coredump's exact format (pure: no I/O).

systemd-coredump 252 (``coredump.c:submit_coredump``; same text in v262's
``coredump-submit.c``) sends ``MESSAGE_ID=fc2e…``, ``PRIORITY=2``, every ``COREDUMP_*`` field
it could read, and a MESSAGE of ``"Process <%P> (<comm>) of user <%u> dumped core."`` (or
``"… terminated abnormally without generating a coredump."`` when no core was written),
then ``"\\n\\n"`` and the backtrace text when there is one. ``comm`` is shown, and stored in
``COREDUMP_COMM``, through ``cellescape()``: C escapes for control bytes, quotes and
backslashes, octal for everything else outside printable ASCII. Measured on Debian 12's
systemd-coredump 252.39: comm ``e<ESC>[31m<BEL>\\"'<0xff>`` is journaled as
``e\\033[31m\\a\\\\\\"\\'\\377``, and the MESSAGE ends with the architecture line's ``\\n``.

Values are bytes throughout: environ, auxv and hostile comms go to journald unchanged (the
native protocol is length-prefixed for any value containing a newline).
"""

from __future__ import annotations

import os

from coredumpd.context import ContextError, CrashContext
from coredumpd.signals import signal_name

#: ``SD_MESSAGE_COREDUMP`` (``sd-messages.h``): coredumpctl lists entries by this id alone.
MESSAGE_ID_COREDUMP = "fc2e22bc6ee647b6b90729ab34a250b1"
#: LOG_CRIT, as systemd-coredump sends it.
PRIORITY_COREDUMP = 2
#: Ours, not ``systemd-coredump``: coredumpctl does not filter on it, and consumers that trust
#: the identifier (ABRT, DrKonqi) must not mistake another writer for systemd's helper.
SYSLOG_IDENTIFIER = "coredumpd"
#: ``COMM_MAX_LEN`` (``process-util.h``): the buffer ``get_process_comm()`` escapes into.
COMM_MAX_LEN = 128

#: What coredumpctl 252 needs to list an entry: without one of these it aborts on an
#: assertion for every user (fixed upstream by PR #39360), so such an entry is never built.
REQUIRED = ("pid", "uid", "gid", "signal", "comm")
#: Journal fields holding a comm, which systemd escapes.
ESCAPED_FIELDS = frozenset({"COREDUMP_COMM", "COREDUMP_THREAD_NAME"})
#: Fields set from the storage outcome rather than copied from the context.
OUTCOME_FIELDS = frozenset({"COREDUMP_FILENAME", "COREDUMP_TRUNCATED"})
#: Bulky /proc copies, dropped biggest first when the entry must fit ``journal_size_max``.
DROPPABLE_FIELDS = frozenset({
    "COREDUMP_PROC_MAPS", "COREDUMP_PROC_MOUNTINFO", "COREDUMP_OPEN_FDS", "COREDUMP_ENVIRON",
    "COREDUMP_PROC_STATUS", "COREDUMP_PROC_LIMITS", "COREDUMP_PROC_CGROUP",
    "COREDUMP_PROC_AUXV", "COREDUMP_PACKAGE_JSON", "COREDUMP_CMDLINE",
})

Entry = list[tuple[str, bytes]]

_CESCAPES = {
    0x07: "\\a", 0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t",
    0x0B: "\\v", 0x5C: "\\\\", 0x22: '\\"', 0x27: "\\'",
}


def _cescape_byte(byte: int) -> str:
    """systemd's ``cescape_char()``: 1 to 4 ASCII characters."""
    if byte in _CESCAPES:
        return _CESCAPES[byte]
    if byte < 0x20 or byte >= 0x7F:
        return f"\\{byte:03o}"
    return chr(byte)


def cellescape(raw: bytes, size: int = COMM_MAX_LEN) -> str:
    """systemd's ``cellescape(buf, size, s)``: escape ``raw`` (a C string: it ends at the first
    NUL) into at most ``size - 1`` characters; an escape sequence is kept whole or dropped,
    and a cut string ends in ``...``."""
    pieces: list[str] = []
    used = 0
    for byte in raw.split(b"\0", 1)[0]:
        piece = _cescape_byte(byte)
        if used + len(piece) + 1 > size:
            break
        pieces.append(piece)
        used += len(piece)
    else:
        return "".join(pieces)
    # make room for the ellipsis by giving back at most the last four sequences
    for _ in range(4):
        if used + 4 <= size or not pieces:
            break
        used -= len(pieces.pop())
    for ellipsis in ("...", "..", "."):
        if used + len(ellipsis) + 1 <= size:
            return "".join(pieces) + ellipsis
    return "".join(pieces)


def _require(context: CrashContext) -> None:
    missing = [name for name in REQUIRED if getattr(context, name) is None]
    if missing:
        raise ContextError(f"cannot journal crash of pid {context.pid}: missing {', '.join(missing)}")


def build_message(context: CrashContext, backtrace_text: str | None, *, core_stored: bool,
                  core_received: bool | None = None) -> str:
    """The MESSAGE systemd-coredump writes for ``context``.

    :param backtrace_text: :func:`unwinder.format.format_systemd` output (module lines, one
        ``Stack trace of thread N:`` block per thread, the architecture line), or None.
    :param core_stored: the core was kept on disk.
    :param core_received: the whole core was read from the kernel (systemd's ``written``):
        "dumped core." even when it was then discarded (``Storage=none``, over
        ``ExternalSizeMax``). Defaults to ``core_stored``; "terminated abnormally without
        generating a coredump." is for cores never obtained (RLIMIT_CORE, disk full).
    :raises ContextError: pid, uid, gid, signal or comm is unknown.
    """
    _require(context)
    written = core_stored if core_received is None else core_received
    outcome = "dumped core." if written else "terminated abnormally without generating a coredump."
    message = f"Process {context.pid} ({cellescape(context.comm or b'')}) of user {context.uid} {outcome}"
    if backtrace_text:
        message += "\n\n" + backtrace_text
    return message


def _encode(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")  # undecodable symbol bytes come back as-is
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace")


def build_entry(context: CrashContext, backtrace_text: str | None, *, core_stored: bool,
                core_received: bool | None = None, journal_size_max: int | None = None,
                signature: str | None = None) -> Entry:
    """The journal entry for ``context``, as ``(FIELD, value)`` pairs in sending order.

    ``MESSAGE_ID``, ``PRIORITY=2``, ``SYSLOG_IDENTIFIER``, every ``COREDUMP_*`` field the
    context knows (comms escaped as systemd does, everything else byte for byte),
    ``COREDUMP_FILENAME`` only when ``core_stored``, ``COREDUMP_TRUNCATED=1`` when the core was
    cut, the MESSAGE (see :func:`build_message`), then ours: ``COREDUMPD_SIGNATURE``,
    ``COREDUMPD_DOOR`` and ``COREDUMPD_NOTES`` (one note per line) when known.

    :param journal_size_max: upper bound, in bytes, on the entry's total ``FIELD=value``
        size. When it is exceeded the bulky /proc copies (:data:`DROPPABLE_FIELDS`) are
        dropped biggest first and named in ``COREDUMPD_DROPPED``; identity fields and the
        MESSAGE are always sent. None: no bound (journald's own limit is 768 MiB per field).
    :raises ContextError: pid, uid, gid, signal or comm is unknown.
    """
    message = build_message(context, backtrace_text, core_stored=core_stored,
                            core_received=core_received)
    entry: Entry = [
        ("MESSAGE_ID", MESSAGE_ID_COREDUMP.encode()),
        ("PRIORITY", str(PRIORITY_COREDUMP).encode()),
        ("SYSLOG_IDENTIFIER", SYSLOG_IDENTIFIER.encode()),
    ]
    fields = context.journal_fields()
    if "COREDUMP_SIGNAL_NAME" not in fields and context.signal is not None:
        fields["COREDUMP_SIGNAL_NAME"] = signal_name(context.signal).encode()
    for name, value in fields.items():
        if name in OUTCOME_FIELDS:
            continue
        if name in ESCAPED_FIELDS:
            value = cellescape(value).encode()
        entry.append((name, value))
    if core_stored and context.filename:
        entry.append(("COREDUMP_FILENAME", os.fsencode(context.filename)))
    if context.truncated:
        entry.append(("COREDUMP_TRUNCATED", b"1"))
    entry.append(("MESSAGE", _encode(message)))
    if signature:
        entry.append(("COREDUMPD_SIGNATURE", signature.encode()))
    if context.door:
        entry.append(("COREDUMPD_DOOR", context.door.encode()))
    if context.notes:
        entry.append(("COREDUMPD_NOTES", _encode("\n".join(context.notes))))
    if journal_size_max is not None:
        entry = _fit(entry, journal_size_max)
    return entry


def entry_size(entry: Entry) -> int:
    """Bytes of ``FIELD=value`` payload (the native protocol adds a few per field)."""
    return sum(len(name) + 1 + len(value) for name, value in entry)


def _fit(entry: Entry, limit: int) -> Entry:
    size = entry_size(entry)
    if size <= limit:
        return entry
    droppable = sorted((pair for pair in entry if pair[0] in DROPPABLE_FIELDS),
                       key=lambda pair: len(pair[1]), reverse=True)
    dropped: list[str] = []
    for name, value in droppable:
        dropped.append(name)
        size -= len(name) + 1 + len(value)
        if size + len("COREDUMPD_DROPPED=") + len(" ".join(dropped)) <= limit:
            break
    kept = [pair for pair in entry if pair[0] not in dropped]
    if dropped:
        kept.append(("COREDUMPD_DROPPED", " ".join(dropped).encode()))
    return kept
