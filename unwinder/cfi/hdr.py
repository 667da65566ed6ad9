"""``.eh_frame_hdr``: the linker's sorted table of FDE start addresses (LSB 5.0 §10.6.2).

Our own: pyelftools has no API for it. The usual table encoding, ``datarel|sdata4`` (0x3b),
is loaded with ``array('i').frombytes`` and sliced, so building the index of a library with
100k FDEs costs a few milliseconds and no Python loop; other encodings go through the generic
pointer decoder.
"""

from __future__ import annotations

import sys
from array import array
from typing import NamedTuple

from unwinder.cfi.index import FdeIndex
from unwinder.cfi.opcodes import DW_EH_PE
from unwinder.cfi.pointers import read_encoded
from unwinder.cfi.section import FrameSection
from unwinder.errors import CfiError

_DATAREL_SDATA4 = DW_EH_PE.datarel | DW_EH_PE.sdata4


class EhFrameHdr(NamedTuple):
    """The parsed header fields.

    :ivar eh_frame_address: link-time address of ``.eh_frame``.
    :ivar fde_count: table entries, None when the header has no table.
    :ivar table_encoding: ``DW_EH_PE_*`` of both columns of the table.
    :ivar table_offset: offset of the table in the hdr section.
    """

    version: int
    eh_frame_address: int
    fde_count: int | None
    table_encoding: int
    table_offset: int


def parse_eh_frame_hdr(section: FrameSection) -> EhFrameHdr:
    """Parse the header; ``section.address`` must be the hdr's link-time address.

    :raises CfiError: unknown version, truncated fields.
    """
    data = section.data
    if len(data) < 4:
        raise CfiError(".eh_frame_hdr shorter than its header", 0)
    version, ptr_enc, count_enc, table_enc = data[0], data[1], data[2], data[3]
    if version != 1:
        raise CfiError(f".eh_frame_hdr version {version}", 0)
    # datarel in the hdr is relative to the hdr itself
    eh_frame_address, pos = read_encoded(section, 4, len(data), ptr_enc)
    fde_count = None
    if count_enc != DW_EH_PE.omit and table_enc != DW_EH_PE.omit:
        fde_count, pos = read_encoded(section, pos, len(data), count_enc)
    return EhFrameHdr(version, eh_frame_address, fde_count, table_enc, pos)


def build_hdr_index(section: FrameSection, hdr: EhFrameHdr) -> FdeIndex | None:
    """The hdr's table as an index into ``.eh_frame``; None when the hdr has no table.

    FDE offsets in the index are relative to ``hdr.eh_frame_address``. The table is trusted
    to be sorted (the linker sorts it); a lying table can only make lookups miss, because
    every candidate FDE's own range is checked.

    :raises CfiError: a table that runs past the section.
    """
    count = hdr.fde_count
    if count is None:
        return None
    data = section.data
    pos = hdr.table_offset
    if hdr.table_encoding == _DATAREL_SDATA4:
        if count * 8 > len(data) - pos:
            raise CfiError(f".eh_frame_hdr table of {count} entries past the end", pos)
        table = array("i")
        table.frombytes(data[pos : pos + 8 * count])
        if section.big_endian != (sys.byteorder == "big"):
            table.byteswap()
        return FdeIndex(
            table[0::2],
            table[1::2],
            pc_bias=section.address,
            offset_bias=section.address - hdr.eh_frame_address,
        )
    encoding = hdr.table_encoding
    if encoding & DW_EH_PE.indirect or count > len(data) - pos:
        raise CfiError(f"unusable .eh_frame_hdr table encoding {encoding:#x}", pos)
    pairs = []
    end = len(data)
    for _ in range(count):
        start, pos = read_encoded(section, pos, end, encoding)
        fde, pos = read_encoded(section, pos, end, encoding)
        pairs.append((start, fde - hdr.eh_frame_address))
    return FdeIndex.from_pairs(pairs)
