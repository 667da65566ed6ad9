"""Test programs with inlining, builders (g++, strip, objcopy) and the addr2line oracles."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile

from unwinder.symbols import ModuleSymbols

INLINE_HEADER = """\
static inline __attribute__((always_inline)) int hdr_twice(int x)
{
    return x * 2 + (x > 3 ? x / 3 : 1);
}
"""

INLINE_C = """\
#include <stdio.h>
#include <stdlib.h>
#include "inl.h"
volatile int sink;
static inline int level3(int x) { sink = x; return hdr_twice(x) + sink; }
static inline int level2(int x) { int r = level3(x + 1); sink = r; return r * 3; }
static int __attribute__((noinline)) level1(int x) { return level2(x) + level2(x * 5); }
static int __attribute__((noinline)) helper_static(int n)
{
    int s = 0;
    for (int i = 0; i < n; i++)
        s += level1(i);
    return s;
}
int __attribute__((noinline)) exported_fn(int n) { return helper_static(n) ^ sink; }
int main(int argc, char **argv)
{
    (void)argv;
    printf("%d\\n", exported_fn(argc + 3));
    return 0;
}
"""

INLINE_CXX = """\
#include <cstdio>
#include <vector>
#include <map>
#include <string>
namespace geo {
template <typename T> struct Box {
    T v;
    __attribute__((always_inline)) T area() const { return v * v + static_cast<T>(1); }
};
template <typename T> __attribute__((noinline)) T total(const std::vector<Box<T>> &boxes)
{
    T sum = T();
    for (const auto &b : boxes) sum += b.area();
    return sum;
}
}
struct Registry {
    std::map<std::string, int> names;
    __attribute__((noinline)) int add(const std::string &s) { return names[s] += (int)s.size(); }
};
int main(int argc, char **)
{
    std::vector<geo::Box<int>> a{{1}, {2}, {argc}};
    std::vector<geo::Box<double>> b{{1.5}, {argc * 0.5}};
    Registry r;
    r.add("x");
    std::printf("%d %f %d\\n", geo::total(a), geo::total(b), r.add("yy"));
    return 0;
}
"""


def build_c(directory: Path, flags: tuple[str, ...] = ("-O2", "-g"), name: str = "inl",
            compiler: str = "gcc", source: str = INLINE_C, suffix: str = ".c") -> Path:
    """Compile ``source`` (with ``inl.h`` next to it) into ``directory/name``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "inl.h").write_text(INLINE_HEADER)
    src = directory / f"{name}{suffix}"
    src.write_text(source)
    exe = directory / name
    subprocess.run([compiler, *flags, "-o", str(exe), str(src)], check=True,
                   capture_output=True, text=True)
    return exe


def run(*cmd: str | Path) -> str:
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True,
                          text=True).stdout


def function_ranges(exe: Path, names: set[str] | None = None) -> dict[str, tuple[int, int]]:
    """``name -> (start, end)`` of sized function symbols, from ``nm -S``."""
    out = {}
    for line in run("nm", "-S", "--defined-only", exe).splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTW":
            start, size, name = int(parts[0], 16), int(parts[1], 16), parts[3]
            if size and (names is None or name in names):
                out[name] = (start, start + size)
    return out


@dataclass(frozen=True)
class OracleFrame:
    function: str
    file: str
    line: int


_LOC = re.compile(r"^(.*?):(\?|\d+)(?::\d+)?(?: \(discriminator \d+\))?$")


def _parse_groups(text: str, eu: bool) -> dict[int, list[OracleFrame]]:
    groups: dict[int, list[OracleFrame]] = {}
    lines = text.splitlines()
    i = 0
    current: list[OracleFrame] = []
    while i < len(lines):
        line = lines[i]
        if line.startswith("0x"):
            current = groups.setdefault(int(line, 16), [])
            i += 1
            continue
        function = line.split(" inlined at ")[0] if eu else line
        loc = _LOC.match(lines[i + 1])
        file, num = (loc.group(1), loc.group(2)) if loc else ("??", "0")
        current.append(OracleFrame(function, file, int(num) if num.isdigit() else 0))
        i += 2
    return groups


def addr2line(exe: Path, addresses: list[int], eu: bool = False) -> dict[int, list[OracleFrame]]:
    """What binutils' (or elfutils') addr2line ``-a -f -i -C`` says for each address."""
    tool = "eu-addr2line" if eu else "addr2line"
    text = run(tool, "-a", "-f", "-i", "-C", "-e", exe, *(hex(a) for a in addresses))
    return _parse_groups(text, eu)


def ours(exe: Path, addresses: list[int], **kwargs) -> dict[int, list[OracleFrame]]:
    with open(exe, "rb") as handle:
        module = ModuleSymbols.load(ELFFile(handle), path=str(exe), build_id=None, **kwargs)
        out = {}
        for address in addresses:
            out[address] = [
                OracleFrame(f.function or "??", f.location.file if f.location else "??",
                            f.location.line if f.location else 0)
                for f in module.describe(address)]
        return out
