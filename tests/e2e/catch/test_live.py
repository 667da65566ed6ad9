"""``coredumpd snapshot`` and ``coredumpd stack`` on a running multi-threaded process: it keeps
running, its output is unchanged, the core loads in gdb, the stacks match gdb's."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.catch.conftest import COREDUMPD, Store, core_file, run
from tests.support.crash import process_state, wait_until
from tests.support.names import normalize, up_to_main
from tests.support.oracles import gdb_attached_threads, gdb_threads

pytestmark = pytest.mark.e2e


THREADS = 8  # catchme sleep: main in wait_here() and 7 parked threads


@pytest.fixture
def sleeper(catchme: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([str(catchme), "sleep"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        wait_until(lambda: len(list(Path(f"/proc/{proc.pid}/task").iterdir())) == THREADS,
                   what="threads")
        wait_until(lambda: process_state(proc.pid) == "S", what="sleep")
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _still_running(proc: subprocess.Popen[str]) -> None:
    """Not traced any more, and still doing its job: each line written to its stdin comes back
    unchanged on its stdout (a read(2) our freeze broke would have ended the echo loop)."""
    assert proc.poll() is None
    status = Path(f"/proc/{proc.pid}/status").read_text()
    assert "TracerPid:\t0" in status
    assert proc.stdin is not None and proc.stdout is not None
    for line in ("ping\n", "pong \\x00 tail\n"):
        proc.stdin.write(line)
        proc.stdin.flush()
        assert proc.stdout.readline() == line
    wait_until(lambda: process_state(proc.pid) == "S", what="sleep again")


def test_snapshot_of_running_process(sleeper, store: Store, catchme: Path, tmp_path: Path) -> None:
    store.new_rows()
    result = run([*COREDUMPD, "snapshot", "--state-dir", str(store.path), str(sleeper.pid)])
    assert result.returncode == 0, result.stderr
    _still_running(sleeper)
    (row,) = store.new_rows()
    assert row.door == "snapshot" and row.signal is None and row.pid == sleeper.pid
    threads = gdb_threads(catchme, core_file(row, tmp_path))
    assert len(threads) == THREADS
    assert "wait_here" in threads[sleeper.pid].backtrace
    assert sum("parked" in t.backtrace for t in threads.values()) == THREADS - 1
    # the snapshot's stacks are the stacks gdb sees attached to the process itself
    attached = gdb_attached_threads(sleeper.pid)
    assert {tid: t.backtrace for tid, t in threads.items()} == \
        {tid: t.backtrace for tid, t in attached.items()}


def comparable(threads: dict[int, list[str]]) -> dict[int, list[str | None]]:
    """Names spelled alike (``__clone3``/``clone3``), up to ``main`` where gdb stops."""
    return {tid: up_to_main([normalize(n) for n in names]) for tid, names in threads.items()}
    _still_running(sleeper)


@pytest.mark.parametrize("verb", ["stack", "backtrace --pid"])
def test_stack_of_running_process(sleeper, catchme: Path, verb: str) -> None:
    argv = ["stack", "--json", str(sleeper.pid)] if verb == "stack" else \
        ["backtrace", "--pid", str(sleeper.pid), "--json"]
    result = run([*COREDUMPD, *argv])
    assert result.returncode == 0, result.stderr
    _still_running(sleeper)
    ours = {t["tid"]: [f.get("function") or "??" for f in t["frames"]]
            for t in json.loads(result.stdout)["threads"]}
    assert set(ours) == {int(p.name) for p in Path(f"/proc/{sleeper.pid}/task").iterdir()}
    assert "wait_here" in ours[sleeper.pid] and "main" in ours[sleeper.pid]
    assert sum("parked" in frames for frames in ours.values()) == THREADS - 1
    # every thread, frame by frame, as gdb attached to the same process sees it
    attached = gdb_attached_threads(sleeper.pid)
    assert comparable(ours) == comparable({tid: t.backtrace for tid, t in attached.items()})
    _still_running(sleeper)
