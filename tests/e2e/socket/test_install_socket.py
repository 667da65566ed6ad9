"""``install --mode auto|socket`` against a listening daemon, and the fallbacks."""

from __future__ import annotations

from pathlib import Path

import pytest

import coredumpd.install as install_module
from coredumpd.install import InstallError, install
from coredumpd.sysctl import read_sysctl
from tests.e2e.socket.conftest import SocketDoor

pytestmark = pytest.mark.e2e


def test_socket_mode_needs_a_listening_daemon(socket_door: SocketDoor) -> None:
    before = read_sysctl("core_pattern")
    with pytest.raises(InstallError, match="no daemon listens on .*start `coredumpd serve` first"):
        install(state_dir=socket_door.state, mode="socket", helper_dir=socket_door.helper_dir,
                persist=False, lock=False, kernel_socket=socket_door.kernel_socket)
    assert read_sysctl("core_pattern") == before


def test_auto_without_daemon_is_the_pipe(socket_door: SocketDoor) -> None:
    done = install(state_dir=socket_door.state, mode="auto", helper_dir=socket_door.helper_dir,
                   persist=False, lock=False, kernel_socket=socket_door.kernel_socket)
    socket_door.installed = done.pattern
    assert done.mode == "pipe" and done.pattern.startswith("|")
    assert "no daemon listens" in (done.reason or "")


def test_auto_with_daemon_is_the_protocol_socket(socket_door: SocketDoor) -> None:
    socket_door.start(mode="auto")
    assert socket_door.installed == f"@@{socket_door.kernel_socket}"
    assert read_sysctl("core_pattern") == socket_door.installed
    assert read_sysctl("core_pipe_limit") == "0"


def test_socket_mode_where_the_kernel_has_none(socket_door: SocketDoor, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "core_modes"
    fake.write_text("file\npipe\n")
    monkeypatch.setattr(install_module, "CORE_MODES", fake)
    with pytest.raises(InstallError, match="this kernel has no coredump socket"):
        install(state_dir=socket_door.state, mode="socket", helper_dir=socket_door.helper_dir,
                persist=False, lock=False, kernel_socket=socket_door.kernel_socket)


def test_stopping_daemon_points_the_pattern_back_at_the_pipe(socket_door: SocketDoor) -> None:
    socket_door.start()
    assert socket_door.installed is not None and socket_door.installed.startswith("@@")
    daemon = socket_door.daemon
    assert daemon is not None
    daemon.terminate()
    daemon.wait(timeout=60)
    pattern = read_sysctl("core_pattern")
    assert pattern.startswith("|") and "helper" in pattern, pattern
    assert "now |" in socket_door.log()
