"""Write-behind on a real file system: a file streamed through :class:`WriteBehind` leaves
little of itself in the page cache (``fincore`` counts the resident pages), a file written
without it stays whole in the cache; a core stored through the pipeline does not stay in
it; closing stops the thread before the fd goes away."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from coredumpd.storage import open_core
from coredumpd.writeback import LAG, WINDOW, WriteBehind
from tests.e2e.coredumpd.test_storage_frames import store
from tests.e2e.coredumpd.test_storage_frames import text as text_like

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(shutil.which("fincore") is None, reason="fincore is missing")]

MIB = 1 << 20
SIZE = 96 * MIB


def resident(path: Path) -> int:
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def stream(path: Path, behind: bool) -> None:
    block = os.urandom(MIB)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    writer = WriteBehind(fd) if behind else None
    try:
        for i in range(SIZE // MIB):
            os.write(fd, block)
            if writer is not None:
                writer.advance((i + 1) * MIB)
    finally:
        if writer is not None:
            writer.close(drain=True)
        os.close(fd)


def test_streamed_file_leaves_the_page_cache(tmp_path: Path) -> None:
    # /tmp may be a tmpfs (nothing to write back): use the state directory's file system
    directory = Path("/var/tmp")
    path = directory / f"writeback-test-{os.getpid()}"
    try:
        stream(path, behind=False)
        assert resident(path) > SIZE // 2, "without write-behind the pages stay cached"
        stream(path, behind=True)
        kept = resident(path)
        assert kept <= MIB, f"{kept >> 20} MiB of {SIZE >> 20} MiB still cached"
        assert path.stat().st_size == SIZE
        assert (LAG + 1) * WINDOW < SIZE  # the thread had windows to drop before the drain
    finally:
        path.unlink(missing_ok=True)


def test_a_stored_core_leaves_the_page_cache() -> None:
    directory = Path("/var/tmp") / f"writeback-store-{os.getpid()}"
    directory.mkdir()
    data = os.urandom(48 * MIB) + text_like(16 * MIB)
    try:
        stored = store(directory, data)
        assert stored.state == "present" and stored.path is not None
        size = stored.path.stat().st_size
        assert resident(stored.path) <= MIB, "the published core stayed in the page cache"
        with open_core(stored.path) as f:
            assert f.read() == data
        assert size > 48 * MIB
    finally:
        shutil.rmtree(directory)


def test_close_stops_the_thread(tmp_path: Path) -> None:
    before = {t.name for t in threading.enumerate()}
    stream(tmp_path / "f", behind=True)
    assert "write-behind" not in {t.name for t in threading.enumerate()} - before
