"""DIE walks over byte fixtures: the children pyelftools would give, and an error (never an
endless loop) for sibling links that point back or out of the CU."""

from __future__ import annotations

import struct

import pytest

from unwinder.errors import SymbolError
from unwinder.symbols.dietree import DieBudget, children
from unwinder.symbols.dwarf import DwarfData
from unwinder.symbols.inlines import CUScopes

# code 1: compile_unit, children, no attributes
# code 2: subprogram, children; sibling ref4, low_pc addr, high_pc data4
# code 3: lexical_block, no children, no attributes
# code 4: subprogram, children; low_pc addr, high_pc data4 (no sibling link)
ABBREV = bytes([
    1, 0x11, 1, 0, 0,
    2, 0x2E, 1, 0x01, 0x13, 0x11, 0x01, 0x12, 0x06, 0, 0,
    3, 0x0B, 0, 0, 0,
    4, 0x2E, 1, 0x11, 0x01, 0x12, 0x06, 0, 0,
    0,
])
HEADER = 11  # unit_length, version 4, abbrev offset, address size


def _subprogram(sibling: int, low: int) -> bytes:
    """A linked subprogram with one lexical block child: 19 bytes."""
    return bytes([2]) + struct.pack("<IQI", sibling, low, 0x10) + bytes([3, 0])


def _unlinked(low: int) -> bytes:
    """A subprogram without a sibling link, one lexical block child: 15 bytes."""
    return bytes([4]) + struct.pack("<QI", low, 0x10) + bytes([3, 0])


def _dwarf(dies: bytes) -> DwarfData:
    body = struct.pack("<HIB", 4, 0, 8) + bytes([1]) + dies + bytes([0])
    info = struct.pack("<I", len(body)) + body
    return DwarfData({"info": info, "abbrev": ABBREV}, True, 8, "x64")


def _top(dwarf: DwarfData):  # type: ignore[no-untyped-def]
    return dwarf.dwarfinfo.get_CU_at(0).get_top_DIE()


def test_children_follow_links_and_walk_unlinked_subtrees() -> None:
    first = HEADER + 1
    second = first + 19
    third = second + 15
    dwarf = _dwarf(_subprogram(second, 0x1000) + _unlinked(0x2000) + _subprogram(third + 19, 0x3000))
    found = list(children(_top(dwarf), DieBudget(100)))
    assert [(d.offset, d.tag) for d in found] == [
        (first, "DW_TAG_subprogram"), (second, "DW_TAG_subprogram"), (third, "DW_TAG_subprogram")]
    assert [d.offset for d in found] == [d.offset for d in _top(_dwarf(
        _subprogram(second, 0x1000) + _unlinked(0x2000) + _subprogram(third + 19, 0x3000)))
        .iter_children()]
    assert [d.tag for d in children(found[1], DieBudget(100))] == ["DW_TAG_lexical_block"]
    scopes = CUScopes(dwarf, 0)
    assert [ranges for ranges, _die in scopes.subprograms] == [
        [(0x1000, 0x1010)], [(0x2000, 0x2010)], [(0x3000, 0x3010)]]


@pytest.mark.parametrize("sibling", [HEADER + 1, HEADER, 0], ids=["itself", "its parent", "zero"])
def test_a_sibling_link_pointing_back_is_an_error(sibling: int) -> None:
    dwarf = _dwarf(_subprogram(sibling, 0x1000))
    with pytest.raises(SymbolError, match="links back"):
        list(children(_top(dwarf), DieBudget(100)))
    with pytest.raises(SymbolError):
        CUScopes(dwarf, 0)


def test_a_sibling_link_out_of_the_cu_is_an_error() -> None:
    dwarf = _dwarf(_subprogram(0x7000, 0x1000))
    with pytest.raises(SymbolError):
        list(children(_top(dwarf), DieBudget(100)))


def test_the_budget_bounds_a_walk() -> None:
    dwarf = _dwarf(b"".join(_unlinked(0x1000 * i) for i in range(1, 6)))
    assert len(list(children(_top(dwarf), DieBudget(100)))) == 5
    with pytest.raises(SymbolError, match="too many DIEs"):
        list(children(_top(dwarf), DieBudget(8)))
