"""Find the CFI sections of an ELF image: ``.eh_frame_hdr``, ``.eh_frame``, ``.debug_frame``.

Only the ELF header (class, byte order, table positions) comes from the file object
(:class:`~unwinder.elffile.ElfFile`, or pyelftools' ``ELFFile``); the bytes are read straight
from its stream. ``.eh_frame_hdr`` is located through ``PT_GNU_EH_FRAME``
and ``.eh_frame`` through the hdr's ``eh_frame_ptr``, so section-less images (the vDSO read
from memory, packed binaries) work; section headers are a fallback and only bound sizes.
Sections are found by name, never by type (lld marks ``.eh_frame`` ``SHT_X86_64_UNWIND``).
"""

from __future__ import annotations

import os
import struct
from typing import Any, NamedTuple

from unwinder.cfi.hdr import EhFrameHdr, parse_eh_frame_hdr
from unwinder.cfi.section import FrameSection
from unwinder.elfcompress import SHF_COMPRESSED, decompress_section, decompress_zdebug
from unwinder.elffile import SectionHeader
from unwinder.elfimage import ELF_PARSE_ERRORS
from unwinder.elfsections import MAX_SECTION_SIZE, SHT_NOBITS, section_header
from unwinder.errors import CfiError, SectionError
from unwinder.log import LazyLogger

log = LazyLogger(__name__)

#: what reading a corrupt file's headers raises (the parsers' errors, and short or failed reads)
_ELF_ERRORS = (*ELF_PARSE_ERRORS, OSError)


class FrameSections(NamedTuple):
    """The CFI sections of one module, each None when absent or unreadable."""

    eh_frame_hdr: FrameSection | None
    hdr: EhFrameHdr | None
    eh_frame: FrameSection | None
    debug_frame: FrameSection | None


def load_frame_sections(elffile: Any, *, debug_elffile: Any = None) -> FrameSections:
    """Read the CFI sections of ``elffile`` (and ``.debug_frame`` of ``debug_elffile``).

    Each section is optional: a broken one is logged and left out.
    """
    try:
        image = _Image(elffile)
    except _ELF_ERRORS as err:
        raise CfiError(f"cannot read ELF headers: {err!r}") from err
    hdr_section, hdr, eh_frame = None, None, None
    try:
        hdr_section, hdr = image.eh_frame_hdr()
    except (CfiError, *_ELF_ERRORS) as err:
        log.debug("failed to read .eh_frame_hdr, ignoring: %s", err)
    try:
        eh_frame = image.eh_frame(hdr)
    except (CfiError, *_ELF_ERRORS) as err:
        log.debug("failed to read .eh_frame, ignoring: %s", err)
    debug_frame = None
    for source in (image, None if debug_elffile is None else debug_elffile):
        if source is None or debug_frame is not None:
            continue
        try:
            debug_frame = (source if isinstance(source, _Image) else _Image(source)).debug_frame()
        except (CfiError, *_ELF_ERRORS) as err:
            log.debug("failed to read .debug_frame, ignoring: %s", err)
    return FrameSections(hdr_section, hdr, eh_frame, debug_frame)


class _ProgramHeader(NamedTuple):
    p_type: int
    p_offset: int
    p_vaddr: int
    p_filesz: int


_PT_LOAD = 1
_PT_GNU_EH_FRAME = 0x6474E550


class _Image:
    """Byte reads from an ELF image, by file offset or by link-time address.

    Program headers are unpacked here with ``struct``, section headers by
    :mod:`unwinder.elfsections` (the symboliser's reader: one parsed table per file), rather
    than through ``iter_segments``/``get_section_by_name``: pyelftools builds every segment
    and section object on the way, parsing whole dynamic symbol hash tables (95% of the time
    to open libLLVM). Only the ELF header comes from the file object.
    """

    def __init__(self, elffile: Any) -> None:
        self.elf = elffile
        self.stream = elffile.stream
        self.address_size = elffile.elfclass // 8
        self.big_endian = not elffile.little_endian
        self.stream.seek(0, os.SEEK_END)
        self.stream_size = self.stream.tell()
        self.segments = self._program_headers()
        self.loads = [s for s in self.segments if s.p_type == _PT_LOAD]

    def _program_headers(self) -> list[_ProgramHeader]:
        header = self.elf.header
        endian = ">" if self.big_endian else "<"
        if self.address_size == 8:  # p_type p_flags p_offset p_vaddr p_paddr p_filesz ...
            fmt, size, order = endian + "IIQQQQQQ", 56, (0, 2, 3, 5)
        else:  # p_type p_offset p_vaddr p_paddr p_filesz p_memsz p_flags p_align
            fmt, size, order = endian + "IIIIIIII", 32, (0, 1, 2, 4)
        count, entsize = header.e_phnum, header.e_phentsize
        if not count or not header.e_phoff:
            return []
        if entsize < size:
            raise CfiError("implausible program header table")
        raw = self.read(header.e_phoff, count * entsize)
        result = []
        for i in range(min(count, len(raw) // entsize)):
            fields = struct.unpack_from(fmt, raw, i * entsize)
            result.append(_ProgramHeader(*(fields[j] for j in order)))
        return result

    def read(self, offset: int, size: int) -> bytes:
        if offset < 0 or size < 0 or offset >= self.stream_size:
            raise CfiError(f"file range {offset:#x}+{size:#x} outside the image")
        size = min(size, self.stream_size - offset, MAX_SECTION_SIZE)
        self.stream.seek(offset)
        return self.stream.read(size)

    def section_header(self, name: str) -> SectionHeader | None:
        """The header of section ``name`` when it has bytes in the file; ``None`` too when the
        section header table is unreadable (the program headers may still lead to the CFI)."""
        try:
            header = section_header(self.elf, name)
        except SectionError as err:
            log.debug("section headers unreadable, ignoring them: %s", err)
            return None
        if header is None or header.sh_type == SHT_NOBITS:
            return None
        return header

    def file_range_of(self, address: int) -> tuple[int, int]:
        """File offset of link-time ``address`` and the file bytes after it in its PT_LOAD."""
        for seg in self.loads:
            if seg.p_vaddr <= address < seg.p_vaddr + seg.p_filesz:
                delta = address - seg.p_vaddr
                return seg.p_offset + delta, seg.p_filesz - delta
        raise CfiError(f"address {address:#x} is in no PT_LOAD")

    def frame_section(self, name: str, data: bytes, address: int, *, is_eh: bool,
                      data_base: int = 0) -> FrameSection:
        return FrameSection(name, data, address, is_eh=is_eh, address_size=self.address_size,
                            big_endian=self.big_endian, data_base=data_base)

    def eh_frame_hdr(self) -> tuple[FrameSection | None, EhFrameHdr | None]:
        for seg in self.segments:
            if seg.p_type == _PT_GNU_EH_FRAME:
                data = self.read(seg.p_offset, seg.p_filesz)
                address = seg.p_vaddr
                break
        else:
            header = self.section_header(".eh_frame_hdr")
            if header is None:
                return None, None
            data = self.read(header.sh_offset, header.sh_size)
            address = header.sh_addr
        section = self.frame_section(".eh_frame_hdr", data, address, is_eh=True,
                                     data_base=address)
        return section, parse_eh_frame_hdr(section)

    def eh_frame(self, hdr: EhFrameHdr | None) -> FrameSection | None:
        header = self.section_header(".eh_frame")
        if hdr is not None:
            address = hdr.eh_frame_address
            if header is not None and header.sh_addr == address:
                data = self.read(header.sh_offset, header.sh_size)
            else:
                offset, size = self.file_range_of(address)
                data = self.read(offset, size)
        elif header is not None:
            address = header.sh_addr
            data = self.read(header.sh_offset, header.sh_size)
        else:
            return None
        return self.frame_section(".eh_frame", data, address, is_eh=True)

    def debug_frame(self) -> FrameSection | None:
        header = self.section_header(".debug_frame")
        try:
            if header is not None:
                data = self.read(header.sh_offset, header.sh_size)
                if header.sh_flags & SHF_COMPRESSED:
                    data = decompress_section(data, elfclass=self.address_size * 8,
                                              big_endian=self.big_endian, name=".debug_frame")
            else:
                header = self.section_header(".zdebug_frame")
                if header is None:
                    return None
                data = decompress_zdebug(self.read(header.sh_offset, header.sh_size),
                                         name=".zdebug_frame")
        except SectionError as err:
            raise CfiError(str(err)) from err
        return self.frame_section(".debug_frame", data, 0, is_eh=False)
