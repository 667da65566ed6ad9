"""How long it takes to parse the head of a real core stream, by process size and threads.

Crashes ``bigcrash`` (heap of N MiB touched, T threads) with core_pattern piping to
``core_head_probe.py``, which times :func:`unwinder.core.read_core_head` on the kernel's stream
(from the first read to all notes decoded, every thread's registers included) and then drains
the rest. Also times parsing the same head from memory (pure CPU). Run as root:

    .venv/bin/python bench/bench_core_head.py [--sizes 16,256,1024] [--threads 1,8,64]
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coredumpd.sysctl import crash_sysctls  # noqa: E402
from unwinder.core import read_core_head  # noqa: E402


def crash_once(exe: Path, mib: int, threads: int, out: Path) -> dict:
    proc = subprocess.Popen([str(exe), str(mib), str(threads)],
                            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (-1, -1)))
    proc.wait()
    deadline = time.monotonic() + 120
    while not out.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the probe wrote no figures")
        time.sleep(0.01)
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,256,1024", help="heap sizes in MiB")
    parser.add_argument("--threads", default="1,8,64")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-head-"))
    exe = work / "bigcrash"
    subprocess.run(["gcc", "-O1", "-pthread", "-o", str(exe), str(ROOT / "bench/programs/bigcrash.c")],
                   check=True)
    probe = ROOT / "bench" / "core_head_probe.py"
    rows = []
    with crash_sysctls() as sysctls:
        sysctls.set(core_pipe_limit=0, core_pattern=f"|{sys.executable} {probe} {work}/out.%p")
        for threads in (int(t) for t in args.threads.split(",")):
            for mib in (int(s) for s in args.sizes.split(",")):
                runs = []
                for i in range(args.repeat):
                    out = work / f"fig-{mib}-{threads}-{i}"
                    sysctls.set(core_pattern=f"|{sys.executable} {probe} {out}")
                    runs.append(crash_once(exe, mib, threads, out) | {"out": str(out)})
                rows.append((mib, threads, runs))
    stream_col = f"head parse ms (stream, median of {args.repeat})"
    print(f"{'heap MiB':>8} {'threads':>7} {'core MiB':>9} {'head KiB':>8} "
          f"{stream_col:>38} {'in-memory ms':>12} {'drain MB/s':>10}")
    for mib, threads, runs in rows:
        med = statistics.median(r["head_ms"] for r in runs)
        r0 = runs[0]
        assert r0["stream_bytes"] == r0["expected_bytes"], "stream shorter than the core's layout"
        head = in_memory_ms(Path(r0["out"] + ".head"))
        print(f"{mib:>8} {threads:>7} {r0['stream_bytes'] / 2**20:>9.0f} {r0['head_bytes'] / 1024:>8.1f} "
              f"{med:>38.2f} {head:>12.2f} {r0['stream_bytes'] / r0['drain_s'] / 1e6:>10.0f}")


def in_memory_ms(head_file: Path, repeat: int = 50) -> float:
    """Median time to parse the stored head from memory (no waiting on the kernel)."""
    data = head_file.read_bytes()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        read_core_head(io.BytesIO(data))
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


if __name__ == "__main__":
    main()
