"""Open file descriptors: ``fd/N`` link targets, ``fdinfo/N`` text, and systemd's
``COREDUMP_OPEN_FDS`` layout joining them.

``COREDUMP_OPEN_FDS`` (``compose_open_fds()`` in systemd's coredump sources): per fd, in
``readdir`` order, the line ``N:target``, then every line of ``fdinfo/N``, each ending in a
newline; a blank line separates one fd from the next. A target containing a newline makes the
text ambiguous; :func:`parse_open_fds` then splits as systemd's reader would.
"""

from __future__ import annotations

from dataclasses import dataclass

from procfs.errors import ParseError


@dataclass(frozen=True)
class FdInfo:
    """``fdinfo/N``: ``pos`` (bytes), ``flags`` (the octal ``O_*`` bits, as an int), ``mnt_id``,
    ``ino``; ``raw`` is the file as read (the journal copy), ``lines`` every ``key: value``."""

    pos: int | None
    flags: int | None
    mnt_id: int | None
    ino: int | None
    lines: tuple[tuple[bytes, bytes], ...]
    raw: bytes


@dataclass(frozen=True)
class OpenFd:
    """One descriptor: its number, the raw link target, and its fdinfo when it could be read."""

    fd: int
    target: bytes
    info: FdInfo | None


def parse_fdinfo(data: bytes) -> FdInfo:
    """Parse ``fdinfo/N``; type-specific lines (``eventfd-count``, ``tfd``, …) stay in ``lines``."""
    lines = []
    table: dict[bytes, bytes] = {}
    for line in data.split(b"\n"):
        key, sep, value = line.partition(b":")
        if not sep:
            continue
        value = value.strip()
        lines.append((key, value))
        table.setdefault(key, value)

    def number(key: bytes, base: int) -> int | None:
        raw = table.get(key)
        if raw is None:
            return None
        try:
            return int(raw, base)
        except ValueError as err:
            raise ParseError("fdinfo", f"bad {key.decode()} value {raw!r}") from err

    return FdInfo(
        pos=number(b"pos", 10),
        flags=number(b"flags", 8),
        mnt_id=number(b"mnt_id", 10),
        ino=number(b"ino", 10),
        lines=tuple(lines),
        raw=data,
    )


def open_fds_to_text(fds: tuple[OpenFd, ...] | list[OpenFd]) -> bytes:
    """The ``COREDUMP_OPEN_FDS`` value for ``fds`` (systemd's exact layout)."""
    out = bytearray()
    for index, fd in enumerate(fds):
        if index:
            out += b"\n"
        out += b"%d:%s\n" % (fd.fd, fd.target)
        if fd.info is not None:
            for line in fd.info.raw.split(b"\n"):
                if line:
                    out += line + b"\n"
    return bytes(out)


def parse_open_fds(text: bytes) -> tuple[OpenFd, ...]:
    """Split a ``COREDUMP_OPEN_FDS`` value back into descriptors (fdinfo re-parsed)."""
    fds = []
    for block in text.split(b"\n\n"):
        if not block.strip(b"\n"):
            continue
        head, _, rest = block.strip(b"\n").partition(b"\n")
        number, sep, target = head.partition(b":")
        try:
            fd = int(number)
        except ValueError as err:
            raise ParseError("COREDUMP_OPEN_FDS", f"bad fd header {head[:80]!r}") from err
        if not sep:
            raise ParseError("COREDUMP_OPEN_FDS", f"bad fd header {head[:80]!r}")
        info = parse_fdinfo(rest + b"\n") if rest else None
        fds.append(OpenFd(fd, target, info))
    return tuple(fds)
