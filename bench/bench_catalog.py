"""How fast the crash catalog records and lists crashes, at 10,000 rows.

Each row carries a realistic context (ENVIRON, MAPS, MOUNTINFO, STATUS, LIMITS of the sizes
measured on systemd-coredump's entries, about 10 KB of JSON) and a backtrace. Inserts are one
transaction each, as the pipeline does them. Run:

    .venv/bin/python bench/bench_catalog.py [--rows 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coredumpd.catalog import Catalog  # noqa: E402
from coredumpd.context import CrashContext  # noqa: E402
from coredumpd.storage import StoredCore  # noqa: E402

#: bytes of each /proc text in a typical entry (research/systemd-coredump.md §7)
PROC_SIZES = {"environ": 1500, "proc_maps": 2300, "proc_mountinfo": 1500, "proc_status": 1400,
              "proc_limits": 1300}
COMMS = [b"crash", b"python3", b"firefox", b"sshd", b"worker"]


def make_context(n: int) -> CrashContext:
    context = CrashContext(pid=1000 + n, tid=1000 + n, uid=1000 + n % 3, gid=1000, signal=11,
                           timestamp=1_700_000_000_000_000 + n * 1_000_000, comm=COMMS[n % 5],
                           exe=b"/usr/bin/" + COMMS[n % 5], boot_id="ab" * 16, door="pipe",
                           hostname=b"host", cmdline=b"/usr/bin/prog --flag value")
    for attr, size in PROC_SIZES.items():
        setattr(context, attr, (b"line of /proc text %d\n" % n) * (size // 24))
    return context


def backtrace(n: int) -> str:
    frames = [{"pc": 0x401000 + i, "function": f"func_{i}", "module": "/usr/bin/prog"}
              for i in range(12)]
    return json.dumps({"threads": [{"tid": 1000 + n, "frames": frames}]})


def timed(step: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = step()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-catalog-") as tmp:
        path = Path(tmp) / "catalog.sqlite"
        contexts = [make_context(n) for n in range(args.rows)]
        stored = StoredCore(Path(tmp) / "core.x.zst", "present", 8 << 20, 8 << 20, 18 << 10,
                            8 << 20, None)
        with Catalog.open(path) as catalog:
            start = time.perf_counter()
            for n, context in enumerate(contexts):
                catalog.add(context, stored, backtrace_json=backtrace(n), signature=f"sig{n % 50}")
            insert = time.perf_counter() - start
        size = path.stat().st_size + sum(
            p.stat().st_size for p in Path(tmp).glob("catalog.sqlite-*"))

        rows: list[tuple[str, float, int]] = []
        open_time, catalog = timed(lambda: Catalog.open(path), 1)
        assert isinstance(catalog, Catalog)
        rows.append(("open (existing)", open_time, 0))
        middle = 1_700_000_000_000_000 + (args.rows - args.rows // 10) * 1_000_000
        cases: list[tuple[str, Callable[[], object]]] = [
            ("count", catalog.count),
            (f"list all {args.rows}, summary (details=False)",
             lambda: catalog.query(details=False)),
            (f"list all {args.rows}, with context JSON", catalog.query),
            ("list newest 20", lambda: catalog.query(limit=20)),
            ("list by comm (1/5 of rows)", lambda: catalog.query(match={"comm": b"python3"})),
            ("list by signature (indexed)", lambda: catalog.query(match={"signature": "sig7"})),
            ("list the last 10% by time", lambda: catalog.query(since_us=middle)),
            ("get one by id", lambda: catalog.get(args.rows // 2)),
        ]
        for name, step in cases:
            seconds, result = timed(step, args.repeat)
            rows.append((name, seconds, len(result) if isinstance(result, list) else 1))
        catalog.close()

    print(f"catalog: {args.rows} rows, {size / 1e6:.1f} MB on disk, "
          f"median of {args.repeat} runs (python {sys.version.split()[0]}, {os.cpu_count()} cpus)")
    print(f"{'operation':<44} {'ms':>10} {'rows':>8}")
    print(f"{'insert, one transaction each':<44} {insert * 1e3:>10.1f} {args.rows:>8}"
          f"   ({args.rows / insert:,.0f} rows/s)")
    for name, seconds, n in rows:
        print(f"{name:<44} {seconds * 1e3:>10.2f} {n:>8}")


if __name__ == "__main__":
    main()
