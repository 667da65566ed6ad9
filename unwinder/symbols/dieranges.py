"""Address ranges of a debugging information entry (``low_pc``/``high_pc`` or ``ranges``).

DWARF ≤ 4 range lists are relative to the CU's base address unless a base-address entry
changes it; DWARF 5 ``DW_RLE_offset_pair`` works the same way, the other ``DW_RLE_*`` kinds are
absolute (pyelftools decodes the lists and resolves ``rnglistx``/``addrx``).
"""

from __future__ import annotations

from elftools.dwarf.die import DIE
from elftools.dwarf.ranges import BaseAddressEntry

_MASK64 = (1 << 64) - 1
#: a range list longer than this is treated as corrupt and truncated
MAX_RANGES = 1 << 16


def die_ranges(die: DIE, range_lists, cu_base: int) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` of ``die``; empty when it has no code."""
    attrs = die.attributes
    low = attrs.get("DW_AT_low_pc")
    high = attrs.get("DW_AT_high_pc")
    if low is not None and high is not None and isinstance(low.value, int) \
            and isinstance(high.value, int):
        if high.form in ("DW_FORM_addr", "DW_FORM_addrx", "DW_FORM_addrx1", "DW_FORM_addrx2",
                         "DW_FORM_addrx3", "DW_FORM_addrx4"):
            end = high.value
        else:
            end = low.value + high.value
        return [(low.value, min(end, _MASK64))] if end > low.value else []
    ranges = attrs.get("DW_AT_ranges")
    if ranges is None or range_lists is None or not isinstance(ranges.value, int):
        return []
    entries = range_lists.get_range_list_at_offset(ranges.value, cu=die.cu)
    out: list[tuple[int, int]] = []
    base = cu_base
    for entry in entries[:MAX_RANGES]:
        if isinstance(entry, BaseAddressEntry):
            base = entry.base_address
            continue
        start, end = entry.begin_offset, entry.end_offset
        if not entry.is_absolute:
            start, end = base + start, base + end
        if end > start:
            out.append((start & _MASK64, min(end, _MASK64)))
    return out


def cu_base_address(top: DIE) -> int:
    """The base address of range lists in the CU whose top DIE is ``top``."""
    low = top.attributes.get("DW_AT_low_pc")
    return low.value if low is not None and isinstance(low.value, int) else 0


def contains(ranges: list[tuple[int, int]], address: int) -> bool:
    return any(start <= address < end for start, end in ranges)
