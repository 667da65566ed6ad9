"""Sending a crash's entry to journald (the entry itself is built in
:mod:`coredumpd.journal_entry`, re-exported here).

python-systemd's ``journal.sendv()`` hands ``b"FIELD=value"`` items to libsystemd's
``sd_journal_sendv()`` unchanged (bytes as-is, str as UTF-8, lengths kept: NULs survive);
libsystemd switches a value containing ``\\n`` to the native protocol's length-prefixed form
and passes entries too big for one datagram through a sealed memfd. It does not tell a
missing journald from a working one: ``sendmsg()`` failing with ENOENT is reported as success
("fail silently if the journal is not available", ``journal-send.c``); only ECONNREFUSED and
the like raise. So :func:`send_entry` first checks that something listens on the socket.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable
from pathlib import Path

from coredumpd.journal_entry import (
    MESSAGE_ID_COREDUMP,
    SYSLOG_IDENTIFIER,
    Entry,
    build_entry,
    build_message,
    cellescape,
)

__all__ = [
    "JOURNAL_SOCKET", "MESSAGE_ID_COREDUMP", "SYSLOG_IDENTIFIER", "Entry", "build_entry",
    "build_message", "cellescape", "journald_unreachable_reason", "send_entry",
]

log = logging.getLogger(__name__)

#: journald's native socket; libsystemd's sender has it compiled in.
JOURNAL_SOCKET = Path("/run/systemd/journal/socket")


def journald_unreachable_reason(path: Path | None = None) -> str | None:
    """Why nothing would receive an entry sent to ``path`` (default :data:`JOURNAL_SOCKET`)
    now, or None when journald listens (a datagram ``connect()``: ENOENT without the socket,
    ECONNREFUSED when it is stale)."""
    path = JOURNAL_SOCKET if path is None else path
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(str(path))
    except OSError as err:
        return f"{path}: {err.strerror or err}"
    finally:
        sock.close()
    return None


def send_entry(entry: Iterable[tuple[str, bytes]]) -> bool:
    """Send ``entry`` (from :func:`build_entry`) to journald.

    :returns: True when journald took it; False, after logging one line, when journald is
        unreachable or refused it. Never raises: the catalog still has the crash.
    """
    pairs = list(entry)
    items = [name.encode() + b"=" + value for name, value in pairs]
    pid = next((value.decode(errors="replace") for name, value in pairs
                if name == "COREDUMP_PID"), "?")
    reason = journald_unreachable_reason()
    if reason is None:
        try:
            from systemd import journal
        except ImportError as err:
            reason = f"python-systemd is missing: {err}"
        else:
            try:
                journal.sendv(*items)
                return True
            except (OSError, ValueError, TypeError) as err:
                reason = str(err)
    log.warning("failed to send the journal entry for pid %s, ignoring: %s", pid, reason)
    return False
