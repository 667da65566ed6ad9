"""DescribedAddresses: exact round trips, and anything not written by it refused."""

from __future__ import annotations

import json

import pytest

from unwinder.errors import SymbolError
from unwinder.symbols.described import DescribedAddresses
from unwinder.symbols.model import SourceLocation, SymbolizedFrame

FRAMES = [
    SymbolizedFrame("level3_inl", None, SourceLocation("/src/a.c", 4, 7), True),
    SymbolizedFrame("std::vector<int>::at(unsigned long)", 0x19,
                    SourceLocation("/src/\udcff.cc", 5, 0), False, "_ZNSt6vectorIiE2atEm"),
]


def test_round_trip_keeps_every_field() -> None:
    table = DescribedAddresses()
    table.add(0x1169, FRAMES)
    table.add(0x20, [SymbolizedFrame(None, None, None, False)])
    assert table.changed
    again = DescribedAddresses.from_bytes(table.to_bytes())
    assert not again.changed
    assert again.find(0x1169) == FRAMES
    assert again.find(0x20) == [SymbolizedFrame(None, None, None, False)]
    assert again.find(0x21) is None


def test_first_answer_stays() -> None:
    table = DescribedAddresses()
    table.add(1, FRAMES[:1])
    table.changed = False
    table.add(1, FRAMES[1:])
    assert table.find(1) == FRAMES[:1] and not table.changed


@pytest.mark.parametrize("rows", [
    {"1": []},
    [[1]],
    [["1", []]],
    [[True, []]],
    [[1, [["f", 0, None, None, None, False]]]],
    [[1, [["f", "0", None, None, None, False, None]]]],
    [[1, [["f", 0, "a.c", None, 0, False, None]]]],
    [[1, [["f", 0, None, None, None, 1, None]]]],
])
def test_other_shapes_are_refused(rows: object) -> None:
    with pytest.raises(SymbolError):
        DescribedAddresses.from_bytes(json.dumps(rows).encode())


def test_garbage_is_refused() -> None:
    with pytest.raises(SymbolError):
        DescribedAddresses.from_bytes(b"\xff[[")
    with pytest.raises(SymbolError):
        DescribedAddresses.from_bytes(b"[" * 100_000)
