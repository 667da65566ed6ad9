"""Writing a core file: the laid-out headers and notes, then each segment's memory.

Memory comes from any object with ``read(address, size) -> bytes`` returning exactly ``size``
bytes (a process reader that zero-fills what it cannot read, or a :class:`CoreReader`). On a
seekable output, all-zero blocks are skipped with ``lseek`` so the file stays sparse, as the
kernel does in file mode; on a pipe they are written as zeros, as the kernel does in pipe mode.
"""

from __future__ import annotations

import os
from typing import BinaryIO, Protocol

from unwinder.core.layout import build_head, extnum_shdr
from unwinder.core.model import CoreFile

CHUNK = 1 << 20
BLOCK = 4096
_ZERO_BLOCK = bytes(BLOCK)


class MemorySource(Protocol):
    def read(self, address: int, size: int, /) -> bytes: ...


def write_core(out: BinaryIO, core: CoreFile, memory: MemorySource, *, sparse: bool = True) -> int:
    """Write ``core`` (as laid out by :func:`~unwinder.core.layout.layout_core`) to ``out``.

    :returns: the size of the written core in bytes.
    """
    seekable = sparse and _seekable(out)
    writer = _SparseWriter(out, seekable)
    writer.write(build_head(core))
    for phdr in sorted(core.phdrs[1:], key=lambda p: p.p_offset):
        if not phdr.p_filesz:
            continue
        writer.skip_to(phdr.p_offset)
        done = 0
        while done < phdr.p_filesz:
            n = min(CHUNK, phdr.p_filesz - done)
            data = memory.read(phdr.p_vaddr + done, n)
            if len(data) != n:
                raise ValueError(f"memory source returned {len(data)} of {n} bytes at "
                                 f"{phdr.p_vaddr + done:#x}")
            writer.write(data)
            done += n
    shdr = extnum_shdr(core)
    if shdr is not None:
        writer.skip_to(core.ehdr.e_shoff)
        writer.write(shdr.pack())
    writer.finish(core.expected_size)
    return writer.position


def _seekable(out: BinaryIO) -> bool:
    try:
        return out.seekable()
    except (AttributeError, OSError, ValueError):
        return False


class _SparseWriter:
    def __init__(self, out: BinaryIO, seekable: bool) -> None:
        self.out = out
        self.seekable = seekable
        self.position = 0
        self._base = out.tell() if seekable else 0

    def skip_to(self, offset: int) -> None:
        if offset < self.position:
            raise ValueError(f"segments overlap in the file at {offset:#x}")
        self.write(bytes(offset - self.position))

    def write(self, data: bytes) -> None:
        if not self.seekable:
            self.out.write(data)
            self.position += len(data)
            return
        view = memoryview(data)
        start = 0
        for at in range(0, len(view), BLOCK):
            block = view[at:at + BLOCK]
            if block == _ZERO_BLOCK[:len(block)]:
                if start < at:
                    self.out.write(view[start:at])
                start = at + len(block)
                self.out.seek(self._base + self.position + start, os.SEEK_SET)
        if start < len(view):
            self.out.write(view[start:])
        self.position += len(view)
        self.out.seek(self._base + self.position, os.SEEK_SET)

    def finish(self, size: int) -> None:
        if self.position < size:
            self.write(bytes(size - self.position))
        if self.seekable:
            self.out.truncate(self._base + self.position)
        self.out.flush()
