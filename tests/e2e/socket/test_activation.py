"""Socket activation: systemd (here ``systemd-socket-activate``, which binds, listens and execs
the daemon with ``LISTEN_FDS``) owns the kernel socket; the daemon's door process takes it
over and answers real crashes on it."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

from tests.e2e.socket.conftest import SocketDoor

pytestmark = pytest.mark.e2e


@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None,
                    reason="systemd-socket-activate is not installed")
def test_inherited_kernel_socket_takes_crashes(socket_door: SocketDoor, crasher: Path) -> None:
    socket_door.start("RateLimitBurst=1\nRateLimitIntervalSec=1h\n",
                      launcher=["systemd-socket-activate", "-l", str(socket_door.kernel_socket)])
    taken = socket_door.crash([crasher, "segv"])
    rejected = socket_door.crash([crasher, "segv"])
    assert taken.core_bit and taken.signal == signal.SIGSEGV
    assert not rejected.core_bit  # the door's REJECT, on the inherited socket
    assert socket_door.wait_for(taken.pid).storage_state == "present"
    assert socket_door.wait_for(rejected.pid).storage_state == "none"
    log = socket_door.stop()
    assert "ignoring an inherited socket" not in log
    assert f"listening on {socket_door.handoff_socket}, {socket_door.kernel_socket}" in log
