"""``.debug_aranges`` parsed with ``struct`` into sorted arrays: address → CU offset.

pyelftools' ``get_aranges()`` builds a construct container per entry (~42 ms for glibc);
this reads the same tuples with ``struct.iter_unpack``. Not every producer lists every CU
here (Go lists 185 of 802), so :mod:`unwinder.symbols.cuindex` keeps a fallback.
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_right

from unwinder.errors import SymbolError


class ArangeMap:
    """Disjoint address ranges sorted by start, each naming a CU by its ``.debug_info`` offset."""

    def __init__(self, starts: array, ends: array, cu_offsets: array) -> None:
        self.starts, self.ends, self.cu_offsets = starts, ends, cu_offsets

    def __len__(self) -> int:
        return len(self.starts)

    @classmethod
    def from_ranges(cls, ranges: list[tuple[int, int, int]]) -> ArangeMap:
        """Build from ``(start, end, cu_offset)``; empty and zero-based ranges are dropped."""
        starts, ends, cus = array("Q"), array("Q"), array("Q")
        last_end = 0
        for start, end, cu in sorted(r for r in ranges if r[1] > r[0] and r[0] != 0):
            start = max(start, last_end)
            if start >= end:
                continue
            starts.append(start)
            ends.append(end)
            cus.append(cu)
            last_end = end
        return cls(starts, ends, cus)

    def find(self, address: int) -> int | None:
        i = bisect_right(self.starts, address) - 1
        if i >= 0 and address < self.ends[i]:
            return self.cu_offsets[i]
        return None

    def cu_offset_set(self) -> set[int]:
        return set(self.cu_offsets)


def parse_aranges(data: bytes, little_endian: bool = True) -> ArangeMap:
    """All address ranges of a ``.debug_aranges`` section."""
    order = "<" if little_endian else ">"
    ranges: list[tuple[int, int, int]] = []
    pos, size = 0, len(data)
    mask = (1 << 64) - 1
    while pos + 4 <= size:
        start = pos
        (length,) = struct.unpack_from(order + "I", data, pos)
        pos += 4
        offset_fmt = "I"
        if length == 0xFFFFFFFF:
            if pos + 8 > size:
                break
            (length,) = struct.unpack_from(order + "Q", data, pos)
            pos += 8
            offset_fmt = "Q"
        elif length >= 0xFFFFFFF0:
            raise SymbolError(f".debug_aranges: reserved length {length:#x} at {start:#x}")
        end = pos + length
        if end > size:
            raise SymbolError(f".debug_aranges: unit at {start:#x} runs past the section")
        head = struct.Struct(order + "H" + offset_fmt + "BB")
        if pos + head.size > end:
            raise SymbolError(f".debug_aranges: truncated header at {start:#x}")
        version, cu_offset, address_size, _segment_size = head.unpack_from(data, pos)
        pos += head.size
        if address_size not in (4, 8) or version != 2:
            pos = end
            continue
        tuple_size = 2 * address_size
        pos = start + -(-(pos - start) // tuple_size) * tuple_size
        fmt = order + ("QQ" if address_size == 8 else "II")
        usable = max(0, end - pos) // tuple_size * tuple_size
        for address, length_ in struct.iter_unpack(fmt, data[pos:pos + usable]):
            if address == 0 and length_ == 0:
                break
            ranges.append((address, min(address + length_, mask), cu_offset))
        pos = end
    return ArangeMap.from_ranges(ranges)
