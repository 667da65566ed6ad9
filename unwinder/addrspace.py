"""The address space of a crashed process, as the unwinder reads it.

One primary source — a core's dumped segments (:class:`~unwinder.core.CoreReader` with
``zero_fill=False``) or the live process (any object with ``read_partial``) — and, behind it,
the mapped files whose build-id matched what was in memory: text and ``.eh_frame`` are usually
not dumped (``coredump_filter`` 0x33), so they are read from the file at
``NT_FILE offset + (address - start)``.
"""

from __future__ import annotations

import bisect
import os
import struct
from typing import BinaryIO, NamedTuple, Protocol

from unwinder.errors import FaultError


class MemoryReader(Protocol):
    def read_partial(self, address: int, size: int, /) -> tuple[bytes, int | None]:
        """Up to ``size`` bytes at ``address``; the first unreadable address when short."""
        ...


class FileBacking(NamedTuple):
    """``[start, end)`` of the process maps ``file`` from byte ``offset``."""

    start: int
    end: int
    offset: int
    file: BinaryIO


class AddressSpace:
    """Reads memory of one crashed process: the primary source, then verified file backings."""

    def __init__(self, primary: MemoryReader) -> None:
        self.primary = primary
        self._backings: list[FileBacking] = []
        self._starts: list[int] = []

    def add_file_backing(self, backing: FileBacking) -> None:
        index = bisect.bisect_left(self._starts, backing.start)
        self._starts.insert(index, backing.start)
        self._backings.insert(index, backing)

    def _from_file(self, address: int, size: int) -> bytes:
        index = bisect.bisect_right(self._starts, address) - 1
        if index < 0:
            return b""
        backing = self._backings[index]
        if address >= backing.end:
            return b""
        n = min(size, backing.end - address)
        try:
            return os.pread(backing.file.fileno(), n, backing.offset + (address - backing.start))
        except (OSError, ValueError, AttributeError):
            backing.file.seek(backing.offset + (address - backing.start))
            return backing.file.read(n)

    def read_partial(self, address: int, size: int) -> tuple[bytes, int | None]:
        out = bytearray()
        while len(out) < size:
            cursor = address + len(out)
            if cursor >= 1 << 64:
                return bytes(out), cursor & ((1 << 64) - 1)
            data, fault = self.primary.read_partial(cursor, size - len(out))
            out += data
            if fault is None:
                break
            extra = self._from_file(fault, size - len(out))
            if not extra:
                return bytes(out), fault
            out += extra
        return bytes(out), None

    def read(self, address: int, size: int) -> bytes:
        data, fault = self.read_partial(address, size)
        if fault is not None:
            raise FaultError(fault, "not readable in this address space")
        return data

    def primary_read(self, address: int, size: int) -> bytes:
        """Exactly ``size`` bytes from the primary source only (what was really in memory)."""
        data, fault = self.primary.read_partial(address, size)
        if fault is not None:
            raise FaultError(fault, "not in the process image")
        return data

    def read_word(self, address: int) -> int:
        return struct.unpack("<Q", self.read(address, 8))[0]
