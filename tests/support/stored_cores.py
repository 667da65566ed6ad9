"""Checks on cores stored by coredumpd's doors (shared by the pipe and socket door tests)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from coredumpd.storage import decompress_to
from tests.support.kernel_cores import symbol_address
from unwinder.core import CoreReader

#: what tests/programs/crasher.c keeps in g_pattern
PATTERN = bytes((i * 7) & 0xFF for i in range(4096))


def check_stored_core(row, crasher: Path, tmp_path: Path, threads: int) -> None:  # type: ignore[no-untyped-def]
    """The row's stored core is complete, has ``threads`` threads, is the crashed process, and
    holds the crasher's memory marker."""
    assert row.storage_state == "present", row.notes
    raw = tmp_path / f"core.{row.pid}"
    decompress_to(Path(row.filename), raw)
    with CoreReader(raw) as reader:
        assert not reader.truncated
        assert reader.size == reader.core.expected_size == row.received
        assert len(reader.core.threads) == threads
        assert reader.core.prpsinfo.pr_pid == row.pid
        assert reader.read(symbol_address(crasher, "g_pattern"), 4096) == PATTERN


def core_temp_files(pids: Sequence[int], core_dir: Path) -> list[tuple[str, int]]:
    """(fd target, size) of the core temp files ``pids`` hold open: an O_TMPFILE file shows as
    ``<dir>/#<ino> (deleted)``, the fallback as ``<dir>/.#core…``."""
    found = []
    for pid in pids:
        try:
            entries = list(Path(f"/proc/{pid}/fd").iterdir())
        except FileNotFoundError:
            continue
        for entry in entries:
            try:
                target = os.readlink(entry)
                size = entry.stat().st_size
            except OSError:  # closed meanwhile
                continue
            if target.startswith(f"{core_dir}/") and ("(deleted)" in target or "/.#core" in target):
                found.append((target, size))
    return found
