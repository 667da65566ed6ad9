"""Run by the kernel as a core_pattern pipe helper in tests: ``live_probe.py OUTDIR %P``.

Reads the head of the core stream, unwinds every thread of the still-held process from
/proc/<pid>/mem (coredumpd.live), and only then drains the stream into OUTDIR/core. Writes the
live backtrace as OUTDIR/live.json, or the error as OUTDIR/error.txt. The kernel gives it an
empty environment, cwd /, and fds 1 and 2 closed.
"""

import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def main() -> None:
    out, pid = sys.argv[1], int(sys.argv[2])
    try:
        from coredumpd.live import live_backtrace
        from unwinder.core import read_core_head
        from unwinder.format import to_json

        head = read_core_head(0)
        start = time.perf_counter()
        backtrace = live_backtrace(head.core, pid)
        elapsed = time.perf_counter() - start
        with open(os.path.join(out, "core.tmp"), "wb") as f:
            f.write(head.head)
            while chunk := os.read(0, 1 << 20):
                f.write(chunk)
        os.rename(os.path.join(out, "core.tmp"), os.path.join(out, "core"))
        with open(os.path.join(out, "live.json.tmp"), "w") as f:
            f.write(to_json(backtrace))
        with open(os.path.join(out, "live_ms"), "w") as f:
            f.write(f"{elapsed * 1e3:.1f}")
        os.rename(os.path.join(out, "live.json.tmp"), os.path.join(out, "live.json"))
    except BaseException:
        with open(os.path.join(out, "error.txt"), "w") as f:
            f.write(traceback.format_exc())
        while os.read(0, 1 << 20):
            pass


if __name__ == "__main__":
    main()
