"""Reading the head of a core from a pipe or socket: header, program headers and notes.

The kernel streams a core in file order: ``Elf64_Ehdr``, the program headers, the notes (so
every thread's registers), zero padding, then the memory. :func:`read_core_head` reads exactly
through the end of the last ``PT_NOTE`` and returns the model together with the bytes it
consumed, so a caller can store ``head`` followed by the rest of the stream unchanged.

With extended numbering (``e_phnum == PN_XNUM``) the real count sits in a section header at
the *end* of the file, out of reach of a stream; the kernel always writes ``PT_NOTE`` first,
right after the table, so the count is ``(notes.p_offset - e_phoff) / sizeof(Elf64_Phdr)``.
"""

from __future__ import annotations

import os
from typing import NamedTuple, Protocol

from unwinder.core.constants import EHDR64_SIZE, PHDR64_SIZE, PN_XNUM, PT
from unwinder.core.elfstructs import Elf64_Phdr
from unwinder.core.model import CoreFile
from unwinder.core.parse import (
    check_note_segments,
    parse_ehdr,
    parse_notes,
    parse_phdrs,
    phdr_table_size,
)
from unwinder.errors import CorruptCore

#: Heads larger than this are refused: NT_FILE is capped at 16 MiB by the kernel and each
#: thread adds ~3.4 KiB of notes, so 64 MiB leaves room for ~15,000 threads.
DEFAULT_MAX_HEAD = 64 << 20


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


class CoreHead(NamedTuple):
    """The parsed head of a core stream and the exact bytes read to get it."""

    core: CoreFile
    head: bytes

    @property
    def truncated_at(self) -> int | None:
        """Where the stream would be truncated if it ended right after the head."""
        return len(self.head) if len(self.head) < self.core.expected_size else None


class _HeadBuffer:
    """Reads a stream sequentially, keeping every byte, and never reads past what is asked."""

    def __init__(self, source: Readable | int, limit: int) -> None:
        self._source = source
        self._limit = limit
        self.data = bytearray()

    def fill_to(self, size: int, what: str) -> None:
        if size > self._limit:
            raise CorruptCore(len(self.data), f"{what} would end at {size:#x}, past the "
                                              f"{self._limit:#x}-byte limit for a core's head")
        while len(self.data) < size:
            want = size - len(self.data)
            if isinstance(self._source, int):
                chunk = os.read(self._source, min(want, 1 << 20))
            else:
                chunk = self._source.read(min(want, 1 << 20))
            if not chunk:
                raise CorruptCore(len(self.data), f"stream ended in the {what} "
                                                  f"({len(self.data)} of {size} bytes)")
            self.data += chunk


def read_core_head(source: Readable | int, *, max_head: int = DEFAULT_MAX_HEAD) -> CoreHead:
    """Read and parse the head of a core from ``source`` (a file object or a raw fd).

    Reads exactly the bytes up to the end of the last ``PT_NOTE`` (or the program-header
    table, if it ends later); nothing of the memory that follows.

    :raises CorruptCore: on malformed data, on a stream that ends inside the head, and on a
        head larger than ``max_head`` bytes.
    """
    buf = _HeadBuffer(source, max_head)
    buf.fill_to(EHDR64_SIZE, "ELF header")
    ehdr = parse_ehdr(buf.data)
    count = ehdr.e_phnum
    if count == PN_XNUM:
        count = _count_from_note_phdr(buf, ehdr.e_phoff)
    size = phdr_table_size(ehdr, count, max_head, "the limit for a core's head")
    buf.fill_to(ehdr.e_phoff + size, "program headers")
    view = memoryview(buf.data)
    phdrs = parse_phdrs(view[ehdr.e_phoff:ehdr.e_phoff + size], count, ehdr.e_phoff)
    view.release()
    check_note_segments(phdrs, ehdr.e_phoff, max_head, "the limit for a core's head")
    head_end = max([ehdr.e_phoff + size] + [p.file_end for p in phdrs if p.p_type == PT.NOTE])
    buf.fill_to(head_end, "notes")
    head = bytes(buf.data)
    notes = []
    for phdr in phdrs:
        if phdr.p_type == PT.NOTE and phdr.p_filesz:
            notes.extend(parse_notes(memoryview(head)[phdr.p_offset:phdr.file_end], phdr.p_offset))
    return CoreHead(CoreFile(ehdr, phdrs, tuple(notes)), head)


def _count_from_note_phdr(buf: _HeadBuffer, phoff: int) -> int:
    buf.fill_to(phoff + PHDR64_SIZE, "first program header")
    first = Elf64_Phdr.unpack_from(buf.data, phoff)
    table = first.p_offset - phoff
    if first.p_type != PT.NOTE or table <= 0 or table % PHDR64_SIZE:
        raise CorruptCore(phoff, "PN_XNUM core whose first program header is not the PT_NOTE "
                                 "right after the table: the segment count is unknowable from a stream")
    count = table // PHDR64_SIZE
    if count < PN_XNUM:
        raise CorruptCore(phoff, f"PN_XNUM core with only {count} program headers")
    return count
