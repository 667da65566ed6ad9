"""CFI lookups: our engine (``unwinder.cfi``) against pyelftools' decoder.

Per binary: the time to open it and build the ``.eh_frame_hdr`` index (``CfiTable.from_elf``,
including pyelftools' ELF header parse), the index build alone, and the time per
``find_row`` at random pcs -- cold (the FDE's decoded program not cached; CIEs are) and warm
(same pcs again) -- next to pyelftools "lazy": our hdr binary search, then
``CallFrameInfo._parse_entry_at`` and ``get_decoded()`` on that one FDE (its own CIE cache
kept, the FDE evicted), which is the fastest way to use pyelftools per lookup. For the two
smaller libraries the full pyelftools parse + decode of the section is shown too.

Run from the repository: ``.venv/bin/python bench/bench_cfi.py [BINARY ...]``.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from elftools.dwarf.callframe import FDE, CallFrameInfo  # noqa: E402
from elftools.dwarf.constants import DW_CFA_GNU_args_size  # noqa: E402
from elftools.elf.elffile import ELFFile  # noqa: E402

from unwinder.cfi import CfiTable  # noqa: E402
from unwinder.cfi.hdr import build_hdr_index  # noqa: E402

DEFAULT_BINARIES = [
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
    "/usr/bin/gdb",
    "/usr/lib/x86_64-linux-gnu/libLLVM-15.so.1",
    "/usr/bin/node",
]
LOOKUPS = 2000
PYELFTOOLS_LOOKUPS = 300
FULL_DECODE_MAX = 256 * 1024
REPEATS = 5


def best_of(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(path: str) -> dict[str, str]:
    with open(path, "rb") as f:
        elf = ELFFile(f)
        open_s = best_of(lambda: CfiTable.from_elf(ELFFile(f), arch="x86_64"))
        table = CfiTable.from_elf(elf, arch="x86_64")
        source = table.eh_frame
        sections_eh = source.section
        from unwinder.cfi.elfsource import load_frame_sections

        sections = load_frame_sections(elf)
        index_s = best_of(lambda: build_hdr_index(sections.eh_frame_hdr, sections.hdr))
        fdes = list(source.iter_fdes())
        rng = random.Random(7)
        pcs = []
        for _ in range(LOOKUPS):
            fde = rng.choice(fdes)
            pcs.append(rng.randrange(fde.pc_begin, fde.pc_end))

        def cold() -> None:
            clear = source._load_fde.cache_clear
            find = table.find_row
            for pc in pcs:
                clear()
                find(pc)

        def warm() -> None:
            find = table.find_row
            for pc in pcs:
                find(pc)

        cold_s = statistics.median(best_of(cold, 1) for _ in range(3)) / LOOKUPS
        warm()  # fill the cache (LOOKUPS > cache size: many still miss; use a small set)
        small = pcs[:200]

        def warm_small() -> None:
            find = table.find_row
            for pc in small:
                find(pc)

        warm_small()
        warm_s = best_of(warm_small) / len(small)

        dwarf = elf.get_dwarf_info()
        sec = dwarf.eh_frame_sec
        cfi = CallFrameInfo(stream=sec.stream, size=sec.size, address=sec.address,
                            base_structs=dwarf.structs, for_eh_frame=True)

        def pyelftools_lazy() -> None:
            for pc in pcs[:PYELFTOOLS_LOOKUPS]:
                offset = source.index.find(pc)
                cfi._entry_cache.pop(offset, None)
                entry = cfi._parse_entry_at(offset)
                entry.instructions[:] = [i for i in entry.instructions
                                         if i.opcode != DW_CFA_GNU_args_size]
                rows = entry.get_decoded().table
                [r for r in rows if r["pc"] <= pc]

        lazy_s = best_of(pyelftools_lazy, 2) / PYELFTOOLS_LOOKUPS
        full = "-"
        if sections_eh.size <= FULL_DECODE_MAX:
            def full_decode() -> None:
                for entry in dwarf.EH_CFI_entries():
                    if isinstance(entry, FDE):
                        entry.instructions[:] = [i for i in entry.instructions
                                                 if i.opcode != DW_CFA_GNU_args_size]
                        entry.get_decoded()
            full = f"{best_of(full_decode, 1):.2f} s"
    return {
        "binary": Path(path).name,
        ".eh_frame": f"{sections_eh.size // 1024} KiB",
        "FDEs": f"{len(source.index):,}",
        "open+index": f"{open_s * 1e3:.2f} ms",
        "index only": f"{index_s * 1e3:.3f} ms",
        "cold lookup": f"{cold_s * 1e6:.1f} µs",
        "warm lookup": f"{warm_s * 1e6:.1f} µs",
        "pyelftools lazy": f"{lazy_s * 1e6:.0f} µs",
        "speedup (cold)": f"{lazy_s / cold_s:.0f}x",
        "pyelftools full": full,
    }


def main(argv: list[str]) -> int:
    binaries = argv or [p for p in DEFAULT_BINARIES if Path(p).exists()]
    rows = [measure(p) for p in binaries]
    headers = list(rows[0])
    widths = [max(len(h), *(len(r[h]) for r in rows)) for h in headers]
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(row[h].ljust(w) for h, w in zip(headers, widths, strict=True)))
    print(f"\n{LOOKUPS} lookups per binary (pyelftools: {PYELFTOOLS_LOOKUPS}); best of "
          f"{REPEATS} for build times; Python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
