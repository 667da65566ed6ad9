"""Real crashes through the kernel's coredump socket (``@@`` and ``@``) into the daemon."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from coredumpd.spool import LOCK
from coredumpd.vacuum import SPOOL
from tests.e2e.socket.conftest import SocketDoor
from tests.support.crash import wait_until
from tests.support.stored_cores import check_stored_core

pytestmark = pytest.mark.e2e




def test_protocol_socket_end_to_end(socket_door: SocketDoor, crasher: Path, tmp_path: Path) -> None:
    socket_door.start()
    assert socket_door.installed == f"@@{socket_door.kernel_socket}"
    crashed = socket_door.crash([crasher, "threads", "8"])
    assert crashed.signal == signal.SIGSEGV and crashed.core_bit
    row = socket_door.wait_for(crashed.pid)
    check_stored_core(row, crasher, tmp_path, threads=8)
    assert row.door == "socket" and row.signal == 11 and row.comm == b"crasher"
    assert row.uid == 0 and row.exe == os.fsencode(crasher)
    assert row.backtrace_json and "crash_now" in row.backtrace_json
    assert json.loads(row.context_json)["tid"] != crashed.pid  # the crashing thread, not main
    log = socket_door.stop()
    assert f"recorded pid {crashed.pid} (core present;" in log


def test_plain_socket_end_to_end(socket_door: SocketDoor, crasher: Path, tmp_path: Path) -> None:
    socket_door.start(mode=None)
    # `@` waits for our close only when core_pipe_limit != 0 (it limits nothing there)
    socket_door.sysctls.set(core_pipe_limit=1, core_pattern=f"@{socket_door.kernel_socket}")
    crashed = socket_door.crash([crasher, "segv"])
    assert crashed.core_bit
    row = socket_door.wait_for(crashed.pid)
    check_stored_core(row, crasher, tmp_path, threads=1)
    assert row.signal == 11
    assert row.backtrace_json and "crash_now" in row.backtrace_json
    assert socket_door.rows()[0].context.notes == []


def test_impostor_is_dropped(socket_door: SocketDoor) -> None:
    socket_door.start()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(socket_door.kernel_socket))
        sock.sendall(b"\x10\x00\x00\x00" * 4)  # a plausible request
        try:  # dropped: no ack, closed (reset, as our request was never read)
            assert sock.recv(64) == b""
        except ConnectionResetError:
            pass
    wait_until(lambda: "impostor" in socket_door.log(), 10, "the impostor log line")
    assert f"peer pid {os.getpid()} uid 0: not dumping core" in socket_door.log()
    assert socket_door.rows() == []
    # no core, no temp file: nothing but the daemon's spool
    assert {p.name for p in (socket_door.state / "coredump").iterdir()} <= {SPOOL, LOCK}


def test_rate_limit_rejects_yet_records(socket_door: SocketDoor, crasher: Path) -> None:
    socket_door.start("RateLimitBurst=2\nRateLimitIntervalSec=1h\n")
    crashes = [socket_door.crash([crasher, "segv"]) for _ in range(5)]
    rows = {r.pid: r for r in (socket_door.wait_for(c.pid) for c in crashes)}
    taken, rejected = crashes[:2], crashes[2:]
    for c in taken:
        assert c.core_bit and rows[c.pid].storage_state == "present"
    for c in rejected:
        row = rows[c.pid]
        assert not c.core_bit and c.signal == signal.SIGSEGV  # REJECT: no core, released
        assert row.storage_state == "none" and row.filename is None
        assert any("rejected by rate limit" in n and "more than 2 per 3600s" in n for n in row.notes)
        assert row.exe == os.fsencode(crasher) and row.door == "socket"
    assert len(socket_door.rows()) == 5


def test_watchdog_kills_a_stalled_dump(socket_door: SocketDoor, crasher: Path) -> None:
    socket_door.start("DumpTimeoutSec=1\n", env={"COREDUMPD_TEST_STALL_SEC": "60"})
    crashed = socket_door.crash([crasher, "threads", "4"], timeout=30)
    assert os.WIFSIGNALED(crashed.status) and crashed.signal == signal.SIGKILL
    assert not crashed.core_bit
    assert crashed.seconds < 15
    row = socket_door.wait_for(crashed.pid)
    assert any("killed by the watchdog" in n for n in row.notes), row.notes
    assert row.storage_state in ("truncated", "none")
    assert 0 < (row.received or 0) < 1 << 20  # the socket buffer's worth, then EOF


# (kind, the mark the kernel answers with): research/kernel-interfaces.md §1
MALFORMED = [("small", 1), ("large", 2), ("unknown", 3), ("spare", 3), ("conflicting", 4),
             ("none", 4)]


@pytest.mark.parametrize(("kind", "mark"), MALFORMED, ids=[k for k, _ in MALFORMED])
def test_malformed_ack_gets_the_kernels_mark(socket_door: SocketDoor, crasher: Path,
                                             kind: str, mark: int) -> None:
    socket_door.start(env={"COREDUMPD_TEST_ACK": kind})
    crashed = socket_door.crash([crasher, "segv"], timeout=30)
    assert crashed.signal == signal.SIGSEGV and not crashed.core_bit  # released, no core
    assert crashed.seconds < 5
    row = socket_door.wait_for(crashed.pid)
    assert row.storage_state == "none"
    (report,) = [r for r in socket_door.reports() if r["pid"] == crashed.pid]
    assert report["req"] == {"size": 16, "size_ack": 16, "mask": 0xF}
    assert report["mark"] == mark
    # the kernel closes after the mark; unread bytes of our ack turn EOF into ECONNRESET
    assert report["after"] in ("eof", "ECONNRESET")
    if kind == "large":
        assert report["after"] == "ECONNRESET"


def test_daemon_crash_is_not_delivered_to_itself(socket_door: SocketDoor) -> None:
    socket_door.start()
    daemon = socket_door.daemon
    assert daemon is not None
    pid = daemon.pid
    start = time.monotonic()
    os.kill(pid, signal.SIGSEGV)
    status = os.waitpid(pid, 0)[1]
    daemon.returncode = -1
    socket_door.uninstall()
    assert time.monotonic() - start < 10  # no deadlock on its own socket
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSEGV
    assert not os.WCOREDUMP(status)  # not dumpable: the kernel skipped the dump entirely
    assert all(r.pid != pid for r in socket_door.rows())


def door_pids(daemon_pid: int) -> list[int]:
    """The daemon's door processes (children running socket_server.door_main)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        if ppid == daemon_pid and b"socket_server.door_main" in cmdline:
            found.append(int(entry.name))
    return found


def test_door_process_is_restarted(socket_door: SocketDoor, crasher: Path) -> None:
    socket_door.start()
    assert socket_door.daemon is not None
    (door,) = door_pids(socket_door.daemon.pid)
    os.kill(door, signal.SIGKILL)
    wait_until(lambda: door_pids(socket_door.daemon.pid) not in ([], [door]), 30,  # type: ignore[union-attr]
               "a new door process")
    wait_until(lambda: "door process ended (killed by signal 9)" in socket_door.log(), 10, "the log")
    crashed = socket_door.crash([crasher, "segv"])
    assert crashed.core_bit
    assert socket_door.wait_for(crashed.pid).storage_state == "present"


def test_door_process_ends_with_the_daemon(socket_door: SocketDoor, crasher: Path) -> None:
    """The daemon killed outright: its door process exits too (closing the connections it
    holds releases their tasks), so nothing keeps answering for a dead daemon."""
    socket_door.start()
    daemon = socket_door.daemon
    assert daemon is not None
    (door,) = door_pids(daemon.pid)
    socket_door.uninstall()
    os.kill(daemon.pid, signal.SIGKILL)
    daemon.wait()
    wait_until(lambda: gone_or_zombie(door), 10, "the door process to exit")


def gone_or_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(b")") + 2:].split()[0] == b"Z"


def test_sighup_reloads_the_rate_limit(socket_door: SocketDoor, crasher: Path) -> None:
    socket_door.start("RateLimitBurst=1\nRateLimitIntervalSec=1h\n")
    first, second = (socket_door.crash([crasher, "segv"]) for _ in range(2))
    assert first.core_bit and not second.core_bit
    socket_door.config.write_text(socket_door.config.read_text().replace(
        "RateLimitBurst=1", "RateLimitBurst=0"))
    assert socket_door.daemon is not None
    socket_door.daemon.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in socket_door.log()
               and "door: policy reloaded" in socket_door.log(), 10, "the reload")
    third = socket_door.crash([crasher, "segv"])
    assert third.core_bit
    assert socket_door.wait_for(third.pid).storage_state == "present"


def test_restarted_daemon_remembers_the_rate_limit(socket_door: SocketDoor, crasher: Path) -> None:
    """The door's rate limits are seeded from the catalog: a restart gives no fresh burst."""
    config = "RateLimitBurst=2\nRateLimitIntervalSec=1h\n"
    socket_door.start(config)
    taken = [socket_door.crash([crasher, "segv"]) for _ in range(2)]
    assert all(c.core_bit for c in taken)
    for c in taken:
        socket_door.wait_for(c.pid)
    socket_door.stop()
    socket_door.start(config)
    again = socket_door.crash([crasher, "segv"])
    assert not again.core_bit
    row = socket_door.wait_for(again.pid)
    assert row.storage_state == "none"
    assert any("rejected by rate limit" in n for n in row.notes), row.notes
