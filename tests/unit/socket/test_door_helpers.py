"""Small pure pieces of the socket door: the stream peek, /proc/net/unix, socket paths, config."""

from __future__ import annotations

from pathlib import Path

import pytest

from coredumpd.config import parse_config_text
from coredumpd.errors import ConfigError
from socket_server.kernel_socket import SocketPathError, check_kernel_socket_path
from socket_server.listening import parse_listening_paths
from socket_server.stream_peek import StreamFacts, parse_first_prstatus
from tests.support.elfbuild import CoreSpec, Segment, note, prpsinfo, prstatus_x86_64


def test_first_prstatus_gives_signal_and_dumping_thread() -> None:
    core = CoreSpec(notes=[note(b"CORE", 1, prstatus_x86_64(4242, signo=6)),
                           note(b"CORE", 3, prpsinfo(4240, b"x", b"x")),
                           note(b"CORE", 1, prstatus_x86_64(4240, signo=6))],
                    segments=[Segment(0x1000, 4096, bytes(4096))]).build()
    assert parse_first_prstatus(core) == StreamFacts(6, 4242)
    assert parse_first_prstatus(core[:100]) is None
    assert parse_first_prstatus(b"not an elf" * 10) is None


def test_listening_paths() -> None:
    table = (b"Num       RefCount Protocol Flags    Type St Inode Path\n"
             b"0000000000000000: 00000002 00000000 00010000 0001 01 124863 /run/x/kernel.sock\n"
             b"0000000000000000: 00000003 00000000 00000000 0001 03 124864 /run/x/kernel.sock\n"
             b"0000000000000000: 00000002 00000000 00000000 0001 01 124865 /run/y/bound.sock\n"
             b"0000000000000000: 00000002 00000000 00010000 0001 01 124866 @abstract\n"
             b"0000000000000000: 00000002 00000000 00010000 0001 01 124867\n")
    assert parse_listening_paths(table) == {b"/run/x/kernel.sock"}


@pytest.mark.parametrize("path", ["relative.sock", "/run/a/../b.sock", "/run/a b/k.sock",
                                  "/run/" + "x" * 110])
def test_bad_kernel_socket_paths(path: str) -> None:
    with pytest.raises(SocketPathError):
        check_kernel_socket_path(Path(path))


def test_symlinked_directory_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    check_kernel_socket_path(real / "k.sock")
    with pytest.raises(SocketPathError, match="symlink"):
        check_kernel_socket_path(tmp_path / "link" / "k.sock")


def test_rate_limit_keys() -> None:
    values: dict = {}
    parse_config_text("[Coredumpd]\nRateLimitBurst=5\nRateLimitIntervalSec=2min\n"
                      "UnitRateLimitBurst=0\nFullCoresPerSignature=3\n", Path("x.conf"), values)
    assert values == {"rate_limit_burst": 5, "rate_limit_interval_sec": 120.0,
                      "unit_rate_limit_burst": 0, "full_cores_per_signature": 3}
    parse_config_text("[Coredumpd]\nFullCoresPerSignature=infinity\n", Path("x.conf"), values)
    assert values["full_cores_per_signature"] is None
    with pytest.raises(ConfigError, match="RateLimitBurst"):
        parse_config_text("[Coredumpd]\nRateLimitBurst=-1\n", Path("x.conf"), {})
