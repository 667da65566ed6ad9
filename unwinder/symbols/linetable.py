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
        file_ids: dict[str, int] = {}
        files: list[str] = []
        sequences: list[tuple[int, int, list[tuple[int, int, int, int]]]] = []
        for program in programs:
            mapping: list[int] = []
            for path in program.files:
                if path not in file_ids:
                    file_ids[path] = len(files)
                    files.append(path)
                mapping.append(file_ids[path])
            nfiles = len(mapping)
            current: list[tuple[int, int, int, int]] = []
            for address, file, line, column, flag in zip(
                    program.addresses, program.file_indexes, program.lines, program.columns,
                    program.flags, strict=True):
                if flag & END_SEQUENCE:
                    if current and current[0][0] != 0:
                        current.append((address, HOLE, 0, 0))
                        if any(current[i][0] > current[i + 1][0]
                               for i in range(len(current) - 1)):
                            current.sort(key=lambda row: row[0])
                        sequences.append((current[0][0], len(sequences), current))
                    current = []
                else:
                    current.append((address, mapping[file] if file < nfiles else HOLE,
                                    line, column))
        sequences.sort(key=lambda s: (s[0], s[1]))
        addrs, fids, lines, cols = array("Q"), array("I"), array("I"), array("I")
        last_end = 0
        for _start, _n, rows in sequences:
            for address, fid, line, column in rows:
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
