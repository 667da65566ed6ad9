"""Random-access reading of a core file: the parsed model and memory by virtual address.

Memory semantics, per ``PT_LOAD``:
- ``[p_vaddr, p_vaddr + p_filesz)``: the bytes in the file (a fault if the file was truncated
  before them);
- ``[p_vaddr + p_filesz, p_vaddr + p_memsz)``: zeros when the segment was partly dumped
  (``0 < p_filesz < p_memsz``, as ELF defines), unless ``zero_fill=False``; a fault when the
  segment was not dumped at all (``p_filesz == 0``);
- any other address: a fault (not mapped in the crashed process).

Segments are indexed by address, whatever their order in the file (``core_sort_vma=1``).
"""

from __future__ import annotations

import bisect
import os
import threading
from pathlib import Path
from typing import BinaryIO

from unwinder.core.constants import EHDR64_SIZE, PN_XNUM, PT, SHDR64_SIZE
from unwinder.core.elfstructs import Elf64_Phdr
from unwinder.core.model import CoreFile
from unwinder.core.parse import (
    check_note_segments,
    parse_ehdr,
    parse_extnum_shdr,
    parse_notes,
    parse_phdrs,
    phdr_table_size,
)
from unwinder.errors import CorruptCore, FaultError


class CoreReader:
    """A core file opened for reading.

    :param source: a path, or a binary file object (its ``fileno()`` is used when it has one).
    :param zero_fill: read zeros past ``p_filesz`` of partly dumped segments.
    """

    def __init__(self, source: str | os.PathLike[str] | BinaryIO, *, zero_fill: bool = True) -> None:
        self._lock = threading.Lock()
        self._owned: BinaryIO | None = None
        if isinstance(source, (str, os.PathLike)):
            self._owned = open(Path(source), "rb")  # noqa: SIM115 - closed in close()
            self._file: BinaryIO = self._owned
        else:
            self._file = source
        try:
            self._fd: int | None = self._file.fileno()
        except (AttributeError, OSError, ValueError):
            self._fd = None
        self.zero_fill = zero_fill
        try:
            self.size = self._file_size()
            self.core = self._load()
        except BaseException:
            self.close()
            raise
        loads = sorted((p for p in self.core.phdrs if p.p_type == PT.LOAD and p.p_memsz),
                       key=lambda p: p.p_vaddr)
        self._loads = loads
        self._starts = [p.p_vaddr for p in loads]

    # -- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()
            self._owned = None

    def __enter__(self) -> CoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- raw file access ----------------------------------------------------------------

    def _file_size(self) -> int:
        if self._fd is not None:
            return os.fstat(self._fd).st_size
        with self._lock:
            return self._file.seek(0, os.SEEK_END)

    def pread(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes of the file at ``offset`` (fewer at end of file)."""
        if offset >= self.size or size <= 0:
            return b""
        size = min(size, self.size - offset)
        if self._fd is not None:
            chunks = []
            while size > 0:
                chunk = os.pread(self._fd, min(size, 1 << 30), offset)
                if not chunk:
                    break
                chunks.append(chunk)
                offset += len(chunk)
                size -= len(chunk)
            return b"".join(chunks)
        with self._lock:
            self._file.seek(offset)
            return self._file.read(size)

    def _load(self) -> CoreFile:
        ehdr = parse_ehdr(self.pread(0, EHDR64_SIZE))
        count = ehdr.e_phnum
        if count == PN_XNUM:
            if ehdr.e_shoff == 0 or ehdr.e_shoff + SHDR64_SIZE > self.size:
                raise CorruptCore(40, f"PN_XNUM with no section header inside the file (e_shoff {ehdr.e_shoff:#x})")
            count = parse_extnum_shdr(self.pread(ehdr.e_shoff, SHDR64_SIZE), ehdr.e_shoff)
        size = phdr_table_size(ehdr, count, self.size, "the end of the file")
        phdrs = parse_phdrs(self.pread(ehdr.e_phoff, size), count, ehdr.e_phoff)
        check_note_segments(phdrs, ehdr.e_phoff, self.size, "the end of the file")
        notes = []
        for phdr in phdrs:
            if phdr.p_type == PT.NOTE and phdr.p_filesz:
                notes.extend(parse_notes(self.pread(phdr.p_offset, phdr.p_filesz), phdr.p_offset))
        return CoreFile(ehdr, phdrs, tuple(notes))

    # -- state --------------------------------------------------------------------------

    @property
    def truncated(self) -> bool:
        """True when the file is shorter than the core's layout says it should be."""
        return self.size < self.core.expected_size

    # -- memory -------------------------------------------------------------------------

    def find_segment(self, address: int) -> Elf64_Phdr | None:
        """The ``PT_LOAD`` whose ``[p_vaddr, p_vaddr + p_memsz)`` contains ``address``."""
        index = bisect.bisect_right(self._starts, address) - 1
        if index >= 0:
            phdr = self._loads[index]
            if address < phdr.vaddr_end:
                return phdr
        return None

    def read_partial(self, address: int, size: int) -> tuple[bytes, int | None]:
        """Read up to ``size`` bytes at ``address``.

        :returns: the readable prefix, and the first address that could not be read (None when
            all ``size`` bytes were read).
        """
        out = bytearray()
        while len(out) < size:
            cursor = address + len(out)
            phdr = self.find_segment(cursor)
            if phdr is None:
                return bytes(out), cursor
            want = min(size - len(out), phdr.vaddr_end - cursor)
            rel = cursor - phdr.p_vaddr
            if rel < phdr.p_filesz:
                n = min(want, phdr.p_filesz - rel)
                data = self.pread(phdr.p_offset + rel, n)
                out += data
                if len(data) < n:
                    return bytes(out), cursor + len(data)
            elif phdr.p_filesz and self.zero_fill:
                out += bytes(want)
            else:
                return bytes(out), cursor
        return bytes(out), None

    def read(self, address: int, size: int) -> bytes:
        """Exactly ``size`` bytes at ``address``, or :class:`FaultError` at the first gap."""
        data, fault = self.read_partial(address, size)
        if fault is not None:
            raise FaultError(fault, self.explain_fault(fault))
        return data

    def explain_fault(self, address: int) -> str:
        """Why ``address`` cannot be read from this core, in a few words."""
        phdr = self.find_segment(address)
        if phdr is None:
            return "not mapped in the crashed process"
        rel = address - phdr.p_vaddr
        if rel < phdr.p_filesz:
            return "the core file is truncated before it"
        if phdr.p_filesz == 0:
            return "mapped, but not dumped into the core"
        return "past the dumped part of its mapping"
