"""Compare the memory methods of procfs on a ptrace-stopped child.

Workloads: 1,000 scattered 64-byte reads (``read_many``) and one 8 MiB range (``read``), per
method; the median of several runs, bytes checked against the pattern the child wrote.

Run as root from the repository: ``.venv/bin/python bench/bench_memory.py``.
"""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from procfs import ptrace  # noqa: E402
from procfs.memory import ProcessMemory  # noqa: E402
from procfs.memory_base import MemoryMethod  # noqa: E402
from procfs.wait import read_wait  # noqa: E402
from tests.support import procfs_mem  # noqa: E402

BIG_MIB = 8
SCATTERED = 1000
READ_SIZE = 64
REPEATS = 7
ROWS: list[tuple[str, tuple[MemoryMethod, ...] | None]] = [
    ("/proc/pid/mem (pread per range)", (MemoryMethod.MEM,)),
    ("process_vm_readv (batched)", (MemoryMethod.PROCESS_VM_READV,)),
    ("PTRACE_PEEKDATA (word by word)", (MemoryMethod.PTRACE,)),
    ("auto (default order)", None),
]


def build(out: Path) -> Path:
    src = out / "target.c"
    src.write_text(procfs_mem.SOURCE.replace("SEGV_ADDRESS", hex(procfs_mem.SEGV_ADDRESS)))
    exe = out / "target"
    subprocess.run(["gcc", "-O2", "-pthread", "-o", str(exe), str(src)], check=True)
    return exe


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(pid: int, big: int, methods: tuple[MemoryMethod, ...] | None) -> tuple[float, float]:
    rng = random.Random(42)
    ranges = [(big + rng.randrange(0, (BIG_MIB << 20) - READ_SIZE), READ_SIZE)]
    ranges += [(big + rng.randrange(0, (BIG_MIB << 20) - READ_SIZE), READ_SIZE)
               for _ in range(SCATTERED - 1)]  # fmt: skip
    with ProcessMemory(pid, tracee=pid, methods=methods) as memory:
        results = memory.read_many(ranges)
        for (address, size), result in zip(ranges[:50], results, strict=False):
            assert result.data == procfs_mem.pattern(address - big, size), "scattered bytes differ"
        whole = memory.read(big, BIG_MIB << 20)
        assert whole.complete and whole.data[:4096] == procfs_mem.pattern(0, 4096)
        slow = methods == (MemoryMethod.PTRACE,)
        scattered = median_seconds(lambda: memory.read_many(ranges), 3 if slow else REPEATS)
        bulk = median_seconds(lambda: memory.read(big, BIG_MIB << 20), 1 if slow else REPEATS)
    return scattered, bulk


def warm_up(pid: int, big: int) -> None:
    """Settle our allocator (glibc's mmap threshold adapts over the first large frees) and the
    caches, so that the first row measured is not penalised."""
    with ProcessMemory(pid, methods=[MemoryMethod.MEM, MemoryMethod.PROCESS_VM_READV]) as memory:
        for _ in range(10):
            memory.read(big, BIG_MIB << 20)
            memory.read_many([(big + i * 4096, READ_SIZE) for i in range(SCATTERED)])


def throughput(size: int, seconds: float) -> str:
    return f"{size / seconds / 1e6:,.0f} MB/s"


def run(exe: Path) -> list[tuple[str, float, float]]:
    target = procfs_mem.spawn(exe, "layout", str(BIG_MIB))
    try:
        ptrace.seize(target.pid)
        ptrace.interrupt(target.pid)
        read_wait(target.pid, timeout=10)
        warm_up(target.pid, target.info["big"])
        rows = [(name, *measure(target.pid, target.info["big"], m)) for name, m in ROWS]
        ptrace.detach(target.pid)
    finally:
        target.stop()
    return rows


def print_table(rows: list[tuple[str, float, float]]) -> None:
    header = ("method", f"{SCATTERED}×{READ_SIZE} B scattered", "", f"one {BIG_MIB} MiB range", "")
    lines = [header, ("", "time", "throughput", "time", "throughput")]
    for name, scattered, bulk in rows:
        lines.append((
            name,
            f"{scattered * 1e3:,.2f} ms",
            throughput(SCATTERED * READ_SIZE, scattered),
            f"{bulk * 1e3:,.2f} ms",
            throughput(BIG_MIB << 20, bulk),
        ))  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(5)]
    for line in lines:
        print(" | ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(line, widths, strict=True))))  # fmt: skip
    print(f"(median of {REPEATS} runs; PEEKDATA: 3 scattered runs, 1 bulk run; target stopped "
          "with PTRACE_INTERRUPT)")  # fmt: skip


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench_memory-") as tmp:
        rows = run(build(Path(tmp)))
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
