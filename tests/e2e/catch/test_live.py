"""``coredumpd snapshot`` and ``coredumpd stack`` on a running multi-threaded process: it keeps
running, its output is unchanged, the core loads in gdb, the stacks match gdb's."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.catch.conftest import COREDUMPD, REPO, Store, core_file, run
from tests.support.crash import process_state, wait_until
from tests.support.oracles import gdb_threads

pytestmark = pytest.mark.e2e


@pytest.fixture
def sleeper(catchme: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([str(catchme), "sleep"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        wait_until(lambda: len(list(Path(f"/proc/{proc.pid}/task").iterdir())) == 4, what="threads")
        wait_until(lambda: process_state(proc.pid) == "S", what="sleep")
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _still_running(proc: subprocess.Popen[str]) -> None:
    assert proc.poll() is None
    status = Path(f"/proc/{proc.pid}/status").read_text()
    assert "TracerPid:\t0" in status
    wait_until(lambda: process_state(proc.pid) == "S", what="sleep again")


def test_snapshot_of_running_process(sleeper, store: Store, catchme: Path, tmp_path: Path) -> None:
    store.new_rows()
    result = run([*COREDUMPD, "snapshot", "--state-dir", str(store.path), str(sleeper.pid)])
    assert result.returncode == 0, result.stderr
    _still_running(sleeper)
    (row,) = store.new_rows()
    assert row.door == "snapshot" and row.signal is None and row.pid == sleeper.pid
    threads = gdb_threads(catchme, core_file(row, tmp_path))
    assert len(threads) == 4
    assert "wait_here" in threads[sleeper.pid].backtrace
    assert sum("parked" in t.backtrace for t in threads.values()) == 3


@pytest.mark.parametrize("verb", ["stack", "backtrace --pid"])
def test_stack_of_running_process(sleeper, catchme: Path, verb: str) -> None:
    argv = ["stack", "--json", str(sleeper.pid)] if verb == "stack" else \
        ["backtrace", "--pid", str(sleeper.pid), "--json"]
    result = run([*COREDUMPD, *argv])
    assert result.returncode == 0, result.stderr
    _still_running(sleeper)
    ours = {t["tid"]: [f.get("function") for f in t["frames"]]
            for t in json.loads(result.stdout)["threads"]}
    attached = subprocess.run(["gdb", "-nx", "-batch", "-p", str(sleeper.pid), "-ex",
                               "thread apply all bt"], capture_output=True, text=True, cwd=REPO,
                              timeout=120)
    assert set(ours) == {int(p.name) for p in Path(f"/proc/{sleeper.pid}/task").iterdir()}
    assert "wait_here" in ours[sleeper.pid] and "main" in ours[sleeper.pid]
    assert sum("parked" in frames for frames in ours.values()) == 3
    for name in ("wait_here", "parked", "main"):
        assert name in attached.stdout
