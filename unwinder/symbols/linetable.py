"""Address → file:line lookup over decoded line programs, as flat sorted arrays.

Sequences are sorted by start address and concatenated; each sequence's end row becomes a
hole marker, so a lookup is one ``bisect``: the last row at or below the address, unless that
row is a hole. Among rows at one address the last wins, as elfutils' ``dwarf_getsrc_die``.
Sequences starting at address 0 (code discarded by the linker, ``--gc-sections``) are dropped,
and a sequence overlapping its predecessor is clipped so the arrays stay sorted.

The arrays and the file-name list are what :class:`~unwinder.symbols.cache.SymbolCache`
stores.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterable

from unwinder.errors import SymbolError
from unwinder.symbols.lineprog import END_SEQUENCE, LineProgram
from unwinder.symbols.model import SourceLocation

#: file index of a hole (the end of a sequence)
HOLE = 0xFFFFFFFF


class LineTable:
    """Rows of one or more line programs, sorted by address.

    :ivar addresses: row addresses, ascending.
    :ivar file_ids: index into :attr:`files`, or :data:`HOLE`.
    """

    def __init__(self, addresses: array, file_ids: array, lines: array, columns: array,
                 files: list[str]) -> None:
        if not (len(addresses) == len(file_ids) == len(lines) == len(columns)):
            raise SymbolError("line table arrays of different lengths")
        self.addresses = addresses
        self.file_ids = file_ids
        self.lines = lines
        self.columns = columns
        self.files = files

    def __len__(self) -> int:
        return len(self.addresses)

    @classmethod
    def from_programs(cls, programs: Iterable[LineProgram]) -> LineTable:
        """One table of ``programs``' rows. Sequences are kept as spans of their program's
        arrays until the final copy (a whole libc is half a million rows: no tuple per row)."""
        file_ids: dict[str, int] = {}
        files: list[str] = []
        #: (start address, order, program, its file-id mapping, first row, end row)
        spans: list[tuple[int, int, LineProgram, list[int], int, int]] = []
        for program in programs:
            mapping: list[int] = []
            for path in program.files:
                if path not in file_ids:
                    file_ids[path] = len(files)
                    files.append(path)
                mapping.append(file_ids[path])
            addresses, first = program.addresses, 0
            for row, flag in enumerate(program.flags):
                if not flag & END_SEQUENCE:
                    continue
                if row > first and addresses[first] != 0:
                    start = min(addresses[first:row + 1])
                    spans.append((start, len(spans), program, mapping, first, row))
                first = row + 1
        spans.sort(key=lambda s: (s[0], s[1]))
        addrs, fids, lines, cols = array("Q"), array("I"), array("I"), array("I")
        last_end = 0
        for _start, _n, program, mapping, first, end in spans:
            for address, fid, line, column in _sequence_rows(program, mapping, first, end):
                if address < last_end:
                    continue
                addrs.append(address)
                fids.append(fid)
                lines.append(line)
                cols.append(column)
            if addrs:
                last_end = addrs[-1]
        return cls(addrs, fids, lines, cols, files)

    def lookup(self, address: int) -> SourceLocation | None:
        """The location of the row covering ``address``, ``None`` outside every sequence."""
        i = bisect_right(self.addresses, address) - 1
        if i < 0:
            return None
        fid = self.file_ids[i]
        if fid == HOLE or fid >= len(self.files):
            return None
        return SourceLocation(self.files[fid], self.lines[i], self.columns[i])


def _sequence_rows(program: LineProgram, mapping: list[int], first: int,
                   end: int) -> Iterable[tuple[int, int, int, int]]:
    """The rows ``first..end-1`` of one sequence, then its end as a hole; sorted by address
    (stably: among rows at one address the last stays last)."""
    nfiles = len(mapping)
    rows = [(program.addresses[i],
             mapping[f] if (f := program.file_indexes[i]) < nfiles else HOLE,
             program.lines[i], program.columns[i]) for i in range(first, end)]
    rows.append((program.addresses[end], HOLE, 0, 0))
    if any(rows[i][0] > rows[i + 1][0] for i in range(len(rows) - 1)):
        rows.sort(key=lambda row: row[0])
    return rows
