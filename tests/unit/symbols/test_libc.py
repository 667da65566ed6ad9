"""glibc through its libc6-dbg debug file (found by build-id): the names gdb shows."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from unwinder.symbols import DebugFileLocator, ModuleSymbols
from unwinder.symbols.locate import read_file_build_id

LIBC = Path("/lib/x86_64-linux-gnu/libc.so.6")


def _debug_file() -> Path | None:
    build_id = read_file_build_id(LIBC) if LIBC.exists() else None
    if not build_id:
        return None
    path = Path("/usr/lib/debug/.build-id") / build_id[:1].hex() / f"{build_id[1:].hex()}.debug"
    return path if path.exists() else None


pytestmark = pytest.mark.skipif(_debug_file() is None,
                                reason="libc6-dbg not installed (scripts/bootstrap installs it)")


@pytest.fixture(scope="module")
def libc():
    with open(LIBC, "rb") as handle:
        yield ModuleSymbols.load(ELFFile(handle), path=str(LIBC), build_id=None,
                                 locator=DebugFileLocator(debuginfod_urls=[]))


def _symbol_address(name: str) -> int:
    out = subprocess.run(["nm", str(_debug_file())], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16)
    raise AssertionError(f"{name} not in the debug file")


def _gdb_function(address: int) -> str:
    out = subprocess.run(["gdb", "-nx", "-batch", "-ex", f"info line *{address:#x}", str(LIBC)],
                         capture_output=True, text=True).stdout
    return out.split("<")[1].split("+")[0].split(">")[0] if "<" in out else ""


def test_debug_file_found_by_build_id(libc) -> None:
    assert libc.debug_file == str(_debug_file())
    assert libc.symbol_source in ("debug-symtab", "cache")


@pytest.mark.parametrize("name", ["__restore_rt", "start_thread", "__libc_start_call_main"])
def test_static_functions_resolve(libc, name: str) -> None:
    address = _symbol_address(name)
    for probe in (address, address + 1):
        frames = libc.describe(probe)
        assert frames[-1].function == name
        assert frames[-1].function_offset == probe - address


def test_alias_names_follow_dwarf_like_gdb(libc) -> None:
    address = _symbol_address("raise") + 4
    assert libc.describe(address)[-1].function == "__GI_raise" == _gdb_function(address)


def test_inline_chain_in_libc_matches_eu_addr2line(libc) -> None:
    start = _symbol_address("__pthread_create_2_1")
    addresses = list(range(start, start + 0x600, 7))
    out = subprocess.run(["eu-addr2line", "-a", "-f", "-i", "-e", str(LIBC),
                          *(hex(a) for a in addresses)], capture_output=True, text=True,
                         check=True).stdout
    from tests.unit.symbols.programs import _parse_groups
    expected = _parse_groups(out, eu=True)
    inline_seen = 0
    for address in addresses:
        frames = libc.describe(address)
        got = [(f.function, f.location.file if f.location else "??",
                f.location.line if f.location else 0) for f in frames]
        want = [(f.function, f.file, f.line) for f in expected[address]]
        assert got == want, hex(address)
        inline_seen += len(frames) > 1
    assert inline_seen
