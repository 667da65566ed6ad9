"""describe() against eu-addr2line and binutils addr2line (-f -i -C) on -O2 -g programs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.symbols.programs import (
    INLINE_C,
    INLINE_CXX,
    addr2line,
    build_c,
    function_ranges,
    ours,
)

_SKIP = ("_start", "_init", "_fini", "deregister_tm_clones", "register_tm_clones",
         "frame_dummy", "__do_global_dtors_aux")

CASES = {
    "c-dwarf5": (("-O2", "-g"), "gcc", INLINE_C, ".c"),
    "c-dwarf4": (("-O2", "-gdwarf-4"), "gcc", INLINE_C, ".c"),
    "c-O0": (("-O0", "-g"), "gcc", INLINE_C, ".c"),
    "cxx-dwarf5": (("-O2", "-g"), "g++", INLINE_CXX, ".cc"),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def program(request, tmp_path_factory) -> tuple[str, Path, list[int]]:
    flags, compiler, source, suffix = CASES[request.param]
    exe = build_c(tmp_path_factory.mktemp(request.param), flags, compiler=compiler,
                  source=source, suffix=suffix)
    ranges = function_ranges(exe)
    addresses = sorted({a for name, (start, end) in ranges.items() if name not in _SKIP
                        for a in range(start, end)})
    return request.param, exe, addresses


def test_matches_eu_addr2line(program) -> None:
    case, exe, addresses = program
    assert len(addresses) > 150
    expected = addr2line(exe, addresses, eu=True)
    got = ours(exe, addresses)
    bad = {hex(a): (expected[a], got[a]) for a in addresses if expected[a] != got[a]}
    assert not bad, f"{len(bad)} of {len(addresses)} differ, e.g. {list(bad.items())[:3]}"
    depth = 2 if case == "c-O0" else 3  # -O0 inlines only always_inline functions
    assert any(len(frames) >= depth for frames in got.values()), "no inline chain seen"


def test_matches_binutils_addr2line(program) -> None:
    """binutils agrees on names and lines; on C++ DWARF 5 it names the CU's primary file
    instead of the header for some rows (it does for glibc too), so files are compared for C
    only."""
    case, exe, addresses = program
    expected = addr2line(exe, addresses, eu=False)
    got = ours(exe, addresses)

    def key(frames):
        if case.startswith("cxx"):
            return [(f.function, f.line) for f in frames]
        return frames

    bad = {hex(a): (expected[a], got[a]) for a in addresses if key(expected[a]) != key(got[a])}
    assert not bad, f"{len(bad)} of {len(addresses)} differ, e.g. {list(bad.items())[:3]}"


def test_inline_frames_shape(tmp_path: Path) -> None:
    from elftools.elf.elffile import ELFFile

    from unwinder.symbols import ModuleSymbols

    exe = build_c(tmp_path)
    start, end = function_ranges(exe, {"level1"})["level1"]
    with open(exe, "rb") as handle:
        module = ModuleSymbols.load(ELFFile(handle), path=str(exe), build_id=None)
        chains = [module.describe(a) for a in range(start, end)]
    deepest = max(chains, key=len)
    assert [f.inline for f in deepest] == [True] * (len(deepest) - 1) + [False]
    assert deepest[-1].function == "level1"
    assert deepest[-1].function_offset is not None and deepest[-1].function_offset >= 0
    assert all(f.function_offset is None for f in deepest[:-1])
    assert {"level2", "level3", "hdr_twice"} & {f.function for f in deepest}
    assert any(f.location and f.location.file.endswith("inl.h")
               for chain in chains for f in chain)
