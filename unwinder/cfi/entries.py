"""CIE and FDE headers of ``.eh_frame`` and ``.debug_frame`` (DWARF 5 §6.4.1, LSB 5.0 §10.6).

Our own rather than pyelftools' ``CallFrameInfo``: that parses a whole section through
construct (0.35 s for libc) and has no way to read one FDE found through ``.eh_frame_hdr``
cheaply. Here one entry costs a handful of ``struct.unpack_from`` calls, and every length and
offset is checked against the section before use.

The two sections differ in a few places, all handled here:

- the CIE id is 0 in ``.eh_frame`` and all-ones in ``.debug_frame``;
- an FDE's CIE pointer is relative to the pointer itself in ``.eh_frame`` and a section
  offset in ``.debug_frame``;
- FDE addresses follow the CIE's ``R`` encoding in ``.eh_frame`` and are plain target
  addresses in ``.debug_frame``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import NamedTuple

from unwinder.cfi.opcodes import DW_EH_PE
from unwinder.cfi.pointers import read_encoded
from unwinder.cfi.section import FrameSection
from unwinder.errors import CfiError
from unwinder.leb128 import read_sleb128, read_uleb128

_DEBUG_CIE_ID_32 = 0xFFFFFFFF
_DEBUG_CIE_ID_64 = 0xFFFFFFFFFFFFFFFF
_PCREL_SDATA4 = DW_EH_PE.pcrel | DW_EH_PE.sdata4


class EntryHeader(NamedTuple):
    """The length and id fields common to CIEs and FDEs (a named tuple: built per lookup).

    :ivar offset: section offset of the length field.
    :ivar is_cie: the id field marks a CIE.
    :ivar cie_offset: for an FDE, section offset of its CIE (already resolved from the
        relative ``.eh_frame`` pointer); -1 for a CIE.
    :ivar body: section offset of the first field after the id.
    :ivar end: section offset just past the entry.
    :ivar is_64: 64-bit DWARF format (initial length 0xffffffff).
    """

    offset: int
    is_cie: bool
    cie_offset: int
    body: int
    end: int
    is_64: bool


def parse_entry_header(section: FrameSection, offset: int) -> EntryHeader | None:
    """Read the length and id at ``offset``; None for a zero-length terminator entry.

    :raises CfiError: lengths or ids that point outside the section.
    """
    data = section.data
    size = len(data)
    endian = section.endian
    if offset < 0 or offset + 4 > size:
        raise CfiError(f"{section.name} entry header past the end", offset)
    (length,) = struct.unpack_from(endian + "I", data, offset)
    if length == 0:
        return None
    is_64 = length == 0xFFFFFFFF
    if is_64:
        if offset + 12 > size:
            raise CfiError(f"{section.name} 64-bit length past the end", offset)
        (length,) = struct.unpack_from(endian + "Q", data, offset + 4)
        id_pos = offset + 12
    elif length >= 0xFFFFFFF0:
        raise CfiError(f"reserved initial length {length:#x}", offset)
    else:
        id_pos = offset + 4
    end = id_pos + length
    id_size = 8 if is_64 and not section.is_eh else 4
    if end > size or length < id_size:
        raise CfiError(f"{section.name} entry length {length:#x} out of bounds", offset)
    (entry_id,) = struct.unpack_from(endian + ("Q" if id_size == 8 else "I"), data, id_pos)
    body = id_pos + id_size
    if section.is_eh:
        if entry_id == 0:
            return EntryHeader(offset, True, -1, body, end, is_64)
        cie_offset = id_pos - entry_id
    else:
        if entry_id == (_DEBUG_CIE_ID_64 if id_size == 8 else _DEBUG_CIE_ID_32):
            return EntryHeader(offset, True, -1, body, end, is_64)
        cie_offset = entry_id
    if not 0 <= cie_offset < size:
        raise CfiError(f"CIE pointer {cie_offset:#x} outside {section.name}", offset)
    return EntryHeader(offset, False, cie_offset, body, end, is_64)


class Cie(NamedTuple):
    """A Common Information Entry: what its FDEs share.

    :ivar offset: section offset of the CIE.
    :ivar version: 1, 3 or 4.
    :ivar augmentation: the augmentation string, e.g. ``b"zR"``, ``b"zPLR"``, ``b"zRS"``.
    :ivar code_alignment: factor of ``advance_loc`` deltas.
    :ivar data_alignment: factor of ``offset``-style operands (signed).
    :ivar return_address_column: DWARF register number of the return address.
    :ivar fde_encoding: ``DW_EH_PE_*`` of FDE addresses (``R``), absptr otherwise.
    :ivar lsda_encoding: ``DW_EH_PE_*`` of the LSDA pointer (``L``), omit otherwise.
    :ivar has_augmentation_data: ``z``: FDEs carry an augmentation data length.
    :ivar signal_frame: ``S``: FDEs of this CIE describe signal trampolines.
    :ivar address_size: target address size (from the v4 header, or the ELF class).
    :ivar segment_size: v4 segment selector size (0 everywhere on Linux).
    :ivar instructions: ``(start, end)`` section offsets of the initial instructions.
    """

    offset: int
    version: int
    augmentation: bytes
    code_alignment: int
    data_alignment: int
    return_address_column: int
    fde_encoding: int
    lsda_encoding: int
    has_augmentation_data: bool
    signal_frame: bool
    address_size: int
    segment_size: int
    instructions: tuple[int, int]


def parse_cie(section: FrameSection, offset: int) -> Cie:
    """Parse the CIE at ``offset``.

    :raises CfiError: not a CIE, an unsupported version, or an augmentation string whose
        data cannot be skipped (no ``z`` and not empty).
    """
    header = parse_entry_header(section, offset)
    if header is None or not header.is_cie:
        raise CfiError(f"no CIE at {section.name} offset", offset)
    data = section.data
    pos, end = header.body, header.end
    if pos >= end:
        raise CfiError("empty CIE", offset)
    version = data[pos]
    pos += 1
    if version not in (1, 3, 4):
        raise CfiError(f"unsupported CIE version {version}", offset)
    nul = data.find(b"\0", pos, end)
    if nul < 0:
        raise CfiError("unterminated CIE augmentation string", offset)
    augmentation = bytes(data[pos:nul])
    pos = nul + 1
    address_size, segment_size = section.address_size, 0
    if version >= 4:
        if pos + 2 > end:
            raise CfiError("truncated CIE v4 header", offset)
        address_size, segment_size = data[pos], data[pos + 1]
        pos += 2
        if address_size not in (4, 8):
            raise CfiError(f"CIE address size {address_size}", offset)
    if augmentation.startswith(b"eh"):
        pos += address_size  # pre-1998 GCC: a pointer to exception data
    code_alignment, pos = read_uleb128(data, pos, end)
    data_alignment, pos = read_sleb128(data, pos, end)
    if version == 1:
        if pos >= end:
            raise CfiError("truncated CIE", offset)
        ra_column = data[pos]
        pos += 1
    else:
        ra_column, pos = read_uleb128(data, pos, end)
    fde_encoding = DW_EH_PE.absptr
    lsda_encoding = DW_EH_PE.omit
    signal_frame = False
    has_z = augmentation.startswith(b"z")
    if has_z:
        aug_length, pos = read_uleb128(data, pos, end)
        aug_end = pos + aug_length
        if aug_end > end:
            raise CfiError("CIE augmentation data past the end", offset)
        for letter in augmentation[1:]:
            if letter == 0x52:  # R
                if pos >= aug_end:
                    raise CfiError("truncated CIE augmentation data", offset)
                fde_encoding = data[pos]
                pos += 1
            elif letter == 0x4C:  # L
                if pos >= aug_end:
                    raise CfiError("truncated CIE augmentation data", offset)
                lsda_encoding = data[pos]
                pos += 1
            elif letter == 0x50:  # P: personality routine, skipped (indirection not followed)
                if pos >= aug_end:
                    raise CfiError("truncated CIE augmentation data", offset)
                encoding = data[pos]
                _, pos = read_encoded(section, pos + 1, aug_end, encoding & 0x7F)
            elif letter == 0x53:  # S
                signal_frame = True
            elif letter in (0x42, 0x47):  # B: aarch64 B-key PAC, G: MTE-tagged frame
                pass
            else:
                break  # unknown letter: the rest is skipped through the 'z' length
        pos = aug_end
    elif augmentation not in (b"", b"eh"):
        raise CfiError(f"unknown CIE augmentation {augmentation!r}", offset)
    if fde_encoding & DW_EH_PE.indirect or fde_encoding == DW_EH_PE.omit:
        raise CfiError(f"unusable FDE pointer encoding {fde_encoding:#x}", offset)
    return Cie(
        offset=offset,
        version=version,
        augmentation=augmentation,
        code_alignment=code_alignment,
        data_alignment=data_alignment,
        return_address_column=ra_column,
        fde_encoding=fde_encoding,
        lsda_encoding=lsda_encoding,
        has_augmentation_data=has_z,
        signal_frame=signal_frame,
        address_size=address_size,
        segment_size=segment_size,
        instructions=(pos, end),
    )


class Fde(NamedTuple):
    """A Frame Description Entry: the code range of one function and its CFA program.

    A named tuple rather than a dataclass: one is built per cold lookup.

    :ivar offset: section offset of the FDE.
    :ivar cie: its CIE.
    :ivar pc_begin: first pc covered (link-time address).
    :ivar pc_end: first pc not covered.
    :ivar instructions: ``(start, end)`` section offsets of the FDE's instructions.
    """

    offset: int
    cie: Cie
    pc_begin: int
    pc_end: int
    instructions: tuple[int, int]


def parse_fde(section: FrameSection, offset: int, get_cie: Callable[[int], Cie]) -> Fde:
    """Parse the FDE at ``offset``; ``get_cie(offset)`` returns (cached) CIEs.

    :raises CfiError: not an FDE, a bad CIE pointer, or truncated fields.
    """
    header = parse_entry_header(section, offset)
    if header is None or header.is_cie:
        raise CfiError(f"no FDE at {section.name} offset", offset)
    cie = get_cie(header.cie_offset)
    data = section.data
    pos, end = header.body, header.end
    if section.is_eh:
        encoding = cie.fde_encoding
        if encoding == _PCREL_SDATA4 and pos + 8 <= end:
            pc_begin, pc_range = struct.unpack_from(section.endian + "iI", data, pos)
            pc_begin = (pc_begin + section.address + pos) & 0xFFFFFFFFFFFFFFFF
            pos += 8
        else:
            pc_begin, pos = read_encoded(section, pos, end, encoding)
            pc_range, pos = read_encoded(section, pos, end, encoding & 0x0F)
    else:
        pos += cie.segment_size
        width = cie.address_size
        if pos + 2 * width > end:
            raise CfiError("truncated FDE", offset)
        code = "QQ" if width == 8 else "II"
        pc_begin, pc_range = struct.unpack_from(section.endian + code, data, pos)
        pos += 2 * width
    if cie.has_augmentation_data:
        aug_length, pos = read_uleb128(data, pos, end)
        pos += aug_length
        if pos > end:
            raise CfiError("FDE augmentation data past the end", offset)
    return Fde(offset, cie, pc_begin, pc_begin + pc_range, (pos, end))
