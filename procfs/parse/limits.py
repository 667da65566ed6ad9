"""``/proc/<pid>/limits``: a fixed-width table, one row per ``RLIMIT_*``.

The kernel prints ``%-25s %-20s %-20s %-10s``; names contain spaces, so the columns are cut at
the positions of the header's ``Soft Limit``/``Hard Limit``/``Units`` titles.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from procfs.errors import ParseError


class Rlimit(IntEnum):
    """``RLIMIT_*`` resource numbers (asm-generic; the same on x86_64 and aarch64)."""

    CPU = 0
    FSIZE = 1
    DATA = 2
    STACK = 3
    CORE = 4
    RSS = 5
    NPROC = 6
    NOFILE = 7
    MEMLOCK = 8
    AS = 9
    LOCKS = 10
    SIGPENDING = 11
    MSGQUEUE = 12
    NICE = 13
    RTPRIO = 14
    RTTIME = 15


# Row titles as fs/proc/base.c prints them.
ROW_NAMES: dict[bytes, Rlimit] = {
    b"Max cpu time": Rlimit.CPU,
    b"Max file size": Rlimit.FSIZE,
    b"Max data size": Rlimit.DATA,
    b"Max stack size": Rlimit.STACK,
    b"Max core file size": Rlimit.CORE,
    b"Max resident set": Rlimit.RSS,
    b"Max processes": Rlimit.NPROC,
    b"Max open files": Rlimit.NOFILE,
    b"Max locked memory": Rlimit.MEMLOCK,
    b"Max address space": Rlimit.AS,
    b"Max file locks": Rlimit.LOCKS,
    b"Max pending signals": Rlimit.SIGPENDING,
    b"Max msgqueue size": Rlimit.MSGQUEUE,
    b"Max nice priority": Rlimit.NICE,
    b"Max realtime priority": Rlimit.RTPRIO,
    b"Max realtime timeout": Rlimit.RTTIME,
}


@dataclass(frozen=True)
class Limit:
    """One row: ``soft``/``hard`` in ``unit`` (``None`` = unlimited); ``resource`` when known."""

    name: bytes
    resource: Rlimit | None
    soft: int | None
    hard: int | None
    unit: bytes


@dataclass(frozen=True)
class Limits:
    """All rows of ``limits``, in file order."""

    rows: tuple[Limit, ...]

    def find(self, resource: Rlimit) -> Limit | None:
        """The row of ``resource``, or ``None`` if the file did not list it."""
        for row in self.rows:
            if row.resource == resource:
                return row
        return None


def _value(raw: bytes) -> int | None:
    if raw == b"unlimited":
        return None
    try:
        return int(raw)
    except ValueError as err:
        raise ParseError("limits", f"bad value {raw!r}") from err


def parse_limits(data: bytes) -> Limits:
    """Parse ``limits`` (header line first)."""
    lines = data.split(b"\n")
    header = lines[0]
    soft_at, hard_at, unit_at = (header.find(t) for t in (b"Soft Limit", b"Hard Limit", b"Units"))
    if not header.startswith(b"Limit") or min(soft_at, hard_at, unit_at) < 0:
        raise ParseError("limits", "missing header")
    rows = []
    for line in lines[1:]:
        if not line.strip():
            continue
        name = line[:soft_at].strip()
        soft = line[soft_at:hard_at].strip()
        hard = line[hard_at:unit_at].strip()
        if not name or not soft or not hard:
            raise ParseError("limits", f"short row {line!r}")
        rows.append(
            Limit(name, ROW_NAMES.get(name), _value(soft), _value(hard), line[unit_at:].strip())
        )
    return Limits(tuple(rows))
