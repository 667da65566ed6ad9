"""Separate debug files: build-id directories, .gnu_debuglink with its CRC, compressed DWARF."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from tests.unit.symbols.programs import build_c, function_ranges, run
from unwinder.symbols import DebugFileLocator, ModuleSymbols
from unwinder.symbols.identity import find_build_id, parse_debuglink
from unwinder.symbols.locate import read_file_build_id


@pytest.fixture(scope="module")
def program(tmp_path_factory) -> Path:
    return build_c(tmp_path_factory.mktemp("locate"))


def _split(program: Path, directory: Path) -> tuple[Path, Path]:
    """``directory/inl`` stripped with a debuglink to ``directory/inl.debug``."""
    directory.mkdir(parents=True, exist_ok=True)
    debug = directory / "inl.debug"
    run("objcopy", "--only-keep-debug", program, debug)
    stripped = directory / "inl"
    run("strip", "--strip-all", "-o", stripped, program)
    run("objcopy", f"--add-gnu-debuglink={debug}", stripped)
    return stripped, debug


def _describe(path: Path, address: int, locator: DebugFileLocator):
    handle = open(path, "rb")  # noqa: SIM115 - the module reads lazily
    module = ModuleSymbols.load(ELFFile(handle), path=str(path), build_id=None, locator=locator)
    return module, module.describe(address)


def _locator(tmp_path: Path, *dirs: Path) -> DebugFileLocator:
    return DebugFileLocator(debug_dirs=[str(d) for d in dirs] or [str(tmp_path / "none")],
                            debuginfod_urls=[], cache_dir=tmp_path / "cache")


def test_debuglink_with_correct_crc(program: Path, tmp_path: Path) -> None:
    stripped, debug = _split(program, tmp_path / "bin")
    start, _ = function_ranges(program)["helper_static"]
    module, frames = _describe(stripped, start + 1, _locator(tmp_path))
    assert module.debug_file == str(debug)
    assert frames[-1].function == "helper_static" and frames[-1].location is not None
    assert frames[-1].location.file.endswith("inl.c")


def test_debuglink_in_dot_debug_and_global_dir(program: Path, tmp_path: Path) -> None:
    stripped, debug = _split(program, tmp_path / "bin")
    (tmp_path / "bin" / ".debug").mkdir()
    moved = tmp_path / "bin" / ".debug" / debug.name
    shutil.move(debug, moved)
    assert _locator(tmp_path).find(build_id=None, path=str(stripped),
                                   debuglink=(debug.name, _crc(stripped))) == moved
    global_dir = tmp_path / "global"
    target = global_dir / str(stripped.parent).lstrip("/") / debug.name
    target.parent.mkdir(parents=True)
    shutil.move(moved, target)
    assert _locator(tmp_path, global_dir).find(
        build_id=None, path=str(stripped), debuglink=(debug.name, _crc(stripped))) == target


def _crc(stripped: Path) -> int:
    with open(stripped, "rb") as handle:
        elf = ELFFile(handle)
        link = parse_debuglink(elf.get_section_by_name(".gnu_debuglink").data())
    assert link is not None
    return link[1]


def test_debuglink_with_wrong_crc_is_ignored(program: Path, tmp_path: Path) -> None:
    stripped, debug = _split(program, tmp_path / "bin")
    data = bytearray(debug.read_bytes())
    data[-1] ^= 0xFF  # any change breaks the CRC
    debug.write_bytes(bytes(data))
    start, _ = function_ranges(program)["helper_static"]
    module, frames = _describe(stripped, start + 1, _locator(tmp_path))
    assert module.debug_file is None
    assert frames[-1].location is None


def test_build_id_directory_verifies_build_id(program: Path, tmp_path: Path) -> None:
    stripped, debug = _split(program, tmp_path / "bin")
    build_id = read_file_build_id(stripped)
    assert build_id and read_file_build_id(debug) == build_id
    debug_dir = tmp_path / "dbg"
    slot = debug_dir / ".build-id" / build_id[:1].hex() / f"{build_id[1:].hex()}.debug"
    slot.parent.mkdir(parents=True)
    shutil.copy(debug, slot)
    debug.unlink()  # no debuglink fallback
    locator = _locator(tmp_path, debug_dir)
    assert locator.find(build_id=build_id, path=str(stripped), debuglink=None) == slot
    other = build_c(tmp_path / "other", ("-O1", "-g"))
    shutil.copy(other, slot)  # a different build in the slot: refused
    assert locator.find(build_id=build_id, path=str(stripped), debuglink=None) is None


@pytest.mark.parametrize("kind", ["zlib", "zstd", "zlib-gnu"])
def test_compressed_debug_sections(program: Path, tmp_path: Path, kind: str) -> None:
    packed = tmp_path / "packed"
    run("objcopy", f"--compress-debug-sections={kind}", program, packed)
    section = ".zdebug_line" if kind == "zlib-gnu" else ".debug_line"
    with open(packed, "rb") as handle:
        header = ELFFile(handle).get_section_by_name(section).header
        assert kind == "zlib-gnu" or header["sh_flags"] & 0x800
    start, end = function_ranges(program)["level1"]
    plain = ModuleSymbols.load(ELFFile(open(program, "rb")), path=None, build_id=None)  # noqa: SIM115
    squeezed = ModuleSymbols.load(ELFFile(open(packed, "rb")), path=None, build_id=None)  # noqa: SIM115
    for address in range(start, end):
        assert squeezed.describe(address) == plain.describe(address)


def test_build_id_note_parsing(program: Path) -> None:
    with open(program, "rb") as handle:
        build_id = find_build_id(ELFFile(handle))
    text = run("readelf", "-n", program)
    assert build_id is not None and build_id.hex() in text


def test_parse_debuglink_rejects_garbage() -> None:
    assert parse_debuglink(b"") is None
    assert parse_debuglink(b"name") is None
    assert parse_debuglink(b"a/b\0\0\0\0" + struct.pack("<I", 1)) is None
    assert parse_debuglink(b"ab.debug\0\0\0\0" + struct.pack("<I", 7)) == ("ab.debug", 7)
