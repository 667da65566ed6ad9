"""In-flight markers: a crash whose handler died is recorded once, without its core; one whose
handler lives is left alone; garbage is removed."""

from __future__ import annotations

import subprocess
from pathlib import Path

from coredumpd import inflight
from coredumpd.catalog import Catalog
from coredumpd.context import CrashContext


def _context(pid: int) -> CrashContext:
    return CrashContext(door="socket", pid=pid, uid=0, gid=0, signal=11, timestamp=1_700_000_000,
                        comm=b"victim", hostname=b"h")


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_marker_of_a_dead_handler_becomes_a_record(tmp_path: Path) -> None:
    live = inflight.mark(tmp_path, _context(101))  # ours: its handler (this test) is alive
    assert live is not None and live.exists()
    dead = tmp_path / inflight.DIRECTORY / f"{_dead_pid()}-123-abcdef.json"
    dead.write_text(_context(202).to_json())
    (tmp_path / inflight.DIRECTORY / "7-1-zz.json").write_text("{not json")
    with Catalog.open(tmp_path / "catalog.sqlite") as catalog:
        assert inflight.recover(tmp_path, catalog) == 1
        assert inflight.recover(tmp_path, catalog) == 0  # once only
        rows = catalog.query()
    (row,) = rows
    assert (row.pid, row.comm, row.storage_state) == (202, b"victim", "none")
    assert list(row.notes) == [inflight.INTERRUPTED]
    assert sorted(p.name for p in (tmp_path / inflight.DIRECTORY).iterdir()) == [live.name]
    inflight.clear(live)
    inflight.clear(live)  # twice is fine
    assert not live.exists()


def test_no_directory_nothing_to_recover(tmp_path: Path) -> None:
    with Catalog.open(tmp_path / "catalog.sqlite") as catalog:
        assert inflight.recover(tmp_path, catalog) == 0
