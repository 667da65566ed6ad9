"""SymbolCache: round trips, concurrent writers, corrupt files rebuilt and never trusted."""

from __future__ import annotations

import multiprocessing
import tracemalloc
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from tests.unit.symbols.programs import build_c, function_ranges
from unwinder.symbols import ModuleSymbols, SymbolCache
from unwinder.symbols import cache as cache_module
from unwinder.symbols.cache import Kind


@pytest.fixture(scope="module")
def program(tmp_path_factory) -> Path:
    return build_c(tmp_path_factory.mktemp("cache"))


def _load(program: Path, cache: SymbolCache) -> ModuleSymbols:
    handle = open(program, "rb")  # noqa: SIM115 - the module reads lazily
    return ModuleSymbols.load(ELFFile(handle), path=str(program), build_id=None, cache=cache)


def _fill(program: Path, cache: SymbolCache) -> None:
    module = _load(program, cache)
    _all_frames(module, program)
    module.save()


def _all_frames(module: ModuleSymbols, program: Path):
    start, end = function_ranges(program)["level1"]
    return [module.describe(a) for a in range(start, end)]


def test_round_trip_gives_identical_answers(program: Path, tmp_path: Path) -> None:
    cache = SymbolCache(tmp_path / "c")
    first = _load(program, cache)
    assert first.symbol_source == "symtab"
    expected = _all_frames(first, program)
    files = sorted(p.suffix for p in (tmp_path / "c").iterdir())
    assert files == [".lines", ".sym"]
    second = _load(program, cache)
    assert second.symbol_source == "cache"
    assert _all_frames(second, program) == expected
    uncached = _load(program, None)  # per-CU line decoding
    assert _all_frames(uncached, program) == expected


def test_described_addresses_are_answered_without_dwarf(program: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cache = SymbolCache(tmp_path / "c")
    first = _load(program, cache)
    expected = _all_frames(first, program)
    first.save()
    assert sorted(p.suffix for p in (tmp_path / "c").iterdir()) == [".desc", ".lines", ".sym"]

    from unwinder.symbols.dwarf import DwarfData

    def no_dwarf(elffile):  # type: ignore[no-untyped-def]
        raise AssertionError("the DWARF was opened for a described address")

    monkeypatch.setattr(DwarfData, "load", staticmethod(no_dwarf))
    warm = _load(program, cache)
    assert _all_frames(warm, program) == expected
    assert warm._symbols is None  # nor were the symbols read


def test_new_addresses_are_added_to_the_described_ones(program: Path, tmp_path: Path) -> None:
    cache = SymbolCache(tmp_path / "c")
    start, end = function_ranges(program)["level1"]
    first = _load(program, cache)
    first.describe(start)
    first.save()
    second = _load(program, cache)
    assert [second.describe(a) for a in range(start, end)] == \
        [_load(program, None).describe(a) for a in range(start, end)]
    second.save()
    stored = cache.load_described(f"{second.build_id.hex()}-m")
    assert stored is not None and len(stored) == end - start


@pytest.mark.parametrize("damage", ["truncate", "flip", "magic", "empty"])
def test_corrupt_file_is_rebuilt(program: Path, tmp_path: Path, damage: str) -> None:
    cache = SymbolCache(tmp_path / "c")
    filler = _load(program, cache)
    expected = _all_frames(filler, program)
    filler.save()
    for path in (tmp_path / "c").iterdir():
        data = bytearray(path.read_bytes())
        if damage == "truncate":
            data = data[:len(data) // 2]
        elif damage == "flip":
            data[-5] ^= 0x40
        elif damage == "magic":
            data[0:8] = b"XXXXXXXX"
        else:
            data = bytearray()
        path.write_bytes(bytes(data))
    module = _load(program, cache)
    assert _all_frames(module, program) == expected  # not from the damaged cache
    assert module.symbol_source == "symtab"
    assert _load(program, cache).symbol_source == "cache"  # rewritten


def test_an_oversized_file_is_rebuilt(program: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cache = SymbolCache(tmp_path / "c")
    _fill(program, cache)
    smallest = min(path.stat().st_size for path in (tmp_path / "c").iterdir())
    monkeypatch.setattr(cache_module, "MAX_CACHE_FILE", smallest - 1)
    assert _load(program, cache).symbol_source == "symtab"  # too large: not trusted


def test_loading_allocates_what_the_file_holds(program: Path, tmp_path: Path) -> None:
    """A load reads the file's size, not the cap: ``read(n)`` allocates ``n`` first (it asked
    for 2 GiB of address space each time)."""
    cache = SymbolCache(tmp_path / "c")
    _fill(program, cache)
    tracemalloc.start()
    try:
        assert _load(program, cache).symbol_source == "cache"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def _writer(directory: str, rounds: int) -> None:
    from array import array

    from unwinder.symbols.symtab import SymbolTable
    cache = SymbolCache(directory)
    for i in range(rounds):
        n = 2000 + i
        table = SymbolTable(array("Q", range(0, n * 16, 16)), array("Q", range(8, n * 16 + 8, 16)),
                            array("I", [0] * n), b"f\0")
        cache.store_symbols("abcd-m", table)


def test_concurrent_writers_never_leave_a_partial_file(tmp_path: Path) -> None:
    directory = str(tmp_path / "c")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(directory, 60)) for _ in range(2)]
    for proc in procs:
        proc.start()
    cache = SymbolCache(directory)
    seen = 0
    while any(p.is_alive() for p in procs):
        table = cache.load_symbols("abcd-m")
        if table is not None:
            assert len(table) >= 2000 and table.lookup(16 * 5 + 3) == ("f", 80)
            seen += 1
    for proc in procs:
        proc.join(10)
        assert proc.exitcode == 0
    assert cache.load_symbols("abcd-m") is not None
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["abcd-m.sym"]


def test_bad_keys_and_kinds(tmp_path: Path) -> None:
    cache = SymbolCache(tmp_path)
    with pytest.raises(Exception, match="cache key"):
        cache.path("../x", Kind.SYMBOLS)
    (tmp_path / "k.lines").write_bytes(b"CDSYMC\0\n" + b"\0" * 40)
    assert cache.load_lines("k") is None


def test_user_cache_dir_follows_xdg_and_falls_back_to_home(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_module.user_cache_dir("symbols") == tmp_path / "xdg" / "coredumpd" / "symbols"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # ignored, as the XDG spec says
    assert cache_module.user_cache_dir("x") == tmp_path / "home" / ".cache" / "coredumpd" / "x"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_module.user_cache_dir("x") == tmp_path / "home" / ".cache" / "coredumpd" / "x"
