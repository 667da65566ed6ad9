"""Our .debug_line decoder yields pyelftools' rows; malformed programs raise SymbolError."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from tests.unit.symbols.programs import INLINE_CXX, build_c
from tests.unit.symbols.test_libc import _debug_file
from unwinder.errors import SymbolError
from unwinder.symbols.lineprog import decode_line_program, parse_line_header
from unwinder.symbols.sections import read_section


def _compare(path: Path, sample: int) -> int:
    with open(path, "rb") as handle:
        elf = ELFFile(handle)
        dwarf = elf.get_dwarf_info()
        line = read_section(elf, ".debug_line")
        strs = read_section(elf, ".debug_str")
        line_strs = read_section(elf, ".debug_line_str")
        cus = list(dwarf.iter_CUs())
        rows = 0
        for cu in random.Random(4).sample(cus, min(sample, len(cus))):
            top = cu.get_top_DIE()
            if "DW_AT_stmt_list" not in top.attributes:
                continue
            reference = dwarf.line_program_for_CU(cu)
            expected = [(e.state.address, e.state.file, e.state.line, e.state.column,
                         # pyelftools clears is_stmt on end_sequence rows
                         bool(e.state.is_stmt) or e.state.end_sequence, e.state.end_sequence)
                        for e in reference.get_entries() if e.state]
            attrs = top.attributes
            program = parse_line_header(
                line, attrs["DW_AT_stmt_list"].value,
                comp_dir=attrs["DW_AT_comp_dir"].value.decode() if "DW_AT_comp_dir" in attrs
                else None, debug_str=strs, debug_line_str=line_strs)
            decode_line_program(line, program)
            got = [(a, f, ln, c, s or e, e) for a, f, ln, c, s, e in program.rows()]
            assert got == expected, f"CU {cu.cu_offset:#x}"
            names = [e.name.decode() for e in reference.header.file_entry]
            assert [p.rsplit("/", 1)[-1] for p in program.files[-len(names):]] == \
                [n.rsplit("/", 1)[-1] for n in names]
            rows += len(got)
        return rows


@pytest.mark.skipif(_debug_file() is None, reason="libc6-dbg not installed")
def test_rows_identical_on_glibc_dwarf5() -> None:
    assert _compare(_debug_file(), 40) > 1000


@pytest.mark.parametrize("flags", [("-O2", "-gdwarf-4"), ("-O2", "-gdwarf-5"), ("-O0", "-gdwarf-2")])
def test_rows_identical_on_gcc_output(tmp_path: Path, flags: tuple[str, ...]) -> None:
    exe = build_c(tmp_path, flags, compiler="g++", source=INLINE_CXX, suffix=".cc")
    assert _compare(exe, 10) > 50


@pytest.mark.parametrize("data", [
    b"", b"\x10\x00\x00\x00", b"\xff\xff\xff\xff\x00", b"\x08\x00\x00\x00\x07\x00" + b"\0" * 6,
    b"\x0c\x00\x00\x00\x04\x00\x06\x00\x00\x00\x01\x01\x01\x00\x00\x00",  # line_range 0
])
def test_malformed_headers(data: bytes) -> None:
    with pytest.raises(SymbolError):
        parse_line_header(data, 0)


def test_truncated_program_raises(tmp_path: Path) -> None:
    exe = build_c(tmp_path, ("-O2", "-gdwarf-4"))
    with open(exe, "rb") as handle:
        line = read_section(ELFFile(handle), ".debug_line")
    program = parse_line_header(line, 0, comp_dir="/x")
    cut = line[:program.end - 2] + b"\x00\x09"  # an extended opcode longer than the rest
    with pytest.raises(SymbolError):
        decode_line_program(cut, parse_line_header(cut, 0, comp_dir="/x"))
