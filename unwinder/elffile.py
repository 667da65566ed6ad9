"""An ELF file as the unwinder opens it: the ELF header read by us, the rest by pyelftools.

Our own, on ``struct``: the identification and the header (class, byte order, table
positions, extended numbering) — all that our section, program header and CFI readers
(:mod:`unwinder.symbols.sections`, :mod:`unwinder.elfimage`, :mod:`unwinder.cfi.elfsource`)
ask of a file. Everything else (``iter_sections``, ``get_section_by_name``, the DWARF side) is
pyelftools' :class:`~elftools.elf.elffile.ELFFile` over the same stream, built on first use:
importing it costs ~20 ms, which a backtrace answered by the symbol cache does not pay.

Header fields are numbers, as in the file (pyelftools turns ``e_type`` into ``"ET_DYN"``).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

from elftools.common.exceptions import ELFError

if TYPE_CHECKING:
    from elftools.elf.elffile import ELFFile

SHN_XINDEX = 0xFFFF


class ElfHeader(NamedTuple):
    """``Elf32_Ehdr``/``Elf64_Ehdr`` after ``e_ident``, the kernel's field names."""

    e_type: int
    e_machine: int
    e_version: int
    e_entry: int
    e_phoff: int
    e_shoff: int
    e_flags: int
    e_ehsize: int
    e_phentsize: int
    e_phnum: int
    e_shentsize: int
    e_shnum: int
    e_shstrndx: int


class SectionHeader(NamedTuple):
    """One ``Elf32_Shdr``/``Elf64_Shdr``, the kernel's field names; ``sh_type`` stays a number."""

    sh_name: int
    sh_type: int
    sh_flags: int
    sh_addr: int
    sh_offset: int
    sh_size: int
    sh_link: int
    sh_info: int
    sh_addralign: int
    sh_entsize: int


#: (ELF class, little endian) -> header layout after ``e_ident``, in ElfHeader's field order
_EHDR = {
    (64, True): struct.Struct("<HHIQQQIHHHHHH"), (64, False): struct.Struct(">HHIQQQIHHHHHH"),
    (32, True): struct.Struct("<HHIIIIIHHHHHH"), (32, False): struct.Struct(">HHIIIIIHHHHHH"),
}
#: (ELF class, little endian) -> section header layout, in SectionHeader's field order
SHDR = {
    (64, True): struct.Struct("<IIQQQQIIQQ"), (64, False): struct.Struct(">IIQQQQIIQQ"),
    (32, True): struct.Struct("<IIIIIIIIII"), (32, False): struct.Struct(">IIIIIIIIII"),
}
_CLASSES = {1: 32, 2: 64}
_ENCODINGS = {1: True, 2: False}


class ElfFile:
    """One ELF file over a seekable binary ``stream`` (pyelftools' interface).

    :ivar elfclass: 32 or 64.
    :ivar little_endian: the byte order of the file.
    :ivar header: the ELF header.
    :raises ELFError: no ELF header (bad magic, class or encoding, or truncated), as pyelftools.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        stream.seek(0)
        ident = stream.read(16)
        if ident[:4] != b"\x7fELF":
            raise ELFError("Magic number does not match")
        if ident[4:5] == b"" or ident[4] not in _CLASSES:
            raise ELFError(f"Invalid EI_CLASS {ident[4:5]!r}")
        if ident[5:6] == b"" or ident[5] not in _ENCODINGS:
            raise ELFError(f"Invalid EI_DATA {ident[5:6]!r}")
        self.elfclass = _CLASSES[ident[4]]
        self.little_endian = _ENCODINGS[ident[5]]
        layout = _EHDR[(self.elfclass, self.little_endian)]
        raw = stream.read(layout.size)
        if len(ident) != 16 or len(raw) != layout.size:
            raise ELFError("ELF header truncated")
        self.header = ElfHeader._make(layout.unpack(raw))
        self._pyelftools: ELFFile | None = None

    def __getitem__(self, name: str) -> int:
        return getattr(self.header, name)  # type: ignore[no-any-return]

    def num_sections(self) -> int:
        """Entries in the section header table (``e_shnum``, or section 0's ``sh_size``)."""
        if self.header.e_shoff == 0:
            return 0
        if self.header.e_shnum == 0:
            return self._section_zero().sh_size
        return self.header.e_shnum

    def get_shstrndx(self) -> int:
        """Index of the section name table (``e_shstrndx``, or section 0's ``sh_link``)."""
        if self.header.e_shstrndx != SHN_XINDEX:
            return self.header.e_shstrndx
        return self._section_zero().sh_link

    def _section_zero(self) -> SectionHeader:
        layout = SHDR[(self.elfclass, self.little_endian)]
        if self.header.e_shentsize < layout.size:
            raise ELFError(f"Too small e_shentsize: {self.header.e_shentsize}")
        self.stream.seek(self.header.e_shoff)
        raw = self.stream.read(layout.size)
        if len(raw) != layout.size:
            raise ELFError("section header 0 truncated")
        return SectionHeader._make(layout.unpack(raw))

    @property
    def pyelftools(self) -> ELFFile:
        """pyelftools' view of the same stream, built (and pyelftools imported) on first use."""
        if self._pyelftools is None:
            from elftools.elf.elffile import ELFFile

            self._pyelftools = ELFFile(self.stream)
        return self._pyelftools

    def __getattr__(self, name: str) -> Any:
        # only reached for what this class does not define: pyelftools' API
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.pyelftools, name)
