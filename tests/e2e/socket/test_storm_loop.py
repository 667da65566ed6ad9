"""One crash-looping program at the kernel door: 200 crashes within 10 s under a limit of 5 per
minute. Every crash is counted, the first 5 cores are stored, the other 195 are rejected at the
door (REJECT: the task dies at once without writing a core), and the daemon's memory grows with
the cores it takes, not with the crashes it counts."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.socket.conftest import SocketDoor, descendants
from tests.support.crash import wait_until
from tests.support.report import report

pytestmark = pytest.mark.e2e
CRASHES = 200
BURST = 5
#: the issue's spec: the whole loop, 200 crashes, within 10 s of wall time
LOOP_DEADLINE = 10.0
#: what one taken core may add to the daemon's peak, in KiB. Its analysis loads libc's symbols
#: and line table (libc6-dbg) into a cold cache: measured here, one crash takes the daemon's
#: VmHWM from 32 to 146-164 MiB, later ones (warm cache) add nothing. 160 MiB is that ~130 MiB
#: plus a quarter. The pipeline symbolises one crash at a time, so the burst's later cores find
#: the cache built: the storm may cost two of them (one cold build, one crash being received),
#: not BURST (concurrent cold builds measured 329-662 MiB); the 195 rejects cost nothing of
#: that order.
PER_TAKEN_CORE_KIB = 160 << 10
#: what the 195 rejects may add to the peak of a process the daemon started to answer the
#: kernel (the door, when it runs apart): measured +0.5 MiB; a leak of 40 KiB per crash fails
REJECTS_KIB = 8 << 10


def vm_kib(pid: int, field: str) -> int:
    """``VmHWM``/``VmRSS`` of ``pid`` in KiB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def helpers_hwm(daemon: int) -> dict[int, int]:
    """VmHWM in KiB of each process the daemon started, by pid."""
    return {pid: vm_kib(pid, "VmHWM") for pid in descendants(daemon)}


def test_crash_loop_counts_all_stores_the_burst(socket_door: SocketDoor, compile_c) -> None:  # type: ignore[no-untyped-def]
    loop = compile_c((Path(__file__).parent / "crash_loop.c").read_text(), name="crash_loop",
                     flags=("-O1",))
    socket_door.start(f"RateLimitBurst={BURST}\nRateLimitIntervalSec=1min\n")
    daemon = socket_door.daemon
    assert daemon is not None
    idle_hwm = vm_kib(daemon.pid, "VmHWM")
    idle_helpers = helpers_hwm(daemon.pid)

    start = time.monotonic()
    out = subprocess.run([str(loop), str(CRASHES)], capture_output=True, text=True, timeout=120)
    wall = time.monotonic() - start
    assert out.returncode == 0, out.stderr
    *crashes, summary = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(crashes) == CRASHES and len({c["pid"] for c in crashes}) == CRASHES
    assert wall < LOOP_DEADLINE, f"{CRASHES} crashes took {wall:.2f} s"

    assert all(os.WIFSIGNALED(c["status"]) and os.WTERMSIG(c["status"]) == signal.SIGSEGV
               for c in crashes)
    # the bucket starts full and refills one token per 12 s: the first 5 crashes take it all
    cored = [c["pid"] for c in crashes if os.WCOREDUMP(c["status"])]
    assert cored == [c["pid"] for c in crashes[:BURST]]

    wait_until(lambda: len(socket_door.rows()) >= CRASHES, 60, f"{CRASHES} records")
    hwm = vm_kib(daemon.pid, "VmHWM")
    rss = vm_kib(daemon.pid, "VmRSS")
    helpers = helpers_hwm(daemon.pid)
    rows = {r.pid: r for r in socket_door.rows()}
    assert len(rows) == CRASHES and set(rows) == {c["pid"] for c in crashes}
    exe = os.fsencode(loop)
    assert all(r.exe == exe and r.door == "socket" for r in rows.values())
    stored = {pid for pid, r in rows.items() if r.storage_state == "present"}
    assert stored == set(cored)
    for pid in cored:
        assert rows[pid].signal == signal.SIGSEGV
        assert Path(rows[pid].filename or "").is_file(), rows[pid]
        assert rows[pid].backtrace_json, rows[pid].notes
    for c in crashes[BURST:]:
        row = rows[c["pid"]]
        assert row.storage_state == "none" and row.filename is None
        assert not row.received  # rejected at the door: not one byte of core came in
        # no stream, no signal: the kernel tells it to the door only from 6.19 on (pidfd info)
        assert row.signal in (None, signal.SIGSEGV)
        assert any("rejected by rate limit" in n and f"more than {BURST} per 60s" in n
                   for n in row.notes), row.notes
    assert len(list((socket_door.state / "coredump").glob("core.*"))) == BURST

    bound = idle_hwm + 2 * PER_TAKEN_CORE_KIB
    held = sorted((c["reaped_ns"] - c["crashed_ns"]) / 1e6 for c in crashes[BURST:])
    taken = [(c["reaped_ns"] - c["crashed_ns"]) / 1e6 for c in crashes[:BURST]]
    door = ", ".join(f"{idle_helpers.get(pid, 0) >> 10}->{kib >> 10}"
                     for pid, kib in helpers.items())
    line = (f"crash loop of {CRASHES} (@@, {BURST}/min): loop {summary['loop_ns'] / 1e9:.2f} s; "
            f"rejected crash->reaped ms p50 {statistics.median(held):.2f} "
            f"p90 {held[int(len(held) * 0.9)]:.2f} max {held[-1]:.2f}; taken "
            f"{', '.join(f'{t:.0f}' for t in taken)} ms; daemon VmHWM {hwm >> 10} MiB "
            f"(idle {idle_hwm >> 10}, bound {bound >> 10}), VmRSS after {rss >> 10} MiB; "
            f"its helpers' VmHWM MiB {door or 'none'}")
    report(line)
    print(line)
    assert hwm < bound, line
    for pid, kib in helpers.items():
        assert kib - idle_helpers.get(pid, 0) < REJECTS_KIB, line
