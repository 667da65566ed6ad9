"""Just enough of an ELF image to place it in an address space and check its identity:
load segments and build-id, read from a file (:class:`~unwinder.elffile.ElfFile`: our own
header and program header reading, pyelftools only for what is not ELF64 little-endian) or
from memory (the first page of a mapping, or the vDSO image).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import BinaryIO, NamedTuple

from elftools.common.exceptions import ELFError

from unwinder.core.constants import ELF_MAGIC, ET, PN_XNUM, PT
from unwinder.core.elfstructs import Elf64_Ehdr, Elf64_Phdr
from unwinder.core.parse import parse_notes
from unwinder.elffile import ElfFile
from unwinder.errors import CorruptCore, FaultError, UnwindError

NT_GNU_BUILD_ID = 3
#: a larger PT_NOTE is not searched for a build-id
MAX_NOTE_SEGMENT = 1 << 16
#: Errors a third-party ELF parser may raise on a hostile file (pyelftools has raised each).
ELF_PARSE_ERRORS = (ELFError, struct.error, ValueError, OverflowError, IndexError, KeyError,
                    AttributeError, TypeError, UnicodeDecodeError, AssertionError)


class BadImage(UnwindError):
    """An ELF image (file or memory) could not be understood."""


class LoadSegment(NamedTuple):
    p_offset: int
    p_vaddr: int
    p_filesz: int
    p_memsz: int
    p_flags: int


class ImageLayout(NamedTuple):
    """Where an image's bytes go: its ``e_type``, ``PT_LOAD`` segments and build-id."""

    e_type: int
    loads: tuple[LoadSegment, ...]
    build_id: bytes | None
    #: file offset just past the section header table (0 when there is none)
    sections_end: int = 0

    def vaddrs_of_offset(self, file_offset: int) -> list[int]:
        """The link-time addresses ``file_offset`` may be mapped at: one per segment whose
        page-extended file range holds it (a page can be shared, e.g. the end of ``.rodata``
        and the start of the RELRO data)."""
        out = []
        for seg in self.loads:
            page_start = seg.p_offset & ~0xFFF
            if page_start <= file_offset < seg.p_offset + max(seg.p_filesz, 1):
                out.append(seg.p_vaddr + (file_offset - seg.p_offset))
        return out

    @property
    def image_size(self) -> int:
        """Bytes from the lowest load address to the end of the highest segment."""
        if not self.loads:
            return 0
        low = min(s.p_vaddr for s in self.loads) & ~0xFFF
        return max(s.p_vaddr + s.p_memsz for s in self.loads) - low


def layout_from_memory(read: Callable[[int, int], bytes], base: int) -> ImageLayout:
    """Parse the ELF header, program headers and build-id note of an image mapped at ``base``.

    ``read(address, size)`` raises :class:`FaultError` for unreadable memory.
    :raises BadImage: no ELF image there, or a malformed one.
    """
    try:
        ehdr = Elf64_Ehdr.unpack_from(read(base, 64))
        if ehdr.e_ident[:4] != ELF_MAGIC or ehdr.e_phentsize != 56 or ehdr.e_phnum > 512:
            raise BadImage(f"no ELF image at {base:#x}")
        table = read(base + ehdr.e_phoff, 56 * ehdr.e_phnum)
        phdrs = Elf64_Phdr.iter_unpack(table)
        loads = tuple(LoadSegment(p.p_offset, p.p_vaddr, p.p_filesz, p.p_memsz, p.p_flags)
                      for p in phdrs if p.p_type == PT.LOAD)
        if not loads:
            raise BadImage(f"ELF image at {base:#x} has no PT_LOAD")
        # The header page is mapped from file offset 0: translate note vaddrs through it.
        first = min(loads, key=lambda s: s.p_offset)
        bias = base - (first.p_vaddr - first.p_offset)
        build_id = None
        for p in phdrs:
            if p.p_type == PT.NOTE and 0 < p.p_filesz <= MAX_NOTE_SEGMENT:
                try:
                    data = read(bias + p.p_vaddr, p.p_filesz)
                except FaultError:
                    continue
                build_id = _build_id_from_notes(data) or build_id
        sections_end = ehdr.e_shoff + ehdr.e_shnum * ehdr.e_shentsize if ehdr.e_shoff else 0
        return ImageLayout(ehdr.e_type, loads, build_id, sections_end)
    except (struct.error, CorruptCore) as err:
        raise BadImage(f"malformed ELF image at {base:#x}: {err}") from err


def _build_id_from_notes(data: bytes) -> bytes | None:
    try:
        notes = parse_notes(data, 0)
    except CorruptCore:
        return None
    for note in notes:
        if note.name == b"GNU" and note.n_type == NT_GNU_BUILD_ID and note.desc:
            return note.desc
    return None


def open_elf(stream: BinaryIO) -> ElfFile:
    """An ELF file (its header read, pyelftools' view built when asked), or :class:`BadImage`."""
    try:
        return ElfFile(stream)
    except ELF_PARSE_ERRORS as err:
        raise BadImage(f"not a usable ELF file: {err}") from err


def layout_from_elffile(elf: ElfFile) -> ImageLayout:
    """The layout of an ELF file opened with :func:`open_elf`.

    ELF64 little-endian program headers are unpacked here with ``struct``: pyelftools'
    ``iter_segments`` builds a ``DynamicSegment`` for ``PT_DYNAMIC``, which builds every
    section on the way, parsing the ``.gnu.hash`` tables (half of a warm backtrace of node).
    """
    try:
        header = elf.header
        if elf.elfclass == 64 and elf.little_endian and header.e_phnum != PN_XNUM:
            return _layout_from_phdrs(elf)
        loads = tuple(
            LoadSegment(s["p_offset"], s["p_vaddr"], s["p_filesz"], s["p_memsz"], s["p_flags"])
            for s in elf.iter_segments() if s["p_type"] == "PT_LOAD")
        build_id = None
        for seg in elf.iter_segments():
            if seg["p_type"] != "PT_NOTE":
                continue
            for note in seg.iter_notes():
                if note["n_type"] == "NT_GNU_BUILD_ID":
                    build_id = bytes.fromhex(note["n_desc"])
        return ImageLayout(ET(header.e_type), loads, build_id)
    except ELF_PARSE_ERRORS as err:
        raise BadImage(f"malformed ELF file: {err}") from err


def _layout_from_phdrs(elf: ElfFile) -> ImageLayout:
    header = elf.header
    count = header.e_phnum
    if count and header.e_phentsize != Elf64_Phdr.size():
        raise BadImage(f"program headers of {header.e_phentsize} bytes, ELF64 uses 56")
    table = _read_file(elf, header.e_phoff, count * Elf64_Phdr.size()) if count else b""
    phdrs = Elf64_Phdr.iter_unpack(table)
    loads = tuple(LoadSegment(p.p_offset, p.p_vaddr, p.p_filesz, p.p_memsz, p.p_flags)
                  for p in phdrs if p.p_type == PT.LOAD)
    build_id = None
    for p in phdrs:
        if p.p_type == PT.NOTE and 0 < p.p_filesz <= MAX_NOTE_SEGMENT:
            build_id = _build_id_from_notes(_read_file(elf, p.p_offset, p.p_filesz)) or build_id
    return ImageLayout(ET(header.e_type), loads, build_id)


def _read_file(elf: ElfFile, offset: int, size: int) -> bytes:
    elf.stream.seek(offset)
    data = elf.stream.read(size)
    if len(data) != size:
        raise BadImage(f"ELF file truncated: {len(data)} of {size} bytes at {offset:#x}")
    return data
