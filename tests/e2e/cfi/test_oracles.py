"""Our rows against pyelftools' decoded tables and readelf's frames-interp, on real binaries."""

from __future__ import annotations

import subprocess

import pytest
from elftools.elf.elffile import ELFFile

from tests.e2e.cfi.cfi_oracles import (
    LIBC,
    LIBSTDCXX,
    compare_with_pyelftools,
    compare_with_readelf,
)
from tests.support.report import SUMMARY_LINES
from unwinder.cfi import CfiTable

CXX_SOURCE = r"""
#include <stdexcept>
#include <string>
#include <vector>
#include <cstdio>

template <int N> struct Thrower {
    __attribute__((noinline)) static int go(std::vector<int> &v, int x) {
        v.push_back(x);
        if (x % 7 == N) throw std::runtime_error("depth " + std::to_string(N));
        return Thrower<N - 1>::go(v, x + 1) + (int)v.size();
    }
};
template <> struct Thrower<0> {
    __attribute__((noinline)) static int go(std::vector<int> &v, int x) {
        throw std::out_of_range(std::to_string(x + (int)v.size()));
    }
};

// stack arguments pushed inside an EH region: gcc emits DW_CFA_GNU_args_size
__attribute__((noinline)) int call(int (*f)(int, int, int, int, int, int, int, int), int a) {
    std::string s("x");
    int r;
    try { r = f(a, a, a, a, a, a, a, a); } catch (...) { r = (int)s.size(); }
    std::string t(s);
    return r + f(a, 1, 2, 3, 4, 5, 6, (int)t.size()) + 1;
}
int eight(int a, int b, int c, int d, int e, int f, int g, int h) { return a+b+c+d+e+f+g+h; }

int main(int argc, char **argv) {
    int total = 0;
    for (int i = 0; i < argc + 20; i++) {
        std::vector<int> v;
        try { total += Thrower<12>::go(v, i); }
        catch (const std::exception &e) { total += (int)std::string(e.what()).size(); }
    }
    std::printf("%d\n", total + call(eight, argc));
    return 0;
}
"""

SAMPLES = 3000


@pytest.fixture(scope="session")
def cxx_program(compile_c):
    return compile_c(CXX_SOURCE, name="cfi_cxx",
                     flags=("-x", "c++", "-O2", "-fexceptions"),
                     extra=("-lstdc++",))


def _binaries(cxx_program):
    return {"libc.so.6": LIBC, "libstdc++.so.6": LIBSTDCXX, "cfi_cxx (-O2 C++)": cxx_program}


@pytest.mark.parametrize("name", ["libc.so.6", "libstdc++.so.6", "cfi_cxx (-O2 C++)"])
def test_random_pcs_match_pyelftools(name, cxx_program):
    path = _binaries(cxx_program)[name]
    if not path.exists():
        pytest.skip(f"{path} not installed")
    result = compare_with_pyelftools(path, samples=SAMPLES)
    SUMMARY_LINES.append(f"cfi oracle pyelftools {name}: {result.compared} pcs, "
                         f"{result.mismatches} mismatches, {result.misses} misses")
    assert result.compared == SAMPLES
    assert result.mismatches == 0 and result.misses == 0, str(result)


@pytest.mark.parametrize("name", ["libc.so.6", "libstdc++.so.6", "cfi_cxx (-O2 C++)"])
def test_every_readelf_row_matches(name, cxx_program):
    path = _binaries(cxx_program)[name]
    if not path.exists():
        pytest.skip(f"{path} not installed")
    with open(path, "rb") as f:
        table = CfiTable.from_elf(ELFFile(f), arch="x86_64")
    result = compare_with_readelf(path, table)
    SUMMARY_LINES.append(f"cfi oracle readelf {name}: {result.compared} rows, "
                         f"{result.mismatches} mismatches, {result.misses} misses")
    assert result.compared > 50
    assert result.mismatches == 0 and result.misses == 0, str(result)


def test_cxx_program_has_args_size(cxx_program):
    """The C++ corpus really exercises DW_CFA_GNU_args_size (which breaks pyelftools)."""
    dump = subprocess.run(["readelf", "--debug-dump=frames", str(cxx_program)],
                          capture_output=True, text=True).stdout
    assert "DW_CFA_GNU_args_size" in dump
