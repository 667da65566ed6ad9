"""Real crashes through the daemon with a spool: a big incompressible core is written into
it, and stored whole; a big core of one repeated byte is not (the guess from its pages says
it stores small); the spool is written again after it was taken."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from coredumpd.catalog import CatalogRow
from coredumpd.install import uninstall
from coredumpd.storage import decompress_to
from coredumpd.vacuum import SPOOL
from tests.support.crash import wait_until
from tests.support.kernel_cores import symbol_address
from tests.support.pipe_door import PipeDoor
from unwinder.core import CoreReader

pytestmark = pytest.mark.e2e

#: 32 MiB in .bss (a fixed address in a non-PIE program): random, or one repeated byte
FILL = r"""
#include <stdint.h>
#include <string.h>
unsigned char g_fill[32 << 20];
int main(int argc, char **argv) {
    if (argv[1][0] == 'r') {
        uint64_t x = 0x9e3779b97f4a7c15ull;
        for (size_t i = 0; i < sizeof g_fill; i += 8) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            memcpy(g_fill + i, &x, 8);
        }
    } else {
        memset(g_fill, 0x5a, sizeof g_fill);
    }
    memcpy(g_fill, "SPOOL-MARKER", 12);
    *(volatile int *)16 = 1;
    return 0;
}
"""


def check_whole(row: CatalogRow, exe: Path, tmp_path: Path) -> None:
    """The stored core is the whole stream, with the marker, and its file only zstd frames (cut
    to its size: no spool bytes after the last one)."""
    assert row.storage_state == "present", row.notes
    raw = tmp_path / f"core.{row.pid}"
    decompress_to(Path(row.filename), raw)
    with CoreReader(raw) as reader:
        assert reader.size == reader.core.expected_size == row.received
        assert reader.read(symbol_address(exe, "g_fill"), 12) == b"SPOOL-MARKER"
    out = subprocess.run(["zstd", "-t", row.filename], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_a_big_random_core_lands_in_the_spool(pipe_door: PipeDoor, compile_c,  # type: ignore[no-untyped-def]
                                              tmp_path: Path) -> None:
    exe = compile_c(FILL, name="fill", flags=("-O1", "-no-pie"))
    core_dir = pipe_door.state / "coredump"
    daemon = pipe_door.start_daemon()
    try:
        wait_until(lambda: (core_dir / SPOOL).exists(), 60, "the daemon's first spool")
        random_pid = pipe_door.crash([exe, "random"])
        random_row = pipe_door.wait_for(random_pid)
        wait_until(lambda: (core_dir / SPOOL).exists(), 60, "a new spool")
        constant_pid = pipe_door.crash([exe, "constant"])
        constant_row = pipe_door.wait_for(constant_pid)
    finally:
        log = pipe_door.stop_daemon(daemon)
    records = {int(line.partition("recorded pid ")[2].split()[0]): line
               for line in log.splitlines() if "recorded pid " in line}
    assert "(into the spool)" in records[random_pid], log
    assert "(into the spool)" not in records[constant_pid], log
    for row in (random_row, constant_row):
        check_whole(row, exe, tmp_path)
    assert sorted(p.name for p in core_dir.iterdir() if p.name.startswith(".#")) == []


def test_uninstall_removes_the_spool(pipe_door: PipeDoor) -> None:
    core_dir = pipe_door.state / "coredump"
    daemon = pipe_door.start_daemon()
    try:
        wait_until(lambda: (core_dir / SPOOL).exists(), 60, "the daemon's first spool")
    finally:
        pipe_door.stop_daemon(daemon)
    uninstall(state_dir=pipe_door.state, lock=False)
    assert not (core_dir / SPOOL).exists()
