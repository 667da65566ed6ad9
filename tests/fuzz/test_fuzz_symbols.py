"""Fuzz symbolisation: mutated symbol tables, .debug_line, whole ELF files, cache files and
mangled names. Only UnwindError may escape, and nothing may hang."""

from __future__ import annotations

import random
import shutil
import time
from io import BytesIO
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from tests.unit.symbols.programs import INLINE_CXX, build_c, function_ranges
from unwinder.errors import UnwindError
from unwinder.symbols import ModuleSymbols, demangle
from unwinder.symbols.cache import Kind, SymbolCache, decode_parts, framed_parts
from unwinder.symbols.lineprog import decode_line_program, parse_line_header
from unwinder.symbols.linetable import LineTable
from unwinder.symbols.sections import read_section
from unwinder.symbols.symtab import SymbolTable, read_symbol_source

pytestmark = pytest.mark.slow

#: seconds of fuzzing per target; each single case must finish well within SLOW
BUDGET = 2.5
SLOW = 2.0


def _mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        choice = rng.random()
        if not out:
            break
        pos = rng.randrange(len(out))
        if choice < 0.6:
            out[pos] = rng.randrange(256)
        elif choice < 0.75:
            out[pos:pos + 4] = rng.choice([b"\xff\xff\xff\xff", b"\0\0\0\0", b"\x7f\xff\xff\xff"])
        elif choice < 0.9:
            del out[pos:pos + rng.randint(1, 64)]
        else:
            out[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return bytes(out)


def _fuzz(target, rng: random.Random) -> int:
    cases = 0
    stop = time.monotonic() + BUDGET
    while time.monotonic() < stop:
        started = time.monotonic()
        try:
            target(rng)
        except UnwindError:
            pass
        assert time.monotonic() - started < SLOW, "one case took too long"
        cases += 1
    return cases


@pytest.fixture(scope="module")
def program(tmp_path_factory) -> Path:
    return build_c(tmp_path_factory.mktemp("fuzz"), ("-O2", "-g"), compiler="g++",
                   source=INLINE_CXX, suffix=".cc")


def test_fuzz_symbol_tables(program: Path) -> None:
    with open(program, "rb") as handle:
        source = read_symbol_source(ELFFile(handle), ".symtab", "fuzz")
    assert source is not None

    def target(rng: random.Random) -> None:
        mutated = type(source)(_mutate(rng, source.symbols), _mutate(rng, source.strings),
                               64, True, source.section_bounds, "fuzz")
        table = SymbolTable.from_sources([mutated])
        for _ in range(20):
            found = table.lookup(rng.randrange(0, 0x10000))
            assert found is None or isinstance(found[0], str)

    assert _fuzz(target, random.Random(1)) > 20


def test_fuzz_debug_line(program: Path) -> None:
    with open(program, "rb") as handle:
        elf = ELFFile(handle)
        line = read_section(elf, ".debug_line")
        line_str = read_section(elf, ".debug_line_str")

    def target(rng: random.Random) -> None:
        data = _mutate(rng, line)
        programs = []
        offset = 0
        while offset < len(data) and len(programs) < 50:
            program_ = parse_line_header(data, offset, comp_dir="/d", debug_line_str=line_str)
            programs.append(decode_line_program(data, program_))
            offset = program_.end
        table = LineTable.from_programs(programs)
        for _ in range(20):
            table.lookup(rng.randrange(0, 0x10000))

    assert _fuzz(target, random.Random(2)) > 20


@pytest.mark.parametrize("cached", [False, True], ids=["per-CU", "whole-table"])
def test_fuzz_whole_elf(program: Path, cached: bool, tmp_path: Path) -> None:
    """Without a cache, line programs are decoded per CU; with one, the whole table is built
    from every unit (their offsets from the initial lengths) and stored, a fresh cache each
    case."""
    image = program.read_bytes()
    ranges = list(function_ranges(program).values())

    def target(rng: random.Random) -> None:
        cache = None
        if cached:
            shutil.rmtree(tmp_path / "cache", ignore_errors=True)
            cache = SymbolCache(tmp_path / "cache")
        data = bytearray(image)
        for _ in range(rng.randint(1, 30)):  # spread damage over the whole file
            pos = rng.randrange(len(data))
            data[pos] = rng.randrange(256)
        try:
            elf = ELFFile(BytesIO(bytes(data)))
        except Exception:  # noqa: BLE001 - the caller's ELFFile() is not ours to judge
            return
        module = ModuleSymbols.load(elf, path=None, build_id=None, cache=cache)
        for _ in range(8):
            start, end = rng.choice(ranges)
            frames = module.describe(rng.randrange(start, end))
            assert frames and not frames[-1].inline

    assert _fuzz(target, random.Random(3)) > 5


def test_fuzz_cache_files() -> None:
    good = b"".join(framed_parts(Kind.SYMBOLS, [b"a" * 64, b"b" * 64, b"c" * 8, b"x\0"]))

    def target(rng: random.Random) -> None:
        decode_parts(Kind.SYMBOLS, _mutate(rng, good))

    _fuzz(target, random.Random(4))


def test_fuzz_demangler(program: Path) -> None:
    names = ["_ZN3geo5totalIdEET_RKSt6vectorINS_3BoxIS1_EESaIS4_EE",
             "_RINvNtCsgEmfK2I1SDS_4core6escape14escape_unicodeKja_ECsgY6Mt91CT9J_14rustc_demangle",
             "_ZN3std2rt10lang_start17h0123456789abcdefE",
             "_RNvMs6_NtCsgvbsrvnw3yD_9hashbrown3rawINtB6_8RawTableTReEE3newB1f_"]
    alphabet = "_RZNIEBCKLMXYSTpuvs0123456789abcdefghijklmnopqrstuvwxyzABCDEFG$."

    def target(rng: random.Random) -> None:
        name = list(rng.choice(names))
        for _ in range(rng.randint(1, 6)):
            pos = rng.randrange(len(name) + 1)
            name[pos:pos + rng.randint(0, 3)] = rng.choice(alphabet) * rng.randint(1, 3)
        text = "".join(name)
        assert isinstance(demangle(text), str)

    assert _fuzz(target, random.Random(5)) > 100
