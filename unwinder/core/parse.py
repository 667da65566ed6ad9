"""Pure parsing of a core's container: ELF header, program headers, notes (bytes in).

Shared by the random-access reader (:mod:`unwinder.core.reader`) and the stream reader
(:mod:`unwinder.core.stream`); both do their own I/O and hand the bytes here. Every check
failure is a :class:`~unwinder.errors.CorruptCore` carrying the offset in the core.
"""

from __future__ import annotations

from unwinder.core.constants import (
    EHDR64_SIZE,
    ELF_MAGIC,
    ELFCLASS,
    ELFDATA,
    ET,
    NOTE_ALIGN,
    PHDR64_SIZE,
    PN_XNUM,
    PT,
    SHDR64_SIZE,
)
from unwinder.core.elfstructs import Elf64_Ehdr, Elf64_Nhdr, Elf64_Phdr, Elf64_Shdr, align_up
from unwinder.core.model import Note
from unwinder.errors import CorruptCore

NHDR_SIZE = Elf64_Nhdr.size()


def parse_ehdr(data: bytes | memoryview) -> Elf64_Ehdr:
    """Parse and check the ELF header of a 64-bit little-endian ``ET_CORE`` file."""
    if len(data) < EHDR64_SIZE:
        raise CorruptCore(0, f"ELF header truncated ({len(data)} of {EHDR64_SIZE} bytes)")
    ehdr = Elf64_Ehdr.unpack_from(data)
    if ehdr.e_ident[:4] != ELF_MAGIC:
        raise CorruptCore(0, "not an ELF file (bad magic)")
    if ehdr.ei_class != ELFCLASS.ELF64:
        raise CorruptCore(4, f"ELF class {ehdr.ei_class} is not supported (only ELFCLASS64)")
    if ehdr.ei_data != ELFDATA.LSB:
        raise CorruptCore(5, f"ELF data encoding {ehdr.ei_data} is not supported (only LSB)")
    if ehdr.e_type != ET.CORE:
        raise CorruptCore(16, f"e_type {ehdr.e_type} is not ET_CORE")
    if ehdr.e_phentsize != PHDR64_SIZE:
        raise CorruptCore(54, f"e_phentsize {ehdr.e_phentsize} is not {PHDR64_SIZE}")
    if ehdr.e_phoff < EHDR64_SIZE:
        raise CorruptCore(32, f"e_phoff {ehdr.e_phoff:#x} overlaps the ELF header")
    return ehdr


def parse_extnum_shdr(data: bytes | memoryview, offset: int) -> int:
    """The real program-header count from section header 0 (``e_phnum == PN_XNUM``)."""
    if len(data) < SHDR64_SIZE:
        raise CorruptCore(offset, "extended-numbering section header truncated")
    shdr = Elf64_Shdr.unpack_from(data)
    if shdr.sh_info < PN_XNUM:
        raise CorruptCore(offset, f"e_phnum is PN_XNUM but sh_info holds {shdr.sh_info}")
    return shdr.sh_info


def phdr_table_size(ehdr: Elf64_Ehdr, count: int, limit: int, limit_name: str) -> int:
    """Bytes of the program-header table, checked to end within ``limit`` bytes of the core
    (``limit_name`` says what the limit is, for the message)."""
    size = count * PHDR64_SIZE
    if ehdr.e_phoff + size > limit:
        raise CorruptCore(32, f"{count} program headers at {ehdr.e_phoff:#x} run past "
                              f"{limit_name} ({limit:#x})")
    return size


def parse_phdrs(data: bytes | memoryview, count: int, offset: int) -> tuple[Elf64_Phdr, ...]:
    """Parse ``count`` program headers from ``data`` (which starts at core offset ``offset``)."""
    size = count * PHDR64_SIZE
    if len(data) < size:
        raise CorruptCore(offset, f"program headers truncated ({len(data)} of {size} bytes)")
    phdrs = tuple(Elf64_Phdr.iter_unpack(data[:size]))
    for index, phdr in enumerate(phdrs):
        if phdr.p_filesz > 1 << 62 or phdr.p_offset > 1 << 62 or phdr.p_memsz > 1 << 63:
            raise CorruptCore(offset + index * PHDR64_SIZE, "program header with absurd size or offset")
        if phdr.p_type == PT.LOAD and phdr.p_filesz > phdr.p_memsz:
            raise CorruptCore(offset + index * PHDR64_SIZE,
                              f"PT_LOAD at {phdr.p_vaddr:#x} has p_filesz > p_memsz")
    return phdrs


def check_note_segments(
    phdrs: tuple[Elf64_Phdr, ...], ehdr_phoff: int, limit: int, limit_name: str
) -> None:
    """Every ``PT_NOTE`` must lie within the first ``limit`` bytes of the core."""
    for index, phdr in enumerate(phdrs):
        if phdr.p_type == PT.NOTE and phdr.file_end > limit:
            raise CorruptCore(ehdr_phoff + index * PHDR64_SIZE,
                              f"PT_NOTE [{phdr.p_offset:#x}, {phdr.file_end:#x}) runs past "
                              f"{limit_name} ({limit:#x})")


def parse_notes(data: bytes | memoryview, offset: int) -> list[Note]:
    """Parse the notes of one ``PT_NOTE`` segment; ``data`` starts at core offset ``offset``."""
    notes = []
    pos = 0
    end = len(data)
    while end - pos >= NHDR_SIZE:
        nhdr = Elf64_Nhdr.unpack_from(data, pos)
        name_at = pos + NHDR_SIZE
        desc_at = name_at + align_up(nhdr.n_namesz, NOTE_ALIGN)
        desc_end = desc_at + nhdr.n_descsz
        if desc_end > end:
            raise CorruptCore(offset + pos, f"note (namesz {nhdr.n_namesz}, descsz {nhdr.n_descsz}) "
                                            f"runs past its segment's end at {offset + end:#x}")
        name = bytes(data[name_at:name_at + nhdr.n_namesz])
        if name.endswith(b"\0"):
            name = name[:-1]
        notes.append(Note(name, nhdr.n_type, bytes(data[desc_at:desc_end]), offset + pos))
        pos = align_up(desc_end, NOTE_ALIGN)
    return notes
