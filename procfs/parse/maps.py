"""Memory mappings: the :class:`Mapping` record and the ``/proc/<pid>/maps`` text parser.

A line is ``start-end perms offset major:minor inode`` then, for named mappings, padding to
column 73 (on 64-bit kernels) and the name. The name may contain spaces (even leading ones: the
column rule keeps them), a newline is printed as ``\\012`` (unescaped here), and a deleted file
ends in `` (deleted)`` (split off into :attr:`Mapping.deleted` when the mapping has an inode).
The same record is built from ``PROCMAP_QUERY`` (:mod:`procfs.procmap`), with build-ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntFlag

from procfs.errors import ParseError
from procfs.parse._escape import unescape_octal


class Perm(IntFlag):
    """Mapping permissions; the values are ``PROCMAP_QUERY``'s ``vma_flags`` bits."""

    READ = 1
    WRITE = 2
    EXEC = 4
    SHARED = 8


DELETED_SUFFIX = b" (deleted)"
_NAME_COLUMN = 73  # 25 + 6 * sizeof(void *) - 1 + the space seq_pad() adds
_LINE = re.compile(
    rb"^(([0-9a-f]+)-([0-9a-f]+) ([r-][w-][x-][ps]) ([0-9a-f]+) "
    rb"([0-9a-f]+):([0-9a-f]+) ([0-9]+)) ?( *)(.*)$",
    re.M,
)


@dataclass(frozen=True, slots=True)
class Mapping:
    """One VMA: ``[start, end)`` virtual addresses of the target, ``offset`` into the file in
    bytes, ``path`` the name as bytes (``b""`` for anonymous memory, ``b"[stack]"``, …).
    ``build_id`` comes only from ``PROCMAP_QUERY`` (``None`` when unknown or absent).
    """

    start: int
    end: int
    perms: Perm
    offset: int
    dev_major: int
    dev_minor: int
    inode: int
    path: bytes
    deleted: bool = False
    build_id: bytes | None = None

    @property
    def size(self) -> int:
        """Length in bytes."""
        return self.end - self.start

    @property
    def perms_text(self) -> str:
        """``"r-xp"`` as in the maps file."""
        p = self.perms
        return (
            ("r" if p & Perm.READ else "-")
            + ("w" if p & Perm.WRITE else "-")
            + ("x" if p & Perm.EXEC else "-")
            + ("s" if p & Perm.SHARED else "p")
        )


def _perm_table() -> dict[bytes, Perm]:
    table = {}
    for bits in range(16):
        text = bytes(
            (
                b"r"[0] if bits & Perm.READ else b"-"[0],
                b"w"[0] if bits & Perm.WRITE else b"-"[0],
                b"x"[0] if bits & Perm.EXEC else b"-"[0],
                b"s"[0] if bits & Perm.SHARED else b"p"[0],
            )
        )
        table[text] = Perm(bits)
    return table


_PERMS = _perm_table()


def split_deleted(name: bytes, inode: int) -> tuple[bytes, bool]:
    """``(name without " (deleted)", deleted)``; only file-backed names can be deleted."""
    if inode and name.endswith(DELETED_SUFFIX):
        return name[: -len(DELETED_SUFFIX)], True
    return name, False


def parse_maps(data: bytes) -> tuple[Mapping, ...]:
    """Parse ``maps`` text (whole file; an empty file gives ``()``).

    :raises ParseError: a non-empty line does not look like a maps line.
    """
    out = []
    perms = _PERMS
    for prefix, start, end, perm, off, major, minor, ino, pad, name in _LINE.findall(data):
        inode = int(ino)
        deleted = False
        if name:
            if pad and len(prefix) + 1 + len(pad) > _NAME_COLUMN:
                name = pad[: len(prefix) + 1 + len(pad) - max(_NAME_COLUMN, len(prefix) + 1)] + name
            if b"\\" in name:
                name = unescape_octal(name)
            if inode and name.endswith(DELETED_SUFFIX):
                name, deleted = split_deleted(name, inode)
        out.append(
            Mapping(
                int(start, 16), int(end, 16), perms[perm], int(off, 16),
                int(major, 16), int(minor, 16), inode, name, deleted,
            )  # fmt: skip
        )
    if len(out) != data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1):
        for line in data.split(b"\n"):
            if line and not _LINE.match(line):
                raise ParseError("maps", f"bad line {line[:120]!r}")
    return tuple(out)
