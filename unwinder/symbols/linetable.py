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

    def _columns(self) -> tuple[array, array, array, array]:
        return self.addresses, self.file_ids, self.lines, self.columns

    def _extend(self, *columns: Iterable[int]) -> None:
        """Rows appended, one iterable per column (addresses, file ids, lines, columns)."""
        for mine, more in zip(self._columns(), columns, strict=True):
            mine.extend(more)

    def _append_sequence(self, program: LineProgram, mapping: list[int], first: int,
                         end: int) -> None:
        """Rows ``first..end-1`` of one sequence, then its end as a hole; sorted by address
        (stably: among rows at one address the last stays last)."""
        nfiles = len(mapping)
        addresses = program.addresses[first:end + 1]
        file_ids = [mapping[f] if f < nfiles else HOLE for f in program.file_indexes[first:end]]
        file_ids.append(HOLE)
        lines, columns = program.lines[first:end], program.columns[first:end]
        lines.append(0)
        columns.append(0)
        rows: tuple[Iterable[int], ...] = (addresses, file_ids, lines, columns)
        if any(a > b for a, b in zip(addresses, addresses[1:], strict=False)):
            order = sorted(range(len(addresses)), key=addresses.__getitem__)
            rows = tuple([column[i] for i in order] for column in rows)  # type: ignore[index]
        self._extend(*rows)

    def _reordered(self, spans: list[tuple[int, int, int, int]]) -> LineTable:
        """This table with its sequences in ``spans`` order; a sequence overlapping the one
        before it is clipped (its rows below the last address so far are dropped). Rebuilt
        one column at a time, each old column let go before the next is built: a second
        whole table cost libc6-dbg's cold build 6 MiB of its peak."""
        pieces: list[range | list[int]] = []  # rows to keep, in their new order
        last_end = 0
        for start, _order, begin, end in spans:
            if start >= last_end:  # the whole sequence: its rows are sorted
                rows: range | list[int] = range(begin, end)
            else:
                rows = [i for i in range(begin, end) if self.addresses[i] >= last_end]
            if rows:
                pieces.append(rows)
                last_end = self.addresses[rows[-1]]
        for name in ("file_ids", "lines", "columns", "addresses"):  # addresses last: read above
            column = getattr(self, name)
            out = array(column.typecode)
            for rows in pieces:
                if isinstance(rows, range):
                    out.extend(column[rows.start:rows.stop])
                else:
                    out.extend(column[i] for i in rows)
            setattr(self, name, out)
        return self

    def lookup(self, address: int) -> SourceLocation | None:
        """The location of the row covering ``address``, ``None`` outside every sequence."""
        i = bisect_right(self.addresses, address) - 1
        if i < 0:
            return None
        fid = self.file_ids[i]
        if fid == HOLE or fid >= len(self.files):
            return None
        return SourceLocation(self.files[fid], self.lines[i], self.columns[i])
