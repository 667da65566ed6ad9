"""Section headers and section bytes of an ELF file, decompressed (SHF_COMPRESSED zlib and
zstd, ``.zdebug_*``): one reader for the symboliser and the CFI reader, and one parsed header
table per open file, which they share.

Our own, on ``struct``: the section header table is read in one piece (pyelftools parses each
header through construct and builds every section object, ``.gnu.hash`` tables included, on the
first ``get_section_by_name``), and reading and decompression (:mod:`unwinder.elfcompress`)
are ours because pyelftools 0.33 raises on ``ELFCOMPRESS_ZSTD`` (binutils >= 2.40
``--compress-debug-sections=zstd``) and decompresses again on every ``data()`` call. The ELF
header (``e_shoff``, extended numbering) comes from :class:`~unwinder.elffile.ElfFile` (ours)
or pyelftools' ``ELFFile``. The declared size is checked and capped so a corrupt header
cannot ask for gigabytes. Every failure is a :class:`~unwinder.errors.SectionError`.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from unwinder.elfcompress import SHF_COMPRESSED, decompress_section, decompress_zdebug
from unwinder.elffile import SHDR, SectionHeader
from unwinder.elfimage import ELF_PARSE_ERRORS
from unwinder.errors import SectionError

if TYPE_CHECKING:
    from elftools.elf.elffile import ELFFile

#: no section is read beyond this many bytes (inflating has its own cap: elfcompress)
MAX_SECTION_SIZE = 1 << 30

SHT_NOBITS = 8

#: (headers in table order, section name -> header), per open file
_HEADERS: weakref.WeakKeyDictionary[ELFFile, tuple[tuple[SectionHeader, ...], dict[str, SectionHeader]]] = \
    weakref.WeakKeyDictionary()


def section_header(elffile: ELFFile, name: str) -> SectionHeader | None:
    """The header of section ``name``, or ``None``. The last section of a name wins, and names
    are decoded as latin-1, as in pyelftools.

    :raises SectionError: the section header table or its name table is unreadable.
    """
    return _section_table(elffile, name)[1].get(name)


def section_headers(elffile: ELFFile) -> tuple[SectionHeader, ...]:
    """Every section header, in table order (named or not).

    :raises SectionError: the section header table or its name table is unreadable.
    """
    return _section_table(elffile, "all")[0]


def _section_table(elffile: ELFFile, what: str) -> tuple[tuple[SectionHeader, ...], dict[str, SectionHeader]]:
    table = _HEADERS.get(elffile)
    if table is None:
        try:
            table = _HEADERS[elffile] = _read_headers(elffile)
        except ELF_PARSE_ERRORS as err:  # the ELF header's own fields, from either reader
            raise SectionError(f"section headers ({what}): {type(err).__name__}: {err}") from err
    return table


def _read_headers(elffile: ELFFile) -> tuple[tuple[SectionHeader, ...], dict[str, SectionHeader]]:
    count = elffile.num_sections()
    if not count or not elffile["e_shoff"]:  # e_shoff 0: no table, whatever e_shnum says
        return (), {}
    layout = SHDR[(elffile.elfclass, elffile.little_endian)]
    entsize = elffile["e_shentsize"]
    if entsize < layout.size:
        raise SectionError(f"section headers of {entsize} bytes, smaller than {layout.size}")
    table = read_raw(elffile, elffile["e_shoff"], (count - 1) * entsize + layout.size,
                     "section header table")
    headers = [SectionHeader._make(layout.unpack_from(table, i * entsize))
               for i in range(count)]
    strtab = headers[elffile.get_shstrndx()]
    names = read_raw(elffile, strtab.sh_offset, strtab.sh_size, "section name table")
    out = {}
    for header in headers:
        end = names.find(b"\0", header.sh_name)
        if end >= 0:  # a name outside its table: the section cannot be asked for
            out[names[header.sh_name:end].decode("latin-1")] = header
    return tuple(headers), out


def read_raw(elffile: ELFFile, offset: int, size: int, what: str) -> bytes:
    """``size`` bytes at file ``offset``; short reads are errors."""
    if size > MAX_SECTION_SIZE or offset < 0 or size < 0:
        raise SectionError(f"{what}: implausible extent {offset:#x}+{size:#x}")
    stream = elffile.stream
    stream.seek(offset)
    data = stream.read(size)
    if len(data) != size:
        raise SectionError(f"{what}: truncated ({len(data)} of {size} bytes at {offset:#x})")
    return data


def read_section(elffile: ELFFile, name: str) -> bytes | None:
    """Contents of section ``name`` (or ``.zdebug_*`` for ``.debug_*``), decompressed.

    ``None`` when the file has no such section or it occupies no file space (NOBITS, as
    ``.text`` in separate debug files).
    """
    header = section_header(elffile, name)
    if header is None and name.startswith(".debug_"):
        zname = ".z" + name[1:]
        header = section_header(elffile, zname)
        if header is not None:
            return decompress_zdebug(read_raw(elffile, header.sh_offset, header.sh_size, zname),
                                     name=zname)
    if header is None or header.sh_type == SHT_NOBITS:
        return None
    data = read_raw(elffile, header.sh_offset, header.sh_size, name)
    if header.sh_flags & SHF_COMPRESSED:
        return decompress_section(data, elfclass=elffile.elfclass,
                                  big_endian=not elffile.little_endian, name=name)
    return data
