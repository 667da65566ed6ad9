"""Describing addresses in a child process (:mod:`unwinder.symbols.apart`): what it leaves in
the cache answers as an in-process description would, and a child that fails or hangs is
reported, never raised."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest

from unwinder.elffile import ElfFile
from unwinder.symbols.apart import ColdModule, describe_apart
from unwinder.symbols.cache import SymbolCache
from unwinder.symbols.identity import find_build_id
from unwinder.symbols.locate import DebugFileLocator
from unwinder.symbols.module import ModuleSymbols

pytestmark = pytest.mark.e2e

LIBC = Path("/lib/x86_64-linux-gnu/libc.so.6")


def _defined_functions(path: Path, count: int) -> list[int]:
    """Addresses inside ``count`` functions of ``path``'s dynamic symbol table."""
    out = subprocess.run(["nm", "-D", "--defined-only", str(path)], capture_output=True,
                         text=True, check=True).stdout
    addresses = sorted({int(line.split()[0], 16) for line in out.splitlines()
                        if len(line.split()) == 3 and line.split()[1] in "Tt"})
    step = max(len(addresses) // count, 1)
    return [address + 4 for address in addresses[::step][:count]]


def _libc(cache: SymbolCache | None, locator: DebugFileLocator) -> ModuleSymbols:
    elffile = ElfFile(open(LIBC, "rb"))  # noqa: SIM115 - lives as long as the test
    return ModuleSymbols.load(elffile, path=str(LIBC), build_id=find_build_id(elffile),
                              locator=locator, cache=cache)


def test_the_child_fills_the_cache_with_the_same_answers(tmp_path: Path) -> None:
    locator = DebugFileLocator(debuginfod_urls=[])
    addresses = _defined_functions(LIBC, 40)
    expected = [_libc(None, locator).describe(a) for a in addresses]
    cache = SymbolCache(tmp_path / "cache")
    parent = _libc(cache, locator)
    assert parent.unanswered(addresses) == addresses
    with open(LIBC, "rb") as handle:
        usage = describe_apart([ColdModule(handle.fileno(), str(LIBC), None, tuple(addresses))],
                               cache.directory, locator)
    assert usage.error is None, usage
    assert usage.maxrss_kib > 10_000 and usage.cpu > 0  # an interpreter's worth at least
    parent.refresh()
    assert parent.unanswered(addresses) == []
    assert [parent.describe(a) for a in addresses] == expected
    assert any(e[0].function for e in expected)


def test_the_parents_file_offset_is_left_alone(tmp_path: Path) -> None:
    """The child gets the parent's descriptor; reading through it must not move the offset
    under the parent's buffered reader (which reads on from where it left the file)."""
    expected = LIBC.read_bytes()[:1 << 20]
    with open(LIBC, "rb") as handle:
        assert handle.read(100) == expected[:100]  # the buffer is filled, the offset moved
        usage = describe_apart([ColdModule(handle.fileno(), str(LIBC), None,
                                           tuple(_defined_functions(LIBC, 5)))],
                               tmp_path / "cache", DebugFileLocator(debuginfod_urls=[]))
        assert usage.error is None, usage
        assert handle.read(len(expected) - 100) == expected[100:]


def test_a_hung_child_is_killed_at_its_deadline(tmp_path: Path) -> None:
    with open(LIBC, "rb") as handle:
        usage = describe_apart([ColdModule(handle.fileno(), str(LIBC), None, (0x1000,))],
                               tmp_path / "cache", DebugFileLocator(debuginfod_urls=[]),
                               timeout=0.001)
    assert usage.error == "killed after 0.001 s"


def test_a_module_that_fails_in_the_child_is_reported(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    bogus = tmp_path / "not-elf"
    bogus.write_bytes(b"\x7fELF but not really" * 10)
    with open(bogus, "rb") as handle, caplog.at_level(logging.WARNING):
        usage = describe_apart([ColdModule(handle.fileno(), str(bogus), None, (0x10,))],
                               tmp_path / "cache", DebugFileLocator(debuginfod_urls=[]))
    assert usage.error == "exit status 1"
    assert f"symbols child: {bogus}:" in caplog.text
