"""Merging line programs into one table: sequence order, rows out of order inside a
sequence, overlapping sequences clipped, sequences at address 0 dropped."""

from __future__ import annotations

from unwinder.symbols.lineprog import END_SEQUENCE, LineProgram
from unwinder.symbols.linetable import HOLE, LineTable

Row = tuple[int, int, int]  # address, file index, line


def program(files: list[str], *sequences: list[Row]) -> LineProgram:
    """A decoded program: each sequence's rows, then its end row at the last address + 4."""
    out = LineProgram(0, 4, 0, 0, 8, 1, True, -5, 14, 13, (), [], files, "/")
    for rows in sequences:
        for address, file, line in rows:
            out.addresses.append(address)
            out.file_indexes.append(file)
            out.lines.append(line)
            out.columns.append(0)
            out.flags.append(0)
        out.addresses.append(max(r[0] for r in rows) + 4)
        out.file_indexes.append(0)
        out.lines.append(0)
        out.columns.append(0)
        out.flags.append(END_SEQUENCE)
    return out


def rows(table: LineTable) -> list[tuple[int, int, int]]:
    return list(zip(table.addresses, table.file_ids, table.lines, strict=True))


def test_sequences_in_link_order_are_taken_as_they_come() -> None:
    table = LineTable.from_programs(iter([
        program(["a.c"], [(0x100, 0, 1), (0x108, 0, 2)]),
        program(["b.c", "a.c"], [(0x200, 0, 7), (0x204, 1, 3)]),
    ]))
    assert rows(table) == [(0x100, 0, 1), (0x108, 0, 2), (0x10C, HOLE, 0),
                           (0x200, 1, 7), (0x204, 0, 3), (0x208, HOLE, 0)]
    assert table.files == ["a.c", "b.c"]  # one id per path, across programs
    assert table.lookup(0x10A).line == 2 and table.lookup(0x10C) is None


def test_sequences_are_sorted_rows_too_and_overlaps_clipped_and_zero_dropped() -> None:
    table = LineTable.from_programs([
        program(["late.c"], [(0x300, 0, 30), (0x310, 0, 31)]),
        program(["gc.c"], [(0x0, 0, 99), (0x8, 0, 98)]),  # discarded by the linker
        # rows out of order inside the sequence; the last of one address stays last
        program(["early.c"], [(0x120, 0, 12), (0x100, 0, 10), (0x100, 0, 11)]),
        program(["over.c"], [(0x110, 0, 50), (0x130, 0, 51)]),  # overlaps early.c's end
    ])
    assert rows(table) == [
        (0x100, 2, 10), (0x100, 2, 11), (0x120, 2, 12), (0x124, HOLE, 0),
        (0x130, 3, 51), (0x134, HOLE, 0),  # over.c: its rows below 0x124 are gone
        (0x300, 0, 30), (0x310, 0, 31), (0x314, HOLE, 0),
    ]
    assert table.files == ["late.c", "gc.c", "early.c", "over.c"]
    assert table.lookup(0x100).line == 11
    assert table.lookup(0x50) is None
