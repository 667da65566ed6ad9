"""The readers that replace pyelftools on the hot path (program and section headers,
abbreviation tables, lazily inflated DWARF sections) agree with pyelftools' own objects, and
fail with the unwinder's errors on truncated input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from elftools.dwarf.abbrevtable import AbbrevTable as PyelftoolsAbbrevTable
from elftools.elf.elffile import ELFFile
from elftools.elf.enums import ENUM_E_TYPE, ENUM_SH_TYPE_AMD64

from tests.unit.symbols.programs import INLINE_CXX, build_c
from unwinder.elffile import ElfFile
from unwinder.elfimage import BadImage, ImageLayout, LoadSegment, layout_from_elffile
from unwinder.errors import SymbolError
from unwinder.symbols.abbrev import parse_abbrev_table
from unwinder.symbols.dwarf import DwarfData
from unwinder.symbols.sections import section_header

FILES = [p for p in (Path("/lib/x86_64-linux-gnu/libc.so.6"), Path("/bin/true")) if p.exists()]


def _layout_by_pyelftools(elf: ELFFile) -> ImageLayout:
    etype = ENUM_E_TYPE[elf["e_type"]] if isinstance(elf["e_type"], str) else elf["e_type"]
    loads = tuple(LoadSegment(s["p_offset"], s["p_vaddr"], s["p_filesz"], s["p_memsz"],
                              s["p_flags"]) for s in elf.iter_segments() if s["p_type"] == "PT_LOAD")
    build_id = None
    for seg in elf.iter_segments():
        if seg["p_type"] == "PT_NOTE":
            for note in seg.iter_notes():
                if note["n_type"] == "NT_GNU_BUILD_ID":
                    build_id = bytes.fromhex(note["n_desc"])
    return ImageLayout(etype, loads, build_id)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_layout_matches_pyelftools(path: Path) -> None:
    with open(path, "rb") as handle, open(path, "rb") as other:
        assert layout_from_elffile(ElfFile(handle)) == _layout_by_pyelftools(ELFFile(other))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_section_headers_match_pyelftools(path: Path) -> None:
    with open(path, "rb") as handle, open(path, "rb") as other:
        elf, reference = ELFFile(handle), ELFFile(other)
        names = [s.name for s in reference.iter_sections()]
        for name in [*names, ".no-such-section"]:
            mine = section_header(elf, name)
            theirs = reference.get_section_by_name(name)
            assert (mine is None) == (theirs is None)
            if theirs is not None:
                expected = dict(theirs.header)
                expected["sh_type"] = ENUM_SH_TYPE_AMD64.get(expected["sh_type"],
                                                             expected["sh_type"])
                assert mine._asdict() == expected


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_our_elf_header_matches_pyelftools(path: Path) -> None:
    with open(path, "rb") as handle, open(path, "rb") as other:
        mine, theirs = ElfFile(handle), ELFFile(other)
        assert (mine.elfclass, mine.little_endian) == (theirs.elfclass, theirs.little_endian)
        assert mine.num_sections() == theirs.num_sections()
        assert mine.get_shstrndx() == theirs.get_shstrndx()
        for name in ("e_phoff", "e_shoff", "e_phnum", "e_phentsize", "e_shentsize", "e_entry"):
            assert mine[name] == theirs[name]
        assert section_header(mine, ".text") == section_header(theirs, ".text")
        assert mine.get_machine_arch() == theirs.get_machine_arch()  # pyelftools, on demand


def test_truncated_program_headers_are_a_bad_image() -> None:
    data = Path("/bin/true").read_bytes()
    elf = ElfFile(io.BytesIO(data[:0x100]))  # the ELF header survives, the phdr table does not
    with pytest.raises(BadImage):
        layout_from_elffile(elf)


def test_lazy_dwarf_sections_are_read_on_first_use(tmp_path: Path) -> None:
    program = build_c(tmp_path, ("-O2", "-g"))
    with open(program, "rb") as handle:
        data = DwarfData.load(ELFFile(handle))
        assert data is not None
        assert "line" not in data.sections  # not inflated for DIE walks
        line = data.get("line")
        assert line is not None and len(line) > 0
        assert data.get("loclists") is None or isinstance(data.get("loclists"), bytes)


def _decls(table) -> dict[int, tuple]:  # type: ignore[no-untyped-def]
    out = {}
    for code in table._decls if hasattr(table, "_decls") else table._abbrev_map:
        decl = table.get_abbrev(code)
        specs = [(a.name, a.form, a.value if a.form == "DW_FORM_implicit_const" else None)
                 for a in decl["attr_spec"]]
        out[code] = (decl["tag"], decl["children_flag"], decl.has_children(), specs)
    return out


def test_abbrev_tables_match_pyelftools(tmp_path: Path) -> None:
    program = build_c(tmp_path, ("-O2", "-g", "-gdwarf-5"), compiler="g++", source=INLINE_CXX,
                      suffix=".cc")
    with open(program, "rb") as handle:
        data = DwarfData.load(ELFFile(handle))
        assert data is not None
        info = data.dwarfinfo
        offsets = {cu["debug_abbrev_offset"] for cu in info.iter_CUs()}
        assert offsets
        for offset in offsets:
            theirs = PyelftoolsAbbrevTable(info.structs, info.debug_abbrev_sec.stream, offset)
            assert _decls(parse_abbrev_table(data.sections["abbrev"], offset)) == _decls(theirs)
        # and the DIE walk through our tables sees what pyelftools' own would
        tops = [cu.get_top_DIE().tag for cu in info.iter_CUs()]
        assert tops and all(tag == "DW_TAG_compile_unit" for tag in tops)


def test_abbrev_table_truncated_or_outside_is_a_symbol_error() -> None:
    # code 1, DW_TAG_subprogram, children yes, (DW_AT_name, DW_FORM_string), (0, 0), 0
    table = bytes([1, 0x2E, 1, 0x03, 0x08, 0, 0, 0])
    parsed = parse_abbrev_table(table, 0)
    assert parsed.get_abbrev(1)["tag"] == "DW_TAG_subprogram"
    assert [(a.name, a.form) for a in parsed.get_abbrev(1)["attr_spec"]] == [
        ("DW_AT_name", "DW_FORM_string")]
    for cut in range(1, len(table) - 1):
        with pytest.raises(SymbolError):
            parse_abbrev_table(table[:cut], 0)
    with pytest.raises(SymbolError):
        parse_abbrev_table(table, len(table))
    with pytest.raises(SymbolError):
        parse_abbrev_table(bytes([0x80] * 200), 0)  # an endless LEB128
