"""Snapshot cost for a process with 600 mappings: freeze + read, PROCMAP_QUERY vs maps text;
then maps parsing and reading for a process with 65,000 mappings (the race test's size).

Run: ``.venv/bin/python bench/bench_snapshot.py`` (needs gcc). Prints tables of medians.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from procfs.freeze import FreezeMethod, frozen  # noqa: E402
from procfs.handle import ProcessHandle  # noqa: E402
from procfs.parse.maps import parse_maps  # noqa: E402
from procfs.snapshot import Part, snapshot  # noqa: E402
from procfs.vmas import MapsSource, read_maps  # noqa: E402

TARGET = r"""
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
int main(void) {
    long ps = sysconf(_SC_PAGESIZE);
    int n = 600 - 25;  /* plus the ~25 mappings of the executable, libc, stack, vdso */
    char *base = mmap(NULL, n * ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int i = 1; i < n; i += 2) mprotect(base + i * ps, ps, PROT_NONE);
    printf("ready\n"); fflush(stdout);
    for (;;) pause();
}
"""
ROUNDS = 200
BIG_VMAS = 65_000
BIG_ROUNDS = 15
BIG_TARGET = TARGET.replace("600 - 25", str(BIG_VMAS))


def median_us(func) -> float:
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        func()
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples)


def median_ms(func, rounds: int = BIG_ROUNDS) -> float:
    func()  # warm-up: the first run also pays for growing the heap
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        result = func()
        samples.append((time.perf_counter() - start) * 1e3)
        del result  # freed outside the timed part, as a caller keeping it would
    return statistics.median(samples)


def big_rows(exe: Path) -> None:
    """Maps of a process with 65,000 VMAs: the parser alone, and reading while frozen."""
    if int(Path("/proc/sys/vm/max_map_count").read_text()) < BIG_VMAS + 500:
        print(f"(skipped the {BIG_VMAS}-VMA rows: vm.max_map_count too small)")
        return
    child = subprocess.Popen([str(exe)], stdout=subprocess.PIPE)
    try:
        child.stdout.readline()
        with ProcessHandle.from_pid(child.pid) as handle:
            text = handle.read_bytes("maps")
            with frozen(handle):
                rows = [
                    ("parse_maps (text already read)", lambda: parse_maps(text)),
                    ("read + parse maps text", lambda: read_maps(handle, MapsSource.TEXT)),
                    ("PROCMAP_QUERY walk, no build-ids",
                     lambda: read_maps(handle, MapsSource.PROCMAP_QUERY, build_ids=False)),
                    ("PROCMAP_QUERY walk + build-ids",
                     lambda: read_maps(handle, MapsSource.PROCMAP_QUERY)),
                ]  # fmt: skip
                print(f"\nprocess with {len(parse_maps(text))} mappings ({len(text)} bytes of "
                      f"maps), frozen, median of {BIG_ROUNDS} runs")  # fmt: skip
                print(f"{'what':<44} {'ms':>10}")
                print(f"{'-' * 44} {'-' * 10}")
                for name, func in rows:
                    print(f"{name:<44} {median_ms(func):>10.1f}")
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp, "t.c"), Path(tmp, "t")
        src.write_text(TARGET)
        subprocess.run(["gcc", "-O2", "-o", str(exe), str(src)], check=True)
        big_src, big_exe = Path(tmp, "big.c"), Path(tmp, "big")
        big_src.write_text(BIG_TARGET)
        subprocess.run(["gcc", "-O2", "-o", str(big_exe), str(big_src)], check=True)
        child = subprocess.Popen([str(exe)], stdout=subprocess.PIPE)
        try:
            child.stdout.readline()
            with ProcessHandle.from_pid(child.pid) as handle:
                vmas, _ = read_maps(handle, MapsSource.TEXT)

                def freeze_only() -> None:
                    with frozen(handle):
                        pass

                def freeze_ptrace_only() -> None:
                    with frozen(handle, method=FreezeMethod.PTRACE):
                        pass

                rows = [
                    ("freeze + thaw only (SIGSTOP/SIGCONT)", freeze_only),
                    ("freeze + thaw only (ptrace seize/detach)", freeze_ptrace_only),
                    ("maps text, not frozen", lambda: read_maps(handle, MapsSource.TEXT)),
                    ("PROCMAP_QUERY + build-ids, not frozen",
                     lambda: read_maps(handle, MapsSource.PROCMAP_QUERY)),
                    ("PROCMAP_QUERY, no build-ids, not frozen",
                     lambda: read_maps(handle, MapsSource.PROCMAP_QUERY, build_ids=False)),
                    ("snapshot(MAPS), text",
                     lambda: snapshot(handle, Part.MAPS, maps_source=MapsSource.TEXT)),
                    ("snapshot(MAPS), PROCMAP_QUERY",
                     lambda: snapshot(handle, Part.MAPS, maps_source=MapsSource.PROCMAP_QUERY)),
                    ("snapshot(ALL), text",
                     lambda: snapshot(handle, maps_source=MapsSource.TEXT)),
                    ("snapshot(ALL), PROCMAP_QUERY",
                     lambda: snapshot(handle, maps_source=MapsSource.PROCMAP_QUERY)),
                ]  # fmt: skip
                print(f"process with {len(vmas)} mappings, median of {ROUNDS} runs, "
                      f"kernel {os.uname().release}")  # fmt: skip
                print(f"{'what':<44} {'µs':>10}")
                print(f"{'-' * 44} {'-' * 10}")
                for name, func in rows:
                    print(f"{name:<44} {median_us(func):>10.0f}")
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        big_rows(big_exe)
    return 0


if __name__ == "__main__":
    sys.exit(main())
