"""The sorted address index over a section's FDEs: binary search from a pc to one FDE.

Kept as two parallel sequences, possibly relative to a base, so the ``.eh_frame_hdr`` table
can be used as loaded (``array('i')`` slices, no per-entry Python work).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence


class FdeIndex:
    """FDE start addresses in ascending order and the matching FDE section offsets.

    Entry ``i`` says: the FDE at section offset ``offsets[i] + offset_bias`` starts at pc
    ``starts[i] + pc_bias``. The index only finds the candidate; the FDE's own range decides
    whether it covers the pc (gaps between FDEs are real).
    """

    __slots__ = ("starts", "offsets", "pc_bias", "offset_bias")

    def __init__(
        self,
        starts: Sequence[int],
        offsets: Sequence[int],
        *,
        pc_bias: int = 0,
        offset_bias: int = 0,
    ) -> None:
        if len(starts) != len(offsets):
            raise ValueError("starts and offsets differ in length")
        self.starts = starts
        self.offsets = offsets
        self.pc_bias = pc_bias
        self.offset_bias = offset_bias

    def __len__(self) -> int:
        return len(self.starts)

    def find(self, pc: int) -> int | None:
        """Section offset of the last FDE starting at or before ``pc``; None if there is none."""
        i = bisect_right(self.starts, pc - self.pc_bias) - 1
        if i < 0:
            return None
        return self.offsets[i] + self.offset_bias

    @classmethod
    def from_pairs(cls, pairs: list[tuple[int, int]]) -> FdeIndex:
        """Build from unsorted ``(start pc, FDE offset)`` pairs (sorted here, in place)."""
        pairs.sort()
        return cls([p[0] for p in pairs], [p[1] for p in pairs])
