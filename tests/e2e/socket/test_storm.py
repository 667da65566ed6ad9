"""A crash storm at the kernel door: after the burst, REJECT costs the crashing task little."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
from pathlib import Path

import pytest

from tests.e2e.socket.conftest import SocketDoor
from tests.support.crash import wait_until
from tests.support.report import report

pytestmark = pytest.mark.e2e
STORM = 50
BURST = 3


def test_storm_rejects_after_the_burst_and_counts_all(socket_door: SocketDoor, compile_c) -> None:  # type: ignore[no-untyped-def]
    storm = compile_c((Path(__file__).parent / "storm.c").read_text(), name="storm",
                      flags=("-O1",))
    socket_door.start(f"RateLimitBurst={BURST}\nRateLimitIntervalSec=1h\n")
    out = subprocess.run([str(storm), str(STORM)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    results = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(results) == STORM
    cored = [r for r in results if os.WCOREDUMP(r["status"])]
    rejected = [r for r in results if not os.WCOREDUMP(r["status"])]
    assert len(cored) == BURST and len(rejected) == STORM - BURST
    assert all(os.WTERMSIG(r["status"]) == 11 for r in results)

    def recorded() -> bool:
        return len(socket_door.rows()) == STORM

    wait_until(recorded, 60, f"{STORM} records")
    rows = {r.pid: r for r in socket_door.rows()}
    assert set(rows) == {r["pid"] for r in results}
    assert sum(r.storage_state == "present" for r in rows.values()) == BURST
    assert all(rows[r["pid"]].storage_state == "none" for r in rejected)

    held = sorted((r["reaped_ns"] - r["crashed_ns"]) / 1e6 for r in rejected)
    taken = sorted((r["reaped_ns"] - r["crashed_ns"]) / 1e6 for r in cored)
    line = (f"storm of {STORM} (@@, burst {BURST}): rejected crash->reaped ms "
            f"p50 {statistics.median(held):.2f} p90 {held[int(len(held) * 0.9)]:.2f} "
            f"max {held[-1]:.2f}; taken cores {', '.join(f'{t:.0f}' for t in taken)} ms")
    report(line)
    print(line)
