"""Which file is which: the GNU build-id note and the ``.gnu_debuglink`` section.

Both are parsed with ``struct`` from section bytes, found by our own section header reader
(:mod:`.sections`); pyelftools only lists the ``PT_NOTE`` segments of images without a
build-id note section.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from unwinder.symbols.elfguard import guard
from unwinder.symbols.sections import SHF_COMPRESSED, read_raw, read_section, section_headers

if TYPE_CHECKING:
    from elftools.elf.elffile import ELFFile

NT_GNU_BUILD_ID = 3
SHT_NOTE = 7


def parse_build_id_notes(data: bytes, little_endian: bool = True) -> bytes | None:
    """The descriptor of the first ``GNU``/``NT_GNU_BUILD_ID`` note in a note area."""
    order = "<" if little_endian else ">"
    pos, end = 0, len(data)
    while pos + 12 <= end:
        namesz, descsz, ntype = struct.unpack_from(order + "III", data, pos)
        name_at = pos + 12
        desc_at = name_at + ((namesz + 3) & ~3)
        nxt = desc_at + ((descsz + 3) & ~3)
        if nxt > end or desc_at + descsz > end:
            return None
        if ntype == NT_GNU_BUILD_ID and data[name_at:name_at + namesz].rstrip(b"\0") == b"GNU":
            return bytes(data[desc_at:desc_at + descsz]) or None
        pos = nxt
    return None


def find_build_id(elffile: ELFFile) -> bytes | None:
    """The file's build-id from its note sections, else its ``PT_NOTE`` segments."""
    with guard("build-id notes"):
        for section in section_headers(elffile):
            if section.sh_type == SHT_NOTE and section.sh_flags & SHF_COMPRESSED == 0:
                data = read_raw(elffile, section.sh_offset, section.sh_size, "SHT_NOTE")
                found = parse_build_id_notes(data, elffile.little_endian)
                if found:
                    return found
        for segment in elffile.iter_segments():  # pyelftools: images without sections
            if segment.header["p_type"] == "PT_NOTE":
                data = read_raw(elffile, segment.header["p_offset"],
                                segment.header["p_filesz"], "PT_NOTE")
                found = parse_build_id_notes(data, elffile.little_endian)
                if found:
                    return found
    return None


def parse_debuglink(data: bytes, little_endian: bool = True) -> tuple[str, int] | None:
    """``(file name, CRC32)`` from ``.gnu_debuglink`` bytes, ``None`` if malformed."""
    nul = data.find(b"\0")
    if nul <= 0:
        return None
    crc_at = (nul + 4) & ~3
    if crc_at + 4 > len(data):
        return None
    (crc,) = struct.unpack_from("<I" if little_endian else ">I", data, crc_at)
    name = data[:nul].decode("utf-8", "surrogateescape")
    if "/" in name:
        return None
    return name, crc


def find_debuglink(elffile: ELFFile) -> tuple[str, int] | None:
    """The ``.gnu_debuglink`` of the file, ``None`` when absent or malformed."""
    with guard(".gnu_debuglink"):
        data = read_section(elffile, ".gnu_debuglink")
    return None if data is None else parse_debuglink(data, elffile.little_endian)
