"""The daemon killed with SIGKILL mid-dump, then restarted: no half-written file under a final
name, no corrupt row, the killed crash's task released, and the next crash recorded."""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from coredumpd.storage import open_core
from tests.support.crash import wait_until
from tests.support.pipe_door import PipeDoor
from tests.support.stored_cores import core_temp_files

pytestmark = pytest.mark.e2e

#: 512 MiB of incompressible heap: the daemon needs long enough to store it to be killed mid-way
BIG = r"""
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
uint64_t *volatile keep;  /* the heap escapes: -O2 may not drop the filling loop */
int main(void) {
    size_t n = (size_t)512 << 17;  /* 512 MiB of uint64_t */
    uint64_t *p = malloc(n * 8), x = 0x9e3779b97f4a7c15ull;
    if (!p) return 2;
    keep = p;
    for (size_t i = 0; i < n; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; p[i] = x; }
    *(volatile int *)16 = 1;
    return 0;
}
"""


def decompressed_size(path: Path) -> int:
    """Reads every zstd frame of a stored core (checksums included); raises on a partial file."""
    total = 0
    with open_core(path) as reader:
        while chunk := reader.read(1 << 20):
            total += len(chunk)
    return total


def test_daemon_killed_mid_dump_then_restarted(pipe_door: PipeDoor, compile_c, crasher: Path) -> None:  # type: ignore[no-untyped-def]
    big = compile_c(BIG, name="bigfill", flags=("-O2",))
    core_dir = pipe_door.state / "coredump"
    daemon = pipe_door.start_daemon()
    victim = subprocess.Popen([str(big)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (-1, -1)))
    try:
        # mid-dump: the daemon's temp file for the core exists and has bytes in it
        wait_until(lambda: any(size > 0 for _, size in core_temp_files([daemon.pid], core_dir)), 120,
                   "the daemon to be writing the core")
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait(timeout=30)
        # every reader of the core pipe is gone: the kernel's write fails, the task is released
        assert victim.wait(timeout=30) == -signal.SIGSEGV
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
        pipe_door.stop_daemon(daemon)

    restarted = pipe_door.start_daemon()
    try:
        pid = pipe_door.crash([crasher, "segv"])
        row = pipe_door.wait_for(pid)
    finally:
        log = pipe_door.stop_daemon(restarted)
    assert restarted.returncode == 0, log
    assert row.storage_state == "present", row.notes

    with sqlite3.connect(pipe_door.state / "catalog.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    rows = {r.filename: r for r in pipe_door.catalog_rows() if r.filename}
    finals = sorted(core_dir.glob("core.*"))
    assert Path(row.filename) in finals
    for path in finals:
        assert path.name.endswith(".zst"), path
        assert str(path) in rows, f"{path.name} has no catalog row"
        assert decompressed_size(path) == rows[str(path)].received, path.name
    # the killed crash left nothing under a final name (its temp file died with the daemon,
    # or, written into the spool, was removed by the restarted daemon's spool writer)
    assert not [p for p in finals if f".{victim.pid}." in p.name]
    assert not list(core_dir.glob(".#core*")), os.listdir(core_dir)
    # yet it is counted: its in-flight marker became a record without a core at the restart
    (killed,) = [r for r in pipe_door.catalog_rows() if r.pid == victim.pid]
    assert killed.storage_state == "none" and killed.filename is None
    assert any(n.startswith("interrupted:") for n in killed.notes), killed.notes
    assert killed.comm == b"bigfill" and killed.signal == signal.SIGSEGV
