"""Run by the kernel as a core_pattern pipe helper (``|python core_head_probe.py OUT``):
time read_core_head() on the live stream, drain the rest, write the figures as JSON to OUT
and the head bytes to OUT.head.

The kernel starts it with an empty environment, cwd /, and fds 1 and 2 closed.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from unwinder.core import read_core_head  # noqa: E402


def main() -> None:
    out = sys.argv[1]
    start = time.perf_counter()
    head = read_core_head(0)
    parsed = time.perf_counter()
    total = len(head.head)
    while chunk := os.read(0, 1 << 20):
        total += len(chunk)
    drained = time.perf_counter()
    figures = {
        "head_ms": (parsed - start) * 1e3,
        "drain_s": drained - parsed,
        "head_bytes": len(head.head),
        "stream_bytes": total,
        "expected_bytes": head.core.expected_size,
        "threads": len(head.core.threads),
        "segments": len(head.core.loads),
    }
    with open(f"{out}.head", "wb") as f:
        f.write(head.head)
    tmp = f"{out}.tmp"
    with open(tmp, "w") as f:
        json.dump(figures, f)
    os.rename(tmp, out)


if __name__ == "__main__":
    main()
