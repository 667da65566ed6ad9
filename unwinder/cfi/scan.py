"""Index a CFI section by walking its entry headers, for when there is no usable hdr table.

Used for ``.debug_frame`` (which never has one), for ``.eh_frame`` without
``.eh_frame_hdr`` and for hdrs without a table (``table_enc`` 0xff, seen in some libc builds).
Only headers and FDE addresses are read; instructions are decoded on lookup.
"""

from __future__ import annotations

from collections.abc import Callable

from unwinder.cfi.entries import Cie, parse_entry_header, parse_fde
from unwinder.cfi.index import FdeIndex
from unwinder.cfi.section import FrameSection
from unwinder.errors import CfiError

_ADDRESS_LIMIT = 1 << 64


def scan_fdes(section: FrameSection, get_cie: Callable[[int], Cie]) -> FdeIndex:
    """Index every FDE of ``section`` by its start address.

    A malformed FDE is left out; a malformed length ends the walk (nothing after it can be
    found). FDEs starting at 0 or wrapping past the address space (what linkers leave for
    discarded functions in ``.debug_frame``) are left out too.
    """
    pairs: list[tuple[int, int]] = []
    offset = 0
    size = section.size
    while offset + 4 <= size:
        try:
            header = parse_entry_header(section, offset)
        except CfiError:
            break
        if header is None:
            if section.is_eh:
                break  # the zero terminator
            offset += 4  # padding in .debug_frame
            continue
        if not header.is_cie:
            try:
                fde = parse_fde(section, offset, get_cie)
            except CfiError:
                pass
            else:
                if 0 < fde.pc_begin < fde.pc_end <= _ADDRESS_LIMIT:
                    pairs.append((fde.pc_begin, offset))
        offset = header.end
    return FdeIndex.from_pairs(pairs)
