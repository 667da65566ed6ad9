""".debug_frame as the second source: gcc -g -fno-asynchronous-unwind-tables, compressed
with zlib, zstd and the old .zdebug form, and from a separate debug file."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from tests.e2e.cfi.cfi_oracles import compare_with_pyelftools, row_key
from unwinder.cfi import CfiTable

SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((noinline)) long leaf(long *p, int n) {
    long s = 0;
    for (int i = 0; i < n; i++) s += p[i] * (i + 1);
    return s;
}
__attribute__((noinline)) long middle(int n) {
    long *p = calloc(n, sizeof *p);
    for (int i = 0; i < n; i++) p[i] = i ^ n;
    long r = leaf(p, n) + middle == 0;
    free(p);
    return r;
}
int main(int argc, char **argv) { printf("%ld\n", middle(argc * 100)); return 0; }
"""


@pytest.fixture(scope="module")
def exe(compile_c) -> Path:
    return compile_c(SOURCE, name="cfi_debug_frame",
                     flags=("-g", "-O2", "-fno-asynchronous-unwind-tables"))


def functions(path: Path) -> dict[str, tuple[int, int]]:
    with open(path, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        return {name: (sym["st_value"], sym["st_size"])
                for name in ("leaf", "middle", "main")
                for sym in symtab.get_symbol_by_name(name)}


def all_rows(table: CfiTable, funcs) -> list:
    rows = []
    for begin, size in funcs.values():
        pc = begin
        while pc < begin + size:
            row = table.find_row(pc)
            rows.append((row.start, row.end, row_key(row)))
            pc = row.end
    return rows


def open_table(path: Path, debug: Path | None = None) -> CfiTable:
    with open(path, "rb") as f:
        elf = ELFFile(f)
        debug_elf = ELFFile(open(debug, "rb")) if debug else None  # noqa: SIM115
        try:
            return CfiTable.from_elf(elf, arch="x86_64", debug_elffile=debug_elf)
        finally:
            if debug_elf is not None:
                debug_elf.stream.close()


def test_user_code_only_in_debug_frame(exe):
    table = open_table(exe)
    assert table.debug_frame is not None
    for begin, _ in functions(exe).values():
        assert table.eh_frame is None or table.eh_frame.find_row(begin) is None
        row = table.find_row(begin)
        assert row.cfa.register == 7 and row.cfa.offset == 8


def test_debug_frame_matches_pyelftools(exe):
    result = compare_with_pyelftools(exe, samples=300, debug_frame=True)
    assert result.mismatches == 0 and result.misses == 0, str(result)


@pytest.mark.parametrize("mode", ["zlib", "zstd", "zlib-gnu"])
def test_compressed_debug_frame(exe, tmp_path, mode):
    out = tmp_path / f"exe-{mode}"
    proc = subprocess.run(["objcopy", f"--compress-debug-sections={mode}", str(exe), str(out)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"objcopy cannot compress with {mode}: {proc.stderr.strip()}")
    with open(out, "rb") as f:
        elf = ELFFile(f)
        section = elf.get_section_by_name(".debug_frame") or elf.get_section_by_name(
            ".zdebug_frame")
        assert section.name == ".zdebug_frame" or section["sh_flags"] & 0x800
    funcs = functions(exe)
    assert all_rows(open_table(out), funcs) == all_rows(open_table(exe), funcs)


def test_separate_debug_file(exe, tmp_path):
    debug = tmp_path / "exe.debug"
    stripped = tmp_path / "exe.stripped"
    subprocess.run(["objcopy", "--only-keep-debug", str(exe), str(debug)], check=True)
    shutil.copy(exe, stripped)
    subprocess.run(["strip", "--strip-debug", str(stripped)], check=True)
    funcs = functions(exe)
    alone = open_table(stripped)
    assert alone.debug_frame is None
    assert all(alone.find_row(begin) is None for begin, _ in funcs.values())
    assert all_rows(open_table(stripped, debug), funcs) == all_rows(open_table(exe), funcs)
