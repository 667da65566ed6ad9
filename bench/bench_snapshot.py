"""Snapshot cost for a process with 600 mappings: freeze + read, PROCMAP_QUERY vs maps text.

Run: ``.venv/bin/python bench/bench_snapshot.py`` (needs gcc). Prints a table of medians.
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

from procfs.freeze import frozen  # noqa: E402
from procfs.handle import ProcessHandle  # noqa: E402
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


def median_us(func) -> float:
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        func()
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp, "t.c"), Path(tmp, "t")
        src.write_text(TARGET)
        subprocess.run(["gcc", "-O2", "-o", str(exe), str(src)], check=True)
        child = subprocess.Popen([str(exe)], stdout=subprocess.PIPE)
        try:
            child.stdout.readline()
            with ProcessHandle.from_pid(child.pid) as handle:
                vmas, _ = read_maps(handle, MapsSource.TEXT)

                def freeze_only() -> None:
                    with frozen(handle):
                        pass

                rows = [
                    ("freeze + thaw only (SIGSTOP/SIGCONT)", freeze_only),
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
