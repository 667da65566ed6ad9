"""A big incompressible core through the kernel's coredump socket lands in the daemon's spool
(a socket has no splice: its bytes go through the compressor's fast level into the spool's
cached pages), and is stored whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from coredumpd.vacuum import SPOOL
from tests.e2e.pipeline.test_spool_door import FILL, check_whole
from tests.e2e.socket.conftest import SocketDoor
from tests.support.crash import wait_until

pytestmark = pytest.mark.e2e


def test_a_big_random_core_through_the_socket_lands_in_the_spool(  # type: ignore[no-untyped-def]
        socket_door: SocketDoor, compile_c, tmp_path: Path) -> None:
    exe = compile_c(FILL, name="fill", flags=("-O1", "-no-pie"))
    core_dir = socket_door.state / "coredump"
    socket_door.start()
    wait_until(lambda: (core_dir / SPOOL).exists(), 60, "the daemon's first spool")
    crashed = socket_door.crash([exe, "random"])
    assert crashed.core_bit
    row = socket_door.wait_for(crashed.pid)
    log = socket_door.stop()
    assert f"recorded pid {crashed.pid} (core present (into the spool);" in log
    assert row.door == "socket"
    check_whole(row, exe, tmp_path)
