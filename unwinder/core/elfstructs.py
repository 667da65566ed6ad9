"""The fixed-size ELF64 records of a core file: ``Elf64_Ehdr``, ``Elf64_Phdr``, ``Elf64_Shdr``
and ``Elf64_Nhdr`` (little endian).

These four are parsed with :mod:`struct` rather than construct: a core can carry tens of
thousands of program headers, and the stream head must parse in a few milliseconds whatever the
process size; construct costs ~20 µs per record. Note *payloads* use construct
(:mod:`unwinder.core.notes`). Field names are the kernel's.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar, NamedTuple, Self


class _Record:
    """Mixin for a NamedTuple laid out by a ``struct`` format, one field per item (each record
    is its fields' NamedTuple under this mixin)."""

    __slots__ = ()
    FORMAT: ClassVar[struct.Struct]

    @classmethod
    def unpack_from(cls, buffer: bytes | memoryview, offset: int = 0) -> Self:
        return cls(*cls.FORMAT.unpack_from(buffer, offset))

    @classmethod
    def iter_unpack(cls, buffer: bytes | memoryview) -> list[Self]:
        return [cls(*values) for values in cls.FORMAT.iter_unpack(buffer)]

    def pack(self) -> bytes:
        return self.FORMAT.pack(*self)  # type: ignore[misc]

    @classmethod
    def size(cls) -> int:
        return cls.FORMAT.size

    def replace(self, **changes: Any) -> Self:
        return self._replace(**changes)  # type: ignore[attr-defined,no-any-return]


class _Elf64_EhdrFields(NamedTuple):
    e_ident: bytes
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


class Elf64_Ehdr(_Record, _Elf64_EhdrFields):  # noqa: N801 - the kernel's name
    __slots__ = ()

    FORMAT = struct.Struct("<16sHHIQQQIHHHHHH")

    @property
    def ei_class(self) -> int:
        return self.e_ident[4]

    @property
    def ei_data(self) -> int:
        return self.e_ident[5]

    @property
    def ei_osabi(self) -> int:
        return self.e_ident[7]


class _Elf64_PhdrFields(NamedTuple):
    p_type: int
    p_flags: int
    p_offset: int
    p_vaddr: int
    p_paddr: int
    p_filesz: int
    p_memsz: int
    p_align: int


class Elf64_Phdr(_Record, _Elf64_PhdrFields):  # noqa: N801
    __slots__ = ()

    FORMAT = struct.Struct("<IIQQQQQQ")

    @property
    def file_end(self) -> int:
        """Offset just past this segment's bytes in the core file."""
        return self.p_offset + self.p_filesz

    @property
    def vaddr_end(self) -> int:
        return self.p_vaddr + self.p_memsz


class _Elf64_ShdrFields(NamedTuple):
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


class Elf64_Shdr(_Record, _Elf64_ShdrFields):  # noqa: N801
    __slots__ = ()

    FORMAT = struct.Struct("<IIQQQQIIQQ")


class _Elf64_NhdrFields(NamedTuple):
    n_namesz: int
    n_descsz: int
    n_type: int


class Elf64_Nhdr(_Record, _Elf64_NhdrFields):  # noqa: N801
    __slots__ = ()

    FORMAT = struct.Struct("<III")


def align_up(value: int, alignment: int) -> int:
    """Round ``value`` up to a multiple of ``alignment`` (a power of two)."""
    return (value + alignment - 1) & ~(alignment - 1)
