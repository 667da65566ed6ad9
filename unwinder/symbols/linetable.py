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
        """One table of ``programs``' rows, consumed one program at a time (pass a generator
        and each program's own arrays go as soon as its rows are copied: a whole libc is half a
        million rows). Every sequence is appended to the table's arrays as it comes; when the
        sequences came in address order without overlaps (the usual link order) those arrays
        are the table, else one more pass puts the sequences in order."""
        file_ids: dict[str, int] = {}
        files: list[str] = []
        table = cls(array("Q"), array("I"), array("I"), array("I"), files)
        #: (start address, order, first row, end row) of each sequence in ``table``
        spans: list[tuple[int, int, int, int]] = []
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
                    begin = len(table.addresses)
                    table._append_sequence(program, mapping, first, row)
                    spans.append((table.addresses[begin], len(spans), begin, len(table.addresses)))
                first = row + 1
        if all(spans[i][0] >= table.addresses[spans[i - 1][3] - 1] for i in range(1, len(spans))):
            return table  # in order, no overlaps: nothing to sort or clip
        return table._reordered(sorted(spans))

    def _append_sequence(self, program: LineProgram, mapping: list[int], first: int,
                         end: int) -> None:
        """Rows ``first..end-1`` of one sequence, then its end as a hole; sorted by address
        (stably: among rows at one address the last stays last)."""
        nfiles = len(mapping)
        addresses = program.addresses[first:end + 1]
        if all(a <= b for a, b in zip(addresses, addresses[1:], strict=False)):
            self.addresses.extend(addresses)
            self.file_ids.extend([mapping[f] if f < nfiles else HOLE
                                  for f in program.file_indexes[first:end]])
            self.file_ids.append(HOLE)
            self.lines.extend(program.lines[first:end])
            self.lines.append(0)
            self.columns.extend(program.columns[first:end])
            self.columns.append(0)
            return
        rows = [(program.addresses[i],
                 mapping[f] if (f := program.file_indexes[i]) < nfiles else HOLE,
                 program.lines[i], program.columns[i]) for i in range(first, end)]
        rows.append((program.addresses[end], HOLE, 0, 0))
        rows.sort(key=lambda row: row[0])
        for address, fid, line, column in rows:
            self.addresses.append(address)
            self.file_ids.append(fid)
            self.lines.append(line)
            self.columns.append(column)

    def _reordered(self, spans: list[tuple[int, int, int, int]]) -> LineTable:
        """A table of this one's sequences in ``spans`` order; a sequence overlapping the one
        before it is clipped (its rows below the last address so far are dropped)."""
        out = LineTable(array("Q"), array("I"), array("I"), array("I"), self.files)
        last_end = 0
        for start, _order, begin, end in spans:
            if start >= last_end:  # the whole sequence: its rows are sorted
                out.addresses.extend(self.addresses[begin:end])
                out.file_ids.extend(self.file_ids[begin:end])
                out.lines.extend(self.lines[begin:end])
                out.columns.extend(self.columns[begin:end])
            else:
                for i in range(begin, end):
                    if self.addresses[i] >= last_end:
                        out.addresses.append(self.addresses[i])
                        out.file_ids.append(self.file_ids[i])
                        out.lines.append(self.lines[i])
                        out.columns.append(self.columns[i])
            if out.addresses:
                last_end = out.addresses[-1]
        return out

    def lookup(self, address: int) -> SourceLocation | None:
        """The location of the row covering ``address``, ``None`` outside every sequence."""
        i = bisect_right(self.addresses, address) - 1
        if i < 0:
            return None
        fid = self.file_ids[i]
        if fid == HOLE or fid >= len(self.files):
            return None
        return SourceLocation(self.files[fid], self.lines[i], self.columns[i])
