"""Symbolisation benchmark: symbol-table load (cold / cached), describe() per address (no
cache, tables cached, answers cached), and our .debug_line decoder against pyelftools.
Run: .venv/bin/python bench/bench_symbols.py"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from elftools.elf.elffile import ELFFile  # noqa: E402

from unwinder.symbols import DebugFileLocator, ModuleSymbols, SymbolCache  # noqa: E402
from unwinder.symbols.lineprog import decode_line_program, parse_line_header  # noqa: E402
from unwinder.symbols.sections import read_section  # noqa: E402

MODULES = [
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
    "/usr/bin/gdb",
]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f}"


def bench_module(path: str, cache_dir: Path) -> tuple[str, ...]:
    locator = DebugFileLocator(debuginfod_urls=[])
    cache = SymbolCache(cache_dir)
    t = time.perf_counter()
    module = ModuleSymbols.load(ELFFile(open(path, "rb")), path=path, build_id=None,  # noqa: SIM115
                                locator=locator, cache=None)
    len(module.symbols)  # read on first use
    cold = time.perf_counter() - t
    filler = ModuleSymbols.load(ELFFile(open(path, "rb")), path=path,  # noqa: SIM115
                                build_id=None, locator=locator, cache=cache)
    t = time.perf_counter()
    filler.describe(module.symbols.addresses[0])  # decodes and stores the whole line table
    line_table = time.perf_counter() - t
    t = time.perf_counter()
    cached = ModuleSymbols.load(ELFFile(open(path, "rb")), path=path, build_id=None,  # noqa: SIM115
                                locator=locator, cache=cache)
    len(cached.symbols)
    warm = time.perf_counter() - t
    rng = random.Random(0)
    addresses = [rng.choice(module.symbols.addresses) + rng.randrange(0, 16) for _ in range(200)]
    t = time.perf_counter()
    module.describe(addresses[0])
    first = time.perf_counter() - t
    t = time.perf_counter()
    for address in addresses[1:]:
        module.describe(address)
    per = (time.perf_counter() - t) / (len(addresses) - 1)
    cached.describe(addresses[0])
    t = time.perf_counter()
    for address in addresses[1:]:
        cached.describe(address)
    per_cached = (time.perf_counter() - t) / (len(addresses) - 1)
    cached.save()
    again = ModuleSymbols.load(ELFFile(open(path, "rb")), path=path, build_id=None,  # noqa: SIM115
                               locator=locator, cache=cache)
    t = time.perf_counter()
    for address in addresses:
        again.describe(address)
    per_described = (time.perf_counter() - t) / len(addresses)
    return (Path(path).name.ljust(22), f"{len(module.symbols):7d}", module.symbol_source[:12].ljust(12),
            _ms(cold), _ms(warm), _ms(first), _ms(line_table), f"{per * 1e6:9.0f}",
            f"{per_cached * 1e6:9.0f}", f"{per_described * 1e6:9.1f}")


def bench_lines(path: str, sample: int = 30) -> tuple[str, ...]:
    elf = ELFFile(open(path, "rb"))  # noqa: SIM115
    dwarf = elf.get_dwarf_info()
    line = read_section(elf, ".debug_line")
    line_str = read_section(elf, ".debug_line_str")
    strs = read_section(elf, ".debug_str")
    cus = random.Random(1).sample(list(dwarf.iter_CUs()), sample)
    ours = theirs = 0.0
    rows = 0
    for cu in cus:
        top = cu.get_top_DIE()
        if "DW_AT_stmt_list" not in top.attributes:
            continue
        t = time.perf_counter()
        rows += sum(1 for e in dwarf.line_program_for_CU(cu).get_entries() if e.state)
        theirs += time.perf_counter() - t
        t = time.perf_counter()
        program = parse_line_header(line, top.attributes["DW_AT_stmt_list"].value,
                                    debug_str=strs, debug_line_str=line_str)
        decode_line_program(line, program)
        ours += time.perf_counter() - t
    return (Path(path).name[:22].ljust(22), f"{rows:8d}", f"{theirs * 1e6 / rows:8.2f}",
            f"{ours * 1e6 / rows:8.2f}", f"{theirs / ours:6.1f}x")


def main() -> None:
    print("symbol tables and describe()  (ms unless noted; describe = mean over 199 random\n"
          "function addresses, most in a CU not seen before; lines+st = whole line table\n"
          "decoded and stored in the cache, once per build-id; cached µs = tables cached, addresses\n"
          "new; again µs = the same addresses asked again, answered from the described cache)")
    print(f"{'module':22} {'symbols':>7} {'source':12} {'load cold':>9} {'cached':>9} "
          f"{'1st desc':>9} {'lines+st':>9} {'desc µs':>9} {'cached µs':>9} {'again µs':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for path in MODULES:
            if Path(path).exists():
                print(" ".join(bench_module(path, Path(tmp))))
    libc_debug = next(Path("/usr/lib/debug/.build-id").rglob("*.debug"), None)
    locator = DebugFileLocator(debuginfod_urls=[])
    from unwinder.symbols.locate import read_file_build_id
    found = locator.find(build_id=read_file_build_id(Path(MODULES[0])), path=None, debuglink=None)
    print()
    print(".debug_line decode, sampled CUs: µs per row")
    print(f"{'file':22} {'rows':>8} {'pyelftools':>8} {'ours':>8} {'speedup':>7}")
    for path in [found or libc_debug]:
        if path:
            print(" ".join(bench_lines(str(path))))


if __name__ == "__main__":
    main()
