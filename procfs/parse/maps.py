"""Memory mappings: the :class:`Mapping` record and the ``/proc/<pid>/maps`` text parser.

A line is ``start-end perms offset major:minor inode`` then, for named mappings, padding to
column 73 (on 64-bit kernels) and the name. The name may contain spaces (even leading ones: the
column rule keeps them), a newline is printed as ``\\012`` (unescaped here), and a deleted file
ends in `` (deleted)`` (split off into :attr:`Mapping.deleted` when the mapping has an inode).
The same record is built from ``PROCMAP_QUERY`` (:mod:`procfs.procmap`), with build-ids.

Speed matters: a process can have 65,000 VMAs (``vm.max_map_count``), and a snapshot parses them
all while the process is stopped. So one regex pass finds every line, its columns are converted
with C-level ``map()`` calls (no per-line Python code unless the line names a mapping), and
:class:`Mapping` is a ``NamedTuple`` (built with ``tuple.__new__``: ~0.3 µs against ~1.5 µs for a
frozen dataclass).
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntFlag
from itertools import compress, repeat
from typing import NamedTuple

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
# One line: start, end, the middle (perms offset major:minor inode), and what follows the inode
# (padding and the name). No ``^``: each match ends with its newline, so the next one starts where
# it ended and the engine never scans inside a line; anything between two matches is a bad line.
# Numbers are bounded by their C types (u64 addresses and offsets, an unsigned long inode), so
# hostile input can neither build huge ints nor hit int()'s 4300-digit limit.
_LINE = re.compile(
    rb"([0-9a-f]{1,16})-([0-9a-f]{1,16}) "
    rb"([r-][w-][x-][ps] [0-9a-f]{1,16} [0-9a-f]{1,8}:[0-9a-f]{1,8} [0-9]{1,20})(?![0-9])"
    rb" ?(.*)\n?"
)
_GROUPS = 4


class Mapping(NamedTuple):
    """One VMA: ``[start, end)`` virtual addresses of the target, ``offset`` into the file in
    bytes, ``path`` the name as bytes (``b""`` for anonymous memory, ``b"[stack]"``, …).
    ``build_id`` comes only from ``PROCMAP_QUERY`` (``None`` when unknown or absent).

    Immutable and hashable; being a tuple it also compares and sorts like one (by ``start``
    first), which the frozen dataclass it replaced did not.
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


def _middle(middle: bytes) -> tuple[Perm, int, int, int, int]:
    """``(perms, offset, major, minor, inode)`` from ``r-xp 00001000 fe:00 1234``."""
    perms, offset, dev, inode = middle.split(b" ")
    major, minor = dev.split(b":")
    return _PERMS[perms], int(offset, 16), int(major, 16), int(minor, 16), int(inode)


def _name(rest: bytes, prefix_len: int, inode: int) -> tuple[bytes, bool]:
    """The name from what follows ``inode`` and one space on a line, and whether it was deleted.

    The kernel pads to column 73 and then prints the name, so spaces up to that column are
    padding and any after it belong to the name; after a prefix longer than the column the name
    starts right after the single separating space.
    """
    name = rest.lstrip(b" ")
    if not name:
        return b"", False
    pad = len(rest) - len(name)
    if pad:
        name = rest[min(pad, max(0, _NAME_COLUMN - 1 - prefix_len)) :]
    if b"\\" in name:
        name = unescape_octal(name)
    return split_deleted(name, inode)


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (restored as it was, also on error).

    Building tens of thousands of tuples that survive starts several full collections, each
    walking the whole heap, for objects that cannot form cycles: a third of the parse time.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_maps(data: bytes) -> tuple[Mapping, ...]:
    """Parse ``maps`` text (whole file; an empty file gives ``()``; blank lines are skipped).

    Each column is converted by a C-level ``map()``; the middle columns repeat a lot (every
    anonymous page of one kind reads ``rw-p 00000000 00:00 0``), so each distinct middle is
    parsed once. Only lines that name a mapping cost Python code of their own.

    :raises ParseError: a non-empty line does not look like a maps line.
    """
    with gc_paused():
        return _parse_maps(data)


def _parse_maps(data: bytes) -> tuple[Mapping, ...]:
    flat = _LINE.split(data)  # [between, start, end, middle, rest, between, start, ...]
    step = _GROUPS + 1
    betweens = flat[0::step]  # b"" between adjacent lines, newlines around blank ones
    if any(betweens) and any(between.strip(b"\n") for between in betweens):
        for line in data.split(b"\n"):
            if line and not _LINE.fullmatch(line):
                raise ParseError("maps", f"bad line {line[:120]!r}")
        raise ParseError("maps", "lines run together")
    middles = flat[3::step]
    if not middles:
        return ()
    known = list(set(middles))
    # a lookup table per column (not a transposition of per-line tuples: zip(*rows) would
    # allocate an iterator per line and wake the garbage collector)
    perms, offsets, majors, minors, inodes = (
        dict(zip(known, column, strict=True)).__getitem__
        for column in zip(*map(_middle, known), strict=True)
    )
    rests = flat[4::step]
    paths = rests.copy()
    deleted = [False] * len(rests)
    for i in compress(range(len(rests)), rests):
        j = step * i
        prefix_len = len(flat[j + 1]) + len(flat[j + 2]) + len(flat[j + 3]) + 2
        paths[i], deleted[i] = _name(rests[i], prefix_len, inodes(middles[i]))
    columns = (
        map(int, flat[1::step], repeat(16)),
        map(int, flat[2::step], repeat(16)),
        *(map(column, middles) for column in (perms, offsets, majors, minors, inodes)),
        paths, deleted, repeat(None),
    )  # fmt: skip
    return tuple(map(tuple.__new__, repeat(Mapping), zip(*columns, strict=False)))
