"""Symbol tables: alias choice, zero-size symbols, .symtab/.dynsym/MiniDebugInfo selection."""

from __future__ import annotations

import lzma
import struct
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from tests.unit.symbols.programs import build_c, function_ranges, run
from unwinder.errors import SymbolError
from unwinder.symbols import ModuleSymbols
from unwinder.symbols.symtab import SymbolSource, SymbolTable

FUNC, IFUNC, OBJECT = 2, 10, 1
LOCAL, GLOBAL, WEAK = 0, 1, 2


def _source(symbols: list[tuple[str, int, int, int, int]]) -> SymbolSource:
    """(name, value, size, binding, type) entries in section 1 = [0x1000, 0x2000)."""
    strings = b"\0"
    entries = [struct.pack("<IBBHQQ", 0, 0, 0, 0, 0, 0)]
    for name, value, size, bind, kind in symbols:
        entries.append(struct.pack("<IBBHQQ", len(strings), bind << 4 | kind, 0, 1, value, size))
        strings += name.encode() + b"\0"
    return SymbolSource(b"".join(entries), strings, 64, True, ((0, 0), (0x1000, 0x1000)), "t")


def test_alias_choice_sized_global_weak_local() -> None:
    table = SymbolTable.from_sources([_source([
        ("__GI_raise", 0x1100, 0x31, LOCAL, FUNC), ("gsignal", 0x1100, 0x31, WEAK, FUNC),
        ("raise", 0x1100, 0x31, GLOBAL, FUNC), ("raise_label", 0x1100, 0, GLOBAL, FUNC),
        ("w", 0x1200, 0x10, WEAK, FUNC), ("l", 0x1200, 0x10, LOCAL, FUNC),
        ("ifunc", 0x1300, 0x10, GLOBAL, IFUNC), ("func", 0x1300, 0x10, GLOBAL, FUNC),
        ("data", 0x1400, 0x10, GLOBAL, OBJECT),
    ])])
    assert table.lookup(0x1105) == ("raise", 0x1100)
    assert table.lookup(0x1205) == ("w", 0x1200)
    assert table.lookup(0x1300) == ("func", 0x1300)
    assert table.lookup(0x1405) is None
    assert table.lookup(0x1131) is None  # past the sized symbol, in padding


def test_zero_size_extends_to_next_symbol_within_section() -> None:
    table = SymbolTable.from_sources([_source([
        ("__restore_rt", 0x1500, 0, LOCAL, FUNC), ("next", 0x1520, 0x10, GLOBAL, FUNC),
        ("last_asm", 0x1f00, 0, LOCAL, FUNC),
    ])])
    assert table.lookup(0x151F) == ("__restore_rt", 0x1500)
    assert table.lookup(0x1520) == ("next", 0x1520)
    assert table.lookup(0x1FFF) == ("last_asm", 0x1F00)
    assert table.lookup(0x2000) is None  # section end


def test_zero_size_symbol_at_the_last_address_does_not_overflow() -> None:
    """Found by the unwinder fuzz (FUZZ_SEED=1636374423): a corrupt .symtab entry at 2**64-1
    of size 0 made the end 2**64, past an unsigned 64-bit array."""
    table = SymbolTable.from_sources([_source([
        ("ok", 0x1100, 0x10, GLOBAL, FUNC), ("edge", (1 << 64) - 1, 0, GLOBAL, FUNC),
    ])])
    assert table.lookup(0x1105) == ("ok", 0x1100)
    assert table.lookup((1 << 64) - 1) is None


def test_corrupt_name_offset_raises_symbol_error() -> None:
    source = _source([("f", 0x1100, 4, GLOBAL, FUNC)])
    bad = SymbolSource(source.symbols, b"\0f", 64, True, source.section_bounds, "t")
    with pytest.raises(SymbolError):
        SymbolTable.from_sources([SymbolSource(bad.symbols, b"", 64, True, (), "t")])


def _load(path: Path, **kwargs) -> ModuleSymbols:
    handle = open(path, "rb")  # noqa: SIM115 - the module reads lazily
    return ModuleSymbols.load(ELFFile(handle), path=str(path), build_id=None, **kwargs)


@pytest.fixture(scope="module")
def program(tmp_path_factory) -> Path:
    return build_c(tmp_path_factory.mktemp("symtab"), ("-O2", "-g", "-rdynamic"))


def test_stripped_binary_uses_dynsym(program: Path, tmp_path: Path) -> None:
    ranges = function_ranges(program)
    stripped = tmp_path / "stripped"
    run("strip", "-o", stripped, program)
    module = _load(stripped)
    assert module.symbol_source == "dynsym"
    start, _ = ranges["exported_fn"]
    assert module.describe(start + 1)[0].function == "exported_fn"
    frames = module.describe(ranges["helper_static"][0] + 1)
    assert frames[0].function != "helper_static"  # static: not in .dynsym


def test_minidebuginfo_resolves_static_functions(program: Path, tmp_path: Path) -> None:
    """Fedora's recipe (find-debuginfo.sh): the static functions missing from .dynsym,
    kept in an xz-compressed debug-only ELF added as .gnu_debugdata."""
    ranges = function_ranges(program)
    dynsyms = {line.split()[-1] for line in run("nm", "-D", "--format=posix", "--defined-only",
                                                 program).splitlines() if line.split()}
    funcs = {line.split()[0] for line in run("nm", "--format=posix", "--defined-only",
                                               program).splitlines()
             if line.split()[1] in "tT"}
    keep = tmp_path / "keep"
    keep.write_text("\n".join(sorted(funcs - dynsyms)) + "\n")
    mini = tmp_path / "mini.debug"
    run("objcopy", "--only-keep-debug", program, mini)
    run("objcopy", "-S", "--remove-section", ".gdb_index", "--remove-section", ".comment",
        f"--keep-symbols={keep}", mini)
    (tmp_path / "mini.xz").write_bytes(lzma.compress(mini.read_bytes()))
    final = tmp_path / "final"
    run("strip", "-o", final, program)
    run("objcopy", "--add-section", f".gnu_debugdata={tmp_path / 'mini.xz'}", final)
    module = _load(final)
    assert module.symbol_source == "minidebuginfo+dynsym"
    for name in ("helper_static", "level1", "exported_fn"):
        start, _ = ranges[name]
        frames = module.describe(start + 2)
        assert frames[-1].function == name and frames[-1].function_offset == 2
    assert subprocess.run(["eu-addr2line", "-f", "-e", str(final),
                           hex(ranges["helper_static"][0] + 2)], capture_output=True,
                          text=True).stdout.split()[0] == "helper_static"


def test_corrupt_minidebuginfo_degrades_to_dynsym(program: Path, tmp_path: Path) -> None:
    (tmp_path / "junk.xz").write_bytes(lzma.compress(b"not an ELF file at all")[:-3])
    final = tmp_path / "final"
    run("strip", "-o", final, program)
    run("objcopy", "--add-section", f".gnu_debugdata={tmp_path / 'junk.xz'}", final)
    assert _load(final).symbol_source == "dynsym"


def test_symtab_preferred_and_no_dwarf_still_names(program: Path, tmp_path: Path) -> None:
    nodebug = tmp_path / "nodebug"
    run("objcopy", "--strip-debug", program, nodebug)
    module = _load(nodebug)
    assert module.symbol_source == "symtab"
    start, _ = function_ranges(program)["helper_static"]
    frames = module.describe(start + 3)
    assert len(frames) == 1 and frames[0].function == "helper_static"
    assert frames[0].location is None and frames[0].function_offset == 3


def test_unknown_address_gives_one_empty_frame(program: Path) -> None:
    frames = _load(program).describe(0xDEAD0000)
    assert len(frames) == 1 and frames[0].function is None and not frames[0].inline
