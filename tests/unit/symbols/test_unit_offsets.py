"""Unit offsets of ``.debug_info`` from the initial lengths alone: byte fixtures, and the same
list as pyelftools' ``iter_CUs`` on the libc6-dbg debug file."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from unwinder.elffile import ElfFile
from unwinder.errors import SymbolError
from unwinder.symbols.cuindex import unit_offsets
from unwinder.symbols.dwarf import DwarfData
from unwinder.symbols.identity import find_build_id
from unwinder.symbols.locate import DebugFileLocator


def unit32(body: int, order: str = "<") -> bytes:
    return struct.pack(order + "I", body) + bytes(body)


def unit64(body: int) -> bytes:
    return struct.pack("<IQ", 0xFFFFFFFF, body) + bytes(body)


def test_32_and_64_bit_units() -> None:
    info = unit32(7) + unit64(20) + unit32(0) + unit32(11)
    assert unit_offsets(info, True) == [0, 11, 43, 47]
    assert unit_offsets(unit32(5, ">") + unit32(3, ">"), False) == [0, 9]
    assert unit_offsets(b"", True) == []


@pytest.mark.parametrize("info", [unit32(7) + b"\x01\x00", unit32(7) + b"\xff\xff\xff\xff\x00",
                                  unit32(7)[:-1], struct.pack("<I", 100) + bytes(10)],
                         ids=["short header", "short 64-bit header", "one byte short",
                              "past the end"])
def test_truncated_units_are_errors(info: bytes) -> None:
    with pytest.raises(SymbolError):
        unit_offsets(info, True)


def test_the_same_units_as_pyelftools_on_libc() -> None:
    libc = Path("/lib/x86_64-linux-gnu/libc.so.6")
    with open(libc, "rb") as handle:
        build_id = find_build_id(ElfFile(handle))
    debug = DebugFileLocator(debuginfod_urls=[]).find_by_build_id(build_id) if build_id else None
    if debug is None:
        pytest.skip("libc6-dbg not installed (scripts/bootstrap installs it)")
    with open(debug, "rb") as handle:
        data = DwarfData.load(ElfFile(handle))
        assert data is not None
        expected = [cu.cu_offset for cu in data.dwarfinfo.iter_CUs()]
        assert len(expected) > 1000
        assert unit_offsets(data.get("info") or b"", data.little_endian) == expected
